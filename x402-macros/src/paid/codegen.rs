//! The expansion: a marker type, the route record, and the rewritten handler.
//!
//! Runtime items are named by absolute path (`::x402_runtime::...`); injected tokens carry the
//! call-site span (the attribute), copied tokens keep the user's spans.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::{FnArg, Ident, ItemFn};

use super::Paid;
use super::currency::Currency;
use super::price::{FixedPrice, Pricing};
use super::values::Settle;

/// The marker struct, the registration, and the handler.
pub(crate) fn expand(paid: &Paid<'_>) -> TokenStream {
    let vis = &paid.func.vis;
    let marker = format_ident!(
        "__x402_route_{}",
        paid.func.sig.ident.unraw(),
        span = Span::call_site()
    );
    let record = route_record(paid);
    let handler = handler(paid.func, &marker);
    quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #marker;

        const _: () = {
            static __X402_ROUTE: ::x402_runtime::PaidRoute = #record;
            impl ::x402_runtime::__private::PaidEndpoint for #marker {
                const ROUTE: &'static ::x402_runtime::PaidRoute = &__X402_ROUTE;
            }
            ::x402_runtime::__private::inventory::submit! {
                ::x402_runtime::__private::RouteEntry(&__X402_ROUTE)
            }
        };

        #handler
    }
}

/// The `PaidRoute` constant.
fn route_record(paid: &Paid<'_>) -> TokenStream {
    let handler = paid.func.sig.ident.unraw().to_string();
    let route = &paid.route;
    let operation_id = &route.operation_id;
    let pricing = match &paid.pricing {
        Pricing::Fixed(price) => {
            let price = fixed_price(price);
            quote!(::x402_runtime::Pricing::Fixed(#price))
        }
    };
    let description = option(route.description.as_ref().map(|d| quote!(#d)));
    let max_timeout_seconds = option(paid.max_timeout_seconds.map(|s| quote!(#s)));
    let settle = match paid.settle {
        Settle::AfterSuccess => quote!(::x402_runtime::SettleTiming::AfterSuccess),
        Settle::Before => quote!(::x402_runtime::SettleTiming::Before),
    };
    let method = option(route.method.as_ref().map(|m| quote!(#m)));
    let path = option(route.path.as_ref().map(|p| quote!(#p)));
    quote! {
        ::x402_runtime::PaidRoute {
            handler: #handler,
            module_path: ::core::module_path!(),
            operation_id: #operation_id,
            pricing: #pricing,
            description: #description,
            max_timeout_seconds: #max_timeout_seconds,
            settle: #settle,
            method: #method,
            path: #path,
            file: ::core::file!(),
            line: ::core::line!(),
        }
    }
}

fn fixed_price(price: &FixedPrice) -> TokenStream {
    let FixedPrice {
        human,
        atomic,
        currency,
    } = price;
    let decimals = currency.decimals();
    let currency = match currency {
        Currency::Usdc => quote!(::x402_runtime::Currency::Usdc),
        Currency::Eurc => quote!(::x402_runtime::Currency::Eurc),
    };
    // Integer `ToTokens` emits suffixed literals: `1000u128`, `6u8`.
    quote! {
        ::x402_runtime::Price {
            human: #human,
            atomic: #atomic,
            decimals: #decimals,
            currency: #currency,
        }
    }
}

fn option(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

/// The handler axum sees: the paywall first, then the user's extractors; the user's function,
/// unchanged, runs inside it. The wrapper is a plain `fn` returning the paywall's boxed future,
/// and the runtime's `finish` is not generic, so a paid handler adds only the user's own
/// future, boxed, to what the crate compiles. The `allow` is for the argument the paywall adds: seven
/// extractors must not trip clippy's limit of seven arguments.
fn handler(func: &ItemFn, marker: &Ident) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let name = &sig.ident;
    let inputs = &sig.inputs;
    let output = &sig.output;
    let (args, types): (Vec<Ident>, Vec<_>) = sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(typed) => Some(&typed.ty),
            FnArg::Receiver(_) => None,
        })
        .enumerate()
        .map(|(i, ty)| (format_ident!("__x402_arg{}", i), ty))
        .unzip();
    quote! {
        #[allow(clippy::too_many_arguments)]
        #(#attrs)*
        #vis fn #name(
            __x402_paywall: ::x402_runtime::__private::Paywall<#marker>,
            #(#args: #types,)*
        ) -> ::x402_runtime::__private::HandlerFuture<'static> {
            #[allow(clippy::too_many_arguments, clippy::unused_async)]
            async fn __x402_handler(#inputs) #output #block
            __x402_paywall.finish(::x402_runtime::__private::handler_future(
                __x402_handler(#(#args),*)
            ))
        }
    }
}
