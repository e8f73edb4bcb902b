//! The paying side, for agents: sign offers, pay 402s within a budget, discover prices.
//!
//! - [`X402Client`] sends a request with reqwest; on a 402 it reads the challenge (the v2
//!   `PAYMENT-REQUIRED` header, or a v1 body), picks an offer its [spending
//!   policy](X402ClientBuilder) allows, signs it (an EIP-3009 authorization for `exact`; a
//!   Permit2 permit for `exact` offers over Permit2 and for `upto` offers, whose maximum counts
//!   against the budget until the receipt names the amount charged) and resends the request
//!   with the payment. While the outcome is unknown (a dropped connection, `settlement_pending`)
//!   it resends that same payment, and it signs a new one only once the first is dead (see
//!   [`X402Client`]). The answer comes back with the decoded receipt, and every signed payment
//!   goes into a spend log.
//! - [`PaymentSigner`] holds the payer's key (hex from `X402_PAYER_KEY`, or an encrypted
//!   keystore) and turns one offer into a `PAYMENT-SIGNATURE` or `X-PAYMENT` header value. With
//!   feature `svm` it may hold a Solana key too (`X402_SVM_PAYER_KEY`), and the client then pays
//!   `exact` offers on Solana (a transaction built as the official client builds it).
//! - [`discover`] lists what a server charges, from its OpenAPI document (`x-payment-info`) or
//!   from the 402 of one URL.
//!
//! ```no_run
//! use x402_runtime::Currency;
//! use x402_runtime::client::{PaymentSigner, X402Client, discover};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = X402Client::builder(PaymentSigner::from_env()?)
//!     .max_per_request(Currency::Usdc, "0.01")
//!     .budget(Currency::Usdc, "0.50")
//!     .networks(["eip155:8453"])
//!     .build()?;
//! for endpoint in discover(client.http(), "https://api.example.com").await?.endpoints {
//!     println!("{} {} costs {} {}", endpoint.method, endpoint.path, endpoint.price, endpoint.currency);
//! }
//! let answer = client
//!     .post_json("https://api.example.com/forecast", &serde_json::json!({"city": "Oslo"}))
//!     .await?;
//! println!("{}: {}", answer.status(), answer.text());
//! # Ok(()) }
//! ```
//!
//! The `x402` command-line tool (crate `x402-runtime-cli`) is built on this module.

mod amount;
#[cfg(feature = "chain")]
mod approve;
mod builder;
mod challenge;
mod discover;
mod error;
mod pay;
mod policy;
mod signer;
#[cfg(feature = "svm")]
mod svm;

pub use amount::{AmountError, format_amount, parse_amount};
#[cfg(feature = "chain")]
#[cfg_attr(docsrs, doc(cfg(feature = "chain")))]
pub use approve::ApproveError;
pub use builder::X402ClientBuilder;
pub use discover::{
    DiscoverError, Discovery, FreeEndpoint, PricedEndpoint, discover, from_document,
};
pub use error::ClientError;
pub use pay::{ClientEvent, PaidResponse, X402Client};
pub use policy::{Spend, SpendStatus};
pub use signer::{
    KEYSTORE_ENV, KEYSTORE_PASSWORD_ENV, PAYER_KEY_ENV, PAYMENT_IDENTIFIER, PaymentSigner,
    SignError, SignedAuthorization, SignedPayment,
};
#[cfg(feature = "svm")]
#[cfg_attr(docsrs, doc(cfg(feature = "svm")))]
pub use svm::{
    SVM_PAYER_KEY_ENV, SVM_PAYER_KEYPAIR_ENV, SVM_RPC_URL_ENV, SvmChainFacts, SvmSignedTransfer,
};
