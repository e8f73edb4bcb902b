//! The background reconciliation's pace: how often it runs and how long it waits before trying
//! one payment again.

use std::time::Duration;

use dashmap::DashMap;

use crate::schemes::ReplayKey;

/// Attempts the background reconciliation makes for one payment before it leaves it to an
/// operator (`x402 settlements`); a resend still reconciles.
pub(crate) const BACKGROUND_ATTEMPTS: u32 = 20;
/// Backoff between two background attempts for one payment: this, doubled each time, up to
/// [`MAX_BACKOFF`].
pub(crate) const FIRST_BACKOFF: u64 = 5;
pub(crate) const MAX_BACKOFF: u64 = 600;

/// The background reconciliation's backoff per payment.
#[derive(Default)]
pub(crate) struct Backoff {
    /// Attempts made and when the next is due (unix seconds), by payment.
    attempts: DashMap<ReplayKey, (u32, u64)>,
}

impl Backoff {
    pub(crate) fn due(&self, key: &ReplayKey, now: u64) -> bool {
        self.attempts
            .get(key)
            .is_none_or(|a| a.0 < BACKGROUND_ATTEMPTS && a.1 <= now)
    }

    pub(crate) fn failed(&self, key: &ReplayKey, now: u64) {
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

    pub(crate) fn give_up(&self, key: &ReplayKey, why: &str) {
        if self
            .attempts
            .insert(key.clone(), (BACKGROUND_ATTEMPTS, u64::MAX))
            .is_none()
        {
            tracing::error!(%key, "x402: a settlement is unknown and cannot be reconciled automatically ({why}); resolve it with `x402 settlements --rpc-url …`");
        }
    }

    pub(crate) fn forget(&self, key: &ReplayKey) {
        self.attempts.remove(key);
    }
}

/// How often the background reconciliation runs unless told otherwise.
pub(crate) const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(5);
