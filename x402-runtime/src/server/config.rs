//! Configuration: who gets paid, on which networks, through which facilitator.
//!
//! Build it in code with [`X402Config::builder`] or read it from the environment with
//! [`X402Config::from_env`]:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `X402_PAY_TO` | recipient address, EIP-55 checksummed | required with an EVM network |
//! | `X402_SVM_PAY_TO` | recipient wallet on Solana, base58 (the owner, not a token account; feature `svm`) | required with a Solana network |
//! | `X402_SVM_RPC_URL` | a Solana JSON-RPC node the server reads unknown Solana outcomes from (feature `svm`; read by [`X402::from_env`](crate::X402::from_env)) | none |
//! | `X402_NETWORK` | CAIP-2 network ids, comma-separated, preferred first: `eip155:<chain id>`, and with feature `svm` `solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp` (mainnet) or `solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1` (devnet) | `eip155:84532` |
//! | `X402_FACILITATOR_URL` | facilitator base URL; several, comma-separated, are tried in order (see [`Facilitators`](crate::facilitator::Facilitators)) | `https://x402.org/facilitator` (with CDP keys: the CDP facilitator) |
//! | `X402_FACILITATOR_URL_<chain id>` | the facilitators of one network (e.g. `X402_FACILITATOR_URL_8453`), comma-separated, in place of `X402_FACILITATOR_URL` for its payments | the default list |
//! | `X402_FACILITATOR_HEADERS` | headers sent on every facilitator call: `Name: value` entries separated by `;` or newlines | none |
//! | `CDP_API_KEY_ID`, `CDP_API_KEY_SECRET` | a Coinbase CDP API key: every facilitator call carries a JWT signed with it (feature `cdp`) | none |
//! | `X402_FACILITATOR_COOLDOWN` | seconds a failed facilitator is skipped when there are several | `30` |
//! | `X402_PUBLIC_URL` | public origin used in resource URLs (behind a proxy) | the request's `Host` |
//! | `X402_TOKENS` | other ERC-20s, paid through Permit2: `SYMBOL[:DECIMALS]@CAIP2=ADDRESS`, comma-separated (see [`X402ConfigBuilder::token`]) | none |
//! | `X402_PRICES` | prices set for this deployment, `route=price` comma-separated (a route is its operation id or `METHOD /path`; see [`X402ConfigBuilder::price`]) | the attributes' prices |
//! | `X402_PAY_PAGE` | `off` answers browsers with the JSON 402 too (see [`PayPage`]) | `on` |
//! | `X402_PAY_PAGE_TITLE` | the pay page's title | `Paid resource` |
//! | `X402_DATABASE_URL` | PostgreSQL URL of a shared replay store and settlement ledger (feature `postgres`; connected by [`X402::from_env_async`](crate::X402)) | none |

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::Address;

use crate::base::ConfigError;
#[cfg(feature = "cdp")]
use crate::facilitator::CdpAuth;
use crate::facilitator::{DEFAULT_COOLDOWN, FacilitatorHeaders};
use crate::network::{AccountId, Asset, Network, SvmAddress};
use crate::page::{PayPage, Prepared};
use crate::price::Currency;

/// The public facilitator the reference SDKs default to (testnets only).
pub const DEFAULT_FACILITATOR_URL: &str = "https://x402.org/facilitator";
/// The default network: Base Sepolia.
pub const DEFAULT_NETWORK: &str = "eip155:84532";
/// Default `maxTimeoutSeconds` of an offer.
pub const DEFAULT_MAX_TIMEOUT_SECONDS: u32 = 60;

/// The clock difference with clients tolerated unless configured.
pub(crate) const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// How long what is known about a settlement is kept past the authorization's `validBefore`.
pub const DEFAULT_RECORD_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// The paywall's configuration.
#[derive(Clone, Debug)]
pub struct X402Config {
    pay_to: Option<Address>,
    svm_pay_to: Option<SvmAddress>,
    networks: Vec<Network>,
    assets: Vec<Asset>,
    facilitator_urls: Vec<String>,
    network_facilitators: Vec<(String, Vec<String>)>,
    facilitator_headers: FacilitatorHeaders,
    #[cfg(feature = "cdp")]
    cdp: Option<CdpAuth>,
    facilitator_cooldown: Duration,
    public_url: Option<String>,
    max_timeout_seconds: u32,
    verify_timeout: Duration,
    settle_timeout: Duration,
    clock_skew: Duration,
    record_retention: Duration,
    store_path: Option<PathBuf>,
    #[cfg(feature = "postgres")]
    database_url: Option<DatabaseUrl>,
    prices: Vec<(String, String)>,
    pay_page: Option<Arc<Prepared>>,
}

/// A database URL, which may carry a password: never shown by `Debug`.
#[cfg(feature = "postgres")]
#[derive(Clone)]
struct DatabaseUrl(String);

#[cfg(feature = "postgres")]
impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(..)")
    }
}

/// Where `X402::from_env` keeps its settlement record unless `X402_STORE_PATH` says otherwise.
pub const DEFAULT_STORE_PATH: &str = "x402-payments.redb";

impl X402Config {
    /// Starts a configuration in code.
    pub fn builder() -> X402ConfigBuilder {
        X402ConfigBuilder::default()
    }

    /// Reads `X402_PAY_TO`, `X402_NETWORK`, `X402_FACILITATOR_URL`, `X402_PUBLIC_URL` and
    /// the other variables in the table above.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut builder = X402Config::builder();
        if let Some(pay_to) = lookup("X402_PAY_TO").filter(|p| !p.trim().is_empty()) {
            builder = builder.pay_to(pay_to.trim());
        }
        if let Some(pay_to) = lookup("X402_SVM_PAY_TO").filter(|p| !p.trim().is_empty()) {
            builder = builder.svm_pay_to(pay_to.trim());
        }
        if let Some(networks) = lookup("X402_NETWORK") {
            for network in networks.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                builder = builder.network(network);
            }
        }
        builder = read_facilitators(builder, &lookup)?;
        if let Some(url) = lookup("X402_PUBLIC_URL").filter(|u| !u.trim().is_empty()) {
            builder = builder.public_url(url.trim());
        }
        if let Some(seconds) = lookup("X402_RECORD_RETENTION") {
            let seconds: u64 = seconds.trim().parse().map_err(|_| {
                ConfigError::new(format!(
                    "X402_RECORD_RETENTION `{seconds}` is not a whole number of seconds (e.g. 86400 for a day)"
                ))
            })?;
            builder = builder.record_retention(Duration::from_secs(seconds));
        }
        if let Some(prices) = lookup("X402_PRICES") {
            builder = read_prices(builder, &prices)?;
        }
        if let Some(tokens) = lookup("X402_TOKENS") {
            builder = read_tokens(builder, &tokens)?;
        }
        builder = read_pay_page(builder, &lookup)?;
        match lookup("X402_STORE_PATH").map(|p| p.trim().to_owned()) {
            Some(path) if path == "memory" => {}
            Some(path) if !path.is_empty() => builder = builder.store_path(path),
            _ => builder = builder.store_path(DEFAULT_STORE_PATH),
        }
        builder = read_database_url(builder, &lookup)?;
        builder.build()
    }

    /// The address payments on EVM networks go to (`None` when only Solana is offered).
    pub fn pay_to(&self) -> Option<Address> {
        self.pay_to
    }

    /// The wallet payments on Solana go to (their associated token accounts of the token).
    pub fn svm_pay_to(&self) -> Option<SvmAddress> {
        self.svm_pay_to
    }

    /// The recipient of payments on `network`: [`pay_to`](Self::pay_to) on EVM,
    /// [`svm_pay_to`](Self::svm_pay_to) on Solana.
    pub fn pay_to_on(&self, network: &Network) -> Option<AccountId> {
        if network.is_evm() {
            self.pay_to.map(AccountId::Evm)
        } else {
            self.svm_pay_to.map(AccountId::Svm)
        }
    }

    /// The networks offered, preferred first.
    pub fn networks(&self) -> &[Network] {
        &self.networks
    }

    /// The facilitator base URL: the first of [`facilitator_urls`](Self::facilitator_urls).
    pub fn facilitator_url(&self) -> &str {
        &self.facilitator_urls[0]
    }

    /// The facilitators for networks without a list of their own, in the order they are tried.
    pub fn facilitator_urls(&self) -> &[String] {
        &self.facilitator_urls
    }

    /// The networks (CAIP-2) with a facilitator list of their own, and their lists.
    pub fn network_facilitator_urls(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.network_facilitators
            .iter()
            .map(|(network, urls)| (network.as_str(), urls.as_slice()))
    }

    /// The headers sent on every facilitator call (`Debug` shows their names only).
    pub fn facilitator_headers(&self) -> &FacilitatorHeaders {
        &self.facilitator_headers
    }

    /// The CDP API key every facilitator call is signed with, if one is configured.
    #[cfg(feature = "cdp")]
    pub fn cdp_auth(&self) -> Option<&CdpAuth> {
        self.cdp.as_ref()
    }

    /// How long a failed facilitator is skipped when there are several.
    pub fn facilitator_cooldown(&self) -> Duration {
        self.facilitator_cooldown
    }

    /// The public origin resource URLs are built from, if set.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    /// Default `maxTimeoutSeconds` of an offer.
    pub fn max_timeout_seconds(&self) -> u32 {
        self.max_timeout_seconds
    }

    /// Timeout of one `/verify` call.
    pub fn verify_timeout(&self) -> Duration {
        self.verify_timeout
    }

    /// Timeout of one `/settle` call.
    pub fn settle_timeout(&self) -> Duration {
        self.settle_timeout
    }

    /// How long settlement outcomes are kept past the authorization's `validBefore`.
    pub fn record_retention(&self) -> Duration {
        self.record_retention
    }

    /// Tolerated clock difference with clients when bounding `validBefore`.
    pub fn clock_skew(&self) -> Duration {
        self.clock_skew
    }

    /// The file of the durable settlement record, if one is configured (otherwise payments are
    /// recorded in memory only).
    pub fn store_path(&self) -> Option<&Path> {
        self.store_path.as_deref()
    }

    /// The PostgreSQL URL of the shared store and ledger, if one is configured
    /// (`X402_DATABASE_URL`).
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_ref().map(|u| u.0.as_str())
    }

    /// The pay page browsers get instead of the JSON 402, unless it is off.
    pub(crate) fn pay_page(&self) -> Option<&Prepared> {
        self.pay_page.as_deref()
    }

    /// The prices set for this deployment, `(route, price)` as given, in order: see
    /// [`X402ConfigBuilder::price`]. The paywall resolves them against the registered routes
    /// when it is built.
    pub fn prices(&self) -> impl Iterator<Item = (&str, &str)> {
        self.prices.iter().map(|(r, p)| (r.as_str(), p.as_str()))
    }

    /// The token that carries `currency` on `network`: a configured asset, else the built-in one.
    pub fn asset(&self, network: &Network, currency: Currency) -> Option<Asset> {
        self.configured_asset(network, currency)
    }

    /// The tokens added by the configuration ([`X402ConfigBuilder::asset`],
    /// [`X402ConfigBuilder::token`], `X402_TOKENS`), in the order added.
    pub fn assets(&self) -> &[Asset] {
        &self.assets
    }

    fn configured_asset(&self, network: &Network, currency: Currency) -> Option<Asset> {
        self.assets
            .iter()
            .find(|a| a.network == network.caip2 && a.currency == currency)
            .cloned()
            .or_else(|| Asset::builtin(network, currency))
    }
}

/// Builds an [`X402Config`]; mistakes are reported by [`build`](Self::build).
#[derive(Debug, Default)]
#[must_use]
pub struct X402ConfigBuilder {
    pay_to: Option<String>,
    svm_pay_to: Option<String>,
    networks: Vec<String>,
    assets: Vec<Asset>,
    facilitator_urls: Vec<String>,
    network_facilitators: Vec<(String, Vec<String>)>,
    facilitator_headers: FacilitatorHeaders,
    #[cfg(feature = "cdp")]
    cdp: Option<CdpAuth>,
    facilitator_cooldown: Option<Duration>,
    error: Option<ConfigError>,
    public_url: Option<String>,
    max_timeout_seconds: Option<u32>,
    verify_timeout: Option<Duration>,
    settle_timeout: Option<Duration>,
    clock_skew: Option<Duration>,
    record_retention: Option<Duration>,
    store_path: Option<PathBuf>,
    #[cfg(feature = "postgres")]
    database_url: Option<DatabaseUrl>,
    prices: Vec<(String, String)>,
    pay_page: Option<PayPage>,
    without_pay_page: bool,
}

impl X402ConfigBuilder {
    /// The recipient address on EVM networks, EIP-55 checksummed (required when an EVM
    /// network is offered, as the default Base Sepolia is).
    pub fn pay_to(mut self, address: impl Into<String>) -> Self {
        self.pay_to = Some(address.into());
        self
    }

    /// The recipient wallet on Solana, base58 (required when a Solana network is offered; needs
    /// the feature `svm`). Name the wallet that owns the token account, not the token account:
    /// payments arrive at its associated token account of the token, which must exist.
    pub fn svm_pay_to(mut self, address: impl Into<String>) -> Self {
        self.svm_pay_to = Some(address.into());
        self
    }

    /// Adds a network (CAIP-2, e.g. `eip155:8453`); each becomes one offer per route, in the
    /// order added. Without any, Base Sepolia is offered.
    pub fn network(mut self, caip2: impl Into<String>) -> Self {
        self.networks.push(caip2.into());
        self
    }

    /// Accepts the ERC-20 `symbol` (with `decimals`) at `address` on `network`, paid through
    /// Permit2 (see [`Asset::erc20`]): a route priced in `symbol`
    /// (`#[paid(currency = "USDT")]`) is offered in it there. The environment's equivalent is
    /// `X402_TOKENS=USDT@eip155:1=0xdAC17F958D2ee523a2206206994597C13D831ec7` (`SYMBOL:DECIMALS@…`
    /// for a ticker `#[paid]` does not know).
    ///
    /// ```
    /// use x402_runtime::X402Config;
    ///
    /// let config = X402Config::builder()
    ///     .pay_to("0x209693Bc6afc0C5328bA36FaF03C514EF312287C")
    ///     .network("eip155:1")
    ///     .token("eip155:1", "0xdAC17F958D2ee523a2206206994597C13D831ec7", "USDT", 6)
    ///     .build()
    ///     .unwrap();
    /// # let _ = config;
    /// ```
    pub fn token(mut self, network: &str, address: &str, symbol: &str, decimals: u8) -> Self {
        match parse_token(network, address, symbol, decimals) {
            Ok(asset) => self.asset(asset),
            Err(e) => {
                self.error.get_or_insert(e);
                self
            }
        }
    }

    /// Adds or replaces the token used for its currency on its network (for tokens or networks
    /// missing from the built-in table, or a local chain).
    pub fn asset(mut self, asset: Asset) -> Self {
        self.assets
            .retain(|a| !(a.network == asset.network && a.currency == asset.currency));
        self.assets.push(asset);
        self
    }

    /// The facilitator base URL (replacing any set before). With the
    /// [`fallback_facilitator_url`](Self::fallback_facilitator_url)s after it, the list for
    /// networks without one of their own.
    pub fn facilitator_url(mut self, url: impl Into<String>) -> Self {
        self.facilitator_urls = vec![url.into()];
        self
    }

    /// Adds a facilitator tried after those set before, when they fail (see
    /// [`Facilitators`](crate::facilitator::Facilitators): `/settle` of a payment is never sent to
    /// two). `X402_FACILITATOR_URL=https://a,https://b` sets the same list.
    pub fn fallback_facilitator_url(mut self, url: impl Into<String>) -> Self {
        if self.facilitator_urls.is_empty() {
            self.facilitator_urls
                .push(DEFAULT_FACILITATOR_URL.to_owned());
        }
        self.facilitator_urls.push(url.into());
        self
    }

    /// Adds a facilitator to the list of `network` (CAIP-2): that network's payments go to its
    /// own list, in the order added, instead of the default one
    /// (`X402_FACILITATOR_URL_<chain id>`).
    pub fn network_facilitator_url(
        mut self,
        network: impl Into<String>,
        url: impl Into<String>,
    ) -> Self {
        let network = network.into().trim().to_owned();
        let url = url.into();
        match self
            .network_facilitators
            .iter_mut()
            .find(|(n, _)| *n == network)
        {
            Some((_, urls)) => urls.push(url),
            None => self.network_facilitators.push((network, vec![url])),
        }
        self
    }

    /// Sends this header on every facilitator call (to every facilitator configured here). The
    /// value is a secret: marked sensitive, never logged nor shown by `Debug`.
    pub fn facilitator_header(mut self, name: &str, value: &str) -> Self {
        match std::mem::take(&mut self.facilitator_headers).insert(name, value) {
            Ok(headers) => self.facilitator_headers = headers,
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Sends these headers on every facilitator call (`X402_FACILITATOR_HEADERS`).
    pub fn facilitator_headers(mut self, headers: FacilitatorHeaders) -> Self {
        self.facilitator_headers = std::mem::take(&mut self.facilitator_headers).extend(headers);
        self
    }

    /// Signs every facilitator call with this Coinbase CDP API key (a JWT per request, see
    /// [`CdpAuth`]); without a facilitator URL set, the CDP facilitator is used.
    #[cfg(feature = "cdp")]
    pub fn cdp_api_key(mut self, auth: CdpAuth) -> Self {
        self.cdp = Some(auth);
        self
    }

    /// How long a facilitator that failed is skipped when there are several; 30 s unless set
    /// (`X402_FACILITATOR_COOLDOWN`, in seconds).
    pub fn facilitator_cooldown(mut self, cooldown: Duration) -> Self {
        self.facilitator_cooldown = Some(cooldown);
        self
    }

    /// The public origin (`https://api.example.com`) used to build absolute resource URLs.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Default `maxTimeoutSeconds` (routes may override it); 60 unless set.
    pub fn max_timeout_seconds(mut self, seconds: u32) -> Self {
        self.max_timeout_seconds = Some(seconds);
        self
    }

    /// Timeout of one `/verify` call; 10 s unless set.
    pub fn verify_timeout(mut self, timeout: Duration) -> Self {
        self.verify_timeout = Some(timeout);
        self
    }

    /// Timeout of one `/settle` call; 30 s unless set.
    pub fn settle_timeout(mut self, timeout: Duration) -> Self {
        self.settle_timeout = Some(timeout);
        self
    }

    /// Tolerated clock difference with clients; 60 s unless set.
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = Some(skew);
        self
    }

    /// How long the record keeps what it knows about a settlement (settled with its
    /// transaction, outcome unknown, expired unsettled) past the authorization's `validBefore`,
    /// so that a late resend is answered from it; 24 h unless set (`X402_RECORD_RETENTION`,
    /// in seconds). A durable record grows by about 200 bytes per payment for this long.
    pub fn record_retention(mut self, retention: Duration) -> Self {
        self.record_retention = Some(retention);
        self
    }

    /// Keeps settlement outcomes in a file (a [`FileStore`](crate::FileStore)) so that they
    /// survive a restart. Without it, [`X402::builder`](crate::X402::builder) records payments
    /// in memory.
    pub fn store_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.store_path = Some(path.into());
        self
    }

    /// Keeps payments in PostgreSQL at `url` (a [`PostgresStore`](crate::PostgresStore),
    /// feature `postgres`): the replay store shared by every process and the settlement
    /// ledger. Connecting is async: build the paywall with
    /// [`X402::from_env_async`](crate::X402::from_env_async) or
    /// [`X402Builder::build_async`](crate::X402Builder::build_async). The URL is never shown by
    /// `Debug`.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(DatabaseUrl(url.into()));
        self
    }

    /// Sets the price of one route for this deployment (staging cheaper than production, a
    /// price change without a rebuild), in place of its `#[paid(price = "…")]`. `route` is the
    /// route's operation id (`"weather"`) or its method and path (`"GET /weather"`); `price` is
    /// written as in the attribute and in the route's currency (`"0.002"`, `"$0.002"` for
    /// USDC). Setting a route again replaces its price. The paywall checks each one when it is
    /// built ([`X402::builder`](crate::X402::builder)): a route that matches no paid handler, or
    /// a price the attribute would refuse, is an error. The 402, the OpenAPI document and the
    /// discovery endpoints show the price set here, and the startup log says which prices were
    /// set. `X402_PRICES` sets them from the environment: `weather=0.002,GET /forecast=0.02`.
    ///
    /// ```
    /// use x402_runtime::X402Config;
    ///
    /// let config = X402Config::builder()
    ///     .pay_to("0x209693Bc6afc0C5328bA36FaF03C514EF312287C")
    ///     .price("GET /weather", "0.002")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.prices().collect::<Vec<_>>(), [("GET /weather", "0.002")]);
    /// assert!(X402Config::builder()
    ///     .pay_to("0x209693Bc6afc0C5328bA36FaF03C514EF312287C")
    ///     .price("weather", "1e-3")
    ///     .build()
    ///     .is_err());
    /// ```
    pub fn price(mut self, route: impl Into<String>, price: impl Into<String>) -> Self {
        let route = route.into().trim().to_owned();
        self.prices.retain(|(r, _)| *r != route);
        self.prices.push((route, price.into().trim().to_owned()));
        self
    }

    /// How the pay page looks (title, colours, logo): the page a browser gets instead of the
    /// JSON 402. It is on by default with [`PayPage::new`]'s look.
    pub fn pay_page(mut self, page: PayPage) -> Self {
        self.pay_page = Some(page);
        self.without_pay_page = false;
        self
    }

    /// Answers browsers with the JSON 402 too, as agents (`X402_PAY_PAGE=off`). One route can
    /// opt out alone with `#[paid(pay_page = false)]`.
    pub fn without_pay_page(mut self) -> Self {
        self.without_pay_page = true;
        self
    }

    /// Validates everything and builds the configuration.
    pub fn build(self) -> Result<X402Config, ConfigError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let networks = checked_networks(self.networks, &self.assets)?;
        let (pay_to, svm_pay_to) = checked_recipients(self.pay_to, self.svm_pay_to, &networks)?;
        #[cfg(feature = "cdp")]
        let default_url = if self.cdp.is_some() {
            crate::facilitator::CDP_FACILITATOR_URL
        } else {
            DEFAULT_FACILITATOR_URL
        };
        #[cfg(not(feature = "cdp"))]
        let default_url = DEFAULT_FACILITATOR_URL;
        let (facilitator_urls, network_facilitators) = checked_facilitators(
            self.facilitator_urls,
            self.network_facilitators,
            default_url,
        )?;
        let public_url = match self.public_url {
            Some(url) => {
                check_http_url(&url, "public URL")?;
                Some(url.trim_end_matches('/').to_owned())
            }
            None => None,
        };
        let max_timeout_seconds = self
            .max_timeout_seconds
            .unwrap_or(DEFAULT_MAX_TIMEOUT_SECONDS);
        if max_timeout_seconds == 0 {
            return Err(ConfigError::new("max_timeout_seconds must be at least 1"));
        }
        check_prices(&self.prices)?;
        let pay_page = if self.without_pay_page {
            None
        } else {
            Some(self.pay_page.unwrap_or_default().prepare()?)
        };
        Ok(X402Config {
            pay_to,
            svm_pay_to,
            networks,
            assets: self.assets,
            facilitator_urls,
            network_facilitators,
            facilitator_headers: self.facilitator_headers,
            #[cfg(feature = "cdp")]
            cdp: self.cdp,
            facilitator_cooldown: self.facilitator_cooldown.unwrap_or(DEFAULT_COOLDOWN),
            public_url,
            max_timeout_seconds,
            verify_timeout: self.verify_timeout.unwrap_or(Duration::from_secs(10)),
            settle_timeout: self.settle_timeout.unwrap_or(Duration::from_secs(30)),
            clock_skew: self.clock_skew.unwrap_or(DEFAULT_CLOCK_SKEW),
            record_retention: self.record_retention.unwrap_or(DEFAULT_RECORD_RETENTION),
            store_path: self.store_path,
            #[cfg(feature = "postgres")]
            database_url: self.database_url,
            prices: self.prices,
            pay_page,
        })
    }
}

/// The networks (the default when none is named): CAIP-2 EVM ids, each once, and every custom
/// asset on one of them.
fn checked_networks(texts: Vec<String>, assets: &[Asset]) -> Result<Vec<Network>, ConfigError> {
    let texts = if texts.is_empty() {
        vec![DEFAULT_NETWORK.to_owned()]
    } else {
        texts
    };
    let mut networks: Vec<Network> = Vec::new();
    for text in &texts {
        let network = offered_network(text, |text| {
            format!(
                "network `{text}` is not a CAIP-2 id this build offers: write `eip155:<chain id>`, \
                 e.g. `eip155:8453` for Base{}",
                if cfg!(feature = "svm") {
                    ", or a Solana cluster's (`solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp`, devnet \
                     `solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1`)"
                } else {
                    ""
                }
            )
        })?;
        if networks.contains(&network) {
            return Err(ConfigError::new(format!(
                "network `{text}` is listed twice"
            )));
        }
        networks.push(network);
    }
    for asset in assets {
        if !networks.iter().any(|n| n.caip2 == asset.network) {
            return Err(ConfigError::new(format!(
                "asset {} is on `{}`, which is not a configured network: add .network(\"{}\")",
                asset.address, asset.network, asset.network
            )));
        }
    }
    Ok(networks)
}

/// The network `text` names: EVM, or Solana with the feature `svm` (without it a Solana network
/// is refused with the feature it needs); any other text with `not_caip2`'s message.
fn offered_network(
    text: &str,
    not_caip2: impl FnOnce(&str) -> String,
) -> Result<Network, ConfigError> {
    match Network::from_caip2(text) {
        Some(network) if network.is_evm() || cfg!(feature = "svm") => Ok(network),
        Some(network) => Err(ConfigError::new(format!(
            "network `{}` is a Solana network: this build pays on EVM networks only (Solana \
             payments need x402-runtime's `svm` feature, not in this version)",
            network.caip2
        ))),
        None => Err(ConfigError::new(not_caip2(text))),
    }
}

/// `networks`, then the networks only routes name (`#[paid(networks = [...])]`), each once and
/// in order: every network something is offered on.
pub(crate) fn with_route_networks(mut networks: Vec<String>) -> Vec<String> {
    for route in crate::route::routes() {
        for network in route.networks() {
            if !networks.iter().any(|n| n == network) {
                networks.push((*network).to_owned());
            }
        }
    }
    networks
}

/// The recipients: the EVM one when an EVM network is offered (or set), the Solana one when a
/// Solana network is offered (or set).
fn checked_recipients(
    evm: Option<String>,
    svm: Option<String>,
    networks: &[Network],
) -> Result<(Option<Address>, Option<SvmAddress>), ConfigError> {
    let evm = match evm {
        Some(text) => Some(checked_pay_to(text)?),
        None if networks.iter().any(Network::is_evm) => {
            return Err(ConfigError::new(
                "no recipient: call .pay_to(\"0x…\") or set X402_PAY_TO",
            ));
        }
        None => None,
    };
    let svm = match (svm, networks.iter().find(|n| !n.is_evm())) {
        (Some(text), _) => Some(checked_svm_pay_to(&text)?),
        (None, Some(network)) => {
            return Err(ConfigError::new(format!(
                "network `{}` needs a Solana recipient: call .svm_pay_to(\"<base58 wallet>\") or \
                 set X402_SVM_PAY_TO to the wallet (not a token account) that receives payments",
                network.caip2
            )));
        }
        (None, None) => None,
    };
    Ok((evm, svm))
}

/// The Solana recipient: 32 bytes of base58, not the all-zero (System program) address.
fn checked_svm_pay_to(text: &str) -> Result<SvmAddress, ConfigError> {
    let pay_to: SvmAddress = text.trim().parse().map_err(|_| {
        ConfigError::new(format!(
            "svm_pay_to `{text}` is not a Solana address: write the wallet's base58 address (32 \
             bytes)"
        ))
    })?;
    if pay_to.0 == [0; 32] {
        return Err(ConfigError::new(
            "svm_pay_to is the System program's address; payments to it are lost",
        ));
    }
    Ok(pay_to)
}

/// The EVM recipient: EIP-55 checksummed, not the zero address.
fn checked_pay_to(text: String) -> Result<Address, ConfigError> {
    let pay_to = Address::parse_checksummed(&text, None).map_err(|_| {
        ConfigError::new(format!(
            "pay_to `{text}` is not an EIP-55 checksummed address: copy the address with its \
             mixed-case checksum exactly as your wallet shows it"
        ))
    })?;
    if pay_to == Address::ZERO {
        return Err(ConfigError::new(
            "pay_to is the zero address; payments to it are burnt",
        ));
    }
    Ok(pay_to)
}

/// The default facilitator list (`default_url` when empty) and the networks' lists, checked.
#[allow(clippy::type_complexity)]
fn checked_facilitators(
    urls: Vec<String>,
    networks: Vec<(String, Vec<String>)>,
    default_url: &str,
) -> Result<(Vec<String>, Vec<(String, Vec<String>)>), ConfigError> {
    let urls = if urls.is_empty() {
        vec![default_url.to_owned()]
    } else {
        checked_urls(urls)?
    };
    let mut checked = Vec::with_capacity(networks.len());
    for (text, list) in networks {
        let network = offered_network(&text, |text| {
            format!(
                "the facilitators are set for `{text}`, which is not a CAIP-2 id this build \
                 offers: write `eip155:<chain id>`"
            )
        })?;
        checked.push((network.caip2, checked_urls(list)?));
    }
    Ok((urls, checked))
}

/// Facilitator URLs, checked, without a trailing `/`.
fn checked_urls(urls: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let mut checked: Vec<String> = Vec::with_capacity(urls.len());
    for url in urls {
        check_http_url(&url, "facilitator URL")?;
        let url = url.trim_end_matches('/').to_owned();
        if checked.contains(&url) {
            return Err(ConfigError::new(format!(
                "the facilitator `{url}` is listed twice in one list"
            )));
        }
        checked.push(url);
    }
    Ok(checked)
}

/// The facilitators and their credentials: `X402_FACILITATOR_URL` (comma-separated, in order),
/// `X402_FACILITATOR_URL_<chain id>` for each network offered, `X402_FACILITATOR_HEADERS`,
/// `X402_FACILITATOR_COOLDOWN`, `CDP_API_KEY_ID` and `CDP_API_KEY_SECRET`.
fn read_facilitators(
    mut builder: X402ConfigBuilder,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<X402ConfigBuilder, ConfigError> {
    let list = |text: &str| -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect()
    };
    if let Some(urls) = lookup("X402_FACILITATOR_URL") {
        builder.facilitator_urls = list(&urls);
    }
    let mut networks: Vec<String> = builder.networks.clone();
    if networks.is_empty() {
        networks.push(DEFAULT_NETWORK.to_owned());
    }
    for network in with_route_networks(networks) {
        let Some(chain_id) = Network::from_caip2(network.trim()).and_then(|n| n.chain_id()) else {
            continue;
        };
        if let Some(urls) = lookup(&format!("X402_FACILITATOR_URL_{chain_id}")) {
            for url in list(&urls) {
                builder = builder.network_facilitator_url(format!("eip155:{chain_id}"), url);
            }
        }
    }
    if let Some(text) = lookup("X402_FACILITATOR_HEADERS") {
        let headers = FacilitatorHeaders::parse(&text)
            .map_err(|e| ConfigError::new(format!("X402_FACILITATOR_HEADERS: {e}")))?;
        builder = builder.facilitator_headers(headers);
    }
    if let Some(seconds) = lookup("X402_FACILITATOR_COOLDOWN") {
        let seconds: u64 = seconds.trim().parse().map_err(|_| {
            ConfigError::new(format!(
                "X402_FACILITATOR_COOLDOWN `{seconds}` is not a whole number of seconds (e.g. 30)"
            ))
        })?;
        builder = builder.facilitator_cooldown(Duration::from_secs(seconds));
    }
    read_cdp(builder, lookup)
}

/// `CDP_API_KEY_ID` and `CDP_API_KEY_SECRET`: both or neither.
fn read_cdp(
    builder: X402ConfigBuilder,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<X402ConfigBuilder, ConfigError> {
    let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    match (set("CDP_API_KEY_ID"), set("CDP_API_KEY_SECRET")) {
        (None, None) => Ok(builder),
        (Some(_), None) => Err(ConfigError::new(
            "CDP_API_KEY_ID is set but CDP_API_KEY_SECRET is not: set both to the API key's id \
             and secret from the CDP portal",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            "CDP_API_KEY_SECRET is set but CDP_API_KEY_ID is not: set both to the API key's id \
             and secret from the CDP portal",
        )),
        #[cfg(feature = "cdp")]
        (Some(id), Some(secret)) => {
            let auth = CdpAuth::new(&id, &secret)
                .map_err(|e| ConfigError::new(format!("CDP_API_KEY_SECRET: {e}")))?;
            Ok(builder.cdp_api_key(auth))
        }
        #[cfg(not(feature = "cdp"))]
        (Some(_), Some(_)) => Err(ConfigError::new(
            "CDP_API_KEY_ID and CDP_API_KEY_SECRET are set but x402-runtime was built without \
             its `cdp` feature: add `features = [\"cdp\"]` to its dependency",
        )),
    }
}

/// `X402_DATABASE_URL`, which needs the `postgres` feature.
fn read_database_url(
    builder: X402ConfigBuilder,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<X402ConfigBuilder, ConfigError> {
    let Some(url) = lookup("X402_DATABASE_URL")
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
    else {
        return Ok(builder);
    };
    #[cfg(feature = "postgres")]
    return Ok(builder.database_url(url));
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (builder, url);
        Err(ConfigError::new(
            "X402_DATABASE_URL is set, but x402-runtime was built without its `postgres` feature: \
             add `features = [\"postgres\"]` to the x402-runtime dependency, or unset X402_DATABASE_URL",
        ))
    }
}

/// `X402_PAY_PAGE` (`on` or `off`) and `X402_PAY_PAGE_TITLE`.
fn read_pay_page(
    builder: X402ConfigBuilder,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<X402ConfigBuilder, ConfigError> {
    let on = match lookup("X402_PAY_PAGE").as_deref().map(str::trim) {
        None | Some("" | "on" | "true" | "1") => true,
        Some("off" | "false" | "0") => false,
        Some(other) => {
            return Err(ConfigError::new(format!(
                "X402_PAY_PAGE `{other}` is neither `on` nor `off`"
            )));
        }
    };
    if !on {
        return Ok(builder.without_pay_page());
    }
    match lookup("X402_PAY_PAGE_TITLE").filter(|t| !t.trim().is_empty()) {
        Some(title) => Ok(builder.pay_page(PayPage::new().title(title.trim()))),
        None => Ok(builder),
    }
}

/// `X402_PRICES`: `route=price` entries, comma-separated.
/// `X402_TOKENS`: `SYMBOL[:DECIMALS]@CAIP2=ADDRESS` entries, comma-separated.
fn read_tokens(
    mut builder: X402ConfigBuilder,
    text: &str,
) -> Result<X402ConfigBuilder, ConfigError> {
    let form = "write `SYMBOL@eip155:<chain id>=0x<address>` (with `SYMBOL:DECIMALS@…` for a \
                ticker other than USDC, EURC, USDT, DAI or PYUSD)";
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry.split_once('@').and_then(|(token, place)| {
            let (network, address) = place.split_once('=')?;
            let (symbol, decimals) = match token.split_once(':') {
                Some((symbol, decimals)) => (symbol, Some(decimals.parse::<u8>().ok()?)),
                None => (token, None),
            };
            Some((symbol.trim(), decimals, network.trim(), address.trim()))
        });
        let Some((symbol, decimals, network, address)) = parsed else {
            return Err(ConfigError::new(format!(
                "X402_TOKENS entry `{entry}` is not a token: {form}"
            )));
        };
        let decimals = decimals.or_else(|| known_decimals(symbol)).ok_or_else(|| {
            ConfigError::new(format!(
                "X402_TOKENS entry `{entry}`: the decimals of `{symbol}` are not known: {form}"
            ))
        })?;
        builder = builder.token(network, address, symbol, decimals);
    }
    Ok(builder)
}

/// The decimals of a ticker `#[paid]` knows.
fn known_decimals(symbol: &str) -> Option<u8> {
    Currency::from_symbol(symbol)
        .map(Currency::decimals)
        .or_else(|| {
            crate::price::KNOWN_TOKENS
                .iter()
                .find(|(known, _)| *known == symbol)
                .map(|(_, decimals)| *decimals)
        })
}

/// An ERC-20 as [`X402ConfigBuilder::token`] takes it, checked.
fn parse_token(
    network: &str,
    address: &str,
    symbol: &str,
    decimals: u8,
) -> Result<Asset, ConfigError> {
    let what = || format!("token `{symbol}` on `{network}`");
    let valid_symbol = !symbol.is_empty()
        && symbol.len() <= 11
        && symbol
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !valid_symbol {
        return Err(ConfigError::new(format!(
            "{}: the ticker must be 1 to 11 upper-case letters or digits, as `#[paid(currency = \
             \"…\")]` writes it",
            what()
        )));
    }
    if decimals > 36 {
        return Err(ConfigError::new(format!(
            "{}: {decimals} decimals is more than any price can use (at most 36)",
            what()
        )));
    }
    let network = offered_network(network, |network| {
        format!(
            "{}: `{network}` is not a CAIP-2 EVM id (`eip155:<chain id>`)",
            what()
        )
    })?;
    if !network.is_evm() {
        return Err(ConfigError::new(format!(
            "{}: other tokens are paid through Permit2, on EVM networks only (Solana offers its \
             USDC)",
            what()
        )));
    }
    let address =
        crate::schemes::exact_evm::payload::parse_address(address, "address").map_err(|_| {
            ConfigError::new(format!(
                "{}: `{address}` is not an address (0x + 40 hex digits, EIP-55 when mixed case)",
                what()
            ))
        })?;
    Ok(Asset::erc20(&network.caip2, address, symbol, decimals))
}

fn read_prices(
    mut builder: X402ConfigBuilder,
    text: &str,
) -> Result<X402ConfigBuilder, ConfigError> {
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((route, price)) = entry.rsplit_once('=') else {
            return Err(ConfigError::new(format!(
                "X402_PRICES entry `{entry}` has no `=`: write `route=price`, e.g. \
                 `weather=0.002` or `GET /weather=0.002`"
            )));
        };
        builder = builder.price(route, price);
    }
    Ok(builder)
}

/// What can be checked of the prices without the routes: a route named, a price the attribute's
/// grammar accepts (its currency's decimals are checked against the route, by the paywall).
fn check_prices(prices: &[(String, String)]) -> Result<(), ConfigError> {
    for (route, price) in prices {
        if route.is_empty() {
            return Err(ConfigError::new(format!(
                "the price `{price}` names no route: give the operation id or `METHOD /path`"
            )));
        }
        x402_price::Decimal::parse(price)
            .map_err(|why| ConfigError::new(format!("the price set for `{route}`: {why}")))?;
    }
    Ok(())
}

fn check_http_url(url: &str, what: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.is_empty() && !host.starts_with('/') && !url.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(ConfigError::new(format!(
            "{what} `{url}` must be an absolute http:// or https:// URL"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn a_database_url_needs_the_postgres_feature_and_is_never_shown() {
        let url = "postgres://shop:hunter2@127.0.0.1/payments";
        let read =
            X402Config::from_lookup(env(&[("X402_PAY_TO", PAY_TO), ("X402_DATABASE_URL", url)]));
        #[cfg(feature = "postgres")]
        {
            let config = read.expect("valid");
            assert_eq!(config.database_url(), Some(url));
            let shown = format!("{config:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
            let Err(sync) = crate::X402::builder(config).build() else {
                panic!("a database URL without a store is refused by the sync build");
            };
            assert!(sync.to_string().contains("from_env_async"), "{sync}");
        }
        #[cfg(not(feature = "postgres"))]
        {
            let refused = read.expect_err("needs the feature");
            assert!(
                refused.to_string().contains("`postgres` feature"),
                "{refused}"
            );
        }
        let blank =
            X402Config::from_lookup(env(&[("X402_PAY_TO", PAY_TO), ("X402_DATABASE_URL", " ")]));
        assert!(blank.is_ok(), "an empty variable is unset");
    }

    #[test]
    fn reads_the_environment_with_defaults() {
        let config = X402Config::from_lookup(env(&[("X402_PAY_TO", PAY_TO)])).expect("valid");
        assert_eq!(config.networks().len(), 1);
        assert_eq!(config.networks()[0].caip2, "eip155:84532");
        assert_eq!(config.facilitator_url(), DEFAULT_FACILITATOR_URL);
        assert_eq!(config.public_url(), None);

        let config = X402Config::from_lookup(env(&[
            ("X402_PAY_TO", PAY_TO),
            ("X402_NETWORK", "eip155:8453, eip155:84532"),
            ("X402_PUBLIC_URL", "https://api.example.com/"),
            ("X402_FACILITATOR_URL", "http://127.0.0.1:9/"),
        ]))
        .expect("valid");
        let ids: Vec<_> = config.networks().iter().map(|n| n.caip2.as_str()).collect();
        assert_eq!(ids, ["eip155:8453", "eip155:84532"]);
        assert_eq!(config.public_url(), Some("https://api.example.com"));
        assert_eq!(config.facilitator_url(), "http://127.0.0.1:9");
    }

    #[cfg(feature = "svm")]
    #[test]
    fn a_solana_network_needs_a_solana_recipient_and_no_evm_one() {
        const MERCHANT: &str = "EdmxWPmx2WH6WgFfTdu9xfkYf3k1g5wD1zccTVySEEh1";
        let devnet = crate::network::SOLANA_DEVNET;
        let config = X402Config::from_lookup(env(&[
            ("X402_NETWORK", devnet),
            ("X402_SVM_PAY_TO", MERCHANT),
        ]))
        .expect("a Solana-only configuration");
        assert_eq!(config.pay_to(), None);
        let network = &config.networks()[0];
        assert_eq!(
            config.pay_to_on(network).map(|a| a.to_string()).as_deref(),
            Some(MERCHANT)
        );
        let missing = X402Config::from_lookup(env(&[
            ("X402_PAY_TO", PAY_TO),
            ("X402_NETWORK", &format!("eip155:8453,{devnet}")),
        ]))
        .expect_err("no Solana recipient")
        .to_string();
        assert!(missing.contains("X402_SVM_PAY_TO"), "{missing}");
        assert!(missing.contains(devnet), "{missing}");
        let no_evm = X402Config::from_lookup(env(&[
            ("X402_SVM_PAY_TO", MERCHANT),
            ("X402_NETWORK", &format!("eip155:8453,{devnet}")),
        ]))
        .expect_err("no EVM recipient")
        .to_string();
        assert!(no_evm.contains("X402_PAY_TO"), "{no_evm}");
        for bad in [
            "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
            "11111111111111111111111111111111",
        ] {
            let refused = X402Config::builder()
                .network(devnet)
                .svm_pay_to(bad)
                .build()
                .expect_err("not a Solana wallet")
                .to_string();
            assert!(refused.contains("svm_pay_to"), "{refused}");
        }
    }

    #[cfg(not(feature = "svm"))]
    #[test]
    fn a_solana_network_is_refused_naming_the_feature_it_needs() {
        for network in [
            crate::network::SOLANA_DEVNET,
            crate::network::SOLANA_MAINNET,
        ] {
            let from_env =
                X402Config::from_lookup(env(&[("X402_PAY_TO", PAY_TO), ("X402_NETWORK", network)]))
                    .expect_err("no Solana scheme in this build")
                    .to_string();
            let built = X402Config::builder()
                .pay_to(PAY_TO)
                .network(network)
                .build()
                .expect_err("no Solana scheme in this build")
                .to_string();
            for refused in [from_env, built] {
                assert!(refused.contains(network), "{refused}");
                assert!(refused.contains("`svm` feature"), "{refused}");
            }
        }
        let unknown = X402Config::builder()
            .pay_to(PAY_TO)
            .network("solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z")
            .build()
            .expect_err("not a known network")
            .to_string();
        assert!(
            unknown.contains("not a CAIP-2 id this build offers"),
            "{unknown}"
        );
    }

    #[test]
    fn reads_several_facilitators_and_their_credentials() {
        let config = X402Config::from_lookup(env(&[
            ("X402_PAY_TO", PAY_TO),
            ("X402_NETWORK", "eip155:84532,eip155:8453"),
            (
                "X402_FACILITATOR_URL",
                "http://127.0.0.1:9/, http://127.0.0.1:10",
            ),
            (
                "X402_FACILITATOR_URL_8453",
                "https://a.example.com,https://b.example.com/",
            ),
            ("X402_FACILITATOR_URL_1", "https://unused.example.com"),
            (
                "X402_FACILITATOR_HEADERS",
                "Authorization: Bearer s3cret\nX-Team: pay",
            ),
            ("X402_FACILITATOR_COOLDOWN", "12"),
        ]))
        .expect("valid");
        assert_eq!(
            config.facilitator_urls(),
            ["http://127.0.0.1:9", "http://127.0.0.1:10"]
        );
        assert_eq!(config.facilitator_url(), "http://127.0.0.1:9");
        let routes: Vec<_> = config.network_facilitator_urls().collect();
        let mainnet = [
            "https://a.example.com".to_owned(),
            "https://b.example.com".to_owned(),
        ];
        assert_eq!(routes, [("eip155:8453", &mainnet[..])]);
        let names: Vec<_> = config.facilitator_headers().names().collect();
        assert_eq!(names, ["authorization", "x-team"]);
        assert_eq!(config.facilitator_cooldown(), Duration::from_secs(12));
        let shown = format!("{config:?}");
        assert!(
            shown.contains("authorization") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn refuses_bad_facilitator_settings_naming_the_variable() {
        let with = |name: &'static str, value: &'static str| {
            X402Config::from_lookup(env(&[("X402_PAY_TO", PAY_TO), (name, value)]))
                .expect_err("refused")
                .to_string()
        };
        let headers = with("X402_FACILITATOR_HEADERS", "Bearer s3cret");
        assert!(headers.contains("X402_FACILITATOR_HEADERS") && headers.contains("Name: value"));
        assert!(!headers.contains("s3cret"), "{headers}");
        assert!(with("X402_FACILITATOR_URL", "http://a.example.com,ftp://b").contains("ftp://b"));
        assert!(with("X402_FACILITATOR_COOLDOWN", "soon").contains("X402_FACILITATOR_COOLDOWN"));
        assert!(with("CDP_API_KEY_ID", "key").contains("CDP_API_KEY_SECRET is not"));
        assert!(with("CDP_API_KEY_SECRET", "s3cret").contains("CDP_API_KEY_ID is not"));
        let twice = X402Config::builder()
            .pay_to(PAY_TO)
            .facilitator_url("https://a.example.com")
            .fallback_facilitator_url("https://a.example.com/")
            .build()
            .expect_err("listed twice");
        assert!(twice.to_string().contains("twice"));
        let network = X402Config::builder()
            .pay_to(PAY_TO)
            .network_facilitator_url("base", "https://a.example.com")
            .build()
            .expect_err("not CAIP-2");
        assert!(network.to_string().contains("eip155:<chain id>"));
    }

    #[cfg(feature = "cdp")]
    #[test]
    fn a_cdp_key_signs_calls_and_defaults_to_the_cdp_facilitator() {
        use base64::Engine as _;
        let secret = base64::engine::general_purpose::STANDARD
            .encode(ed25519_dalek::SigningKey::from_bytes(&[3; 32]).to_keypair_bytes());
        let config = X402Config::from_lookup(env(&[
            ("X402_PAY_TO", PAY_TO),
            ("CDP_API_KEY_ID", "key-1"),
            ("CDP_API_KEY_SECRET", &secret),
        ]))
        .expect("valid");
        assert_eq!(
            config.facilitator_url(),
            crate::facilitator::CDP_FACILITATOR_URL
        );
        assert_eq!(config.cdp_auth().map(CdpAuth::key_id), Some("key-1"));
        assert!(!format!("{config:?}").contains(&secret[..16]));
        let bad = X402Config::from_lookup(env(&[
            ("X402_PAY_TO", PAY_TO),
            ("CDP_API_KEY_ID", "key-1"),
            ("CDP_API_KEY_SECRET", "bm90IDY0IGJ5dGVz"),
        ]))
        .expect_err("bad secret");
        let text = bad.to_string();
        assert!(text.starts_with("CDP_API_KEY_SECRET"), "{text}");
        assert!(!text.contains("bm90IDY0IGJ5dGVz"), "{text}");
    }

    #[test]
    fn refuses_bad_settings_with_the_fix() {
        let missing = X402Config::from_lookup(env(&[])).expect_err("missing");
        assert!(missing.to_string().contains("X402_PAY_TO"));
        let lower = X402Config::from_lookup(env(&[("X402_PAY_TO", &PAY_TO.to_lowercase())]));
        assert!(
            lower
                .expect_err("unchecksummed")
                .to_string()
                .contains("EIP-55")
        );
        let typo = "0x209693Bc6afc0C5328bA36FaF03C514EF312287c";
        assert!(X402Config::from_lookup(env(&[("X402_PAY_TO", typo)])).is_err());
        let bad_net =
            X402Config::from_lookup(env(&[("X402_PAY_TO", PAY_TO), ("X402_NETWORK", "base")]));
        assert!(
            bad_net
                .expect_err("v1 name")
                .to_string()
                .contains("eip155:<chain id>")
        );
        let bad_url = X402Config::from_lookup(env(&[
            ("X402_PAY_TO", PAY_TO),
            ("X402_PUBLIC_URL", "api.example.com"),
        ]));
        assert!(bad_url.is_err());
    }
}
