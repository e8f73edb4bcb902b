//! A Solana JSON-RPC client with the few methods a payment needs: the latest blockhash and
//! whether one is still valid, an account, a balance, simulating, sending, and a signature's
//! status.
//!
//! Every call has a timeout. Errors say whether the request may have reached the node
//! ([`SvmRpcError::Unreachable`] means it cannot have), so a sender knows when a transaction's
//! fate is unknown.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Value, json};

use super::program::{Key, key_to_string};
use crate::base::ConfigError;

/// The public JSON-RPC endpoint of Solana mainnet.
pub const MAINNET_RPC_URL: &str = "https://api.mainnet-beta.solana.com";
/// The public JSON-RPC endpoint of Solana devnet.
pub const DEVNET_RPC_URL: &str = "https://api.devnet.solana.com";

/// A failed JSON-RPC call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SvmRpcError {
    /// The request did not reach the node (connection refused, bad address).
    Unreachable(String),
    /// No answer in time: the node may have acted on the request.
    Timeout,
    /// The node answered with a JSON-RPC error.
    Rpc {
        /// The JSON-RPC error code.
        code: i64,
        /// The node's message.
        message: String,
    },
    /// The answer was not the JSON-RPC shape the method returns.
    BadResponse(String),
}

impl fmt::Display for SvmRpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable(e) => write!(f, "the Solana RPC node is unreachable: {e}"),
            Self::Timeout => f.write_str("the Solana RPC node did not answer in time"),
            Self::Rpc { code, message } => {
                write!(f, "the Solana RPC node answered error {code}: {message}")
            }
            Self::BadResponse(e) => write!(f, "the Solana RPC node answered badly: {e}"),
        }
    }
}

impl std::error::Error for SvmRpcError {}

/// An account as `getAccountInfo` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountInfo {
    /// The program that owns the account.
    pub owner: Key,
    /// Its balance, in lamports.
    pub lamports: u64,
    /// Its data.
    pub data: Vec<u8>,
}

impl AccountInfo {
    /// The token amount of an SPL token account (Token or Token-2022: bytes 64..72, little
    /// endian); `None` when the data is too short to be one.
    pub fn token_amount(&self) -> Option<u64> {
        let bytes = self.data.get(64..72)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }

    /// The decimals of a mint account (byte 44); `None` when the data is too short to be one.
    pub fn mint_decimals(&self) -> Option<u8> {
        self.data.get(44).copied()
    }
}

/// Where a transaction stands, as `getSignatureStatuses` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureStatus {
    /// `processed`, `confirmed` or `finalized` (`None` for an old, rooted one).
    pub confirmation: Option<String>,
    /// The error it failed with, as JSON text (`None`: it succeeded).
    pub err: Option<String>,
}

impl SignatureStatus {
    /// Whether the cluster has confirmed it (`confirmed` or `finalized`, or rooted).
    pub fn is_confirmed(&self) -> bool {
        matches!(
            self.confirmation.as_deref(),
            None | Some("confirmed" | "finalized")
        )
    }
}

/// A Solana JSON-RPC client.
///
/// ```no_run
/// use x402_runtime::schemes::exact_svm::rpc::SvmRpc;
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let rpc = SvmRpc::new("http://127.0.0.1:8899")?;
/// let (blockhash, last_valid) = rpc.latest_blockhash().await?;
/// println!("{} valid to block {last_valid}", bs58::encode(blockhash).into_string());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SvmRpc {
    url: String,
    client: reqwest::Client,
    timeout: Duration,
}

impl fmt::Debug for SvmRpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A node URL can carry an API key in its path or query: show the host only.
        let host = reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        f.debug_struct("SvmRpc").field("host", &host).finish()
    }
}

#[derive(Deserialize)]
struct Answer {
    result: Option<Value>,
    error: Option<AnswerError>,
}

#[derive(Deserialize)]
struct AnswerError {
    code: i64,
    message: String,
}

fn bad(method: &str, what: impl fmt::Display) -> SvmRpcError {
    SvmRpcError::BadResponse(format!("{method}: {what}"))
}

impl SvmRpc {
    /// A client of the node at `url`, each call bounded by 10 seconds.
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        Self::with_timeout(url, Duration::from_secs(10))
    }

    /// A client of the node at `url`, each call bounded by `timeout`.
    pub fn with_timeout(url: &str, timeout: Duration) -> Result<Self, ConfigError> {
        reqwest::Url::parse(url)
            .map_err(|_| ConfigError::new(format!("Solana RPC URL `{url}` is not a valid URL")))?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ConfigError::new(format!("cannot create the Solana RPC client: {e}")))?;
        Ok(Self {
            url: url.to_owned(),
            client,
            timeout,
        })
    }

    /// Calls `method` with `params` and returns its `result`.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, SvmRpcError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let sent = self
            .client
            .post(&self.url)
            .json(&body)
            .timeout(self.timeout)
            .send()
            .await;
        let response = sent.map_err(|e| {
            // A node URL can carry an API key: errors leave it out.
            let e = e.without_url();
            if e.is_timeout() {
                SvmRpcError::Timeout
            } else if e.is_connect() || e.is_builder() {
                SvmRpcError::Unreachable(e.to_string())
            } else {
                bad(method, e)
            }
        })?;
        let status = response.status();
        let answer: Answer = response.json().await.map_err(|e| {
            let e = e.without_url();
            if e.is_timeout() {
                SvmRpcError::Timeout
            } else {
                bad(method, format_args!("HTTP {status}, {e}"))
            }
        })?;
        if let Some(AnswerError { code, message }) = answer.error {
            return Err(SvmRpcError::Rpc { code, message });
        }
        answer.result.ok_or_else(|| bad(method, "no result"))
    }

    /// The latest blockhash and the last block height at which a transaction using it lands.
    pub async fn latest_blockhash(&self) -> Result<(Key, u64), SvmRpcError> {
        const METHOD: &str = "getLatestBlockhash";
        let result = self
            .call(METHOD, json!([{"commitment": "confirmed"}]))
            .await?;
        let value = &result["value"];
        let hash = value["blockhash"]
            .as_str()
            .and_then(|text| bs58::decode(text).into_vec().ok())
            .and_then(|bytes| Key::try_from(bytes).ok())
            .ok_or_else(|| bad(METHOD, "no 32-byte `blockhash`"))?;
        let last = value["lastValidBlockHeight"]
            .as_u64()
            .ok_or_else(|| bad(METHOD, "no `lastValidBlockHeight`"))?;
        Ok((hash, last))
    }

    /// Whether `blockhash` is still recent enough for a transaction signed over it to land.
    pub async fn blockhash_is_valid(&self, blockhash: &Key) -> Result<bool, SvmRpcError> {
        const METHOD: &str = "isBlockhashValid";
        let params = json!([key_to_string(blockhash), {"commitment": "confirmed"}]);
        let result = self.call(METHOD, params).await?;
        result["value"]
            .as_bool()
            .ok_or_else(|| bad(METHOD, "no boolean `value`"))
    }

    /// The account at `key` (`None` when it does not exist).
    pub async fn account(&self, key: &Key) -> Result<Option<AccountInfo>, SvmRpcError> {
        const METHOD: &str = "getAccountInfo";
        let params = json!([key_to_string(key), {"encoding": "base64", "commitment": "confirmed"}]);
        let result = self.call(METHOD, params).await?;
        let value = &result["value"];
        if value.is_null() {
            return Ok(None);
        }
        let owner = value["owner"]
            .as_str()
            .and_then(super::program::parse_key)
            .ok_or_else(|| bad(METHOD, "no `owner`"))?;
        let lamports = value["lamports"]
            .as_u64()
            .ok_or_else(|| bad(METHOD, "no `lamports`"))?;
        let data = value["data"][0]
            .as_str()
            .and_then(|text| BASE64.decode(text).ok())
            .ok_or_else(|| bad(METHOD, "no base64 `data`"))?;
        Ok(Some(AccountInfo {
            owner,
            lamports,
            data,
        }))
    }

    /// The balance of `key`, in lamports.
    pub async fn balance(&self, key: &Key) -> Result<u64, SvmRpcError> {
        const METHOD: &str = "getBalance";
        let params = json!([key_to_string(key), {"commitment": "confirmed"}]);
        let result = self.call(METHOD, params).await?;
        result["value"]
            .as_u64()
            .ok_or_else(|| bad(METHOD, "no `value`"))
    }

    /// Simulates the transaction in `wire` (signatures not verified): `Ok(None)` when it would
    /// succeed, `Ok(Some(error))` with the error's JSON text when it would fail.
    pub async fn simulate(&self, wire: &[u8]) -> Result<Option<String>, SvmRpcError> {
        const METHOD: &str = "simulateTransaction";
        let params = json!([BASE64.encode(wire), {
            "encoding": "base64",
            "sigVerify": false,
            "replaceRecentBlockhash": false,
            "commitment": "confirmed",
        }]);
        let result = self.call(METHOD, params).await?;
        let value = result
            .get("value")
            .ok_or_else(|| bad(METHOD, "no `value`"))?;
        Ok(match value.get("err") {
            None | Some(Value::Null) => None,
            Some(err) => Some(err.to_string()),
        })
    }

    /// Sends the signed transaction in `wire` without a preflight simulation; returns the
    /// signature the node names it by.
    pub async fn send(&self, wire: &[u8]) -> Result<String, SvmRpcError> {
        const METHOD: &str = "sendTransaction";
        let params = json!([BASE64.encode(wire), {
            "encoding": "base64",
            "skipPreflight": true,
            "preflightCommitment": "confirmed",
        }]);
        let result = self.call(METHOD, params).await?;
        result
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| bad(METHOD, "no signature"))
    }

    /// The status of the transaction named `signature` (base58), searching the node's history;
    /// `None` when the node does not know it.
    pub async fn signature_status(
        &self,
        signature: &str,
    ) -> Result<Option<SignatureStatus>, SvmRpcError> {
        const METHOD: &str = "getSignatureStatuses";
        let params = json!([[signature], {"searchTransactionHistory": true}]);
        let result = self.call(METHOD, params).await?;
        let status = result["value"]
            .get(0)
            .ok_or_else(|| bad(METHOD, "no `value[0]`"))?;
        if status.is_null() {
            return Ok(None);
        }
        let confirmation = match &status["confirmationStatus"] {
            Value::String(text) => Some(text.clone()),
            _ => None,
        };
        let err = match status.get("err") {
            None | Some(Value::Null) => None,
            Some(err) => Some(err.to_string()),
        };
        Ok(Some(SignatureStatus { confirmation, err }))
    }
}
