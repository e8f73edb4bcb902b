//! The compile-time registry of paid handlers.
//!
//! Every `#[paid]` handler submits one [`PaidRoute`] record through `inventory` when it is compiled.
//! The record is a constant: the price was parsed and converted to atomic units by the macro, so
//! nothing about it is re-parsed at run time. [`routes`] lists every record linked into the binary.

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

/// When the payment is settled relative to the handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SettleTiming {
    /// Run the handler first and settle only if it answered 2xx (the default): a failing
    /// handler never costs the caller anything.
    #[default]
    AfterSuccess,
    /// Settle before the handler runs (`settle = "before"`): for handlers with side effects
    /// that cannot be undone. If settlement fails the handler never runs.
    Before,
}

/// The record `#[paid]` registers for one handler.
///
/// Fields are public so the macro can build the record in a constant; read them through the
/// accessor methods, which stay stable when fields are added.
#[derive(Debug)]
pub struct PaidRoute {
    #[doc(hidden)]
    pub handler: &'static str,
    #[doc(hidden)]
    pub module_path: &'static str,
    #[doc(hidden)]
    pub operation_id: &'static str,
    #[doc(hidden)]
    pub pricing: Pricing,
    #[doc(hidden)]
    pub description: Option<&'static str>,
    #[doc(hidden)]
    pub max_timeout_seconds: Option<u32>,
    #[doc(hidden)]
    pub settle: SettleTiming,
    #[doc(hidden)]
    pub method: Option<&'static str>,
    #[doc(hidden)]
    pub path: Option<&'static str>,
    #[doc(hidden)]
    pub file: &'static str,
    #[doc(hidden)]
    pub line: u32,
}

impl PaidRoute {
    /// The handler function's name.
    pub fn handler(&self) -> &'static str {
        self.handler
    }

    /// The module the handler is defined in (`module_path!()` at the handler).
    pub fn module_path(&self) -> &'static str {
        self.module_path
    }

    /// The OpenAPI operation id: `operation_id = "…"` in the attribute, else the one in
    /// `#[utoipa::path]`, else the function name.
    pub fn operation_id(&self) -> &'static str {
        self.operation_id
    }

    /// How the route is priced.
    pub fn pricing(&self) -> &Pricing {
        &self.pricing
    }

    /// The fixed price, if the route has one.
    pub fn price(&self) -> Option<&Price> {
        self.pricing.fixed()
    }

    /// `description = "…"` from the attribute, else the first paragraph of the doc comment.
    pub fn description(&self) -> Option<&'static str> {
        self.description
    }

    /// `max_timeout_seconds` from the attribute; `None` means the configuration's default.
    pub fn max_timeout_seconds(&self) -> Option<u32> {
        self.max_timeout_seconds
    }

    /// When settlement happens.
    pub fn settle_timing(&self) -> SettleTiming {
        self.settle
    }

    /// The HTTP method, upper case, when known (from the attribute or `#[utoipa::path]`).
    pub fn method(&self) -> Option<&'static str> {
        self.method
    }

    /// The route path (axum syntax), when known.
    pub fn path(&self) -> Option<&'static str> {
        self.path
    }

    /// Source file of the handler.
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// Source line of the `#[paid]` attribute.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// A stable identity for maps keyed by route: the address of the registered record.
    pub(crate) fn id(&'static self) -> usize {
        std::ptr::from_ref(self) as usize
    }
}

/// The value `#[paid]` submits to `inventory`: a reference to the handler's static record.
#[doc(hidden)]
pub struct RouteEntry(pub &'static PaidRoute);

inventory::collect!(RouteEntry);

/// Every `#[paid]` handler linked into this binary, sorted by path, method and operation id
/// (records without a path sort by module and handler name).
///
/// A handler in a library crate is only linked if the binary uses that crate; see the crate
/// documentation.
pub fn routes() -> Vec<&'static PaidRoute> {
    let mut all: Vec<&'static PaidRoute> = inventory::iter::<RouteEntry>
        .into_iter()
        .map(|entry| entry.0)
        .collect();
    all.sort_by(|a, b| {
        (a.path, a.method, a.module_path, a.handler, a.operation_id).cmp(&(
            b.path,
            b.method,
            b.module_path,
            b.handler,
            b.operation_id,
        ))
    });
    all
}

/// Implemented by every handler `#[paid]` generates (the unit struct that replaces the function).
#[doc(hidden)]
pub trait PaidEndpoint: Send + Sync + 'static {
    /// The handler's registered record.
    const ROUTE: &'static PaidRoute;
}
