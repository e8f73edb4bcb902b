//! Reconciliation: a payment whose settlement outcome is unknown is brought to a definite one,
//! one reconciliation at a time per payment across every process sharing the store, on a resend
//! and by the server itself in the background.

use std::sync::Arc;
use std::time::Duration;

use super::{Attempt, Outcome, Recorded, SETTLING_GRACE};
use crate::schemes::ReplayKey;
use crate::server::engine::X402;
use crate::server::telemetry;
use crate::store::{Slot, Unresolved};

/// Payments the background pass reconciles at once.
const BACKGROUND_CONCURRENCY: usize = 4;
/// How a reconciliation may bring the outcome about.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reconcile {
    /// A resend of the payment: read the chain, then repeat the recorded `/settle`.
    Resend,
    /// The server's own pass: read the chain; only without a chain reader for the payment repeat
    /// `/settle`.
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
                payer: recorded.payment.payload.payer(),
                amount: recorded.amount(),
                valid_before: recorded.valid_before(),
                known_transaction: &transaction,
                reconciling: true,
            };
            if let Some(outcome) = attempt.read_chain().await {
                return outcome;
            }
            // The chain reader reads EVM authorizations: a Solana payment's recorded `/settle`
            // is repeated (the same signed bytes, which the cluster lands at most once).
            let readable = key.from.as_evm().is_some();
            if how == Reconcile::Background && readable && engine.inner.chain.is_some() {
                return Outcome::Unknown(transaction.clone());
            }
            tracing::info!(%key, "x402: reconciling an unknown settlement with its recorded /settle");
            attempt.settle().await
        });
        match task.await {
            Ok(outcome) => {
                telemetry::reconciliation(outcome.label());
                Some(outcome)
            }
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
        telemetry::unresolved(listed.len());
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
pub(crate) fn kept_until(valid_before: u64, skew: Duration, retention: Duration) -> u64 {
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
