use axum::extract::Query;
use x402_runtime::paid;

#[derive(serde::Deserialize)]
struct City {
    city: String,
}

#[paid(price = "1e-3", currency = "GBPT", settle = "later")]
async fn weather(Query(q): Query<City>) -> String {
    q.city
}

fn main() {}
