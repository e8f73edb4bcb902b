//! A resend is always answered from the record, and every unknown settlement is reconciled to a
//! definite outcome: each `/settle` fault of the facilitator double × each resend timing, on a
//! server whose clock is moved forward between the answers (so that resends long after the
//! payment's validity window run in milliseconds).
//!
//! For every case: the first answer is `503 settlement_pending` with `Retry-After` and a pending
//! receipt; a resend while the facilitator is still faulty reconciles once and is still pending
//! (never a 402, at any time, with no chain to read); once the facilitator answers, the next
//! resend is `409 payment_already_settled` naming the transaction, and the one after it is
//! answered from the record. No 2xx, one handler run, every `/settle` with the same payload.
//!
//! Every table runs for each way to pay: an EIP-3009 authorization, a Permit2 permit (`exact`
//! over a plain ERC-20) and an `upto` permit (the handler charging part of the maximum).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use alloy_primitives::{Address, address};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use support::{
    FaultyFacilitator, PAYER_KEY, Payer, PermitTerms, SettleFault, Terms, challenge_of, decode_b64,
    faulty_config, faulty_paywall, http, serve, tx_for, unix_now,
};
use x402_runtime::proto::SettleResponse;
use x402_runtime::{Charge, codes, paid};

/// Verify and settle budgets: every hang resolves within them.
const BUDGET: Duration = Duration::from_millis(500);
const PAID: &str = "PAID-CONTENT";

/// The plain ERC-20 the Permit2 route takes (the double reads no chain).
const TOKEN: Address = address!("0x1111111111111111111111111111111111111111");

/// Paid content that counts its runs.
#[paid(price = "0.001", method = "GET", path = "/paid")]
async fn paid_content(State(runs): State<Arc<AtomicUsize>>) -> &'static str {
    runs.fetch_add(1, Ordering::SeqCst);
    PAID
}

/// The same content, paid in a token without EIP-3009, through Permit2.
#[paid(
    price = "0.001",
    currency = "USDT",
    method = "GET",
    path = "/paid-permit2"
)]
async fn paid_permit2(State(runs): State<Arc<AtomicUsize>>) -> &'static str {
    runs.fetch_add(1, Ordering::SeqCst);
    PAID
}

/// The same content, paid by usage: 700 of the 1000 units authorized.
#[paid(upto = "0.001", method = "GET", path = "/paid-upto")]
async fn paid_upto(State(runs): State<Arc<AtomicUsize>>) -> (Charge, &'static str) {
    runs.fetch_add(1, Ordering::SeqCst);
    (Charge::atomic(700), PAID)
}

/// How a case pays.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Eip3009,
    Permit2,
    Upto,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Eip3009, Kind::Permit2, Kind::Upto];

    fn path(self) -> &'static str {
        match self {
            Kind::Eip3009 => "/paid",
            Kind::Permit2 => "/paid-permit2",
            Kind::Upto => "/paid-upto",
        }
    }
}

/// One server with a clock that can be moved forward, its facilitator double and a payer.
struct Rig {
    base: String,
    kind: Kind,
    facilitator: FaultyFacilitator,
    runs: Arc<AtomicUsize>,
    /// Seconds added to the real time on the server's clock.
    ahead: Arc<AtomicU64>,
}

struct Answer {
    status: u16,
    code: Option<String>,
    body: serde_json::Value,
    text: String,
    retry_after: bool,
    challenge: bool,
    receipt: Option<SettleResponse>,
}

impl Rig {
    async fn start(retention: Duration, kind: Kind) -> Rig {
        let facilitator = FaultyFacilitator::start().await;
        let config = faulty_config(&facilitator, BUDGET, BUDGET)
            .token("eip155:84532", &TOKEN.to_checksum(None), "USDT", 6)
            .record_retention(retention)
            .build()
            .expect("config");
        let ahead = Arc::new(AtomicU64::new(0));
        let clock = ahead.clone();
        let x402 = faulty_paywall(&facilitator, config)
            .clock(move || unix_now() + clock.load(Ordering::SeqCst))
            .build()
            .expect("paywall");
        let runs = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/paid", get(paid_content))
            .route("/paid-permit2", get(paid_permit2))
            .route("/paid-upto", get(paid_upto))
            .with_state(runs.clone())
            .layer(x402.layer());
        Rig {
            base: serve(app).await,
            kind,
            facilitator,
            runs,
            ahead,
        }
    }

    fn url(&self) -> String {
        format!("{}{}", self.base, self.kind.path())
    }

    /// A payment of the rig's kind, and the transaction the double settles it in.
    async fn payment(&self) -> (String, String) {
        let unpaid = http().get(self.url()).send().await.expect("request");
        assert_eq!(unpaid.status(), 402);
        let challenge = challenge_of(&unpaid);
        let payer = Payer::new(PAYER_KEY);
        if let Kind::Eip3009 = self.kind {
            let terms = Terms::default();
            let payment = payer.pay_v2(&challenge, &terms);
            return (payment, tx_for(&terms.nonce.to_string()));
        }
        let terms = PermitTerms::default();
        let payment = payer.pay_permit2(&challenge, 0, &terms);
        (payment, tx_for(&terms.nonce.to_string()))
    }

    async fn send(&self, payment: &str) -> Answer {
        let response = http()
            .get(self.url())
            .header("PAYMENT-SIGNATURE", payment)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        Answer {
            status,
            code: body["error"].as_str().map(str::to_owned),
            retry_after: headers.contains_key("retry-after"),
            challenge: headers.contains_key("payment-required"),
            receipt: headers
                .get("payment-response")
                .map(|v| decode_b64(v.to_str().expect("ascii"))),
            body,
            text,
        }
    }

    fn advance(&self, seconds: u64) {
        self.ahead.fetch_add(seconds, Ordering::SeqCst);
    }

    fn settles(&self) -> usize {
        self.facilitator.count("settle")
    }
}

/// `settlement_pending`, with everything the answer must carry.
fn assert_pending(row: &str, answer: &Answer, tx: Option<&str>) {
    assert_eq!(answer.status, 503, "{row}: {}", answer.text);
    assert_eq!(
        answer.code.as_deref(),
        Some(codes::SETTLEMENT_PENDING),
        "{row}"
    );
    assert!(answer.retry_after, "{row}: Retry-After");
    assert!(
        !answer.challenge,
        "{row}: a fresh challenge while the outcome is unknown"
    );
    assert!(!answer.text.contains(PAID), "{row}: content leaked");
    let receipt = answer.receipt.as_ref().expect("a pending receipt");
    assert!(!receipt.success, "{row}");
    assert_eq!(
        receipt.error_reason.as_deref(),
        Some(codes::SETTLEMENT_PENDING),
        "{row}"
    );
    if let Some(tx) = tx {
        assert_eq!(receipt.transaction, tx, "{row}: names the transaction");
    }
}

fn assert_settled(row: &str, answer: &Answer, tx: &str) {
    assert_eq!(answer.status, 409, "{row}: {}", answer.text);
    assert_eq!(
        answer.code.as_deref(),
        Some(codes::PAYMENT_ALREADY_SETTLED),
        "{row}"
    );
    assert_eq!(
        answer.body["transaction"], tx,
        "{row}: names the transaction"
    );
    assert!(!answer.challenge, "{row}");
}

/// The `/settle` faults that leave the outcome unknown, and whether the double names the
/// transaction in them.
fn faults() -> Vec<(&'static str, SettleFault, bool)> {
    vec![
        (
            "timeout after success",
            SettleFault::Delay(BUDGET * 2),
            false,
        ),
        ("hang", SettleFault::Hang, false),
        (
            "settlement_pending over 200",
            SettleFault::PendingOver200,
            true,
        ),
        (
            "settlement_pending over 500",
            SettleFault::PendingOver500,
            true,
        ),
        ("HTML 502", SettleFault::Html502, false),
        ("success over 503", SettleFault::SuccessOver503, false),
        ("non-JSON 200", SettleFault::NonJson200, false),
        ("truncated JSON", SettleFault::Truncated, false),
        ("reset mid-body", SettleFault::Reset, false),
        ("success missing", SettleFault::MissingSuccess, false),
        ("success as a string", SettleFault::StringSuccess, false),
        (
            "success without a transaction",
            SettleFault::SuccessWithoutTransaction,
            false,
        ),
        ("success for another payer", SettleFault::OtherPayer, false),
        (
            "success for another amount",
            SettleFault::OtherAmount,
            false,
        ),
        (
            "success on another network",
            SettleFault::OtherNetwork,
            false,
        ),
    ]
}

/// Seconds after the first answer at which the payment is resent: inside the window, at the
/// issue's +25 s and +35 s, past the local window check (validBefore − 6 s), past validBefore,
/// and past validBefore plus the clock-skew allowance (the reservation's own expiry).
const TIMINGS: [u64; 6] = [0, 25, 35, 58, 70, 200];

/// One fault × one timing, on a server of its own.
async fn case(kind: Kind, name: &'static str, fault: SettleFault, names_tx: bool, after: u64) {
    let row = format!("{kind:?}: {name} @ +{after} s");
    let rig = Rig::start(Duration::from_secs(24 * 3600), kind).await;
    rig.facilitator.set_settle(fault);
    let (payment, tx) = rig.payment().await;
    let named = names_tx.then_some(tx.as_str());
    assert_pending(&format!("{row}, first"), &rig.send(&payment).await, named);
    assert_eq!(rig.settles(), 1, "{row}");

    rig.advance(after);
    let resend = rig.send(&payment).await;
    assert_pending(&format!("{row}, resend while faulty"), &resend, named);
    assert_eq!(rig.settles(), 2, "{row}: one reconciling /settle");

    rig.facilitator.set_settle(SettleFault::Success);
    assert_settled(&format!("{row}, healed"), &rig.send(&payment).await, &tx);
    assert_settled(
        &format!("{row}, from the record"),
        &rig.send(&payment).await,
        &tx,
    );
    let calls = rig.facilitator.calls();
    let settles: Vec<_> = calls.iter().filter(|c| c.endpoint == "settle").collect();
    assert_eq!(settles.len(), 3, "{row}: settles");
    assert!(
        settles.iter().all(|c| c.nonce == calls[0].nonce),
        "{row}: always the same payment"
    );
    assert_eq!(rig.facilitator.count("verify"), 1, "{row}: verified once");
    assert_eq!(
        rig.runs.load(Ordering::SeqCst),
        1,
        "{row}: the handler ran once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unknown_outcome_at_every_resend_timing_is_reconciled_never_challenged() {
    for (name, fault, names_tx) in faults() {
        let cases = Kind::ALL
            .into_iter()
            .flat_map(|kind| TIMINGS.map(|after| case(kind, name, fault.clone(), names_tx, after)));
        futures_util::future::join_all(cases).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_payment_resent_late_is_answered_from_the_record_until_the_retention_ends() {
    futures_util::future::join_all(Kind::ALL.map(settled_resent_late)).await;
}

async fn settled_resent_late(kind: Kind) {
    let retention = Duration::from_secs(100);
    let rig = Rig::start(retention, kind).await;
    let (payment, tx) = rig.payment().await;
    let paid = rig.send(&payment).await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    assert_eq!(
        paid.receipt.as_ref().map(|r| r.transaction.as_str()),
        Some(tx.as_str())
    );
    let mut elapsed = 0;
    // +5 s, +26 s (past the window a new payment must leave for settling), past validBefore, past
    // the reservation's expiry, and just before the retention ends.
    for at in [5, 26, 58, 70, 125, 215] {
        rig.advance(at - elapsed);
        elapsed = at;
        assert_settled(
            &format!("{kind:?}: settled, resent at +{at} s"),
            &rig.send(&payment).await,
            &tx,
        );
    }
    assert_eq!(rig.settles(), 1, "never a second settlement");
    // validBefore (+60) + skew (60) + retention (100) has passed: the record is gone, and the
    // expired authorization is refused as any expired one would be.
    rig.advance(230 - elapsed);
    let forgotten = rig.send(&payment).await;
    assert_eq!(forgotten.status, 402, "{}", forgotten.text);
    let expired = match kind {
        Kind::Eip3009 => codes::VALID_BEFORE,
        Kind::Permit2 | Kind::Upto => "permit2_deadline_expired",
    };
    assert_eq!(forgotten.code.as_deref(), Some(expired), "{kind:?}");
    assert_eq!(rig.settles(), 1);
    assert_eq!(rig.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resends_of_an_unknown_payment_reconcile_once() {
    futures_util::future::join_all(Kind::ALL.map(concurrent_resends)).await;
}

async fn concurrent_resends(kind: Kind) {
    let rig = Rig::start(Duration::from_secs(3600), kind).await;
    rig.facilitator.set_settle(SettleFault::Hang);
    let (payment, tx) = rig.payment().await;
    assert_pending("first", &rig.send(&payment).await, None);
    rig.facilitator
        .set_settle(SettleFault::Delay(Duration::from_millis(300)));
    let resends = (0..16).map(|_| rig.send(&payment));
    let answers = futures_util::future::join_all(resends).await;
    assert_eq!(
        rig.settles(),
        2,
        "{kind:?}: one reconciling /settle for 16 resends"
    );
    let mut learnt = 0;
    for answer in &answers {
        match answer.status {
            409 => {
                assert_settled("concurrent resend", answer, &tx);
                learnt += 1;
            }
            _ => assert_pending("concurrent resend", answer, None),
        }
    }
    assert!(learnt >= 1, "the reconciling resend learns the outcome");
    assert_settled("afterwards", &rig.send(&payment).await, &tx);
    assert_eq!(rig.settles(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_resend_of_another_signature_for_the_same_key_is_not_reconciled() {
    // A copy of the pending payment with a different signature (someone else's forgery) is told
    // the settlement is pending, and makes no /settle: only the signed original reconciles.
    futures_util::future::join_all(Kind::ALL.map(forged_resend)).await;
}

async fn forged_resend(kind: Kind) {
    let rig = Rig::start(Duration::from_secs(3600), kind).await;
    rig.facilitator.set_settle(SettleFault::Hang);
    let (payment, _) = rig.payment().await;
    assert_pending("first", &rig.send(&payment).await, None);
    let forged = support::edit_payment(&payment, |p| {
        let signature = p["payload"]["signature"]
            .as_str()
            .expect("signature")
            .to_owned();
        let flipped = if signature.ends_with('1') { "2" } else { "1" };
        p["payload"]["signature"] =
            format!("{}{flipped}", &signature[..signature.len() - 1]).into();
    });
    rig.facilitator.set_settle(SettleFault::Success);
    assert_pending("forged copy", &rig.send(&forged).await, None);
    assert_eq!(
        rig.settles(),
        1,
        "no /settle for a copy that is not the signed payment"
    );
}
