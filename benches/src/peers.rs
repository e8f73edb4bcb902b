//! The servers `load` compares (section "Peers" of BENCHMARKS.md), each run as a child process
//! on 127.0.0.1 with the same paid route, `GET /weather?city=Paris` for 0.001 USDC on Base
//! Sepolia paid to the benchmark merchant, and an HTTP facilitator pointed at the harness's
//! facilitator double:
//!
//! - [`Peer::Ours`]: the example weather API (`weather-server`, next to the `load` binary);
//! - [`Peer::X402Rs`]: x402-rs's axum middleware, `x402-axum` 2.0.2 (`benches/peers/x402-rs`,
//!   its own cargo package, built into `<target>/peers/release/x402-rs-peer`);
//! - [`Peer::Express`]: `@x402/express` 2.27.0 (`benches/peers/express/server.mjs` on node,
//!   with the packages `scripts/testbed-install.sh` put in `interop/node_modules`).
//!
//! A peer that is not built or installed is an error naming the command that provides it.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The paid route every peer serves, with the query the benchmark sends.
pub const PEER_PATH: &str = "/weather?city=Paris";

/// Environment variable naming the `node_modules` folder with `@x402/express` (default:
/// `interop/node_modules` of the checkout this harness was built from).
pub const NODE_MODULES_ENV: &str = "X402_BENCH_NODE_MODULES";

/// One of the compared servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// This project: the example weather API.
    Ours,
    /// x402-rs: `x402-axum` 2.0.2.
    X402Rs,
    /// The x402 TypeScript SDK: `@x402/express` 2.27.0.
    Express,
}

impl Peer {
    /// Every peer, in the order they are measured.
    pub const ALL: [Peer; 3] = [Peer::Ours, Peer::X402Rs, Peer::Express];

    /// Stable id (`ours`, `x402_rs`, `express`).
    pub fn id(self) -> &'static str {
        match self {
            Peer::Ours => "ours",
            Peer::X402Rs => "x402_rs",
            Peer::Express => "express",
        }
    }

    /// What it is, for tables.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Ours => "x402-runtime (example weather API)",
            Peer::X402Rs => "x402-rs (x402-axum 2.0.2)",
            Peer::Express => "@x402/express 2.27.0 (node)",
        }
    }

    /// The command starting it on `port` of 127.0.0.1 with the facilitator at `facilitator`.
    pub fn command(self, facilitator: &str, port: u16) -> Result<Command, String> {
        let listen = format!("127.0.0.1:{port}");
        match self {
            Peer::Ours => {
                let bin = sibling("weather-server")?;
                let mut c = Command::new(bin);
                c.args(["--facilitator", facilitator, "--listen", &listen]);
                Ok(c)
            }
            Peer::X402Rs => {
                let bin = x402_rs_binary()?;
                let mut c = Command::new(bin);
                c.args(["--facilitator", facilitator, "--listen", &listen]);
                Ok(c)
            }
            Peer::Express => {
                let modules = node_modules()?;
                let script = manifest_dir().join("peers/express/server.mjs");
                let mut c = Command::new("node");
                c.arg(script)
                    .env("PORT", port.to_string())
                    .env("FACILITATOR_URL", facilitator)
                    .env("PAY_TO", x402_testbed::MERCHANT.to_checksum(None))
                    .env("X402_NODE_MODULES", modules)
                    .env("NODE_ENV", "production");
                Ok(c)
            }
        }
    }
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A binary built next to the running one (same cargo profile folder).
fn sibling(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
    let path = exe.with_file_name(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} is missing: build it with `cargo build --release -p x402-bench`",
            path.display()
        ))
    }
}

/// `<target>/peers/release/x402-rs-peer`, where `<target>` holds the running binary's profile
/// folder (the target dir `scripts/bench.sh` builds the peer into).
fn x402_rs_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("the running binary is not in a target folder")?;
    let path = target.join("peers/release/x402-rs-peer");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "the x402-rs peer is not built ({} is missing): run `cargo build --release --locked \
             --manifest-path benches/peers/x402-rs/Cargo.toml --target-dir {}`",
            path.display(),
            target.join("peers").display()
        ))
    }
}

fn node_modules() -> Result<PathBuf, String> {
    let modules = std::env::var_os(NODE_MODULES_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../interop/node_modules"));
    if modules.join("@x402/express/package.json").is_file() {
        Ok(modules)
    } else {
        Err(format!(
            "@x402/express is not installed in {} (run `bash scripts/testbed-install.sh \
             --chain-only`, or set {NODE_MODULES_ENV})",
            modules.display()
        ))
    }
}

/// A free port of 127.0.0.1 (bound, read, released: the child binds it right after).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A peer running as a child process; killed when dropped.
pub struct Running {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Running {
    /// Starts `peer` and waits until it answers `GET` [`PEER_PATH`] (any status), at most
    /// `within`.
    pub fn start(peer: Peer, facilitator: &str, within: Duration) -> Result<Running, String> {
        let port = free_port().map_err(|e| format!("a free port: {e}"))?;
        let mut command = peer.command(facilitator, port)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{}: cannot start {command:?}: {e}", peer.id()))?;
        let mut running = Running {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = running.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("{}: exited at startup ({status})", peer.id()));
            }
            if answers(running.addr) {
                return Ok(running);
            }
            if Instant::now() > deadline {
                return Err(format!("{}: no answer within {within:?}", peer.id()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its memory now.
    pub fn memory(&self) -> Result<Memory, String> {
        Memory::of(self.pid())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether an HTTP server at `addr` answers one `GET` with a status line within a second.
fn answers(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request = format!("GET {PEER_PATH} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 ")
}

/// A process's memory, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Memory {
    /// Resident set size now (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`), KiB.
    pub hwm_kib: u64,
}

impl Memory {
    /// Reads `VmRSS` and `VmHWM` of process `pid` (Linux).
    pub fn of(pid: u32) -> Result<Memory, String> {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or_else(|| format!("{path} has no {name}"))
        };
        Ok(Memory {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Memory;

    #[test]
    fn reads_this_process_memory() {
        let m = Memory::of(std::process::id()).expect("Linux /proc");
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
    }
}
