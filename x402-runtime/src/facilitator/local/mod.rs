//! The in-process facilitator: verifies `exact` EIP-3009 payments, and Permit2 payments
//! (`exact` over Permit2 and `upto`, see `permit2.rs`), itself and settles them on an EVM node
//! through alloy. With the feature `svm` it also verifies and settles `exact` on Solana (see
//! `svm/`): the scheme's rules, the node's simulation, then the transaction co-signed by its fee
//! payer, sent and confirmed through a Solana JSON-RPC node.
//!
//! Verification that needs no chain (scheme, EIP-712 domain, network, ECDSA signature with
//! FiatToken's low-s and `v` rules, recipient, validity window, exact value) works without any
//! RPC, so a server can refuse bad payments without a round trip. With an RPC URL the
//! facilitator also reads the chain: the token has code, the authorization is unused, the payer's
//! balance covers the value, and a payer with code is checked with ERC-1271.
//!
//! Settlement simulates `transferWithAuthorization`, sends it from the facilitator key, waits
//! for the receipt and requires a matching `Transfer(from, to, value)` log. Many settlements are
//! in flight at once: each is simulated, priced (gas estimated, fees from a short-lived cache)
//! and signed on its own, and only the nonce assignment and the hand-over to the node are taken
//! in turn, so the key's transactions reach the node in nonce order. The facilitator keeps the
//! key's next nonce itself; a send that fails makes it read the node's pending count again.
//! Receipts are polled for directly (briefly at first, then less often). If the receipt does not come in time the answer is
//! `settlement_pending` with the transaction hash, and a retried `/settle` for the same
//! authorization waits for that transaction instead of sending another.
//!
//! With the feature `svm` it serves `exact` on Solana too (`svm/`): requests whose
//! requirements name a Solana network go to that network's backend, and `/supported` lists both.

use std::collections::HashMap;
use std::fmt;
use std::sync::PoisonError;
use std::time::Duration;

use tokio::time::Instant;

use alloy::eips::eip1559::Eip1559Estimation;
use alloy::network::{EthereumWallet, TransactionBuilder as _};
use alloy::primitives::{Address, B256, Bytes, FixedBytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::{RpcError, TransportError};
use dashmap::DashMap;
use serde_json::Value;

use super::{BoxFuture, Facilitator, FacilitatorError};
use crate::base::{ConfigError, unix_now};
use crate::network::Network;
use crate::proto::header::{self, DecodeError, PaymentPayload, parse_uint};
use crate::proto::{
    FacilitatorRequest, Requirements, SettleResponse, SupportedKind, SupportedResponse,
    VerifyResponse, X402Version,
};
use crate::schemes::exact_evm::chain::{self, Authorization, ChainError, ChainReader, OnChain};
use crate::schemes::exact_evm::eip3009::{self, SignatureCheck};
use crate::schemes::exact_evm::payload::{self, ExactEvmPayload, parse_address};
use crate::schemes::exact_evm::rules::{self, Broken, Terms};
use crate::schemes::upto_evm::UPTO;
use crate::schemes::{self, exact_evm::EXACT, permit2::Permit2Payload};

#[allow(clippy::too_many_arguments)]
mod permit2;
mod recovered;
#[cfg(feature = "svm")]
mod svm;

#[cfg(feature = "svm")]
pub use svm::reasons as svm_reasons;

use recovered::Recovered;

/// Contract interfaces (generated bindings carry the Solidity argument lists).
#[allow(clippy::too_many_arguments)]
mod contracts {
    use alloy::sol;

    sol! {
        /// The parts of an EIP-3009 token (Circle's FiatToken) the facilitator uses.
        #[sol(rpc)]
        interface IEip3009 {
            function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
            function balanceOf(address account) external view returns (uint256);
            function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
            function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes signature) external;
            event Transfer(address indexed from, address indexed to, uint256 value);
        }

        /// ERC-1271 signature validation for contract accounts.
        #[sol(rpc)]
        interface IErc1271 {
            function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magicValue);
        }
    }
}

use contracts::{IEip3009, IErc1271};

/// ERC-1271's "valid" answer.
const ERC1271_MAGIC: FixedBytes<4> = FixedBytes([0x16, 0x26, 0xba, 0x7e]);

/// Error codes the facilitator answers with (the TypeScript and Go SDKs' strings).
pub mod reasons {
    /// The payment is not a decodable x402 payment.
    pub const INVALID_PAYLOAD: &str = "invalid_payload";
    /// Version mismatch between request, payload and requirements.
    pub const INVALID_X402_VERSION: &str = "invalid_x402_version";
    /// Not the `exact` scheme.
    pub const SCHEME: &str = "invalid_exact_evm_scheme";
    /// `extra.name` / `extra.version` missing from the requirements.
    pub const MISSING_DOMAIN: &str = "invalid_exact_evm_missing_eip712_domain";
    /// The payment is for another network than the requirements.
    pub const NETWORK_MISMATCH: &str = "invalid_exact_evm_network_mismatch";
    /// A network this facilitator does not serve.
    pub const INVALID_NETWORK: &str = "invalid_network";
    /// Malformed requirements.
    pub const INVALID_REQUIREMENTS: &str = "invalid_payment_requirements";
    /// The signature is not the payer's.
    pub const SIGNATURE: &str = "invalid_exact_evm_signature";
    /// The authorization pays someone else.
    pub const RECIPIENT: &str = "invalid_exact_evm_recipient_mismatch";
    /// `validBefore` passed or too close.
    pub const VALID_BEFORE: &str = "invalid_exact_evm_payload_authorization_valid_before";
    /// `validAfter` in the future.
    pub const VALID_AFTER: &str = "invalid_exact_evm_payload_authorization_valid_after";
    /// The value is not exactly the required amount.
    pub const VALUE: &str = "invalid_exact_evm_payload_authorization_value_mismatch";
    /// The token address has no code.
    pub const ASSET_NOT_DEPLOYED: &str = "asset_not_deployed_contract";
    /// The authorization was already used or cancelled.
    pub const NONCE_USED: &str = "invalid_exact_evm_nonce_already_used";
    /// The payer's balance is below the value.
    pub const INSUFFICIENT_BALANCE: &str = "invalid_exact_evm_insufficient_balance";
    /// The token does not implement EIP-3009.
    pub const NOT_EIP3009: &str = "invalid_exact_evm_eip3009_not_supported";
    /// The transaction reverted.
    pub const TRANSACTION_FAILED: &str = "invalid_exact_evm_transaction_failed";
    /// The receipt has no matching `Transfer` log.
    pub const TRANSFER_EVENT: &str = "invalid_exact_evm_transfer_event_mismatch";
    /// The transaction was sent; its receipt has not been seen yet.
    pub const PENDING: &str = "settlement_pending";
}

/// One network the facilitator serves.
struct Chain {
    network: Network,
    /// The network's EIP-155 chain id (every served network is an EVM one).
    chain_id: u64,
    reader: Option<DynProvider>,
    writer: Option<(DynProvider, Address)>,
    /// The key's next nonce, `None` until read from the node (and again after a failed send).
    /// Held from nonce assignment until the node has the transaction, so transactions reach the
    /// node in nonce order: a node that receives nonce n + 1 before n holds it back until n
    /// arrives, and if no later transaction comes it stays unmined.
    sending: tokio::sync::Mutex<Option<u64>>,
    /// The last fee estimate and when it was read.
    fees: std::sync::Mutex<Option<(tokio::time::Instant, Eip1559Estimation)>>,
    /// Assets seen with contract code (code, once deployed, is not read again).
    assets_with_code: DashMap<Address, ()>,
    /// The largest gas estimate seen for an EOA's `transferWithAuthorization`, by asset.
    transfer_gas: DashMap<Address, u64>,
    /// The key's mined transaction count (its `latest` nonce), as last read.
    mined: tokio::sync::watch::Sender<u64>,
    /// Held by the one settlement reading `mined` for all that wait.
    watching: tokio::sync::Mutex<()>,
}

/// Gas added to every limit: a first credit to a recipient (a zero balance slot written) costs
/// about 17 000 more than the transfers a cached estimate may have seen. Only gas used is paid.
const GAS_MARGIN: u64 = 25_000;
/// How long a fee estimate is used before it is read again.
const FEES_MAX_AGE: Duration = Duration::from_millis(500);
/// The longest pause between two reads of a receipt (the first reads come sooner).
const RECEIPT_POLL_MAX: Duration = Duration::from_millis(250);

impl Chain {
    /// EIP-1559 fees for a transaction now: the cached estimate while fresh, else the node's.
    async fn fees(&self, writer: &DynProvider) -> Result<Eip1559Estimation, TransportError> {
        let now = tokio::time::Instant::now();
        {
            let cached = self.fees.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((at, fees)) = *cached
                && now.duration_since(at) < FEES_MAX_AGE
            {
                return Ok(fees);
            }
        }
        let fees = writer.estimate_eip1559_fees().await?;
        *self.fees.lock().unwrap_or_else(PoisonError::into_inner) = Some((now, fees));
        Ok(fees)
    }

    /// Assigns the key's next nonce to `call` (fully priced) and hands it to the node, in turn.
    /// A failed send may still have reached the node, so the nonce is read again next time.
    async fn send_in_order(
        &self,
        writer: &DynProvider,
        from: Address,
        call: TransactionRequest,
    ) -> Result<(B256, u64), FacilitatorError> {
        let mut next = self.sending.lock().await;
        let nonce = match *next {
            Some(nonce) => nonce,
            // Nothing was sent yet: the node being unreachable here moves nothing.
            None => writer
                .get_transaction_count(from)
                .pending()
                .await
                .map_err(|e| FacilitatorError::Unreachable(format!("RPC: {e}")))?,
        };
        match writer.send_transaction(call.with_nonce(nonce)).await {
            Ok(pending) => {
                *next = Some(nonce + 1);
                Ok((*pending.tx_hash(), nonce))
            }
            Err(e) => {
                *next = None;
                // A failed send may still have reached the node: the outcome is unknown.
                Err(FacilitatorError::BadResponse(format!("RPC: {e}")))
            }
        }
    }
}

impl Chain {
    /// Waits until the key's transaction with `nonce` is mined (the key's mined count passes
    /// it), until `deadline`. One waiter at a time reads the count for all, on the [`Polling`]
    /// schedule (started again whenever the count moves); the others wait for what it reads.
    /// Whether the transaction mined is this one is for its receipt to say.
    async fn wait_mined(&self, reader: &DynProvider, from: Address, nonce: u64, deadline: Instant) {
        let mut seen = self.mined.subscribe();
        loop {
            if *seen.borrow_and_update() > nonce || Instant::now() >= deadline {
                return;
            }
            let Ok(_watching) = self.watching.try_lock() else {
                let wait = deadline.saturating_duration_since(Instant::now());
                let _ =
                    tokio::time::timeout(wait.min(Duration::from_millis(20)), seen.changed()).await;
                continue;
            };
            let mut polling = Polling::until(deadline);
            loop {
                match reader.get_transaction_count(from).latest().await {
                    Ok(count) if count > *self.mined.borrow() => {
                        self.mined.send_replace(count);
                        polling.restart();
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!("x402 facilitator: nonce read failed: {e}"),
                }
                if *self.mined.borrow() > nonce || !polling.pause().await {
                    return;
                }
            }
        }
    }
}

/// The schedule on which the chain is read while waiting for a transaction: at once, then after
/// 5 ms, the pause doubling up to [`RECEIPT_POLL_MAX`], until a deadline.
struct Polling {
    pause: Duration,
    deadline: Instant,
}

impl Polling {
    const FIRST: Duration = Duration::from_millis(5);

    fn until(deadline: Instant) -> Self {
        Self {
            pause: Self::FIRST,
            deadline,
        }
    }

    /// Back to the first, shortest pause (something moved).
    fn restart(&mut self) {
        self.pause = Self::FIRST;
    }

    /// Sleeps the next pause (cut at the deadline); `false`, without sleeping, once the deadline
    /// has passed.
    async fn pause(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.pause.min(self.deadline - now)).await;
        self.pause = (self.pause * 2).min(RECEIPT_POLL_MAX);
        true
    }
}

/// Polls for `hash`'s receipt until `timeout`, on the [`Polling`] schedule. A failed read is
/// retried like a missing receipt; `None` when none came.
async fn wait_for_receipt(
    reader: &DynProvider,
    hash: B256,
    timeout: Duration,
) -> Option<TransactionReceipt> {
    let mut polling = Polling::until(Instant::now() + timeout);
    loop {
        match reader.get_transaction_receipt(hash).await {
            Ok(Some(receipt)) => return Some(receipt),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(transaction = %hash, "x402 facilitator: receipt read failed: {e}")
            }
        }
        if !polling.pause().await {
            return None;
        }
    }
}

/// The in-process facilitator. See the [module documentation](self).
pub struct LocalFacilitator {
    chains: HashMap<u64, Chain>,
    receipt_timeout: Duration,
    clock: fn() -> u64,
    /// Settlements sent whose receipt was not seen, by `(chain id, payer, nonce)`.
    in_flight: DashMap<(u64, Address, B256), B256>,
    /// Signers recovered by `verify`, for the same payment's `settle`.
    recovered: Recovered,
    /// The Solana networks served, by CAIP-2 id.
    #[cfg(feature = "svm")]
    svm: HashMap<String, svm::SvmBackend>,
}

impl fmt::Debug for LocalFacilitator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never prints keys: only networks and the public signer addresses.
        let mut chains: Vec<(String, bool, Option<String>)> = self
            .chains
            .values()
            .map(|c| {
                (
                    c.network.caip2.clone(),
                    c.reader.is_some(),
                    c.writer.as_ref().map(|w| w.1.to_checksum(None)),
                )
            })
            .collect();
        chains.sort();
        let mut debug = f.debug_struct("LocalFacilitator");
        debug.field("chains (network, rpc, signer)", &chains);
        #[cfg(feature = "svm")]
        {
            let mut solana: Vec<&svm::SvmBackend> = self.svm.values().collect();
            solana.sort_by_key(|b| &b.network().caip2);
            debug.field("solana", &solana);
        }
        debug
            .field("receipt_timeout", &self.receipt_timeout)
            .finish()
    }
}

/// Builds a [`LocalFacilitator`].
#[derive(Default)]
#[must_use]
pub struct LocalFacilitatorBuilder {
    networks: Vec<String>,
    rpc: HashMap<String, String>,
    keys: HashMap<String, String>,
    default_rpc: Option<String>,
    default_key: Option<String>,
    receipt_timeout: Option<Duration>,
    clock: Option<fn() -> u64>,
    #[cfg(feature = "svm")]
    svm: svm::SvmOptions,
}

impl fmt::Debug for LocalFacilitatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalFacilitatorBuilder")
            .field("networks", &self.networks)
            .finish_non_exhaustive()
    }
}

impl LocalFacilitatorBuilder {
    /// A builder for `networks` with RPC URLs and keys read through `lookup` (see
    /// [`LocalFacilitator::from_env`]); options can still be added before `build`.
    pub fn from_lookup(networks: &[Network], lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut builder = LocalFacilitator::builder();
        if let Some(url) = lookup("X402_RPC_URL").filter(|u| !u.trim().is_empty()) {
            builder = builder.default_rpc_url(url.trim());
        }
        if let Some(key) = lookup("X402_FACILITATOR_KEY").filter(|k| !k.trim().is_empty()) {
            builder = builder.default_signer_key(key);
        }
        #[cfg(feature = "svm")]
        {
            builder.svm = svm::SvmOptions::from_lookup(&lookup);
        }
        for network in networks {
            builder = builder.network(network.caip2.clone());
            // Solana's variables are read above (feature `svm`); without the feature `build`
            // refuses a Solana network, naming the feature.
            let Some(chain_id) = network.chain_id() else {
                continue;
            };
            if let Some(url) = lookup(&format!("X402_RPC_URL_{chain_id}")) {
                builder = builder.rpc_url(network.caip2.clone(), url.trim());
            }
            if let Some(key) = lookup(&format!("X402_FACILITATOR_KEY_{chain_id}")) {
                builder = builder.signer_key(network.caip2.clone(), key);
            }
        }
        builder
    }

    /// Serves `caip2` (e.g. `eip155:84532`); without an RPC URL only offline verification works.
    pub fn network(mut self, caip2: impl Into<String>) -> Self {
        self.networks.push(caip2.into());
        self
    }

    /// The RPC URL for one network.
    pub fn rpc_url(mut self, caip2: impl Into<String>, url: impl Into<String>) -> Self {
        self.rpc.insert(caip2.into(), url.into());
        self
    }

    /// The RPC URL for every network without its own.
    pub fn default_rpc_url(mut self, url: impl Into<String>) -> Self {
        self.default_rpc = Some(url.into());
        self
    }

    /// The key that signs settlement transactions on one network (hex private key).
    pub fn signer_key(mut self, caip2: impl Into<String>, key: impl Into<String>) -> Self {
        self.keys.insert(caip2.into(), key.into());
        self
    }

    /// The settlement key for every network without its own.
    pub fn default_signer_key(mut self, key: impl Into<String>) -> Self {
        self.default_key = Some(key.into());
        self
    }

    /// The Solana JSON-RPC URL for one Solana network (default: [`default_svm_rpc_url`], else
    /// the cluster's public endpoint).
    ///
    /// [`default_svm_rpc_url`]: Self::default_svm_rpc_url
    #[cfg(feature = "svm")]
    pub fn svm_rpc_url(mut self, caip2: impl Into<String>, url: impl Into<String>) -> Self {
        self.svm.rpc.insert(caip2.into(), url.into());
        self
    }

    /// The Solana JSON-RPC URL for every Solana network without its own.
    #[cfg(feature = "svm")]
    pub fn default_svm_rpc_url(mut self, url: impl Into<String>) -> Self {
        self.svm.default_rpc = Some(url.into());
        self
    }

    /// The Solana fee payer, which co-signs and pays for every Solana settlement: base58 of the
    /// 64-byte keypair (seed, then public key, as wallets export it), base58 of the 32-byte
    /// seed, or a JSON array of the 64 bytes (a Solana CLI keypair file). Without it the
    /// Solana networks are verified only, and not listed in `/supported`.
    #[cfg(feature = "svm")]
    pub fn svm_signer_key(mut self, key: impl Into<String>) -> Self {
        self.svm.key = Some(key.into());
        self
    }

    /// How long to wait for a settlement's receipt before answering `settlement_pending`
    /// (default 20 s, below the paywall's 30 s settle timeout).
    pub fn receipt_timeout(mut self, timeout: Duration) -> Self {
        self.receipt_timeout = Some(timeout);
        self
    }

    /// Reads the time (unix seconds) from `clock`.
    pub fn clock(mut self, clock: fn() -> u64) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the facilitator. Keys are parsed here; an error never contains them.
    pub fn build(self) -> Result<LocalFacilitator, ConfigError> {
        if self.networks.is_empty() {
            return Err(ConfigError::new(
                "the local facilitator serves no network: call .network(\"eip155:…\")",
            ));
        }
        let mut chains = HashMap::new();
        #[cfg(feature = "svm")]
        let mut solana = HashMap::new();
        for caip2 in &self.networks {
            let network = Network::from_caip2(caip2).ok_or_else(|| {
                ConfigError::new(format!(
                    "network `{caip2}` is not a CAIP-2 id this facilitator knows (`eip155:<chain id>`, or Solana mainnet or devnet)"
                ))
            })?;
            let Some(chain_id) = network.chain_id() else {
                #[cfg(feature = "svm")]
                solana.insert(network.caip2.clone(), self.svm.backend(&network)?);
                #[cfg(not(feature = "svm"))]
                return Err(ConfigError::new(format!(
                    "network `{caip2}` is a Solana network: the in-process facilitator settles on Solana only when x402-runtime is built with the feature `svm`"
                )));
                #[cfg(feature = "svm")]
                continue;
            };
            chains.insert(chain_id, self.chain(network, chain_id)?);
        }
        Ok(LocalFacilitator {
            chains,
            receipt_timeout: self.receipt_timeout.unwrap_or(Duration::from_secs(20)),
            clock: self.clock.unwrap_or(unix_now),
            in_flight: DashMap::new(),
            recovered: Recovered::default(),
            #[cfg(feature = "svm")]
            svm: solana,
        })
    }

    /// The EVM network `network` (chain id `chain_id`) with its RPC URL and key.
    fn chain(&self, network: Network, chain_id: u64) -> Result<Chain, ConfigError> {
        let caip2 = &network.caip2;
        let rpc = self.rpc.get(caip2).or(self.default_rpc.as_ref());
        let key = self.keys.get(caip2).or(self.default_key.as_ref());
        let reader = match rpc {
            Some(url) => Some(
                ProviderBuilder::new()
                    .connect_http(parse_url(url)?)
                    .erased(),
            ),
            None => None,
        };
        let writer = match (rpc, key) {
            (Some(url), Some(key)) => {
                let signer: PrivateKeySigner = key.trim().parse().map_err(|_| {
                    ConfigError::new(format!(
                        "the facilitator key for {caip2} is not a 32-byte hex private key"
                    ))
                })?;
                let address = signer.address();
                let provider = ProviderBuilder::new()
                    .wallet(EthereumWallet::from(signer))
                    .connect_http(parse_url(url)?)
                    .erased();
                Some((provider, address))
            }
            _ => None,
        };
        Ok(Chain {
            network,
            chain_id,
            reader,
            writer,
            sending: tokio::sync::Mutex::new(None),
            fees: std::sync::Mutex::new(None),
            assets_with_code: DashMap::new(),
            transfer_gas: DashMap::new(),
            mined: tokio::sync::watch::Sender::new(0),
            watching: tokio::sync::Mutex::new(()),
        })
    }
}

fn parse_url(url: &str) -> Result<alloy::transports::http::reqwest::Url, ConfigError> {
    url.parse()
        .map_err(|_| ConfigError::new(format!("RPC URL `{url}` is not a valid URL")))
}

impl LocalFacilitator {
    /// Starts a facilitator.
    pub fn builder() -> LocalFacilitatorBuilder {
        LocalFacilitatorBuilder::default()
    }

    /// A facilitator for `networks`, configured from the environment: `X402_RPC_URL` and
    /// `X402_FACILITATOR_KEY`, or per network `X402_RPC_URL_<chain id>` and
    /// `X402_FACILITATOR_KEY_<chain id>`; on Solana (feature `svm`) `X402_SVM_RPC_URL` (or per
    /// cluster `X402_SVM_RPC_URL_DEVNET`, `X402_SVM_RPC_URL_MAINNET`; default: the cluster's public
    /// endpoint) and the fee payer `X402_SVM_FACILITATOR_KEY`.
    pub fn from_env(networks: &[Network]) -> Result<LocalFacilitator, ConfigError> {
        LocalFacilitatorBuilder::from_lookup(networks, |name| std::env::var(name).ok()).build()
    }

    fn now(&self) -> u64 {
        (self.clock)()
    }
}

/// A payment as the facilitator reads it: the envelope and the scheme's payload.
struct Decoded {
    envelope: PaymentPayload,
    payment: Payment,
}

/// The scheme's part of a payment: an EIP-3009 authorization or a Permit2 permit.
#[derive(Clone)]
enum Payment {
    Eip3009(ExactEvmPayload),
    Permit2(Permit2Payload),
}

impl Payment {
    /// The payer and the nonce that makes the payment single-use (in-flight settlements are
    /// keyed by them).
    fn payer_and_nonce(&self) -> (Address, B256) {
        match self {
            Payment::Eip3009(p) => (p.authorization.from, p.authorization.nonce),
            Payment::Permit2(p) => (p.authorization.from, B256::from(p.authorization.nonce)),
        }
    }
}

/// The token transfer a settlement must make.
#[derive(Clone, Copy, Debug)]
struct Transfer {
    from: Address,
    to: Address,
    value: U256,
}

/// A verified payment, ready to settle.
struct Checked<'a> {
    chain: &'a Chain,
    payment: Payment,
    asset: Address,
    network: String,
    /// What settling moves (for `upto`, the amount the server asked to settle).
    transfer: Transfer,
    /// An `upto` settlement: the answer says the amount settled.
    upto: bool,
    /// The payer's EIP-2612 permit of the token to Permit2, submitted with the transfer.
    eip2612: Option<schemes::permit2::Eip2612Permit>,
}

/// The outcome of a check: a refusal with its reason, or a chain fault.
enum Refusal {
    Invalid(&'static str, String),
    Fault(FacilitatorError),
}

fn invalid(reason: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::Invalid(reason, message.into())
}

/// The payment carried by a facilitator request, decoded for `version`.
fn decode_payment(
    request: &FacilitatorRequest,
    version: X402Version,
) -> Result<Decoded, DecodeError> {
    let envelope = header::decode_json(request.payment_payload.get().as_bytes().to_vec(), version)?;
    let payment = if schemes::permit2::is_permit2(&envelope.payload) {
        Payment::Permit2(schemes::permit2::decode(&envelope.payload)?)
    } else {
        Payment::Eip3009(payload::decode(&envelope.payload)?)
    };
    Ok(Decoded { envelope, payment })
}

/// The payment of `request`, decoded as `want` says, or the refusal of a payload that does not
/// decode.
fn decoded(request: &FacilitatorRequest, want: &Wanted<'_>) -> Result<Decoded, Refusal> {
    decode_payment(request, want.version).map_err(|e| match e {
        DecodeError::WrongVersion(_) => {
            invalid(reasons::INVALID_X402_VERSION, "payload version mismatch")
        }
        DecodeError::Malformed(why) => invalid(reasons::INVALID_PAYLOAD, why),
        DecodeError::TooLarge => invalid(reasons::INVALID_PAYLOAD, "payload too large"),
    })
}

fn requirement<T>(parsed: Result<T, DecodeError>) -> Result<T, Refusal> {
    parsed.map_err(|_| invalid(reasons::INVALID_REQUIREMENTS, "malformed requirements"))
}

fn rpc_fault(e: impl fmt::Display) -> Refusal {
    Refusal::Fault(FacilitatorError::Unreachable(format!("RPC: {e}")))
}

/// The fields the checks need from v2 or v1 requirements.
struct Wanted<'a> {
    version: X402Version,
    scheme: &'a str,
    network: &'a str,
    amount: &'a str,
    asset: &'a str,
    pay_to: &'a str,
    extra: Option<&'a serde_json::Map<String, Value>>,
    /// Whether the check is the settlement's (the last of the payment's checks).
    settling: bool,
}

fn wanted(request: &FacilitatorRequest, settling: bool) -> Result<Wanted<'_>, Refusal> {
    match (&request.payment_requirements, request.x402_version) {
        (Requirements::V2(r), 2) => Ok(Wanted {
            version: X402Version::V2,
            scheme: &r.scheme,
            network: &r.network,
            amount: &r.amount,
            asset: &r.asset,
            pay_to: &r.pay_to,
            extra: r.extra.as_ref(),
            settling,
        }),
        (Requirements::V1(r), 1) => Ok(Wanted {
            version: X402Version::V1,
            scheme: &r.scheme,
            network: &r.network,
            amount: &r.max_amount_required,
            asset: &r.asset,
            pay_to: &r.pay_to,
            extra: r.extra.as_ref(),
            settling,
        }),
        _ => Err(invalid(
            reasons::INVALID_X402_VERSION,
            "x402Version does not match the requirements",
        )),
    }
}

impl LocalFacilitator {
    /// The served chain the requirements name (CAIP-2 for v2, a v1 network name for v1).
    fn chain_for(&self, want: &Wanted<'_>) -> Option<&Chain> {
        let network = match want.version {
            X402Version::V2 => Network::from_caip2(want.network),
            X402Version::V1 => Network::from_v1_name(want.network),
        };
        network.and_then(|n| self.chains.get(&n.chain_id()?))
    }

    /// Every check, in the reference order; chain reads only where an RPC is configured.
    ///
    /// `stage` says whether the authorization's state and the payer's balance are read: at
    /// settlement they are not, as the gas estimate that follows simulates the transfer itself
    /// and a used authorization or a short balance reverts it with the same reason.
    async fn check(
        &self,
        request: &FacilitatorRequest,
        stage: Stage,
    ) -> Result<Checked<'_>, Refusal> {
        let want = wanted(request, stage == Stage::Settle)?;
        let decoded = decoded(request, &want)?;
        self.check_decoded(&want, decoded, stage).await
    }

    /// [`check`](Self::check) of a payment already decoded from the request `want` was read
    /// from.
    async fn check_decoded<'w>(
        &self,
        want: &Wanted<'w>,
        Decoded { envelope, payment }: Decoded,
        stage: Stage,
    ) -> Result<Checked<'_>, Refusal> {
        let payment = match payment {
            Payment::Permit2(permit) => return self.check_permit2(want, &envelope, permit).await,
            Payment::Eip3009(payment) => payment,
        };
        if envelope.scheme != EXACT || want.scheme != EXACT {
            return Err(invalid(
                reasons::SCHEME,
                "only the exact scheme is supported",
            ));
        }
        let domain_field = |key: &str| want.extra.and_then(|e| e.get(key)).and_then(Value::as_str);
        let (Some(name), Some(version)) = (domain_field("name"), domain_field("version")) else {
            return Err(invalid(
                reasons::MISSING_DOMAIN,
                "requirements.extra needs name and version",
            ));
        };
        if envelope.network != want.network {
            return Err(invalid(
                reasons::NETWORK_MISMATCH,
                "the payment is for another network",
            ));
        }
        let chain = self.chain_for(want).ok_or_else(|| {
            invalid(
                reasons::INVALID_NETWORK,
                format!("network `{}` is not served", want.network),
            )
        })?;
        let asset = requirement(parse_address(want.asset, "asset"))?;
        let pay_to = requirement(parse_address(want.pay_to, "payTo"))?;
        let amount = requirement(parse_uint(want.amount, "amount"))?;

        let auth = &payment.authorization;
        let separator = eip3009::domain_separator(name, version, chain.chain_id, asset);
        let digest = eip3009::signing_hash(&separator, auth);
        self.check_signature(
            chain,
            auth.from,
            (&payment.signature, &digest),
            reasons::SIGNATURE,
            want.settling,
        )
        .await?;
        let terms = Terms::at_settlement(amount, pay_to, self.now());
        rules::check_terms(&payment, &terms).map_err(broken_rule)?;
        if let Some(reader) = &chain.reader {
            check_on_chain(chain, reader, asset, &payment, stage).await?;
        }
        let transfer = Transfer {
            from: auth.from,
            to: auth.to,
            value: auth.value,
        };
        Ok(Checked {
            chain,
            payment: Payment::Eip3009(payment),
            asset,
            network: want.network.to_owned(),
            transfer,
            upto: false,
            eip2612: None,
        })
    }

    /// ECDSA for accounts without code (always possible offline; the signer `verify` recovered
    /// is not recovered again by `settle`); ERC-1271 for accounts with code, when the chain can
    /// be read.
    async fn check_signature(
        &self,
        chain: &Chain,
        from: Address,
        (signature, digest): (&Bytes, &B256),
        reason: &'static str,
        settling: bool,
    ) -> Result<(), Refusal> {
        if let Some(reader) = &chain.reader {
            let code = reader.get_code_at(from).await.map_err(rpc_fault)?;
            if !code.is_empty() {
                let wallet = IErc1271::new(from, reader);
                return match wallet
                    .isValidSignature(*digest, signature.clone())
                    .call()
                    .await
                {
                    Ok(magic) if magic == ERC1271_MAGIC => Ok(()),
                    Ok(_) => Err(invalid(reason, "the wallet contract refused the signature")),
                    Err(e) if is_revert(&e) => {
                        Err(invalid(reason, "the wallet contract refused the signature"))
                    }
                    Err(e) => Err(rpc_fault(e)),
                };
            }
        }
        match self.recovered.check(signature, digest, from, settling) {
            SignatureCheck::Valid => Ok(()),
            SignatureCheck::NeedsChain => Err(invalid(
                reason,
                "a smart-wallet signature needs an RPC to verify",
            )),
            SignatureCheck::Invalid | SignatureCheck::OtherSigner | SignatureCheck::Malformed => {
                Err(invalid(reason, "the signature is not the payer's"))
            }
        }
    }

    async fn do_verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        match self.check(request, Stage::Verify).await {
            Ok(checked) => Ok(VerifyResponse {
                is_valid: true,
                invalid_reason: None,
                invalid_message: None,
                payer: Some(payload::checksummed(&checked.transfer.from)),
            }),
            Err(Refusal::Invalid(reason, message)) => Ok(VerifyResponse {
                is_valid: false,
                invalid_reason: Some(reason.to_owned()),
                invalid_message: Some(message),
                payer: payer_of(request),
            }),
            Err(Refusal::Fault(e)) => Err(e),
        }
    }

    async fn do_settle(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        let network_of = || request.payment_requirements.network().to_owned();
        let failed = |reason: &str, transaction: String| SettleResponse {
            success: false,
            error_reason: Some(reason.to_owned()),
            error_message: None,
            payer: payer_of(request),
            transaction,
            network: network_of(),
            amount: None,
        };
        let refused = |refusal: Refusal| match refusal {
            Refusal::Invalid(reason, _) => Ok(failed(reason, String::new())),
            Refusal::Fault(e) => Err(e),
        };
        // Decoded once, for the resumption and the checks.
        let (want, decoded) = match wanted(request, true)
            .and_then(|want| decoded(request, &want).map(|decoded| (want, decoded)))
        {
            Ok(both) => both,
            Err(refusal) => return refused(refusal),
        };
        // A retried settlement whose transaction was already sent waits for that transaction.
        if let Some(resumed) = self.resume(&want, &decoded.payment, &failed).await? {
            return Ok(resumed);
        }
        let checked = match self.check_decoded(&want, decoded, Stage::Settle).await {
            Ok(checked) => checked,
            Err(refusal) => return refused(refusal),
        };
        if checked.upto && checked.transfer.value.is_zero() {
            // Nothing used, nothing moved: the permit is left unused.
            return Ok(settled(&checked, String::new()));
        }
        let Some((writer, facilitator)) = &checked.chain.writer else {
            return Err(FacilitatorError::Unreachable(format!(
                "no RPC URL and facilitator key for {}",
                checked.chain.network.caip2
            )));
        };
        let call = match &checked.payment {
            Payment::Eip3009(payment) => transfer_call(writer, checked.asset, payment),
            Payment::Permit2(permit) => permit2::settle_call(writer, permit, &checked),
        };
        // Estimating the gas simulates the call: a revert is answered with its reason and costs
        // no gas.
        let call = match self.priced(&checked, writer, call).await {
            Ok(call) => call,
            Err(Refusal::Invalid(reason, _)) => return Ok(failed(reason, String::new())),
            Err(Refusal::Fault(e)) => return Err(e),
        };
        let (hash, sent_as) = checked
            .chain
            .send_in_order(writer, *facilitator, call)
            .await?;
        let (payer, nonce) = checked.payment.payer_and_nonce();
        let key = (checked.chain.chain_id, payer, nonce);
        self.in_flight.insert(key, hash);
        let deadline = Instant::now() + self.receipt_timeout;
        checked
            .chain
            .wait_mined(writer, *facilitator, sent_as, deadline)
            .await;
        let left = deadline.saturating_duration_since(Instant::now());
        match wait_for_receipt(writer, hash, left).await {
            Some(receipt) => {
                self.in_flight.remove(&key);
                Ok(judge_receipt(&receipt, &checked, &failed))
            }
            None => {
                tracing::warn!(transaction = %hash, "x402 facilitator: no receipt yet");
                Ok(failed(reasons::PENDING, hash.to_string()))
            }
        }
    }

    /// `call` with its gas limit (the estimate, a quarter more and [`GAS_MARGIN`]), fees and chain id:
    /// everything but the nonce. The estimate simulates the call; a revert is refused with its
    /// reason.
    async fn priced(
        &self,
        checked: &Checked<'_>,
        writer: &DynProvider,
        call: TransactionRequest,
    ) -> Result<TransactionRequest, Refusal> {
        // An EOA's EIP-3009 transfer on an asset already estimated needs no new estimate (the
        // node runs an estimate many times over): a plain simulation, and the largest estimate
        // seen for that asset.
        let known = match &checked.payment {
            Payment::Eip3009(p) if p.signature.len() == 65 => checked
                .chain
                .transfer_gas
                .get(&checked.asset)
                .map(|gas| *gas),
            _ => None,
        };
        let simulated = match known {
            Some(gas) => writer.call(call.clone()).await.map(|_| gas),
            None => writer.estimate_gas(call.clone()).await,
        };
        let gas = match simulated {
            Ok(gas) => {
                if known.is_none() && matches!(&checked.payment, Payment::Eip3009(_)) {
                    let mut seen = checked
                        .chain
                        .transfer_gas
                        .entry(checked.asset)
                        .or_insert(gas);
                    *seen = (*seen).max(gas);
                }
                gas
            }
            Err(e) => {
                let reason = match &checked.payment {
                    Payment::Eip3009(_) => revert_reason(&e),
                    Payment::Permit2(_) => permit2::revert_reason(&e),
                };
                return Err(match reason {
                    Some(reason) => invalid(reason, "the transaction would revert"),
                    None => Refusal::Fault(FacilitatorError::Unreachable(format!("RPC: {e}"))),
                });
            }
        };
        let fees = checked.chain.fees(writer).await.map_err(rpc_fault)?;
        Ok(call
            .with_gas_limit(gas.saturating_add(gas / 4).saturating_add(GAS_MARGIN))
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas)
            .with_chain_id(checked.chain.chain_id))
    }

    /// If this authorization's settlement was already sent, waits for its receipt.
    async fn resume(
        &self,
        want: &Wanted<'_>,
        payment: &Payment,
        failed: &(dyn Fn(&str, String) -> SettleResponse + Sync),
    ) -> Result<Option<SettleResponse>, FacilitatorError> {
        let Some(chain) = self.chain_for(want) else {
            return Ok(None);
        };
        let (payer, nonce) = payment.payer_and_nonce();
        let key = (chain.chain_id, payer, nonce);
        let Some(hash) = self.in_flight.get(&key).map(|h| *h) else {
            return Ok(None);
        };
        // The request was checked when the transaction was sent; what it must have moved is
        // read from it again.
        let (Ok(asset), Ok(amount)) = (
            parse_address(want.asset, "asset"),
            parse_uint(want.amount, "amount"),
        ) else {
            return Ok(None);
        };
        let upto = want.scheme == schemes::upto_evm::UPTO;
        let transfer = match payment {
            Payment::Eip3009(p) => Transfer {
                from: p.authorization.from,
                to: p.authorization.to,
                value: p.authorization.value,
            },
            Payment::Permit2(p) => Transfer {
                from: p.authorization.from,
                to: p.authorization.to,
                value: if upto { amount } else { p.authorization.amount },
            },
        };
        let checked = Checked {
            chain,
            payment: payment.clone(),
            asset,
            network: want.network.to_owned(),
            transfer,
            upto,
            eip2612: None,
        };
        let Some(reader) = &chain.reader else {
            return Ok(None);
        };
        let deadline = tokio::time::Instant::now() + self.receipt_timeout;
        loop {
            // The transaction was sent: a failed read leaves the outcome unknown.
            let receipt = reader
                .get_transaction_receipt(hash)
                .await
                .map_err(|e| FacilitatorError::BadResponse(format!("RPC: {e}")))?;
            if let Some(receipt) = receipt {
                self.in_flight.remove(&key);
                return Ok(Some(judge_receipt(&receipt, &checked, failed)));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Some(failed(reasons::PENDING, hash.to_string())));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Success needs status 1 and a `Transfer(from, to, value)` log emitted by the asset.
fn judge_receipt(
    receipt: &TransactionReceipt,
    checked: &Checked<'_>,
    failed: &(dyn Fn(&str, String) -> SettleResponse + Sync),
) -> SettleResponse {
    let hash = receipt.transaction_hash.to_string();
    if !receipt.status() {
        return failed(reasons::TRANSACTION_FAILED, hash);
    }
    let want = checked.transfer;
    let transferred = receipt.inner.logs().iter().any(|log| {
        log.address() == checked.asset
            && log.log_decode::<IEip3009::Transfer>().is_ok_and(|t| {
                let t = &t.inner.data;
                t.from == want.from && t.to == want.to && t.value == want.value
            })
    });
    if !transferred {
        return failed(reasons::TRANSFER_EVENT, hash);
    }
    settled(checked, hash)
}

/// The success answer for `checked`, settled in `transaction` (empty for an `upto` that used
/// nothing); an `upto` answer names the amount.
fn settled(checked: &Checked<'_>, transaction: String) -> SettleResponse {
    SettleResponse {
        success: true,
        error_reason: None,
        error_message: None,
        payer: Some(payload::checksummed(&checked.transfer.from)),
        transaction,
        network: checked.network.clone(),
        amount: checked.upto.then(|| checked.transfer.value.to_string()),
    }
}

fn payer_of(request: &FacilitatorRequest) -> Option<String> {
    let value: Value = serde_json::from_str(request.payment_payload.get()).ok()?;
    let from = value
        .pointer("/payload/authorization/from")
        .or_else(|| value.pointer("/payload/permit2Authorization/from"))?
        .as_str()?;
    parse_address(from, "from")
        .ok()
        .map(|a| a.to_checksum(None))
}

/// The `transferWithAuthorization` call for `payment` on `asset`: the `(v, r, s)` form for a
/// 65-byte signature, the `bytes` form for any other (ERC-1271 wallets).
fn transfer_call(
    writer: &DynProvider,
    asset: Address,
    payment: &ExactEvmPayload,
) -> alloy::rpc::types::TransactionRequest {
    let auth = &payment.authorization;
    let token = IEip3009::new(asset, writer);
    let signature = &payment.signature;
    if signature.len() == 65 {
        let v = signature[64];
        let r = B256::from_slice(&signature[..32]);
        let s = B256::from_slice(&signature[32..64]);
        token
            .transferWithAuthorization_0(
                auth.from,
                auth.to,
                auth.value,
                auth.valid_after,
                auth.valid_before,
                auth.nonce,
                v,
                r,
                s,
            )
            .into_transaction_request()
    } else {
        token
            .transferWithAuthorization_1(
                auth.from,
                auth.to,
                auth.value,
                auth.valid_after,
                auth.valid_before,
                auth.nonce,
                Bytes::clone(signature),
            )
            .into_transaction_request()
    }
}

/// The refusal for a broken exact-EVM rule, with the reference facilitators' reason.
fn broken_rule(broken: Broken) -> Refusal {
    match broken {
        Broken::Recipient => invalid(reasons::RECIPIENT, "the authorization pays another address"),
        Broken::ValidBefore => invalid(reasons::VALID_BEFORE, "the authorization expires too soon"),
        Broken::ValidAfter => invalid(reasons::VALID_AFTER, "the authorization is not valid yet"),
        Broken::Value => invalid(reasons::VALUE, "the value is not the required amount"),
    }
}

/// Which call a check serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// `/verify`: every read.
    Verify,
    /// `/settle`: the reads the settlement's simulation does not repeat.
    Settle,
}

/// The token has code, and (at verification) the authorization is unused and the payer's
/// balance covers the value. An asset seen with code is not read again.
async fn check_on_chain(
    chain: &Chain,
    reader: &DynProvider,
    asset: Address,
    payment: &ExactEvmPayload,
    stage: Stage,
) -> Result<(), Refusal> {
    let auth = &payment.authorization;
    if !chain.assets_with_code.contains_key(&asset) {
        let code = reader.get_code_at(asset).await.map_err(rpc_fault)?;
        if code.is_empty() {
            return Err(invalid(
                reasons::ASSET_NOT_DEPLOYED,
                "the asset has no contract code",
            ));
        }
        chain.assets_with_code.insert(asset, ());
    }
    if stage == Stage::Settle {
        return Ok(());
    }
    let token = IEip3009::new(asset, reader);
    match token.authorizationState(auth.from, auth.nonce).call().await {
        Ok(true) => {
            return Err(invalid(
                reasons::NONCE_USED,
                "the authorization was already used",
            ));
        }
        Ok(false) => {}
        Err(e) if is_revert(&e) => {
            return Err(invalid(
                reasons::NOT_EIP3009,
                "the asset does not implement EIP-3009",
            ));
        }
        Err(e) => return Err(rpc_fault(e)),
    }
    let balance = token.balanceOf(auth.from).call().await.map_err(rpc_fault)?;
    if balance < auth.value {
        return Err(invalid(
            reasons::INSUFFICIENT_BALANCE,
            "the payer's balance is too low",
        ));
    }
    Ok(())
}

fn is_revert(error: &alloy::contract::Error) -> bool {
    match error {
        alloy::contract::Error::TransportError(e) => matches!(e, RpcError::ErrorResp(_)),
        alloy::contract::Error::ZeroData(..) | alloy::contract::Error::AbiError(_) => true,
        _ => false,
    }
}

/// Maps a simulation failure to a reason; `None` if it was not a revert (a transport fault).
fn revert_reason(error: &TransportError) -> Option<&'static str> {
    let RpcError::ErrorResp(payload) = error else {
        return None;
    };
    let text = payload.message.to_ascii_lowercase();
    let reason = if text.contains("authorization is expired") {
        reasons::VALID_BEFORE
    } else if text.contains("authorization is not yet valid") {
        reasons::VALID_AFTER
    } else if text.contains("authorization is used or canceled") {
        reasons::NONCE_USED
    } else if text.contains("exceeds balance") {
        reasons::INSUFFICIENT_BALANCE
    } else if text.contains("invalid signature") {
        reasons::SIGNATURE
    } else {
        reasons::TRANSACTION_FAILED
    };
    Some(reason)
}

impl Facilitator for LocalFacilitator {
    fn verify<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<VerifyResponse, FacilitatorError>> {
        match self.solana(request) {
            None => Box::pin(self.do_verify(request)),
            #[cfg(feature = "svm")]
            Some(Some(backend)) => Box::pin(backend.verify(request)),
            Some(_) => Box::pin(std::future::ready(Ok(VerifyResponse {
                is_valid: false,
                invalid_reason: Some(reasons::INVALID_NETWORK.to_owned()),
                invalid_message: Some(unserved(request)),
                payer: None,
            }))),
        }
    }

    fn settle<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<SettleResponse, FacilitatorError>> {
        match self.solana(request) {
            None => Box::pin(self.do_settle(request)),
            #[cfg(feature = "svm")]
            Some(Some(backend)) => Box::pin(backend.settle(request, self.receipt_timeout)),
            Some(_) => Box::pin(std::future::ready(Ok(SettleResponse {
                success: false,
                error_reason: Some(reasons::INVALID_NETWORK.to_owned()),
                error_message: Some(unserved(request)),
                payer: None,
                transaction: String::new(),
                network: request.payment_requirements.network().to_owned(),
                amount: None,
            }))),
        }
    }

    fn supported(&self) -> BoxFuture<'_, Result<SupportedResponse, FacilitatorError>> {
        let mut chains: Vec<&Chain> = self.chains.values().collect();
        chains.sort_by_key(|c| c.chain_id);
        let mut kinds = Vec::new();
        let mut signers: Vec<Value> = Vec::new();
        for chain in chains {
            let kind = |version: u8, network: &str| SupportedKind {
                x402_version: version,
                scheme: EXACT.to_owned(),
                network: network.to_owned(),
                extra: None,
            };
            kinds.push(kind(2, &chain.network.caip2));
            if let Some(name) = chain.network.v1_name {
                kinds.push(kind(1, name));
            }
            if let Some(address) = permit2::upto_facilitator(chain) {
                let mut extra = serde_json::Map::new();
                extra.insert(
                    "facilitatorAddress".into(),
                    Value::String(address.to_checksum(None)),
                );
                kinds.push(SupportedKind {
                    x402_version: 2,
                    scheme: UPTO.to_owned(),
                    network: chain.network.caip2.clone(),
                    extra: Some(extra),
                });
            }
            if let Some((_, address)) = &chain.writer {
                let address = Value::String(address.to_checksum(None));
                if !signers.contains(&address) {
                    signers.push(address);
                }
            }
        }
        let mut signer_map = serde_json::Map::new();
        // It submits a payer's EIP-2612 permit to Permit2 with the payment, where it can settle.
        let extensions = if signers.is_empty() {
            Vec::new()
        } else {
            vec![schemes::permit2::EIP2612_GAS_SPONSORING.to_owned()]
        };
        signer_map.insert("eip155:*".to_owned(), Value::Array(signers));
        #[cfg(feature = "svm")]
        self.solana_supported(&mut kinds, &mut signer_map);
        Box::pin(std::future::ready(Ok(SupportedResponse {
            kinds,
            extensions,
            signers: signer_map,
        })))
    }
}

/// What a request for a network that is not served says.
fn unserved(request: &FacilitatorRequest) -> String {
    format!(
        "network `{}` is not served",
        request.payment_requirements.network()
    )
}

/// The backend a Solana network is served by, when served.
#[cfg(feature = "svm")]
type SolanaBackend = svm::SvmBackend;
/// Without the feature `svm` no Solana network is served.
#[cfg(not(feature = "svm"))]
type SolanaBackend = std::convert::Infallible;

impl LocalFacilitator {
    /// `None` for a request on a network that is not Solana's; for a Solana one, its backend
    /// when that network is served.
    fn solana(&self, request: &FacilitatorRequest) -> Option<Option<&SolanaBackend>> {
        let network = match &request.payment_requirements {
            Requirements::V2(r) => Network::from_caip2(&r.network),
            Requirements::V1(r) => Network::from_v1_name(&r.network),
        }?;
        if network.is_evm() {
            return None;
        }
        #[cfg(feature = "svm")]
        return Some(self.svm.get(&network.caip2));
        #[cfg(not(feature = "svm"))]
        Some(None)
    }

    /// Adds the Solana networks' kinds and fee payers (under `solana:*`) to `/supported`.
    #[cfg(feature = "svm")]
    fn solana_supported(
        &self,
        kinds: &mut Vec<SupportedKind>,
        signers: &mut serde_json::Map<String, Value>,
    ) {
        let mut backends: Vec<&svm::SvmBackend> = self.svm.values().collect();
        backends.sort_by_key(|b| &b.network().caip2);
        let mut fee_payers: Vec<Value> = Vec::new();
        for backend in backends {
            kinds.extend(backend.kinds());
            if let Some(address) = backend.fee_payer_address().map(Value::String)
                && !fee_payers.contains(&address)
            {
                fee_payers.push(address);
            }
        }
        if !fee_payers.is_empty() {
            signers.insert("solana:*".to_owned(), Value::Array(fee_payers));
        }
    }
}

/// Reads authorizations through the facilitator's own RPC connections (the last
/// [`DEFAULT_LOOKBACK_BLOCKS`](chain::DEFAULT_LOOKBACK_BLOCKS) blocks are searched for the
/// transaction of a used one). A network it does not serve, or serves without an RPC URL, is an
/// error.
impl ChainReader for LocalFacilitator {
    fn authorization<'a>(
        &'a self,
        authorization: &'a Authorization,
    ) -> BoxFuture<'a, Result<OnChain, ChainError>> {
        Box::pin(async move {
            let (network, chain_id) = Network::from_caip2(&authorization.network)
                .and_then(|n| Some((n.clone(), n.chain_id()?)))
                .ok_or_else(|| {
                    ChainError(format!(
                        "network `{}` is not a CAIP-2 EVM id (`eip155:<chain id>`)",
                        authorization.network
                    ))
                })?;
            let chain = self.chains.get(&chain_id).ok_or_else(|| {
                ChainError(format!(
                    "the local facilitator does not serve network {}",
                    network.caip2
                ))
            })?;
            let reader = chain
                .reader
                .as_ref()
                .ok_or_else(|| ChainError(format!("no RPC URL for network {}", network.caip2)))?;
            chain::read_authorization(
                reader,
                chain_id,
                authorization,
                chain::DEFAULT_LOOKBACK_BLOCKS,
            )
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";

    #[test]
    fn the_key_is_never_shown() {
        let env = |name: &str| match name {
            "X402_RPC_URL" => Some("http://127.0.0.1:9".to_owned()),
            "X402_FACILITATOR_KEY" => Some(KEY.to_owned()),
            _ => None,
        };
        let network = Network::from_caip2("eip155:84532").expect("network");
        let facilitator = LocalFacilitatorBuilder::from_lookup(std::slice::from_ref(&network), env)
            .build()
            .expect("facilitator");
        let shown = format!("{facilitator:?}");
        assert!(!shown.contains(&KEY[2..]), "{shown}");
        assert!(
            shown.contains("0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"),
            "{shown}"
        );

        let typo = format!("{}zz", &KEY[..KEY.len() - 2]);
        let error = LocalFacilitator::builder()
            .network("eip155:84532")
            .default_rpc_url("http://127.0.0.1:9")
            .default_signer_key(typo.clone())
            .build()
            .expect_err("bad key");
        assert!(!error.to_string().contains(&typo[2..20]), "{error}");
    }

    #[cfg(not(feature = "svm"))]
    #[test]
    fn solana_needs_the_svm_feature() {
        let error = LocalFacilitator::builder()
            .network(crate::network::SOLANA_DEVNET)
            .build()
            .expect_err("no Solana without the feature");
        assert!(error.to_string().contains("feature `svm`"), "{error}");
    }

    #[test]
    fn per_network_variables_win() {
        let env = |name: &str| match name {
            "X402_RPC_URL" => Some("http://127.0.0.1:9".to_owned()),
            "X402_RPC_URL_8453" => Some("http://127.0.0.1:10".to_owned()),
            "X402_FACILITATOR_KEY_8453" => Some(KEY.to_owned()),
            _ => None,
        };
        let networks = [
            Network::from_caip2("eip155:84532").expect("network"),
            Network::from_caip2("eip155:8453").expect("network"),
        ];
        let facilitator = LocalFacilitatorBuilder::from_lookup(&networks, env)
            .build()
            .expect("facilitator");
        let sepolia = &facilitator.chains[&84532];
        let base = &facilitator.chains[&8453];
        assert!(
            sepolia.reader.is_some() && sepolia.writer.is_none(),
            "no key for 84532: verify only"
        );
        assert!(base.writer.is_some(), "8453 has its own key");
    }
}
