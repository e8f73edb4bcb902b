//! The paying HTTP client: answers a 402 within a spending policy and never pays twice for one
//! call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

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

/// Seconds before `validBefore` after which a signed payment is no longer sent.
const EXPIRY_MARGIN_SECONDS: u64 = 6;
/// Longest pause between two resends while the server reports work in progress.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// An x402 client: sends a request, pays a 402 within its spending policy, and resends once
/// with the payment.
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
/// authorization, settled or not, because whoever holds it can settle it until it expires.
/// Without a limit for a currency, that limit does not apply.
///
/// # Exactly once
///
/// A signed payment is resent as is, never signed again: after a dropped connection, while the
/// server answers `payment_in_progress`, and while settlement is pending. If a call ends without
/// a definite answer, the next call of the same request (method, URL and body) reuses the same
/// payment while it is valid. When the server declares the `payment-identifier` extension, the
/// payment carries an id, and resends carry the same one.
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
    settlement_wait: Duration,
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
    settlement_wait: Duration,
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

    /// How long to keep resending while the server reports the payment in progress or its
    /// settlement pending (default 60 s; never past the payment's validity).
    pub fn settlement_wait(mut self, wait: Duration) -> Self {
        self.settlement_wait = wait;
        self
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
                    settlement_wait: self.settlement_wait,
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
    /// The paid request is sent again with the same payment.
    Resending {
        /// Attempt number, from 2.
        attempt: u32,
        /// Why.
        reason: String,
    },
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
enum Verdict {
    Done(Option<SettleResponse>),
    Refused(String),
    AlreadySettled(String),
    Wait(String, Option<String>, Duration),
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
            settlement_wait: Duration::from_secs(60),
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
        let earlier = self.lock().unsettled.get(&key).cloned();
        if let Some(earlier) = earlier {
            let valid_before =
                u64::try_from(earlier.payment.authorization.valid_before).unwrap_or(u64::MAX);
            if valid_before > unix_now() + EXPIRY_MARGIN_SECONDS {
                return self.deliver(&request, key, earlier).await;
            }
            self.lock().unsettled.remove(&key);
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
        self.deliver(&request, key, unsettled).await
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

    /// Sends the paid request, resending the same payment until there is a definite answer.
    async fn deliver(
        &self,
        request: &reqwest::Request,
        key: B256,
        unsettled: Unsettled,
    ) -> Result<PaidResponse, ClientError> {
        let policy = &self.inner.policy;
        let valid_before = u64::try_from(unsettled.payment.authorization.valid_before)
            .unwrap_or(u64::MAX)
            .saturating_sub(EXPIRY_MARGIN_SECONDS);
        let give_up = (unix_now() + policy.settlement_wait.as_secs()).min(valid_before);
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
            let (status, headers, body) = match outcome {
                Ok(answer) => answer,
                Err(error) => {
                    failures += 1;
                    let reason = format!("connection failed: {error}");
                    if failures >= policy.resend_attempts || unix_now() >= give_up {
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
                    let spend = self.finish(
                        key,
                        &unsettled,
                        SpendStatus::Refused {
                            reason: reason.clone(),
                        },
                        None,
                    );
                    return Err(ClientError::Refused {
                        status: status.as_u16(),
                        reason,
                        spend: Box::new(spend),
                    });
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
                Verdict::Wait(reason, transaction, pause) => {
                    if unix_now() + pause.as_secs() >= give_up {
                        return Err(self.unconfirmed(&unsettled, reason, transaction));
                    }
                    attempt += 1;
                    self.emit(ClientEvent::Resending { attempt, reason });
                    tokio::time::sleep(pause).await;
                }
            }
        }
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
            transaction,
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
    let retry_after = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
        .clamp(Duration::from_millis(250), MAX_RETRY_PAUSE);
    match (status, code.as_deref()) {
        (StatusCode::CONFLICT, Some(codes::PAYMENT_IN_PROGRESS)) => Verdict::Wait(
            "the server is still processing this payment".to_owned(),
            None,
            Duration::from_millis(500),
        ),
        (StatusCode::CONFLICT, Some(codes::PAYMENT_ALREADY_SETTLED)) if transaction.is_some() => {
            Verdict::AlreadySettled(transaction.unwrap_or_default())
        }
        (
            StatusCode::CONFLICT | StatusCode::SERVICE_UNAVAILABLE,
            Some(codes::SETTLEMENT_PENDING),
        ) => Verdict::Wait("settlement is pending".to_owned(), transaction, retry_after),
        (StatusCode::PAYMENT_REQUIRED | StatusCode::CONFLICT, _) => {
            let reason = receipt
                .as_ref()
                .and_then(|r| r.error_reason.clone())
                .or(code)
                .or_else(|| {
                    headers
                        .get(PAYMENT_REQUIRED)
                        .and_then(|v| v.to_str().ok())
                        .and_then(decode_base64)
                        .and_then(|json| serde_json::from_slice::<PaymentRequired>(&json).ok())
                        .and_then(|c| c.error)
                })
                .unwrap_or_else(|| "no reason given".to_owned());
            Verdict::Refused(reason)
        }
        _ => Verdict::Done(receipt),
    }
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

    #[test]
    fn answers_to_a_paid_request_are_read_as_the_paywall_means_them() {
        let tx = "0x".to_owned() + &"ab".repeat(32);
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
        assert!(matches!(busy, Verdict::Wait(_, None, _)));
        let settled = format!(r#"{{"error":"payment_already_settled","transaction":"{tx}"}}"#);
        let done = judge(StatusCode::CONFLICT, &HeaderMap::new(), settled.as_bytes());
        assert!(matches!(done, Verdict::AlreadySettled(t) if t == tx));
        let pending = judge(
            StatusCode::SERVICE_UNAVAILABLE,
            &headers(&[
                (
                    PAYMENT_RESPONSE,
                    receipt(false, &tx, Some("settlement_pending")),
                ),
                ("retry-after", "120".to_owned()),
            ]),
            br#"{"error":"settlement_pending"}"#,
        );
        assert!(
            matches!(&pending, Verdict::Wait(_, Some(t), pause) if *t == tx && *pause == MAX_RETRY_PAUSE)
        );

        let failed = judge(
            StatusCode::PAYMENT_REQUIRED,
            &headers(&[(
                PAYMENT_RESPONSE,
                receipt(false, "", Some("invalid_exact_evm_insufficient_balance")),
            )]),
            b"{}",
        );
        assert!(
            matches!(failed, Verdict::Refused(r) if r == "invalid_exact_evm_insufficient_balance")
        );
        let refused = judge(
            StatusCode::PAYMENT_REQUIRED,
            &HeaderMap::new(),
            br#"{"error":"invalid_exact_evm_payload_signature"}"#,
        );
        assert!(
            matches!(refused, Verdict::Refused(r) if r == "invalid_exact_evm_payload_signature")
        );
        let conflict = judge(StatusCode::CONFLICT, &HeaderMap::new(), b"not json");
        assert!(matches!(conflict, Verdict::Refused(r) if r == "no reason given"));
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
}
