use axum::extract::Query;
use x402_runtime::paid;

#[derive(serde::Deserialize)]
struct City {
    city: String,
}

#[paid(price = "0.01", pay_to = "0x90f79bf6eb2c4f870365e785982e1f101e93b906")]
async fn weather(Query(q): Query<City>) -> String {
    q.city
}

fn main() {}
