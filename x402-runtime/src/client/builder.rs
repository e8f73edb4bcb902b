//! [`X402ClientBuilder`]: the spending limits, networks, currencies, tokens, resend and wait
//! bounds, HTTP client and event hook an [`X402Client`] is built with.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::base::ConfigError;
use crate::network::{Asset, Network};
use crate::price::Currency;

use super::amount::parse_amount;
use super::pay::{ClientEvent, EventHook, X402Client};
use super::policy::{Limit, Policy};
use super::signer::PaymentSigner;

/// The Solana node: the one set, else [`SVM_RPC_URL_ENV`](super::SVM_RPC_URL_ENV); checked to
/// be a URL.
#[cfg(feature = "svm")]
fn svm_rpc_url(set: Option<String>) -> Result<Option<String>, ConfigError> {
    let url = set.or_else(|| {
        std::env::var(super::SVM_RPC_URL_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty())
    });
    if let Some(url) = &url {
        crate::schemes::exact_svm::rpc::SvmRpc::new(url)?;
    }
    Ok(url)
}

/// Builds an [`X402Client`].
pub struct X402ClientBuilder {
    signer: PaymentSigner,
    http: Option<reqwest::Client>,
    limits: Vec<(Limit, Currency, String)>,
    networks: Vec<String>,
    currencies: Vec<Currency>,
    assets: Vec<Asset>,
    resend_attempts: u32,
    max_wait: Option<Duration>,
    on_event: Option<EventHook>,
    #[cfg(feature = "svm")]
    svm_rpc_url: Option<String>,
}

impl X402ClientBuilder {
    /// The defaults: no limits, any network, every currency, a paid request sent at most 3 times
    /// when the connection fails, and the default wait.
    pub(super) fn new(signer: PaymentSigner) -> Self {
        X402ClientBuilder {
            signer,
            http: None,
            limits: Vec::new(),
            networks: Vec::new(),
            currencies: Vec::new(),
            assets: Vec::new(),
            resend_attempts: 3,
            max_wait: None,
            on_event: None,
            #[cfg(feature = "svm")]
            svm_rpc_url: None,
        }
    }

    /// The reqwest client to send requests with (default: 60 s timeout, 10 s connect timeout).
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The most one payment in `currency` may cost, in human units (`"0.01"`).
    pub fn max_per_request(mut self, currency: Currency, amount: &str) -> Self {
        self.limits
            .push((Limit::PerRequest, currency, amount.to_owned()));
        self
    }

    /// The most this client may sign in `currency` in total, in human units (`"0.50"`).
    pub fn budget(mut self, currency: Currency, amount: &str) -> Self {
        self.limits
            .push((Limit::Budget, currency, amount.to_owned()));
        self
    }

    /// Networks to pay on (CAIP-2 ids: `eip155:…`, and with feature `svm` the Solana clusters
    /// `solana:…`), most preferred first. Offers on other networks are refused. Default: any
    /// network with a known asset.
    pub fn networks<S: Into<String>>(mut self, networks: impl IntoIterator<Item = S>) -> Self {
        self.networks = networks.into_iter().map(Into::into).collect();
        self
    }

    /// Currencies to pay in, most preferred first. Default: every [`Currency`].
    pub fn currencies(mut self, currencies: impl IntoIterator<Item = Currency>) -> Self {
        self.currencies = currencies.into_iter().collect();
        self
    }

    /// Also pays in this token (the built-in table has Circle's USDC and EURC deployments).
    pub fn asset(mut self, asset: Asset) -> Self {
        self.assets.push(asset);
        self
    }

    /// How many times a paid request is sent when the connection fails (default 3).
    pub fn resend_attempts(mut self, attempts: u32) -> Self {
        self.resend_attempts = attempts.max(1);
        self
    }

    /// The most a call waits on one payment, in all, while the server answers
    /// `settlement_pending` or `payment_in_progress` (the same payment is resent after each
    /// `Retry-After`, at most 30 s each). When it is spent the call ends with
    /// [`ClientError::Unconfirmed`](super::ClientError::Unconfirmed) and the payment is kept: the
    /// next call of the same request resends it and waits again, as long again at most.
    ///
    /// Default: until 60 s past the authorization's `validBefore` (its validity window plus the
    /// time a server needs to prove on chain that an unused authorization is dead), at most 10
    /// minutes.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = Some(wait);
        self
    }

    /// The former name of [`max_wait`](Self::max_wait).
    #[deprecated(note = "use `max_wait`")]
    pub fn settlement_wait(self, wait: Duration) -> Self {
        self.max_wait(wait)
    }

    /// The Solana JSON-RPC node the client reads blockhashes and mints from before it signs a
    /// Solana payment (default: [`SVM_RPC_URL_ENV`](super::SVM_RPC_URL_ENV) when set, else the
    /// cluster's public endpoint).
    #[cfg(feature = "svm")]
    #[cfg_attr(docsrs, doc(cfg(feature = "svm")))]
    pub fn svm_rpc_url(mut self, url: &str) -> Self {
        self.svm_rpc_url = Some(url.to_owned());
        self
    }

    /// Calls `hook` on every [`ClientEvent`] (to show progress).
    pub fn on_event(mut self, hook: impl Fn(&ClientEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(hook));
        self
    }

    /// Checks the limits and networks and builds the client.
    pub fn build(self) -> Result<X402Client, ConfigError> {
        let mut max_per_request = HashMap::new();
        let mut budget = HashMap::new();
        for (kind, currency, text) in &self.limits {
            let amount = parse_amount(text, currency.decimals())
                .map_err(|e| ConfigError::new(format!("{currency} limit: {e}")))?;
            match kind {
                Limit::PerRequest => max_per_request.insert(*currency, amount),
                Limit::Budget => budget.insert(*currency, amount),
            };
        }
        let networks = self
            .networks
            .iter()
            .map(|n| {
                Network::from_caip2(n)
                    .filter(|n| n.is_evm() || cfg!(feature = "svm"))
                    .ok_or_else(|| {
                        ConfigError::new(format!("`{n}` is not a CAIP-2 id this client pays on"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .connect_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| ConfigError::new(format!("cannot build the HTTP client: {e}")))?,
        };
        let currencies = if self.currencies.is_empty() {
            Currency::ALL.to_vec()
        } else {
            self.currencies
        };
        let policy = Policy {
            max_per_request,
            budget,
            networks,
            currencies,
            assets: self.assets,
            resend_attempts: self.resend_attempts,
            max_wait: self.max_wait,
            #[cfg(feature = "svm")]
            svm_rpc_url: svm_rpc_url(self.svm_rpc_url)?,
        };
        Ok(X402Client::new(http, self.signer, policy, self.on_event))
    }
}
