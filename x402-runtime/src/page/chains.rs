//! What the pay page tells a wallet about an offer's chain: the name a person reads, the block
//! explorer a receipt links to, and the public RPC and gas token a wallet that lacks the chain
//! is asked to add (`wallet_addEthereumChain`).

/// A chain the page can name, link and add.
pub(crate) struct ChainInfo {
    pub(crate) chain_id: u64,
    pub(crate) name: &'static str,
    /// Block explorer origin; transactions are at `{explorer}/tx/{hash}`.
    pub(crate) explorer: &'static str,
    pub(crate) rpc: &'static str,
    /// The symbol of the chain's gas token.
    pub(crate) gas: &'static str,
}

const fn chain(
    chain_id: u64,
    name: &'static str,
    explorer: &'static str,
    rpc: &'static str,
    gas: &'static str,
) -> ChainInfo {
    ChainInfo {
        chain_id,
        name,
        explorer,
        rpc,
        gas,
    }
}

const CHAINS: &[ChainInfo] = &[
    chain(
        8453,
        "Base",
        "https://basescan.org",
        "https://mainnet.base.org",
        "ETH",
    ),
    chain(
        84532,
        "Base Sepolia",
        "https://sepolia.basescan.org",
        "https://sepolia.base.org",
        "ETH",
    ),
    chain(
        1,
        "Ethereum",
        "https://etherscan.io",
        "https://ethereum-rpc.publicnode.com",
        "ETH",
    ),
    chain(
        11155111,
        "Sepolia",
        "https://sepolia.etherscan.io",
        "https://ethereum-sepolia-rpc.publicnode.com",
        "ETH",
    ),
    chain(
        10,
        "OP Mainnet",
        "https://optimistic.etherscan.io",
        "https://mainnet.optimism.io",
        "ETH",
    ),
    chain(
        42161,
        "Arbitrum One",
        "https://arbiscan.io",
        "https://arb1.arbitrum.io/rpc",
        "ETH",
    ),
    chain(
        137,
        "Polygon",
        "https://polygonscan.com",
        "https://polygon-rpc.com",
        "POL",
    ),
    chain(
        80002,
        "Polygon Amoy",
        "https://amoy.polygonscan.com",
        "https://rpc-amoy.polygon.technology",
        "POL",
    ),
    chain(
        43114,
        "Avalanche C-Chain",
        "https://snowtrace.io",
        "https://api.avax.network/ext/bc/C/rpc",
        "AVAX",
    ),
    chain(
        43113,
        "Avalanche Fuji",
        "https://testnet.snowtrace.io",
        "https://api.avax-test.network/ext/bc/C/rpc",
        "AVAX",
    ),
    chain(
        42220,
        "Celo",
        "https://celoscan.io",
        "https://forno.celo.org",
        "CELO",
    ),
];

/// The chain with this id, when the page knows it.
pub(crate) fn known(chain_id: u64) -> Option<&'static ChainInfo> {
    CHAINS.iter().find(|c| c.chain_id == chain_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chain_once_with_https_addresses() {
        for (i, c) in CHAINS.iter().enumerate() {
            assert!(
                CHAINS[..i].iter().all(|o| o.chain_id != c.chain_id),
                "{}",
                c.name
            );
            assert!(c.explorer.starts_with("https://") && !c.explorer.ends_with('/'));
            assert!(c.rpc.starts_with("https://"));
        }
        assert_eq!(known(84532).map(|c| c.name), Some("Base Sepolia"));
        assert!(known(31337).is_none());
    }
}
