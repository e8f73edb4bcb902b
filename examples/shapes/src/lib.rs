//! A paid API without an OpenAPI library (`example-shapes`), as a library so tests can mount it.
//!
//! The handlers' types derive `schemars::JsonSchema`; `#[paid]` names its method and path, and
//! the priced document is generated from the registry. Every 402 carries the bazaar extension
//! with the input and output shapes, with or without the document.
//!
//! - `GET /joke?topic=cats`: 0.001 USDC
//! - `POST /story` with `{"hero": "a robot", "sentences": 3}`: 0.005 USDC
//!
//! and `GET /openapi.json`, `GET /llms.txt`, `GET /.well-known/x402`.

use axum::routing::{get, post};
use axum::{Json, Router, extract::Query};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use x402_runtime::discovery::{CheckError, Discovery, document};
use x402_runtime::{X402, paid};

/// Who answers for this API (the document's `info.contact`).
pub const CONTACT_EMAIL: &str = "jokes-api@example.com";

/// Query of `GET /joke`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Topic {
    /// What the joke is about.
    pub topic: String,
}

/// A joke.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Joke {
    /// The topic, as asked.
    pub topic: String,
    /// The joke.
    pub text: String,
}

/// Body of `POST /story`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct StoryRequest {
    /// Who the story is about.
    pub hero: String,
    /// How many sentences (1 to 10).
    #[schemars(range(min = 1, max = 10))]
    pub sentences: u8,
}

/// A story.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Story {
    /// Its sentences, in order.
    pub sentences: Vec<String>,
}

/// A joke about a topic.
#[paid(price = "0.001", currency = "USDC", method = "GET", path = "/joke")]
pub async fn joke(Query(q): Query<Topic>) -> Json<Joke> {
    Json(Joke {
        text: format!(
            "Why did the {} pay? It got a 402 and had the change.",
            q.topic
        ),
        topic: q.topic,
    })
}

/// A short story about a hero.
#[paid(price = "0.005", currency = "USDC", method = "POST", path = "/story")]
pub async fn story(Json(request): Json<StoryRequest>) -> Json<Story> {
    let sentences = (1..=request.sentences.clamp(1, 10))
        .map(|n| format!("{} took step {n}.", request.hero))
        .collect();
    Json(Story { sentences })
}

/// The router with the paywall installed and the discovery endpoints mounted; fails with the
/// startup check's problems.
pub fn app(x402: &X402) -> Result<Router, CheckError> {
    let router = Router::new()
        .route("/joke", get(joke))
        .route("/story", post(story));
    let mut doc = document(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
    doc["info"]["contact"] = serde_json::json!({ "email": CONTACT_EMAIL });
    let discovery = Discovery::builder(x402, doc)
        .scope(module_path!())
        .llms_txt(true)
        .well_known(true)
        .build(&router)?;
    Ok(router.merge(discovery.router()).layer(x402.layer()))
}
