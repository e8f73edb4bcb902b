//! `x402 settlements`: the payments of a server's settlement record whose outcome is unknown,
//! and, with an RPC URL, what the chain says about each (recorded in the store).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};
use x402_runtime::client::format_amount;
use x402_runtime::network::{Asset, Network};
use x402_runtime::schemes::exact_evm::chain::RpcChainReader;
use x402_runtime::server::settlement::{
    Resolution, UnknownSettlement, resolve_on_chain, unknown_settlements,
};
use x402_runtime::{FileStore, PostgresStore, RedisStore, ReplayStore, unix_now};

use crate::Error;
use crate::ledger::{self, LedgerArgs};
use crate::output::table;

/// The environment variable naming the server's settlement record (as `X402::from_env` reads it).
const STORE_PATH_ENV: &str = "X402_STORE_PATH";
/// How long one chain lookup may take.
const CHAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting to Redis may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(10);
/// The environment variable naming the server's Postgres store (as `X402::from_env_async`
/// reads it).
const DATABASE_URL_ENV: &str = "X402_DATABASE_URL";
/// How long connecting to Postgres (and preparing its tables) may take.
const POSTGRES_TIMEOUT: Duration = Duration::from_secs(20);

/// `x402 settlements` arguments.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub(crate) struct Args {
    /// The server's settlement record (a redb file). Default: $X402_STORE_PATH, else
    /// x402-payments.redb. The server must be stopped: one process opens the file at a time.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["redis", "postgres"])]
    store: Option<PathBuf>,
    /// Read the shared Redis store (redis://host:port/db) instead of a file; works while the
    /// servers run.
    #[arg(long, value_name = "URL", conflicts_with = "postgres")]
    redis: Option<String>,
    /// Read the shared Postgres store and ledger (postgres://user:password@host:port/db)
    /// instead of a file; works while the servers run. Default: $X402_DATABASE_URL when
    /// neither --store nor --redis is given.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Export the Postgres ledger (every payment that reached /settle, with its outcome)
    /// instead of listing unknown outcomes; narrowed by the flags below.
    #[arg(long, conflicts_with_all = ["store", "redis"])]
    ledger: bool,
    #[command(flatten)]
    ledger_args: LedgerArgs,
    /// The key prefix of the Redis store (RedisStore::connect_with_prefix).
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "x402",
        requires = "redis"
    )]
    redis_prefix: String,
    /// An EVM JSON-RPC endpoint: resolve each payment from the chain and record the outcome.
    #[arg(long, value_name = "URL", env = "X402_RPC_URL")]
    rpc_url: Option<String>,
    /// How long a resolved outcome is kept past the authorization's validBefore (the server's
    /// record retention).
    #[arg(long, value_name = "SECONDS", default_value_t = x402_runtime::DEFAULT_RECORD_RETENTION.as_secs())]
    retention_seconds: u64,
    /// Print one JSON array instead of a table (its fields are listed in --help).
    #[arg(long)]
    json: bool,
}

const AFTER_HELP: &str = "\
Lists every payment whose settlement outcome is unknown (money may have moved): `pending` (the
facilitator's answer did not settle it either way) or `settling` (/settle was in flight, or the
process stopped while it was). With --rpc-url, each one is looked up on chain: an authorization
found used is recorded settled (with its transaction), one unused and past its validBefore is
recorded expired_unsettled (nothing was charged; the buyer may pay again), anything else stays
unknown. A resend of the payment is then answered from that record.

--json prints an array with one object per payment:
  key           network/asset/payer/nonce, the payment's key in the record
  state         \"pending\" or \"settling\"
  resource      the URL paid for, or null when the request was not recorded
  payer         the authorization's `from` (EIP-55)
  network       CAIP-2 network id
  asset         token contract (EIP-55)
  nonce         the authorization's nonce
  amount        human units for a known token (\"0.001\"), else atomic units; null if unknown
  currency      \"USDC\", \"EURC\", or null for another token
  atomicAmount  atomic units, or null
  validBefore   the authorization's validBefore (unix seconds), or null
  since         when the outcome became unknown (unix seconds; 0 when not known)
  ageSeconds    now - since, or null when since is 0
  transaction   the transaction the facilitator named, or null
  hasRequest    whether the /settle request was recorded
  resolution    null without --rpc-url; else {\"outcome\": \"settled\" | \"expired_unsettled\" |
                \"unknown\" | \"error\", \"transaction\": hash or null, \"error\": text or null}

--ledger (with --postgres URL or $X402_DATABASE_URL) prints the ledger instead, newest first:
a table, or with --csv every column with a header row (RFC 4180), or with --json one object
per payment with the same fields in camelCase:
  created_at    when /settle was first called (RFC 3339, UTC)
  state         settling, pending, settled, expired_unsettled or refused
  network       CAIP-2 network id
  payer         the authorization's `from` (EIP-55)
  amount        human units for a known token (\"0.001\"), else empty
  currency      \"USDC\", \"EURC\", or empty for another token
  atomic_amount atomic units
  asset         token contract (EIP-55)
  pay_to        the recipient (lower-case hex)
  route         the resource URL's path
  resource      the resource URL
  scheme        the payment scheme (\"exact\")
  transaction   the settling transaction (or the one named while pending)
  nonce         the authorization's nonce
  updated_at    when its state last changed
  settled_at    when it was recorded settled, or empty
  key           network/asset/payer/nonce
It exits 0 unless the ledger cannot be read.

Exit status: 0 when no payment is left with an unknown outcome (nothing listed, or every one
resolved), 1 when some remain unknown (always so without --rpc-url when any is listed) or on
errors.";

/// The store to read, and how to name it.
struct Opened {
    store: Box<dyn ReplayStore>,
    name: String,
}

/// One listed payment and, with an RPC, what the chain established.
struct Row {
    unknown: UnknownSettlement,
    resolution: Option<Result<Resolution, String>>,
}

impl Row {
    fn resolved(&self) -> bool {
        matches!(
            self.resolution,
            Some(Ok(Resolution::Settled { .. } | Resolution::ExpiredUnsettled))
        )
    }
}

pub(crate) async fn run(args: Args) -> Result<ExitCode, Error> {
    if args.ledger {
        let Some(url) = postgres_url(&args) else {
            return Err(format!(
                "--ledger reads a Postgres store: name it with --postgres URL (or set {DATABASE_URL_ENV})"
            )
            .into());
        };
        let store = connect_postgres(&url).await?;
        return ledger::run(&store, &args.ledger_args, args.json).await;
    }
    let opened = open(&args).await?;
    let store = &*opened.store;
    let listed = unknown_settlements(store)
        .await
        .map_err(|e| format!("cannot list the payments in {}: {e}", opened.name))?;
    let mut rows: Vec<Row> = listed
        .into_iter()
        .map(|unknown| Row {
            unknown,
            resolution: None,
        })
        .collect();
    if let Some(url) = &args.rpc_url {
        let reader = RpcChainReader::builder()
            .default_rpc_url(url.trim())
            .build()
            .map_err(|e| format!("--rpc-url: {e}"))?;
        let retention = Duration::from_secs(args.retention_seconds);
        for row in &mut rows {
            let lookup = resolve_on_chain(store, &reader, &row.unknown, retention);
            let resolution = match tokio::time::timeout(CHAIN_TIMEOUT, lookup).await {
                Ok(Ok(resolution)) => Ok(resolution),
                Ok(Err(e)) => Err(format!("cannot read the chain: {e}")),
                Err(_) => Err(format!(
                    "the chain did not answer within {} s",
                    CHAIN_TIMEOUT.as_secs()
                )),
            };
            if let Err(why) = &resolution {
                eprintln!("x402: {}: {why}", row.unknown.key);
            }
            row.resolution = Some(resolution);
        }
    }
    let now = unix_now();
    if args.json {
        let list: Vec<Value> = rows.iter().map(|row| row_json(row, now)).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print!(
            "{}",
            rows_text(&rows, now, &opened.name, args.rpc_url.is_some())
        );
    }
    Ok(if rows.iter().all(Row::resolved) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The Postgres store to read: `--postgres`, else `$X402_DATABASE_URL` when no other store is
/// named.
fn postgres_url(args: &Args) -> Option<String> {
    if let Some(url) = &args.postgres {
        return Some(url.trim().to_owned());
    }
    if args.store.is_some() || args.redis.is_some() {
        return None;
    }
    std::env::var(DATABASE_URL_ENV)
        .ok()
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
}

/// Connects to the Postgres store (the URL is not repeated: it may carry a password).
async fn connect_postgres(url: &str) -> Result<PostgresStore, Error> {
    let connect = PostgresStore::connect(url);
    let store = tokio::time::timeout(POSTGRES_TIMEOUT, connect)
        .await
        .map_err(|_| {
            format!(
                "Postgres did not answer within {} s",
                POSTGRES_TIMEOUT.as_secs()
            )
        })??;
    Ok(store)
}

/// Opens the Postgres or Redis store, or the file (which must exist: opening creates it
/// otherwise).
async fn open(args: &Args) -> Result<Opened, Error> {
    if let Some(url) = postgres_url(args) {
        let store = connect_postgres(&url).await?;
        let name = format!("Postgres {}", store.target());
        return Ok(Opened {
            store: Box::new(store),
            name,
        });
    }
    if let Some(url) = &args.redis {
        let connect = RedisStore::connect_with_prefix(url, &args.redis_prefix);
        let store = tokio::time::timeout(REDIS_TIMEOUT, connect)
            .await
            .map_err(|_| {
                format!(
                    "Redis at {url} did not answer within {} s",
                    REDIS_TIMEOUT.as_secs()
                )
            })??;
        return Ok(Opened {
            store: Box::new(store),
            name: format!("Redis {url}"),
        });
    }
    let path = match &args.store {
        Some(path) => path.clone(),
        None => match std::env::var(STORE_PATH_ENV) {
            Ok(path) if path.trim() == "memory" => {
                return Err(format!(
                    "{STORE_PATH_ENV}=memory: that server keeps its record in memory only, so no \
                     other process can read it; name a file with --store PATH or a Redis store \
                     with --redis URL"
                )
                .into());
            }
            Ok(path) if !path.trim().is_empty() => PathBuf::from(path.trim()),
            _ => PathBuf::from(x402_runtime::DEFAULT_STORE_PATH),
        },
    };
    if !path.is_file() {
        return Err(format!(
            "no settlement record at {}: name the server's file with --store PATH (its \
             {STORE_PATH_ENV}; by default x402-payments.redb in the directory it runs in)",
            path.display()
        )
        .into());
    }
    let store = FileStore::open(&path).map_err(|e| locked(&path, &e))?;
    Ok(Opened {
        store: Box::new(store),
        name: path.display().to_string(),
    })
}

/// The error for a record that cannot be opened, with the fix.
fn locked(path: &Path, error: &dyn std::fmt::Display) -> String {
    format!(
        "cannot open the settlement record {}: {error}\n  a running server holds the file: stop \
         it and run this again, or run the servers with a shared Redis store (RedisStore) and \
         use --redis URL, which works while they run",
        path.display()
    )
}

/// `(human amount with currency, amount field, currency field)`.
fn amount(unknown: &UnknownSettlement) -> (String, Option<String>, Option<&'static str>) {
    let Some(atomic) = unknown.amount else {
        return ("?".to_owned(), None, None);
    };
    let asset = Network::from_caip2(&unknown.key.network)
        .and_then(|network| Asset::find(&network, unknown.key.asset));
    match asset {
        Some(asset) => {
            let human = format_amount(atomic, asset.decimals);
            let symbol = asset.currency.symbol();
            (format!("{human} {symbol}"), Some(human), Some(symbol))
        }
        None => (format!("{atomic} (atomic)"), Some(atomic.to_string()), None),
    }
}

/// `3m12s`, `45s`, `2h05m`, `1d03h`; `?` when `since` is not known.
pub(crate) fn age(since: u64, now: u64) -> String {
    if since == 0 {
        return "?".to_owned();
    }
    let seconds = now.saturating_sub(since);
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn outcome(resolution: &Result<Resolution, String>) -> &'static str {
    match resolution {
        Ok(Resolution::Settled { .. }) => "settled",
        Ok(Resolution::ExpiredUnsettled) => "expired_unsettled",
        Ok(_) => "unknown",
        Err(_) => "error",
    }
}

fn row_json(row: &Row, now: u64) -> Value {
    let unknown = &row.unknown;
    let (_, amount, currency) = self::amount(unknown);
    let resolution = row.resolution.as_ref().map(|resolution| {
        let transaction = match resolution {
            Ok(Resolution::Settled { transaction }) => transaction.clone(),
            _ => None,
        };
        json!({
            "outcome": outcome(resolution),
            "transaction": transaction,
            "error": resolution.as_ref().err(),
        })
    });
    json!({
        "key": unknown.key.to_string(),
        "state": unknown.state,
        "resource": unknown.resource,
        "payer": unknown.key.from.to_string(),
        "network": unknown.key.network,
        "asset": unknown.key.asset.to_string(),
        "nonce": unknown.key.nonce.to_string(),
        "amount": amount,
        "currency": currency,
        "atomicAmount": unknown.amount.map(|a| a.to_string()),
        "validBefore": unknown.valid_before,
        "since": unknown.since,
        "ageSeconds": (unknown.since != 0).then(|| now.saturating_sub(unknown.since)),
        "transaction": unknown.transaction,
        "hasRequest": unknown.has_request,
        "resolution": resolution,
    })
}

fn rows_text(rows: &[Row], now: u64, name: &str, resolving: bool) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        let _ = writeln!(out, "no payment with an unknown outcome in {name}");
        return out;
    }
    let mut header = vec!["STATE"];
    if resolving {
        header.push("RESOLVED");
    }
    header.extend([
        "AGE",
        "AMOUNT",
        "NETWORK",
        "PAYER",
        "TRANSACTION",
        "RESOURCE",
    ]);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let unknown = &row.unknown;
            let mut cells = vec![unknown.state.to_owned()];
            let mut transaction = unknown.transaction.clone();
            if let Some(resolution) = &row.resolution {
                cells.push(outcome(resolution).to_owned());
                if let Ok(Resolution::Settled {
                    transaction: Some(tx),
                }) = resolution
                {
                    transaction = Some(tx.clone());
                }
            }
            cells.extend([
                age(unknown.since, now),
                amount(unknown).0,
                unknown.key.network.clone(),
                unknown.key.from.to_string(),
                transaction.unwrap_or_else(|| "-".to_owned()),
                unknown.resource.clone().unwrap_or_else(|| "?".to_owned()),
            ]);
            cells
        })
        .collect();
    out.push_str(&table(&header, &cells));
    let count = rows.len();
    let plural = if count == 1 { "" } else { "s" };
    if resolving {
        let settled = rows
            .iter()
            .filter(|r| matches!(r.resolution, Some(Ok(Resolution::Settled { .. }))))
            .count();
        let expired = rows
            .iter()
            .filter(|r| matches!(r.resolution, Some(Ok(Resolution::ExpiredUnsettled))))
            .count();
        let errors = rows
            .iter()
            .filter(|r| matches!(r.resolution, Some(Err(_))))
            .count();
        let left = count - settled - expired;
        let _ = write!(
            out,
            "\n{count} payment{plural} with an unknown outcome in {name}: {settled} settled, \
             {expired} expired unsettled (recorded); {left} still unknown"
        );
        if errors > 0 {
            let _ = write!(out, " ({errors} could not be read from the chain)");
        }
        out.push('\n');
    } else {
        let _ = writeln!(
            out,
            "\n{count} payment{plural} with an unknown outcome in {name}; resolve them from the \
             chain with --rpc-url URL"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_short() {
        assert_eq!(age(0, 1_000), "?");
        assert_eq!(age(1_000, 1_000), "0s");
        assert_eq!(age(1_000, 1_045), "45s");
        assert_eq!(age(1_000, 1_192), "3m12s");
        assert_eq!(age(1_000, 1_000 + 2 * 3600 + 5 * 60 + 9), "2h05m");
        assert_eq!(age(1_000, 1_000 + 86_400 + 3 * 3600), "1d03h");
        assert_eq!(age(2_000, 1_000), "0s", "a clock behind the record");
    }
}
