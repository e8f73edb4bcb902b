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
    /// `quote = path, min = "…", max = "…"`: the quote function and its bounds.
    Quoted {
        quote: syn::Path,
        min: FixedPrice,
        max: FixedPrice,
    },
    /// `upto = "…"`: the most a request can cost.
    Upto(FixedPrice),
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
    in_currencies(lit, currencies).map(Pricing::Fixed)
}

/// The maximum of an `upto` route, checked in every currency like a price.
pub(crate) fn resolve_upto(max: &PriceExpr, currencies: &[Currency]) -> syn::Result<Pricing> {
    let PriceExpr::Literal(lit) = max;
    in_currencies(lit, currencies).map(Pricing::Upto)
}

/// The bounds of a quote, each checked in every currency, `min` at most `max`.
pub(crate) fn resolve_quote(
    quote: &syn::Path,
    min: &LitStr,
    max: &LitStr,
    currencies: &[Currency],
) -> syn::Result<Pricing> {
    let low = in_currencies(min, currencies);
    let high = in_currencies(max, currencies);
    let (min_price, max_price) = match (low, high) {
        (Ok(low), Ok(high)) => (low, high),
        (Err(mut first), Err(second)) => {
            first.combine(second);
            return Err(first);
        }
        (Err(error), _) | (_, Err(error)) => return Err(error),
    };
    if min_price.atomic > max_price.atomic {
        return Err(syn::Error::new(
            max.span(),
            format!(
                "`max` ({}) is below `min` ({}): a quote lies between them, so write the smaller \
                 one in `min`",
                max_price.human, min_price.human
            ),
        ));
    }
    Ok(Pricing::Quoted {
        quote: quote.clone(),
        min: min_price,
        max: max_price,
    })
}

/// `lit` in the first of `currencies`, checked in every one.
fn in_currencies(lit: &LitStr, currencies: &[Currency]) -> syn::Result<FixedPrice> {
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
    Ok(first)
}
