//! How the paywall's answers are written: the JSON error body, the receipt headers, and
//! `Cache-Control` on paid responses. What each refusal says is in [`super::refusal`].

use crate::network::AccountId;
use crate::schemes::account_text;
use axum::body::Body;
use axum::response::Response;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue, StatusCode};
use serde::Serialize;

use super::telemetry;
use crate::proto::header::encode_header;
use crate::proto::{
    EXPOSED_HEADERS, PAYMENT_RESPONSE, SettleResponse, X_PAYMENT_RESPONSE, X402Version,
};

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction: Option<&'a str>,
}

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A JSON error answer `{"error": code, "message": …, "transaction"?}` with
/// `Cache-Control: no-store`.
pub(crate) fn error_body(
    status: StatusCode,
    code: &str,
    message: &str,
    transaction: Option<&str>,
) -> Response {
    let body = serde_json::to_vec(&ErrorBody {
        error: code,
        message,
        transaction,
    })
    .unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, JSON);
    headers.insert(CACHE_CONTROL, NO_STORE);
    telemetry::tag(&mut response, code);
    response
}

/// The receipt header name for a protocol version.
pub(crate) fn receipt_header(version: X402Version) -> HeaderName {
    match version {
        X402Version::V2 => HeaderName::from_static(PAYMENT_RESPONSE),
        X402Version::V1 => HeaderName::from_static(X_PAYMENT_RESPONSE),
    }
}

/// Adds the receipt and the headers a browser needs to read it.
pub(crate) fn attach_receipt(
    response: &mut Response,
    version: X402Version,
    receipt: &SettleResponse,
) {
    let Some(value) = encode_header(receipt) else {
        return;
    };
    let headers = response.headers_mut();
    headers.insert(receipt_header(version), value);
    headers.insert(
        http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_HEADERS),
    );
}

/// Merges `private` into the handler's `Cache-Control`, dropping `public`, keeping the rest.
pub(crate) fn make_private(response: &mut Response) {
    let existing = response
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut directives: Vec<&str> = existing
        .split(',')
        .map(str::trim)
        .filter(|d| {
            !d.is_empty() && !d.eq_ignore_ascii_case("public") && !d.eq_ignore_ascii_case("private")
        })
        .collect();
    directives.insert(0, "private");
    if let Ok(value) = HeaderValue::from_str(&directives.join(", ")) {
        response.headers_mut().insert(CACHE_CONTROL, value);
    }
}

/// `Retry-After: 5`: nothing was charged, or the outcome is not known yet, and the same payment
/// may be sent again later.
pub(crate) fn retry_later(response: &mut Response) {
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("5"));
}

/// The receipt we send for a settlement of `payer` on `wire_network`.
pub(crate) fn settle_receipt(
    payer: AccountId,
    wire_network: &str,
    success: bool,
    transaction: &str,
    reason: Option<&str>,
) -> SettleResponse {
    SettleResponse {
        success,
        error_reason: reason.map(str::to_owned),
        error_message: None,
        payer: Some(account_text(&payer)),
        transaction: transaction.to_owned(),
        network: wire_network.to_owned(),
        amount: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_is_merged_into_cache_control() {
        let mut r = Response::new(Body::empty());
        make_private(&mut r);
        assert_eq!(r.headers()[CACHE_CONTROL], "private");
        r.headers_mut().insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        );
        make_private(&mut r);
        assert_eq!(r.headers()[CACHE_CONTROL], "private, max-age=60");
    }
}
