//! The ledger: what every payment that reached `/settle` was for and how it ended, as rows an
//! operator can query (revenue by route or payer, a disputed transaction).

use alloy_primitives::hex;
use alloy_primitives::{Address, B256};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::network::{AccountId, SvmAddress};
use crate::proto::header::decode_json;
use crate::proto::{FacilitatorRequest, Requirements, X402Version};
use crate::store::transaction_key;

/// What became of a payment in the ledger (`x402_ledger.state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LedgerState {
    /// `/settle` was called and has not answered (or the process stopped while it was in
    /// flight): the outcome is unknown until it is reconciled.
    Settling,
    /// Settled by the row's transaction.
    Settled,
    /// The facilitator's answer left the outcome unknown; money may have moved.
    Pending,
    /// The authorization expired unused on chain: nothing was charged.
    ExpiredUnsettled,
    /// The facilitator refused the settlement: nothing moved (the buyer may pay again).
    Refused,
}

impl LedgerState {
    /// The value of the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerState::Settling => "settling",
            LedgerState::Settled => "settled",
            LedgerState::Pending => "pending",
            LedgerState::ExpiredUnsettled => "expired_unsettled",
            LedgerState::Refused => "refused",
        }
    }

    /// Every state, in the order of a payment's life.
    pub const ALL: [LedgerState; 5] = [
        LedgerState::Settling,
        LedgerState::Pending,
        LedgerState::Settled,
        LedgerState::ExpiredUnsettled,
        LedgerState::Refused,
    ];
}

impl std::fmt::Display for LedgerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LedgerState {
    type Err = String;

    fn from_str(text: &str) -> Result<LedgerState, String> {
        LedgerState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| {
                format!("`{text}` is not a ledger state (settling, pending, settled, expired_unsettled, refused)")
            })
    }
}

/// Which ledger rows [`PostgresStore::ledger`](super::PostgresStore::ledger) returns: every
/// field set narrows the result; the default is every row (newest first, up to `limit`).
///
/// ```
/// use x402_runtime::{LedgerQuery, LedgerState};
///
/// let query = LedgerQuery {
///     route: Some("/weather".to_owned()),
///     state: Some(LedgerState::Settled),
///     since: Some(1_767_225_600),
///     ..LedgerQuery::default()
/// };
/// # let _ = query;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerQuery {
    /// Only payments by this payer.
    pub payer: Option<AccountId>,
    /// Only payments for this route (the resource URL's path, e.g. `/weather`) or, when it
    /// contains `://`, this exact resource URL.
    pub route: Option<String>,
    /// Only payments first recorded at or after this time (unix seconds).
    pub since: Option<u64>,
    /// Only payments first recorded before this time (unix seconds).
    pub until: Option<u64>,
    /// Only the payment this transaction settled (or named while pending): an EVM hash in any
    /// letter case, any other id (a Solana signature) exactly as the facilitator gave it.
    pub transaction: Option<String>,
    /// Only payments in this state.
    pub state: Option<LedgerState>,
    /// At most this many rows (all when `None`).
    pub limit: Option<u32>,
}

/// One payment in the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    /// CAIP-2 network id.
    pub network: String,
    /// The token (its contract on EVM; for a Permit2 payment, Permit2, whose nonces it uses).
    pub asset: AccountId,
    /// The payer (an EVM authorization's `from`).
    pub payer: AccountId,
    /// The payment's nonce (EIP-3009's, or Permit2's as 32 big-endian bytes).
    pub nonce: B256,
    /// How it ended (or that it has not yet).
    pub state: LedgerState,
    /// The settling transaction (or the one the facilitator named while pending): an EVM hash in
    /// lowercase, any other id (a Solana signature, case-sensitive) as the facilitator gave it.
    pub transaction: Option<String>,
    /// The price in the token's atomic units (decimal), when the `/settle` request was known.
    pub amount: Option<String>,
    /// The recipient (`0x` and the lower-case hex of its bytes: 20 for EVM, 32 for Solana; text
    /// that is neither account is kept as given), when known.
    pub pay_to: Option<String>,
    /// The resource URL paid for, when known.
    pub resource: Option<String>,
    /// The resource URL's path, when known.
    pub route: Option<String>,
    /// The payment scheme (`exact`), when known.
    pub scheme: Option<String>,
    /// When `/settle` was first called for it (unix seconds).
    pub created_at: u64,
    /// When its state last changed (unix seconds).
    pub updated_at: u64,
    /// When it was recorded settled (unix seconds).
    pub settled_at: Option<u64>,
}

/// The terms of a payment, read from its `/settle` request.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Terms {
    pub(super) amount: Option<String>,
    pub(super) pay_to: Option<String>,
    pub(super) resource: Option<String>,
    pub(super) route: Option<String>,
    pub(super) scheme: Option<String>,
}

impl Terms {
    /// Reads the terms from a `/settle` request (JSON of [`FacilitatorRequest`]); nothing when
    /// there is none or it cannot be read.
    pub(super) fn of(request: Option<&str>) -> Terms {
        let Some(request) =
            request.and_then(|r| serde_json::from_str::<FacilitatorRequest>(r).ok())
        else {
            return Terms::default();
        };
        let (scheme, pay_to, resource) = match &request.payment_requirements {
            Requirements::V2(r) => {
                let version = X402Version::V2;
                let payload = request.payment_payload.get().as_bytes().to_vec();
                let resource = decode_json(payload, version)
                    .ok()
                    .and_then(|p| p.resource)
                    .map(|r| r.url);
                (r.scheme.clone(), r.pay_to.clone(), resource)
            }
            Requirements::V1(r) => (r.scheme.clone(), r.pay_to.clone(), Some(r.resource.clone())),
        };
        let amount = request.payment_requirements.amount().trim();
        Terms {
            amount: Some(amount.to_owned())
                .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit())),
            pay_to: Some(
                match (pay_to.parse::<Address>(), pay_to.parse::<SvmAddress>()) {
                    (Ok(address), _) => hex_of(address.as_slice()),
                    (_, Ok(address)) => hex_of(address.as_bytes()),
                    _ => pay_to,
                },
            ),
            route: resource.as_deref().map(route_of),
            resource,
            scheme: Some(scheme),
        }
    }
}

/// The path of a resource URL (without its query or fragment); the text itself when it has no
/// scheme.
pub(super) fn route_of(resource: &str) -> String {
    let rest = match resource.find("://") {
        Some(at) => {
            let after = &resource[at + 3..];
            after.find('/').map_or("/", |slash| &after[slash..])
        }
        None => resource,
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// `0x` and lower-case hex: how accounts and nonces are kept.
pub(super) fn hex_of(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// The account [`hex_of`] wrote, by its length: 20 bytes (40 digits, every version's EVM
/// accounts) or 32 (64 digits, a Solana account).
pub(super) fn account_of_hex(text: &str) -> Option<AccountId> {
    AccountId::from_bytes(&hex::decode(text.strip_prefix("0x")?).ok()?)
}

/// The SELECT of [`LedgerQuery`] and its parameters.
pub(super) fn select(query: &LedgerQuery) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut sql = String::from(
        "SELECT network, asset, payer, nonce, state, transaction, amount::text, pay_to, resource, \
         route, scheme, extract(epoch FROM created_at)::bigint, \
         extract(epoch FROM updated_at)::bigint, extract(epoch FROM settled_at)::bigint \
         FROM x402_ledger WHERE true",
    );
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut narrow = |condition: &str, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        sql.push_str(&condition.replace('$', &format!("${}", params.len())));
    };
    if let Some(payer) = query.payer {
        narrow(" AND payer = $", Box::new(hex_of(payer.as_bytes())));
    }
    if let Some(route) = &query.route {
        let column = if route.contains("://") {
            "resource"
        } else {
            "route"
        };
        narrow(&format!(" AND {column} = $"), Box::new(route.clone()));
    }
    if let Some(since) = query.since {
        narrow(
            " AND created_at >= to_timestamp($::bigint)",
            Box::new(seconds(since)),
        );
    }
    if let Some(until) = query.until {
        narrow(
            " AND created_at < to_timestamp($::bigint)",
            Box::new(seconds(until)),
        );
    }
    if let Some(transaction) = &query.transaction {
        narrow(
            " AND transaction = $",
            Box::new(transaction_key(transaction).into_owned()),
        );
    }
    if let Some(state) = query.state {
        narrow(" AND state = $", Box::new(state.as_str().to_owned()));
    }
    narrow(
        " ORDER BY created_at DESC, payer, nonce LIMIT $",
        Box::new(query.limit.map(i64::from)),
    );
    (sql, params)
}

/// Unix seconds as a Postgres `bigint`.
pub(super) fn seconds(time: u64) -> i64 {
    i64::try_from(time).unwrap_or(i64::MAX)
}

fn time(value: Option<i64>) -> Option<u64> {
    value.map(|t| u64::try_from(t).unwrap_or(0))
}

/// A row of [`select`].
pub(super) fn entry(row: &Row) -> Result<LedgerEntry, String> {
    let text = |index: usize| -> Result<String, String> {
        row.try_get::<_, String>(index).map_err(|e| e.to_string())
    };
    let optional = |index: usize| -> Result<Option<String>, String> {
        row.try_get::<_, Option<String>>(index)
            .map_err(|e| e.to_string())
    };
    let stamp = |index: usize| -> Result<Option<i64>, String> {
        row.try_get::<_, Option<i64>>(index)
            .map_err(|e| e.to_string())
    };
    let address = |index: usize| -> Result<AccountId, String> {
        let value = text(index)?;
        account_of_hex(&value).ok_or_else(|| format!("ledger {value}: not an account"))
    };
    let nonce = text(3)?;
    Ok(LedgerEntry {
        network: text(0)?,
        asset: address(1)?,
        payer: address(2)?,
        nonce: nonce
            .parse()
            .map_err(|e| format!("ledger nonce {nonce}: {e}"))?,
        state: text(4)?.parse()?,
        transaction: optional(5)?,
        amount: optional(6)?,
        pay_to: optional(7)?,
        resource: optional(8)?,
        route: optional(9)?,
        scheme: optional(10)?,
        created_at: time(stamp(11)?).unwrap_or(0),
        updated_at: time(stamp(12)?).unwrap_or(0),
        settled_at: time(stamp(13)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_the_paths_of_resource_urls() {
        assert_eq!(
            route_of("https://api.example/weather?city=Oslo"),
            "/weather"
        );
        assert_eq!(route_of("http://127.0.0.1:8080/a/b#x"), "/a/b");
        assert_eq!(route_of("https://api.example"), "/");
        assert_eq!(route_of("/counted"), "/counted");
    }

    #[test]
    fn states_read_back_from_their_names() {
        for state in LedgerState::ALL {
            assert_eq!(state.as_str().parse::<LedgerState>(), Ok(state));
        }
        assert!("settled ".parse::<LedgerState>().is_err());
    }

    #[test]
    fn a_query_numbers_its_parameters_in_order() {
        let (sql, params) = select(&LedgerQuery {
            payer: Some(Address::repeat_byte(0xab).into()),
            route: Some("/weather".to_owned()),
            since: Some(10),
            limit: Some(5),
            ..LedgerQuery::default()
        });
        assert!(sql.contains("payer = $1"), "{sql}");
        assert!(sql.contains("route = $2"), "{sql}");
        assert!(sql.contains("to_timestamp($3::bigint)"), "{sql}");
        assert!(sql.ends_with("LIMIT $4"), "{sql}");
        assert!(select(&LedgerQuery::default()).0.ends_with("LIMIT $1"));
        assert_eq!(params.len(), 4);
    }

    #[test]
    fn terms_come_from_the_settle_request() {
        let request = serde_json::json!({
            "x402Version": 2,
            "paymentPayload": {
                "x402Version": 2,
                "resource": {"url": "http://127.0.0.1:9/counted?x=1"},
                "accepted": {
                    "scheme": "exact", "network": "eip155:84532", "amount": "1000",
                    "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                    "payTo": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
                    "maxTimeoutSeconds": 60
                },
                "payload": {"signature": "0x", "authorization": {}}
            },
            "paymentRequirements": {
                "scheme": "exact", "network": "eip155:84532", "amount": "1000",
                "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                "payTo": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
                "maxTimeoutSeconds": 60
            }
        });
        let terms = Terms::of(Some(&request.to_string()));
        assert_eq!(terms.amount.as_deref(), Some("1000"));
        assert_eq!(
            terms.pay_to.as_deref(),
            Some("0x90f79bf6eb2c4f870365e785982e1f101e93b906")
        );
        assert_eq!(
            terms.resource.as_deref(),
            Some("http://127.0.0.1:9/counted?x=1")
        );
        assert_eq!(terms.route.as_deref(), Some("/counted"));
        assert_eq!(terms.scheme.as_deref(), Some("exact"));
        assert_eq!(Terms::of(Some("{not json")), Terms::default());
        assert_eq!(Terms::of(None), Terms::default());
    }
}
