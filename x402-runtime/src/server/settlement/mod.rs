//! Settlement and reconciliation: what a `/settle` answer means, how it is recorded, and how a
//! payment whose outcome is unknown is brought to a definite one.
//!
//! Every answer that is neither a definite success nor a definite refusal (no answer in time,
//! `settlement_pending`, a 5xx, HTML, a body that is not JSON or is cut off, a `success` that is
//! not the boolean `true`, a success without a transaction or for another payer, amount or
//! network, a transaction already credited to another payment) means money may have moved. It is
//! recorded durably as unknown ([`Slot::Pending`]) together with the exact `/settle` request, and
//! answered `503 settlement_pending`. Only a request that never reached the facilitator (the
//! connection was refused) or a refusal of a first `/settle` is taken as proof that nothing
//! moved.
//!
//! An unknown outcome is reconciled, one at a time per payment across every process sharing the
//! store: on a resend of the same signed payment (one `/settle` with the recorded request), and
//! by the server itself in the background. Where a [`ChainReader`](crate::schemes::exact_evm::chain::ChainReader) is
//! configured the chain is read first: an authorization found used is settled (with the
//! transaction of its `AuthorizationUsed` log), and one still unused after its `validBefore`
//! can never settle and is recorded `expired_unsettled`. The background pass only reads: with a
//! chain reader it never calls `/settle` (the authorization settles only if the buyer resends
//! it); without one it repeats the recorded `/settle` to learn the outcome from the facilitator.

use alloy_primitives::U256;

use crate::network::AccountId;

use crate::facilitator::FacilitatorError;
use crate::proto::header::parse_uint;
use crate::proto::{FacilitatorRequest, SettleResponse, X402Version, codes};
use crate::schemes::exact_evm::chain::{self, OnChain};
use crate::schemes::{self, DecodedPayment, ReplayKey};
use crate::server::engine::X402;
use crate::store::{ReplayStore, Slot};

pub(crate) mod backoff;
pub(crate) mod finishing;
mod operator;
mod reconcile;

pub use operator::{Resolution, UnknownSettlement, resolve_on_chain, unknown_settlements};
pub(crate) use reconcile::Reconcile;

/// Seconds past the settle timeout after which a settlement still marked settling is taken as
/// orphaned (its process stopped): an unknown outcome.
pub(crate) const SETTLING_GRACE: u64 = 10;
/// What one settlement attempt established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Settled in this transaction (empty when the chain shows the authorization used but its
    /// log was not found), credited to this payment and recorded.
    Settled(String),
    /// Money may have moved; recorded as pending with the request (the transaction, when known).
    Unknown(String),
    /// The facilitator refused a first `/settle`: nothing moved. Not recorded; the caller
    /// releases the payment.
    Refused(String),
    /// The request never reached the facilitator: nothing moved. Not recorded.
    NotSent,
    /// The authorization can never settle: recorded `expired_unsettled`.
    Expired,
}

impl Outcome {
    /// The outcome's name in metrics.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Outcome::Settled(_) => "settled",
            Outcome::Unknown(_) => "unknown",
            Outcome::Refused(_) => "refused",
            Outcome::NotSent => "not_sent",
            Outcome::Expired => "expired",
        }
    }
}

/// One settlement attempt of one payment, and what its answer is checked against.
pub(crate) struct Attempt<'a> {
    pub(crate) engine: &'a X402,
    pub(crate) key: &'a ReplayKey,
    pub(crate) request: &'a FacilitatorRequest,
    pub(crate) wire_network: &'a str,
    pub(crate) payer: AccountId,
    pub(crate) amount: U256,
    pub(crate) valid_before: u64,
    /// The transaction an earlier answer named (reconciliation), else empty.
    pub(crate) known_transaction: &'a str,
    /// Whether this repeats a `/settle` whose outcome was unknown: then a refusal is no proof
    /// that nothing moved ("nonce already used" may be the first settlement landing).
    pub(crate) reconciling: bool,
}

impl Attempt<'_> {
    /// How long the outcome is kept: the record retention past the authorization.
    fn keep_until(&self) -> u64 {
        self.engine.keep_until(self.valid_before)
    }

    /// Records `slot` for this payment, kept for the retention.
    async fn record(&self, slot: Slot) {
        let store = &self.engine.inner.store;
        store.record(self.key, slot, self.keep_until()).await;
    }

    /// Records `/settle` as about to be called, with its request: a durable store then knows
    /// about a settlement in flight even if the process stops before the answer. Returns the
    /// request as recorded.
    pub(crate) async fn record_settling(&self) -> Option<String> {
        let request = request_json(self.key, self.request);
        self.record(Slot::Settling {
            request: request.clone(),
            since: self.engine.now(),
        })
        .await;
        request
    }

    /// `/settle`, bounded by the settle timeout, and what its answer means (recorded).
    pub(crate) async fn settle(&self) -> Outcome {
        let answer = settle_bounded(self.engine, self.request).await;
        self.judge(answer).await
    }

    /// Decides what a `/settle` answer means and records it. Success needs a boolean `true`, a
    /// transaction never credited before, and the payer, network and amount we asked for.
    async fn judge(&self, answer: Result<SettleResponse, FacilitatorError>) -> Outcome {
        let key = self.key;
        let answer = match answer {
            Ok(answer) => answer,
            Err(FacilitatorError::Unreachable(e)) if !self.reconciling => {
                tracing::warn!(%key, "x402: /settle unreachable, nothing sent: {e}");
                return Outcome::NotSent;
            }
            Err(e) => {
                tracing::warn!(%key, "x402: /settle outcome unknown: {e}");
                return self.unknown("").await;
            }
        };
        if answer.success {
            if answer.transaction.is_empty() {
                tracing::warn!(%key, "x402: /settle said success without a transaction; outcome unknown");
                return self.unknown("").await;
            }
            if !settled_as_asked(&answer, self.wire_network, self.payer, self.amount) {
                tracing::error!(%key, ?answer, "x402: /settle succeeded for another payer, network or amount; outcome unknown");
                return self.unknown("").await;
            }
            return self.settled(&answer.transaction).await;
        }
        let reason = answer
            .error_reason
            .as_deref()
            .filter(|r| !r.is_empty())
            .unwrap_or(codes::SETTLEMENT_FAILED);
        if reason == codes::SETTLEMENT_PENDING {
            return self.unknown(&answer.transaction).await;
        }
        // Sent before (the record says so), and the facilitator names the transaction it landed
        // in: settled there.
        let landed = reason == codes::DUPLICATE_SETTLEMENT && !answer.transaction.is_empty();
        if self.reconciling
            && landed
            && settled_as_asked(&answer, self.wire_network, self.payer, self.amount)
        {
            tracing::info!(%key, transaction = %answer.transaction, "x402: the facilitator settled this payment before");
            return self.settled(&answer.transaction).await;
        }
        if self.reconciling {
            tracing::warn!(%key, reason, message = ?answer.error_message, "x402: reconciliation refused; the payment stays pending");
            return self.unknown("").await;
        }
        tracing::info!(%key, reason, message = ?answer.error_message, "x402: settlement refused");
        Outcome::Refused(reason.to_owned())
    }

    /// Credits `transaction` to this payment and records it settled; a transaction already
    /// credited to another payment leaves the outcome unknown.
    async fn settled(&self, transaction: &str) -> Outcome {
        let store = &*self.engine.inner.store;
        if !record_settled(store, self.key, transaction, self.keep_until()).await {
            return self.unknown("").await;
        }
        Outcome::Settled(transaction.to_owned())
    }

    /// Records the outcome as unknown, with the request to repeat.
    async fn unknown(&self, transaction: &str) -> Outcome {
        let transaction = if transaction.is_empty() {
            self.known_transaction
        } else {
            transaction
        };
        self.record(Slot::Pending {
            transaction: transaction.to_owned(),
            request: request_json(self.key, self.request),
            since: self.engine.now(),
        })
        .await;
        Outcome::Unknown(transaction.to_owned())
    }

    /// What the chain says, when a reader is configured: used → settled, dead → expired
    /// unsettled (both recorded); `None` when it cannot tell.
    async fn read_chain(&self) -> Option<Outcome> {
        #[cfg(feature = "svm")]
        if self.key.from.as_svm().is_some() {
            return self.read_solana().await;
        }
        let reader = self.engine.inner.chain.as_ref()?;
        // The chain readers read EVM authorizations only.
        let (asset, from) = (self.key.asset.as_evm()?, self.key.from.as_evm()?);
        let lookup = chain::Authorization {
            network: self.key.network.clone(),
            asset,
            from,
            nonce: self.key.nonce,
            valid_before: self.valid_before,
        };
        match reader.authorization(&lookup).await {
            Ok(OnChain::Used { transaction }) => {
                tracing::info!(key = %self.key, ?transaction, "x402: the chain shows the authorization used");
                Some(
                    self.settled(transaction.as_deref().unwrap_or_default())
                        .await,
                )
            }
            Ok(OnChain::Expired) => {
                tracing::info!(key = %self.key, "x402: the authorization expired unused; nothing was charged");
                self.record(Slot::ExpiredUnsettled).await;
                Some(Outcome::Expired)
            }
            Ok(OnChain::Unused) => None,
            Err(e) => {
                tracing::warn!(key = %self.key, "x402: cannot read the chain: {e}");
                None
            }
        }
    }
}

#[cfg(feature = "svm")]
impl Attempt<'_> {
    /// What the Solana node says of the transaction the facilitator named, when a node is
    /// configured: confirmed → settled; failed, or never landed once its blockhash can no longer
    /// land it → expired unsettled (nothing moved, and these bytes can never land again); `None`
    /// when it cannot tell.
    async fn read_solana(&self) -> Option<Outcome> {
        let node = self.engine.inner.svm_chain.as_ref()?;
        let signature = self.known_transaction;
        if signature.is_empty() {
            return None;
        }
        let status = match self.solana_status(node, signature).await? {
            Some(status) => status,
            None if self.blockhash_expired(node).await => {
                // Nothing can land it any more: what the node says now is final.
                match self.solana_status(node, signature).await? {
                    Some(status) => status,
                    None => {
                        tracing::info!(key = %self.key, signature, "x402: the Solana transaction never landed and its blockhash expired; nothing was charged");
                        self.record(Slot::ExpiredUnsettled).await;
                        return Some(Outcome::Expired);
                    }
                }
            }
            None => return None,
        };
        if status.err.is_some() {
            tracing::info!(key = %self.key, signature, err = ?status.err, "x402: the Solana transaction failed; nothing was charged");
            self.record(Slot::ExpiredUnsettled).await;
            return Some(Outcome::Expired);
        }
        if !status.is_confirmed() {
            return None;
        }
        tracing::info!(key = %self.key, signature, "x402: the Solana transaction is confirmed");
        Some(self.settled(signature).await)
    }

    /// The node's status of `signature`; `None` (outer) when it cannot be read.
    async fn solana_status(
        &self,
        node: &crate::schemes::exact_svm::rpc::SvmRpc,
        signature: &str,
    ) -> Option<Option<crate::schemes::exact_svm::rpc::SignatureStatus>> {
        node.signature_status(signature)
            .await
            .inspect_err(
                |e| tracing::warn!(key = %self.key, "x402: cannot read the Solana node: {e}"),
            )
            .ok()
    }

    /// Whether the node says the recorded transaction's blockhash is no longer valid (`false`
    /// when it cannot tell).
    async fn blockhash_expired(&self, node: &crate::schemes::exact_svm::rpc::SvmRpc) -> bool {
        let payload = serde_json::from_str::<serde_json::Value>(self.request.payment_payload.get())
            .ok()
            .map(|envelope| envelope["payload"].to_string());
        let transaction = payload
            .and_then(|p| crate::schemes::exact_svm::SvmTransaction::from_payload_json(&p).ok());
        let Some(transaction) = transaction else {
            return false;
        };
        node.blockhash_is_valid(&transaction.recent_blockhash)
            .await
            .is_ok_and(|valid| !valid)
    }
}

/// Credits `transaction` (when known) to `key` and records the payment settled; `false`, with
/// nothing recorded, when the transaction was already credited to another payment.
pub(crate) async fn record_settled(
    store: &dyn ReplayStore,
    key: &ReplayKey,
    transaction: &str,
    keep_until: u64,
) -> bool {
    if !transaction.is_empty() && !store.credit(transaction, key).await {
        tracing::error!(%key, transaction, "x402: transaction already credited to another payment; outcome unknown");
        return false;
    }
    let slot = Slot::Settled {
        transaction: transaction.to_owned(),
    };
    store.record(key, slot, keep_until).await;
    true
}

/// The request as recorded JSON.
fn request_json(key: &ReplayKey, request: &FacilitatorRequest) -> Option<String> {
    match serde_json::to_string(request) {
        Ok(json) => Some(json),
        Err(e) => {
            tracing::error!(%key, "x402: cannot record the /settle request for a retry: {e}");
            None
        }
    }
}

/// `/settle`, bounded by the settle timeout.
async fn settle_bounded(
    engine: &X402,
    request: &FacilitatorRequest,
) -> Result<SettleResponse, FacilitatorError> {
    let timeout = engine.config().settle_timeout();
    match tokio::time::timeout(timeout, engine.facilitator().settle(request)).await {
        Ok(answer) => answer,
        Err(_) => Err(FacilitatorError::Timeout),
    }
}

fn settled_as_asked(
    answer: &SettleResponse,
    wire_network: &str,
    payer: AccountId,
    amount: U256,
) -> bool {
    let payer_ok = answer
        .payer
        .as_deref()
        .is_none_or(|p| payer.matches_text(p));
    let network_ok = answer.network.is_empty() || answer.network == wire_network;
    let amount_ok = answer
        .amount
        .as_deref()
        .is_none_or(|a| parse_uint(a, "amount").is_ok_and(|a| a == amount));
    payer_ok && network_ok && amount_ok
}

/// A recorded `/settle` request, decoded.
pub(crate) struct Recorded {
    pub(crate) request: FacilitatorRequest,
    pub(crate) payment: DecodedPayment,
}

impl Recorded {
    /// Reads a recorded request back; `None` when it is damaged.
    pub(crate) fn read(json: &str) -> Option<Recorded> {
        let request: FacilitatorRequest = serde_json::from_str(json).ok()?;
        let version = match request.x402_version {
            1 => X402Version::V1,
            2 => X402Version::V2,
            _ => return None,
        };
        let payment =
            schemes::decode_json(request.payment_payload.get().as_bytes().to_vec(), version)
                .ok()?;
        Some(Recorded { request, payment })
    }

    pub(crate) fn valid_before(&self) -> u64 {
        self.payment.payload.deadline()
    }

    pub(crate) fn amount(&self) -> U256 {
        parse_uint(self.request.payment_requirements.amount(), "amount")
            .unwrap_or_else(|_| self.payment.payload.amount())
    }
}
