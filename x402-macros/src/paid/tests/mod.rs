//! Expansion tests: run `expand` on token input and inspect the parsed output.

mod errors;
mod expansion;
mod list;

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Expr, File, Item, ItemFn, LitStr, Stmt};

use super::expand;

pub(super) fn run(args: TokenStream, item: TokenStream) -> File {
    let output = expand(args, item);
    syn::parse2(output.clone()).unwrap_or_else(|e| panic!("unparsable output: {e}\n{output}"))
}

/// The tokens as text, without the spaces between tokens (spaces inside strings stay).
pub(super) fn compact(tokens: impl ToTokens) -> String {
    let text = tokens.to_token_stream().to_string();
    let (mut out, mut in_string, mut escaped) = (String::new(), false, false);
    for c in text.chars() {
        if in_string || c != ' ' {
            out.push(c);
        }
        (in_string, escaped) = match c {
            '"' if !escaped => (!in_string, false),
            '\\' if in_string => (true, !escaped),
            _ => (in_string, false),
        };
    }
    out
}

/// The messages of every `compile_error!` in the output.
pub(super) fn errors(file: &File) -> Vec<String> {
    file.items
        .iter()
        .filter_map(|item| match item {
            Item::Macro(m)
                if m.mac.path.is_ident("compile_error")
                    || compact(&m.mac.path) == "::core::compile_error" =>
            {
                Some(
                    m.mac
                        .parse_body::<LitStr>()
                        .map_or_else(|e| e.to_string(), |s| s.value()),
                )
            }
            _ => None,
        })
        .collect()
}

/// The messages for `#[paid(args)] async fn weather() {}`.
pub(super) fn arg_errors(args: TokenStream) -> Vec<String> {
    errors(&run(args, quote! { async fn weather() {} }))
}

/// The items of the `const _: () = { ... }` block.
pub(super) fn block_items(file: &File) -> Vec<Item> {
    file.items
        .iter()
        .find_map(|item| match item {
            Item::Const(c) => match &*c.expr {
                Expr::Block(b) => Some(b.block.stmts.clone()),
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_default()
        .into_iter()
        .filter_map(|stmt| match stmt {
            Stmt::Item(item) => Some(item),
            Stmt::Macro(m) => Some(Item::Macro(syn::ItemMacro {
                attrs: m.attrs,
                ident: None,
                mac: m.mac,
                semi_token: m.semi_token,
            })),
            _ => None,
        })
        .collect()
}

/// The functions in the block: `__x402_call`, then the user's function.
pub(super) fn functions(file: &File) -> Vec<ItemFn> {
    block_items(file)
        .into_iter()
        .filter_map(|item| match item {
            Item::Fn(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// `field: value` pairs of the `PaidRoute` static, values compacted.
pub(super) fn record(file: &File) -> Vec<(String, String)> {
    let block = file.items.iter().find_map(|item| match item {
        Item::Const(c) => match &*c.expr {
            Expr::Block(b) => Some(b.block.clone()),
            _ => None,
        },
        _ => None,
    });
    let Some(Stmt::Item(Item::Static(route))) = block.and_then(|b| b.stmts.into_iter().next())
    else {
        panic!("no route static");
    };
    let Expr::Struct(fields) = &*route.expr else {
        panic!("route is not a struct literal")
    };
    fields
        .fields
        .iter()
        .map(|f| (compact(&f.member), compact(&f.expr)))
        .collect()
}

pub(super) fn field(file: &File, name: &str) -> String {
    record(file)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no `{name}`"))
}
