//! The price: a strict decimal read from the string literal (the grammar is `x402_price`'s, shared
//! with prices set at startup), converted to atomic units with integer arithmetic only.

use syn::LitStr;
use x402_price::Decimal;

use super::currency::Currency;

/// The value of `price = ...` as written.
pub(crate) enum PriceExpr {
    /// `price = "0.001"`.
    Literal(LitStr),
}

/// How the route is priced: a mirror of `x402_runtime::Pricing`.
pub(crate) enum Pricing {
    Fixed(FixedPrice),
}

/// A validated fixed price: a mirror of `x402_runtime::Price`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FixedPrice {
    /// The price as written, without a leading `$`.
    pub(crate) human: String,
    /// The price in the token's atomic units.
    pub(crate) atomic: u128,
    pub(crate) currency: Currency,
}

/// Checks the text of a price literal: everything that does not depend on the currency.
pub(crate) fn check_text(lit: &LitStr) -> syn::Result<()> {
    Decimal::parse(&lit.value())
        .map(drop)
        .map_err(|message| syn::Error::new(lit.span(), message))
}

/// The price in the first of `currencies`, checked in every one of them (a route offered in
/// several currencies asks the same amount in each); its text was checked by [`check_text`].
pub(crate) fn resolve(price: &PriceExpr, currencies: &[Currency]) -> syn::Result<Pricing> {
    let PriceExpr::Literal(lit) = price;
    let text = lit.value();
    let in_currency = |currency: Currency| {
        Decimal::parse(&text)
            .and_then(|decimal| {
                let atomic = decimal.atomic(
                    currency.symbol(),
                    currency.decimals(),
                    currency == Currency::Usdc,
                )?;
                Ok(FixedPrice {
                    human: decimal.human().to_owned(),
                    atomic,
                    currency,
                })
            })
            .map_err(|message| syn::Error::new(lit.span(), message))
    };
    let mut prices = currencies.iter().map(|c| in_currency(*c));
    let first = prices
        .next()
        .unwrap_or_else(|| in_currency(Currency::DEFAULT))?;
    prices.try_for_each(|price| price.map(drop))?;
    Ok(Pricing::Fixed(first))
}
