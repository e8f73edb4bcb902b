//! The spending policy and its bookkeeping: the limits per currency ([`Limit`]: one payment's
//! maximum, the budget) and the other terms an offer must meet ([`Policy`]), what is committed
//! against the budget, the spend log ([`Spend`], [`SpendStatus`]) and the payments sent without a
//! definite answer yet ([`Unsettled`]), all kept in [`State`].

use std::collections::HashMap;
use std::time::Duration;

use alloy_primitives::{B256, U256};
use serde::Serialize;

use crate::base::unix_now;
use crate::network::{AccountId, Asset, Network};
use crate::price::Currency;

use super::amount::format_amount;
use super::challenge::Candidate;
use super::error::ClientError;
use super::signer::SignedPayment;

/// A limit of [`X402ClientBuilder`](super::X402ClientBuilder), per currency.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Limit {
    /// The most one payment may cost.
    PerRequest,
    /// The most the client may sign in all.
    Budget,
}

/// What a client may pay, as built by [`X402ClientBuilder`](super::X402ClientBuilder).
pub(super) struct Policy {
    /// [`Limit::PerRequest`], in atomic units.
    pub(super) max_per_request: HashMap<Currency, U256>,
    /// [`Limit::Budget`], in atomic units.
    pub(super) budget: HashMap<Currency, U256>,
    /// The networks to pay on, most preferred first (empty: any).
    pub(super) networks: Vec<Network>,
    /// The currencies to pay in, most preferred first.
    pub(super) currencies: Vec<Currency>,
    /// Tokens paid in besides the built-in table.
    pub(super) assets: Vec<Asset>,
    /// How many times a paid request is sent when the connection fails.
    pub(super) resend_attempts: u32,
    /// The most a call waits on one payment (`None`: until past its `validBefore`).
    pub(super) max_wait: Option<Duration>,
    /// The Solana JSON-RPC node to read blockhashes and mints from (`None`: the cluster's
    /// public endpoint).
    #[cfg(feature = "svm")]
    pub(super) svm_rpc_url: Option<String>,
}

impl Policy {
    /// Whether one payment of `amount` in `currency` is within the limits, `committed` being what
    /// is already signed in that currency; if not, the error says which limit it is over.
    pub(super) fn check(
        &self,
        currency: Currency,
        amount: U256,
        committed: U256,
    ) -> Result<(), ClientError> {
        let shown =
            |atomic: U256| format!("{} {currency}", format_amount(atomic, currency.decimals()));
        if let Some(max) = self.max_per_request.get(&currency)
            && amount > *max
        {
            return Err(ClientError::OverRequestLimit {
                price: shown(amount),
                limit: shown(*max),
            });
        }
        if let Some(budget) = self.budget.get(&currency)
            && committed.saturating_add(amount) > *budget
        {
            return Err(ClientError::OverBudget {
                price: shown(amount),
                spent: shown(committed),
                budget: shown(*budget),
            });
        }
        Ok(())
    }
}

/// What a client has signed: the amounts committed against the budget, the spend log, and the
/// payments sent without a definite answer.
#[derive(Default)]
pub(super) struct State {
    committed: HashMap<Currency, U256>,
    log: Vec<Spend>,
    /// Payments sent without a definite answer, by request.
    unsettled: HashMap<B256, Unsettled>,
}

/// A signed payment without a definite answer yet: it is resent as is, and nothing is signed
/// again while it may still settle.
#[derive(Clone)]
pub(super) struct Unsettled {
    /// The payment, as sent.
    pub(super) payment: SignedPayment,
    /// Its entry in the spend log.
    spend: usize,
}

impl Unsettled {
    /// The unix time the authorization expires at (its `validBefore` or permit deadline).
    pub(super) fn valid_before(&self) -> u64 {
        self.payment.deadline()
    }
}

impl State {
    /// What is signed in `currency` and still counts against the budget, in atomic units.
    pub(super) fn committed(&self, currency: Currency) -> U256 {
        self.committed.get(&currency).copied().unwrap_or_default()
    }

    /// The spend log, oldest first.
    pub(super) fn log(&self) -> &[Spend] {
        &self.log
    }

    /// Commits a signed payment against the budget and logs it.
    pub(super) fn commit(&mut self, spend: Spend, payment: SignedPayment) -> Unsettled {
        *self.committed.entry(spend.currency).or_default() += spend.atomic_amount;
        self.log.push(spend);
        Unsettled {
            payment,
            spend: self.log.len() - 1,
        }
    }

    /// The payment of the request `key` sent without a definite answer, if any.
    pub(super) fn unsettled(&self, key: &B256) -> Option<Unsettled> {
        self.unsettled.get(key).cloned()
    }

    /// Keeps `unsettled` as the payment of the request `key` until its answer is definite.
    pub(super) fn keep(&mut self, key: B256, unsettled: Unsettled) {
        self.unsettled.insert(key, unsettled);
    }

    /// Records a definite outcome and forgets the unsettled payment.
    pub(super) fn finish(
        &mut self,
        key: B256,
        unsettled: &Unsettled,
        status: SpendStatus,
        transaction: Option<String>,
    ) -> Spend {
        self.unsettled.remove(&key);
        let spend = &mut self.log[unsettled.spend];
        spend.status = status;
        if transaction.is_some() {
            spend.transaction = transaction;
        }
        spend.clone()
    }

    /// Records what an `upto` payment was charged, as its receipt names it: the spend becomes
    /// that amount and the rest of the authorized maximum no longer counts against the budget.
    /// An amount above what is still counted is not believed (a permit moves at most its
    /// maximum) and changes nothing.
    pub(super) fn charged(&mut self, unsettled: &Unsettled, charged: U256) {
        let spend = &mut self.log[unsettled.spend];
        if charged >= spend.atomic_amount {
            return;
        }
        let freed = spend.atomic_amount - charged;
        spend.atomic_amount = charged;
        spend.amount = format_amount(charged, spend.currency.decimals());
        let committed = self.committed.entry(spend.currency).or_default();
        *committed = committed.saturating_sub(freed);
    }

    /// Releases a payment the server proved dead from the budget.
    pub(super) fn release(&mut self, spend: &Spend) {
        let committed = self.committed.entry(spend.currency).or_default();
        *committed = committed.saturating_sub(spend.atomic_amount);
    }

    /// Records an unknown outcome (and the transaction, when the server named one); the payment
    /// stays ready to be resent.
    pub(super) fn unknown(
        &mut self,
        unsettled: &Unsettled,
        reason: String,
        transaction: Option<String>,
    ) -> Spend {
        let spend = &mut self.log[unsettled.spend];
        spend.status = SpendStatus::Unknown { reason };
        if transaction.is_some() {
            spend.transaction = transaction;
        }
        spend.clone()
    }

    /// Records the transaction the server named for a payment not finished yet.
    pub(super) fn name_transaction(&mut self, unsettled: &Unsettled, transaction: &str) {
        self.log[unsettled.spend].transaction = Some(transaction.to_owned());
    }
}

/// What happened to one signed payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
#[non_exhaustive]
pub enum SpendStatus {
    /// Sent; no answer yet.
    Sent,
    /// Settled: the receipt says so, or the server names the transaction (an `upto` payment
    /// charged nothing is settled without one).
    Settled,
    /// The server answered without settling (the handler failed, so nothing was charged).
    NotSettled,
    /// The server refused the payment.
    Refused {
        /// The server's reason (an x402 error code when it sent one).
        reason: String,
    },
    /// No definite answer: the payment may still settle until it expires.
    Unknown {
        /// What went wrong.
        reason: String,
    },
    /// The server proved the authorization dead (`402 expired_unsettled`: never used on chain,
    /// and its `validBefore` passed). Nothing was charged, and it no longer counts against the
    /// budget.
    ExpiredUnsettled,
    /// Its `validBefore` passed and the server answered a resend with a fresh 402: it can no
    /// longer settle, but nothing proves it did not settle before it expired, so it still
    /// counts against the budget.
    Expired {
        /// The server's reason for the 402.
        reason: String,
    },
}

/// One entry of the spend log: a payment this client signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spend {
    /// Request method.
    pub method: String,
    /// Request URL.
    pub url: String,
    /// The offer's scheme: `exact`, or `upto` (the server charges at most the authorized
    /// maximum).
    pub scheme: String,
    /// What the payment costs, in human units (`"0.001"`): the price of an `exact` offer; for
    /// `upto`, the authorized maximum until the receipt names the amount charged, then that
    /// amount. This is what counts against the budget.
    pub amount: String,
    /// [`amount`](Self::amount) in the token's atomic units.
    #[serde(serialize_with = "decimal")]
    pub atomic_amount: U256,
    /// What the payer signed for, in human units: the price, or the `upto` maximum.
    pub authorized: String,
    /// [`authorized`](Self::authorized) in the token's atomic units.
    #[serde(serialize_with = "decimal")]
    pub atomic_authorized: U256,
    /// Currency.
    #[serde(serialize_with = "symbol")]
    pub currency: Currency,
    /// CAIP-2 network.
    pub network: String,
    /// The token (its contract on EVM), written as its network family writes accounts.
    pub asset: AccountId,
    /// Recipient.
    pub pay_to: AccountId,
    /// Payer.
    pub payer: AccountId,
    /// The authorization's nonce (a Permit2 nonce as 32 big-endian bytes).
    pub nonce: B256,
    /// The authorization expires at this unix time (EIP-3009's `validBefore`, a permit's
    /// `deadline`).
    pub valid_before: u64,
    /// The `payment-identifier` sent, if the server asked for one.
    pub payment_id: Option<String>,
    /// Unix time of signing.
    pub signed_at: u64,
    /// Outcome so far.
    #[serde(flatten)]
    pub status: SpendStatus,
    /// The settlement transaction, once known.
    pub transaction: Option<String>,
}

impl Spend {
    /// The log entry of `payment`, just signed for `candidate` to answer `request`.
    pub(super) fn signed(
        request: &reqwest::Request,
        candidate: &Candidate,
        payment: &SignedPayment,
    ) -> Spend {
        let amount = format_amount(candidate.amount, candidate.asset.currency.decimals());
        Spend {
            method: request.method().to_string(),
            url: request.url().to_string(),
            scheme: payment.scheme.to_owned(),
            authorized: amount.clone(),
            amount,
            atomic_amount: candidate.amount,
            atomic_authorized: candidate.amount,
            currency: candidate.asset.currency,
            network: candidate.network.caip2.clone(),
            asset: candidate.asset.address,
            pay_to: candidate.pay_to,
            payer: payment.payer(),
            nonce: payment.nonce(),
            valid_before: payment.deadline(),
            payment_id: payment.payment_id.clone(),
            signed_at: unix_now(),
            status: SpendStatus::Sent,
            transaction: None,
        }
    }
}

fn decimal<S: serde::Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn symbol<S: serde::Serializer>(value: &Currency, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(value.symbol())
}
