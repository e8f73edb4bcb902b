//! Mistakes: the item is kept, and every error is reported at once.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{FnArg, ItemFn};

use super::{arg_errors, errors, run};

/// Errors come in source order: the options left to right, then checks across options, then the
/// function.
#[test]
fn on_error_the_item_is_kept_unchanged() {
    let item = quote! {
        /// Docs.
        #[utoipa::path(get, path = "/w")]
        fn weather(Query(q): Query<City>) -> String { q.city }
    };
    let file = run(
        quote!(price = "1e-3", currency = "GBPT", colour = "red"),
        item.clone(),
    );
    let original: ItemFn = syn::parse2(item).unwrap_or_else(|e| panic!("{e}"));
    let top_level: Vec<&ItemFn> = file
        .items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Fn(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(top_level, [&original]);
    assert_eq!(
        file.items.len(),
        1 + 4,
        "the fn and one compile_error! per mistake"
    );
    assert_eq!(
        errors(&file),
        [
            "write the price as a plain decimal, e.g. `0.001` instead of `1e-3`",
            "unknown currency `GBPT`; known currencies: USDC, EURC, USDT, DAI, PYUSD; for another \
             ERC-20 write its ticker and decimals, e.g. `currency = \"GBPT:18\"`",
            "unknown `#[paid]` option `colour` (known options: price, currency, description, \
             max_timeout_seconds, settle, method, path, operation_id, networks, pay_to, quote, min, max, pay_page, upto)",
            "`#[paid]` handlers must be `async fn`: add `async`",
        ]
    );
}

#[test]
fn argument_mistakes() {
    assert_eq!(
        arg_errors(quote!()),
        ["missing `price`: write `#[paid(price = \"0.01\")]`"]
    );
    assert_eq!(
        arg_errors(quote!(currency = "USDC")),
        ["missing `price`: write `#[paid(price = \"0.01\")]`"]
    );
    assert_eq!(
        arg_errors(quote!(price = "1", price = "2")),
        ["duplicate `price` option; remove one"]
    );
    assert_eq!(
        arg_errors(quote!(price = "1", pay_page = "no")),
        ["`pay_page` expects a boolean: `pay_page = false`"]
    );
    assert!(arg_errors(quote!(price = "1", pay_page = false)).is_empty());
    assert_eq!(
        arg_errors(quote!(price = 0.001)),
        ["`price` expects a string literal: `price = \"0.001\"`"]
    );
    assert_eq!(
        arg_errors(quote!(prise = "1")),
        [
            "unknown `#[paid]` option `prise`; did you mean `price`? (known options: price, currency, \
          description, max_timeout_seconds, settle, method, path, operation_id, networks, pay_to, quote, min, max, pay_page, upto)",
            "missing `price`: write `#[paid(price = \"0.01\")]`"
        ]
    );
    assert_eq!(
        arg_errors(quote!(price = "1", max_timeout_seconds = "120")),
        ["`max_timeout_seconds` expects an integer: `max_timeout_seconds = 120`"]
    );
    assert_eq!(
        arg_errors(quote!(price = "1", max_timeout_seconds = 0)),
        ["`max_timeout_seconds` must be between 1 and 86400 (24 hours); got 0"]
    );
    assert!(
        arg_errors(quote!(price = "1", max_timeout_seconds = 99999999999))[0]
            .ends_with("got 99999999999")
    );
    assert!(
        arg_errors(quote!(price = "1", max_timeout_seconds = 120u32))[0]
            .contains("without a suffix")
    );
    assert!(
        arg_errors(quote!(price = "1", settle = "later"))[0]
            .starts_with("unknown `settle` value `later`")
    );
    assert!(
        arg_errors(quote!(price = "1", description = "  "))[0]
            .starts_with("`description` is empty")
    );
    assert_eq!(
        arg_errors(quote!(price = "1", method = "HEAD")),
        ["HEAD is priced like GET and OPTIONS is never gated; use `GET`"]
    );
    assert!(
        arg_errors(quote!(price = "1", method = "FETCH"))[0].starts_with("unknown method `FETCH`")
    );
    assert!(
        arg_errors(quote!(price = "1", path = "weather"))[0]
            .ends_with("write `path = \"/weather\"`")
    );
    assert!(
        arg_errors(quote!(price = "1", path = "/w?city=x"))[0].ends_with("write `path = \"/w\"`")
    );
    assert!(arg_errors(quote!(price = "1", path = "/w x"))[0].contains("whitespace"));
    assert!(arg_errors(quote!(price = "1", operation_id = "get weather"))[0].contains("found ` `"));
    assert!(
        arg_errors(quote!(price = "$1", currency = "EURC"))[0].starts_with("`$` means US dollars")
    );
    assert!(
        arg_errors(quote!(price = "0.0000001", currency = "EURC"))[0]
            .starts_with("EURC has 6 decimals")
    );
}

#[test]
fn several_argument_mistakes_are_reported_together() {
    let messages = arg_errors(quote!(
        price = 1,
        curency = "USDC",
        max_timeout_seconds = -5,
        settle = before,
        price = "2",
    ));
    assert_eq!(
        messages,
        [
            "`price` expects a string literal: `price = \"0.001\"`",
            "unknown `#[paid]` option `curency`; did you mean `currency`? (known options: price, \
         currency, description, max_timeout_seconds, settle, method, path, operation_id, networks, pay_to, quote, min, max, pay_page, upto)",
            "`max_timeout_seconds` must be between 1 and 86400 (24 hours); got a negative number",
            "`settle` expects a string literal: `settle = \"after\"` or `settle = \"before\"`",
            "duplicate `price` option; remove one",
        ]
    );
}

#[test]
fn checks_across_options_come_after_the_options() {
    assert_eq!(
        arg_errors(quote!(price = "$0.01", currency = "EURC", settle = "soon")),
        [
            "unknown `settle` value `soon`; use `settle = \"after\"` (the default: settle once \
             the handler has answered 2xx, so a failed request costs nothing) or `settle = \
             \"before\"` (settle before the handler runs, for side effects that cannot be undone)",
            "`$` means US dollars (USDC) but currency is EURC; remove the `$`",
        ]
    );
    // An invalid currency skips the currency-dependent checks instead of guessing.
    assert_eq!(
        arg_errors(quote!(price = "0.0000001", currency = "GBPT")),
        [
            "unknown currency `GBPT`; known currencies: USDC, EURC, USDT, DAI, PYUSD; for another \
         ERC-20 write its ticker and decimals, e.g. `currency = \"GBPT:18\"`"
        ]
    );
}

#[test]
fn syntax_errors_stop_parsing() {
    assert_eq!(
        arg_errors(quote!(currency = 5, price "0.01", settle = 1)),
        [
            "`currency` expects a string literal or an array of them: `currency = \"USDC\"` or \
             `currency = [\"USDC\", \"EURC\"]`",
            "expected `=` after `price`: write `price = \"0.001\"`"
        ]
    );
    assert_eq!(arg_errors(quote!(price = "1" settle = "after")).len(), 1);
    assert!(arg_errors(quote!("0.01"))[0].starts_with("expected an option such as `price`"));
    assert_eq!(
        arg_errors(quote!(price = $0.01))[0],
        "`price` expects a string literal: `price = \"0.001\"`"
    );
    assert_eq!(
        arg_errors(quote!(price =))[0],
        "`price` expects a string literal: `price = \"0.001\"`"
    );
}

#[test]
fn handler_mistakes() {
    let check = |item: TokenStream| errors(&run(quote!(price = "1"), item));
    let first = |item: TokenStream| check(item).remove(0);
    assert_eq!(
        check(quote! { fn f() {} }),
        ["`#[paid]` handlers must be `async fn`: add `async`"]
    );
    assert!(
        first(quote! { async fn f(&self) {} }).starts_with("`#[paid]` cannot be used on a method")
    );
    assert!(first(quote! { async fn f<T: Send>(x: T) {} }).contains("cannot be generic"));
    assert!(first(quote! { async fn f() where u8: Copy {} }).contains("cannot be generic"));
    assert!(
        first(quote! { async fn f(x: Option<impl Send>) {} }).contains("`impl Trait` arguments")
    );
    assert!(first(quote! { const async fn f() {} }).contains("`const fn`"));
    assert!(first(quote! { async unsafe fn f() {} }).contains("`unsafe fn`"));
    assert!(first(quote! { async extern "C" fn f() {} }).contains("ABI"));
    assert_eq!(
        check(quote! { #[paid(price = "2")] async fn f() {} }),
        ["duplicate `#[paid]`; remove one"]
    );
    assert_eq!(
        check(quote! { #[x402_runtime::paid(price = "2")] async fn f() {} }).len(),
        1
    );
    assert_eq!(
        check(quote! { struct S; }),
        ["`#[paid]` goes on an axum handler: an `async fn`"]
    );

    let args = (0..17u8).map(|i| quote::format_ident!("a{}", i));
    assert_eq!(
        check(quote! { async fn f(#(#args: u8),*) {} }),
        [
            "axum handlers take at most 16 extractors and this handler has 17 arguments: group \
             some extractors into a struct"
        ]
    );
    let args = (0..16u8).map(|i| quote::format_ident!("a{}", i));
    assert!(check(quote! { async fn f(#(#args: u8),*) {} }).is_empty());
}

#[test]
fn several_handler_and_argument_mistakes_are_reported_together() {
    let file = run(
        quote!(price = "-1", settle = "never"),
        quote! { fn f<T>(&self, x: T) {} },
    );
    assert_eq!(errors(&file).len(), 5, "{:?}", errors(&file));
    let original = file.items.iter().find_map(|item| match item {
        syn::Item::Fn(f) => Some(f),
        _ => None,
    });
    let Some(FnArg::Receiver(_)) = original.and_then(|f| f.sig.inputs.first()) else {
        panic!("the original fn is kept");
    };
}
