//! The request path: admit a payment before any other extractor runs, then settle after the
//! handler (or before it, for `settle = "before"`).
//!
//! Order, for a paid request: method (HEAD and OPTIONS are never charged) → one payment header
//! → size cap, strict base64, strict JSON, typed payload → version → match against our own
//! offer by parsed values → local checks (amount, recipient, validity window, EIP-712 signature
//! form) → `payment-identifier` on routes that declared it ([`crate::identifier`]) → atomic
//! reservation of the replay key → facilitator `/verify` → handler → `/settle` in a spawned task
//! → receipt.
//!
//! A payment the server already knows is answered from the record, whatever its validity window
//! says: the reservation finds its key taken, and a payment that fails a check is looked up in
//! the record before it is refused. Settled → `409 payment_already_settled` naming the
//! transaction; in flight → `409 payment_in_progress`; outcome unknown → reconciled
//! ([`crate::settlement`]); expired unsettled → a fresh challenge saying so. Only a payment
//! never seen is refused with a fresh challenge.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use alloy_primitives::{Address, U256};
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::eip3009::{self, SignatureCheck};
use crate::engine::{Offer, RouteOffers, X402};
use crate::facilitator::FacilitatorError;
use crate::handler::{Extractors, HandlerFuture};
use crate::identifier::{self, Check, Claim, IdKey, Identity, Recorder};
#[cfg(feature = "openapi")]
use crate::mount;
use crate::payload::{self, DecodeError, DecodedPayment, ReplayKey, X402Version};
use crate::proto::{
    FacilitatorRequest, PAYMENT_SIGNATURE, PaymentRequirements, Requirements, SettleResponse,
    X_PAYMENT,
};
use crate::registry::{PaidRoute, Price, Pricing, SettleTiming};
use crate::respond::{self, codes};
use crate::settlement::{Attempt, Outcome, Reconcile, Recorded};
use crate::store::Slot;

/// Seconds `validBefore` must still be ahead of now (the reference facilitators' margin for
/// block inclusion).
pub(crate) const VALID_BEFORE_MARGIN: u64 = 6;

/// The verified payment of the current request.
///
/// Take it as an extractor in a `#[paid]` handler to read who paid what. With
/// `settle = "before"` the transaction is known when the handler runs; otherwise settlement
/// happens after the handler and [`transaction`](Payment::transaction) is `None` inside it.
#[derive(Clone, Debug)]
pub struct Payment(Arc<PaymentInner>);

#[derive(Debug)]
struct PaymentInner {
    payer: Address,
    amount: U256,
    price: Price,
    network: String,
    asset: Address,
    version: X402Version,
    transaction: OnceLock<String>,
}

impl Payment {
    /// The address that paid.
    pub fn payer(&self) -> Address {
        self.0.payer
    }

    /// The amount, in the token's atomic units.
    pub fn amount(&self) -> U256 {
        self.0.amount
    }

    /// The route's price (human amount and currency).
    pub fn price(&self) -> &Price {
        &self.0.price
    }

    /// The CAIP-2 network the payment is on.
    pub fn network(&self) -> &str {
        &self.0.network
    }

    /// The token contract.
    pub fn asset(&self) -> Address {
        self.0.asset
    }

    /// The protocol version the client paid with.
    pub fn version(&self) -> X402Version {
        self.0.version
    }

    /// The settlement transaction, once settled.
    pub fn transaction(&self) -> Option<&str> {
        self.0.transaction.get().map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Payment {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Payment>().cloned().ok_or_else(|| {
            respond::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::INTERNAL_ERROR,
                "`Payment` can only be extracted in a handler annotated with #[paid]",
            )
        })
    }
}

/// Frees the replay key when dropped, unless the payment's outcome was recorded; with it, the
/// payment's new `payment-identifier` id.
struct Reservation {
    engine: X402,
    key: ReplayKey,
    armed: bool,
    identifier: Option<Claim>,
}

impl Reservation {
    /// Keeps the key taken (it expires with the authorization), and the id bound to it.
    fn keep(mut self) {
        self.armed = false;
        if let Some(claim) = self.identifier.take() {
            claim.bind();
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.armed {
            self.engine.inner.store.release(&self.key);
        }
    }
}

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

struct Admitted {
    engine: X402,
    route: &'static PaidRoute,
    version: X402Version,
    wire_network: String,
    payer: Address,
    amount: U256,
    valid_before: u64,
    request: FacilitatorRequest,
    payment: Payment,
    reservation: Reservation,
    /// Records the response for resends when the payment carries a new `payment-identifier` id.
    recorder: Option<Recorder>,
}

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
            Admission::Answered(answer) => Poll::Ready(Err(answer.take().unwrap_or_else(|| {
                respond::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    codes::INTERNAL_ERROR,
                    "the paywall's answer was asked for twice",
                )
            }))),
            Admission::Admitting(admitting) => admitting.as_mut().poll(cx),
        }
    }
}

/// The paywall's work for one route, before the handler's extractors. The unpaid request (the
/// common probe) is answered here, synchronously, without cloning the engine or allocating; a
/// request carrying a payment is admitted by a boxed future.
fn admission<'a>(route: &'static PaidRoute, parts: &'a mut Parts) -> Admission<'a> {
    #[cfg(feature = "openapi")]
    if parts.extensions.get::<mount::MountProbe>().is_some() {
        return Admission::Answered(Some(mount::answer(route)));
    }
    let Some(engine) = parts.extensions.get::<X402>() else {
        return Admission::Answered(Some(not_configured(route)));
    };
    if let Some(answer) = engine.answer_without_payment(route, parts) {
        return Admission::Answered(Some(answer));
    }
    let engine = engine.clone();
    engine.start_reconciler();
    Admission::Admitting(Box::pin(async move {
        let admitted = engine.admit(route, parts).await?;
        parts.extensions.insert(admitted.payment.clone());
        Ok(Box::new(admitted) as Box<dyn Finish>)
    }))
}

fn not_configured(route: &PaidRoute) -> Response {
    tracing::error!(
        handler = route.handler,
        "x402: paid handler reached without an x402 configuration on the router"
    );
    respond::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::NOT_CONFIGURED,
        "this route is paid but the server has no x402 configuration: build one with \
         `let x402 = x402_runtime::X402::from_env()?;` and install it with `.layer(x402.layer())` \
         on the Router",
    )
}

impl Admitted {
    async fn finish(mut self, handler: HandlerFuture<'_>) -> Response {
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
                respond::attach_receipt(&mut response, version, &receipt);
                respond::make_private(&mut response);
                if let (Some(recorder), Some(body)) = (recorder, body) {
                    recorder.record(&response, body, &receipt, version);
                }
                response
            }
            SettleTiming::AfterSuccess => {
                let mut response = run(handler).await;
                if !response.status().is_success() {
                    // Dropping `self` releases the reservation: nothing was charged.
                    return response;
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
                        respond::attach_receipt(&mut response, version, &receipt);
                        respond::make_private(&mut response);
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
        Some(transaction) => respond::error_with_tx(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_ERROR,
            "the handler's response failed after the payment settled in the named transaction",
            Some(transaction),
        ),
        None => respond::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_ERROR,
            "the handler's response failed; nothing was charged",
        ),
    }
}

/// Runs the handler; a panic becomes a 500 (and, since it is not 2xx, nothing is settled).
async fn run(handler: HandlerFuture<'_>) -> Response {
    use futures_util::FutureExt as _;
    match std::panic::AssertUnwindSafe(handler).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!("x402: the paid handler panicked; nothing was charged");
            respond::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::INTERNAL_ERROR,
                "the handler failed; nothing was charged",
            )
        }
    }
}

impl Admitted {
    /// Settles in a spawned task, so that a client disconnect cannot cancel it; the task
    /// records the outcome in the replay store whether or not anyone waits for it.
    async fn settle(self) -> Result<SettleResponse, Response> {
        let Admitted {
            engine,
            route,
            version,
            wire_network,
            payer,
            amount,
            valid_before,
            request,
            payment,
            reservation,
            recorder: _,
        } = self;
        // A handler that outlived the authorization: settling it would revert, so it is not
        // tried; nothing was charged and the response is withheld.
        if engine.now().saturating_add(VALID_BEFORE_MARGIN) > valid_before {
            tracing::warn!(key = %reservation.key, "x402: the authorization expired while the handler ran; not settled");
            drop(reservation);
            return Err(respond::with_receipt(
                StatusCode::PAYMENT_REQUIRED,
                codes::VALID_BEFORE,
                "the payment expired while the request was served, so it was not settled and the \
                 response was withheld; nothing was charged",
                version,
                &settle_receipt(payer, &wire_network, false, "", Some(codes::VALID_BEFORE)),
            ));
        }
        let network = wire_network.clone();
        let task = tokio::spawn(async move {
            let key = reservation.key.clone();
            let attempt = Attempt {
                engine: &engine,
                key: &key,
                request: &request,
                wire_network: &network,
                payer,
                amount,
                valid_before,
                known_transaction: "",
                reconciling: false,
            };
            attempt.record_settling().await;
            let outcome = attempt.settle().await;
            match &outcome {
                // Nothing moved: the payment is released, so the same header can be resent.
                Outcome::Refused(_) | Outcome::NotSent => drop(reservation),
                _ => reservation.keep(),
            }
            if let Outcome::Settled(transaction) = &outcome {
                let _ = payment.0.transaction.set(transaction.clone());
                tracing::info!(handler = route.handler, %transaction, payer = %payer, "x402: payment settled");
            }
            outcome
        });
        match task.await {
            Ok(Outcome::Settled(transaction)) => Ok(settle_receipt(
                payer,
                &wire_network,
                true,
                &transaction,
                None,
            )),
            Ok(Outcome::Refused(reason)) => Err(respond::with_receipt(
                StatusCode::PAYMENT_REQUIRED,
                &reason,
                "settlement failed, so the response was withheld; nothing was charged",
                version,
                &settle_receipt(payer, &wire_network, false, "", Some(&reason)),
            )),
            Ok(Outcome::NotSent) => Err(respond::error(
                StatusCode::BAD_GATEWAY,
                codes::UNEXPECTED_SETTLE_ERROR,
                "the facilitator could not be reached to settle; nothing was charged and the \
                 response was withheld: resend the same payment header",
            )),
            Ok(Outcome::Unknown(transaction)) => {
                Err(pending(version, payer, &wire_network, &transaction))
            }
            Ok(Outcome::Expired) => Err(pending(version, payer, &wire_network, "")),
            Err(join) => Err(settlement_task_failed(&join)),
        }
    }
}

fn settlement_task_failed(join: &tokio::task::JoinError) -> Response {
    tracing::error!("x402: settlement task failed: {join}");
    respond::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::INTERNAL_ERROR,
        "settlement failed inside the server; the payment may be retried with the same header",
    )
}

/// The answer while a payment's settlement outcome is unknown: 503 with `Retry-After` and a
/// receipt (`errorReason: settlement_pending`, the transaction when known). Never a 402, which
/// would invite a second signature.
fn pending(
    version: X402Version,
    payer: Address,
    wire_network: &str,
    transaction: &str,
) -> Response {
    respond::with_receipt(
        StatusCode::SERVICE_UNAVAILABLE,
        codes::SETTLEMENT_PENDING,
        "the settlement's outcome is not known yet and the payment may have been charged; do not \
         sign a new payment: resend the same payment header after Retry-After to learn the outcome",
        version,
        &settle_receipt(
            payer,
            wire_network,
            false,
            transaction,
            Some(codes::SETTLEMENT_PENDING),
        ),
    )
}

/// The receipt we send for a settlement of `payer` on `wire_network`.
fn settle_receipt(
    payer: Address,
    wire_network: &str,
    success: bool,
    transaction: &str,
    reason: Option<&str>,
) -> SettleResponse {
    SettleResponse {
        success,
        error_reason: reason.map(str::to_owned),
        error_message: None,
        payer: Some(payer.to_checksum(None)),
        transaction: transaction.to_owned(),
        network: wire_network.to_owned(),
        amount: None,
    }
}

/// Picks the payment header: exactly one `PAYMENT-SIGNATURE` (v2), else exactly one `X-PAYMENT`
/// (v1). A repeated header is malformed.
fn payment_header(headers: &HeaderMap) -> Result<Option<(&HeaderValue, X402Version)>, String> {
    for (name, version) in [
        (PAYMENT_SIGNATURE, X402Version::V2),
        (X_PAYMENT, X402Version::V1),
    ] {
        let mut values = headers.get_all(name).iter();
        if let Some(first) = values.next() {
            if values.next().is_some() {
                return Err(format!("the {name} header was sent more than once"));
            }
            return Ok(Some((first, version)));
        }
    }
    Ok(None)
}

fn malformed(message: &str) -> Response {
    respond::error(StatusCode::BAD_REQUEST, codes::INVALID_PAYLOAD, message)
}

/// Why a payment was refused before any network call.
enum Refused {
    /// A payment problem: 402 with a fresh challenge whose `error` is the code.
    Payment(&'static str),
    /// Not a well-formed payment: 400 `invalid_payload`.
    Malformed(String),
}

/// Why `/verify` did not vouch for a payment.
enum VerifyFailure {
    /// The facilitator refused it, with this reason (402).
    Refused(String),
    /// No answer in time (504).
    Timeout,
    /// An answer that cannot be trusted (502).
    Fault,
}

impl X402 {
    /// The answer to a request that carries no payment header (or is `HEAD`/`OPTIONS`), built
    /// without awaiting; `None` when there is a payment to admit.
    fn answer_without_payment(&self, route: &'static PaidRoute, parts: &Parts) -> Option<Response> {
        let unpaid = parts.method == Method::OPTIONS
            || parts.method == Method::HEAD
            || (!parts.headers.contains_key(PAYMENT_SIGNATURE)
                && !parts.headers.contains_key(X_PAYMENT));
        // HEAD is priced like GET but never charged: a payment sent with it stays unspent.
        if !unpaid {
            return None;
        }
        let offers = match self.route_offers(route) {
            Ok(offers) => offers,
            Err(e) => return Some(no_offer(&e)),
        };
        if parts.method == Method::OPTIONS {
            return Some(options_answer());
        }
        Some(self.challenge(route, &offers, &self.resource_url(parts), None))
    }

    async fn admit(&self, route: &'static PaidRoute, parts: &Parts) -> Result<Admitted, Response> {
        let offers = self.route_offers(route).map_err(|e| no_offer(&e))?;
        let url = self.resource_url(parts);
        // OPTIONS, HEAD and requests without a payment were answered by `answer_without_payment`.
        let Some((header, version)) =
            payment_header(&parts.headers).map_err(|why| malformed(&why))?
        else {
            return Err(self.challenge(route, &offers, &url, None));
        };
        let decoded = payload::decode_header(header.as_bytes(), version).map_err(|e| match e {
            DecodeError::TooLarge => respond::error(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                codes::INVALID_PAYLOAD,
                "the payment header exceeds 16 KiB",
            ),
            DecodeError::Malformed(why) => malformed(&why),
            DecodeError::WrongVersion(_) => {
                self.challenge(route, &offers, &url, Some(codes::INVALID_X402_VERSION))
            }
        })?;
        let checked = self
            .match_offer(&offers, &decoded)
            .and_then(|offer| self.check_locally(offer, &decoded, &url).map(|()| offer));
        let offer = match checked {
            Ok(offer) => offer,
            Err(Refused::Malformed(why)) => return Err(malformed(&why)),
            Err(Refused::Payment(code)) => {
                let known = Known {
                    route,
                    offers: &offers,
                    url: &url,
                    decoded: &decoded,
                };
                return Err(match self.lookup_known(&known).await {
                    Some(answer) => answer,
                    None => self.challenge(route, &offers, &url, Some(code)),
                });
            }
        };
        let auth = &decoded.authorization;
        let key = ReplayKey {
            network: offer.network.caip2.clone(),
            asset: offer.asset.address,
            from: auth.from,
            nonce: auth.nonce,
        };
        let skew = self.config().clock_skew().as_secs();
        let expires_at = u64::try_from(auth.valid_before)
            .unwrap_or(u64::MAX)
            .saturating_add(skew);
        let identifier = self
            .identify(route, &parts.method, offer, &decoded, &key, expires_at)
            .map_err(|answer| *answer)?;
        let recorder = identifier.as_ref().map(Claim::recorder);
        // Nothing has left the process for this payment before this point.
        if let Err(slot) = self.inner.store.reserve(&key, expires_at).await {
            // A new id is freed: only a payment this process verified binds an id beyond its
            // request (copies of someone's used payment must not fill the id cache).
            drop(identifier);
            let known = Known {
                route,
                offers: &offers,
                url: &url,
                decoded: &decoded,
            };
            return Err(self.answer_known(&known, &key, slot).await);
        }
        let reservation = Reservation {
            engine: self.clone(),
            key,
            armed: true,
            identifier,
        };
        if !self.facilitator_ready().await {
            return Err(respond::unavailable(
                codes::FACILITATOR_UNAVAILABLE,
                "the payment facilitator is not reachable yet; nothing was charged, resend the same \
                 payment header later",
            ));
        }
        let (requirements, wire_network) = match version {
            X402Version::V2 => (
                Requirements::V2(offer.requirements.clone()),
                offer.network.caip2.clone(),
            ),
            X402Version::V1 => match offer.v1(route, &url) {
                Some(v1) => {
                    let name = v1.network.clone();
                    (Requirements::V1(v1), name)
                }
                None => {
                    return Err(self.challenge(route, &offers, &url, Some(codes::INVALID_NETWORK)));
                }
            },
        };
        let request = FacilitatorRequest {
            x402_version: version.number(),
            payment_payload: decoded.raw,
            payment_requirements: requirements,
        };
        self.verify(&request, auth.from).await.map_err(|failure| match failure {
            VerifyFailure::Refused(reason) => self.challenge(route, &offers, &url, Some(&reason)),
            VerifyFailure::Timeout => respond::error(
                StatusCode::GATEWAY_TIMEOUT,
                codes::FACILITATOR_TIMEOUT,
                "the facilitator did not verify the payment in time; nothing was charged, retry with the same payment header",
            ),
            VerifyFailure::Fault => respond::error(
                StatusCode::BAD_GATEWAY,
                codes::UNEXPECTED_VERIFY_ERROR,
                "the facilitator could not verify the payment; nothing was charged, retry with the same payment header",
            ),
        })?;
        let Pricing::Fixed(price) = route.pricing;
        let payment = Payment(Arc::new(PaymentInner {
            payer: auth.from,
            amount: offer.amount,
            price,
            network: offer.network.caip2.clone(),
            asset: offer.asset.address,
            version,
            transaction: OnceLock::new(),
        }));
        Ok(Admitted {
            engine: self.clone(),
            route,
            version,
            wire_network,
            payer: auth.from,
            amount: offer.amount,
            valid_before: u64::try_from(auth.valid_before).unwrap_or(u64::MAX),
            request,
            payment,
            reservation,
            recorder,
        })
    }

    /// The `payment-identifier` step (reliability §7.2), on a route that declared it: a
    /// malformed id or a required one missing → 400; an id bound to another payment → 409; the
    /// same payment settled with a recorded response → that response. A new id is claimed for
    /// this payment. Nothing here calls the facilitator.
    fn identify(
        &self,
        route: &'static PaidRoute,
        method: &Method,
        offer: &Offer,
        decoded: &DecodedPayment,
        key: &ReplayKey,
        expires_at: u64,
    ) -> Result<Option<Claim>, Box<Response>> {
        let identifiers = &self.inner.identifiers;
        let Some(required) = identifiers.routes.get(&route.id()).map(|r| *r) else {
            return Ok(None);
        };
        let id = identifier::payment_id(decoded.extensions.as_deref()).map_err(|why| {
            Box::new(respond::error(
                StatusCode::BAD_REQUEST,
                codes::INVALID_PAYMENT_IDENTIFIER,
                why.0,
            ))
        })?;
        let Some(id) = id else {
            if required {
                return Err(Box::new(respond::error(
                    StatusCode::BAD_REQUEST,
                    codes::PAYMENT_IDENTIFIER_REQUIRED,
                    "this route requires a payment identifier: echo extensions[\"payment-identifier\"] \
                     from the 402 with info.id set (16 to 128 characters of A-Z, a-z, 0-9, `_` and `-`)",
                )));
            }
            return Ok(None);
        };
        let id_key = IdKey {
            id: id.into(),
            route: route.id(),
            method: method.clone(),
            scheme: "exact",
            network: offer.network.caip2.clone(),
            asset: offer.asset.address,
            amount: offer.amount,
            pay_to: self.config().pay_to(),
        };
        let answer = match identifiers.check(
            id_key,
            Identity::of(key, decoded),
            expires_at,
            self.now(),
        ) {
            Check::Claimed(claim) => return Ok(Some(claim)),
            Check::Known => return Ok(None),
            Check::Recorded(response) => response,
            Check::Conflict => respond::error(
                StatusCode::CONFLICT,
                codes::PAYMENT_IDENTIFIER_CONFLICT,
                "this payment identifier belongs to another payment for this resource; nothing was \
                 charged. Resend that payment's header to get its answer, or pay with a new identifier",
            ),
            Check::Full => respond::unavailable(
                codes::PAYMENT_IDENTIFIER_CACHE_FULL,
                "the server holds too many payment identifiers right now; nothing was charged, \
                 resend the same payment header later",
            ),
        };
        Err(Box::new(answer))
    }

    /// A payment refused by a local check may still be one the server knows (a resend after its
    /// validity window, say): looked up in the record before it is refused.
    async fn lookup_known(&self, known: &Known<'_>) -> Option<Response> {
        let key = replay_key(known.offers, known.decoded)?;
        let slot = self.inner.store.lookup(&key).await?;
        Some(self.answer_known(known, &key, slot).await)
    }

    /// The answer to a payment the server knows, from what it knows: settled → `409
    /// payment_already_settled` naming the transaction; being verified, served or settled →
    /// `409 payment_in_progress`; outcome unknown → reconciled; expired unsettled → a fresh
    /// challenge saying so (the only case where a known payment gets one).
    async fn answer_known(&self, known: &Known<'_>, key: &ReplayKey, slot: Slot) -> Response {
        match self.effective(slot) {
            Slot::Settled { transaction } => already_settled(&transaction),
            Slot::Pending {
                transaction,
                request,
                ..
            } => self.resend_unknown(known, key, &transaction, request).await,
            Slot::ExpiredUnsettled => self.challenge(
                known.route,
                known.offers,
                known.url,
                Some(codes::EXPIRED_UNSETTLED),
            ),
            Slot::Unavailable => respond::unavailable(
                codes::REPLAY_STORE_UNAVAILABLE,
                "the server cannot check this payment for reuse right now; nothing was charged, \
                 resend the same payment header later",
            ),
            _ => respond::error(
                StatusCode::CONFLICT,
                codes::PAYMENT_IN_PROGRESS,
                "this payment is being verified, served or settled by another request; wait for \
                 that answer, or resend the same payment header later",
            ),
        }
    }

    /// A resend of a payment whose settlement outcome is unknown: reconciled once (the chain
    /// first where it can be read, then one `/settle` with the recorded request, never a new
    /// one), and answered from the outcome: settled → `409 payment_already_settled` naming the
    /// transaction (the response was withheld the first time and the handler does not run
    /// again); expired unsettled → a fresh challenge; still unknown → `503 settlement_pending`.
    /// Only a resend of the same signed authorization reconciles, one at a time; any other copy
    /// is told the settlement is pending.
    async fn resend_unknown(
        &self,
        known: &Known<'_>,
        key: &ReplayKey,
        transaction: &str,
        request: Option<String>,
    ) -> Response {
        let resent = known.decoded;
        let payer = resent.authorization.from;
        let still_pending = |tx: &str| pending(resent.version, payer, &resent.network, tx);
        let Some(recorded) = request.as_deref().and_then(Recorded::read) else {
            return still_pending(transaction);
        };
        let same = recorded.payment.authorization == resent.authorization
            && recorded.payment.signature == resent.signature;
        if !same {
            return still_pending(transaction);
        }
        match self
            .reconcile(key, transaction, recorded, Reconcile::Resend)
            .await
        {
            Some(Outcome::Settled(settled)) => {
                tracing::info!(%key, transaction = %settled, "x402: an unknown settlement is settled");
                already_settled(&settled)
            }
            Some(Outcome::Expired) => self.challenge(
                known.route,
                known.offers,
                known.url,
                Some(codes::EXPIRED_UNSETTLED),
            ),
            Some(Outcome::Unknown(tx)) => still_pending(&tx),
            _ => still_pending(transaction),
        }
    }

    /// Finds our offer the payment is for, comparing parsed values (v2: every field of
    /// `accepted`, `extra` as a subset; v1: scheme and network).
    fn match_offer<'a>(
        &self,
        offers: &'a RouteOffers,
        decoded: &DecodedPayment,
    ) -> Result<&'a Offer, Refused> {
        if decoded.scheme != "exact" {
            return Err(Refused::Payment(codes::INVALID_SCHEME));
        }
        let Some(accepted) = &decoded.accepted else {
            // v1: match on scheme and network name.
            return offers
                .offers
                .iter()
                .find(|o| o.network.v1_name == Some(decoded.network.as_str()))
                .ok_or(Refused::Payment(codes::INVALID_NETWORK));
        };
        let on_network: Vec<&Offer> = offers
            .offers
            .iter()
            .filter(|o| o.network.caip2 == accepted.network)
            .collect();
        if on_network.is_empty() {
            return Err(Refused::Payment(codes::INVALID_NETWORK));
        }
        let asset =
            payload::parse_address(&accepted.asset, "accepted.asset").map_err(decode_refusal)?;
        let amount =
            payload::parse_uint(&accepted.amount, "accepted.amount").map_err(decode_refusal)?;
        let pay_to =
            payload::parse_address(&accepted.pay_to, "accepted.payTo").map_err(decode_refusal)?;
        let offer = on_network
            .into_iter()
            .find(|o| o.asset.address == asset)
            .ok_or(Refused::Payment(codes::INVALID_PAYMENT_REQUIREMENTS))?;
        let same = amount == offer.amount
            && pay_to == self.config().pay_to()
            && accepted.max_timeout_seconds == offer.requirements.max_timeout_seconds
            && extra_contains(accepted, &offer.requirements);
        if same {
            Ok(offer)
        } else {
            Err(Refused::Payment(codes::INVALID_PAYMENT_REQUIREMENTS))
        }
    }

    /// Checks that need no network: exact amount, recipient, validity window, signature form
    /// (see [`SignatureCheck::OtherSigner`]), and the resource the payment was made for.
    fn check_locally(
        &self,
        offer: &Offer,
        decoded: &DecodedPayment,
        url: &str,
    ) -> Result<(), Refused> {
        let auth = &decoded.authorization;
        if auth.value != offer.amount {
            return Err(Refused::Payment(codes::VALUE_MISMATCH));
        }
        if auth.to != self.config().pay_to() {
            return Err(Refused::Payment(codes::RECIPIENT_MISMATCH));
        }
        let now = self.now();
        let latest = now
            .saturating_add(offer.requirements.max_timeout_seconds)
            .saturating_add(self.config().clock_skew().as_secs());
        // Long enough for a settlement that takes the whole settle timeout, plus the margin the
        // facilitator requires when it is called.
        let earliest = now
            .saturating_add(VALID_BEFORE_MARGIN)
            .saturating_add(self.config().settle_timeout().as_secs());
        if auth.valid_before < U256::from(earliest) || auth.valid_before > U256::from(latest) {
            return Err(Refused::Payment(codes::VALID_BEFORE));
        }
        if auth.valid_after > U256::from(now) {
            return Err(Refused::Payment(codes::VALID_AFTER));
        }
        if decoded
            .resource
            .as_ref()
            .is_some_and(|r| url_path(&r.url) != url_path(url))
        {
            return Err(Refused::Payment(codes::INVALID_PAYMENT_REQUIREMENTS));
        }
        let digest = eip3009::signing_hash(&offer.domain_separator, auth);
        match eip3009::check_signature(&decoded.signature, &digest, auth.from) {
            // A well-formed signature by someone other than `from` may still be valid through
            // ERC-1271 when `from` is a contract wallet, which cannot be seen offline.
            SignatureCheck::Valid | SignatureCheck::NeedsChain | SignatureCheck::OtherSigner => {
                Ok(())
            }
            SignatureCheck::Invalid => Err(Refused::Payment(codes::INVALID_SIGNATURE)),
            SignatureCheck::Malformed => Err(Refused::Malformed(
                "the signature is shorter than 65 bytes".into(),
            )),
        }
    }

    /// `/verify`, bounded.
    async fn verify(
        &self,
        request: &FacilitatorRequest,
        from: Address,
    ) -> Result<(), VerifyFailure> {
        let timeout = self.config().verify_timeout();
        let answer = match tokio::time::timeout(timeout, self.facilitator().verify(request)).await {
            Ok(answer) => answer,
            Err(_) => Err(FacilitatorError::Timeout),
        };
        match answer {
            Ok(v) if v.is_valid => {
                let payer_ok = v
                    .payer
                    .as_deref()
                    .is_none_or(|p| p.parse::<Address>().is_ok_and(|a| a == from));
                if payer_ok {
                    Ok(())
                } else {
                    tracing::error!(payer = ?v.payer, %from, "x402: /verify vouched for another payer");
                    Err(VerifyFailure::Fault)
                }
            }
            Ok(v) => {
                tracing::debug!(reason = ?v.invalid_reason, message = ?v.invalid_message, "x402: /verify refused the payment");
                Err(VerifyFailure::Refused(
                    v.invalid_reason
                        .filter(|r| !r.is_empty())
                        .unwrap_or_else(|| "invalid_payment".to_owned()),
                ))
            }
            Err(FacilitatorError::Timeout) => Err(VerifyFailure::Timeout),
            Err(e) => {
                tracing::warn!("x402: /verify fault: {e}");
                Err(VerifyFailure::Fault)
            }
        }
    }
}

fn no_offer(e: &crate::ConfigError) -> Response {
    tracing::error!("x402: {e}");
    respond::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::NO_OFFER,
        &e.to_string(),
    )
}

/// `OPTIONS` on a paid route: never charged, lists the methods.
fn options_answer() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        http::header::ALLOW,
        HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    );
    response
}

fn decode_refusal(e: DecodeError) -> Refused {
    match e {
        DecodeError::Malformed(why) => Refused::Malformed(why),
        _ => Refused::Malformed("the payment is malformed".into()),
    }
}

/// `accepted.extra` must contain every entry of ours with the same value.
fn extra_contains(accepted: &PaymentRequirements, ours: &PaymentRequirements) -> bool {
    match (&ours.extra, &accepted.extra) {
        (None, _) => true,
        (Some(ours), Some(theirs)) => ours.iter().all(|(k, v)| theirs.get(k) == Some(v)),
        (Some(ours), None) => ours.is_empty(),
    }
}

/// The path of an absolute or relative URL, without query or fragment.
fn url_path(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    let path_start = if url.contains("://") {
        after_scheme.find('/').map_or("", |i| &after_scheme[i..])
    } else {
        after_scheme
    };
    let end = path_start.find(['?', '#']).unwrap_or(path_start.len());
    let path = &path_start[..end];
    if path.is_empty() { "/" } else { path }
}

/// What an answer to a known payment needs: the route's offers and the resent payment.
struct Known<'a> {
    route: &'static PaidRoute,
    offers: &'a RouteOffers,
    url: &'a str,
    decoded: &'a DecodedPayment,
}

/// The replay key of a payment, from the payment alone: v2 names its network and asset in
/// `accepted`; a v1 payment is for our offer on the network it names. `None` when it names
/// nothing we offer (then the server cannot have seen it).
fn replay_key(offers: &RouteOffers, decoded: &DecodedPayment) -> Option<ReplayKey> {
    let (network, asset) = match &decoded.accepted {
        Some(accepted) => (
            accepted.network.clone(),
            payload::parse_address(&accepted.asset, "accepted.asset").ok()?,
        ),
        None => {
            let offer = offers
                .offers
                .iter()
                .find(|o| o.network.v1_name == Some(decoded.network.as_str()))?;
            (offer.network.caip2.clone(), offer.asset.address)
        }
    };
    Some(ReplayKey {
        network,
        asset,
        from: decoded.authorization.from,
        nonce: decoded.authorization.nonce,
    })
}

fn already_settled(transaction: &str) -> Response {
    respond::error_with_tx(
        StatusCode::CONFLICT,
        codes::PAYMENT_ALREADY_SETTLED,
        "this payment was already used: it settled in the named transaction",
        Some(transaction).filter(|t| !t.is_empty()),
    )
}

#[cfg(test)]
mod tests {
    use super::url_path;

    #[test]
    fn url_paths() {
        assert_eq!(url_path("http://127.0.0.1:4021/weather?city=x"), "/weather");
        assert_eq!(url_path("https://api.example.com"), "/");
        assert_eq!(url_path("/forecast#x"), "/forecast");
    }
}
