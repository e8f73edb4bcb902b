//! What an operator needs for settlements whose outcome is unknown: list them, and resolve one
//! from the chain (`x402 settlements`).

use std::time::Duration;

use alloy_primitives::U256;

use super::Recorded;
use super::reconcile::kept_until;
use super::record_settled;
use crate::proto::Requirements;
use crate::schemes::ReplayKey;
use crate::schemes::exact_evm::chain::{self, ChainError, ChainReader, OnChain};
use crate::server::config::DEFAULT_CLOCK_SKEW;
use crate::store::{ReplayStore, Slot, Unresolved};

/// A payment whose settlement outcome is unknown, as an operator sees it (listed by
/// [`unknown_settlements`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnknownSettlement {
    /// The payment's key in the record.
    pub key: ReplayKey,
    /// `"pending"` (the facilitator's answer did not settle it either way) or `"settling"`
    /// (`/settle` is in flight in a live process).
    pub state: &'static str,
    /// The resource paid for (the payment's `resource.url`, or the v1 requirements'), when
    /// recorded.
    pub resource: Option<String>,
    /// The amount in the token's atomic units, when recorded.
    pub amount: Option<U256>,
    /// The authorization's `validBefore` (unix seconds), when recorded.
    pub valid_before: Option<u64>,
    /// When the outcome became unknown or `/settle` was called (unix seconds; 0 if not known).
    pub since: u64,
    /// The transaction the facilitator named, if any.
    pub transaction: Option<String>,
    /// Whether the `/settle` request was recorded (without it only the chain can resolve it).
    pub has_request: bool,
}

impl UnknownSettlement {
    fn from_unresolved(unresolved: Unresolved) -> UnknownSettlement {
        let (state, transaction, request, since) = match unresolved.slot {
            Slot::Settling { request, since } => ("settling", String::new(), request, since),
            Slot::Pending {
                transaction,
                request,
                since,
            } => ("pending", transaction, request, since),
            _ => ("pending", String::new(), None, 0),
        };
        let recorded = request.as_deref().and_then(Recorded::read);
        let resource = recorded
            .as_ref()
            .and_then(|r| match &r.request.payment_requirements {
                Requirements::V1(v1) => Some(v1.resource.clone()),
                Requirements::V2(_) => r.payment.wire.resource.as_ref().map(|res| res.url.clone()),
            });
        UnknownSettlement {
            key: unresolved.key,
            state,
            resource,
            amount: recorded.as_ref().map(Recorded::amount),
            valid_before: recorded.as_ref().map(Recorded::valid_before),
            since,
            transaction: Some(transaction).filter(|t| !t.is_empty()),
            has_request: recorded.is_some(),
        }
    }
}

/// Every payment in `store` whose settlement outcome is unknown, oldest first: what `x402
/// settlements` lists.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = x402_runtime::FileStore::open("x402-payments.redb")?;
/// for unknown in x402_runtime::server::settlement::unknown_settlements(&store).await? {
///     println!("{} {} since {}", unknown.key, unknown.state, unknown.since);
/// }
/// # Ok(()) }
/// ```
pub async fn unknown_settlements(
    store: &dyn ReplayStore,
) -> Result<Vec<UnknownSettlement>, String> {
    let mut list: Vec<UnknownSettlement> = store
        .unresolved()
        .await?
        .into_iter()
        .map(UnknownSettlement::from_unresolved)
        .collect();
    list.sort_by_key(|u| u.since);
    Ok(list)
}

/// What [`resolve_on_chain`] established.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resolution {
    /// The authorization was used: recorded settled (with the transaction when its log was
    /// found).
    Settled {
        /// The transaction hash.
        transaction: Option<String>,
    },
    /// Unused and past its `validBefore`: recorded `expired_unsettled`; nothing was charged.
    ExpiredUnsettled,
    /// The chain cannot tell yet (unused and still valid), or the transaction it names was
    /// credited to another payment; nothing recorded.
    Unknown,
}

/// Reads the chain for one unknown settlement and records a definite outcome in `store`, kept
/// for `retention` past the authorization (and the default clock-skew allowance of 60 s). A payment
/// whose request was not recorded can be found settled, but never expired (its `validBefore`
/// is not known).
pub async fn resolve_on_chain(
    store: &dyn ReplayStore,
    chain: &dyn ChainReader,
    unknown: &UnknownSettlement,
    retention: Duration,
) -> Result<Resolution, ChainError> {
    let valid_before = unknown.valid_before.unwrap_or(u64::MAX);
    let (Some(asset), Some(from)) = (unknown.key.asset.as_evm(), unknown.key.from.as_evm()) else {
        return Err(ChainError(format!(
            "{}: the chain reader reads EVM authorizations only",
            unknown.key
        )));
    };
    let lookup = chain::Authorization {
        network: unknown.key.network.clone(),
        asset,
        from,
        nonce: unknown.key.nonce,
        valid_before,
    };
    let keep_until = kept_until(valid_before, DEFAULT_CLOCK_SKEW, retention);
    match chain.authorization(&lookup).await? {
        OnChain::Used { transaction } => {
            let tx = transaction.clone().unwrap_or_default();
            if record_settled(store, &unknown.key, &tx, keep_until).await {
                Ok(Resolution::Settled { transaction })
            } else {
                Ok(Resolution::Unknown)
            }
        }
        OnChain::Expired => {
            store
                .record(&unknown.key, Slot::ExpiredUnsettled, keep_until)
                .await;
            Ok(Resolution::ExpiredUnsettled)
        }
        OnChain::Unused => Ok(Resolution::Unknown),
    }
}
