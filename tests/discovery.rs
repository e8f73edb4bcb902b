//! Discovery: the priced OpenAPI document of the example, the live 402 against it, the
//! third-party readers (mppx, @agentcash/discovery, ajv) on a running server, and the startup
//! check that every paid handler is documented and mounted.

mod support;

use axum::http::Method;
use axum::routing::get;
use serde_json::{Value, json};
use support::{PAY_TO, challenge_of, http, npx_next_to, run_child as run, serve, validators};
use utoipa::OpenApi as _;
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use x402_runtime::discovery::Discovery;
use x402_runtime::openapi::OpenApiRouterExt as _;
use x402_runtime::{X402, X402Config};

/// The size budget of a `PAYMENT-REQUIRED` header (shared/discovery.md §5).
const HEADER_BUDGET: usize = 8 * 1024;

/// A paywall for `networks`, paying [`PAY_TO`]. Its facilitator is never called here.
fn paywall(networks: &[&str], facilitator: &str) -> X402 {
    let config = networks
        .iter()
        .fold(X402Config::builder(), |b, n| b.network(*n))
        .pay_to(PAY_TO)
        .facilitator_url(facilitator)
        .build()
        .expect("config");
    X402::new(config).expect("paywall")
}

/// The example API on 127.0.0.1, its facilitator's `/supported` read (the `upto` route's offer
/// names the facilitator it lists); returns its origin.
async fn example(networks: &[&str]) -> (String, X402) {
    let facilitator = support::Facilitator::start().await;
    let x402 = paywall(networks, &facilitator.url());
    // The double lists `exact` on Base Sepolia only: a missing network is not this test's subject.
    let _ = x402.check_facilitator().await;
    let origin = serve(example_weather::app(x402.clone())).await;
    (origin, x402)
}

async fn document(origin: &str) -> Value {
    http()
        .get(format!("{origin}/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json")
        .json()
        .await
        .expect("json")
}

/// `(METHOD, path, operation)` of every operation with `x-payment-info`.
fn paid_operations(doc: &Value) -> Vec<(Method, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if op.get("x-payment-info").is_some() {
                let method = method.to_ascii_uppercase().parse().expect("method");
                found.push((method, path.clone(), op.clone()));
            }
        }
    }
    found
}

/// An unpaid call: no query, no body.
async fn unpaid(origin: &str, method: &Method, path: &str) -> reqwest::Response {
    http()
        .request(method.clone(), format!("{origin}{path}"))
        .send()
        .await
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_document_matches_its_snapshot() {
    let (origin, _x402) = example(&["eip155:84532"]).await;
    let response = http()
        .get(format!("{origin}/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    assert_eq!(headers["access-control-allow-origin"], "*");
    let doc: Value = response.json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    insta::assert_json_snapshot!("example_openapi", doc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_info_is_the_example_crate_s() {
    let (origin, _x402) = example(&["eip155:84532"]).await;
    let info = &document(&origin).await["info"];
    assert_eq!(info["title"], "example-weather");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["contact"]["email"], example_weather::CONTACT_EMAIL);
    assert!(
        !info.to_string().contains("utoipa"),
        "no trace of utoipa-axum's defaults: {info}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_paid_route_of_the_example_is_priced_and_free_ones_are_open() {
    let (origin, _x402) = example(&["eip155:84532"]).await;
    let doc = document(&origin).await;
    let prices: Vec<(String, String, String, String)> = paid_operations(&doc)
        .into_iter()
        .map(|(method, path, op)| {
            let info = &op["x-payment-info"];
            (
                method.to_string(),
                path,
                match (
                    info["price"]["mode"].as_str(),
                    info["price"]["amount"].as_str(),
                ) {
                    (Some("dynamic"), _) => match info["price"]["min"].as_str() {
                        Some(min) => {
                            format!("{min}–{}", info["price"]["max"].as_str().expect("max"))
                        }
                        None => format!("up to {}", info["price"]["max"].as_str().expect("max")),
                    },
                    (_, amount) => amount.expect("amount").to_owned(),
                },
                info["price"]["currency"]
                    .as_str()
                    .expect("currency")
                    .to_owned(),
            )
        })
        .collect();
    let expected = [
        ("GET", "/alerts", "0.005"),
        ("GET", "/climate", "0.002"),
        ("POST", "/forecast", "0.01"),
        ("GET", "/history", "0.001–0.03"),
        ("GET", "/observations", "up to 0.01"),
        ("GET", "/weather", "0.001"),
    ]
    .map(|(m, p, a)| (m.to_owned(), p.to_owned(), a.to_owned(), "USD".to_owned()));
    assert_eq!(prices, expected);
    for (_, path, op) in paid_operations(&doc) {
        assert_eq!(op["security"], json!([]), "{path}");
        let payment = &op["responses"]["402"];
        assert!(payment["headers"]["PAYMENT-REQUIRED"].is_object(), "{path}");
        assert_eq!(
            payment["content"]["application/json"]["schema"]["oneOf"][0]["$ref"],
            "#/components/schemas/X402PaymentRequired"
        );
        let x402 = &op["x-payment-info"]["protocols"][0]["x402"];
        assert_eq!(x402["x402Version"], 2);
        assert_eq!(x402["price"]["currency"], "USDC");
        assert!(
            op["description"]
                .as_str()
                .expect("description")
                .contains("**Price: "),
            "the docs page shows the price of {path}"
        );
    }
    assert_eq!(doc["paths"]["/health"]["get"]["security"], json!([]));
    assert!(doc["paths"]["/health"]["get"]["x-payment-info"].is_null());
    for schema in [
        "X402PaymentRequired",
        "X402PaymentRequirements",
        "X402ResourceInfo",
        "X402PaymentRequiredV1",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_402_offers_equal_the_documented_offers_for_every_paid_route() {
    let (origin, x402) = example(&["eip155:84532", "eip155:8453"]).await;
    let doc = document(&origin).await;
    let paid = paid_operations(&doc);
    assert_eq!(paid.len(), 6);
    for (method, path, op) in paid {
        let documented = &op["x-payment-info"]["protocols"][0]["x402"]["accepts"];
        let response = unpaid(&origin, &method, &path).await;
        assert_eq!(response.status(), 402, "{method} {path}");
        let live = serde_json::to_value(challenge_of(&response).accepts).expect("json");
        assert_eq!(&live, documented, "{method} {path}");
        assert_eq!(live.as_array().expect("offers").len(), 2, "{path}");
        let id = op["operationId"].as_str().expect("operationId");
        let route = x402_runtime::routes()
            .into_iter()
            .find(|r| r.operation_id() == id && r.module_path().starts_with("example_weather"))
            .expect("registered");
        let single_source =
            serde_json::to_value(x402.requirements(route).expect("offers")).expect("json");
        assert_eq!(&single_source, documented, "{method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_402_carries_the_bazaar_extension_within_the_header_budget() {
    let (origin, _x402) = example(&["eip155:84532", "eip155:8453"]).await;
    let doc = document(&origin).await;
    for (method, path, _) in paid_operations(&doc) {
        let response = unpaid(&origin, &method, &path).await;
        let header = response.headers()["payment-required"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(
            header.len() < HEADER_BUDGET,
            "{method} {path}: PAYMENT-REQUIRED is {} bytes",
            header.len()
        );
        let challenge = challenge_of(&response);
        let bazaar = &challenge.extensions.as_ref().expect("extensions")["bazaar"];
        assert_eq!(bazaar["info"]["input"]["method"], method.as_str());
        assert_eq!(
            bazaar["schema"]["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert!(
            !bazaar.to_string().contains("$ref"),
            "references are inlined: {bazaar}"
        );
        // A refused payment's 402 carries it too.
        let refused = http()
            .request(method.clone(), format!("{origin}{path}"))
            .header("PAYMENT-SIGNATURE", "bm90IGEgcGF5bWVudA==")
            .send()
            .await
            .expect("request");
        if refused.status() == 402 {
            let again = challenge_of(&refused);
            assert_eq!(&again.extensions.expect("extensions")["bazaar"], bazaar);
        }
    }
    let weather = challenge_of(&unpaid(&origin, &Method::GET, "/weather").await);
    let bazaar = &weather.extensions.expect("extensions")["bazaar"];
    assert_eq!(
        bazaar["info"]["input"],
        json!({"type": "http", "method": "GET", "queryParams": {"city": "example"}})
    );
    let forecast = challenge_of(&unpaid(&origin, &Method::POST, "/forecast").await);
    let bazaar = &forecast.extensions.expect("extensions")["bazaar"];
    assert_eq!(
        bazaar["info"]["input"],
        json!({"type": "http", "method": "POST", "bodyType": "json",
               "body": {"city": "example", "days": 1}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_llms_txt_and_well_known_are_served() {
    let (origin, _x402) = example(&["eip155:84532"]).await;
    let docs = http()
        .get(format!("{origin}/docs"))
        .send()
        .await
        .expect("GET /docs");
    assert_eq!(docs.status(), 200);
    assert!(
        docs.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let page = docs.text().await.expect("html");
    assert!(page.contains("@scalar/api-reference"));
    for price in ["0.001 USDC", "0.01 USDC", "0.005 USDC"] {
        assert!(page.contains(&format!("**Price: {price}**")), "{price}");
    }

    let llms = http()
        .get(format!("{origin}/llms.txt"))
        .send()
        .await
        .expect("GET /llms.txt");
    assert_eq!(llms.headers()["access-control-allow-origin"], "*");
    let text = llms.text().await.expect("text");
    assert!(text.starts_with("# example-weather\n\n> "), "{text}");
    for line in [
        format!(
            "- [GET /weather]({origin}/openapi.json): Current weather for a city — 0.001 USDC (x402)"
        ),
        format!(
            "- [POST /forecast]({origin}/openapi.json): Daily forecast for up to 7 days — 0.01 USDC (x402)"
        ),
        format!(
            "- [GET /alerts]({origin}/openapi.json): Active weather alerts for a city — 0.005 USDC (x402)"
        ),
        format!(
            "- [GET /history]({origin}/openapi.json): Daily history for a city, priced by the number of days — 0.001–0.03 USDC (x402)"
        ),
        format!("- [GET /health]({origin}/openapi.json): Free liveness probe."),
    ] {
        assert!(text.contains(&line), "{line}\n---\n{text}");
    }
    // Under each paid endpoint, how to call it (from its bazaar extension).
    for call in [
        "  - query: `city` string (required); returns JSON: `celsius`, `city`, `conditions`, `paid_by`",
        "  - json body: `city` string (required), `days` integer (required); returns JSON: `city`, `days`",
    ] {
        assert!(text.contains(call), "{call}\n---\n{text}");
    }

    let well_known: Value = http()
        .get(format!("{origin}/.well-known/x402"))
        .send()
        .await
        .expect("GET /.well-known/x402")
        .json()
        .await
        .expect("json");
    assert_eq!(well_known["version"], 1);
    assert_eq!(
        well_known["resources"],
        json!([
            format!("{origin}/alerts"),
            format!("{origin}/climate"),
            format!("{origin}/forecast"),
            format!("{origin}/history"),
            format!("{origin}/observations"),
            format!("{origin}/weather")
        ])
    );
    assert!(
        well_known["instructions"]
            .as_str()
            .expect("instructions")
            .contains("/openapi.json")
    );
    let endpoints = well_known["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 6, "{well_known}");
    let weather = endpoints
        .iter()
        .find(|e| e["resource"] == format!("{origin}/weather"))
        .expect("/weather");
    assert_eq!(weather["method"], "GET");
    let live = unpaid(&origin, &Method::GET, "/weather").await;
    let challenge = challenge_of(&live);
    assert_eq!(
        weather["bazaar"],
        challenge.extensions.expect("extensions")["bazaar"],
        "the same bazaar as the 402's"
    );
}

// ---------------------------------------------------------------------------------------------
// The third-party readers, on the running example.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mppx_agentcash_and_ajv_accept_the_document_and_the_402s() {
    let Some((interop, node)) =
        validators("mppx_agentcash_and_ajv_accept_the_document_and_the_402s").await
    else {
        return;
    };
    let (origin, _x402) = example(&["eip155:84532"]).await;
    let script = interop.join("scripts/discovery.mjs");
    let stdout = run(&node, &[script.to_str().expect("utf-8"), &origin], &interop).await;
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("report is not JSON ({e}): {stdout}"));
    eprintln!("discovery.mjs report:\n{stdout}");

    assert_eq!(report["mppx"], json!([]), "mppx findings");

    let found = &report["origin"];
    assert_eq!(found["found"], true, "{found}");
    assert_eq!(found["source"], "openapi");
    assert_eq!(
        found["info"]["contactEmail"],
        example_weather::CONTACT_EMAIL
    );
    let routes: Vec<(String, String, String, String)> = found["endpoints"]
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
    let expected = [
        ("GET", "/alerts", "paid", "0.005 USD"),
        ("GET", "/climate", "paid", "0.002 USD"),
        ("POST", "/forecast", "paid", "0.01 USD"),
        ("GET", "/health", "unprotected", ""),
        ("GET", "/history", "paid", "0.001-0.03 USD"),
        ("GET", "/observations", "paid", "up to 0.01 USD"),
        ("GET", "/weather", "paid", "0.001 USD"),
    ]
    .map(|(m, p, a, price)| (m.to_owned(), p.to_owned(), a.to_owned(), price.to_owned()));
    assert_eq!(routes, expected);

    let endpoints = report["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 6);
    for endpoint in endpoints {
        let name = format!("{} {}", endpoint["method"], endpoint["path"]);
        assert_eq!(endpoint["status"], 402, "{name}");
        assert_eq!(
            endpoint["paymentRequired"],
            json!({"valid": true, "issues": []}),
            "{name}: agentcash's PaymentRequired validator"
        );
        assert_eq!(
            endpoint["bazaar"],
            json!({"valid": true, "errors": []}),
            "{name}: bazaar info against its schema (ajv, 2020-12)"
        );
        for advisory in endpoint["check"].as_array().expect("advisories") {
            assert_eq!(advisory["authMode"], "paid", "{name}: {advisory}");
            assert_eq!(advisory["hasInputSchema"], true, "{name}: {advisory}");
            assert_eq!(advisory["hasOutputSchema"], true, "{name}: {advisory}");
            let options = advisory["paymentOptions"].as_array().expect("live offers");
            assert!(!options.is_empty(), "{name}: {advisory}");
            for option in options {
                assert_eq!(option["protocol"], "x402", "{name}: {advisory}");
                assert_eq!(option["version"], 2, "{name}: {advisory}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agentcash_discovery_lists_every_paid_route_with_its_price() {
    let Some((interop, node)) =
        validators("agentcash_discovery_lists_every_paid_route_with_its_price").await
    else {
        return;
    };
    let (origin, _x402) = example(&["eip155:84532"]).await;
    let npx = npx_next_to(&node);
    let listing = run(
        &npx,
        &["--no", "@agentcash/discovery@1.7.5", &origin],
        &interop,
    )
    .await;
    eprintln!("npx @agentcash/discovery@1.7.5 {origin}:\n{listing}");
    for (method, path, price) in [
        ("GET", "/weather", "0.001 USD"),
        ("POST", "/forecast", "0.01 USD"),
        ("GET", "/alerts", "0.005 USD"),
    ] {
        let line = format!("{method:<7} {path}  paid  {price}  [x402]");
        assert!(listing.contains(&line), "missing `{line}`:\n{listing}");
    }
    assert!(
        listing.contains("GET     /health  unprotected"),
        "{listing}"
    );

    let json = run(
        &npx,
        &["--no", "@agentcash/discovery@1.7.5", &origin, "--json"],
        &interop,
    )
    .await;
    let result: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(result["ok"], true, "{result}");
    let errors: Vec<&Value> = result["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter(|w| w["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "error-level findings: {errors:?}");
    let paid: Vec<(&str, &str)> = result["resources"]
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
    assert_eq!(
        paid,
        [
            ("/alerts", "0.005 USD"),
            ("/climate", "0.002 USD"),
            ("/forecast", "0.01 USD"),
            ("/history", "0.001-0.03 USD"),
            ("/observations", "up to 0.01 USD"),
            ("/weather", "0.001 USD")
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// The startup check.

/// An `info` of our own, as an application would write it.
fn our_doc() -> OpenApi {
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("startup-check")
                .version("1.0.0")
                .build(),
        )
        .build()
}

/// Handlers that are wrong in every way the check knows.
mod broken {
    use x402_runtime::paid;

    /// Documented (in the derived document below) but never mounted.
    #[paid(price = "0.001")]
    #[utoipa::path(get, path = "/orphan", responses((status = 200, body = String)))]
    pub async fn orphan() -> String {
        "orphan".to_owned()
    }

    /// Mounted with plain axum, with neither `#[utoipa::path]` nor a method and path.
    #[paid(price = "0.002")]
    pub async fn hidden() -> &'static str {
        "hidden"
    }

    pub(crate) mod first {
        use x402_runtime::paid;

        /// One of two handlers whose operation id is the bare function name.
        #[paid(price = "0.001")]
        #[utoipa::path(get, path = "/first/twin", responses((status = 200, body = String)))]
        pub async fn twin() -> &'static str {
            "first"
        }
    }

    pub(crate) mod second {
        use x402_runtime::paid;

        /// The other one.
        #[paid(price = "0.001")]
        #[utoipa::path(get, path = "/second/twin", responses((status = 200, body = String)))]
        pub async fn twin() -> &'static str {
            "second"
        }
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "startup-check", version = "1.0.0"),
    paths(broken::orphan)
)]
struct BrokenDoc;

#[test]
fn handlers_missing_from_the_router_or_the_document_fail_the_check_together() {
    let x402 = paywall(&["eip155:84532"], "http://127.0.0.1:9");
    let (router, api) = OpenApiRouter::with_openapi(BrokenDoc::openapi())
        .routes(routes!(broken::first::twin))
        .routes(routes!(broken::second::twin))
        .route("/hidden", get(broken::hidden))
        .split_for_parts();
    let error = Discovery::builder(&x402, api.clone())
        .scope("discovery::broken")
        .build(&router)
        .expect_err("the check fails");
    let problems = error.problems();
    assert_eq!(problems.len(), 4, "{error}");
    let message = error.to_string();
    for needle in [
        "`discovery::broken::orphan`",
        "is documented as GET /orphan but is not mounted there (a request there gets 404 Not Found",
        "`discovery::broken::hidden`",
        "is paid but not in the OpenAPI document",
        "operation id `twin` is registered by 2 paid handlers: `discovery::broken::first::twin`",
        "`discovery::broken::second::twin`",
        "operation id `twin` is used by 2 operations (GET /first/twin, GET /second/twin)",
        ".unchecked()",
    ] {
        assert!(
            message.contains(needle),
            "missing `{needle}` in:\n{message}"
        );
    }

    // The explicit opt-out builds anyway (and logs the problems).
    let discovery = Discovery::builder(&x402, api)
        .scope("discovery::broken")
        .unchecked()
        .build(&router)
        .expect("unchecked");
    assert!(discovery.document()["paths"]["/orphan"]["get"]["x-payment-info"].is_object());
}

mod unrouted {
    use x402_runtime::paid;

    /// Method and path given to the attribute, but never added to the router.
    #[paid(price = "0.001", method = "GET", path = "/unrouted")]
    pub async fn unrouted() -> &'static str {
        "unrouted"
    }
}

#[test]
fn a_paid_handler_left_out_of_the_router_fails_the_check() {
    let x402 = paywall(&["eip155:84532"], "http://127.0.0.1:9");
    let (router, api) = OpenApiRouter::<()>::with_openapi(our_doc()).split_for_parts();
    let error = Discovery::builder(&x402, api)
        .scope("discovery::unrouted")
        .build(&router)
        .expect_err("the check fails");
    assert_eq!(error.problems().len(), 1, "{error}");
    assert!(
        error.problems()[0].starts_with("`discovery::unrouted::unrouted` (tests/discovery.rs:")
            && error.problems()[0]
                .contains("is documented as GET /unrouted but is not mounted there"),
        "{error}"
    );
}

mod elsewhere {
    use x402_runtime::paid;

    /// Mounted, but another handler answers at its documented path.
    #[paid(price = "0.001", method = "GET", path = "/elsewhere")]
    pub async fn documented() -> &'static str {
        "documented"
    }

    /// What answers there.
    #[paid(price = "0.001")]
    pub async fn impostor() -> &'static str {
        "impostor"
    }
}

#[test]
fn a_handler_mounted_at_another_path_fails_the_check() {
    let x402 = paywall(&["eip155:84532"], "http://127.0.0.1:9");
    let (router, api) = OpenApiRouter::<()>::with_openapi(our_doc())
        .route("/elsewhere", get(elsewhere::impostor))
        .route("/somewhere-else", get(elsewhere::documented))
        .split_for_parts();
    let error = Discovery::builder(&x402, api)
        .scope("discovery::elsewhere")
        .build(&router)
        .expect_err("the check fails");
    assert!(
        error.problems().iter().any(|p| p.starts_with(
            "`discovery::elsewhere::documented` (tests/discovery.rs:"
        ) && p.contains(
            "is documented as GET /elsewhere but is not mounted there (`discovery::elsewhere::impostor` (tests/discovery.rs:"
        ) && p.contains("answers there instead")),
        "{error}"
    );
}

#[test]
fn utoipa_axum_s_own_info_fails_the_check() {
    let x402 = paywall(&["eip155:84532"], "http://127.0.0.1:9");
    let (router, api) = OpenApiRouter::<()>::new().split_for_parts();
    let error = Discovery::builder(&x402, api)
        .scope("discovery::nothing_here")
        .build(&router)
        .expect_err("the check fails");
    assert_eq!(error.problems().len(), 1, "{error}");
    assert!(error.problems()[0].contains("utoipa-axum's own"), "{error}");
}

mod plain {
    use axum::extract::Path;
    use x402_runtime::paid;

    /// A report, priced with `#[paid]` only.
    #[paid(price = "0.003", method = "GET", path = "/plain")]
    pub async fn plain() -> &'static str {
        "plain"
    }

    /// A file, whose path is learned when it is mounted.
    #[paid(price = "0.004")]
    pub async fn learned(Path(id): Path<String>) -> String {
        id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_with_only_paid_are_documented_and_priced() {
    let x402 = paywall(&["eip155:84532"], "http://127.0.0.1:9");
    let (router, api) = OpenApiRouter::with_openapi(our_doc())
        .paid_route(Method::GET, "/files/{id}", plain::learned)
        .route("/plain", get(plain::plain))
        .split_for_parts();
    let discovery = Discovery::builder(&x402, api)
        .scope("discovery::plain")
        .build(&router)
        .expect("the check passes");
    let doc = discovery.document();

    let plain = &doc["paths"]["/plain"]["get"];
    assert_eq!(plain["operationId"], "plain");
    assert_eq!(plain["summary"], "A report, priced with `#[paid]` only.");
    assert_eq!(plain["x-payment-info"]["price"]["amount"], "0.003");
    assert!(plain["responses"]["402"]["headers"]["PAYMENT-REQUIRED"].is_object());
    assert!(plain["responses"]["200"].is_object());

    let learned = &doc["paths"]["/files/{id}"]["get"];
    assert_eq!(learned["operationId"], "learned");
    assert_eq!(learned["x-payment-info"]["price"]["amount"], "0.004");
    assert_eq!(
        learned["parameters"],
        json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}])
    );

    let origin = serve(router.merge(discovery.router::<()>()).layer(x402.layer())).await;
    let response = unpaid(&origin, &Method::GET, "/files/report-7").await;
    assert_eq!(response.status(), 402);
    let challenge = challenge_of(&response);
    assert_eq!(challenge.accepts[0].amount, "4000");
    let bazaar = &challenge.extensions.expect("extensions")["bazaar"];
    assert_eq!(bazaar["routeTemplate"], "/files/:id");
    assert_eq!(
        bazaar["info"]["input"]["pathParams"],
        json!({"id": "example"})
    );
    let served = document(&origin).await;
    assert_eq!(&served, doc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_operations_keep_their_security_unless_asked() {
    #[utoipa::path(get, path = "/free", responses((status = 200, body = String)))]
    async fn free() -> &'static str {
        "free"
    }
    let x402 = paywall(&["eip155:84532"], "http://127.0.0.1:9");
    let build = |open: bool| {
        let (router, api) = OpenApiRouter::with_openapi(our_doc())
            .routes(routes!(free))
            .split_for_parts();
        Discovery::builder(&x402, api)
            .scope("discovery::no_paid_routes")
            .free_operations_security(open)
            .build(&router)
            .expect("check")
    };
    assert!(
        build(false).document()["paths"]["/free"]["get"]
            .get("security")
            .is_none()
    );
    assert_eq!(
        build(true).document()["paths"]["/free"]["get"]["security"],
        json!([])
    );
}

/// The pricing pass on utoipa's own types, for apps that serve the document themselves: it does
/// what it can and reports the rest, and the document reads back as utoipa's.
#[test]
fn x402_openapi_prices_a_utoipa_document_in_place() {
    use x402_runtime::openapi::X402OpenApi;
    let x402 = paywall(&["eip155:84532"], "http://127.0.0.1:9");
    let pass = X402OpenApi::new(&x402).scope("discovery::plain");
    let (_, mut api) = OpenApiRouter::<()>::with_openapi(our_doc()).split_for_parts();
    let error = pass.modify(&mut api).expect_err("`learned` has no path");
    assert_eq!(error.problems().len(), 1, "{error}");
    assert!(error.problems()[0].contains("plain::learned"), "{error}");
    let priced = serde_json::to_value(&api).expect("json");
    let plain = &priced["paths"]["/plain"]["get"];
    assert_eq!(plain["x-payment-info"]["price"]["amount"], "0.003");
    assert_eq!(plain["security"], json!([]));
    assert!(priced["components"]["schemas"]["X402PaymentRequired"].is_object());

    let (_, mut api) = OpenApiRouter::<()>::with_openapi(our_doc())
        .paid_route(Method::GET, "/files/{id}", plain::learned)
        .split_for_parts();
    let paid = pass.modify(&mut api).expect("both documented");
    let mut found: Vec<(String, String)> = paid
        .iter()
        .map(|op| (op.method.to_string(), op.path.clone()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("GET".to_owned(), "/files/{id}".to_owned()),
            ("GET".to_owned(), "/plain".to_owned())
        ]
    );
}
