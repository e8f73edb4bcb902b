//! The values a route's 402 is made of: its offers, built once, and its challenge (the
//! `PAYMENT-REQUIRED` header and the body), ready to send.

use axum::body::{Body, Bytes};
use axum::response::Response;
use dashmap::DashMap;
use http::header::{ACCESS_CONTROL_EXPOSE_HEADERS, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};

use crate::price::Price;
use crate::proto::header::encode_header;
use crate::proto::{
    EXPOSED_HEADERS, PAYMENT_REQUIRED, PaymentRequired, PaymentRequiredV1, PaymentRequirementsV1,
    ResourceInfo,
};
use crate::route::PaidRoute;
use crate::schemes::Offer;

/// Most challenges cached (one per route and resource URL); beyond it they are built per request.
pub(crate) const MAX_CACHED_CHALLENGES: usize = 4096;

/// A route's offers, preferred first, and its price in each of its currencies. The offers of
/// one quote of a quoted route keep their plain challenges here, by resource URL.
#[derive(Debug)]
pub(crate) struct RouteOffers {
    pub(crate) offers: Vec<Offer>,
    pub(crate) prices: Vec<Price>,
    pub(crate) challenges: DashMap<Box<str>, Challenge>,
    /// Whether these offers are kept in the engine's cache, so that challenges kept here are
    /// counted for as long as they live.
    pub(crate) retained: bool,
    /// The route's count of 402s to unpaid requests, registered once with the metrics recorder
    /// (so that the probe's path does not build a metric key per request).
    pub(crate) challenged: metrics::Counter,
}

impl RouteOffers {
    /// The price asked in the currency of `offer`.
    pub(crate) fn price_of(&self, offer: &Offer) -> Option<&Price> {
        self.prices
            .iter()
            .find(|p| p.currency == offer.asset.currency)
    }
}

/// A ready-to-send 402: the encoded `PAYMENT-REQUIRED` header and the body.
#[derive(Debug)]
pub(crate) struct Challenge {
    header: HeaderValue,
    body: Bytes,
}

impl Challenge {
    pub(crate) fn response(&self) -> Response {
        let mut response = Response::new(Body::from(self.body.clone()));
        *response.status_mut() = StatusCode::PAYMENT_REQUIRED;
        let headers = response.headers_mut();
        headers.insert(
            HeaderName::from_static(PAYMENT_REQUIRED),
            self.header.clone(),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
        response
    }
}

/// The requirements of `offer` in v1 shape, for the resource at `url`; `None` where its network
/// has no v1 name.
pub(crate) fn v1_requirements(
    offer: &Offer,
    route: &PaidRoute,
    url: &str,
) -> Option<PaymentRequirementsV1> {
    let r = &offer.requirements;
    Some(PaymentRequirementsV1 {
        scheme: r.scheme.clone(),
        network: offer.network.v1_name?.to_owned(),
        max_amount_required: r.amount.clone(),
        resource: url.to_owned(),
        description: route.description.unwrap_or_default().to_owned(),
        mime_type: "application/json".to_owned(),
        output_schema: None,
        pay_to: r.pay_to.clone(),
        max_timeout_seconds: r.max_timeout_seconds,
        asset: r.asset.clone(),
        extra: r.extra.clone(),
    })
}

/// The 402 for `route` at `url` with the given `error` texts (v2 header, v1 body).
pub(crate) fn build_challenge(
    route: &PaidRoute,
    offers: &RouteOffers,
    extensions: Option<&Map<String, Value>>,
    url: &str,
    error_v2: &str,
    error_v1: &str,
) -> Option<Challenge> {
    let v2 = PaymentRequired {
        x402_version: 2,
        error: Some(error_v2.to_owned()),
        resource: ResourceInfo {
            url: url.to_owned(),
            description: route.description.map(str::to_owned),
            mime_type: Some("application/json".to_owned()),
        },
        accepts: offers
            .offers
            .iter()
            .map(|o| o.requirements.clone())
            .collect(),
        extensions: extensions.cloned(),
    };
    let header = encode_header(&v2)?;
    let v1_accepts: Vec<PaymentRequirementsV1> = offers
        .offers
        .iter()
        .filter_map(|o| v1_requirements(o, route, url))
        .collect();
    let body = if v1_accepts.is_empty() {
        serde_json::to_vec(&v2).ok()?
    } else {
        serde_json::to_vec(&PaymentRequiredV1 {
            x402_version: 1,
            error: error_v1.to_owned(),
            accepts: v1_accepts,
        })
        .ok()?
    };
    Some(Challenge {
        header,
        body: Bytes::from(body),
    })
}
