//! The request path of a paid route: admit the payment before any of the handler's extractors
//! run, run the handler, then settle (after the handler, or before it for `settle = "before"`)
//! in a task that a client disconnect cannot cancel, and attach the receipt.

use super::settlement::finishing::{Finishing, panic_message};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use http::request::Parts;

use std::sync::Arc;

use alloy_primitives::U256;

use axum::body::{Body, Bytes};
use futures_util::FutureExt as _;
use tracing::Instrument as _;

use super::admission::{Admitted, options_answer, unpaid};
use super::answer::{self, settle_receipt};
use super::challenge::RouteOffers;
use super::charge::Charge;
use super::engine::X402;
use super::identifier::Recorder;
use super::lifecycle::InFlightSettlement;
use super::refusal::{Receipted, Refusal};
use super::settlement::{Attempt, Outcome, record_settled};
use super::telemetry;
use crate::page;
use crate::price::Price;
use crate::proto::{SettleResponse, codes};
use crate::route::handler::{Extractors, HandlerFuture};
#[cfg(feature = "schemars")]
use crate::route::mount;
use crate::route::quote::Quoter;
use crate::route::{PaidRoute, SettleTiming};
use crate::schemes::exact_evm::rules::VALID_BEFORE_MARGIN;

/// Serves one request to a `#[paid]` handler: admits the payment before any of the handler's
/// extractors run (so an unpaid probe is answered 402 whatever its query or body), extracts the
/// arguments, runs the handler through `call`, and settles. Generic only in the state and the
/// argument types: the expansion's `Handler::call` is a call to this.
#[doc(hidden)]
pub fn serve<S, M, T>(
    route: &'static PaidRoute,
    request: axum::extract::Request,
    state: S,
    call: fn(T) -> HandlerFuture<'static>,
) -> HandlerFuture<'static>
where
    S: Send + Sync + 'static,
    T: Extractors<S, M> + 'static,
    M: 'static,
{
    Box::pin(async move {
        let (mut parts, body) = request.into_parts();
        let admitted = match admission(route, &mut parts).await {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal,
        };
        let args = match T::extract(parts, body, &state).await {
            Ok(args) => args,
            Err(rejection) => return rejection,
        };
        admitted.finish(call(args)).await
    })
}

/// How much of a request body a quoted route reads to price it (as axum's `Json` default).
pub(crate) const QUOTE_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Serves one request to a quoted `#[paid]` handler: reads the body once (bounded), runs the
/// quote function with its extractors, answers 402 with the quoted offers or admits the payment
/// against them, then runs `call` with the handler's extractors over the same body and settles.
#[doc(hidden)]
pub fn serve_quoted<S, M, T, QT, Q>(
    route: &'static PaidRoute,
    request: axum::extract::Request,
    state: S,
    quote: Q,
    call: fn(T) -> HandlerFuture<'static>,
) -> HandlerFuture<'static>
where
    S: Send + Sync + 'static,
    T: Extractors<S, M> + 'static,
    M: 'static,
    Q: Quoter<QT, S>,
{
    Box::pin(async move {
        let (mut parts, body) = request.into_parts();
        let engine = match installed(route, &parts) {
            Ok(engine) => engine.clone(),
            Err(answer) => return *answer,
        };
        if parts.method == http::Method::OPTIONS {
            return options_answer();
        }
        let body = match read_body(body).await {
            Ok(bytes) => bytes,
            Err(refusal) => return refusal,
        };
        if unpaid(&parts) {
            return quoted_challenge(&engine, route, parts, body, &state, quote).await;
        }
        let offers = match quoted(&engine, route, parts.clone(), body.clone(), &state, quote).await
        {
            Ok(offers) => offers,
            Err(Unquoted::Rejected(answer) | Unquoted::Refused(answer)) => return answer,
        };
        engine.start_reconciler();
        let admitted = match engine.admit(route, &parts, Some(offers)).await {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal,
        };
        parts.extensions.insert(admitted.payment.clone());
        let args = match T::extract(parts, Body::from(body), &state).await {
            Ok(args) => args,
            Err(rejection) => return rejection,
        };
        admitted.finish(call(args)).await
    })
}

/// Why a request has no quoted offers: the quote function's own answer (a rejection of one of
/// its extractors, or its error), or the paywall's refusal of its quote.
enum Unquoted {
    Rejected(Response),
    Refused(Response),
}

/// The 402 of an unpaid request to a quoted route. A bare probe (no query, no body) that the
/// quote function cannot price gets the offers at the upper bound, saying how to get its quote.
async fn quoted_challenge<S, QT, Q: Quoter<QT, S>>(
    engine: &X402,
    route: &'static PaidRoute,
    parts: Parts,
    body: Bytes,
    state: &S,
    quote: Q,
) -> Response {
    // Read before the parts move into the quote: nothing else of them is needed after it.
    let url = engine.resource_url(&parts);
    let bare = parts.uri.query().is_none_or(str::is_empty) && body.is_empty();
    let browser = page::prefers_html(&parts.headers);
    match quoted(engine, route, parts, body, state, quote).await {
        Ok(offers) => engine.unpaid_challenge(route, &offers, browser, &url, None),
        Err(Unquoted::Rejected(_)) if bare => engine.probe_challenge(route, browser, &url),
        Err(Unquoted::Rejected(answer) | Unquoted::Refused(answer)) => answer,
    }
}

/// Runs the quote function on the request and gives the offers of its quote; a panic of the
/// quote function is a refusal (500), as is a quote the paywall cannot use.
async fn quoted<S, QT, Q: Quoter<QT, S>>(
    engine: &X402,
    route: &'static PaidRoute,
    parts: Parts,
    body: Bytes,
    state: &S,
    quote: Q,
) -> Result<Arc<RouteOffers>, Unquoted> {
    let quoting = std::panic::AssertUnwindSafe(quote.quote(parts, body, state));
    let quoted = match quoting.catch_unwind().await {
        Ok(Ok(quoted)) => quoted,
        Ok(Err(rejection)) => return Err(Unquoted::Rejected(rejection)),
        Err(_) => {
            tracing::error!(
                handler = route.handler,
                "x402: the quote function panicked; nothing was charged"
            );
            let failed = Refusal::QuoteInvalid("its quote function failed".into());
            return Err(Unquoted::Refused(failed.into_response()));
        }
    };
    engine
        .quoted_offers(route, &quoted)
        .map_err(|refusal| Unquoted::Refused(refusal.into_response()))
}

/// The request body, read up to [`QUOTE_BODY_LIMIT`]; one known to be empty is not read.
async fn read_body(body: Body) -> Result<Bytes, Response> {
    use axum::body::HttpBody as _;
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    axum::body::to_bytes(body, QUOTE_BODY_LIMIT)
        .await
        .map_err(|e| body_refusal(&e))
}

/// The answer to a request body that could not be read for a quote.
fn body_refusal(error: &axum::Error) -> Response {
    let too_large = std::error::Error::source(error)
        .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
    if too_large {
        Refusal::BodyTooLarge.into_response()
    } else {
        Refusal::BodyUnreadable.into_response()
    }
}

/// An admitted payment, behind a trait object, so that what is generic in the handler's state
/// or arguments holds a pointer rather than the whole admission state.
trait Finish: Send {
    fn finish<'a>(self: Box<Self>, handler: HandlerFuture<'a>) -> HandlerFuture<'a>;
}

impl Finish for Admitted {
    fn finish<'a>(self: Box<Self>, handler: HandlerFuture<'a>) -> HandlerFuture<'a> {
        Box::pin(Admitted::finish(*self, handler))
    }
}

/// An admission's outcome: the admitted payment, or the answer that refuses the request.
type Admitting = Result<Box<dyn Finish>, Response>;

/// The admission of one request: answered without waiting (unpaid request, configuration
/// error), or waiting for the boxed admission of a payment.
enum Admission<'a> {
    Answered(Option<Response>),
    Admitting(Pin<Box<dyn Future<Output = Admitting> + Send + 'a>>),
}

impl Future for Admission<'_> {
    type Output = Admitting;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Admitting> {
        match self.get_mut() {
            Admission::Answered(answer) => Poll::Ready(Err(answer
                .take()
                .unwrap_or_else(|| Refusal::AnsweredTwice.into_response()))),
            Admission::Admitting(admitting) => admitting.as_mut().poll(cx),
        }
    }
}

/// The paywall's work for one route, before the handler's extractors. The unpaid request (the
/// common probe) is answered here, synchronously, without cloning the engine or allocating; a
/// request carrying a payment is admitted by a boxed future.
fn admission<'a>(route: &'static PaidRoute, parts: &'a mut Parts) -> Admission<'a> {
    let engine = match installed(route, parts) {
        Ok(engine) => engine,
        Err(answer) => return Admission::Answered(Some(*answer)),
    };
    // An `upto` offer names the facilitator its `/supported` lists: read it first.
    let waits = engine.challenge_needs_supported(route);
    if !waits && let Some(answer) = engine.answer_without_payment(route, parts) {
        return Admission::Answered(Some(answer));
    }
    let engine = engine.clone();
    engine.start_reconciler();
    Admission::Admitting(Box::pin(async move {
        if waits {
            if !engine.facilitator_ready().await {
                return Err(Refusal::FacilitatorUnavailable.into_response());
            }
            if let Some(answer) = engine.answer_without_payment(route, parts) {
                return Err(answer);
            }
        }
        let admitted = engine.admit(route, parts, None).await?;
        parts.extensions.insert(admitted.payment.clone());
        Ok(Box::new(admitted) as Box<dyn Finish>)
    }))
}

/// The paywall installed on the router, or the answer without it: the route itself to a mount
/// probe, a 500 when no paywall is installed.
fn installed<'a>(route: &'static PaidRoute, parts: &'a Parts) -> Result<&'a X402, Box<Response>> {
    #[cfg(feature = "schemars")]
    if parts.extensions.get::<mount::MountProbe>().is_some() {
        return Err(Box::new(mount::answer(route)));
    }
    parts
        .extensions
        .get::<X402>()
        .ok_or_else(|| Box::new(not_configured(route)))
}

fn not_configured(route: &PaidRoute) -> Response {
    tracing::error!(
        handler = route.handler,
        "x402: paid handler reached without an x402 configuration on the router"
    );
    Refusal::NotConfigured.into_response()
}

impl Admitted {
    /// Runs the handler and settles, inside the payment's span.
    async fn finish(self, handler: HandlerFuture<'_>) -> Response {
        let span = self.span.clone();
        self.serve_and_settle(handler).instrument(span).await
    }

    async fn serve_and_settle(mut self, handler: HandlerFuture<'_>) -> Response {
        let version = self.version;
        let recorder = self.recorder.take();
        match self.route.settle {
            SettleTiming::Before => {
                let receipt = match self.settle().await {
                    Ok(receipt) => receipt,
                    Err(refusal) => return refusal,
                };
                let mut response = run(handler).await;
                let mut body = None;
                if recorder.is_some() {
                    match Recorder::buffer(response).await {
                        Ok((buffered, bytes)) => (response, body) = (buffered, bytes),
                        Err(()) => return body_failed(Some(&receipt.transaction)),
                    }
                }
                answer::attach_receipt(&mut response, version, &receipt);
                answer::make_private(&mut response);
                if let (Some(recorder), Some(body)) = (recorder, body) {
                    recorder.record(&response, body, &receipt, version);
                }
                response
            }
            SettleTiming::AfterSuccess => {
                let mut response = run(handler).await;
                if !response.status().is_success() {
                    // Dropping `self` releases the reservation: nothing was charged.
                    telemetry::settlement(self.route, "not_attempted");
                    return response;
                }
                if let Err(refusal) = self.take_charge(&mut response) {
                    telemetry::settlement(self.route, "not_attempted");
                    return refusal;
                }
                // Buffered before settling, so that a body that fails costs nothing.
                let mut body = None;
                if recorder.is_some() {
                    match Recorder::buffer(response).await {
                        Ok((buffered, bytes)) => (response, body) = (buffered, bytes),
                        Err(()) => return body_failed(None),
                    }
                }
                match self.settle().await {
                    Ok(receipt) => {
                        answer::attach_receipt(&mut response, version, &receipt);
                        answer::make_private(&mut response);
                        if let (Some(recorder), Some(body)) = (recorder, body) {
                            recorder.record(&response, body, &receipt, version);
                        }
                        response
                    }
                    Err(refusal) => refusal,
                }
            }
        }
    }
}

/// The handler's response body failed while it was buffered for `payment-identifier`.
fn body_failed(settled: Option<&str>) -> Response {
    match settled {
        Some(transaction) => Refusal::BodyFailedAfterSettling(transaction.to_owned()),
        None => Refusal::BodyFailed,
    }
    .into_response()
}

/// Runs the handler; a panic becomes a 500 (and, since it is not 2xx, nothing is settled).
async fn run(handler: HandlerFuture<'_>) -> Response {
    match std::panic::AssertUnwindSafe(handler).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!("x402: the paid handler panicked; nothing was charged");
            Refusal::HandlerPanicked.into_response()
        }
    }
}

impl Admitted {
    /// On an `upto` route, what the handler charged (its [`Charge`]) becomes the amount to
    /// settle: at most the authorized maximum, in the route's currency. A missing or invalid
    /// charge is the server's bug, answered 500 with nothing settled (the reservation is freed
    /// when `self` drops).
    // The refusal is the request's answer, built once: boxing it would only add an allocation.
    #[allow(clippy::result_large_err)]
    fn take_charge(&mut self, response: &mut Response) -> Result<(), Response> {
        if self.route.pricing.upto().is_none() {
            return Ok(());
        }
        let refuse = |refusal: Refusal| {
            tracing::error!(handler = self.route.handler, "x402: {}", refusal.message());
            Err(refusal.into_response())
        };
        let Some(charge) = response.extensions_mut().remove::<Charge>() else {
            return refuse(Refusal::ChargeMissing);
        };
        let currency = self.payment.price().currency;
        let units = match charge.atomic_in(currency) {
            Ok(units) => U256::from(units),
            Err(why) => return refuse(Refusal::ChargeInvalid(why)),
        };
        if units > self.amount {
            let what = format!(
                "{} above the authorized {}",
                Price::from_atomic(units.to::<u128>(), currency),
                Price::from_atomic(self.amount.to::<u128>(), currency)
            );
            return refuse(Refusal::ChargeInvalid(what));
        }
        self.amount = units;
        self.charged = Some(units);
        self.request
            .payment_requirements
            .set_amount(units.to_string());
        Ok(())
    }

    /// Settles so that a client disconnect cannot cancel it ([`Finishing`]: in this task, handed
    /// to the runtime if the request is dropped); the outcome is recorded in the replay store
    /// whether or not anyone waits for it.
    async fn settle(self) -> Result<SettleResponse, Response> {
        if self.charged.is_some_and(|units| units.is_zero()) {
            return Ok(self.settle_nothing().await);
        }
        let charged = self.charged;
        self.settle_charged().await.map(|mut receipt| {
            receipt.amount = charged.map(|units| units.to_string());
            receipt
        })
    }

    /// An `upto` request that used nothing: nothing is sent, the permit is left unused on
    /// chain, and the payment is recorded settled without a transaction, so it is not served
    /// twice.
    async fn settle_nothing(self) -> SettleResponse {
        let engine = &self.engine;
        let key = &self.reservation.key;
        let keep_until = engine.keep_until(self.valid_before);
        record_settled(&*engine.inner.store, key, "", keep_until).await;
        telemetry::settlement(self.route, "settled");
        tracing::info!(handler = self.route.handler, payer = %self.payer, "x402: nothing to charge; not settled");
        let mut receipt = settle_receipt(self.payer, &self.wire_network, true, "", None);
        receipt.amount = Some("0".to_owned());
        self.reservation.keep();
        receipt
    }

    async fn settle_charged(self) -> Result<SettleResponse, Response> {
        let (version, payer) = (self.version, self.payer);
        let wire_network = self.wire_network.clone();
        let receipt = |reason: Option<&str>, transaction: &str| Receipted {
            version,
            receipt: settle_receipt(payer, &wire_network, false, transaction, reason),
        };
        // A handler that outlived the authorization: settling it would revert, so it is not
        // tried; nothing was charged and the response is withheld.
        if self.engine.now().saturating_add(VALID_BEFORE_MARGIN) > self.valid_before {
            tracing::warn!(key = %self.reservation.key, "x402: the authorization expired while the handler ran; not settled");
            telemetry::settlement(self.route, "not_attempted");
            let expired = receipt(Some(codes::VALID_BEFORE), "");
            return Err(Refusal::ExpiredWhileServed(expired).into_response());
        }
        let route = self.route;
        // Finished even if the client goes away, in this task unless it does.
        let settled = Finishing::new(self.settle_now()).await;
        if let Ok(outcome) = &settled {
            telemetry::settlement(route, outcome.label());
        }
        let refusal = match settled {
            Ok(Outcome::Settled(transaction)) => {
                tracing::Span::current().record("transaction", transaction.as_str());
                return Ok(settle_receipt(
                    payer,
                    &wire_network,
                    true,
                    &transaction,
                    None,
                ));
            }
            Ok(Outcome::Refused(reason)) => {
                let refused = receipt(Some(&reason), "");
                Refusal::SettlementRefused(reason, refused)
            }
            Ok(Outcome::NotSent) => Refusal::SettleUnreachable,
            Ok(Outcome::Unknown(transaction)) => {
                Refusal::pending(version, payer, &wire_network, &transaction)
            }
            Ok(Outcome::Expired) => Refusal::pending(version, payer, &wire_network, ""),
            Err(panic) => {
                let why = panic_message(panic.as_ref());
                tracing::error!("x402: the settlement panicked: {why}");
                Refusal::SettlementTaskFailed
            }
        };
        Err(refusal.into_response())
    }

    /// Records the settlement as in flight, calls `/settle`, and keeps or releases the
    /// reservation by what its answer means.
    async fn settle_now(self) -> Outcome {
        let Admitted {
            engine,
            route,
            wire_network,
            payer,
            amount,
            valid_before,
            request,
            payment,
            reservation,
            in_flight,
            ..
        } = self;
        let key = reservation.key.clone();
        let attempt = Attempt {
            engine: &engine,
            key: &key,
            request: &request,
            wire_network: &wire_network,
            payer,
            amount,
            valid_before,
            known_transaction: "",
            reconciling: false,
        };
        let recorded = attempt.record_settling().await;
        let lifecycle = &engine.inner.lifecycle;
        let in_flight_settlement = InFlightSettlement {
            request: recorded,
            valid_before,
        };
        lifecycle.settling.insert(key.clone(), in_flight_settlement);
        telemetry::settling(1.0);
        let outcome = attempt.settle().await;
        telemetry::settling(-1.0);
        lifecycle.settling.remove(&key);
        match &outcome {
            // Nothing moved: the payment is released, so the same header can be resent.
            Outcome::Refused(_) | Outcome::NotSent => drop(reservation),
            _ => reservation.keep(),
        }
        if let Outcome::Settled(transaction) = &outcome {
            payment.settled_in(transaction);
            tracing::info!(handler = route.handler, %transaction, payer = %payer, "x402: payment settled");
        }
        drop(in_flight);
        outcome
    }
}
