//! The three ways to publish how a paid route is called, side by side: utoipa (the weather
//! example, tests/discovery.rs), aide (`example-aide`) and no OpenAPI library, the shapes from
//! schemars alone (`example-shapes`). For aide and for the shapes: the third-party readers
//! (@agentcash/discovery, mppx, ajv 2020-12 strict) accept the document and the 402s, and
//! agentcash lists every paid route with its price and no error. Then: the 402 carries the
//! shapes without any document, and utoipa's and schemars' schemas of the same Rust types agree
//! on what a caller needs.

mod support;

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::Query;
use axum::http::Method;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use support::{PAY_TO, challenge_of, http, npx_next_to, run_child, serve, validators};
use x402_runtime::discovery::Discovery;
use x402_runtime::{X402, X402Config, paid};

/// A paywall on Base Sepolia paying [`PAY_TO`]. Its facilitator is never called here.
fn paywall() -> X402 {
    let config = X402Config::builder()
        .network("eip155:84532")
        .pay_to(PAY_TO)
        .facilitator_url("http://127.0.0.1:9")
        .build()
        .expect("config");
    X402::new(config).expect("paywall")
}

async fn aide_api() -> String {
    serve(example_aide::app(&paywall()).expect("the startup check passes")).await
}

async fn shapes_api() -> String {
    serve(example_shapes::app(&paywall()).expect("the startup check passes")).await
}

/// An unpaid call: no query, no body.
async fn unpaid(origin: &str, method: &Method, path: &str) -> reqwest::Response {
    http()
        .request(method.clone(), format!("{origin}{path}"))
        .send()
        .await
        .expect("request")
}

/// Runs interop/scripts/discovery.mjs on `origin` and checks its report: the routes as
/// agentcash reads them (`(METHOD, path, authMode, price)`), and for every paid one a 402 whose
/// challenge agentcash accepts and whose bazaar info validates against its schema.
async fn readers_accept(test: &str, origin: &str, routes: &[(&str, &str, &str, &str)]) {
    let Some((interop, node)) = validators(test).await else {
        return;
    };
    let script = interop.join("scripts/discovery.mjs");
    let stdout = run_child(&node, &[script.to_str().expect("utf-8"), origin], &interop).await;
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("report is not JSON ({e}): {stdout}"));
    eprintln!("discovery.mjs report:\n{stdout}");
    assert_eq!(report["mppx"], json!([]), "mppx findings");
    let found = &report["origin"];
    assert_eq!(found["found"], true, "{found}");
    assert_eq!(found["source"], "openapi");
    let listed: Vec<(String, String, String, String)> = found["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| {
            let text = |key: &str| e[key].as_str().unwrap_or_default().to_owned();
            (
                text("method"),
                text("path"),
                text("authMode"),
                text("price"),
            )
        })
        .collect();
    let expected: Vec<(String, String, String, String)> = routes
        .iter()
        .map(|(m, p, a, price)| {
            (
                m.to_string(),
                p.to_string(),
                a.to_string(),
                price.to_string(),
            )
        })
        .collect();
    assert_eq!(listed, expected);

    let endpoints = report["endpoints"].as_array().expect("endpoints");
    let paid = routes.iter().filter(|r| r.2 == "paid").count();
    assert_eq!(endpoints.len(), paid, "{endpoints:?}");
    for endpoint in endpoints {
        let name = format!("{} {}", endpoint["method"], endpoint["path"]);
        assert_eq!(endpoint["status"], 402, "{name}");
        assert_eq!(
            endpoint["paymentRequired"],
            json!({"valid": true, "issues": []}),
            "{name}: agentcash's PaymentRequired validator (input and output schemas required)"
        );
        assert_eq!(
            endpoint["bazaar"],
            json!({"valid": true, "errors": []}),
            "{name}: bazaar info against its schema (ajv, 2020-12, strict)"
        );
        for advisory in endpoint["check"].as_array().expect("advisories") {
            assert_eq!(advisory["authMode"], "paid", "{name}: {advisory}");
            assert_eq!(advisory["hasInputSchema"], true, "{name}: {advisory}");
            assert_eq!(advisory["hasOutputSchema"], true, "{name}: {advisory}");
        }
    }
}

/// `npx @agentcash/discovery ORIGIN --json`: ok, no error-level finding, and the paid
/// resources with their prices.
async fn agentcash_lists(test: &str, origin: &str, paid: &[(&str, &str)]) {
    let Some((interop, node)) = validators(test).await else {
        return;
    };
    let npx = npx_next_to(&node);
    let json = run_child(
        &npx,
        &["--no", "@agentcash/discovery@1.7.5", origin, "--json"],
        &interop,
    )
    .await;
    let result: Value = serde_json::from_str(&json).expect("json");
    eprintln!("agentcash: {result}");
    assert_eq!(result["ok"], true, "{result}");
    let errors: Vec<&Value> = result["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter(|w| w["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "error-level findings: {errors:?}");
    let listed: Vec<(&str, &str)> = result["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| r["authHint"] == "paid")
        .map(|r| {
            assert_eq!(r["protocols"], json!(["x402"]), "{r}");
            (
                r["path"].as_str().expect("path"),
                r["priceHint"].as_str().expect("price"),
            )
        })
        .collect();
    assert_eq!(listed, paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aide_readers_accept_the_document_and_the_402s() {
    let origin = aide_api().await;
    let routes = [
        ("GET", "/health", "unprotected", ""),
        ("GET", "/stock", "paid", "0.002 USD"),
        ("POST", "/summarize", "paid", "0.01 USD"),
    ];
    readers_accept(
        "aide_readers_accept_the_document_and_the_402s",
        &origin,
        &routes,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aide_agentcash_lists_the_paid_routes_with_their_prices() {
    let origin = aide_api().await;
    let paid = [("/stock", "0.002 USD"), ("/summarize", "0.01 USD")];
    agentcash_lists(
        "aide_agentcash_lists_the_paid_routes_with_their_prices",
        &origin,
        &paid,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shapes_readers_accept_the_document_and_the_402s() {
    let origin = shapes_api().await;
    let routes = [
        ("GET", "/joke", "paid", "0.001 USD"),
        ("POST", "/story", "paid", "0.005 USD"),
    ];
    readers_accept(
        "shapes_readers_accept_the_document_and_the_402s",
        &origin,
        &routes,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shapes_agentcash_lists_the_paid_routes_with_their_prices() {
    let origin = shapes_api().await;
    let paid = [("/joke", "0.001 USD"), ("/story", "0.005 USD")];
    agentcash_lists(
        "shapes_agentcash_lists_the_paid_routes_with_their_prices",
        &origin,
        &paid,
    )
    .await;
}

/// The aide document: the paid operations priced with aide's own free route beside them, the
/// shapes of the handlers' types in the parameters, body and response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aide_s_document_carries_the_prices_and_the_shapes() {
    let origin = aide_api().await;
    let doc: Value = http()
        .get(format!("{origin}/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["info"]["contact"]["email"], example_aide::CONTACT_EMAIL);
    let stock = &doc["paths"]["/stock"]["get"];
    assert_eq!(stock["operationId"], "stock");
    assert_eq!(
        stock["x-payment-info"]["price"],
        json!({"mode": "fixed", "currency": "USD", "amount": "0.002"})
    );
    assert_eq!(stock["security"], json!([]));
    let symbol = &stock["parameters"][0];
    assert_eq!(
        (&symbol["in"], &symbol["name"], &symbol["required"]),
        (&json!("query"), &json!("symbol"), &json!(true)),
        "{stock}"
    );
    assert_eq!(symbol["description"], "Ticker symbol, e.g. `ACME`.");
    assert_eq!(symbol["schema"]["type"], "string");
    assert_eq!(
        stock["responses"]["402"]["content"]["application/json"]["schema"]["oneOf"][0]["$ref"],
        "#/components/schemas/X402PaymentRequired"
    );
    assert!(doc["components"]["schemas"]["X402PaymentRequired"].is_object());
    let summarize = &doc["paths"]["/summarize"]["post"];
    let body = &summarize["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["required"], json!(["text", "max_words"]));
    assert_eq!(body["properties"]["max_words"]["maximum"], 100);
    let output = &summarize["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(output["required"], json!(["summary", "words"]));
    // aide documents the free route itself; it stays open.
    assert_eq!(doc["paths"]["/health"]["get"]["security"], json!([]));
    assert!(
        doc["paths"]["/health"]["get"]
            .get("x-payment-info")
            .is_none()
    );

    let llms = http()
        .get(format!("{origin}/llms.txt"))
        .send()
        .await
        .expect("GET /llms.txt")
        .text()
        .await
        .expect("text");
    assert!(
        llms.contains("  - json body: `max_words` integer (required), `text` string (required); returns JSON: `summary`, `words`"),
        "{llms}"
    );
}

/// Without any document the 402 already carries the shapes, and publishing the document does
/// not change them: one bazaar for both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_402_carries_the_shapes_with_or_without_a_document() {
    let bare = paywall();
    let router = axum::Router::new()
        .route("/joke", axum::routing::get(example_shapes::joke))
        .route("/story", post(example_shapes::story))
        .layer(bare.layer());
    let without = serve(router).await;
    let with = shapes_api().await;
    for (method, path) in [(Method::GET, "/joke"), (Method::POST, "/story")] {
        let plain = challenge_of(&unpaid(&without, &method, path).await);
        let published = challenge_of(&unpaid(&with, &method, path).await);
        let bazaar = &plain.extensions.as_ref().expect("extensions")["bazaar"];
        assert_eq!(
            bazaar,
            &published.extensions.as_ref().expect("extensions")["bazaar"],
            "{method} {path}"
        );
        assert_eq!(bazaar["info"]["input"]["method"], method.as_str());
        assert!(bazaar["schema"]["properties"]["output"]["properties"]["example"].is_object());
    }
    let joke = challenge_of(&unpaid(&without, &Method::GET, "/joke").await);
    let input = &joke.extensions.expect("extensions")["bazaar"]["schema"]["properties"]["input"];
    assert_eq!(
        input["properties"]["queryParams"]["required"],
        json!(["topic"])
    );
    assert_eq!(
        input["properties"]["queryParams"]["properties"]["topic"]["description"],
        "What the joke is about."
    );
}

/// One set of Rust types, documented by utoipa (`#[utoipa::path]`) and by schemars (the shapes).
#[allow(dead_code, unreachable_pub)]
mod agree {
    use super::*;

    /// Query of the lookups.
    #[derive(Deserialize, utoipa::IntoParams, schemars::JsonSchema)]
    #[into_params(parameter_in = Query)]
    pub struct Lookup {
        /// Station id.
        pub station: String,
        /// Days back, optional.
        pub days: Option<u16>,
    }

    /// Body of the reports.
    #[derive(Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
    pub struct Report {
        /// Station id.
        pub station: String,
        /// Readings, in order.
        pub readings: Vec<f64>,
        /// Whether to keep it.
        pub keep: bool,
        /// A note.
        pub note: Option<String>,
    }

    /// A reading.
    #[derive(Serialize, utoipa::ToSchema, schemars::JsonSchema)]
    pub struct Reading {
        /// Station id.
        pub station: String,
        /// Mean value.
        pub mean: f64,
        /// How many readings.
        pub count: u32,
        /// Tags.
        pub tags: Vec<String>,
    }

    /// Looked up, documented by utoipa.
    #[paid(price = "0.001")]
    #[utoipa::path(get, path = "/u/lookup", params(Lookup), responses((status = 200, body = Reading)))]
    pub async fn utoipa_lookup(Query(_): Query<Lookup>) -> Json<Reading> {
        unreachable()
    }

    /// Reported, documented by utoipa.
    #[paid(price = "0.001")]
    #[utoipa::path(post, path = "/u/report", request_body = Report, responses((status = 200, body = Reading)))]
    pub async fn utoipa_report(Json(_): Json<Report>) -> Json<Reading> {
        unreachable()
    }

    /// Looked up, documented from the shapes.
    #[paid(price = "0.001", method = "GET", path = "/s/lookup")]
    pub async fn shapes_lookup(Query(_): Query<Lookup>) -> Json<Reading> {
        unreachable()
    }

    /// Reported, documented from the shapes.
    #[paid(price = "0.001", method = "POST", path = "/s/report")]
    pub async fn shapes_report(Json(_): Json<Report>) -> Json<Reading> {
        unreachable()
    }

    fn unreachable() -> Json<Reading> {
        Json(Reading {
            station: String::new(),
            mean: 0.0,
            count: 0,
            tags: Vec::new(),
        })
    }
}

/// What a caller needs of an object schema: each property's JSON types, and which are required.
/// `null` is left out of the types of a property that is not required: the caller may omit it
/// either way (utoipa writes an `Option` query parameter as `integer`, schemars as
/// `[integer, null]`).
fn caller_view(schema: &Value) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let types = |field: &Value| -> Vec<String> {
        let mut kinds: Vec<String> = match &field["type"] {
            Value::String(kind) => vec![kind.clone()],
            Value::Array(kinds) => kinds
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        kinds.sort();
        kinds
    };
    let properties = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("an object schema: {schema}"))
        .iter()
        .map(|(name, field)| (name.clone(), types(field)))
        .collect::<BTreeMap<String, Vec<String>>>();
    let mut required: Vec<String> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    required.sort();
    let properties = properties
        .into_iter()
        .map(|(name, mut kinds)| {
            if !required.contains(&name) {
                kinds.retain(|k| k != "null");
            }
            (name, kinds)
        })
        .collect();
    (properties, required)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utoipa_and_schemars_agree_on_what_a_caller_needs() {
    use utoipa_axum::{router::OpenApiRouter, routes};
    let x402 = paywall();
    let info = utoipa::openapi::InfoBuilder::new()
        .title("agree")
        .version("1")
        .build();
    let (router, api) =
        OpenApiRouter::with_openapi(utoipa::openapi::OpenApiBuilder::new().info(info).build())
            .routes(routes!(agree::utoipa_lookup))
            .routes(routes!(agree::utoipa_report))
            .route("/s/lookup", axum::routing::get(agree::shapes_lookup))
            .route("/s/report", post(agree::shapes_report))
            .split_for_parts();
    Discovery::builder(&x402, api)
        .scope("stacks::agree")
        .build(&router)
        .expect("the check passes");
    let bazaar = |handler: &str| -> Value {
        let route = x402_runtime::routes()
            .into_iter()
            .find(|r| r.handler() == handler)
            .expect("registered");
        x402.route_extensions(route).expect("extensions")["bazaar"].clone()
    };
    let input =
        |b: &Value, key: &str| b["schema"]["properties"]["input"]["properties"][key].clone();
    let output = |b: &Value| b["schema"]["properties"]["output"]["properties"]["example"].clone();

    let (u, s) = (bazaar("utoipa_lookup"), bazaar("shapes_lookup"));
    assert_eq!(
        caller_view(&input(&u, "queryParams")),
        caller_view(&input(&s, "queryParams"))
    );
    let (fields, required) = caller_view(&input(&s, "queryParams"));
    assert_eq!(required, ["station"]);
    assert_eq!(fields["days"], ["integer"]);
    assert_eq!(caller_view(&output(&u)), caller_view(&output(&s)));

    let (u, s) = (bazaar("utoipa_report"), bazaar("shapes_report"));
    assert_eq!(
        caller_view(&input(&u, "body")),
        caller_view(&input(&s, "body"))
    );
    let (fields, required) = caller_view(&input(&s, "body"));
    assert_eq!(required, ["keep", "readings", "station"]);
    assert_eq!(fields["readings"], ["array"]);
    assert_eq!(fields["note"], ["string"]);
    assert_eq!(
        input(&u, "body")["properties"]["readings"]["items"]["type"],
        "number"
    );
    assert_eq!(
        input(&s, "body")["properties"]["readings"]["items"]["type"],
        "number"
    );
    assert_eq!(caller_view(&output(&u)), caller_view(&output(&s)));
}
