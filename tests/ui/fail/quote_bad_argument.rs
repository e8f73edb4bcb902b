use axum::Router;
use axum::routing::get;
use x402_runtime::{Quote, paid, quote};

#[quote]
async fn per_row(rows: u32) -> Quote {
    Quote::atomic(1_000 * u128::from(rows))
}

#[paid(quote = per_row, min = "0.001", max = "0.05")]
async fn table() -> &'static str {
    "table"
}

fn main() {
    let _app: Router = Router::new().route("/table", get(table));
}
