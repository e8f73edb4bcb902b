use axum::Router;
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::post;
use x402_runtime::paid;

/// As many arguments as axum allows, the last one reading the body.
#[paid(price = "0.01")]
#[allow(clippy::too_many_arguments)]
async fn many(
    _m1: Method,
    _m2: Method,
    _m3: Method,
    _m4: Method,
    _m5: Method,
    _u1: Uri,
    _u2: Uri,
    _u3: Uri,
    _u4: Uri,
    _u5: Uri,
    _h1: HeaderMap,
    _h2: HeaderMap,
    _h3: HeaderMap,
    _h4: HeaderMap,
    _h5: HeaderMap,
    body: String,
) -> String {
    body
}

fn main() {
    let _app: Router = Router::new().route("/many", post(many));
}
