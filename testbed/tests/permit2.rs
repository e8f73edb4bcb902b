//! Uniswap's Permit2 and the x402 Permit2 proxies on real anvil: the planted code is the recorded
//! build, Permit2's domain separator is the canonical one for chain 84532, payments signed for
//! each proxy move exactly what they should, every refusal names its reason, and the official
//! `@x402/evm` client's signatures settle.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::contract::SolCallBuilder;
use alloy::network::Ethereum;
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::PendingTransactionBuilder;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::SignerSync as _;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolStruct as _, SolValue as _, eip712_domain};
use serde_json::Value;
use x402_testbed::permit2::{Permit2, TestToken, exact, upto};
use x402_testbed::{
    CHAIN_ID, Chain, ChainOptions, Contract, EXACT_PERMIT2_PROXY, FACILITATOR, FACILITATOR_KEY,
    MERCHANT, PAYER, PAYER_KEY, PERMIT2, TS_FACILITATOR, TS_FACILITATOR_KEY, UPTO_PERMIT2_PROXY,
    USDC, load_contract, permit2_domain, revert_of, skip_unless_available,
};

async fn start(test: &str) -> Option<Chain> {
    if !skip_unless_available(test) {
        return None;
    }
    let started = Instant::now();
    let options = ChainOptions {
        permit2: true,
        ..ChainOptions::default()
    };
    let chain = Chain::start_with(options).await.expect("chain starts");
    eprintln!("{test}: chain up in {:?}", started.elapsed());
    Some(chain)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A plain token with `amount` minted to PAYER, who approved Permit2 for it.
async fn funded_plain_token(chain: &Chain, amount: u64) -> Address {
    let token = chain
        .deploy_plain_token("Tether USD", "USDT", 6)
        .await
        .expect("deploy");
    chain
        .mint_plain(token, PAYER, U256::from(amount))
        .await
        .expect("mint");
    chain
        .approve_permit2(token, PAYER_KEY)
        .await
        .expect("approve");
    token
}

fn payer() -> PrivateKeySigner {
    PAYER_KEY.parse().expect("payer key")
}

fn sign(message: &impl alloy::sol_types::SolStruct) -> Bytes {
    let signature = payer()
        .sign_hash_sync(&message.eip712_signing_hash(&permit2_domain()))
        .expect("sign");
    Bytes::from(signature.as_bytes().to_vec())
}

fn exact_permit(
    token: Address,
    amount: u64,
    nonce: u64,
    valid_after: u64,
) -> exact::PermitWitnessTransferFrom {
    exact::PermitWitnessTransferFrom {
        permitted: exact::TokenPermissions {
            token,
            amount: U256::from(amount),
        },
        spender: EXACT_PERMIT2_PROXY,
        nonce: U256::from(nonce),
        deadline: U256::from(now() + 300),
        witness: exact::Witness {
            to: MERCHANT,
            validAfter: U256::from(valid_after),
        },
    }
}

fn upto_permit(token: Address, amount: u64, nonce: u64) -> upto::PermitWitnessTransferFrom {
    upto::PermitWitnessTransferFrom {
        permitted: upto::TokenPermissions {
            token,
            amount: U256::from(amount),
        },
        spender: UPTO_PERMIT2_PROXY,
        nonce: U256::from(nonce),
        deadline: U256::from(now() + 300),
        witness: upto::Witness {
            to: MERCHANT,
            facilitator: FACILITATOR,
            validAfter: U256::ZERO,
        },
    }
}

/// The receipt of a transaction that must succeed; a refusal panics with its decoded reason.
async fn mined(
    what: &str,
    sent: Result<PendingTransactionBuilder<Ethereum>, alloy::contract::Error>,
) -> TransactionReceipt {
    let pending = match sent {
        Ok(pending) => pending,
        Err(e) => panic!(
            "{what} refused: {} ({e})",
            revert_of(&e).unwrap_or_default()
        ),
    };
    let receipt = pending
        .with_timeout(Some(Duration::from_secs(10)))
        .get_receipt()
        .await
        .expect("receipt");
    assert!(receipt.status(), "{what}: transaction reverted");
    receipt
}

/// The decoded reason why `call`, sent by `from`, is refused (simulated with `eth_call` against
/// the latest block, as a facilitator does before sending: a refused transaction sent through a
/// provider would leave a gap in its cached account nonce).
async fn refused<P: Provider, C: SolCall>(
    what: &str,
    from: Address,
    call: SolCallBuilder<P, C>,
) -> String {
    match call.from(from).call().await {
        Ok(_) => panic!("{what} was accepted, expected a revert"),
        Err(e) => {
            revert_of(&e).unwrap_or_else(|| panic!("{what}: failed without revert data: {e}"))
        }
    }
}

/// Whether `receipt` has the parameterless event `E` from `emitter`.
fn emitted<E: alloy::sol_types::SolEvent>(receipt: &TransactionReceipt, emitter: Address) -> bool {
    receipt
        .inner
        .logs()
        .iter()
        .any(|log| log.address() == emitter && log.topics().first() == Some(&E::SIGNATURE_HASH))
}

async fn balance(chain: &Chain, token: Address, of: Address) -> U256 {
    chain.balance_of(token, of).await.expect("balanceOf")
}

#[tokio::test]
async fn planted_code_is_the_recorded_build() {
    let Some(chain) = start("planted_code_is_the_recorded_build").await else {
        return;
    };
    for contract in Contract::ALL {
        let compiled = load_contract(chain.paths(), contract).expect("artifact loads");
        assert_eq!(
            compiled.runtime_keccak256,
            contract.expected_runtime_keccak256()
        );
        eprintln!(
            "{}: {} ({})",
            contract.name(),
            compiled.runtime_keccak256,
            compiled.compiler
        );
    }
    for (contract, at) in [
        (Contract::Permit2, PERMIT2),
        (Contract::ExactPermit2Proxy, EXACT_PERMIT2_PROXY),
        (Contract::UptoPermit2Proxy, UPTO_PERMIT2_PROXY),
    ] {
        let on_chain = chain.code_keccak256(at).await.expect("code");
        assert_eq!(
            on_chain,
            contract.expected_runtime_keccak256(),
            "{}",
            contract.name()
        );
    }
    chain
        .plant_permit2()
        .await
        .expect("planting again is harmless");

    let provider = chain.provider().clone();
    let exact = exact::ExactPermit2Proxy::new(EXACT_PERMIT2_PROXY, provider.clone());
    assert_eq!(exact.PERMIT2().call().await.expect("PERMIT2"), PERMIT2);
    let type_string = exact
        .WITNESS_TYPE_STRING()
        .call()
        .await
        .expect("type string");
    assert_eq!(
        type_string,
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)"
    );
    assert_eq!(
        exact.WITNESS_TYPEHASH().call().await.expect("typehash"),
        keccak256("Witness(address to,uint256 validAfter)")
    );
    let upto = upto::UptoPermit2Proxy::new(UPTO_PERMIT2_PROXY, provider);
    assert_eq!(upto.PERMIT2().call().await.expect("PERMIT2"), PERMIT2);
    assert_eq!(
        upto.WITNESS_TYPE_STRING()
            .call()
            .await
            .expect("type string"),
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,address facilitator,uint256 validAfter)"
    );
    assert_eq!(
        upto.WITNESS_TYPEHASH().call().await.expect("typehash"),
        keccak256("Witness(address to,address facilitator,uint256 validAfter)")
    );
}

#[tokio::test]
async fn domain_separator_is_the_canonical_one() {
    let Some(chain) = start("domain_separator_is_the_canonical_one").await else {
        return;
    };
    let permit2 = Permit2::new(PERMIT2, chain.provider().clone());
    let separator = permit2
        .DOMAIN_SEPARATOR()
        .call()
        .await
        .expect("DOMAIN_SEPARATOR");
    let by_hand = keccak256(
        (
            keccak256("EIP712Domain(string name,uint256 chainId,address verifyingContract)"),
            keccak256("Permit2"),
            U256::from(CHAIN_ID),
            PERMIT2,
        )
            .abi_encode(),
    );
    assert_eq!(separator, by_hand);
    let domain =
        eip712_domain! { name: "Permit2", chain_id: CHAIN_ID, verifying_contract: PERMIT2, };
    assert_eq!(separator, domain.separator());
    assert_eq!(separator, permit2_domain().separator());
}

#[tokio::test]
async fn exact_settles_the_signed_amount_once() {
    let Some(chain) = start("exact_settles_the_signed_amount_once").await else {
        return;
    };
    let token = funded_plain_token(&chain, 5_000_000).await;
    let facilitator = chain.provider_with_key(FACILITATOR_KEY).expect("provider");
    let proxy = exact::ExactPermit2Proxy::new(EXACT_PERMIT2_PROXY, facilitator);

    let permit = exact_permit(token, 1_250_000, 7, 0);
    let signature = sign(&permit);
    let settle = || {
        proxy.settle(
            permit.permit(),
            PAYER,
            permit.witness.clone(),
            signature.clone(),
        )
    };
    let receipt = mined("exact settle", settle().send().await).await;
    assert!(emitted::<exact::ExactPermit2Proxy::Settled>(
        &receipt,
        EXACT_PERMIT2_PROXY
    ));
    assert_eq!(
        balance(&chain, token, MERCHANT).await,
        U256::from(1_250_000)
    );
    assert_eq!(balance(&chain, token, PAYER).await, U256::from(3_750_000));

    assert_eq!(
        refused("replay", FACILITATOR, settle()).await,
        "InvalidNonce()"
    );

    let early = exact_permit(token, 1_000, 8, now() + 3600);
    let sent = proxy.settle(early.permit(), PAYER, early.witness.clone(), sign(&early));
    assert_eq!(
        refused("too early", FACILITATOR, sent).await,
        "PaymentTooEarly()"
    );

    // The witness is part of what was signed: another recipient is another message.
    let redirected = exact::Witness {
        to: FACILITATOR,
        validAfter: U256::ZERO,
    };
    let other = exact_permit(token, 1_000, 9, 0);
    let sent = proxy.settle(other.permit(), PAYER, redirected, sign(&other));
    assert_eq!(
        refused("redirected", FACILITATOR, sent).await,
        "InvalidSigner()"
    );
    assert_eq!(
        balance(&chain, token, MERCHANT).await,
        U256::from(1_250_000)
    );
}

type UptoProxy = upto::UptoPermit2Proxy::UptoPermit2ProxyInstance<DynProvider>;

/// `settle(permit, amount, PAYER, witness, signature)` on the upto proxy, as `proxy`'s sender.
fn upto_settle<'a>(
    proxy: &'a UptoProxy,
    permit: &upto::PermitWitnessTransferFrom,
    signature: &Bytes,
    amount: u64,
) -> SolCallBuilder<&'a DynProvider, upto::UptoPermit2Proxy::settleCall> {
    proxy.settle(
        permit.permit(),
        U256::from(amount),
        PAYER,
        permit.witness.clone(),
        signature.clone(),
    )
}

#[tokio::test]
async fn upto_settles_what_the_facilitator_charges() {
    let Some(chain) = start("upto_settles_what_the_facilitator_charges").await else {
        return;
    };
    let token = funded_plain_token(&chain, 5_000_000).await;
    let permit = upto_permit(token, 1_000_000, 11);
    let signature = sign(&permit);
    let settle = |proxy, amount| upto_settle(proxy, &permit, &signature, amount);

    let stranger = chain
        .provider_with_key(TS_FACILITATOR_KEY)
        .expect("provider");
    let by_stranger = upto::UptoPermit2Proxy::new(UPTO_PERMIT2_PROXY, stranger);
    let sent = settle(&by_stranger, 400_000);
    assert_eq!(
        refused("other sender", TS_FACILITATOR, sent).await,
        "UnauthorizedFacilitator()"
    );

    let facilitator = chain.provider_with_key(FACILITATOR_KEY).expect("provider");
    let proxy = upto::UptoPermit2Proxy::new(UPTO_PERMIT2_PROXY, facilitator);
    let sent = settle(&proxy, 1_000_001);
    assert_eq!(
        refused("above permitted", FACILITATOR, sent).await,
        "AmountExceedsPermitted()"
    );

    let receipt = mined("upto settle", settle(&proxy, 400_000).send().await).await;
    assert!(emitted::<upto::UptoPermit2Proxy::Settled>(
        &receipt,
        UPTO_PERMIT2_PROXY
    ));
    assert_eq!(balance(&chain, token, MERCHANT).await, U256::from(400_000));
    assert_eq!(balance(&chain, token, PAYER).await, U256::from(4_600_000));
    assert_eq!(
        refused("second charge", FACILITATOR, settle(&proxy, 1)).await,
        "InvalidNonce()"
    );
}

#[tokio::test]
async fn a_signature_binds_its_spender() {
    let Some(chain) = start("a_signature_binds_its_spender").await else {
        return;
    };
    let token = funded_plain_token(&chain, 5_000_000).await;
    let facilitator = chain.provider_with_key(FACILITATOR_KEY).expect("provider");
    let proxy = upto::UptoPermit2Proxy::new(UPTO_PERMIT2_PROXY, facilitator);

    // Signed for the exact proxy, submitted to the upto proxy with the same recipient.
    let for_exact = exact_permit(token, 1_000, 21, 0);
    let signature = sign(&for_exact);
    let witness = upto::Witness {
        to: MERCHANT,
        facilitator: FACILITATOR,
        validAfter: U256::ZERO,
    };
    let permit = upto::PermitTransferFrom {
        permitted: upto::TokenPermissions {
            token,
            amount: U256::from(1_000),
        },
        nonce: for_exact.nonce,
        deadline: for_exact.deadline,
    };
    let sent = proxy.settle(permit, U256::from(1_000), PAYER, witness, signature);
    assert_eq!(
        refused("exact signature at upto", FACILITATOR, sent).await,
        "InvalidSigner()"
    );

    // The upto type, but naming the exact proxy as spender.
    let mut wrong_spender = upto_permit(token, 1_000, 22);
    wrong_spender.spender = EXACT_PERMIT2_PROXY;
    let sent = proxy.settle(
        wrong_spender.permit(),
        U256::from(1_000),
        PAYER,
        wrong_spender.witness.clone(),
        sign(&wrong_spender),
    );
    assert_eq!(
        refused("other spender", FACILITATOR, sent).await,
        "InvalidSigner()"
    );
    assert_eq!(balance(&chain, token, MERCHANT).await, U256::ZERO);
}

#[tokio::test]
async fn upto_settles_usdc_after_approval() {
    let Some(chain) = start("upto_settles_usdc_after_approval").await else {
        return;
    };
    let before = chain.usdc_balance(PAYER).await.expect("balance");
    let permit = upto_permit(USDC, 2_000_000, 31);
    let signature = sign(&permit);
    let facilitator = chain.provider_with_key(FACILITATOR_KEY).expect("provider");
    let proxy = upto::UptoPermit2Proxy::new(UPTO_PERMIT2_PROXY, facilitator);
    let settle = || {
        proxy.settle(
            permit.permit(),
            U256::from(750_000),
            PAYER,
            permit.witness.clone(),
            signature.clone(),
        )
    };
    let reason = refused("before approval", FACILITATOR, settle()).await;
    // solmate's safeTransferFrom, which Permit2 uses, replaces the token's own reason.
    assert_eq!(reason, "Error(\"TRANSFER_FROM_FAILED\")");

    chain
        .approve_permit2(USDC, PAYER_KEY)
        .await
        .expect("approve");
    mined("upto settle USDC", settle().send().await).await;
    assert_eq!(
        chain.usdc_balance(MERCHANT).await.expect("balance"),
        U256::from(750_000)
    );
    assert_eq!(
        chain.usdc_balance(PAYER).await.expect("balance"),
        before - U256::from(750_000)
    );
}

alloy::sol! {
    /// EIP-2612's signed message.
    struct Permit { address owner; address spender; uint256 value; uint256 nonce; uint256 deadline; }
}

/// PAYER's EIP-2612 permit letting Permit2 spend `value` of a PermitToken named "Permit USD".
fn eip2612(token: Address, value: u64, deadline: u64) -> exact::EIP2612Permit {
    let message = Permit {
        owner: PAYER,
        spender: PERMIT2,
        value: U256::from(value),
        nonce: U256::ZERO,
        deadline: U256::from(deadline),
    };
    let domain = eip712_domain! { name: "Permit USD", version: "1", chain_id: CHAIN_ID, verifying_contract: token, };
    let signature = payer()
        .sign_hash_sync(&message.eip712_signing_hash(&domain))
        .expect("sign");
    exact::EIP2612Permit {
        value: U256::from(value),
        deadline: U256::from(deadline),
        r: B256::from(signature.r()),
        s: B256::from(signature.s()),
        v: 27 + u8::from(signature.v()),
    }
}

#[tokio::test]
async fn exact_with_an_eip2612_permit_needs_no_approval() {
    let Some(chain) = start("exact_with_an_eip2612_permit_needs_no_approval").await else {
        return;
    };
    let token = chain
        .deploy_permit_token("Permit USD", "PUSD", 6)
        .await
        .expect("deploy");
    chain
        .mint_plain(token, PAYER, U256::from(3_000_000))
        .await
        .expect("mint");
    let facilitator = chain.provider_with_key(FACILITATOR_KEY).expect("provider");
    let proxy = exact::ExactPermit2Proxy::new(EXACT_PERMIT2_PROXY, facilitator.clone());
    let permit = exact_permit(token, 1_000_000, 41, 0);
    let signature = sign(&permit);

    let short = eip2612(token, 999_999, now() + 300);
    let sent = proxy.settleWithPermit(
        short,
        permit.permit(),
        PAYER,
        permit.witness.clone(),
        signature.clone(),
    );
    assert_eq!(
        refused("permit below amount", FACILITATOR, sent).await,
        "Permit2612AmountMismatch()"
    );

    // Someone submits the EIP-2612 permit first: settlement still goes through.
    let approval = eip2612(token, 1_000_000, now() + 300);
    let token_api = TestToken::new(token, facilitator);
    let front_run = token_api.permit(
        PAYER,
        PERMIT2,
        approval.value,
        approval.deadline,
        approval.v,
        approval.r,
        approval.s,
    );
    mined("front-run permit", front_run.send().await).await;
    let sent = proxy
        .settleWithPermit(
            approval,
            permit.permit(),
            PAYER,
            permit.witness.clone(),
            signature,
        )
        .send()
        .await;
    let receipt = mined("settleWithPermit", sent).await;
    assert!(emitted::<exact::ExactPermit2Proxy::SettledWithPermit>(
        &receipt,
        EXACT_PERMIT2_PROXY
    ));
    assert_eq!(
        balance(&chain, token, MERCHANT).await,
        U256::from(1_000_000)
    );
}

#[tokio::test]
async fn upto_with_an_eip2612_permit_covers_the_charged_amount() {
    let Some(chain) = start("upto_with_an_eip2612_permit_covers_the_charged_amount").await else {
        return;
    };
    let token = chain
        .deploy_permit_token("Permit USD", "PUSD", 6)
        .await
        .expect("deploy");
    chain
        .mint_plain(token, PAYER, U256::from(3_000_000))
        .await
        .expect("mint");
    let facilitator = chain.provider_with_key(FACILITATOR_KEY).expect("provider");
    let proxy = upto::UptoPermit2Proxy::new(UPTO_PERMIT2_PROXY, facilitator);
    let permit = upto_permit(token, 1_000_000, 51);
    let signature = sign(&permit);
    // The EIP-2612 value must cover what is charged (600000), not the signed maximum.
    let as_upto = |p: exact::EIP2612Permit| upto::EIP2612Permit {
        value: p.value,
        deadline: p.deadline,
        r: p.r,
        s: p.s,
        v: p.v,
    };
    let call = |approval: upto::EIP2612Permit, amount: u64| {
        proxy.settleWithPermit(
            approval,
            permit.permit(),
            U256::from(amount),
            PAYER,
            permit.witness.clone(),
            signature.clone(),
        )
    };
    let approval = as_upto(eip2612(token, 600_000, now() + 300));
    let sent = call(approval.clone(), 600_001);
    assert_eq!(
        refused("charge above the EIP-2612 value", FACILITATOR, sent).await,
        "Permit2612AmountMismatch()"
    );
    let receipt = mined(
        "upto settleWithPermit",
        call(approval, 600_000).send().await,
    )
    .await;
    assert!(emitted::<upto::UptoPermit2Proxy::SettledWithPermit>(
        &receipt,
        UPTO_PERMIT2_PROXY
    ));
    assert_eq!(balance(&chain, token, MERCHANT).await, U256::from(600_000));
    assert_eq!(balance(&chain, token, PAYER).await, U256::from(2_400_000));
}

/// Runs `node interop/scripts/<script> <args>` with PAYER's key in `X402_PAYER_KEY`, bounded to
/// 60 s; panics with its stderr when it fails. Returns its stdout.
fn run_node(chain: &Chain, script: &str, args: &[String]) -> Vec<u8> {
    let paths = chain.paths();
    let mut child = Command::new(&paths.node)
        .arg(format!("scripts/{script}"))
        .args(args)
        .current_dir(&paths.interop)
        .env("X402_PAYER_KEY", PAYER_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{script} ran over 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    output.stdout
}

/// The `payload` object of a payment signed by the official `@x402/evm` client
/// (`interop/scripts/permit2_sign.mjs`).
fn official_payload(chain: &Chain, args: &[String]) -> Value {
    let stdout = run_node(chain, "permit2_sign.mjs", args);
    let json: Value = serde_json::from_slice(&stdout).expect("JSON payload");
    json.get("payload").cloned().expect("payload")
}

#[tokio::test]
async fn proxy_abis_are_the_official_clients() {
    let Some(chain) = start("proxy_abis_are_the_official_clients").await else {
        return;
    };
    let report = run_node(&chain, "permit2_abi.mjs", &[]);
    eprintln!("{}", String::from_utf8_lossy(&report));
}

fn field<T: std::str::FromStr>(json: &Value, path: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    let value = json
        .pointer(path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {path}"));
    value
        .parse()
        .unwrap_or_else(|e| panic!("{path} = {value}: {e:?}"))
}

#[tokio::test]
async fn official_client_signatures_settle() {
    let Some(chain) = start("official_client_signatures_settle").await else {
        return;
    };
    let token = funded_plain_token(&chain, 5_000_000).await;
    let facilitator = chain.provider_with_key(FACILITATOR_KEY).expect("provider");
    let args = |scheme: &str| {
        let mut args = vec![
            scheme.to_owned(),
            token.to_string(),
            "600000".into(),
            MERCHANT.to_string(),
        ];
        if scheme == "upto" {
            args.push(FACILITATOR.to_string());
        }
        args
    };

    let exact_payload = official_payload(&chain, &args("exact"));
    let auth = "/permit2Authorization";
    let permit = exact::PermitTransferFrom {
        permitted: exact::TokenPermissions {
            token: field(&exact_payload, &format!("{auth}/permitted/token")),
            amount: field(&exact_payload, &format!("{auth}/permitted/amount")),
        },
        nonce: field(&exact_payload, &format!("{auth}/nonce")),
        deadline: field(&exact_payload, &format!("{auth}/deadline")),
    };
    assert_eq!(
        field::<Address>(&exact_payload, &format!("{auth}/spender")),
        EXACT_PERMIT2_PROXY
    );
    let witness = exact::Witness {
        to: field(&exact_payload, &format!("{auth}/witness/to")),
        validAfter: field(&exact_payload, &format!("{auth}/witness/validAfter")),
    };
    let signature: Bytes = field(&exact_payload, "/signature");
    let owner: Address = field(&exact_payload, &format!("{auth}/from"));
    let proxy = exact::ExactPermit2Proxy::new(EXACT_PERMIT2_PROXY, facilitator.clone());
    mined(
        "official exact",
        proxy.settle(permit, owner, witness, signature).send().await,
    )
    .await;
    assert_eq!(balance(&chain, token, MERCHANT).await, U256::from(600_000));

    let upto_payload = official_payload(&chain, &args("upto"));
    let permit = upto::PermitTransferFrom {
        permitted: upto::TokenPermissions {
            token: field(&upto_payload, &format!("{auth}/permitted/token")),
            amount: field(&upto_payload, &format!("{auth}/permitted/amount")),
        },
        nonce: field(&upto_payload, &format!("{auth}/nonce")),
        deadline: field(&upto_payload, &format!("{auth}/deadline")),
    };
    assert_eq!(
        field::<Address>(&upto_payload, &format!("{auth}/spender")),
        UPTO_PERMIT2_PROXY
    );
    let witness = upto::Witness {
        to: field(&upto_payload, &format!("{auth}/witness/to")),
        facilitator: field(&upto_payload, &format!("{auth}/witness/facilitator")),
        validAfter: field(&upto_payload, &format!("{auth}/witness/validAfter")),
    };
    let signature: Bytes = field(&upto_payload, "/signature");
    let proxy = upto::UptoPermit2Proxy::new(UPTO_PERMIT2_PROXY, facilitator);
    let sent = proxy
        .settle(permit, U256::from(250_000), owner, witness, signature)
        .send()
        .await;
    mined("official upto", sent).await;
    assert_eq!(balance(&chain, token, MERCHANT).await, U256::from(850_000));
    assert_eq!(balance(&chain, token, PAYER).await, U256::from(4_150_000));
}
