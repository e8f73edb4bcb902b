//! `#[quote]`: the quote function of a quoted `#[paid]` route becomes a unit struct of the same
//! name implementing `Quoter`, so that the paid handler's `Handler` impl can name it in a bound
//! (a function item's type has no name).
//!
//! ```text
//! #[doc..] pub struct quote_forecast;
//! const _: () = {
//!     impl<S, M> Quoter<M, S> for quote_forecast where (Json<Req>,): Extractors<S, M>
//!     { fn quote(self, parts, body, state) -> .. { run_quote(parts, body, state, __x402_quote) } }
//!     fn __x402_quote((a0,): (Json<Req>,)) -> QuoteFuture { quote_future(quote_forecast(a0)) }
//!     async fn quote_forecast(Json(req): Json<Req>) -> Quote { .. }   // the user's function
//! };
//! ```

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Ident, ItemFn};

/// Expands `#[quote] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(func) => func,
        Err(_) => return with_error(item, "`#[quote]` goes on an `async fn`", Span::call_site()),
    };
    if !args.is_empty() {
        let message = "`#[quote]` takes no arguments: the bounds go on the route, \
                       `#[paid(quote = …, min = \"…\", max = \"…\")]`";
        return with_error(item, message, Span::call_site());
    }
    if let Some(error) = problem(&func) {
        let mut tokens = item;
        tokens.extend(error.to_compile_error());
        return tokens;
    }
    generate(&func)
}

/// The first reason `func` cannot be a quote function.
fn problem(func: &ItemFn) -> Option<syn::Error> {
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        return Some(syn::Error::new_spanned(
            sig.fn_token,
            "a `#[quote]` function must be `async fn`: add `async`",
        ));
    }
    if let Some(receiver) = sig.receiver() {
        return Some(syn::Error::new_spanned(
            receiver,
            "a `#[quote]` function cannot take `self`: write a free `async fn`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Some(syn::Error::new_spanned(
            &sig.generics,
            "a `#[quote]` function cannot be generic: name the extractor types",
        ));
    }
    if sig.inputs.len() > 16 {
        return Some(syn::Error::new_spanned(
            &sig.inputs,
            "a `#[quote]` function takes at most 16 extractors",
        ));
    }
    None
}

fn generate(func: &ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let name = &sig.ident;
    let inputs = &sig.inputs;
    let output = &sig.output;
    let (args, types) = crate::paid::arguments(sig);
    let docs = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc") || a.path().is_ident("cfg"));
    let cfg = attrs.iter().filter(|a| a.path().is_ident("cfg"));
    let state = Ident::new("__X402State", Span::call_site());
    let via = Ident::new("__X402Via", Span::call_site());
    quote! {
        #(#docs)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug)]
        #vis struct #name;

        #(#cfg)*
        const _: () = {
            impl<#state, #via> ::x402_runtime::__private::Quoter<#via, #state> for #name
            where
                #state: ::core::marker::Send + ::core::marker::Sync + 'static,
                #via: 'static,
                (#(#types,)*): ::x402_runtime::__private::Extractors<#state, #via>,
            {
                fn quote<'a>(
                    self,
                    parts: ::x402_runtime::__private::Parts,
                    body: ::x402_runtime::__private::Bytes,
                    state: &'a #state,
                ) -> ::x402_runtime::BoxFuture<'a, ::core::result::Result<
                    ::x402_runtime::Quote,
                    ::x402_runtime::__private::Response,
                >> {
                    ::x402_runtime::__private::run_quote(parts, body, state, __x402_quote)
                }
            }

            fn __x402_quote(
                (#(#args,)*): (#(#types,)*),
            ) -> ::x402_runtime::__private::QuoteFuture {
                ::x402_runtime::__private::quote_future(#name(#(#args),*))
            }

            #(#attrs)*
            #[allow(clippy::unused_async)]
            async fn #name(#inputs) #output #block
        };
    }
}

fn with_error(item: TokenStream, message: &str, span: Span) -> TokenStream {
    let mut tokens = item;
    tokens.extend(syn::Error::new(span, message).to_compile_error());
    tokens
}
