//! utoipa's side of the priced OpenAPI document (feature `openapi`, utoipa 6 and utoipa-axum 0.3).
//!
//! Most users go through [`Discovery`], which prices the document utoipa-axum's
//! `split_for_parts` returns and serves it. [`X402OpenApi::modify`] is the same pricing pass
//! ([`Pricer`]) on utoipa's own types, for apps that serve the document themselves.
//!
//! A paid handler without `#[utoipa::path]` is still documented: from the method and path given
//! to `#[paid]`, or from where [`OpenApiRouterExt::paid_route`] mounted it, with the shapes of
//! its types when they implement `schemars::JsonSchema`.

use axum::handler::Handler;
use axum::routing::{MethodFilter, on};
use http::Method;
use serde_json::{Value, json};
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use crate::discovery::Discovery;
pub use crate::discovery::document::{CheckError, PAYMENT_INFO, PAYMENT_REQUIRED_SCHEMA};
use crate::discovery::document::{PaidOperation, Pricer, describe, insert_operation};
use crate::route::PaidRoute;
use crate::route::mount::PaidHandler;
use crate::server::engine::X402;

/// The pricing pass on a utoipa document.
#[derive(Clone, Debug)]
#[must_use]
pub struct X402OpenApi {
    pricer: Pricer,
}

impl X402OpenApi {
    /// Prices the operations of `x402`'s registered handlers.
    pub fn new(x402: &X402) -> Self {
        X402OpenApi {
            pricer: Pricer::new(x402),
        }
    }

    /// As [`Pricer::scope`].
    pub fn scope(self, module_path: impl Into<String>) -> Self {
        X402OpenApi {
            pricer: self.pricer.scope(module_path),
        }
    }

    /// As [`Pricer::free_operations_security`].
    pub fn free_operations_security(self, on: bool) -> Self {
        X402OpenApi {
            pricer: self.pricer.free_operations_security(on),
        }
    }

    /// The paid handlers in scope, sorted.
    pub fn routes(&self) -> Vec<&'static PaidRoute> {
        self.pricer.routes()
    }

    /// Prices `api` in place and lists its paid operations, as [`Pricer::modify`] does.
    pub fn modify(&self, api: &mut OpenApi) -> Result<Vec<PaidOperation>, CheckError> {
        let mut problems = Vec::new();
        let paid = through_json(api, &mut problems, |doc, problems| {
            let (paid, found) = self.pricer.apply(doc);
            problems.extend(found);
            paid
        });
        if problems.is_empty() {
            Ok(paid.unwrap_or_default())
        } else {
            Err(CheckError::new(problems))
        }
    }
}

/// Runs `edit` on `api` as JSON and reads the result back into `api`.
fn through_json<T>(
    api: &mut OpenApi,
    problems: &mut Vec<String>,
    edit: impl FnOnce(&mut Value, &mut Vec<String>) -> T,
) -> Option<T> {
    let mut doc = match serde_json::to_value(&*api) {
        Ok(doc) => doc,
        Err(e) => {
            problems.push(format!("the OpenAPI document does not serialize: {e}"));
            return None;
        }
    };
    let out = edit(&mut doc, problems);
    for_utoipa(&mut doc);
    match serde_json::from_value::<OpenApi>(doc) {
        Ok(edited) => *api = edited,
        Err(e) => problems.push(format!("the priced document is not utoipa's shape: {e}")),
    }
    Some(out)
}

/// Every JSON type, which is what a schema without `type` allows.
const ANY_TYPE: [&str; 7] = [
    "array", "boolean", "integer", "null", "number", "object", "string",
];

/// Rewrites the schemas of `doc` that utoipa cannot read back into the equivalent it can: a
/// schema without `type` (`{}`, schemars' `serde_json::Value`, utoipa's own any-value) or the
/// schema `true` gets every type listed. Reaches the schemas of components, parameters, bodies,
/// responses and headers, and those nested in them.
fn for_utoipa(doc: &mut Value) {
    if let Some(components) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        components.values_mut().for_each(typed);
    }
    let items = doc
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut());
    for op in items
        .filter_map(Value::as_object_mut)
        .flat_map(|i| i.values_mut())
    {
        let Some(op) = op.as_object_mut() else {
            continue;
        };
        for (key, part) in op.iter_mut() {
            match key.as_str() {
                "parameters" => part
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.get_mut("schema"))
                    .for_each(typed),
                "requestBody" => media_schemas(part.get_mut("content")),
                "responses" => {
                    let responses = part
                        .as_object_mut()
                        .into_iter()
                        .flat_map(|r| r.values_mut());
                    for response in responses {
                        media_schemas(response.get_mut("headers"));
                        media_schemas(response.get_mut("content"));
                    }
                }
                _ => {}
            }
        }
    }
}

/// [`typed`] on the `schema` of each entry of a `content` or `headers` map.
fn media_schemas(map: Option<&mut Value>) {
    map.and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|m| m.values_mut())
        .filter_map(|entry| entry.get_mut("schema"))
        .for_each(typed);
}

/// [`for_utoipa`] on one schema and the schemas inside it.
fn typed(schema: &mut Value) {
    if schema == &Value::Bool(true) {
        *schema = json!({ "type": ANY_TYPE });
        return;
    }
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let composed = ["$ref", "allOf", "anyOf", "oneOf", "not"]
        .iter()
        .any(|key| object.contains_key(*key));
    if !composed && !object.contains_key("type") {
        object.insert("type".to_owned(), json!(ANY_TYPE));
    }
    for (key, value) in object.iter_mut() {
        match key.as_str() {
            "items" | "additionalProperties" | "not" if value.is_object() => typed(value),
            "properties" | "patternProperties" | "$defs" => {
                value
                    .as_object_mut()
                    .into_iter()
                    .flat_map(|m| m.values_mut())
                    .for_each(typed);
            }
            "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                value.as_array_mut().into_iter().flatten().for_each(typed);
            }
            _ => {}
        }
    }
}

/// Mounting a `#[paid]` handler that has no `#[utoipa::path]` on an [`OpenApiRouter`].
pub trait OpenApiRouterExt<S>: Sized {
    /// Mounts `handler` for `method` at `path` and adds its operation to the router's document
    /// (operation id, summary from the doc comment, path and query parameters, request body and
    /// the 200 response from the shapes of its types). The pricing pass then prices it like any
    /// other.
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
        let mut problems = Vec::new();
        through_json(router.get_openapi_mut(), &mut problems, |doc, problems| {
            if let Err(problem) = insert_operation(doc, route, &method, path) {
                problems.push(problem);
            }
        });
        for problem in problems {
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
    fn schemas_utoipa_cannot_read_get_every_type() {
        let mut doc = json!({
            "components": {"schemas": {"Any": {"description": "anything"}}},
            "paths": {"/x": {"post": {
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {"free": true, "list": {"type": "array", "items": {}}},
                }}}},
                "responses": {"200": {"description": "ok", "content": {"application/json": {
                    "schema": {"oneOf": [{"$ref": "#/components/schemas/Any"}]},
                }}}},
            }}},
        });
        for_utoipa(&mut doc);
        assert_eq!(doc["components"]["schemas"]["Any"]["type"], json!(ANY_TYPE));
        let body = &doc["paths"]["/x"]["post"]["requestBody"]["content"]["application/json"];
        assert_eq!(
            body["schema"]["properties"]["free"]["type"],
            json!(ANY_TYPE)
        );
        assert_eq!(
            body["schema"]["properties"]["list"]["items"]["type"],
            json!(ANY_TYPE)
        );
        assert_eq!(body["schema"]["type"], "object");
        let response = &doc["paths"]["/x"]["post"]["responses"]["200"]["content"];
        assert!(response["application/json"]["schema"].get("type").is_none());
        let mut api = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}});
        api["paths"] = doc["paths"].clone();
        api["components"] = doc["components"].clone();
        serde_json::from_value::<OpenApi>(api).expect("utoipa reads it");
    }
}
