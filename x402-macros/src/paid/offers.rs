//! What a route offers besides its price: the currencies it can be paid in, the networks it is
//! offered on and the address it pays, each checked as far as the compiler can.

use std::collections::HashSet;

use sha3::{Digest, Keccak256};
use syn::{Expr, LitStr};

use super::currency::Currency;
use super::keys::{Key, wrong_kind};
use super::values::{lit_str, plain_lit_str};

/// `currency = "USDC"` or `currency = ["USDC", "EURC"]`: at least one, none twice, in order.
pub(crate) fn currencies(expr: &Expr) -> syn::Result<Vec<Currency>> {
    let lits = match expr {
        Expr::Array(_) => list(Key::Currency, expr)?,
        _ => vec![lit_str(Key::Currency, expr)?],
    };
    let mut currencies = Vec::with_capacity(lits.len());
    for lit in &lits {
        let currency = Currency::from_lit(lit)?;
        if currencies.contains(&currency) {
            return Err(twice(lit, Key::Currency));
        }
        currencies.push(currency);
    }
    Ok(currencies)
}

/// `networks = ["eip155:8453", …]`: CAIP-2 ids (EVM, or a Solana cluster), at least one, none twice, preferred first.
pub(crate) fn networks(expr: &Expr) -> syn::Result<Vec<LitStr>> {
    let lits = list(Key::Networks, expr)?;
    let mut seen = HashSet::new();
    let mut networks = Vec::with_capacity(lits.len());
    for lit in &lits {
        let network = lit.value();
        if !is_evm_caip2(&network) && !SOLANA_CLUSTERS.contains(&network.as_str()) {
            return Err(syn::Error::new(
                lit.span(),
                format!(
                    "network `{network}` is not a CAIP-2 id x402 offers: write `eip155:<chain id>`, \
                     e.g. `eip155:8453` for Base or `eip155:84532` for Base Sepolia, or a Solana \
                     cluster's (feature `svm`): `{}` (mainnet), `{}` (devnet)",
                    SOLANA_CLUSTERS[0], SOLANA_CLUSTERS[1]
                ),
            ));
        }
        if !seen.insert(network.clone()) {
            return Err(twice(lit, Key::Networks));
        }
        networks.push(lit.clone());
    }
    Ok(networks)
}

/// `pay_to = "0x…"`: a non-zero address, EIP-55 checksummed (the fix shows the checksummed
/// form of an all-lower or all-upper case address).
pub(crate) fn pay_to(expr: &Expr) -> syn::Result<String> {
    let lit = lit_str(Key::PayTo, expr)?;
    let text = lit.value();
    let error = |message: String| Err(syn::Error::new(lit.span(), message));
    let Some(hex) = text
        .strip_prefix("0x")
        .filter(|h| h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    else {
        return error(format!(
            "`pay_to` `{text}` is not an address: write `0x` and 40 hex digits, as your wallet \
             shows it"
        ));
    };
    if hex.bytes().all(|b| b == b'0') {
        return error("`pay_to` is the zero address; payments to it are burnt".to_owned());
    }
    let checksummed = checksum(hex);
    if text == checksummed {
        return Ok(text);
    }
    let mixed =
        hex.bytes().any(|b| b.is_ascii_lowercase()) && hex.bytes().any(|b| b.is_ascii_uppercase());
    if mixed {
        error(format!(
            "`pay_to` `{text}` fails its EIP-55 checksum: a character is mistyped; copy the \
             address exactly as your wallet shows it"
        ))
    } else {
        error(format!(
            "`pay_to` must be EIP-55 checksummed (mixed case), so that a typo is caught: write \
             `{checksummed}`"
        ))
    }
}

/// `0x` + the EIP-55 form of 40 hex digits: a letter is upper case where the matching nibble of
/// the Keccak-256 of the lower-case hex is 8 or more.
fn checksum(hex: &str) -> String {
    let lower = hex.to_ascii_lowercase();
    let hash = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (hash[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0x0f;
        out.push(if nibble >= 8 {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    out
}

/// The CAIP-2 ids of the Solana clusters the runtime offers on (with its feature `svm`):
/// mainnet, devnet.
const SOLANA_CLUSTERS: [&str; 2] = [
    "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
    "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
];

/// `eip155:` and a chain id: decimal digits, no leading zero, fitting in 64 bits.
fn is_evm_caip2(text: &str) -> bool {
    text.strip_prefix("eip155:").is_some_and(|id| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && !(id.len() > 1 && id.starts_with('0'))
            && id.parse::<u64>().is_ok_and(|id| id > 0)
    })
}

/// The string literals of `[a, b, …]`: not empty, each a plain string literal.
fn list(key: Key, expr: &Expr) -> syn::Result<Vec<LitStr>> {
    let Expr::Array(array) = expr else {
        return Err(syn::Error::new_spanned(expr, wrong_kind(key)));
    };
    if array.elems.is_empty() {
        return Err(syn::Error::new_spanned(
            expr,
            format!(
                "`{}` is empty: list at least one, as in {}",
                key.name(),
                key.example()
            ),
        ));
    }
    array
        .elems
        .iter()
        .map(|elem| {
            plain_lit_str(super::values::strip_group(elem))
                .cloned()
                .ok_or_else(|| syn::Error::new_spanned(elem, wrong_kind(key)))
        })
        .collect()
}

fn twice(lit: &LitStr, key: Key) -> syn::Error {
    syn::Error::new(
        lit.span(),
        format!(
            "`{}` is listed twice in `{}`; remove one",
            lit.value(),
            key.name()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Expr {
        syn::parse_str(text).expect("expression")
    }

    fn error<T: std::fmt::Debug>(result: syn::Result<T>) -> String {
        result.expect_err("refused").to_string()
    }

    #[test]
    fn currencies_are_one_or_a_list_in_order() {
        assert_eq!(
            currencies(&parse(r#""EURC""#)).ok(),
            Some(vec![Currency::Eurc])
        );
        assert_eq!(
            currencies(&parse(r#"["EURC", "USDC"]"#)).ok(),
            Some(vec![Currency::Eurc, Currency::Usdc])
        );
        assert!(error(currencies(&parse("[]"))).starts_with("`currency` is empty"));
        assert!(error(currencies(&parse(r#"["USDC", "USDC"]"#))).contains("listed twice"));
        assert!(error(currencies(&parse(r#"["USDC", "usdt"]"#))).contains("unknown currency"));
        assert!(error(currencies(&parse(r#"["USDC", 1]"#))).contains("expects a string literal"));
    }

    #[test]
    fn networks_are_caip2_evm_ids() {
        let values = |lits: Vec<LitStr>| lits.iter().map(LitStr::value).collect::<Vec<_>>();
        assert_eq!(
            networks(&parse(r#"["eip155:8453", "eip155:84532"]"#))
                .ok()
                .map(values),
            Some(vec!["eip155:8453".to_owned(), "eip155:84532".to_owned()])
        );
        for bad in [
            "base",
            "eip155:",
            "eip155:08453",
            "eip155:0",
            "eip155:1x",
            "eip155:99999999999999999999",
            "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z",
            "solana:",
        ] {
            let text = format!("[\"{bad}\"]");
            assert!(
                error(networks(&parse(&text))).contains("not a CAIP-2 id x402 offers"),
                "{bad}"
            );
        }
        assert_eq!(
            networks(&parse(
                r#"["eip155:8453", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"]"#
            ))
            .ok()
            .map(values),
            Some(vec![
                "eip155:8453".to_owned(),
                "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".to_owned()
            ])
        );
        assert!(
            error(networks(&parse(r#""eip155:8453""#))).contains("an array of string literals")
        );
        assert!(error(networks(&parse(r#"["eip155:1", "eip155:1"]"#))).contains("listed twice"));
        assert!(error(networks(&parse("[]"))).starts_with("`networks` is empty"));
    }

    #[test]
    fn pay_to_is_a_checksummed_address() {
        let good = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
        assert_eq!(
            pay_to(&parse(&format!("\"{good}\""))).ok().as_deref(),
            Some(good)
        );
        let lower = format!("\"{}\"", good.to_ascii_lowercase());
        assert!(error(pay_to(&parse(&lower))).ends_with(&format!("write `{good}`")));
        let typo = "\"0x209693bc6afc0C5328bA36FaF03C514EF312287C\"";
        assert!(error(pay_to(&parse(typo))).contains("fails its EIP-55 checksum"));
        assert!(error(pay_to(&parse("\"0x1234\""))).contains("is not an address"));
        let zero = format!("\"0x{}\"", "0".repeat(40));
        assert!(error(pay_to(&parse(&zero))).contains("zero address"));
    }
}
