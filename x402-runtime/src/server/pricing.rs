//! What a route costs in this deployment: the price its `#[paid]` attribute compiled in, unless
//! the configuration sets another ([`X402ConfigBuilder::price`](super::config::X402ConfigBuilder::price),
//! `X402_PRICES`), resolved once when the paywall is built. The 402, the published documents and
//! the admission of a payment read it through `X402::pricing`.

use std::collections::HashMap;

use super::config::X402Config;
use crate::base::ConfigError;
use crate::price::{Price, Pricing};
use crate::route::PaidRoute;

/// The prices the configuration sets, by route.
pub(crate) type Overrides = HashMap<usize, Price>;

/// Resolves the configured prices against the registered `routes`: each must name exactly one
/// route, by operation id or by `METHOD /path`, and be a valid price in that route's currency.
/// Every price set is logged.
pub(crate) fn resolve(
    config: &X402Config,
    routes: &[&'static PaidRoute],
) -> Result<Overrides, ConfigError> {
    let mut overrides = Overrides::new();
    for (selector, text) in config.prices() {
        let route = select(selector, routes)?;
        let Pricing::Fixed(compiled) = &route.pricing else {
            return Err(ConfigError::new(format!(
                "a price is set for `{selector}`, which is priced {}: only a fixed price can be \
                 replaced",
                if route.pricing.upto().is_some() {
                    "by usage (`upto`)"
                } else {
                    "by its quote function"
                }
            )));
        };
        // Checked as written in every currency the route takes (a `$` only suits USDC).
        let price = route
            .currencies
            .iter()
            .try_for_each(|currency| Price::parse(text, *currency).map(drop))
            .and_then(|()| Price::parse(text, compiled.currency))
            .map_err(|why| ConfigError::new(format!("the price set for `{selector}`: {why}")))?;
        if overrides.insert(route.id(), price.clone()).is_some() {
            return Err(ConfigError::new(format!(
                "the price of `{}` is set twice (once as `{selector}`): keep one",
                route.operation_id
            )));
        }
        tracing::info!(
            route = route.operation_id,
            handler = route.handler,
            compiled = %compiled,
            price = %price,
            "x402: price set by the configuration"
        );
    }
    Ok(overrides)
}

/// `price` in each currency `route` can be paid in, in its order: the same amount, in each
/// token's atomic units (`price` itself is in the first currency).
pub(crate) fn in_each_currency(route: &PaidRoute, price: &Price) -> Result<Vec<Price>, String> {
    let mut prices = vec![price.clone()];
    for currency in route.currencies.iter().skip(1) {
        prices.push(Price::parse(&price.human, *currency)?);
    }
    Ok(prices)
}

/// The one route `selector` names: `METHOD /path`, or an operation id.
fn select(
    selector: &str,
    routes: &[&'static PaidRoute],
) -> Result<&'static PaidRoute, ConfigError> {
    let matches = |route: &&&'static PaidRoute| match selector.split_once(' ') {
        Some((method, path)) => {
            route.method.is_some_and(|m| m.eq_ignore_ascii_case(method))
                && route.path == Some(path.trim())
        }
        None => route.operation_id == selector,
    };
    let found: Vec<&'static PaidRoute> = routes.iter().filter(matches).copied().collect();
    match found.as_slice() {
        [route] => Ok(route),
        [] => Err(ConfigError::new(format!(
            "a price is set for `{selector}`, which names no paid route; the routes are: {}",
            routes
                .iter()
                .map(|r| name(r))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        several => Err(ConfigError::new(format!(
            "a price is set for `{selector}`, which names {} paid routes ({}): name one by \
             `METHOD /path`",
            several.len(),
            several
                .iter()
                .map(|r| name(r))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `weather (GET /weather)`, or the operation id alone when the path is not known.
fn name(route: &PaidRoute) -> String {
    match (route.method, route.path) {
        (Some(method), Some(path)) => format!("{} ({method} {path})", route.operation_id),
        _ => route.operation_id.to_owned(),
    }
}
