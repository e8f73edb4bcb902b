//! Metrics of the paywall, through the [`metrics`] facade.
//!
//! The paywall records counters and histograms with the `metrics` crate's macros; nothing is
//! exported until the application installs a recorder (for Prometheus,
//! `metrics-exporter-prometheus`), and without one each call costs an atomic load. Names follow
//! Prometheus conventions: `_total` for counters, base units (`_seconds`) for histograms.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `x402_challenges_total` | counter | `route` | 402s answered to requests without a payment |
//! | `x402_payments_refused_total` | counter | `route`, `code` | requests carrying a payment answered without running the handler, by stable code (a facilitator's reason as it gave it when it is a snake_case word, else `facilitator_other`) |
//! | `x402_payments_admitted_total` | counter | `route` | payments verified and reserved: the handler runs |
//! | `x402_settlements_total` | counter | `route`, `outcome` | settlements of admitted payments: `settled`, `refused`, `not_sent`, `unknown`, `expired`, `not_attempted` (the handler failed or outlived the authorization: nothing charged) |
//! | `x402_reconciliations_total` | counter | `outcome` | unknown outcomes brought to an answer, by a resend or in the background: `settled`, `expired`, `unknown` (still), `refused` |
//! | `x402_unresolved_settlements` | gauge | | payments whose settlement outcome is unknown, as the last background pass listed them |
//! | `x402_settlements_in_flight` | gauge | | `/settle` calls under way in this process |
//! | `x402_facilitator_request_duration_seconds` | histogram | `endpoint` (`verify`, `settle`, `supported`), `result` (`ok`, `timeout`, `unreachable`, `bad_response`) | facilitator round trips |
//! | `x402_store_operation_duration_seconds` | histogram | `operation` (`reserve`, `lookup`, `record`, `credit`, `unresolved`) | replay store and settlement record calls |
//!
//! `route` is the handler's operation id (the name `X402_PRICES` uses), so the label set is
//! bounded by the application's routes.
//!
//! Install the recorder before the server takes requests: a route's 402 counter is taken from
//! the recorder once, when the route's offers are first built.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;

use crate::base::BoxFuture;
use crate::facilitator::{Facilitator, FacilitatorError};
use crate::proto::{FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse};
use crate::route::PaidRoute;
use crate::schemes::ReplayKey;
use crate::store::{ReplayStore, Slot, Unresolved};

/// Counter: 402s answered to requests without a payment, by `route`.
pub const CHALLENGES: &str = "x402_challenges_total";
/// Counter: requests carrying a payment refused before the handler ran, by `route` and `code`.
pub const PAYMENTS_REFUSED: &str = "x402_payments_refused_total";
/// Counter: payments verified and reserved (the handler runs), by `route`.
pub const PAYMENTS_ADMITTED: &str = "x402_payments_admitted_total";
/// Counter: settlements of admitted payments, by `route` and `outcome`.
pub const SETTLEMENTS: &str = "x402_settlements_total";
/// Counter: reconciliations of unknown outcomes, by `outcome`.
pub const RECONCILIATIONS: &str = "x402_reconciliations_total";
/// Gauge: payments whose settlement outcome is unknown (last background pass).
pub const UNRESOLVED: &str = "x402_unresolved_settlements";
/// Gauge: `/settle` calls under way in this process.
pub const SETTLEMENTS_IN_FLIGHT: &str = "x402_settlements_in_flight";
/// Histogram (seconds): facilitator round trips, by `endpoint` and `result`.
pub const FACILITATOR_DURATION: &str = "x402_facilitator_request_duration_seconds";
/// Histogram (seconds): replay store calls, by `operation`.
pub const STORE_DURATION: &str = "x402_store_operation_duration_seconds";

/// The stable code of a refusal, carried by the response as an extension so that the request
/// path can count it by code without reading the body.
#[derive(Clone, Debug)]
pub(crate) struct RefusalCode(pub(crate) Cow<'static, str>);

impl RefusalCode {
    /// The code as a label: the paywall's own codes and a facilitator's snake_case reasons as
    /// they are; anything else (free text from a facilitator) as `facilitator_other`, so that
    /// the label set stays bounded.
    fn label(&self) -> Cow<'static, str> {
        let code = &self.0;
        let word = !code.is_empty()
            && code.len() <= 64
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if word {
            code.clone()
        } else {
            Cow::Borrowed("facilitator_other")
        }
    }
}

/// Tags `response` with its refusal `code`.
pub(crate) fn tag(response: &mut axum::response::Response, code: &str) {
    response
        .extensions_mut()
        .insert(RefusalCode(Cow::Owned(code.to_owned())));
}

/// Counts the answer to a request that carried a payment and did not reach the handler.
pub(crate) fn refused(route: &'static PaidRoute, response: &axum::response::Response) {
    let code = match response.extensions().get::<RefusalCode>() {
        Some(code) => code.label(),
        None if response.status() == StatusCode::PAYMENT_REQUIRED => {
            Cow::Borrowed("payment_required")
        }
        None => Cow::Owned(format!("http_{}", response.status().as_u16())),
    };
    metrics::counter!(PAYMENTS_REFUSED, "route" => route.handler, "code" => code).increment(1);
}

/// The counter of 402s answered to requests without a payment to `route`, from the recorder
/// installed now: kept by the route's offers, which are built on the first request.
pub(crate) fn challenges(route: &'static PaidRoute) -> metrics::Counter {
    metrics::counter!(CHALLENGES, "route" => route.handler)
}

/// Counts an admitted payment.
pub(crate) fn admitted(route: &'static PaidRoute) {
    metrics::counter!(PAYMENTS_ADMITTED, "route" => route.handler).increment(1);
}

/// Counts a settlement's outcome (see the module table).
pub(crate) fn settlement(route: &'static PaidRoute, outcome: &'static str) {
    metrics::counter!(SETTLEMENTS, "route" => route.handler, "outcome" => outcome).increment(1);
}

/// Counts a reconciliation's outcome.
pub(crate) fn reconciliation(outcome: &'static str) {
    metrics::counter!(RECONCILIATIONS, "outcome" => outcome).increment(1);
}

/// Sets the number of unknown outcomes the last background pass found.
pub(crate) fn unresolved(count: usize) {
    metrics::gauge!(UNRESOLVED).set(count as f64);
}

/// One `/settle` call more (`1.0`) or less (`-1.0`) under way.
pub(crate) fn settling(delta: f64) {
    metrics::gauge!(SETTLEMENTS_IN_FLIGHT).increment(delta);
}

/// A facilitator whose calls are timed into [`FACILITATOR_DURATION`].
pub(crate) struct TimedFacilitator(pub(crate) Arc<dyn Facilitator>);

fn facilitator_result<T>(result: &Result<T, FacilitatorError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(FacilitatorError::Timeout) => "timeout",
        Err(FacilitatorError::Unreachable(_)) => "unreachable",
        Err(_) => "bad_response",
    }
}

async fn timed_call<T>(
    endpoint: &'static str,
    call: BoxFuture<'_, Result<T, FacilitatorError>>,
) -> Result<T, FacilitatorError> {
    let started = Instant::now();
    let result = call.await;
    let result_label = facilitator_result(&result);
    metrics::histogram!(FACILITATOR_DURATION, "endpoint" => endpoint, "result" => result_label)
        .record(started.elapsed().as_secs_f64());
    result
}

impl Facilitator for TimedFacilitator {
    fn verify<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<VerifyResponse, FacilitatorError>> {
        Box::pin(timed_call("verify", self.0.verify(request)))
    }

    fn settle<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<SettleResponse, FacilitatorError>> {
        Box::pin(timed_call("settle", self.0.settle(request)))
    }

    fn supported(&self) -> BoxFuture<'_, Result<SupportedResponse, FacilitatorError>> {
        Box::pin(timed_call("supported", self.0.supported()))
    }
}

/// A replay store whose calls are timed into [`STORE_DURATION`].
pub(crate) struct TimedStore<S>(pub(crate) S);

async fn timed<T>(operation: &'static str, call: BoxFuture<'_, T>) -> T {
    let started = Instant::now();
    let result = call.await;
    metrics::histogram!(STORE_DURATION, "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    result
}

impl<S: ReplayStore> ReplayStore for TimedStore<S> {
    fn reserve<'a>(
        &'a self,
        key: &'a ReplayKey,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<(), Slot>> {
        Box::pin(timed("reserve", self.0.reserve(key, expires_at)))
    }

    fn lookup<'a>(&'a self, key: &'a ReplayKey) -> BoxFuture<'a, Option<Slot>> {
        Box::pin(timed("lookup", self.0.lookup(key)))
    }

    fn record<'a>(&'a self, key: &'a ReplayKey, slot: Slot, keep_until: u64) -> BoxFuture<'a, ()> {
        Box::pin(timed("record", self.0.record(key, slot, keep_until)))
    }

    fn release(&self, key: &ReplayKey) {
        self.0.release(key);
    }

    fn credit<'a>(&'a self, transaction: &'a str, key: &'a ReplayKey) -> BoxFuture<'a, bool> {
        Box::pin(timed("credit", self.0.credit(transaction, key)))
    }

    fn unresolved(&self) -> BoxFuture<'_, Result<Vec<Unresolved>, String>> {
        Box::pin(timed("unresolved", self.0.unresolved()))
    }

    fn claim_reconciliation<'a>(&'a self, key: &'a ReplayKey, until: u64) -> BoxFuture<'a, bool> {
        self.0.claim_reconciliation(key, until)
    }

    fn end_reconciliation(&self, key: &ReplayKey) {
        self.0.end_reconciliation(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_bounded_labels() {
        let own = RefusalCode(Cow::Borrowed("payment_in_progress"));
        assert_eq!(own.label(), "payment_in_progress");
        let reason = RefusalCode(Cow::Owned("invalid_exact_evm_nonce_already_used".into()));
        assert_eq!(reason.label(), "invalid_exact_evm_nonce_already_used");
        for free_text in ["Nonce already used!", "", "a b", &"x".repeat(65)] {
            let code = RefusalCode(Cow::Owned(free_text.to_owned()));
            assert_eq!(code.label(), "facilitator_other", "{free_text:?}");
        }
    }
}
