//! Method, path, operation id and description of the route, from `#[paid(...)]`, a
//! `#[utoipa::path(...)]` below it, and the doc comment.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::{Attribute, Expr, ItemFn, Lit, Meta};

use super::Errors;
use super::args::PaidArgs;
use super::values::{METHODS, Spanned};

/// What discovery documents say about the route.
pub(crate) struct RouteInfo {
    /// Upper case, one of `GET POST PUT PATCH DELETE`.
    pub(crate) method: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) operation_id: String,
    pub(crate) description: Option<String>,
}

/// Merges the attribute's options with `#[utoipa::path]` and the doc comment.
pub(crate) fn resolve(args: &PaidArgs, func: &ItemFn, errors: &mut Errors) -> RouteInfo {
    let utoipa = func.attrs.iter().find_map(utoipa_path).unwrap_or_default();
    let ours = [&args.method, &args.path, &args.operation_id];
    let theirs = [&utoipa.method, &utoipa.path, &utoipa.operation_id];
    for ((ours, theirs), key) in
        ours.into_iter()
            .zip(theirs)
            .zip(["method", "path", "operation_id"])
    {
        if let (Some(ours), Some(theirs)) = (ours, theirs)
            && ours.value != *theirs
        {
            errors.push(conflict(ours, key, theirs));
        }
    }
    let value = |arg: &Option<Spanned<String>>| arg.as_ref().map(|arg| arg.value.clone());
    RouteInfo {
        method: value(&args.method).or(utoipa.method),
        path: value(&args.path).or(utoipa.path),
        operation_id: value(&args.operation_id)
            .or(utoipa.operation_id)
            .unwrap_or_else(|| func.sig.ident.unraw().to_string()),
        description: args
            .description
            .clone()
            .or_else(|| doc_paragraph(&func.attrs)),
    }
}

fn conflict(ours: &Spanned<String>, key: &str, theirs: &str) -> syn::Error {
    let theirs = match key {
        "method" => theirs.to_ascii_lowercase(),
        _ => format!("{key} = \"{theirs}\""),
    };
    syn::Error::new(
        ours.span,
        format!(
            "`{key} = \"{}\"` disagrees with `{theirs}` in `#[utoipa::path]` on this \
             function; remove `{key}` from `#[paid]` (it is read from `#[utoipa::path]`) or make \
             them match",
            ours.value
        ),
    )
}

/// What a `#[utoipa::path(...)]` attribute says, read loosely.
#[derive(Default)]
struct UtoipaPath {
    method: Option<String>,
    path: Option<String>,
    operation_id: Option<String>,
    /// Whether it names the type its operation is implemented for (`impl_for = ...`).
    impl_for: bool,
}

/// Whether `attr` is `#[utoipa::path(...)]` (or utoipa's `#[path(...)]`), and if so whether it
/// names the type its operation is implemented for (`impl_for = ...`).
pub(crate) fn utoipa_attribute(attr: &Attribute) -> Option<UtoipaTarget> {
    utoipa_path(attr).map(|found| {
        if found.impl_for {
            UtoipaTarget::Named
        } else {
            UtoipaTarget::Default
        }
    })
}

/// Where a `#[utoipa::path]` implements its operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum UtoipaTarget {
    /// On `__path_<function>`, which utoipa would declare next to the function.
    Default,
    /// On the type the attribute's `impl_for` names.
    Named,
}

/// Reads `#[utoipa::path(...)]`, or `#[path(...)]` when its tokens look like utoipa's.
fn utoipa_path(attr: &Attribute) -> Option<UtoipaPath> {
    let Meta::List(list) = &attr.meta else {
        return None;
    };
    let segments: Vec<String> = list
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let found = scan(list.tokens.clone());
    match segments.as_slice() {
        [utoipa, path] if utoipa == "utoipa" && path == "path" => Some(found),
        [path] if path == "path" && (found.method.is_some() || found.path.is_some()) => Some(found),
        _ => None,
    }
}

/// Finds the first bare method, `method(...)`, `path = "..."` and `operation_id = "..."` at the
/// top level, and whether there is an `impl_for = ...`; ignores everything else.
fn scan(tokens: TokenStream) -> UtoipaPath {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut found = UtoipaPath::default();
    for (i, tree) in trees.iter().enumerate() {
        let TokenTree::Ident(ident) = tree else {
            continue;
        };
        let name = ident.to_string();
        match (trees.get(i + 1), trees.get(i + 2)) {
            (Some(TokenTree::Punct(eq)), Some(TokenTree::Literal(lit))) if eq.as_char() == '=' => {
                let value = match Lit::new(lit.clone()) {
                    Lit::Str(s) => s.value(),
                    _ => continue,
                };
                match name.as_str() {
                    "path" => found.path = found.path.or(Some(value)),
                    "operation_id" => found.operation_id = found.operation_id.or(Some(value)),
                    _ => {}
                }
            }
            (Some(TokenTree::Punct(eq)), _) if eq.as_char() == '=' && name == "impl_for" => {
                found.impl_for = true;
            }
            (Some(TokenTree::Group(group)), _)
                if name == "method" && group.delimiter() == Delimiter::Parenthesis =>
            {
                found.method = found.method.or_else(|| scan(group.stream()).method);
            }
            (next, _) => {
                let after_separator = i == 0 || is_comma(trees.get(i - 1));
                if found.method.is_none()
                    && after_separator
                    && (next.is_none() || is_comma(next))
                    && METHODS.iter().any(|m| m.to_ascii_lowercase() == name)
                {
                    found.method = Some(name.to_ascii_uppercase());
                }
            }
        }
    }
    found
}

fn is_comma(tree: Option<&TokenTree>) -> bool {
    matches!(tree, Some(TokenTree::Punct(p)) if p.as_char() == ',')
}

/// The first paragraph of the doc comment: lines trimmed and joined with spaces.
fn doc_paragraph(attrs: &[Attribute]) -> Option<String> {
    let mut lines = Vec::new();
    let docs = attrs.iter().filter_map(|attr| match &attr.meta {
        Meta::NameValue(nv) if nv.path.is_ident("doc") => match &nv.value {
            Expr::Lit(lit) => match &lit.lit {
                Lit::Str(s) => Some(s.value()),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    });
    for doc in docs {
        for line in doc.split('\n').map(str::trim) {
            if !line.is_empty() {
                lines.push(line.to_owned());
            } else if !lines.is_empty() {
                return Some(lines.join(" "));
            }
        }
    }
    (!lines.is_empty()).then(|| lines.join(" "))
}
