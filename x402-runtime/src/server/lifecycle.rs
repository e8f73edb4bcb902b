//! What a graceful shutdown needs to know: whether new payments are still admitted, how many
//! admitted payments are under way, and which settlements are in flight with their `/settle`
//! requests (so that one that does not finish in time is recorded as an unknown outcome).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use dashmap::DashMap;
use tokio::sync::Notify;

use crate::schemes::ReplayKey;

/// The shared state of [`X402::shutdown`](crate::X402::shutdown).
#[derive(Default)]
pub(crate) struct Lifecycle {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
    /// Settlements under way: the `/settle` request (JSON) and the authorization's `validBefore`.
    pub(crate) settling: DashMap<ReplayKey, InFlightSettlement>,
}

/// A settlement under way, as the shutdown records it if it does not finish in time.
#[derive(Clone)]
pub(crate) struct InFlightSettlement {
    pub(crate) request: Option<String>,
    pub(crate) valid_before: u64,
}

/// One admitted payment under way, from its admission to its settlement's outcome (or its
/// release); dropping it ends it.
pub(crate) struct InFlight(Arc<Lifecycle>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Lifecycle {
    /// Starts one payment, or `None` when the server is draining (no new payment is admitted).
    /// Counted before the check, so that a drain that starts at the same moment waits for it.
    pub(crate) fn enter(self: &Arc<Self>) -> Option<InFlight> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(self.clone());
        if self.draining.load(Ordering::Acquire) {
            return None;
        }
        Some(guard)
    }

    /// Stops admitting new payments.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Admitted payments under way.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Waits until no admitted payment is under way.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_drain_waits_for_the_payments_under_way_and_refuses_new_ones() {
        let lifecycle = Arc::new(Lifecycle::default());
        let first = lifecycle.enter().expect("admitted before the drain");
        lifecycle.drain();
        assert!(
            lifecycle.enter().is_none(),
            "no payment admitted while draining"
        );
        assert_eq!(lifecycle.in_flight(), 1, "the refused one is not counted");
        let waiting = tokio::spawn({
            let lifecycle = lifecycle.clone();
            async move { lifecycle.idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("idle once the last payment ended")
            .expect("task");
    }
}
