//! A paid API on aide (`example-aide`), as a library so tests can mount it.
//!
//! - `GET /stock?symbol=ACME`: 0.002 USDC
//! - `POST /summarize` with `{"text": "…", "max_words": 20}`: 0.01 USDC
//! - `GET /health`: free, documented by aide itself
//!
//! and `GET /openapi.json` (aide's document, priced), `GET /llms.txt`, `GET /.well-known/x402`.

use aide::axum::{ApiRouter, routing::get};
use aide::openapi::{Contact, Info, OpenApi};
use axum::http::Method;
use axum::{Json, Router, extract::Query};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use x402_runtime::discovery::aide::ApiRouterExt as _;
use x402_runtime::discovery::{CheckError, Discovery};
use x402_runtime::{X402, paid};

/// Who answers for this API (the document's `info.contact`).
pub const CONTACT_EMAIL: &str = "markets-api@example.com";

/// Query of `GET /stock`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Symbol {
    /// Ticker symbol, e.g. `ACME`.
    pub symbol: String,
}

/// The latest price of a stock.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Stock {
    /// Ticker symbol, as asked.
    pub symbol: String,
    /// Last traded price, in US dollars.
    pub price: f64,
}

/// Body of `POST /summarize`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SummaryRequest {
    /// The text to summarize.
    pub text: String,
    /// Longest summary, in words (1 to 100).
    #[schemars(range(min = 1, max = 100))]
    pub max_words: u8,
}

/// A summary.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Summary {
    /// The summary.
    pub summary: String,
    /// Its length in words.
    pub words: usize,
}

/// The latest price of a stock.
#[paid(price = "0.002", currency = "USDC")]
pub async fn stock(Query(q): Query<Symbol>) -> Json<Stock> {
    // A deterministic stand-in for a market feed.
    let cents: u32 = q.symbol.bytes().map(u32::from).sum();
    Json(Stock {
        price: f64::from(cents) / 10.0,
        symbol: q.symbol,
    })
}

/// A summary of a text in at most `max_words` words.
#[paid(price = "0.01", currency = "USDC")]
pub async fn summarize(Json(request): Json<SummaryRequest>) -> Json<Summary> {
    let words: Vec<&str> = request
        .text
        .split_whitespace()
        .take(usize::from(request.max_words))
        .collect();
    Json(Summary {
        words: words.len(),
        summary: words.join(" "),
    })
}

/// Free liveness probe.
async fn health() -> &'static str {
    "ok"
}

/// The router with the paywall installed and the discovery endpoints mounted; fails with the
/// startup check's problems.
pub fn app(x402: &X402) -> Result<Router, CheckError> {
    let mut api = OpenApi {
        info: Info {
            title: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: Some("Market data and text tools for agents, paid per call.".to_owned()),
            contact: Some(Contact {
                email: Some(CONTACT_EMAIL.to_owned()),
                ..Contact::default()
            }),
            ..Info::default()
        },
        ..OpenApi::default()
    };
    let router = ApiRouter::new()
        .paid_route(Method::GET, "/stock", stock)
        .paid_route(Method::POST, "/summarize", summarize)
        .api_route("/health", get(health))
        .finish_api(&mut api);
    let discovery = Discovery::builder(x402, &api)
        .scope(module_path!())
        .free_operations_security(true)
        .llms_txt(true)
        .well_known(true)
        .build(&router)?;
    Ok(router.merge(discovery.router()).layer(x402.layer()))
}
