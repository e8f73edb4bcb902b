use axum::http::{HeaderMap, Method, Uri};
use x402_runtime::paid;

#[paid(price = "0.01")]
async fn hello(
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
    _h6: HeaderMap,
    _h7: HeaderMap,
) -> &'static str {
    "hello"
}

fn main() {}
