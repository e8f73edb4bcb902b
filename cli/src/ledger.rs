//! `x402 settlements --ledger`: the payments of a Postgres store's ledger (`x402_ledger`), as
//! a table, CSV or JSON, narrowed by payer, route, time, transaction or state.

use std::process::ExitCode;

use alloy_primitives::Address;
use serde_json::{Value, json};
use x402_runtime::client::format_amount;
use x402_runtime::network::{Asset, Network};
use x402_runtime::{LedgerEntry, LedgerQuery, LedgerState, PostgresStore};

use crate::Error;
use crate::output::table;

/// The filters and format of `--ledger`.
#[derive(Debug, clap::Args)]
pub(crate) struct LedgerArgs {
    /// Only payments by this payer (0x address).
    #[arg(long, value_name = "ADDR", requires = "ledger")]
    payer: Option<Address>,
    /// Only payments for this route (the resource URL's path, e.g. /weather), or this exact
    /// resource URL.
    #[arg(long, value_name = "ROUTE", requires = "ledger")]
    route: Option<String>,
    /// Only payments first recorded at or after this time (unix seconds, 2026-12-05, or
    /// 2026-12-05T17:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time, requires = "ledger")]
    since: Option<u64>,
    /// Only payments first recorded before this time (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = parse_time, requires = "ledger")]
    until: Option<u64>,
    /// Only the payment of this transaction.
    #[arg(long, value_name = "TX", requires = "ledger")]
    transaction: Option<String>,
    /// Only payments in this state: settling, pending, settled, expired_unsettled, refused.
    #[arg(long, value_name = "STATE", requires = "ledger")]
    state: Option<LedgerState>,
    /// At most this many payments (newest first).
    #[arg(long, value_name = "N", requires = "ledger")]
    limit: Option<u32>,
    /// Print CSV (RFC 4180, with a header row) instead of a table.
    #[arg(long, requires = "ledger", conflicts_with = "json")]
    csv: bool,
}

/// The CSV header; the JSON fields are the same names in camelCase.
const COLUMNS: [&str; 17] = [
    "created_at",
    "state",
    "network",
    "payer",
    "amount",
    "currency",
    "atomic_amount",
    "asset",
    "pay_to",
    "route",
    "resource",
    "scheme",
    "transaction",
    "nonce",
    "updated_at",
    "settled_at",
    "key",
];

/// Reads `--since`/`--until`: unix seconds, a date (midnight UTC) or an RFC 3339 time.
fn parse_time(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    let stamp = match text.parse::<jiff::Timestamp>() {
        Ok(stamp) => stamp,
        Err(_) => text
            .parse::<jiff::civil::Date>()
            .and_then(|date| date.to_zoned(jiff::tz::TimeZone::UTC))
            .map(|zoned| zoned.timestamp())
            .map_err(|_| {
                format!(
                    "`{text}` is not a time: use unix seconds, 2026-12-05 or 2026-12-05T17:00:00Z"
                )
            })?,
    };
    u64::try_from(stamp.as_second()).map_err(|_| format!("`{text}` is before 1970"))
}

/// A time as RFC 3339 (UTC).
fn rfc3339(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(|| seconds.to_string(), |t| t.to_string())
}

/// Prints the ledger rows `args` select, as `json`, CSV or a table.
pub(crate) async fn run(
    store: &PostgresStore,
    args: &LedgerArgs,
    json: bool,
) -> Result<ExitCode, Error> {
    let query = LedgerQuery {
        payer: args.payer.map(Into::into),
        route: args.route.clone(),
        since: args.since,
        until: args.until,
        transaction: args.transaction.clone(),
        state: args.state,
        limit: args.limit,
    };
    let entries = store.ledger(&query).await?;
    let rows: Vec<Vec<String>> = entries.iter().map(cells).collect();
    if json {
        let list: Vec<Value> = rows.iter().map(|row| row_json(row)).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if args.csv {
        print!("{}", csv_text(&rows)?);
    } else if rows.is_empty() {
        println!(
            "no payment in the ledger of Postgres {} matches",
            store.target()
        );
    } else {
        let shown = [0, 1, 3, 4, 5, 9, 12];
        let header: Vec<&str> = shown.iter().map(|&i| COLUMNS[i]).collect();
        let narrow: Vec<Vec<String>> = rows
            .iter()
            .map(|row| shown.iter().map(|&i| row[i].clone()).collect())
            .collect();
        print!("{}", table(&header, &narrow));
    }
    Ok(ExitCode::SUCCESS)
}

/// One entry as the cells of [`COLUMNS`] (empty when unknown).
fn cells(entry: &LedgerEntry) -> Vec<String> {
    let atomic = entry.amount.clone().unwrap_or_default();
    let asset = Network::from_caip2(&entry.network).and_then(|n| Asset::find(&n, entry.asset));
    let (amount, currency) = match (asset, atomic.parse()) {
        (Some(asset), Ok(units)) => (
            format_amount(units, asset.decimals),
            asset.currency.symbol().to_owned(),
        ),
        _ => (String::new(), String::new()),
    };
    let key = format!(
        "{}/{}/{}/{}",
        entry.network, entry.asset, entry.payer, entry.nonce
    );
    vec![
        rfc3339(entry.created_at),
        entry.state.to_string(),
        entry.network.clone(),
        entry.payer.to_string(),
        amount,
        currency,
        atomic,
        entry.asset.to_string(),
        entry.pay_to.clone().unwrap_or_default(),
        entry.route.clone().unwrap_or_default(),
        entry.resource.clone().unwrap_or_default(),
        entry.scheme.clone().unwrap_or_default(),
        entry.transaction.clone().unwrap_or_default(),
        entry.nonce.to_string(),
        rfc3339(entry.updated_at),
        entry.settled_at.map(rfc3339).unwrap_or_default(),
        key,
    ]
}

fn csv_text(rows: &[Vec<String>]) -> Result<String, Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(COLUMNS)?;
    for row in rows {
        writer.write_record(row)?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}

/// A row as JSON: camelCase names, `null` for what is unknown.
fn row_json(row: &[String]) -> Value {
    let mut object = serde_json::Map::new();
    for (name, cell) in COLUMNS.iter().zip(row) {
        let mut camel = String::new();
        let mut upper = false;
        for c in name.chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                camel.push(c.to_ascii_uppercase());
                upper = false;
            } else {
                camel.push(c);
            }
        }
        let value = if cell.is_empty() {
            Value::Null
        } else {
            json!(cell)
        };
        object.insert(camel, value);
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_in_three_forms() {
        assert_eq!(parse_time("1767225600"), Ok(1_767_225_600));
        assert_eq!(parse_time("2026-01-01"), Ok(1_767_225_600));
        assert_eq!(parse_time("2026-01-01T00:00:10Z"), Ok(1_767_225_610));
        assert_eq!(parse_time("2026-01-01T01:00:00+01:00"), Ok(1_767_225_600));
        assert!(parse_time("yesterday").is_err());
        assert_eq!(rfc3339(1_767_225_610), "2026-01-01T00:00:10Z");
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let mut row = vec![String::new(); COLUMNS.len()];
        row[0] = "a,b".to_owned();
        row[1] = "say \"hi\"".to_owned();
        row[2] = "plain".to_owned();
        let text = csv_text(&[row]).expect("csv");
        let last = text.lines().last().expect("a row");
        assert!(last.starts_with(r#""a,b","say ""hi""",plain,"#), "{last}");
        assert!(text.starts_with("created_at,state,network,payer,"));
    }

    #[test]
    fn json_names_are_camel_case() {
        let row: Vec<String> = COLUMNS.iter().map(|c| (*c).to_owned()).collect();
        let object = row_json(&row);
        assert_eq!(object["createdAt"], "created_at");
        assert_eq!(object["atomicAmount"], "atomic_amount");
        let empty = row_json(&vec![String::new(); COLUMNS.len()]);
        assert_eq!(empty["settledAt"], Value::Null);
    }
}
