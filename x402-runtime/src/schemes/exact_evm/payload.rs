//! The exact-EVM payload: an EIP-3009 authorization and its signature, parsed strictly.
//!
//! Numbers follow the canonical decimal grammar of [`parse_uint`]; addresses with mixed case must
//! carry a valid EIP-55 checksum; the nonce is exactly 32 bytes; the signature is hex bytes.

use alloy_primitives::{Address, B256, Bytes, U256};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::proto::header::{DecodeError, malformed, parse_uint};

/// The EIP-3009 authorization, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// Payer.
    pub from: Address,
    /// Recipient.
    pub to: Address,
    /// Amount in atomic units.
    pub value: U256,
    /// Not valid at or before this unix time.
    pub valid_after: U256,
    /// Not valid at or after this unix time.
    pub valid_before: U256,
    /// The 32-byte nonce.
    pub nonce: B256,
}

/// The scheme part of an exact-EVM payment: the authorization and the signature over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactEvmPayload {
    /// The authorization.
    pub authorization: Authorization,
    /// Signature bytes.
    pub signature: Bytes,
}

#[derive(Deserialize)]
struct WirePayload {
    signature: String,
    authorization: WireAuthorization,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAuthorization {
    from: String,
    to: String,
    value: String,
    valid_after: String,
    valid_before: String,
    nonce: String,
}

/// Reads the `payload` object of an exact-EVM payment.
pub fn decode(payload: &RawValue) -> Result<ExactEvmPayload, DecodeError> {
    let wire: WirePayload = serde_json::from_str(payload.get()).map_err(|e| {
        malformed(format!(
            "the payment is not a valid x402 payment: payload: {e}"
        ))
    })?;
    let auth = &wire.authorization;
    let authorization = Authorization {
        from: parse_address(&auth.from, "authorization.from")?,
        to: parse_address(&auth.to, "authorization.to")?,
        value: parse_uint(&auth.value, "authorization.value")?,
        valid_after: parse_uint(&auth.valid_after, "authorization.validAfter")?,
        valid_before: parse_uint(&auth.valid_before, "authorization.validBefore")?,
        nonce: parse_nonce(&auth.nonce)?,
    };
    let signature = parse_hex_bytes(&wire.signature)
        .ok_or_else(|| malformed("`signature` must be 0x-prefixed hex bytes"))?;
    Ok(ExactEvmPayload {
        authorization,
        signature,
    })
}

/// Parses an address: `0x` + 40 hex digits; mixed case must be a valid EIP-55 checksum.
pub fn parse_address(text: &str, field: &str) -> Result<Address, DecodeError> {
    let bad = || malformed(format!("`{field}` must be a 0x-prefixed 20-byte address"));
    let hex = text.strip_prefix("0x").ok_or_else(bad)?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
    let address: Address = text.parse().map_err(|_| bad())?;
    if has_lower && has_upper && checksummed(&address) != text {
        return Err(malformed(format!(
            "`{field}` has an invalid EIP-55 checksum"
        )));
    }
    Ok(address)
}

/// The EIP-55 form of `address` (what [`Address::to_checksum`] gives), from a small per-thread
/// memo: a payment names the same few addresses (payer, recipient, token) again and again, and
/// each checksum costs a keccak256.
///
/// ```
/// use alloy_primitives::address;
/// use x402_runtime::schemes::exact_evm::payload::checksummed;
///
/// let usdc = address!("0x036cbd53842c5426634e7929541ec2318f3dcf7e");
/// assert_eq!(checksummed(&usdc), "0x036CbD53842c5426634e7929541eC2318f3dCF7e");
/// ```
pub fn checksummed(address: &Address) -> String {
    /// Memo slots, chosen by the address's last byte.
    const SLOTS: usize = 64;
    thread_local! {
        static MEMO: std::cell::RefCell<Vec<Option<(Address, String)>>> =
            std::cell::RefCell::new(vec![None; SLOTS]);
    }
    let slot = usize::from(address.0[19]) % SLOTS;
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        match &memo[slot] {
            Some((kept, text)) if kept == address => text.clone(),
            _ => {
                let text = address.to_checksum(None);
                memo[slot] = Some((*address, text.clone()));
                text
            }
        }
    })
}

fn parse_nonce(text: &str) -> Result<B256, DecodeError> {
    let bad = || malformed("`authorization.nonce` must be 0x + 64 hex digits");
    let hex = text.strip_prefix("0x").ok_or_else(bad)?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

/// Parses `0x` + an even, non-zero number of hex digits.
pub fn parse_hex_bytes(text: &str) -> Option<Bytes> {
    let hex = text.strip_prefix("0x")?;
    if hex.is_empty() || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_need_a_valid_checksum_when_mixed_case() {
        let good = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
        let a = parse_address(good, "a").expect("checksummed");
        assert_eq!(parse_address(&good.to_lowercase(), "a"), Ok(a));
        assert_eq!(
            parse_address(&format!("0x{}", good[2..].to_uppercase()), "a"),
            Ok(a)
        );
        assert!(parse_address("0x70997970c51812dc3A010C7d01b50e0d17dc79C8", "a").is_err());
        assert!(parse_address("70997970C51812dc3A010C7d01b50e0d17dc79C8", "a").is_err());
        assert!(parse_address("0x70997970C51812dc3A010C7d01b50e0d17dc79", "a").is_err());
    }
}
