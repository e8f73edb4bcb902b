//! `x402`: discover what an API charges, pay one call within a limit, show the paying wallet;
//! for a server's operator, list and resolve the payments whose settlement outcome is unknown,
//! and check a deployment's configuration before real money flows.
//!
//! ```text
//! x402 discover http://127.0.0.1:4021            # table of paid endpoints and prices
//! x402 discover http://127.0.0.1:4021 --json     # the same for machines
//! X402_PAYER_KEY=0x… x402 pay "http://127.0.0.1:4021/weather?city=Paris" --max 0.01
//! X402_PAYER_KEY=0x… x402 pay http://127.0.0.1:4021/forecast -X POST -d '{"city":"Oslo"}'
//! X402_PAYER_KEY=0x… x402 wallet --rpc-url http://127.0.0.1:8545
//! X402_PAYER_KEY=0x… X402_SVM_PAYER_KEY=… x402 wallet --svm-rpc-url https://api.devnet.solana.com
//! x402 settlements --store x402-payments.redb --rpc-url http://127.0.0.1:8545
//! x402 doctor                                    # check this deployment's environment
//! x402 settlements --postgres postgres://x402@127.0.0.1/shop --ledger --since 2026-12-01 --csv
//! ```
//!
//! The key comes from the environment only: `X402_PAYER_KEY` (hex), or `X402_KEYSTORE` (or
//! `--keystore`) with `X402_KEYSTORE_PASSWORD`. It is never a flag, so it stays out of shell
//! history, and it is never printed. With the `svm` feature (default), `X402_SVM_PAYER_KEY`
//! (base58 keypair or seed, or a keypair file's JSON array) or `X402_SVM_PAYER_KEYPAIR` (a
//! keypair file) adds a Solana key: `pay` then pays Solana offers too, reading blockhashes from
//! `X402_SVM_RPC_URL` (default: the cluster's public endpoint).
//!
//! Exit status of `pay`: 0 on a 2xx answer, 1 when nothing was paid or the payment failed, 3
//! when the server answered with another status after payment (nothing is charged for those).
//! Of `settlements`: 0 when no payment is left with an unknown outcome, 1 when some remain or on
//! errors. Of `doctor`: 0 when no check failed (warnings allowed), 1 otherwise.

mod doctor;
mod ledger;
mod output;
mod settlements;
mod wallet;
#[cfg(feature = "svm")]
mod wallet_svm;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use x402_runtime::client::{
    ClientError, ClientEvent, PaymentSigner, SpendStatus, X402Client, discover, parse_amount,
};
use x402_runtime::schemes::permit2;
use x402_runtime::{Currency, codes};

/// Pay for HTTP APIs with x402: discover prices, pay a call, show the wallet; list and resolve a
/// server's unknown settlements; check a server's configuration.
#[derive(Debug, Parser)]
#[command(name = "x402", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List a server's paid endpoints and their prices (from /openapi.json, or the 402 of URL).
    Discover {
        /// The server (or one endpoint) to look at.
        url: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Call URL, paying the 402 if its price is within --max.
    Pay(Call),
    /// Show the paying address and, with an RPC URL, its balances.
    Wallet {
        /// An EVM JSON-RPC endpoint to read balances from.
        #[arg(long, env = "X402_RPC_URL")]
        rpc_url: Option<String>,
        /// A Solana JSON-RPC endpoint to read the Solana payer's balances from (with
        /// X402_SVM_PAYER_KEY or X402_SVM_PAYER_KEYPAIR; feature `svm`).
        #[arg(long, env = "X402_SVM_RPC_URL")]
        svm_rpc_url: Option<String>,
        /// Encrypted keystore file (with X402_KEYSTORE_PASSWORD) instead of X402_PAYER_KEY.
        #[arg(long, env = "X402_KEYSTORE")]
        keystore: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Instead of showing balances, let Permit2 move this token for the payer (sends
        /// approve(PERMIT2, max) from the payer's address, which pays the gas; nothing is sent
        /// when already approved). Needed once per token before paying `upto` offers and
        /// `exact` offers over Permit2.
        #[arg(long, value_name = "TOKEN", requires = "rpc_url")]
        approve_permit2: Option<String>,
    },
    /// List the payments of a server's settlement record whose outcome is unknown; with
    /// --rpc-url, resolve them from the chain and record the outcome.
    Settlements(settlements::Args),
    /// Check a server's configuration, from its environment, before real money flows.
    Doctor(doctor::Args),
}

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Discover { url, json } => run_discover(&url, json).await,
        Command::Pay(call) => match signer(call.keystore.clone()) {
            Ok(signer) => run_pay(signer, call).await,
            Err(e) => Err(e),
        },
        Command::Wallet {
            rpc_url,
            svm_rpc_url,
            keystore,
            json,
            approve_permit2,
        } => match (signer(keystore), approve_permit2, rpc_url) {
            (Err(e), _, _) => Err(e),
            (Ok(signer), Some(token), Some(rpc_url)) => {
                wallet::approve_permit2(&signer, &rpc_url, &token, json).await
            }
            (Ok(signer), _, rpc_url) => {
                wallet::run(&signer, rpc_url.as_deref(), svm_rpc_url.as_deref(), json).await
            }
        },
        Command::Settlements(args) => settlements::run(args).await,
        Command::Doctor(args) => doctor::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("x402: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The payer: `--keystore`/`X402_KEYSTORE` when given, else the environment.
fn signer(keystore: Option<PathBuf>) -> Result<PaymentSigner, Error> {
    match keystore {
        Some(path) => {
            let password = std::env::var(x402_runtime::client::KEYSTORE_PASSWORD_ENV)
                .map_err(|_| "a keystore needs its password in X402_KEYSTORE_PASSWORD")?;
            let signer = PaymentSigner::from_keystore(path, &password)?;
            #[cfg(feature = "svm")]
            let signer = signer.with_svm_from_env()?;
            Ok(signer)
        }
        None => Ok(PaymentSigner::from_env()?),
    }
}

fn http() -> Result<reqwest::Client, Error> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(10))
        .build()?)
}

async fn run_discover(url: &str, json: bool) -> Result<ExitCode, Error> {
    let found = discover(&http()?, url).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        print!("{}", output::discovery_table(&found));
    }
    Ok(ExitCode::SUCCESS)
}

/// `x402 pay` arguments.
#[derive(Debug, clap::Args)]
struct Call {
    /// The URL to call.
    url: String,
    /// HTTP method.
    #[arg(short = 'X', long, default_value = "GET")]
    method: String,
    /// JSON request body (sent with `Content-Type: application/json`).
    #[arg(short = 'd', long)]
    data: Option<String>,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// The most this call may cost, in human units of the token (USDC or EURC).
    #[arg(long, default_value = "0.01")]
    max: String,
    /// Only pay on these networks (CAIP-2, repeatable or comma-separated), most preferred first.
    #[arg(long = "network", value_delimiter = ',')]
    networks: Vec<String>,
    /// Encrypted keystore file (with X402_KEYSTORE_PASSWORD) instead of X402_PAYER_KEY.
    #[arg(long, env = "X402_KEYSTORE")]
    keystore: Option<PathBuf>,
    /// Append the payment to this file as one JSON line (a spend log).
    #[arg(long)]
    log: Option<PathBuf>,
    /// Print one JSON object (status, body, receipt, payment) instead of text.
    #[arg(long)]
    json: bool,
}

async fn run_pay(signer: PaymentSigner, call: Call) -> Result<ExitCode, Error> {
    for currency in Currency::ALL {
        parse_amount(&call.max, currency.decimals()).map_err(|e| format!("--max: {e}"))?;
    }
    let method = reqwest::Method::from_bytes(call.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("`{}` is not an HTTP method", call.method))?;
    let progress = Progress::new(!call.json);
    let hook = progress.clone();
    // The client's own reqwest client has the same timeouts as `http()`.
    let mut builder = X402Client::builder(signer)
        .networks(call.networks.iter().map(|n| n.trim().to_owned()))
        .on_event(move |event| hook.event(event));
    for currency in Currency::ALL {
        builder = builder.max_per_request(currency, &call.max);
    }
    let client = builder.build()?;
    let mut request = client.http().request(method, &call.url);
    for header in &call.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("header `{header}` is not `Name: value`"))?;
        request = request.header(name.trim(), value.trim());
    }
    if let Some(data) = &call.data {
        serde_json::from_str::<serde_json::Value>(data)
            .map_err(|e| format!("--data is not JSON: {e}"))?;
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(data.clone());
    }
    let result = client.send(request).await;
    progress.stop().await;
    if let Some(path) = &call.log {
        output::append_log(path, &client.spend_log())?;
    }
    match result {
        Ok(answer) => {
            if call.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&output::answer_json(&answer))?
                );
            } else {
                print!("{}", output::answer_text(&answer));
            }
            Ok(if answer.status().is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        Err(error) => {
            if call.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&output::error_json(&error))?
                );
            }
            Err(Box::new(Explained(error)))
        }
    }
}

/// A client error with advice on what to do next.
#[derive(Debug)]
struct Explained(ClientError);

impl std::fmt::Display for Explained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        match &self.0 {
            ClientError::OverRequestLimit { .. } => {
                f.write_str("\n  raise the limit with --max if you mean to pay this much")
            }
            ClientError::Refused { reason, .. } if reason == permit2::codes::ALLOWANCE_REQUIRED => {
                write!(
                    f,
                    "\n  the payer has not approved Permit2 for this token: approve {} for it once \
                     from the payer's wallet (ERC-20 approve), then pay again",
                    permit2::PERMIT2
                )
            }
            ClientError::Unconfirmed { spend, .. }
            | ClientError::LiveAuthorizationRefused { spend, .. } => write!(
                f,
                "\n  do not pay again before {}: the signed payment may still settle",
                spend.valid_before
            ),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for Explained {}

/// `5s`, `0.5s`.
fn seconds(wait: Duration) -> String {
    if wait.subsec_millis() == 0 {
        format!("{}s", wait.as_secs())
    } else {
        format!("{:.1}s", wait.as_secs_f64())
    }
}

/// The progress line on stderr: what is being paid, then a ticking wait until the answer.
#[derive(Clone)]
struct Progress {
    show: bool,
    live: bool,
    running: Arc<AtomicBool>,
    ticker: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Progress {
    fn new(show: bool) -> Progress {
        Progress {
            show,
            live: show && std::io::stderr().is_terminal(),
            running: Arc::new(AtomicBool::new(false)),
            ticker: Arc::new(Mutex::new(None)),
        }
    }

    fn event(&self, event: &ClientEvent) {
        if !self.show {
            return;
        }
        match event {
            ClientEvent::Paying(spend) => {
                let at_most = if spend.scheme == "upto" {
                    "at most "
                } else {
                    ""
                };
                eprintln!(
                    "paying {at_most}{} {} to {} on {} (authorization valid for {} s)",
                    spend.amount,
                    spend.currency,
                    spend.pay_to,
                    spend.network,
                    spend.valid_before.saturating_sub(spend.signed_at)
                );
                self.tick();
            }
            ClientEvent::Resending { attempt, reason } => {
                self.clear();
                eprintln!("resending the same payment (attempt {attempt}): {reason}");
            }
            ClientEvent::Waiting {
                code,
                transaction,
                wait,
                ..
            } => {
                self.clear();
                let why = if *code == codes::SETTLEMENT_PENDING {
                    "settlement pending"
                } else {
                    "payment in progress in another request"
                };
                let tx = transaction
                    .as_ref()
                    .map(|tx| format!(" (transaction {tx})"))
                    .unwrap_or_default();
                eprintln!(
                    "{why}, resending the same payment in {}{tx}",
                    seconds(*wait)
                );
            }
            ClientEvent::Expired(spend) => {
                self.clear();
                match &spend.status {
                    SpendStatus::ExpiredUnsettled => eprintln!(
                        "the authorization expired unsettled (nothing was charged); signing a new payment"
                    ),
                    _ => eprintln!(
                        "the authorization is past its validBefore and the server asks for a new payment; signing a new one"
                    ),
                }
            }
            ClientEvent::Answered { .. } => {}
            _ => {}
        }
    }

    /// Starts the ticking "waiting" line (a plain line when stderr is not a terminal).
    fn tick(&self) {
        if !self.live {
            eprintln!("waiting for verification and settlement…");
            return;
        }
        if self.running.swap(true, Ordering::SeqCst) {
            return;
        }
        let running = self.running.clone();
        let ticker = tokio::spawn(async move {
            let started = Instant::now();
            let frames = ['|', '/', '-', '\\'];
            let mut frame = 0;
            while running.load(Ordering::SeqCst) {
                {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(
                        err,
                        "\r{} waiting for verification and settlement… {:.1} s ",
                        frames[frame % frames.len()],
                        started.elapsed().as_secs_f64()
                    );
                    let _ = err.flush();
                }
                frame += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        *self.ticker.lock().unwrap_or_else(PoisonError::into_inner) = Some(ticker);
    }

    fn clear(&self) {
        if self.live && self.running.load(Ordering::SeqCst) {
            eprint!("\r\x1b[2K");
        }
    }

    /// Stops the ticking line and erases it.
    async fn stop(&self) {
        self.clear();
        self.running.store(false, Ordering::SeqCst);
        let ticker = self
            .ticker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(ticker) = ticker {
            let _ = ticker.await;
            eprint!("\r\x1b[2K");
        }
    }
}
