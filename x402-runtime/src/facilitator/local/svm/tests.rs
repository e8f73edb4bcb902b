use serde_json::json;
use x402_testbed::svm::{FACILITATOR, MERCHANT, TS_FACILITATOR, USDC_DEVNET};

use super::super::{Facilitator as _, FacilitatorError, LocalFacilitator};
use super::*;
use crate::network::{SOLANA_DEVNET, SOLANA_MAINNET};

/// A port nothing listens on: any RPC call would fail as unreachable.
const DEAD_RPC: &str = "http://127.0.0.1:9";

fn facilitator(key: Option<&str>) -> LocalFacilitator {
    let mut builder = LocalFacilitator::builder()
        .network(SOLANA_DEVNET)
        .default_svm_rpc_url(DEAD_RPC);
    if let Some(key) = key {
        builder = builder.svm_signer_key(key);
    }
    builder.build().expect("facilitator")
}

/// A v2 request for devnet USDC whose offer names `fee_payer`.
fn request(fee_payer: &str) -> FacilitatorRequest {
    let requirements = json!({
        "scheme": "exact",
        "network": SOLANA_DEVNET,
        "amount": "10000",
        "asset": USDC_DEVNET,
        "payTo": MERCHANT.address,
        "maxTimeoutSeconds": 60,
        "extra": {"feePayer": fee_payer},
    });
    serde_json::from_value(json!({
        "x402Version": 2,
        "paymentPayload": {
            "x402Version": 2,
            "resource": {"url": "http://127.0.0.1/paid"},
            "accepted": requirements,
            "payload": {"transaction": "AAAA"},
        },
        "paymentRequirements": requirements,
    }))
    .expect("request")
}

#[test]
fn the_key_is_never_shown() {
    let facilitator = facilitator(Some(FACILITATOR.secret_key));
    let shown = format!("{facilitator:?}");
    assert!(shown.contains(FACILITATOR.address), "{shown}");
    assert!(!shown.contains(FACILITATOR.secret_key), "{shown}");
    assert!(!shown.contains(&FACILITATOR.secret_key[..20]), "{shown}");

    // A keypair whose public half is another key's.
    let mut pair = bs58::decode(FACILITATOR.secret_key)
        .into_vec()
        .expect("base58");
    let other = bs58::decode(MERCHANT.address).into_vec().expect("base58");
    pair[32..].copy_from_slice(&other);
    let mismatched = bs58::encode(&pair).into_string();
    let typo = format!(
        "{}0",
        &FACILITATOR.secret_key[..FACILITATOR.secret_key.len() - 1]
    );
    for (bad, what) in [(mismatched.as_str(), "public half"), (typo.as_str(), "")] {
        let error = LocalFacilitator::builder()
            .network(SOLANA_DEVNET)
            .svm_signer_key(bad)
            .build()
            .expect_err("a bad key is refused");
        let text = error.to_string();
        assert!(!text.contains(&bad[..20]), "{text}");
        assert!(text.contains(what), "{text}");
    }
}

#[test]
fn every_key_form_names_the_same_fee_payer() {
    let pair = bs58::decode(FACILITATOR.secret_key)
        .into_vec()
        .expect("base58");
    let seed = bs58::encode(&pair[..32]).into_string();
    let array = serde_json::to_string(&pair).expect("json");
    for form in [FACILITATOR.secret_key, &seed, &array] {
        let key = FeePayer::parse(form).expect("key");
        assert_eq!(key_to_string(key.address()), FACILITATOR.address);
    }
    assert!(FeePayer::parse("[1, 2, 3]").is_err());
    assert!(FeePayer::parse("0x1234").is_err());
}

#[tokio::test]
async fn supported_lists_exact_with_the_fee_payer() {
    let supported = facilitator(Some(FACILITATOR.secret_key))
        .supported()
        .await
        .expect("supported");
    let wire = serde_json::to_value(&supported).expect("json");
    let kinds = wire["kinds"].as_array().expect("kinds");
    let extra = json!({"feePayer": FACILITATOR.address});
    assert!(
        kinds.contains(
            &json!({"x402Version": 2, "scheme": "exact", "network": SOLANA_DEVNET, "extra": extra})
        ),
        "{wire}"
    );
    assert!(
        kinds.contains(&json!({"x402Version": 1, "scheme": "exact", "network": "solana-devnet", "extra": extra})),
        "{wire}"
    );
    assert_eq!(kinds.len(), 2, "{wire}");
    assert_eq!(wire["signers"]["solana:*"], json!([FACILITATOR.address]));
    assert_eq!(wire["signers"]["eip155:*"], json!([]));
}

#[tokio::test]
async fn without_a_key_solana_is_verify_only_and_not_listed() {
    let facilitator = facilitator(None);
    let supported = facilitator.supported().await.expect("supported");
    assert!(supported.kinds.is_empty(), "{supported:?}");
    assert!(!supported.signers.contains_key("solana:*"));
    let error = facilitator
        .settle(&request(FACILITATOR.address))
        .await
        .expect_err("no key, no settlement");
    assert!(
        matches!(&error, FacilitatorError::Unreachable(why) if why.contains("fee payer")),
        "{error}"
    );
}

#[tokio::test]
async fn a_fee_payer_not_ours_is_refused_without_rpc() {
    // The RPC is dead: an answer proves no call was made.
    let facilitator = facilitator(Some(FACILITATOR.secret_key));
    let request = request(TS_FACILITATOR.address);
    let verdict = facilitator.verify(&request).await.expect("an answer");
    assert!(!verdict.is_valid);
    assert_eq!(
        verdict.invalid_reason.as_deref(),
        Some(reasons::FEE_PAYER_NOT_MANAGED)
    );
    let settled = facilitator.settle(&request).await.expect("an answer");
    assert!(!settled.success);
    assert_eq!(
        settled.error_reason.as_deref(),
        Some(reasons::FEE_PAYER_NOT_MANAGED)
    );
    assert_eq!(settled.transaction, "");
    assert_eq!(settled.network, SOLANA_DEVNET);
}

#[tokio::test]
async fn an_undecodable_transaction_is_refused_without_rpc() {
    let facilitator = facilitator(Some(FACILITATOR.secret_key));
    let verdict = facilitator
        .verify(&request(FACILITATOR.address))
        .await
        .expect("an answer");
    assert_eq!(
        verdict.invalid_reason.as_deref(),
        Some(rules::codes::COULD_NOT_BE_DECODED)
    );
}

#[tokio::test]
async fn a_solana_network_not_served_is_named() {
    let facilitator = LocalFacilitator::builder()
        .network(SOLANA_MAINNET)
        .svm_signer_key(FACILITATOR.secret_key)
        .build()
        .expect("facilitator");
    let verdict = facilitator
        .verify(&request(FACILITATOR.address))
        .await
        .expect("an answer");
    assert_eq!(
        verdict.invalid_reason.as_deref(),
        Some(super::super::reasons::INVALID_NETWORK)
    );
}

#[test]
fn rpc_urls_come_from_the_environment() {
    let env = |name: &str| match name {
        "X402_SVM_RPC_URL" => Some("http://127.0.0.1:7".to_owned()),
        "X402_SVM_RPC_URL_DEVNET" => Some(" http://127.0.0.1:8 ".to_owned()),
        "X402_SVM_FACILITATOR_KEY" => Some(FACILITATOR.secret_key.to_owned()),
        _ => None,
    };
    let options = SvmOptions::from_lookup(&env);
    let devnet = Network::from_caip2(SOLANA_DEVNET).expect("devnet");
    let mainnet = Network::from_caip2(SOLANA_MAINNET).expect("mainnet");
    assert_eq!(options.rpc_url(&devnet).ok(), Some("http://127.0.0.1:8"));
    assert_eq!(options.rpc_url(&mainnet).ok(), Some("http://127.0.0.1:7"));
    let backend = options.backend(&devnet).expect("backend");
    assert_eq!(
        backend.fee_payer_address().as_deref(),
        Some(FACILITATOR.address)
    );
    assert_eq!(
        SvmOptions::default().rpc_url(&mainnet).ok(),
        Some(crate::schemes::exact_svm::rpc::MAINNET_RPC_URL)
    );
}
