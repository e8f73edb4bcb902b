//! `x402 doctor`: reads a deployment's configuration from the environment, as
//! `X402::from_env` does, and checks it before real money flows: the recipient, the settings,
//! the facilitator, each network's RPC node, tokens and clock, and the settlement record.
//!
//! Every check has a stable name (listed in [`AFTER_HELP`]), a status (`pass`, `warn`,
//! `fail`, `skipped`), what was found, and for a failure or a warning the fix. Every network
//! call is bounded by [`TIMEOUT`]; no secret is printed (URLs are shown as their origin only).

mod chain;
mod facilitator;
mod report;
mod settings;
mod store;

use std::process::ExitCode;
use std::time::Duration;

pub(crate) use report::{Check, Status};

use crate::Error;

/// How long one network call of a check may take (one facilitator `/supported`, one RPC
/// request).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// `x402 doctor` arguments.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Print one JSON document `{"ok", "checks": [{"name", "status", "detail", "fix"}]}`.
    #[arg(long)]
    json: bool,
}

const AFTER_HELP: &str = "\
Reads the server's environment (X402_PAY_TO, X402_NETWORK, X402_FACILITATOR_URL, X402_PRICES,
X402_PUBLIC_URL, X402_STORE_PATH, X402_RPC_URL, X402_RPC_URL_<chain id>, ...) exactly as
X402::from_env does, and runs these checks (names as in --json):

  payTo                    X402_PAY_TO is set, an address, EIP-55 checksummed, not zero
  config                   the configuration parses (the error X402::from_env would give);
                           read with payTo corrected when only its case is wrong, with a
                           stand-in recipient when it is unusable
  facilitator              /supported answers in time, credentials accepted (401/403 is an
                           authentication failure, told apart from unreachable)
  facilitator/networks     `exact` (x402 v2) supported on every configured network
  rpc/<network>            the RPC node answers and serves that chain (eth_chainId); skipped,
                           with the variable to set, for a network without an RPC URL
  clock/<network>          latest block timestamp against this machine's clock: pass within
                           30 s, warn up to the clock-skew allowance (60 s), fail beyond
  token/<network>/<CUR>    the token of the offer has code at its address, and its EIP-712
                           name and version (eip712Domain(), or name() and version()) and
                           DOMAIN_SEPARATOR() match the offer's extra.name / extra.version
  store                    the settlement record: the file at X402_STORE_PATH opens and takes
                           a probe write and delete; in use by a running server, or
                           X402_STORE_PATH=memory, is a warning

Run it where the server runs (a relative X402_STORE_PATH is read from the current folder),
with the server's environment. Each network call is bounded by 10 s. Routes' own networks and
prices are checked when the server starts (X402::check_routes, check_facilitator), not here.

Exit status: 0 when no check failed (warnings and skipped checks allowed), 1 otherwise.";

/// Runs every check on the process environment and prints the report.
pub(crate) async fn run(args: Args) -> Result<ExitCode, Error> {
    let checks = examine(&|name| std::env::var(name).ok()).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report::json(&checks))?);
    } else {
        print!("{}", report::text(&checks));
    }
    Ok(if report::ok(&checks) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Every check, in report order, on the variables `lookup` gives.
pub(crate) async fn examine(lookup: &dyn Fn(&str) -> Option<String>) -> Vec<Check> {
    let pay_to = settings::pay_to(lookup);
    let mut checks = vec![pay_to.check.clone()];
    let read = settings::read(lookup, &pay_to);
    checks.push(read.check);
    let Some(deployment) = read.deployment else {
        let why = "the configuration does not parse (see config)";
        checks.extend(
            ["facilitator", "facilitator/networks", "store"].map(|name| Check::skipped(name, why)),
        );
        return checks;
    };
    let (facilitator, chain, store) = tokio::join!(
        facilitator::check(&deployment.config),
        chain::check(&deployment, lookup),
        store::check(&deployment.config),
    );
    checks.extend(facilitator);
    checks.extend(chain);
    checks.push(store);
    checks
}
