//! Prices in the OpenAPI document (feature `openapi`, utoipa 6).
//!
//! [`X402OpenApi::modify`] runs on the finished document (after utoipa-axum's
//! `split_for_parts`) and finds each registered paid handler by its operation id, so `nest`
//! prefixes and attribute order do not matter. Every paid operation gets:
//!
//! - `x-payment-info`: the price in decimal with its ISO 4217 currency (`"0.001"` `"USD"`), and
//!   under `protocols[0].x402` the token price and the exact offers of the live 402, from
//!   [`X402::requirements`], the one function both use;
//! - a `402` response with the `PAYMENT-REQUIRED` header and the `X402PaymentRequired` schema;
//! - `security: []` unless the document declares security of its own;
//! - its price as the last paragraph of its description, for the docs page.
//!
//! A paid handler without `#[utoipa::path]` is still documented: from the method and path given
//! to `#[paid]`, or from where [`OpenApiRouterExt::paid_route`] mounted it. Most users go
//! through [`Discovery`](crate::openapi::discovery::Discovery), which also serves the document.

pub mod bazaar;
pub mod discovery;

use std::collections::BTreeMap;
use std::fmt;

use axum::handler::Handler;
use axum::routing::{MethodFilter, on};
use http::Method;
use serde_json::{Value, json};
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{Object, OneOfBuilder, Ref, Type};
use utoipa::openapi::{
    Components, ContentBuilder, HeaderBuilder, OpenApi, Required, ResponseBuilder,
};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::base::ConfigError;
use crate::price::Pricing;
use crate::proto::{PaymentRequired, PaymentRequiredV1};
use crate::route::mount::PaidHandler;
use crate::route::{PaidRoute, routes};
use crate::server::engine::X402;

/// The extension key of the price on an operation.
pub const PAYMENT_INFO: &str = "x-payment-info";

/// Name of the component the 402 response's body and header refer to.
pub const PAYMENT_REQUIRED_SCHEMA: &str = "X402PaymentRequired";

/// The title utoipa-axum's `OpenApiRouter::new()` puts in `info` (with its author's contact).
const UTOIPA_AXUM_TITLE: &str = "utoipa-axum";

/// The Modify pass that prices the paid operations of a utoipa document.
#[derive(Clone, Debug)]
#[must_use]
pub struct X402OpenApi {
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

impl X402OpenApi {
    /// Prices the operations of `x402`'s registered handlers.
    pub fn new(x402: &X402) -> Self {
        X402OpenApi {
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

    /// Prices `api` in place and lists its paid operations. Fails, after doing what it could,
    /// with every problem at once: a paid handler missing from the document, an operation id
    /// used twice, a route without an offer under the configuration, or utoipa-axum's own
    /// `info` left in the document.
    pub fn modify(&self, api: &mut OpenApi) -> Result<Vec<PaidOperation>, CheckError> {
        let (paid, problems) = self.apply(api);
        if problems.is_empty() {
            Ok(paid)
        } else {
            Err(CheckError::new(problems))
        }
    }

    pub(crate) fn apply(&self, api: &mut OpenApi) -> (Vec<PaidOperation>, Vec<String>) {
        let mut problems = Vec::new();
        if api.info.title == UTOIPA_AXUM_TITLE {
            problems.push(
                "the document's `info` is utoipa-axum's own (title \"utoipa-axum\" and its \
                 author's contact): start from `OpenApiRouter::with_openapi(…)` with your \
                 crate's title, version and contact instead of `OpenApiRouter::new()`"
                    .to_owned(),
            );
        }
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
        self.add_missing(api, &by_id, &mut problems);
        duplicate_operation_ids(api, &mut problems);

        let global_security = api.security.as_ref().is_some_and(|s| !s.is_empty());
        let mut paid = Vec::new();
        for (path, item) in api.paths.paths.iter_mut() {
            for (method, slot) in slots(item) {
                let Some(op) = slot.as_mut() else { continue };
                // A route id registered twice is already a problem; pricing either would guess.
                let route = match op.operation_id.as_deref().and_then(|id| by_id.get(id)) {
                    Some(same) if same.len() == 1 => Some(same[0]),
                    _ => None,
                };
                match route {
                    Some(route) => match self.decorate(op, route, global_security) {
                        Ok(()) => paid.push(PaidOperation {
                            route,
                            method,
                            path: path.clone(),
                        }),
                        Err(e) => problems.push(e.to_string()),
                    },
                    None => {
                        if self.free_security && op.security.is_none() && !global_security {
                            op.security = Some(Vec::new());
                        }
                    }
                }
            }
        }
        add_components(api);
        (paid, problems)
    }

    /// Adds an operation for each route absent from the document that knows its method and
    /// path; reports the others.
    fn add_missing(
        &self,
        api: &mut OpenApi,
        by_id: &BTreeMap<&'static str, Vec<&'static PaidRoute>>,
        problems: &mut Vec<String>,
    ) {
        let documented = operation_ids(api);
        for same in by_id.values() {
            for route in same {
                if documented.contains_key(route.operation_id()) {
                    continue;
                }
                let known = route
                    .method()
                    .and_then(|m| m.parse::<Method>().ok())
                    .zip(route.path());
                match known {
                    Some((method, path)) => {
                        if let Err(problem) = insert_operation(api, route, &method, path) {
                            problems.push(problem);
                        }
                    }
                    None => problems.push(format!(
                        "{} is paid but not in the OpenAPI document: mount it with utoipa-axum's \
                         `routes!` under a `#[utoipa::path]`, or with `paid_route(method, path, \
                         handler)`, or give `#[paid]` its `method` and `path`",
                        describe(route)
                    )),
                }
            }
        }
    }

    fn decorate(
        &self,
        op: &mut Operation,
        route: &'static PaidRoute,
        global_security: bool,
    ) -> Result<(), ConfigError> {
        let info = payment_info(&self.x402, route)?;
        op.extensions
            .get_or_insert_with(Default::default)
            .insert(PAYMENT_INFO.to_owned(), info);
        op.responses
            .responses
            .insert("402".to_owned(), RefOr::T(payment_required_response()));
        if op.security.is_none() && !global_security {
            op.security = Some(Vec::new());
        }
        let note = price_note(&self.x402, route);
        op.description = Some(match op.description.take() {
            Some(text) if !text.trim().is_empty() => format!("{}\n\n{note}", text.trim_end()),
            _ => note,
        });
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
    for offer in x402.requirements(route).unwrap_or_default() {
        if !networks.contains(&offer.network) {
            networks.push(offer.network);
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
    } else {
        "per call"
    };
    format!(
        "**Price: {pricing}**{also} {per}, paid with x402 v2 (scheme `exact`, network {}). \
         Without payment the call answers 402 with the offers in the `PAYMENT-REQUIRED` header.",
        networks.join(", ")
    )
}

/// The `402` response of a paid operation.
fn payment_required_response() -> utoipa::openapi::Response {
    let header_schema = Object::builder()
        .schema_type(Type::String)
        .content_encoding("base64")
        .content_media_type("application/json")
        .build();
    let body = OneOfBuilder::new()
        .item(Ref::from_schema_name(PAYMENT_REQUIRED_SCHEMA))
        .item(Ref::from_schema_name(
            <PaymentRequiredV1 as ToSchema>::name(),
        ))
        .build();
    ResponseBuilder::new()
        .description(
            "Payment Required (x402 v2). The PAYMENT-REQUIRED header carries the \
             X402PaymentRequired object, base64-encoded. The body carries the same offers for \
             x402 v1 clients (X402PaymentRequiredV1), or the v2 object when no offered network \
             has a v1 name.",
        )
        .header(
            "PAYMENT-REQUIRED",
            HeaderBuilder::new()
                .schema(Some(header_schema))
                .description(Some("Base64-encoded JSON X402PaymentRequired"))
                .build(),
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Schema::OneOf(body)))
                .build(),
        )
        .build()
}

/// Adds the `X402*` schemas the 402 responses refer to.
fn add_components(api: &mut OpenApi) {
    let components = api.components.get_or_insert_with(Components::new);
    let mut schemas: Vec<(String, RefOr<Schema>)> = vec![
        (
            <PaymentRequired as ToSchema>::name().into_owned(),
            <PaymentRequired as PartialSchema>::schema(),
        ),
        (
            <PaymentRequiredV1 as ToSchema>::name().into_owned(),
            <PaymentRequiredV1 as PartialSchema>::schema(),
        ),
    ];
    <PaymentRequired as ToSchema>::schemas(&mut schemas);
    <PaymentRequiredV1 as ToSchema>::schemas(&mut schemas);
    components.schemas.extend(schemas);
}

/// Adds an operation for `route` at `method path`; fails if that slot holds another operation.
fn insert_operation(
    api: &mut OpenApi,
    route: &'static PaidRoute,
    method: &Method,
    path: &str,
) -> Result<(), String> {
    let path = openapi_path(path);
    let item = api.paths.paths.entry(path.clone()).or_default();
    let Some(slot) = slot_mut(item, method) else {
        return Err(format!(
            "{} is mounted with method {method}, which an OpenAPI document cannot describe",
            describe(route)
        ));
    };
    if let Some(other) = slot {
        if other.operation_id.as_deref() == Some(route.operation_id()) {
            return Ok(());
        }
        return Err(format!(
            "{} is registered for {method} {path}, but the document already has operation `{}` \
             there",
            describe(route),
            other.operation_id.as_deref().unwrap_or("(without id)")
        ));
    }
    *slot = Some(generated_operation(route, &path));
    Ok(())
}

/// The operation of a handler that has no `#[utoipa::path]`.
fn generated_operation(route: &PaidRoute, path: &str) -> Operation {
    let mut op = Operation::new();
    op.operation_id = Some(route.operation_id().to_owned());
    op.summary = Some(route.description().unwrap_or(route.handler()).to_owned());
    let parameters: Vec<_> = path_parameters(path)
        .map(|name| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(Object::with_type(Type::String)))
                .build()
        })
        .map(RefOr::T)
        .collect();
    if !parameters.is_empty() {
        op.parameters = Some(parameters);
    }
    op.responses.responses.insert(
        "200".to_owned(),
        RefOr::T(
            ResponseBuilder::new()
                .description("The paid response.")
                .build(),
        ),
    );
    op
}

/// Axum's `{*rest}` is OpenAPI's `{rest}`; everything else is the same syntax.
fn openapi_path(path: &str) -> String {
    let path = path.replace("{*", "{");
    if path.is_empty() {
        "/".to_owned()
    } else {
        path
    }
}

/// The `{name}` parameters of an OpenAPI path template.
pub(crate) fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}

/// Every operation id of the document with where it is.
fn operation_ids(api: &mut OpenApi) -> BTreeMap<String, Vec<String>> {
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, item) in api.paths.paths.iter_mut() {
        for (method, slot) in slots(item) {
            if let Some(id) = slot.as_ref().and_then(|op| op.operation_id.clone()) {
                ids.entry(id).or_default().push(format!("{method} {path}"));
            }
        }
    }
    ids
}

fn duplicate_operation_ids(api: &mut OpenApi, problems: &mut Vec<String>) {
    for (id, places) in operation_ids(api) {
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

/// The operation slots of a path item, with their methods.
fn slots(item: &mut PathItem) -> [(Method, &mut Option<Operation>); 8] {
    [
        (Method::GET, &mut item.get),
        (Method::PUT, &mut item.put),
        (Method::POST, &mut item.post),
        (Method::DELETE, &mut item.delete),
        (Method::OPTIONS, &mut item.options),
        (Method::HEAD, &mut item.head),
        (Method::PATCH, &mut item.patch),
        (Method::TRACE, &mut item.trace),
    ]
}

fn slot_mut<'a>(item: &'a mut PathItem, method: &Method) -> Option<&'a mut Option<Operation>> {
    slots(item)
        .into_iter()
        .find(|(m, _)| m == method)
        .map(|(_, slot)| slot)
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

/// Mounting a `#[paid]` handler that has no `#[utoipa::path]` on an [`OpenApiRouter`].
pub trait OpenApiRouterExt<S>: Sized {
    /// Mounts `handler` for `method` at `path` and adds its operation to the router's document
    /// (operation id, summary from the doc comment, path parameters, a 200 response). The
    /// Modify pass then prices it like any other.
    ///
    /// # Panics
    ///
    /// If axum cannot route `method` (it routes the eight standard methods besides CONNECT) or
    /// rejects `path`, as `Router::route` does.
    fn paid_route<H, T>(self, method: Method, path: &str, handler: H) -> Self
    where
        H: Handler<T, S> + PaidHandler,
        T: 'static;
}

impl<S> OpenApiRouterExt<S> for OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    fn paid_route<H, T>(self, method: Method, path: &str, handler: H) -> Self
    where
        H: Handler<T, S> + PaidHandler,
        T: 'static,
    {
        let route = handler.paid_route();
        let Ok(filter) = MethodFilter::try_from(method.clone()) else {
            panic!(
                "x402: axum cannot route the method {method} of {}",
                describe(route)
            );
        };
        let mut router = self.route(path, on(filter, handler));
        if let Err(problem) = insert_operation(router.get_openapi_mut(), route, &method, path) {
            // Reported again by the startup check; logged here for where it happened.
            tracing::warn!("x402: {problem}");
        }
        router
    }
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
    fn paths_and_parameters() {
        assert_eq!(openapi_path("/files/{*rest}"), "/files/{rest}");
        assert_eq!(openapi_path(""), "/");
        let names: Vec<&str> = path_parameters("/users/{id}/files/{name}").collect();
        assert_eq!(names, ["id", "name"]);
        assert_eq!(path_parameters("/weather").count(), 0);
    }

    #[test]
    fn the_402_response_names_the_header_and_the_component() {
        let response = serde_json::to_value(payment_required_response()).expect("json");
        assert_eq!(
            response["headers"]["PAYMENT-REQUIRED"]["schema"]["type"],
            "string"
        );
        assert_eq!(
            response["content"]["application/json"]["schema"]["oneOf"][0]["$ref"],
            "#/components/schemas/X402PaymentRequired"
        );
    }
}
