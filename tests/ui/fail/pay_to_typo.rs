use axum::extract::Query;
use x402_runtime::paid;

#[derive(serde::Deserialize)]
struct City {
    city: String,
}

#[paid(price = "0.01", pay_to = "0x90F79bf6EB2c4f870365E785982E1f101E93b907")]
async fn weather(Query(q): Query<City>) -> String {
    q.city
}

fn main() {}
