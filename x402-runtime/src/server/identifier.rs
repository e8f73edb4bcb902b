//! The `payment-identifier` extension, server side: idempotency of one purchase across resends.
//!
//! A route declares the extension with [`X402::declare_payment_identifier`] (or by putting
//! [`extension`]`(required)` under `"payment-identifier"` in
//! [`X402::set_route_extensions`]); its 402 then carries
//! `extensions["payment-identifier"] = {info: {required}, schema}`, and a client echoes it in its
//! payment with `info.id` added: 16 to 128 characters of `[A-Za-z0-9_-]` (the official SDKs send
//! `pay_` and 32 hex digits). On such a route:
//!
//! | payment | answer |
//! |---|---|
//! | an id that is not 16–128 of `[A-Za-z0-9_-]` | `400 invalid_payment_identifier` |
//! | no id, and the route declared `required: true` | `400 payment_identifier_required` |
//! | a new id | processed as usual; the id is bound to this payment |
//! | a known id, the same payment, settled | the recorded response: status, body, the representation headers (`Content-Type`, `Cache-Control` with `private`, `Content-Language`, `Location`, `ETag`, `Last-Modified`; never `Set-Cookie`) and the `PAYMENT-RESPONSE` receipt; nothing is verified, settled or run |
//! | a known id, the same payment, not settled yet | as usual: `409 payment_in_progress`, or the pending settlement's reconciliation |
//! | a known id, another payment | `409 payment_identifier_conflict`; nothing is verified, settled or run |
//!
//! A v1 payment (`X-PAYMENT`) has no extensions, so it never carries an id: on a route that
//! requires one it is refused with `400 payment_identifier_required`. Every refusal comes
//! before the facilitator is asked anything. "The same payment" means the
//! same replay key (network, asset, payer, nonce), authorization and signature bytes, however
//! the header is encoded; the id alone never authorizes anything. The cache is keyed by the id
//! **and** the request it paid for (scheme, network, asset, amount, `payTo`, route and method),
//! so an id sent to another route or with another method is another purchase.
//!
//! A response is recorded only after its payment was verified and settled, and only for a 2xx
//! response whose body has a known length of at most [`MAX_CACHED_BODY_BYTES`] (1 MiB), within
//! [`MAX_CACHED_BYTES`] (64 MiB) for all recorded bodies together. Otherwise (a streamed or
//! larger body, a full budget) the id stays bound to its payment, and a resend of that payment is
//! answered as without the extension: `409 payment_already_settled` naming the transaction. An
//! id whose payment was refused (by `/verify`, a non-2xx handler, a failed settlement) is freed,
//! so the client may pay again with the same id; one whose settlement outcome is unknown stays
//! bound. Only a payment this process verified binds an id beyond its own request: a copy of a
//! payment the replay store already knows (settled here or by another process) is answered from
//! the store, and its id is not kept.
//!
//! # Scope and limits
//!
//! The cache lives in memory, in this process: it is not shared between server processes and
//! does not survive a restart. The replay store (shared with `RedisStore`, durable with
//! `FileStore`) still settles each payment at most once across processes; what another process
//! cannot do is answer with the recorded response or see a conflict. Entries expire with their
//! authorization (`validBefore` plus the clock-skew allowance); at most [`MAX_IDENTIFIERS`] are
//! held, and when that many unexpired ids are held a new one is answered
//! `503 payment_identifier_cache_full` with `Retry-After`, before anything is verified.
//!
//! [`X402::declare_payment_identifier`]: crate::X402::declare_payment_identifier
//! [`X402::set_route_extensions`]: crate::X402::set_route_extensions

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use alloy_primitives::U256;
use axum::body::Body;
use axum::response::Response;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use http::header::{CACHE_CONTROL, CONTENT_LANGUAGE, CONTENT_TYPE, ETAG, LAST_MODIFIED, LOCATION};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::network::AccountId;
use crate::proto::{SettleResponse, X402Version};
use crate::schemes::{DecodedPayment, ReplayKey};
use crate::server::answer;

/// The extension's key in `extensions`.
pub const PAYMENT_IDENTIFIER: &str = "payment-identifier";
/// Shortest id accepted.
pub const MIN_ID_LEN: usize = 16;
/// Longest id accepted.
pub const MAX_ID_LEN: usize = 128;
/// Largest response body recorded for a resend (1 MiB).
pub const MAX_CACHED_BODY_BYTES: usize = 1024 * 1024;
/// Most bytes of recorded bodies held at once, all ids together (64 MiB).
pub const MAX_CACHED_BYTES: usize = 64 * 1024 * 1024;
/// Most ids held at once (expired ones are swept first).
pub const MAX_IDENTIFIERS: usize = 100_000;

/// Inserts between two sweeps of expired ids.
const SWEEP_EVERY: u64 = 4096;
/// Seconds between two sweeps forced by a full cache (a sweep visits every id).
const FULL_SWEEP_EVERY: u64 = 1;

/// The declaration a route puts under `extensions["payment-identifier"]` in its 402: `info`
/// with `required`, and the JSON Schema (2020-12) of `info` from the extension's specification.
pub fn extension(required: bool) -> Value {
    json!({
        "info": {"required": required},
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "required": {"type": "boolean"},
                "id": {
                    "type": "string",
                    "minLength": MIN_ID_LEN,
                    "maxLength": MAX_ID_LEN,
                    "pattern": "^[a-zA-Z0-9_-]+$"
                }
            },
            "required": ["required"]
        }
    })
}

/// Whether `id` is 16–128 characters of `[A-Za-z0-9_-]`.
pub fn is_valid_id(id: &str) -> bool {
    (MIN_ID_LEN..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether a route's extensions declare `payment-identifier`, and with `required: true`.
pub(crate) fn declared(extensions: &Map<String, Value>) -> Option<bool> {
    let declaration = extensions.get(PAYMENT_IDENTIFIER)?;
    let required = declaration.pointer("/info/required");
    if required.is_some_and(|r| !r.is_boolean()) {
        tracing::warn!(
            "x402: `payment-identifier` declared with a non-boolean `info.required`; treated as false"
        );
    }
    Some(required.and_then(Value::as_bool).unwrap_or(false))
}

/// Why a payment's `payment-identifier` cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct InvalidId(pub(crate) &'static str);

/// The id a payment carries in `extensions["payment-identifier"].info.id`, if any. `null` reads
/// as absent; any other shape, or an id outside the grammar, is invalid.
pub(crate) fn payment_id(extensions: Option<&RawValue>) -> Result<Option<String>, InvalidId> {
    let Some(extensions) = extensions else {
        return Ok(None);
    };
    let extensions: Value = serde_json::from_str(extensions.get())
        .map_err(|_| InvalidId("`extensions` is not valid JSON"))?;
    let level = |value: Option<&Value>, what: &'static str| match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object.clone())),
        Some(_) => Err(InvalidId(what)),
    };
    let Some(extensions) = level(Some(&extensions), "`extensions` must be an object")? else {
        return Ok(None);
    };
    let Some(declaration) = level(
        extensions.get(PAYMENT_IDENTIFIER),
        "`extensions.payment-identifier` must be an object",
    )?
    else {
        return Ok(None);
    };
    let Some(info) = level(
        declaration.get("info"),
        "`extensions.payment-identifier.info` must be an object",
    )?
    else {
        return Ok(None);
    };
    match info.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if is_valid_id(id) => Ok(Some(id.clone())),
        Some(_) => Err(InvalidId(
            "the payment identifier must be 16 to 128 characters of A-Z, a-z, 0-9, `_` and `-`",
        )),
    }
}

/// An id and the request it paid for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct IdKey {
    pub(crate) id: Box<str>,
    pub(crate) route: usize,
    pub(crate) method: Method,
    pub(crate) scheme: String,
    pub(crate) network: String,
    pub(crate) asset: AccountId,
    pub(crate) amount: U256,
    pub(crate) pay_to: AccountId,
}

/// What makes two payments the same: the canonical replay key, and what the payer signed with
/// the signature (never the header's bytes; see
/// [`SchemePayload::signed`](crate::schemes::SchemePayload::signed)).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    key: ReplayKey,
    signed: Vec<u8>,
}

impl Identity {
    pub(crate) fn of(key: &ReplayKey, payment: &DecodedPayment) -> Identity {
        Identity {
            key: key.clone(),
            signed: payment.payload.signed(),
        }
    }
}

/// The handler's headers a recorded response keeps: those that describe the representation.
/// Anything else (`Set-Cookie` above all) is not given to whoever resends the payment.
const RECORDED_HEADERS: [HeaderName; 6] = [
    CONTENT_TYPE,
    CACHE_CONTROL,
    CONTENT_LANGUAGE,
    LOCATION,
    ETAG,
    LAST_MODIFIED,
];

/// A response recorded for resends of its payment.
#[derive(Debug)]
pub(crate) struct Recorded {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: axum::body::Bytes,
    receipt: SettleResponse,
    version: X402Version,
}

impl Recorded {
    fn response(&self) -> Response {
        let mut response = Response::new(Body::from(self.body.clone()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        answer::attach_receipt(&mut response, self.version, &self.receipt);
        answer::make_private(&mut response);
        response
    }
}

#[derive(Debug)]
enum State {
    /// The payment is being verified, served or settled.
    InFlight,
    /// Settled, or its outcome unknown, without a recorded response.
    Bound,
    /// Settled, with the response to give to resends.
    Recorded(Arc<Recorded>),
}

#[derive(Debug)]
struct Held {
    identity: Identity,
    state: State,
    expires_at: u64,
    /// Which claim wrote the entry: only that claim may free or update it.
    token: u64,
}

impl Held {
    fn body_len(&self) -> usize {
        match &self.state {
            State::Recorded(recorded) => recorded.body.len(),
            _ => 0,
        }
    }
}

/// What [`Identifiers::check`] decided for a payment carrying an id.
pub(crate) enum Check {
    /// A new id, now bound to this payment: hold the claim while it is processed.
    Claimed(Claim),
    /// The id is bound to this same payment, which is in flight or has no recorded response:
    /// go on (the replay store answers).
    Known,
    /// The recorded response of this same payment.
    Recorded(Response),
    /// The id is bound to another payment.
    Conflict,
    /// Too many ids are held.
    Full,
}

/// The ids of payments on routes that declared `payment-identifier`, in this process.
#[derive(Default)]
pub(crate) struct Identifiers {
    /// Routes (by id) that declared the extension → `required`.
    pub(crate) routes: DashMap<usize, bool>,
    entries: Arc<DashMap<IdKey, Held>>,
    tokens: AtomicU64,
    inserts: AtomicU64,
    /// When a full cache was last swept (unix seconds).
    full_sweep: AtomicU64,
    recorded_bytes: Arc<AtomicUsize>,
}

impl Identifiers {
    /// Looks `key` up for `identity`, binding a new id to it.
    pub(crate) fn check(&self, key: IdKey, identity: Identity, expires_at: u64, now: u64) -> Check {
        let inserts = self.inserts.fetch_add(1, Ordering::Relaxed);
        let due = inserts % SWEEP_EVERY == SWEEP_EVERY - 1;
        let full = self.entries.len() >= MAX_IDENTIFIERS;
        let last = self.full_sweep.load(Ordering::Relaxed);
        if due
            || (full
                && now >= last.saturating_add(FULL_SWEEP_EVERY)
                && self
                    .full_sweep
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok())
        {
            self.sweep(now);
        }
        let full = self.entries.len() >= MAX_IDENTIFIERS;
        let token = self.tokens.fetch_add(1, Ordering::Relaxed);
        let held = Held {
            identity,
            state: State::InFlight,
            expires_at,
            token,
        };
        match self.entries.entry(key.clone()) {
            Entry::Occupied(mut taken) if taken.get().expires_at <= now => {
                let old = taken.insert(held);
                self.recorded_bytes
                    .fetch_sub(old.body_len(), Ordering::Relaxed);
            }
            Entry::Occupied(taken) => {
                let taken = taken.get();
                if taken.identity != held.identity {
                    return Check::Conflict;
                }
                return match &taken.state {
                    State::Recorded(recorded) => Check::Recorded(recorded.response()),
                    State::InFlight | State::Bound => Check::Known,
                };
            }
            Entry::Vacant(_) if full => return Check::Full,
            Entry::Vacant(free) => {
                free.insert(held);
            }
        }
        Check::Claimed(Claim {
            entries: self.entries.clone(),
            recorded_bytes: self.recorded_bytes.clone(),
            key,
            token,
            armed: true,
        })
    }

    fn sweep(&self, now: u64) {
        let mut freed = 0;
        self.entries.retain(|_, held| {
            let keep = held.expires_at > now;
            if !keep {
                freed += held.body_len();
            }
            keep
        });
        self.recorded_bytes.fetch_sub(freed, Ordering::Relaxed);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A new id bound to the payment being processed. Dropped while armed, it frees the id (the
/// payment was refused and nothing was charged); [`bind`](Claim::bind) keeps it bound.
pub(crate) struct Claim {
    entries: Arc<DashMap<IdKey, Held>>,
    recorded_bytes: Arc<AtomicUsize>,
    key: IdKey,
    token: u64,
    armed: bool,
}

impl Claim {
    /// Keeps the id bound to its payment (settled, or its outcome unknown).
    pub(crate) fn bind(mut self) {
        self.armed = false;
        if let Some(mut held) = self.entries.get_mut(&self.key)
            && held.token == self.token
            && matches!(held.state, State::InFlight)
        {
            held.state = State::Bound;
        }
    }

    /// The handle that records the response once the payment is settled; the claim itself
    /// still frees the id if it is dropped armed.
    pub(crate) fn recorder(&self) -> Recorder {
        Recorder {
            entries: self.entries.clone(),
            recorded_bytes: self.recorded_bytes.clone(),
            key: self.key.clone(),
            token: self.token,
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.armed {
            self.entries.remove_if(&self.key, |_, held| {
                held.token == self.token && matches!(held.state, State::InFlight)
            });
        }
    }
}

/// Records the response of a settled payment for resends of it.
pub(crate) struct Recorder {
    entries: Arc<DashMap<IdKey, Held>>,
    recorded_bytes: Arc<AtomicUsize>,
    key: IdKey,
    token: u64,
}

impl Recorder {
    /// Buffers `response`'s body if it may be recorded (2xx, a known length within
    /// [`MAX_CACHED_BODY_BYTES`]); the response is rebuilt around the buffered body. `Err`: the
    /// body failed while it was read (it cannot be delivered either).
    pub(crate) async fn buffer(
        response: Response,
    ) -> Result<(Response, Option<axum::body::Bytes>), ()> {
        use axum::body::HttpBody as _;
        let bounded = response
            .body()
            .size_hint()
            .upper()
            .is_some_and(|upper| upper <= MAX_CACHED_BODY_BYTES as u64);
        if !response.status().is_success() || !bounded {
            return Ok((response, None));
        }
        let (parts, body) = response.into_parts();
        match axum::body::to_bytes(body, MAX_CACHED_BODY_BYTES).await {
            Ok(bytes) => Ok((
                Response::from_parts(parts, Body::from(bytes.clone())),
                Some(bytes),
            )),
            Err(e) => {
                tracing::error!("x402: the paid handler's response body failed: {e}");
                Err(())
            }
        }
    }

    /// Records `response` (its body buffered as `body`) with its receipt, if the id is still
    /// bound to this payment and the byte budget allows it.
    pub(crate) fn record(
        &self,
        response: &Response,
        body: axum::body::Bytes,
        receipt: &SettleResponse,
        version: X402Version,
    ) {
        let len = body.len();
        let budget = self.recorded_bytes.fetch_add(len, Ordering::Relaxed);
        if budget.saturating_add(len) > MAX_CACHED_BYTES {
            self.recorded_bytes.fetch_sub(len, Ordering::Relaxed);
            tracing::debug!(
                "x402: payment-identifier body budget full; a resend gets payment_already_settled"
            );
            return;
        }
        let headers = RECORDED_HEADERS
            .iter()
            .flat_map(|name| {
                response
                    .headers()
                    .get_all(name)
                    .iter()
                    .map(|value| (name.clone(), value.clone()))
            })
            .collect();
        let recorded = Recorded {
            status: response.status(),
            headers,
            body,
            receipt: receipt.clone(),
            version,
        };
        match self.entries.get_mut(&self.key) {
            Some(mut held)
                if held.token == self.token && !matches!(held.state, State::Recorded(_)) =>
            {
                held.state = State::Recorded(Arc::new(recorded));
            }
            _ => {
                self.recorded_bytes.fetch_sub(len, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemes::SchemePayload as _;
    use crate::schemes::exact_evm::{Authorization, ExactEvmPayload};
    use alloy_primitives::{Address, B256, Bytes};

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).expect("json")
    }

    #[test]
    fn ids_follow_the_grammar() {
        assert!(is_valid_id("pay_0123456789abcdef0123456789abcdef"));
        assert!(is_valid_id(&"a".repeat(16)));
        assert!(is_valid_id(&"Z-_9".repeat(32)));
        for bad in [
            "",
            "short_id_15char",
            &"a".repeat(129),
            "pay_0123456789abcdef!",
            "pay 0123456789abcdef",
            "pay_0123456789abcdéf",
            "pay_0123456789abcdef\n",
        ] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_payment_id_is_read_from_the_echoed_extension() {
        let id = "pay_0123456789abcdef0123456789abcdef";
        let with = |json: &str| payment_id(Some(&raw(json)));
        assert_eq!(payment_id(None), Ok(None));
        assert_eq!(
            with(&format!(
                r#"{{"payment-identifier":{{"info":{{"required":true,"id":"{id}"}}}}}}"#
            )),
            Ok(Some(id.to_owned()))
        );
        for absent in [
            "null",
            "{}",
            r#"{"bazaar":{}}"#,
            r#"{"payment-identifier":null}"#,
            r#"{"payment-identifier":{}}"#,
            r#"{"payment-identifier":{"info":{"required":false}}}"#,
            r#"{"payment-identifier":{"info":{"id":null}}}"#,
        ] {
            assert_eq!(with(absent), Ok(None), "{absent}");
        }
        for invalid in [
            "[]",
            "5",
            r#"{"payment-identifier":"x"}"#,
            r#"{"payment-identifier":{"info":[]}}"#,
            r#"{"payment-identifier":{"info":{"id":42}}}"#,
            r#"{"payment-identifier":{"info":{"id":"too_short"}}}"#,
            r#"{"payment-identifier":{"info":{"id":"pay_0123456789abcdef/"}}}"#,
        ] {
            assert!(with(invalid).is_err(), "{invalid}");
        }
    }

    #[test]
    fn a_declaration_says_whether_the_id_is_required() {
        let declare = |value: Value| {
            let mut map = Map::new();
            map.insert(PAYMENT_IDENTIFIER.to_owned(), value);
            declared(&map)
        };
        assert_eq!(declare(extension(true)), Some(true));
        assert_eq!(declare(extension(false)), Some(false));
        assert_eq!(declare(json!({"info": {"required": "yes"}})), Some(false));
        assert_eq!(declared(&Map::new()), None);
    }

    fn key(id: &str) -> IdKey {
        IdKey {
            id: id.into(),
            route: 1,
            method: Method::GET,
            scheme: "exact".to_owned(),
            network: "eip155:84532".to_owned(),
            asset: Address::repeat_byte(1).into(),
            amount: U256::from(1000),
            pay_to: Address::repeat_byte(2).into(),
        }
    }

    fn identity(nonce: u8, signature: &[u8]) -> Identity {
        let key = ReplayKey {
            network: "eip155:84532".to_owned(),
            asset: Address::repeat_byte(1).into(),
            from: Address::repeat_byte(3).into(),
            nonce: B256::repeat_byte(nonce),
        };
        let payload = ExactEvmPayload {
            authorization: Authorization {
                from: Address::repeat_byte(3),
                to: Address::repeat_byte(2),
                value: U256::from(1000),
                valid_after: U256::ZERO,
                valid_before: U256::from(2000),
                nonce: key.nonce,
            },
            signature: Bytes::copy_from_slice(signature),
        };
        Identity {
            key,
            signed: payload.signed(),
        }
    }

    fn receipt() -> SettleResponse {
        SettleResponse {
            success: true,
            error_reason: None,
            error_message: None,
            payer: None,
            transaction: "0xabc".to_owned(),
            network: "eip155:84532".to_owned(),
            amount: None,
        }
    }

    #[test]
    fn an_id_is_bound_to_one_payment_and_freed_when_it_is_refused() {
        let ids = Identifiers::default();
        let id = key("pay_0123456789abcdef");
        let Check::Claimed(claim) = ids.check(id.clone(), identity(1, &[1]), 2000, 1000) else {
            panic!("a new id is claimed");
        };
        assert!(matches!(
            ids.check(id.clone(), identity(1, &[1]), 2000, 1000),
            Check::Known
        ));
        assert!(matches!(
            ids.check(id.clone(), identity(2, &[1]), 2000, 1000),
            Check::Conflict
        ));
        assert!(
            matches!(
                ids.check(id.clone(), identity(1, &[2]), 2000, 1000),
                Check::Conflict
            ),
            "other signature bytes are another payment"
        );
        drop(claim);
        assert_eq!(ids.len(), 0, "a refused payment frees its id");
        let Check::Claimed(claim) = ids.check(id.clone(), identity(2, &[1]), 2000, 1000) else {
            panic!("the freed id is claimed again");
        };
        let recorder = claim.recorder();
        claim.bind();
        assert!(matches!(
            ids.check(id.clone(), identity(2, &[1]), 2000, 1000),
            Check::Known
        ));
        let response = Response::new(Body::from("paid"));
        recorder.record(
            &response,
            axum::body::Bytes::from_static(b"paid"),
            &receipt(),
            X402Version::V2,
        );
        let Check::Recorded(again) = ids.check(id.clone(), identity(2, &[1]), 2000, 1000) else {
            panic!("the recorded response");
        };
        assert_eq!(again.status(), StatusCode::OK);
        assert!(again.headers().contains_key("payment-response"));
        assert_eq!(ids.recorded_bytes.load(Ordering::Relaxed), 4);
        assert!(matches!(
            ids.check(id.clone(), identity(3, &[1]), 2000, 1000),
            Check::Conflict
        ));
        assert!(
            matches!(
                ids.check(key("pay_0123456789abcdeX"), identity(2, &[1]), 2000, 1000),
                Check::Claimed(_)
            ),
            "another id is another purchase"
        );
        // Once the authorization expired, the id may start another purchase.
        assert!(matches!(
            ids.check(id, identity(3, &[1]), 2000, 2000),
            Check::Claimed(_)
        ));
        assert_eq!(ids.recorded_bytes.load(Ordering::Relaxed), 0);
    }
}
