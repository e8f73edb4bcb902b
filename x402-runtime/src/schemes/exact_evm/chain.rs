//! What the chain says about an EIP-3009 authorization: used (and by which transaction), unused,
//! or unused and past the point where it could still be used.
//!
//! A server whose settlement outcome is unknown (the facilitator did not answer, or answered
//! `settlement_pending`) can resolve it by reading the token contract (Circle's FiatToken)
//! through a [`ChainReader`]. The trait is always available; the RPC implementation,
//! `RpcChainReader`, is behind the `chain` feature, and `LocalFacilitator` (feature
//! `local-facilitator`) implements the trait with its own RPC connections.
//!
//! A Permit2 payment's key names [`PERMIT2`](crate::schemes::permit2::PERMIT2) as its asset: it is
//! read from Permit2's `nonceBitmap(owner, nonce >> 8)`, and its transaction is not searched
//! (Permit2 logs nothing that names the nonce).
//!
//! Every answer comes from one block: the latest block is read first, then
//! `authorizationState(from, nonce)` at that block's number, so "unused" and "the block's
//! timestamp is past `validBefore`" are facts about the same block.

use std::fmt;

use alloy_primitives::{Address, B256};

use crate::base::BoxFuture;

#[cfg(feature = "local-facilitator")]
pub(crate) use rpc::read_authorization;
#[cfg(feature = "chain")]
#[cfg_attr(docsrs, doc(cfg(feature = "chain")))]
pub use rpc::{
    DEFAULT_LOOKBACK_BLOCKS, NodeStatus, RpcChainReader, RpcChainReaderBuilder, TokenDomain,
};

/// One EIP-3009 authorization to look up.
#[derive(Clone, Debug)]
pub struct Authorization {
    /// CAIP-2 network id, e.g. "eip155:84532".
    pub network: String,
    /// The token contract.
    pub asset: Address,
    /// The payer: the authorization's `from`.
    pub from: Address,
    /// The authorization's `nonce`.
    pub nonce: B256,
    /// validBefore (unix seconds).
    pub valid_before: u64,
}

/// What the chain says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnChain {
    /// `authorizationState(from, nonce)` is true. `transaction`: the hash (0x + 64 lower-case
    /// hex) of the transaction whose `AuthorizationUsed(from, nonce)` log the token emitted, when
    /// found in the searched block range.
    ///
    /// `None` also when the log search failed (logged as a warning: the authorization is used
    /// either way), and for an authorization that was cancelled (`cancelAuthorization` marks it
    /// used without an `AuthorizationUsed` log).
    Used {
        /// The transaction that used the authorization, when found.
        transaction: Option<String>,
    },
    /// Unused, and the latest block's timestamp is at least `valid_before + EXPIRY_MARGIN`: no
    /// later block can include it (FiatToken requires block.timestamp < validBefore), so it can
    /// never be used.
    Expired,
    /// Unused and not provably dead yet.
    Unused,
}

/// Seconds past validBefore the chain's latest block must be before an unused authorization
/// counts as dead.
pub const EXPIRY_MARGIN: u64 = 30;

/// Why the chain could not be read (RPC down, unknown network, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainError(pub String);

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChainError {}

/// Reads EIP-3009 authorizations from a chain.
pub trait ChainReader: Send + Sync + 'static {
    /// What the chain says about `authorization` now. An error means the chain could not be
    /// read; it says nothing about the authorization.
    fn authorization<'a>(
        &'a self,
        authorization: &'a Authorization,
    ) -> BoxFuture<'a, Result<OnChain, ChainError>>;
}

#[cfg(feature = "chain")]
mod rpc {
    use std::collections::HashMap;
    use std::fmt;

    use alloy::eips::{BlockId, BlockNumberOrTag};
    use alloy::providers::{DynProvider, Provider, ProviderBuilder};
    use alloy::rpc::types::Filter;
    use alloy::sol_types::SolEvent;
    use alloy_primitives::{Address, B256, U256};
    use futures_util::future::try_join;

    use super::{Authorization, BoxFuture, ChainError, ChainReader, EXPIRY_MARGIN, OnChain};
    use crate::base::ConfigError;
    use crate::network::Network;
    use crate::schemes::permit2::PERMIT2;

    /// How many blocks back from the latest block [`RpcChainReader`] searches for the
    /// `AuthorizationUsed` log by default.
    pub const DEFAULT_LOOKBACK_BLOCKS: u64 = 10_000;
    /// The longest block range of one `eth_getLogs` request (public RPCs refuse long ones).
    const LOG_CHUNK_BLOCKS: u64 = 2_000;

    /// Whether an unused authorization is dead at a block with this timestamp.
    pub(super) fn expired_at(block_timestamp: u64, valid_before: u64) -> bool {
        block_timestamp >= valid_before.saturating_add(EXPIRY_MARGIN)
    }

    /// The inclusive block ranges, newest first, covering the `lookback` blocks that end at
    /// `latest`, each at most `chunk` blocks long.
    pub(super) fn block_ranges(
        latest: u64,
        lookback: u64,
        chunk: u64,
    ) -> impl Iterator<Item = (u64, u64)> {
        let chunk = chunk.max(1);
        let oldest = latest.saturating_sub(lookback.saturating_sub(1));
        let mut next = (lookback > 0).then_some(latest);
        std::iter::from_fn(move || {
            let high = next?;
            let low = high.saturating_sub(chunk - 1).max(oldest);
            next = (low > oldest).then(|| low - 1);
            Some((low, high))
        })
    }

    mod contracts {
        alloy::sol! {
            /// The parts of an EIP-3009 token (Circle's FiatToken) the chain reader uses.
            #[sol(rpc)]
            interface IEip3009State {
                function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
                event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
            }

            /// How a token tells its EIP-712 domain: ERC-5267's `eip712Domain()`, or (FiatToken)
            /// `name()`, `version()` and `DOMAIN_SEPARATOR()`.
            #[sol(rpc)]
            interface IEip712Token {
                function eip712Domain() external view returns (bytes1 fields, string name, string version, uint256 chainId, address verifyingContract, bytes32 salt, uint256[] extensions);
                function name() external view returns (string);
                function version() external view returns (string);
                function DOMAIN_SEPARATOR() external view returns (bytes32);
            }

            /// Permit2's unordered nonces: one bitmap word per owner and `nonce >> 8`.
            #[sol(rpc)]
            interface IPermit2Nonces {
                function nonceBitmap(address owner, uint256 wordPos) external view returns (uint256);
            }
        }
    }

    use contracts::{IEip712Token, IEip3009State, IPermit2Nonces};

    /// What a node says about itself: the chain it serves and its latest block.
    #[derive(Clone, Debug, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct NodeStatus {
        /// The chain it serves (`eth_chainId`).
        pub chain_id: u64,
        /// Its latest block's number.
        pub block_number: u64,
        /// Its latest block's timestamp (unix seconds).
        pub block_timestamp: u64,
    }

    /// A token's EIP-712 domain as its contract tells it: what the offer's `extra.name` and
    /// `extra.version` must say for payments to it to verify.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct TokenDomain {
        /// The domain's `name`.
        pub name: String,
        /// The domain's `version`.
        pub version: String,
        /// Whether it was read from `eip712Domain()` (ERC-5267); otherwise from `name()` and
        /// `version()`.
        pub erc5267: bool,
        /// `DOMAIN_SEPARATOR()`, when the token has it: compare it with
        /// [`eip3009::domain`](crate::schemes::exact_evm::eip3009::domain)`(…).separator()`.
        pub separator: Option<B256>,
    }

    /// Reads `authorization` through `provider`, a node of chain `chain_id`: the latest block,
    /// then `authorizationState` at that block, then, if used, the `AuthorizationUsed` log in
    /// the `lookback` blocks ending at it.
    pub(crate) async fn read_authorization(
        provider: &DynProvider,
        chain_id: u64,
        authorization: &Authorization,
        lookback: u64,
    ) -> Result<OnChain, ChainError> {
        let fault = |what: &str, e: &dyn fmt::Display| {
            ChainError(format!("{}: {what} failed: {e}", authorization.network))
        };
        let (served, block) = try_join(
            provider.get_chain_id(),
            provider
                .get_block_by_number(BlockNumberOrTag::Latest)
                .into_future(),
        )
        .await
        .map_err(|e| fault("reading the latest block", &e))?;
        if served != chain_id {
            return Err(ChainError(format!(
                "the RPC for {} serves chain {served}, not {chain_id}",
                authorization.network
            )));
        }
        let block = block.ok_or_else(|| fault("reading the latest block", &"no block"))?;
        let (number, timestamp) = (block.header.number, block.header.timestamp);
        let at = BlockId::number(number);
        let used = if authorization.asset == PERMIT2 {
            let nonce = U256::from_be_bytes(authorization.nonce.0);
            let word = IPermit2Nonces::new(PERMIT2, provider)
                .nonceBitmap(authorization.from, nonce >> 8)
                .block(at)
                .call()
                .await
                .map_err(|e| fault("nonceBitmap", &e))?;
            word.bit((nonce & U256::from(0xff)).to::<usize>())
        } else {
            IEip3009State::new(authorization.asset, provider)
                .authorizationState(authorization.from, authorization.nonce)
                .block(at)
                .call()
                .await
                .map_err(|e| fault("authorizationState", &e))?
        };
        if !used {
            return Ok(if expired_at(timestamp, authorization.valid_before) {
                OnChain::Expired
            } else {
                OnChain::Unused
            });
        }
        // Permit2 logs nothing that names a nonce: a used permit's transaction is not searched.
        if authorization.asset == PERMIT2 {
            return Ok(OnChain::Used { transaction: None });
        }
        let transaction = match find_use(provider, authorization, number, lookback).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(
                    network = %authorization.network,
                    "x402 chain reader: the AuthorizationUsed log search failed: {e}"
                );
                None
            }
        };
        Ok(OnChain::Used { transaction })
    }

    /// The transaction of the `AuthorizationUsed(from, nonce)` log the asset emitted in the
    /// `lookback` blocks ending at `latest`, searched newest first.
    async fn find_use(
        provider: &DynProvider,
        authorization: &Authorization,
        latest: u64,
        lookback: u64,
    ) -> Result<Option<String>, alloy::transports::TransportError> {
        let filter = Filter::new()
            .address(authorization.asset)
            .event_signature(IEip3009State::AuthorizationUsed::SIGNATURE_HASH)
            .topic1(authorization.from.into_word())
            .topic2(authorization.nonce);
        for (low, high) in block_ranges(latest, lookback, LOG_CHUNK_BLOCKS) {
            let logs = provider
                .get_logs(&filter.clone().from_block(low).to_block(high))
                .await?;
            let found = logs.iter().rev().find_map(|log| {
                let event = log.log_decode::<IEip3009State::AuthorizationUsed>().ok()?;
                let used = &event.inner.data;
                let matches = !log.removed
                    && log.address() == authorization.asset
                    && used.authorizer == authorization.from
                    && used.nonce == authorization.nonce;
                matches.then_some(log.transaction_hash).flatten()
            });
            if let Some(hash) = found {
                return Ok(Some(hash.to_string()));
            }
        }
        Ok(None)
    }

    /// A [`ChainReader`] over JSON-RPC: one HTTP provider per network, and optionally one for
    /// every other network.
    ///
    /// Each read checks that the node serves the authorization's chain (`eth_chainId`), so a
    /// URL for the wrong chain is an error, never an answer about another chain.
    ///
    /// ```no_run
    /// use x402_runtime::schemes::exact_evm::chain::{Authorization, ChainReader, OnChain, RpcChainReader};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let reader = RpcChainReader::builder()
    ///     .rpc_url("eip155:84532", "https://sepolia.base.org")
    ///     .lookback_blocks(5_000)
    ///     .build()?;
    /// let authorization = Authorization {
    ///     network: "eip155:84532".to_owned(),
    ///     asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".parse()?,
    ///     from: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".parse()?,
    ///     nonce: "0x0101010101010101010101010101010101010101010101010101010101010101".parse()?,
    ///     valid_before: 1_900_000_000,
    /// };
    /// match reader.authorization(&authorization).await? {
    ///     OnChain::Used { transaction } => println!("paid in {transaction:?}"),
    ///     OnChain::Expired => println!("never paid, and never will be"),
    ///     OnChain::Unused => println!("not paid yet"),
    /// }
    /// # Ok(()) }
    /// ```
    pub struct RpcChainReader {
        nodes: HashMap<u64, DynProvider>,
        default: Option<DynProvider>,
        lookback: u64,
    }

    impl fmt::Debug for RpcChainReader {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            // URLs are not shown: they often carry an API key.
            let mut chains: Vec<u64> = self.nodes.keys().copied().collect();
            chains.sort_unstable();
            f.debug_struct("RpcChainReader")
                .field("chains", &chains)
                .field("default", &self.default.is_some())
                .field("lookback", &self.lookback)
                .finish()
        }
    }

    /// Builds an [`RpcChainReader`].
    #[derive(Default)]
    #[must_use]
    pub struct RpcChainReaderBuilder {
        rpc: Vec<(String, String)>,
        default_rpc: Option<String>,
        lookback: Option<u64>,
    }

    impl fmt::Debug for RpcChainReaderBuilder {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let networks: Vec<&str> = self.rpc.iter().map(|(n, _)| n.as_str()).collect();
            f.debug_struct("RpcChainReaderBuilder")
                .field("networks", &networks)
                .field("default", &self.default_rpc.is_some())
                .field("lookback", &self.lookback)
                .finish()
        }
    }

    impl RpcChainReaderBuilder {
        /// The RPC URL for one network (CAIP-2, e.g. `eip155:84532`); a later call for the same
        /// network replaces it.
        pub fn rpc_url(mut self, caip2: impl Into<String>, url: impl Into<String>) -> Self {
            self.rpc.push((caip2.into(), url.into()));
            self
        }

        /// The RPC URL for every network without its own (it only answers for the chain that
        /// node serves).
        pub fn default_rpc_url(mut self, url: impl Into<String>) -> Self {
            self.default_rpc = Some(url.into());
            self
        }

        /// How many blocks, ending at the latest, to search for the transaction of a used
        /// authorization (default [`DEFAULT_LOOKBACK_BLOCKS`]; 0 never searches). Searched in
        /// requests of at most 2,000 blocks.
        pub fn lookback_blocks(mut self, blocks: u64) -> Self {
            self.lookback = Some(blocks);
            self
        }

        /// Builds the reader: checks every network id and URL (no request is sent).
        pub fn build(self) -> Result<RpcChainReader, ConfigError> {
            if self.rpc.is_empty() && self.default_rpc.is_none() {
                return Err(ConfigError::new(
                    "the chain reader has no RPC URL: call .rpc_url(\"eip155:…\", url) or .default_rpc_url(url)",
                ));
            }
            let mut nodes = HashMap::new();
            for (caip2, url) in &self.rpc {
                let chain_id = Network::from_caip2(caip2)
                    .and_then(|n| n.chain_id())
                    .ok_or_else(|| {
                        ConfigError::new(format!(
                            "network `{caip2}` is not a CAIP-2 EVM id (`eip155:<chain id>`)"
                        ))
                    })?;
                nodes.insert(chain_id, connect(url)?);
            }
            let default = self.default_rpc.as_deref().map(connect).transpose()?;
            Ok(RpcChainReader {
                nodes,
                default,
                lookback: self.lookback.unwrap_or(DEFAULT_LOOKBACK_BLOCKS),
            })
        }
    }

    fn connect(url: &str) -> Result<DynProvider, ConfigError> {
        let parsed = url.trim().parse().map_err(|_| {
            ConfigError::new(format!("RPC URL `{}` is not a valid URL", url.trim()))
        })?;
        Ok(ProviderBuilder::new().connect_http(parsed).erased())
    }

    impl RpcChainReader {
        /// Starts a reader.
        pub fn builder() -> RpcChainReaderBuilder {
            RpcChainReaderBuilder::default()
        }

        /// A reader for `networks` configured from the environment like
        /// `LocalFacilitator::from_env`: `X402_RPC_URL_<chain id>` for one network, else
        /// `X402_RPC_URL`. Empty variables count as unset. `None` when no network has a URL.
        pub fn from_env(networks: &[Network]) -> Result<Option<RpcChainReader>, ConfigError> {
            Self::from_lookup(networks, |name| std::env::var(name).ok())
        }

        /// The variable [`from_lookup`](Self::from_lookup) takes `network`'s RPC URL from, and
        /// the URL (trimmed): `X402_RPC_URL_<chain id>`, else `X402_RPC_URL`; `None` when
        /// neither is set (empty counts as unset), and for a network that is not an EVM one.
        pub fn url_variable(
            network: &Network,
            lookup: impl Fn(&str) -> Option<String>,
        ) -> Option<(String, String)> {
            let own = format!("X402_RPC_URL_{}", network.chain_id()?);
            [own, "X402_RPC_URL".to_owned()]
                .into_iter()
                .find_map(|name| {
                    let url = lookup(&name)?.trim().to_owned();
                    (!url.is_empty()).then_some((name, url))
                })
        }

        /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
        pub fn from_lookup(
            networks: &[Network],
            lookup: impl Fn(&str) -> Option<String>,
        ) -> Result<Option<RpcChainReader>, ConfigError> {
            let mut builder = RpcChainReader::builder();
            let mut any = false;
            for network in networks {
                if let Some((_, url)) = Self::url_variable(network, &lookup) {
                    builder = builder.rpc_url(network.caip2.clone(), url);
                    any = true;
                }
            }
            if any {
                builder.build().map(Some)
            } else {
                Ok(None)
            }
        }

        /// Whether the reader has an RPC URL for `network` (its own, or the default); never for
        /// a network that is not an EVM one.
        pub fn serves(&self, network: &Network) -> bool {
            network
                .chain_id()
                .is_some_and(|id| self.nodes.contains_key(&id) || self.default.is_some())
        }

        fn node(&self, network: &Network) -> Result<&DynProvider, ChainError> {
            let chain_id = network
                .chain_id()
                .ok_or_else(|| ChainError(format!("{} is not an EVM network", network.caip2)))?;
            self.nodes
                .get(&chain_id)
                .or(self.default.as_ref())
                .ok_or_else(|| ChainError(format!("no RPC URL for network {}", network.caip2)))
        }

        /// The chain `network`'s node serves and its latest block. Not bounded in time: wrap
        /// it in a timeout.
        pub async fn node_status(&self, network: &Network) -> Result<NodeStatus, ChainError> {
            let provider = self.node(network)?;
            let fault = |what: &str, e: &dyn fmt::Display| {
                ChainError(format!("{}: {what} failed: {e}", network.caip2))
            };
            let chain_id = provider
                .get_chain_id()
                .await
                .map_err(|e| fault("eth_chainId", &e))?;
            let block = provider
                .get_block_by_number(BlockNumberOrTag::Latest)
                .await
                .map_err(|e| fault("reading the latest block", &e))?
                .ok_or_else(|| fault("reading the latest block", &"no block"))?;
            Ok(NodeStatus {
                chain_id,
                block_number: block.header.number,
                block_timestamp: block.header.timestamp,
            })
        }

        /// Whether `address` has code on `network` (a token or a contract a scheme settles
        /// through, such as Permit2).
        pub async fn has_code(
            &self,
            network: &Network,
            address: Address,
        ) -> Result<bool, ChainError> {
            let code = self
                .node(network)?
                .get_code_at(address)
                .await
                .map_err(|e| {
                    ChainError(format!(
                        "{}: eth_getCode of {address} failed: {e}",
                        network.caip2
                    ))
                })?;
            Ok(!code.is_empty())
        }

        /// The EIP-712 domain of the token at `token` on `network`, read from
        /// `eip712Domain()` (ERC-5267) or else `name()` and `version()`, with
        /// `DOMAIN_SEPARATOR()` when it has one; `None` when no contract is deployed there.
        /// Reads whatever chain the node serves: check [`node_status`](Self::node_status)
        /// first. Not bounded in time: wrap it in a timeout.
        pub async fn token_domain(
            &self,
            network: &Network,
            token: Address,
        ) -> Result<Option<TokenDomain>, ChainError> {
            let provider = self.node(network)?;
            let fault = |what: &str, e: &dyn fmt::Display| {
                ChainError(format!(
                    "{} token {token}: {what} failed: {e}",
                    network.caip2
                ))
            };
            let code = provider
                .get_code_at(token)
                .await
                .map_err(|e| fault("eth_getCode", &e))?;
            if code.is_empty() {
                return Ok(None);
            }
            let contract = IEip712Token::new(token, provider);
            let separator = contract.DOMAIN_SEPARATOR().call().await.ok();
            if let Ok(domain) = contract.eip712Domain().call().await {
                return Ok(Some(TokenDomain {
                    name: domain.name,
                    version: domain.version,
                    erc5267: true,
                    separator,
                }));
            }
            let name = contract
                .name()
                .call()
                .await
                .map_err(|e| fault("name()", &e))?;
            let version = contract
                .version()
                .call()
                .await
                .map_err(|e| fault("version()", &e))?;
            Ok(Some(TokenDomain {
                name,
                version,
                erc5267: false,
                separator,
            }))
        }

        async fn read(&self, authorization: &Authorization) -> Result<OnChain, ChainError> {
            let (network, chain_id) = Network::from_caip2(&authorization.network)
                .and_then(|n| Some((n.clone(), n.chain_id()?)))
                .ok_or_else(|| {
                    ChainError(format!(
                        "network `{}` is not a CAIP-2 EVM id (`eip155:<chain id>`)",
                        authorization.network
                    ))
                })?;
            let provider = self.node(&network)?;
            read_authorization(provider, chain_id, authorization, self.lookback).await
        }
    }

    impl ChainReader for RpcChainReader {
        fn authorization<'a>(
            &'a self,
            authorization: &'a Authorization,
        ) -> BoxFuture<'a, Result<OnChain, ChainError>> {
            Box::pin(self.read(authorization))
        }
    }
}

#[cfg(all(test, feature = "chain"))]
mod tests {
    use super::rpc::{block_ranges, expired_at};
    use super::*;
    use crate::network::Network;

    #[test]
    fn block_ranges_cover_the_lookback_newest_first_in_chunks() {
        let ranges: Vec<_> = block_ranges(10_000, 10_000, 2_000).collect();
        assert_eq!(
            ranges,
            [
                (8_001, 10_000),
                (6_001, 8_000),
                (4_001, 6_000),
                (2_001, 4_000),
                (1, 2_000)
            ]
        );
        let ranges: Vec<_> = block_ranges(2_500, 10_000, 2_000).collect();
        assert_eq!(ranges, [(501, 2_500), (0, 500)]);
        let ranges: Vec<_> = block_ranges(7, 3, 2_000).collect();
        assert_eq!(ranges, [(5, 7)]);
        assert_eq!(block_ranges(0, 10, 2_000).collect::<Vec<_>>(), [(0, 0)]);
        assert_eq!(block_ranges(100, 0, 2_000).count(), 0);
        assert_eq!(
            block_ranges(u64::MAX, 1, 2_000).collect::<Vec<_>>(),
            [(u64::MAX, u64::MAX)]
        );
    }

    #[test]
    fn an_authorization_is_dead_from_valid_before_plus_the_margin() {
        assert!(!expired_at(1_000, 1_000));
        assert!(!expired_at(1_000 + EXPIRY_MARGIN - 1, 1_000));
        assert!(expired_at(1_000 + EXPIRY_MARGIN, 1_000));
        assert!(!expired_at(u64::MAX - 1, u64::MAX));
    }

    fn networks() -> [Network; 2] {
        [
            Network::from_caip2("eip155:84532").expect("network"),
            Network::from_caip2("eip155:8453").expect("network"),
        ]
    }

    #[test]
    fn no_url_for_any_network_is_none() {
        let none = RpcChainReader::from_lookup(&networks(), |_| None).expect("config");
        assert!(none.is_none());
        let empty =
            RpcChainReader::from_lookup(&networks(), |_| Some("  ".to_owned())).expect("config");
        assert!(empty.is_none());
        let no_networks =
            RpcChainReader::from_lookup(&[], |_| Some("http://127.0.0.1:9".to_owned()))
                .expect("config");
        assert!(no_networks.is_none());
    }

    #[test]
    fn per_network_variables_win() {
        // The per-chain URL is the one used: a bad one fails although X402_RPC_URL is good.
        let env = |name: &str| match name {
            "X402_RPC_URL" => Some("http://127.0.0.1:9".to_owned()),
            "X402_RPC_URL_8453" => Some("not a url".to_owned()),
            _ => None,
        };
        let error = RpcChainReader::from_lookup(&networks(), env).expect_err("bad URL");
        assert_eq!(error.to_string(), "RPC URL `not a url` is not a valid URL");
        let env = |name: &str| match name {
            "X402_RPC_URL" => Some("not a url".to_owned()),
            "X402_RPC_URL_8453" => Some("http://127.0.0.1:9".to_owned()),
            _ => None,
        };
        let reader = RpcChainReader::from_lookup(&networks()[1..], env)
            .expect("config")
            .expect("reader");
        assert_eq!(
            format!("{reader:?}"),
            "RpcChainReader { chains: [8453], default: false, lookback: 10000 }"
        );
    }

    #[test]
    fn build_checks_networks_and_urls() {
        let error = RpcChainReader::builder().build().expect_err("no URL");
        assert!(error.to_string().contains("no RPC URL"), "{error}");
        let error = RpcChainReader::builder()
            .rpc_url("base-sepolia", "http://127.0.0.1:9")
            .build()
            .expect_err("v1 name");
        assert!(error.to_string().contains("`base-sepolia`"), "{error}");
        let error = RpcChainReader::builder()
            .default_rpc_url("127.0.0.1 9")
            .build()
            .expect_err("bad URL");
        assert!(error.to_string().contains("`127.0.0.1 9`"), "{error}");
    }

    #[tokio::test]
    async fn a_network_without_a_url_is_an_error_naming_it() {
        let reader = RpcChainReader::builder()
            .rpc_url("eip155:8453", "http://127.0.0.1:9")
            .build()
            .expect("reader");
        let authorization = Authorization {
            network: "eip155:84532".to_owned(),
            asset: Address::ZERO,
            from: Address::ZERO,
            nonce: B256::ZERO,
            valid_before: 0,
        };
        let error = reader
            .authorization(&authorization)
            .await
            .expect_err("no URL");
        assert_eq!(
            error,
            ChainError("no RPC URL for network eip155:84532".to_owned())
        );
        let odd = Authorization {
            network: "base-sepolia".to_owned(),
            ..authorization
        };
        let error = reader.authorization(&odd).await.expect_err("not CAIP-2");
        assert!(error.0.contains("`base-sepolia`"), "{error}");
    }
}
