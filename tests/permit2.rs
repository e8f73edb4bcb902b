//! Permit2 `exact` and `upto`: the paywall's rules against a facilitator double (local refusals
//! cost no facilitator call; what an `upto` handler charges is what is settled; copies of one
//! permit are served once), then real settlement on anvil with Uniswap's Permit2 and the x402
//! proxies planted (a plain ERC-20 without EIP-3009 through `exact`, USDC through `upto`), paid
//! by the official TypeScript client and by permits signed here.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alloy_primitives::{Address, U256, address};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;
use support::{
    Facilitator, PAYER_KEY, Payer, PermitTerms, challenge_of, decode_b64, http, paywall_from,
    serve, unix_now,
};
use x402_runtime::facilitator::LocalFacilitator;
use x402_runtime::network::Asset;
use x402_runtime::proto::{
    FacilitatorRequest, PaymentRequired, SettleResponse, SupportedResponse, VerifyResponse,
};
use x402_runtime::schemes::exact_evm::chain::ChainReader;
use x402_runtime::schemes::permit2::UPTO_PROXY;
use x402_runtime::{BoxFuture, FacilitatorError};
use x402_runtime::{Charge, X402, X402Config, paid};
use x402_testbed::{
    Chain, ChainOptions, MERCHANT, NETWORK, PAYER, PAYER_KEY as PAYER1_KEY, PAYER2, PAYER2_KEY,
    USDC,
};

/// The tokens the double-backed paywall takes through Permit2 (no chain reads them).
const TOKEN: Address = address!("0x1111111111111111111111111111111111111111");
const PERMIT_TOKEN: Address = address!("0x3333333333333333333333333333333333333333");

/// How many times the paid handlers ran, per server.
type Runs = Arc<AtomicUsize>;

/// A fixed price in a plain ERC-20, paid through Permit2.
#[paid(price = "0.002", currency = "USDT", method = "GET", path = "/premium")]
async fn premium(State(runs): State<Runs>) -> &'static str {
    runs.fetch_add(1, Ordering::SeqCst);
    "premium"
}

#[derive(Deserialize)]
struct Usage {
    units: u64,
    #[serde(default)]
    fail: bool,
}

/// Up to 0.05 USDC, charging `units` atomic units (or failing when asked to).
#[paid(upto = "0.05", currency = "USDC", method = "GET", path = "/metered")]
async fn metered(State(runs): State<Runs>, Query(usage): Query<Usage>) -> Response {
    runs.fetch_add(1, Ordering::SeqCst);
    if usage.fail {
        return (StatusCode::INTERNAL_SERVER_ERROR, "the model failed").into_response();
    }
    (Charge::atomic(u128::from(usage.units)), "used").into_response()
}

/// A fixed price in an EIP-2612 token: a payer who never approved Permit2 sends a permit of it.
#[paid(
    price = "0.003",
    currency = "PYUSD",
    method = "GET",
    path = "/sponsored"
)]
async fn sponsored() -> &'static str {
    "sponsored"
}

/// Up to 0.01 of the EIP-2612 token, charging `units`.
#[paid(
    upto = "0.01",
    currency = "PYUSD",
    method = "GET",
    path = "/sponsored-upto"
)]
async fn sponsored_upto(Query(usage): Query<Usage>) -> (Charge, &'static str) {
    (Charge::atomic(u128::from(usage.units)), "used")
}

/// An `upto` handler that forgets to say what it used.
#[paid(upto = "0.05", currency = "USDC", method = "GET", path = "/forgetful")]
async fn forgetful() -> &'static str {
    "served"
}

/// The paid routes behind `x402`, counting their runs in `runs`.
fn routes(x402: &X402, runs: Runs) -> Router {
    Router::new()
        .route("/premium", get(premium))
        .route("/metered", get(metered))
        .route("/forgetful", get(forgetful))
        .route("/sponsored", get(sponsored))
        .route("/sponsored-upto", get(sponsored_upto))
        .with_state(runs)
        .layer(x402.layer())
}

/// A paywall through the facilitator double that takes [`TOKEN`] as USDT through Permit2.
async fn double_bed() -> (Facilitator, String, Runs) {
    let facilitator = Facilitator::start().await;
    let builder = X402Config::builder()
        .network("eip155:84532")
        .pay_to(support::PAY_TO)
        .token("eip155:84532", &TOKEN.to_checksum(None), "USDT", 6)
        .token("eip155:84532", &PERMIT_TOKEN.to_checksum(None), "PYUSD", 6);
    let x402 = paywall_from(&facilitator, builder, Duration::from_secs(5));
    let runs = Runs::default();
    (facilitator, serve(routes(&x402, runs.clone())).await, runs)
}

struct Answer {
    status: u16,
    code: Option<String>,
    receipt: Option<SettleResponse>,
}

async fn send(url: &str, payment: &str) -> Answer {
    let response = http()
        .get(url)
        .header("PAYMENT-SIGNATURE", payment)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let receipt = response
        .headers()
        .get("payment-response")
        .map(|v| decode_b64::<SettleResponse>(v.to_str().expect("ascii")));
    let code = if status == 402 {
        response.headers().get("payment-required").map(|v| {
            decode_b64::<PaymentRequired>(v.to_str().expect("ascii"))
                .error
                .unwrap_or_default()
        })
    } else {
        let body: Value = response.json().await.unwrap_or_default();
        body["error"].as_str().map(str::to_owned)
    };
    Answer {
        status,
        code,
        receipt,
    }
}

async fn challenge(url: &str) -> PaymentRequired {
    let unpaid = http().get(url).send().await.expect("request");
    assert_eq!(unpaid.status(), 402, "{url}");
    challenge_of(&unpaid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offers_say_permit2_and_upto_with_the_facilitator() {
    let (_facilitator, base, _) = double_bed().await;
    let exact = challenge(&format!("{base}/premium")).await;
    let offer = &exact.accepts[0];
    assert_eq!(offer.scheme, "exact");
    assert_eq!(offer.asset, TOKEN.to_checksum(None));
    assert_eq!(offer.amount, "2000");
    let extra = offer.extra.as_ref().expect("extra");
    assert_eq!(extra["assetTransferMethod"], "permit2");

    let upto = challenge(&format!("{base}/metered?units=1")).await;
    let offer = &upto.accepts[0];
    assert_eq!(
        (offer.scheme.as_str(), offer.amount.as_str()),
        ("upto", "50000")
    );
    let extra = offer.extra.as_ref().expect("extra");
    assert_eq!(extra["assetTransferMethod"], "permit2");
    assert_eq!(
        extra["facilitatorAddress"],
        x402_testbed::FACILITATOR.to_checksum(None)
    );
}

/// Each broken permit is refused with its code before any facilitator call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_permits_are_refused_locally_with_no_facilitator_call() {
    let (facilitator, base, runs) = double_bed().await;
    let payer = Payer::new(PAYER_KEY);
    let stranger = address!("0x2222222222222222222222222222222222222222");
    let now = unix_now();
    let exact_url = format!("{base}/premium");
    let upto_url = format!("{base}/metered?units=10");
    let exact = challenge(&exact_url).await;
    let upto = challenge(&upto_url).await;
    let cases: Vec<(&str, &str, &PaymentRequired, PermitTerms, u16, &str)> = vec![
        (
            "wrong spender",
            &exact_url,
            &exact,
            PermitTerms {
                spender: Some(UPTO_PROXY),
                ..PermitTerms::default()
            },
            402,
            "invalid_permit2_spender",
        ),
        (
            "wrong witness recipient",
            &exact_url,
            &exact,
            PermitTerms {
                to: Some(stranger),
                ..PermitTerms::default()
            },
            402,
            "invalid_permit2_recipient_mismatch",
        ),
        (
            "amount other than the price",
            &exact_url,
            &exact,
            PermitTerms {
                amount: Some(U256::from(1999)),
                ..PermitTerms::default()
            },
            402,
            "permit2_amount_mismatch",
        ),
        (
            "upto amount above the maximum",
            &upto_url,
            &upto,
            PermitTerms {
                amount: Some(U256::from(50_001)),
                ..PermitTerms::default()
            },
            402,
            "permit2_amount_mismatch",
        ),
        (
            "expired deadline",
            &exact_url,
            &exact,
            PermitTerms {
                deadline: now - 1,
                ..PermitTerms::default()
            },
            402,
            "permit2_deadline_expired",
        ),
        (
            "deadline beyond the offer",
            &exact_url,
            &exact,
            PermitTerms {
                deadline: now + 3600,
                ..PermitTerms::default()
            },
            402,
            "permit2_deadline_expired",
        ),
        (
            "wrong token",
            &exact_url,
            &exact,
            PermitTerms {
                token: Some(stranger),
                ..PermitTerms::default()
            },
            402,
            "permit2_token_mismatch",
        ),
        (
            "not yet valid",
            &exact_url,
            &exact,
            PermitTerms {
                valid_after: now + 600,
                ..PermitTerms::default()
            },
            402,
            "permit2_not_yet_valid",
        ),
        (
            "upto naming another facilitator",
            &upto_url,
            &upto,
            PermitTerms {
                facilitator: Some(Some(stranger)),
                ..PermitTerms::default()
            },
            402,
            "upto_facilitator_mismatch",
        ),
        (
            "exact naming a facilitator (the upto witness)",
            &exact_url,
            &exact,
            PermitTerms {
                facilitator: Some(Some(stranger)),
                ..PermitTerms::default()
            },
            402,
            "upto_facilitator_mismatch",
        ),
        (
            "high-s signature",
            &exact_url,
            &exact,
            PermitTerms {
                signature: Some(format!("0x{}{}1b", "11".repeat(32), "ff".repeat(32))),
                ..PermitTerms::default()
            },
            402,
            "invalid_permit2_signature",
        ),
        (
            "short signature",
            &exact_url,
            &exact,
            PermitTerms {
                signature: Some(format!("0x{}", "11".repeat(64))),
                ..PermitTerms::default()
            },
            400,
            "invalid_payload",
        ),
        (
            "signature that is not hex",
            &upto_url,
            &upto,
            PermitTerms {
                signature: Some("0xzz".into()),
                ..PermitTerms::default()
            },
            400,
            "invalid_payload",
        ),
    ];
    for (name, url, challenge, terms, status, code) in cases {
        let payment = payer.pay_permit2(challenge, 0, &terms);
        let answer = send(url, &payment).await;
        assert_eq!(answer.status, status, "{name}");
        assert_eq!(answer.code.as_deref(), Some(code), "{name}");
    }
    // A permit for another chain than the offers': refused by the offer match.
    let payment = support::edit_payment(
        &payer.pay_permit2(&exact, 0, &PermitTerms::default()),
        |p| p["accepted"]["network"] = "eip155:8453".into(),
    );
    let answer = send(&exact_url, &payment).await;
    assert_eq!(answer.status, 402, "wrong chain");
    assert_eq!(
        answer.code.as_deref(),
        Some("invalid_network"),
        "wrong chain"
    );
    // Signed for another chain: the offer's network, but the signature recovers someone else,
    // which only the chain can rule on (an ERC-1271 wallet): the facilitator is asked.
    let other_chain = PermitTerms {
        chain_id: 8453,
        ..PermitTerms::default()
    };
    let before = facilitator.count("verify");
    assert_eq!(before, 0, "no broken permit reached the facilitator");
    facilitator.set_verify(support::VerifyMode::Invalid("invalid_permit2_signature"));
    let answer = send(&exact_url, &payer.pay_permit2(&exact, 0, &other_chain)).await;
    assert_eq!(answer.status, 402);
    assert_eq!(answer.code.as_deref(), Some("invalid_permit2_signature"));
    assert_eq!(facilitator.count("settle"), 0);
    assert_eq!(runs.load(Ordering::SeqCst), 0, "nothing was served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upto_settles_what_the_handler_charged_and_nothing_on_a_failure() {
    let (facilitator, base, _) = double_bed().await;
    let payer = Payer::new(PAYER_KEY);
    let settled_amounts = || {
        facilitator
            .calls()
            .iter()
            .filter(|c| c.endpoint == "settle")
            .map(|c| {
                c.requirements["amount"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };

    let url = format!("{base}/metered?units=1234");
    let paid = send(
        &url,
        &payer.pay_permit2(&challenge(&url).await, 0, &PermitTerms::default()),
    )
    .await;
    assert_eq!(paid.status, 200);
    let receipt = paid.receipt.expect("receipt");
    assert!(receipt.success);
    assert_eq!(
        receipt.amount.as_deref(),
        Some("1234"),
        "the receipt says what was charged"
    );
    assert_eq!(
        settled_amounts(),
        ["1234"],
        "/settle asked for the usage, not the maximum"
    );

    // Used nothing: nothing is sent to /settle, the receipt says 0.
    let url = format!("{base}/metered?units=0");
    let free = send(
        &url,
        &payer.pay_permit2(&challenge(&url).await, 0, &PermitTerms::default()),
    )
    .await;
    assert_eq!(free.status, 200);
    let receipt = free.receipt.expect("receipt");
    assert!(receipt.success);
    assert_eq!(receipt.amount.as_deref(), Some("0"));
    assert_eq!(receipt.transaction, "");
    assert_eq!(settled_amounts().len(), 1);

    // Above the authorized maximum: the server's bug, nothing settled.
    let url = format!("{base}/metered?units=50001");
    let over = send(
        &url,
        &payer.pay_permit2(&challenge(&url).await, 0, &PermitTerms::default()),
    )
    .await;
    assert_eq!(
        (over.status, over.code.as_deref()),
        (500, Some("x402_charge_invalid"))
    );
    // The handler failed: nothing settled, its answer passes through.
    let url = format!("{base}/metered?units=10&fail=true");
    let failed = send(
        &url,
        &payer.pay_permit2(&challenge(&url).await, 0, &PermitTerms::default()),
    )
    .await;
    assert_eq!(failed.status, 500);
    assert!(failed.receipt.is_none());
    // No charge reported.
    let url = format!("{base}/forgetful");
    let forgot = send(
        &url,
        &payer.pay_permit2(&challenge(&url).await, 0, &PermitTerms::default()),
    )
    .await;
    assert_eq!(
        (forgot.status, forgot.code.as_deref()),
        (500, Some("x402_charge_missing"))
    );
    assert_eq!(settled_amounts().len(), 1, "only the first request settled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_copies_of_one_upto_permit_run_the_handler_once_and_settle_once() {
    let (facilitator, base, runs) = double_bed().await;
    let url = format!("{base}/metered?units=700");
    let payment =
        Payer::new(PAYER_KEY).pay_permit2(&challenge(&url).await, 0, &PermitTerms::default());
    let copies = (0..16).map(|_| send(&url, &payment));
    let answers = futures_util::future::join_all(copies).await;
    let served = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(served, 1, "one copy is served");
    assert!(
        answers.iter().all(|a| a.status == 200 || a.status == 409),
        "the others are in progress or already settled: {:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(facilitator.count("settle"), 1);
    let again = send(&url, &payment).await;
    assert_eq!(
        (again.status, again.code.as_deref()),
        (409, Some("payment_already_settled"))
    );
}

// ------------------------------------------------------------------------------------------------
// On a real chain: Permit2 and the x402 proxies planted on anvil, settled by the in-process
// facilitator.
// ------------------------------------------------------------------------------------------------

struct Chained {
    chain: Chain,
    paths: x402_testbed::Paths,
    usdt: Address,
    /// An EIP-2612 token ("PayPal USD", PYUSD) minted to both payers, who never approved
    /// Permit2 for it.
    pyusd: Address,
    base: String,
    example: String,
}

/// A chain with Permit2, a plain ERC-20 "USDT" minted to both payers (and to [`UNAPPROVED`]),
/// both payers having approved Permit2 for it and for USDC; our routes and the example API
/// served through the in-process facilitator.
async fn chained(test: &str) -> Option<Chained> {
    let paths = support::installed_testbed(test).await?;
    let options = ChainOptions {
        permit2: true,
        ..ChainOptions::default()
    };
    let chain = Chain::start_with(options).await.expect("chain");
    let usdt = chain
        .deploy_plain_token("Tether USD", "USDT", 6)
        .await
        .expect("token");
    let thousand = U256::from(1_000_000_000u64);
    for (payer, key) in [(PAYER, PAYER1_KEY), (PAYER2, PAYER2_KEY)] {
        chain.mint_plain(usdt, payer, thousand).await.expect("mint");
        chain.approve_permit2(usdt, key).await.expect("approve");
        chain.approve_permit2(USDC, key).await.expect("approve");
    }
    chain
        .mint_plain(usdt, UNAPPROVED, thousand)
        .await
        .expect("mint");
    let pyusd = chain
        .deploy_permit_token("PayPal USD", "PYUSD", 6)
        .await
        .expect("token");
    for payer in [PAYER, PAYER2] {
        chain
            .mint_plain(pyusd, payer, thousand)
            .await
            .expect("mint");
    }
    let config = X402Config::builder()
        .network(NETWORK)
        .pay_to(MERCHANT.to_checksum(None))
        .token(NETWORK, &usdt.to_checksum(None), "USDT", 6)
        .asset(Asset::erc20(NETWORK, pyusd, "PYUSD", 6).with_eip712("PayPal USD", "1"))
        .build()
        .expect("config");
    let x402 = X402::builder(config)
        .facilitator(support::local_facilitator(Some(chain.rpc_url())))
        .build()
        .expect("paywall");
    // As a deployment does at startup: the 402s then say what the facilitator sponsors.
    // (The example's `/climate`, linked in, is offered on Base too, which it does not serve.)
    let _ = x402.check_facilitator().await;
    let base = serve(routes(&x402, Runs::default())).await;
    let example = support::chain_api(chain.rpc_url()).await;
    Some(Chained {
        chain,
        paths,
        usdt,
        pyusd,
        base,
        example,
    })
}

/// An account with USDT that never approved Permit2.
const UNAPPROVED: Address = x402_testbed::PY_FACILITATOR;

impl Chained {
    async fn balances(&self, token: Address, payer: Address) -> (U256, U256) {
        let of = |owner| self.chain.balance_of(token, owner);
        (
            of(payer).await.expect("balance"),
            of(MERCHANT).await.expect("balance"),
        )
    }

    async fn assert_moved(
        &self,
        token: Address,
        payer: Address,
        before: (U256, U256),
        amount: u64,
    ) {
        let after = self.balances(token, payer).await;
        let amount = U256::from(amount);
        assert_eq!(before.0 - after.0, amount, "the payer paid exactly that");
        assert_eq!(after.1 - before.1, amount, "the merchant got exactly that");
    }

    /// The official TypeScript client pays `url`; its one JSON line.
    async fn typescript_pays(&self, key: &str, url: &str) -> Value {
        self.typescript_pays_with(key, url, &[]).await
    }

    /// The same, with more environment for the client (`PAY_RPC_URL`).
    async fn typescript_pays_with(&self, key: &str, url: &str, env: &[(&str, &str)]) -> Value {
        let script = self.paths.interop.join("scripts/pay.mjs");
        let mut env = env.to_vec();
        env.push(("PAY_ANY_ASSET", "1"));
        support::run_client(&self.paths.node, &script, key, &[url], &env).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_pays_a_plain_erc20_and_an_upto_route_on_chain() {
    let Some(bed) =
        chained("the_official_client_pays_a_plain_erc20_and_an_upto_route_on_chain").await
    else {
        return;
    };
    let before = bed.balances(bed.usdt, PAYER2).await;
    let result = bed
        .typescript_pays(PAYER2_KEY, &format!("{}/premium", bed.base))
        .await;
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["receipt"]["success"], true, "{result}");
    assert_eq!(
        result["receipt"]["transaction"].as_str().map(str::len),
        Some(66)
    );
    bed.assert_moved(bed.usdt, PAYER2, before, 2000).await;

    let before = bed.balances(USDC, PAYER2).await;
    let result = bed
        .typescript_pays(PAYER2_KEY, &format!("{}/metered?units=1234", bed.base))
        .await;
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["receipt"]["amount"], "1234", "{result}");
    bed.assert_moved(USDC, PAYER2, before, 1234).await;

    // The example's `upto` route charges 0.0002 USDC per observation it found.
    let city = "Lima";
    let found = u64::from(example_weather::weather::stored_observations(city).min(50));
    let before = bed.balances(USDC, PAYER2).await;
    let url = format!("{}/observations?city={city}&limit=50", bed.example);
    let result = bed.typescript_pays(PAYER2_KEY, &url).await;
    assert_eq!(result["status"], 200, "{result}");
    bed.assert_moved(USDC, PAYER2, before, 200 * found).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permits_signed_here_settle_exactly_once_on_chain() {
    let Some(bed) = chained("permits_signed_here_settle_exactly_once_on_chain").await else {
        return;
    };
    let payer = Payer::new(PAYER_KEY);
    let url = format!("{}/premium", bed.base);
    let before = bed.balances(bed.usdt, PAYER).await;
    let payment = payer.pay_permit2(&challenge(&url).await, 0, &PermitTerms::default());
    let paid = send(&url, &payment).await;
    assert_eq!(paid.status, 200);
    let transaction = paid.receipt.expect("receipt").transaction;
    bed.assert_moved(bed.usdt, PAYER, before, 2000).await;
    let again = send(&url, &payment).await;
    assert_eq!(
        (again.status, again.code.as_deref()),
        (409, Some("payment_already_settled"))
    );
    bed.assert_moved(bed.usdt, PAYER, before, 2000).await;
    assert_eq!(transaction.len(), 66);

    let url = format!("{}/metered?units=31337", bed.base);
    let before = bed.balances(USDC, PAYER).await;
    let payment = payer.pay_permit2(&challenge(&url).await, 0, &PermitTerms::default());
    let paid = send(&url, &payment).await;
    assert_eq!(paid.status, 200);
    assert_eq!(
        paid.receipt.expect("receipt").amount.as_deref(),
        Some("31337")
    );
    bed.assert_moved(USDC, PAYER, before, 31337).await;

    // Usage zero: the permit is never used on chain.
    let url = format!("{}/metered?units=0", bed.base);
    let before = bed.balances(USDC, PAYER).await;
    let payment = payer.pay_permit2(&challenge(&url).await, 0, &PermitTerms::default());
    assert_eq!(send(&url, &payment).await.status, 200);
    bed.assert_moved(USDC, PAYER, before, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payer_without_a_permit2_approval_is_told_so_and_nothing_moves() {
    let Some(bed) =
        chained("a_payer_without_a_permit2_approval_is_told_so_and_nothing_moves").await
    else {
        return;
    };
    let payer = Payer::new(x402_testbed::PY_FACILITATOR_KEY);
    let url = format!("{}/premium", bed.base);
    let before = bed.balances(bed.usdt, UNAPPROVED).await;
    let payment = payer.pay_permit2(&challenge(&url).await, 0, &PermitTerms::default());
    let answer = send(&url, &payment).await;
    assert_eq!(answer.status, 412);
    assert_eq!(answer.code.as_deref(), Some("permit2_allowance_required"));
    bed.assert_moved(bed.usdt, UNAPPROVED, before, 0).await;
}

/// Settles through the in-process facilitator, then loses the answer (a timeout): the money
/// moved and the server does not know it.
struct LostAnswers(LocalFacilitator);

impl x402_runtime::Facilitator for LostAnswers {
    fn verify<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<VerifyResponse, FacilitatorError>> {
        self.0.verify(request)
    }

    fn settle<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<SettleResponse, FacilitatorError>> {
        Box::pin(async move {
            let settled = self.0.settle(request).await;
            assert!(settled.is_ok_and(|s| s.success), "the permit settled");
            Err(FacilitatorError::Timeout)
        })
    }

    fn supported(&self) -> BoxFuture<'_, Result<SupportedResponse, FacilitatorError>> {
        self.0.supported()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_reconciled_from_permit2s_nonce_bitmap() {
    let Some(bed) = chained("a_lost_answer_is_reconciled_from_permit2s_nonce_bitmap").await else {
        return;
    };
    let config = X402Config::builder()
        .network(NETWORK)
        .pay_to(MERCHANT.to_checksum(None))
        .token(NETWORK, &bed.usdt.to_checksum(None), "USDT", 6)
        .build()
        .expect("config");
    let lost = LostAnswers(support::local_facilitator(Some(bed.chain.rpc_url())));
    let reader: Arc<dyn ChainReader> =
        Arc::new(support::local_facilitator(Some(bed.chain.rpc_url())));
    let x402 = X402::builder(config)
        .facilitator(lost)
        .chain_reader(reader)
        .reconcile_interval(None)
        .build()
        .expect("paywall");
    let runs = Runs::default();
    let base = serve(routes(&x402, runs.clone())).await;
    for (path, token, amount) in [
        ("/premium", bed.usdt, 2000),
        ("/metered?units=4321", USDC, 4321),
    ] {
        let url = format!("{base}{path}");
        let before = bed.balances(token, PAYER).await;
        let payment =
            Payer::new(PAYER_KEY).pay_permit2(&challenge(&url).await, 0, &PermitTerms::default());
        let first = send(&url, &payment).await;
        assert_eq!(
            (first.status, first.code.as_deref()),
            (503, Some("settlement_pending")),
            "{path}: the outcome is unknown, never a new challenge"
        );
        bed.assert_moved(token, PAYER, before, amount).await;
        // The resend reads Permit2's nonce bitmap: used, so settled (Permit2 logs no nonce, so
        // the transaction is not named).
        let resend = send(&url, &payment).await;
        assert_eq!(
            (resend.status, resend.code.as_deref()),
            (409, Some("payment_already_settled")),
            "{path}"
        );
        bed.assert_moved(token, PAYER, before, amount).await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2, "each handler ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_facilitator_settles_upto_for_the_official_express_server() {
    let Some(bed) = chained("our_facilitator_settles_upto_for_the_official_express_server").await
    else {
        return;
    };
    let (_server, base) = support::official_express_server(&bed.paths, &bed.chain).await;
    let before = bed.balances(USDC, PAYER2).await;
    let result = bed
        .typescript_pays(PAYER2_KEY, &format!("{base}/metered?units=2500"))
        .await;
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["receipt"]["success"], true, "{result}");
    assert_eq!(result["receipt"]["amount"], "2500", "{result}");
    bed.assert_moved(USDC, PAYER2, before, 2500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payer_without_a_permit2_approval_pays_with_an_eip2612_permit() {
    let Some(bed) = chained("a_payer_without_a_permit2_approval_pays_with_an_eip2612_permit").await
    else {
        return;
    };
    let offered = challenge(&format!("{}/sponsored", bed.base)).await;
    let declared = offered.extensions.as_ref().expect("extensions");
    assert_eq!(
        declared["eip2612GasSponsoring"]["info"]["version"], "1",
        "the 402 offers gas sponsoring: the facilitator lists it"
    );
    let rpc = [("PAY_RPC_URL", bed.chain.rpc_url())];
    for (path, amount) in [("/sponsored", 3000), ("/sponsored-upto?units=777", 777)] {
        let before = bed.balances(bed.pyusd, PAYER2).await;
        let result = bed
            .typescript_pays_with(PAYER2_KEY, &format!("{}{path}", bed.base), &rpc)
            .await;
        assert_eq!(result["status"], 200, "{path}: {result}");
        assert_eq!(result["receipt"]["success"], true, "{path}: {result}");
        bed.assert_moved(bed.pyusd, PAYER2, before, amount).await;
    }
    // Without a permit (and no approval) the answer says what is missing; nothing moves.
    let url = format!("{}/sponsored", bed.base);
    let before = bed.balances(bed.pyusd, PAYER).await;
    let payment =
        Payer::new(PAYER_KEY).pay_permit2(&challenge(&url).await, 0, &PermitTerms::default());
    let answer = send(&url, &payment).await;
    assert_eq!(
        (answer.status, answer.code.as_deref()),
        (412, Some("permit2_allowance_required"))
    );
    bed.assert_moved(bed.pyusd, PAYER, before, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_pays_a_plain_erc20_and_an_upto_route_on_chain() {
    use x402_runtime::client::{PaymentSigner, SpendStatus, X402Client};
    use x402_runtime::{Currency, Token};
    let Some(bed) = chained("our_client_pays_a_plain_erc20_and_an_upto_route_on_chain").await
    else {
        return;
    };
    let usdt = Currency::Token(Token::new("USDT", 6));
    let client = X402Client::builder(PaymentSigner::from_key(PAYER_KEY).expect("key"))
        .asset(Asset::erc20(NETWORK, bed.usdt, "USDT", 6))
        .currencies([Currency::Usdc, usdt])
        .max_per_request(usdt, "0.01")
        .max_per_request(Currency::Usdc, "0.05")
        .budget(Currency::Usdc, "0.05")
        .build()
        .expect("client");

    let before = bed.balances(bed.usdt, PAYER).await;
    let answer = client
        .get(&format!("{}/premium", bed.base))
        .await
        .expect("paid");
    assert_eq!(answer.status(), 200);
    bed.assert_moved(bed.usdt, PAYER, before, 2000).await;

    let before = bed.balances(USDC, PAYER).await;
    let answer = client
        .get(&format!("{}/metered?units=1500", bed.base))
        .await
        .expect("paid");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.receipt().expect("receipt").amount.as_deref(),
        Some("1500")
    );
    bed.assert_moved(USDC, PAYER, before, 1500).await;

    let log = client.spend_log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log.iter().all(|s| s.status == SpendStatus::Settled),
        "{log:?}"
    );
    assert_eq!(
        (log[0].scheme.as_str(), log[0].amount.as_str()),
        ("exact", "0.002")
    );
    assert_eq!(log[1].scheme, "upto");
    assert_eq!(log[1].authorized, "0.05", "the maximum was authorized");
    assert_eq!(
        log[1].amount, "0.0015",
        "the receipt's charge is what was spent"
    );
    assert_eq!(client.spent(Currency::Usdc), "0.0015");
}
