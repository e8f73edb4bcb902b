use axum::Router;
use axum::routing::get;
use x402_runtime::paid;

#[paid(price = "1")]
async fn hello() -> &'static str {
    "hello, paying world"
}

fn main() {
    let _app: Router = Router::new().route("/hello", get(hello));
}
