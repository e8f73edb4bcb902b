use axum::Router;
use axum::extract::{Query, State};
use axum::routing::post;
use axum::Json;
use x402_runtime::{Quote, paid, quote};

#[derive(Clone)]
struct Rates {
    per_row: u128,
}

#[derive(serde::Deserialize)]
struct Rows {
    rows: u32,
}

#[derive(serde::Deserialize)]
struct Export {
    format: String,
}

/// Priced from the state, the query and the body.
#[quote]
async fn per_row(
    State(rates): State<Rates>,
    Query(q): Query<Rows>,
    Json(job): Json<Export>,
) -> Result<Quote, (axum::http::StatusCode, &'static str)> {
    if job.format.is_empty() {
        return Err((axum::http::StatusCode::BAD_REQUEST, "name a format"));
    }
    Ok(Quote::atomic(rates.per_row * u128::from(q.rows)))
}

#[paid(quote = per_row, min = "0.001", max = "0.5", currency = ["USDC", "EURC"])]
async fn export(State(rates): State<Rates>, Json(job): Json<Export>) -> String {
    format!("{} at {}", job.format, rates.per_row)
}

fn main() {
    let _app: Router = Router::new()
        .route("/export", post(export))
        .with_state(Rates { per_row: 1_000 });
}
