//! The paying HTTP client: answers a 402 within a spending policy and never pays twice for one
//! call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256, keccak256};
use axum::body::Bytes;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::Value;

use super::amount::{format_amount, parse_amount};
use super::signer::{PaymentSigner, SignError, SignedPayment, sign_error};
use crate::config::{ConfigError, unix_now};
use crate::network::{Asset, Network};
use crate::proto::{
    PAYMENT_REQUIRED, PAYMENT_RESPONSE, PaymentRequired, PaymentRequiredV1, SettleResponse,
    X_PAYMENT_RESPONSE,
};
use crate::registry::Currency;
use crate::respond::codes;

/// The pause before resending a payment whose settlement is pending when the server sends no
/// usable `Retry-After` (missing, not a number of seconds).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// The longest pause between two resends, whatever `Retry-After` says.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(30);
/// The shortest pause between two resends (a `Retry-After: 0` is not a busy loop).
const MIN_RETRY_PAUSE: Duration = Duration::from_secs(1);
/// The pause while another request is processing the same payment.
const IN_PROGRESS_PAUSE: Duration = Duration::from_millis(500);
/// Without [`X402ClientBuilder::max_wait`], waiting on a pending settlement goes on this many
/// seconds past the authorization's `validBefore`: long enough for a server to read on chain that
/// an unused authorization is dead (the chain needs a block 30 s past `validBefore`) and answer
/// `expired_unsettled`.
const WAIT_PAST_VALID_BEFORE: u64 = 60;
/// Without [`X402ClientBuilder::max_wait`], the longest one payment is waited on in all (for
/// offers with a long `maxTimeoutSeconds`).
const MAX_DEFAULT_WAIT: Duration = Duration::from_secs(600);
/// Payments one call may sign: the first, and one more once the first is dead.
const MAX_PAYMENTS_PER_CALL: u32 = 2;

/// An x402 client: sends a request, pays a 402 within its spending policy, and resends it with
/// the payment.
///
/// ```no_run
/// use x402_runtime::Currency;
/// use x402_runtime::client::{PaymentSigner, X402Client};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = X402Client::builder(PaymentSigner::from_env()?)
///     .max_per_request(Currency::Usdc, "0.01")
///     .budget(Currency::Usdc, "0.50")
///     .build()?;
/// let answer = client.get("http://127.0.0.1:4021/weather?city=Paris").await?;
/// println!("{} {}", answer.status(), answer.text());
/// if let Some(receipt) = answer.receipt() {
///     println!("paid in transaction {}", receipt.transaction);
/// }
/// for spend in client.spend_log() {
///     println!("{} {} to {} ({:?})", spend.amount, spend.currency, spend.pay_to, spend.status);
/// }
/// # Ok(()) }
/// ```
///
/// # Spending policy
///
/// Limits are in human units per currency: [`max_per_request`](X402ClientBuilder::max_per_request)
/// caps one payment, [`budget`](X402ClientBuilder::budget) caps the total this client signs.
/// An offer over either is refused before anything is signed. The budget counts every signed
/// authorization, settled or not, because whoever holds it can settle it until it expires. The
/// only exception is an authorization the server proved dead (`expired_unsettled`, below): it is
/// no longer counted, and the spend log records it as [`SpendStatus::ExpiredUnsettled`].
/// Without a limit for a currency, that limit does not apply.
///
/// # Exactly once
///
/// A signed payment is resent as is, never signed again while it may still settle:
///
/// - After a dropped connection it is resent (up to
///   [`resend_attempts`](X402ClientBuilder::resend_attempts) times).
/// - `409 payment_in_progress` (another request is processing it): resent after a short pause.
/// - `503 settlement_pending` (or `409 settlement_pending` from older servers): the outcome is
///   unknown and money may have moved. The same payment is resent after `Retry-After` seconds
///   (5 when missing or unreadable, at most 30 per wait), until the outcome is known or
///   [`max_wait`](X402ClientBuilder::max_wait) is spent (default: until 60 s past the
///   authorization's `validBefore`, at most 10 minutes); then the call ends with
///   [`ClientError::Unconfirmed`].
/// - `409 payment_already_settled`: it was charged once and the answer was lost:
///   [`ClientError::AlreadySettled`] with the transaction.
/// - A `402` whose `error` is `expired_unsettled` (the server proved the authorization was never
///   used on chain and its `validBefore` passed): the authorization is dead, its amount is
///   released from the budget, and the client pays the fresh challenge of that 402 with a new
///   payment. (Such an answer is only believed once `validBefore` has passed by the client's own
///   clock; before that the chain cannot have proven it, and it is treated as the next case.)
/// - Any other `402` in answer to a resend, while the authorization's `validBefore` has not
///   passed (by the client's clock): nothing is signed, since the earlier authorization could
///   still be settled and a second one could pay twice. The call ends with
///   [`ClientError::LiveAuthorizationRefused`] and the payment is kept.
/// - Any other `402` in answer to a resend once `validBefore` has passed: the authorization is
///   dead by its own terms ([`SpendStatus::Expired`]; it still counts against the budget, since
///   whether it settled before it expired is not proven) and the client pays the fresh challenge
///   with a new payment.
///
/// A call signs at most two payments, the second only after the first is dead. A `402` in
/// answer to the first sending of a payment is a refusal ([`ClientError::Refused`]): nothing is
/// signed again. If a call ends without a definite answer ([`ClientError::Unconfirmed`],
/// [`ClientError::LiveAuthorizationRefused`]), the next call of the same request (method, URL
/// and body) on this client resends the same payment, however late, and the rules above apply to
/// its answer. When the server declares the `payment-identifier` extension, the payment carries
/// an id, and resends carry the same one.
#[derive(Clone)]
pub struct X402Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    signer: PaymentSigner,
    policy: Policy,
    state: Mutex<State>,
    on_event: Option<EventHook>,
}

type EventHook = Arc<dyn Fn(&ClientEvent) + Send + Sync>;

struct Policy {
    max_per_request: HashMap<Currency, U256>,
    budget: HashMap<Currency, U256>,
    networks: Vec<Network>,
    currencies: Vec<Currency>,
    assets: Vec<Asset>,
    resend_attempts: u32,
    max_wait: Option<Duration>,
}

#[derive(Default)]
struct State {
    committed: HashMap<Currency, U256>,
    log: Vec<Spend>,
    /// Payments sent without a definite answer, by request.
    unsettled: HashMap<B256, Unsettled>,
}

#[derive(Clone)]
struct Unsettled {
    payment: SignedPayment,
    spend: usize,
}

/// Builds an [`X402Client`].
pub struct X402ClientBuilder {
    signer: PaymentSigner,
    http: Option<reqwest::Client>,
    limits: Vec<(Limit, Currency, String)>,
    networks: Vec<String>,
    currencies: Vec<Currency>,
    assets: Vec<Asset>,
    resend_attempts: u32,
    max_wait: Option<Duration>,
    on_event: Option<EventHook>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Limit {
    PerRequest,
    Budget,
}

impl X402ClientBuilder {
    /// The reqwest client to send requests with (default: 60 s timeout, 10 s connect timeout).
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The most one payment in `currency` may cost, in human units (`"0.01"`).
    pub fn max_per_request(mut self, currency: Currency, amount: &str) -> Self {
        self.limits
            .push((Limit::PerRequest, currency, amount.to_owned()));
        self
    }

    /// The most this client may sign in `currency` in total, in human units (`"0.50"`).
    pub fn budget(mut self, currency: Currency, amount: &str) -> Self {
        self.limits
            .push((Limit::Budget, currency, amount.to_owned()));
        self
    }

    /// Networks to pay on (CAIP-2 ids), most preferred first. Offers on other networks are
    /// refused. Default: any network with a known asset.
    pub fn networks<S: Into<String>>(mut self, networks: impl IntoIterator<Item = S>) -> Self {
        self.networks = networks.into_iter().map(Into::into).collect();
        self
    }

    /// Currencies to pay in, most preferred first. Default: every [`Currency`].
    pub fn currencies(mut self, currencies: impl IntoIterator<Item = Currency>) -> Self {
        self.currencies = currencies.into_iter().collect();
        self
    }

    /// Also pays in this token (the built-in table has Circle's USDC and EURC deployments).
    pub fn asset(mut self, asset: Asset) -> Self {
        self.assets.push(asset);
        self
    }

    /// How many times a paid request is sent when the connection fails (default 3).
    pub fn resend_attempts(mut self, attempts: u32) -> Self {
        self.resend_attempts = attempts.max(1);
        self
    }

    /// The most a call waits on one payment, in all, while the server answers
    /// `settlement_pending` or `payment_in_progress` (the same payment is resent after each
    /// `Retry-After`, at most 30 s each). When it is spent the call ends with
    /// [`ClientError::Unconfirmed`] and the payment is kept: the next call of the same request
    /// resends it and waits again, as long again at most.
    ///
    /// Default: until 60 s past the authorization's `validBefore` (its validity window plus the
    /// time a server needs to prove on chain that an unused authorization is dead), at most 10
    /// minutes.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = Some(wait);
        self
    }

    /// The former name of [`max_wait`](Self::max_wait).
    #[deprecated(note = "use `max_wait`")]
    pub fn settlement_wait(self, wait: Duration) -> Self {
        self.max_wait(wait)
    }

    /// Calls `hook` on every [`ClientEvent`] (to show progress).
    pub fn on_event(mut self, hook: impl Fn(&ClientEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(hook));
        self
    }

    /// Checks the limits and networks and builds the client.
    pub fn build(self) -> Result<X402Client, ConfigError> {
        let mut max_per_request = HashMap::new();
        let mut budget = HashMap::new();
        for (kind, currency, text) in &self.limits {
            let amount = parse_amount(text, currency.decimals())
                .map_err(|e| ConfigError::new(format!("{currency} limit: {e}")))?;
            match kind {
                Limit::PerRequest => max_per_request.insert(*currency, amount),
                Limit::Budget => budget.insert(*currency, amount),
            };
        }
        let networks = self
            .networks
            .iter()
            .map(|n| {
                Network::from_caip2(n)
                    .ok_or_else(|| ConfigError::new(format!("`{n}` is not an eip155 CAIP-2 id")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .connect_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| ConfigError::new(format!("cannot build the HTTP client: {e}")))?,
        };
        let currencies = if self.currencies.is_empty() {
            Currency::ALL.to_vec()
        } else {
            self.currencies
        };
        Ok(X402Client {
            inner: Arc::new(Inner {
                http,
                signer: self.signer,
                policy: Policy {
                    max_per_request,
                    budget,
                    networks,
                    currencies,
                    assets: self.assets,
                    resend_attempts: self.resend_attempts,
                    max_wait: self.max_wait,
                },
                state: Mutex::new(State::default()),
                on_event: self.on_event,
            }),
        })
    }
}

/// What happened to one signed payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
#[non_exhaustive]
pub enum SpendStatus {
    /// Sent; no answer yet.
    Sent,
    /// Settled: the receipt or the server names the transaction.
    Settled,
    /// The server answered without settling (the handler failed, so nothing was charged).
    NotSettled,
    /// The server refused the payment.
    Refused {
        /// The server's reason (an x402 error code when it sent one).
        reason: String,
    },
    /// No definite answer: the payment may still settle until it expires.
    Unknown {
        /// What went wrong.
        reason: String,
    },
    /// The server proved the authorization dead (`402 expired_unsettled`: never used on chain,
    /// and its `validBefore` passed). Nothing was charged, and it no longer counts against the
    /// budget.
    ExpiredUnsettled,
    /// Its `validBefore` passed and the server answered a resend with a fresh 402: it can no
    /// longer settle, but nothing proves it did not settle before it expired, so it still
    /// counts against the budget.
    Expired {
        /// The server's reason for the 402.
        reason: String,
    },
}

/// One entry of the spend log: a payment this client signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spend {
    /// Request method.
    pub method: String,
    /// Request URL.
    pub url: String,
    /// Amount in human units (`"0.001"`).
    pub amount: String,
    /// Amount in the token's atomic units.
    #[serde(serialize_with = "decimal")]
    pub atomic_amount: U256,
    /// Currency.
    #[serde(serialize_with = "symbol")]
    pub currency: Currency,
    /// CAIP-2 network.
    pub network: String,
    /// Token contract.
    pub asset: Address,
    /// Recipient.
    pub pay_to: Address,
    /// Payer.
    pub payer: Address,
    /// The authorization's nonce.
    pub nonce: B256,
    /// The authorization expires at this unix time.
    pub valid_before: u64,
    /// The `payment-identifier` sent, if the server asked for one.
    pub payment_id: Option<String>,
    /// Unix time of signing.
    pub signed_at: u64,
    /// Outcome so far.
    #[serde(flatten)]
    pub status: SpendStatus,
    /// The settlement transaction, once known.
    pub transaction: Option<String>,
}

/// Progress of a paid call, for [`X402ClientBuilder::on_event`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A payment was signed and is being sent; the server verifies and settles it before it
    /// answers.
    Paying(Box<Spend>),
    /// The paid request is sent again with the same payment after a connection failure.
    Resending {
        /// Attempt number, from 2.
        attempt: u32,
        /// Why.
        reason: String,
    },
    /// The server has not finished with the payment; the same payment is resent after `wait`.
    Waiting {
        /// The server's code: `settlement_pending` (the outcome is unknown and money may have
        /// moved) or `payment_in_progress` (another request is processing it).
        code: &'static str,
        /// The transaction the server named, if any.
        transaction: Option<String>,
        /// How long until the resend (`Retry-After`, bounded).
        wait: Duration,
        /// The resend's attempt number, from 2.
        attempt: u32,
    },
    /// A payment can no longer settle ([`SpendStatus::ExpiredUnsettled`] or
    /// [`SpendStatus::Expired`]); the call pays the server's fresh challenge with a new one.
    Expired(Box<Spend>),
    /// The answer arrived.
    Answered {
        /// HTTP status.
        status: u16,
    },
}

/// Why a call failed. Variants that carry a [`Spend`] happened after a payment was signed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The request could not be sent before any payment was made.
    Http(reqwest::Error),
    /// The request has a streaming body, which cannot be resent with a payment.
    BodyNotReplayable,
    /// A 402 without a readable x402 challenge.
    Challenge(String),
    /// The price is over the per-request maximum. Nothing was signed.
    OverRequestLimit {
        /// The price, e.g. `"0.02 USDC"`.
        price: String,
        /// The limit, e.g. `"0.01 USDC"`.
        limit: String,
    },
    /// The price is over what is left of the budget. Nothing was signed.
    OverBudget {
        /// The price.
        price: String,
        /// Already signed.
        spent: String,
        /// The budget.
        budget: String,
    },
    /// No offer of the challenge can be paid (network, asset, scheme). Nothing was signed.
    NoPayableOffer(Vec<String>),
    /// Signing failed. Nothing was sent.
    Sign(SignError),
    /// The server refused the payment.
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's reason.
        reason: String,
        /// The payment.
        spend: Box<Spend>,
    },
    /// The server had already settled this payment, so it was charged once, but the answer
    /// to the call that paid was lost.
    AlreadySettled {
        /// The settlement transaction.
        transaction: String,
        /// The payment.
        spend: Box<Spend>,
    },
    /// The server answered a resend of the payment with a fresh 402 while the authorization is
    /// still valid (its `validBefore` has not passed by this client's clock). Nothing was signed
    /// again: whoever holds the earlier authorization can still settle it, so a second one could
    /// pay twice. The payment is kept: calling again with the same request resends it, and once
    /// its `validBefore` has passed a fresh 402 lets the client sign a new one.
    LiveAuthorizationRefused {
        /// The server's reason for the 402.
        reason: String,
        /// The payment (its `valid_before` says until when it can settle).
        spend: Box<Spend>,
    },
    /// No definite answer (connection failures, settlement still pending). Calling again with
    /// the same request resends the same payment.
    Unconfirmed {
        /// What went wrong.
        reason: String,
        /// The transaction, if the server named one.
        transaction: Option<String>,
        /// The payment.
        spend: Box<Spend>,
    },
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Http(e) => write!(f, "request failed: {e}"),
            ClientError::BodyNotReplayable => {
                f.write_str("a paid request needs a body that can be sent twice (not a stream)")
            }
            ClientError::Challenge(why) => write!(f, "unreadable 402 challenge: {why}"),
            ClientError::OverRequestLimit { price, limit } => write!(
                f,
                "refused to pay {price}: over the per-request maximum of {limit} (nothing was signed)"
            ),
            ClientError::OverBudget {
                price,
                spent,
                budget,
            } => write!(
                f,
                "refused to pay {price}: {spent} of the {budget} budget already signed (nothing was signed)"
            ),
            ClientError::NoPayableOffer(reasons) => {
                write!(f, "no payable offer: {}", reasons.join("; "))
            }
            ClientError::Sign(e) => write!(f, "cannot sign the payment: {e}"),
            ClientError::Refused { status, reason, .. } => {
                write!(f, "the server refused the payment ({status}): {reason}")
            }
            ClientError::AlreadySettled { transaction, .. } => write!(
                f,
                "the payment was settled in transaction {transaction}, but its answer was lost"
            ),
            ClientError::LiveAuthorizationRefused { reason, spend } => write!(
                f,
                "the server refused the resent payment ({reason}) while its authorization can \
                 still settle (until {}); not signing another, which could pay twice",
                spend.valid_before
            ),
            ClientError::Unconfirmed {
                reason,
                transaction,
                ..
            } => {
                write!(f, "payment sent, outcome unknown: {reason}")?;
                if let Some(tx) = transaction {
                    write!(f, " (transaction {tx})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Http(e) => Some(e),
            ClientError::Sign(e) => Some(e),
            _ => None,
        }
    }
}

impl ClientError {
    /// The payment this error concerns, when one was signed.
    pub fn spend(&self) -> Option<&Spend> {
        match self {
            ClientError::Refused { spend, .. }
            | ClientError::AlreadySettled { spend, .. }
            | ClientError::LiveAuthorizationRefused { spend, .. }
            | ClientError::Unconfirmed { spend, .. } => Some(spend),
            _ => None,
        }
    }
}

/// The answer to a call, with the payment it took, if any.
#[derive(Debug)]
pub struct PaidResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    spend: Option<Spend>,
    receipt: Option<SettleResponse>,
}

impl PaidResponse {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Response body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The decoded `PAYMENT-RESPONSE` (or v1 `X-PAYMENT-RESPONSE`) receipt.
    pub fn receipt(&self) -> Option<&SettleResponse> {
        self.receipt.as_ref()
    }

    /// The payment this call made (`None` when the resource was free).
    pub fn spend(&self) -> Option<&Spend> {
        self.spend.as_ref()
    }
}

/// An offer of a v2 or v1 challenge, resolved to a known token.
struct Candidate {
    index: usize,
    network: Network,
    asset: Asset,
    amount: U256,
    pay_to: Address,
}

/// A challenge as read from a 402.
enum Challenge {
    V2(PaymentRequired),
    V1(PaymentRequiredV1),
}

impl Challenge {
    /// Reads the v2 `PAYMENT-REQUIRED` header, or else (no header, or an unreadable one) a v1
    /// body.
    fn read(headers: &HeaderMap, body: &[u8]) -> Result<Challenge, String> {
        let v2 = headers.get(PAYMENT_REQUIRED).map(|value| {
            let text = value
                .to_str()
                .map_err(|_| "PAYMENT-REQUIRED is not ASCII".to_owned())?;
            let json = decode_base64(text).ok_or("PAYMENT-REQUIRED is not base64")?;
            serde_json::from_slice::<PaymentRequired>(&json)
                .map_err(|e| format!("PAYMENT-REQUIRED is not a challenge: {e}"))
        });
        let v2_error = match v2 {
            Some(Ok(challenge)) => return Ok(Challenge::V2(challenge)),
            Some(Err(why)) => Some(why),
            None => None,
        };
        match serde_json::from_slice::<PaymentRequiredV1>(body) {
            Ok(v1) if v1.x402_version == 1 => Ok(Challenge::V1(v1)),
            Ok(v1) => Err(format!("unknown x402Version {}", v1.x402_version)),
            Err(_) => Err(v2_error
                .unwrap_or_else(|| "no PAYMENT-REQUIRED header and no x402 v1 body".to_owned())),
        }
    }

    /// `(scheme, network, amount, asset, payTo)` of each offer, in the server's order.
    fn offers(&self) -> Vec<(&str, Option<Network>, &str, &str, &str)> {
        match self {
            Challenge::V2(c) => c
                .accepts
                .iter()
                .map(|o| {
                    let network = Network::from_caip2(&o.network);
                    (
                        o.scheme.as_str(),
                        network,
                        o.amount.as_str(),
                        o.asset.as_str(),
                        o.pay_to.as_str(),
                    )
                })
                .collect(),
            Challenge::V1(c) => c
                .accepts
                .iter()
                .map(|o| {
                    (
                        o.scheme.as_str(),
                        Network::from_v1_name(&o.network),
                        o.max_amount_required.as_str(),
                        o.asset.as_str(),
                        o.pay_to.as_str(),
                    )
                })
                .collect(),
        }
    }

    fn network_names(&self) -> Vec<String> {
        match self {
            Challenge::V2(c) => c.accepts.iter().map(|o| o.network.clone()).collect(),
            Challenge::V1(c) => c.accepts.iter().map(|o| o.network.clone()).collect(),
        }
    }

    fn sign(&self, signer: &PaymentSigner, index: usize) -> Result<SignedPayment, SignError> {
        match self {
            Challenge::V2(c) => signer.sign_v2(c, index),
            Challenge::V1(c) => signer.sign_v1(&c.accepts[index]),
        }
    }
}

/// Accepts padded or unpadded standard base64 (servers differ).
pub(super) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok()
}

/// What a paid request's answer means.
#[derive(Debug)]
enum Verdict {
    /// A definite answer (the handler's response, with the receipt when it settled).
    Done(Option<SettleResponse>),
    /// A 402 (a fresh challenge or a settlement refusal), with the server's reason.
    /// `expired_unsettled`: the server says the authorization can never settle.
    Challenged {
        reason: String,
        expired_unsettled: bool,
    },
    /// Another refusal (409), with the server's reason.
    Refused(String),
    /// Settled earlier in this transaction.
    AlreadySettled(String),
    /// Not finished: resend the same payment after `pause`.
    Wait {
        code: &'static str,
        transaction: Option<String>,
        pause: Duration,
    },
}

impl X402Client {
    /// A builder for a client that pays with `signer`.
    pub fn builder(signer: PaymentSigner) -> X402ClientBuilder {
        X402ClientBuilder {
            signer,
            http: None,
            limits: Vec::new(),
            networks: Vec::new(),
            currencies: Vec::new(),
            assets: Vec::new(),
            resend_attempts: 3,
            max_wait: None,
            on_event: None,
        }
    }

    /// The underlying reqwest client, to build requests for [`send`](Self::send).
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The paying address.
    pub fn address(&self) -> Address {
        self.inner.signer.address()
    }

    /// `GET url`, paying if asked to.
    pub async fn get(&self, url: &str) -> Result<PaidResponse, ClientError> {
        self.send(self.inner.http.get(url)).await
    }

    /// `POST url` with a JSON body, paying if asked to.
    pub async fn post_json<T: Serialize + ?Sized>(
        &self,
        url: &str,
        body: &T,
    ) -> Result<PaidResponse, ClientError> {
        self.send(self.inner.http.post(url).json(body)).await
    }

    /// Sends a request; on a 402, pays one offer within the policy and resends it with the
    /// payment.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<PaidResponse, ClientError> {
        let request = request.build().map_err(ClientError::Http)?;
        let key = call_key(&request);
        // A payment of this call without a definite answer is resent, however late: only the
        // server's answer to it tells whether it settled or is dead.
        let earlier = self.lock().unsettled.get(&key).cloned();
        if let Some(earlier) = earlier {
            return self.deliver(&request, key, earlier, true).await;
        }
        let probe = request.try_clone().ok_or(ClientError::BodyNotReplayable)?;
        let response = self
            .inner
            .http
            .execute(probe)
            .await
            .map_err(ClientError::Http)?;
        if response.status() != StatusCode::PAYMENT_REQUIRED {
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(ClientError::Http)?;
            return Ok(PaidResponse {
                status,
                headers,
                body,
                spend: None,
                receipt: None,
            });
        }
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(ClientError::Http)?;
        let challenge = Challenge::read(&headers, &body).map_err(ClientError::Challenge)?;
        let unsettled = self.pay(&request, &challenge)?;
        self.lock().unsettled.insert(key, unsettled.clone());
        self.deliver(&request, key, unsettled, false).await
    }

    /// The payments this client signed, oldest first.
    pub fn spend_log(&self) -> Vec<Spend> {
        self.lock().log.clone()
    }

    /// What this client has signed in `currency`, in human units.
    pub fn spent(&self, currency: Currency) -> String {
        let committed = self
            .lock()
            .committed
            .get(&currency)
            .copied()
            .unwrap_or_default();
        format_amount(committed, currency.decimals())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn emit(&self, event: ClientEvent) {
        if let Some(hook) = &self.inner.on_event {
            hook(&event);
        }
    }

    /// Picks an offer, commits its amount against the budget and signs it.
    fn pay(
        &self,
        request: &reqwest::Request,
        challenge: &Challenge,
    ) -> Result<Unsettled, ClientError> {
        let policy = &self.inner.policy;
        let mut reasons = Vec::new();
        let mut candidates = Vec::new();
        let names = challenge.network_names();
        for (index, ((scheme, network, amount, asset, pay_to), name)) in
            challenge.offers().into_iter().zip(&names).enumerate()
        {
            match self.resolve(index, scheme, network, amount, asset, pay_to) {
                Ok(candidate) => candidates.push(candidate),
                Err(why) => reasons.push(format!("offer on {name}: {why}")),
            }
        }
        let rank = |c: &Candidate| {
            let network = policy
                .networks
                .iter()
                .position(|n| n.chain_id == c.network.chain_id)
                .unwrap_or(0);
            let currency = policy
                .currencies
                .iter()
                .position(|x| *x == c.asset.currency)
                .unwrap_or(usize::MAX);
            (network, currency, c.amount)
        };
        candidates.sort_by_key(rank);

        let mut state = self.lock();
        let mut limit_error = None;
        for candidate in candidates {
            let currency = candidate.asset.currency;
            let decimals = currency.decimals();
            let shown = |atomic: U256| format!("{} {currency}", format_amount(atomic, decimals));
            if let Some(max) = policy.max_per_request.get(&currency)
                && candidate.amount > *max
            {
                limit_error.get_or_insert(ClientError::OverRequestLimit {
                    price: shown(candidate.amount),
                    limit: shown(*max),
                });
                continue;
            }
            let committed = state.committed.get(&currency).copied().unwrap_or_default();
            if let Some(budget) = policy.budget.get(&currency)
                && committed.saturating_add(candidate.amount) > *budget
            {
                limit_error.get_or_insert(ClientError::OverBudget {
                    price: shown(candidate.amount),
                    spent: shown(committed),
                    budget: shown(*budget),
                });
                continue;
            }
            let payment = challenge
                .sign(&self.inner.signer, candidate.index)
                .map_err(ClientError::Sign)?;
            *state.committed.entry(currency).or_default() = committed + candidate.amount;
            let spend = Spend {
                method: request.method().to_string(),
                url: request.url().to_string(),
                amount: format_amount(candidate.amount, decimals),
                atomic_amount: candidate.amount,
                currency,
                network: candidate.network.caip2.clone(),
                asset: candidate.asset.address,
                pay_to: candidate.pay_to,
                payer: payment.authorization.from,
                nonce: payment.authorization.nonce,
                valid_before: u64::try_from(payment.authorization.valid_before).unwrap_or(u64::MAX),
                payment_id: payment.payment_id.clone(),
                signed_at: unix_now(),
                status: SpendStatus::Sent,
                transaction: None,
            };
            state.log.push(spend.clone());
            let index = state.log.len() - 1;
            drop(state);
            self.emit(ClientEvent::Paying(Box::new(spend)));
            return Ok(Unsettled {
                payment,
                spend: index,
            });
        }
        Err(limit_error.unwrap_or(ClientError::NoPayableOffer(reasons)))
    }

    /// Resolves one offer to a token this client pays in, or says why not.
    fn resolve(
        &self,
        index: usize,
        scheme: &str,
        network: Option<Network>,
        amount: &str,
        asset: &str,
        pay_to: &str,
    ) -> Result<Candidate, String> {
        let policy = &self.inner.policy;
        if scheme != "exact" {
            return Err(format!("the `{scheme}` scheme is not supported"));
        }
        let network = network.ok_or("not an EVM network this client knows")?;
        if !policy.networks.is_empty()
            && !policy
                .networks
                .iter()
                .any(|n| n.chain_id == network.chain_id)
        {
            return Err("not one of the allowed networks".to_owned());
        }
        let address = crate::payload::parse_address(asset, "asset")
            .map_err(|_| format!("asset `{asset}` is not an address"))?;
        let asset = policy
            .assets
            .iter()
            .find(|a| a.address == address && a.network == network.caip2)
            .cloned()
            .or_else(|| Asset::find(&network, address))
            .ok_or_else(|| format!("unknown token {address}"))?;
        if !policy.currencies.contains(&asset.currency) {
            return Err(format!("{} is not an allowed currency", asset.currency));
        }
        let amount = crate::payload::parse_uint(amount, "amount")
            .map_err(|_| format!("amount `{amount}` is not an integer"))?;
        let pay_to = crate::payload::parse_address(pay_to, "payTo")
            .map_err(|_| format!("payTo `{pay_to}` is not an address"))?;
        Ok(Candidate {
            index,
            network,
            asset,
            amount,
            pay_to,
        })
    }

    /// Sends the paid request, resending the same payment until there is a definite answer
    /// (the rules are in [`X402Client`]'s documentation). `resent`: the payment was sent before,
    /// by an earlier call.
    async fn deliver(
        &self,
        request: &reqwest::Request,
        key: B256,
        mut unsettled: Unsettled,
        mut resent: bool,
    ) -> Result<PaidResponse, ClientError> {
        let policy = &self.inner.policy;
        let mut payments = 1;
        let mut deadline = self.deadline(&unsettled);
        let mut failures = 0;
        let mut attempt = 1;
        loop {
            let mut paid = request.try_clone().ok_or(ClientError::BodyNotReplayable)?;
            let value = http::HeaderValue::from_str(&unsettled.payment.value)
                .map_err(|_| ClientError::Sign(sign_error("the payment is not a header value")))?;
            paid.headers_mut().insert(unsettled.payment.header, value);
            let outcome = match self.inner.http.execute(paid).await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    match response.bytes().await {
                        Ok(body) => Ok((status, headers, body)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            // Whatever became of this sending, the next one is a resend.
            let was_resend = std::mem::replace(&mut resent, true);
            let (status, headers, body) = match outcome {
                Ok(answer) => answer,
                Err(error) => {
                    failures += 1;
                    let reason = format!("connection failed: {error}");
                    if failures >= policy.resend_attempts || Instant::now() >= deadline {
                        return Err(self.unconfirmed(&unsettled, reason, None));
                    }
                    attempt += 1;
                    self.emit(ClientEvent::Resending {
                        attempt,
                        reason: reason.clone(),
                    });
                    tokio::time::sleep(Duration::from_millis(200 << failures.min(4))).await;
                    continue;
                }
            };
            self.emit(ClientEvent::Answered {
                status: status.as_u16(),
            });
            match judge(status, &headers, &body) {
                Verdict::Done(receipt) => {
                    let settled = receipt.as_ref().filter(|r| r.success);
                    let spend = self.finish(
                        key,
                        &unsettled,
                        match settled {
                            Some(_) => SpendStatus::Settled,
                            None => SpendStatus::NotSettled,
                        },
                        settled.map(|r| r.transaction.clone()),
                    );
                    return Ok(PaidResponse {
                        status,
                        headers,
                        body,
                        spend: Some(spend),
                        receipt,
                    });
                }
                Verdict::Refused(reason) => {
                    return Err(self.refused(key, &unsettled, status, reason));
                }
                Verdict::AlreadySettled(transaction) => {
                    let spend = self.finish(
                        key,
                        &unsettled,
                        SpendStatus::Settled,
                        Some(transaction.clone()),
                    );
                    return Err(ClientError::AlreadySettled {
                        transaction,
                        spend: Box::new(spend),
                    });
                }
                Verdict::Wait {
                    code,
                    transaction,
                    pause,
                } => {
                    let now = Instant::now();
                    if now >= deadline {
                        let reason = if code == codes::SETTLEMENT_PENDING {
                            "settlement is still pending"
                        } else {
                            "the server is still processing this payment"
                        };
                        return Err(self.unconfirmed(&unsettled, reason.to_owned(), transaction));
                    }
                    let pause = pause.min(deadline - now);
                    if transaction.is_some() {
                        self.lock().log[unsettled.spend]
                            .transaction
                            .clone_from(&transaction);
                    }
                    attempt += 1;
                    self.emit(ClientEvent::Waiting {
                        code,
                        transaction,
                        wait: pause,
                        attempt,
                    });
                    tokio::time::sleep(pause).await;
                }
                Verdict::Challenged {
                    reason,
                    expired_unsettled,
                } => {
                    let valid_before = u64::try_from(unsettled.payment.authorization.valid_before)
                        .unwrap_or(u64::MAX);
                    let past = unix_now() >= valid_before;
                    let dead = if expired_unsettled && past {
                        // Proven dead by the server: released from the budget.
                        self.bury(key, &unsettled, SpendStatus::ExpiredUnsettled, true)
                    } else if !was_resend {
                        // A refusal of a payment's first sending: nothing is signed again.
                        return Err(self.refused(key, &unsettled, status, reason));
                    } else if !past {
                        return Err(self.live_refused(&unsettled, reason));
                    } else {
                        // Dead by its own terms; whether it settled before is not proven.
                        let status = SpendStatus::Expired {
                            reason: reason.clone(),
                        };
                        self.bury(key, &unsettled, status, false)
                    };
                    self.emit(ClientEvent::Expired(Box::new(dead.clone())));
                    if payments >= MAX_PAYMENTS_PER_CALL {
                        return Err(ClientError::Refused {
                            status: status.as_u16(),
                            reason,
                            spend: Box::new(dead),
                        });
                    }
                    let challenge =
                        Challenge::read(&headers, &body).map_err(ClientError::Challenge)?;
                    unsettled = self.pay(request, &challenge)?;
                    self.lock().unsettled.insert(key, unsettled.clone());
                    payments += 1;
                    resent = false;
                    failures = 0;
                    attempt = 1;
                    deadline = self.deadline(&unsettled);
                }
            }
        }
    }

    /// Until when the answers to `unsettled` are waited for: [`X402ClientBuilder::max_wait`]
    /// from now, or by default until [`WAIT_PAST_VALID_BEFORE`] past its `validBefore` (at most
    /// [`MAX_DEFAULT_WAIT`]).
    fn deadline(&self, unsettled: &Unsettled) -> Instant {
        let wait = self.inner.policy.max_wait.unwrap_or_else(|| {
            let valid_before =
                u64::try_from(unsettled.payment.authorization.valid_before).unwrap_or(u64::MAX);
            let left = valid_before
                .saturating_add(WAIT_PAST_VALID_BEFORE)
                .saturating_sub(unix_now());
            Duration::from_secs(left).min(MAX_DEFAULT_WAIT)
        });
        Instant::now() + wait
    }

    /// Records a definite outcome and forgets the unsettled payment.
    fn finish(
        &self,
        key: B256,
        unsettled: &Unsettled,
        status: SpendStatus,
        transaction: Option<String>,
    ) -> Spend {
        let mut state = self.lock();
        state.unsettled.remove(&key);
        let spend = &mut state.log[unsettled.spend];
        spend.status = status;
        if transaction.is_some() {
            spend.transaction = transaction;
        }
        spend.clone()
    }

    /// Records a refusal: the payment is forgotten (it still counts against the budget).
    fn refused(
        &self,
        key: B256,
        unsettled: &Unsettled,
        status: StatusCode,
        reason: String,
    ) -> ClientError {
        let spend = self.finish(
            key,
            unsettled,
            SpendStatus::Refused {
                reason: reason.clone(),
            },
            None,
        );
        ClientError::Refused {
            status: status.as_u16(),
            reason,
            spend: Box::new(spend),
        }
    }

    /// Records a payment that can no longer settle and forgets it; `release`: the server proved
    /// nothing was charged, so its amount no longer counts against the budget.
    fn bury(&self, key: B256, unsettled: &Unsettled, status: SpendStatus, release: bool) -> Spend {
        let spend = self.finish(key, unsettled, status, None);
        if release {
            let mut state = self.lock();
            let committed = state.committed.entry(spend.currency).or_default();
            *committed = committed.saturating_sub(spend.atomic_amount);
        }
        spend
    }

    /// Records a refused resend of a live authorization; the payment stays ready to be resent.
    fn live_refused(&self, unsettled: &Unsettled, reason: String) -> ClientError {
        let mut state = self.lock();
        let spend = &mut state.log[unsettled.spend];
        spend.status = SpendStatus::Unknown {
            reason: format!(
                "the server refused a resend ({reason}) while the authorization can still settle"
            ),
        };
        ClientError::LiveAuthorizationRefused {
            reason,
            spend: Box::new(spend.clone()),
        }
    }

    /// Records an unknown outcome; the payment stays ready to be resent.
    fn unconfirmed(
        &self,
        unsettled: &Unsettled,
        reason: String,
        transaction: Option<String>,
    ) -> ClientError {
        let mut state = self.lock();
        let spend = &mut state.log[unsettled.spend];
        spend.status = SpendStatus::Unknown {
            reason: reason.clone(),
        };
        if transaction.is_some() {
            spend.transaction.clone_from(&transaction);
        }
        ClientError::Unconfirmed {
            reason,
            transaction: transaction.or_else(|| spend.transaction.clone()),
            spend: Box::new(spend.clone()),
        }
    }
}

/// Reads the answer to a paid request.
fn judge(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    let receipt = [PAYMENT_RESPONSE, X_PAYMENT_RESPONSE]
        .into_iter()
        .find_map(|name| headers.get(name))
        .and_then(|v| v.to_str().ok())
        .and_then(decode_base64)
        .and_then(|json| serde_json::from_slice::<SettleResponse>(&json).ok());
    let error: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        error
            .as_ref()
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let code = field("error");
    let transaction = field("transaction")
        .or_else(|| receipt.as_ref().map(|r| r.transaction.clone()))
        .filter(|t| !t.is_empty());
    match (status, code.as_deref()) {
        (StatusCode::CONFLICT, Some(codes::PAYMENT_IN_PROGRESS)) => Verdict::Wait {
            code: codes::PAYMENT_IN_PROGRESS,
            transaction: None,
            pause: IN_PROGRESS_PAUSE,
        },
        (StatusCode::CONFLICT, Some(codes::PAYMENT_ALREADY_SETTLED)) if transaction.is_some() => {
            Verdict::AlreadySettled(transaction.unwrap_or_default())
        }
        (StatusCode::CONFLICT | StatusCode::SERVICE_UNAVAILABLE, _)
            if code.as_deref() == Some(codes::SETTLEMENT_PENDING)
                || code.is_none()
                    && receipt.as_ref().and_then(|r| r.error_reason.as_deref())
                        == Some(codes::SETTLEMENT_PENDING) =>
        {
            Verdict::Wait {
                code: codes::SETTLEMENT_PENDING,
                transaction,
                pause: retry_after(headers),
            }
        }
        (StatusCode::PAYMENT_REQUIRED | StatusCode::CONFLICT, _) => {
            let challenge_error = headers
                .get(PAYMENT_REQUIRED)
                .and_then(|v| v.to_str().ok())
                .and_then(decode_base64)
                .and_then(|json| serde_json::from_slice::<PaymentRequired>(&json).ok())
                .and_then(|c| c.error);
            let receipt_reason = receipt.as_ref().and_then(|r| r.error_reason.clone());
            let expired_unsettled = receipt_reason.is_none()
                && [&challenge_error, &code]
                    .into_iter()
                    .flatten()
                    .any(|c| c == codes::EXPIRED_UNSETTLED);
            let reason = receipt_reason
                .or(code)
                .or(challenge_error)
                .unwrap_or_else(|| "no reason given".to_owned());
            if status == StatusCode::PAYMENT_REQUIRED {
                Verdict::Challenged {
                    reason,
                    expired_unsettled,
                }
            } else {
                Verdict::Refused(reason)
            }
        }
        _ => Verdict::Done(receipt),
    }
}

/// The pause `Retry-After` asks for: whole seconds, 5 when missing or unreadable, between 1 and
/// 30 seconds.
fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
        .clamp(MIN_RETRY_PAUSE, MAX_RETRY_PAUSE)
}

fn decimal<S: serde::Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn symbol<S: serde::Serializer>(value: &Currency, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(value.symbol())
}

/// Identifies one call: method, URL and body.
fn call_key(request: &reqwest::Request) -> B256 {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(request.method().as_str().as_bytes());
    bytes.push(b' ');
    bytes.extend_from_slice(request.url().as_str().as_bytes());
    bytes.push(b'\n');
    if let Some(body) = request.body().and_then(reqwest::Body::as_bytes) {
        bytes.extend_from_slice(body);
    }
    keccak256(bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map
    }

    fn receipt(success: bool, transaction: &str, reason: Option<&str>) -> String {
        let receipt = SettleResponse {
            success,
            error_reason: reason.map(str::to_owned),
            error_message: None,
            payer: None,
            transaction: transaction.to_owned(),
            network: "eip155:84532".to_owned(),
            amount: None,
        };
        STANDARD.encode(serde_json::to_vec(&receipt).expect("json"))
    }

    /// A v2 challenge for 0.001 USDC on Base Sepolia, valid `timeout` seconds, as the
    /// `PAYMENT-REQUIRED` value.
    fn challenge(timeout: u64, error: Option<&str>) -> String {
        let challenge: PaymentRequired = serde_json::from_value(serde_json::json!({
            "x402Version": 2,
            "error": error.unwrap_or("PAYMENT-SIGNATURE header is required"),
            "resource": {"url": "http://127.0.0.1/weather"},
            "accepts": [{
                "scheme": "exact", "network": "eip155:84532", "amount": "1000",
                "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                "payTo": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
                "maxTimeoutSeconds": timeout, "extra": {"name": "USDC", "version": "2"}
            }]
        }))
        .expect("challenge");
        STANDARD.encode(serde_json::to_vec(&challenge).expect("json"))
    }

    fn tx() -> String {
        "0x".to_owned() + &"ab".repeat(32)
    }

    #[test]
    fn answers_to_a_paid_request_are_read_as_the_paywall_means_them() {
        let tx = tx();
        let ok = judge(
            StatusCode::OK,
            &headers(&[(PAYMENT_RESPONSE, receipt(true, &tx, None))]),
            b"{}",
        );
        assert!(matches!(ok, Verdict::Done(Some(r)) if r.success && r.transaction == tx));
        let handler_error = judge(StatusCode::NOT_FOUND, &HeaderMap::new(), b"{}");
        assert!(matches!(handler_error, Verdict::Done(None)));

        let busy = judge(
            StatusCode::CONFLICT,
            &HeaderMap::new(),
            br#"{"error":"payment_in_progress"}"#,
        );
        assert!(matches!(
            busy,
            Verdict::Wait { code: codes::PAYMENT_IN_PROGRESS, transaction: None, pause }
                if pause == IN_PROGRESS_PAUSE
        ));
        let settled = format!(r#"{{"error":"payment_already_settled","transaction":"{tx}"}}"#);
        let done = judge(StatusCode::CONFLICT, &HeaderMap::new(), settled.as_bytes());
        assert!(matches!(done, Verdict::AlreadySettled(t) if t == tx));

        // 503 settlement_pending (the answer to a first sending and to every resend), with the
        // transaction from the receipt; 409 settlement_pending from older servers; a receipt
        // alone says it too.
        let pending = judge(
            StatusCode::SERVICE_UNAVAILABLE,
            &headers(&[
                (
                    PAYMENT_RESPONSE,
                    receipt(false, &tx, Some("settlement_pending")),
                ),
                ("retry-after", "5".to_owned()),
            ]),
            br#"{"error":"settlement_pending","message":"..."}"#,
        );
        assert!(matches!(
            &pending,
            Verdict::Wait { code: codes::SETTLEMENT_PENDING, transaction: Some(t), pause }
                if *t == tx && *pause == Duration::from_secs(5)
        ));
        let older = judge(
            StatusCode::CONFLICT,
            &HeaderMap::new(),
            format!(r#"{{"error":"settlement_pending","transaction":"{tx}"}}"#).as_bytes(),
        );
        assert!(matches!(
            &older,
            Verdict::Wait { code: codes::SETTLEMENT_PENDING, transaction: Some(t), .. } if *t == tx
        ));
        let receipt_only = judge(
            StatusCode::SERVICE_UNAVAILABLE,
            &headers(&[(
                X_PAYMENT_RESPONSE,
                receipt(false, "", Some("settlement_pending")),
            )]),
            b"",
        );
        assert!(matches!(
            receipt_only,
            Verdict::Wait {
                code: codes::SETTLEMENT_PENDING,
                transaction: None,
                ..
            }
        ));
        // Another 503 is the server's answer, not a pending settlement.
        let unavailable = judge(
            StatusCode::SERVICE_UNAVAILABLE,
            &HeaderMap::new(),
            br#"{"error":"replay_store_unavailable"}"#,
        );
        assert!(matches!(unavailable, Verdict::Done(None)));

        let failed = judge(
            StatusCode::PAYMENT_REQUIRED,
            &headers(&[(
                PAYMENT_RESPONSE,
                receipt(false, "", Some("invalid_exact_evm_insufficient_balance")),
            )]),
            b"{}",
        );
        assert!(matches!(
            failed,
            Verdict::Challenged { reason, expired_unsettled: false }
                if reason == "invalid_exact_evm_insufficient_balance"
        ));
        let refused = judge(
            StatusCode::PAYMENT_REQUIRED,
            &HeaderMap::new(),
            br#"{"error":"invalid_exact_evm_payload_signature"}"#,
        );
        assert!(matches!(
            refused,
            Verdict::Challenged { reason, expired_unsettled: false }
                if reason == "invalid_exact_evm_payload_signature"
        ));
        let conflict = judge(StatusCode::CONFLICT, &HeaderMap::new(), b"not json");
        assert!(matches!(conflict, Verdict::Refused(r) if r == "no reason given"));
    }

    #[test]
    fn a_402_saying_expired_unsettled_is_told_apart() {
        // v2: the fresh challenge's `error`; v1: the body's `error`.
        let v2 = judge(
            StatusCode::PAYMENT_REQUIRED,
            &headers(&[(
                PAYMENT_REQUIRED,
                challenge(60, Some(codes::EXPIRED_UNSETTLED)),
            )]),
            b"{}",
        );
        assert!(matches!(
            v2,
            Verdict::Challenged { reason, expired_unsettled: true } if reason == "expired_unsettled"
        ));
        let v1 = judge(
            StatusCode::PAYMENT_REQUIRED,
            &HeaderMap::new(),
            br#"{"x402Version":1,"error":"expired_unsettled","accepts":[]}"#,
        );
        assert!(matches!(
            v1,
            Verdict::Challenged {
                expired_unsettled: true,
                ..
            }
        ));
        let fresh = judge(
            StatusCode::PAYMENT_REQUIRED,
            &headers(&[(PAYMENT_REQUIRED, challenge(60, Some(codes::VALID_BEFORE)))]),
            b"{}",
        );
        assert!(matches!(
            fresh,
            Verdict::Challenged { reason, expired_unsettled: false } if reason == codes::VALID_BEFORE
        ));
        // A 409 is never a fresh challenge.
        let conflict = judge(
            StatusCode::CONFLICT,
            &HeaderMap::new(),
            br#"{"error":"expired_unsettled"}"#,
        );
        assert!(matches!(conflict, Verdict::Refused(_)));
    }

    #[test]
    fn retry_after_is_whole_seconds_with_a_default_and_bounds() {
        let wait = |value: Option<&str>| {
            let headers = match value {
                Some(v) => headers(&[("retry-after", v.to_owned())]),
                None => HeaderMap::new(),
            };
            retry_after(&headers)
        };
        assert_eq!(wait(None), Duration::from_secs(5));
        assert_eq!(wait(Some("abc")), Duration::from_secs(5));
        assert_eq!(
            wait(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            Duration::from_secs(5)
        );
        assert_eq!(wait(Some("-3")), Duration::from_secs(5));
        assert_eq!(wait(Some("7")), Duration::from_secs(7));
        assert_eq!(wait(Some(" 12 ")), Duration::from_secs(12));
        assert_eq!(wait(Some("120")), MAX_RETRY_PAUSE);
        assert_eq!(MAX_RETRY_PAUSE, Duration::from_secs(30));
        assert_eq!(wait(Some("0")), MIN_RETRY_PAUSE);
    }

    #[test]
    fn a_call_is_identified_by_method_url_and_body() {
        let http = reqwest::Client::new();
        let key = |request: reqwest::RequestBuilder| call_key(&request.build().expect("request"));
        let url = "http://127.0.0.1:1/forecast";
        let a = key(http.post(url).body("{\"days\":1}"));
        assert_eq!(a, key(http.post(url).body("{\"days\":1}")));
        assert_ne!(a, key(http.post(url).body("{\"days\":2}")));
        assert_ne!(a, key(http.put(url).body("{\"days\":1}")));
        assert_ne!(a, key(http.post(format!("{url}?x=1")).body("{\"days\":1}")));
    }

    // The resend loop against a scripted server.

    /// Public test key #1 of the anvil/hardhat mnemonic.
    const PAYER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

    /// What the scripted server answers a request that carries a payment.
    #[derive(Clone, Debug)]
    enum Reply {
        /// `status` `settlement_pending` with a receipt naming [`tx`] and this `Retry-After`.
        Pending(u16, Option<&'static str>),
        /// 200 with a successful receipt naming [`tx`].
        Settled,
        /// 402 with a fresh challenge whose `error` is this.
        Challenge(&'static str),
    }

    #[derive(Default)]
    struct Script {
        queue: VecDeque<Reply>,
        then: Option<Reply>,
        /// Every payment header received, in order.
        seen: Vec<String>,
        timeout: u64,
    }

    /// A paid endpoint on 127.0.0.1: a request without a payment gets a 402 with a challenge
    /// valid `timeout` seconds; one with a payment is recorded and answered with the next
    /// scripted reply, then with `then` (200 settled unless set).
    #[derive(Clone)]
    struct Server {
        url: String,
        script: Arc<Mutex<Script>>,
    }

    impl Server {
        async fn start(timeout: u64, queue: Vec<Reply>) -> Server {
            let script = Arc::new(Mutex::new(Script {
                queue: queue.into(),
                timeout,
                ..Script::default()
            }));
            let state = script.clone();
            let app = axum::Router::new().fallback(move |headers: HeaderMap| {
                let script = state.clone();
                async move { answer(&script, &headers) }
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let url = format!("http://{}/weather", listener.local_addr().expect("addr"));
            tokio::spawn(async move { axum::serve(listener, app).await });
            Server { url, script }
        }

        fn script(&self) -> MutexGuard<'_, Script> {
            self.script.lock().expect("script")
        }

        fn then(&self, reply: Reply) {
            self.script().then = Some(reply);
        }

        fn push(&self, replies: impl IntoIterator<Item = Reply>) {
            self.script().queue.extend(replies);
        }

        /// The payment headers received so far.
        fn seen(&self) -> Vec<String> {
            self.script().seen.clone()
        }
    }

    fn answer(script: &Mutex<Script>, headers: &HeaderMap) -> axum::response::Response {
        use axum::response::IntoResponse as _;
        let mut script = script.lock().expect("script");
        let timeout = script.timeout;
        let Some(payment) = headers.get(crate::proto::PAYMENT_SIGNATURE) else {
            return (
                StatusCode::PAYMENT_REQUIRED,
                [(PAYMENT_REQUIRED, challenge(timeout, None))],
                "{}",
            )
                .into_response();
        };
        script
            .seen
            .push(payment.to_str().expect("ascii").to_owned());
        let reply = script
            .queue
            .pop_front()
            .or_else(|| script.then.clone())
            .unwrap_or(Reply::Settled);
        match reply {
            Reply::Pending(status, retry_after) => {
                let mut response = (
                    StatusCode::from_u16(status).expect("status"),
                    [(
                        PAYMENT_RESPONSE,
                        receipt(false, &tx(), Some(codes::SETTLEMENT_PENDING)),
                    )],
                    format!(
                        r#"{{"error":"settlement_pending","message":"resend","transaction":"{}"}}"#,
                        tx()
                    ),
                )
                    .into_response();
                if let Some(value) = retry_after {
                    response.headers_mut().insert(
                        http::header::RETRY_AFTER,
                        http::HeaderValue::from_static(value),
                    );
                }
                response
            }
            Reply::Settled => (
                StatusCode::OK,
                [(PAYMENT_RESPONSE, receipt(true, &tx(), None))],
                r#"{"city":"Paris"}"#,
            )
                .into_response(),
            Reply::Challenge(error) => (
                StatusCode::PAYMENT_REQUIRED,
                [(PAYMENT_REQUIRED, challenge(timeout, Some(error)))],
                "{}",
            )
                .into_response(),
        }
    }

    /// A client for the test payer, and the events it reported (`Debug` form).
    fn client(
        configure: impl FnOnce(X402ClientBuilder) -> X402ClientBuilder,
    ) -> (X402Client, Arc<Mutex<Vec<ClientEvent>>>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http");
        let builder = X402Client::builder(PaymentSigner::from_key(PAYER_KEY).expect("key"))
            .http(http)
            .on_event(move |event| seen.lock().expect("events").push(event.clone()));
        (configure(builder).build().expect("client"), events)
    }

    fn waits(events: &Mutex<Vec<ClientEvent>>) -> Vec<(&'static str, Duration)> {
        events
            .lock()
            .expect("events")
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Waiting { code, wait, .. } => Some((*code, *wait)),
                _ => None,
            })
            .collect()
    }

    fn paying(events: &Mutex<Vec<ClientEvent>>) -> usize {
        let events = events.lock().expect("events");
        events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Paying(_)))
            .count()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pending_settlement_is_waited_on_with_the_same_payment() {
        let server = Server::start(
            60,
            vec![
                Reply::Pending(503, Some("1")),
                Reply::Pending(409, Some("1")),
            ],
        )
        .await;
        let (client, events) = client(|b| b);
        let started = Instant::now();
        let answer = client.get(&server.url).await.expect("paid");
        assert!(started.elapsed() >= Duration::from_secs(2));
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.receipt().expect("receipt").transaction, tx());
        let seen = server.seen();
        assert_eq!(seen.len(), 3);
        assert!(
            seen.iter().all(|p| *p == seen[0]),
            "the same payment each time"
        );
        assert_eq!(paying(&events), 1, "signed once");
        assert_eq!(
            waits(&events),
            vec![
                (codes::SETTLEMENT_PENDING, Duration::from_secs(1)),
                (codes::SETTLEMENT_PENDING, Duration::from_secs(1)),
            ]
        );
        let log = client.spend_log();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].status, SpendStatus::Settled);
        assert_eq!(log[0].transaction.as_deref(), Some(tx().as_str()));
        assert_eq!(client.spent(Currency::Usdc), "0.001");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_is_bounded_and_the_next_call_resends_the_same_payment() {
        let server = Server::start(60, vec![]).await;
        server.then(Reply::Pending(503, Some("1")));
        let (client, events) = client(|b| b.max_wait(Duration::from_millis(1500)));
        let started = Instant::now();
        let error = client.get(&server.url).await.expect_err("still pending");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1500) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        let ClientError::Unconfirmed {
            transaction, spend, ..
        } = &error
        else {
            panic!("expected Unconfirmed, got {error}");
        };
        assert_eq!(transaction.as_deref(), Some(tx().as_str()));
        assert!(matches!(spend.status, SpendStatus::Unknown { .. }));
        // The last wait is cut to what is left of max_wait.
        let waits = waits(&events);
        assert_eq!(
            waits[0],
            (codes::SETTLEMENT_PENDING, Duration::from_secs(1))
        );
        assert!(waits.iter().all(|(_, w)| *w <= Duration::from_secs(1)));
        let sent = server.seen();
        assert!(sent.len() >= 2, "{}", sent.len());

        // The same call again resends the same payment; nothing new is signed.
        server.then(Reply::Settled);
        let answer = client.get(&server.url).await.expect("paid");
        assert_eq!(answer.status(), StatusCode::OK);
        let seen = server.seen();
        assert_eq!(seen.len(), sent.len() + 1);
        assert!(seen.iter().all(|p| *p == seen[0]));
        assert_eq!(paying(&events), 1);
        let log = client.spend_log();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].status, SpendStatus::Settled);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_authorization_proven_dead_is_released_and_paid_anew() {
        // Valid for 1 s: by the resend after `Retry-After: 1` its validBefore has passed.
        let server = Server::start(
            1,
            vec![
                Reply::Pending(503, Some("1")),
                Reply::Challenge(codes::EXPIRED_UNSETTLED),
            ],
        )
        .await;
        // The budget holds one payment: the dead one must be released for the second.
        let (client, events) = client(|b| b.budget(Currency::Usdc, "0.001"));
        let answer = client.get(&server.url).await.expect("paid anew");
        assert_eq!(answer.status(), StatusCode::OK);
        let seen = server.seen();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(seen[0], seen[1], "the pending payment was resent as is");
        assert_ne!(
            seen[1], seen[2],
            "a new payment after the first was proven dead"
        );
        let log = client.spend_log();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].status, SpendStatus::ExpiredUnsettled);
        assert_eq!(log[1].status, SpendStatus::Settled);
        assert_ne!(log[0].nonce, log[1].nonce);
        assert_eq!(answer.spend().expect("spend").nonce, log[1].nonce);
        assert_eq!(
            client.spent(Currency::Usdc),
            "0.001",
            "the dead one is released"
        );
        let expired = events
            .lock()
            .expect("events")
            .iter()
            .filter(|e| matches!(e, ClientEvent::Expired(s) if s.status == SpendStatus::ExpiredUnsettled))
            .count();
        assert_eq!(expired, 1);
        assert_eq!(paying(&events), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_resend_of_a_live_authorization_is_not_signed_again() {
        let server = Server::start(
            60,
            vec![
                Reply::Pending(503, Some("1")),
                Reply::Challenge(codes::VALID_BEFORE),
            ],
        )
        .await;
        let (client, events) = client(|b| b);
        let error = client.get(&server.url).await.expect_err("refused");
        let ClientError::LiveAuthorizationRefused { reason, spend } = &error else {
            panic!("expected LiveAuthorizationRefused, got {error}");
        };
        assert_eq!(reason, codes::VALID_BEFORE);
        assert!(spend.valid_before > unix_now());
        assert!(matches!(spend.status, SpendStatus::Unknown { .. }));
        assert!(error.to_string().contains("could pay twice"), "{error}");
        assert_eq!(server.seen().len(), 2);
        assert_eq!(paying(&events), 1);

        // `expired_unsettled` for an authorization that is still valid by our clock cannot be
        // true (the chain cannot have proven it): not believed, nothing released or signed.
        server.push([Reply::Challenge(codes::EXPIRED_UNSETTLED)]);
        let error = client.get(&server.url).await.expect_err("refused");
        assert!(
            matches!(&error, ClientError::LiveAuthorizationRefused { reason, .. } if reason == codes::EXPIRED_UNSETTLED),
            "{error}"
        );
        assert_eq!(client.spent(Currency::Usdc), "0.001");

        // The payment was kept: the next call resends it.
        let answer = client.get(&server.url).await.expect("paid");
        assert_eq!(answer.status(), StatusCode::OK);
        let seen = server.seen();
        assert_eq!(seen.len(), 4);
        assert!(seen.iter().all(|p| *p == seen[0]));
        assert_eq!(paying(&events), 1);
        assert_eq!(client.spend_log().len(), 1);
        assert_eq!(client.spend_log()[0].status, SpendStatus::Settled);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_resend_past_valid_before_may_be_paid_anew() {
        let script = || {
            vec![
                Reply::Pending(503, Some("1")),
                Reply::Challenge(codes::VALID_BEFORE),
            ]
        };
        let server = Server::start(1, script()).await;
        let (unlimited, _) = client(|b| b);
        let answer = unlimited.get(&server.url).await.expect("paid anew");
        assert_eq!(answer.status(), StatusCode::OK);
        let seen = server.seen();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0], seen[1]);
        assert_ne!(seen[1], seen[2]);
        let log = unlimited.spend_log();
        assert_eq!(log.len(), 2);
        assert_eq!(
            log[0].status,
            SpendStatus::Expired {
                reason: codes::VALID_BEFORE.to_owned()
            }
        );
        assert_eq!(log[1].status, SpendStatus::Settled);
        // Not proven unsettled: it still counts against the budget.
        assert_eq!(unlimited.spent(Currency::Usdc), "0.002");

        // So with a budget for one payment, the new one is refused before it is signed.
        let server = Server::start(1, script()).await;
        let (limited, _) = client(|b| b.budget(Currency::Usdc, "0.0015"));
        let error = limited.get(&server.url).await.expect_err("over budget");
        assert!(matches!(error, ClientError::OverBudget { .. }), "{error}");
        assert_eq!(server.seen().len(), 2);
        assert_eq!(limited.spend_log().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_first_sending_is_not_signed_again() {
        let server = Server::start(
            60,
            vec![Reply::Challenge("invalid_exact_evm_insufficient_balance")],
        )
        .await;
        let (client, events) = client(|b| b);
        let error = client.get(&server.url).await.expect_err("refused");
        assert!(
            matches!(&error, ClientError::Refused { status: 402, reason, .. }
                if reason == "invalid_exact_evm_insufficient_balance"),
            "{error}"
        );
        assert_eq!(server.seen().len(), 1);
        assert_eq!(paying(&events), 1);
        assert!(matches!(
            client.spend_log()[0].status,
            SpendStatus::Refused { .. }
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_signs_at_most_two_payments() {
        let server = Server::start(
            1,
            vec![
                Reply::Pending(503, Some("1")),
                Reply::Challenge(codes::EXPIRED_UNSETTLED),
                Reply::Pending(503, Some("1")),
                Reply::Challenge(codes::EXPIRED_UNSETTLED),
            ],
        )
        .await;
        let (client, events) = client(|b| b);
        let error = client.get(&server.url).await.expect_err("refused");
        assert!(
            matches!(&error, ClientError::Refused { status: 402, reason, .. } if reason == codes::EXPIRED_UNSETTLED),
            "{error}"
        );
        let seen = server.seen();
        assert_eq!(seen.len(), 4);
        assert_eq!(paying(&events), 2);
        let log = client.spend_log();
        assert!(
            log.iter()
                .all(|s| s.status == SpendStatus::ExpiredUnsettled),
            "{log:?}"
        );
        assert_eq!(client.spent(Currency::Usdc), "0");
    }
}
