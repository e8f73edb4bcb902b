//! [`Payment`]: the verified payment of the current request, as a handler's extractor.

use std::sync::{Arc, OnceLock};

use alloy_primitives::U256;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use super::refusal::Refusal;
use crate::network::AccountId;
use crate::price::Price;
use crate::proto::X402Version;
use crate::schemes::Offer;

/// The verified payment of the current request.
///
/// Take it as an extractor in a `#[paid]` handler to read who paid what. With
/// `settle = "before"` the transaction is known when the handler runs; otherwise settlement
/// happens after the handler and [`transaction`](Payment::transaction) is `None` inside it.
#[derive(Clone, Debug)]
pub struct Payment(Arc<PaymentInner>);

#[derive(Debug)]
struct PaymentInner {
    payer: AccountId,
    amount: U256,
    price: Price,
    network: String,
    asset: AccountId,
    version: X402Version,
    transaction: OnceLock<String>,
}

impl Payment {
    /// A payment by `payer` for `offer`, admitted and not settled yet.
    pub(crate) fn admitted(
        offer: &Offer,
        payer: AccountId,
        price: Price,
        version: X402Version,
    ) -> Payment {
        Payment(Arc::new(PaymentInner {
            payer,
            amount: offer.amount,
            price,
            network: offer.network.caip2.clone(),
            asset: offer.asset.address,
            version,
            transaction: OnceLock::new(),
        }))
    }

    /// Records the settlement transaction (once).
    pub(crate) fn settled_in(&self, transaction: &str) {
        let _ = self.0.transaction.set(transaction.to_owned());
    }

    /// The account that paid (an EVM address, written EIP-55 by its `Display`).
    pub fn payer(&self) -> AccountId {
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

    /// The token: its contract on EVM.
    pub fn asset(&self) -> AccountId {
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
        parts
            .extensions
            .get::<Payment>()
            .cloned()
            .ok_or_else(|| Refusal::NotPaidHandler.into_response())
    }
}
