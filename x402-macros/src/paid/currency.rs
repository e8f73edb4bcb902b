//! The currencies a price can be written in: a mirror of `x402_runtime::Currency`.

use syn::LitStr;

/// A currency `#[paid]` accepts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Currency {
    /// Circle's USD Coin; `$` prices are in USDC.
    Usdc,
    /// Circle's Euro Coin.
    Eurc,
}

impl Currency {
    /// The currency used when `currency` is absent.
    pub(crate) const DEFAULT: Currency = Currency::Usdc;

    const ALL: [Currency; 2] = [Currency::Usdc, Currency::Eurc];

    /// The ticker as written in `currency = "..."`.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Currency::Usdc => "USDC",
            Currency::Eurc => "EURC",
        }
    }

    /// Decimals of the token's atomic unit.
    pub(crate) fn decimals(self) -> u8 {
        match self {
            Currency::Usdc | Currency::Eurc => 6,
        }
    }

    /// ISO 4217 code of the fiat currency the token tracks, and its name.
    fn fiat(self) -> (&'static str, &'static str) {
        match self {
            Currency::Usdc => ("USD", "US dollar"),
            Currency::Eurc => ("EUR", "euro"),
        }
    }

    /// Reads `currency = "..."`, with a hint for near misses.
    pub(crate) fn from_lit(lit: &LitStr) -> syn::Result<Currency> {
        let name = lit.value();
        if let Some(currency) = Currency::ALL.into_iter().find(|c| c.symbol() == name) {
            return Ok(currency);
        }
        Err(syn::Error::new(lit.span(), unknown(&name)))
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
    format!("unknown currency `{name}`; known currencies: {known}")
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
        assert_eq!(
            read("USDT"),
            Err("unknown currency `USDT`; known currencies: USDC, EURC".to_owned())
        );
        assert_eq!(
            read("usdc"),
            Err("unknown currency `usdc`; did you mean `USDC`?".to_owned())
        );
        assert!(read("USD").is_err_and(|e| e.contains("`USDC` is the US dollar")));
        assert!(read("eur").is_err_and(|e| e.contains("`EURC` is the euro")));
        assert!(read("").is_err_and(|e| e.starts_with("`currency` is empty")));
    }
}
