//! x402 payments for axum: put a price on a handler with one attribute.
//!
//! ```no_run
//! use axum::{Json, Router, extract::Query, routing::get};
//! use serde::{Deserialize, Serialize};
//! use x402_runtime::{X402, paid};
//!
//! #[derive(Deserialize)]
//! struct City { city: String }
//!
//! #[derive(Serialize)]
//! struct Weather { city: String, celsius: f32 }
//!
//! /// Current weather for a city.
//! #[paid(price = "0.001", currency = "USDC")]
//! async fn weather(Query(q): Query<City>) -> Json<Weather> {
//!     Json(Weather { city: q.city, celsius: 21.5 })
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // X402_PAY_TO=0x… (and optionally X402_NETWORK, X402_FACILITATOR_URL, X402_PUBLIC_URL)
//! let x402 = X402::from_env()?;
//! let app = Router::new().route("/weather", get(weather)).layer(x402.layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4021").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # What happens on a request
//!
//! 1. Without a payment, the route answers `402 Payment Required` with the x402 v2
//!    `PAYMENT-REQUIRED` header (base64 JSON of the offers) and a v1 body for older clients. This
//!    happens before any of the handler's own extractors run, so a probe without the query or
//!    body still learns the price.
//! 2. The client signs an EIP-3009 `transferWithAuthorization` and retries with
//!    `PAYMENT-SIGNATURE` (v1: `X-PAYMENT`). The paywall decodes it strictly, matches it against
//!    the route's own offer, checks amount, recipient, validity window and signature locally,
//!    reserves the payment so that a concurrent copy cannot run the handler twice, and asks the
//!    facilitator to verify it.
//! 3. The handler runs. Only if it answers 2xx is the payment settled (in a task that a client
//!    disconnect cannot cancel); the response then carries the `PAYMENT-RESPONSE` receipt. If
//!    settlement fails the handler's body is withheld and the client gets a 402 with a failure
//!    receipt. With `settle = "before"`, settlement happens before the handler runs.
//!
//! # Answers
//!
//! | status | `error` | when |
//! |---|---|---|
//! | 402 | `PAYMENT-SIGNATURE header is required` | no payment |
//! | 400 | `invalid_payload` | the payment header is not a decodable x402 payment |
//! | 431 | `invalid_payload` | the payment header exceeds 16 KiB |
//! | 402 | `invalid_x402_version`, `invalid_scheme`, `invalid_network`, `invalid_payment_requirements` | the payment is for another offer |
//! | 402 | `invalid_exact_evm_payload_*` | wrong amount, recipient, validity window or signature |
//! | 402 | the facilitator's reason | `/verify` refused, or `/settle` failed (with a failure receipt) |
//! | 400 | `invalid_payment_identifier`, `payment_identifier_required` | on a route that declared [`identifier`](server::identifier) (`payment-identifier`): a malformed id, or none where it is required |
//! | 409 | `payment_in_progress`, `payment_already_settled` | a payment the server knows, at any time (inside or after its validity window): being processed, or settled in the named transaction |
//! | 402 | `expired_unsettled` | a known payment whose authorization expired without ever being used on chain (with a fresh challenge: a new payment may be signed) |
//! | 409 | `payment_identifier_conflict` | a `payment-identifier` id already bound to another payment (the same payment gets its recorded response) |
//! | 503 | `payment_identifier_cache_full` | this process holds too many `payment-identifier` ids (nothing verified) |
//! | 503 | `replay_store_unavailable` | the shared replay store cannot be reached (nothing verified or served) |
//! | 503 | `server_shutting_down` | the server is draining for shutdown ([`X402::shutdown`]): nothing verified, resend the same payment later or elsewhere |
//! | 503 | `facilitator_unavailable` | the facilitator's `/supported` has not answered yet (nothing verified) |
//! | 502 | `unexpected_verify_error` | `/verify` answered badly |
//! | 502 | `unexpected_settle_error` | `/settle` could not be reached (nothing was sent; the payment is released) |
//! | 503 | `settlement_pending` | the settlement's outcome is unknown: `settlement_pending`, no answer in time, or any answer that is neither a definite success nor a definite refusal (receipt names the transaction when known); every resend of the same payment gets it until a reconciliation ([`settlement`](server::settlement)) knows the outcome |
//! | 504 | `facilitator_timeout` | the facilitator did not answer `/verify` in time |
//! | 500 | `x402_not_configured`, `x402_no_offer` | the server is misconfigured |
//!
//! Error codes are in [`codes`]. Every refusal has `Cache-Control: no-store`; paid responses
//! get `private` merged into their `Cache-Control`.
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `server` | yes | `X402` and the paywall layer, the `#[paid]` registry, the replay stores (memory, redb file); brings axum, redb and inventory |
//! | `macros` | yes | the `#[paid]` and `#[quote]` attributes (needs `server`) |
//! | `http-facilitator` | yes | [`facilitator::HttpFacilitator`], a client for any standard facilitator |
//! | `cdp` | no | `facilitator::CdpAuth`: signs every facilitator call with a Coinbase CDP API key (`CDP_API_KEY_ID`, `CDP_API_KEY_SECRET`), as the CDP facilitator requires |
//! | `local-facilitator` | no | `facilitator::LocalFacilitator`: verifies in process, settles through an EVM node |
//! | `client` | no | `client::X402Client`: pays 402s within a budget and never twice; `client::PaymentSigner`; `client::discover` |
//! | `redis` | no | `RedisStore`: a replay store shared by several server processes |
//! | `postgres` | no | `PostgresStore`: the replay store and a queryable settlement ledger in PostgreSQL, shared by several server processes; `X402::from_env_async` connects to `X402_DATABASE_URL` |
//! | `chain` | no | `schemes::exact_evm::chain::RpcChainReader`: reads EIP-3009 authorizations on chain to resolve unknown settlements (`local-facilitator` includes it) |
//! | `schemars` | no | shapes of paid routes from the handlers' own types (schemars 1) in the bazaar extension of every 402; `discovery`: prices any OpenAPI document (or one generated from the registry) and serves `/openapi.json`, `/llms.txt`, `/.well-known/x402` |
//! | `openapi` | no | `openapi`: the same on a utoipa 6 / utoipa-axum 0.3 document, and the docs page at `/docs` (implies `schemars`) |
//! | `aide` | no | `discovery::aide`: the same on an aide 0.16 `ApiRouter` (implies `schemars`) |
//! | `rustls` | yes | TLS for the crate's HTTP clients through rustls (aws-lc-rs provider) |
//! | `native-tls` | no | TLS through the platform's library instead (OpenSSL on Linux) |
//! | `rustls-no-provider` | no | rustls without a crypto provider: the application installs one |
//! | `libsecp256k1` | yes | signature recovery through libsecp256k1 (C), about 5x faster than the pure-Rust k256 used without it |
//!
//! An agent that only pays needs `default-features = false, features = ["client", "rustls",
//! "libsecp256k1"]`: no axum, redb or inventory is compiled. An HTTP client feature (`client`,
//! `http-facilitator`, `chain`) without a TLS feature is a compile error naming the choices.
//!
//! # Where things are
//!
//! | question | module |
//! |---|---|
//! | what is on the wire (headers, JSON shapes, error codes)? | [`proto`], [`proto::header`], [`codes`] |
//! | where does a price become an offer? | [`schemes`] ([`Scheme::offer`](schemes::Scheme::offer)), called for each route by the server's offers |
//! | where is a payment checked? | [`schemes::exact_evm`] ([`rules`](schemes::exact_evm::rules), shared with the in-process facilitator), after the server's admission matched it to an offer |
//! | where is it made single-use? | the [`ReplayKey`] reserved in the [`ReplayStore`] ([`MemoryStore`], [`FileStore`], `RedisStore`, `PostgresStore`) |
//! | where does settlement happen? | [`server::settlement`] (what a `/settle` answer means, reconciliation), through a [`Facilitator`] |
//! | which facilitator gets a request, with which credentials? | [`facilitator`]: [`HttpFacilitator`](facilitator::HttpFacilitator) (headers, CDP JWT), [`Facilitators`](facilitator::Facilitators) (per-network lists, failover) |
//! | how does a client pay? | `client` (feature `client`) |
//! | what does a person in a browser see? | the pay page, styled with [`PayPage`] (on by default; see [`X402ConfigBuilder::without_pay_page`]) |
//!
//! # Registry
//!
//! Every `#[paid]` handler registers a constant [`PaidRoute`] at compile time; [`routes`] lists
//! them. A handler defined in a library crate is only linked if the binary uses something from
//! that crate (`use that_crate as _;` is enough).
//!
//! # Limitations
//!
//! - `#[paid]` goes on free `async fn`s: not on methods, and not on associated functions in an
//!   `impl` block (the attribute defines a marker type next to the function).
//! - EVM networks only: the `exact` scheme (EIP-3009 tokens such as USDC and EURC, any other
//!   ERC-20 through Permit2) and the `upto` scheme (through Permit2).
//! - The paywall checks signatures only for their form (65 bytes: `v` in {27, 28}, low `s`;
//!   shorter is malformed) and recovers no key: whether a signature that does not recover to
//!   `from`, or one longer than 65 bytes, is valid depends on whether `from` is a contract wallet
//!   (ERC-1271), which cannot be seen without the chain. The facilitator decides it, with one
//!   recovery per payment in `LocalFacilitator` (its `settle` reuses what its `verify` recovered).

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(all(
    any(feature = "client", feature = "http-facilitator", feature = "chain"),
    not(any(
        feature = "rustls",
        feature = "rustls-no-provider",
        feature = "native-tls"
    ))
))]
compile_error!(
    "x402-runtime's HTTP clients need a TLS backend: enable the feature `rustls` (the default), \
     `native-tls`, or `rustls-no-provider` (and install a rustls crypto provider yourself)"
);

// Module map, lowest layer first. A module imports only from modules above it in this list
// (never from one below it): `base`, `proto`, `price` and `network` know nothing of schemes,
// schemes nothing of the server, and the server and the client (siblings) nothing of each other.
//
// base/       BoxFuture, the clock, ConfigError
// proto/      x402 wire types (v1, v2), the payment header codec, error codes
// price       Currency, Price, Pricing: what a route costs (the grammar: the x402-price crate)
// network     EVM networks and their stablecoins
// schemes/    the scheme seam (offer from a price, payload decoded and checked, replay key);
//             exact_evm/ (EIP-712, EIP-3009, the authorization rules, reading the chain)
// store/      the replay store and settlement record: memory, redb file, Redis, Postgres (ledger)
// facilitator/ the facilitator interface, its HTTP client, the in-process facilitator
// route/      the #[paid] registry, the handler glue, the mount probe
// page/       the pay page browsers get instead of the JSON 402 (HTML, CSS, script, its CSP)
// server/     X402 (engine, config, prices set per deployment), offers and 402s, admission,
//             answers, payment-identifier,
//             settlement/ (settle, reconcile, operator tools)
// bazaar      the bazaar extension (how to call a route), read from an OpenAPI operation
// discovery/  the priced OpenAPI document (any stack's, or generated from the registry), the
//             discovery endpoints (feature `schemars`); aide's router (feature `aide`)
// openapi/    utoipa's side of it (feature `openapi`)
// client/     the paying client (feature `client`)

mod base;
pub mod bazaar;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;
#[cfg(feature = "schemars")]
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
pub mod discovery;
pub mod facilitator;
pub mod network;
#[cfg(feature = "openapi")]
#[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
pub mod openapi;
#[cfg(feature = "server")]
mod page;
mod price;
pub mod proto;
#[cfg(feature = "server")]
mod route;
pub mod schemes;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod server;
#[cfg(feature = "server")]
mod store;

pub use base::{BoxFuture, Clock, ConfigError, unix_now};
pub use facilitator::{Facilitator, FacilitatorError};
pub use network::{AccountId, SvmAddress};
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use page::{MAX_LOGO_BYTES, PayPage};
pub use price::{Currency, KNOWN_TOKENS, Price, Pricing, QuoteBounds, Token};
pub use proto::X402Version;
pub use proto::codes;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use route::mount::PaidHandler;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use route::quote::{IntoQuote, Quote};
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use route::shapes::{BodyKind, Shapes};
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use route::{PaidRoute, SettleTiming, routes};
pub use schemes::ReplayKey;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use server::charge::Charge;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use server::config::{
    DEFAULT_FACILITATOR_URL, DEFAULT_MAX_TIMEOUT_SECONDS, DEFAULT_NETWORK,
    DEFAULT_RECORD_RETENTION, DEFAULT_STORE_PATH, X402Config, X402ConfigBuilder,
};
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use server::engine::{StartupError, X402, X402Builder};
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use server::payment::Payment;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use server::shutdown::ShutdownReport;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use store::file::{FileStore, FileStoreError};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::postgres::{
    LedgerEntry, LedgerQuery, LedgerState, PostgresStore, PostgresStoreError,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::redis::{RedisStore, RedisStoreError};
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use store::{DEFAULT_MEMORY_CAPACITY, MemoryStore, ReplayStore, Slot, Unresolved};

/// Turns an axum handler into an x402-paid endpoint.
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
#[doc = include_str!("../docs/paid.md")]
pub use x402_macros::paid;

/// Marks an `async fn` as the quote function of a quoted `#[paid]` route
/// (`#[paid(quote = quote_forecast, min = "…", max = "…")]`).
///
/// The function is written like a small axum handler: its arguments are extractors (`Query`,
/// `Path`, `State`, headers and, last, one that reads the body such as `Json<T>`), and it
/// returns a [`Quote`] or `Result<Quote, E>` with `E: IntoResponse` (the answer when the request
/// cannot be priced). It becomes a unit struct of the same name, as a `#[paid]` handler does.
/// The body is read once, up to 2 MiB, and handed again to the handler. A quote must be a
/// function of the request: the paid request is quoted again and its payment must match.
///
/// ```
/// use axum::Json;
/// use serde::Deserialize;
/// use x402_runtime::{Quote, paid, quote};
///
/// #[derive(Deserialize)]
/// struct Convert { pages: u32 }
///
/// /// 0.001 USDC a page, at most 50 pages.
/// #[quote]
/// async fn per_page(Json(req): Json<Convert>) -> Result<Quote, (axum::http::StatusCode, &'static str)> {
///     match req.pages {
///         1..=50 => Ok(Quote::atomic(1_000 * u128::from(req.pages))),
///         _ => Err((axum::http::StatusCode::UNPROCESSABLE_ENTITY, "1 to 50 pages")),
///     }
/// }
///
/// #[paid(quote = per_page, min = "0.001", max = "0.05")]
/// async fn convert(Json(req): Json<Convert>) -> String {
///     format!("{} pages converted", req.pages)
/// }
/// ```
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use x402_macros::quote;

/// Items the `#[paid]` expansion names. Not public API.
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod __private {
    pub use crate::route::handler::{Extractors, HandlerFuture, Via, handler_future};
    pub use crate::route::quote::{QuoteFuture, Quoter, quote_future, run_quote};
    pub use crate::route::shapes::{NoSchema, Probe, WithSchema};
    pub use crate::route::{PaidEndpoint, RouteEntry};
    pub use crate::server::serve::{serve, serve_quoted};
    pub use axum::body::Bytes;
    pub use axum::extract::Request;
    pub use axum::handler::Handler;
    pub use axum::response::Response;
    pub use http::request::Parts;
    pub use inventory;

    /// What `#[paid(networks = ["solana:…"])]` names: a Solana cluster.
    pub struct SolanaCluster;

    /// Implemented when the crate pays on Solana (its `svm` feature).
    #[diagnostic::on_unimplemented(
        message = "`networks` names a Solana cluster, which needs x402-runtime's `svm` feature",
        label = "offered on Solana",
        note = "add `features = [\"svm\"]` to x402-runtime in Cargo.toml"
    )]
    pub trait SvmFeature {}

    #[cfg(feature = "svm")]
    impl SvmFeature for SolanaCluster {}

    /// A Solana cluster's CAIP-2 id in `#[paid(networks = …)]`, which compiles only with the
    /// `svm` feature.
    pub const fn solana<T: SvmFeature>(caip2: &'static str) -> &'static str {
        caip2
    }
}
