//! `facilitator` and `facilitator/networks`: the facilitator `X402::from_env` would talk to
//! (built by `X402::facilitator_for`, so whatever the configuration says about it is used)
//! answers `/supported`, accepts the credentials, and supports `exact` on every network.

use std::time::Instant;

use x402_runtime::{FacilitatorError, StartupError, X402, X402Config};

use super::report::redact_url;
use super::{Check, TIMEOUT};

const REACHED: &str = "facilitator";
const NETWORKS: &str = "facilitator/networks";

/// Both checks, in order.
pub(super) async fn check(config: &X402Config) -> Vec<Check> {
    let url = redact_url(config.facilitator_url());
    let facilitator = match X402::facilitator_for(config) {
        Ok(facilitator) => facilitator,
        Err(e) => {
            return vec![
                Check::fail(
                    REACHED,
                    format!("cannot build the facilitator client: {e}"),
                    "correct the facilitator settings the message names",
                ),
                Check::skipped(NETWORKS, "no facilitator client"),
            ];
        }
    };
    let networks: Vec<String> = config.networks().iter().map(|n| n.caip2.clone()).collect();
    let started = Instant::now();
    let answer =
        tokio::time::timeout(TIMEOUT, X402::check_supported(&*facilitator, &networks)).await;
    let elapsed = started.elapsed().as_millis();
    let unread = |why: &str| Check::skipped(NETWORKS, why);
    match answer {
        Err(_) => vec![
            Check::fail(
                REACHED,
                format!(
                    "{url}: /supported did not answer within {} s",
                    TIMEOUT.as_secs()
                ),
                "check that the facilitator at X402_FACILITATOR_URL is up and reachable from \
                 this host (firewall, proxy, DNS)",
            ),
            unread("the facilitator did not answer"),
        ],
        Ok(Ok(_)) => vec![
            answered(&url, elapsed),
            Check::pass(
                NETWORKS,
                format!("`exact` (x402 v2) on {}", networks.join(", ")),
            ),
        ],
        Ok(Err(StartupError::Unsupported(missing))) => {
            let missing: Vec<String> = missing.into_iter().map(|(_, network)| network).collect();
            vec![
                answered(&url, elapsed),
                Check::fail(
                    NETWORKS,
                    format!(
                        "{url} does not support `exact` (x402 v2) on {}",
                        missing.join(", ")
                    ),
                    "use a facilitator that supports these networks (X402_FACILITATOR_URL), or \
                     take them out of X402_NETWORK",
                ),
            ]
        }
        Ok(Err(StartupError::Facilitator(e))) => {
            vec![refused(&url, &e), unread("/supported could not be read")]
        }
        Ok(Err(e)) => vec![
            Check::fail(REACHED, format!("{url}: {e}"), "check X402_FACILITATOR_URL"),
            unread("/supported could not be read"),
        ],
    }
}

fn answered(url: &str, elapsed: u128) -> Check {
    Check::pass(
        REACHED,
        format!("{url} answered /supported in {elapsed} ms"),
    )
}

/// What went wrong reading `/supported`, told apart: unreachable, no answer in time, the
/// credentials refused (401, 403), not found (404), or another bad answer.
pub(super) fn refused(url: &str, error: &FacilitatorError) -> Check {
    match error {
        FacilitatorError::Unreachable(_) => Check::fail(
            REACHED,
            format!("{url}: {error}"),
            "check X402_FACILITATOR_URL (scheme, host, port) and that the facilitator runs and \
             is reachable from this host",
        ),
        FacilitatorError::Timeout => Check::fail(
            REACHED,
            format!("{url}: {error}"),
            "check that the facilitator at X402_FACILITATOR_URL is up and not overloaded",
        ),
        _ => match error.http_status() {
            Some(401 | 403) => Check::fail(
                REACHED,
                format!("{url} refused the credentials: {error}"),
                "check the facilitator credentials: X402_FACILITATOR_HEADERS (e.g. \
                 `Authorization: Bearer …`), or CDP_API_KEY_ID and CDP_API_KEY_SECRET for \
                 Coinbase's facilitator; missing, wrong, expired or for another account",
            ),
            Some(404) => Check::fail(
                REACHED,
                format!("{url} has no /supported: {error}"),
                "X402_FACILITATOR_URL is the facilitator's base URL (/supported, /verify and \
                 /settle are appended to it): check its path",
            ),
            _ => Check::fail(
                REACHED,
                format!("{url}: {error}"),
                "check that X402_FACILITATOR_URL points to an x402 facilitator",
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    #[test]
    fn auth_refusals_are_told_apart_from_unreachable() {
        let url = "http://127.0.0.1:9";
        let bad = |text: &str| FacilitatorError::BadResponse(text.to_owned());
        let auth = refused(url, &bad("/supported answered HTTP 401 Unauthorized"));
        assert_eq!(auth.status, Status::Fail);
        assert!(auth.detail.contains("refused the credentials"), "{auth:?}");
        assert!(
            auth.fix
                .as_deref()
                .is_some_and(|f| f.contains("credentials"))
        );
        let forbidden = refused(url, &bad("/supported answered HTTP 403 Forbidden"));
        assert!(forbidden.detail.contains("refused the credentials"));
        let missing = refused(url, &bad("/supported answered HTTP 404 Not Found"));
        assert!(missing.detail.contains("has no /supported"), "{missing:?}");
        let down = refused(url, &FacilitatorError::Unreachable("refused".into()));
        assert!(down.detail.contains("unreachable"), "{down:?}");
        assert!(!down.detail.contains("credentials"));
        let slow = refused(url, &FacilitatorError::Timeout);
        assert!(slow.detail.contains("in time"), "{slow:?}");
        let other = refused(
            url,
            &bad("/supported answered HTTP 500 Internal Server Error"),
        );
        assert!(
            other
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("x402 facilitator"))
        );
    }
}
