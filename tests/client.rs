//! The paying client (`x402_runtime::client::X402Client`): pays our example server and the
//! official `@x402/express` server (v2) and a v1 challenge, settled on a real chain; refuses
//! payments over its limits before signing; never pays twice when an answer is lost.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::providers::Provider;
use alloy_primitives::{B256, U256};
use axum::http::HeaderName;
use support::{
    DropProxy, Facilitator, assert_price_moved, chain_api, installed_testbed,
    official_express_server, paywall, serve, start_chain, usdc_balances,
};
use x402_runtime::Currency;
use x402_runtime::client::{ClientError, PaymentSigner, SpendStatus, X402Client};
use x402_runtime::schemes::permit2::PERMIT2;
use x402_testbed::{Chain, MERCHANT, NETWORK, PAYER, PAYER_KEY, Paths, USDC};

async fn bed(test: &str) -> Option<(Chain, Paths)> {
    let paths = installed_testbed(test).await?;
    let chain = Chain::start().await.expect("chain");
    Some((chain, paths))
}

/// A client for the test payer; `limit` is the per-request maximum in USDC.
fn client(limit: &str) -> X402Client {
    X402Client::builder(PaymentSigner::from_key(PAYER_KEY).expect("key"))
        .http(
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(0)
                .build()
                .expect("http"),
        )
        .max_per_request(Currency::Usdc, limit)
        .build()
        .expect("client")
}

async fn balances(chain: &Chain) -> (U256, U256) {
    usdc_balances(chain, PAYER).await
}

/// Asserts that exactly `price` moved from the payer to the merchant since `before`, and that
/// `transaction` is a mined, successful transaction on the chain.
async fn assert_moved(chain: &Chain, before: (U256, U256), price: u64, transaction: &str) {
    assert_price_moved(chain, PAYER, before, price).await;
    let hash: B256 = transaction.parse().expect("32-byte transaction hash");
    let receipt = chain
        .provider()
        .get_transaction_receipt(hash)
        .await
        .expect("rpc")
        .expect("the transaction is mined");
    assert!(receipt.status(), "the transaction succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_pays_our_server_on_chain() {
    let Some((chain, _paths)) = bed("our_client_pays_our_server_on_chain").await else {
        return;
    };
    let base = chain_api(chain.rpc_url()).await;
    let client = client("0.01");

    let before = balances(&chain).await;
    let answer = client
        .get(&format!("{base}/weather?city=Lima"))
        .await
        .expect("paid");
    assert_eq!(answer.status(), 200);
    assert!(answer.text().contains("Lima"));
    let receipt = answer.receipt().expect("receipt").clone();
    assert!(receipt.success);
    assert_eq!(receipt.network, NETWORK);
    assert_moved(&chain, before, 1000, &receipt.transaction).await;

    let before = balances(&chain).await;
    let answer = client
        .post_json(
            &format!("{base}/forecast"),
            &serde_json::json!({"city": "Lima", "days": 2}),
        )
        .await
        .expect("paid");
    assert_eq!(answer.status(), 200);
    let forecast = answer.receipt().expect("receipt").transaction.clone();
    assert_moved(&chain, before, 10_000, &forecast).await;

    let free = client.get(&format!("{base}/health")).await.expect("free");
    assert_eq!(free.status(), 200);
    assert!(free.spend().is_none() && free.receipt().is_none());

    let log = client.spend_log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].amount, "0.001");
    assert_eq!(
        log[0].transaction.as_deref(),
        Some(receipt.transaction.as_str())
    );
    assert_eq!(log[1].amount, "0.01");
    assert_eq!(log[1].transaction.as_deref(), Some(forecast.as_str()));
    for spend in &log {
        assert_eq!(spend.status, SpendStatus::Settled);
        assert_eq!(spend.pay_to, MERCHANT);
        assert_eq!(spend.payer, PAYER);
        assert_eq!(spend.network, NETWORK);
    }
    assert_eq!(client.spent(Currency::Usdc), "0.011");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_pays_the_official_express_server() {
    let Some((chain, paths)) = bed("our_client_pays_the_official_express_server").await else {
        return;
    };
    let (_server, base) = official_express_server(&paths, &chain).await;
    let client = client("0.001");
    let before = balances(&chain).await;
    let answer = client.get(&format!("{base}/paid")).await.expect("paid");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text(), r#"{"paid":true}"#);
    let receipt = answer.receipt().expect("PAYMENT-RESPONSE").clone();
    assert!(receipt.success, "{receipt:?}");
    assert_moved(&chain, before, 1000, &receipt.transaction).await;
    assert_eq!(
        client.spend_log()[0].transaction.as_deref(),
        Some(receipt.transaction.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_pays_a_v1_challenge() {
    let Some((chain, _paths)) = bed("our_client_pays_a_v1_challenge").await else {
        return;
    };
    // The example API with its v2 header removed: a 402 that only carries the v1 body.
    let upstream = chain_api(chain.rpc_url()).await;
    let v1_only = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let upstream = upstream.clone();
        async move {
            let http = reqwest::Client::new();
            let mut forwarded = http.request(
                request.method().clone(),
                format!("{upstream}{}", request.uri()),
            );
            for (name, value) in request.headers() {
                forwarded = forwarded.header(name, value);
            }
            let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                .await
                .expect("body");
            let answer = forwarded.body(body).send().await.expect("upstream");
            let mut response = axum::response::Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != HeaderName::from_static("payment-required") {
                    response = response.header(name, value);
                }
            }
            response
                .body(axum::body::Body::from(answer.bytes().await.expect("body")))
                .expect("response")
        }
    });
    let base = serve(v1_only).await;
    let probe = reqwest::get(format!("{base}/weather?city=Quito"))
        .await
        .expect("probe");
    assert_eq!(probe.status(), 402);
    assert!(probe.headers().get("payment-required").is_none());

    let client = client("0.01");
    let before = balances(&chain).await;
    let answer = client
        .get(&format!("{base}/weather?city=Quito"))
        .await
        .expect("paid");
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().contains_key("x-payment-response"));
    let receipt = answer.receipt().expect("X-PAYMENT-RESPONSE").clone();
    assert!(receipt.success);
    assert_eq!(receipt.network, "base-sepolia");
    assert_moved(&chain, before, 1000, &receipt.transaction).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_refuse_before_anything_is_signed() {
    let facilitator = Facilitator::start().await;
    let base = serve(example_weather::app(paywall(&facilitator))).await;
    let client = X402Client::builder(PaymentSigner::from_key(PAYER_KEY).expect("key"))
        .max_per_request(Currency::Usdc, "0.005")
        .budget(Currency::Usdc, "0.0015")
        .build()
        .expect("client");

    // Over the per-request maximum: refused, nothing signed, nothing sent to the facilitator.
    let refused = client
        .post_json(
            &format!("{base}/forecast"),
            &serde_json::json!({"city": "Oslo", "days": 1}),
        )
        .await
        .expect_err("0.01 is over 0.005");
    assert!(
        matches!(&refused, ClientError::OverRequestLimit { price, limit }
            if price == "0.01 USDC" && limit == "0.005 USDC"),
        "{refused}"
    );
    assert!(refused.spend().is_none());
    assert!(client.spend_log().is_empty());
    assert_eq!(facilitator.calls().len(), 0);

    // A quote over the maximum is refused the same way: the limit applies to the quoted amount.
    let quoted = client
        .get(&format!("{base}/history?city=Oslo&days=6"))
        .await
        .expect_err("0.006 is over 0.005");
    assert!(
        matches!(&quoted, ClientError::OverRequestLimit { price, limit }
            if price == "0.006 USDC" && limit == "0.005 USDC"),
        "{quoted}"
    );
    assert!(client.spend_log().is_empty());
    assert_eq!(facilitator.calls().len(), 0);

    // Within both: paid.
    let paid = client
        .get(&format!("{base}/weather?city=Oslo"))
        .await
        .expect("0.001 is within the limits");
    assert_eq!(paid.status(), 200);
    assert_eq!(facilitator.count("settle"), 1);

    // The next 0.001 would exceed the 0.0015 budget: refused before signing.
    let refused = client
        .get(&format!("{base}/weather?city=Bergen"))
        .await
        .expect_err("over budget");
    assert!(
        matches!(&refused, ClientError::OverBudget { price, spent, budget }
            if price == "0.001 USDC" && spent == "0.001 USDC" && budget == "0.0015 USDC"),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("nothing was signed"),
        "{refused}"
    );
    assert_eq!(client.spend_log().len(), 1);
    assert_eq!(facilitator.count("verify"), 1);
    assert_eq!(facilitator.count("settle"), 1);
    assert_eq!(client.spent(Currency::Usdc), "0.001");

    // No offer on an allowed network: refused with the reason, nothing signed.
    let mainnet_only = X402Client::builder(PaymentSigner::from_key(PAYER_KEY).expect("key"))
        .networks(["eip155:8453"])
        .build()
        .expect("client");
    let refused = mainnet_only
        .get(&format!("{base}/weather?city=Oslo"))
        .await
        .expect_err("no payable offer");
    assert!(
        matches!(&refused, ClientError::NoPayableOffer(reasons)
            if reasons.len() == 1 && reasons[0].contains("eip155:84532")
                && reasons[0].contains("not one of the allowed networks")),
        "{refused}"
    );
    assert!(mainnet_only.spend_log().is_empty());
    assert_eq!(facilitator.calls().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_resent_with_the_same_payment_and_charged_once() {
    let Some((chain, _paths)) =
        bed("a_lost_answer_is_resent_with_the_same_payment_and_charged_once").await
    else {
        return;
    };
    let proxy = DropProxy::start(&chain_api(chain.rpc_url()).await, 1).await;
    let client = client("0.01");
    let before = balances(&chain).await;
    let lost = client
        .get(&format!("{}/weather?city=Rome", proxy.url))
        .await
        .expect_err("the answer was lost, the resend is told it was settled");
    assert_eq!(proxy.dropped(), 1);
    let ClientError::AlreadySettled { transaction, spend } = &lost else {
        panic!("expected AlreadySettled, got {lost}");
    };
    assert_eq!(spend.status, SpendStatus::Settled);
    assert_eq!(spend.transaction.as_deref(), Some(transaction.as_str()));
    assert_moved(&chain, before, 1000, transaction).await;
    assert_eq!(client.spend_log().len(), 1, "signed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_call_reuses_its_signed_payment() {
    let Some((chain, _paths)) = bed("a_retried_call_reuses_its_signed_payment").await else {
        return;
    };
    let proxy = DropProxy::start(&chain_api(chain.rpc_url()).await, 1).await;
    let client = X402Client::builder(PaymentSigner::from_key(PAYER_KEY).expect("key"))
        .http(
            reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("http"),
        )
        .resend_attempts(1)
        .build()
        .expect("client");
    let url = format!("{}/weather?city=Oslo", proxy.url);
    let before = balances(&chain).await;

    let first = client.get(&url).await.expect_err("answer lost");
    let ClientError::Unconfirmed { spend, .. } = &first else {
        panic!("expected Unconfirmed, got {first}");
    };
    let nonce = spend.nonce;
    assert!(matches!(spend.status, SpendStatus::Unknown { .. }));

    // The caller retries the same call: the same signed payment is sent, not a new one.
    let second = client.get(&url).await.expect_err("already settled");
    let ClientError::AlreadySettled { transaction, spend } = &second else {
        panic!("expected AlreadySettled, got {second}");
    };
    assert_eq!(spend.nonce, nonce, "the same authorization was resent");
    assert_moved(&chain, before, 1000, transaction).await;
    let log = client.spend_log();
    assert_eq!(log.len(), 1, "signed once: {log:?}");
    assert_eq!(log[0].status, SpendStatus::Settled);

    // A new call after that is a new purchase.
    let before = balances(&chain).await;
    let third = client.get(&url).await.expect("paid");
    assert_eq!(third.status(), 200);
    assert_ne!(third.spend().expect("spend").nonce, nonce);
    assert_moved(
        &chain,
        before,
        1000,
        &third.receipt().expect("receipt").transaction,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_payment_identifier_is_sent() {
    // A facilitator double records what the client sent; the paywall's challenge is edited to
    // declare the payment-identifier extension.
    let facilitator = Facilitator::start().await;
    let upstream = serve(example_weather::app(paywall(&facilitator))).await;
    let echoed = Arc::new(Mutex::new(Vec::new()));
    let seen = echoed.clone();
    let declaring = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let upstream = upstream.clone();
        let seen = seen.clone();
        async move { declare_payment_identifier(&upstream, request, &seen).await }
    });
    let base = serve(declaring).await;
    let client = client("0.01");
    let answer = client
        .get(&format!("{base}/weather?city=Oslo"))
        .await
        .expect("paid");
    assert_eq!(answer.status(), 200);
    let id = answer
        .spend()
        .and_then(|s| s.payment_id.clone())
        .expect("an id was sent");
    assert!(id.starts_with("pay_") && id.len() == 36, "{id}");
    assert_eq!(*echoed.lock().expect("lock"), vec![serde_json::json!(id)]);
    assert_eq!(facilitator.calls().len(), 2, "verify and settle");
}

/// Forwards to `upstream`, adding `payment-identifier` to the 402's extensions and recording
/// the id each paid request echoes.
async fn declare_payment_identifier(
    upstream: &str,
    request: axum::extract::Request,
    echoed: &Mutex<Vec<serde_json::Value>>,
) -> axum::response::Response {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    let http = reqwest::Client::new();
    let mut forwarded = http.request(
        request.method().clone(),
        format!("{upstream}{}", request.uri()),
    );
    for (name, value) in request.headers() {
        if name == "payment-signature" {
            let payment: serde_json::Value =
                serde_json::from_slice(&STANDARD.decode(value.as_bytes()).expect("base64"))
                    .expect("json");
            echoed
                .lock()
                .expect("lock")
                .push(payment["extensions"]["payment-identifier"]["info"]["id"].clone());
        }
        forwarded = forwarded.header(name, value);
    }
    let answer = forwarded.send().await.expect("upstream");
    let mut response = axum::response::Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name == "payment-required" {
            let mut challenge: serde_json::Value =
                serde_json::from_slice(&STANDARD.decode(value.as_bytes()).expect("base64"))
                    .expect("json");
            challenge["extensions"]["payment-identifier"] = serde_json::json!({
                "info": {"required": false},
                "schema": {"type": "object"}
            });
            response = response.header(name, STANDARD.encode(challenge.to_string()));
        } else {
            response = response.header(name, value);
        }
    }
    response
        .body(axum::body::Body::from(answer.bytes().await.expect("body")))
        .expect("response")
}

alloy::sol! {
    #[sol(rpc)]
    interface Allowances {
        function allowance(address owner, address spender) external view returns (uint256);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payer_approves_permit2_once_per_token() {
    let Some(chain) = start_chain("the_payer_approves_permit2_once_per_token").await else {
        return;
    };
    let token = Allowances::new(USDC, chain.provider());
    let allowance = || async {
        token
            .allowance(PAYER, PERMIT2)
            .call()
            .await
            .expect("allowance")
    };
    assert_eq!(allowance().await, U256::ZERO);
    let signer = PaymentSigner::from_key(PAYER_KEY).expect("key");
    let sent = tokio::time::timeout(
        Duration::from_secs(60),
        signer.approve_permit2(chain.rpc_url(), USDC),
    )
    .await
    .expect("bounded")
    .expect("approved");
    let transaction = sent.expect("a transaction was sent");
    let receipt = chain
        .provider()
        .get_transaction_receipt(transaction)
        .await
        .expect("rpc")
        .expect("mined");
    assert!(receipt.status());
    assert_eq!(receipt.from, PAYER, "sent by the payer");
    assert_eq!(allowance().await, U256::MAX);
    // Approved already: nothing is sent.
    let again = signer
        .approve_permit2(chain.rpc_url(), USDC)
        .await
        .expect("read");
    assert_eq!(again, None);
    // A bad URL is an error, not a panic.
    let error = signer
        .approve_permit2("not a url", USDC)
        .await
        .expect_err("bad url");
    assert!(error.to_string().contains("not a URL"), "{error}");
}
