//! The bazaar extension of a paid route, derived from its finished OpenAPI operation.
//!
//! `extensions.bazaar = {info, schema}` (plus `routeTemplate` for templated paths) tells
//! facilitators and catalogues how to call the route: `schema` is a JSON Schema 2020-12 document
//! describing the input (query, path and header parameters, or the request body) and the output
//! (the 2xx JSON response), and `info` is an example that validates against it. Every
//! `#/components/...` reference is inlined, since the extension travels without the document.
//!
//! The extension is read from the document the server publishes (every stack's: utoipa, aide, or
//! the one generated from the `#[paid]` registry) and, by the paying client, from a document it
//! discovers. OpenAPI-only keywords are rewritten for JSON Schema 2020-12: `example` becomes `examples`,
//! and the numeric `format`s (`int32`, `double`, …) are dropped.
//!
//! ```
//! use http::Method;
//! use serde_json::json;
//!
//! let doc = json!({"paths": {"/weather": {"get": {
//!     "parameters": [{"in": "query", "name": "city", "required": true,
//!                     "schema": {"type": "string"}}],
//!     "responses": {"200": {"description": "ok", "content": {"application/json": {
//!         "schema": {"type": "object", "properties": {"celsius": {"type": "number"}}}}}}},
//! }}}});
//! let bazaar = x402_runtime::bazaar::extension(&doc, &Method::GET, "/weather").unwrap();
//! assert_eq!(bazaar["info"]["input"]["queryParams"], json!({"city": "example"}));
//! assert_eq!(bazaar["schema"]["properties"]["input"]["required"],
//!            json!(["type", "method", "queryParams"]));
//! ```

use http::Method;
use serde_json::{Map, Value, json};

/// Deepest chain of references inlined; a reference to a schema being inlined (a recursive
/// type) or a deeper chain becomes `{}`.
const MAX_DEPTH: usize = 32;

/// The JSON Schema dialect of the extension's `schema`.
pub const SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// `{info, schema}` of the operation at `method path` of the OpenAPI document `doc` (as JSON),
/// with `routeTemplate` when the path has parameters; `None` if there is no such operation.
pub fn extension(doc: &Value, method: &Method, path: &str) -> Option<Value> {
    let op = doc
        .get("paths")?
        .get(path)?
        .get(method.as_str().to_ascii_lowercase())?;
    let input = Input::of(doc, op, method);
    let (output_info, output_properties) = output(doc, op);
    let mut bazaar = json!({
        "info": {"input": input.info, "output": output_info},
        "schema": {
            "$schema": SCHEMA_DIALECT,
            "type": "object",
            "properties": {
                "input": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": input.required,
                    "properties": input.properties,
                },
                "output": {
                    "type": "object",
                    "required": ["type"],
                    "properties": output_properties,
                },
            },
            "required": ["input"],
        },
    });
    if path.contains('{') {
        bazaar["routeTemplate"] = json!(route_template(path));
    }
    Some(bazaar)
}

/// The `input` half of the extension: the example, and the schema's properties and required keys.
struct Input {
    info: Map<String, Value>,
    properties: Map<String, Value>,
    required: Vec<Value>,
}

impl Input {
    fn of(doc: &Value, op: &Value, method: &Method) -> Self {
        let with_body = [Method::POST, Method::PUT, Method::PATCH].contains(method);
        let family: &[&str] = if with_body {
            &["POST", "PUT", "PATCH"]
        } else {
            &["GET", "HEAD", "DELETE"]
        };
        let mut input = Input {
            info: Map::new(),
            properties: Map::new(),
            required: vec![json!("type"), json!("method")],
        };
        input.set(
            "type",
            json!("http"),
            json!({"type": "string", "const": "http"}),
        );
        input.set(
            "method",
            json!(method.as_str()),
            json!({"type": "string", "enum": family}),
        );
        for (location, key) in [
            ("query", "queryParams"),
            ("path", "pathParams"),
            ("header", "headers"),
        ] {
            let Some((schema, any_required)) = parameters(doc, op, location) else {
                continue;
            };
            let example = sample(&schema);
            if any_required {
                input.required.push(json!(key));
                input.info.insert(key.into(), example);
            } else if example.as_object().is_some_and(|o| !o.is_empty()) {
                input.info.insert(key.into(), example);
            }
            input.properties.insert(key.into(), schema);
        }
        if with_body {
            let (body_type, schema) = request_body(doc, op);
            let body_types = json!({"type": "string", "enum": ["json", "form-data", "text"]});
            input.set("bodyType", json!(body_type), body_types);
            input.set("body", sample(&schema), schema);
            input.required.extend([json!("bodyType"), json!("body")]);
        }
        input
    }

    /// `key`'s example value and its schema.
    fn set(&mut self, key: &str, example: Value, schema: Value) {
        self.info.insert(key.into(), example);
        self.properties.insert(key.into(), schema);
    }
}

/// The `output` half: its example and its schema's properties (the 2xx JSON response).
fn output(doc: &Value, op: &Value) -> (Map<String, Value>, Map<String, Value>) {
    let mut info = Map::new();
    info.insert("type".into(), json!("json"));
    let mut properties = Map::new();
    properties.insert("type".into(), json!({"type": "string"}));
    if let Some(schema) = response_schema(doc, op) {
        info.insert("example".into(), sample(&schema));
        properties.insert("example".into(), schema);
    }
    (info, properties)
}

/// `/users/{id}` → `/users/:id`.
pub fn route_template(path: &str) -> String {
    path.replace('{', ":").replace('}', "")
}

/// The operation's parameters `in: location` as one object schema, and whether any is required.
fn parameters(doc: &Value, op: &Value, location: &str) -> Option<(Value, bool)> {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for parameter in op.get("parameters")?.as_array()? {
        let parameter = resolve(doc, parameter, 0);
        if parameter.get("in").and_then(Value::as_str) != Some(location) {
            continue;
        }
        let Some(name) = parameter.get("name").and_then(Value::as_str) else {
            continue;
        };
        let mut schema = parameter
            .get("schema")
            .map_or_else(|| json!({"type": "string"}), |s| schema_of(doc, s));
        if let (Some(description), Some(object)) =
            (parameter.get("description"), schema.as_object_mut())
        {
            object
                .entry("description")
                .or_insert_with(|| description.clone());
        }
        if parameter.get("required") == Some(&Value::Bool(true)) || location == "path" {
            required.push(json!(name));
        }
        properties.insert(name.to_owned(), schema);
    }
    if properties.is_empty() {
        return None;
    }
    let any_required = !required.is_empty();
    Some((
        json!({"type": "object", "properties": properties, "required": required}),
        any_required,
    ))
}

/// The request body's `bodyType` and schema (`json` and `{"type": "object"}` without one).
fn request_body(doc: &Value, op: &Value) -> (&'static str, Value) {
    let body = op.get("requestBody").map(|b| resolve(doc, b, 0));
    let content = body
        .as_ref()
        .and_then(|b| b.get("content"))
        .and_then(Value::as_object);
    let Some(content) = content else {
        return ("json", json!({"type": "object"}));
    };
    let pick = |kind: &str| {
        content
            .iter()
            .find(|(media, _)| media_kind(media) == Some(kind))
    };
    let found = ["json", "form-data", "text"]
        .into_iter()
        .find_map(|kind| pick(kind).map(|(_, media)| (kind, media)));
    match found {
        Some((kind, media)) => {
            let schema = media.get("schema").map_or_else(
                || json!({"type": if kind == "text" { "string" } else { "object" }}),
                |s| schema_of(doc, s),
            );
            (kind, schema)
        }
        None => ("json", json!({"type": "object"})),
    }
}

fn media_kind(media: &str) -> Option<&'static str> {
    let media = media.split(';').next().unwrap_or_default().trim();
    if media == "application/json" || media.ends_with("+json") {
        Some("json")
    } else if media == "multipart/form-data" || media == "application/x-www-form-urlencoded" {
        Some("form-data")
    } else if media.starts_with("text/") {
        Some("text")
    } else {
        None
    }
}

/// The JSON schema of the first 2xx response that has one.
fn response_schema(doc: &Value, op: &Value) -> Option<Value> {
    let responses = op.get("responses")?.as_object()?;
    let mut codes: Vec<&String> = responses.keys().filter(|c| c.starts_with('2')).collect();
    codes.sort();
    codes.into_iter().find_map(|code| {
        let response = resolve(doc, &responses[code], 0);
        let content = response.get("content")?.as_object()?;
        content
            .iter()
            .find(|(media, _)| media_kind(media) == Some("json"))
            .and_then(|(_, media)| media.get("schema"))
            .map(|schema| schema_of(doc, schema))
    })
}

/// Follows a `{"$ref": "#/…"}` (not its siblings); other values are returned as they are.
fn resolve(doc: &Value, value: &Value, depth: usize) -> Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(pointer) if depth < MAX_DEPTH => match pointer.strip_prefix('#') {
            Some(pointer) => doc
                .pointer(pointer)
                .map_or_else(|| json!({}), |found| resolve(doc, found, depth + 1)),
            None => json!({}),
        },
        Some(_) => json!({}),
        None => value.clone(),
    }
}

/// A schema of the document with every reference inlined, in JSON Schema 2020-12 terms.
fn schema_of(doc: &Value, schema: &Value) -> Value {
    inline(doc, schema, &mut Vec::new())
}

/// A root schema (schemars' output: `$schema`, `$defs` and references into them) as one
/// self-contained schema: every `#/$defs/…` reference inlined, `$schema` and `$defs` dropped, so
/// it can sit inside another document.
pub fn self_contained(root: &Value) -> Value {
    let mut body = root.clone();
    if let Some(object) = body.as_object_mut() {
        object.remove("$defs");
        object.remove("definitions");
        object.remove("$schema");
    }
    schema_of(root, &body)
}

/// Keywords whose value is a schema.
const SCHEMA_KEYWORDS: &[&str] = &[
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
];
/// Keywords whose value is an array of schemas.
const SCHEMA_ARRAY_KEYWORDS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value maps names to schemas.
const SCHEMA_MAP_KEYWORDS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "dependentSchemas",
];
/// OpenAPI `format`s (and schemars' integer widths) that are not JSON Schema formats.
const OPENAPI_FORMATS: &[&str] = &[
    "int", "int8", "int16", "int32", "int64", "int128", "uint", "uint8", "uint16", "uint32",
    "uint64", "uint128", "float", "double", "byte", "binary",
];

/// `stack` holds the references being inlined, outermost first.
fn inline(doc: &Value, schema: &Value, stack: &mut Vec<String>) -> Value {
    let Some(object) = schema.as_object() else {
        return schema.clone();
    };
    if let Some(pointer) = object.get("$ref").and_then(Value::as_str) {
        let target = pointer
            .strip_prefix('#')
            .filter(|_| stack.len() < MAX_DEPTH && !stack.iter().any(|p| p == pointer))
            .and_then(|p| doc.pointer(p));
        let mut resolved = match target {
            Some(target) => {
                stack.push(pointer.to_owned());
                let resolved = inline(doc, target, stack);
                stack.pop();
                resolved
            }
            None => json!({}),
        };
        if let Some(resolved) = resolved.as_object_mut() {
            for (key, value) in object.iter().filter(|(k, _)| *k != "$ref") {
                resolved.insert(key.clone(), inline_keyword(doc, key, value, stack));
            }
        }
        return resolved;
    }
    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            "example" => {
                if !object.contains_key("examples") {
                    out.insert("examples".into(), json!([value]));
                }
            }
            "format" if value.as_str().is_some_and(|f| OPENAPI_FORMATS.contains(&f)) => {}
            "discriminator" | "xml" | "externalDocs" => {}
            _ => {
                out.insert(key.clone(), inline_keyword(doc, key, value, stack));
            }
        }
    }
    Value::Object(out)
}

fn inline_keyword(doc: &Value, key: &str, value: &Value, stack: &mut Vec<String>) -> Value {
    if SCHEMA_KEYWORDS.contains(&key) {
        inline(doc, value, stack)
    } else if SCHEMA_ARRAY_KEYWORDS.contains(&key) {
        match value.as_array() {
            Some(items) => Value::Array(items.iter().map(|s| inline(doc, s, stack)).collect()),
            None => value.clone(),
        }
    } else if SCHEMA_MAP_KEYWORDS.contains(&key) {
        match value.as_object() {
            Some(map) => Value::Object(
                map.iter()
                    .map(|(name, s)| (name.clone(), inline(doc, s, stack)))
                    .collect(),
            ),
            None => value.clone(),
        }
    } else {
        value.clone()
    }
}

/// An example value that validates against `schema` (an inlined 2020-12 schema): its
/// `examples[0]`, `default`, `const` or first `enum` value, else one built from its type (for
/// objects, from the required properties only).
pub fn sample(schema: &Value) -> Value {
    sample_at(schema, 0)
}

fn sample_at(schema: &Value, depth: usize) -> Value {
    let Some(object) = schema.as_object() else {
        return Value::Null;
    };
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(declared) = declared_example(object) {
        return declared.clone();
    }
    if let Some(composed) = sample_composition(object, depth) {
        return composed;
    }
    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("null"),
        _ if object.contains_key("properties") => "object",
        _ => return Value::Null,
    };
    match kind {
        "string" => sample_string(object),
        "integer" => json!(sample_number(object).ceil() as i64),
        "number" => json!(sample_number(object)),
        "boolean" => json!(false),
        "array" => {
            let count = object.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let item = object
                .get("items")
                .map_or(Value::Null, |i| sample_at(i, depth + 1));
            Value::Array((0..count.min(16)).map(|_| item.clone()).collect())
        }
        "object" => sample_object(object, depth),
        _ => Value::Null,
    }
}

/// A value the schema states itself: `examples[0]`, `default`, `const`, or the first `enum` value.
fn declared_example(object: &Map<String, Value>) -> Option<&Value> {
    let first = |key: &str| object.get(key).and_then(Value::as_array)?.first();
    first("examples")
        .or_else(|| object.get("default"))
        .or_else(|| object.get("const"))
        .or_else(|| first("enum"))
}

/// A sample of `oneOf` / `anyOf` (their first branch) or `allOf` (its parts merged).
fn sample_composition(object: &Map<String, Value>, depth: usize) -> Option<Value> {
    for key in ["oneOf", "anyOf"] {
        let branches = object.get(key).and_then(Value::as_array);
        if let Some(first) = branches.and_then(|b| b.first()) {
            return Some(sample_at(first, depth + 1));
        }
    }
    let all = object.get("allOf").and_then(Value::as_array)?;
    let mut merged = Map::new();
    for part in all {
        match sample_at(part, depth + 1) {
            Value::Object(fields) => merged.extend(fields),
            other if all.len() == 1 => return Some(other),
            _ => {}
        }
    }
    Some(Value::Object(merged))
}

/// An object with its required properties only.
fn sample_object(object: &Map<String, Value>, depth: usize) -> Value {
    let properties = object.get("properties").and_then(Value::as_object);
    let required = object.get("required").and_then(Value::as_array);
    let mut out = Map::new();
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        let value = properties
            .and_then(|p| p.get(name))
            .map_or(Value::Null, |s| sample_at(s, depth + 1));
        out.insert(name.to_owned(), value);
    }
    Value::Object(out)
}

fn sample_string(schema: &Map<String, Value>) -> Value {
    let by_format = match schema.get("format").and_then(Value::as_str) {
        Some("date-time") => Some("2025-01-01T00:00:00Z"),
        Some("date") => Some("2025-01-01"),
        Some("time") => Some("00:00:00Z"),
        Some("email") => Some("agent@example.com"),
        Some("uri" | "url") => Some("https://example.com"),
        Some("uuid") => Some("00000000-0000-4000-8000-000000000000"),
        _ => None,
    };
    let mut text = by_format.unwrap_or("example").to_owned();
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0);
    while (text.chars().count() as u64) < min.min(1024) {
        text.push('x');
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        text = text.chars().take(max as usize).collect();
    }
    json!(text)
}

fn sample_number(schema: &Map<String, Value>) -> f64 {
    let get = |key: &str| schema.get(key).and_then(Value::as_f64);
    let mut value = 0.0_f64;
    if let Some(min) = get("minimum") {
        value = value.max(min);
    }
    if let Some(min) = get("exclusiveMinimum").filter(|min| value <= *min) {
        value = min + 1.0;
    }
    if let Some(max) = get("maximum") {
        value = value.min(max);
    }
    if let Some(max) = get("exclusiveMaximum").filter(|max| value >= *max) {
        value = max - 1.0;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({
            "paths": {
                "/weather": {"get": {
                    "operationId": "weather",
                    "parameters": [
                        {"in": "query", "name": "city", "required": true,
                         "description": "City name", "schema": {"type": "string"}},
                        {"in": "query", "name": "units", "required": false,
                         "schema": {"type": ["string", "null"]}}
                    ],
                    "responses": {"200": {"description": "ok", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Weather"}}}}}
                }},
                "/forecast": {"post": {
                    "requestBody": {"content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Request"}}}},
                    "responses": {"200": {"description": "ok"}}
                }},
                "/users/{id}": {"delete": {
                    "parameters": [{"in": "path", "name": "id", "required": true,
                                    "schema": {"type": "integer", "format": "int64", "minimum": 1}}],
                    "responses": {"204": {"description": "gone"}}
                }},
                "/tree": {"get": {"responses": {"200": {"description": "ok", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}}}}
            },
            "components": {"schemas": {
                "Weather": {"type": "object", "required": ["city", "celsius"], "properties": {
                    "city": {"type": "string", "example": "Paris"},
                    "celsius": {"type": "number", "format": "float"},
                    "note": {"type": "string"}}},
                "Request": {"type": "object", "required": ["city", "days"], "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 7}}},
                "Node": {"type": "object", "properties": {
                    "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}
            }}
        })
    }

    #[test]
    fn a_get_with_a_query() {
        let bazaar = extension(&doc(), &Method::GET, "/weather").expect("operation");
        assert_eq!(
            bazaar["info"],
            json!({
                "input": {"type": "http", "method": "GET", "queryParams": {"city": "example"}},
                "output": {"type": "json", "example": {"city": "Paris", "celsius": 0.0}}
            })
        );
        let input = &bazaar["schema"]["properties"]["input"];
        assert_eq!(input["required"], json!(["type", "method", "queryParams"]));
        assert_eq!(
            input["properties"]["queryParams"]["properties"]["city"],
            json!({"type": "string", "description": "City name"})
        );
        let example = &bazaar["schema"]["properties"]["output"]["properties"]["example"];
        assert_eq!(example["properties"]["city"]["examples"], json!(["Paris"]));
        assert!(example["properties"]["celsius"].get("format").is_none());
        assert!(bazaar.get("routeTemplate").is_none());
        assert_eq!(bazaar["schema"]["$schema"], SCHEMA_DIALECT);
    }

    #[test]
    fn a_post_with_a_body() {
        let bazaar = extension(&doc(), &Method::POST, "/forecast").expect("operation");
        assert_eq!(
            bazaar["info"]["input"],
            json!({"type": "http", "method": "POST", "bodyType": "json",
                   "body": {"city": "example", "days": 1}})
        );
        let input = &bazaar["schema"]["properties"]["input"];
        assert_eq!(
            input["required"],
            json!(["type", "method", "bodyType", "body"])
        );
        assert_eq!(
            input["properties"]["method"]["enum"],
            json!(["POST", "PUT", "PATCH"])
        );
        assert_eq!(bazaar["info"]["output"], json!({"type": "json"}));
    }

    #[test]
    fn path_parameters_give_a_route_template() {
        let bazaar = extension(&doc(), &Method::DELETE, "/users/{id}").expect("operation");
        assert_eq!(bazaar["routeTemplate"], "/users/:id");
        assert_eq!(bazaar["info"]["input"]["pathParams"], json!({"id": 1}));
    }

    #[test]
    fn recursive_schemas_stop() {
        let bazaar = extension(&doc(), &Method::GET, "/tree").expect("operation");
        assert_eq!(bazaar["info"]["output"]["example"], json!({}));
        let text = serde_json::to_string(&bazaar).expect("json");
        assert!(!text.contains("$ref"));
        let example = &bazaar["schema"]["properties"]["output"]["properties"]["example"];
        assert_eq!(example["properties"]["children"]["items"], json!({}));
    }

    #[test]
    fn missing_operations_have_no_extension() {
        assert!(extension(&doc(), &Method::PUT, "/weather").is_none());
    }

    #[test]
    fn samples_respect_bounds() {
        assert_eq!(
            sample(&json!({"type": "string", "minLength": 10})),
            json!("examplexxx")
        );
        assert_eq!(
            sample(&json!({"type": "integer", "exclusiveMinimum": 0})),
            json!(1)
        );
        assert_eq!(
            sample(&json!({"type": "array", "minItems": 2, "items": {"type": "boolean"}})),
            json!([false, false])
        );
        assert_eq!(sample(&json!({"enum": ["b", "a"]})), json!("b"));
    }
}
