use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use x402_runtime::paid;

/// Returns `impl IntoResponse` and has no return statement of its own type.
#[paid(price = "0.002", currency = "USDC")]
pub(crate) async fn status() -> impl IntoResponse {
    (StatusCode::ACCEPTED, "queued")
}

#[paid(price = "0.002")]
async fn unit() {}

fn main() {
    let _app: Router = Router::new()
        .route("/status", get(status))
        .route("/unit", get(unit));
}
