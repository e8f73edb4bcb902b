//! Prices in an OpenAPI document, whichever library wrote it (utoipa, aide) or none.
//!
//! [`Pricer::modify`] runs on the finished document as JSON and finds each registered paid
//! handler by its operation id, so `nest` prefixes and attribute order do not matter. Every
//! paid operation gets:
//!
//! - `x-payment-info`: the price in decimal with its ISO 4217 currency (`"0.001"` `"USD"`), and
//!   under `protocols[0].x402` the token price and the exact offers of the live 402, from
//!   [`X402::requirements`], the one function both use;
//! - a `402` response with the `PAYMENT-REQUIRED` header and the `X402PaymentRequired` schema;
//! - `security: []` unless the document declares security of its own;
//! - its price as the last paragraph of its description, for the docs page.
//!
//! A paid handler the document does not describe is added from the method and path given to
//! `#[paid]`, with the shapes of its types ([`Shapes`](crate::Shapes)): that is the whole
//! document of an app without an OpenAPI library.

use std::collections::BTreeMap;
use std::fmt;

use http::Method;
use serde_json::{Map, Value, json};

use crate::base::ConfigError;
use crate::price::Pricing;
use crate::proto::{PaymentRequired, PaymentRequiredV1};
use crate::route::shapes::{self, openapi_path};
use crate::route::{PaidRoute, routes};
use crate::server::engine::X402;

/// The extension key of the price on an operation.
pub const PAYMENT_INFO: &str = "x-payment-info";

/// Name of the component the 402 response's body and header refer to.
pub const PAYMENT_REQUIRED_SCHEMA: &str = "X402PaymentRequired";

/// Name of the v1 body's component.
pub const PAYMENT_REQUIRED_V1_SCHEMA: &str = "X402PaymentRequiredV1";

/// The title utoipa-axum's `OpenApiRouter::new()` puts in `info` (with its author's contact).
const UTOIPA_AXUM_TITLE: &str = "utoipa-axum";

/// The keys of a path item that are operations, with their methods.
pub(crate) const METHODS: [(&str, Method); 8] = [
    ("get", Method::GET),
    ("put", Method::PUT),
    ("post", Method::POST),
    ("delete", Method::DELETE),
    ("options", Method::OPTIONS),
    ("head", Method::HEAD),
    ("patch", Method::PATCH),
    ("trace", Method::TRACE),
];

/// The pass that prices the paid operations of an OpenAPI document (as JSON).
#[derive(Clone, Debug)]
#[must_use]
pub struct Pricer {
    x402: X402,
    scope: Option<String>,
    free_security: bool,
}

/// A paid operation of the finished document.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PaidOperation {
    /// The registered handler.
    pub route: &'static PaidRoute,
    /// The operation's method.
    pub method: Method,
    /// The operation's path in the document (OpenAPI template syntax).
    pub path: String,
}

/// The paid handlers and the document disagree: every problem found, one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckError {
    problems: Vec<String>,
}

impl CheckError {
    pub(crate) fn new(problems: Vec<String>) -> Self {
        CheckError { problems }
    }

    /// The problems, one sentence each.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "x402 startup check: the paid handlers and the OpenAPI document disagree ({} problem{}):",
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        f.write_str(
            "Fix them, or opt out of this check with `Discovery::builder(…).unchecked()` \
             (the problems are then logged as warnings).",
        )
    }
}

impl std::error::Error for CheckError {}

impl Pricer {
    /// Prices the operations of `x402`'s registered handlers.
    pub fn new(x402: &X402) -> Self {
        Pricer {
            x402: x402.clone(),
            scope: None,
            free_security: false,
        }
    }

    /// Only handlers defined in this module or below it belong to the document
    /// (`module_path!()` of the crate root for a whole crate). Without it, every `#[paid]`
    /// handler linked into the binary must be documented.
    pub fn scope(mut self, module_path: impl Into<String>) -> Self {
        self.scope = Some(module_path.into());
        self
    }

    /// Also gives free operations `security: []`, so that agents read them as open
    /// (agentcash's `unprotected`) instead of "auth mode missing". Off by default.
    pub fn free_operations_security(mut self, on: bool) -> Self {
        self.free_security = on;
        self
    }

    /// The paid handlers in scope, sorted.
    pub fn routes(&self) -> Vec<&'static PaidRoute> {
        routes()
            .into_iter()
            .filter(|route| in_scope(self.scope.as_deref(), route.module_path()))
            .collect()
    }

    /// Prices `doc` in place and lists its paid operations. Fails, after doing what it could,
    /// with every problem at once: a paid handler missing from the document, an operation id
    /// used twice, a route without an offer under the configuration, or utoipa-axum's own
    /// `info` left in the document.
    pub fn modify(&self, doc: &mut Value) -> Result<Vec<PaidOperation>, CheckError> {
        let (paid, problems) = self.apply(doc);
        if problems.is_empty() {
            Ok(paid)
        } else {
            Err(CheckError::new(problems))
        }
    }

    pub(crate) fn apply(&self, doc: &mut Value) -> (Vec<PaidOperation>, Vec<String>) {
        let mut problems = Vec::new();
        if !doc.is_object() {
            return (
                Vec::new(),
                vec!["the OpenAPI document is not a JSON object".to_owned()],
            );
        }
        if doc["info"]["title"] == UTOIPA_AXUM_TITLE {
            problems.push(
                "the document's `info` is utoipa-axum's own (title \"utoipa-axum\" and its \
                 author's contact): start from `OpenApiRouter::with_openapi(…)` with your \
                 crate's title, version and contact instead of `OpenApiRouter::new()`"
                    .to_owned(),
            );
        }
        let by_id = self.by_operation_id(&mut problems);
        add_missing(doc, &by_id, &mut problems);
        duplicate_operation_ids(doc, &mut problems);

        let global_security = doc
            .get("security")
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty());
        let mut paid = Vec::new();
        for (path, item) in paths_mut(doc) {
            for (key, method) in &METHODS {
                let Some(op) = item.get_mut(*key).filter(|op| op.is_object()) else {
                    continue;
                };
                // A route id registered twice is already a problem; pricing either would guess.
                let route = match op["operationId"].as_str().and_then(|id| by_id.get(id)) {
                    Some(same) if same.len() == 1 => Some(same[0]),
                    _ => None,
                };
                match route {
                    Some(route) => match self.decorate(op, route, global_security) {
                        Ok(()) => paid.push(PaidOperation {
                            route,
                            method: method.clone(),
                            path: path.clone(),
                        }),
                        Err(e) => problems.push(e.to_string()),
                    },
                    None if self.free_security && !global_security => {
                        if let Some(op) = op.as_object_mut() {
                            op.entry("security").or_insert_with(|| json!([]));
                        }
                    }
                    None => {}
                }
            }
        }
        add_components(doc);
        (paid, problems)
    }

    /// The routes in scope by operation id; an id registered by several is a problem.
    fn by_operation_id(
        &self,
        problems: &mut Vec<String>,
    ) -> BTreeMap<&'static str, Vec<&'static PaidRoute>> {
        let mut by_id: BTreeMap<&'static str, Vec<&'static PaidRoute>> = BTreeMap::new();
        for route in self.routes() {
            by_id.entry(route.operation_id()).or_default().push(route);
        }
        for (id, same) in &by_id {
            if same.len() > 1 {
                let who: Vec<String> = same.iter().map(|r| describe(r)).collect();
                problems.push(format!(
                    "operation id `{id}` is registered by {} paid handlers: {}; give all but one \
                     `operation_id = \"…\"` in `#[paid]` or `#[utoipa::path]`",
                    same.len(),
                    who.join(", ")
                ));
            }
        }
        by_id
    }

    fn decorate(
        &self,
        op: &mut Value,
        route: &'static PaidRoute,
        global_security: bool,
    ) -> Result<(), ConfigError> {
        let info = payment_info(&self.x402, route)?;
        let note = price_note(&self.x402, route);
        let Some(op) = op.as_object_mut() else {
            return Ok(());
        };
        op.insert(PAYMENT_INFO.to_owned(), info);
        let responses = op.entry("responses").or_insert_with(|| json!({}));
        if let Some(responses) = responses.as_object_mut() {
            responses.insert("402".to_owned(), payment_required_response());
        }
        if !global_security {
            op.entry("security").or_insert_with(|| json!([]));
        }
        let description = match op.get("description").and_then(Value::as_str) {
            Some(text) if !text.trim().is_empty() => format!("{}\n\n{note}", text.trim_end()),
            _ => note,
        };
        op.insert("description".to_owned(), json!(description));
        Ok(())
    }
}

/// `x-payment-info` of `route`: `{price: {mode, currency, amount}, protocols: [{x402: {…}}]}`.
/// The `accepts` are [`X402::requirements`], exactly what the live 402 offers. A quoted route
/// publishes `{mode: "dynamic", currency, min, max}`, and its `accepts` carry the upper bound
/// (its live 402 carries the quote for the request).
pub fn payment_info(x402: &X402, route: &'static PaidRoute) -> Result<Value, ConfigError> {
    let accepts = x402.requirements(route)?;
    let (price, token_price) = match x402.pricing(route) {
        Pricing::Quoted(bounds) => (
            json!({
                "mode": "dynamic",
                "currency": bounds.min.currency.iso_4217(),
                "min": bounds.min.human,
                "max": bounds.max.human,
            }),
            json!({
                "mode": "dynamic",
                "min": bounds.min.human,
                "max": bounds.max.human,
                "currency": bounds.min.currency.symbol(),
                "decimals": bounds.min.decimals,
            }),
        ),
        Pricing::Upto(max) => (
            json!({
                "mode": "dynamic",
                "currency": max.currency.iso_4217(),
                "max": max.human,
            }),
            json!({
                "mode": "dynamic",
                "max": max.human,
                "currency": max.currency.symbol(),
                "decimals": max.decimals,
            }),
        ),
        pricing => {
            let price = pricing.most();
            (
                json!({
                    "mode": "fixed",
                    "currency": price.currency.iso_4217(),
                    "amount": price.human,
                }),
                json!({
                    "amount": price.human,
                    "currency": price.currency.symbol(),
                    "decimals": price.decimals,
                }),
            )
        }
    };
    // A token that tracks no known fiat currency has no ISO 4217 code to publish.
    let mut price = price;
    if let Some(fields) = price.as_object_mut() {
        fields.retain(|key, value| key != "currency" || !value.is_null());
    }
    Ok(json!({
        "price": price,
        "protocols": [{
            "x402": {
                "x402Version": 2,
                "price": token_price,
                "accepts": accepts,
            }
        }],
    }))
}

/// The line the docs page shows under a paid operation.
fn price_note(x402: &X402, route: &'static PaidRoute) -> String {
    let pricing = x402.pricing(route);
    let mut networks: Vec<String> = Vec::new();
    let mut schemes: Vec<String> = Vec::new();
    for offer in x402.requirements(route).unwrap_or_default() {
        if !networks.contains(&offer.network) {
            networks.push(offer.network);
        }
        let scheme = format!("`{}`", offer.scheme);
        if !schemes.contains(&scheme) {
            schemes.push(scheme);
        }
    }
    let also: Vec<&str> = route
        .currencies()
        .iter()
        .skip(1)
        .map(|c| c.symbol())
        .collect();
    let also = if also.is_empty() {
        String::new()
    } else {
        format!(" (or the same amount in {})", also.join(", "))
    };
    let per = if pricing.bounds().is_some() {
        "per call, quoted per request (the 402 carries the quote)"
    } else if pricing.upto().is_some() {
        "per call, charged by what the call used"
    } else {
        "per call"
    };
    format!(
        "**Price: {pricing}**{also} {per}, paid with x402 v2 (scheme {}, network {}). \
         Without payment the call answers 402 with the offers in the `PAYMENT-REQUIRED` header.",
        schemes.join(", "),
        networks.join(", ")
    )
}

/// The `402` response of a paid operation.
pub(crate) fn payment_required_response() -> Value {
    json!({
        "description": "Payment Required (x402 v2). The PAYMENT-REQUIRED header carries the \
            X402PaymentRequired object, base64-encoded. The body carries the same offers for \
            x402 v1 clients (X402PaymentRequiredV1), or the v2 object when no offered network \
            has a v1 name.",
        "headers": {
            "PAYMENT-REQUIRED": {
                "description": "Base64-encoded JSON X402PaymentRequired",
                "schema": {
                    "type": "string",
                    "contentEncoding": "base64",
                    "contentMediaType": "application/json",
                },
            },
        },
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": format!("#/components/schemas/{PAYMENT_REQUIRED_SCHEMA}")},
                        {"$ref": format!("#/components/schemas/{PAYMENT_REQUIRED_V1_SCHEMA}")},
                    ],
                },
            },
        },
    })
}

/// Adds the `X402*` schemas the 402 responses refer to (from schemars, under
/// `#/components/schemas/`).
fn add_components(doc: &mut Value) {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    let mut generator = settings.into_generator();
    generator.subschema_for::<PaymentRequired>();
    generator.subschema_for::<PaymentRequiredV1>();
    let definitions = generator.take_definitions(true);
    let Some(root) = doc.as_object_mut() else {
        return;
    };
    let components = root.entry("components").or_insert_with(|| json!({}));
    let Some(components) = components.as_object_mut() else {
        return;
    };
    let schemas = components.entry("schemas").or_insert_with(|| json!({}));
    if let Some(schemas) = schemas.as_object_mut() {
        schemas.extend(definitions);
    }
}

/// Adds an operation for each route absent from the document that knows its method and
/// path; reports the others.
fn add_missing(
    doc: &mut Value,
    by_id: &BTreeMap<&'static str, Vec<&'static PaidRoute>>,
    problems: &mut Vec<String>,
) {
    let documented = operation_ids(doc);
    for route in by_id.values().flatten() {
        if documented.contains_key(route.operation_id()) {
            continue;
        }
        let known = route
            .method()
            .and_then(|m| m.parse::<Method>().ok())
            .zip(route.path());
        match known {
            Some((method, path)) => {
                if let Err(problem) = insert_operation(doc, route, &method, path) {
                    problems.push(problem);
                }
            }
            None => problems.push(format!(
                "{} is paid but not in the OpenAPI document: give `#[paid]` its `method` and \
                 `path`, or mount it with `paid_route(method, path, handler)` (utoipa-axum's \
                 `OpenApiRouter`, aide's `ApiRouter`), or with utoipa-axum's `routes!` under a \
                 `#[utoipa::path]`",
                describe(route)
            )),
        }
    }
}

/// Adds the operation of `route` ([`shapes::operation`]) at `method path` (axum syntax);
/// fails if that slot holds another operation.
pub(crate) fn insert_operation(
    doc: &mut Value,
    route: &'static PaidRoute,
    method: &Method,
    path: &str,
) -> Result<(), String> {
    let path = openapi_path(path);
    let Some((key, _)) = METHODS.iter().find(|(_, m)| m == method) else {
        return Err(format!(
            "{} is mounted with method {method}, which an OpenAPI document cannot describe",
            describe(route)
        ));
    };
    let Some(root) = doc.as_object_mut() else {
        return Err("the OpenAPI document is not a JSON object".to_owned());
    };
    let paths = root.entry("paths").or_insert_with(|| json!({}));
    let item = paths
        .as_object_mut()
        .map(|paths| paths.entry(path.clone()).or_insert_with(|| json!({})));
    let Some(item) = item.and_then(Value::as_object_mut) else {
        return Err("the OpenAPI document's `paths` is not an object".to_owned());
    };
    if let Some(other) = item.get(*key) {
        if other["operationId"] == route.operation_id() {
            return Ok(());
        }
        return Err(format!(
            "{} is registered for {method} {path}, but the document already has operation `{}` \
             there",
            describe(route),
            other["operationId"].as_str().unwrap_or("(without id)")
        ));
    }
    item.insert((*key).to_owned(), shapes::operation(route, method, &path));
    Ok(())
}

/// The path items of the document, by path.
fn paths_mut(doc: &mut Value) -> impl Iterator<Item = (&String, &mut Value)> {
    doc.get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(Map::iter_mut)
}

/// Every operation id of the document with where it is.
fn operation_ids(doc: &Value) -> BTreeMap<String, Vec<String>> {
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let paths = doc.get("paths").and_then(Value::as_object);
    for (path, item) in paths.into_iter().flatten() {
        for (key, method) in &METHODS {
            if let Some(id) = item.get(*key).and_then(|op| op["operationId"].as_str()) {
                ids.entry(id.to_owned())
                    .or_default()
                    .push(format!("{method} {path}"));
            }
        }
    }
    ids
}

fn duplicate_operation_ids(doc: &Value, problems: &mut Vec<String>) {
    for (id, places) in operation_ids(doc) {
        if places.len() > 1 {
            problems.push(format!(
                "operation id `{id}` is used by {} operations ({}); operation ids must be unique \
                 (utoipa's default is the bare function name): set `operation_id = \"…\"` on all \
                 but one",
                places.len(),
                places.join(", ")
            ));
        }
    }
}

fn in_scope(scope: Option<&str>, module_path: &str) -> bool {
    match scope {
        None => true,
        Some(scope) => {
            module_path == scope
                || module_path
                    .strip_prefix(scope)
                    .is_some_and(|rest| rest.starts_with("::"))
        }
    }
}

/// `module::handler (file:line)`.
pub(crate) fn describe(route: &PaidRoute) -> String {
    format!(
        "`{}::{}` ({}:{})",
        route.module_path(),
        route.handler(),
        route.file(),
        route.line()
    )
}

/// A skeleton OpenAPI 3.1 document with your API's `info` and no operations, for an app that
/// uses no OpenAPI library: [`Discovery`](crate::discovery::Discovery) fills in every
/// `#[paid(method = …, path = …)]` handler with the shapes of its types.
///
/// ```
/// let doc = x402_runtime::discovery::document("Jokes", "1.0.0");
/// assert_eq!(doc["openapi"], "3.1.0");
/// assert_eq!(doc["info"]["title"], "Jokes");
/// ```
pub fn document(title: &str, version: &str) -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_a_module_prefix() {
        assert!(in_scope(None, "a::b"));
        assert!(in_scope(Some("a"), "a"));
        assert!(in_scope(Some("a"), "a::b"));
        assert!(!in_scope(Some("a"), "ab::c"));
        assert!(!in_scope(Some("a::b"), "a"));
    }

    #[test]
    fn the_402_response_names_the_header_and_the_component() {
        let response = payment_required_response();
        assert_eq!(
            response["headers"]["PAYMENT-REQUIRED"]["schema"]["type"],
            "string"
        );
        assert_eq!(
            response["content"]["application/json"]["schema"]["oneOf"][0]["$ref"],
            "#/components/schemas/X402PaymentRequired"
        );
    }

    #[test]
    fn the_components_are_the_wire_types_under_their_prefixed_names() {
        let mut doc = document("t", "1");
        add_components(&mut doc);
        let schemas = &doc["components"]["schemas"];
        for name in [
            "X402PaymentRequired",
            "X402PaymentRequiredV1",
            "X402PaymentRequirements",
            "X402PaymentRequirementsV1",
            "X402ResourceInfo",
        ] {
            assert!(schemas[name].is_object(), "{name} in {schemas}");
        }
        let required = &schemas["X402PaymentRequired"]["required"];
        assert_eq!(required, &json!(["x402Version", "resource", "accepts"]));
        assert_eq!(
            schemas["X402PaymentRequired"]["properties"]["accepts"]["items"]["$ref"],
            "#/components/schemas/X402PaymentRequirements"
        );
    }
}
