use axum::Router;
use axum::extract::Path;
use axum::routing::put;
use x402_runtime::paid;

/// Stores a report.
///
/// The second paragraph is not part of the description.
#[paid(
    price = "0.05",
    currency = "EURC",
    description = "Store a report",
    max_timeout_seconds = 120,
    settle = "after",
    method = "put",
    path = "/reports/{id}",
    operation_id = "store_report",
    networks = ["eip155:8453", "eip155:84532"],
    pay_to = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
)]
pub async fn store_report(Path(id): Path<u32>, body: String) -> String {
    format!("{id}: {} bytes", body.len())
}

fn main() {
    let _app: Router = Router::new().route("/reports/{id}", put(store_report));
}
