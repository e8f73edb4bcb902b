//! A throwaway anvil with Circle's USDC at Base Sepolia's address.

use std::collections::HashSet;
use std::fmt::Display;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use alloy::network::{Ethereum, TransactionBuilder as _};
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, PendingTransactionBuilder, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use serde_json::Value;

use crate::error::{chain, io};
use crate::install::tail;
use crate::{
    CHAIN_ID, DEFAULT_MINT, EURC, Error, FiatToken, OWNER, OWNER_KEY, PAYER, PAYER2, Paths, USDC,
};

/// How long one RPC request or one transaction's receipt may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// Tells one chain's log file from another's within a process.
static NEXT_CHAIN: AtomicU32 = AtomicU32::new(0);

/// What [`Chain::start_with`] sets up.
#[derive(Clone, Debug)]
pub struct ChainOptions {
    /// Accounts that get `mint_amount` USDC at start. Default: [`PAYER`] and [`PAYER2`].
    pub payers: Vec<Address>,
    /// Atomic USDC units minted to each payer. Default: [`DEFAULT_MINT`] (1000 USDC).
    pub mint_amount: U256,
    /// Extra anvil arguments, e.g. `["--block-time", "1"]`.
    pub anvil_args: Vec<String>,
    /// How long anvil may take to answer `eth_chainId`. Default: 10 s.
    pub startup_timeout: Duration,
    /// Plant Uniswap's Permit2 and the x402 Permit2 proxies at start ([`Chain::plant_permit2`]).
    /// Default: `false`.
    pub permit2: bool,
}

impl Default for ChainOptions {
    fn default() -> Self {
        ChainOptions {
            payers: vec![PAYER, PAYER2],
            mint_amount: DEFAULT_MINT,
            anvil_args: Vec::new(),
            startup_timeout: Duration::from_secs(10),
            permit2: false,
        }
    }
}

/// A running anvil as chain 84532 on 127.0.0.1, with Circle's `FiatTokenV2_2` at [`USDC`]
/// (initialized as "USDC", version "2", 6 decimals; [`OWNER`] is owner and minter) and the
/// payers funded. Automine: every transaction is mined on arrival. Killed on drop.
pub struct Chain {
    process: Option<Processes>,
    port: u16,
    rpc_url: String,
    log_path: PathBuf,
    paths: Paths,
    signature_checker: Address,
    owner: DynProvider,
    /// Serializes the owner's transactions: concurrent sends would race on its account nonce.
    owner_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("rpc_url", &self.rpc_url)
            .field("pid", &self.pid())
            .field("log_path", &self.log_path)
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// Starts a chain with the default [`ChainOptions`]: PAYER and PAYER2 hold 1000 USDC each.
    pub async fn start() -> Result<Chain, Error> {
        Chain::start_with(ChainOptions::default()).await
    }

    /// Installs the test bed if needed, starts anvil on a free port of 127.0.0.1, plants and
    /// initializes USDC, mints to `options.payers` and, with `options.permit2`, plants Permit2
    /// and the x402 Permit2 proxies. Every wait is bounded; on failure anvil is
    /// killed and the error carries the tail of its log.
    pub async fn start_with(options: ChainOptions) -> Result<Chain, Error> {
        let paths = tokio::task::spawn_blocking(crate::install_chain)
            .await
            .map_err(|e| Error::Install(format!("install task failed: {e}")))??;
        let artifacts = Artifacts::load(&paths)?;

        let seq = NEXT_CHAIN.fetch_add(1, Ordering::Relaxed);
        let log_path = paths
            .work_dir
            .join(format!("anvil-{}-{seq}.log", std::process::id()));
        let process = Processes::spawn(&paths.anvil, &options.anvil_args, &log_path)?;
        let deadline = Instant::now() + options.startup_timeout;
        let fail = |process: Processes, message: String| {
            drop(process);
            Error::Startup(format!("{message}\n{}", tail(&log_path, 30)))
        };

        let mut process = process;
        let port = loop {
            if let Some(status) = process.exited() {
                return Err(fail(
                    process,
                    format!("anvil exited ({status}) before listening"),
                ));
            }
            if let Some(port) = listening_port(process.pid()) {
                break port;
            }
            if Instant::now() >= deadline {
                let waited = options.startup_timeout.as_secs_f32();
                return Err(fail(
                    process,
                    format!("anvil did not listen within {waited} s"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let rpc_url = format!("http://127.0.0.1:{port}");
        let owner = match wallet_provider(&rpc_url, OWNER_KEY) {
            Ok(owner) => owner,
            Err(e) => return Err(fail(process, e.to_string())),
        };
        loop {
            match owner.get_chain_id().await {
                Ok(CHAIN_ID) => break,
                Ok(other) => {
                    return Err(fail(
                        process,
                        format!("anvil reports chain id {other}, not {CHAIN_ID}"),
                    ));
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(fail(
                        process,
                        format!("anvil does not answer eth_chainId: {e}"),
                    ));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }

        let mut chain = Chain {
            process: Some(process),
            port,
            rpc_url,
            log_path,
            paths,
            signature_checker: Address::ZERO,
            owner,
            owner_lock: tokio::sync::Mutex::new(()),
        };
        if let Err(e) = chain.plant_usdc(&artifacts, &options).await {
            chain.kill();
            return Err(Error::Startup(format!(
                "{e}\n{}",
                tail(&chain.log_path, 30)
            )));
        }
        Ok(chain)
    }

    /// Deploys SignatureChecker, plants the linked FiatTokenV2_2 at [`USDC`], initializes it and
    /// mints to the payers.
    async fn plant_usdc(
        &mut self,
        artifacts: &Artifacts,
        options: &ChainOptions,
    ) -> Result<(), Error> {
        let deploy =
            TransactionRequest::default().with_deploy_code(artifacts.signature_checker.clone());
        let receipt = confirm(
            self.owner.send_transaction(deploy).await,
            "deploy SignatureChecker",
        )
        .await?;
        self.signature_checker = receipt.contract_address.ok_or_else(|| {
            Error::Chain("SignatureChecker deployment has no contract address".into())
        })?;
        self.plant_token(artifacts, USDC, "USDC", "USD").await?;
        for payer in &options.payers {
            self.mint(*payer, options.mint_amount).await?;
        }
        if options.permit2 {
            self.plant_permit2().await?;
        }
        Ok(())
    }

    /// Plants a second `FiatTokenV2_2` at [`EURC`] (name and symbol "EURC", currency "EUR",
    /// version "2", 6 decimals) and mints `amount` to each of `payers`: for routes that take
    /// two tokens.
    pub async fn plant_eurc(&self, payers: &[Address], amount: U256) -> Result<(), Error> {
        let artifacts = Artifacts::load(&self.paths)?;
        let _turn = self.owner_lock.lock().await;
        self.plant_token(&artifacts, EURC, "EURC", "EUR").await?;
        let token = self.token_at(EURC);
        for payer in payers {
            let sent = token.mint(*payer, amount).send().await;
            confirm(sent, &format!("mint EURC({payer}, {amount})")).await?;
        }
        Ok(())
    }

    /// Plants the linked `FiatTokenV2_2` at `address`, initializes it as `name` (symbol and
    /// EIP-712 name) tracking `currency`, with [`OWNER`] in every role and as an unlimited minter.
    async fn plant_token(
        &self,
        artifacts: &Artifacts,
        address: Address,
        name: &str,
        currency: &str,
    ) -> Result<(), Error> {
        let code = crate::link_bytecode(
            &artifacts.fiat_token_runtime,
            &artifacts.fiat_token_links,
            &[("SignatureChecker", self.signature_checker)],
        )?;
        self.set_code(address, code).await?;
        let token = self.token_at(address);
        let name = || name.to_owned();
        confirm(
            token
                .initialize(
                    name(),
                    name(),
                    currency.into(),
                    6,
                    OWNER,
                    OWNER,
                    OWNER,
                    OWNER,
                )
                .send()
                .await,
            "initialize",
        )
        .await?;
        confirm(token.initializeV2(name()).send().await, "initializeV2").await?;
        confirm(token.initializeV2_1(OWNER).send().await, "initializeV2_1").await?;
        confirm(
            token.initializeV2_2(Vec::new(), name()).send().await,
            "initializeV2_2",
        )
        .await?;
        confirm(
            token.configureMinter(OWNER, U256::MAX).send().await,
            "configureMinter",
        )
        .await?;
        Ok(())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn rpc_url(&self) -> &str {
        &self.rpc_url
    }

    /// The port anvil listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// 84532 ([`CHAIN_ID`]).
    pub fn chain_id(&self) -> u64 {
        CHAIN_ID
    }

    /// Where USDC is: [`USDC`], Base Sepolia's address.
    pub fn usdc(&self) -> Address {
        USDC
    }

    /// Address of the deployed `SignatureChecker` library linked into the token.
    pub fn signature_checker(&self) -> Address {
        self.signature_checker
    }

    /// anvil's process id, or `None` once killed.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Processes::pid)
    }

    /// anvil's log file (under `target/testbed/`).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Where the installed test bed lives (anvil, cast, node, the venv's python, artifacts).
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// A provider for this chain that signs with [`OWNER`] (token owner and minter).
    pub fn provider(&self) -> &DynProvider {
        &self.owner
    }

    /// A provider for this chain that signs with `key` (`0x`-prefixed hex), e.g.
    /// [`crate::FACILITATOR_KEY`].
    ///
    /// It caches the account nonce, and takes one while estimating gas: a send refused at
    /// estimation (a revert) still uses a nonce up, and the provider's next transaction then
    /// waits forever behind the gap. To see why a call is refused, simulate it (`.call()`, with
    /// `.from(..)`), or send through a fresh provider.
    pub fn provider_with_key(&self, key: &str) -> Result<DynProvider, Error> {
        wallet_provider(&self.rpc_url, key)
    }

    /// The token at [`USDC`], sending as [`OWNER`].
    pub fn token(&self) -> FiatToken::FiatTokenInstance<DynProvider> {
        self.token_at(USDC)
    }

    /// The token at `address` (e.g. [`EURC`] once planted), sending as [`OWNER`].
    pub fn token_at(&self, address: Address) -> FiatToken::FiatTokenInstance<DynProvider> {
        FiatToken::new(address, self.owner.clone())
    }

    /// `balanceOf(owner)` of the token at `token`, in atomic units.
    pub async fn balance_of(&self, token: Address, owner: Address) -> Result<U256, Error> {
        self.token_at(token)
            .balanceOf(owner)
            .call()
            .await
            .map_err(|e| chain(format!("balanceOf({owner}) at {token}"), e))
    }

    /// `balanceOf(owner)` in atomic units.
    pub async fn usdc_balance(&self, owner: Address) -> Result<U256, Error> {
        self.balance_of(USDC, owner).await
    }

    /// Mints `amount` atomic units to `to` (as [`OWNER`], the minter).
    pub async fn mint(&self, to: Address, amount: U256) -> Result<(), Error> {
        let _turn = self.owner_lock.lock().await;
        let sent = self.token().mint(to, amount).send().await;
        confirm(sent, &format!("mint({to}, {amount})"))
            .await
            .map(drop)
    }

    /// Waits for [`OWNER`]'s turn to send: its transactions must not race on its account nonce.
    pub(crate) async fn owner_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.owner_lock.lock().await
    }

    /// Replaces the code at `address` (`anvil_setCode`), e.g. to break the token on purpose.
    pub async fn set_code(&self, address: Address, code: impl Into<Bytes>) -> Result<(), Error> {
        let code: Bytes = code.into();
        self.owner
            .raw_request::<_, Value>("anvil_setCode".into(), (address, code))
            .await
            .map(drop)
            .map_err(|e| chain(format!("anvil_setCode({address})"), e))
    }

    /// Mines one empty block (`evm_mine`), moving the latest block timestamp to now.
    pub async fn mine(&self) -> Result<(), Error> {
        self.owner
            .raw_request::<_, Value>("evm_mine".into(), ())
            .await
            .map(drop)
            .map_err(|e| chain("evm_mine", e))
    }

    /// Kills anvil and waits for it to exit. The port is free afterwards. Idempotent.
    pub fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            drop(process);
        }
        // A quiet anvil that ran cleanly leaves an empty log; keep only logs that say something.
        if fs::metadata(&self.log_path).is_ok_and(|m| m.len() == 0) {
            let _ = fs::remove_file(&self.log_path);
        }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP provider with recommended fillers signing with `key`, every request bounded by
/// [`RPC_TIMEOUT`].
fn wallet_provider(rpc_url: &str, key: &str) -> Result<DynProvider, Error> {
    let signer: PrivateKeySigner = key
        .parse()
        .map_err(|e| Error::Chain(format!("not a private key: {e}")))?;
    let url: reqwest::Url = rpc_url
        .parse()
        .map_err(|e| chain(format!("RPC URL {rpc_url}"), e))?;
    let http = reqwest::Client::builder()
        .timeout(RPC_TIMEOUT)
        .build()
        .map_err(|e| chain("HTTP client", e))?;
    Ok(ProviderBuilder::new()
        .wallet(signer)
        .connect_reqwest(http, url)
        .erased())
}

/// Waits (bounded) for a sent transaction's receipt and requires status 1.
pub(crate) async fn confirm(
    sent: Result<PendingTransactionBuilder<Ethereum>, impl Display>,
    what: &str,
) -> Result<TransactionReceipt, Error> {
    let pending = sent.map_err(|e| chain(what, e))?;
    let receipt = pending
        .with_timeout(Some(RPC_TIMEOUT))
        .get_receipt()
        .await
        .map_err(|e| chain(what, e))?;
    if !receipt.status() {
        return Err(chain(
            what,
            format!("transaction {} reverted", receipt.transaction_hash),
        ));
    }
    Ok(receipt)
}

/// The parts of the two hardhat artifacts that planting USDC needs.
struct Artifacts {
    signature_checker: Bytes,
    fiat_token_runtime: String,
    fiat_token_links: Value,
}

impl Artifacts {
    fn load(paths: &Paths) -> Result<Artifacts, Error> {
        let checker = read_json(&paths.signature_checker_artifact)?;
        let token = read_json(&paths.fiat_token_artifact)?;
        let checker_code = string_field(&checker, "bytecode", &paths.signature_checker_artifact)?;
        let signature_checker =
            crate::link_bytecode(checker_code, &Value::Null, &[]).map_err(|e| {
                Error::Artifact(format!(
                    "{}: {e}",
                    paths.signature_checker_artifact.display()
                ))
            })?;
        let runtime = string_field(&token, "deployedBytecode", &paths.fiat_token_artifact)?;
        Ok(Artifacts {
            signature_checker,
            fiat_token_runtime: runtime.to_string(),
            fiat_token_links: token
                .get("deployedLinkReferences")
                .cloned()
                .unwrap_or(Value::Null),
        })
    }
}

fn read_json(path: &Path) -> Result<Value, Error> {
    let text = fs::read_to_string(path).map_err(|e| io(path.display(), e))?;
    serde_json::from_str(&text).map_err(|e| Error::Artifact(format!("{}: {e}", path.display())))
}

fn string_field<'a>(json: &'a Value, field: &str, path: &Path) -> Result<&'a str, Error> {
    json.get(field)
        .and_then(Value::as_str)
        .filter(|s| s.len() > 2)
        .ok_or_else(|| Error::Artifact(format!("{} has no {field}", path.display())))
}

/// anvil and the watchdog that kills it should this process die without dropping the [`Chain`]
/// (Ctrl-C, a test timeout, SIGKILL). Dropping kills both and waits for them.
struct Processes {
    anvil: Child,
    watchdog: Option<Child>,
}

impl Processes {
    fn spawn(anvil: &Path, extra_args: &[String], log_path: &Path) -> Result<Processes, Error> {
        let log = File::create(log_path).map_err(|e| io(log_path.display(), e))?;
        let log_err = log.try_clone().map_err(|e| io(log_path.display(), e))?;
        // Port 0: the kernel picks a free port and anvil binds it at once, so two chains started
        // at the same moment can never race for one port; `listening_port` finds out which.
        let anvil = Command::new(anvil)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--chain-id",
                "84532",
                "--quiet",
            ])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| io(format!("start {}", anvil.display()), e))?;
        let watch = r#"while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 0.5; done; kill -9 "$2" 2>/dev/null"#;
        // Best effort: without the watchdog only an abnormal exit of this process leaks anvil.
        let watchdog = Command::new("sh")
            .args(["-c", watch, "x402-testbed-watchdog"])
            .arg(std::process::id().to_string())
            .arg(anvil.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        Ok(Processes { anvil, watchdog })
    }

    fn pid(&self) -> u32 {
        self.anvil.id()
    }

    /// The exit status, once anvil has exited.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.anvil.try_wait().ok().flatten()
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = self.anvil.kill();
        let _ = self.anvil.wait();
    }
}

/// The TCP port process `pid` listens on, from `/proc` (Linux): the socket inodes among its file
/// descriptors, matched against the LISTEN entries of its network namespace.
fn listening_port(pid: u32) -> Option<u16> {
    let mut sockets = HashSet::new();
    for entry in fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
        {
            sockets.insert(inode.to_string());
        }
    }
    for table in ["tcp", "tcp6"] {
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(&"0A"), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            if sockets.contains(*inode) {
                let port = local.rsplit(':').next()?;
                return u16::from_str_radix(port, 16).ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn finds_own_listening_port() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert_eq!(listening_port(std::process::id()), Some(port));
        drop(listener);
        assert_eq!(listening_port(std::process::id()), None);
    }
}
