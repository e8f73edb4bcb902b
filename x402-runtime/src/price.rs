//! What a route costs: the currencies a price can be written in, and the price itself.

use std::borrow::Cow;
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
    /// Any other ERC-20, by its ticker and decimals (`#[paid(currency = "USDT")]`, or
    /// `currency = "XYZ:18"` for a ticker `#[paid]` does not know). It is paid through Permit2,
    /// and its contract on each network comes from the configuration
    /// ([`X402ConfigBuilder::token`](crate::X402ConfigBuilder::token), `X402_TOKEN_<TICKER>`).
    Token(Token),
}

/// An ERC-20 priced by its ticker (see [`Currency::Token`]).
///
/// ```
/// use x402_runtime::{Currency, Price, Token};
///
/// let dai = Currency::Token(Token::new("DAI", 18));
/// assert_eq!(Price::parse("0.01", dai).unwrap().atomic, 10_000_000_000_000_000);
/// assert_eq!(dai.iso_4217(), Some("USD"));
/// assert_eq!(Currency::Token(Token::new("XYZ", 8)).iso_4217(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token {
    symbol: &'static str,
    decimals: u8,
}

impl Token {
    /// The token `symbol` with `decimals` decimals.
    pub const fn new(symbol: &'static str, decimals: u8) -> Token {
        Token { symbol, decimals }
    }

    /// The ticker.
    pub const fn symbol(self) -> &'static str {
        self.symbol
    }

    /// The decimals of its atomic unit.
    pub const fn decimals(self) -> u8 {
        self.decimals
    }
}

/// Tickers of US-dollar stablecoins other than USDC, and their usual decimals (what
/// `#[paid(currency = "…")]` accepts without `:decimals`).
pub const KNOWN_TOKENS: [(&str, u8); 3] = [("USDT", 6), ("DAI", 18), ("PYUSD", 6)];

impl Currency {
    /// The currencies with built-in token addresses (Circle's EIP-3009 tokens).
    pub const ALL: [Currency; 2] = [Currency::Usdc, Currency::Eurc];

    /// The ticker as written in `#[paid(currency = "…")]`.
    pub const fn symbol(self) -> &'static str {
        match self {
            Currency::Usdc => "USDC",
            Currency::Eurc => "EURC",
            Currency::Token(token) => token.symbol,
        }
    }

    /// Number of decimals of the token's atomic unit.
    pub const fn decimals(self) -> u8 {
        match self {
            Currency::Usdc | Currency::Eurc => 6,
            Currency::Token(token) => token.decimals,
        }
    }

    /// ISO 4217 code of the fiat currency the token tracks, when it is known to track one.
    pub fn iso_4217(self) -> Option<&'static str> {
        match self {
            Currency::Usdc => Some("USD"),
            Currency::Eurc => Some("EUR"),
            Currency::Token(token) => KNOWN_TOKENS
                .iter()
                .any(|(symbol, _)| *symbol == token.symbol)
                .then_some("USD"),
        }
    }

    /// Looks a built-in currency up by its ticker (exact, upper case).
    pub fn from_symbol(symbol: &str) -> Option<Currency> {
        Currency::ALL.into_iter().find(|c| c.symbol() == symbol)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// A fixed price: validated and converted at compile time by `#[paid]`, or at startup for a
/// price set by the configuration ([`X402ConfigBuilder::price`](crate::X402ConfigBuilder::price)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Price {
    /// The price as written, without a leading `$` (for example `"0.001"`).
    pub human: Cow<'static, str>,
    /// The price in atomic units of the currency's token (`"0.001"` USDC is `1000`).
    pub atomic: u128,
    /// The token's decimals the atomic amount was computed with.
    pub decimals: u8,
    /// The currency.
    pub currency: Currency,
}

impl Price {
    /// Reads `text` as a price in `currency`, by the rules `#[paid(price = "…")]` follows: a
    /// plain positive decimal, `$` only for USDC, at most the token's decimals.
    ///
    /// ```
    /// use x402_runtime::{Currency, Price};
    ///
    /// let price = Price::parse("$0.002", Currency::Usdc).unwrap();
    /// assert_eq!((price.human.as_ref(), price.atomic), ("0.002", 2_000));
    /// assert!(Price::parse("0.0000001", Currency::Usdc).is_err()); // 6 decimals
    /// assert!(Price::parse("0", Currency::Eurc).is_err());
    /// ```
    pub fn parse(text: &str, currency: Currency) -> Result<Price, String> {
        let decimal = x402_price::Decimal::parse(text)?;
        let atomic = decimal.atomic(
            currency.symbol(),
            currency.decimals(),
            currency == Currency::Usdc,
        )?;
        Ok(Price {
            human: Cow::Owned(decimal.human().to_owned()),
            atomic,
            decimals: currency.decimals(),
            currency,
        })
    }
}

impl Price {
    /// `atomic` units of `currency`'s token, written without trailing zeros (`1500` USDC units
    /// is `"0.0015"`).
    ///
    /// ```
    /// use x402_runtime::{Currency, Price};
    ///
    /// assert_eq!(Price::from_atomic(1500, Currency::Usdc).human, "0.0015");
    /// assert_eq!(Price::from_atomic(2_000_000, Currency::Eurc).human, "2");
    /// ```
    pub fn from_atomic(atomic: u128, currency: Currency) -> Price {
        let decimals = usize::from(currency.decimals());
        let digits = format!("{atomic:0>width$}", width = decimals + 1);
        let (whole, fraction) = digits.split_at(digits.len() - decimals);
        let fraction = fraction.trim_end_matches('0');
        let human = if fraction.is_empty() {
            whole.to_owned()
        } else {
            format!("{whole}.{fraction}")
        };
        Price {
            human: Cow::Owned(human),
            atomic,
            decimals: currency.decimals(),
            currency,
        }
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.human, self.currency)
    }
}

/// How a route is priced.
///
/// The enum is non-exhaustive so that other ways to price (a maximum settled by usage) can be
/// added without breaking code that matches on it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pricing {
    /// The same price for every request.
    Fixed(Price),
    /// A price quoted per request by the route's quote function
    /// (`#[paid(quote = …, min = …, max = …)]`), always within these published bounds.
    Quoted(QuoteBounds),
    /// At most this price (`#[paid(upto = …)]`, the `upto` scheme): the payer authorizes it, the
    /// handler reports what the request used ([`Charge`](crate::Charge)) and only that is
    /// settled.
    Upto(Price),
}

/// The published bounds of a quoted route's price, both inclusive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteBounds {
    /// The least a request can cost.
    pub min: Price,
    /// The most a request can cost.
    pub max: Price,
}

impl QuoteBounds {
    /// Whether `price` lies within the bounds.
    pub fn contains(&self, price: &Price) -> bool {
        (self.min.atomic..=self.max.atomic).contains(&price.atomic)
    }
}

impl fmt::Display for QuoteBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}–{} {}",
            self.min.human, self.max.human, self.min.currency
        )
    }
}

impl Pricing {
    /// The fixed price, if the route has one.
    pub const fn fixed(&self) -> Option<&Price> {
        match self {
            Pricing::Fixed(price) => Some(price),
            Pricing::Quoted(_) | Pricing::Upto(_) => None,
        }
    }

    /// The bounds of a quoted route.
    pub const fn bounds(&self) -> Option<&QuoteBounds> {
        match self {
            Pricing::Fixed(_) | Pricing::Upto(_) => None,
            Pricing::Quoted(bounds) => Some(bounds),
        }
    }

    /// The maximum of an `upto` route.
    pub const fn upto(&self) -> Option<&Price> {
        match self {
            Pricing::Upto(max) => Some(max),
            Pricing::Fixed(_) | Pricing::Quoted(_) => None,
        }
    }

    /// The most one request can cost: the fixed price, the upper bound of a quote, or the
    /// maximum of an `upto` route.
    pub const fn most(&self) -> &Price {
        match self {
            Pricing::Fixed(price) | Pricing::Upto(price) => price,
            Pricing::Quoted(bounds) => &bounds.max,
        }
    }

    /// The currency every price of this route is in (the first of its currencies).
    pub const fn currency(&self) -> Currency {
        self.most().currency
    }
}

impl fmt::Display for Pricing {
    /// `0.001 USDC`, `0.001–0.05 USDC` for a quoted route, `up to 0.50 USDC` for `upto`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pricing::Fixed(price) => price.fmt(f),
            Pricing::Quoted(bounds) => bounds.fmt(f),
            Pricing::Upto(max) => write!(f, "up to {max}"),
        }
    }
}
