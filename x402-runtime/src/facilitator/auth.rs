//! Credentials sent to a facilitator: static headers, or headers computed for each request
//! (the Coinbase CDP JWT, feature `cdp`).
//!
//! Header values are secrets: they are marked sensitive (`HeaderValue::set_sensitive`), and
//! neither they nor the keys behind them appear in logs or in `Debug` output, which shows
//! header names only.

use std::fmt;

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::FacilitatorError;
use crate::base::ConfigError;

/// Computes the credentials of one request to a facilitator.
///
/// Called for every request with its method and full URL (`https://host/path/verify`), so a
/// credential may depend on the endpoint, as the CDP JWT does. An error means the request is not
/// sent: return [`FacilitatorError::Unreachable`], which tells the paywall nothing moved.
pub trait FacilitatorAuth: fmt::Debug + Send + Sync + 'static {
    /// The headers to add to this request.
    fn headers(&self, method: &http::Method, url: &str) -> Result<HeaderMap, FacilitatorError>;
}

/// Headers sent unchanged on every call to a facilitator (an API key, a bearer token).
///
/// Values are marked sensitive; `Debug` shows the names only.
///
/// ```
/// use x402_runtime::facilitator::FacilitatorHeaders;
///
/// let headers = FacilitatorHeaders::parse("Authorization: Bearer abc; X-Api-Key: k1").unwrap();
/// assert_eq!(headers.names().collect::<Vec<_>>(), ["authorization", "x-api-key"]);
/// assert!(!format!("{headers:?}").contains("abc"));
/// assert!(FacilitatorHeaders::parse("Authorization Bearer abc").is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FacilitatorHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// Headers the HTTP client writes itself, which configured headers may not replace.
const RESERVED: [HeaderName; 6] = [
    http::header::HOST,
    http::header::CONTENT_LENGTH,
    http::header::CONTENT_TYPE,
    http::header::TRANSFER_ENCODING,
    http::header::CONNECTION,
    http::header::UPGRADE,
];

impl FacilitatorHeaders {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `Name: value` entries separated by `;` or newlines (the syntax of
    /// `X402_FACILITATOR_HEADERS`). Spaces around names and values are ignored, empty entries
    /// are skipped; a value cannot contain `;` (add such a header with [`insert`](Self::insert)).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut headers = FacilitatorHeaders::new();
        let entries = text
            .split([';', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty());
        for (number, entry) in entries.enumerate() {
            let Some((name, value)) = entry.split_once(':') else {
                // The entry itself is not shown: it may be a bare token.
                return Err(ConfigError::new(format!(
                    "facilitator header entry {} has no `:`: write \
                     `Name: value`, several separated by `;` (e.g. `Authorization: Bearer <token>; \
                     X-Api-Key: <key>`)",
                    number + 1
                )));
            };
            headers = headers.insert(name.trim(), value.trim())?;
        }
        Ok(headers)
    }

    /// Adds a header (a second value of the same name is sent too). `Host`, `Content-Length`,
    /// `Content-Type`, `Transfer-Encoding`, `Connection` and `Upgrade` are refused: the client
    /// sets them. The value is marked
    /// sensitive; an invalid name or value is an error that names the header, not the value.
    pub fn insert(mut self, name: &str, value: &str) -> Result<Self, ConfigError> {
        // The text is not repeated: a mistyped entry may be a token.
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ConfigError::new(
                "a facilitator header name is not a valid HTTP header name: use letters, digits \
                 and `-` (e.g. `Authorization`, `X-Api-Key`), then `:` and the value",
            )
        })?;
        if RESERVED.contains(&name) {
            return Err(ConfigError::new(format!(
                "the facilitator header `{name}` is set by the HTTP client itself and cannot be \
                 configured"
            )));
        }
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            ConfigError::new(format!(
                "the value of the facilitator header `{name}` is not a valid HTTP header value: \
                 use visible ASCII characters and spaces only"
            ))
        })?;
        value.set_sensitive(true);
        self.headers.push((name, value));
        Ok(self)
    }

    /// Adds every header of `other`.
    pub fn extend(mut self, other: FacilitatorHeaders) -> Self {
        self.headers.extend(other.headers);
        self
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// The header names, lowercase, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().map(|(name, _)| name.as_str())
    }

    /// The headers as a map (values stay marked sensitive).
    pub fn to_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            map.append(name.clone(), value.clone());
        }
        map
    }
}

impl fmt::Debug for FacilitatorHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl FacilitatorAuth for FacilitatorHeaders {
    fn headers(&self, _: &http::Method, _: &str) -> Result<HeaderMap, FacilitatorError> {
        Ok(self.to_map())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_separated_by_semicolons_or_newlines() {
        let headers = FacilitatorHeaders::parse(
            " Authorization: Bearer a:b ;\nX-Api-Key:k1\n\n;x-api-key: k2 ",
        )
        .expect("valid");
        let map = headers.to_map();
        assert_eq!(map["authorization"], "Bearer a:b");
        let keys: Vec<_> = map.get_all("x-api-key").iter().collect();
        assert_eq!(keys, ["k1", "k2"]);
        assert!(map.values().all(HeaderValue::is_sensitive));
        assert!(FacilitatorHeaders::parse("  ").expect("empty").is_empty());
    }

    #[test]
    fn refuses_bad_syntax_with_the_fix_and_without_the_value() {
        let missing = FacilitatorHeaders::parse("Authorization Bearer s3cret").expect_err("no :");
        let text = missing.to_string();
        assert!(text.contains("Name: value"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        let bad_name = FacilitatorHeaders::parse("Bad Name: v").expect_err("space in name");
        assert!(bad_name.to_string().contains("header name"));
        // A token typed where the name goes is not echoed either.
        let token = FacilitatorHeaders::parse("Bearer sk_live_s3cret: x").expect_err("name");
        assert!(!token.to_string().contains("s3cret"), "{token}");
        for reserved in [
            "Host: evil.example",
            "content-length: 0",
            "Transfer-Encoding: x",
        ] {
            let refused = FacilitatorHeaders::parse(reserved).expect_err(reserved);
            assert!(
                refused.to_string().contains("set by the HTTP client"),
                "{refused}"
            );
        }
        let bad_value = FacilitatorHeaders::new()
            .insert("Authorization", "Bearer s3cret\u{7f}")
            .expect_err("control character");
        assert!(!bad_value.to_string().contains("s3cret"));
        assert!(bad_value.to_string().contains("authorization"));
    }

    #[test]
    fn debug_shows_names_only() {
        let headers = FacilitatorHeaders::parse("Authorization: Bearer s3cret").expect("valid");
        let shown = format!("{headers:?}");
        assert_eq!(shown, "[\"authorization\"]");
        let map = format!("{:?}", headers.to_map());
        assert!(!map.contains("s3cret"), "{map}");
    }
}
