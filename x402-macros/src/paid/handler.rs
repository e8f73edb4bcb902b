//! Checks on the function `#[paid]` is applied to. Each error is placed on the offending token.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Attribute, FnArg, ItemFn, Signature};

use super::Errors;

/// axum implements `Handler` for functions of at most this many arguments.
const AXUM_MAX_ARGS: usize = 16;

/// Records every reason `func` cannot be a paid handler.
pub(crate) fn check(func: &ItemFn, errors: &mut Errors) {
    check_qualifiers(&func.sig, errors);
    check_generics(&func.sig, errors);
    check_arguments(&func.sig, errors);
    for attr in func.attrs.iter().filter(|attr| is_paid(attr)) {
        errors.push(syn::Error::new_spanned(
            attr,
            "duplicate `#[paid]`; remove one",
        ));
    }
}

fn check_qualifiers(sig: &Signature, errors: &mut Errors) {
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            "`#[paid]` handlers cannot be `const fn`: remove `const`",
        ));
    }
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            "`#[paid]` handlers must be `async fn`: add `async`",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            "`#[paid]` handlers cannot be `unsafe fn`; axum cannot call them: remove `unsafe`",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "`#[paid]` handlers cannot declare an ABI: remove the `extern`",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "`#[paid]` handlers cannot be variadic: remove the `...`",
        ));
    }
}

fn check_generics(sig: &Signature, errors: &mut Errors) {
    const MESSAGE: &str = "`#[paid]` handlers cannot be generic: axum needs one concrete \
                           handler per route; use concrete types";
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(&sig.generics, MESSAGE));
    } else if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(where_clause, MESSAGE));
    }
    for arg in &sig.inputs {
        if let FnArg::Typed(typed) = arg
            && mentions_impl(typed.ty.to_token_stream())
        {
            errors.push(syn::Error::new_spanned(
                &typed.ty,
                "`#[paid]` handlers cannot take `impl Trait` arguments, which make the function \
                 generic: use a concrete type",
            ));
        }
    }
}

/// Whether a type contains `impl Trait` anywhere, e.g. `Option<impl Display>`.
fn mentions_impl(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident == "impl",
        TokenTree::Group(group) => mentions_impl(group.stream()),
        TokenTree::Punct(_) | TokenTree::Literal(_) => false,
    })
}

fn check_arguments(sig: &Signature, errors: &mut Errors) {
    for arg in &sig.inputs {
        if let FnArg::Receiver(receiver) = arg {
            errors.push(syn::Error::new_spanned(
                receiver,
                "`#[paid]` cannot be used on a method that takes `self`; axum handlers are free \
                 functions: make it a free `async fn`",
            ));
        }
    }
    let count = sig.inputs.len();
    if let Some(first_extra) = sig.inputs.iter().nth(AXUM_MAX_ARGS) {
        errors.push(syn::Error::new_spanned(
            first_extra,
            format!(
                "axum handlers take at most {AXUM_MAX_ARGS} extractors and this handler has \
                 {count} arguments: group some extractors into a struct"
            ),
        ));
    }
}

/// `#[paid]`, `#[x402_runtime::paid]` or `#[::x402_runtime::paid]`.
fn is_paid(attr: &Attribute) -> bool {
    let path = attr.path();
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match segments.as_slice() {
        [name] => name == "paid" && path.leading_colon.is_none(),
        [krate, name] => krate == "x402_runtime" && name == "paid",
        _ => false,
    }
}
