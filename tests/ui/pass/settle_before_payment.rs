use axum::Router;
use axum::routing::post;
use x402_runtime::{Payment, paid};

/// Sends an email; the payment is settled before anything is sent.
#[paid(price = "$0.10", settle = "before")]
async fn send_email(payment: Payment, body: String) -> String {
    let _ = &payment;
    format!("sent {} bytes", body.len())
}

fn main() {
    let _app: Router = Router::new().route("/email", post(send_email));
}
