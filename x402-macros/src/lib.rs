//! The `#[paid]` and `#[quote]` attribute macros.
//!
//! This crate is an implementation detail of `x402-runtime`: depend on `x402-runtime` and use
//! `x402_runtime::paid`, which is documented there. The expansion names items of
//! `x402-runtime` by absolute path, so this crate cannot be used on its own.

mod paid;
mod quote_fn;

use proc_macro::TokenStream;

/// Turns an axum handler into an x402-paid endpoint.
///
/// See `x402_runtime::paid` for the documentation.
#[proc_macro_attribute]
pub fn paid(args: TokenStream, item: TokenStream) -> TokenStream {
    paid::expand(args.into(), item.into()).into()
}

/// Marks the quote function of a quoted `#[paid]` route.
///
/// See `x402_runtime::quote` for the documentation.
#[proc_macro_attribute]
pub fn quote(args: TokenStream, item: TokenStream) -> TokenStream {
    quote_fn::expand(args.into(), item.into()).into()
}
