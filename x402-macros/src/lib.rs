//! The `#[paid]` attribute macro.
//!
//! This crate is an implementation detail of `x402-runtime`: depend on `x402-runtime` and use
//! `x402_runtime::paid`, which is documented there. The expansion names items of
//! `x402-runtime` by absolute path, so this crate cannot be used on its own.

mod paid;

use proc_macro::TokenStream;

/// Turns an axum handler into an x402-paid endpoint.
///
/// See `x402_runtime::paid` for the documentation.
#[proc_macro_attribute]
pub fn paid(args: TokenStream, item: TokenStream) -> TokenStream {
    paid::expand(args.into(), item.into()).into()
}
