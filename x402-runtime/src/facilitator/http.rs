//! The facilitator client over HTTP (reqwest with rustls).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::auth::{FacilitatorAuth, FacilitatorHeaders};
use super::{BoxFuture, Facilitator, FacilitatorError};
use crate::base::ConfigError;
use crate::proto::{FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse};

/// Largest facilitator answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// A facilitator reached over HTTP: `POST {base}/verify`, `POST {base}/settle`,
/// `GET {base}/supported`.
///
/// Every call is bounded: connect timeout, and a total timeout per endpoint. Answers are parsed
/// strictly; the body of every status is read, so a `settlement_pending` sent with HTTP 500 is
/// still recognised, while a success-looking body with an error status is a fault.
///
/// Credentials go with every call: static headers ([`header`](HttpFacilitatorBuilder::header))
/// and headers computed per request ([`auth`](HttpFacilitatorBuilder::auth), e.g. the CDP JWT).
/// `Debug` shows the header names, never their values.
///
/// ```no_run
/// use std::time::Duration;
/// use x402_runtime::facilitator::HttpFacilitator;
///
/// # fn run() -> Result<(), x402_runtime::ConfigError> {
/// let facilitator = HttpFacilitator::builder("https://facilitator.example.com")
///     .header("Authorization", "Bearer abc")
///     .timeouts(Duration::from_secs(5), Duration::from_secs(30))
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpFacilitator {
    base: String,
    verify: Endpoint,
    settle: Endpoint,
    client: reqwest::Client,
    verify_timeout: Duration,
    settle_timeout: Duration,
    headers: FacilitatorHeaders,
    auth: Option<Arc<dyn FacilitatorAuth>>,
}

/// Builds an [`HttpFacilitator`]; mistakes are reported by [`build`](Self::build).
#[must_use]
pub struct HttpFacilitatorBuilder {
    base: String,
    verify_timeout: Duration,
    settle_timeout: Duration,
    headers: FacilitatorHeaders,
    auth: Option<Arc<dyn FacilitatorAuth>>,
    error: Option<ConfigError>,
}

impl HttpFacilitatorBuilder {
    /// Sends this header on every call (a second value of the same name is sent too). The value
    /// is marked sensitive and never shown.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match std::mem::take(&mut self.headers).insert(name, value) {
            Ok(headers) => self.headers = headers,
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Sends these headers on every call.
    pub fn headers(mut self, headers: FacilitatorHeaders) -> Self {
        self.headers = std::mem::take(&mut self.headers).extend(headers);
        self
    }

    /// Adds the headers `auth` computes for each request (after the static ones), e.g. a
    #[cfg_attr(feature = "cdp", doc = "[`CdpAuth`](super::CdpAuth)")]
    #[cfg_attr(not(feature = "cdp"), doc = "`CdpAuth` (feature `cdp`)")]
    /// token. Replaces an earlier one.
    pub fn auth(mut self, auth: impl FacilitatorAuth) -> Self {
        self.auth = Some(Arc::new(auth));
        self
    }

    /// Timeouts of `/verify` (and `/supported`) and of `/settle`: 10 s and 30 s unless set.
    pub fn timeouts(mut self, verify: Duration, settle: Duration) -> Self {
        self.verify_timeout = verify;
        self.settle_timeout = settle;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<HttpFacilitator, ConfigError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(redirects())
            .build()
            .map_err(|e| ConfigError::new(format!("cannot create the facilitator client: {e}")))?;
        Ok(HttpFacilitator {
            verify: Endpoint::under(&self.base, "/verify"),
            settle: Endpoint::under(&self.base, "/settle"),
            base: self.base,
            client,
            verify_timeout: self.verify_timeout,
            settle_timeout: self.settle_timeout,
            headers: self.headers,
            auth: self.auth,
        })
    }
}

impl HttpFacilitator {
    /// Starts a client for the facilitator at `base_url` (a trailing `/` is ignored).
    pub fn builder(base_url: &str) -> HttpFacilitatorBuilder {
        HttpFacilitatorBuilder {
            base: base_url.trim_end_matches('/').to_owned(),
            verify_timeout: Duration::from_secs(10),
            settle_timeout: Duration::from_secs(30),
            headers: FacilitatorHeaders::new(),
            auth: None,
            error: None,
        }
    }

    /// A client for the facilitator at `base_url` (a trailing `/` is ignored), with a 10 s
    /// verify timeout and a 30 s settle timeout, without credentials.
    pub fn new(base_url: &str) -> Result<Self, FacilitatorError> {
        Self::with_timeouts(base_url, Duration::from_secs(10), Duration::from_secs(30))
    }

    /// A client with explicit timeouts for `/verify` (and `/supported`) and `/settle`, without
    /// credentials.
    pub fn with_timeouts(
        base_url: &str,
        verify_timeout: Duration,
        settle_timeout: Duration,
    ) -> Result<Self, FacilitatorError> {
        Self::builder(base_url)
            .timeouts(verify_timeout, settle_timeout)
            .build()
            .map_err(|e| FacilitatorError::Unreachable(e.to_string()))
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request with this client's credentials; an error when they cannot be computed (then
    /// nothing is sent).
    fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, FacilitatorError> {
        self.request_to(method, url, url)
    }

    /// [`request`](Self::request) to `target` (a URL already parsed, or its text), whose text is
    /// `url`.
    fn request_to(
        &self,
        method: reqwest::Method,
        target: impl reqwest::IntoUrl,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, FacilitatorError> {
        let mut request = self.client.request(method.clone(), target);
        if !self.headers.is_empty() {
            request = request.headers(self.headers.to_map());
        }
        if let Some(auth) = &self.auth {
            request = request.headers(auth.headers(&method, url)?);
        }
        Ok(request)
    }

    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), FacilitatorError> {
        let exchange = async {
            let mut response = request.send().await.map_err(classify)?;
            let status = response.status();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(classify)? {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(FacilitatorError::BadResponse("answer too large".into()));
                }
                body.extend_from_slice(&chunk);
            }
            Ok((status, body))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| FacilitatorError::Timeout)?
    }

    async fn post<T: DeserializeOwned>(
        &self,
        endpoint: &Endpoint,
        request: &FacilitatorRequest,
        timeout: Duration,
        accept_on_error: impl Fn(reqwest::StatusCode, &T) -> bool,
    ) -> Result<T, FacilitatorError> {
        let path = endpoint.path;
        let post = match &endpoint.url {
            Some(url) => self.request_to(reqwest::Method::POST, url.clone(), url.as_str())?,
            None => self.request(reqwest::Method::POST, &format!("{}{path}", self.base))?,
        }
        .json(request);
        let (status, body) = self.call(post, timeout).await?;
        let parsed = serde_json::from_slice::<T>(&body);
        match parsed {
            Ok(answer) if status.is_success() => Ok(answer),
            Ok(answer) if accept_on_error(status, &answer) => Ok(answer),
            Ok(_) => Err(FacilitatorError::BadResponse(format!(
                "{path} answered HTTP {status}{}",
                refused_credentials(status)
            ))),
            Err(e) if status.is_success() => Err(FacilitatorError::BadResponse(format!(
                "{path} answered invalid JSON: {e}"
            ))),
            Err(_) => Err(FacilitatorError::BadResponse(format!(
                "{path} answered HTTP {status}{}",
                refused_credentials(status)
            ))),
        }
    }
}

impl fmt::Debug for HttpFacilitator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpFacilitator")
            .field("base", &self.base)
            .field("verify_timeout", &self.verify_timeout)
            .field("settle_timeout", &self.settle_timeout)
            .field("headers", &self.headers)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// One POST endpoint of the facilitator: its path under the base URL, and that URL parsed once
/// when the client is built (a URL reqwest cannot parse is left to fail at each call, with
/// reqwest's own error).
#[derive(Clone)]
struct Endpoint {
    path: &'static str,
    url: Option<reqwest::Url>,
}

impl Endpoint {
    fn under(base: &str, path: &'static str) -> Self {
        Self {
            path,
            url: reqwest::Url::parse(&format!("{base}{path}")).ok(),
        }
    }
}

/// What to check when the facilitator refused the request's credentials.
fn refused_credentials(status: reqwest::StatusCode) -> &'static str {
    match status.as_u16() {
        401 | 403 => {
            " (the facilitator refused the credentials: check X402_FACILITATOR_HEADERS, or \
             CDP_API_KEY_ID and CDP_API_KEY_SECRET)"
        }
        _ => "",
    }
}

/// What a transport error means. A failed connection (refused, or timed out while connecting)
/// and a request that could not be built were never sent: `Unreachable`. A timeout after that
/// may have reached the facilitator.
/// Redirects are followed for `GET /supported` only, within its origin (a moved facilitator
/// still tells what it supports). A `/verify` or `/settle` is never redirected: one that was
/// processed before its redirect would look unanswered, and the credentials must not follow it
/// elsewhere.
fn redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().cloned();
        let follow = first.is_some_and(|first| {
            first.path().ends_with("/supported")
                && attempt.url().origin() == first.origin()
                && attempt.previous().len() < 5
        });
        if follow {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// Whether a `/settle` answer with an error status is still taken as the answer it says: a
/// refusal with a 4xx status, or `settlement_pending` with any. A 5xx that says `success: false`
/// otherwise may come after the transaction was sent, so it is a bad answer (outcome unknown).
fn settle_refusal(status: reqwest::StatusCode, answer: &SettleResponse) -> bool {
    !answer.success
        && (status.is_client_error()
            || answer.error_reason.as_deref() == Some(crate::proto::codes::SETTLEMENT_PENDING))
}

fn classify(error: reqwest::Error) -> FacilitatorError {
    if error.is_connect() || error.is_builder() {
        FacilitatorError::Unreachable(error.to_string())
    } else if error.is_timeout() {
        FacilitatorError::Timeout
    } else {
        FacilitatorError::BadResponse(error.to_string())
    }
}

impl Facilitator for HttpFacilitator {
    fn verify<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<VerifyResponse, FacilitatorError>> {
        Box::pin(self.post(
            &self.verify,
            request,
            self.verify_timeout,
            |_, v: &VerifyResponse| !v.is_valid,
        ))
    }

    fn settle<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<SettleResponse, FacilitatorError>> {
        Box::pin(self.post(&self.settle, request, self.settle_timeout, settle_refusal))
    }

    fn supported(&self) -> BoxFuture<'_, Result<SupportedResponse, FacilitatorError>> {
        Box::pin(async move {
            let url = format!("{}/supported", self.base);
            let get = self.request(reqwest::Method::GET, &url)?;
            let (status, body) = self.call(get, self.verify_timeout).await?;
            if !status.is_success() {
                return Err(FacilitatorError::BadResponse(format!(
                    "/supported answered HTTP {status}{}",
                    refused_credentials(status)
                )));
            }
            serde_json::from_slice(&body).map_err(|e| {
                FacilitatorError::BadResponse(format!("/supported answered invalid JSON: {e}"))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_header_names_only() {
        let facilitator = HttpFacilitator::builder("https://facilitator.example.com/")
            .header("Authorization", "Bearer s3cret")
            .headers(FacilitatorHeaders::parse("X-Api-Key: k3y").expect("valid"))
            .build()
            .expect("client");
        assert_eq!(facilitator.base_url(), "https://facilitator.example.com");
        let shown = format!("{facilitator:?}");
        assert!(
            shown.contains("authorization") && shown.contains("x-api-key"),
            "{shown}"
        );
        assert!(
            !shown.contains("s3cret") && !shown.contains("k3y"),
            "{shown}"
        );
        let bad = HttpFacilitator::builder("https://facilitator.example.com")
            .header("Bad Name", "v")
            .build();
        assert!(
            bad.expect_err("invalid name")
                .to_string()
                .contains("header name")
        );
    }
}
