//! Where agents find the prices (feature `schemars`): `GET /openapi.json`, a docs page at
//! `/docs` (feature `openapi`), and, opt-in, `/llms.txt` and `/.well-known/x402`.
//!
//! The document is yours, from whichever stack writes it: utoipa-axum's `split_for_parts`
//! (feature `openapi`), aide's `finish_api` (feature `aide`), or, without an OpenAPI library,
//! [`document()`](fn@document) with the handlers filled in from `#[paid(method, path)]` and the shapes of
//! their types. [`DiscoveryBuilder::build`] prices it and checks it against the router.
//!
//! ```no_run
//! use axum::{Json, Router, extract::Query, routing::get};
//! use x402_runtime::X402;
//! use x402_runtime::discovery::{Discovery, document};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct City {
//!     /// The city's name.
//!     city: String,
//! }
//!
//! #[derive(serde::Serialize, schemars::JsonSchema)]
//! struct Weather {
//!     celsius: f64,
//! }
//!
//! /// Current weather for a city.
//! #[x402_runtime::paid(price = "0.001", currency = "USDC", method = "GET", path = "/weather")]
//! async fn weather(Query(q): Query<City>) -> Json<Weather> {
//!     Json(Weather { celsius: 21.5 })
//! }
//!
//! fn app(x402: X402) -> Result<Router, Box<dyn std::error::Error>> {
//!     let router = Router::new().route("/weather", get(weather));
//!     let discovery = Discovery::builder(&x402, document("Weather", "1.0.0"))
//!         .scope(module_path!())
//!         .llms_txt(true)
//!         .build(&router)?; // the startup check
//!     Ok(router.merge(discovery.router()).layer(x402.layer()))
//! }
//! ```
//!
//! [`DiscoveryBuilder::build`] runs, once, at startup:
//!
//! 1. the pricing pass ([`Pricer`]), which prices every paid operation and adds those the
//!    document lacks;
//! 2. the startup check: every paid handler in scope is in the document and mounted on the
//!    router at the document's method and path (one request per route goes through the router;
//!    it stops at the handler's paywall, before any extractor); no operation id is used twice.
//!    All problems are reported together in one [`CheckError`], unless
//!    [`unchecked`](DiscoveryBuilder::unchecked) turns them into warnings;
//! 3. the bazaar extension of each paid route ([`crate::bazaar`]), installed on the paywall so
//!    that every 402 of the route carries it;
//! 4. the bytes of `/openapi.json` and of the docs page.

#[cfg(feature = "aide")]
#[cfg_attr(docsrs, doc(cfg(feature = "aide")))]
pub mod aide;
pub mod document;

pub use document::{
    CheckError, PAYMENT_INFO, PAYMENT_REQUIRED_SCHEMA, PaidOperation, Pricer, document,
    payment_info,
};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::bazaar;
use crate::discovery::document::{METHODS, describe};
use crate::price::Currency;
use crate::route::mount::{self, Probe};
use crate::server::engine::X402;

/// Path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// Path of the docs page.
pub const DOCS_PATH: &str = "/docs";
/// Path of the llms.txt summary.
pub const LLMS_TXT_PATH: &str = "/llms.txt";
/// Path of the legacy x402 discovery document.
pub const WELL_KNOWN_PATH: &str = "/.well-known/x402";

const CACHE: HeaderValue = HeaderValue::from_static("public, max-age=300");
const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");

/// Builds a [`Discovery`]; see the [module documentation](self).
#[must_use]
pub struct DiscoveryBuilder {
    x402: X402,
    api: Value,
    pricer: Pricer,
    docs: bool,
    llms_txt: bool,
    well_known: bool,
    checked: bool,
}

/// The priced document and the endpoints that serve it, computed once.
#[derive(Clone)]
pub struct Discovery {
    inner: Arc<Inner>,
}

struct Inner {
    x402: X402,
    document: Value,
    json: Bytes,
    docs_html: Option<String>,
    llms_txt: bool,
    well_known: bool,
    paid: Vec<PaidOperation>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("paid", &self.inner.paid)
            .finish_non_exhaustive()
    }
}

impl Discovery {
    /// Starts from the finished document of the router: utoipa-axum's `split_for_parts`,
    /// aide's `finish_api`, or [`document()`](fn@document) (any value that serializes to an OpenAPI document).
    pub fn builder(x402: &X402, api: impl Serialize) -> DiscoveryBuilder {
        DiscoveryBuilder {
            x402: x402.clone(),
            api: serde_json::to_value(api).unwrap_or(Value::Null),
            pricer: Pricer::new(x402),
            docs: cfg!(feature = "openapi"),
            llms_txt: false,
            well_known: false,
            checked: true,
        }
    }

    /// The finished document, as served.
    pub fn document(&self) -> &Value {
        &self.inner.document
    }

    /// The paid operations of the document.
    pub fn paid_operations(&self) -> &[PaidOperation] {
        &self.inner.paid
    }

    /// The routes: `GET /openapi.json`, `GET /docs` unless turned off, and the opt-in ones.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let mut router = Router::new();
        let json = self.inner.json.clone();
        router = router.route(
            OPENAPI_PATH,
            get(move || {
                let json = json.clone();
                async move { shared("application/json", json) }
            }),
        );
        if let Some(html) = &self.inner.docs_html {
            let html = Bytes::from(html.clone());
            router = router.route(
                DOCS_PATH,
                get(move || {
                    let html = html.clone();
                    async move { shared("text/html; charset=utf-8", html) }
                }),
            );
        }
        if self.inner.llms_txt {
            let this = self.clone();
            router = router.route(
                LLMS_TXT_PATH,
                get(move |headers: HeaderMap| {
                    let this = this.clone();
                    async move {
                        let text = this.llms_txt(&this.inner.x402.origin(&headers));
                        shared("text/markdown; charset=utf-8", Bytes::from(text))
                    }
                }),
            );
        }
        if self.inner.well_known {
            let this = self.clone();
            router = router.route(
                WELL_KNOWN_PATH,
                get(move |headers: HeaderMap| {
                    let this = this.clone();
                    async move {
                        let body = this.well_known(&this.inner.x402.origin(&headers));
                        let body = serde_json::to_vec(&body).unwrap_or_default();
                        shared("application/json", Bytes::from(body))
                    }
                }),
            );
        }
        router
    }

    /// `/llms.txt` for the server at `origin` (llmstxt.org: a title, a summary, sections of
    /// links; prices are in the notes).
    pub fn llms_txt(&self, origin: &str) -> String {
        let doc = &self.inner.document;
        let title = doc["info"]["title"].as_str().unwrap_or("API");
        let summary = doc["info"]["description"]
            .as_str()
            .map(|d| d.split("\n\n").next().unwrap_or(d).replace('\n', " "))
            .unwrap_or_else(|| format!("{title}, paid per call."));
        let openapi = format!("{origin}{OPENAPI_PATH}");
        let mut text = format!(
            "# {title}\n\n> {} Paid routes answer 402 with x402 v2 offers ({}); prices, \
             schemas and offers are in {openapi}.\n",
            summary.trim_end(),
            self.terms()
        );
        let paid: BTreeSet<(String, String)> = self
            .inner
            .paid
            .iter()
            .map(|p| (p.path.clone(), p.method.to_string()))
            .collect();
        text.push_str("\n## Paid endpoints\n\n");
        for op in &self.inner.paid {
            let price = self.inner.x402.pricing(op.route);
            let what = operation_title(doc, &op.method, &op.path).unwrap_or_default();
            let also: String = op
                .route
                .currencies()
                .iter()
                .skip(1)
                .map(|c| format!(" or {c}"))
                .collect();
            text.push_str(&format!(
                "- [{} {}]({openapi}): {} — {price}{also} (x402)\n",
                op.method,
                op.path,
                what.trim_end_matches('.')
            ));
            if let Some(call) = self.bazaar(op).as_ref().and_then(call_note) {
                text.push_str(&format!("  - {call}\n"));
            }
        }
        let free: Vec<(String, String, String)> = operations(doc)
            .filter(|(path, method, _)| !paid.contains(&(path.clone(), method.clone())))
            .collect();
        if !free.is_empty() {
            text.push_str("\n## Free endpoints\n\n");
            for (path, method, title) in free {
                let note = if title.is_empty() {
                    String::new()
                } else {
                    format!(": {title}")
                };
                text.push_str(&format!("- [{method} {path}]({openapi}){note}\n"));
            }
        }
        text.push_str(&format!(
            "\n## Docs\n\n- [OpenAPI]({openapi}): machine-readable prices, offers and schemas\n"
        ));
        if self.inner.docs_html.is_some() {
            text.push_str(&format!(
                "- [API reference]({origin}{DOCS_PATH}): the same, for people\n"
            ));
        }
        text
    }

    /// `/.well-known/x402` for the server at `origin`: `{version: 1, resources, instructions}`,
    /// and `endpoints`: each paid operation's resource, method and bazaar extension (how to
    /// call it; readers of the legacy shape ignore the extra key).
    pub fn well_known(&self, origin: &str) -> Value {
        let resources: BTreeSet<String> = self
            .inner
            .paid
            .iter()
            .map(|op| format!("{origin}{}", op.path))
            .collect();
        let endpoints: Vec<Value> = self
            .inner
            .paid
            .iter()
            .map(|op| {
                let mut endpoint = json!({
                    "resource": format!("{origin}{}", op.path),
                    "method": op.method.as_str(),
                });
                if let Some(bazaar) = self.bazaar(op) {
                    endpoint["bazaar"] = bazaar;
                }
                endpoint
            })
            .collect();
        json!({
            "version": 1,
            "resources": resources,
            "endpoints": endpoints,
            "instructions": format!(
                "See {origin}{OPENAPI_PATH} for prices, offers and input schemas. Paid routes \
                 answer 402 with a PAYMENT-REQUIRED header (x402 v2)."
            ),
        })
    }

    /// The bazaar extension the 402s of `op` carry.
    fn bazaar(&self, op: &PaidOperation) -> Option<Value> {
        let extensions = self.inner.x402.route_extensions(op.route)?;
        extensions.get("bazaar").cloned()
    }

    /// `USDC on eip155:84532` for the currencies and networks of the paid routes.
    fn terms(&self) -> String {
        terms(&self.inner.x402, &self.inner.paid)
    }
}

/// `USDC on eip155:8453, eip155:84532; EURC on eip155:8453`: what the paid routes' offers take,
/// read from the offers themselves.
fn terms(x402: &X402, paid: &[PaidOperation]) -> String {
    let mut by_currency: BTreeMap<Currency, Vec<String>> = BTreeMap::new();
    for op in paid {
        let Ok(offers) = x402.route_offers(op.route) else {
            continue;
        };
        for offer in &offers.offers {
            let networks = by_currency.entry(offer.asset.currency).or_default();
            if !networks.contains(&offer.network.caip2) {
                networks.push(offer.network.caip2.clone());
            }
        }
    }
    let parts: Vec<String> = by_currency
        .iter()
        .map(|(currency, networks)| format!("{currency} on {}", networks.join(", ")))
        .collect();
    if parts.is_empty() {
        "no paid routes".to_owned()
    } else {
        parts.join("; ")
    }
}

impl DiscoveryBuilder {
    /// Only handlers defined in this module or below it belong to this document, as in
    /// [`Pricer::scope`]. Pass `module_path!()` at your crate root.
    pub fn scope(mut self, module_path: impl Into<String>) -> Self {
        self.pricer = self.pricer.scope(module_path);
        self
    }

    /// `security: []` on free operations, as in [`Pricer::free_operations_security`].
    pub fn free_operations_security(mut self, on: bool) -> Self {
        self.pricer = self.pricer.free_operations_security(on);
        self
    }

    /// Serves the docs page at `/docs` (Scalar, through utoipa-scalar; on by default).
    #[cfg(feature = "openapi")]
    #[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
    pub fn docs(mut self, on: bool) -> Self {
        self.docs = on;
        self
    }

    /// Serves `/llms.txt` (off by default).
    pub fn llms_txt(mut self, on: bool) -> Self {
        self.llms_txt = on;
        self
    }

    /// Serves the legacy `/.well-known/x402` (off by default; agentcash no longer reads it and
    /// reports it as `LEGACY_WELL_KNOWN_FOUND`).
    pub fn well_known(mut self, on: bool) -> Self {
        self.well_known = on;
        self
    }

    /// Opts out of the startup check: its problems are logged as warnings instead of failing
    /// [`build`](Self::build).
    pub fn unchecked(mut self) -> Self {
        self.checked = false;
        self
    }

    /// Prices the document, checks it against the paid handlers and `router` (the finished
    /// router, state applied, before or after `x402.layer()`), derives each route's bazaar
    /// extension and installs it on the paywall, and serializes the document.
    ///
    /// Fails with every problem at once; see the [module documentation](self).
    pub fn build(self, router: &Router) -> Result<Discovery, CheckError> {
        let DiscoveryBuilder {
            x402,
            mut api,
            pricer,
            docs,
            llms_txt,
            well_known,
            checked,
        } = self;
        let (paid, mut problems) = pricer.apply(&mut api);
        for op in &paid {
            if let Some(problem) = mount_problem(router, op) {
                problems.push(problem);
            }
        }
        if !problems.is_empty() {
            let error = CheckError::new(problems);
            if checked {
                return Err(error);
            }
            tracing::warn!("{error}");
        }
        add_root_extras(&x402, &mut api, &paid, docs, llms_txt);

        let document = api;
        for op in &paid {
            if let Some(bazaar) = bazaar::extension(&document, &op.method, &op.path) {
                // Other extensions of the route (`payment-identifier`) are kept.
                let mut extensions = x402
                    .route_extensions(op.route)
                    .map(|current| (*current).clone())
                    .unwrap_or_default();
                extensions.insert("bazaar".into(), bazaar);
                x402.set_route_extensions(op.route, extensions);
            }
        }
        let json = Bytes::from(serde_json::to_vec(&document).unwrap_or_default());
        let docs_html = docs.then(|| docs_page(&document)).flatten();
        Ok(Discovery {
            inner: Arc::new(Inner {
                x402,
                document,
                json,
                docs_html,
                llms_txt,
                well_known,
                paid,
            }),
        })
    }
}

/// How to call a route, in a line, from its bazaar extension: `query: \`city\` string
/// (required); returns JSON: \`celsius\`, \`conditions\``.
fn call_note(bazaar: &Value) -> Option<String> {
    let input = &bazaar["schema"]["properties"]["input"]["properties"];
    let mut parts = Vec::new();
    for (key, label) in [
        ("pathParams", "path"),
        ("queryParams", "query"),
        ("headers", "headers"),
    ] {
        if let Some(fields) = fields(&input[key], true) {
            parts.push(format!("{label}: {fields}"));
        }
    }
    if let Some(body) = fields(&input["body"], true) {
        let kind = bazaar["info"]["input"]["bodyType"]
            .as_str()
            .unwrap_or("json");
        parts.push(format!("{kind} body: {body}"));
    }
    let output = &bazaar["schema"]["properties"]["output"]["properties"]["example"];
    if let Some(fields) = fields(output, false) {
        parts.push(format!("returns JSON: {fields}"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// `` `city` string (required), `days` integer `` for an object schema's properties.
fn fields(schema: &Value, with_types: bool) -> Option<String> {
    let properties = schema.get("properties")?.as_object()?;
    if properties.is_empty() {
        return None;
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let listed: Vec<String> = properties
        .iter()
        .map(|(name, field)| {
            let kind = match &field["type"] {
                Value::String(kind) => kind.clone(),
                Value::Array(kinds) => kinds
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("|"),
                _ => "any".to_owned(),
            };
            match (with_types, required.contains(&name.as_str())) {
                (false, _) => format!("`{name}`"),
                (true, true) => format!("`{name}` {kind} (required)"),
                (true, false) => format!("`{name}` {kind}"),
            }
        })
        .collect();
    Some(listed.join(", "))
}

/// Why `op` is not served by its handler on `router`, if it is not.
fn mount_problem(router: &Router, op: &PaidOperation) -> Option<String> {
    let found = match mount::mounted_route(router, &op.method, &op.path) {
        Probe::Paid(route) if std::ptr::eq(route, op.route) => return None,
        Probe::Paid(route) => format!("{} answers there instead", describe(route)),
        Probe::Other(status) => format!("a request there gets {status} without reaching it"),
        Probe::Pending => "a layer of the router waited instead of answering".to_owned(),
    };
    Some(format!(
        "{} is documented as {} {} but is not mounted there ({found}): mount it at that \
         method and path (utoipa-axum's `routes!` does both), and give `build` the router \
         before any layer that answers or waits before the handler",
        describe(op.route),
        op.method,
        op.path
    ))
}

/// `info.x-guidance`, `x-service-info` and `x-agentcash-guidance`, unless already there.
fn add_root_extras(
    x402: &X402,
    api: &mut Value,
    paid: &[PaidOperation],
    docs: bool,
    llms_txt: bool,
) {
    let Some(root) = api.as_object_mut() else {
        return;
    };
    let guidance = format!(
        "Paid routes answer 402 Payment Required with a PAYMENT-REQUIRED header (x402 v2, \
         scheme exact: {}). Sign the offer (EIP-3009 transferWithAuthorization) and retry with \
         a PAYMENT-SIGNATURE header; each operation's x-payment-info lists its price and the \
         exact offers.",
        terms(x402, paid)
    );
    if let Some(info) = root
        .entry("info")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    {
        info.entry("x-guidance").or_insert_with(|| json!(guidance));
    }
    let mut links = Map::new();
    if docs {
        links.insert("apiReference".into(), json!(DOCS_PATH));
    }
    if llms_txt {
        links.insert("llms".into(), json!(LLMS_TXT_PATH));
    }
    if !links.is_empty() {
        root.entry("x-service-info")
            .or_insert_with(|| json!({ "docs": links }));
    }
    if let (true, Some(origin)) = (llms_txt, x402.config().public_url()) {
        root.entry("x-agentcash-guidance")
            .or_insert_with(|| json!({ "llmsTxtUrl": format!("{origin}{LLMS_TXT_PATH}") }));
    }
}

/// The Scalar page with the document inlined (`<` escaped so no string can close the script).
#[cfg(feature = "openapi")]
fn docs_page(document: &Value) -> Option<String> {
    let title = document["info"]["title"]
        .as_str()
        .unwrap_or("API")
        .to_owned();
    let html = utoipa_scalar::Scalar::new(document.clone())
        .title(title)
        .to_html();
    let raw = serde_json::to_string(document).unwrap_or_default();
    Some(html.replacen(&raw, &raw.replace('<', "\\u003c"), 1))
}

/// No docs page without utoipa-scalar (feature `openapi`).
#[cfg(not(feature = "openapi"))]
fn docs_page(_: &Value) -> Option<String> {
    None
}

/// A shared, cacheable answer readable from any origin.
fn shared(content_type: &'static str, body: Bytes) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, CACHE);
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
    response
}

/// Every operation of the document: `(path, METHOD, summary or description)`.
fn operations(doc: &Value) -> impl Iterator<Item = (String, String, String)> + '_ {
    doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flatten()
                .filter(|(method, _)| METHODS.iter().any(|(key, _)| key == method))
                .map(move |(method, op)| (path.clone(), method.to_ascii_uppercase(), title_of(op)))
        })
}

fn operation_title(doc: &Value, method: &Method, path: &str) -> Option<String> {
    let op = doc["paths"]
        .get(path)?
        .get(method.as_str().to_ascii_lowercase())?;
    Some(title_of(op))
}

fn title_of(op: &Value) -> String {
    op["summary"]
        .as_str()
        .or_else(|| op["description"].as_str())
        .map(|t| t.lines().next().unwrap_or_default().to_owned())
        .unwrap_or_default()
}
