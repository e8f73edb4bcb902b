//! Solana `exact` on our paywall, on the LiteSVM test chain (`x402_testbed::SvmChain`), settled
//! by the official TypeScript facilitator (`@x402/svm` 2.27.0, `interop/scripts/facilitator_svm.mjs`)
//! behind a proxy that counts its calls:
//!
//! - the official client (`@x402/fetch` + `@x402/svm`) pays a Solana route: balances move by
//!   exactly the price, the receipt names the transaction's signature, which the chain knows;
//! - one payment sent 16 times at once runs the handler once and settles once; a copy after
//!   settlement is answered 409 naming the signature;
//! - payments that break a rule (mint, amount, destination, fee payer as authority or as the
//!   source's owner, an extra instruction, the compute price, the cluster, malformed bytes) are
//!   refused without one facilitator call, and nothing moves;
//! - a route offered on Base Sepolia (anvil with Circle's USDC, settled by our facilitator) and on
//!   Solana devnet: the official EVM client pays on Base, the official Solana client on Solana;
//! - discovery lists the Solana offers next to the EVM ones, with the fee payer;
//! - our client pays our server, settled by our in-process facilitator (fee payer S5), once;
//! - a send the facilitator did not see land is `settlement_pending`; after the facilitator
//!   restarts (its memory lost) and the transaction lands, a resend is answered 409 naming the
//!   signature, from one transaction, never a fresh challenge.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::Value;
use solana_message::VersionedMessage;
use solana_transaction::Signature;
use solana_transaction::versioned::VersionedTransaction;
use support::svm::{CountingProxy, assert_landed, official_client_pays, official_facilitator};
use support::{http, run_client, serve};
use x402_runtime::Currency;
use x402_runtime::client::{PaymentSigner, SvmChainFacts, X402Client, discover};
use x402_runtime::discovery::{self, Discovery};
use x402_runtime::facilitator::{Facilitator, FacilitatorError, LocalFacilitator};
use x402_runtime::proto::{FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse};
use x402_runtime::schemes::exact_svm::program;
use x402_runtime::schemes::exact_svm::rpc::SvmRpc;
use x402_runtime::schemes::exact_svm::rules::codes as svm_codes;
use x402_runtime::{BoxFuture, X402, X402Config, paid};
use x402_testbed::svm::{self, MERCHANT, PAYER, PAYER2, SvmAccount, SvmChain, TS_FACILITATOR};
use x402_testbed::{Chain, Paths};

/// The route's price: $0.01 in USDC's 6 decimals.
const PRICE: u64 = 10_000;
const PAID: &str = "paid on Solana";

#[paid(
    price = "0.01",
    currency = "USDC",
    networks = ["solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"],
    method = "GET",
    path = "/svm"
)]
async fn svm_paid(State(runs): State<Arc<AtomicUsize>>) -> &'static str {
    runs.fetch_add(1, Ordering::SeqCst);
    PAID
}

#[paid(
    price = "0.001",
    currency = "USDC",
    networks = ["eip155:84532", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"],
    method = "GET",
    path = "/both"
)]
async fn both_paid(State(runs): State<Arc<AtomicUsize>>) -> &'static str {
    runs.fetch_add(1, Ordering::SeqCst);
    PAID
}

/// The chain, the official facilitator behind a counting proxy, and our server.
struct Bed {
    x402: X402,
    router: Router,
    chain: SvmChain,
    anvil: Chain,
    paths: Paths,
    _facilitator: x402_testbed::Script,
    proxy: CountingProxy,
    base: String,
    runs: Arc<AtomicUsize>,
}

async fn bed(test: &str) -> Option<Bed> {
    if !x402_testbed::skip_unless_available(test) {
        return None;
    }
    let chain = SvmChain::start().await.expect("Solana chain");
    let paths = chain.paths().clone();
    let (facilitator_process, facilitator_url) = official_facilitator(&chain).await;
    let proxy = CountingProxy::start(&facilitator_url).await;
    let evm = tokio::task::spawn_blocking(x402_testbed::install_chain)
        .await
        .expect("join")
        .expect("the EVM test bed");
    drop(evm);
    let anvil = Chain::start().await.expect("anvil");
    let evm_facilitator = serve(x402_runtime_facilitator::router(Arc::new(
        support::local_facilitator(Some(anvil.rpc_url())),
    )))
    .await;
    // Base Sepolia settles through our facilitator, Solana devnet through the official one.
    let config = X402Config::builder()
        .network(x402_testbed::NETWORK)
        .network(svm::DEVNET)
        .pay_to(x402_testbed::MERCHANT.to_checksum(None))
        .svm_pay_to(MERCHANT.address)
        .facilitator_url(&evm_facilitator)
        .network_facilitator_url(svm::DEVNET, &proxy.url)
        .build()
        .expect("config");
    let x402 = X402::builder(config).build().expect("paywall");
    let runs = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route("/svm", get(svm_paid))
        .route("/both", get(both_paid))
        .with_state(runs.clone());
    let app = router.clone().layer(x402.layer());
    Some(Bed {
        base: serve(app).await,
        x402,
        router,
        chain,
        anvil,
        paths,
        _facilitator: facilitator_process,
        proxy,
        runs,
    })
}

/// What an answer of our server says.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    text: String,
    receipt: Option<Value>,
}

impl Bed {
    fn url(&self) -> String {
        format!("{}/svm", self.base)
    }

    /// The official client pays the route with `payer`'s key; its one JSON line.
    async fn official_pays(&self, url: &str, payer: &SvmAccount) -> Value {
        official_client_pays(&self.chain, url, payer).await
    }

    /// A payment the official client signs for the route, which has reached neither our
    /// server nor the chain: the client pays a decoy that shows our 402 and keeps the
    /// `PAYMENT-SIGNATURE` header it gets.
    async fn unsent_payment(&self, payer: &SvmAccount) -> String {
        let kept = Arc::new(Mutex::new(None));
        let decoy = Decoy {
            target: self.url(),
            kept: kept.clone(),
        };
        let app = Router::new()
            .route("/svm", get(decoy_answer))
            .with_state(decoy);
        let decoy_url = format!("{}/svm", serve(app).await);
        let result = self.official_pays(&decoy_url, payer).await;
        assert_eq!(
            result["status"], 503,
            "the decoy kept the payment: {result}"
        );
        kept.lock()
            .expect("lock")
            .take()
            .expect("the official client sent a payment")
    }

    async fn send(&self, payment: &str) -> Answer {
        let response = http()
            .get(self.url())
            .header("PAYMENT-SIGNATURE", payment)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let receipt = response
            .headers()
            .get("payment-response")
            .map(|v| support::decode_b64(v.to_str().expect("ascii")));
        let text = response.text().await.unwrap_or_default();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or_default(),
            text,
            receipt,
        }
    }

    /// The payer's and the merchant's devnet USDC.
    async fn usdc(&self, payer: &SvmAccount) -> (u64, u64) {
        usdc(&self.chain, payer).await
    }
}

/// `payer`'s and the merchant's devnet USDC on `chain`.
async fn usdc(chain: &SvmChain, payer: &SvmAccount) -> (u64, u64) {
    (
        chain.usdc_balance(payer.address).await.expect("payer"),
        chain
            .usdc_balance(MERCHANT.address)
            .await
            .expect("merchant"),
    )
}

#[derive(Clone)]
struct Decoy {
    target: String,
    kept: Arc<Mutex<Option<String>>>,
}

/// Shows our server's 402; keeps a payment instead of passing it on.
async fn decoy_answer(State(decoy): State<Decoy>, headers: HeaderMap) -> Response {
    if let Some(payment) = headers.get("payment-signature") {
        let payment = payment.to_str().expect("ascii").to_owned();
        *decoy.kept.lock().expect("lock") = Some(payment);
        return (StatusCode::SERVICE_UNAVAILABLE, "kept").into_response();
    }
    let ours = http().get(&decoy.target).send().await.expect("our 402");
    let status = StatusCode::from_u16(ours.status().as_u16()).expect("status");
    let challenge = ours.headers()["payment-required"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body = ours.text().await.expect("body");
    (
        status,
        [
            ("payment-required", challenge),
            ("content-type", "application/json".to_owned()),
        ],
        body,
    )
        .into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_pays_a_solana_route() {
    let Some(bed) = bed("the_official_client_pays_a_solana_route").await else {
        return;
    };
    let unpaid = http().get(bed.url()).send().await.expect("request");
    assert_eq!(unpaid.status(), 402);
    let challenge: Value = support::decode_b64(
        unpaid.headers()["payment-required"]
            .to_str()
            .expect("ascii"),
    );
    let offer = &challenge["accepts"][0];
    assert_eq!(offer["network"], svm::DEVNET, "{challenge}");
    assert_eq!(offer["asset"], svm::USDC_DEVNET, "{challenge}");
    assert_eq!(offer["amount"], PRICE.to_string(), "{challenge}");
    assert_eq!(offer["payTo"], MERCHANT.address, "{challenge}");
    assert_eq!(
        offer["extra"]["feePayer"], TS_FACILITATOR.address,
        "{challenge}"
    );

    let before = bed.usdc(&PAYER).await;
    let result = bed.official_pays(&bed.url(), &PAYER).await;
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["body"], PAID, "{result}");
    let receipt = &result["receipt"];
    assert_eq!(receipt["success"], true, "{result}");
    assert_eq!(receipt["network"], svm::DEVNET, "{result}");
    assert_eq!(receipt["payer"], PAYER.address, "{result}");
    let signature = receipt["transaction"].as_str().expect("a signature");
    let status = bed
        .chain
        .signature_status(signature)
        .await
        .expect("status")
        .unwrap_or_else(|| panic!("the receipt's transaction {signature} is not on the chain"));
    assert_eq!(status["err"], Value::Null, "{status}");
    let after = bed.usdc(&PAYER).await;
    assert_eq!(
        before.0 - after.0,
        PRICE,
        "the payer paid exactly the price"
    );
    assert_eq!(
        after.1 - before.1,
        PRICE,
        "the merchant got exactly the price"
    );
    assert_eq!(bed.runs.load(Ordering::SeqCst), 1);
    assert_eq!(bed.proxy.count("/verify"), 1);
    assert_eq!(bed.proxy.count("/settle"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_copies_of_one_solana_payment_run_and_settle_once() {
    let Some(bed) = bed("sixteen_copies_of_one_solana_payment_run_and_settle_once").await else {
        return;
    };
    let bed = Arc::new(bed);
    let payment = bed.unsent_payment(&PAYER2).await;
    let before = bed.usdc(&PAYER2).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (bed, payment) = (bed.clone(), payment.clone());
        tasks.push(tokio::spawn(async move { bed.send(&payment).await }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    let paid: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    let conflicts = answers.iter().filter(|a| a.status == 409).count();
    assert_eq!(paid.len(), 1, "{answers:?}");
    assert_eq!(conflicts, 15, "{answers:?}");
    assert_eq!(paid[0].text, PAID);
    assert_eq!(bed.runs.load(Ordering::SeqCst), 1);
    assert_eq!(bed.proxy.count("/verify"), 1);
    assert_eq!(bed.proxy.count("/settle"), 1);
    let receipt = paid[0].receipt.as_ref().expect("a receipt");
    let signature = receipt["transaction"]
        .as_str()
        .expect("signature")
        .to_owned();
    assert!(
        bed.chain
            .signature_status(&signature)
            .await
            .expect("status")
            .is_some(),
        "{signature} landed"
    );
    let after = bed.usdc(&PAYER2).await;
    assert_eq!(before.0 - after.0, PRICE, "paid once");
    assert_eq!(after.1 - before.1, PRICE, "received once");

    // A copy after settlement is answered from the record, naming the signature.
    let late = bed.send(&payment).await;
    assert_eq!(late.status, 409, "{late:?}");
    assert_eq!(late.body["error"], "payment_already_settled", "{late:?}");
    assert_eq!(late.body["transaction"], signature.as_str(), "{late:?}");
    assert!(late.receipt.is_none());
    assert_eq!(bed.proxy.count("/settle"), 1);
    assert_eq!(bed.usdc(&PAYER2).await, after);
}

/// The payment's envelope and its transaction, to change and sign again.
struct Tampered {
    envelope: Value,
    tx: VersionedTransaction,
}

impl Tampered {
    fn of(payment: &str) -> Tampered {
        let envelope: Value = support::decode_b64(payment);
        let wire = STANDARD
            .decode(
                envelope["payload"]["transaction"]
                    .as_str()
                    .expect("transaction"),
            )
            .expect("base64");
        let tx = wincode::deserialize(&wire).expect("a transaction");
        Tampered { envelope, tx }
    }

    fn message(&mut self) -> &mut solana_message::v0::Message {
        match &mut self.tx.message {
            VersionedMessage::V0(message) => message,
            _ => panic!("the official client builds v0 messages"),
        }
    }

    /// The static key at `index`, replaced by `key`.
    fn key(mut self, index: usize, key: [u8; 32]) -> Self {
        self.message().account_keys[index] = solana_message::Address::new_from_array(key);
        self
    }

    /// The index of `key` among the static keys.
    fn index_of(&mut self, key: &[u8; 32]) -> usize {
        let keys = &self.message().account_keys;
        keys.iter()
            .position(|k| k.to_bytes() == *key)
            .expect("a static key")
    }

    /// Instruction `index`'s data, changed by `change`.
    fn data(mut self, index: usize, change: impl FnOnce(&mut Vec<u8>)) -> Self {
        change(&mut self.message().instructions[index].data);
        self
    }

    /// The payment with the payer's signature over the changed message.
    fn signed_by(mut self, payer: &SvmAccount) -> String {
        let message = self.tx.message.serialize();
        let signature = SigningKey::from_bytes(&[payer.seed; 32]).sign(&message);
        self.tx.signatures[1] = Signature::from(signature.to_bytes());
        let wire = wincode::serialize(&self.tx).expect("serialize");
        self.envelope["payload"]["transaction"] = Value::String(STANDARD.encode(wire));
        STANDARD.encode(self.envelope.to_string())
    }
}

fn account(text: &str) -> [u8; 32] {
    program::parse_key(text).expect("a Solana address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_that_break_a_rule_are_refused_without_the_facilitator() {
    let Some(bed) = bed("payments_that_break_a_rule_are_refused_without_the_facilitator").await
    else {
        return;
    };
    let payment = bed.unsent_payment(&PAYER).await;
    let before = bed.usdc(&PAYER).await;
    let fee_payer = account(TS_FACILITATOR.address);
    let mainnet_mint = account(svm::USDC_MAINNET);
    let payer_source = account(PAYER.usdc_devnet);
    let merchant_destination = account(MERCHANT.usdc_devnet);
    let other_destination = account(PAYER2.usdc_devnet);
    let fee_payer_source = program::associated_token_account(
        &fee_payer,
        &account(svm::USDC_DEVNET),
        &program::TOKEN_PROGRAM,
    );
    let devnet_mint = account(svm::USDC_DEVNET);
    let mut base = Tampered::of(&payment);
    let (mint_at, source_at, destination_at) = (
        base.index_of(&devnet_mint),
        base.index_of(&payer_source),
        base.index_of(&merchant_destination),
    );
    let transfer = 2;
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "wrong mint",
            Tampered::of(&payment)
                .key(mint_at, mainnet_mint)
                .signed_by(&PAYER),
            402,
            svm_codes::MINT_MISMATCH,
        ),
        (
            "wrong amount",
            Tampered::of(&payment)
                .data(transfer, |d| {
                    d[1..9].copy_from_slice(&(PRICE - 1).to_le_bytes())
                })
                .signed_by(&PAYER),
            402,
            svm_codes::AMOUNT_MISMATCH,
        ),
        (
            "wrong destination",
            Tampered::of(&payment)
                .key(destination_at, other_destination)
                .signed_by(&PAYER),
            402,
            svm_codes::RECIPIENT_MISMATCH,
        ),
        (
            "fee payer's token account as the source",
            Tampered::of(&payment)
                .key(source_at, fee_payer_source)
                .signed_by(&PAYER),
            402,
            svm_codes::FEE_PAYER_TRANSFERRING_FUNDS,
        ),
        (
            "fee payer as the authority",
            {
                let mut tampered = Tampered::of(&payment);
                tampered.message().instructions[transfer].accounts[3] = 0;
                tampered.signed_by(&PAYER)
            },
            402,
            svm_codes::FEE_PAYER_TRANSFERRING_FUNDS,
        ),
        (
            "an extra instruction",
            {
                let mut tampered = Tampered::of(&payment);
                let price = tampered.message().instructions[1].clone();
                tampered.message().instructions.push(price);
                tampered.signed_by(&PAYER)
            },
            402,
            svm_codes::UNKNOWN_FIFTH_INSTRUCTION,
        ),
        (
            "compute price above the limit",
            Tampered::of(&payment)
                .data(1, |d| d[1..9].copy_from_slice(&5_000_001u64.to_le_bytes()))
                .signed_by(&PAYER),
            402,
            svm_codes::COMPUTE_PRICE_TOO_HIGH,
        ),
        (
            "signed by someone else",
            Tampered::of(&payment).signed_by(&PAYER2),
            402,
            svm_codes::SIGNATURE_INVALID,
        ),
        (
            "wrong cluster",
            {
                let mut tampered = Tampered::of(&payment);
                tampered.envelope["accepted"]["network"] = Value::from(svm::MAINNET);
                tampered.signed_by(&PAYER)
            },
            402,
            "invalid_network",
        ),
        (
            "malformed transaction",
            {
                let mut tampered = Tampered::of(&payment);
                tampered.envelope["payload"]["transaction"] = Value::from("AQID");
                STANDARD.encode(tampered.envelope.to_string())
            },
            400,
            "invalid_payload",
        ),
    ];
    for (name, tampered, status, code) in cases {
        let answer = bed.send(&tampered).await;
        assert_eq!(answer.status, status, "{name}: {answer:?}");
        assert_eq!(answer.body["error"], code, "{name}: {answer:?}");
        assert!(!answer.text.contains(PAID), "{name}: content leaked");
    }
    assert_eq!(bed.proxy.count("/verify"), 0, "no facilitator call");
    assert_eq!(bed.proxy.count("/settle"), 0, "no facilitator call");
    assert_eq!(bed.runs.load(Ordering::SeqCst), 0);
    assert_eq!(bed.usdc(&PAYER).await, before, "nothing moved");

    // The untouched payment still pays.
    let paid = bed.send(&payment).await;
    assert_eq!(paid.status, 200, "{paid:?}");
    let after = bed.usdc(&PAYER).await;
    assert_eq!(before.0 - after.0, PRICE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_offered_on_base_and_solana_is_paid_on_each() {
    let Some(bed) = bed("a_route_offered_on_base_and_solana_is_paid_on_each").await else {
        return;
    };
    let url = format!("{}/both", bed.base);
    let unpaid = http().get(&url).send().await.expect("request");
    assert_eq!(unpaid.status(), 402);
    let challenge: Value = support::decode_b64(
        unpaid.headers()["payment-required"]
            .to_str()
            .expect("ascii"),
    );
    let networks: Vec<&str> = challenge["accepts"]
        .as_array()
        .expect("accepts")
        .iter()
        .filter_map(|offer| offer["network"].as_str())
        .collect();
    assert_eq!(
        networks,
        [x402_testbed::NETWORK, svm::DEVNET],
        "{challenge}"
    );

    // The official EVM client pays on Base Sepolia.
    let evm_before = support::usdc_balances(&bed.anvil, x402_testbed::PAYER).await;
    let svm_before = bed.usdc(&PAYER).await;
    let evm = run_client(
        &bed.paths.node,
        &bed.paths.interop.join("scripts/pay.mjs"),
        x402_testbed::PAYER_KEY,
        &[&url],
        &[],
    )
    .await;
    assert_eq!(evm["status"], 200, "{evm}");
    assert_eq!(evm["receipt"]["network"], x402_testbed::NETWORK, "{evm}");
    support::assert_price_moved(&bed.anvil, x402_testbed::PAYER, evm_before, 1_000).await;
    assert_eq!(
        bed.usdc(&PAYER).await,
        svm_before,
        "nothing moved on Solana"
    );

    // The official Solana client pays on Solana devnet.
    let evm_after = support::usdc_balances(&bed.anvil, x402_testbed::PAYER).await;
    let svm = bed.official_pays(&url, &PAYER).await;
    assert_eq!(svm["status"], 200, "{svm}");
    assert_eq!(svm["receipt"]["network"], svm::DEVNET, "{svm}");
    assert_eq!(svm["receipt"]["payer"], PAYER.address, "{svm}");
    let after = bed.usdc(&PAYER).await;
    assert_eq!(
        svm_before.0 - after.0,
        1_000,
        "the payer paid exactly the price"
    );
    assert_eq!(
        after.1 - svm_before.1,
        1_000,
        "the merchant got exactly the price"
    );
    assert_eq!(
        support::usdc_balances(&bed.anvil, x402_testbed::PAYER).await,
        evm_after,
        "nothing moved on Base"
    );
    assert_eq!(bed.runs.load(Ordering::SeqCst), 2);
    assert_eq!(bed.proxy.count("/settle"), 1, "one Solana settlement");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_solana_offers_next_to_evm_ones() {
    let Some(bed) = bed("discovery_lists_solana_offers_next_to_evm_ones").await else {
        return;
    };
    // The first 402 of a Solana route waits for `/supported`, which gives the fee payer.
    let unpaid = http()
        .get(format!("{}/both", bed.base))
        .send()
        .await
        .expect("402");
    assert_eq!(unpaid.status(), 402);
    let discovery = Discovery::builder(&bed.x402, discovery::document("Solana test", "1"))
        .well_known(true)
        // The test binary links the example's routes, which this router does not mount.
        .unchecked()
        .build(&bed.router)
        .expect("discovery");
    let both = &discovery.document()["paths"]["/both"]["get"]["x-payment-info"];
    let accepts = &both["protocols"][0]["x402"]["accepts"];
    assert_eq!(accepts[0]["network"], x402_testbed::NETWORK, "{both}");
    assert_eq!(accepts[1]["network"], svm::DEVNET, "{both}");
    assert_eq!(accepts[1]["asset"], svm::USDC_DEVNET, "{both}");
    assert_eq!(
        accepts[1]["extra"]["feePayer"], TS_FACILITATOR.address,
        "{both}"
    );
    let base = serve(discovery.router()).await;
    let well_known: Value = http()
        .get(format!("{base}/.well-known/x402"))
        .send()
        .await
        .expect("well-known")
        .json()
        .await
        .expect("json");
    let resources = well_known["resources"].to_string();
    assert!(
        resources.contains("/both") && resources.contains("/svm"),
        "{well_known}"
    );

    let found = discover(&http(), &base).await.expect("discover");
    let endpoint = found
        .endpoints
        .iter()
        .find(|e| e.path == "/both")
        .expect("/both is listed");
    assert_eq!(endpoint.price, "0.001");
    assert_eq!(endpoint.currency, "USDC");
    assert_eq!(endpoint.networks, [x402_testbed::NETWORK, svm::DEVNET]);
    let solana_only = found
        .endpoints
        .iter()
        .find(|e| e.path == "/svm")
        .expect("/svm");
    assert_eq!(
        (solana_only.price.as_str(), solana_only.networks.as_slice()),
        ("0.01", &[svm::DEVNET.to_owned()][..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_pays_our_server_settled_by_our_facilitator() {
    if !x402_testbed::skip_unless_available("our_client_pays_our_server_settled_by_our_facilitator")
    {
        return;
    }
    let chain = SvmChain::start().await.expect("Solana chain");
    let facilitator = our_facilitator(chain.rpc_url(), Duration::from_secs(10));
    let (url, runs) = our_server(facilitator, None).await;
    let signer = PaymentSigner::from_key(x402_testbed::PAYER2_KEY)
        .expect("EVM key")
        .with_svm_key(PAYER2.secret_key)
        .expect("Solana key");
    let client = X402Client::builder(signer)
        .http(http())
        .max_per_request(Currency::Usdc, "0.01")
        .svm_rpc_url(chain.rpc_url())
        .build()
        .expect("client");
    let fee_payer_sol = chain
        .sol_balance(svm::FACILITATOR.address)
        .await
        .expect("SOL");
    let payer_sol = chain.sol_balance(PAYER2.address).await.expect("SOL");
    let before = usdc(&chain, &PAYER2).await;
    let answer = client.get(&url).await.expect("paid");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text(), PAID);
    let receipt = answer.receipt().expect("a receipt");
    assert!(receipt.success, "{receipt:?}");
    assert_eq!(receipt.network, svm::DEVNET);
    assert_eq!(receipt.payer.as_deref(), Some(PAYER2.address));
    assert_landed(&chain, &receipt.transaction).await;
    let after = usdc(&chain, &PAYER2).await;
    assert_eq!(
        before.0 - after.0,
        PRICE,
        "the payer paid exactly the price"
    );
    assert_eq!(
        after.1 - before.1,
        PRICE,
        "the merchant got exactly the price"
    );
    assert_eq!(
        chain.sol_balance(PAYER2.address).await.expect("SOL"),
        payer_sol,
        "the payer paid no fee"
    );
    assert!(
        chain
            .sol_balance(svm::FACILITATOR.address)
            .await
            .expect("SOL")
            < fee_payer_sol,
        "our fee payer paid the fee"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(client.spend_log().len(), 1);
}

/// A facilitator that can be replaced while the server runs (a restart loses its memory).
struct Restartable(Mutex<Arc<LocalFacilitator>>);

impl Restartable {
    fn current(&self) -> Arc<LocalFacilitator> {
        self.0.lock().expect("lock").clone()
    }
}

impl Facilitator for Restartable {
    fn verify<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<VerifyResponse, FacilitatorError>> {
        let current = self.current();
        Box::pin(async move { current.verify(request).await })
    }

    fn settle<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<SettleResponse, FacilitatorError>> {
        let current = self.current();
        Box::pin(async move { current.settle(request).await })
    }

    fn supported(&self) -> BoxFuture<'_, Result<SupportedResponse, FacilitatorError>> {
        let current = self.current();
        Box::pin(async move { current.supported().await })
    }
}

/// Our server offering the Solana routes on devnet, settling through `facilitator`, reading the
/// Solana node at `node` to reconcile (if any), without background reconciliation; the URL of
/// `/svm` and the handlers' run count.
async fn our_server(
    facilitator: Arc<dyn Facilitator>,
    node: Option<&str>,
) -> (String, Arc<AtomicUsize>) {
    let config = X402Config::builder()
        .network(svm::DEVNET)
        .svm_pay_to(MERCHANT.address)
        .build()
        .expect("config");
    let mut x402 = X402::builder(config)
        .facilitator_arc(facilitator)
        .reconcile_interval(None);
    if let Some(url) = node {
        x402 = x402.svm_chain_reader(SvmRpc::new(url).expect("node URL"));
    }
    let x402 = x402.build().expect("paywall");
    let runs = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/svm", get(svm_paid))
        .route("/both", get(both_paid))
        .with_state(runs.clone())
        .layer(x402.layer());
    (format!("{}/svm", serve(app).await), runs)
}

/// Our in-process facilitator on devnet, fee payer S5.
fn our_facilitator(node: &str, receipt_timeout: Duration) -> Arc<LocalFacilitator> {
    Arc::new(
        LocalFacilitator::builder()
            .network(svm::DEVNET)
            .default_svm_rpc_url(node)
            .svm_signer_key(svm::FACILITATOR.secret_key)
            .receipt_timeout(receipt_timeout)
            .build()
            .expect("facilitator"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_solana_settlement_is_reconciled_after_the_facilitator_restarts() {
    let test = "a_pending_solana_settlement_is_reconciled_after_the_facilitator_restarts";
    if x402_testbed::skip_unless_available(test) {
        pending_then_reconciled(Afterwards::Restarted).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_solana_settlement_is_read_from_the_chain_when_the_facilitator_is_gone() {
    let test = "a_pending_solana_settlement_is_read_from_the_chain_when_the_facilitator_is_gone";
    if x402_testbed::skip_unless_available(test) {
        pending_then_reconciled(Afterwards::Gone).await;
    }
}

/// What becomes of the facilitator after it answered `settlement_pending`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Afterwards {
    /// It restarts, its memory lost; the server has no Solana node of its own.
    Restarted,
    /// It cannot reach its node any more; the server reads its own.
    Gone,
}

/// A Solana payment whose settlement is `settlement_pending`: the chain holds the facilitator's
/// send, so it does not see it land in time.
struct Pending {
    chain: SvmChain,
    facilitator: Arc<Restartable>,
    url: String,
    runs: Arc<AtomicUsize>,
    payment: String,
    /// The payer's and the merchant's USDC before the payment.
    before: (u64, u64),
}

impl Pending {
    /// Our server (reading the Solana node at `node`, when given) and our facilitator; the
    /// payer's payment sent once and answered `settlement_pending`.
    async fn start(node: Option<&str>) -> Pending {
        let chain = SvmChain::start().await.expect("Solana chain");
        let facilitator = Arc::new(Restartable(Mutex::new(our_facilitator(
            chain.rpc_url(),
            Duration::from_millis(500),
        ))));
        let node = node.map(|n| if n.is_empty() { chain.rpc_url() } else { n });
        let (url, runs) = our_server(facilitator.clone(), node).await;
        let unpaid = http().get(&url).send().await.expect("402");
        let challenge = support::challenge_of(&unpaid);
        let signer = PaymentSigner::from_key(x402_testbed::PAYER_KEY)
            .expect("EVM key")
            .with_svm_key(PAYER.secret_key)
            .expect("Solana key");
        let blockhash = chain.latest_blockhash().await.expect("blockhash");
        let facts = SvmChainFacts {
            recent_blockhash: program::parse_key(&blockhash).expect("a blockhash"),
            decimals: 6,
            token_program: program::TOKEN_PROGRAM,
        };
        let payment = signer
            .sign_svm_v2(&challenge, 0, &facts)
            .expect("signed")
            .value;
        let before = usdc(&chain, &PAYER).await;
        let pending = Pending {
            chain,
            facilitator,
            url,
            runs,
            payment,
            before,
        };
        pending.chain.hold_sends(1).await.expect("hold");
        let (status, body) = pending.send().await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"], "settlement_pending", "{body}");
        assert!(
            body["transaction"].as_str().is_some_and(|t| !t.is_empty()),
            "{body}"
        );
        pending
    }

    async fn send(&self) -> (u16, Value) {
        let response = http()
            .get(&self.url)
            .header("PAYMENT-SIGNATURE", &self.payment)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or_default();
        (status, body)
    }

    /// The facilitator replaced by one settling through the node at `node`.
    fn restart_facilitator(&self, node: &str) {
        *self.facilitator.0.lock().expect("lock") = our_facilitator(node, Duration::from_secs(10));
    }
}

/// The held send lands after the facilitator restarted or went away; a resend is answered 409
/// naming the signature, the money moved once.
async fn pending_then_reconciled(afterwards: Afterwards) {
    let server_node = (afterwards == Afterwards::Gone).then_some("");
    let pending = Pending::start(server_node).await;
    let chain = &pending.chain;
    // The facilitator restarts (its in-flight memory is gone), or loses its node (a dead
    // port); the held send lands.
    match afterwards {
        Afterwards::Restarted => pending.restart_facilitator(chain.rpc_url()),
        Afterwards::Gone => pending.restart_facilitator("http://127.0.0.1:9"),
    }
    chain.release_held().await.expect("release");

    let (status, body) = pending.send().await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "payment_already_settled", "{body}");
    let signature = body["transaction"]
        .as_str()
        .expect("the signature")
        .to_owned();
    assert_landed(chain, &signature).await;
    let after = usdc(chain, &PAYER).await;
    assert_eq!(pending.before.0 - after.0, PRICE, "paid once");
    assert_eq!(after.1 - pending.before.1, PRICE, "received once");
    // From the record from now on.
    let (status, body) = pending.send().await;
    assert_eq!(
        (status, body["transaction"].as_str()),
        (409, Some(signature.as_str()))
    );
    assert_eq!(pending.runs.load(Ordering::SeqCst), 1);
}

/// A Solana node that says every transaction failed on chain (`getSignatureStatuses` only).
async fn node_saying_failed() -> String {
    let answer = |Json(request): Json<Value>| async move {
        let failed = serde_json::json!({
            "slot": 7, "confirmations": null, "confirmationStatus": "confirmed",
            "err": {"InstructionError": [2, {"Custom": 1}]},
        });
        Json(match request["method"].as_str() {
            Some("getSignatureStatuses") => serde_json::json!({
                "jsonrpc": "2.0", "id": request["id"],
                "result": {"context": {"slot": 7}, "value": [failed]},
            }),
            _ => serde_json::json!({
                "jsonrpc": "2.0", "id": request["id"],
                "error": {"code": -32601, "message": "Method not found"},
            }),
        })
    };
    serve(Router::new().route("/", axum::routing::post(answer))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_solana_payment_that_failed_on_chain_is_expired_unsettled() {
    let test = "a_pending_solana_payment_that_failed_on_chain_is_expired_unsettled";
    if !x402_testbed::skip_unless_available(test) {
        return;
    }
    // The held send never lands; the server's node says the transaction failed.
    let node = node_saying_failed().await;
    let pending = Pending::start(Some(&node)).await;
    pending.restart_facilitator("http://127.0.0.1:9");
    let (status, body) = pending.send().await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["error"], "expired_unsettled", "{body}");
    assert_eq!(
        usdc(&pending.chain, &PAYER).await,
        pending.before,
        "nothing moved"
    );
    assert_eq!(pending.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_solana_payment_that_can_no_longer_land_is_expired_unsettled() {
    let test = "a_pending_solana_payment_that_can_no_longer_land_is_expired_unsettled";
    if !x402_testbed::skip_unless_available(test) {
        return;
    }
    let pending = Pending::start(Some("")).await;
    pending.restart_facilitator("http://127.0.0.1:9");
    // Still held, with a valid blockhash: it may land, so the outcome stays unknown.
    let (status, body) = pending.send().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "settlement_pending", "{body}");
    // The blockhash expires: the held transaction can never land.
    pending.chain.expire_blockhash().await.expect("expire");
    let (status, body) = pending.send().await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["error"], "expired_unsettled", "{body}");
    let released = pending.chain.release_held().await.expect("release");
    assert!(
        released.to_string().contains("BlockhashNotFound"),
        "{released}"
    );
    assert_eq!(
        usdc(&pending.chain, &PAYER).await,
        pending.before,
        "nothing moved"
    );
}
