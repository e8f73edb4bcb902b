//! The value of each option, checked on its own: literal kind first, then content.

use proc_macro2::Span;
use syn::{Expr, ExprLit, Lit, LitInt, LitStr, UnOp};

use super::keys::{Key, wrong_kind};
use super::price::{self, PriceExpr};

/// A checked value and the span of the literal it was read from.
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

/// The methods a paid route can have.
pub(crate) const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// When the payment is settled relative to the handler.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) enum Settle {
    /// After the handler answered 2xx (`settle = "after"`, the default).
    #[default]
    AfterSuccess,
    /// Before the handler runs (`settle = "before"`).
    Before,
}

/// Looks through the invisible groups `macro_rules!` wraps around `$value:expr`.
pub(crate) fn strip_group(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(group) => strip_group(&group.expr),
        other => other,
    }
}

/// The literal if `expr` is a plain string literal (no suffix).
pub(crate) fn plain_lit_str(expr: &Expr) -> Option<&LitStr> {
    match expr {
        Expr::Lit(lit) if lit.attrs.is_empty() => match &lit.lit {
            Lit::Str(s) if s.suffix().is_empty() => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// The value of `price`: its text is checked here, the checks that depend on the currency come
/// later. Only string literals today; a dynamic price (a function with published bounds) would
/// become another `PriceExpr` variant, parsed here and nowhere else.
pub(crate) fn price(expr: &Expr) -> syn::Result<PriceExpr> {
    let lit = lit_str(Key::Price, expr)?;
    price::check_text(&lit)?;
    Ok(PriceExpr::Literal(lit))
}

/// `upto = "…"`: a price's text, checked like `price`.
pub(crate) fn upto(expr: &Expr) -> syn::Result<PriceExpr> {
    let lit = lit_str(Key::Upto, expr)?;
    price::check_text(&lit)?;
    Ok(PriceExpr::Literal(lit))
}

/// `min = "…"` or `max = "…"`: a price's text, checked like `price`.
pub(crate) fn bound(key: Key, expr: &Expr) -> syn::Result<LitStr> {
    let lit = lit_str(key, expr)?;
    price::check_text(&lit)?;
    Ok(lit)
}

/// `quote = path::to::function`.
pub(crate) fn quote(expr: &Expr) -> syn::Result<syn::Path> {
    match expr {
        Expr::Path(path) if path.qself.is_none() && path.attrs.is_empty() => Ok(path.path.clone()),
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Err(syn::Error::new(
            lit.span(),
            format!(
                "`quote` names the function itself, not a string: write `quote = {}`",
                lit.value()
            ),
        )),
        _ => Err(syn::Error::new_spanned(expr, wrong_kind(Key::Quote))),
    }
}

pub(crate) fn lit_str(key: Key, expr: &Expr) -> syn::Result<LitStr> {
    plain_lit_str(expr)
        .cloned()
        .ok_or_else(|| syn::Error::new_spanned(expr, wrong_kind(key)))
}

/// A `true` or `false` literal.
pub(crate) fn boolean(key: Key, expr: &Expr) -> syn::Result<bool> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Bool(b),
            attrs,
        }) if attrs.is_empty() => Ok(b.value),
        _ => Err(syn::Error::new_spanned(expr, wrong_kind(key))),
    }
}

pub(crate) fn description(expr: &Expr) -> syn::Result<String> {
    let lit = lit_str(Key::Description, expr)?;
    let text = lit.value().trim().to_owned();
    if text.is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            "`description` is empty: write a short sentence, or remove it to use the doc comment",
        ));
    }
    Ok(text)
}

const MAX_TIMEOUT_SECONDS: u32 = 86_400;

pub(crate) fn timeout(expr: &Expr) -> syn::Result<u32> {
    let out_of_range = |got: &str| {
        syn::Error::new_spanned(
            expr,
            format!(
                "`max_timeout_seconds` must be between 1 and {MAX_TIMEOUT_SECONDS} (24 hours); got {got}"
            ),
        )
    };
    let int: &LitInt = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int,
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => {
            return Err(out_of_range("a negative number"));
        }
        _ => {
            let message = wrong_kind(Key::MaxTimeoutSeconds);
            return Err(syn::Error::new_spanned(expr, message));
        }
    };
    if !int.suffix().is_empty() {
        return Err(syn::Error::new_spanned(
            int,
            "`max_timeout_seconds` expects an integer without a suffix: `max_timeout_seconds = 120`",
        ));
    }
    match int.base10_parse::<u32>() {
        Ok(seconds) if (1..=MAX_TIMEOUT_SECONDS).contains(&seconds) => Ok(seconds),
        _ => Err(out_of_range(int.base10_digits())),
    }
}

pub(crate) fn settle(expr: &Expr) -> syn::Result<Settle> {
    let lit = lit_str(Key::Settle, expr)?;
    match lit.value().as_str() {
        "after" => Ok(Settle::AfterSuccess),
        "before" => Ok(Settle::Before),
        other => Err(syn::Error::new(
            lit.span(),
            format!(
                "unknown `settle` value `{other}`; use `settle = \"after\"` (the default: settle \
                 once the handler has answered 2xx, so a failed request costs nothing) or \
                 `settle = \"before\"` (settle before the handler runs, for side effects that \
                 cannot be undone)"
            ),
        )),
    }
}

pub(crate) fn method(expr: &Expr) -> syn::Result<Spanned<String>> {
    let lit = lit_str(Key::Method, expr)?;
    let method = lit.value().to_ascii_uppercase();
    match method.as_str() {
        m if METHODS.contains(&m) => Ok(Spanned {
            value: method,
            span: lit.span(),
        }),
        "HEAD" | "OPTIONS" => Err(syn::Error::new(
            lit.span(),
            "HEAD is priced like GET and OPTIONS is never gated; use `GET`",
        )),
        _ => Err(syn::Error::new(
            lit.span(),
            format!(
                "unknown method `{}`; expected one of {}",
                lit.value(),
                METHODS.join(", ")
            ),
        )),
    }
}

pub(crate) fn path(expr: &Expr) -> syn::Result<Spanned<String>> {
    let lit = lit_str(Key::Path, expr)?;
    let path = lit.value();
    let problem = if !path.starts_with('/') {
        Some(format!(
            "`path` must start with `/`: write `path = \"/{}\"`",
            path.trim().trim_start_matches('/')
        ))
    } else if path.chars().any(char::is_whitespace) {
        Some(format!("`path` `{path}` contains whitespace: remove it"))
    } else if let Some((route, _)) = path.split_once(['?', '#']) {
        Some(format!(
            "`path` must be the route alone, without a query (`?`) or fragment (`#`): write \
             `path = \"{route}\"`"
        ))
    } else {
        None
    };
    match problem {
        Some(message) => Err(syn::Error::new(lit.span(), message)),
        None => Ok(Spanned {
            value: path,
            span: lit.span(),
        }),
    }
}

pub(crate) fn operation_id(expr: &Expr) -> syn::Result<Spanned<String>> {
    let lit = lit_str(Key::OperationId, expr)?;
    let id = lit.value();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    let problem = if id.is_empty() {
        Some(
            "`operation_id` is empty: write e.g. `operation_id = \"get_weather\"`, or remove it \
              to use the function name"
                .to_owned(),
        )
    } else {
        id.chars().find(|c| !allowed(*c)).map(|c| {
            format!(
                "`operation_id` may only contain ASCII letters, digits, `_`, `.` and `-`; \
                 found `{}`",
                c.escape_debug()
            )
        })
    };
    match problem {
        Some(message) => Err(syn::Error::new(lit.span(), message)),
        None => Ok(Spanned {
            value: id,
            span: lit.span(),
        }),
    }
}
