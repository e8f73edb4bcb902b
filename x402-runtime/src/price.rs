//! What a route costs: the currencies a price can be written in, and the price itself.

use std::fmt;

/// A currency a `#[paid]` price can be written in.
///
/// Each currency maps to one token per network (see [`crate::network::Asset`]); the amount in a
/// 402 challenge is the price in that token's atomic units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Currency {
    /// Circle's USD Coin (6 decimals). `"$…"` prices are USDC.
    Usdc,
    /// Circle's Euro Coin (6 decimals).
    Eurc,
}

impl Currency {
    /// Every currency `#[paid]` accepts.
    pub const ALL: [Currency; 2] = [Currency::Usdc, Currency::Eurc];

    /// The ticker as written in `#[paid(currency = "…")]`.
    pub const fn symbol(self) -> &'static str {
        match self {
            Currency::Usdc => "USDC",
            Currency::Eurc => "EURC",
        }
    }

    /// Number of decimals of the token's atomic unit.
    pub const fn decimals(self) -> u8 {
        match self {
            Currency::Usdc | Currency::Eurc => 6,
        }
    }

    /// ISO 4217 code of the fiat currency the token tracks.
    pub const fn iso_4217(self) -> &'static str {
        match self {
            Currency::Usdc => "USD",
            Currency::Eurc => "EUR",
        }
    }

    /// Looks a currency up by its ticker (exact, upper case).
    pub fn from_symbol(symbol: &str) -> Option<Currency> {
        Currency::ALL.into_iter().find(|c| c.symbol() == symbol)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// A fixed price, validated and converted at compile time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    /// The price as written in the attribute, without a leading `$` (for example `"0.001"`).
    pub human: &'static str,
    /// The price in atomic units of the currency's token (`"0.001"` USDC is `1000`).
    pub atomic: u128,
    /// The token's decimals the atomic amount was computed with.
    pub decimals: u8,
    /// The currency.
    pub currency: Currency,
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.human, self.currency)
    }
}

/// How a route is priced.
///
/// Only fixed prices exist today. The enum is non-exhaustive so that a dynamic price (computed
/// from the request, within published bounds) can be added without breaking code that matches on
/// it or reads [`PaidRoute::price`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pricing {
    /// The same price for every request.
    Fixed(Price),
}

impl Pricing {
    /// The fixed price, if the route has one.
    pub const fn fixed(&self) -> Option<&Price> {
        match self {
            Pricing::Fixed(price) => Some(price),
        }
    }

    /// The currency every price of this route is in.
    pub const fn currency(&self) -> Currency {
        match self {
            Pricing::Fixed(price) => price.currency,
        }
    }
}
