//! The local chain test bed: a throwaway anvil that looks like Base Sepolia to every x402 component,
//! and a Solana chain on LiteSVM.
//!
//! [`Chain::start`] runs anvil (from the pinned npm package) as chain 84532 on a free port of
//! 127.0.0.1, plants Circle's real `FiatTokenV2_2` at Base Sepolia's USDC address
//! [`USDC`] (name "USDC", version "2", 6 decimals, so its EIP-712 domain separator equals the real
//! token's), and mints 1000 USDC to each payer. The chain is killed when the [`Chain`] is dropped.
//!
//! With [`ChainOptions::permit2`] (or [`Chain::plant_permit2`]) the chain also carries Uniswap's
//! Permit2 and the x402 `exact`/`upto` Permit2 proxies at their canonical addresses, and
//! [`Chain::deploy_plain_token`] adds ERC-20s without EIP-3009: see [`permit2`].
//!
//! [`install`] installs the pinned third-party pieces once (`scripts/testbed-install.sh`: npm
//! packages in `interop/node_modules`, a Python venv in `interop/.venv`) and tells where they are;
//! [`install_chain`] (what [`Chain::start`] and the demo call) installs only the npm packages.
//!
//! ```no_run
//! # async fn demo() -> Result<(), x402_testbed::Error> {
//! use x402_testbed::{Chain, PAYER};
//! let chain = Chain::start().await?;
//! assert_eq!(chain.usdc_balance(PAYER).await?, x402_testbed::DEFAULT_MINT);
//! println!("anvil at {}", chain.rpc_url());
//! # Ok(()) }
//! ```
//!
//! [`SvmChain::start`] runs the test bed's Solana chain instead: LiteSVM behind a JSON-RPC front on
//! 127.0.0.1, with USDC at the devnet and mainnet mint addresses and funded test accounts; see
//! [`svm`].
//!
//! Needs node + npm, and python3 (with venv) for [`install`]. anvil comes from the npm package
//! `@foundry-rs/anvil-linux-amd64`, so the chain runs on Linux x86-64 only. In CI (`CI=true`)
//! their absence is an error; tests elsewhere may skip, loudly, through [`skip_unless_available`].

mod chain;
mod error;
mod install;
mod link;
pub mod permit2;
mod postgres;
mod script;
pub mod svm;
mod token;

use alloy::primitives::{Address, U256, address};

pub use chain::{Chain, ChainOptions};
pub use error::Error;
pub use install::{
    Paths, chromium, install, install_chain, repo_root, require_tools, skip_unless_available,
};
pub use link::link_bytecode;
pub use permit2::{
    CompiledContract, Contract, EXACT_PERMIT2_PROXY, PERMIT2, UPTO_PERMIT2_PROXY, load_contract,
    permit2_domain, revert_of, revert_reason,
};
pub use postgres::postgres_database;
pub use script::Script;
pub use svm::SvmChain;
pub use token::FiatToken;

/// Chain id the test chain runs with (Base Sepolia).
pub const CHAIN_ID: u64 = 84532;
/// CAIP-2 id of the test chain's network.
pub const NETWORK: &str = "eip155:84532";
/// Base Sepolia's USDC address, where the test chain carries Circle's `FiatTokenV2_2`.
pub const USDC: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
/// Base Sepolia's EURC address, where [`Chain::plant_eurc`] puts a second `FiatTokenV2_2`
/// (name "EURC", version "2", 6 decimals, as the built-in asset table has it).
pub const EURC: Address = address!("0x808456652fdb597867f38412077A9182bf77359F");
/// Atomic units minted to each payer at start: 1000 USDC (6 decimals).
pub const DEFAULT_MINT: U256 = U256::from_limbs([1_000_000_000, 0, 0, 0]);

/// One of the public anvil/hardhat test accounts (mnemonic `test test … junk`). Never use them
/// anywhere real.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestAccount {
    /// Index in the mnemonic.
    pub index: usize,
    /// The account's address.
    pub address: Address,
    /// Its private key, `0x`-prefixed hex.
    pub key: &'static str,
    /// What the test bed uses it for.
    pub role: &'static str,
}

/// #0: token deployer, owner, master minter, pauser, blacklister; signer of the test vectors.
pub const OWNER: Address = address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
/// Private key of [`OWNER`].
pub const OWNER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// #1: the payer (client); 1000 USDC minted at start.
pub const PAYER: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
/// Private key of [`PAYER`].
pub const PAYER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
/// #2: gas key of the TypeScript reference facilitator.
pub const TS_FACILITATOR: Address = address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
/// Private key of [`TS_FACILITATOR`].
pub const TS_FACILITATOR_KEY: &str =
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
/// #3: the merchant (`payTo`).
pub const MERCHANT: Address = address!("0x90F79bf6EB2c4f870365E785982E1f101E93b906");
/// Private key of [`MERCHANT`].
pub const MERCHANT_KEY: &str = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
/// #4: gas key of the Python reference facilitator.
pub const PY_FACILITATOR: Address = address!("0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65");
/// Private key of [`PY_FACILITATOR`].
pub const PY_FACILITATOR_KEY: &str =
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a";
/// #5: gas key of the Rust facilitator.
pub const FACILITATOR: Address = address!("0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc");
/// Private key of [`FACILITATOR`].
pub const FACILITATOR_KEY: &str =
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";
/// #6: the second payer; 1000 USDC minted at start.
pub const PAYER2: Address = address!("0x976EA74026E726554dB657fA54763abd0C3a0aa9");
/// Private key of [`PAYER2`].
pub const PAYER2_KEY: &str = "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e";

/// Test accounts #0..#6 with their roles; index `i` holds account `#i`.
pub const ACCOUNTS: [TestAccount; 7] = [
    TestAccount {
        index: 0,
        address: OWNER,
        key: OWNER_KEY,
        role: "token owner and minter",
    },
    TestAccount {
        index: 1,
        address: PAYER,
        key: PAYER_KEY,
        role: "payer",
    },
    TestAccount {
        index: 2,
        address: TS_FACILITATOR,
        key: TS_FACILITATOR_KEY,
        role: "TypeScript facilitator gas key",
    },
    TestAccount {
        index: 3,
        address: MERCHANT,
        key: MERCHANT_KEY,
        role: "merchant (payTo)",
    },
    TestAccount {
        index: 4,
        address: PY_FACILITATOR,
        key: PY_FACILITATOR_KEY,
        role: "Python facilitator gas key",
    },
    TestAccount {
        index: 5,
        address: FACILITATOR,
        key: FACILITATOR_KEY,
        role: "Rust facilitator gas key",
    },
    TestAccount {
        index: 6,
        address: PAYER2,
        key: PAYER2_KEY,
        role: "second payer",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;

    #[test]
    fn keys_match_addresses() {
        for account in ACCOUNTS {
            let signer: PrivateKeySigner = account.key.parse().expect("valid key");
            assert_eq!(
                signer.address(),
                account.address,
                "account #{}",
                account.index
            );
        }
        assert_eq!(DEFAULT_MINT, U256::from(1_000_000_000u64));
    }
}
