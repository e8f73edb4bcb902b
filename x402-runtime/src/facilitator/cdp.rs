//! Coinbase CDP authentication: see [`CdpAuth`].

use std::fmt;
use std::sync::Once;

use base64::Engine as _;
use http::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::FacilitatorError;
use super::auth::FacilitatorAuth;
use crate::base::ConfigError;

/// The CDP facilitator's base URL.
pub const CDP_FACILITATOR_URL: &str = "https://api.cdp.coinbase.com/platform/v2/x402";

/// How long a token is valid, in seconds.
const TOKEN_LIFETIME: u64 = 120;

/// Signs each facilitator request with a Coinbase CDP API key.
///
/// The CDP facilitator (`https://api.cdp.coinbase.com/platform/v2/x402`) wants
/// `Authorization: Bearer <jwt>` on each call, the token made for that one request:
///
/// - header: `alg` = `EdDSA` (Ed25519 key) or `ES256` (EC P-256 key), `kid` = the key id,
///   `typ` = `JWT`, and a random `nonce` (16 bytes, hex);
/// - claims: `sub` = the key id, `iss` = `cdp`, `iat` = `nbf` = now, `exp` = now + 120 s, and
///   `uris` = `["POST api.cdp.coinbase.com/platform/v2/x402/settle"]`: the method, host (with a
///   port that is not the scheme's default) and path of the request.
///
/// `Debug` shows the key id and the algorithm, never the secret.
#[derive(Clone)]
pub struct CdpAuth {
    key_id: String,
    algorithm: Algorithm,
    key: EncodingKey,
}

/// The claims of a CDP token.
#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iss: &'a str,
    nbf: u64,
    iat: u64,
    exp: u64,
    uris: [String; 1],
}

impl CdpAuth {
    /// A signer for the key `key_id` (`CDP_API_KEY_ID`) with its secret (`CDP_API_KEY_SECRET`):
    /// either the base64 of 64 bytes (an Ed25519 seed followed by its public key), or a PEM
    /// `EC PRIVATE KEY` (or PKCS#8 `PRIVATE KEY`) on P-256, whose line breaks may be written
    /// `\n`. The error says which part is wrong, never the secret.
    pub fn new(key_id: &str, secret: &str) -> Result<CdpAuth, ConfigError> {
        let key_id = key_id.trim();
        if key_id.is_empty() {
            return Err(ConfigError::new("the CDP API key id is empty"));
        }
        let secret = secret.trim().replace("\\n", "\n");
        let (algorithm, key) = if secret.starts_with("-----BEGIN") {
            (Algorithm::ES256, ec_key(&secret)?)
        } else {
            (Algorithm::EdDSA, ed25519_key(&secret)?)
        };
        Ok(CdpAuth {
            key_id: key_id.to_owned(),
            algorithm,
            key,
        })
    }

    /// The key id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// `EdDSA` or `ES256`.
    pub fn algorithm(&self) -> &'static str {
        match self.algorithm {
            Algorithm::ES256 => "ES256",
            _ => "EdDSA",
        }
    }

    /// A token for one request (`POST`, `https://api.cdp.coinbase.com/platform/v2/x402/settle`),
    /// valid from now for 120 s.
    pub fn token(&self, method: &http::Method, url: &str) -> Result<String, FacilitatorError> {
        self.token_at(method, url, crate::base::unix_now())
    }

    /// [`token`](Self::token) at `now` (unix seconds).
    pub(crate) fn token_at(
        &self,
        method: &http::Method,
        url: &str,
        now: u64,
    ) -> Result<String, FacilitatorError> {
        let unsigned = |why: String| FacilitatorError::Unreachable(format!("CDP token: {why}"));
        let uri = request_uri(method, url).map_err(unsigned)?;
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| unsigned(e.to_string()))?;
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.key_id.clone());
        header.typ = Some("JWT".to_owned());
        header.nonce = Some(alloy_primitives::hex::encode(nonce));
        let claims = Claims {
            sub: &self.key_id,
            iss: "cdp",
            nbf: now,
            iat: now,
            exp: now + TOKEN_LIFETIME,
            uris: [uri],
        };
        install_provider();
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| unsigned(e.to_string()))
    }
}

/// The `uris` entry of a request: `METHOD host[:port]/path`.
fn request_uri(method: &http::Method, url: &str) -> Result<String, String> {
    let parsed: http::Uri = url.parse().map_err(|_| format!("`{url}` is not a URL"))?;
    let host = parsed
        .host()
        .ok_or_else(|| format!("`{url}` has no host"))?;
    let default_port = match parsed.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    let authority = match parsed.port_u16() {
        Some(port) if Some(port) != default_port => format!("{host}:{port}"),
        _ => host.to_owned(),
    };
    Ok(format!("{method} {authority}{}", parsed.path()))
}

/// Selects jsonwebtoken's RustCrypto backend for the process unless one was chosen: with two
/// backends compiled in (features unified by another crate) it could not choose itself.
fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
        );
    });
}

/// An Ed25519 secret: base64 of the 32-byte seed and the 32-byte public key.
fn ed25519_key(secret: &str) -> Result<EncodingKey, ConfigError> {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let wrong = |why: &str| {
        ConfigError::new(format!(
            "the CDP API key secret {why}: paste the secret of an Ed25519 key as the portal shows \
             it (base64 of 64 bytes), or the PEM of an ECDSA key (`-----BEGIN EC PRIVATE KEY-----…`)"
        ))
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(secret)
        .map_err(|_| wrong("is neither base64 nor PEM"))?;
    let pair: &[u8; 64] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| wrong("is base64 but not of 64 bytes"))?;
    let signing = ed25519_dalek::SigningKey::from_keypair_bytes(pair)
        .map_err(|_| wrong("holds a public key that does not match its seed"))?;
    let der = signing
        .to_pkcs8_der()
        .map_err(|_| wrong("cannot be encoded"))?;
    Ok(EncodingKey::from_ed_der(der.as_bytes()))
}

/// An EC P-256 secret in PEM: SEC1 `EC PRIVATE KEY` or PKCS#8 `PRIVATE KEY`.
fn ec_key(pem: &str) -> Result<EncodingKey, ConfigError> {
    use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    let secret = p256::SecretKey::from_sec1_pem(pem)
        .or_else(|_| p256::SecretKey::from_pkcs8_pem(pem))
        .map_err(|_| {
            ConfigError::new(
                "the CDP API key secret is a PEM but not a P-256 `EC PRIVATE KEY`: paste the \
                 whole key, from `-----BEGIN EC PRIVATE KEY-----` to its END line",
            )
        })?;
    let der = secret
        .to_pkcs8_der()
        .map_err(|_| ConfigError::new("the CDP API key secret cannot be encoded"))?;
    Ok(EncodingKey::from_ec_der(der.as_bytes()))
}

impl fmt::Debug for CdpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CdpAuth")
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl FacilitatorAuth for CdpAuth {
    fn headers(&self, method: &http::Method, url: &str) -> Result<HeaderMap, FacilitatorError> {
        let token = self.token(method, url)?;
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| FacilitatorError::Unreachable(format!("CDP token: {e}")))?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::with_capacity(1);
        headers.insert(AUTHORIZATION, value);
        Ok(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
    use serde_json::Value;

    const KEY_ID: &str = "organizations/org/apiKeys/key-1";
    const SETTLE: &str = "https://api.cdp.coinbase.com/platform/v2/x402/settle";

    fn ed25519_secret(seed: [u8; 32]) -> (String, Vec<u8>) {
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = signing.verifying_key().to_bytes().to_vec();
        let pair = signing.to_keypair_bytes();
        (
            base64::engine::general_purpose::STANDARD.encode(pair),
            public,
        )
    }

    fn claims(token: &str, key: &DecodingKey, alg: Algorithm) -> Value {
        let mut validation = Validation::new(alg);
        validation.set_required_spec_claims(&["exp", "nbf", "sub", "iss"]);
        validation.validate_nbf = true;
        validation.leeway = 0;
        validation.set_issuer(&["cdp"]);
        decode::<Value>(token, key, &validation)
            .expect("valid token")
            .claims
    }

    #[test]
    fn ed25519_tokens_carry_the_cdp_claims_for_this_request() {
        let (secret, public) = ed25519_secret([7; 32]);
        let auth = CdpAuth::new(KEY_ID, &secret).expect("valid key");
        assert_eq!(auth.algorithm(), "EdDSA");
        let now = crate::base::unix_now();
        let token = auth
            .token_at(&http::Method::POST, SETTLE, now)
            .expect("signed");
        let header = decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(KEY_ID));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let nonce = header.nonce.expect("nonce");
        assert_eq!(nonce.len(), 32);
        let claims = claims(&token, &DecodingKey::from_ed_der(&public), Algorithm::EdDSA);
        assert_eq!(claims["sub"], KEY_ID);
        assert_eq!(claims["iss"], "cdp");
        assert_eq!(claims["nbf"], now);
        assert_eq!(claims["iat"], now);
        assert_eq!(claims["exp"], now + 120);
        assert_eq!(
            claims["uris"],
            serde_json::json!(["POST api.cdp.coinbase.com/platform/v2/x402/settle"])
        );
        let again = auth
            .token_at(&http::Method::POST, SETTLE, now)
            .expect("signed");
        assert_ne!(decode_header(&again).expect("header").nonce, Some(nonce));
    }

    #[test]
    fn es256_tokens_verify_with_the_public_key() {
        use p256::pkcs8::LineEnding;
        let secret = p256::SecretKey::from_slice(&[9; 32]).expect("scalar");
        let pem = secret.to_sec1_pem(LineEnding::LF).expect("pem");
        // As an environment variable often holds it: on one line with `\n`.
        let one_line = pem.replace('\n', "\\n");
        let auth = CdpAuth::new(KEY_ID, &one_line).expect("valid key");
        assert_eq!(auth.algorithm(), "ES256");
        let now = crate::base::unix_now();
        let url = "http://127.0.0.1:4022/x402/verify";
        let token = auth
            .token_at(&http::Method::POST, url, now)
            .expect("signed");
        let point = secret.public_key().to_sec1_bytes();
        let claims = claims(&token, &DecodingKey::from_ec_der(&point), Algorithm::ES256);
        assert_eq!(
            claims["uris"],
            serde_json::json!(["POST 127.0.0.1:4022/x402/verify"])
        );
    }

    #[test]
    fn uris_name_method_host_and_path() {
        let get = http::Method::GET;
        assert_eq!(
            request_uri(
                &get,
                "https://api.cdp.coinbase.com:443/platform/v2/x402/supported"
            ),
            Ok("GET api.cdp.coinbase.com/platform/v2/x402/supported".to_owned())
        );
        assert_eq!(
            request_uri(&get, "http://localhost:8080/supported"),
            Ok("GET localhost:8080/supported".to_owned())
        );
    }

    #[test]
    fn bad_secrets_are_named_without_their_value() {
        for secret in [
            "not base64 at all!",
            "c2hvcnQ=",
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----",
        ] {
            let error = CdpAuth::new(KEY_ID, secret).expect_err("bad secret");
            let text = error.to_string();
            assert!(text.contains("secret"), "{text}");
            assert!(!text.contains(secret), "{text}");
        }
        // A public key that is not the seed's.
        let (secret, _) = ed25519_secret([7; 32]);
        let mut pair = base64::engine::general_purpose::STANDARD
            .decode(secret)
            .expect("base64");
        pair[40] ^= 1;
        let tampered = base64::engine::general_purpose::STANDARD.encode(pair);
        assert!(
            CdpAuth::new(KEY_ID, &tampered)
                .expect_err("mismatch")
                .to_string()
                .contains("does not match")
        );
        assert!(CdpAuth::new(" ", "x").is_err());
    }

    #[test]
    fn debug_shows_the_key_id_only() {
        let (secret, _) = ed25519_secret([7; 32]);
        let auth = CdpAuth::new(KEY_ID, &secret).expect("valid key");
        let shown = format!("{auth:?}");
        assert!(shown.contains(KEY_ID));
        assert!(!shown.contains(&secret[..12]), "{shown}");
        let headers = auth.headers(&http::Method::POST, SETTLE).expect("headers");
        assert!(headers[AUTHORIZATION].is_sensitive());
        assert!(!format!("{headers:?}").contains("Bearer"));
    }
}
