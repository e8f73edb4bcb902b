//! [`X402`]: the installed paywall (configuration, facilitator, replay store, chain reader,
//! clock) and its builder, the routes' extensions, and the startup checks.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde_json::{Map, Value};

use super::challenge::{Challenge, RouteOffers};
use super::config::{X402Config, with_route_networks};
use super::identifier::{self, Identifiers};
use super::lifecycle::Lifecycle;
use super::pricing::{self, Overrides};
use super::settlement::backoff::{Backoff, DEFAULT_RECONCILE_INTERVAL};
use super::telemetry::{TimedFacilitator, TimedStore};
use crate::base::{Clock, ConfigError};
use crate::facilitator::{Facilitator, FacilitatorError};
use crate::proto::SupportedResponse;
use crate::route::{PaidRoute, routes};
use crate::schemes::ReplayKey;
use crate::schemes::exact_evm::chain::ChainReader;
use crate::schemes::exact_evm::rules::VALID_BEFORE_MARGIN;
use crate::store::{MemoryStore, ReplayStore};

/// The hasher of the maps an unpaid request looks up (by route, then by resource URL): foldhash,
/// seeded per map, several times faster than SipHash on these short keys. A map keyed by URLs
/// holds at most [`MAX_CACHED_CHALLENGES`](super::challenge::MAX_CACHED_CHALLENGES) entries, so
/// colliding keys cannot make it grow without bound.
pub(crate) type RouteHasher = foldhash::fast::RandomState;

/// The paywall, installed once on the router with [`X402::layer`].
///
/// Cheap to clone (one `Arc`). It owns the configuration, the facilitator client and the replay
/// store, and caches each route's offers and 402 challenge after first use.
#[derive(Clone)]
pub struct X402 {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: X402Config,
    pub(crate) facilitator: Arc<dyn Facilitator>,
    pub(crate) store: Arc<dyn ReplayStore>,
    /// Reads the chain to resolve unknown settlement outcomes, when one is configured.
    pub(crate) chain: Option<Arc<dyn ChainReader>>,
    /// Reads a Solana node to resolve unknown Solana outcomes, when one is configured.
    #[cfg(feature = "svm")]
    pub(crate) svm_chain: Option<crate::schemes::exact_svm::rpc::SvmRpc>,
    pub(crate) clock: Clock,
    /// Whether the background reconciliation of unknown outcomes has been started.
    pub(crate) reconciler: std::sync::Once,
    /// How often it runs (`None`: never).
    pub(crate) reconcile_interval: Option<Duration>,
    /// Its backoff per payment.
    pub(crate) backoff: Backoff,
    /// The prices the configuration sets, by route.
    pub(crate) prices: Overrides,
    /// Each route's offers, by route.
    pub(crate) offers: DashMap<usize, Arc<RouteOffers>, RouteHasher>,
    /// A quoted route's offers by (route, quoted atomic amount, recipient of that quote).
    pub(crate) quoted: DashMap<(usize, u128, Option<alloy_primitives::Address>), Arc<RouteOffers>>,
    /// Plain challenges by route, then resource URL (looked up by `&str`, without allocating).
    pub(crate) challenges: DashMap<usize, HashMap<Box<str>, Challenge, RouteHasher>, RouteHasher>,
    /// Challenges in `challenges`, all routes together.
    pub(crate) cached_challenges: AtomicUsize,
    pub(crate) extensions: DashMap<usize, Arc<Map<String, Value>>>,
    /// Whether the facilitator's `/supported` has been read, and when it last failed.
    pub(crate) readiness: Readiness,
    /// Payments whose pending settlement a resend is reconciling right now.
    pub(crate) reconciling: DashMap<ReplayKey, ()>,
    /// `payment-identifier`: the routes that declared it and the ids seen (this process only).
    pub(crate) identifiers: Identifiers,
    /// Whether payments are admitted, and the ones under way (graceful shutdown).
    pub(crate) lifecycle: Arc<Lifecycle>,
}

/// The facilitator's configuration is known once its `/supported` answered; until then paid
/// requests are answered 503 before anything is verified.
#[derive(Default)]
pub(crate) struct Readiness {
    ready: AtomicBool,
    last_failure: tokio::sync::Mutex<Option<Instant>>,
    /// The first `/supported` answer (an `upto` offer names the facilitator it lists).
    supported: std::sync::OnceLock<SupportedResponse>,
}

impl Readiness {
    /// The facilitator's `/supported`, once it answered.
    pub(crate) fn supported(&self) -> Option<&SupportedResponse> {
        self.supported.get()
    }
}

/// How long a failed `/supported` is remembered before it is asked again.
const SUPPORTED_RETRY: Duration = Duration::from_secs(5);

impl fmt::Debug for X402 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X402")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Builds an [`X402`] with a custom facilitator, replay store or clock.
#[must_use]
pub struct X402Builder {
    config: X402Config,
    facilitator: Option<Arc<dyn Facilitator>>,
    store: Option<Arc<dyn ReplayStore>>,
    chain: Option<Arc<dyn ChainReader>>,
    #[cfg(feature = "svm")]
    svm_chain: Option<crate::schemes::exact_svm::rpc::SvmRpc>,
    clock: Clock,
    reconcile_interval: Option<Duration>,
}

impl X402Builder {
    /// Uses this facilitator instead of the HTTP client for the configured URL: an
    /// [`HttpFacilitator`](crate::facilitator::HttpFacilitator) with its own credentials, several
    /// behind [`Facilitators`](crate::facilitator::Facilitators), or any other.
    pub fn facilitator(mut self, facilitator: impl Facilitator) -> Self {
        self.facilitator = Some(Arc::new(facilitator));
        self
    }

    /// Uses a shared facilitator.
    pub fn facilitator_arc(mut self, facilitator: Arc<dyn Facilitator>) -> Self {
        self.facilitator = Some(facilitator);
        self
    }

    /// Uses this replay store instead of the default: a [`FileStore`](crate::FileStore) at the
    /// configuration's `store_path`, or else a [`MemoryStore`].
    pub fn store(mut self, store: impl ReplayStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Reads the time (unix seconds) from `clock` instead of the system clock.
    pub fn clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Reads the chain through `reader` to resolve settlements whose outcome is unknown: an
    /// authorization found used is recorded settled with its transaction, and one still unused
    /// after its `validBefore` is recorded `expired_unsettled` (only then may a resend get a
    /// fresh challenge). Without a reader, an unknown outcome stays `settlement_pending` until
    /// the facilitator gives a definite answer. A [`LocalFacilitator`](crate::facilitator::LocalFacilitator)
    /// with an RPC URL is a reader; so is an
    #[cfg_attr(
        feature = "chain",
        doc = "[`RpcChainReader`](crate::schemes::exact_evm::chain::RpcChainReader)"
    )]
    #[cfg_attr(not(feature = "chain"), doc = "`RpcChainReader` (feature `chain`)")]
    /// next to an HTTP facilitator.
    pub fn chain_reader(mut self, reader: Arc<dyn ChainReader>) -> Self {
        self.chain = Some(reader);
        self
    }

    /// Reads Solana through `node` to resolve Solana settlements whose outcome is unknown: the
    /// transaction the facilitator named, found confirmed, is recorded settled; found failed, the
    /// payment is recorded `expired_unsettled` (nothing moved, and the same transaction can
    /// never land). Without it, such an outcome is reconciled by repeating the recorded
    /// `/settle` (the same signed bytes). `X402::from_env` reads `X402_SVM_RPC_URL`.
    ///
    /// ```no_run
    /// # fn run(config: x402_runtime::X402Config) -> Result<(), x402_runtime::ConfigError> {
    /// use x402_runtime::X402;
    /// use x402_runtime::schemes::exact_svm::rpc::SvmRpc;
    ///
    /// let x402 = X402::builder(config)
    ///     .svm_chain_reader(SvmRpc::new("https://api.mainnet-beta.solana.com")?)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "svm")]
    #[cfg_attr(docsrs, doc(cfg(feature = "svm")))]
    pub fn svm_chain_reader(mut self, node: crate::schemes::exact_svm::rpc::SvmRpc) -> Self {
        self.svm_chain = Some(node);
        self
    }

    /// How often the server looks for payments whose settlement outcome is unknown and
    /// reconciles them itself (each with its own backoff, from 5 s doubling to 10 min, 20
    /// attempts); every 5 s unless set. `None` turns it off: outcomes are then reconciled only
    /// on a resend, or by [`X402::reconcile_unresolved`].
    pub fn reconcile_interval(mut self, every: Option<Duration>) -> Self {
        self.reconcile_interval = every;
        self
    }

    /// Builds the paywall, connecting first to the configuration's
    /// [`database_url`](X402Config::database_url) (a [`PostgresStore`](crate::PostgresStore))
    /// when it has one and no store was given.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn build_async(mut self) -> Result<X402, ConfigError> {
        if let (None, Some(url)) = (&self.store, self.config.database_url()) {
            let clock = self.clock.clone();
            let store =
                crate::store::postgres::PostgresStore::connect_with_clock(url, move || clock())
                    .await
                    .map_err(|e| ConfigError::new(e.to_string()))?;
            self.store = Some(Arc::new(store));
        }
        self.build()
    }

    /// Builds the paywall.
    ///
    /// With a [`database_url`](X402Config::database_url) in the configuration and no
    /// [`store`](Self::store), this is an error: connecting to Postgres is async, which
    /// `build_async` (feature `postgres`) does.
    pub fn build(self) -> Result<X402, ConfigError> {
        #[cfg(feature = "postgres")]
        if self.store.is_none() && self.config.database_url().is_some() {
            return Err(ConfigError::new(
                "X402_DATABASE_URL is set: connecting to Postgres is async, so build the paywall \
                 with `X402::from_env_async().await` (or `X402::builder(config).build_async().await`), \
                 or pass `.store(PostgresStore::connect(url).await?)`",
            ));
        }
        let facilitator = match self.facilitator {
            Some(f) => f,
            None => default_facilitator(&self.config)?,
        };
        let facilitator: Arc<dyn Facilitator> = Arc::new(TimedFacilitator(facilitator));
        let registered = routes();
        let prices = pricing::resolve(&self.config, &registered)?;
        let clock = self.clock;
        let store: Arc<dyn ReplayStore> = match (self.store, self.config.store_path()) {
            (Some(store), _) => store,
            (None, Some(path)) => Arc::new(
                crate::store::file::FileStore::open_with(path, clock.clone())
                    .map_err(|e| ConfigError::new(e.to_string()))?,
            ),
            (None, None) => {
                let now = clock.clone();
                Arc::new(MemoryStore::with_clock(move || now()))
            }
        };
        let store: Arc<dyn ReplayStore> = Arc::new(TimedStore(store));
        let x402 = X402 {
            inner: Arc::new(Inner {
                config: self.config,
                facilitator,
                store,
                chain: self.chain,
                #[cfg(feature = "svm")]
                svm_chain: self.svm_chain,
                clock,
                reconciler: std::sync::Once::new(),
                reconcile_interval: self.reconcile_interval,
                backoff: Backoff::default(),
                prices,
                offers: DashMap::default(),
                quoted: DashMap::new(),
                challenges: DashMap::default(),
                cached_challenges: AtomicUsize::new(0),
                extensions: shaped_extensions(&registered),
                readiness: Readiness::default(),
                reconciling: DashMap::new(),
                identifiers: Identifiers::default(),
                lifecycle: Arc::default(),
            }),
        };
        // On a tokio runtime, unknown outcomes left by an earlier process are reconciled from
        // the start; otherwise from the first paid request.
        x402.start_reconciler();
        Ok(x402)
    }
}

/// The bazaar extension of every route whose types have shapes (feature `schemars`), until a
/// published document replaces it.
fn shaped_extensions(routes: &[&'static PaidRoute]) -> DashMap<usize, Arc<Map<String, Value>>> {
    let extensions = DashMap::new();
    for route in routes {
        if let Some(bazaar) = crate::route::shapes::bazaar(route) {
            let only = Map::from_iter([("bazaar".to_owned(), bazaar)]);
            extensions.insert(route.id(), Arc::new(only));
        }
    }
    extensions
}

/// The HTTP facilitator of the configuration's URL, or [`Facilitators`] over its URLs when it
/// names several (or lists for some networks): one client per distinct URL, each with the
/// configured headers and CDP key.
///
/// [`Facilitators`]: crate::facilitator::Facilitators
#[cfg(feature = "http-facilitator")]
fn default_facilitator(config: &X402Config) -> Result<Arc<dyn Facilitator>, ConfigError> {
    use crate::facilitator::{Facilitators, HttpFacilitator};
    let client = |url: &str| -> Result<Arc<dyn Facilitator>, ConfigError> {
        let builder = HttpFacilitator::builder(url)
            .timeouts(config.verify_timeout(), config.settle_timeout())
            .headers(config.facilitator_headers().clone());
        #[cfg(feature = "cdp")]
        let builder = match config.cdp_auth() {
            Some(cdp) => builder.auth(cdp.clone()),
            None => builder,
        };
        Ok(Arc::new(builder.build()?))
    };
    let mut networks = config.network_facilitator_urls().peekable();
    if config.facilitator_urls().len() == 1 && networks.peek().is_none() {
        return client(config.facilitator_url());
    }
    let mut clients: Vec<(String, Arc<dyn Facilitator>)> = Vec::new();
    let mut shared = |url: &str| -> Result<Arc<dyn Facilitator>, ConfigError> {
        if let Some((_, made)) = clients.iter().find(|(u, _)| u == url) {
            return Ok(made.clone());
        }
        let made = client(url)?;
        clients.push((url.to_owned(), made.clone()));
        Ok(made)
    };
    let mut builder = Facilitators::builder()
        .cooldown(config.facilitator_cooldown())
        .supported_timeout(config.verify_timeout() / 2);
    for url in config.facilitator_urls() {
        builder = builder.facilitator_arc(shared(url)?);
    }
    for (network, urls) in networks {
        for url in urls {
            builder = builder.network_facilitator_arc(network, shared(url)?);
        }
    }
    Ok(Arc::new(builder.build()?))
}

#[cfg(not(feature = "http-facilitator"))]
fn default_facilitator(_: &X402Config) -> Result<Arc<dyn Facilitator>, ConfigError> {
    Err(ConfigError::new(
        "no facilitator: enable the `http-facilitator` feature or call .facilitator(…) on the builder",
    ))
}

/// Why [`X402::check_facilitator`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartupError {
    /// `/supported` could not be read.
    Facilitator(FacilitatorError),
    /// The facilitator does not support some offers: `(x402 version, network)` pairs.
    Unsupported(Vec<(u8, String)>),
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::Facilitator(e) => {
                write!(f, "cannot read the facilitator's /supported: {e}")
            }
            StartupError::Unsupported(missing) => {
                f.write_str("the facilitator does not support the scheme `exact` for:")?;
                for (version, network) in missing {
                    write!(f, " v{version} {network};")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for StartupError {}

impl X402 {
    /// A paywall with the default parts for `config`: the HTTP facilitator at its URL, and as
    /// the replay store a [`FileStore`](crate::FileStore) at its
    /// [`store_path`](X402Config::store_path) when it has one (as [`X402Config::from_env`]
    /// gives by default), else a [`MemoryStore`]. No chain reader; see [`X402::builder`] for
    /// other parts.
    pub fn new(config: X402Config) -> Result<X402, ConfigError> {
        X402::builder(config).build()
    }

    /// [`X402::new`] with [`X402Config::from_env`]. With the `chain` feature, an RPC URL in
    /// `X402_RPC_URL` (or `X402_RPC_URL_<chain id>`) also gives the paywall a chain reader
    /// ([`chain_reader`](X402Builder::chain_reader)), so that unknown settlement outcomes are
    /// resolved from the token contract.
    ///
    /// With `X402_DATABASE_URL` set this is an error: use [`X402::from_env_async`] (feature
    /// `postgres`), which connects to it.
    pub fn from_env() -> Result<X402, ConfigError> {
        X402::env_builder()?.build()
    }

    /// [`X402::from_env`], connecting first to the PostgreSQL store and ledger at
    /// `X402_DATABASE_URL` when it is set (a [`PostgresStore`](crate::PostgresStore), in place
    /// of the file at `X402_STORE_PATH`).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// // X402_PAY_TO=0x… X402_DATABASE_URL=postgres://x402:secret@127.0.0.1/shop
    /// let x402 = x402_runtime::X402::from_env_async().await?;
    /// # let _ = x402; Ok(()) }
    /// ```
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn from_env_async() -> Result<X402, ConfigError> {
        X402::env_builder()?.build_async().await
    }

    /// The builder [`X402::from_env`] builds: the configuration from the environment and,
    /// with the `chain` feature, a chain reader when an RPC URL is set.
    fn env_builder() -> Result<X402Builder, ConfigError> {
        let config = X402Config::from_env()?;
        #[cfg(feature = "chain")]
        let reader = crate::schemes::exact_evm::chain::RpcChainReader::from_env(config.networks())?;
        #[allow(unused_mut)]
        let mut builder = X402::builder(config);
        #[cfg(feature = "chain")]
        if let Some(reader) = reader {
            builder = builder.chain_reader(Arc::new(reader));
        }
        #[cfg(feature = "svm")]
        if let Some(url) = std::env::var("X402_SVM_RPC_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
        {
            let node = crate::schemes::exact_svm::rpc::SvmRpc::new(url.trim())?;
            builder = builder.svm_chain_reader(node);
        }
        Ok(builder)
    }

    /// The facilitator [`X402::new`] and [`X402::from_env`] talk to for `config`, built the same
    /// way (its URL, timeouts and whatever else the configuration says about it), without
    /// building a paywall: for tools that check a deployment before it starts, such as
    /// `x402 doctor`.
    pub fn facilitator_for(config: &X402Config) -> Result<Arc<dyn Facilitator>, ConfigError> {
        default_facilitator(config)
    }

    /// Starts a paywall with custom parts.
    pub fn builder(config: X402Config) -> X402Builder {
        X402Builder {
            config,
            facilitator: None,
            store: None,
            chain: None,
            #[cfg(feature = "svm")]
            svm_chain: None,
            clock: Arc::new(crate::base::unix_now),
            reconcile_interval: Some(DEFAULT_RECONCILE_INTERVAL),
        }
    }

    /// The layer that installs this paywall on a router: `Router::new()…​.layer(x402.layer())`.
    pub fn layer(&self) -> axum::Extension<X402> {
        axum::Extension(self.clone())
    }

    /// The configuration.
    pub fn config(&self) -> &X402Config {
        &self.inner.config
    }

    /// The facilitator.
    pub fn facilitator(&self) -> &Arc<dyn Facilitator> {
        &self.inner.facilitator
    }

    pub(crate) fn now(&self) -> u64 {
        (self.inner.clock)()
    }

    /// Sets the `extensions` every 402 of `route` carries from now on (for example `bazaar`,
    /// which `Discovery` derives from the published OpenAPI document), replacing those set
    /// before. With the `schemars` feature a route starts with the `bazaar` extension of its
    /// types' shapes, if they have any. Meant for startup: the route's cached challenges are dropped and
    /// rebuilt with the new extensions.
    ///
    /// An entry under `"payment-identifier"` also turns the extension on for the route (its
    /// `info.required` is read; see [`identifier`](crate::server::identifier) and
    /// [`declare_payment_identifier`](Self::declare_payment_identifier)); without one it is off.
    pub fn set_route_extensions(&self, route: &'static PaidRoute, extensions: Map<String, Value>) {
        match identifier::declared(&extensions) {
            Some(required) => {
                self.inner.identifiers.routes.insert(route.id(), required);
            }
            None => {
                self.inner.identifiers.routes.remove(&route.id());
            }
        }
        self.inner
            .extensions
            .insert(route.id(), Arc::new(extensions));
        let cached = &self.inner.cached_challenges;
        // A quoted route's offers hold its challenges: dropped, rebuilt on the next quote.
        self.inner.quoted.retain(|(id, ..), offers| {
            if *id == route.id() {
                cached.fetch_sub(offers.challenges.len(), Ordering::Relaxed);
            }
            *id != route.id()
        });
        if let Some((_, dropped)) = self.inner.challenges.remove(&route.id()) {
            self.inner
                .cached_challenges
                .fetch_sub(dropped.len(), Ordering::Relaxed);
        }
    }

    /// Declares the `payment-identifier` extension on `route` (idempotent resends: the same id
    /// with the same payment gets the recorded response, with another payment a 409), keeping
    /// the route's other extensions; with `required`, a payment without an id is refused with
    /// `400 payment_identifier_required`. The route's 402 advertises it as
    /// `extensions["payment-identifier"] = {info: {required}, schema}`. The ids and recorded
    /// responses are held in memory, per process; see [`identifier`](crate::server::identifier).
    ///
    /// ```no_run
    /// # fn run(x402: &x402_runtime::X402) {
    /// for route in x402_runtime::routes() {
    ///     x402.declare_payment_identifier(route, false);
    /// }
    /// # }
    /// ```
    pub fn declare_payment_identifier(&self, route: &'static PaidRoute, required: bool) {
        let mut extensions = self
            .route_extensions(route)
            .map(|current| (*current).clone())
            .unwrap_or_default();
        extensions.insert(
            identifier::PAYMENT_IDENTIFIER.to_owned(),
            identifier::extension(required),
        );
        self.set_route_extensions(route, extensions);
    }

    /// The extensions set for `route` with [`set_route_extensions`](Self::set_route_extensions)
    /// (or, until then, its shapes' `bazaar`).
    pub fn route_extensions(&self, route: &'static PaidRoute) -> Option<Arc<Map<String, Value>>> {
        self.inner
            .extensions
            .get(&route.id())
            .map(|found| found.clone())
    }

    /// Checks that every registered paid route has at least one offer under this configuration.
    pub fn check_routes(&self) -> Result<(), ConfigError> {
        let settle_budget = self
            .config()
            .settle_timeout()
            .as_secs()
            .saturating_add(VALID_BEFORE_MARGIN);
        let mut problems: Vec<String> = routes()
            .into_iter()
            .filter_map(|route| self.route_offers(route).err().map(|e| e.to_string()))
            .collect();
        for route in routes() {
            let window = route
                .max_timeout_seconds()
                .unwrap_or(self.config().max_timeout_seconds());
            if u64::from(window) <= settle_budget {
                problems.push(format!(
                    "{} ({}:{}): max_timeout_seconds = {window} leaves no time to settle: payments \
                     must stay valid for the settle timeout plus 6 s ({settle_budget} s); raise \
                     max_timeout_seconds or lower the settle timeout",
                    route.handler(),
                    route.file(),
                    route.line()
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::new(problems.join("\n")))
        }
    }

    /// Whether the facilitator's `/supported` has answered. Until it has, paid requests get
    /// `503 facilitator_unavailable` with `Retry-After` before anything is verified; it is asked
    /// on the first paid request and again at most every 5 s while it fails.
    pub(crate) async fn facilitator_ready(&self) -> bool {
        let readiness = &self.inner.readiness;
        if readiness.ready.load(Ordering::Acquire) {
            return true;
        }
        let mut last_failure = readiness.last_failure.lock().await;
        if readiness.ready.load(Ordering::Acquire) {
            return true;
        }
        if last_failure.is_some_and(|at| at.elapsed() < SUPPORTED_RETRY) {
            return false;
        }
        let answer = tokio::time::timeout(
            self.config().verify_timeout(),
            self.inner.facilitator.supported(),
        )
        .await;
        let failure = match answer {
            Ok(Ok(supported)) => {
                let _ = readiness.supported.set(supported);
                readiness.ready.store(true, Ordering::Release);
                return true;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer in time".to_owned(),
        };
        tracing::warn!(
            "x402: the facilitator's /supported failed ({failure}); paid requests answer 503"
        );
        *last_failure = Some(Instant::now());
        false
    }

    /// Every network something is offered on: the configuration's, then those only routes name
    /// (`#[paid(networks = [...])]`), in order.
    fn offered_networks(&self) -> Vec<String> {
        let configured = self.config().networks().iter().map(|n| n.caip2.clone());
        with_route_networks(configured.collect())
    }

    /// Reads the facilitator's `/supported` and checks it supports `exact` on every network
    /// offered (the configuration's and the routes' own), for v2. What it read is kept (an
    /// `upto` offer names the facilitator it lists), even when a network is missing.
    pub async fn check_facilitator(&self) -> Result<SupportedResponse, StartupError> {
        let supported = self
            .inner
            .facilitator
            .supported()
            .await
            .map_err(StartupError::Facilitator)?;
        let _ = self.inner.readiness.supported.set(supported.clone());
        self.inner.readiness.ready.store(true, Ordering::Release);
        self.warn_unsettled_upto(&supported);
        check_networks(supported, &self.offered_networks())
    }

    /// Logs each network an `upto` route is offered on where `supported` names no `upto`
    /// facilitator: payments there are refused until the facilitator settles `upto`.
    fn warn_unsettled_upto(&self, supported: &SupportedResponse) {
        for route in routes()
            .into_iter()
            .filter(|r| r.pricing().upto().is_some())
        {
            let Ok(offers) = self.route_offers(route) else {
                continue;
            };
            for offer in &offers.offers {
                let network = &offer.network.caip2;
                if crate::schemes::upto_evm::facilitator_address(supported, network).is_none() {
                    tracing::warn!(
                        route = route.handler(),
                        network = %network,
                        "x402: the facilitator does not settle `upto` here; this route's payments on this network are refused until it does"
                    );
                }
            }
        }
    }

    /// Reads `facilitator`'s `/supported` and checks it supports a scheme of this crate
    /// (`exact`) on each of `networks` (CAIP-2), for v2: the check of
    /// [`check_facilitator`](Self::check_facilitator), for a facilitator and networks given
    /// directly.
    pub async fn check_supported(
        facilitator: &dyn Facilitator,
        networks: &[String],
    ) -> Result<SupportedResponse, StartupError> {
        let supported = facilitator
            .supported()
            .await
            .map_err(StartupError::Facilitator)?;
        check_networks(supported, networks)
    }
}

/// Whether `network` is a Solana one on which `supported` names no fee payer (its offers cannot
/// be paid).
fn names_no_fee_payer(supported: &SupportedResponse, network: &str) -> bool {
    #[cfg(feature = "svm")]
    if network.starts_with("solana:") {
        return crate::schemes::exact_svm::fee_payer(supported, network).is_none();
    }
    let _ = (supported, network);
    false
}

/// `supported`, if it lists a scheme of this crate on each of `networks` (v2), with the fee payer
/// a Solana offer names.
fn check_networks(
    supported: SupportedResponse,
    networks: &[String],
) -> Result<SupportedResponse, StartupError> {
    let missing: Vec<(u8, String)> = networks
        .iter()
        .filter(|network| {
            !crate::schemes::all()
                .iter()
                .any(|scheme| supported.supports(2, scheme.name(), network))
                || names_no_fee_payer(&supported, network)
        })
        .map(|network| (2, network.clone()))
        .collect();
    if missing.is_empty() {
        Ok(supported)
    } else {
        Err(StartupError::Unsupported(missing))
    }
}
