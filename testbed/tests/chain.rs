//! The local chain test bed against real anvil and Circle's FiatTokenV2_2: the planted token is
//! Base Sepolia's USDC to the byte (test vector A of x402-protocol.md §15 settles on it), and
//! chains are isolated and cleaned up.

use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use alloy::primitives::{Address, B256, Bytes, U256, address, b256, bytes};
use alloy::providers::Provider as _;
use alloy::signers::SignerSync as _;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolStruct as _, eip712_domain};
use x402_testbed::{
    CHAIN_ID, Chain, ChainOptions, DEFAULT_MINT, FACILITATOR, FACILITATOR_KEY, FiatToken, MERCHANT,
    OWNER, PAYER, PAYER_KEY, PAYER2, USDC, skip_unless_available,
};

/// Vector A (x402-protocol.md §15): Base Sepolia USDC's EIP-712 domain separator.
const DOMAIN_SEPARATOR_A: B256 =
    b256!("0x71f17a3b2ff373b803d70a5a07c046c1a2bc8e89c09ef722fcb047abe94c9818");
/// Vector A's recipient, nonce and signature (by key #0 over from = OWNER, value 10000,
/// validAfter 0, validBefore 1900000000).
const TO_A: Address = address!("0x209693Bc6afc0C5328bA36FaF03C514EF312287C");
const NONCE_A: B256 = b256!("0x0000000000000000000000000000000000000000000000000000000000000001");
const SIGNATURE_A: Bytes = bytes!(
    "0x31b0b2c257841128d341f63620c057d174155c2f51630b95bff21858367386af3296f16340309fc845e3eefe6790cc75ca9a36f6ce3aa4619913ef7fd67d7c9c1c"
);

async fn start(test: &str) -> Option<Chain> {
    if !skip_unless_available(test) {
        return None;
    }
    let started = Instant::now();
    let chain = Chain::start().await.expect("chain starts");
    eprintln!(
        "{test}: chain up at {} in {:?}",
        chain.rpc_url(),
        started.elapsed()
    );
    Some(chain)
}

#[tokio::test]
async fn planted_token_is_base_sepolia_usdc() {
    let Some(chain) = start("planted_token_is_base_sepolia_usdc").await else {
        return;
    };
    assert!(
        chain.rpc_url().starts_with("http://127.0.0.1:"),
        "{}",
        chain.rpc_url()
    );
    assert_eq!(chain.chain_id(), CHAIN_ID);
    assert_eq!(
        chain.provider().get_chain_id().await.expect("eth_chainId"),
        84532
    );
    assert_eq!(chain.usdc(), USDC);

    let token = chain.token();
    assert_eq!(token.name().call().await.expect("name"), "USDC");
    assert_eq!(token.version().call().await.expect("version"), "2");
    assert_eq!(token.decimals().call().await.expect("decimals"), 6);
    assert_eq!(
        token
            .DOMAIN_SEPARATOR()
            .call()
            .await
            .expect("domain separator"),
        DOMAIN_SEPARATOR_A
    );
    for payer in [PAYER, PAYER2] {
        assert_eq!(
            chain.usdc_balance(payer).await.expect("balance"),
            DEFAULT_MINT,
            "{payer}"
        );
    }
    assert_eq!(DEFAULT_MINT, U256::from(1_000_000_000u64), "1000 USDC");
    assert_eq!(
        chain.usdc_balance(MERCHANT).await.expect("balance"),
        U256::ZERO
    );
}

#[tokio::test]
async fn vector_a_settles_once() {
    let Some(chain) = start("vector_a_settles_once").await else {
        return;
    };
    chain
        .mint(OWNER, DEFAULT_MINT)
        .await
        .expect("mint to key #0");
    let owner_before = chain.usdc_balance(OWNER).await.expect("balance");
    let to_before = chain.usdc_balance(TO_A).await.expect("balance");

    let facilitator = chain
        .provider_with_key(FACILITATOR_KEY)
        .expect("facilitator provider");
    let token = FiatToken::new(USDC, facilitator);
    assert!(
        !token
            .authorizationState(OWNER, NONCE_A)
            .call()
            .await
            .expect("state")
    );
    let settle = || {
        token.transferWithAuthorization_0(
            OWNER,
            TO_A,
            U256::from(10_000),
            U256::ZERO,
            U256::from(1_900_000_000u64),
            NONCE_A,
            SIGNATURE_A,
        )
    };
    let receipt = settle()
        .send()
        .await
        .expect("first settlement is accepted")
        .get_receipt()
        .await
        .expect("receipt");
    assert!(receipt.status(), "status 1");
    assert_eq!(receipt.from, FACILITATOR, "the facilitator pays the gas");
    assert_eq!(
        chain.usdc_balance(OWNER).await.expect("balance"),
        owner_before - U256::from(10_000)
    );
    assert_eq!(
        chain.usdc_balance(TO_A).await.expect("balance"),
        to_before + U256::from(10_000)
    );
    assert!(
        token
            .authorizationState(OWNER, NONCE_A)
            .call()
            .await
            .expect("state")
    );

    let again = settle()
        .send()
        .await
        .expect_err("a used authorization reverts");
    assert!(
        again
            .to_string()
            .contains("FiatTokenV2: authorization is used or canceled"),
        "{again}"
    );
    assert_eq!(
        chain.usdc_balance(TO_A).await.expect("balance"),
        to_before + U256::from(10_000)
    );
}

alloy::sol! {
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

#[tokio::test]
async fn fresh_authorization_settles_through_the_vrs_overload() {
    let Some(chain) = start("fresh_authorization_settles_through_the_vrs_overload").await else {
        return;
    };
    let payer: PrivateKeySigner = PAYER_KEY.parse().expect("key");
    let auth = TransferWithAuthorization {
        from: PAYER,
        to: MERCHANT,
        value: U256::from(1_000),
        validAfter: U256::ZERO,
        validBefore: U256::from(4_000_000_000u64),
        nonce: B256::repeat_byte(0x42),
    };
    let domain = eip712_domain! {
        name: "USDC",
        version: "2",
        chain_id: 84532,
        verifying_contract: USDC,
    };
    let signature = payer
        .sign_hash_sync(&auth.eip712_signing_hash(&domain))
        .expect("sign");

    let facilitator = chain
        .provider_with_key(FACILITATOR_KEY)
        .expect("facilitator provider");
    let receipt = FiatToken::new(USDC, facilitator)
        .transferWithAuthorization_1(
            auth.from,
            auth.to,
            auth.value,
            auth.validAfter,
            auth.validBefore,
            auth.nonce,
            27 + u8::from(signature.v()),
            signature.r().into(),
            signature.s().into(),
        )
        .send()
        .await
        .expect("settlement is accepted")
        .get_receipt()
        .await
        .expect("receipt");
    assert!(receipt.status());
    assert_eq!(
        chain.usdc_balance(MERCHANT).await.expect("balance"),
        U256::from(1_000)
    );
    assert_eq!(
        chain.usdc_balance(PAYER).await.expect("balance"),
        DEFAULT_MINT - U256::from(1_000)
    );
}

#[tokio::test]
async fn options_and_set_code() {
    if !skip_unless_available("options_and_set_code") {
        return;
    }
    let extra = address!("0x00000000000000000000000000000000000000aa");
    let options = ChainOptions {
        payers: vec![extra],
        mint_amount: U256::from(5),
        ..ChainOptions::default()
    };
    let chain = Chain::start_with(options).await.expect("chain starts");
    assert_eq!(
        chain.usdc_balance(extra).await.expect("balance"),
        U256::from(5)
    );
    assert_eq!(
        chain.usdc_balance(PAYER).await.expect("balance"),
        U256::ZERO
    );

    chain
        .set_code(USDC, bytes!("0xfe"))
        .await
        .expect("anvil_setCode");
    assert!(
        chain.usdc_balance(extra).await.is_err(),
        "the token is broken on purpose"
    );
    chain.mine().await.expect("evm_mine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chains_run_at_once_and_die_on_drop() {
    if !skip_unless_available("two_chains_run_at_once_and_die_on_drop") {
        return;
    }
    let (a, b) = tokio::join!(Chain::start(), Chain::start());
    let (mut a, b) = (a.expect("chain a starts"), b.expect("chain b starts"));
    assert_ne!(a.port(), b.port());
    assert_ne!(a.pid(), b.pid());

    a.mint(MERCHANT, U256::from(7)).await.expect("mint on a");
    assert_eq!(
        a.usdc_balance(MERCHANT).await.expect("balance"),
        U256::from(7)
    );
    assert_eq!(
        b.usdc_balance(MERCHANT).await.expect("balance"),
        U256::ZERO,
        "chains are separate"
    );

    let stopped = [
        (a.port(), a.pid().expect("running")),
        (b.port(), b.pid().expect("running")),
    ];
    a.kill();
    assert_eq!(a.pid(), None);
    a.kill(); // idempotent
    drop(b);
    for (port, pid) in stopped {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still answers"
        );
        TcpListener::bind(("127.0.0.1", port)).expect("port is free again");
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "anvil {pid} was reaped"
        );
    }
    assert!(
        a.usdc_balance(MERCHANT).await.is_err(),
        "a killed chain answers nothing"
    );
}

#[tokio::test]
async fn startup_failure_reports_the_anvil_log() {
    if !skip_unless_available("startup_failure_reports_the_anvil_log") {
        return;
    }
    let options = ChainOptions {
        anvil_args: vec!["--no-such-flag".into()],
        ..ChainOptions::default()
    };
    let err = Chain::start_with(options)
        .await
        .expect_err("anvil refuses the flag");
    let message = err.to_string();
    assert!(matches!(err, x402_testbed::Error::Startup(_)), "{message}");
    assert!(message.contains("exited"), "{message}");
    assert!(
        message.contains("--no-such-flag"),
        "the log tail is included: {message}"
    );
}
