//! Several facilitators behind one: see [`Facilitators`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{BoxFuture, Facilitator, FacilitatorError};
use crate::base::ConfigError;
use crate::network::Network;
use crate::proto::{FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse};

/// How long a failed facilitator is skipped unless set.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);
/// How long one facilitator's `/supported` may take, inside the merged one, unless set.
const DEFAULT_SUPPORTED_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the facilitator that received a payment's `/settle` is remembered.
const REMEMBERED_FOR: Duration = Duration::from_secs(24 * 60 * 60);
/// Most payments remembered at once; past it, the oldest are forgotten first.
const MOST_REMEMBERED: usize = 100_000;

/// Several facilitators used as one: per-network ordered lists with failover.
///
/// [`Facilitators`] is itself a [`Facilitator`], so the paywall uses it like any other. Each
/// request goes to the ordered list of its network (read from the request's
/// `paymentRequirements`), or to the default list for networks not named. Within the list, a
/// facilitator whose last `/supported` answer does not list the payment's version, scheme and
/// network is passed over (unless none does), so one list can mix, say, a testnet facilitator
/// and a mainnet one.
///
/// - `/verify` moves nothing, so it fails over freely: a facilitator that fails (unreachable,
///   no answer in time, an answer that is not one) is skipped for a cool-down (30 s unless set)
///   and the next one of the list is asked. A `/verify` cut short by the paywall's own timeout
///   counts as a failure of the facilitator that used up the time (not of one asked just
///   before the deadline). When every facilitator of a list is cooling down, they are asked in
///   order all the same.
/// - `/settle` of one payment is never sent to two facilitators. It fails over only when the
///   request did not reach the facilitator (the connection was refused: nothing was sent). On
///   any other failure the error is returned (the outcome is unknown), and the facilitator that
///   received the payment's `/settle` is remembered, keyed by the payment (network, payer and
///   nonce of its authorization), so that reconciliation — which repeats the same `/settle` — goes
///   to that same facilitator even while it fails, and never to another.
///   This memory is kept in the process for 24 hours: after a restart, a reconciliation goes to
///   the first available facilitator of the network's list like a first `/settle`. That is safe
///   for money (an EIP-3009 authorization can move funds once, whoever submits it, and a refusal
///   while reconciling leaves the payment pending), but a chain reader is what resolves such a
///   payment for certain.
/// - `/supported` asks every facilitator at once and merges the answers: the kinds each one
///   supports for the networks routed to it, their extensions, and their signers. A
///   facilitator that fails is cooled down; it is an error only when none answers.
///
/// ```no_run
/// use std::time::Duration;
/// use x402_runtime::facilitator::{Facilitators, HttpFacilitator};
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let facilitators = Facilitators::builder()
///     .facilitator(HttpFacilitator::new("https://x402.org/facilitator")?)
///     .facilitator(HttpFacilitator::new("https://backup.example.com/x402")?)
///     .network_facilitator("eip155:8453", HttpFacilitator::new("https://mainnet.example.com")?)
///     .cooldown(Duration::from_secs(30))
///     .build()?;
/// # let config = x402_runtime::X402Config::builder().pay_to("0x209693Bc6afc0C5328bA36FaF03C514EF312287C").build()?;
/// let x402 = x402_runtime::X402::builder(config).facilitator(facilitators).build()?;
/// # Ok(()) }
/// ```
pub struct Facilitators {
    members: Vec<Member>,
    /// Indexes into `members`, in order: for networks without a list of their own.
    default_route: Vec<usize>,
    /// CAIP-2 network → indexes into `members`, in order.
    routes: HashMap<String, Vec<usize>>,
    cooldown: Duration,
    supported_timeout: Duration,
    /// Payment → (member that received its `/settle`, when).
    settled_by: Mutex<HashMap<String, (usize, Instant)>>,
}

struct Member {
    facilitator: Arc<dyn Facilitator>,
    /// When it last failed, while that is remembered.
    failed_at: Mutex<Option<Instant>>,
    /// What its last `/supported` listed: (version, scheme, canonical network); `None` until
    /// it answered.
    kinds: Mutex<Option<Vec<(u8, String, String)>>>,
    /// The fee payers its last `/supported` named (`extra.feePayer`, Solana), by canonical
    /// network.
    fee_payers: Mutex<Vec<(String, String)>>,
}

impl Member {
    /// Whether it is known not to support `kind` (unknown until `/supported` answered).
    fn lacks(&self, kind: &(u8, String, String)) -> bool {
        self.kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|kinds| !kinds.contains(kind))
    }

    fn learn(&self, supported: &SupportedResponse) {
        let kinds = supported
            .kinds
            .iter()
            .map(|k| {
                (
                    k.x402_version,
                    k.scheme.clone(),
                    canonical_network(&k.network),
                )
            })
            .collect();
        *self.kinds.lock().unwrap_or_else(PoisonError::into_inner) = Some(kinds);
        let fee_payers = supported
            .kinds
            .iter()
            .filter_map(|k| {
                let fee_payer = k.extra.as_ref()?.get("feePayer")?.as_str()?;
                Some((canonical_network(&k.network), fee_payer.to_owned()))
            })
            .collect();
        *self
            .fee_payers
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = fee_payers;
    }

    /// Whether its last `/supported` named `fee_payer` on `network` (canonical).
    fn pays_fees_as(&self, network: &str, fee_payer: &str) -> bool {
        self.fee_payers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|(n, f)| n == network && f == fee_payer)
    }

    fn cool_down(&self) {
        *self
            .failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    fn recovered(&self) {
        *self
            .failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn cooling(&self, cooldown: Duration) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < cooldown)
    }
}

/// One call to one member. A call cut short by the caller's own timeout (dropped midway)
/// counts as a failure of the member when it took at least half of the time the whole request
/// has taken: the member that used up the budget is cooled down, not the next one, asked just
/// before the deadline.
struct Watch<'a> {
    member: &'a Member,
    /// When the request (all its attempts) began.
    request_began: Instant,
    started: Instant,
    reported: bool,
}

impl<'a> Watch<'a> {
    fn new(member: &'a Member, request_began: Instant) -> Self {
        Watch {
            member,
            request_began,
            started: Instant::now(),
            reported: false,
        }
    }

    fn report(mut self, ok: bool) {
        self.reported = true;
        if ok {
            self.member.recovered();
        } else {
            self.member.cool_down();
        }
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if !self.reported && self.started.elapsed() * 2 >= self.request_began.elapsed() {
            self.member.cool_down();
        }
    }
}

impl Facilitators {
    /// Starts an empty set.
    pub fn builder() -> FacilitatorsBuilder {
        FacilitatorsBuilder {
            members: Vec::new(),
            default_route: Vec::new(),
            routes: Vec::new(),
            cooldown: DEFAULT_COOLDOWN,
            supported_timeout: DEFAULT_SUPPORTED_TIMEOUT,
            error: None,
        }
    }

    /// How many distinct facilitators there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are none (a built set always has one).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The list a request for `network` goes to (empty when none).
    fn route(&self, network: &str) -> &[usize] {
        self.routes
            .get(&canonical_network(network))
            .unwrap_or(&self.default_route)
    }

    /// The members to try for `request`, in order: of the network's list, those whose last
    /// `/supported` did not leave out the payment's version, scheme and network (all of them if
    /// none is left), and of those the ones not cooling down (or all of them when every one is).
    fn candidates(&self, request: &FacilitatorRequest) -> Result<Vec<usize>, FacilitatorError> {
        let requirements = &request.payment_requirements;
        let network = requirements.network();
        let route = self.route(network);
        if route.is_empty() {
            return Err(FacilitatorError::Unreachable(format!(
                "no facilitator is configured for the network `{network}`"
            )));
        }
        let kind = (
            request.x402_version,
            requirements.scheme().to_owned(),
            canonical_network(network),
        );
        let mut serving = prefer(route.to_vec(), |&i| !self.members[i].lacks(&kind));
        // A Solana payment names its facilitator's fee payer: only that facilitator can settle it.
        let fee_payer = requirements
            .extra()
            .and_then(|e| e.get("feePayer")?.as_str());
        if let Some(fee_payer) = fee_payer {
            serving = prefer(serving, |&i| {
                self.members[i].pays_fees_as(&kind.2, fee_payer)
            });
        }
        Ok(prefer(serving, |&i| {
            !self.members[i].cooling(self.cooldown)
        }))
    }

    async fn verify_routed(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        let began = Instant::now();
        let mut last = None;
        for index in self.candidates(request)? {
            let member = &self.members[index];
            let watch = Watch::new(member, began);
            match member.facilitator.verify(request).await {
                Ok(answer) => {
                    watch.report(true);
                    return Ok(answer);
                }
                Err(e) => {
                    watch.report(false);
                    tracing::warn!(
                        facilitator = index + 1,
                        "x402: /verify failed ({e}); skipping this facilitator for {:?}",
                        self.cooldown
                    );
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| FacilitatorError::Unreachable("no facilitator".into())))
    }

    async fn settle_routed(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        let key = payment_key(request);
        let began = Instant::now();
        if let Some(index) = self.remembered(&key) {
            // This payment's `/settle` went there: it is repeated there and nowhere else.
            return self.settle_at(index, request, began).await;
        }
        let mut last = None;
        for index in self.candidates(request)? {
            self.remember(&key, index);
            match self.settle_at(index, request, began).await {
                Err(FacilitatorError::Unreachable(e)) => {
                    tracing::warn!(
                        facilitator = index + 1,
                        "x402: /settle did not reach the facilitator ({e}); nothing was sent, \
                         trying the next one"
                    );
                    last = Some(FacilitatorError::Unreachable(e));
                }
                answer => return answer,
            }
        }
        self.forget(&key);
        Err(last.unwrap_or_else(|| FacilitatorError::Unreachable("no facilitator".into())))
    }

    async fn settle_at(
        &self,
        index: usize,
        request: &FacilitatorRequest,
        began: Instant,
    ) -> Result<SettleResponse, FacilitatorError> {
        let member = &self.members[index];
        let watch = Watch::new(member, began);
        let answer = member.facilitator.settle(request).await;
        // The facilitator stays this payment's even after it said success: the server may
        // still take the answer as unknown (wrong payer, amount or transaction) and reconcile.
        watch.report(answer.is_ok());
        answer
    }

    fn remembered(&self, key: &str) -> Option<usize> {
        let memory = self
            .settled_by
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        memory
            .get(key)
            .filter(|(_, at)| at.elapsed() < REMEMBERED_FOR)
            .map(|(index, _)| *index)
    }

    fn remember(&self, key: &str, index: usize) {
        let mut memory = self
            .settled_by
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if memory.len() >= MOST_REMEMBERED && !memory.contains_key(key) {
            memory.retain(|_, (_, at)| at.elapsed() < REMEMBERED_FOR);
            while memory.len() >= MOST_REMEMBERED {
                let oldest = memory
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(oldest) => memory.remove(&oldest),
                    None => break,
                };
            }
        }
        memory.insert(key.to_owned(), (index, Instant::now()));
    }

    fn forget(&self, key: &str) {
        self.settled_by
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    async fn supported_merged(&self) -> Result<SupportedResponse, FacilitatorError> {
        let began = Instant::now();
        let asks = self.members.iter().map(|member| async move {
            let watch = Watch::new(member, began);
            let answer =
                tokio::time::timeout(self.supported_timeout, member.facilitator.supported())
                    .await
                    .unwrap_or(Err(FacilitatorError::Timeout));
            watch.report(answer.is_ok());
            answer
        });
        let answers = futures_util::future::join_all(asks).await;
        let mut merged: Option<SupportedResponse> = None;
        let mut first_error = None;
        for (index, answer) in answers.into_iter().enumerate() {
            match answer {
                Ok(supported) => {
                    self.members[index].learn(&supported);
                    let into = merged.get_or_insert_with(|| SupportedResponse {
                        kinds: Vec::new(),
                        extensions: Vec::new(),
                        signers: serde_json::Map::new(),
                    });
                    self.merge(into, index, supported);
                }
                Err(e) => {
                    tracing::warn!(facilitator = index + 1, "x402: /supported failed: {e}");
                    first_error.get_or_insert(e);
                }
            }
        }
        merged.ok_or_else(|| {
            first_error.unwrap_or_else(|| FacilitatorError::Unreachable("no facilitator".into()))
        })
    }

    /// Adds what member `index` supports for the networks routed to it.
    fn merge(&self, into: &mut SupportedResponse, index: usize, supported: SupportedResponse) {
        for kind in supported.kinds {
            if self.route(&kind.network).contains(&index) && !into.kinds.contains(&kind) {
                into.kinds.push(kind);
            }
        }
        for extension in supported.extensions {
            if !into.extensions.contains(&extension) {
                into.extensions.push(extension);
            }
        }
        for (pattern, signers) in supported.signers {
            match (into.signers.get_mut(&pattern), signers) {
                (Some(Value::Array(known)), Value::Array(more)) => {
                    for signer in more {
                        if !known.contains(&signer) {
                            known.push(signer);
                        }
                    }
                }
                (Some(_), _) => {}
                (None, signers) => {
                    into.signers.insert(pattern, signers);
                }
            }
        }
    }
}

/// The members of `list` that `keep`, or the whole list when it keeps none.
fn prefer(list: Vec<usize>, keep: impl Fn(&usize) -> bool) -> Vec<usize> {
    let kept: Vec<usize> = list.iter().copied().filter(|i| keep(i)).collect();
    if kept.is_empty() { list } else { kept }
}

/// A network as routes are keyed: CAIP-2 for EVM networks, whether written as CAIP-2 or as a v1
/// name; anything else as written.
fn canonical_network(network: &str) -> String {
    Network::from_caip2(network)
        .or_else(|| Network::from_v1_name(network))
        .map_or_else(|| network.to_owned(), |n| n.caip2)
}

/// The payment a request is for: its network, asset and its authorization's payer and nonce
/// (an EIP-3009 authorization is used once per token), or else the whole payload.
fn payment_key(request: &FacilitatorRequest) -> String {
    let network = canonical_network(request.payment_requirements.network());
    let asset = request.payment_requirements.asset().to_ascii_lowercase();
    let payload = request.payment_payload.get();
    let parsed: Option<Value> = serde_json::from_str(payload).ok();
    let authorization = parsed
        .as_ref()
        .map(|p| &p["payload"]["authorization"])
        .and_then(|a| Some((a["from"].as_str()?, a["nonce"].as_str()?)));
    match authorization {
        Some((from, nonce)) => format!(
            "{network}/{asset}/{}/{}",
            from.to_ascii_lowercase(),
            nonce.to_ascii_lowercase()
        ),
        None => format!("{network}/{asset}/{payload}"),
    }
}

impl Facilitator for Facilitators {
    fn verify<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<VerifyResponse, FacilitatorError>> {
        Box::pin(self.verify_routed(request))
    }

    fn settle<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<SettleResponse, FacilitatorError>> {
        Box::pin(self.settle_routed(request))
    }

    fn supported(&self) -> BoxFuture<'_, Result<SupportedResponse, FacilitatorError>> {
        Box::pin(self.supported_merged())
    }
}

impl fmt::Debug for Facilitators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let numbered = |list: &[usize]| list.iter().map(|i| i + 1).collect::<Vec<_>>();
        let mut routes: Vec<_> = self
            .routes
            .iter()
            .map(|(network, list)| (network.clone(), numbered(list)))
            .collect();
        routes.sort();
        f.debug_struct("Facilitators")
            .field("facilitators", &self.members.len())
            .field("default", &numbered(&self.default_route))
            .field("networks", &routes)
            .field("cooldown", &self.cooldown)
            .finish_non_exhaustive()
    }
}

/// Builds [`Facilitators`]; mistakes are reported by [`build`](Self::build).
#[must_use]
pub struct FacilitatorsBuilder {
    members: Vec<Member>,
    default_route: Vec<usize>,
    routes: Vec<(String, Vec<usize>)>,
    cooldown: Duration,
    supported_timeout: Duration,
    error: Option<ConfigError>,
}

impl FacilitatorsBuilder {
    /// Appends a facilitator to the default list: the one for networks without a list of their
    /// own. The first added is tried first.
    pub fn facilitator(self, facilitator: impl Facilitator) -> Self {
        self.facilitator_arc(Arc::new(facilitator))
    }

    /// [`facilitator`](Self::facilitator) with a shared facilitator. The same `Arc` given to several lists is one
    /// facilitator: asked once for `/supported`, cooled down once.
    pub fn facilitator_arc(mut self, facilitator: Arc<dyn Facilitator>) -> Self {
        let index = self.member(facilitator);
        if !self.default_route.contains(&index) {
            self.default_route.push(index);
        }
        self
    }

    /// Appends a facilitator to the list of `network` (CAIP-2 such as `eip155:8453`, or a v1
    /// name such as `base`): requests for that network go to its list only, first added first.
    pub fn network_facilitator(self, network: &str, facilitator: impl Facilitator) -> Self {
        self.network_facilitator_arc(network, Arc::new(facilitator))
    }

    /// [`network_facilitator`](Self::network_facilitator) with a shared facilitator.
    pub fn network_facilitator_arc(
        mut self,
        network: &str,
        facilitator: Arc<dyn Facilitator>,
    ) -> Self {
        let canonical = canonical_network(network.trim());
        if !Network::from_caip2(&canonical).is_some_and(|n| n.is_evm() || cfg!(feature = "svm")) {
            self.error.get_or_insert(ConfigError::new(format!(
                "network `{network}` is not a CAIP-2 id this build serves: write \
                 `eip155:<chain id>`, e.g. `eip155:8453` for Base (Solana clusters need the \
                 feature `svm`)"
            )));
            return self;
        }
        let index = self.member(facilitator);
        match self.routes.iter_mut().find(|(n, _)| *n == canonical) {
            Some((_, list)) if list.contains(&index) => {}
            Some((_, list)) => list.push(index),
            None => self.routes.push((canonical, vec![index])),
        }
        self
    }

    /// How long a facilitator that failed is skipped; 30 s unless set.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// How long each facilitator's `/supported` may take inside the merged answer (those that
    /// take longer are left out and cooled down); 5 s unless set. Keep it under the paywall's
    /// verify timeout, which bounds the whole.
    pub fn supported_timeout(mut self, timeout: Duration) -> Self {
        self.supported_timeout = timeout;
        self
    }

    fn member(&mut self, facilitator: Arc<dyn Facilitator>) -> usize {
        if let Some(index) = self
            .members
            .iter()
            .position(|m| Arc::ptr_eq(&m.facilitator, &facilitator))
        {
            return index;
        }
        self.members.push(Member {
            facilitator,
            failed_at: Mutex::new(None),
            kinds: Mutex::new(None),
            fee_payers: Mutex::new(Vec::new()),
        });
        self.members.len() - 1
    }

    /// Builds the set: at least one facilitator is needed.
    pub fn build(self) -> Result<Facilitators, ConfigError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.members.is_empty() {
            return Err(ConfigError::new(
                "no facilitator: add at least one with .facilitator(…) or .network_facilitator(…)",
            ));
        }
        Ok(Facilitators {
            members: self.members,
            default_route: self.default_route,
            routes: self.routes.into_iter().collect(),
            cooldown: self.cooldown,
            supported_timeout: self.supported_timeout,
            settled_by: Mutex::new(HashMap::new()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;
    use crate::proto::{PaymentRequirements, Requirements, SupportedKind};

    /// A scripted facilitator: what it answers, and how often it was called.
    struct Scripted {
        verify: Result<(), FacilitatorError>,
        settle: Result<(), FacilitatorError>,
        networks: Vec<&'static str>,
        signer: &'static str,
        /// The `extra.feePayer` of its kinds, if any.
        fee_payer: Option<&'static str>,
        verifies: AtomicUsize,
        settles: AtomicUsize,
    }

    impl Scripted {
        fn new(
            verify: Result<(), FacilitatorError>,
            settle: Result<(), FacilitatorError>,
        ) -> Arc<Self> {
            Arc::new(Scripted {
                verify,
                settle,
                networks: vec!["eip155:84532"],
                signer: "0x01",
                fee_payer: None,
                verifies: AtomicUsize::new(0),
                settles: AtomicUsize::new(0),
            })
        }

        fn healthy() -> Arc<Self> {
            Self::new(Ok(()), Ok(()))
        }
    }

    impl Facilitator for Scripted {
        fn verify<'a>(
            &'a self,
            _: &'a FacilitatorRequest,
        ) -> BoxFuture<'a, Result<VerifyResponse, FacilitatorError>> {
            self.verifies.fetch_add(1, Ordering::SeqCst);
            let answer = self.verify.clone().map(|()| VerifyResponse {
                is_valid: true,
                invalid_reason: None,
                invalid_message: None,
                payer: None,
            });
            Box::pin(async move { answer })
        }

        fn settle<'a>(
            &'a self,
            request: &'a FacilitatorRequest,
        ) -> BoxFuture<'a, Result<SettleResponse, FacilitatorError>> {
            self.settles.fetch_add(1, Ordering::SeqCst);
            let answer = self.settle.clone().map(|()| SettleResponse {
                success: true,
                error_reason: None,
                error_message: None,
                payer: None,
                transaction: "0xabc".into(),
                network: request.payment_requirements.network().to_owned(),
                amount: None,
            });
            Box::pin(async move { answer })
        }

        fn supported(&self) -> BoxFuture<'_, Result<SupportedResponse, FacilitatorError>> {
            let kinds = self
                .networks
                .iter()
                .map(|n| SupportedKind {
                    x402_version: 2,
                    scheme: "exact".into(),
                    network: (*n).into(),
                    extra: self.fee_payer.map(|f| {
                        let mut extra = serde_json::Map::new();
                        extra.insert("feePayer".into(), json!(f));
                        extra
                    }),
                })
                .collect();
            let mut signers = serde_json::Map::new();
            signers.insert("eip155:*".into(), json!([self.signer]));
            let answer = SupportedResponse {
                kinds,
                extensions: vec!["bazaar".into()],
                signers,
            };
            Box::pin(async move { Ok(answer) })
        }
    }

    fn request(network: &str, from: &str, nonce: &str) -> FacilitatorRequest {
        let payload = json!({
            "x402Version": 2,
            "payload": {"signature": "0x", "authorization": {"from": from, "nonce": nonce}},
        });
        FacilitatorRequest {
            x402_version: 2,
            payment_payload: serde_json::value::to_raw_value(&payload).expect("json"),
            payment_requirements: Requirements::V2(PaymentRequirements {
                scheme: "exact".into(),
                network: network.into(),
                amount: "1000".into(),
                asset: "0x02".into(),
                pay_to: "0x03".into(),
                max_timeout_seconds: 60,
                extra: None,
            }),
        }
    }

    fn unreachable() -> Result<(), FacilitatorError> {
        Err(FacilitatorError::Unreachable("refused".into()))
    }

    #[test]
    fn payments_are_keyed_by_network_asset_payer_and_nonce() {
        let a = payment_key(&request("eip155:84532", "0xAbC", "0x01"));
        assert_eq!(a, "eip155:84532/0x02/0xabc/0x01");
        assert_eq!(payment_key(&request("base-sepolia", "0xabc", "0x01")), a);
        assert_ne!(payment_key(&request("eip155:84532", "0xabc", "0x02")), a);
        // The same payer and nonce on another token is another payment.
        let mut euro = request("eip155:84532", "0xabc", "0x01");
        if let Requirements::V2(r) = &mut euro.payment_requirements {
            r.asset = "0x04".into();
        }
        assert_ne!(payment_key(&euro), a);
        let mut other = request("eip155:84532", "0xabc", "0x01");
        other.payment_payload =
            serde_json::value::to_raw_value(&json!({"opaque": 1})).expect("json");
        assert_eq!(payment_key(&other), "eip155:84532/0x02/{\"opaque\":1}");
    }

    #[tokio::test]
    async fn settle_fails_over_only_when_nothing_was_sent() {
        let down = Scripted::new(Ok(()), unreachable());
        let (timing_out, spare) = (
            Scripted::new(Ok(()), Err(FacilitatorError::Timeout)),
            Scripted::healthy(),
        );
        let set = Facilitators::builder()
            .facilitator_arc(down.clone())
            .facilitator_arc(timing_out.clone())
            .facilitator_arc(spare.clone())
            .build()
            .expect("set");
        let payment = request("eip155:84532", "0xabc", "0x01");
        assert_eq!(set.settle(&payment).await, Err(FacilitatorError::Timeout));
        assert_eq!(set.settle(&payment).await, Err(FacilitatorError::Timeout));
        let calls = |f: &Scripted| f.settles.load(Ordering::SeqCst);
        assert_eq!((calls(&down), calls(&timing_out), calls(&spare)), (1, 2, 0));
        // Another payment skips both (cooling down) and settles at the spare, once.
        let other = request("eip155:84532", "0xabc", "0x02");
        assert!(set.settle(&other).await.expect("settled").success);
        assert_eq!((calls(&down), calls(&timing_out), calls(&spare)), (1, 2, 1));
        // A success is remembered too: the server may still take it as unknown and reconcile.
        assert_eq!(set.remembered(&payment_key(&other)), Some(2));
        assert_eq!(set.remembered(&payment_key(&payment)), Some(1));
    }

    #[tokio::test]
    async fn when_every_facilitator_is_unreachable_the_payment_is_not_remembered() {
        let (a, b) = (
            Scripted::new(unreachable(), unreachable()),
            Scripted::new(unreachable(), unreachable()),
        );
        let set = Facilitators::builder()
            .facilitator_arc(a.clone())
            .facilitator_arc(b.clone())
            .build()
            .expect("set");
        let payment = request("eip155:84532", "0xabc", "0x01");
        assert!(matches!(
            set.settle(&payment).await,
            Err(FacilitatorError::Unreachable(_))
        ));
        assert!(set.remembered(&payment_key(&payment)).is_none());
        // Both cooling down: they are still asked, in order.
        assert!(set.verify(&payment).await.is_err());
        assert_eq!(
            a.verifies.load(Ordering::SeqCst) + b.verifies.load(Ordering::SeqCst),
            2
        );
    }

    /// A Solana payment goes to the facilitator whose fee payer it names, whatever the order.
    #[tokio::test]
    async fn a_solana_payment_goes_to_the_facilitator_of_its_fee_payer() {
        const DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
        let payer = |fee_payer| {
            Arc::new(Scripted {
                networks: vec![DEVNET],
                fee_payer: Some(fee_payer),
                ..Arc::into_inner(Scripted::healthy()).expect("sole owner")
            })
        };
        let (first, second) = (payer("FeePayerA"), payer("FeePayerB"));
        let set = Facilitators::builder()
            .facilitator_arc(first.clone())
            .facilitator_arc(second.clone())
            .build()
            .expect("set");
        let merged = set.supported().await.expect("merged");
        assert_eq!(merged.kinds.len(), 2, "both fee payers are listed");
        let mut payment = request(DEVNET, "payer", "0x01");
        if let Requirements::V2(requirements) = &mut payment.payment_requirements {
            let mut extra = serde_json::Map::new();
            extra.insert("feePayer".into(), json!("FeePayerB"));
            requirements.extra = Some(extra);
        }
        set.verify(&payment).await.expect("verified");
        set.settle(&payment).await.expect("settled");
        assert_eq!(first.verifies.load(Ordering::SeqCst), 0);
        assert_eq!(first.settles.load(Ordering::SeqCst), 0);
        assert_eq!(second.verifies.load(Ordering::SeqCst), 1);
        assert_eq!(second.settles.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn routes_by_network_and_merges_what_each_route_supports() {
        let (sepolia, mainnet) = (
            Scripted::healthy(),
            Arc::new(Scripted {
                networks: vec!["eip155:8453", "eip155:84532"],
                signer: "0x02",
                ..Arc::into_inner(Scripted::healthy()).expect("sole owner")
            }),
        );
        let set = Facilitators::builder()
            .facilitator_arc(sepolia.clone())
            .network_facilitator_arc("base", mainnet.clone())
            .build()
            .expect("set");
        set.verify(&request("eip155:8453", "0xabc", "0x01"))
            .await
            .expect("verified");
        set.verify(&request("eip155:84532", "0xabc", "0x02"))
            .await
            .expect("verified");
        assert_eq!(sepolia.verifies.load(Ordering::SeqCst), 1);
        assert_eq!(mainnet.verifies.load(Ordering::SeqCst), 1);
        let merged = set.supported().await.expect("merged");
        assert!(merged.supports(2, "exact", "eip155:8453"));
        assert!(merged.supports(2, "exact", "eip155:84532"));
        // The mainnet facilitator's Base Sepolia kind is not routed to it: listed once.
        assert_eq!(merged.kinds.len(), 2);
        assert_eq!(merged.extensions, ["bazaar"]);
        assert_eq!(merged.signers["eip155:*"], json!(["0x01", "0x02"]));
        let none = Facilitators::builder()
            .network_facilitator_arc("eip155:8453", mainnet)
            .build()
            .expect("set");
        let unrouted = none.verify(&request("eip155:84532", "0xabc", "0x03")).await;
        assert!(
            matches!(unrouted, Err(FacilitatorError::Unreachable(e)) if e.contains("eip155:84532"))
        );
    }

    #[tokio::test]
    async fn a_facilitator_whose_supported_leaves_the_network_out_is_passed_over() {
        let sepolia = Scripted::healthy();
        let mainnet = Arc::new(Scripted {
            networks: vec!["eip155:8453"],
            ..Arc::into_inner(Scripted::healthy()).expect("sole owner")
        });
        let set = Facilitators::builder()
            .facilitator_arc(sepolia.clone())
            .facilitator_arc(mainnet.clone())
            .build()
            .expect("set");
        let on_mainnet = request("eip155:8453", "0xabc", "0x01");
        // Before /supported is known, the list's order.
        set.verify(&on_mainnet).await.expect("verified");
        assert_eq!(sepolia.verifies.load(Ordering::SeqCst), 1);
        set.supported().await.expect("merged");
        set.verify(&on_mainnet).await.expect("verified");
        assert_eq!(mainnet.verifies.load(Ordering::SeqCst), 1);
        set.verify(&request("eip155:84532", "0xabc", "0x02"))
            .await
            .expect("verified");
        assert_eq!(sepolia.verifies.load(Ordering::SeqCst), 2);
        // None lists it: the list's order again.
        set.verify(&request("eip155:1", "0xabc", "0x03"))
            .await
            .expect("verified");
        assert_eq!(sepolia.verifies.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn builder_refuses_an_empty_set_and_unknown_networks() {
        assert!(Facilitators::builder().build().is_err());
        let bad = Facilitators::builder()
            .network_facilitator_arc(
                "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z",
                Scripted::healthy(),
            )
            .build();
        assert!(
            bad.expect_err("not a network served")
                .to_string()
                .contains("eip155:<chain id>")
        );
        // Solana mainnet by its v1 name, with the feature that serves it.
        let solana = Facilitators::builder()
            .network_facilitator_arc("solana", Scripted::healthy())
            .build();
        assert_eq!(solana.is_ok(), cfg!(feature = "svm"));
        let shared: Arc<dyn Facilitator> = Scripted::healthy();
        let set = Facilitators::builder()
            .facilitator_arc(shared.clone())
            .network_facilitator_arc("eip155:8453", shared)
            .build()
            .expect("set");
        assert_eq!(set.len(), 1, "one facilitator in two lists");
        assert!(format!("{set:?}").contains("eip155:8453"));
    }
}
