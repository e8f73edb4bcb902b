//! Settling a Solana payment: co-sign, name the transaction before sending it, send it once,
//! and wait for the cluster to confirm it.

use dashmap::mapref::entry::Entry;
use tokio::time::{Duration, Instant};

use super::super::{FacilitatorError, Polling, Refusal};
use super::{SETTLED_MEMORY, SvmBackend, payer_of, reasons};
use crate::proto::{FacilitatorRequest, SettleResponse};
use crate::schemes::exact_svm::program::{Key, key_to_string};
use crate::schemes::exact_svm::rpc::{SignatureStatus, SvmRpcError};

/// One settlement's identity and what its answers carry.
struct Settling<'r> {
    request: &'r FacilitatorRequest,
    payer: Option<Key>,
    /// SHA-256 of the message bytes.
    hash: [u8; 32],
}

impl Settling<'_> {
    fn failed(&self, reason: &str, message: Option<String>, transaction: String) -> SettleResponse {
        SvmBackend::failed(
            self.request,
            self.payer.as_ref(),
            reason,
            message,
            transaction,
        )
    }

    fn refused(&self, refusal: Refusal) -> Result<SettleResponse, FacilitatorError> {
        match refusal {
            Refusal::Invalid(reason, message) => {
                Ok(self.failed(reason, Some(message), String::new()))
            }
            Refusal::Fault(e) => Err(e),
        }
    }

    fn pending(&self, signature: &str) -> SettleResponse {
        tracing::warn!(
            transaction = signature,
            "x402 facilitator: Solana transaction not confirmed yet"
        );
        self.failed(
            crate::proto::codes::SETTLEMENT_PENDING,
            Some("the transaction was sent; its confirmation has not been seen yet".to_owned()),
            signature.to_owned(),
        )
    }

    fn duplicate(&self, signature: &str) -> SettleResponse {
        self.failed(
            reasons::DUPLICATE_SETTLEMENT,
            Some("this payment was already settled".to_owned()),
            signature.to_owned(),
        )
    }
}

impl SvmBackend {
    /// `/settle`: verifies again, co-signs, sends once and waits up to `timeout` for the
    /// confirmation. A payment already sent is waited for, never sent differently; one already
    /// settled is answered [`reasons::DUPLICATE_SETTLEMENT`].
    pub(crate) async fn settle(
        &self,
        request: &FacilitatorRequest,
        timeout: Duration,
    ) -> Result<SettleResponse, FacilitatorError> {
        let Some(fee_payer) = &self.fee_payer else {
            return Err(FacilitatorError::Unreachable(format!(
                "no Solana fee payer key for {}",
                self.network.caip2
            )));
        };
        let read = match self.read(request) {
            Ok(read) => read,
            Err(refusal) => {
                return Settling {
                    request,
                    payer: None,
                    hash: [0; 32],
                }
                .refused(refusal);
            }
        };
        let mut settling = Settling {
            request,
            payer: payer_of(&read.tx),
            hash: read.tx.message_hash(),
        };
        if let Some(signature) = self.recently_settled(&settling.hash) {
            return Ok(settling.duplicate(&signature));
        }
        if let Some(signature) = self.in_flight.get(&settling.hash).map(|s| s.clone()) {
            return Ok(self.confirm(&settling, &signature, timeout).await);
        }
        let facts = match self.check_rules(&read).await {
            Ok(facts) => facts,
            Err(refusal) => return settling.refused(refusal),
        };
        settling.payer = Some(facts.payer);
        let fee_signature = fee_payer.sign(read.tx.message_bytes());
        let signature = bs58::encode(fee_signature).into_string();
        // The same payment always gets the same signature: one the node knows already landed.
        let known = self
            .rpc
            .signature_status(&signature)
            .await
            .map_err(|e| FacilitatorError::Unreachable(format!("Solana RPC: {e}")))?;
        if let Some(status) = known {
            return Ok(match status.err {
                Some(err) => settling.failed(
                    reasons::TRANSACTION_FAILED,
                    Some(format!("the transaction failed: {err}")),
                    signature,
                ),
                None => settling.duplicate(&signature),
            });
        }
        // Simulated only once the node does not know it: a landed payment would fail again.
        if let Err(refusal) = self.simulate(&read).await {
            return settling.refused(refusal);
        }
        // The entry (which locks its part of the map) is released before anything is awaited.
        let raced = match self.in_flight.entry(settling.hash) {
            Entry::Occupied(_) => true,
            Entry::Vacant(slot) => {
                slot.insert(signature.clone());
                false
            }
        };
        if raced {
            // A concurrent settlement of the same payment got there first: wait for its send.
            return Ok(self.confirm(&settling, &signature, timeout).await);
        }
        let wire = read.tx.with_fee_payer_signature(&fee_signature);
        self.send(&settling, &wire, &signature, timeout).await
    }

    /// Sends the co-signed `wire` (named `signature`) and waits for its confirmation.
    async fn send(
        &self,
        settling: &Settling<'_>,
        wire: &[u8],
        signature: &str,
        timeout: Duration,
    ) -> Result<SettleResponse, FacilitatorError> {
        let deadline = Instant::now() + timeout;
        match self.rpc.send(wire).await {
            Ok(named) if named != signature => {
                tracing::warn!(
                    transaction = signature,
                    named,
                    "x402 facilitator: the Solana node named the transaction differently"
                );
            }
            Ok(_) => {}
            // The request never reached the node: nothing was sent.
            Err(SvmRpcError::Unreachable(e)) => {
                self.in_flight.remove(&settling.hash);
                return Err(FacilitatorError::Unreachable(format!("Solana RPC: {e}")));
            }
            // The node refused the transaction: it will not land.
            Err(SvmRpcError::Rpc { code, message }) => {
                self.in_flight.remove(&settling.hash);
                return Ok(settling.failed(
                    reasons::TRANSACTION_FAILED,
                    Some(format!(
                        "the node refused the transaction: error {code}: {message}"
                    )),
                    String::new(),
                ));
            }
            // No answer, or an unreadable one: the node may have it.
            Err(e) => {
                tracing::warn!(
                    transaction = signature,
                    "x402 facilitator: Solana send outcome unknown: {e}"
                );
                return Ok(settling.pending(signature));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        Ok(self.confirm(settling, signature, left).await)
    }

    /// Waits up to `timeout` for the sent transaction `signature` to be confirmed and answers
    /// what it did: settled, failed (with its error), or still pending.
    async fn confirm(
        &self,
        settling: &Settling<'_>,
        signature: &str,
        timeout: Duration,
    ) -> SettleResponse {
        let Some(status) = self.wait_confirmed(signature, timeout).await else {
            return settling.pending(signature);
        };
        self.in_flight.remove(&settling.hash);
        if let Some(err) = status.err {
            return settling.failed(
                reasons::TRANSACTION_FAILED,
                Some(format!("the transaction failed: {err}")),
                signature.to_owned(),
            );
        }
        self.remember_settled(settling.hash, signature);
        SettleResponse {
            success: true,
            error_reason: None,
            error_message: None,
            payer: settling.payer.as_ref().map(key_to_string),
            transaction: signature.to_owned(),
            network: settling.request.payment_requirements.network().to_owned(),
            amount: None,
        }
    }

    /// Reads `signature`'s status on the [`Polling`] schedule until it is confirmed or failed;
    /// `None` when neither happened by `timeout`. A failed read is retried.
    async fn wait_confirmed(&self, signature: &str, timeout: Duration) -> Option<SignatureStatus> {
        let mut polling = Polling::until(Instant::now() + timeout);
        loop {
            match self.rpc.signature_status(signature).await {
                Ok(Some(status)) if status.err.is_some() || status.is_confirmed() => {
                    return Some(status);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(
                        transaction = signature,
                        "x402 facilitator: Solana status read failed: {e}"
                    )
                }
            }
            if !polling.pause().await {
                return None;
            }
        }
    }

    /// The signature of the payment with message hash `hash` if it settled lately.
    fn recently_settled(&self, hash: &[u8; 32]) -> Option<String> {
        let entry = self.settled.get(hash)?;
        let (signature, at) = &*entry;
        (at.elapsed() < SETTLED_MEMORY).then(|| signature.clone())
    }

    fn remember_settled(&self, hash: [u8; 32], signature: &str) {
        let now = Instant::now();
        self.settled
            .retain(|_, (_, at)| now.duration_since(*at) < SETTLED_MEMORY);
        self.settled.insert(hash, (signature.to_owned(), now));
    }
}
