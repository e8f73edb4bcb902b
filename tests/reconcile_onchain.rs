//! Reconciling settlements whose outcome was unknown, against a real chain: anvil (chain 84532)
//! with Circle's FiatTokenV2_2 at Base Sepolia's USDC address, payments signed with the public
//! test keys, balances and logs read from the chain.
//!
//! - The facilitator sent the transaction but its receipt came after the timeout (automine off):
//!   the paid request is `503 settlement_pending` naming the transaction; once it is mined, a
//!   resend of the same header (or the server's background pass, without any resend) finds the
//!   authorization used on chain and the payment is settled in that transaction, once.
//! - `/settle` never reached the chain: the payment stays `settlement_pending` while the
//!   authorization could still be used, and becomes `expired_unsettled` (a fresh 402) only once
//!   the chain is past its `validBefore` plus the margin.

mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy_primitives::{Address, B256, U256, keccak256};
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use support::{
    FaultyFacilitator, Payer, SettleFault, Terms, VerifyFault, anvil_rpc, challenge_of, decode_b64,
    faulty_config, faulty_paywall, http, serve, start_chain, unix_now, usdc_balances,
};
use x402_runtime::facilitator::{HttpFacilitator, LocalFacilitator};
use x402_runtime::proto::{
    FacilitatorRequest, PaymentRequired, SettleResponse, SupportedResponse, VerifyResponse,
};
use x402_runtime::schemes::exact_evm::chain::{
    Authorization, ChainError, ChainReader, EXPIRY_MARGIN, OnChain, RpcChainReader,
};
use x402_runtime::{
    BoxFuture, Facilitator, FacilitatorError, MemoryStore, ReplayKey, ReplayStore, Slot, X402,
    X402Config, X402ConfigBuilder, codes, paid,
};
use x402_testbed::{
    Chain, FACILITATOR, FACILITATOR_KEY, MERCHANT, NETWORK, PAYER, PAYER_KEY, USDC,
};

/// The route's price in USDC atomic units (0.001 USDC).
const PRICE: u64 = 1000;
/// The paid route.
const REPORT: &str = "/reconcile/report";
/// What the paid handler answers; never seen in a refusal.
const PAID: &str = "PAID-REPORT";
/// How long the facilitator waits for a receipt before it answers `settlement_pending`.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(1);

/// Paid content, counting its runs.
#[paid(price = "0.001", method = "GET", path = "/reconcile/report")]
async fn report(State(runs): State<Arc<AtomicUsize>>) -> &'static str {
    runs.fetch_add(1, Ordering::SeqCst);
    PAID
}

// ------------------------------------------------------------------------------------------------
// Harness
// ------------------------------------------------------------------------------------------------

async fn set_automine(chain: &Chain, on: bool) {
    anvil_rpc(chain, "evm_setAutomine", json!([on])).await;
}

async fn mine(chain: &Chain) {
    anvil_rpc(chain, "evm_mine", json!([])).await;
}

/// The latest block's timestamp.
async fn chain_time(chain: &Chain) -> u64 {
    let block = anvil_rpc(chain, "eth_getBlockByNumber", json!(["latest", false])).await;
    u64::from_str_radix(
        block["timestamp"]
            .as_str()
            .expect("timestamp")
            .trim_start_matches("0x"),
        16,
    )
    .expect("hex timestamp")
}

/// Transactions the facilitator's key has sent, mined or waiting in the mempool.
async fn facilitator_transactions(chain: &Chain) -> u64 {
    let count = anvil_rpc(
        chain,
        "eth_getTransactionCount",
        json!([FACILITATOR.to_checksum(None), "pending"]),
    )
    .await;
    u64::from_str_radix(count.as_str().expect("count").trim_start_matches("0x"), 16)
        .expect("hex count")
}

/// `(transaction, value)` of every USDC `Transfer(payer → merchant)` on the chain.
async fn transfers_to_merchant(chain: &Chain, payer: Address) -> Vec<(String, U256)> {
    let filter = Filter::new()
        .address(USDC)
        .event_signature(keccak256("Transfer(address,address,uint256)"))
        .topic1(payer.into_word())
        .topic2(MERCHANT.into_word())
        .from_block(0u64);
    chain
        .provider()
        .get_logs(&filter)
        .await
        .expect("logs")
        .iter()
        .map(|log| {
            let tx = log.transaction_hash.expect("mined log").to_string();
            (tx, U256::from_be_slice(&log.data().data))
        })
        .collect()
}

/// An answer of the server under test.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn receipt(&self) -> SettleResponse {
        decode_b64(
            self.headers
                .get("payment-response")
                .unwrap_or_else(|| panic!("no PAYMENT-RESPONSE: {self:?}"))
                .to_str()
                .expect("ascii"),
        )
    }

    fn challenge(&self) -> PaymentRequired {
        decode_b64(
            self.headers
                .get("payment-required")
                .unwrap_or_else(|| panic!("no PAYMENT-REQUIRED: {self:?}"))
                .to_str()
                .expect("ascii"),
        )
    }

    /// Asserts `503 settlement_pending` with `Retry-After` and a pending receipt naming
    /// `transaction` (empty: none); returns the receipt.
    fn assert_pending(&self, transaction: &str) -> SettleResponse {
        assert_eq!(self.status, 503, "{self:?}");
        assert_eq!(self.json()["error"], codes::SETTLEMENT_PENDING, "{self:?}");
        assert!(self.headers.contains_key("retry-after"), "{self:?}");
        assert!(!self.body.contains(PAID), "the response is withheld");
        let receipt = self.receipt();
        assert!(!receipt.success, "{receipt:?}");
        assert_eq!(
            receipt.error_reason.as_deref(),
            Some(codes::SETTLEMENT_PENDING)
        );
        assert_eq!(receipt.transaction, transaction, "{receipt:?}");
        assert_eq!(receipt.network, NETWORK);
        let body_tx = self.json()["transaction"].as_str().map(str::to_owned);
        assert_eq!(
            body_tx,
            Some(transaction.to_owned()).filter(|t| !t.is_empty()),
            "{self:?}"
        );
        receipt
    }

    /// Asserts `409 payment_already_settled` naming `transaction`, without the content.
    fn assert_already_settled(&self, transaction: &str) {
        assert_eq!(self.status, 409, "{self:?}");
        let body = self.json();
        assert_eq!(body["error"], codes::PAYMENT_ALREADY_SETTLED, "{self:?}");
        assert_eq!(body["transaction"], transaction, "{self:?}");
        assert!(!self.body.contains(PAID));
    }
}

/// The paid route served on 127.0.0.1 behind `x402`; its base URL and the handler's run count.
async fn serve_report(x402: &X402) -> (String, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(REPORT, get(report))
        .with_state(runs.clone())
        .layer(x402.layer());
    (serve(app).await, runs)
}

async fn get_report(base: &str, payment: Option<&str>) -> Answer {
    let mut request = http().get(format!("{base}{REPORT}"));
    if let Some(payment) = payment {
        request = request.header("PAYMENT-SIGNATURE", payment);
    }
    let response = request.send().await.expect("request");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
    }
}

/// The route's challenge, and a payment for it signed by the payer with `terms`.
async fn pay(base: &str, terms: &Terms) -> (PaymentRequired, String) {
    let unpaid = http()
        .get(format!("{base}{REPORT}"))
        .send()
        .await
        .expect("request");
    assert_eq!(unpaid.status(), 402);
    let challenge = challenge_of(&unpaid);
    assert_eq!(challenge.accepts[0].amount, PRICE.to_string());
    let payment = Payer::new(PAYER_KEY).pay_v2(&challenge, terms);
    (challenge, payment)
}

fn key_of(nonce: B256) -> ReplayKey {
    ReplayKey {
        network: NETWORK.to_owned(),
        asset: USDC.into(),
        from: PAYER.into(),
        nonce,
    }
}

/// The in-process facilitator settling on `chain` with a short receipt timeout, counting the
/// `/settle` calls and chain reads it serves (it is both the paywall's facilitator and its
/// chain reader).
struct Counted {
    local: LocalFacilitator,
    settles: AtomicUsize,
    reads: AtomicUsize,
}

impl Counted {
    fn on(chain: &Chain) -> Arc<Counted> {
        Arc::new(Counted {
            local: local_with_receipt_timeout(chain),
            settles: AtomicUsize::new(0),
            reads: AtomicUsize::new(0),
        })
    }

    fn settles(&self) -> usize {
        self.settles.load(Ordering::SeqCst)
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

impl Facilitator for Counted {
    fn verify<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<VerifyResponse, FacilitatorError>> {
        self.local.verify(request)
    }

    fn settle<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<SettleResponse, FacilitatorError>> {
        self.settles.fetch_add(1, Ordering::SeqCst);
        self.local.settle(request)
    }

    fn supported(&self) -> BoxFuture<'_, Result<SupportedResponse, FacilitatorError>> {
        self.local.supported()
    }
}

impl ChainReader for Counted {
    fn authorization<'a>(
        &'a self,
        authorization: &'a Authorization,
    ) -> BoxFuture<'a, Result<OnChain, ChainError>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.local.authorization(authorization)
    }
}

fn local_with_receipt_timeout(chain: &Chain) -> LocalFacilitator {
    LocalFacilitator::builder()
        .network(NETWORK)
        .rpc_url(NETWORK, chain.rpc_url())
        .signer_key(NETWORK, FACILITATOR_KEY)
        .receipt_timeout(RECEIPT_TIMEOUT)
        .build()
        .expect("facilitator")
}

fn config_for(facilitator_url: &str, settle_timeout: Duration) -> X402ConfigBuilder {
    X402Config::builder()
        .network(NETWORK)
        .pay_to(MERCHANT.to_checksum(None))
        .facilitator_url(facilitator_url)
        .verify_timeout(Duration::from_secs(10))
        .settle_timeout(settle_timeout)
}

/// A server clock: the real time plus an offset the test moves.
fn offset_clock(offset: &Arc<AtomicU64>) -> impl Fn() -> u64 + Send + Sync + Clone + 'static {
    let offset = offset.clone();
    move || unix_now() + offset.load(Ordering::SeqCst)
}

/// Asserts that the transaction the facilitator named is waiting in the mempool, unmined.
async fn assert_in_mempool(chain: &Chain, transaction: &str) {
    let sent = anvil_rpc(chain, "eth_getTransactionByHash", json!([transaction])).await;
    assert!(sent.is_object(), "the named transaction was sent: {sent}");
    assert!(sent["blockNumber"].is_null(), "not mined yet: {sent}");
    let receipt = anvil_rpc(chain, "eth_getTransactionReceipt", json!([transaction])).await;
    assert!(receipt.is_null(), "no receipt yet: {receipt}");
}

/// Asserts that `transaction` is mined, succeeded and is the one transfer of the price from the
/// payer to the merchant on the chain.
async fn assert_settled_once_in(chain: &Chain, transaction: &str) {
    let receipt = anvil_rpc(chain, "eth_getTransactionReceipt", json!([transaction])).await;
    assert_eq!(receipt["status"], "0x1", "mined and succeeded: {receipt}");
    assert_eq!(
        transfers_to_merchant(chain, PAYER).await,
        vec![(transaction.to_owned(), U256::from(PRICE))],
        "exactly one transfer of the price, in the named transaction"
    );
}

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

/// 1. The in-process facilitator sent the transaction but its receipt came after the timeout:
/// pending, naming the transaction; once mined, a resend finds it used on chain and is told it
/// settled there. Charged once, served once, one transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_after_the_timeout_is_found_on_chain_by_a_resend() {
    let Some(chain) =
        start_chain("a_receipt_after_the_timeout_is_found_on_chain_by_a_resend").await
    else {
        return;
    };
    let facilitator = Counted::on(&chain);
    let config = config_for("http://127.0.0.1:9", Duration::from_secs(10))
        .build()
        .expect("config");
    let x402 = X402::builder(config)
        .facilitator_arc(facilitator.clone())
        .chain_reader(facilitator.clone())
        .reconcile_interval(None)
        .build()
        .expect("paywall");
    let settles = || facilitator.settles();
    late_receipt_found_on_chain(&chain, &x402, &settles).await;
    assert_eq!(facilitator.reads(), 1, "one resend read the chain");
}

/// The course of tests 1 and 2: with the node not mining, the paid request is pending and names
/// the transaction in the mempool; once mined, a resend is told it settled there, with no second
/// `/settle` (`settles` counts them) and no second run; charged once, one transaction; a later
/// resend is answered from the record.
async fn late_receipt_found_on_chain(chain: &Chain, x402: &X402, settles: &dyn Fn() -> usize) {
    let (base, runs) = serve_report(x402).await;
    let before = usdc_balances(chain, PAYER).await;
    let sent_before = facilitator_transactions(chain).await;
    let (_, payment) = pay(&base, &Terms::default()).await;

    set_automine(chain, false).await;
    let paid = get_report(&base, Some(&payment)).await;
    assert_eq!(paid.status, 503, "{paid:?}");
    let transaction = paid.receipt().transaction;
    assert_eq!(transaction.len(), 66, "the receipt names the transaction");
    paid.assert_pending(&transaction);
    assert_in_mempool(chain, &transaction).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran");
    assert_eq!(settles(), 1);
    assert_eq!(
        usdc_balances(chain, PAYER).await,
        before,
        "nothing mined yet"
    );

    mine(chain).await;
    let resent = get_report(&base, Some(&payment)).await;
    resent.assert_already_settled(&transaction);
    assert_eq!(settles(), 1, "the chain answered: no second /settle");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the handler did not run again"
    );
    support::assert_price_moved(chain, PAYER, before, PRICE).await;
    assert_settled_once_in(chain, &transaction).await;

    // Again: answered from the record, nothing new anywhere.
    let again = get_report(&base, Some(&payment)).await;
    again.assert_already_settled(&transaction);
    assert_eq!(settles(), 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(facilitator_transactions(chain).await, sent_before + 1);
    assert_settled_once_in(chain, &transaction).await;
    support::assert_price_moved(chain, PAYER, before, PRICE).await;
}

/// Calls to the `x402-facilitator` server, by path.
type Ledger = Arc<Mutex<Vec<String>>>;

async fn record_call(State(ledger): State<Ledger>, request: Request, next: Next) -> Response {
    ledger
        .lock()
        .expect("lock")
        .push(request.uri().path().to_owned());
    next.run(request).await
}

fn calls_to(ledger: &Ledger, path: &str) -> usize {
    ledger
        .lock()
        .expect("lock")
        .iter()
        .filter(|p| *p == path)
        .count()
}

/// 2. The same through the standalone `x402-facilitator` server (its `--receipt-timeout`, here
/// set on the in-process facilitator it serves) over HTTP, with an `RpcChainReader` on the
/// node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_after_the_timeout_through_x402_facilitator_over_http() {
    let Some(chain) =
        start_chain("a_receipt_after_the_timeout_through_x402_facilitator_over_http").await
    else {
        return;
    };
    let ledger = Ledger::default();
    let server =
        x402_runtime_facilitator::router(Arc::new(local_with_receipt_timeout(&chain))).layer(
            axum::middleware::from_fn_with_state(ledger.clone(), record_call),
        );
    let facilitator_url = serve(server).await;
    let settle_timeout = Duration::from_secs(10);
    let config = config_for(&facilitator_url, settle_timeout)
        .build()
        .expect("config");
    let client =
        HttpFacilitator::with_timeouts(&facilitator_url, config.verify_timeout(), settle_timeout)
            .expect("client");
    let reader = RpcChainReader::builder()
        .default_rpc_url(chain.rpc_url())
        .build()
        .expect("reader");
    let x402 = X402::builder(config)
        .facilitator(client)
        .chain_reader(Arc::new(reader))
        .reconcile_interval(None)
        .build()
        .expect("paywall");
    let settles = || calls_to(&ledger, "/settle");
    late_receipt_found_on_chain(&chain, &x402, &settles).await;
    assert_eq!(calls_to(&ledger, "/verify"), 1);
}

/// 3. `/settle` never reached the chain (the facilitator hangs): the payment stays
/// `settlement_pending` while the authorization could still be used, also just past its
/// `validBefore`, and becomes `expired_unsettled` with a fresh challenge only once the chain is
/// `EXPIRY_MARGIN` past it. Nothing is ever charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_that_never_reached_the_chain_expires_only_after_valid_before() {
    let Some(chain) =
        start_chain("a_settlement_that_never_reached_the_chain_expires_only_after_valid_before")
            .await
    else {
        return;
    };
    const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);
    const WINDOW: u32 = 12;
    let double = FaultyFacilitator::start().await;
    double.set_verify(VerifyFault::Valid);
    double.set_settle(SettleFault::Hang);
    let config = faulty_config(&double, Duration::from_secs(5), SETTLE_TIMEOUT)
        .max_timeout_seconds(WINDOW)
        .build()
        .expect("config");
    let offset = Arc::new(AtomicU64::new(0));
    let clock = offset_clock(&offset);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let reader = Arc::new(
        RpcChainReader::builder()
            .default_rpc_url(chain.rpc_url())
            .build()
            .expect("reader"),
    );
    let x402 = faulty_paywall(&double, config)
        .chain_reader(reader.clone())
        .store(store.clone())
        .clock(clock.clone())
        .reconcile_interval(None)
        .build()
        .expect("paywall");
    let (base, runs) = serve_report(&x402).await;
    let before = usdc_balances(&chain, PAYER).await;
    let sent_before = facilitator_transactions(&chain).await;
    let terms = Terms {
        valid_before: unix_now() + u64::from(WINDOW),
        ..Terms::default()
    };
    let key = key_of(terms.nonce);
    let (challenge, payment) = pay(&base, &terms).await;

    // The paid request: served, /settle hangs past the settle timeout → pending, no transaction.
    let started = Instant::now();
    let paid = get_report(&base, Some(&payment)).await;
    paid.assert_pending("");
    assert!(started.elapsed() >= SETTLE_TIMEOUT);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!((double.count("verify"), double.count("settle")), (1, 1));

    // Before validBefore: the chain shows it unused and still usable, so the recorded /settle
    // is repeated (it hangs again) and the answer stays pending, never a 402.
    assert!(clock() < terms.valid_before, "still valid on the server");
    assert!(
        chain_time(&chain).await < terms.valid_before,
        "and on chain"
    );
    let resent = get_report(&base, Some(&payment)).await;
    resent.assert_pending("");
    assert_eq!((double.count("verify"), double.count("settle")), (1, 2));

    // Past validBefore, but not by the margin yet: still pending.
    let inside_margin = terms.valid_before + 5;
    anvil_rpc(
        &chain,
        "anvil_setNextBlockTimestamp",
        json!([inside_margin]),
    )
    .await;
    mine(&chain).await;
    assert_eq!(chain_time(&chain).await, inside_margin);
    offset.store(inside_margin.saturating_sub(unix_now()), Ordering::SeqCst);
    assert!(clock() >= inside_margin);
    let resent = get_report(&base, Some(&payment)).await;
    resent.assert_pending("");
    assert_eq!((double.count("verify"), double.count("settle")), (1, 3));
    assert_eq!(
        store
            .lookup(&key)
            .await
            .map(|s| matches!(s, Slot::Pending { .. })),
        Some(true)
    );

    // The chain moves past validBefore + EXPIRY_MARGIN, and so does the server's clock.
    let dead = terms.valid_before + EXPIRY_MARGIN;
    let now = chain_time(&chain).await;
    anvil_rpc(&chain, "evm_increaseTime", json!([dead + 1 - now])).await;
    mine(&chain).await;
    let mined_at = chain_time(&chain).await;
    assert!(
        mined_at >= dead,
        "mined at {mined_at}, wanted at least {dead}"
    );
    offset.store(mined_at.saturating_sub(unix_now()), Ordering::SeqCst);
    assert!(clock() >= dead);

    let expired = get_report(&base, Some(&payment)).await;
    assert_eq!(expired.status, 402, "{expired:?}");
    let fresh = expired.challenge();
    assert_eq!(fresh.error.as_deref(), Some(codes::EXPIRED_UNSETTLED));
    assert_eq!(fresh.error.as_deref(), Some("expired_unsettled"));
    assert!(!expired.body.contains(PAID));
    assert_eq!(
        (double.count("verify"), double.count("settle")),
        (1, 3),
        "the chain answered: no /settle"
    );
    assert_eq!(store.lookup(&key).await, Some(Slot::ExpiredUnsettled));
    // The fresh challenge offers the same price for the same resource.
    assert_eq!(fresh.x402_version, 2);
    assert_eq!(fresh.accepts, challenge.accepts);
    assert_eq!(fresh.accepts[0].amount, PRICE.to_string());
    assert_eq!(fresh.resource.url, challenge.resource.url);

    // Once more: answered from the record, the same way.
    let again = get_report(&base, Some(&payment)).await;
    assert_eq!(again.status, 402, "{again:?}");
    assert_eq!(
        again.challenge().error.as_deref(),
        Some(codes::EXPIRED_UNSETTLED)
    );
    assert_eq!((double.count("verify"), double.count("settle")), (1, 3));

    // Nothing ever reached the chain: the authorization is unused (and now dead), nothing moved.
    let authorization = Authorization {
        network: NETWORK.to_owned(),
        asset: USDC,
        from: PAYER,
        nonce: terms.nonce,
        valid_before: terms.valid_before,
    };
    assert_eq!(
        reader.authorization(&authorization).await.expect("read"),
        OnChain::Expired
    );
    assert_eq!(usdc_balances(&chain, PAYER).await, before);
    assert!(transfers_to_merchant(&chain, PAYER).await.is_empty());
    assert_eq!(facilitator_transactions(&chain).await, sent_before);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// 4. The server's own background pass finds the late transaction on chain, without a resend
/// and without calling `/settle` again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_pass_finds_a_late_receipt_on_chain_without_a_resend() {
    let Some(chain) =
        start_chain("the_background_pass_finds_a_late_receipt_on_chain_without_a_resend").await
    else {
        return;
    };
    let facilitator = Counted::on(&chain);
    let offset = Arc::new(AtomicU64::new(0));
    let clock = offset_clock(&offset);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let config = config_for("http://127.0.0.1:9", Duration::from_secs(10))
        .build()
        .expect("config");
    let x402 = X402::builder(config)
        .facilitator_arc(facilitator.clone())
        .chain_reader(facilitator.clone())
        .store(store.clone())
        .clock(clock)
        .reconcile_interval(Some(Duration::from_millis(200)))
        .build()
        .expect("paywall");
    let (base, runs) = serve_report(&x402).await;
    let before = usdc_balances(&chain, PAYER).await;
    let sent_before = facilitator_transactions(&chain).await;
    let terms = Terms::default();
    let key = key_of(terms.nonce);
    let (_, payment) = pay(&base, &terms).await;

    set_automine(&chain, false).await;
    let paid = get_report(&base, Some(&payment)).await;
    assert_eq!(paid.status, 503, "{paid:?}");
    let transaction = paid.receipt().transaction;
    assert_eq!(transaction.len(), 66, "the receipt names the transaction");
    paid.assert_pending(&transaction);
    assert_in_mempool(&chain, &transaction).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(facilitator.settles(), 1);

    // Before the block is mined, the background pass reads the chain, finds the authorization
    // unused and leaves the payment pending; with a chain reader it never calls /settle.
    let deadline = Instant::now() + Duration::from_secs(5);
    while facilitator.reads() == 0 {
        assert!(
            Instant::now() < deadline,
            "the background pass did not read the chain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(facilitator.settles(), 1, "the background pass only reads");
    assert_eq!(
        facilitator.reads(),
        1,
        "one attempt, then the payment waits for its backoff"
    );
    match store.lookup(&key).await {
        Some(Slot::Pending {
            transaction: recorded,
            ..
        }) => assert_eq!(recorded, transaction),
        other => panic!("expected pending, got {other:?}"),
    }

    // The block is mined; time passes beyond the first backoff (documented as 5 s, doubling).
    mine(&chain).await;
    offset.store(30, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.lookup(&key).await {
            Some(Slot::Settled {
                transaction: recorded,
            }) => {
                assert_eq!(recorded, transaction);
                break;
            }
            Some(Slot::Pending { .. }) => {}
            other => panic!("unexpected slot {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "not reconciled in time (chain reads: {})",
            facilitator.reads()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(facilitator.settles(), 1, "no /settle after the first");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_settled_once_in(&chain, &transaction).await;
    support::assert_price_moved(&chain, PAYER, before, PRICE).await;
    assert_eq!(facilitator_transactions(&chain).await, sent_before + 1);

    // The buyer's resend now gets the recorded outcome.
    let reads = facilitator.reads();
    let resent = get_report(&base, Some(&payment)).await;
    resent.assert_already_settled(&transaction);
    assert_eq!(facilitator.settles(), 1);
    assert_eq!(facilitator.reads(), reads, "answered from the record");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
