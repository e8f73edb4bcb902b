//! Uniswap's Permit2, the x402 Permit2 proxies and ERC-20s without EIP-3009 on the test chain.
//!
//! `scripts/testbed-install.sh` compiles them (`testbed/contracts/build.mjs`, pinned solc-js,
//! offline, cached) into `interop/contracts/`:
//! - **Permit2**: Uniswap's sources from `@uniswap/v4-periphery@1.0.3` (`lib/permit2`), solc
//!   0.8.17 with Permit2's own settings (via-IR, optimizer runs 1000000, bytecode hash none).
//!   [`Chain::plant_permit2`] puts its runtime code at the canonical [`PERMIT2`] address. Its
//!   immutables (the cached chain id and domain separator) stay zero there, so
//!   `DOMAIN_SEPARATOR()` is computed from the real chain id and [`PERMIT2`]: it equals
//!   [`permit2_domain`]'s separator.
//! - **x402ExactPermit2Proxy** and **x402UptoPermit2Proxy** (`testbed/contracts/`, solc 0.8.30):
//!   the spenders the `exact` (`assetTransferMethod: "permit2"`) and `upto` schemes sign for, at
//!   [`EXACT_PERMIT2_PROXY`] and [`UPTO_PERMIT2_PROXY`], with the ABI of the official `@x402/evm`
//!   client ([`exact::ExactPermit2Proxy`], [`upto::UptoPermit2Proxy`]).
//! - **PlainToken** (OpenZeppelin 5.7.0 `ERC20`, "USDT-like": no EIP-3009, no EIP-2612) and
//!   **PermitToken** (with OpenZeppelin's `ERC20Permit`), deployed by [`OWNER`](crate::OWNER),
//!   who can mint.
//!
//! Loading an artifact checks the keccak256 of its runtime code against the value recorded here
//! ([`Contract::expected_runtime_keccak256`]), so a changed compiler or source cannot slip by.
//!
//! ```no_run
//! # async fn demo() -> Result<(), x402_testbed::Error> {
//! use alloy::primitives::U256;
//! use x402_testbed::{Chain, ChainOptions, PAYER, PAYER_KEY};
//! let chain = Chain::start_with(ChainOptions { permit2: true, ..ChainOptions::default() }).await?;
//! let usdt = chain.deploy_plain_token("Tether USD", "USDT", 6).await?;
//! chain.mint_plain(usdt, PAYER, U256::from(1_000_000u64)).await?;
//! chain.approve_permit2(usdt, PAYER_KEY).await?;
//! # Ok(()) }
//! ```

// `sol!` generates undocumented items for each function, error and struct field, and one Rust
// method per Solidity function with all its parameters (`permit` takes eight).
#![allow(missing_docs, clippy::too_many_arguments)]

use std::fs;

use alloy::network::TransactionBuilder as _;
use alloy::primitives::{Address, B256, Bytes, U256, address, b256, keccak256};
use alloy::providers::Provider as _;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::{Eip712Domain, Panic, Revert, SolError as _, SolValue as _, eip712_domain};
use serde_json::Value;

use crate::chain::confirm;
use crate::error::{chain as chain_error, io};
use crate::{CHAIN_ID, Chain, Error, Paths};

/// Uniswap's Permit2 at its canonical address (the same on every chain).
pub const PERMIT2: Address = address!("0x000000000022D473030F116dDEE9F6B43aC78BA3");
/// The `x402ExactPermit2Proxy` the official `@x402/evm` 2.27.0 client signs for.
pub const EXACT_PERMIT2_PROXY: Address = address!("0x402085c248EeA27D92E8b30b2C58ed07f9E20001");
/// The `x402UptoPermit2Proxy` the official `@x402/evm` 2.27.0 client signs for.
pub const UPTO_PERMIT2_PROXY: Address = address!("0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002");

/// A contract compiled by `testbed/contracts/build.mjs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Contract {
    /// Uniswap's Permit2 (solc 0.8.17, via-IR, runs 1000000).
    Permit2,
    /// The x402 `exact` scheme's Permit2 proxy (solc 0.8.30).
    ExactPermit2Proxy,
    /// The x402 `upto` scheme's Permit2 proxy (solc 0.8.30).
    UptoPermit2Proxy,
    /// A plain OpenZeppelin ERC-20 with an owner-only mint (solc 0.8.30).
    PlainToken,
    /// An OpenZeppelin ERC-20 with EIP-2612 `permit` and an owner-only mint (solc 0.8.30).
    PermitToken,
}

impl Contract {
    /// Every contract the build produces.
    pub const ALL: [Contract; 5] = [
        Contract::Permit2,
        Contract::ExactPermit2Proxy,
        Contract::UptoPermit2Proxy,
        Contract::PlainToken,
        Contract::PermitToken,
    ];

    /// The Solidity contract name, which is also its artifact's file stem.
    pub fn name(self) -> &'static str {
        match self {
            Contract::Permit2 => "Permit2",
            Contract::ExactPermit2Proxy => "x402ExactPermit2Proxy",
            Contract::UptoPermit2Proxy => "x402UptoPermit2Proxy",
            Contract::PlainToken => "PlainToken",
            Contract::PermitToken => "PermitToken",
        }
    }

    /// keccak256 of the runtime code the build must produce (immutables left as zeros, as
    /// solc's `evm.deployedBytecode` has them). Recorded when the sources or compilers change.
    pub fn expected_runtime_keccak256(self) -> B256 {
        match self {
            Contract::Permit2 => {
                b256!("0xabc52f6c1943be37b69b6bdc449a3db9d22af2529c2003c9e3304fa156706465")
            }
            Contract::ExactPermit2Proxy => {
                b256!("0xb719f2432ee45694de9a48e8fda5cc84fd2a5015098eccb087e0d268908bea74")
            }
            Contract::UptoPermit2Proxy => {
                b256!("0x902fa70db17271a836762e188e34d635df884f0c13005d0a3e6b0725f7e42fc9")
            }
            Contract::PlainToken => {
                b256!("0x0969ffc9d9623cefc8038a68aeb5345224975b69429d344caaf7caa455dd0d4d")
            }
            Contract::PermitToken => {
                b256!("0x6d34a7a74b9a911c4a683406d0955b6191e9f6c000a9fe84659a4d88e44878e9")
            }
        }
    }
}

/// One contract's artifact, its runtime code checked against the recorded hash.
#[derive(Clone, Debug)]
pub struct CompiledContract {
    /// Which contract.
    pub contract: Contract,
    /// The solc version that built it, e.g. `0.8.17+commit.8df45f5f.Emscripten.clang`.
    pub compiler: String,
    /// Creation code (constructor arguments to be appended).
    pub bytecode: Bytes,
    /// Runtime code, immutables as zeros.
    pub deployed_bytecode: Bytes,
    /// keccak256 of [`Self::deployed_bytecode`].
    pub runtime_keccak256: B256,
}

/// Reads `interop/contracts/<name>.json` and checks its runtime code's keccak256 against
/// [`Contract::expected_runtime_keccak256`]; a mismatch is an error naming both hashes and how to
/// rebuild.
pub fn load_contract(paths: &Paths, contract: Contract) -> Result<CompiledContract, Error> {
    let path = paths.contracts.join(format!("{}.json", contract.name()));
    let text = fs::read_to_string(&path).map_err(|e| {
        io(
            format!(
                "{} (run scripts/testbed-install.sh --chain-only)",
                path.display()
            ),
            e,
        )
    })?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Artifact(format!("{}: {e}", path.display())))?;
    let hex = |field: &str| -> Result<Bytes, Error> {
        json.get(field)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Bytes>().ok())
            .filter(|b| !b.is_empty())
            .ok_or_else(|| Error::Artifact(format!("{} has no {field}", path.display())))
    };
    let bytecode = hex("bytecode")?;
    let deployed_bytecode = hex("deployedBytecode")?;
    let runtime_keccak256 = keccak256(&deployed_bytecode);
    let expected = contract.expected_runtime_keccak256();
    if runtime_keccak256 != expected {
        return Err(Error::Artifact(format!(
            "{}: runtime bytecode keccak256 is {runtime_keccak256}, the test bed expects {expected} \
             ({}). Rebuild with `node testbed/contracts/build.mjs --force`; if the sources or \
             compilers changed on purpose, record the new hash in testbed/src/permit2.rs",
            contract.name(),
            path.display()
        )));
    }
    let compiler = json
        .get("compiler")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(CompiledContract {
        contract,
        compiler,
        bytecode,
        deployed_bytecode,
        runtime_keccak256,
    })
}

/// Permit2's EIP-712 domain on the test chain: name "Permit2", chain id 84532, verifying
/// contract [`PERMIT2`] (no version), as the official client signs it.
pub fn permit2_domain() -> Eip712Domain {
    eip712_domain! {
        name: "Permit2",
        chain_id: CHAIN_ID,
        verifying_contract: PERMIT2,
    }
}

alloy::sol! {
    /// The part of Permit2 the test bed reads, and its errors (for [`revert_reason`]).
    #[sol(rpc)]
    interface Permit2 {
        function DOMAIN_SEPARATOR() external view returns (bytes32);
        function nonceBitmap(address owner, uint256 wordPos) external view returns (uint256);

        error SignatureExpired(uint256 signatureDeadline);
        error InvalidNonce();
        error InvalidSignatureLength();
        error InvalidSignature();
        error InvalidSigner();
        error InvalidContractSignature();
        error InvalidAmount(uint256 maxAmount);
        error LengthMismatch();
    }

    /// [`Contract::PlainToken`] and [`Contract::PermitToken`]: ERC-20, the owner's mint, and
    /// EIP-2612 (PermitToken only).
    #[sol(rpc)]
    interface TestToken {
        function name() external view returns (string);
        function symbol() external view returns (string);
        function decimals() external view returns (uint8);
        function balanceOf(address account) external view returns (uint256);
        function allowance(address owner, address spender) external view returns (uint256);
        function approve(address spender, uint256 value) external returns (bool);
        function transfer(address to, uint256 value) external returns (bool);
        function mint(address to, uint256 amount) external;
        function owner() external view returns (address);
        function nonces(address owner) external view returns (uint256);
        function DOMAIN_SEPARATOR() external view returns (bytes32);
        function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;

        error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
        error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
        error OwnableUnauthorizedAccount(address account);
        error ERC2612ExpiredSignature(uint256 deadline);
        error ERC2612InvalidSigner(address signer, address owner);
    }
}

/// The `exact` scheme's proxy and the EIP-712 types its payers sign
/// (`PermitWitnessTransferFrom` with `Witness(address to,uint256 validAfter)`).
pub mod exact {
    #![allow(missing_docs)]
    alloy::sol! {
        /// Permit2's `TokenPermissions`.
        #[derive(Debug, PartialEq, Eq)]
        struct TokenPermissions { address token; uint256 amount; }
        /// The `exact` witness: who is paid, and from when.
        #[derive(Debug, PartialEq, Eq)]
        struct Witness { address to; uint256 validAfter; }
        /// What the payer signs (EIP-712, under [`super::permit2_domain`]); `spender` is
        /// [`super::EXACT_PERMIT2_PROXY`].
        #[derive(Debug, PartialEq, Eq)]
        struct PermitWitnessTransferFrom {
            TokenPermissions permitted;
            address spender;
            uint256 nonce;
            uint256 deadline;
            Witness witness;
        }
        /// Permit2's `ISignatureTransfer.PermitTransferFrom` (the signed fields but the spender
        /// and the witness).
        #[derive(Debug, PartialEq, Eq)]
        struct PermitTransferFrom { TokenPermissions permitted; uint256 nonce; uint256 deadline; }
        /// An EIP-2612 permit letting Permit2 spend `value`.
        #[derive(Debug, PartialEq, Eq)]
        struct EIP2612Permit { uint256 value; uint256 deadline; bytes32 r; bytes32 s; uint8 v; }

        /// `x402ExactPermit2Proxy`, at [`super::EXACT_PERMIT2_PROXY`].
        #[sol(rpc)]
        interface ExactPermit2Proxy {
            function PERMIT2() external view returns (address);
            function WITNESS_TYPEHASH() external view returns (bytes32);
            function WITNESS_TYPE_STRING() external view returns (string);
            function settle(PermitTransferFrom permit, address owner, Witness witness, bytes signature) external;
            function settleWithPermit(EIP2612Permit permit2612, PermitTransferFrom permit, address owner, Witness witness, bytes signature) external;

            event Settled();
            event SettledWithPermit();

            error InvalidAmount();
            error InvalidDestination();
            error InvalidOwner();
            error InvalidPermit2Address();
            error PaymentTooEarly();
            error Permit2612AmountMismatch();
            error ReentrancyGuardReentrantCall();
        }
    }

    impl PermitWitnessTransferFrom {
        /// The permit part the proxy takes (all but the spender and the witness).
        pub fn permit(&self) -> PermitTransferFrom {
            PermitTransferFrom {
                permitted: self.permitted.clone(),
                nonce: self.nonce,
                deadline: self.deadline,
            }
        }
    }
}

/// The `upto` scheme's proxy and the EIP-712 types its payers sign
/// (`PermitWitnessTransferFrom` with `Witness(address to,address facilitator,uint256 validAfter)`).
pub mod upto {
    #![allow(missing_docs)]
    alloy::sol! {
        /// Permit2's `TokenPermissions`.
        #[derive(Debug, PartialEq, Eq)]
        struct TokenPermissions { address token; uint256 amount; }
        /// The `upto` witness: who is paid, who may settle, and from when.
        #[derive(Debug, PartialEq, Eq)]
        struct Witness { address to; address facilitator; uint256 validAfter; }
        /// What the payer signs (EIP-712, under [`super::permit2_domain`]); `spender` is
        /// [`super::UPTO_PERMIT2_PROXY`].
        #[derive(Debug, PartialEq, Eq)]
        struct PermitWitnessTransferFrom {
            TokenPermissions permitted;
            address spender;
            uint256 nonce;
            uint256 deadline;
            Witness witness;
        }
        /// Permit2's `ISignatureTransfer.PermitTransferFrom`.
        #[derive(Debug, PartialEq, Eq)]
        struct PermitTransferFrom { TokenPermissions permitted; uint256 nonce; uint256 deadline; }
        /// An EIP-2612 permit letting Permit2 spend `value`.
        #[derive(Debug, PartialEq, Eq)]
        struct EIP2612Permit { uint256 value; uint256 deadline; bytes32 r; bytes32 s; uint8 v; }

        /// `x402UptoPermit2Proxy`, at [`super::UPTO_PERMIT2_PROXY`].
        #[sol(rpc)]
        interface UptoPermit2Proxy {
            function PERMIT2() external view returns (address);
            function WITNESS_TYPEHASH() external view returns (bytes32);
            function WITNESS_TYPE_STRING() external view returns (string);
            function settle(PermitTransferFrom permit, uint256 amount, address owner, Witness witness, bytes signature) external;
            function settleWithPermit(EIP2612Permit permit2612, PermitTransferFrom permit, uint256 amount, address owner, Witness witness, bytes signature) external;

            event Settled();
            event SettledWithPermit();

            error AmountExceedsPermitted();
            error InvalidDestination();
            error InvalidOwner();
            error InvalidPermit2Address();
            error PaymentTooEarly();
            error Permit2612AmountMismatch();
            error ReentrancyGuardReentrantCall();
            error UnauthorizedFacilitator();
        }
    }

    impl PermitWitnessTransferFrom {
        /// The permit part the proxy takes (all but the spender and the witness).
        pub fn permit(&self) -> PermitTransferFrom {
            PermitTransferFrom {
                permitted: self.permitted.clone(),
                nonce: self.nonce,
                deadline: self.deadline,
            }
        }
    }
}

/// Every custom error the test bed's contracts raise, by signature.
const KNOWN_ERRORS: &[&str] = &[
    "AmountExceedsPermitted()",
    "InvalidAmount()",
    "InvalidDestination()",
    "InvalidOwner()",
    "InvalidPermit2Address()",
    "PaymentTooEarly()",
    "Permit2612AmountMismatch()",
    "ReentrancyGuardReentrantCall()",
    "UnauthorizedFacilitator()",
    "SignatureExpired(uint256)",
    "InvalidNonce()",
    "InvalidSignatureLength()",
    "InvalidSignature()",
    "InvalidSigner()",
    "InvalidContractSignature()",
    "InvalidAmount(uint256)",
    "LengthMismatch()",
    "ERC20InsufficientBalance(address,uint256,uint256)",
    "ERC20InsufficientAllowance(address,uint256,uint256)",
    "OwnableUnauthorizedAccount(address)",
    "ERC2612ExpiredSignature(uint256)",
    "ERC2612InvalidSigner(address,address)",
];

/// Names revert data by its selector: a known custom error's signature (e.g. `InvalidNonce()`,
/// `SignatureExpired(uint256)`), `Error("…")` with the reason string, `Panic(0x…)`, or
/// `unknown 0x…` with the raw data.
pub fn revert_reason(data: &[u8]) -> String {
    let Some(selector) = data.get(..4) else {
        return format!("empty revert {}", Bytes::copy_from_slice(data));
    };
    if let Ok(revert) = Revert::abi_decode(data) {
        return format!("Error({:?})", revert.reason);
    }
    if let Ok(panic) = Panic::abi_decode(data) {
        return format!("Panic({:#x})", panic.code);
    }
    KNOWN_ERRORS
        .iter()
        .find(|sig| keccak256(sig.as_bytes()).get(..4) == Some(selector))
        .map_or_else(
            || format!("unknown {}", Bytes::copy_from_slice(data)),
            |sig| (*sig).to_owned(),
        )
}

/// The revert reason of a failed contract call or transaction send (see [`revert_reason`]), or
/// `None` when the error carries no revert data (a transport failure, say).
pub fn revert_of(error: &alloy::contract::Error) -> Option<String> {
    error.as_revert_data().map(|data| revert_reason(&data))
}

impl Chain {
    /// Plants Permit2 at [`PERMIT2`] and the x402 proxies at [`EXACT_PERMIT2_PROXY`] and
    /// [`UPTO_PERMIT2_PROXY`] (`anvil_setCode`, no constructors: none of them needs one), then
    /// checks the code now at each address against the recorded hash. Idempotent: planting again
    /// writes the same code and keeps storage (Permit2's used nonces and allowances).
    pub async fn plant_permit2(&self) -> Result<(), Error> {
        let planted = [
            (Contract::Permit2, PERMIT2),
            (Contract::ExactPermit2Proxy, EXACT_PERMIT2_PROXY),
            (Contract::UptoPermit2Proxy, UPTO_PERMIT2_PROXY),
        ];
        for (contract, at) in planted {
            let compiled = load_contract(self.paths(), contract)?;
            self.set_code(at, compiled.deployed_bytecode).await?;
            let on_chain = self.code_keccak256(at).await?;
            if on_chain != compiled.runtime_keccak256 {
                return Err(Error::Chain(format!(
                    "{} at {at}: code keccak256 {on_chain} after anvil_setCode, expected {}",
                    contract.name(),
                    compiled.runtime_keccak256
                )));
            }
        }
        Ok(())
    }

    /// keccak256 of the code at `address` (`eth_getCode`).
    pub async fn code_keccak256(&self, address: Address) -> Result<B256, Error> {
        let code = self
            .provider()
            .get_code_at(address)
            .await
            .map_err(|e| chain_error(format!("eth_getCode({address})"), e))?;
        Ok(keccak256(&code))
    }

    /// Deploys a [`Contract::PlainToken`] (no EIP-3009, no EIP-2612) as
    /// [`OWNER`](crate::OWNER), who owns it and alone can mint ([`Chain::mint_plain`]). Returns
    /// its address.
    pub async fn deploy_plain_token(
        &self,
        name: &str,
        symbol: &str,
        decimals: u8,
    ) -> Result<Address, Error> {
        self.deploy_token(Contract::PlainToken, name, symbol, decimals)
            .await
    }

    /// Deploys a [`Contract::PermitToken`] (ERC-20 with EIP-2612 `permit`: EIP-712 name `name`,
    /// version "1"; no EIP-3009) as [`OWNER`](crate::OWNER), who owns it and alone can mint.
    /// Returns its address.
    pub async fn deploy_permit_token(
        &self,
        name: &str,
        symbol: &str,
        decimals: u8,
    ) -> Result<Address, Error> {
        self.deploy_token(Contract::PermitToken, name, symbol, decimals)
            .await
    }

    async fn deploy_token(
        &self,
        contract: Contract,
        name: &str,
        symbol: &str,
        decimals: u8,
    ) -> Result<Address, Error> {
        let compiled = load_contract(self.paths(), contract)?;
        let mut code = compiled.bytecode.to_vec();
        code.extend((name.to_owned(), symbol.to_owned(), U256::from(decimals)).abi_encode_params());
        let what = format!(
            "deploy {}({name:?}, {symbol:?}, {decimals})",
            contract.name()
        );
        let _turn = self.owner_turn().await;
        let deploy = TransactionRequest::default().with_deploy_code(code);
        let receipt = confirm(self.provider().send_transaction(deploy).await, &what).await?;
        receipt
            .contract_address
            .ok_or_else(|| Error::Chain(format!("{what}: no contract address in the receipt")))
    }

    /// Mints `amount` atomic units of a token from [`Chain::deploy_plain_token`] or
    /// [`Chain::deploy_permit_token`] to `to`, as [`OWNER`](crate::OWNER).
    pub async fn mint_plain(&self, token: Address, to: Address, amount: U256) -> Result<(), Error> {
        let _turn = self.owner_turn().await;
        let sent = TestToken::new(token, self.provider().clone())
            .mint(to, amount)
            .send()
            .await;
        confirm(sent, &format!("mint({to}, {amount}) at {token}"))
            .await
            .map(drop)
    }

    /// The payer whose private key is `payer_key` approves [`PERMIT2`] to spend all its `token`
    /// (`approve(PERMIT2, 2^256 - 1)`), as wallets do once per token before signing permits.
    /// Works for any ERC-20, USDC included.
    pub async fn approve_permit2(&self, token: Address, payer_key: &str) -> Result<(), Error> {
        let payer = self.provider_with_key(payer_key)?;
        let sent = TestToken::new(token, payer)
            .approve(PERMIT2, U256::MAX)
            .send()
            .await;
        confirm(sent, &format!("approve(PERMIT2, max) at {token}"))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolStruct as _;

    #[test]
    fn a_changed_build_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("x402-testbed-permit2-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let artifact = serde_json::json!({
            "bytecode": "0x6001",
            "deployedBytecode": "0x6002",
            "compiler": "0.8.30",
        });
        fs::write(dir.join("PlainToken.json"), artifact.to_string()).expect("write");
        let paths = Paths {
            root: dir.clone(),
            interop: dir.clone(),
            node: dir.clone(),
            anvil: dir.clone(),
            cast: dir.clone(),
            python: dir.clone(),
            fiat_token_artifact: dir.clone(),
            signature_checker_artifact: dir.clone(),
            contracts: dir.clone(),
            work_dir: dir.clone(),
        };
        let err = load_contract(&paths, Contract::PlainToken)
            .expect_err("hash differs")
            .to_string();
        let _ = fs::remove_dir_all(&dir);
        assert!(err.contains("PlainToken"), "{err}");
        assert!(err.contains(&keccak256([0x60, 0x02]).to_string()), "{err}");
        let expected = Contract::PlainToken.expected_runtime_keccak256();
        assert!(err.contains(&expected.to_string()), "{err}");
        assert!(err.contains("build.mjs --force"), "{err}");
        let missing = load_contract(&paths, Contract::Permit2).expect_err("no artifact");
        assert!(
            missing.to_string().contains("testbed-install.sh"),
            "{missing}"
        );
    }

    #[test]
    fn signed_types_are_what_permit2_hashes() {
        let prefix = "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,";
        let exact = format!(
            "{prefix}Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)"
        );
        let upto = format!(
            "{prefix}Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,address facilitator,uint256 validAfter)"
        );
        assert_eq!(
            exact::PermitWitnessTransferFrom::eip712_encode_type(),
            exact
        );
        assert_eq!(upto::PermitWitnessTransferFrom::eip712_encode_type(), upto);
    }

    #[test]
    fn revert_reasons_are_named() {
        let nonce = Permit2::InvalidNonce {}.abi_encode();
        assert_eq!(revert_reason(&nonce), "InvalidNonce()");
        let facilitator = upto::UptoPermit2Proxy::UnauthorizedFacilitator {}.abi_encode();
        assert_eq!(revert_reason(&facilitator), "UnauthorizedFacilitator()");
        let error = Revert::from("TRANSFER_FROM_FAILED").abi_encode();
        assert_eq!(revert_reason(&error), "Error(\"TRANSFER_FROM_FAILED\")");
        assert!(revert_reason(&[1, 2, 3, 4, 5]).starts_with("unknown 0x0102030405"));
    }
}
