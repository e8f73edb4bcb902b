use axum::routing::post;
use axum::{Json, Router};
use x402_runtime::{Charge, paid};

/// Summarises a text, billed by the words it read: at most 0.50 USDC.
#[paid(upto = "0.50", currency = "USDC")]
async fn summarise(text: String) -> (Charge, Json<usize>) {
    let words = text.split_whitespace().count();
    (Charge::atomic(words as u128 * 10), Json(words))
}

/// A search billed in DAI (18 decimals), through Permit2.
#[paid(upto = "0.000000000000000001", currency = "DAI")]
async fn search(query: String) -> (Charge, String) {
    (Charge::nothing(), query)
}

/// A fixed price in a token `#[paid]` does not know, with its decimals.
#[paid(price = "0.25", currency = "WETH:18")]
async fn report() -> &'static str {
    "report"
}

fn main() {
    let _app: Router = Router::new()
        .route("/summarise", post(summarise))
        .route("/search", post(search))
        .route("/report", post(report));
}
