//! Finding out what an API charges before paying: its OpenAPI document, or a probe.

use alloy_primitives::U256;
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::amount::format_amount;
use crate::network::{Asset, Network};
use crate::proto::header::parse_uint;
use crate::proto::{PAYMENT_REQUIRED, PaymentRequired, PaymentRequiredV1, PaymentRequirements};

const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];

/// A paid endpoint and what it costs.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PricedEndpoint {
    /// HTTP method, upper case.
    pub method: String,
    /// Path (an OpenAPI path template such as `/users/{id}` when read from a document).
    pub path: String,
    /// Price in human units (`"0.001"`; a range `"0.001–0.03"` for a route priced per request),
    /// or `"?"` when no offer names a known token.
    pub price: String,
    /// What the price is in: a token (`"USDC"`) or, from a document without x402 offers, the
    /// fiat currency (`"USD"`).
    pub currency: String,
    /// Networks the endpoint can be paid on (CAIP-2, or v1 names).
    pub networks: Vec<String>,
    /// Payment protocols offered (`"x402"`, …).
    pub protocols: Vec<String>,
    /// Summary or description.
    pub description: Option<String>,
    /// The x402 offers, when known.
    pub accepts: Vec<PaymentRequirements>,
    /// How to call it: the bazaar extension (`{info, schema}`, JSON Schemas of the input and
    /// output), derived from the document's operation or read from the 402.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bazaar: Option<Value>,
}

/// An endpoint the document marks as free.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FreeEndpoint {
    /// HTTP method, upper case.
    pub method: String,
    /// Path.
    pub path: String,
}

/// What a server charges.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovery {
    /// Where the prices were read: the document's URL or the probed URL.
    pub source: String,
    /// `"openapi"` when read from a document, `"probe"` when read from a 402.
    pub via: &'static str,
    /// Paid endpoints, sorted by path and method.
    pub endpoints: Vec<PricedEndpoint>,
    /// Free endpoints (from a document only).
    pub free: Vec<FreeEndpoint>,
}

/// Why discovery failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum DiscoverError {
    /// The URL is not an absolute http(s) URL.
    BadUrl(String),
    /// The server could not be reached.
    Http(reqwest::Error),
    /// Neither an OpenAPI document with prices nor a 402 at the URL.
    NothingFound(String),
}

impl std::fmt::Display for DiscoverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiscoverError::BadUrl(url) => write!(f, "`{url}` is not an http(s) URL"),
            DiscoverError::Http(e) => write!(f, "request failed: {e}"),
            DiscoverError::NothingFound(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for DiscoverError {}

/// Lists what the server at `url` charges.
///
/// Reads `x-payment-info` from the OpenAPI document (`url` itself when it ends in `.json`,
/// otherwise `/openapi.json` at its origin). Without a document, sends `GET url` and reads the
/// 402 challenge (v2 header or v1 body) as the one endpoint's price.
pub async fn discover(http: &reqwest::Client, url: &str) -> Result<Discovery, DiscoverError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| DiscoverError::BadUrl(url.to_owned()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(DiscoverError::BadUrl(url.to_owned()));
    }
    let document_url = if parsed.path().ends_with(".json") {
        parsed.clone()
    } else {
        parsed
            .join("/openapi.json")
            .map_err(|_| DiscoverError::BadUrl(url.to_owned()))?
    };
    let answer = http
        .get(document_url.clone())
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(DiscoverError::Http)?;
    if answer.status().is_success()
        && let Ok(document) = answer.json::<Value>().await
        && document.get("paths").is_some_and(Value::is_object)
    {
        return Ok(from_document(document_url.as_str(), &document));
    }
    probe(http, &parsed).await
}

/// Reads every operation of an OpenAPI document.
pub fn from_document(source: &str, document: &Value) -> Discovery {
    let mut endpoints = Vec::new();
    let mut free = Vec::new();
    let paths = document.get("paths").and_then(Value::as_object);
    for (path, item) in paths.into_iter().flatten() {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let name = method.to_ascii_uppercase();
            match operation.get("x-payment-info") {
                Some(info) => {
                    let mut endpoint = priced(name.clone(), path, operation, info);
                    endpoint.bazaar = name
                        .parse::<http::Method>()
                        .ok()
                        .and_then(|m| crate::bazaar::extension(document, &m, path));
                    endpoints.push(endpoint);
                }
                None => free.push(FreeEndpoint {
                    method: name,
                    path: path.clone(),
                }),
            }
        }
    }
    endpoints.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    Discovery {
        source: source.to_owned(),
        via: "openapi",
        endpoints,
        free,
    }
}

fn priced(method: String, path: &str, operation: &Value, info: &Value) -> PricedEndpoint {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut protocols = Vec::new();
    let mut accepts = Vec::new();
    let mut token_price = None;
    for protocol in info
        .get("protocols")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some((name, detail)) = protocol.as_object().and_then(|p| p.iter().next()) else {
            continue;
        };
        protocols.push(name.clone());
        if name == "x402" {
            if let Some(offers) = detail.get("accepts") {
                accepts.extend(
                    serde_json::from_value::<Vec<PaymentRequirements>>(offers.clone())
                        .unwrap_or_default(),
                );
            }
            if let Some(price) = detail.get("price") {
                token_price = amount_or_range(price).zip(text(price, "currency"));
            }
        }
    }
    let offered = accepts
        .first()
        .and_then(|o| human_price(&o.network, &o.amount, &o.asset));
    let fiat = info
        .get("price")
        .and_then(|p| amount_or_range(p).zip(text(p, "currency")));
    let (price, currency) = token_price
        .or(offered)
        .or(fiat)
        .unwrap_or_else(|| ("?".to_owned(), String::new()));
    let networks = unique(accepts.iter().map(|o| o.network.clone()));
    PricedEndpoint {
        method,
        path: path.to_owned(),
        price,
        currency,
        networks,
        protocols,
        description: text(operation, "summary").or_else(|| text(operation, "description")),
        accepts,
        bazaar: None,
    }
}

/// A price's `amount`, or for a quoted route (`mode: "dynamic"`) its range `min–max`.
fn amount_or_range(price: &Value) -> Option<String> {
    let text = |key: &str| price.get(key).and_then(Value::as_str);
    match (text("amount"), text("min"), text("max")) {
        (Some(amount), _, _) => Some(amount.to_owned()),
        (None, Some(min), Some(max)) => Some(format!("{min}–{max}")),
        (None, None, Some(max)) => Some(format!("up to {max}")),
        _ => None,
    }
}

/// The items in first-seen order, without repeats.
fn unique(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// The price of an offer in human units, when its token is a known one.
fn human_price(network: &str, amount: &str, asset: &str) -> Option<(String, String)> {
    let network = Network::from_caip2(network).or_else(|| Network::from_v1_name(network))?;
    let asset = Asset::find(&network, asset.parse().ok()?)?;
    let amount: U256 = parse_uint(amount, "amount").ok()?;
    Some((
        format_amount(amount, asset.decimals),
        asset.currency.symbol().to_owned(),
    ))
}

/// Sends `GET url` and reads its 402.
async fn probe(http: &reqwest::Client, url: &reqwest::Url) -> Result<Discovery, DiscoverError> {
    let answer = http
        .get(url.clone())
        .send()
        .await
        .map_err(DiscoverError::Http)?;
    let status = answer.status();
    if status != StatusCode::PAYMENT_REQUIRED {
        return Err(DiscoverError::NothingFound(format!(
            "no OpenAPI document with prices, and GET {url} answered {status}, not 402"
        )));
    }
    let header = answer.headers().get(PAYMENT_REQUIRED).cloned();
    let body = answer.bytes().await.map_err(DiscoverError::Http)?;
    let v2 = header
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(super::challenge::decode_base64)
        .and_then(|json| serde_json::from_slice::<PaymentRequired>(&json).ok());
    let bazaar = v2
        .as_ref()
        .and_then(|c| c.extensions.as_ref())
        .and_then(|extensions| extensions.get("bazaar").cloned());
    let (accepts, description, protocol) = match v2 {
        Some(challenge) => (challenge.accepts, challenge.resource.description, "x402"),
        None => {
            let v1: PaymentRequiredV1 = serde_json::from_slice(&body).map_err(|_| {
                DiscoverError::NothingFound(format!(
                    "GET {url} answered 402 without an x402 challenge"
                ))
            })?;
            let description = v1.accepts.first().map(|o| o.description.clone());
            let accepts = v1
                .accepts
                .into_iter()
                .map(|o| PaymentRequirements {
                    scheme: o.scheme,
                    network: o.network,
                    amount: o.max_amount_required,
                    asset: o.asset,
                    pay_to: o.pay_to,
                    max_timeout_seconds: o.max_timeout_seconds,
                    extra: o.extra,
                })
                .collect();
            (accepts, description, "x402 v1")
        }
    };
    let (price, currency) = accepts
        .iter()
        .find_map(|o| human_price(&o.network, &o.amount, &o.asset))
        .unwrap_or_else(|| ("?".to_owned(), String::new()));
    let networks = unique(accepts.iter().map(|o| o.network.clone()));
    Ok(Discovery {
        source: url.to_string(),
        via: "probe",
        endpoints: vec![PricedEndpoint {
            method: "GET".to_owned(),
            path: url.path().to_owned(),
            price,
            currency,
            networks,
            protocols: vec![protocol.to_owned()],
            description: description.filter(|d| !d.is_empty()),
            accepts,
            bazaar,
        }],
        free: Vec::new(),
    })
}
