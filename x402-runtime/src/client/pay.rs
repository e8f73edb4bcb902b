//! The paying HTTP client: [`X402Client`] sends a request, answers a 402 within its spending
//! policy, and resends the same payment until the answer is definite, never paying twice for one
//! call: the send and resend loop, how one answer to a paid request is judged ([`Verdict`]) and
//! how long to pause before a resend, what the loop reports on the way ([`ClientEvent`]) and the
//! answer it hands back ([`PaidResponse`]).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, keccak256};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::base::unix_now;
use crate::price::Currency;
use crate::proto::codes;
use crate::proto::header::parse_uint;
use crate::proto::{
    PAYMENT_REQUIRED, PAYMENT_RESPONSE, PaymentRequired, SettleResponse, X_PAYMENT_RESPONSE,
};
use crate::schemes::permit2;

use super::amount::format_amount;
use super::builder::X402ClientBuilder;
use super::challenge::{Candidate, Challenge, decode_base64};
use super::error::ClientError;
use super::policy::{Policy, Spend, SpendStatus, State, Unsettled};
use super::signer::{PaymentSigner, sign_error};

/// What an offer needs from its chain before it is signed (Solana: a blockhash, the mint's
/// decimals and program; EVM: nothing).
#[cfg(feature = "svm")]
type ChainFacts = Option<super::svm::SvmChainFacts>;
#[cfg(not(feature = "svm"))]
type ChainFacts = Option<std::convert::Infallible>;

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
/// An `upto` offer (the server charges what the request used, at most the offer's amount) is
/// checked against the limits at its maximum, and the maximum counts against the budget while
/// the payment is unsettled. When the receipt names the amount charged (`amount`, `"0"` when the
/// request used nothing), the spend becomes that amount ([`Spend::amount`]; the maximum stays in
/// [`Spend::authorized`]) and the rest is released.
///
/// # Permit2
///
/// `upto` offers and `exact` offers with `extra.assetTransferMethod: "permit2"` are paid with a
/// Permit2 permit (see [`PaymentSigner`]): the payer must have approved Permit2 for the token
/// once on chain, or the server refuses the payment with `permit2_allowance_required` (a 402
/// from this crate's paywall, a 412 from the reference TypeScript server):
/// [`ClientError::Refused`], nothing was charged.
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
/// - `503 server_shutting_down` (the server drains before it stops; nothing was verified): the
///   same payment is resent after `Retry-After`, as for a pending settlement.
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
/// # Solana
///
/// With feature `svm` and a Solana key ([`PaymentSigner::with_svm_key`], `X402_SVM_PAYER_KEY`),
/// `exact` offers on Solana are paid too, within the same limits (USDC counts against the same
/// USDC budget on every network): the client reads a recent blockhash (the offer's
/// `extra.recentBlockhash` when it carries one) and, for a mint other than the built-in USDC
/// mints, the mint's decimals and token program from the Solana node
/// ([`svm_rpc_url`](X402ClientBuilder::svm_rpc_url), `X402_SVM_RPC_URL`, or the cluster's public
/// endpoint), then signs the transaction as the official client builds it. The payment's
/// `validBefore` above is, for Solana, [`maxTimeoutSeconds`] after signing but at least 180
/// seconds, well past the 150 blocks (about a minute) its blockhash lets it land in; the same
/// transaction is resent byte for byte, so a resend cannot pay twice. The receipt's
/// `transaction` is the Solana signature (base58, its case kept).
///
/// [`maxTimeoutSeconds`]: crate::proto::PaymentRequirements::max_timeout_seconds
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

/// The hook of [`X402ClientBuilder::on_event`].
pub(super) type EventHook = Arc<dyn Fn(&ClientEvent) + Send + Sync>;

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

/// The answer to one request, as received.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// One payment on its way: the state of its sendings by this call.
struct Course {
    unsettled: Unsettled,
    /// The payment was sent before (by this call or an earlier one).
    resent: bool,
    /// Until when answers to it are waited for.
    deadline: Instant,
    /// Connection failures so far.
    failures: u32,
    /// The number of the sending, from 1.
    attempt: u32,
}

/// What one sending of a payment leads to.
enum Step {
    /// A definite answer: the call is over.
    Answered(PaidResponse),
    /// No definite answer yet: the same payment is resent after this pause.
    Resend(Duration),
    /// The payment can no longer settle (recorded and reported); the 402 that said so, for
    /// `reason`, carries a fresh challenge.
    Dead {
        spend: Spend,
        reason: String,
        answer: Answer,
    },
}

impl X402Client {
    /// A builder for a client that pays with `signer`.
    pub fn builder(signer: PaymentSigner) -> X402ClientBuilder {
        X402ClientBuilder::new(signer)
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
        let earlier = self.lock().unsettled(&key);
        if let Some(earlier) = earlier {
            return self.deliver(&request, key, earlier, true).await;
        }
        let probe = request.try_clone().ok_or(ClientError::BodyNotReplayable)?;
        let answer = self.execute(probe).await.map_err(ClientError::Http)?;
        if answer.status != StatusCode::PAYMENT_REQUIRED {
            return Ok(PaidResponse {
                status: answer.status,
                headers: answer.headers,
                body: answer.body,
                spend: None,
                receipt: None,
            });
        }
        let challenge =
            Challenge::read(&answer.headers, &answer.body).map_err(ClientError::Challenge)?;
        let unsettled = self.pay(&request, &challenge).await?;
        self.lock().keep(key, unsettled.clone());
        self.deliver(&request, key, unsettled, false).await
    }

    /// The payments this client signed, oldest first.
    pub fn spend_log(&self) -> Vec<Spend> {
        self.lock().log().to_vec()
    }

    /// What this client has signed in `currency`, in human units.
    pub fn spent(&self, currency: Currency) -> String {
        let committed = self.lock().committed(currency);
        format_amount(committed, currency.decimals())
    }

    /// The client [`X402ClientBuilder::build`] configured.
    pub(super) fn new(
        http: reqwest::Client,
        signer: PaymentSigner,
        policy: Policy,
        on_event: Option<EventHook>,
    ) -> X402Client {
        X402Client {
            inner: Arc::new(Inner {
                http,
                signer,
                policy,
                state: Mutex::new(State::default()),
                on_event,
            }),
        }
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

    /// Picks an offer, commits its amount against the budget and signs it. A Solana offer's
    /// chain facts are read first (outside the lock); the limits are checked again with them in
    /// hand, in the same lock as the commit.
    async fn pay(
        &self,
        request: &reqwest::Request,
        challenge: &Challenge,
    ) -> Result<Unsettled, ClientError> {
        let policy = &self.inner.policy;
        let (candidates, reasons) = challenge.candidates(policy, self.pays_svm());
        let mut limit_error = None;
        for candidate in candidates {
            let currency = candidate.asset.currency;
            let committed = self.lock().committed(currency);
            if let Err(over) = policy.check(currency, candidate.amount, committed) {
                limit_error.get_or_insert(over);
                continue;
            }
            let facts = self.chain_facts(challenge, &candidate).await?;
            let mut state = self.lock();
            if let Err(over) = policy.check(currency, candidate.amount, state.committed(currency)) {
                limit_error.get_or_insert(over);
                continue;
            }
            let payment = self
                .sign(challenge, &candidate, facts)
                .map_err(ClientError::Sign)?;
            let spend = Spend::signed(request, &candidate, &payment);
            let unsettled = state.commit(spend.clone(), payment);
            drop(state);
            self.emit(ClientEvent::Paying(Box::new(spend)));
            return Ok(unsettled);
        }
        Err(limit_error.unwrap_or(ClientError::NoPayableOffer(reasons)))
    }

    /// Whether the signer can pay on Solana.
    fn pays_svm(&self) -> bool {
        #[cfg(feature = "svm")]
        return self.inner.signer.svm_address().is_some();
        #[cfg(not(feature = "svm"))]
        false
    }

    /// What the offer of `candidate` needs from its chain before it is signed: nothing on EVM;
    /// a blockhash, the mint's decimals and token program on Solana.
    async fn chain_facts(
        &self,
        challenge: &Challenge,
        candidate: &Candidate,
    ) -> Result<ChainFacts, ClientError> {
        #[cfg(feature = "svm")]
        if !candidate.network.is_evm() {
            let offer = challenge
                .svm_offer(candidate.index)
                .ok_or_else(|| ClientError::Sign(sign_error("the offer is gone")))?;
            let url = self.inner.policy.svm_rpc_url.as_deref();
            let rpc = super::svm::rpc_for(&candidate.network, url).map_err(ClientError::Sign)?;
            let facts = super::svm::chain_facts(&rpc, &offer, &candidate.asset)
                .await
                .map_err(ClientError::Sign)?;
            return Ok(Some(facts));
        }
        let _ = (challenge, candidate);
        Ok(None)
    }

    /// Signs the offer of `candidate` (a Solana one on its chain `facts`).
    fn sign(
        &self,
        challenge: &Challenge,
        candidate: &Candidate,
        facts: ChainFacts,
    ) -> Result<super::signer::SignedPayment, super::signer::SignError> {
        #[cfg(feature = "svm")]
        if let Some(facts) = facts {
            return challenge.sign_svm(&self.inner.signer, candidate.index, &facts);
        }
        let _ = facts;
        challenge.sign(&self.inner.signer, candidate.index)
    }

    /// Sends the paid request, resending the same payment until there is a definite answer
    /// (the rules are in [`X402Client`]'s documentation), and paying the fresh challenge of a
    /// 402 with a new payment once the first is dead. `resent`: the payment was sent before, by
    /// an earlier call.
    async fn deliver(
        &self,
        request: &reqwest::Request,
        key: B256,
        unsettled: Unsettled,
        resent: bool,
    ) -> Result<PaidResponse, ClientError> {
        let mut payments = 1;
        let mut course = self.course(unsettled, resent);
        loop {
            match self.send_once(request, key, &mut course).await? {
                Step::Answered(response) => return Ok(response),
                Step::Resend(pause) => tokio::time::sleep(pause).await,
                Step::Dead {
                    spend,
                    reason,
                    answer,
                } => {
                    if payments >= MAX_PAYMENTS_PER_CALL {
                        return Err(ClientError::Refused {
                            status: answer.status.as_u16(),
                            reason,
                            spend: Box::new(spend),
                        });
                    }
                    let challenge = Challenge::read(&answer.headers, &answer.body)
                        .map_err(ClientError::Challenge)?;
                    let unsettled = self.pay(request, &challenge).await?;
                    self.lock().keep(key, unsettled.clone());
                    payments += 1;
                    course = self.course(unsettled, false);
                }
            }
        }
    }

    /// Sends the paid request once with the payment of `course`, and judges the answer.
    async fn send_once(
        &self,
        request: &reqwest::Request,
        key: B256,
        course: &mut Course,
    ) -> Result<Step, ClientError> {
        let mut paid = request.try_clone().ok_or(ClientError::BodyNotReplayable)?;
        let payment = &course.unsettled.payment;
        let value = http::HeaderValue::from_str(&payment.value)
            .map_err(|_| ClientError::Sign(sign_error("the payment is not a header value")))?;
        paid.headers_mut().insert(payment.header, value);
        let outcome = self.execute(paid).await;
        // Whatever became of this sending, the next one is a resend.
        let was_resend = std::mem::replace(&mut course.resent, true);
        let answer = match outcome {
            Ok(answer) => answer,
            Err(error) => return self.connection_failed(course, &error),
        };
        self.emit(ClientEvent::Answered {
            status: answer.status.as_u16(),
        });
        match judge(answer.status, &answer.headers, &answer.body) {
            Verdict::Done(receipt) => Ok(Step::Answered(self.answered(
                key,
                &course.unsettled,
                answer,
                receipt,
            ))),
            Verdict::Refused(reason) => {
                Err(self.refused(key, &course.unsettled, answer.status, reason))
            }
            Verdict::AlreadySettled(transaction) => {
                let spend = self.finish(
                    key,
                    &course.unsettled,
                    SpendStatus::Settled,
                    Some(transaction.clone()),
                );
                Err(ClientError::AlreadySettled {
                    transaction,
                    spend: Box::new(spend),
                })
            }
            Verdict::Wait {
                code,
                transaction,
                pause,
            } => self.wait(course, code, transaction, pause),
            Verdict::Challenged {
                reason,
                expired_unsettled,
            } => {
                let spend = self.challenged(
                    key,
                    &course.unsettled,
                    was_resend,
                    answer.status,
                    &reason,
                    expired_unsettled,
                )?;
                Ok(Step::Dead {
                    spend,
                    reason,
                    answer,
                })
            }
        }
    }

    /// Sends one request and reads its whole answer.
    async fn execute(&self, request: reqwest::Request) -> Result<Answer, reqwest::Error> {
        let response = self.inner.http.execute(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// A payment on its way, from its first sending by this call.
    fn course(&self, unsettled: Unsettled, resent: bool) -> Course {
        Course {
            deadline: self.deadline(&unsettled),
            unsettled,
            resent,
            failures: 0,
            attempt: 1,
        }
    }

    /// Until when the answers to `unsettled` are waited for: [`X402ClientBuilder::max_wait`]
    /// from now, or by default until [`WAIT_PAST_VALID_BEFORE`] past its `validBefore` (at most
    /// [`MAX_DEFAULT_WAIT`]).
    fn deadline(&self, unsettled: &Unsettled) -> Instant {
        let wait = self.inner.policy.max_wait.unwrap_or_else(|| {
            let left = unsettled
                .valid_before()
                .saturating_add(WAIT_PAST_VALID_BEFORE)
                .saturating_sub(unix_now());
            Duration::from_secs(left).min(MAX_DEFAULT_WAIT)
        });
        Instant::now() + wait
    }

    /// After the connection failed: the same payment is resent after a short pause, unless the
    /// attempts or the wait are spent.
    fn connection_failed(
        &self,
        course: &mut Course,
        error: &reqwest::Error,
    ) -> Result<Step, ClientError> {
        course.failures += 1;
        let reason = format!("connection failed: {error}");
        if course.failures >= self.inner.policy.resend_attempts || Instant::now() >= course.deadline
        {
            return Err(self.unconfirmed(&course.unsettled, reason, None));
        }
        course.attempt += 1;
        self.emit(ClientEvent::Resending {
            attempt: course.attempt,
            reason,
        });
        Ok(Step::Resend(Duration::from_millis(
            200 << course.failures.min(4),
        )))
    }

    /// After `settlement_pending` or `payment_in_progress`: the same payment is resent after
    /// `pause` (cut to what is left of the wait), unless the wait is spent.
    fn wait(
        &self,
        course: &mut Course,
        code: &'static str,
        transaction: Option<String>,
        pause: Duration,
    ) -> Result<Step, ClientError> {
        let now = Instant::now();
        if now >= course.deadline {
            let reason = if code == codes::SETTLEMENT_PENDING {
                "settlement is still pending"
            } else {
                "the server is still processing this payment"
            };
            return Err(self.unconfirmed(&course.unsettled, reason.to_owned(), transaction));
        }
        let pause = pause.min(course.deadline - now);
        if let Some(transaction) = &transaction {
            self.lock().name_transaction(&course.unsettled, transaction);
        }
        course.attempt += 1;
        self.emit(ClientEvent::Waiting {
            code,
            transaction,
            wait: pause,
            attempt: course.attempt,
        });
        Ok(Step::Resend(pause))
    }

    /// After a 402 (`status`, for `reason`): the payment is recorded dead (and reported) when it
    /// is, or the call ends when the 402 refused its first sending (`was_resend` false) or the
    /// payment can still settle.
    fn challenged(
        &self,
        key: B256,
        unsettled: &Unsettled,
        was_resend: bool,
        status: StatusCode,
        reason: &str,
        expired_unsettled: bool,
    ) -> Result<Spend, ClientError> {
        let past = unix_now() >= unsettled.valid_before();
        let dead = if expired_unsettled && past {
            // Proven dead by the server: released from the budget.
            self.bury(key, unsettled, SpendStatus::ExpiredUnsettled, true)
        } else if !was_resend {
            // A refusal of a payment's first sending: nothing is signed again.
            return Err(self.refused(key, unsettled, status, reason.to_owned()));
        } else if !past {
            return Err(self.live_refused(unsettled, reason.to_owned()));
        } else {
            // Dead by its own terms; whether it settled before is not proven.
            let status = SpendStatus::Expired {
                reason: reason.to_owned(),
            };
            self.bury(key, unsettled, status, false)
        };
        self.emit(ClientEvent::Expired(Box::new(dead.clone())));
        Ok(dead)
    }

    /// Records a definite answer (settled when its receipt says so) and hands it back.
    fn answered(
        &self,
        key: B256,
        unsettled: &Unsettled,
        answer: Answer,
        receipt: Option<SettleResponse>,
    ) -> PaidResponse {
        let settled = receipt.as_ref().filter(|r| r.success);
        // What an upto payment was charged, when its receipt names it.
        let charged = settled
            .filter(|_| unsettled.payment.is_upto())
            .and_then(|r| r.amount.as_deref())
            .and_then(|amount| parse_uint(amount, "amount").ok());
        let status = match settled {
            Some(_) => SpendStatus::Settled,
            None => SpendStatus::NotSettled,
        };
        let transaction = settled
            .map(|r| r.transaction.clone())
            .filter(|t| !t.is_empty());
        let spend = {
            let mut state = self.lock();
            if let Some(charged) = charged {
                state.charged(unsettled, charged);
            }
            state.finish(key, unsettled, status, transaction)
        };
        PaidResponse {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
            spend: Some(spend),
            receipt,
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
        self.lock().finish(key, unsettled, status, transaction)
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
            self.lock().release(&spend);
        }
        spend
    }

    /// Records a refused resend of a live authorization; the payment stays ready to be resent.
    fn live_refused(&self, unsettled: &Unsettled, reason: String) -> ClientError {
        let spend = self.lock().unknown(
            unsettled,
            format!(
                "the server refused a resend ({reason}) while the authorization can still settle"
            ),
            None,
        );
        ClientError::LiveAuthorizationRefused {
            reason,
            spend: Box::new(spend),
        }
    }

    /// Records an unknown outcome; the payment stays ready to be resent.
    fn unconfirmed(
        &self,
        unsettled: &Unsettled,
        reason: String,
        transaction: Option<String>,
    ) -> ClientError {
        let spend = self.lock().unknown(unsettled, reason.clone(), transaction);
        ClientError::Unconfirmed {
            reason,
            transaction: spend.transaction.clone(),
            spend: Box::new(spend),
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
        // The server drains for shutdown: nothing was verified, the same payment is resent
        // after Retry-After (to another instance, or this one once it is back).
        (StatusCode::SERVICE_UNAVAILABLE, Some(codes::SERVER_SHUTTING_DOWN)) => Verdict::Wait {
            code: codes::SERVER_SHUTTING_DOWN,
            transaction: None,
            pause: retry_after(headers),
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
        (StatusCode::PRECONDITION_FAILED, _) if needs_allowance(code.as_deref(), headers) => {
            Verdict::Refused(permit2::codes::ALLOWANCE_REQUIRED.to_owned())
        }
        (StatusCode::PAYMENT_REQUIRED | StatusCode::CONFLICT, _) => {
            let challenge_error = challenge_error(headers);
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

/// Whether a 412 is the reference TypeScript server's refusal of a permit without Permit2
/// allowance (by the body's `error` or the challenge's); a handler's own 412 names no such code.
fn needs_allowance(code: Option<&str>, headers: &HeaderMap) -> bool {
    code == Some(permit2::codes::ALLOWANCE_REQUIRED)
        || challenge_error(headers).as_deref() == Some(permit2::codes::ALLOWANCE_REQUIRED)
}

/// The `error` of the challenge in a `PAYMENT-REQUIRED` header, if any.
fn challenge_error(headers: &HeaderMap) -> Option<String> {
    headers
        .get(PAYMENT_REQUIRED)
        .and_then(|v| v.to_str().ok())
        .and_then(decode_base64)
        .and_then(|json| serde_json::from_slice::<PaymentRequired>(&json).ok())
        .and_then(|c| c.error)
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
mod tests;
