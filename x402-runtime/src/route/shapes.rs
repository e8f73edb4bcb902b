//! What a paid route takes and returns, read from its handler's own types.
//!
//! `#[paid]` names the types its handler extracts (`Query<T>`, `Path<T>`, `Json<T>`, `Form<T>`)
//! and returns (`Json<U>`, also inside a `Result`), and the runtime asks schemars (feature
//! `schemars`) for their JSON Schemas. A type that does not implement `schemars::JsonSchema`,
//! or any type without the feature, simply has no shape: the handler compiles the same.
//!
//! The shapes become an OpenAPI operation ([`operation`]) for routes no OpenAPI library
//! documents, and, through it, the bazaar extension every 402 of the route carries
//! ([`bazaar`]), with or without a published document.

use std::marker::PhantomData;

use http::Method;
use serde_json::{Map, Value, json};

use crate::route::PaidRoute;

/// How a handler's body is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyKind {
    /// `Json<T>`: `application/json`.
    Json,
    /// `Form<T>`: `application/x-www-form-urlencoded` (the query string for GET, HEAD, DELETE).
    Form,
}

/// The JSON Schemas (2020-12, self-contained) of what a handler extracts and returns.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Shapes {
    /// The `Query<T>` type's schema.
    pub query: Option<Value>,
    /// The `Path<T>` type's schema.
    pub path: Option<Value>,
    /// The body's kind and its type's schema.
    pub body: Option<(BodyKind, Value)>,
    /// The `Json<U>` return type's schema.
    pub output: Option<Value>,
}

impl Shapes {
    /// Whether no type has a shape.
    pub fn is_empty(&self) -> bool {
        self.query.is_none() && self.path.is_none() && self.body.is_none() && self.output.is_none()
    }

    /// The method a route with these shapes is called with when nothing says: POST with a
    /// JSON body, else GET.
    fn default_method(&self) -> Method {
        match self.body {
            Some((BodyKind::Json, _)) => Method::POST,
            _ => Method::GET,
        }
    }
}

/// Asks for `T`'s schema; the expansion calls `(&Probe::<T>::NEW).schema()` with both traits
/// in scope, which picks [`WithSchema`] when `T: JsonSchema` and [`NoSchema`] otherwise.
#[doc(hidden)]
pub struct Probe<T>(PhantomData<fn() -> T>);

impl<T> Probe<T> {
    #[doc(hidden)]
    pub const NEW: Self = Probe(PhantomData);
}

/// `T`'s schema (feature `schemars`, `T: JsonSchema`).
#[doc(hidden)]
pub trait WithSchema {
    /// The schema.
    fn schema(&self) -> Option<Value>;
}

#[cfg(feature = "schemars")]
impl<T: schemars::JsonSchema> WithSchema for Probe<T> {
    fn schema(&self) -> Option<Value> {
        Some(schema_for::<T>())
    }
}

/// No schema: the fallback for types without one.
#[doc(hidden)]
pub trait NoSchema {
    /// `None`.
    fn schema(&self) -> Option<Value>;
}

impl<T> NoSchema for &Probe<T> {
    fn schema(&self) -> Option<Value> {
        None
    }
}

/// `T`'s JSON Schema 2020-12, every definition inlined, without the root's title.
#[cfg(feature = "schemars")]
pub(crate) fn schema_for<T: schemars::JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut root = generator.into_root_schema_for::<T>();
    // The root's `title` is the Rust type's name (`"string"` for a `String`): nothing a caller
    // sends or reads.
    root.remove("title");
    crate::bazaar::self_contained(root.as_value())
}

/// The OpenAPI operation of `route` at `method path` (OpenAPI path syntax) built from its
/// shapes: operation id, summary, path and query parameters, request body, and a 200 response
/// with the output's schema. Without shapes, path parameters are strings and the 200 response
/// has no content.
pub(crate) fn operation(route: &PaidRoute, method: &Method, path: &str) -> Value {
    let shapes = route.shapes();
    let mut parameters: Vec<Value> = Vec::new();
    let mut names: Vec<String> = path_parameters(path).map(str::to_owned).collect();
    if names.is_empty() {
        // No template (a route whose path nobody knows): the fields of its `Path<T>`.
        names = properties(shapes.path.as_ref())
            .map(|(name, _)| name.clone())
            .collect();
    }
    for (index, name) in names.iter().enumerate() {
        let schema = path_schema(shapes.path.as_ref(), name, index, names.len());
        parameters.push(parameter("path", name, true, schema));
    }
    let with_body = [Method::POST, Method::PUT, Method::PATCH].contains(method);
    let query = match &shapes.body {
        Some((BodyKind::Form, form)) if !with_body => Some(form),
        _ => shapes.query.as_ref(),
    };
    let required = required(query);
    for (name, schema) in properties(query) {
        let needed = required.contains(&name.as_str());
        parameters.push(parameter("query", name, needed, schema.clone()));
    }
    let mut op = json!({
        "operationId": route.operation_id(),
        "summary": route.description().unwrap_or(route.handler()),
        "responses": {"200": response(shapes.output.as_ref())},
    });
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    if let (true, Some((kind, schema))) = (with_body, &shapes.body) {
        let media = match kind {
            BodyKind::Json => "application/json",
            BodyKind::Form => "application/x-www-form-urlencoded",
        };
        op["requestBody"] = json!({"required": true, "content": {media: {"schema": schema}}});
    }
    op
}

/// The bazaar extension of `route` from its shapes alone (no document): at the route's method
/// and path when `#[paid]` names them, else at POST (a JSON body) or GET. `None` without shapes.
pub(crate) fn bazaar(route: &PaidRoute) -> Option<Value> {
    let shapes = route.shapes();
    if shapes.is_empty() {
        return None;
    }
    let method = route
        .method()
        .and_then(|m| m.parse::<Method>().ok())
        .unwrap_or_else(|| shapes.default_method());
    let path = openapi_path(route.path().unwrap_or("/"));
    let op = operation(route, &method, &path);
    let doc = json!({"paths": {path.clone(): {method.as_str().to_ascii_lowercase(): op}}});
    crate::bazaar::extension(&doc, &method, &path)
}

fn parameter(location: &str, name: &str, required: bool, schema: Value) -> Value {
    let mut parameter = json!({"in": location, "name": name, "required": required});
    if let Some(description) = schema.get("description") {
        parameter["description"] = description.clone();
    }
    parameter["schema"] = schema;
    parameter
}

fn response(output: Option<&Value>) -> Value {
    match output {
        Some(schema) => json!({
            "description": "The paid response.",
            "content": {"application/json": {"schema": schema}},
        }),
        None => json!({"description": "The paid response."}),
    }
}

/// The schema of path parameter `name` (number `index` of `count`): the struct's field, the
/// tuple's item, or the whole type for a single parameter; a string when unknown.
fn path_schema(shape: Option<&Value>, name: &str, index: usize, count: usize) -> Value {
    let Some(shape) = shape else {
        return json!({"type": "string"});
    };
    if let Some(field) = shape.get("properties").and_then(|p| p.get(name)) {
        return field.clone();
    }
    if let Some(item) = shape.get("prefixItems").and_then(|items| items.get(index)) {
        return item.clone();
    }
    if count == 1 && shape.get("properties").is_none() {
        return shape.clone();
    }
    json!({"type": "string"})
}

/// An object schema's properties, in order.
fn properties(shape: Option<&Value>) -> impl Iterator<Item = (&String, &Value)> {
    shape
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(Map::iter)
}

fn required(shape: Option<&Value>) -> Vec<&str> {
    shape
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Axum's `{*rest}` is OpenAPI's `{rest}`; everything else is the same syntax.
pub(crate) fn openapi_path(path: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_parameters() {
        assert_eq!(openapi_path("/files/{*rest}"), "/files/{rest}");
        assert_eq!(openapi_path(""), "/");
        let names: Vec<&str> = path_parameters("/users/{id}/files/{name}").collect();
        assert_eq!(names, ["id", "name"]);
        assert_eq!(path_parameters("/weather").count(), 0);
    }

    #[test]
    fn path_parameters_take_the_field_the_item_or_the_whole_type() {
        let object = json!({"type": "object", "properties": {"id": {"type": "integer"}}});
        assert_eq!(
            path_schema(Some(&object), "id", 0, 1),
            json!({"type": "integer"})
        );
        let tuple =
            json!({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]});
        assert_eq!(
            path_schema(Some(&tuple), "n", 1, 2),
            json!({"type": "integer"})
        );
        let single = json!({"type": "integer", "format": "uint32"});
        assert_eq!(path_schema(Some(&single), "n", 0, 1), single);
        assert_eq!(path_schema(None, "n", 0, 1), json!({"type": "string"}));
        assert_eq!(
            path_schema(Some(&single), "n", 1, 2),
            json!({"type": "string"})
        );
    }

    fn form_route(shapes: fn() -> Shapes) -> PaidRoute {
        PaidRoute {
            handler: "search",
            module_path: "shop",
            operation_id: "search",
            pricing: crate::price::Pricing::Fixed(crate::price::Price::from_atomic(
                1000,
                crate::price::Currency::Usdc,
            )),
            currencies: &[],
            networks: &[],
            pay_to: None,
            description: None,
            max_timeout_seconds: None,
            settle: crate::route::SettleTiming::AfterSuccess,
            method: None,
            path: None,
            shapes,
            pay_page: true,
            file: file!(),
            line: line!(),
        }
    }

    #[test]
    fn a_form_is_the_query_on_get_and_the_body_on_post() {
        let route = form_route(|| Shapes {
            body: Some((
                BodyKind::Form,
                json!({"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}),
            )),
            ..Shapes::default()
        });
        let get = operation(&route, &Method::GET, "/search");
        assert_eq!(
            get["parameters"],
            json!([{"in": "query", "name": "q", "required": true, "schema": {"type": "string"}}])
        );
        assert!(get.get("requestBody").is_none());
        let post = operation(&route, &Method::POST, "/search");
        assert!(post.get("parameters").is_none());
        let content = &post["requestBody"]["content"];
        assert_eq!(
            content["application/x-www-form-urlencoded"]["schema"]["required"],
            json!(["q"])
        );
        // Nothing says the method: a form is sent as the query of a GET.
        let bazaar = bazaar(&route).expect("shapes make a bazaar extension");
        assert_eq!(bazaar["info"]["input"]["method"], "GET");
    }

    #[test]
    fn the_probe_falls_back_to_no_schema() {
        #[allow(unused_imports)]
        use super::{NoSchema as _, WithSchema as _};
        struct Opaque;
        assert_eq!((&Probe::<Opaque>::NEW).schema(), None);
    }

    #[cfg(feature = "schemars")]
    #[test]
    // The borrow is what picks the fallback for types without a schema; here it is not needed.
    #[allow(clippy::needless_borrow)]
    fn the_probe_asks_schemars_when_the_type_has_a_schema() {
        #[allow(unused_imports)]
        use super::{NoSchema as _, WithSchema as _};
        #[derive(schemars::JsonSchema)]
        #[allow(dead_code)]
        struct City {
            /// The city's name.
            name: String,
            inner: Inner,
        }
        #[derive(schemars::JsonSchema)]
        #[allow(dead_code)]
        struct Inner {
            days: u8,
        }
        let schema = (&Probe::<City>::NEW).schema().expect("a schema");
        assert_eq!(
            schema["properties"]["name"]["description"],
            "The city's name."
        );
        assert_eq!(
            schema["properties"]["inner"]["properties"]["days"]["type"],
            "integer"
        );
        assert!(schema.get("$defs").is_none() && schema.get("$schema").is_none());
        assert_eq!(schema["required"], json!(["name", "inner"]));
    }
}
