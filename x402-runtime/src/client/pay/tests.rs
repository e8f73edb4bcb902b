use std::collections::VecDeque;

use alloy_primitives::U256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, value.parse().expect("header value"));
    }
    map
}

fn receipt(success: bool, transaction: &str, reason: Option<&str>) -> String {
    let receipt = SettleResponse {
        success,
        error_reason: reason.map(str::to_owned),
        error_message: None,
        payer: None,
        transaction: transaction.to_owned(),
        network: "eip155:84532".to_owned(),
        amount: None,
    };
    STANDARD.encode(serde_json::to_vec(&receipt).expect("json"))
}

/// A v2 challenge for 0.001 USDC on Base Sepolia, valid `timeout` seconds, as the
/// `PAYMENT-REQUIRED` value.
fn challenge(timeout: u64, error: Option<&str>) -> String {
    let challenge: PaymentRequired = serde_json::from_value(serde_json::json!({
        "x402Version": 2,
        "error": error.unwrap_or("PAYMENT-SIGNATURE header is required"),
        "resource": {"url": "http://127.0.0.1/weather"},
        "accepts": [{
            "scheme": "exact", "network": "eip155:84532", "amount": "1000",
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "payTo": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
            "maxTimeoutSeconds": timeout, "extra": {"name": "USDC", "version": "2"}
        }]
    }))
    .expect("challenge");
    STANDARD.encode(serde_json::to_vec(&challenge).expect("json"))
}

/// A v2 challenge for at most 0.001 USDC on Base Sepolia (`upto`), valid `timeout` seconds.
fn upto_challenge(timeout: u64, error: Option<&str>) -> String {
    let challenge: PaymentRequired = serde_json::from_value(serde_json::json!({
        "x402Version": 2,
        "error": error.unwrap_or("PAYMENT-SIGNATURE header is required"),
        "resource": {"url": "http://127.0.0.1/report"},
        "accepts": [{
            "scheme": "upto", "network": "eip155:84532", "amount": "1000",
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "payTo": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
            "maxTimeoutSeconds": timeout,
            "extra": {"name": "USDC", "version": "2", "assetTransferMethod": "permit2",
                      "facilitatorAddress": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"}
        }]
    }))
    .expect("challenge");
    STANDARD.encode(serde_json::to_vec(&challenge).expect("json"))
}

/// A v2 challenge for 0.001 USDC on Solana devnet, valid `timeout` seconds, carrying its
/// blockhash (so that no Solana node is asked).
#[cfg(feature = "svm")]
fn solana_challenge(timeout: u64, error: Option<&str>) -> String {
    let challenge: PaymentRequired = serde_json::from_value(serde_json::json!({
        "x402Version": 2,
        "error": error.unwrap_or("PAYMENT-SIGNATURE header is required"),
        "resource": {"url": "http://127.0.0.1/weather"},
        "accepts": [{
            "scheme": "exact", "network": crate::network::SOLANA_DEVNET, "amount": "1000",
            "asset": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
            "payTo": "EdmxWPmx2WH6WgFfTdu9xfkYf3k1g5wD1zccTVySEEh1",
            "maxTimeoutSeconds": timeout,
            "extra": {"feePayer": "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse",
                      "recentBlockhash": "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG"}
        }]
    }))
    .expect("challenge");
    STANDARD.encode(serde_json::to_vec(&challenge).expect("json"))
}

fn tx() -> String {
    "0x".to_owned() + &"ab".repeat(32)
}

#[test]
fn answers_to_a_paid_request_are_read_as_the_paywall_means_them() {
    let tx = tx();
    let ok = judge(
        StatusCode::OK,
        &headers(&[(PAYMENT_RESPONSE, receipt(true, &tx, None))]),
        b"{}",
    );
    assert!(matches!(ok, Verdict::Done(Some(r)) if r.success && r.transaction == tx));
    let handler_error = judge(StatusCode::NOT_FOUND, &HeaderMap::new(), b"{}");
    assert!(matches!(handler_error, Verdict::Done(None)));

    let busy = judge(
        StatusCode::CONFLICT,
        &HeaderMap::new(),
        br#"{"error":"payment_in_progress"}"#,
    );
    assert!(matches!(
        busy,
        Verdict::Wait { code: codes::PAYMENT_IN_PROGRESS, transaction: None, pause }
            if pause == IN_PROGRESS_PAUSE
    ));
    let draining = judge(
        StatusCode::SERVICE_UNAVAILABLE,
        &headers(&[("retry-after", "7".to_owned())]),
        br#"{"error":"server_shutting_down"}"#,
    );
    assert!(matches!(
        draining,
        Verdict::Wait { code: codes::SERVER_SHUTTING_DOWN, transaction: None, pause }
            if pause == Duration::from_secs(7)
    ));
    let settled = format!(r#"{{"error":"payment_already_settled","transaction":"{tx}"}}"#);
    let done = judge(StatusCode::CONFLICT, &HeaderMap::new(), settled.as_bytes());
    assert!(matches!(done, Verdict::AlreadySettled(t) if t == tx));

    // 503 settlement_pending (the answer to a first sending and to every resend), with the
    // transaction from the receipt; 409 settlement_pending from older servers; a receipt
    // alone says it too.
    let pending = judge(
        StatusCode::SERVICE_UNAVAILABLE,
        &headers(&[
            (
                PAYMENT_RESPONSE,
                receipt(false, &tx, Some("settlement_pending")),
            ),
            ("retry-after", "5".to_owned()),
        ]),
        br#"{"error":"settlement_pending","message":"..."}"#,
    );
    assert!(matches!(
        &pending,
        Verdict::Wait { code: codes::SETTLEMENT_PENDING, transaction: Some(t), pause }
            if *t == tx && *pause == Duration::from_secs(5)
    ));
    let older = judge(
        StatusCode::CONFLICT,
        &HeaderMap::new(),
        format!(r#"{{"error":"settlement_pending","transaction":"{tx}"}}"#).as_bytes(),
    );
    assert!(matches!(
        &older,
        Verdict::Wait { code: codes::SETTLEMENT_PENDING, transaction: Some(t), .. } if *t == tx
    ));
    let receipt_only = judge(
        StatusCode::SERVICE_UNAVAILABLE,
        &headers(&[(
            X_PAYMENT_RESPONSE,
            receipt(false, "", Some("settlement_pending")),
        )]),
        b"",
    );
    assert!(matches!(
        receipt_only,
        Verdict::Wait {
            code: codes::SETTLEMENT_PENDING,
            transaction: None,
            ..
        }
    ));
    // Another 503 is the server's answer, not a pending settlement.
    let unavailable = judge(
        StatusCode::SERVICE_UNAVAILABLE,
        &HeaderMap::new(),
        br#"{"error":"replay_store_unavailable"}"#,
    );
    assert!(matches!(unavailable, Verdict::Done(None)));

    let failed = judge(
        StatusCode::PAYMENT_REQUIRED,
        &headers(&[(
            PAYMENT_RESPONSE,
            receipt(false, "", Some("invalid_exact_evm_insufficient_balance")),
        )]),
        b"{}",
    );
    assert!(matches!(
        failed,
        Verdict::Challenged { reason, expired_unsettled: false }
            if reason == "invalid_exact_evm_insufficient_balance"
    ));
    let refused = judge(
        StatusCode::PAYMENT_REQUIRED,
        &HeaderMap::new(),
        br#"{"error":"invalid_exact_evm_payload_signature"}"#,
    );
    assert!(matches!(
        refused,
        Verdict::Challenged { reason, expired_unsettled: false }
            if reason == "invalid_exact_evm_payload_signature"
    ));
    let conflict = judge(StatusCode::CONFLICT, &HeaderMap::new(), b"not json");
    assert!(matches!(conflict, Verdict::Refused(r) if r == "no reason given"));
}

#[test]
fn a_402_saying_expired_unsettled_is_told_apart() {
    // v2: the fresh challenge's `error`; v1: the body's `error`.
    let v2 = judge(
        StatusCode::PAYMENT_REQUIRED,
        &headers(&[(
            PAYMENT_REQUIRED,
            challenge(60, Some(codes::EXPIRED_UNSETTLED)),
        )]),
        b"{}",
    );
    assert!(matches!(
        v2,
        Verdict::Challenged { reason, expired_unsettled: true } if reason == "expired_unsettled"
    ));
    let v1 = judge(
        StatusCode::PAYMENT_REQUIRED,
        &HeaderMap::new(),
        br#"{"x402Version":1,"error":"expired_unsettled","accepts":[]}"#,
    );
    assert!(matches!(
        v1,
        Verdict::Challenged {
            expired_unsettled: true,
            ..
        }
    ));
    let fresh = judge(
        StatusCode::PAYMENT_REQUIRED,
        &headers(&[(PAYMENT_REQUIRED, challenge(60, Some(codes::VALID_BEFORE)))]),
        b"{}",
    );
    assert!(matches!(
        fresh,
        Verdict::Challenged { reason, expired_unsettled: false } if reason == codes::VALID_BEFORE
    ));
    // A 409 is never a fresh challenge.
    let conflict = judge(
        StatusCode::CONFLICT,
        &HeaderMap::new(),
        br#"{"error":"expired_unsettled"}"#,
    );
    assert!(matches!(conflict, Verdict::Refused(_)));
}

#[test]
fn retry_after_is_whole_seconds_with_a_default_and_bounds() {
    let wait = |value: Option<&str>| {
        let headers = match value {
            Some(v) => headers(&[("retry-after", v.to_owned())]),
            None => HeaderMap::new(),
        };
        retry_after(&headers)
    };
    assert_eq!(wait(None), Duration::from_secs(5));
    assert_eq!(wait(Some("abc")), Duration::from_secs(5));
    assert_eq!(
        wait(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
        Duration::from_secs(5)
    );
    assert_eq!(wait(Some("-3")), Duration::from_secs(5));
    assert_eq!(wait(Some("7")), Duration::from_secs(7));
    assert_eq!(wait(Some(" 12 ")), Duration::from_secs(12));
    assert_eq!(wait(Some("120")), MAX_RETRY_PAUSE);
    assert_eq!(MAX_RETRY_PAUSE, Duration::from_secs(30));
    assert_eq!(wait(Some("0")), MIN_RETRY_PAUSE);
}

#[test]
fn a_call_is_identified_by_method_url_and_body() {
    let http = reqwest::Client::new();
    let key = |request: reqwest::RequestBuilder| call_key(&request.build().expect("request"));
    let url = "http://127.0.0.1:1/forecast";
    let a = key(http.post(url).body("{\"days\":1}"));
    assert_eq!(a, key(http.post(url).body("{\"days\":1}")));
    assert_ne!(a, key(http.post(url).body("{\"days\":2}")));
    assert_ne!(a, key(http.put(url).body("{\"days\":1}")));
    assert_ne!(a, key(http.post(format!("{url}?x=1")).body("{\"days\":1}")));
}

// The resend loop against a scripted server.

/// Public test key #1 of the anvil/hardhat mnemonic.
const PAYER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// What the scripted server answers a request that carries a payment.
#[derive(Clone, Debug)]
enum Reply {
    /// `status` `settlement_pending` with a receipt naming [`tx`] and this `Retry-After`.
    Pending(u16, Option<&'static str>),
    /// 200 with a successful receipt naming [`tx`].
    Settled,
    /// 402 with a fresh challenge whose `error` is this.
    Challenge(&'static str),
    /// 200 with a successful receipt naming this `amount` charged, and [`tx`] (none for `"0"`,
    /// as the paywall settles nothing then).
    Charged(&'static str),
}

#[derive(Default)]
struct Script {
    queue: VecDeque<Reply>,
    then: Option<Reply>,
    /// Every payment header received, in order.
    seen: Vec<String>,
    timeout: u64,
    /// The challenge is an `upto` one.
    upto: bool,
    /// The challenge is a Solana one.
    #[cfg(feature = "svm")]
    solana: bool,
}

/// A paid endpoint on 127.0.0.1: a request without a payment gets a 402 with a challenge
/// valid `timeout` seconds; one with a payment is recorded and answered with the next
/// scripted reply, then with `then` (200 settled unless set).
#[derive(Clone)]
struct Server {
    url: String,
    script: Arc<Mutex<Script>>,
}

impl Server {
    async fn start(timeout: u64, queue: Vec<Reply>) -> Server {
        Server::serve(Script {
            queue: queue.into(),
            timeout,
            ..Script::default()
        })
        .await
    }

    /// A server whose challenge is an `upto` offer.
    async fn start_upto(timeout: u64, queue: Vec<Reply>) -> Server {
        Server::serve(Script {
            queue: queue.into(),
            timeout,
            upto: true,
            ..Script::default()
        })
        .await
    }

    async fn serve(script: Script) -> Server {
        let script = Arc::new(Mutex::new(script));
        let state = script.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap| {
            let script = state.clone();
            async move { answer(&script, &headers) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/weather", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { url, script }
    }

    fn script(&self) -> MutexGuard<'_, Script> {
        self.script.lock().expect("script")
    }

    fn then(&self, reply: Reply) {
        self.script().then = Some(reply);
    }

    fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script().queue.extend(replies);
    }

    /// The payment headers received so far.
    fn seen(&self) -> Vec<String> {
        self.script().seen.clone()
    }
}

fn answer(script: &Mutex<Script>, headers: &HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let mut script = script.lock().expect("script");
    let timeout = script.timeout;
    #[cfg(feature = "svm")]
    let solana = script.solana;
    #[cfg(not(feature = "svm"))]
    let solana = false;
    let challenge = match (script.upto, solana) {
        (true, _) => upto_challenge,
        #[cfg(feature = "svm")]
        (false, true) => solana_challenge,
        _ => challenge,
    };
    let Some(payment) = headers.get(crate::proto::PAYMENT_SIGNATURE) else {
        return (
            StatusCode::PAYMENT_REQUIRED,
            [(PAYMENT_REQUIRED, challenge(timeout, None))],
            "{}",
        )
            .into_response();
    };
    script
        .seen
        .push(payment.to_str().expect("ascii").to_owned());
    let reply = script
        .queue
        .pop_front()
        .or_else(|| script.then.clone())
        .unwrap_or(Reply::Settled);
    match reply {
        Reply::Pending(status, retry_after) => {
            let mut response = (
                StatusCode::from_u16(status).expect("status"),
                [(
                    PAYMENT_RESPONSE,
                    receipt(false, &tx(), Some(codes::SETTLEMENT_PENDING)),
                )],
                format!(
                    r#"{{"error":"settlement_pending","message":"resend","transaction":"{}"}}"#,
                    tx()
                ),
            )
                .into_response();
            if let Some(value) = retry_after {
                response.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from_static(value),
                );
            }
            response
        }
        Reply::Settled => (
            StatusCode::OK,
            [(PAYMENT_RESPONSE, receipt(true, &tx(), None))],
            r#"{"city":"Paris"}"#,
        )
            .into_response(),
        Reply::Charged(amount) => {
            let transaction = if amount == "0" { String::new() } else { tx() };
            let receipt = SettleResponse {
                success: true,
                error_reason: None,
                error_message: None,
                payer: None,
                transaction,
                network: "eip155:84532".to_owned(),
                amount: Some(amount.to_owned()),
            };
            let receipt = STANDARD.encode(serde_json::to_vec(&receipt).expect("json"));
            (
                StatusCode::OK,
                [(PAYMENT_RESPONSE, receipt)],
                r#"{"rows":3}"#,
            )
                .into_response()
        }
        Reply::Challenge(error) => (
            StatusCode::PAYMENT_REQUIRED,
            [(PAYMENT_REQUIRED, challenge(timeout, Some(error)))],
            "{}",
        )
            .into_response(),
    }
}

/// A client for the test payer, and the events it reported (`Debug` form).
fn client(
    configure: impl FnOnce(X402ClientBuilder) -> X402ClientBuilder,
) -> (X402Client, Arc<Mutex<Vec<ClientEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http");
    let builder = X402Client::builder(PaymentSigner::from_key(PAYER_KEY).expect("key"))
        .http(http)
        .on_event(move |event| seen.lock().expect("events").push(event.clone()));
    (configure(builder).build().expect("client"), events)
}

fn waits(events: &Mutex<Vec<ClientEvent>>) -> Vec<(&'static str, Duration)> {
    events
        .lock()
        .expect("events")
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Waiting { code, wait, .. } => Some((*code, *wait)),
            _ => None,
        })
        .collect()
}

fn paying(events: &Mutex<Vec<ClientEvent>>) -> usize {
    let events = events.lock().expect("events");
    events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Paying(_)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_settlement_is_waited_on_with_the_same_payment() {
    let server = Server::start(
        60,
        vec![
            Reply::Pending(503, Some("1")),
            Reply::Pending(409, Some("1")),
        ],
    )
    .await;
    let (client, events) = client(|b| b);
    let started = Instant::now();
    let answer = client.get(&server.url).await.expect("paid");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.receipt().expect("receipt").transaction, tx());
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter().all(|p| *p == seen[0]),
        "the same payment each time"
    );
    assert_eq!(paying(&events), 1, "signed once");
    assert_eq!(
        waits(&events),
        vec![
            (codes::SETTLEMENT_PENDING, Duration::from_secs(1)),
            (codes::SETTLEMENT_PENDING, Duration::from_secs(1)),
        ]
    );
    let log = client.spend_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, SpendStatus::Settled);
    assert_eq!(log[0].transaction.as_deref(), Some(tx().as_str()));
    assert_eq!(client.spent(Currency::Usdc), "0.001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_is_bounded_and_the_next_call_resends_the_same_payment() {
    let server = Server::start(60, vec![]).await;
    server.then(Reply::Pending(503, Some("1")));
    let (client, events) = client(|b| b.max_wait(Duration::from_millis(1500)));
    let started = Instant::now();
    let error = client.get(&server.url).await.expect_err("still pending");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let ClientError::Unconfirmed {
        transaction, spend, ..
    } = &error
    else {
        panic!("expected Unconfirmed, got {error}");
    };
    assert_eq!(transaction.as_deref(), Some(tx().as_str()));
    assert!(matches!(spend.status, SpendStatus::Unknown { .. }));
    // The last wait is cut to what is left of max_wait.
    let waits = waits(&events);
    assert_eq!(
        waits[0],
        (codes::SETTLEMENT_PENDING, Duration::from_secs(1))
    );
    assert!(waits.iter().all(|(_, w)| *w <= Duration::from_secs(1)));
    let sent = server.seen();
    assert!(sent.len() >= 2, "{}", sent.len());

    // The same call again resends the same payment; nothing new is signed.
    server.then(Reply::Settled);
    let answer = client.get(&server.url).await.expect("paid");
    assert_eq!(answer.status(), StatusCode::OK);
    let seen = server.seen();
    assert_eq!(seen.len(), sent.len() + 1);
    assert!(seen.iter().all(|p| *p == seen[0]));
    assert_eq!(paying(&events), 1);
    let log = client.spend_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, SpendStatus::Settled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_proven_dead_is_released_and_paid_anew() {
    // Valid for 1 s: by the resend after `Retry-After: 1` its validBefore has passed.
    let server = Server::start(
        1,
        vec![
            Reply::Pending(503, Some("1")),
            Reply::Challenge(codes::EXPIRED_UNSETTLED),
        ],
    )
    .await;
    // The budget holds one payment: the dead one must be released for the second.
    let (client, events) = client(|b| b.budget(Currency::Usdc, "0.001"));
    let answer = client.get(&server.url).await.expect("paid anew");
    assert_eq!(answer.status(), StatusCode::OK);
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], seen[1], "the pending payment was resent as is");
    assert_ne!(
        seen[1], seen[2],
        "a new payment after the first was proven dead"
    );
    let log = client.spend_log();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].status, SpendStatus::ExpiredUnsettled);
    assert_eq!(log[1].status, SpendStatus::Settled);
    assert_ne!(log[0].nonce, log[1].nonce);
    assert_eq!(answer.spend().expect("spend").nonce, log[1].nonce);
    assert_eq!(
        client.spent(Currency::Usdc),
        "0.001",
        "the dead one is released"
    );
    let expired = events
        .lock()
        .expect("events")
        .iter()
        .filter(
            |e| matches!(e, ClientEvent::Expired(s) if s.status == SpendStatus::ExpiredUnsettled),
        )
        .count();
    assert_eq!(expired, 1);
    assert_eq!(paying(&events), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_resend_of_a_live_authorization_is_not_signed_again() {
    let server = Server::start(
        60,
        vec![
            Reply::Pending(503, Some("1")),
            Reply::Challenge(codes::VALID_BEFORE),
        ],
    )
    .await;
    let (client, events) = client(|b| b);
    let error = client.get(&server.url).await.expect_err("refused");
    let ClientError::LiveAuthorizationRefused { reason, spend } = &error else {
        panic!("expected LiveAuthorizationRefused, got {error}");
    };
    assert_eq!(reason, codes::VALID_BEFORE);
    assert!(spend.valid_before > unix_now());
    assert!(matches!(spend.status, SpendStatus::Unknown { .. }));
    assert!(error.to_string().contains("could pay twice"), "{error}");
    assert_eq!(server.seen().len(), 2);
    assert_eq!(paying(&events), 1);

    // `expired_unsettled` for an authorization that is still valid by our clock cannot be
    // true (the chain cannot have proven it): not believed, nothing released or signed.
    server.push([Reply::Challenge(codes::EXPIRED_UNSETTLED)]);
    let error = client.get(&server.url).await.expect_err("refused");
    assert!(
        matches!(&error, ClientError::LiveAuthorizationRefused { reason, .. } if reason == codes::EXPIRED_UNSETTLED),
        "{error}"
    );
    assert_eq!(client.spent(Currency::Usdc), "0.001");

    // The payment was kept: the next call resends it.
    let answer = client.get(&server.url).await.expect("paid");
    assert_eq!(answer.status(), StatusCode::OK);
    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|p| *p == seen[0]));
    assert_eq!(paying(&events), 1);
    assert_eq!(client.spend_log().len(), 1);
    assert_eq!(client.spend_log()[0].status, SpendStatus::Settled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_resend_past_valid_before_may_be_paid_anew() {
    let script = || {
        vec![
            Reply::Pending(503, Some("1")),
            Reply::Challenge(codes::VALID_BEFORE),
        ]
    };
    let server = Server::start(1, script()).await;
    let (unlimited, _) = client(|b| b);
    let answer = unlimited.get(&server.url).await.expect("paid anew");
    assert_eq!(answer.status(), StatusCode::OK);
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0], seen[1]);
    assert_ne!(seen[1], seen[2]);
    let log = unlimited.spend_log();
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[0].status,
        SpendStatus::Expired {
            reason: codes::VALID_BEFORE.to_owned()
        }
    );
    assert_eq!(log[1].status, SpendStatus::Settled);
    // Not proven unsettled: it still counts against the budget.
    assert_eq!(unlimited.spent(Currency::Usdc), "0.002");

    // So with a budget for one payment, the new one is refused before it is signed.
    let server = Server::start(1, script()).await;
    let (limited, _) = client(|b| b.budget(Currency::Usdc, "0.0015"));
    let error = limited.get(&server.url).await.expect_err("over budget");
    assert!(matches!(error, ClientError::OverBudget { .. }), "{error}");
    assert_eq!(server.seen().len(), 2);
    assert_eq!(limited.spend_log().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_first_sending_is_not_signed_again() {
    let server = Server::start(
        60,
        vec![Reply::Challenge("invalid_exact_evm_insufficient_balance")],
    )
    .await;
    let (client, events) = client(|b| b);
    let error = client.get(&server.url).await.expect_err("refused");
    assert!(
        matches!(&error, ClientError::Refused { status: 402, reason, .. }
            if reason == "invalid_exact_evm_insufficient_balance"),
        "{error}"
    );
    assert_eq!(server.seen().len(), 1);
    assert_eq!(paying(&events), 1);
    assert!(matches!(
        client.spend_log()[0].status,
        SpendStatus::Refused { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_signs_at_most_two_payments() {
    let server = Server::start(
        1,
        vec![
            Reply::Pending(503, Some("1")),
            Reply::Challenge(codes::EXPIRED_UNSETTLED),
            Reply::Pending(503, Some("1")),
            Reply::Challenge(codes::EXPIRED_UNSETTLED),
        ],
    )
    .await;
    let (client, events) = client(|b| b);
    let error = client.get(&server.url).await.expect_err("refused");
    assert!(
        matches!(&error, ClientError::Refused { status: 402, reason, .. } if reason == codes::EXPIRED_UNSETTLED),
        "{error}"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(paying(&events), 2);
    let log = client.spend_log();
    assert!(
        log.iter()
            .all(|s| s.status == SpendStatus::ExpiredUnsettled),
        "{log:?}"
    );
    assert_eq!(client.spent(Currency::Usdc), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upto_payment_counts_its_maximum_until_the_receipt_names_the_charge() {
    let server = Server::start_upto(60, vec![]).await;
    server.then(Reply::Pending(503, Some("1")));
    // Room for one maximum and a bit: a second maximum fits only once the first is charged less.
    let (client, events) = client(|b| {
        b.budget(Currency::Usdc, "0.0015")
            .max_wait(Duration::from_millis(500))
    });
    let error = client.get(&server.url).await.expect_err("pending");
    assert!(matches!(error, ClientError::Unconfirmed { .. }), "{error}");
    assert_eq!(
        client.spent(Currency::Usdc),
        "0.001",
        "the maximum, unsettled"
    );
    let log = client.spend_log();
    assert_eq!(
        (
            log[0].scheme.as_str(),
            log[0].amount.as_str(),
            log[0].authorized.as_str()
        ),
        ("upto", "0.001", "0.001")
    );
    // While it may still settle for its maximum, another maximum does not fit.
    let other = format!("{}?page=2", server.url);
    let error = client.get(&other).await.expect_err("over budget");
    assert!(matches!(error, ClientError::OverBudget { .. }), "{error}");

    // The same call resends the same permit; the receipt names 0.0004 charged.
    server.then(Reply::Charged("400"));
    let answer = client.get(&server.url).await.expect("paid");
    assert_eq!(answer.status(), StatusCode::OK);
    let spend = answer.spend().expect("spend");
    assert_eq!(spend.status, SpendStatus::Settled);
    assert_eq!(spend.atomic_amount, U256::from(400));
    assert_eq!(spend.amount, "0.0004");
    assert_eq!(spend.atomic_authorized, U256::from(1000));
    assert_eq!(spend.transaction.as_deref(), Some(tx().as_str()));
    assert_eq!(client.spent(Currency::Usdc), "0.0004");

    // Now a second maximum fits; that request uses nothing: settled, no transaction.
    server.push([Reply::Charged("0")]);
    let answer = client.get(&other).await.expect("paid");
    let spend = answer.spend().expect("spend");
    assert_eq!(spend.status, SpendStatus::Settled);
    assert_eq!(
        (spend.amount.as_str(), spend.transaction.as_deref()),
        ("0", None)
    );
    assert_eq!(client.spent(Currency::Usdc), "0.0004");
    assert_eq!(client.spend_log().len(), 2);
    assert_eq!(paying(&events), 2);
    let seen = server.seen();
    let (last, first) = seen.split_last().expect("payments");
    assert!(first.len() >= 2, "{}", first.len());
    assert!(
        first.iter().all(|p| *p == first[0]),
        "the pending permit was resent as is"
    );
    assert_ne!(*last, first[0]);
}

#[test]
fn a_412_for_permit2_allowance_is_a_refusal() {
    let refused = judge(
        StatusCode::PRECONDITION_FAILED,
        &HeaderMap::new(),
        br#"{"error":"permit2_allowance_required"}"#,
    );
    assert!(
        matches!(&refused, Verdict::Refused(r) if r == "permit2_allowance_required"),
        "{refused:?}"
    );
    let by_challenge = judge(
        StatusCode::PRECONDITION_FAILED,
        &headers(&[(
            PAYMENT_REQUIRED,
            upto_challenge(60, Some("permit2_allowance_required")),
        )]),
        b"{}",
    );
    assert!(matches!(by_challenge, Verdict::Refused(_)));
    // A handler's own 412 is its answer.
    let handler = judge(StatusCode::PRECONDITION_FAILED, &HeaderMap::new(), b"{}");
    assert!(matches!(handler, Verdict::Done(None)));
}

/// A client paying with the test payer's EVM key and the test bed's S6 Solana key.
#[cfg(feature = "svm")]
fn solana_client() -> (X402Client, Arc<Mutex<Vec<ClientEvent>>>) {
    const S6: &str =
        "7z8GcFcMNwCGuiNX7AzpkXrzhnqenSpYoA6hdHqfmbKbaEW6tJwdNgjuz2Zu3tZUo3sKdrDouJmTixxVZGyY8iS";
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let signer = PaymentSigner::from_key(PAYER_KEY)
        .expect("key")
        .with_svm_key(S6)
        .expect("Solana key");
    let client = X402Client::builder(signer)
        // Never asked: the offer carries its blockhash and the mint is the built-in USDC.
        .svm_rpc_url("http://127.0.0.1:9")
        .on_event(move |event| seen.lock().expect("events").push(event.clone()))
        .build()
        .expect("client");
    (client, events)
}

/// A Solana payment whose settlement is pending is resent byte for byte (the same transaction,
/// which Solana lands at most once), and a fresh 402 to a resend while its blockhash may still
/// land it is not answered with a second signature.
#[cfg(feature = "svm")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_solana_payment_is_resent_as_is_and_never_signed_twice_while_live() {
    let server = Server::serve(Script {
        queue: vec![Reply::Pending(503, Some("1"))].into(),
        timeout: 60,
        solana: true,
        ..Script::default()
    })
    .await;
    let (client, events) = solana_client();
    let answer = client.get(&server.url).await.expect("paid");
    assert_eq!(answer.status(), StatusCode::OK);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1], "the same transaction each time");
    assert_eq!(paying(&events), 1);
    let spend = &client.spend_log()[0];
    assert_eq!(spend.network, crate::network::SOLANA_DEVNET);
    assert!(spend.valid_before >= unix_now() + 170, "{spend:?}");

    // Another call: pending, then a fresh 402 to the resend while the payment is live.
    let other = format!("{}?again", server.url);
    server.push([
        Reply::Pending(503, Some("1")),
        Reply::Challenge("payment_expired"),
    ]);
    let error = client.get(&other).await.expect_err("refused resend");
    assert!(
        matches!(error, ClientError::LiveAuthorizationRefused { .. }),
        "{error:?}"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[2], seen[3], "resent as is");
    assert_eq!(
        paying(&events),
        2,
        "one payment per call, none signed again"
    );
    assert_eq!(client.spent(Currency::Usdc), "0.002");
}
