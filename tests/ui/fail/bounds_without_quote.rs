use axum::extract::Query;
use x402_runtime::{Quote, paid, quote};

#[derive(serde::Deserialize)]
struct Rows {
    rows: u32,
}

#[quote]
async fn per_row(Query(q): Query<Rows>) -> Quote {
    Quote::atomic(1_000 * u128::from(q.rows))
}

#[paid(price = "0.01", min = "0.001")]
async fn table(Query(q): Query<Rows>) -> String {
    q.rows.to_string()
}

fn main() {}
