//! `x402_runtime::schemes::exact_evm::chain` on a real chain: anvil (chain 84532) with Circle's FiatTokenV2_2 at
//! Base Sepolia's USDC address. Authorizations are signed with the public test keys, settled for
//! real through the local facilitator, and read back with both `RpcChainReader` and
//! `LocalFacilitator`, which must give the same answer.

mod support;

use alloy::eips::BlockNumberOrTag;
use alloy::providers::Provider;
use serde_json::{Value, json};
use support::{Payer, Terms, anvil_rpc, decode_b64, local_facilitator, start_chain, unix_now};
use x402_runtime::facilitator::{Facilitator, LocalFacilitator};
use x402_runtime::proto::{FacilitatorRequest, PaymentRequired, Requirements};
use x402_runtime::schemes::exact_evm::chain::{
    Authorization, ChainError, ChainReader, EXPIRY_MARGIN, OnChain, RpcChainReader,
};
use x402_testbed::{Chain, MERCHANT, NETWORK, PAYER, PAYER_KEY, USDC};

fn offer() -> Value {
    json!({"scheme": "exact", "network": NETWORK, "amount": "1000", "asset": USDC.to_checksum(None),
           "payTo": MERCHANT.to_checksum(None), "maxTimeoutSeconds": 60, "extra": {"name": "USDC", "version": "2"}})
}

/// A facilitator request carrying a fresh authorization signed by the payer, and the
/// authorization to look up.
fn signed(terms: &Terms) -> (FacilitatorRequest, Authorization) {
    let challenge: PaymentRequired = serde_json::from_value(json!({
        "x402Version": 2, "resource": {"url": "http://127.0.0.1/weather"}, "accepts": [offer()]
    }))
    .expect("challenge");
    let payment = Payer::new(PAYER_KEY).pay_v2(&challenge, terms);
    let payload: Value = decode_b64(&payment);
    let request = FacilitatorRequest {
        x402_version: 2,
        payment_payload: serde_json::value::to_raw_value(&payload).expect("raw"),
        payment_requirements: Requirements::V2(serde_json::from_value(offer()).expect("offer")),
    };
    let authorization = Authorization {
        network: NETWORK.to_owned(),
        asset: USDC,
        from: PAYER,
        nonce: terms.nonce,
        valid_before: terms.valid_before,
    };
    (request, authorization)
}

fn rpc_reader(chain: &Chain) -> RpcChainReader {
    RpcChainReader::builder()
        .rpc_url(NETWORK, chain.rpc_url())
        .build()
        .expect("reader")
}

/// What both readers say about `authorization`; they must agree.
async fn read(
    reader: &RpcChainReader,
    facilitator: &LocalFacilitator,
    authorization: &Authorization,
) -> OnChain {
    let by_rpc = reader.authorization(authorization).await.expect("rpc read");
    let by_facilitator = facilitator
        .authorization(authorization)
        .await
        .expect("facilitator read");
    assert_eq!(
        by_rpc, by_facilitator,
        "RpcChainReader and LocalFacilitator disagree"
    );
    by_rpc
}

/// Moves the chain's clock so that the next block is at least `target` (unix seconds), and
/// mines it. Returns the new latest block's timestamp.
async fn mine_at_least(chain: &Chain, target: u64) -> u64 {
    // anvil stamps the next block with the wall clock plus the offset (at least the latest + 1).
    let now = latest_timestamp(chain).await.max(unix_now());
    if target > now {
        anvil_rpc(chain, "evm_increaseTime", json!([target - now])).await;
    }
    anvil_rpc(chain, "evm_mine", json!([])).await;
    let mined = latest_timestamp(chain).await;
    assert!(mined >= target, "mined at {mined}, wanted {target}");
    mined
}

async fn latest_timestamp(chain: &Chain) -> u64 {
    chain
        .provider()
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .expect("rpc")
        .expect("latest block")
        .header
        .timestamp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_authorization_is_used_by_the_settling_transaction() {
    let Some(chain) =
        start_chain("a_settled_authorization_is_used_by_the_settling_transaction").await
    else {
        return;
    };
    let facilitator = local_facilitator(Some(chain.rpc_url()));
    let reader = rpc_reader(&chain);
    let (request, authorization) = signed(&Terms::default());
    let settled = facilitator.settle(&request).await.expect("settle");
    assert!(settled.success, "{settled:?}");
    let transaction = settled.transaction.clone();
    assert_eq!(transaction.len(), 66, "{transaction}");
    assert_eq!(transaction, transaction.to_ascii_lowercase());
    assert_eq!(
        read(&reader, &facilitator, &authorization).await,
        OnChain::Used {
            transaction: Some(transaction.clone())
        }
    );

    // The log search covers the configured number of blocks back from the latest.
    chain.mine().await.expect("mine");
    chain.mine().await.expect("mine");
    let short = |blocks| {
        RpcChainReader::builder()
            .rpc_url(NETWORK, chain.rpc_url())
            .lookback_blocks(blocks)
            .build()
            .expect("reader")
    };
    assert_eq!(
        short(2).authorization(&authorization).await,
        Ok(OnChain::Used { transaction: None }),
        "the settling block is 3 blocks back"
    );
    assert_eq!(
        short(3).authorization(&authorization).await,
        Ok(OnChain::Used {
            transaction: Some(transaction.clone())
        })
    );
    // Used stays used once validBefore is long past.
    mine_at_least(&chain, authorization.valid_before + EXPIRY_MARGIN + 60).await;
    assert_eq!(
        read(&reader, &facilitator, &authorization).await,
        OnChain::Used {
            transaction: Some(transaction)
        }
    );

    // A URL for another chain is refused rather than read.
    let wrong = RpcChainReader::builder()
        .rpc_url("eip155:8453", chain.rpc_url())
        .build()
        .expect("reader");
    let elsewhere = Authorization {
        network: "eip155:8453".to_owned(),
        ..authorization
    };
    assert_eq!(
        wrong.authorization(&elsewhere).await,
        Err(ChainError(
            "the RPC for eip155:8453 serves chain 84532, not 8453".to_owned()
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsent_authorization_is_unused_until_its_time_is_past() {
    let Some(chain) = start_chain("an_unsent_authorization_is_unused_until_its_time_is_past").await
    else {
        return;
    };
    let facilitator = local_facilitator(Some(chain.rpc_url()));
    let reader = rpc_reader(&chain);
    let terms = Terms {
        valid_before: unix_now() + 60,
        ..Terms::default()
    };
    let (request, authorization) = signed(&terms);
    let verified = facilitator.verify(&request).await.expect("verify");
    assert!(verified.is_valid, "a usable authorization: {verified:?}");
    assert_eq!(
        read(&reader, &facilitator, &authorization).await,
        OnChain::Unused
    );

    // Past validBefore but within the margin: the token refuses it, yet it is not called dead.
    let mined = mine_at_least(&chain, terms.valid_before + 10).await;
    assert!(mined < terms.valid_before + EXPIRY_MARGIN, "{mined}");
    assert_eq!(
        read(&reader, &facilitator, &authorization).await,
        OnChain::Unused
    );

    // At validBefore + EXPIRY_MARGIN it can never be used.
    mine_at_least(&chain, terms.valid_before + EXPIRY_MARGIN).await;
    assert_eq!(
        read(&reader, &facilitator, &authorization).await,
        OnChain::Expired
    );
    // The chain agrees: settling it now is refused as expired, and nothing is used.
    let refused = facilitator.settle(&request).await.expect("settle");
    assert_eq!(
        refused.error_reason.as_deref(),
        Some("invalid_exact_evm_payload_authorization_valid_before"),
        "{refused:?}"
    );
    assert_eq!(
        read(&reader, &facilitator, &authorization).await,
        OnChain::Expired
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_without_an_rpc_is_an_error() {
    let (_, authorization) = signed(&Terms::default());
    let reader = RpcChainReader::builder()
        .rpc_url("eip155:8453", "http://127.0.0.1:9")
        .build()
        .expect("reader");
    let no_url = Err(ChainError("no RPC URL for network eip155:84532".to_owned()));
    assert_eq!(reader.authorization(&authorization).await, no_url);
    // The facilitator serves the network, but without an RPC URL.
    assert_eq!(
        local_facilitator(None).authorization(&authorization).await,
        no_url
    );
    // A network the facilitator does not serve.
    let elsewhere = Authorization {
        network: "eip155:8453".to_owned(),
        ..authorization.clone()
    };
    assert_eq!(
        local_facilitator(None).authorization(&elsewhere).await,
        Err(ChainError(
            "the local facilitator does not serve network eip155:8453".to_owned()
        ))
    );
    // A URL nobody answers at is an error too, never an answer.
    let down = RpcChainReader::builder()
        .rpc_url(NETWORK, "http://127.0.0.1:9")
        .build()
        .expect("reader");
    let error = down
        .authorization(&authorization)
        .await
        .expect_err("nothing listens");
    assert!(
        error
            .0
            .starts_with("eip155:84532: reading the latest block failed: "),
        "{error}"
    );
    // No network, so no URL: no reader.
    assert!(RpcChainReader::from_env(&[]).expect("config").is_none());
}
