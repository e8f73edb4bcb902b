//! Networks (EVM chains and Solana clusters), their accounts, and the stablecoins `#[paid]`
//! prices resolve to.
//!
//! Networks are named by CAIP-2 id (`eip155:<chain id>`, `solana:<genesis hash prefix>`) in x402
//! v2 and by a short name (`base-sepolia`, `solana-devnet`) in v1. The built-in asset table holds
//! Circle's USDC and EURC deployments: on EVM with the EIP-712 domain name and version their
//! `transferWithAuthorization` signatures use, on Solana the USDC mints. This build's schemes
//! pay on EVM networks only; Solana networks are known (named, with their USDC) so that accounts,
//! offers and records can speak of them.

use alloy_primitives::{Address, address};

use crate::price::{Currency, Token};

mod account;

pub use account::{AccountId, AccountParseError, SvmAddress};

/// The one `'static` copy of a configured ticker: each distinct ticker is leaked once, so a
/// [`Currency::Token`] built at startup is as cheap to copy as a built-in one.
fn intern(symbol: &str) -> &'static str {
    static TICKERS: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut tickers = TICKERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(found) = tickers.iter().find(|t| **t == symbol) {
        return found;
    }
    let leaked: &'static str = Box::leak(symbol.to_owned().into_boxed_str());
    tickers.push(leaked);
    leaked
}

/// A network payments can name: an EVM chain or a Solana cluster.
///
/// ```
/// use x402_runtime::network::{Family, Network};
///
/// let base = Network::from_caip2("eip155:8453").unwrap();
/// assert_eq!(base.chain_id(), Some(8453));
/// let devnet = Network::from_v1_name("solana-devnet").unwrap();
/// assert_eq!(devnet.caip2, "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1");
/// assert_eq!((devnet.family, devnet.chain_id()), (Family::Svm, None));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Network {
    /// CAIP-2 identifier, for example `eip155:84532`.
    pub caip2: String,
    /// The x402 v1 network name, when v1 has one.
    pub v1_name: Option<&'static str>,
    /// Which kind of chain it is.
    pub family: Family,
}

/// The kind of chain a network is, which decides its accounts and the schemes that can pay on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// An EVM chain.
    Evm {
        /// Its EIP-155 chain id.
        chain_id: u64,
    },
    /// A Solana (SVM) cluster.
    Svm,
}

/// CAIP-2 id of Solana mainnet.
pub const SOLANA_MAINNET: &str = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp";
/// CAIP-2 id of Solana devnet.
pub const SOLANA_DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";

/// The Solana clusters this crate knows: CAIP-2 id and x402 v1 name.
const SOLANA_NETWORKS: &[(&str, &str)] =
    &[(SOLANA_MAINNET, "solana"), (SOLANA_DEVNET, "solana-devnet")];

/// x402 v1 network names and their chain ids.
const V1_NAMES: &[(u64, &str)] = &[
    (1, "ethereum"),
    (11155111, "sepolia"),
    (8453, "base"),
    (84532, "base-sepolia"),
    (43114, "avalanche"),
    (43113, "avalanche-fuji"),
    (137, "polygon"),
    (80002, "polygon-amoy"),
    (2741, "abstract"),
    (11124, "abstract-testnet"),
    (4689, "iotex"),
    (1329, "sei"),
    (1328, "sei-testnet"),
    (3338, "peaq"),
    (1514, "story"),
    (41923, "educhain"),
    (324705682, "skale-base-sepolia"),
    (4326, "megaeth"),
    (143, "monad"),
    (988, "stable"),
    (2201, "stable-testnet"),
    (42220, "celo"),
    (14, "flare"),
];

impl Network {
    /// The EVM network with this chain id (any id: local chains work too).
    pub fn from_chain_id(chain_id: u64) -> Network {
        Network {
            caip2: format!("eip155:{chain_id}"),
            v1_name: V1_NAMES
                .iter()
                .find(|(id, _)| *id == chain_id)
                .map(|(_, name)| *name),
            family: Family::Evm { chain_id },
        }
    }

    /// Parses a CAIP-2 id, strictly: `eip155:` then a decimal chain id without leading zeros, or
    /// the id of Solana mainnet or devnet ([`SOLANA_MAINNET`], [`SOLANA_DEVNET`]).
    pub fn from_caip2(caip2: &str) -> Option<Network> {
        if let Some(&(id, name)) = SOLANA_NETWORKS.iter().find(|(id, _)| *id == caip2) {
            return Some(Network::solana(id, name));
        }
        let id = caip2.strip_prefix("eip155:")?;
        if id.is_empty() || id.starts_with('0') || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        id.parse().ok().map(Network::from_chain_id)
    }

    /// Finds a network by its x402 v1 name.
    pub fn from_v1_name(name: &str) -> Option<Network> {
        if let Some(&(id, name)) = SOLANA_NETWORKS.iter().find(|(_, n)| *n == name) {
            return Some(Network::solana(id, name));
        }
        V1_NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(id, _)| Network::from_chain_id(*id))
    }

    fn solana(caip2: &str, v1_name: &'static str) -> Network {
        Network {
            caip2: caip2.to_owned(),
            v1_name: Some(v1_name),
            family: Family::Svm,
        }
    }

    /// The EIP-155 chain id of an EVM network; `None` for another family.
    pub const fn chain_id(&self) -> Option<u64> {
        match self.family {
            Family::Evm { chain_id } => Some(chain_id),
            Family::Svm => None,
        }
    }

    /// Whether this is an EVM network.
    pub const fn is_evm(&self) -> bool {
        matches!(self.family, Family::Evm { .. })
    }
}

/// A token a route can be paid in, on one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asset {
    /// The currency the token represents.
    pub currency: Currency,
    /// CAIP-2 id of the network the token lives on.
    pub network: String,
    /// The token: its contract on EVM, its mint on Solana.
    pub address: AccountId,
    /// EIP-712 domain `name` (the token's `name()`, e.g. `"USDC"` or `"USD Coin"`); on Solana,
    /// the currency's ticker (unused).
    pub eip712_name: String,
    /// EIP-712 domain `version` (`"2"` for Circle's FiatToken); unused on Solana.
    pub eip712_version: String,
    /// Token decimals.
    pub decimals: u8,
    /// How a payer's signature moves the token: EIP-3009 for tokens that have
    /// `transferWithAuthorization`, Permit2 for any other ERC-20.
    pub transfer: TransferMethod,
}

/// How the `exact` scheme moves a token (the offer's `extra.assetTransferMethod`).
///
/// ```
/// use x402_runtime::network::TransferMethod;
///
/// assert_eq!(TransferMethod::default(), TransferMethod::Eip3009);
/// assert_eq!(TransferMethod::Permit2.wire_name(), "permit2");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TransferMethod {
    /// The token's own `transferWithAuthorization` (USDC, EURC): nothing to approve first.
    #[default]
    Eip3009,
    /// Uniswap's Permit2 through the x402 Permit2 proxy: any ERC-20 the payer has approved
    /// Permit2 for.
    Permit2,
}

impl TransferMethod {
    /// The name in `extra.assetTransferMethod`.
    pub const fn wire_name(self) -> &'static str {
        match self {
            TransferMethod::Eip3009 => "eip3009",
            TransferMethod::Permit2 => "permit2",
        }
    }
}

struct BuiltinAsset {
    /// CAIP-2 id of the network.
    network: &'static str,
    currency: Currency,
    address: AccountId,
    name: &'static str,
}

/// A built-in EVM deployment.
const fn evm(
    network: &'static str,
    currency: Currency,
    address: Address,
    name: &'static str,
) -> BuiltinAsset {
    BuiltinAsset {
        network,
        currency,
        address: AccountId::Evm(address),
        name,
    }
}

const BUILTIN_ASSETS: &[BuiltinAsset] = &[
    BuiltinAsset {
        network: SOLANA_MAINNET,
        currency: Currency::Usdc,
        address: AccountId::Svm(SvmAddress::from_base58_const(
            "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        )),
        name: "USDC",
    },
    BuiltinAsset {
        network: SOLANA_DEVNET,
        currency: Currency::Usdc,
        address: AccountId::Svm(SvmAddress::from_base58_const(
            "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
        )),
        name: "USDC",
    },
    evm(
        "eip155:8453",
        Currency::Usdc,
        address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
        "USD Coin",
    ),
    evm(
        "eip155:84532",
        Currency::Usdc,
        address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
        "USDC",
    ),
    evm(
        "eip155:1",
        Currency::Usdc,
        address!("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"),
        "USD Coin",
    ),
    evm(
        "eip155:43114",
        Currency::Usdc,
        address!("0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E"),
        "USD Coin",
    ),
    evm(
        "eip155:43113",
        Currency::Usdc,
        address!("0x5425890298aed601595a70AB815c96711a31Bc65"),
        "USD Coin",
    ),
    evm(
        "eip155:137",
        Currency::Usdc,
        address!("0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359"),
        "USD Coin",
    ),
    evm(
        "eip155:80002",
        Currency::Usdc,
        address!("0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582"),
        "USDC",
    ),
    evm(
        "eip155:42161",
        Currency::Usdc,
        address!("0xaf88d065e77c8cC2239327C5EDb3A432268e5831"),
        "USD Coin",
    ),
    evm(
        "eip155:421614",
        Currency::Usdc,
        address!("0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d"),
        "USD Coin",
    ),
    evm(
        "eip155:143",
        Currency::Usdc,
        address!("0x754704Bc059F8C67012fEd69BC8A327a5aafb603"),
        "USDC",
    ),
    evm(
        "eip155:10143",
        Currency::Usdc,
        address!("0x534b2f3A21130d7a60830c2Df862319e593943A3"),
        "USDC",
    ),
    evm(
        "eip155:1329",
        Currency::Usdc,
        address!("0xe15fC38F6D8c56aF07bbCBe3BAf5708A2Bf42392"),
        "USDC",
    ),
    evm(
        "eip155:1328",
        Currency::Usdc,
        address!("0x4fCF1784B31630811181f670Aea7A7bEF803eaED"),
        "USDC",
    ),
    evm(
        "eip155:42220",
        Currency::Usdc,
        address!("0xcebA9300f2b948710d2653dD7B07f33A8B32118C"),
        "USDC",
    ),
    evm(
        "eip155:11142220",
        Currency::Usdc,
        address!("0x01C5C0122039549AD1493B8220cABEdD739BC44E"),
        "USDC",
    ),
    evm(
        "eip155:1",
        Currency::Eurc,
        address!("0x1aBaEA1f7C830bD89Acc67eC4af516284b1bC33c"),
        "EURC",
    ),
    evm(
        "eip155:8453",
        Currency::Eurc,
        address!("0x60a3E35Cc302bFA44Cb288Bc5a4F316Fdb1adb42"),
        "EURC",
    ),
    evm(
        "eip155:43114",
        Currency::Eurc,
        address!("0xC891EB4cbdEFf6e073e859e987815Ed1505c2ACD"),
        "EURC",
    ),
    evm(
        "eip155:84532",
        Currency::Eurc,
        address!("0x808456652fdb597867f38412077A9182bf77359F"),
        "EURC",
    ),
    evm(
        "eip155:11155111",
        Currency::Eurc,
        address!("0x08210F9170F89Ab7658F0B5E3fF39b0E03C594D4"),
        "EURC",
    ),
];

impl Asset {
    /// The built-in deployment of `currency` on `network`, if there is one.
    pub fn builtin(network: &Network, currency: Currency) -> Option<Asset> {
        BUILTIN_ASSETS
            .iter()
            .find(|a| a.network == network.caip2 && a.currency == currency)
            .map(|a| Asset {
                currency,
                network: network.caip2.clone(),
                address: a.address,
                eip712_name: a.name.to_owned(),
                eip712_version: if network.is_evm() { "2" } else { "" }.to_owned(),
                decimals: currency.decimals(),
                transfer: TransferMethod::Eip3009,
            })
    }

    /// The built-in asset deployed at `address` on `network`, if there is one.
    pub fn find(network: &Network, address: AccountId) -> Option<Asset> {
        BUILTIN_ASSETS
            .iter()
            .find(|a| a.network == network.caip2 && a.address == address)
            .and_then(|a| Asset::builtin(network, a.currency))
    }

    /// Any ERC-20 paid through Permit2: `symbol` with `decimals` at `address` on `network`
    /// (CAIP-2). `USDC` and `EURC` stay those currencies (taken through Permit2 at this
    /// address); any other ticker is a [`Currency::Token`]. Permit2 does not use the token's
    /// EIP-712 domain: the offer's `extra.name` is the ticker and `extra.version` `"1"`.
    ///
    /// ```
    /// use x402_runtime::network::{Asset, TransferMethod};
    /// use x402_runtime::{Currency, Token};
    ///
    /// let usdt = Asset::erc20(
    ///     "eip155:1",
    ///     "0xdAC17F958D2ee523a2206206994597C13D831ec7".parse().unwrap(),
    ///     "USDT",
    ///     6,
    /// );
    /// assert_eq!(usdt.currency, Currency::Token(Token::new("USDT", 6)));
    /// assert_eq!(usdt.transfer, TransferMethod::Permit2);
    /// ```
    pub fn erc20(network: &str, address: Address, symbol: &str, decimals: u8) -> Asset {
        let currency = Currency::from_symbol(symbol)
            .filter(|c| c.decimals() == decimals)
            .unwrap_or_else(|| Currency::Token(Token::new(intern(symbol), decimals)));
        Asset {
            currency,
            network: network.to_owned(),
            address: AccountId::Evm(address),
            eip712_name: symbol.to_owned(),
            eip712_version: "1".to_owned(),
            decimals,
            transfer: TransferMethod::Permit2,
        }
    }

    /// The same token with its EIP-712 domain `name` and `version` (an EIP-2612 token's: the
    /// payer's `permit` of it to Permit2, sent when it has not approved Permit2, is signed under
    /// that domain and the offer's `extra` carries it).
    ///
    /// ```
    /// use x402_runtime::network::Asset;
    ///
    /// let token = "0x6c3ea9036406852006290770BEdFcAbA0e23A0e8".parse().unwrap();
    /// let pyusd = Asset::erc20("eip155:1", token, "PYUSD", 6).with_eip712("PayPal USD", "1");
    /// assert_eq!(pyusd.eip712_name, "PayPal USD");
    /// ```
    #[must_use]
    pub fn with_eip712(mut self, name: &str, version: &str) -> Asset {
        self.eip712_name = name.to_owned();
        self.eip712_version = version.to_owned();
        self
    }

    /// Every built-in asset on `network`.
    pub fn builtins(network: &Network) -> Vec<Asset> {
        Currency::ALL
            .into_iter()
            .filter_map(|c| Asset::builtin(network, c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_sepolia_usdc_has_its_eip712_name() {
        let net = Network::from_caip2("eip155:84532").expect("known network");
        assert_eq!(net.v1_name, Some("base-sepolia"));
        let usdc = Asset::builtin(&net, Currency::Usdc).expect("usdc");
        assert_eq!(usdc.eip712_name, "USDC");
        assert_eq!(
            usdc.address,
            address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e")
        );
        assert_eq!(net.chain_id(), Some(84532));
        let base = Network::from_v1_name("base").expect("base");
        assert_eq!(
            Asset::builtin(&base, Currency::Usdc)
                .expect("usdc")
                .eip712_name,
            "USD Coin"
        );
    }

    #[test]
    fn caip2_parsing_is_strict() {
        assert!(Network::from_caip2("eip155:31337").is_some());
        for bad in [
            "eip155:",
            "eip155:01",
            "eip155:1a",
            "solana:abc",
            "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpx",
            "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z",
            "84532",
            "eip155:-1",
        ] {
            assert!(Network::from_caip2(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn solana_clusters_are_known_with_their_usdc() {
        for (caip2, v1, mint) in [
            (
                SOLANA_MAINNET,
                "solana",
                "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
            ),
            (
                SOLANA_DEVNET,
                "solana-devnet",
                "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
            ),
        ] {
            let net = Network::from_caip2(caip2).expect("a Solana cluster");
            assert_eq!(Network::from_v1_name(v1), Some(net.clone()));
            assert_eq!(
                (net.v1_name, net.family, net.chain_id()),
                (Some(v1), Family::Svm, None)
            );
            assert!(!net.is_evm());
            let usdc = Asset::builtin(&net, Currency::Usdc).expect("USDC");
            assert_eq!(usdc.address.to_string(), mint);
            assert_eq!(usdc.decimals, 6);
            assert_eq!(Asset::find(&net, usdc.address), Some(usdc.clone()));
            assert_eq!(Asset::builtin(&net, Currency::Eurc), None);
            // The mint is no token on an EVM chain.
            assert_eq!(
                Asset::find(&Network::from_chain_id(8453), usdc.address),
                None
            );
        }
    }
}
