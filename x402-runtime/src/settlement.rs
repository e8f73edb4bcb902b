//! Settlement and reconciliation: what a `/settle` answer means, how it is recorded, and how a
//! payment whose outcome is unknown is brought to a definite one.
//!
//! Every answer that is neither a definite success nor a definite refusal (no answer in time,
//! `settlement_pending`, a 5xx, HTML, a body that is not JSON or is cut off, a `success` that is
//! not the boolean `true`, a success without a transaction or for another payer, amount or
//! network, a transaction already credited to another payment) means money may have moved. It is
//! recorded durably as unknown ([`Slot::Pending`]) together with the exact `/settle` request, and
//! answered `503 settlement_pending`. Only a request that never reached the facilitator (the
//! connection was refused) or a refusal of a first `/settle` is taken as proof that nothing
//! moved.
//!
//! An unknown outcome is reconciled, one at a time per payment across every process sharing the
//! store: on a resend of the same signed payment (one `/settle` with the recorded request), and
//! by the server itself in the background. Where a [`ChainReader`](crate::chain::ChainReader) is
//! configured the chain is read first: an authorization found used is settled (with the
//! transaction of its `AuthorizationUsed` log), and one still unused after its `validBefore`
//! can never settle and is recorded `expired_unsettled`. The background pass only reads: with a
//! chain reader it never calls `/settle` (the authorization settles only if the buyer resends
//! it); without one it repeats the recorded `/settle` to learn the outcome from the facilitator.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, U256};
use dashmap::DashMap;

use crate::chain::{self, OnChain};
use crate::engine::X402;
use crate::facilitator::FacilitatorError;
use crate::payload::{self, ReplayKey, X402Version};
use crate::proto::{FacilitatorRequest, Requirements, SettleResponse};
use crate::respond::codes;
use crate::store::{ReplayStore, Slot, Unresolved};

/// Seconds past the settle timeout after which a settlement still marked settling is taken as
/// orphaned (its process stopped): an unknown outcome.
const SETTLING_GRACE: u64 = 10;
/// Attempts the background reconciliation makes for one payment before it leaves it to an
/// operator (`x402 settlements`); a resend still reconciles.
const BACKGROUND_ATTEMPTS: u32 = 20;
/// Payments the background pass reconciles at once.
const BACKGROUND_CONCURRENCY: usize = 4;
/// Backoff between two background attempts for one payment: this, doubled each time, up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: u64 = 5;
const MAX_BACKOFF: u64 = 600;

/// What one settlement attempt established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Settled in this transaction (empty when the chain shows the authorization used but its
    /// log was not found), credited to this payment and recorded.
    Settled(String),
    /// Money may have moved; recorded as pending with the request (the transaction, when known).
    Unknown(String),
    /// The facilitator refused a first `/settle`: nothing moved. Not recorded; the caller
    /// releases the payment.
    Refused(String),
    /// The request never reached the facilitator: nothing moved. Not recorded.
    NotSent,
    /// The authorization can never settle: recorded `expired_unsettled`.
    Expired,
}

/// One settlement attempt of one payment, and what its answer is checked against.
pub(crate) struct Attempt<'a> {
    pub(crate) engine: &'a X402,
    pub(crate) key: &'a ReplayKey,
    pub(crate) request: &'a FacilitatorRequest,
    pub(crate) wire_network: &'a str,
    pub(crate) payer: Address,
    pub(crate) amount: U256,
    pub(crate) valid_before: u64,
    /// The transaction an earlier answer named (reconciliation), else empty.
    pub(crate) known_transaction: &'a str,
    /// Whether this repeats a `/settle` whose outcome was unknown: then a refusal is no proof
    /// that nothing moved ("nonce already used" may be the first settlement landing).
    pub(crate) reconciling: bool,
}

impl Attempt<'_> {
    /// How long the outcome is kept: the record retention past the authorization.
    fn keep_until(&self) -> u64 {
        self.engine.keep_until(self.valid_before)
    }

    /// Records `slot` for this payment, kept for the retention.
    async fn record(&self, slot: Slot) {
        let store = &self.engine.inner.store;
        store.record(self.key, slot, self.keep_until()).await;
    }

    /// Records `/settle` as about to be called, with its request: a durable store then knows
    /// about a settlement in flight even if the process stops before the answer.
    pub(crate) async fn record_settling(&self) {
        self.record(Slot::Settling {
            request: request_json(self.key, self.request),
            since: self.engine.now(),
        })
        .await;
    }

    /// `/settle`, bounded by the settle timeout, and what its answer means (recorded).
    pub(crate) async fn settle(&self) -> Outcome {
        let answer = settle_bounded(self.engine, self.request).await;
        self.judge(answer).await
    }

    /// Decides what a `/settle` answer means and records it. Success needs a boolean `true`, a
    /// transaction never credited before, and the payer, network and amount we asked for.
    async fn judge(&self, answer: Result<SettleResponse, FacilitatorError>) -> Outcome {
        let key = self.key;
        let answer = match answer {
            Ok(answer) => answer,
            Err(FacilitatorError::Unreachable(e)) if !self.reconciling => {
                tracing::warn!(%key, "x402: /settle unreachable, nothing sent: {e}");
                return Outcome::NotSent;
            }
            Err(e) => {
                tracing::warn!(%key, "x402: /settle outcome unknown: {e}");
                return self.unknown("").await;
            }
        };
        if answer.success {
            if answer.transaction.is_empty() {
                tracing::warn!(%key, "x402: /settle said success without a transaction; outcome unknown");
                return self.unknown("").await;
            }
            if !settled_as_asked(&answer, self.wire_network, self.payer, self.amount) {
                tracing::error!(%key, ?answer, "x402: /settle succeeded for another payer, network or amount; outcome unknown");
                return self.unknown("").await;
            }
            return self.settled(&answer.transaction).await;
        }
        let reason = answer
            .error_reason
            .as_deref()
            .filter(|r| !r.is_empty())
            .unwrap_or(codes::SETTLEMENT_FAILED);
        if reason == codes::SETTLEMENT_PENDING {
            return self.unknown(&answer.transaction).await;
        }
        if self.reconciling {
            tracing::warn!(%key, reason, message = ?answer.error_message, "x402: reconciliation refused; the payment stays pending");
            return self.unknown("").await;
        }
        tracing::info!(%key, reason, message = ?answer.error_message, "x402: settlement refused");
        Outcome::Refused(reason.to_owned())
    }

    /// Credits `transaction` to this payment and records it settled; a transaction already
    /// credited to another payment leaves the outcome unknown.
    async fn settled(&self, transaction: &str) -> Outcome {
        let store = &*self.engine.inner.store;
        if !record_settled(store, self.key, transaction, self.keep_until()).await {
            return self.unknown("").await;
        }
        Outcome::Settled(transaction.to_owned())
    }

    /// Records the outcome as unknown, with the request to repeat.
    async fn unknown(&self, transaction: &str) -> Outcome {
        let transaction = if transaction.is_empty() {
            self.known_transaction
        } else {
            transaction
        };
        self.record(Slot::Pending {
            transaction: transaction.to_owned(),
            request: request_json(self.key, self.request),
            since: self.engine.now(),
        })
        .await;
        Outcome::Unknown(transaction.to_owned())
    }

    /// What the chain says, when a reader is configured: used → settled, dead → expired
    /// unsettled (both recorded); `None` when it cannot tell.
    async fn read_chain(&self) -> Option<Outcome> {
        let reader = self.engine.inner.chain.as_ref()?;
        let lookup = chain::Authorization {
            network: self.key.network.clone(),
            asset: self.key.asset,
            from: self.key.from,
            nonce: self.key.nonce,
            valid_before: self.valid_before,
        };
        match reader.authorization(&lookup).await {
            Ok(OnChain::Used { transaction }) => {
                tracing::info!(key = %self.key, ?transaction, "x402: the chain shows the authorization used");
                Some(
                    self.settled(transaction.as_deref().unwrap_or_default())
                        .await,
                )
            }
            Ok(OnChain::Expired) => {
                tracing::info!(key = %self.key, "x402: the authorization expired unused; nothing was charged");
                self.record(Slot::ExpiredUnsettled).await;
                Some(Outcome::Expired)
            }
            Ok(OnChain::Unused) => None,
            Err(e) => {
                tracing::warn!(key = %self.key, "x402: cannot read the chain: {e}");
                None
            }
        }
    }
}

/// Credits `transaction` (when known) to `key` and records the payment settled; `false`, with
/// nothing recorded, when the transaction was already credited to another payment.
async fn record_settled(
    store: &dyn ReplayStore,
    key: &ReplayKey,
    transaction: &str,
    keep_until: u64,
) -> bool {
    if !transaction.is_empty() && !store.credit(transaction, key).await {
        tracing::error!(%key, transaction, "x402: transaction already credited to another payment; outcome unknown");
        return false;
    }
    let slot = Slot::Settled {
        transaction: transaction.to_owned(),
    };
    store.record(key, slot, keep_until).await;
    true
}

/// The request as recorded JSON.
fn request_json(key: &ReplayKey, request: &FacilitatorRequest) -> Option<String> {
    match serde_json::to_string(request) {
        Ok(json) => Some(json),
        Err(e) => {
            tracing::error!(%key, "x402: cannot record the /settle request for a retry: {e}");
            None
        }
    }
}

/// `/settle`, bounded by the settle timeout.
async fn settle_bounded(
    engine: &X402,
    request: &FacilitatorRequest,
) -> Result<SettleResponse, FacilitatorError> {
    let timeout = engine.config().settle_timeout();
    match tokio::time::timeout(timeout, engine.facilitator().settle(request)).await {
        Ok(answer) => answer,
        Err(_) => Err(FacilitatorError::Timeout),
    }
}

fn settled_as_asked(
    answer: &SettleResponse,
    wire_network: &str,
    payer: Address,
    amount: U256,
) -> bool {
    let payer_ok = answer
        .payer
        .as_deref()
        .is_none_or(|p| p.parse::<Address>().is_ok_and(|a| a == payer));
    let network_ok = answer.network.is_empty() || answer.network == wire_network;
    let amount_ok = answer
        .amount
        .as_deref()
        .is_none_or(|a| payload::parse_uint(a, "amount").is_ok_and(|a| a == amount));
    payer_ok && network_ok && amount_ok
}

/// A recorded `/settle` request, decoded.
pub(crate) struct Recorded {
    pub(crate) request: FacilitatorRequest,
    pub(crate) payment: payload::DecodedPayment,
}

impl Recorded {
    /// Reads a recorded request back; `None` when it is damaged.
    pub(crate) fn read(json: &str) -> Option<Recorded> {
        let request: FacilitatorRequest = serde_json::from_str(json).ok()?;
        let version = match request.x402_version {
            1 => X402Version::V1,
            2 => X402Version::V2,
            _ => return None,
        };
        let payment =
            payload::decode_json(request.payment_payload.get().as_bytes().to_vec(), version)
                .ok()?;
        Some(Recorded { request, payment })
    }

    fn valid_before(&self) -> u64 {
        u64::try_from(self.payment.authorization.valid_before).unwrap_or(u64::MAX)
    }

    fn amount(&self) -> U256 {
        payload::parse_uint(self.request.payment_requirements.amount(), "amount")
            .unwrap_or(self.payment.authorization.value)
    }
}

/// How a reconciliation may bring the outcome about.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reconcile {
    /// A resend of the payment: read the chain, then repeat the recorded `/settle`.
    Resend,
    /// The server's own pass: read the chain; only without a chain reader repeat `/settle`.
    Background,
}

impl X402 {
    /// Brings one unknown outcome to what can be known now, one reconciliation at a time per
    /// payment across every process sharing the store; `None` when another one is running.
    /// Runs in a task, so that a client disconnect cannot cancel it between the answer and the
    /// record.
    pub(crate) async fn reconcile(
        &self,
        key: &ReplayKey,
        transaction: &str,
        recorded: Recorded,
        how: Reconcile,
    ) -> Option<Outcome> {
        let guard = Reconciling::take(self, key).await?;
        let engine = self.clone();
        let key = key.clone();
        let transaction = transaction.to_owned();
        let task = tokio::spawn(async move {
            let _guard = guard;
            let attempt = Attempt {
                engine: &engine,
                key: &key,
                request: &recorded.request,
                wire_network: recorded.request.payment_requirements.network(),
                payer: recorded.payment.authorization.from,
                amount: recorded.amount(),
                valid_before: recorded.valid_before(),
                known_transaction: &transaction,
                reconciling: true,
            };
            if let Some(outcome) = attempt.read_chain().await {
                return outcome;
            }
            if how == Reconcile::Background && engine.inner.chain.is_some() {
                return Outcome::Unknown(transaction.clone());
            }
            tracing::info!(%key, "x402: reconciling an unknown settlement with its recorded /settle");
            attempt.settle().await
        });
        match task.await {
            Ok(outcome) => Some(outcome),
            Err(join) => {
                tracing::error!("x402: reconciliation task failed: {join}");
                None
            }
        }
    }

    /// The slot as this process must take it: a settlement marked settling for longer than the
    /// settle timeout allows belongs to a process that stopped, so its outcome is unknown.
    pub(crate) fn effective(&self, slot: Slot) -> Slot {
        match slot {
            Slot::Settling { since, .. }
                if since
                    .saturating_add(self.config().settle_timeout().as_secs())
                    .saturating_add(SETTLING_GRACE)
                    < self.now()
                    || since == 0 =>
            {
                slot.orphaned()
            }
            slot => slot,
        }
    }

    /// Reconciles every payment whose outcome is unknown once (those not waiting for a backoff),
    /// at most a few at a time; returns how many reached a definite outcome. The server runs
    /// this in the background every
    /// [`reconcile_interval`](crate::X402Builder::reconcile_interval); call it to reconcile now.
    pub async fn reconcile_unresolved(&self) -> Result<usize, String> {
        use futures_util::StreamExt as _;
        let listed = self.inner.store.unresolved().await?;
        let now = self.now();
        let due: Vec<Unresolved> = listed
            .into_iter()
            .filter(|u| self.inner.backoff.due(&u.key, now))
            .collect();
        let settled = futures_util::stream::iter(due)
            .map(|u| self.reconcile_in_background(u))
            .buffer_unordered(BACKGROUND_CONCURRENCY)
            .filter(|definite| std::future::ready(*definite))
            .count()
            .await;
        Ok(settled)
    }

    /// One background attempt; `true` when the outcome became definite.
    async fn reconcile_in_background(&self, unresolved: Unresolved) -> bool {
        let key = unresolved.key;
        let (transaction, request) = match self.effective(unresolved.slot) {
            Slot::Pending {
                transaction,
                request,
                ..
            } => (transaction, request),
            _ => return false, // still settling in a live process
        };
        let Some(recorded) = request.as_deref().and_then(Recorded::read) else {
            self.inner
                .backoff
                .give_up(&key, "its /settle request was not recorded");
            return false;
        };
        let outcome = self
            .reconcile(&key, &transaction, recorded, Reconcile::Background)
            .await;
        match outcome {
            Some(Outcome::Settled(tx)) => {
                tracing::info!(%key, transaction = %tx, "x402: background reconciliation: settled");
                self.inner.backoff.forget(&key);
                true
            }
            Some(Outcome::Expired) => {
                tracing::info!(%key, "x402: background reconciliation: expired unsettled");
                self.inner.backoff.forget(&key);
                true
            }
            _ => {
                self.inner.backoff.failed(&key, self.now());
                false
            }
        }
    }

    /// Starts the background reconciliation once, on the current tokio runtime.
    pub(crate) fn start_reconciler(&self) {
        // Once started, a paid request pays one atomic load here.
        if self.inner.reconciler.is_completed() {
            return;
        }
        let Some(every) = self.inner.reconcile_interval else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        self.inner.reconciler.call_once(|| {
            let weak = Arc::downgrade(&self.inner);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(inner) = weak.upgrade() else {
                        return;
                    };
                    let engine = X402 { inner };
                    if let Err(e) = engine.reconcile_unresolved().await {
                        tracing::warn!("x402: background reconciliation cannot list payments: {e}");
                    }
                }
            });
        });
    }

    /// The end of what is kept about a payment valid before `valid_before`: the clock-skew
    /// allowance plus the record retention past it.
    pub(crate) fn keep_until(&self, valid_before: u64) -> u64 {
        kept_until(
            valid_before,
            self.config().clock_skew(),
            self.config().record_retention(),
        )
    }
}

/// Until when a payment valid before `valid_before` is kept in the record: past the clock-skew
/// allowance, for `retention`.
fn kept_until(valid_before: u64, skew: Duration, retention: Duration) -> u64 {
    valid_before
        .saturating_add(skew.as_secs())
        .saturating_add(retention.as_secs())
}

/// The right to reconcile one payment: in this process (a map entry) and in the store (for
/// processes sharing it); both given back when dropped.
struct Reconciling {
    engine: X402,
    key: ReplayKey,
}

impl Reconciling {
    async fn take(engine: &X402, key: &ReplayKey) -> Option<Reconciling> {
        match engine.inner.reconciling.entry(key.clone()) {
            dashmap::mapref::entry::Entry::Occupied(_) => return None,
            dashmap::mapref::entry::Entry::Vacant(free) => {
                free.insert(());
            }
        }
        let until = engine
            .now()
            .saturating_add(engine.config().settle_timeout().as_secs())
            .saturating_add(SETTLING_GRACE);
        if !engine.inner.store.claim_reconciliation(key, until).await {
            engine.inner.reconciling.remove(key);
            return None;
        }
        Some(Reconciling {
            engine: engine.clone(),
            key: key.clone(),
        })
    }
}

impl Drop for Reconciling {
    fn drop(&mut self) {
        self.engine.inner.store.end_reconciliation(&self.key);
        self.engine.inner.reconciling.remove(&self.key);
    }
}

/// The background reconciliation's backoff per payment.
#[derive(Default)]
pub(crate) struct Backoff {
    /// Attempts made and when the next is due (unix seconds), by payment.
    attempts: DashMap<ReplayKey, (u32, u64)>,
}

impl Backoff {
    fn due(&self, key: &ReplayKey, now: u64) -> bool {
        self.attempts
            .get(key)
            .is_none_or(|a| a.0 < BACKGROUND_ATTEMPTS && a.1 <= now)
    }

    fn failed(&self, key: &ReplayKey, now: u64) {
        let mut entry = self.attempts.entry(key.clone()).or_insert((0, 0));
        entry.0 += 1;
        let delay = FIRST_BACKOFF
            .saturating_mul(1 << (entry.0 - 1).min(16))
            .min(MAX_BACKOFF);
        entry.1 = now.saturating_add(delay);
        if entry.0 == BACKGROUND_ATTEMPTS {
            tracing::error!(%key, attempts = entry.0, "x402: a settlement is still unknown after every background attempt; resolve it with `x402 settlements --rpc-url …`");
        }
    }

    fn give_up(&self, key: &ReplayKey, why: &str) {
        if self
            .attempts
            .insert(key.clone(), (BACKGROUND_ATTEMPTS, u64::MAX))
            .is_none()
        {
            tracing::error!(%key, "x402: a settlement is unknown and cannot be reconciled automatically ({why}); resolve it with `x402 settlements --rpc-url …`");
        }
    }

    fn forget(&self, key: &ReplayKey) {
        self.attempts.remove(key);
    }
}

/// How often the background reconciliation runs unless told otherwise.
pub(crate) const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(5);

/// A payment whose settlement outcome is unknown, as an operator sees it (listed by
/// [`unknown_settlements`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnknownSettlement {
    /// The payment's key in the record.
    pub key: ReplayKey,
    /// `"pending"` (the facilitator's answer did not settle it either way) or `"settling"`
    /// (`/settle` is in flight in a live process).
    pub state: &'static str,
    /// The resource paid for (the payment's `resource.url`, or the v1 requirements'), when
    /// recorded.
    pub resource: Option<String>,
    /// The amount in the token's atomic units, when recorded.
    pub amount: Option<U256>,
    /// The authorization's `validBefore` (unix seconds), when recorded.
    pub valid_before: Option<u64>,
    /// When the outcome became unknown or `/settle` was called (unix seconds; 0 if not known).
    pub since: u64,
    /// The transaction the facilitator named, if any.
    pub transaction: Option<String>,
    /// Whether the `/settle` request was recorded (without it only the chain can resolve it).
    pub has_request: bool,
}

impl UnknownSettlement {
    fn from_unresolved(unresolved: Unresolved) -> UnknownSettlement {
        let (state, transaction, request, since) = match unresolved.slot {
            Slot::Settling { request, since } => ("settling", String::new(), request, since),
            Slot::Pending {
                transaction,
                request,
                since,
            } => ("pending", transaction, request, since),
            _ => ("pending", String::new(), None, 0),
        };
        let recorded = request.as_deref().and_then(Recorded::read);
        let resource = recorded
            .as_ref()
            .and_then(|r| match &r.request.payment_requirements {
                Requirements::V1(v1) => Some(v1.resource.clone()),
                Requirements::V2(_) => r.payment.resource.as_ref().map(|res| res.url.clone()),
            });
        UnknownSettlement {
            key: unresolved.key,
            state,
            resource,
            amount: recorded.as_ref().map(Recorded::amount),
            valid_before: recorded.as_ref().map(Recorded::valid_before),
            since,
            transaction: Some(transaction).filter(|t| !t.is_empty()),
            has_request: recorded.is_some(),
        }
    }
}

/// Every payment in `store` whose settlement outcome is unknown, oldest first: what `x402
/// settlements` lists.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = x402_runtime::FileStore::open("x402-payments.redb")?;
/// for unknown in x402_runtime::settlement::unknown_settlements(&store).await? {
///     println!("{} {} since {}", unknown.key, unknown.state, unknown.since);
/// }
/// # Ok(()) }
/// ```
pub async fn unknown_settlements(
    store: &dyn ReplayStore,
) -> Result<Vec<UnknownSettlement>, String> {
    let mut list: Vec<UnknownSettlement> = store
        .unresolved()
        .await?
        .into_iter()
        .map(UnknownSettlement::from_unresolved)
        .collect();
    list.sort_by_key(|u| u.since);
    Ok(list)
}

/// What [`resolve_on_chain`] established.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resolution {
    /// The authorization was used: recorded settled (with the transaction when its log was
    /// found).
    Settled {
        /// The transaction hash.
        transaction: Option<String>,
    },
    /// Unused and past its `validBefore`: recorded `expired_unsettled`; nothing was charged.
    ExpiredUnsettled,
    /// The chain cannot tell yet (unused and still valid), or the transaction it names was
    /// credited to another payment; nothing recorded.
    Unknown,
}

/// Reads the chain for one unknown settlement and records a definite outcome in `store`, kept
/// for `retention` past the authorization (and the default clock-skew allowance of 60 s). A payment
/// whose request was not recorded can be found settled, but never expired (its `validBefore`
/// is not known).
pub async fn resolve_on_chain(
    store: &dyn ReplayStore,
    chain: &dyn crate::chain::ChainReader,
    unknown: &UnknownSettlement,
    retention: Duration,
) -> Result<Resolution, crate::chain::ChainError> {
    let valid_before = unknown.valid_before.unwrap_or(u64::MAX);
    let lookup = chain::Authorization {
        network: unknown.key.network.clone(),
        asset: unknown.key.asset,
        from: unknown.key.from,
        nonce: unknown.key.nonce,
        valid_before,
    };
    let keep_until = kept_until(valid_before, crate::config::DEFAULT_CLOCK_SKEW, retention);
    match chain.authorization(&lookup).await? {
        OnChain::Used { transaction } => {
            let tx = transaction.clone().unwrap_or_default();
            if record_settled(store, &unknown.key, &tx, keep_until).await {
                Ok(Resolution::Settled { transaction })
            } else {
                Ok(Resolution::Unknown)
            }
        }
        OnChain::Expired => {
            store
                .record(&unknown.key, Slot::ExpiredUnsettled, keep_until)
                .await;
            Ok(Resolution::ExpiredUnsettled)
        }
        OnChain::Unused => Ok(Resolution::Unknown),
    }
}
