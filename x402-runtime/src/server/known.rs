//! Answers to a payment the server already knows, from what the record says, whatever the
//! payment's validity window says: settled → `409 payment_already_settled` naming the
//! transaction; in flight → `409 payment_in_progress`; outcome unknown → reconciled
//! ([`super::settlement`]); expired unsettled → a fresh challenge saying so. Only a payment never
//! seen is refused with a fresh challenge.

use axum::response::{IntoResponse, Response};

use super::challenge::RouteOffers;
use super::engine::X402;
use super::refusal::Refusal;
use super::settlement::{Outcome, Reconcile, Recorded};
use crate::proto::codes;
use crate::route::PaidRoute;
use crate::schemes::{DecodedPayment, ReplayKey};
use crate::store::Slot;

/// What an answer to a known payment needs: the route's offers and the resent payment.
pub(crate) struct Known<'a> {
    pub(crate) route: &'static PaidRoute,
    pub(crate) offers: &'a RouteOffers,
    pub(crate) url: &'a str,
    pub(crate) decoded: &'a DecodedPayment,
}

impl X402 {
    /// A payment refused by a local check may still be one the server knows (a resend after its
    /// validity window, say): looked up in the record before it is refused.
    pub(crate) async fn lookup_known(&self, known: &Known<'_>) -> Option<Response> {
        let key = replay_key(known.offers, known.decoded)?;
        let slot = self.inner.store.lookup(&key).await?;
        Some(self.answer_known(known, &key, slot).await)
    }

    /// The answer to a payment the server knows, from what it knows: settled → `409
    /// payment_already_settled` naming the transaction; being verified, served or settled →
    /// `409 payment_in_progress`; outcome unknown → reconciled; expired unsettled → a fresh
    /// challenge saying so (the only case where a known payment gets one).
    pub(crate) async fn answer_known(
        &self,
        known: &Known<'_>,
        key: &ReplayKey,
        slot: Slot,
    ) -> Response {
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
            Slot::Unavailable => Refusal::StoreUnavailable.into_response(),
            _ => Refusal::InProgress.into_response(),
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
        let payer = resent.payload.payer();
        let still_pending = |tx: &str| {
            Refusal::pending(resent.wire.version, payer, &resent.wire.network, tx).into_response()
        };
        let Some(recorded) = request.as_deref().and_then(Recorded::read) else {
            return still_pending(transaction);
        };
        let same = recorded.payment.payload.signed() == resent.payload.signed();
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
}

/// The replay key of a payment, from the payment alone: v2 names its network and asset in
/// `accepted`; a v1 payment is for our offer on the network it names. `None` when it names
/// nothing we offer (then the server cannot have seen it).
fn replay_key(offers: &RouteOffers, decoded: &DecodedPayment) -> Option<ReplayKey> {
    let (network, asset) = match &decoded.wire.accepted {
        Some(accepted) => (accepted.network.clone(), accepted.asset.parse().ok()?),
        None => {
            let offer = offers
                .offers
                .iter()
                .find(|o| o.network.v1_name == Some(decoded.wire.network.as_str()))?;
            (offer.network.caip2.clone(), offer.asset.address)
        }
    };
    Some(decoded.payload.replay_key(&network, asset))
}

fn already_settled(transaction: &str) -> Response {
    Refusal::AlreadySettled(transaction.to_owned()).into_response()
}
