//! Token amounts in human units (`"0.50"`) and atomic units (`500000`).

use alloy_primitives::U256;

/// Why a human amount was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmountError(String);

impl std::fmt::Display for AmountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AmountError {}

/// Parses a decimal amount in human units into atomic units of a token with `decimals`.
///
/// Accepted: digits with an optional fraction (`"1"`, `"0.5"`, `"0.010"`). Refused: signs,
/// exponents, separators, a bare `"."`, and more fractional digits than the token has.
///
/// ```
/// use alloy_primitives::U256;
/// use x402_runtime::client::{format_amount, parse_amount};
///
/// let atomic = parse_amount("0.50", 6).unwrap();
/// assert_eq!(atomic, U256::from(500_000));
/// assert_eq!(format_amount(atomic, 6), "0.5");
/// assert!(parse_amount("0.0000001", 6).is_err()); // USDC has 6 decimals
/// ```
pub fn parse_amount(text: &str, decimals: u8) -> Result<U256, AmountError> {
    let refuse = |why: &str| AmountError(format!("`{text}` is not an amount: {why}"));
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse("write digits with an optional fraction, like 0.50"));
    }
    let fraction = fraction.unwrap_or("");
    if text.ends_with('.') || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse("write digits with an optional fraction, like 0.50"));
    }
    if fraction.len() > usize::from(decimals) {
        return Err(refuse(&format!(
            "the token has {decimals} decimals, so at most {decimals} digits after the point"
        )));
    }
    let padded = format!("{whole}{fraction:0<width$}", width = usize::from(decimals));
    U256::from_str_radix(&padded, 10).map_err(|_| refuse("too large"))
}

/// Formats atomic units as a human amount, without trailing zeros (`1000` at 6 decimals is
/// `"0.001"`).
pub fn format_amount(atomic: U256, decimals: u8) -> String {
    let digits = atomic.to_string();
    let decimals = usize::from(decimals);
    if decimals == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = decimals + 1);
    let (whole, fraction) = padded.split_at(padded.len() - decimals);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{fraction}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_amounts_round_trip() {
        for (text, atomic, shown) in [
            ("0.001", 1000u64, "0.001"),
            ("0.50", 500_000, "0.5"),
            ("1", 1_000_000, "1"),
            ("12.000001", 12_000_001, "12.000001"),
            ("0", 0, "0"),
        ] {
            let parsed = parse_amount(text, 6).expect(text);
            assert_eq!(parsed, U256::from(atomic), "{text}");
            assert_eq!(format_amount(parsed, 6), shown);
        }
        assert_eq!(format_amount(U256::from(7u8), 0), "7");
    }

    #[test]
    fn malformed_amounts_are_refused() {
        for bad in [
            "",
            ".",
            ".5",
            "1.",
            "-1",
            "+1",
            "1e3",
            "1,000",
            " 1",
            "0.0000001",
            "abc",
            "1.2.3",
        ] {
            assert!(parse_amount(bad, 6).is_err(), "{bad:?}");
        }
        let error = parse_amount("0.0000001", 6).expect_err("too precise");
        assert!(error.to_string().contains("6 decimals"), "{error}");
    }
}
