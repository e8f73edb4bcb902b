//! Where a price becomes offers and offers become a 402: each route's offers (one per network
//! it is offered on and currency it takes that has a token there, per scheme that can take it,
//! networks first, in declared order), built once, and its challenges, cached.

use smallvec::SmallVec;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::response::{IntoResponse, Response};
use http::header::HOST;
use http::request::Parts;

use alloy_primitives::Address;

use dashmap::DashMap;

use super::challenge::{Challenge, MAX_CACHED_CHALLENGES, RouteOffers, build_challenge};
use super::config::X402Config;
use super::engine::X402;
use super::pricing;
use super::refusal::Refusal;
use super::telemetry;
use crate::base::ConfigError;
use crate::network::TransferMethod;
use crate::network::{AccountId, Network};
use crate::page;
use crate::price::{Price, Pricing};
use crate::proto::{PaymentRequirements, codes};
use crate::route::PaidRoute;
use crate::route::quote::{Amount, Quote};
use crate::schemes::upto_evm::UPTO;
use crate::schemes::{self, Offer, OfferTerms, permit2};

/// A request's resource URL, built on the stack when it is short (as most are), so that an
/// unpaid request finds its cached 402 without allocating.
pub(crate) struct ResourceUrl(SmallVec<[u8; 256]>);

impl std::ops::Deref for ResourceUrl {
    type Target = str;

    /// The URL (made of a `&str` origin and path, so always UTF-8).
    fn deref(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl X402 {
    /// How `route` is priced in this deployment: its attribute's price, or the one the
    /// configuration set for it ([`X402ConfigBuilder::price`](crate::X402ConfigBuilder::price),
    /// `X402_PRICES`). [`PaidRoute::pricing`] is the compiled one.
    pub fn pricing(&self, route: &'static PaidRoute) -> Pricing {
        match self.inner.prices.get(&route.id()) {
            Some(price) => Pricing::Fixed(price.clone()),
            None => route.pricing.clone(),
        }
    }

    /// The offers of `route`, preferred first: the single source for the live 402 and for any
    /// published document. Fails if no configured network has a token in the route's currency.
    /// A quoted route's live 402 carries its quote; these carry its upper bound (`max`).
    pub fn requirements(
        &self,
        route: &'static PaidRoute,
    ) -> Result<Vec<PaymentRequirements>, ConfigError> {
        Ok(self
            .route_offers(route)?
            .offers
            .iter()
            .map(|o| o.requirements.clone())
            .collect())
    }

    pub(crate) fn route_offers(
        &self,
        route: &'static PaidRoute,
    ) -> Result<Arc<RouteOffers>, ConfigError> {
        if let Some(found) = self.inner.offers.get(&route.id()) {
            return Ok(found.clone());
        }
        let pricing = self.pricing(route);
        let built = Arc::new(self.build_offers(route, pricing.most(), None)?);
        // An `upto` offer names the facilitator from `/supported`, and a Solana offer its fee
        // payer: kept once it is known.
        let provisional = pricing.upto().is_some() || built.offers.iter().any(names_fee_payer);
        if !provisional || self.inner.readiness.supported().is_some() {
            self.inner.offers.insert(route.id(), built.clone());
        }
        Ok(built)
    }

    /// The offers of a quoted route for one request's `quote`, cached per amount and recipient
    /// (up to [`MAX_CACHED_QUOTES`] of them). A quote outside the route's bounds, or not a
    /// price in its currency, is refused: a bug of the quote function, answered 500.
    pub(crate) fn quoted_offers(
        &self,
        route: &'static PaidRoute,
        quote: &Quote,
    ) -> Result<Arc<RouteOffers>, Box<Refusal>> {
        let Some(bounds) = route.pricing.bounds() else {
            return self
                .route_offers(route)
                .map_err(|e| Box::new(Refusal::NoOffer(e.to_string())));
        };
        let (amount, pay_to) = quote.parts();
        let currency = bounds.min.currency;
        // In atomic units first: a quote already cached costs no formatting.
        let (atomic, parsed) = match amount {
            Amount::Human(text) => {
                let price = Price::parse(text, currency)
                    .map_err(|why| quote_refusal(route, Refusal::QuoteInvalid(why)))?;
                (price.atomic, Some(price))
            }
            Amount::Atomic(units) => (*units, None),
        };
        if !(bounds.min.atomic..=bounds.max.atomic).contains(&atomic) {
            let price = parsed.unwrap_or_else(|| Price::from_atomic(atomic, currency));
            let what = format!("quoted {price}, outside {bounds}");
            return Err(quote_refusal(route, Refusal::QuoteOutOfBounds(what)));
        }
        let key = (route.id(), atomic, pay_to);
        if let Some(found) = self.inner.quoted.get(&key) {
            return Ok(found.clone());
        }
        let price = parsed.unwrap_or_else(|| Price::from_atomic(atomic, currency));
        let mut built = self
            .build_offers(route, &price, pay_to)
            .map_err(|e| quote_refusal(route, Refusal::QuoteInvalid(e.to_string())))?;
        built.retained = self.inner.quoted.len() < MAX_CACHED_QUOTES;
        let built = Arc::new(built);
        if built.retained {
            self.inner.quoted.insert(key, built.clone());
        }
        Ok(built)
    }

    /// The 402 of a quoted route to a bare probe its quote function could not price: the offers
    /// at the upper bound, and an error that says the price depends on the request.
    pub(crate) fn probe_challenge(
        &self,
        route: &'static PaidRoute,
        browser: bool,
        url: &str,
    ) -> Response {
        let needs_request = Some(codes::QUOTE_NEEDS_REQUEST);
        match self.route_offers(route) {
            Ok(offers) => self.unpaid_challenge(route, &offers, browser, url, needs_request),
            Err(e) => Refusal::NoOffer(e.to_string()).into_response(),
        }
    }

    /// The offers of `route` at `price`, paying `pay_to` or else the route's recipient.
    fn build_offers(
        &self,
        route: &'static PaidRoute,
        price: &Price,
        pay_to: Option<Address>,
    ) -> Result<RouteOffers, ConfigError> {
        let config = &self.inner.config;
        let problem = |what: String| {
            ConfigError::new(format!(
                "route `{}` ({}:{}) {what}",
                route.handler, route.file, route.line
            ))
        };
        let prices = pricing::in_each_currency(route, price).map_err(problem)?;
        let networks = route_networks(config, route).map_err(problem)?;
        // The route's (or quote's) recipient is an EVM address: Solana offers pay the
        // configuration's Solana recipient.
        let evm_pay_to = match (pay_to, route.pay_to) {
            (Some(address), _) => Some(address),
            (None, Some(text)) => Some(Address::parse_checksummed(text, None).map_err(|_| {
                problem(format!("has `pay_to = \"{text}\"`, not an EIP-55 address"))
            })?),
            (None, None) => config.pay_to(),
        };
        let timeout = route
            .max_timeout_seconds
            .unwrap_or(config.max_timeout_seconds());
        let mut offers = Vec::new();
        for network in &networks {
            let before = offers.len();
            let pay_to = match evm_pay_to {
                Some(address) if network.is_evm() => AccountId::Evm(address),
                _ => config.pay_to_on(network).ok_or_else(|| {
                    problem(format!(
                        "is offered on `{}`, which has no recipient: set {}",
                        network.caip2,
                        if network.is_evm() {
                            "X402_PAY_TO (X402ConfigBuilder::pay_to)"
                        } else {
                            "X402_SVM_PAY_TO (X402ConfigBuilder::svm_pay_to)"
                        }
                    ))
                })?,
            };
            for price in &prices {
                let Some(asset) = config.asset(network, price.currency) else {
                    continue;
                };
                let terms = OfferTerms {
                    network,
                    asset: &asset,
                    price,
                    pay_to,
                    max_timeout_seconds: u64::from(timeout),
                    upto: route.pricing.upto().is_some(),
                    supported: self.inner.readiness.supported(),
                };
                offers.extend(schemes::all().iter().filter_map(|s| s.offer(&terms)));
            }
            if offers.len() == before && !route.networks.is_empty() {
                return Err(problem(format!(
                    "is offered on `{}`, which has no {} token: register one with \
                     X402ConfigBuilder::asset or remove the network",
                    network.caip2,
                    currencies(&prices)
                )));
            }
        }
        if let Some(missing) = prices
            .iter()
            .find(|p| !offers.iter().any(|o| o.asset.currency == p.currency))
        {
            let networks: Vec<&str> = networks.iter().map(|n| n.caip2.as_str()).collect();
            return Err(problem(format!(
                "is priced in {} but no network it is offered on ({}) has a {} token: add a \
                 network that has one or register the token with X402ConfigBuilder::asset",
                missing.currency,
                networks.join(", "),
                missing.currency
            )));
        }
        Ok(RouteOffers {
            offers,
            prices,
            challenges: DashMap::new(),
            retained: false,
            challenged: telemetry::challenges(route),
        })
    }

    /// The extensions a 402 of `route` declares: the route's own, and `eip2612GasSponsoring`
    /// when a permit can pay one of `offers` and the facilitator's `/supported` lists it (a payer
    /// who never approved Permit2 signs an EIP-2612 permit instead).
    fn challenge_extensions(
        &self,
        route: &'static PaidRoute,
        offers: &RouteOffers,
    ) -> Option<Arc<serde_json::Map<String, serde_json::Value>>> {
        let own = self.route_extensions(route);
        let sponsored = self.inner.readiness.supported().is_some_and(|s| {
            s.extensions
                .iter()
                .any(|e| e == permit2::EIP2612_GAS_SPONSORING)
        });
        if !sponsored || !offers.offers.iter().any(takes_permits) {
            return own;
        }
        let mut all = own.map(|own| (*own).clone()).unwrap_or_default();
        all.insert(
            permit2::EIP2612_GAS_SPONSORING.to_owned(),
            permit2::eip2612_declaration(),
        );
        Some(Arc::new(all))
    }

    /// Whether `route`'s 402 cannot be answered before the facilitator's `/supported` is read:
    /// an `upto` offer names the facilitator it lists, a Solana offer its fee payer.
    pub(crate) fn challenge_needs_supported(&self, route: &'static PaidRoute) -> bool {
        self.inner.readiness.supported().is_none()
            && (route.pricing.upto().is_some()
                || self
                    .route_offers(route)
                    .is_ok_and(|offers| offers.offers.iter().any(names_fee_payer)))
    }

    /// The absolute URL of the requested resource: the public URL (or `http://` + `Host`) and
    /// the path as the client sent it (before any `nest` stripped a prefix).
    pub(crate) fn resource_url(&self, parts: &Parts) -> ResourceUrl {
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.path(), |o| o.0.path());
        let (scheme, host) = self.origin_parts(&parts.headers);
        let mut url = SmallVec::new();
        for piece in [scheme, host, path] {
            url.extend_from_slice(piece.as_bytes());
        }
        ResourceUrl(url)
    }

    /// The public origin (`https://api.example.com`), else `http://` + the request's `Host`.
    #[cfg(feature = "schemars")]
    pub(crate) fn origin(&self, headers: &http::HeaderMap) -> String {
        let (scheme, host) = self.origin_parts(headers);
        [scheme, host].concat()
    }

    /// The origin in two pieces that concatenate to it: `("", public URL)` or `("http://", host)`.
    fn origin_parts<'a>(&'a self, headers: &'a http::HeaderMap) -> (&'static str, &'a str) {
        match self.inner.config.public_url() {
            Some(origin) => ("", origin),
            None => {
                let host = headers
                    .get(HOST)
                    .and_then(|h| h.to_str().ok())
                    .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
                    .unwrap_or("localhost");
                ("http://", host)
            }
        }
    }

    /// The 402 to an unpaid request for `route` at `url`: the pay page when the request comes
    /// from a `browser` (see [`page::prefers_html`]) and the page is on (for the configuration
    /// and the route), else the JSON challenge.
    pub(crate) fn unpaid_challenge(
        &self,
        route: &'static PaidRoute,
        offers: &RouteOffers,
        browser: bool,
        url: &str,
        error: Option<&str>,
    ) -> Response {
        let challenge = self.challenge(route, offers, url, error);
        if challenge.status() == http::StatusCode::PAYMENT_REQUIRED {
            offers.challenged.increment(1);
        }
        let page = match self.inner.config.pay_page() {
            Some(page) if browser && route.pay_page => page,
            _ => return challenge,
        };
        if challenge.status() != http::StatusCode::PAYMENT_REQUIRED {
            return challenge;
        }
        let lines = offers.offers.iter().filter_map(|offer| {
            let price = offers.price_of(offer)?;
            Some(page::OfferLine { offer, price })
        });
        let view = page::View {
            description: route.description,
            url,
            offers: lines.collect(),
        };
        page.answer(challenge, &view)
    }

    /// The 402 for `route` at `url` with `error`; the plain challenge is cached, by route (a
    /// quoted route's with the offers of its quote) and URL.
    pub(crate) fn challenge(
        &self,
        route: &'static PaidRoute,
        offers: &RouteOffers,
        url: &str,
        error: Option<&str>,
    ) -> Response {
        let extensions = || self.challenge_extensions(route, offers);
        let (error_v2, error_v1) = match error {
            Some(error) => (error, error),
            None => (codes::PAYMENT_REQUIRED, "X-PAYMENT header is required"),
        };
        let quoted = route.pricing.bounds().is_some();
        if error.is_none() {
            let cached = if quoted {
                offers.challenges.get(url).map(|c| c.response())
            } else {
                self.inner
                    .challenges
                    .get(&route.id())
                    .and_then(|by_url| by_url.get(url).map(Challenge::response))
            };
            if let Some(response) = cached {
                return response;
            }
        }
        let built = build_challenge(
            route,
            offers,
            extensions().as_deref(),
            url,
            error_v2,
            error_v1,
        );
        let Some(challenge) = built else {
            return unencodable();
        };
        let mut response = challenge.response();
        if let Some(code) = error {
            telemetry::tag(&mut response, code);
            // The payer must approve Permit2 once before any permit can pay: not a payment
            // problem a new signature fixes (the reference server's status).
            if code == crate::schemes::permit2::codes::ALLOWANCE_REQUIRED {
                *response.status_mut() = http::StatusCode::PRECONDITION_FAILED;
            }
        }
        let count = &self.inner.cached_challenges;
        // Until `/supported` is read, a permit offer's 402 cannot say whether the facilitator
        // sponsors an EIP-2612 approval: that 402 is not kept.
        // Nor is a Solana offer's, which names the fee payer `/supported` lists.
        let provisional = self.inner.readiness.supported().is_none()
            && offers
                .offers
                .iter()
                .any(|o| takes_permits(o) || names_fee_payer(o));
        let keep = (!quoted || offers.retained) && !provisional;
        if error.is_none() && keep && count.load(Ordering::Relaxed) < MAX_CACHED_CHALLENGES {
            let fresh = if quoted {
                offers.challenges.insert(url.into(), challenge).is_none()
            } else {
                let mut by_url = self.inner.challenges.entry(route.id()).or_default();
                by_url.insert(url.into(), challenge).is_none()
            };
            if fresh {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        response
    }
}

/// The networks `route` is offered on: its own `networks = [...]`, else the configuration's.
fn route_networks(config: &X402Config, route: &PaidRoute) -> Result<Vec<Network>, String> {
    if route.networks.is_empty() {
        return Ok(config.networks().to_vec());
    }
    route
        .networks
        .iter()
        .map(|caip2| {
            Network::from_caip2(caip2)
                .filter(|n| n.is_evm() || cfg!(feature = "svm"))
                .ok_or_else(|| {
                    format!(
                        "has network `{caip2}`, which is not a CAIP-2 id this build offers{}",
                        if caip2.starts_with("solana:") {
                            " (Solana needs x402-runtime's `svm` feature)"
                        } else {
                            ""
                        }
                    )
                })
        })
        .collect()
}

/// Whether `offer` names the facilitator's fee payer (`exact` on Solana), which `/supported`
/// tells.
fn names_fee_payer(offer: &Offer) -> bool {
    !offer.network.is_evm()
}

/// Whether a Permit2 permit pays `offer` (`exact` on EVM over Permit2, or `upto`).
fn takes_permits(offer: &Offer) -> bool {
    offer.asset.transfer == TransferMethod::Permit2 || offer.requirements.scheme == UPTO
}

/// `USDC` or `USDC or EURC`.
fn currencies(prices: &[Price]) -> String {
    let symbols: Vec<&str> = prices.iter().map(|p| p.currency.symbol()).collect();
    symbols.join(" or ")
}

/// Most quoted offer sets cached, all routes together; beyond it they are built per request.
pub(crate) const MAX_CACHED_QUOTES: usize = 4096;

/// A quote function's bug, logged with the route, as the refusal that answers it.
fn quote_refusal(route: &PaidRoute, refusal: Refusal) -> Box<Refusal> {
    tracing::error!(
        handler = route.handler,
        file = route.file,
        line = route.line,
        "x402: the route's quote function gave an unusable quote ({}); answered 500, nothing charged",
        refusal.message()
    );
    Box::new(refusal)
}

/// A 500 for a challenge that cannot be encoded, logged.
fn unencodable() -> Response {
    tracing::error!("x402: cannot encode the challenge");
    Refusal::ChallengeUnencodable.into_response()
}
