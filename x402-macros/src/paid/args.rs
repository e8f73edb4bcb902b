//! The `#[paid(key = value, ...)]` arguments.
//!
//! Parsing goes entry by entry and keeps going after a bad key or value, so several mistakes are
//! reported together; only a syntax error (a missing `=` or `,`) ends it early. Each value is
//! checked as it is read (see `values`), so errors come in source order; checks across options
//! (price and currency, `#[utoipa::path]`) come later and use the spans kept here.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, Ident, LitStr, Token};

use super::Errors;
use super::currency::Currency;
use super::keys::{Key, unknown_key, wrong_kind};
use super::offers;
use super::price::PriceExpr;
use super::values::{self, Settle, Spanned};

/// The arguments, each value checked on its own; `None` for options that are absent or invalid.
#[derive(Default)]
pub(crate) struct PaidArgs {
    pub(crate) price: Option<PriceExpr>,
    currencies: Option<Vec<Currency>>,
    pub(crate) description: Option<String>,
    pub(crate) max_timeout_seconds: Option<u32>,
    pub(crate) settle: Option<Settle>,
    pub(crate) method: Option<Spanned<String>>,
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) operation_id: Option<Spanned<String>>,
    pub(crate) networks: Option<Vec<LitStr>>,
    pub(crate) pay_to: Option<String>,
    pub(crate) quote: Option<syn::Path>,
    pub(crate) min: Option<LitStr>,
    pub(crate) max: Option<LitStr>,
    pub(crate) pay_page: Option<bool>,
    /// `upto = "…"`: the most a request can cost, the handler charging what it used.
    pub(crate) upto: Option<PriceExpr>,
    /// Every key seen, with the span of its name.
    seen: Vec<(Key, Span)>,
}

impl PaidArgs {
    /// The currencies, preferred first: the default when absent, `None` when the value was
    /// invalid.
    pub(crate) fn currencies(&self) -> Option<Vec<Currency>> {
        match &self.currencies {
            None if !self.has(Key::Currency) => Some(vec![Currency::DEFAULT]),
            currencies => currencies.clone(),
        }
    }

    /// Parses the attribute arguments, recording every mistake in `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> PaidArgs {
        let mut args = PaidArgs::default();
        let parser = |input: ParseStream<'_>| {
            let complete = args.parse_entries(input, errors);
            if complete {
                args.check_pricing(errors);
            }
            Ok(())
        };
        // `parse_entries` consumes all input and reports through `errors`, so this cannot fail.
        if let Err(error) = parser.parse2(tokens) {
            errors.push(error);
        }
        args
    }

    fn has(&self, key: Key) -> bool {
        self.seen.iter().any(|(k, _)| *k == key)
    }

    fn span_of(&self, key: Key) -> Span {
        self.seen
            .iter()
            .find(|(k, _)| *k == key)
            .map_or_else(Span::call_site, |(_, span)| *span)
    }

    /// A fixed `price`, a `quote` with both bounds, or an `upto` maximum: exactly one of them.
    fn check_pricing(&self, errors: &mut Errors) {
        let quoted = self.has(Key::Quote);
        let ways = [Key::Price, Key::Quote, Key::Upto];
        let set: Vec<Key> = ways.into_iter().filter(|k| self.has(*k)).collect();
        if let [first, second, ..] = set[..] {
            errors.push(syn::Error::new(
                self.span_of(second),
                format!(
                    "`{}` and `{}` cannot both be set: a route has a fixed `price`, a `quote`d \
                     one or an `upto` maximum; keep one",
                    first.name(),
                    second.name()
                ),
            ));
        } else if set.is_empty() {
            errors.push(missing_price());
        }
        if self.has(Key::Upto) && self.settle == Some(Settle::Before) {
            errors.push(syn::Error::new(
                self.span_of(Key::Settle),
                "an `upto` route settles what the handler used, so it settles after the handler: \
                 remove `settle = \"before\"`",
            ));
        }
        if quoted {
            for bound in [Key::Min, Key::Max] {
                if !self.has(bound) {
                    errors.push(syn::Error::new(
                        self.span_of(Key::Quote),
                        format!(
                            "a quoted route publishes the bounds of its price: add {}",
                            bound.example()
                        ),
                    ));
                }
            }
        } else {
            for bound in [Key::Min, Key::Max] {
                if self.has(bound) {
                    errors.push(syn::Error::new(
                        self.span_of(bound),
                        format!(
                            "`{}` bounds a quoted price: add `quote = your_quote_fn`, or remove it \
                             for a fixed `price`",
                            bound.name()
                        ),
                    ));
                }
            }
        }
    }

    /// Parses `key = value` entries until the end or a syntax error; `true` if it reached the end.
    fn parse_entries(&mut self, input: ParseStream<'_>, errors: &mut Errors) -> bool {
        while !input.is_empty() {
            let Ok(key) = input.call(Ident::parse_any) else {
                errors.push(input.error(
                    "expected an option such as `price`: write `#[paid(price = \"0.01\")]`",
                ));
                skip_rest(input);
                return false;
            };
            let Ok(eq) = input.parse::<Token![=]>() else {
                let example = Key::from_name(&key.unraw().to_string())
                    .map_or_else(|| format!("`{key} = ...`"), |k| k.example().to_owned());
                errors.push(syn::Error::new(
                    key.span(),
                    format!("expected `=` after `{key}`: write {example}"),
                ));
                skip_rest(input);
                return false;
            };
            let value = take_value(input);
            self.set(&key, eq.span, value, errors);
            if input.is_empty() {
                break;
            }
            if input.parse::<Token![,]>().is_err() {
                errors.push(input.error("expected `,` between `#[paid]` options"));
                skip_rest(input);
                return false;
            }
        }
        true
    }

    /// Records one entry: unknown and duplicate keys, then the value.
    fn set(&mut self, key: &Ident, eq: Span, value: TokenStream, errors: &mut Errors) {
        let name = key.unraw().to_string();
        let Some(which) = Key::from_name(&name) else {
            errors.push(syn::Error::new(key.span(), unknown_key(&name)));
            return;
        };
        if self.has(which) {
            errors.push(syn::Error::new(
                key.span(),
                format!("duplicate `{name}` option; remove one"),
            ));
            return;
        }
        self.seen.push((which, key.span()));
        let expr = if value.is_empty() {
            Err(syn::Error::new(eq, wrong_kind(which)))
        } else {
            syn::parse2::<Expr>(value.clone())
                .map_err(|_| syn::Error::new_spanned(&value, wrong_kind(which)))
        };
        let Some(expr) = errors.take(expr) else {
            return;
        };
        let expr = values::strip_group(&expr);
        match which {
            Key::Price => self.price = errors.take(values::price(expr)),
            Key::Currency => self.currencies = errors.take(offers::currencies(expr)),
            Key::Description => self.description = errors.take(values::description(expr)),
            Key::MaxTimeoutSeconds => self.max_timeout_seconds = errors.take(values::timeout(expr)),
            Key::Settle => self.settle = errors.take(values::settle(expr)),
            Key::Method => self.method = errors.take(values::method(expr)),
            Key::Path => self.path = errors.take(values::path(expr)),
            Key::OperationId => self.operation_id = errors.take(values::operation_id(expr)),
            Key::Networks => self.networks = errors.take(offers::networks(expr)),
            Key::PayTo => self.pay_to = errors.take(offers::pay_to(expr)),
            Key::Quote => self.quote = errors.take(values::quote(expr)),
            Key::Min => self.min = errors.take(values::bound(Key::Min, expr)),
            Key::Max => self.max = errors.take(values::bound(Key::Max, expr)),
            Key::PayPage => self.pay_page = errors.take(values::boolean(Key::PayPage, expr)),
            Key::Upto => self.upto = errors.take(values::upto(expr)),
        }
    }
}

/// The error for an attribute without `price` (or `quote`), placed on the attribute.
pub(crate) fn missing_price() -> syn::Error {
    syn::Error::new(
        Span::call_site(),
        "missing `price`: write `#[paid(price = \"0.01\")]`",
    )
}

/// The tokens of one value: everything up to the next top-level `,`.
fn take_value(input: ParseStream<'_>) -> TokenStream {
    input
        .step(|cursor| {
            let mut tokens = TokenStream::new();
            let mut rest = *cursor;
            while let Some((tree, next)) = rest.token_tree() {
                if matches!(&tree, TokenTree::Punct(p) if p.as_char() == ',') {
                    break;
                }
                tokens.extend([tree]);
                rest = next;
            }
            Ok((tokens, rest))
        })
        .unwrap_or_default()
}

fn skip_rest(input: ParseStream<'_>) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((_, next)) = rest.token_tree() {
            rest = next;
        }
        Ok(((), rest))
    });
}
