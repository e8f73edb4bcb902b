//! The price grammar of x402-runtime, in one place: the rules a price written in `#[paid]` and a
//! price set at startup (an override from the configuration) both follow.
//!
//! A price is a strict, positive decimal (`"0.001"`, or `"$0.001"` for US dollars), converted to
//! a token's atomic units with integer arithmetic only. Every refusal is a sentence that names
//! the fix.
//!
//! ```
//! let price = x402_price::Decimal::parse("$0.010").unwrap();
//! assert_eq!(price.human(), "0.010");
//! assert_eq!(price.atomic("USDC", 6, true), Ok(10_000));
//! assert!(price.atomic("EURC", 6, false).is_err()); // `$` means US dollars
//! assert!(x402_price::Decimal::parse("1e-3").is_err());
//! ```

/// A syntactically valid, positive decimal, as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal<'a> {
    /// Written with a leading `$`.
    dollar: bool,
    /// The text after the `$`.
    human: &'a str,
    integer: &'a str,
    fraction: &'a str,
}

impl<'a> Decimal<'a> {
    /// Reads `$`? then `digits` or `digits.digits`, without redundant leading zeros, greater
    /// than zero.
    pub fn parse(text: &'a str) -> Result<Decimal<'a>, String> {
        if text.trim().is_empty() {
            return Err("price is empty: write e.g. `price = \"0.01\"`".to_owned());
        }
        if text.chars().any(char::is_whitespace) {
            return Err(format!(
                "price `{text}` contains whitespace: remove the whitespace"
            ));
        }
        let (dollar, body) = match text.strip_prefix('$') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if body.is_empty() {
            return Err("price is empty: write e.g. `price = \"$0.01\"`".to_owned());
        }
        check_characters(text, body)?;
        let (integer, fraction) = match body.split_once('.') {
            Some((_, fraction)) if fraction.contains('.') => {
                return Err(format!("price `{text}` has more than one `.`"));
            }
            Some((integer, fraction)) => (integer, fraction),
            None => (body, ""),
        };
        if integer.is_empty() {
            return Err(format!("price `{text}` starts with `.`: write `0{body}`"));
        }
        if body.ends_with('.') {
            return Err(format!(
                "price `{text}` ends with `.`: write `{integer}` or `{integer}.0`"
            ));
        }
        if integer.len() > 1 && integer.starts_with('0') {
            let trimmed = integer.trim_start_matches('0');
            let integer = if trimmed.is_empty() { "0" } else { trimmed };
            let point = if fraction.is_empty() { "" } else { "." };
            return Err(format!(
                "price `{text}` has redundant leading zeros: write `{integer}{point}{fraction}`"
            ));
        }
        if body.chars().all(|c| c == '0' || c == '.') {
            return Err(
                "a price must be greater than zero; remove #[paid] for a free route".to_owned(),
            );
        }
        Ok(Decimal {
            dollar,
            human: body,
            integer,
            fraction,
        })
    }

    /// The price as written, without a leading `$`.
    pub fn human(&self) -> &'a str {
        self.human
    }

    /// Whether it was written with a leading `$`.
    pub fn dollar(&self) -> bool {
        self.dollar
    }

    /// The price in atomic units of the token `symbol` with `decimals`; `dollar_allowed` says
    /// whether the token is the US dollar one a `$` stands for.
    pub fn atomic(&self, symbol: &str, decimals: u8, dollar_allowed: bool) -> Result<u128, String> {
        if self.dollar && !dollar_allowed {
            return Err(format!(
                "`$` means US dollars (USDC) but currency is {symbol}; remove the `$`"
            ));
        }
        // Trailing zeros change nothing: `0.0010` is exactly `0.001`.
        let fraction = self.fraction.trim_end_matches('0');
        if fraction.len() > usize::from(decimals) {
            return Err(format!(
                "{symbol} has {decimals} decimals, so `{human}` cannot be paid exactly; use at \
                 most {decimals} fractional digits",
                human = self.human,
            ));
        }
        let padded = format!("{fraction:0<width$}", width = usize::from(decimals));
        digits_value(self.integer)
            .and_then(|integer| integer.checked_mul(10u128.checked_pow(u32::from(decimals))?))
            .and_then(|scaled| scaled.checked_add(digits_value(&padded)?))
            .ok_or_else(|| {
                format!(
                    "price `{}` is too large: it does not fit in {symbol}'s atomic units",
                    self.human
                )
            })
    }
}

/// Rejects everything but ASCII digits and one `.`, naming the fix for common slips.
fn check_characters(text: &str, body: &str) -> Result<(), String> {
    let exponent_like = |c: char| c.is_ascii_digit() || ".eE+-".contains(c);
    if body.contains(['e', 'E']) && body.chars().all(exponent_like) {
        return Err(
            "write the price as a plain decimal, e.g. `0.001` instead of `1e-3`".to_owned(),
        );
    }
    if body.contains(['+', '-']) {
        return Err("prices are positive amounts: remove the sign".to_owned());
    }
    if let Some((integer, fraction)) = body.split_once(',')
        && !body.contains('.')
        && !fraction.contains(',')
        && fraction.len() != 3
    {
        return Err(format!(
            "price `{text}` uses `,` as the decimal point: write `{integer}.{fraction}`"
        ));
    }
    if body.contains([',', '_']) {
        let plain: String = body.chars().filter(|c| !matches!(c, ',' | '_')).collect();
        return Err(format!(
            "price `{text}` has thousands separators: remove them and write `{plain}`"
        ));
    }
    match body.chars().find(|c| !c.is_ascii_digit() && *c != '.') {
        Some('$') => Err(format!(
            "unexpected `$` in price `{text}`: a `$` may only come first, as in `$0.01`"
        )),
        Some(other) => Err(format!(
            "unexpected character `{other}` in price `{text}`: write digits with an optional \
             `.`, e.g. `0.01`"
        )),
        None => Ok(()),
    }
}

/// The value of a string of ASCII digits, `None` on overflow.
fn digits_value(digits: &str) -> Option<u128> {
    digits.bytes().try_fold(0u128, |value, digit| {
        value.checked_mul(10)?.checked_add(u128::from(digit - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usdc(text: &str) -> Result<u128, String> {
        Decimal::parse(text)?.atomic("USDC", 6, true)
    }

    fn eurc(text: &str) -> Result<u128, String> {
        Decimal::parse(text)?.atomic("EURC", 6, false)
    }

    fn error(text: &str) -> String {
        usdc(text).expect_err(text)
    }

    #[test]
    fn converts_to_atomic_units() {
        assert_eq!(usdc("0.001"), Ok(1_000));
        assert_eq!(usdc("$0.01"), Ok(10_000));
        assert_eq!(usdc("1"), Ok(1_000_000));
        assert_eq!(usdc("0.000001"), Ok(1));
        assert_eq!(usdc("1.50"), Ok(1_500_000));
        assert_eq!(usdc("0.0010"), Ok(1_000));
        assert_eq!(usdc("0.1000000"), Ok(100_000));
        assert_eq!(usdc("10"), Ok(10_000_000));
        assert_eq!(eurc("0.05"), Ok(50_000));
    }

    #[test]
    fn keeps_the_text_without_the_dollar() {
        let price = Decimal::parse("$0.010").expect("valid");
        assert_eq!((price.human(), price.dollar()), ("0.010", true));
    }

    #[test]
    fn rejects_malformed_prices() {
        assert!(error("").starts_with("price is empty"));
        assert!(error("$").starts_with("price is empty"));
        assert!(error(" 0.01").ends_with("remove the whitespace"));
        assert!(error("0. 01").ends_with("remove the whitespace"));
        assert_eq!(error("-1"), "prices are positive amounts: remove the sign");
        assert_eq!(
            error("+0.5"),
            "prices are positive amounts: remove the sign"
        );
        assert!(error("1e-3").starts_with("write the price as a plain decimal"));
        assert!(error("1E3").starts_with("write the price as a plain decimal"));
        assert!(error("1e+3").starts_with("write the price as a plain decimal"));
        assert!(error("1,000").ends_with("write `1000`"));
        assert!(error("1_000.5").ends_with("write `1000.5`"));
        assert!(error("0,01").ends_with("write `0.01`"));
        assert!(error(".5").ends_with("write `0.5`"));
        assert!(error("5.").ends_with("write `5` or `5.0`"));
        assert!(error("007").ends_with("write `7`"));
        assert!(error("00.1").ends_with("write `0.1`"));
        assert!(error("1.2.3").contains("more than one `.`"));
        assert!(error("$$1").contains("unexpected `$`"));
        assert!(error("1$").contains("unexpected `$`"));
        assert!(error("0.01USDC").contains("unexpected character `U`"));
        assert!(error("free").contains("unexpected character `f`"));
    }

    #[test]
    fn rejects_zero() {
        for zero in ["0", "0.0", "$0.000", "0.0000000"] {
            assert_eq!(
                error(zero),
                "a price must be greater than zero; remove #[paid] for a free route"
            );
        }
    }

    #[test]
    fn rejects_more_decimals_than_the_currency() {
        assert_eq!(
            error("0.0000001"),
            "USDC has 6 decimals, so `0.0000001` cannot be paid exactly; use at most 6 \
             fractional digits"
        );
    }

    #[test]
    fn rejects_dollar_with_another_currency() {
        assert_eq!(
            eurc("$0.01"),
            Err("`$` means US dollars (USDC) but currency is EURC; remove the `$`".to_owned())
        );
    }

    #[test]
    fn rejects_overflow() {
        let max = u128::MAX.to_string();
        assert!(error(&max).contains("too large"));
        // Fits in u128 before scaling, not after.
        assert!(error("1000000000000000000000000000000000").contains("too large"));
        assert_eq!(
            usdc("340282366920938463463374607431768.211455"),
            Ok(u128::MAX)
        );
        assert!(error("340282366920938463463374607431768.211456").contains("too large"));
    }
}
