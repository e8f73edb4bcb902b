//! The currencies a price can be written in: a mirror of `x402_runtime::Currency`.

use syn::LitStr;

/// A currency `#[paid]` accepts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Currency {
    /// Circle's USD Coin; `$` prices are in USDC.
    Usdc,
    /// Circle's Euro Coin.
    Eurc,
    /// Another ERC-20, paid through Permit2: its ticker and decimals.
    Token(&'static str, u8),
}

/// US-dollar stablecoins other than USDC and their decimals: a mirror of
/// `x402_runtime::KNOWN_TOKENS`.
const KNOWN_TOKENS: [(&str, u8); 3] = [("USDT", 6), ("DAI", 18), ("PYUSD", 6)];

impl Currency {
    /// The currency used when `currency` is absent.
    pub(crate) const DEFAULT: Currency = Currency::Usdc;

    const ALL: [Currency; 2] = [Currency::Usdc, Currency::Eurc];

    /// The ticker as written in `currency = "..."`.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Currency::Usdc => "USDC",
            Currency::Eurc => "EURC",
            Currency::Token(symbol, _) => symbol,
        }
    }

    /// Decimals of the token's atomic unit.
    pub(crate) fn decimals(self) -> u8 {
        match self {
            Currency::Usdc | Currency::Eurc => 6,
            Currency::Token(_, decimals) => decimals,
        }
    }

    /// ISO 4217 code of the fiat currency the token tracks, and its name.
    fn fiat(self) -> (&'static str, &'static str) {
        match self {
            Currency::Usdc | Currency::Token(..) => ("USD", "US dollar"),
            Currency::Eurc => ("EUR", "euro"),
        }
    }

    /// Reads `currency = "..."`: `USDC`, `EURC`, a known stablecoin (`USDT`, `DAI`, `PYUSD`),
    /// or any ticker with its decimals (`"XYZ:18"`), with a hint for near misses.
    pub(crate) fn from_lit(lit: &LitStr) -> syn::Result<Currency> {
        let name = lit.value();
        if let Some(currency) = Currency::ALL.into_iter().find(|c| c.symbol() == name) {
            return Ok(currency);
        }
        if let Some((symbol, decimals)) = KNOWN_TOKENS.iter().find(|(s, _)| *s == name) {
            return Ok(Currency::Token(symbol, *decimals));
        }
        if let Some((symbol, decimals)) = name.split_once(':') {
            return token(symbol, decimals).map_err(|why| syn::Error::new(lit.span(), why));
        }
        Err(syn::Error::new(lit.span(), unknown(&name)))
    }
}

/// `SYMBOL:DECIMALS`: an upper-case ticker of at most 11 letters or digits, and 0 to 36 decimals.
fn token(symbol: &str, decimals: &str) -> Result<Currency, String> {
    let ticker_ok = !symbol.is_empty()
        && symbol.len() <= 11
        && symbol
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !ticker_ok {
        return Err(format!(
            "`{symbol}` is not a ticker: write 1 to 11 upper-case letters or digits, e.g. \
             `currency = \"WETH:18\"`"
        ));
    }
    if Currency::ALL.iter().any(|c| c.symbol() == symbol)
        || KNOWN_TOKENS.iter().any(|(s, _)| *s == symbol)
    {
        return Err(format!(
            "`{symbol}` is known, with its decimals: write `currency = \"{symbol}\"`"
        ));
    }
    match decimals.parse::<u8>() {
        // Written canonically: no sign, no leading zero.
        Ok(count) if count <= 36 && count.to_string() == decimals => Ok(Currency::Token(
            Box::leak(symbol.to_owned().into_boxed_str()),
            count,
        )),
        _ => Err(format!(
            "`{decimals}` is not a number of decimals: write 0 to 36, e.g. `currency = \"{symbol}:18\"`"
        )),
    }
}

fn unknown(name: &str) -> String {
    let known: Vec<&str> = Currency::ALL.iter().map(|c| c.symbol()).collect();
    let known = known.join(", ");
    if name.trim().is_empty() {
        return format!("`currency` is empty; known currencies: {known}");
    }
    if name.trim() != name {
        return format!(
            "remove the whitespace: write `currency = \"{}\"`",
            name.trim()
        );
    }
    if let Some(c) = Currency::ALL
        .into_iter()
        .find(|c| c.symbol().eq_ignore_ascii_case(name))
    {
        return format!("unknown currency `{name}`; did you mean `{}`?", c.symbol());
    }
    if let Some(c) = Currency::ALL
        .into_iter()
        .find(|c| c.fiat().0.eq_ignore_ascii_case(name))
    {
        let (iso, fiat) = c.fiat();
        let dollar = if c == Currency::Usdc {
            " (or leave `currency` out and write the price with a `$`: `price = \"$0.01\"`)"
        } else {
            ""
        };
        return format!(
            "unknown currency `{name}`: prices are paid in stablecoins, and `{}` is the {fiat} \
             ({iso}) stablecoin; write `currency = \"{}\"`{dollar}",
            c.symbol(),
            c.symbol(),
        );
    }
    format!(
        "unknown currency `{name}`; known currencies: {known}, USDT, DAI, PYUSD; for another \
         ERC-20 write its ticker and decimals, e.g. `currency = \"{}:18\"`",
        if name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            name.to_ascii_uppercase()
        } else {
            "WETH".to_owned()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    fn read(name: &str) -> Result<Currency, String> {
        Currency::from_lit(&LitStr::new(name, Span::call_site())).map_err(|e| e.to_string())
    }

    #[test]
    fn known_and_unknown() {
        assert_eq!(read("USDC"), Ok(Currency::Usdc));
        assert_eq!(read("EURC"), Ok(Currency::Eurc));
        assert_eq!(read("USDT"), Ok(Currency::Token("USDT", 6)));
        assert_eq!(read("DAI"), Ok(Currency::Token("DAI", 18)));
        assert_eq!(read("WETH:18"), Ok(Currency::Token("WETH", 18)));
        assert!(read("WETH").is_err_and(|e| e.contains("known currencies")));
        assert!(read("weth:18").is_err_and(|e| e.contains("not a ticker")));
        assert!(read("WETH:037").is_err_and(|e| e.contains("not a number of decimals")));
        assert!(read("WETH:37").is_err_and(|e| e.contains("not a number of decimals")));
        assert!(read("USDT:6").is_err_and(|e| e.contains("is known")));
        assert_eq!(
            read("usdc"),
            Err("unknown currency `usdc`; did you mean `USDC`?".to_owned())
        );
        assert!(read("USD").is_err_and(|e| e.contains("`USDC` is the US dollar")));
        assert!(read("eur").is_err_and(|e| e.contains("`EURC` is the euro")));
        assert!(read("").is_err_and(|e| e.starts_with("`currency` is empty")));
    }
}
