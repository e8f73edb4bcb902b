use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use x402_runtime::paid;

#[derive(Clone)]
struct AppState {
    greeting: &'static str,
}

#[derive(serde::Deserialize)]
struct Order {
    name: String,
}

#[derive(serde::Serialize)]
struct Receipt {
    message: String,
}

#[paid(price = "0.25", method = "POST", path = "/orders")]
async fn order(State(state): State<AppState>, Json(order): Json<Order>) -> Json<Receipt> {
    Json(Receipt {
        message: format!("{}, {}", state.greeting, order.name),
    })
}

fn main() {
    let _app: Router = Router::new()
        .route("/orders", post(order))
        .with_state(AppState { greeting: "hello" });
}
