use axum::extract::Query;
use x402_runtime::paid;

#[derive(serde::Deserialize)]
struct City {
    city: String,
}

#[paid(price = "0.01", networks = ["eip155:8453", "base"])]
async fn weather(Query(q): Query<City>) -> String {
    q.city
}

fn main() {}
