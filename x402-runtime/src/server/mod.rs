//! The server side: the paywall installed on an axum router.
//!
//! | file | what lives there |
//! |---|---|
//! | `config` | [`X402Config`](crate::X402Config): recipient, networks, facilitator, timeouts |
//! | `engine` | [`X402`](crate::X402) and its builder: the installed paywall and its parts |
//! | `pricing` | the prices the configuration sets, resolved against the routes |
//! | `challenge`, `offers` | a route's price becomes offers (through [`crate::schemes`]) and a 402 |
//! | `admission` | a payment header becomes an admitted payment, or a refusal |
//! | `known` | answers to a payment the record already knows |
//! | `serve` | the request path: admit, run the handler, settle, attach the receipt |
//! | `settlement` | what a `/settle` answer means, reconciliation, operator tools |
//! | `identifier` | the `payment-identifier` extension |
//! | `payment` | [`Payment`](crate::Payment), the handler's view of its payment |
//! | `charge` | [`Charge`](crate::Charge), what an `upto` handler says the request used |
//! | `refusal`, `answer` | every refusal with its status, code and message; how answers are written |
//! | `telemetry` | the paywall's metrics (names in [`telemetry`]) |
//! | `lifecycle`, `shutdown` | graceful shutdown: [`X402::shutdown`](crate::X402::shutdown) |
//!
//! Inside this folder a file imports only the ones listed below it here: `config`, `telemetry`,
//! `lifecycle`, `answer`, `refusal`, `challenge`, `identifier`, `payment`, `charge`, `pricing` and
//! `settlement::backoff` know nothing of [`X402`](crate::X402); `engine` holds their state;
//! `offers`, `settlement`, `known`, `admission`, `serve` and `shutdown` are the engine's
//! behaviour, in that order.

pub(crate) mod admission;
pub(crate) mod answer;
pub(crate) mod challenge;
pub(crate) mod charge;
pub(crate) mod config;
pub(crate) mod engine;
pub mod identifier;
pub(crate) mod known;
pub(crate) mod lifecycle;
pub(crate) mod offers;
pub(crate) mod payment;
pub(crate) mod pricing;
pub(crate) mod refusal;
pub(crate) mod serve;
pub mod settlement;
pub(crate) mod shutdown;
pub mod telemetry;
