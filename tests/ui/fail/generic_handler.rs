use axum::extract::State;
use x402_runtime::paid;

#[paid(price = "0.01")]
async fn hello<S: ToString>(State(s): State<S>) -> String {
    s.to_string()
}

fn main() {}
