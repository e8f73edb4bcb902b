//! `#[paid]`: parse the arguments, check the handler, then generate.
//!
//! Every phase records its mistakes in one [`Errors`] list instead of stopping at the first, so a
//! user sees all of them in one compile. On any error the handler is emitted unchanged next to the
//! errors: the route that uses it still resolves and no follow-on error hides the real one.

mod args;
mod codegen;
mod currency;
mod handler;
mod keys;
mod offers;
mod price;
mod route;
#[cfg(test)]
mod tests;
mod values;

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ItemFn;

use self::args::PaidArgs;
pub(crate) use self::codegen::arguments;
use self::currency::Currency;
use self::price::Pricing;
use self::route::RouteInfo;
use self::values::Settle;

/// Expands `#[paid(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(func) => func,
        Err(error) => {
            let error = not_a_function(&item, error);
            return with_error(item, error);
        }
    };
    match analyse(args, &func) {
        Ok(paid) => codegen::expand(&paid),
        Err(error) => with_error(item, error),
    }
}

/// Everything the code generator needs, validated.
pub(crate) struct Paid<'a> {
    pub(crate) func: &'a ItemFn,
    pub(crate) pricing: Pricing,
    /// Every currency the route can be paid in, preferred first (the pricing's is first).
    pub(crate) currencies: Vec<Currency>,
    /// `networks = [...]`: empty for the configuration's.
    pub(crate) networks: Vec<syn::LitStr>,
    pub(crate) pay_to: Option<String>,
    pub(crate) max_timeout_seconds: Option<u32>,
    pub(crate) settle: Settle,
    /// `pay_page = false` turns the browser page off for this route.
    pub(crate) pay_page: bool,
    pub(crate) route: RouteInfo,
}

/// Parses and checks everything, collecting every error before giving up.
fn analyse(args: TokenStream, func: &ItemFn) -> syn::Result<Paid<'_>> {
    let mut errors = Errors::default();
    let args = PaidArgs::parse(args, &mut errors);
    let currencies = args.currencies();
    let pricing = match (&args.price, &args.quote, &currencies) {
        (None, None, Some(currencies)) => args
            .upto
            .as_ref()
            .and_then(|max| errors.take(price::resolve_upto(max, currencies))),
        (Some(price), None, Some(currencies)) => errors.take(price::resolve(price, currencies)),
        (None, Some(quote), Some(currencies)) => match (&args.min, &args.max) {
            (Some(min), Some(max)) => {
                errors.take(price::resolve_quote(quote, min, max, currencies))
            }
            // A missing bound was reported by `PaidArgs::parse`.
            _ => None,
        },
        _ => None,
    };
    let route = route::resolve(&args, func, &mut errors);
    handler::check(func, &mut errors);
    errors.finish()?;
    Ok(Paid {
        func,
        // `PaidArgs::parse` reports a missing price, so this only guards the invariant.
        pricing: pricing.ok_or_else(args::missing_price)?,
        currencies: currencies.unwrap_or_default(),
        networks: args.networks.clone().unwrap_or_default(),
        pay_to: args.pay_to.clone(),
        max_timeout_seconds: args.max_timeout_seconds,
        settle: args.settle.unwrap_or_default(),
        pay_page: args.pay_page.unwrap_or(true),
        route,
    })
}

/// The item, untouched, followed by the errors.
fn with_error(item: TokenStream, error: syn::Error) -> TokenStream {
    let mut tokens = item;
    tokens.extend(error.to_compile_error());
    tokens
}

/// Rewords the parse error when the item is something other than a function.
fn not_a_function(item: &TokenStream, error: syn::Error) -> syn::Error {
    match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(_)) | Err(_) => error,
        Ok(other) => syn::Error::new_spanned(
            other.into_token_stream(),
            "`#[paid]` goes on an axum handler: an `async fn`",
        ),
    }
}

/// The errors found so far, merged with [`syn::Error::combine`].
///
/// Recorded errors must reach the compiler through [`Errors::finish`]: dropping a list that still
/// holds some would turn a rejected handler into an accepted one, so that panics (a bug in this
/// crate, caught by its tests) instead of passing silently.
#[derive(Default)]
#[must_use = "recorded errors reach the compiler only through `Errors::finish`"]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    /// Records one more error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// The value of `result`, or `None` after recording its error.
    pub(crate) fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    /// `Ok` if nothing was recorded, else all errors at once.
    pub(crate) fn finish(mut self) -> syn::Result<()> {
        self.combined.take().map_or(Ok(()), Err)
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        // An unwinding panic already reports a bug; a second one would abort instead.
        if let Some(lost) = &self.combined
            && !std::thread::panicking()
        {
            panic!("`Errors` dropped without `finish`: {lost}");
        }
    }
}
