//! The facilitator client over HTTP (reqwest with rustls).

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::{BoxFuture, Facilitator, FacilitatorError};
use crate::proto::{FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse};

/// Largest facilitator answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// A facilitator reached over HTTP: `POST {base}/verify`, `POST {base}/settle`,
/// `GET {base}/supported`.
///
/// Every call is bounded: connect timeout, and a total timeout per endpoint. Answers are parsed
/// strictly; the body of every status is read, so a `settlement_pending` sent with HTTP 500 is
/// still recognised, while a success-looking body with an error status is a fault.
#[derive(Clone, Debug)]
pub struct HttpFacilitator {
    base: String,
    client: reqwest::Client,
    verify_timeout: Duration,
    settle_timeout: Duration,
}

impl HttpFacilitator {
    /// A client for the facilitator at `base_url` (a trailing `/` is ignored), with a 10 s
    /// verify timeout and a 30 s settle timeout.
    pub fn new(base_url: &str) -> Result<Self, FacilitatorError> {
        Self::with_timeouts(base_url, Duration::from_secs(10), Duration::from_secs(30))
    }

    /// A client with explicit timeouts for `/verify` (and `/supported`) and `/settle`.
    pub fn with_timeouts(
        base_url: &str,
        verify_timeout: Duration,
        settle_timeout: Duration,
    ) -> Result<Self, FacilitatorError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| FacilitatorError::Unreachable(e.to_string()))?;
        Ok(HttpFacilitator {
            base: base_url.trim_end_matches('/').to_owned(),
            client,
            verify_timeout,
            settle_timeout,
        })
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
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
        path: &str,
        request: &FacilitatorRequest,
        timeout: Duration,
        accept_on_error: impl Fn(&T) -> bool,
    ) -> Result<T, FacilitatorError> {
        let url = format!("{}{path}", self.base);
        let (status, body) = self
            .call(self.client.post(url).json(request), timeout)
            .await?;
        let parsed = serde_json::from_slice::<T>(&body);
        match parsed {
            Ok(answer) if status.is_success() => Ok(answer),
            Ok(answer) if accept_on_error(&answer) => Ok(answer),
            Ok(_) => Err(FacilitatorError::BadResponse(format!(
                "{path} answered HTTP {status}"
            ))),
            Err(e) if status.is_success() => Err(FacilitatorError::BadResponse(format!(
                "{path} answered invalid JSON: {e}"
            ))),
            Err(_) => Err(FacilitatorError::BadResponse(format!(
                "{path} answered HTTP {status}"
            ))),
        }
    }
}

fn classify(error: reqwest::Error) -> FacilitatorError {
    if error.is_timeout() {
        FacilitatorError::Timeout
    } else if error.is_connect() {
        FacilitatorError::Unreachable(error.to_string())
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
            "/verify",
            request,
            self.verify_timeout,
            |v: &VerifyResponse| !v.is_valid,
        ))
    }

    fn settle<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<SettleResponse, FacilitatorError>> {
        Box::pin(self.post(
            "/settle",
            request,
            self.settle_timeout,
            |s: &SettleResponse| !s.success,
        ))
    }

    fn supported(&self) -> BoxFuture<'_, Result<SupportedResponse, FacilitatorError>> {
        Box::pin(async move {
            let url = format!("{}/supported", self.base);
            let (status, body) = self.call(self.client.get(url), self.verify_timeout).await?;
            if !status.is_success() {
                return Err(FacilitatorError::BadResponse(format!(
                    "/supported answered HTTP {status}"
                )));
            }
            serde_json::from_slice(&body).map_err(|e| {
                FacilitatorError::BadResponse(format!("/supported answered invalid JSON: {e}"))
            })
        })
    }
}
