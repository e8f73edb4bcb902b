//! Admission: a payment header becomes an admitted payment, or the answer that refuses it.
//!
//! Order, for a paid request: method (HEAD and OPTIONS are never charged) → one payment header
//! → size cap, strict base64, strict JSON, typed payload ([`crate::proto::header`], then the
//! scheme's part, [`crate::schemes`]) → version → match against our own offer by parsed values →
//! the scheme's local checks (exact-EVM: amount, recipient, validity window, EIP-712 signature
//! form) → `payment-identifier` on routes that declared it ([`super::identifier`]) → atomic
//! reservation of the replay key → facilitator `/verify`. A payment the server already knows is
//! answered from the record ([`super::known`]).

use std::sync::Arc;

use alloy_primitives::U256;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use tracing::Instrument as _;

use super::challenge::{RouteOffers, v1_requirements};
use super::engine::X402;
use super::identifier::{self, Check, Claim, IdKey, Identity, Recorder};
use super::known::Known;
use super::lifecycle::InFlight;
use super::offers::ResourceUrl;
use super::payment::Payment;
use super::refusal::Refusal;
use super::telemetry;
use crate::base::ConfigError;
use crate::facilitator::FacilitatorError;
use crate::network::AccountId;
use crate::page;
use crate::proto::header::{DecodeError, parse_uint};
use crate::proto::{
    FacilitatorRequest, PAYMENT_SIGNATURE, PaymentRequirements, Requirements, X_PAYMENT,
    X402Version, codes,
};
use crate::route::PaidRoute;
use crate::schemes::exact_evm::rules::VALID_BEFORE_MARGIN;
use crate::schemes::{self, DecodedPayment, Offer, Rejection, ReplayKey, Window};

/// Frees the replay key when dropped, unless the payment's outcome was recorded; with it, the
/// payment's new `payment-identifier` id.
pub(crate) struct Reservation {
    engine: X402,
    pub(crate) key: ReplayKey,
    armed: bool,
    identifier: Option<Claim>,
}

impl Reservation {
    /// Keeps the key taken (it expires with the authorization), and the id bound to it.
    pub(crate) fn keep(mut self) {
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

/// A payment admitted for one request: verified, reserved, waiting for the handler.
pub(crate) struct Admitted {
    pub(crate) engine: X402,
    pub(crate) route: &'static PaidRoute,
    pub(crate) version: X402Version,
    pub(crate) wire_network: String,
    pub(crate) payer: AccountId,
    pub(crate) amount: U256,
    pub(crate) valid_before: u64,
    pub(crate) request: FacilitatorRequest,
    pub(crate) payment: Payment,
    pub(crate) reservation: Reservation,
    /// Records the response for resends when the payment carries a new `payment-identifier` id.
    pub(crate) recorder: Option<Recorder>,
    /// The request's `x402_payment` span (route, payer, amount, network, then transaction).
    pub(crate) span: tracing::Span,
    /// Counts the payment as under way until its outcome (graceful shutdown).
    pub(crate) in_flight: Option<InFlight>,
    /// On an `upto` route, what the handler charged (then also `amount`), once known.
    pub(crate) charged: Option<U256>,
}

/// A payment decoded and matched to one of the route's offers, checked locally.
struct Matched<'a> {
    offers: &'a RouteOffers,
    url: ResourceUrl,
    decoded: DecodedPayment,
    offer: &'a Offer,
}

/// Picks the payment header: exactly one `PAYMENT-SIGNATURE` (v2), else exactly one `X-PAYMENT`
/// (v1). A repeated header is malformed.
pub(crate) fn payment_header(
    headers: &HeaderMap,
) -> Result<Option<(&HeaderValue, X402Version)>, String> {
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

/// Whether the request carries no payment to admit: no payment header, or `HEAD` / `OPTIONS`
/// (HEAD is priced like GET but never charged: a payment sent with it stays unspent).
pub(crate) fn unpaid(parts: &Parts) -> bool {
    parts.method == Method::OPTIONS
        || parts.method == Method::HEAD
        || (!parts.headers.contains_key(PAYMENT_SIGNATURE)
            && !parts.headers.contains_key(X_PAYMENT))
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
    pub(crate) fn answer_without_payment(
        &self,
        route: &'static PaidRoute,
        parts: &Parts,
    ) -> Option<Response> {
        if !unpaid(parts) {
            return None;
        }
        let offers = match self.route_offers(route) {
            Ok(offers) => offers,
            Err(e) => return Some(no_offer(&e)),
        };
        if parts.method == Method::OPTIONS {
            return Some(options_answer());
        }
        let url = self.resource_url(parts);
        let browser = page::prefers_html(&parts.headers);
        Some(self.unpaid_challenge(route, &offers, browser, &url, None))
    }

    /// Admits the payment of a paid request against the route's `offers` (for a quoted route,
    /// those of this request's quote): decoded, matched, checked, reserved and verified, inside
    /// the request's `x402_payment` span; counted by outcome. While the server shuts down no
    /// payment is admitted.
    pub(crate) async fn admit(
        &self,
        route: &'static PaidRoute,
        parts: &Parts,
        offers: Option<Arc<RouteOffers>>,
    ) -> Result<Admitted, Response> {
        let span = tracing::info_span!(
            "x402_payment",
            route = route.handler,
            payer = tracing::field::Empty,
            amount = tracing::field::Empty,
            network = tracing::field::Empty,
            transaction = tracing::field::Empty,
        );
        let admitted = match self.inner.lifecycle.enter() {
            Some(in_flight) => self
                .admit_payment(route, parts, offers)
                .instrument(span.clone())
                .await
                .map(|admitted| Admitted {
                    in_flight: Some(in_flight),
                    span,
                    ..admitted
                }),
            None => Err(Refusal::ShuttingDown.into_response()),
        };
        match &admitted {
            Ok(admitted) => {
                telemetry::admitted(route);
                admitted
                    .span
                    .record("payer", tracing::field::display(admitted.payer));
                admitted
                    .span
                    .record("amount", tracing::field::display(admitted.amount));
                admitted
                    .span
                    .record("network", admitted.wire_network.as_str());
            }
            Err(refusal) => telemetry::refused(route, refusal),
        }
        admitted
    }

    async fn admit_payment(
        &self,
        route: &'static PaidRoute,
        parts: &Parts,
        offers: Option<Arc<RouteOffers>>,
    ) -> Result<Admitted, Response> {
        let offers = match offers {
            Some(offers) => offers,
            None => self.route_offers(route).map_err(|e| no_offer(&e))?,
        };
        let matched = self.decode_and_check(route, parts, &offers).await?;
        let offer = matched.offer;
        let decoded = &matched.decoded;
        let key = decoded
            .payload
            .replay_key(&offer.network.caip2, offer.asset.address);
        let skew = self.config().clock_skew().as_secs();
        let expires_at = decoded.payload.deadline().saturating_add(skew);
        let identifier = self
            .identify(route, &parts.method, offer, decoded, &key, expires_at)
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
                url: &matched.url,
                decoded,
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
            return Err(Refusal::FacilitatorUnavailable.into_response());
        }
        self.verified(route, matched, reservation, recorder).await
    }

    /// Decodes the payment header and checks it against the route's offers without the network;
    /// a payment that fails a check is looked up in the record before it is refused.
    async fn decode_and_check<'a>(
        &self,
        route: &'static PaidRoute,
        parts: &Parts,
        offers: &'a RouteOffers,
    ) -> Result<Matched<'a>, Response> {
        let url = self.resource_url(parts);
        // OPTIONS, HEAD and requests without a payment were answered by `answer_without_payment`.
        let Some((header, version)) = payment_header(&parts.headers)
            .map_err(|why| Refusal::Malformed(why).into_response())?
        else {
            return Err(self.challenge(route, offers, &url, None));
        };
        let decoded = schemes::decode_header(header.as_bytes(), version).map_err(|e| match e {
            DecodeError::TooLarge => Refusal::HeaderTooLarge.into_response(),
            DecodeError::Malformed(why) => Refusal::Malformed(why).into_response(),
            DecodeError::WrongVersion(_) => {
                self.challenge(route, offers, &url, Some(codes::INVALID_X402_VERSION))
            }
        })?;
        let checked = self
            .match_offer(offers, &decoded)
            .and_then(|offer| self.check_locally(offer, &decoded, &url).map(|()| offer));
        match checked {
            Ok(offer) => Ok(Matched {
                offers,
                url,
                decoded,
                offer,
            }),
            Err(Rejection::Malformed(why)) => Err(Refusal::Malformed(why).into_response()),
            Err(Rejection::Payment(code)) => {
                let known = Known {
                    route,
                    offers,
                    url: &url,
                    decoded: &decoded,
                };
                Err(match self.lookup_known(&known).await {
                    Some(answer) => answer,
                    None => self.challenge(route, offers, &url, Some(code)),
                })
            }
        }
    }

    /// Asks the facilitator to verify the reserved payment; an admitted payment on success.
    async fn verified(
        &self,
        route: &'static PaidRoute,
        matched: Matched<'_>,
        reservation: Reservation,
        recorder: Option<Recorder>,
    ) -> Result<Admitted, Response> {
        let Matched {
            offers,
            url,
            decoded,
            offer,
        } = matched;
        let version = decoded.wire.version;
        let (requirements, wire_network) = match version {
            X402Version::V2 => (
                Requirements::V2(offer.requirements.clone()),
                offer.network.caip2.clone(),
            ),
            X402Version::V1 => match v1_requirements(offer, route, &url) {
                Some(v1) => {
                    let name = v1.network.clone();
                    (Requirements::V1(v1), name)
                }
                None => {
                    return Err(self.challenge(route, offers, &url, Some(codes::INVALID_NETWORK)));
                }
            },
        };
        let payer = decoded.payload.payer();
        let valid_before = decoded.payload.deadline();
        let request = FacilitatorRequest {
            x402_version: version.number(),
            payment_payload: decoded.wire.raw,
            payment_requirements: requirements,
        };
        self.verify(&request, payer)
            .await
            .map_err(|failure| match failure {
                VerifyFailure::Refused(reason) => {
                    self.challenge(route, offers, &url, Some(&reason))
                }
                VerifyFailure::Timeout => Refusal::VerifyTimeout.into_response(),
                VerifyFailure::Fault => Refusal::VerifyFault.into_response(),
            })?;
        let price = offers
            .price_of(offer)
            .cloned()
            .ok_or_else(|| Refusal::ChallengeUnencodable.into_response())?;
        let payment = Payment::admitted(offer, payer, price, version);
        Ok(Admitted {
            engine: self.clone(),
            route,
            version,
            wire_network,
            payer,
            amount: offer.amount,
            valid_before,
            request,
            payment,
            reservation,
            recorder,
            span: tracing::Span::none(),
            in_flight: None,
            charged: None,
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
        let id = identifier::payment_id(decoded.wire.extensions.as_deref())
            .map_err(|why| Box::new(Refusal::InvalidIdentifier(why.0).into_response()))?;
        let Some(id) = id else {
            if required {
                return Err(Box::new(Refusal::IdentifierRequired.into_response()));
            }
            return Ok(None);
        };
        let id_key = IdKey {
            id: id.into(),
            route: route.id(),
            method: method.clone(),
            scheme: offer.requirements.scheme.clone(),
            network: offer.network.caip2.clone(),
            asset: offer.asset.address,
            amount: offer.amount,
            pay_to: offer.pay_to,
        };
        let answer =
            match identifiers.check(id_key, Identity::of(key, decoded), expires_at, self.now()) {
                Check::Claimed(claim) => return Ok(Some(claim)),
                Check::Known => return Ok(None),
                Check::Recorded(response) => response,
                Check::Conflict => Refusal::IdentifierConflict.into_response(),
                Check::Full => Refusal::IdentifierCacheFull.into_response(),
            };
        Err(Box::new(answer))
    }

    /// Finds our offer the payment is for, comparing parsed values (v2: every field of
    /// `accepted`, `extra` as a subset; v1: scheme and network).
    fn match_offer<'a>(
        &self,
        offers: &'a RouteOffers,
        decoded: &DecodedPayment,
    ) -> Result<&'a Offer, Rejection> {
        let scheme = |o: &&Offer| o.requirements.scheme == decoded.wire.scheme;
        if !offers.offers.iter().any(|o| scheme(&o)) {
            return Err(Rejection::Payment(codes::INVALID_SCHEME));
        }
        let Some(accepted) = &decoded.wire.accepted else {
            // v1: match on scheme and network name.
            return offers
                .offers
                .iter()
                .filter(scheme)
                .find(|o| o.network.v1_name == Some(decoded.wire.network.as_str()))
                .ok_or(Rejection::Payment(codes::INVALID_NETWORK));
        };
        let on_network: Vec<&Offer> = offers
            .offers
            .iter()
            .filter(scheme)
            .filter(|o| o.network.caip2 == accepted.network)
            .collect();
        if on_network.is_empty() {
            return Err(Rejection::Payment(codes::INVALID_NETWORK));
        }
        let asset =
            schemes::parse_account(&accepted.asset, "accepted.asset").map_err(decode_refusal)?;
        let amount = parse_uint(&accepted.amount, "accepted.amount").map_err(decode_refusal)?;
        let pay_to =
            schemes::parse_account(&accepted.pay_to, "accepted.payTo").map_err(decode_refusal)?;
        let offer = on_network
            .into_iter()
            .find(|o| asset == o.asset.address)
            .ok_or(Rejection::Payment(codes::INVALID_PAYMENT_REQUIREMENTS))?;
        let same = amount == offer.amount
            && pay_to == offer.pay_to
            && accepted.max_timeout_seconds == offer.requirements.max_timeout_seconds
            && extra_contains(accepted, &offer.requirements);
        if same {
            Ok(offer)
        } else {
            Err(Rejection::Payment(codes::INVALID_PAYMENT_REQUIREMENTS))
        }
    }

    /// Checks that need no network: the resource the payment was made for, then the scheme's
    /// own checks against the offer, within the window this server accepts: long enough for a
    /// settlement that takes the whole settle timeout plus the margin the facilitator requires,
    /// and no longer than the offer's timeout plus the clock-skew allowance.
    fn check_locally(
        &self,
        offer: &Offer,
        decoded: &DecodedPayment,
        url: &str,
    ) -> Result<(), Rejection> {
        let now = self.now();
        let window = Window {
            now,
            earliest: now
                .saturating_add(VALID_BEFORE_MARGIN)
                .saturating_add(self.config().settle_timeout().as_secs()),
            latest: now
                .saturating_add(offer.requirements.max_timeout_seconds)
                .saturating_add(self.config().clock_skew().as_secs()),
        };
        offer
            .check
            .check(offer, decoded.payload.as_ref(), &window)?;
        if decoded
            .wire
            .resource
            .as_ref()
            .is_some_and(|r| url_path(&r.url) != url_path(url))
        {
            return Err(Rejection::Payment(codes::INVALID_PAYMENT_REQUIREMENTS));
        }
        Ok(())
    }

    /// `/verify`, bounded.
    async fn verify(
        &self,
        request: &FacilitatorRequest,
        from: AccountId,
    ) -> Result<(), VerifyFailure> {
        let timeout = self.config().verify_timeout();
        let answer = match tokio::time::timeout(timeout, self.facilitator().verify(request)).await {
            Ok(answer) => answer,
            Err(_) => Err(FacilitatorError::Timeout),
        };
        match answer {
            Ok(v) if v.is_valid => {
                let payer_ok = v.payer.as_deref().is_none_or(|p| from.matches_text(p));
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
                        .unwrap_or_else(|| codes::INVALID_PAYMENT.to_owned()),
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

fn no_offer(e: &ConfigError) -> Response {
    tracing::error!("x402: {e}");
    Refusal::NoOffer(e.to_string()).into_response()
}

/// `OPTIONS` on a paid route: never charged, lists the methods.
/// The answer to `OPTIONS` on a paid route.
pub(crate) fn options_answer() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        http::header::ALLOW,
        HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    );
    response
}

fn decode_refusal(e: DecodeError) -> Rejection {
    match e {
        DecodeError::Malformed(why) => Rejection::Malformed(why),
        _ => Rejection::Malformed("the payment is malformed".into()),
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
