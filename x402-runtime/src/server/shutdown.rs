//! Graceful shutdown: stop admitting payments, let the ones under way finish (bounded), and
//! record every settlement that did not finish as an unknown outcome.

use std::time::Duration;

use crate::schemes::ReplayKey;
use crate::server::engine::X402;
use crate::store::Slot;

/// What [`X402::shutdown`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Whether every admitted payment finished within the grace period.
    pub drained: bool,
    /// Payments still under way when the grace period ended: their handler was still running
    /// (nothing charged yet) or their settlement was in flight.
    pub unfinished: usize,
    /// Settlements still in flight when the grace period ended, recorded as unknown outcomes
    /// (pending, with their `/settle` request) so that a resend, or the next process sharing
    /// the store, reconciles them instead of answering with a fresh challenge.
    pub recorded_unknown: Vec<ReplayKey>,
}

impl X402 {
    /// Stops admitting new payments and waits, at most `grace`, for the admitted ones to
    /// finish; a settlement still in flight then is recorded as an unknown outcome.
    ///
    /// From the call on, a request carrying a payment is answered `503 server_shutting_down`
    /// with `Retry-After` before anything is verified (nothing is charged; the client resends
    /// the same payment to another instance or later). Requests without a payment still get
    /// their 402. Call it from the future given to axum's `with_graceful_shutdown`, so that the
    /// payments under way finish and their responses are delivered before the listener closes:
    ///
    /// ```no_run
    /// # async fn run(x402: x402_runtime::X402, app: axum::Router) -> std::io::Result<()> {
    /// use std::time::Duration;
    ///
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:4021").await?;
    /// let draining = x402.clone();
    /// axum::serve(listener, app)
    ///     .with_graceful_shutdown(async move {
    ///         let _ = tokio::signal::ctrl_c().await;
    ///         let report = draining.shutdown(Duration::from_secs(30)).await;
    ///         if !report.drained {
    ///             eprintln!("{} payments unfinished", report.unfinished);
    ///         }
    ///     })
    ///     .await
    /// # }
    /// ```
    ///
    /// Pick `grace` above the settle timeout (30 s by default) where you can: a settlement
    /// then always finishes with a known answer or its own timeout.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let lifecycle = &self.inner.lifecycle;
        lifecycle.drain();
        tracing::info!(
            in_flight = lifecycle.in_flight(),
            "x402: shutting down; new payments are refused"
        );
        let drained = tokio::time::timeout(grace, lifecycle.idle()).await.is_ok();
        let mut report = ShutdownReport {
            drained,
            unfinished: lifecycle.in_flight(),
            recorded_unknown: Vec::new(),
        };
        if drained {
            return report;
        }
        let settling: Vec<_> = lifecycle
            .settling
            .iter()
            .map(|entry| (entry.key().clone(), entry.value().clone()))
            .collect();
        for (key, settlement) in settling {
            // A settlement that reached its answer since the list was taken keeps it: a store
            // never replaces a definite outcome with a weaker one (`Slot::may_replace`).
            let unknown = Slot::Pending {
                transaction: String::new(),
                request: settlement.request,
                since: self.now(),
            };
            let keep_until = self.keep_until(settlement.valid_before);
            self.inner.store.record(&key, unknown, keep_until).await;
            tracing::warn!(%key, "x402: settlement unfinished at shutdown; recorded as unknown");
            report.recorded_unknown.push(key);
        }
        report
    }
}
