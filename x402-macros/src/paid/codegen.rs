//! The expansion: the function becomes a unit struct of the same name that implements axum's
//! `Handler`; the route record and the user's function, unchanged, go in a `const _` block.
//!
//! ```text
//! #[doc..] pub struct weather;                       // what `get(weather)` mounts
//! const _: () = {
//!     static __X402_ROUTE: PaidRoute = ..;           // + PaidEndpoint impl, inventory::submit!
//!     impl<S, M> Handler<Via<weather, M>, S> for weather
//!     where (Query<City>,): Extractors<S, M>
//!     { fn call(self, request, state) -> .. { serve(&__X402_ROUTE, request, state, __x402_call) } }
//!     fn __x402_call((a0,): (Query<City>,)) -> HandlerFuture<'static> { handler_future(weather(a0)) }
//!     async fn weather(Query(q): Query<City>) -> Json<Weather> { .. }   // the user's function
//! };
//! ```
//!
//! Admission, extraction and settlement (`serve`) are compiled in the runtime crate, generic
//! only in the state and the argument types, where axum's impl for functions would compile its
//! whole request future again for every handler. Runtime items are named by absolute path
//! (`::x402_runtime::...`); injected tokens carry the call-site span (the attribute), copied
//! tokens keep the user's spans.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{Attribute, FnArg, Ident, ItemFn, Meta};

use super::Paid;
use super::currency::Currency;
use super::price::{FixedPrice, Pricing};
use super::route::{UtoipaTarget, utoipa_attribute};
use super::values::Settle;

/// The struct, the `__path_` struct for utoipa when needed, and the `const _` block.
pub(crate) fn expand(paid: &Paid<'_>) -> TokenStream {
    let func = paid.func;
    let vis = &func.vis;
    let name = &func.sig.ident;
    let path_struct = format_ident!("__path_{}", name.unraw(), span = name.span());
    let Sorted {
        cfg,
        on_struct,
        on_function,
        utoipa,
    } = Sorted::new(&func.attrs, &path_struct);
    let record = route_record(paid);
    let quote = match &paid.pricing {
        Pricing::Quoted { quote, .. } => Some(quote),
        Pricing::Fixed(_) | Pricing::Upto(_) => None,
    };
    let handler = handler(func, &on_function, quote);
    let shapes = shapes(&func.sig);
    // utoipa declares `__path_<name>` next to the function it annotates, which is inside the
    // block here: it is declared outside instead, and utoipa told to implement it (`impl_for`).
    let path_struct = (utoipa == Some(UtoipaTarget::Default)).then(|| {
        quote! {
            #(#cfg)*
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            #[derive(Clone, Copy)]
            #vis struct #path_struct;
        }
    });
    quote! {
        #(#cfg)*
        #(#on_struct)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug)]
        #vis struct #name;

        #path_struct

        #(#cfg)*
        #[allow(deprecated)]
        const _: () = {
            static __X402_ROUTE: ::x402_runtime::PaidRoute = #record;
            impl ::x402_runtime::__private::PaidEndpoint for #name {
                const ROUTE: &'static ::x402_runtime::PaidRoute = &__X402_ROUTE;
            }
            ::x402_runtime::__private::inventory::submit! {
                ::x402_runtime::__private::RouteEntry(&__X402_ROUTE)
            }
            #handler
            #shapes
        };
    }
}

/// The function's attributes, by where they go.
struct Sorted {
    /// `#[cfg]`: on every item.
    cfg: Vec<Attribute>,
    /// Doc comments, `#[deprecated]`, and lint levels other than `expect`: also on the struct.
    on_struct: Vec<Attribute>,
    /// Everything but `#[cfg]`, in order, on the user's function; a `#[utoipa::path]` gains
    /// `impl_for = __path_<name>`.
    on_function: Vec<TokenStream>,
    /// Whether there is a `#[utoipa::path]`, and where it implements its operation.
    utoipa: Option<UtoipaTarget>,
}

impl Sorted {
    fn new(attrs: &[Attribute], path_struct: &Ident) -> Self {
        let mut sorted = Sorted {
            cfg: Vec::new(),
            on_struct: Vec::new(),
            on_function: Vec::new(),
            utoipa: None,
        };
        for attr in attrs {
            let path = attr.path();
            if path.is_ident("cfg") {
                sorted.cfg.push(attr.clone());
                continue;
            }
            if ["doc", "deprecated", "allow", "warn", "deny", "forbid"]
                .iter()
                .any(|name| path.is_ident(name))
            {
                sorted.on_struct.push(attr.clone());
            }
            match (utoipa_attribute(attr), &attr.meta) {
                (Some(target), Meta::List(list)) if sorted.utoipa.is_none() => {
                    sorted.utoipa = Some(target);
                    sorted.on_function.push(match target {
                        UtoipaTarget::Default => with_impl_for(attr, list, path_struct),
                        UtoipaTarget::Named => quote!(#attr),
                    });
                }
                _ => sorted.on_function.push(quote!(#attr)),
            }
        }
        sorted
    }
}

/// `fn __x402_shapes()`: the schemas of the types the handler extracts (`Query<T>`, `Path<T>`,
/// `Json<T>`, `Form<T>`) and returns (`Json<U>`, also as `Result<Json<U>, E>`), each asked of
/// the runtime's probe, which answers `None` for a type without `schemars::JsonSchema`, so
/// every handler compiles. Without the runtime's `schemars` feature (which turns on this
/// crate's) every answer would be `None`: the function then returns no shapes without asking,
/// which spares each handler's crate the probes' trait resolution.
fn shapes(sig: &syn::Signature) -> TokenStream {
    if !cfg!(feature = "schemars") {
        return quote! {
            fn __x402_shapes() -> ::x402_runtime::Shapes {
                ::x402_runtime::Shapes::default()
            }
        };
    }
    let private = quote!(::x402_runtime::__private);
    let probe = |ty: &syn::Type| quote!((&#private::Probe::<#ty>::NEW).schema());
    let mut sets = Vec::new();
    for ty in arguments(sig).1 {
        let Some((wrapper, inner)) = wrapped(ty) else {
            continue;
        };
        let schema = probe(inner);
        sets.push(match wrapper.as_str() {
            "Query" => quote!(shapes.query = shapes.query.or(#schema);),
            "Path" => quote!(shapes.path = shapes.path.or(#schema);),
            "Json" => quote! {
                shapes.body = shapes.body.or(#schema.map(|s| (::x402_runtime::BodyKind::Json, s)));
            },
            "Form" => quote! {
                shapes.body = shapes.body.or(#schema.map(|s| (::x402_runtime::BodyKind::Form, s)));
            },
            _ => continue,
        });
    }
    if let syn::ReturnType::Type(_, ty) = &sig.output {
        let json = match wrapped(ty) {
            Some((outer, inner)) if outer == "Result" => wrapped(inner),
            other => other,
        };
        if let Some((_, inner)) = json.filter(|(wrapper, _)| wrapper == "Json") {
            let schema = probe(inner);
            sets.push(quote!(shapes.output = #schema;));
        }
    }
    quote! {
        // The borrow picks `NoSchema` for types without a schema; clippy sees only those with one.
        #[allow(unused_imports, unused_mut, clippy::needless_borrow)]
        fn __x402_shapes() -> ::x402_runtime::Shapes {
            use #private::{NoSchema as _, WithSchema as _};
            let mut shapes = ::x402_runtime::Shapes::default();
            #(#sets)*
            shapes
        }
    }
}

/// `Name<T, …>` (by the path's last segment) → `("Name", T)`, the first type argument.
fn wrapped(ty: &syn::Type) -> Option<(String, &syn::Type)> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let first = args.args.iter().find_map(|arg| match arg {
        syn::GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })?;
    Some((last.ident.to_string(), first))
}

/// `#[utoipa::path(args)]` → `#[utoipa::path(args, impl_for = __path_<name>)]`.
fn with_impl_for(attr: &Attribute, list: &syn::MetaList, path_struct: &Ident) -> TokenStream {
    let pound = attr.pound_token;
    let path = &list.path;
    let tokens = &list.tokens;
    let ends_with_comma = matches!(
        tokens.clone().into_iter().last(),
        Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == ','
    );
    let separator = (!tokens.is_empty() && !ends_with_comma).then(|| quote!(,));
    quote!(#pound[#path(#tokens #separator impl_for = #path_struct)])
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
        Pricing::Upto(max) => {
            let max = fixed_price(max);
            quote!(::x402_runtime::Pricing::Upto(#max))
        }
        Pricing::Quoted { min, max, .. } => {
            let (min, max) = (fixed_price(min), fixed_price(max));
            quote!(::x402_runtime::Pricing::Quoted(::x402_runtime::QuoteBounds {
                min: #min,
                max: #max,
            }))
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
    let currencies = paid.currencies.iter().map(|c| currency(*c));
    // A Solana cluster compiles only with the runtime's `svm` feature, the error at the literal.
    let networks = paid.networks.iter().map(|lit| {
        if lit.value().starts_with("solana:") {
            quote_spanned!(lit.span()=> ::x402_runtime::__private::solana::<::x402_runtime::__private::SolanaCluster>(#lit))
        } else {
            quote!(#lit)
        }
    });
    let pay_to = option(paid.pay_to.as_ref().map(|a| quote!(#a)));
    let pay_page = paid.pay_page;
    quote! {
        ::x402_runtime::PaidRoute {
            handler: #handler,
            module_path: ::core::module_path!(),
            operation_id: #operation_id,
            pricing: #pricing,
            currencies: &[#(#currencies),*],
            networks: &[#(#networks),*],
            pay_to: #pay_to,
            description: #description,
            max_timeout_seconds: #max_timeout_seconds,
            settle: #settle,
            method: #method,
            path: #path,
            shapes: __x402_shapes,
            pay_page: #pay_page,
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
    let currency = self::currency(*currency);
    // Integer `ToTokens` emits suffixed literals: `1000u128`, `6u8`.
    quote! {
        ::x402_runtime::Price {
            human: ::std::borrow::Cow::Borrowed(#human),
            atomic: #atomic,
            decimals: #decimals,
            currency: #currency,
        }
    }
}

/// A name for each argument of `sig` (`__x402_arg0`, …) and its type, in order: the tuple the
/// extractors fill and the call that spreads it.
pub(crate) fn arguments(sig: &syn::Signature) -> (Vec<Ident>, Vec<&syn::Type>) {
    sig.inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(typed) => Some(&*typed.ty),
            FnArg::Receiver(_) => None,
        })
        .enumerate()
        .map(|(i, ty)| (format_ident!("__x402_arg{}", i), ty))
        .unzip()
}

fn currency(currency: Currency) -> TokenStream {
    match currency {
        Currency::Usdc => quote!(::x402_runtime::Currency::Usdc),
        Currency::Eurc => quote!(::x402_runtime::Currency::Eurc),
        Currency::Token(symbol, decimals) => {
            quote!(::x402_runtime::Currency::Token(::x402_runtime::Token::new(#symbol, #decimals)))
        }
    }
}

fn option(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

/// The `Handler` impl, the `fn` that calls the user's function with the extracted arguments,
/// and the user's function, unchanged but for where it lives. The impl is generic in the state
/// and in how the last argument is extracted, like axum's own impls for functions; a quoted
/// route's also in how its quote function's last argument is, and it serves through the quote.
fn handler(func: &ItemFn, attrs: &[TokenStream], quote: Option<&syn::Path>) -> TokenStream {
    let ItemFn { sig, block, .. } = func;
    let name = &sig.ident;
    let inputs = &sig.inputs;
    let output = &sig.output;
    let (args, types) = arguments(sig);
    let state = Ident::new("__X402State", Span::call_site());
    let via = Ident::new("__X402Via", Span::call_site());
    let quote_via = Ident::new("__X402QuoteVia", Span::call_site());
    let (generics, marker, bound, serve) = match quote {
        None => (
            quote!(#state, #via),
            quote!(#via),
            None,
            quote!(::x402_runtime::__private::serve(
                &__X402_ROUTE,
                request,
                state,
                __x402_call
            )),
        ),
        Some(quote) => (
            quote!(#state, #via, #quote_via),
            quote!((#via, #quote_via)),
            Some(quote!(#quote: ::x402_runtime::__private::Quoter<#quote_via, #state>,)),
            quote!(::x402_runtime::__private::serve_quoted(
                &__X402_ROUTE,
                request,
                state,
                #quote,
                __x402_call,
            )),
        ),
    };
    let quote_via_bound = quote.map(|_| quote!(#quote_via: 'static,));
    quote! {
        impl<#generics> ::x402_runtime::__private::Handler<
            ::x402_runtime::__private::Via<#name, #marker>,
            #state,
        > for #name
        where
            #state: ::core::clone::Clone + ::core::marker::Send + ::core::marker::Sync + 'static,
            #via: 'static,
            #quote_via_bound
            (#(#types,)*): ::x402_runtime::__private::Extractors<#state, #via>,
            #bound
        {
            type Future = ::x402_runtime::__private::HandlerFuture<'static>;

            fn call(
                self,
                request: ::x402_runtime::__private::Request,
                state: #state,
            ) -> Self::Future {
                #serve
            }
        }

        fn __x402_call(
            (#(#args,)*): (#(#types,)*),
        ) -> ::x402_runtime::__private::HandlerFuture<'static> {
            ::x402_runtime::__private::handler_future(#name(#(#args),*))
        }

        #(#attrs)*
        #[allow(clippy::unused_async)]
        async fn #name(#inputs) #output #block
    }
}
