use axum::extract::Query;
use x402_runtime::{Quote, paid};

#[derive(serde::Deserialize)]
struct Rows {
    rows: u32,
}

async fn per_row(Query(q): Query<Rows>) -> Quote {
    Quote::atomic(1_000 * u128::from(q.rows))
}

#[paid(quote = per_row, min = "0.001", max = "0.05")]
async fn table(Query(q): Query<Rows>) -> String {
    q.rows.to_string()
}

fn main() {}
