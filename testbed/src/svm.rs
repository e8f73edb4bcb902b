//! The test bed's Solana chain: LiteSVM behind the JSON-RPC front `testbed/svm/rpc.mjs`.
//!
//! [`SvmChain::start`] runs `node testbed/svm/rpc.mjs` with the pinned npm packages of
//! `interop/node_modules`: the real SVM with the SPL Token, Associated Token Account, Compute
//! Budget and Memo programs, checking real ed25519 signatures. USDC (6 decimals, SPL Token program)
//! sits at the devnet ([`USDC_DEVNET`]) and mainnet ([`USDC_MAINNET`]) mint addresses; the test
//! accounts [`ACCOUNTS`] hold SOL and a token account of both mints, and the payers [`PAYER`] and
//! [`PAYER2`] hold [`DEFAULT_MINT`] of both. It answers Solana JSON-RPC on a free port of 127.0.0.1
//! ([`SvmChain::rpc_url`]): the methods the official x402 client and facilitator call and a few
//! test-only ones, listed in the script's header. Every transaction is final at once and only the
//! latest blockhash is valid. Unlike a validator, a `sendTransaction` that cannot land is answered
//! with a JSON-RPC error rather than a signature that never confirms ([`SvmChain::drop_sends`]
//! gives the silent loss on request).
//!
//! The chain is killed on drop, and exits by itself should this process die first (its standard
//! input is a pipe from this process).
//!
//! ```no_run
//! # async fn demo() -> Result<(), x402_testbed::Error> {
//! use x402_testbed::svm::{self, SvmChain};
//! let chain = SvmChain::start().await?;
//! assert_eq!(chain.usdc_balance(svm::PAYER.address).await?, svm::DEFAULT_MINT);
//! println!("Solana JSON-RPC at {}", chain.rpc_url());
//! # Ok(()) }
//! ```

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::error::{chain, io};
use crate::install::tail;
use crate::{Error, Paths};

/// CAIP-2 id of Solana devnet, the network the test bed's payments use.
pub const DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
/// CAIP-2 id of Solana mainnet (its USDC mint is planted too).
pub const MAINNET: &str = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp";
/// The x402 v1 name of Solana devnet.
pub const DEVNET_V1: &str = "solana-devnet";
/// The x402 v1 name of Solana mainnet.
pub const MAINNET_V1: &str = "solana";
/// Devnet's genesis hash, which the chain's `getGenesisHash` answers.
pub const DEVNET_GENESIS_HASH: &str = "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG";
/// USDC's mint on devnet, planted on the chain (6 decimals, mint authority [`MINT_AUTHORITY`]).
pub const USDC_DEVNET: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";
/// USDC's mint on mainnet, planted on the chain too (6 decimals, mint authority [`MINT_AUTHORITY`]).
pub const USDC_MAINNET: &str = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";
/// The SPL Token program, owner of both USDC mints and of every token account.
pub const TOKEN_PROGRAM: &str = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
/// USDC's decimals.
pub const USDC_DECIMALS: u8 = 6;
/// Atomic units of each USDC mint held by each payer at start: 1000 USDC.
pub const DEFAULT_MINT: u64 = 1_000_000_000;

/// How long the chain may take to print its ready line (it takes about half a second).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one JSON-RPC call may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// Where an SPL token account keeps its amount (u64 little-endian), and its size.
const TOKEN_AMOUNT: std::ops::Range<usize> = 64..72;
const TOKEN_ACCOUNT_LEN: usize = 165;

/// Tells one chain's log file from another's within a process.
static NEXT_CHAIN: AtomicU32 = AtomicU32::new(0);

/// One of the test bed's Solana accounts: ed25519 seed = 32 times the byte [`seed`](Self::seed).
/// Public test keys: never use them anywhere real. `Debug` leaves the secret key out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SvmAccount {
    /// `S1`..`S6`.
    pub name: &'static str,
    /// The byte repeated 32 times to make the ed25519 seed.
    pub seed: u8,
    /// The public key, base58.
    pub address: &'static str,
    /// Base58 of the 64-byte keypair (seed, then public key), as Solana wallets export it.
    pub secret_key: &'static str,
    /// What the test bed uses it for.
    pub role: &'static str,
    /// Its associated token account of [`USDC_DEVNET`].
    pub usdc_devnet: &'static str,
    /// Its associated token account of [`USDC_MAINNET`].
    pub usdc_mainnet: &'static str,
}

impl std::fmt::Debug for SvmAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SvmAccount")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl SvmAccount {
    /// Its associated token account of `mint`, when `mint` is one of the planted USDC mints.
    pub fn token_account(&self, mint: &str) -> Option<&'static str> {
        match mint {
            USDC_DEVNET => Some(self.usdc_devnet),
            USDC_MAINNET => Some(self.usdc_mainnet),
            _ => None,
        }
    }
}

/// S1: the USDC mint authority and the funder of `requestAirdrop` (100 000 SOL).
pub const MINT_AUTHORITY: SvmAccount = SvmAccount {
    name: "S1",
    seed: 1,
    address: "AKnL4NNf3DGWZJS6cPknBuEGnVsV4A4m5tgebLHaRSZ9",
    secret_key: "2AXDGYSE4f2sz7tvMMzyHvUfcoJmxudvdhBcmiUSo6iuCXagjUCKEQF21awZnUGxmwD4m9vGXuC3qieHXJQHAcT",
    role: "mint authority and funder",
    usdc_devnet: "H1AviagU5Y17z77v1F9qZPJ9kCbCsL4ewiZABNfGYoRs",
    usdc_mainnet: "3wvJdyFnGvaMWpbq93NU91SggiVRveULUXL6iX5VZDGP",
};
/// S2: the payer (client); [`DEFAULT_MINT`] of both USDC mints at start.
pub const PAYER: SvmAccount = SvmAccount {
    name: "S2",
    seed: 2,
    address: "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu",
    secret_key: "3L3RY5sT8K4kyEnqhizwaqxLEbcYvpGrGPNEYRwtbCSdSvvMAJawwEEPE3NhshFbVUqmvDV74Ct4vo7MEu7yxJX",
    role: "payer",
    usdc_devnet: "GzpVTWkyGGfBXRaprnrhV3JtGj3TT52z5w2CrEJsTfjm",
    usdc_mainnet: "ASZ2TDDNJG2n42TxAezqNNzwWipykHrENDKMCoLKgzup",
};
/// S3: the fee payer of the TypeScript reference facilitator.
pub const TS_FACILITATOR: SvmAccount = SvmAccount {
    name: "S3",
    seed: 3,
    address: "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse",
    secret_key: "4VZdodJgBy6dxMgm45zusmRzrPvKtiumu5YrK9RLPJAVbW5qTGHqsYeFR8HsFWEh71pjwJffSPkmficrRvk3p3a",
    role: "TypeScript facilitator fee payer",
    usdc_devnet: "6ndWAgFxMAVLobD8WrdBj5w41GrDeJYiQX91nNSrwkZp",
    usdc_mainnet: "DNDTCnZkNk358qDFZd9unHtnrc73SsXcpVWtwJJMrR4B",
};
/// S4: the merchant (`payTo`, a wallet: payments go to its token account).
pub const MERCHANT: SvmAccount = SvmAccount {
    name: "S4",
    seed: 4,
    address: "EdmxWPmx2WH6WgFfTdu9xfkYf3k1g5wD1zccTVySEEh1",
    secret_key: "5f5r5AjuFd8WwUagQSztAgufUCE6rdYhXmjU5rtnBPtC8ky1rA78ap2MWs3HCm94AaHn6skXbGvsnkbEG2jf8vF",
    role: "merchant (payTo)",
    usdc_devnet: "HfP3RZibPCj2EdqEyR7mSkKYSUzFPKsbRrMoR4i1mbmd",
    usdc_mainnet: "FHPASu6WrzXmbm5NbAQy9BxwX5naUHKn5z8ycurGoSX",
};
/// S5: the fee payer of the Rust facilitator.
pub const FACILITATOR: SvmAccount = SvmAccount {
    name: "S5",
    seed: 5,
    address: "8SFqwqnq4whPhs8icwHA2hQg3hUoN1qrCLK1SBx3WKwe",
    secret_key: "6pc4LiB8KHAPvbUbkozrTcPL5zXspYBdATv5raNDyVbpoz75fGXT3N41QtwPtrdu4wMT1tyRu2125Uyu92AnxEC",
    role: "Rust facilitator fee payer",
    usdc_devnet: "6o6v9pN754WMDt4YcTADWd4Mya59rW1RA7zDtqmh9tRk",
    usdc_mainnet: "CArvLpM8SDb5WgWGvUaUb6Bx1uSWPGHuYynPcT7CnmZJ",
};
/// S6: the second payer; [`DEFAULT_MINT`] of both USDC mints at start.
pub const PAYER2: SvmAccount = SvmAccount {
    name: "S6",
    seed: 6,
    address: "AKkzLhjhyFtM9j7WAhbaqYpFe49cXeJBg2kzLRC2PnNa",
    secret_key: "7z8GcFcMNwCGuiNX7AzpkXrzhnqenSpYoA6hdHqfmbKbaEW6tJwdNgjuz2Zu3tZUo3sKdrDouJmTixxVZGyY8iS",
    role: "second payer",
    usdc_devnet: "8HiefwziAgp6xWTh9H7FFugw8EYxGyZa6Q3smSU3rNrj",
    usdc_mainnet: "9R6ENqPmQvJDFJRgdYqYhTvUKAjuWaqL1GPQYKUXQ49u",
};

/// The test accounts S1..S6; index `i` holds `S{i+1}`. [`SvmChain::start`] checks that the chain
/// derived the same addresses, keys and token accounts from the seeds.
pub const ACCOUNTS: [SvmAccount; 6] = [
    MINT_AUTHORITY,
    PAYER,
    TS_FACILITATOR,
    MERCHANT,
    FACILITATOR,
    PAYER2,
];

/// The test account at `address`, if it is one.
pub fn account(address: &str) -> Option<&'static SvmAccount> {
    ACCOUNTS.iter().find(|a| a.address == address)
}

/// A running Solana test chain (LiteSVM behind `testbed/svm/rpc.mjs`) on 127.0.0.1. Killed on drop.
pub struct SvmChain {
    process: Option<Child>,
    /// Held open: the chain exits when it closes.
    stdin: Option<ChildStdin>,
    rpc_url: String,
    log_path: PathBuf,
    paths: Paths,
    http: reqwest::Client,
}

impl std::fmt::Debug for SvmChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SvmChain")
            .field("rpc_url", &self.rpc_url)
            .field("pid", &self.pid())
            .field("log_path", &self.log_path)
            .finish_non_exhaustive()
    }
}

impl SvmChain {
    /// Installs the test bed's npm packages if needed, starts the chain on a free port of
    /// 127.0.0.1 and waits (at most 30 s) for its ready line. On failure the chain is killed and
    /// the error carries the tail of its log (`target/testbed/svm-*.log`, which also records every
    /// JSON-RPC call).
    pub async fn start() -> Result<SvmChain, Error> {
        let paths = tokio::task::spawn_blocking(crate::install_chain)
            .await
            .map_err(|e| Error::Install(format!("install task failed: {e}")))??;
        let seq = NEXT_CHAIN.fetch_add(1, Ordering::Relaxed);
        let log_path = paths
            .work_dir
            .join(format!("svm-{}-{seq}.log", std::process::id()));
        let log = File::create(&log_path).map_err(|e| io(log_path.display(), e))?;
        let script = paths.root.join("testbed/svm/rpc.mjs");
        let mut process = Command::new(&paths.node)
            .arg(&script)
            .env("X402_INTEROP", &paths.interop)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| io(format!("start node {}", script.display()), e))?;
        let stdin = process.stdin.take();
        let stdout = process.stdout.take();
        let http = reqwest::Client::builder()
            .timeout(RPC_TIMEOUT)
            .build()
            .map_err(|e| chain("HTTP client", e))?;
        let mut bed = SvmChain {
            process: Some(process),
            stdin,
            rpc_url: String::new(),
            log_path,
            paths,
            http,
        };
        let ready = match stdout {
            Some(stdout) => ready_line(stdout).await,
            None => Err("its standard output is not a pipe".to_owned()),
        };
        match ready.and_then(|line| check_ready(&line)) {
            Ok(rpc_url) => {
                bed.rpc_url = rpc_url;
                Ok(bed)
            }
            Err(message) => {
                bed.kill();
                Err(Error::Startup(format!(
                    "the Solana chain ({}) {message}\n{}",
                    script.display(),
                    tail(&bed.log_path, 30)
                )))
            }
        }
    }

    /// `http://127.0.0.1:<port>`: the chain's JSON-RPC endpoint.
    pub fn rpc_url(&self) -> &str {
        &self.rpc_url
    }

    /// The chain's process id (node), or `None` once killed.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::id)
    }

    /// The chain's log file (under `target/testbed/`): every JSON-RPC call, and its errors.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Where the installed test bed lives (node, the interop scripts, the work dir).
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Calls `method` with `params` (a JSON array); the `result`, or [`Error::Chain`] with the
    /// JSON-RPC error (code, message, data) when the chain answers one.
    pub async fn rpc(&self, method: &str, params: Value) -> Result<Value, Error> {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let answer: Value = self
            .http
            .post(&self.rpc_url)
            .json(&request)
            .send()
            .await
            .map_err(|e| chain(method, e))?
            .json()
            .await
            .map_err(|e| chain(method, e))?;
        if let Some(error) = answer.get("error") {
            return Err(Error::Chain(format!("{method}: {error}")));
        }
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| Error::Chain(format!("{method}: an answer without result: {answer}")))
    }

    /// `owner`'s balance of devnet USDC ([`USDC_DEVNET`]) in atomic units; 0 without a token
    /// account.
    pub async fn usdc_balance(&self, owner: &str) -> Result<u64, Error> {
        self.token_balance(owner, USDC_DEVNET).await
    }

    /// `owner`'s balance of the planted `mint` ([`USDC_DEVNET`] or [`USDC_MAINNET`]) in atomic
    /// units, read from its associated token account (`getAccountInfo`); 0 when that does not exist.
    pub async fn token_balance(&self, owner: &str, mint: &str) -> Result<u64, Error> {
        let token_account = match account(owner).and_then(|a| a.token_account(mint)) {
            Some(known) => known.to_owned(),
            None => string(
                self.rpc("testbed_tokenAccount", json!([owner, mint]))
                    .await?,
                "testbed_tokenAccount",
            )?,
        };
        let info = self
            .rpc(
                "getAccountInfo",
                json!([token_account, {"encoding": "base64"}]),
            )
            .await?;
        token_amount(&info["value"]).map_err(|e| Error::Chain(format!("{token_account}: {e}")))
    }

    /// `address`'s SOL balance in lamports (`getBalance`).
    pub async fn sol_balance(&self, address: &str) -> Result<u64, Error> {
        let answer = self.rpc("getBalance", json!([address])).await?;
        answer["value"]
            .as_u64()
            .ok_or_else(|| Error::Chain(format!("getBalance: not a number: {answer}")))
    }

    /// Mints `amount` atomic units of devnet USDC to `owner` (creating its token account if
    /// needed), in a real transaction signed by [`MINT_AUTHORITY`]; returns its signature.
    pub async fn mint(&self, owner: &str, amount: u64) -> Result<String, Error> {
        self.mint_of(owner, amount, USDC_DEVNET).await
    }

    /// [`mint`](Self::mint) of the planted `mint` ([`USDC_DEVNET`] or [`USDC_MAINNET`]).
    pub async fn mint_of(&self, owner: &str, amount: u64, mint: &str) -> Result<String, Error> {
        let answer = self
            .rpc("testbed_mint", json!([owner, amount.to_string(), mint]))
            .await?;
        string(answer["signature"].clone(), "testbed_mint")
    }

    /// The latest blockhash (base58), the one new transactions must use.
    pub async fn latest_blockhash(&self) -> Result<String, Error> {
        let answer = self.rpc("getLatestBlockhash", json!([])).await?;
        string(answer["value"]["blockhash"].clone(), "getLatestBlockhash")
    }

    /// Moves to a new blockhash: every transaction signed over an older one now fails with
    /// `BlockhashNotFound` (and the slot moves past the old one's last valid block height).
    /// Returns the new blockhash.
    pub async fn expire_blockhash(&self) -> Result<String, Error> {
        let answer = self.rpc("testbed_expireBlockhash", json!([])).await?;
        string(answer["blockhash"].clone(), "testbed_expireBlockhash")
    }

    /// The status of `signature` (`getSignatureStatuses` with history): `None` when it never
    /// landed, else `{slot, confirmations, err, status, confirmationStatus}`.
    pub async fn signature_status(&self, signature: &str) -> Result<Option<Value>, Error> {
        let answer = self
            .rpc(
                "getSignatureStatuses",
                json!([[signature], {"searchTransactionHistory": true}]),
            )
            .await?;
        let status = answer["value"][0].clone();
        Ok((!status.is_null()).then_some(status))
    }

    /// From now on `sendTransaction` executes at once but answers `delay` later (at most 120 s).
    pub async fn set_send_delay(&self, delay: Duration) -> Result<(), Error> {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.rpc("testbed_setSendDelay", json!([ms]))
            .await
            .map(drop)
    }

    /// The next `n` sends answer their signature but never land (a lost send).
    pub async fn drop_sends(&self, n: u32) -> Result<(), Error> {
        self.rpc("testbed_dropSends", json!([n])).await.map(drop)
    }

    /// The next `n` sends answer their signature and wait, unexecuted, for
    /// [`release_held`](Self::release_held).
    pub async fn hold_sends(&self, n: u32) -> Result<(), Error> {
        self.rpc("testbed_holdSends", json!([n])).await.map(drop)
    }

    /// Executes the held sends in order; returns `[{signature, landed, err}]`.
    pub async fn release_held(&self) -> Result<Value, Error> {
        self.rpc("testbed_releaseHeld", json!([])).await
    }

    /// Kills the chain and waits for it to exit. Idempotent.
    pub fn kill(&mut self) {
        drop(self.stdin.take());
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for SvmChain {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The first line of the chain's standard output, read on a thread of its own (which then drains
/// the rest), within [`STARTUP_TIMEOUT`].
async fn ready_line(stdout: std::process::ChildStdout) -> Result<String, String> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let read = reader.read_line(&mut line).map(|_| line);
        let _ = sender.send(read);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    match tokio::time::timeout(STARTUP_TIMEOUT, receiver).await {
        Err(_) => Err(format!(
            "printed no ready line within {} s",
            STARTUP_TIMEOUT.as_secs()
        )),
        Ok(Err(_)) => Err("stopped before printing its ready line".to_owned()),
        Ok(Ok(Err(e))) => Err(format!("could not be read: {e}")),
        Ok(Ok(Ok(line))) if line.trim().is_empty() => {
            Err("exited before printing its ready line".to_owned())
        }
        Ok(Ok(Ok(line))) => Ok(line),
    }
}

/// Checks the ready line against this crate's constants; returns the RPC URL.
fn check_ready(line: &str) -> Result<String, String> {
    let ready: Value = serde_json::from_str(line)
        .map_err(|e| format!("printed a bad ready line ({e}): {line}"))?;
    let expect = |what: &str, found: &Value, wanted: &str| {
        if found.as_str() == Some(wanted) {
            Ok(())
        } else {
            Err(format!(
                "disagrees with x402_testbed::svm on {what}: {found} instead of {wanted}"
            ))
        }
    };
    expect("the devnet mint", &ready["mints"]["devnet"], USDC_DEVNET)?;
    expect("the mainnet mint", &ready["mints"]["mainnet"], USDC_MAINNET)?;
    expect("the token program", &ready["tokenProgram"], TOKEN_PROGRAM)?;
    expect(
        "the payers' mint",
        &ready["payerMint"],
        &DEFAULT_MINT.to_string(),
    )?;
    let accounts = ready["accounts"].as_array().map_or(&[][..], Vec::as_slice);
    if accounts.len() != ACCOUNTS.len() {
        return Err(format!("lists {} accounts, not 6: {line}", accounts.len()));
    }
    for (found, known) in accounts.iter().zip(ACCOUNTS) {
        let name = known.name;
        expect(
            &format!("{name}'s address"),
            &found["address"],
            known.address,
        )?;
        expect(
            &format!("{name}'s key"),
            &found["secretKey"],
            known.secret_key,
        )?;
        let atas = &found["atas"];
        expect(
            &format!("{name}'s devnet token account"),
            &atas["devnet"],
            known.usdc_devnet,
        )?;
        expect(
            &format!("{name}'s mainnet token account"),
            &atas["mainnet"],
            known.usdc_mainnet,
        )?;
    }
    match ready["rpc"].as_str() {
        Some(url) if url.starts_with("http://127.0.0.1:") => Ok(url.to_owned()),
        _ => Err(format!("printed no 127.0.0.1 RPC URL: {line}")),
    }
}

/// The amount of an SPL token account given as `getAccountInfo`'s `value` (null: no account, 0).
fn token_amount(value: &Value) -> Result<u64, String> {
    if value.is_null() {
        return Ok(0);
    }
    if value["owner"].as_str() != Some(TOKEN_PROGRAM) {
        return Err(format!("not a token account: {value}"));
    }
    let data = value["data"][0]
        .as_str()
        .ok_or_else(|| format!("no base64 data: {value}"))?;
    let bytes = STANDARD
        .decode(data)
        .map_err(|e| format!("bad base64 data: {e}"))?;
    if bytes.len() != TOKEN_ACCOUNT_LEN {
        return Err(format!("{} bytes, not a token account's 165", bytes.len()));
    }
    let amount = bytes
        .get(TOKEN_AMOUNT)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .ok_or("no amount")?;
    Ok(u64::from_le_bytes(amount))
}

fn string(value: Value, method: &str) -> Result<String, Error> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(Error::Chain(format!("{method}: not a string: {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_table_is_consistent() {
        for (i, account) in ACCOUNTS.iter().enumerate() {
            assert_eq!(account.name, format!("S{}", i + 1));
            assert_eq!(usize::from(account.seed), i + 1);
            assert_eq!(super::account(account.address), Some(account));
            assert_eq!(
                account.token_account(USDC_DEVNET),
                Some(account.usdc_devnet)
            );
            assert_eq!(
                account.token_account(USDC_MAINNET),
                Some(account.usdc_mainnet)
            );
            assert_eq!(account.token_account(TOKEN_PROGRAM), None);
        }
        let shown = format!("{PAYER:?}");
        assert!(shown.contains(PAYER.address) && !shown.contains(PAYER.secret_key));
    }

    #[test]
    fn reads_token_amounts() {
        let mut data = vec![0u8; TOKEN_ACCOUNT_LEN];
        data[64..72].copy_from_slice(&1_234_567u64.to_le_bytes());
        let value = json!({"owner": TOKEN_PROGRAM, "data": [STANDARD.encode(&data), "base64"]});
        assert_eq!(token_amount(&value), Ok(1_234_567));
        assert_eq!(token_amount(&Value::Null), Ok(0));
        let wrong_owner = json!({"owner": "11111111111111111111111111111111", "data": [STANDARD.encode(&data), "base64"]});
        assert!(token_amount(&wrong_owner).is_err());
        let short = json!({"owner": TOKEN_PROGRAM, "data": [STANDARD.encode([0u8; 82]), "base64"]});
        assert!(token_amount(&short).is_err());
    }

    #[test]
    fn ready_lines_are_checked() {
        let accounts: Vec<Value> = ACCOUNTS
            .iter()
            .map(|a| {
                json!({"address": a.address, "secretKey": a.secret_key,
                            "atas": {"devnet": a.usdc_devnet, "mainnet": a.usdc_mainnet}})
            })
            .collect();
        let mut ready = json!({"rpc": "http://127.0.0.1:8899", "tokenProgram": TOKEN_PROGRAM,
            "mints": {"devnet": USDC_DEVNET, "mainnet": USDC_MAINNET},
            "payerMint": DEFAULT_MINT.to_string(), "accounts": accounts});
        assert_eq!(
            check_ready(&ready.to_string()),
            Ok("http://127.0.0.1:8899".to_owned())
        );
        ready["accounts"][3]["atas"]["devnet"] = json!(PAYER.usdc_devnet);
        let err = check_ready(&ready.to_string()).expect_err("a wrong token account");
        assert!(err.contains("S4's devnet token account"), "{err}");
        assert!(check_ready("not json").is_err());
    }
}
