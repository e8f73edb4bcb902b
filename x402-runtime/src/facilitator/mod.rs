//! The facilitator: the service that verifies payments and settles them on chain.
//!
//! The paywall talks to it through the [`Facilitator`] trait, so the HTTP client
//! ([`HttpFacilitator`]), an in-process facilitator or a test double plug in the same way.
//! Implementations report what the facilitator said; the paywall alone decides what counts as
//! success (a boolean `success: true` with a non-empty transaction, for the right payer,
//! network and amount).
//!
//! Credentials for a facilitator ([`FacilitatorHeaders`], the CDP JWT of `CdpAuth` with the
//! feature `cdp`, or any [`FacilitatorAuth`]) go with every call of an `HttpFacilitator`;
//! [`Facilitators`] puts several behind one, by network, with failover.

mod auth;
#[cfg(feature = "cdp")]
mod cdp;
mod failover;
#[cfg(feature = "http-facilitator")]
mod http;
#[cfg(feature = "local-facilitator")]
pub mod local;

use std::fmt;

pub use auth::{FacilitatorAuth, FacilitatorHeaders};
#[cfg(feature = "cdp")]
pub use cdp::{CDP_FACILITATOR_URL, CdpAuth};
pub use failover::{DEFAULT_COOLDOWN, Facilitators, FacilitatorsBuilder};
#[cfg(feature = "http-facilitator")]
pub use http::{HttpFacilitator, HttpFacilitatorBuilder};
#[cfg(feature = "local-facilitator")]
pub use local::{LocalFacilitator, LocalFacilitatorBuilder};

use crate::base::BoxFuture;
use crate::proto::{FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse};

/// A facilitator fault: anything other than a well-formed answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FacilitatorError {
    /// No answer within the timeout: `/verify` is answered 504; from `/settle` the outcome is
    /// unknown and answered `503 settlement_pending`.
    Timeout,
    /// The request did not reach the facilitator (the connection was refused, no RPC
    /// configured), so nothing can have moved: `/verify` is answered 502, and a first `/settle`
    /// 502 with the payment released, so that the same header can be resent.
    Unreachable(String),
    /// The answer was not what the protocol allows: wrong status, not JSON, wrong shape. From
    /// `/verify` it is answered 502; from `/settle` the outcome is unknown (money may have
    /// moved), so it is recorded as pending and answered `503 settlement_pending`.
    BadResponse(String),
}

impl fmt::Display for FacilitatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FacilitatorError::Timeout => f.write_str("the facilitator did not answer in time"),
            FacilitatorError::Unreachable(e) => write!(f, "the facilitator is unreachable: {e}"),
            FacilitatorError::BadResponse(e) => write!(f, "the facilitator answered badly: {e}"),
        }
    }
}

impl std::error::Error for FacilitatorError {}

/// What the HTTP client's [`FacilitatorError::BadResponse`] for an error status says before
/// the status: `/supported answered HTTP 401 Unauthorized`.
const ANSWERED_HTTP: &str = "answered HTTP";

impl FacilitatorError {
    /// The HTTP status the facilitator answered with, when the fault is an error status (for
    /// example 401 or 403 when it refused the credentials, 404 for a wrong base URL).
    ///
    /// ```
    /// use x402_runtime::FacilitatorError;
    ///
    /// let refused = FacilitatorError::BadResponse("/supported answered HTTP 401 Unauthorized".into());
    /// assert_eq!(refused.http_status(), Some(401));
    /// assert_eq!(FacilitatorError::Timeout.http_status(), None);
    /// let odd = FacilitatorError::BadResponse("/settle answered HTTP 5000".into());
    /// assert_eq!(odd.http_status(), None);
    /// ```
    pub fn http_status(&self) -> Option<u16> {
        let FacilitatorError::BadResponse(message) = self else {
            return None;
        };
        let (_, after) = message.split_once(ANSWERED_HTTP)?;
        let after = after.strip_prefix(' ')?;
        let code = after.get(..3)?;
        let status = code.parse().ok()?;
        (after.len() == 3 || after[3..].starts_with(' ')).then_some(status)
    }
}

/// Verifies and settles payments.
///
/// `verify` and `settle` receive our own requirements in the request, never the client's copy.
/// An invalid payment or a failed settlement is a normal answer (`is_valid: false`,
/// `success: false`), not an error; `settlement_pending` is a `success: false` answer whose
/// `error_reason` is `"settlement_pending"` and whose `transaction` names the transaction.
pub trait Facilitator: Send + Sync + 'static {
    /// `POST /verify`.
    fn verify<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<VerifyResponse, FacilitatorError>>;

    /// `POST /settle`.
    fn settle<'a>(
        &'a self,
        request: &'a FacilitatorRequest,
    ) -> BoxFuture<'a, Result<SettleResponse, FacilitatorError>>;

    /// `GET /supported`.
    fn supported(&self) -> BoxFuture<'_, Result<SupportedResponse, FacilitatorError>>;
}
