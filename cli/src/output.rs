//! What the commands print.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use serde_json::{Value, json};
use x402_runtime::client::{ClientError, Discovery, PaidResponse, Spend};

/// A plain-text table of paid endpoints, then a line naming the source and the free endpoints.
pub(crate) fn discovery_table(found: &Discovery) -> String {
    let header = ["METHOD", "PATH", "PRICE", "NETWORKS", "DESCRIPTION"];
    let rows: Vec<[String; 5]> = found
        .endpoints
        .iter()
        .map(|e| {
            [
                e.method.clone(),
                e.path.clone(),
                format!("{} {}", e.price, e.currency).trim().to_owned(),
                if e.networks.is_empty() {
                    "-".to_owned()
                } else {
                    e.networks.join(",")
                },
                e.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 5]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in &rows {
        line(row.each_ref().map(String::as_str));
    }
    let _ = writeln!(
        out,
        "\n{} paid endpoint{}, read from {}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        found.source,
    );
    if !found.free.is_empty() {
        let free: Vec<String> = found
            .free
            .iter()
            .map(|f| format!("{} {}", f.method, f.path))
            .collect();
        let _ = writeln!(out, "free: {}", free.join(", "));
    }
    out
}

/// A plain-text table: columns padded to their widest cell, two spaces apart, the last one
/// unpadded.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 == widths.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Status, body and the payment, as text.
pub(crate) fn answer_text(answer: &PaidResponse) -> String {
    let mut out = String::new();
    let status = answer.status();
    let _ = writeln!(
        out,
        "HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    match answer.json::<Value>() {
        Ok(body) => {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&body).unwrap_or_default()
            );
        }
        Err(_) => {
            let text = answer.text();
            out.push_str(&text);
            if !text.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    match (answer.spend(), answer.receipt()) {
        (None, _) => out.push_str("\nfree: no payment was asked for\n"),
        (Some(spend), receipt) => {
            out.push('\n');
            let mut field = |name: &str, value: &str| {
                let _ = writeln!(out, "{name:<12}{value}");
            };
            field(
                "paid",
                &format!("{} {} to {}", spend.amount, spend.currency, spend.pay_to),
            );
            if spend.authorized != spend.amount {
                field(
                    "authorized",
                    &format!("at most {} {} (upto)", spend.authorized, spend.currency),
                );
            }
            field("payer", &spend.payer.to_string());
            field("network", &spend.network);
            match receipt {
                Some(receipt) if receipt.success && receipt.transaction.is_empty() => {
                    field("receipt", "success (nothing to charge, no transaction)");
                }
                Some(receipt) if receipt.success => {
                    field("receipt", "success");
                    field("transaction", &receipt.transaction);
                }
                Some(receipt) => field(
                    "receipt",
                    &format!(
                        "failed: {}",
                        receipt.error_reason.as_deref().unwrap_or("no reason")
                    ),
                ),
                None => field(
                    "receipt",
                    "none (the server did not settle; nothing charged)",
                ),
            }
            if let Some(id) = &spend.payment_id {
                field("payment id", id);
            }
        }
    }
    out
}

/// Status, body, receipt and payment as one JSON object.
pub(crate) fn answer_json(answer: &PaidResponse) -> Value {
    json!({
        "status": answer.status().as_u16(),
        "body": answer.json::<Value>().unwrap_or_else(|_| Value::String(answer.text())),
        "receipt": answer.receipt(),
        "payment": answer.spend(),
    })
}

/// A failed call as one JSON object.
pub(crate) fn error_json(error: &ClientError) -> Value {
    json!({
        "error": error.to_string(),
        "payment": error.spend(),
    })
}

/// Appends each payment to a JSON-lines spend log.
pub(crate) fn append_log(path: &Path, spends: &[Spend]) -> std::io::Result<()> {
    if spends.is_empty() {
        return Ok(());
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    for spend in spends {
        let line = serde_json::to_string(spend).map_err(std::io::Error::other)?;
        writeln!(file, "{line}")?;
    }
    Ok(())
}
