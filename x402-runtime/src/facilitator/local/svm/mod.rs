//! `exact` on Solana in the in-process facilitator: one [`SvmBackend`] per Solana network.
//!
//! Verification follows the official facilitator (`@x402/svm`): the scheme, the network, the
//! offer's `extra.feePayer` being this facilitator's fee payer, the transaction's rules
//! ([`rules::check`]), then a simulation on the node. Settlement verifies again, adds the fee
//! payer's signature to slot 0 of the transaction as received, and sends it. The fee payer's
//! signature is the transaction's id and ed25519 signing is deterministic, so the id is known
//! before sending, a `settlement_pending` answer already names it, and a second `/settle` of the
//! same payment waits for that transaction instead of sending another.
//!
//! A Solana network served without a fee payer key only verifies (without the fee payer rule)
//! and is not listed in `/supported`: an `exact` offer on Solana needs `extra.feePayer`, which
//! only a facilitator that can co-sign has (the official facilitator always has one).

mod config;
mod key;
mod settle;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use dashmap::DashMap;
use serde_json::Value;

pub(crate) use config::SvmOptions;
pub(crate) use key::FeePayer;

use super::{Refusal, invalid, rpc_fault};
use crate::base::ConfigError;
use crate::network::Network;
use crate::proto::header::{self, DecodeError, PaymentPayload, parse_uint};
use crate::proto::{
    FacilitatorRequest, Requirements, SettleResponse, SupportedKind, VerifyResponse, X402Version,
};
use crate::schemes::exact_evm::EXACT;
use crate::schemes::exact_svm::program::{Key, is_token_program, key_to_string, parse_key};
use crate::schemes::exact_svm::rpc::{SvmRpc, SvmRpcError};
use crate::schemes::exact_svm::{SvmPaymentFacts, SvmTerms, SvmTransaction, rules};

/// The reason codes of the Solana checks that are not the transaction's rules
/// ([`rules::codes`]): the official facilitator's v2 strings.
pub mod reasons {
    /// Not the `exact` scheme.
    pub const UNSUPPORTED_SCHEME: &str = "invalid_exact_svm_unsupported_scheme";
    /// The payment is for another network than the requirements.
    pub const NETWORK_MISMATCH: &str = "invalid_exact_svm_network_mismatch";
    /// The requirements have no `extra.feePayer`.
    pub const MISSING_FEE_PAYER: &str = "invalid_exact_svm_payload_missing_fee_payer";
    /// `extra.feePayer` is not this facilitator's fee payer.
    pub const FEE_PAYER_NOT_MANAGED: &str =
        "invalid_exact_svm_fee_payer_not_managed_by_facilitator";
    /// The node's simulation of the transaction failed.
    pub const SIMULATION_FAILED: &str = "invalid_exact_svm_transaction_simulation_failed";
    /// The transaction landed with an error, or the node refused it.
    pub const TRANSACTION_FAILED: &str = "invalid_exact_svm_transaction_failed";
    /// This payment was already settled (its transaction landed).
    pub const DUPLICATE_SETTLEMENT: &str = crate::proto::codes::DUPLICATE_SETTLEMENT;
}

/// One Solana network the facilitator serves.
pub(crate) struct SvmBackend {
    network: Network,
    rpc: SvmRpc,
    fee_payer: Option<FeePayer>,
    /// Mint decimals read from the node, by mint.
    decimals: DashMap<Key, Option<u8>>,
    /// Settlements sent and not yet seen confirmed: message hash → signature (base58).
    in_flight: DashMap<[u8; 32], String>,
    /// Settlements seen confirmed lately: message hash → signature and when.
    settled: DashMap<[u8; 32], (String, tokio::time::Instant)>,
}

impl fmt::Debug for SvmBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SvmBackend")
            .field("network", &self.network.caip2)
            .field("rpc", &self.rpc)
            .field("fee_payer", &self.fee_payer)
            .finish_non_exhaustive()
    }
}

/// A payment as the Solana checks read it from a request.
struct Read<'r> {
    want: Want<'r>,
    tx: SvmTransaction,
}

/// The requirements' fields the Solana checks need.
struct Want<'r> {
    version: X402Version,
    scheme: &'r str,
    network: &'r str,
    amount: &'r str,
    asset: &'r str,
    pay_to: &'r str,
    extra: Option<&'r serde_json::Map<String, Value>>,
}

impl<'r> Want<'r> {
    fn of(request: &'r FacilitatorRequest) -> Result<Self, Refusal> {
        match (&request.payment_requirements, request.x402_version) {
            (Requirements::V2(r), 2) => Ok(Want {
                version: X402Version::V2,
                scheme: &r.scheme,
                network: &r.network,
                amount: &r.amount,
                asset: &r.asset,
                pay_to: &r.pay_to,
                extra: r.extra.as_ref(),
            }),
            (Requirements::V1(r), 1) => Ok(Want {
                version: X402Version::V1,
                scheme: &r.scheme,
                network: &r.network,
                amount: &r.max_amount_required,
                asset: &r.asset,
                pay_to: &r.pay_to,
                extra: r.extra.as_ref(),
            }),
            _ => Err(invalid(
                super::reasons::INVALID_X402_VERSION,
                "x402Version does not match the requirements",
            )),
        }
    }

    fn extra_str(&self, field: &str) -> Option<&'r str> {
        self.extra
            .and_then(|e| e.get(field))
            .and_then(Value::as_str)
    }
}

impl SvmBackend {
    /// The backend of `network` talking to the node at `rpc_url`, co-signing with `fee_payer`
    /// (verification only without one).
    pub(crate) fn new(
        network: Network,
        rpc_url: &str,
        fee_payer: Option<FeePayer>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            network,
            rpc: SvmRpc::new(rpc_url)?,
            fee_payer,
            decimals: DashMap::new(),
            in_flight: DashMap::new(),
            settled: DashMap::new(),
        })
    }

    /// The network it serves.
    pub(crate) fn network(&self) -> &Network {
        &self.network
    }

    /// Its fee payer's address, when it has a key.
    pub(crate) fn fee_payer_address(&self) -> Option<String> {
        self.fee_payer.as_ref().map(|f| key_to_string(f.address()))
    }

    /// Its `/supported` kinds: `exact` in v2 and v1 with `extra.feePayer`; none without a key.
    pub(crate) fn kinds(&self) -> Vec<SupportedKind> {
        let Some(fee_payer) = self.fee_payer_address() else {
            return Vec::new();
        };
        let mut extra = serde_json::Map::new();
        extra.insert("feePayer".to_owned(), Value::String(fee_payer));
        let kind = |version: u8, network: &str| SupportedKind {
            x402_version: version,
            scheme: EXACT.to_owned(),
            network: network.to_owned(),
            extra: Some(extra.clone()),
        };
        let mut kinds = vec![kind(2, &self.network.caip2)];
        if let Some(name) = self.network.v1_name {
            kinds.push(kind(1, name));
        }
        kinds
    }

    /// `/verify`.
    pub(crate) async fn verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, super::FacilitatorError> {
        let read = match self.read(request) {
            Ok(read) => read,
            Err(refusal) => return refused_verify(refusal, None),
        };
        let payer = payer_of(&read.tx);
        let checked = match self.check_rules(&read).await {
            Ok(facts) => self.simulate(&read).await.map(|()| facts),
            Err(refusal) => Err(refusal),
        };
        match checked {
            Ok(facts) => Ok(VerifyResponse {
                is_valid: true,
                invalid_reason: None,
                invalid_message: None,
                payer: Some(key_to_string(&facts.payer)),
            }),
            Err(refusal) => refused_verify(refusal, payer),
        }
    }

    /// Reads the request: its requirements, the payment's envelope and transaction; checks the
    /// scheme, the network and the fee payer (official order), which need no node.
    fn read<'r>(&self, request: &'r FacilitatorRequest) -> Result<Read<'r>, Refusal> {
        let want = Want::of(request)?;
        let envelope = decode_envelope(request, want.version)?;
        if envelope.scheme != EXACT || want.scheme != EXACT {
            return Err(invalid(
                reasons::UNSUPPORTED_SCHEME,
                "only the exact scheme is supported",
            ));
        }
        if envelope.network != want.network {
            return Err(invalid(
                reasons::NETWORK_MISMATCH,
                "the payment is for another network",
            ));
        }
        let Some(fee_payer) = want.extra_str("feePayer") else {
            return Err(invalid(
                reasons::MISSING_FEE_PAYER,
                "requirements.extra.feePayer is missing",
            ));
        };
        if let Some(ours) = &self.fee_payer
            && parse_key(fee_payer).as_ref() != Some(ours.address())
        {
            return Err(invalid(
                reasons::FEE_PAYER_NOT_MANAGED,
                "requirements.extra.feePayer is not this facilitator's fee payer",
            ));
        }
        let tx = SvmTransaction::from_payload_json(envelope.payload.get())
            .map_err(|e| invalid(e.code(), e.to_string()))?;
        Ok(Read { want, tx })
    }

    /// The transaction's rules against the requirements: checked before anything is read from
    /// the node, and again with the mint's decimals.
    async fn check_rules(&self, read: &Read<'_>) -> Result<SvmPaymentFacts, Refusal> {
        let broken = |code| invalid(code, "the transaction breaks a rule of the scheme");
        let mut terms = self.terms(&read.want)?;
        let mut facts = rules::check(&read.tx, &terms).map_err(broken)?;
        terms.decimals = self.mint_decimals(&terms.mint).await?;
        if terms.decimals.is_some() {
            facts = rules::check(&read.tx, &terms).map_err(broken)?;
        }
        Ok(facts)
    }

    /// The node's simulation of the transaction as the payer signed it.
    async fn simulate(&self, read: &Read<'_>) -> Result<(), Refusal> {
        match self.rpc.simulate(read.tx.wire()).await {
            Ok(None) => Ok(()),
            Ok(Some(err)) => Err(invalid(
                reasons::SIMULATION_FAILED,
                format!("Simulation failed: {err}"),
            )),
            // The node refused the request itself (a transaction it cannot read or run).
            Err(SvmRpcError::Rpc { code, message }) => Err(invalid(
                reasons::SIMULATION_FAILED,
                format!("Simulation failed: error {code}: {message}"),
            )),
            Err(e) => Err(rpc_fault(e)),
        }
    }

    /// The terms of the requirements (the mint's decimals not known yet).
    fn terms(&self, want: &Want<'_>) -> Result<SvmTerms, Refusal> {
        let malformed = |field: &str| {
            invalid(
                super::reasons::INVALID_REQUIREMENTS,
                format!("requirements.{field} is not a Solana address"),
            )
        };
        let mint = parse_key(want.asset).ok_or_else(|| malformed("asset"))?;
        let pay_to = parse_key(want.pay_to).ok_or_else(|| malformed("payTo"))?;
        let fee_payer = want
            .extra_str("feePayer")
            .and_then(parse_key)
            .ok_or_else(|| malformed("extra.feePayer"))?;
        let amount = parse_uint(want.amount, "amount")
            .ok()
            .and_then(|a| u64::try_from(a).ok())
            .ok_or_else(|| {
                invalid(
                    super::reasons::INVALID_REQUIREMENTS,
                    "requirements.amount is not a u64 decimal",
                )
            })?;
        Ok(SvmTerms {
            mint,
            pay_to,
            amount,
            fee_payer,
            decimals: None,
            memo: want.extra_str("memo").map(str::to_owned),
        })
    }

    /// The decimals of `mint` as its account says (`None` when it is not a token mint), read
    /// from the node once.
    async fn mint_decimals(&self, mint: &Key) -> Result<Option<u8>, Refusal> {
        if let Some(known) = self.decimals.get(mint) {
            return Ok(*known);
        }
        let account = self.rpc.account(mint).await.map_err(rpc_fault)?;
        // A mint account is 82 bytes (more with Token-2022 extensions).
        let decimals = account
            .filter(|a| is_token_program(&a.owner) && a.data.len() >= 82)
            .and_then(|a| a.mint_decimals());
        if decimals.is_some() {
            self.decimals.insert(*mint, decimals);
        }
        Ok(decimals)
    }

    /// The answer of a `/settle` that did not settle.
    fn failed(
        request: &FacilitatorRequest,
        payer: Option<&Key>,
        reason: &str,
        message: Option<String>,
        transaction: String,
    ) -> SettleResponse {
        SettleResponse {
            success: false,
            error_reason: Some(reason.to_owned()),
            error_message: message,
            payer: payer.map(key_to_string),
            transaction,
            network: request.payment_requirements.network().to_owned(),
            amount: None,
        }
    }
}

/// The payment envelope of `request` for `version`, or the refusal of one that does not decode.
fn decode_envelope(
    request: &FacilitatorRequest,
    version: X402Version,
) -> Result<PaymentPayload, Refusal> {
    let json = request.payment_payload.get().as_bytes().to_vec();
    header::decode_json(json, version).map_err(|e| match e {
        DecodeError::WrongVersion(_) => invalid(
            super::reasons::INVALID_X402_VERSION,
            "payload version mismatch",
        ),
        DecodeError::Malformed(why) => invalid(super::reasons::INVALID_PAYLOAD, why),
        DecodeError::TooLarge => invalid(super::reasons::INVALID_PAYLOAD, "payload too large"),
    })
}

/// The payer a transaction names, as the official facilitator finds it: the authority (fourth
/// account) of the first SPL Token or Token-2022 instruction with at least four accounts.
fn payer_of(tx: &SvmTransaction) -> Option<Key> {
    tx.instructions
        .iter()
        .find(|ix| is_token_program(&ix.program) && ix.accounts.len() >= 4)
        .and_then(|ix| ix.accounts.get(3).copied())
}

fn refused_verify(
    refusal: Refusal,
    payer: Option<Key>,
) -> Result<VerifyResponse, super::FacilitatorError> {
    match refusal {
        Refusal::Invalid(reason, message) => Ok(VerifyResponse {
            is_valid: false,
            invalid_reason: Some(reason.to_owned()),
            invalid_message: Some(message),
            payer: payer.as_ref().map(key_to_string),
        }),
        Refusal::Fault(e) => Err(e),
    }
}

/// How long a settled payment is remembered for [`reasons::DUPLICATE_SETTLEMENT`] (the node's
/// status of the transaction answers after that).
const SETTLED_MEMORY: Duration = Duration::from_secs(120);
