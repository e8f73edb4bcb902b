//! The machine and source a run measured: CPU, core count, toolchain, commit.

use std::process::Command;

use serde::{Deserialize, Serialize};

/// Where and on what a run happened.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// Logical CPUs available to the process.
    pub cores: usize,
    /// Memory, in GiB.
    pub memory_gib: f64,
    /// `uname -sr`.
    pub os: String,
    /// `rustc --version`.
    pub rustc: String,
    /// `git rev-parse --short HEAD`, with `-dirty` when the tree has uncommitted changes.
    pub commit: String,
    /// When the run started (UTC, RFC 3339).
    pub date: String,
}

fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

impl Machine {
    /// Describes this machine and the checked-out commit.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let mut commit = output("git", &["rev-parse", "--short", "HEAD"]);
        if !output("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty() {
            commit.push_str("-dirty");
        }
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            os: output("uname", &["-sr"]),
            rustc: output("rustc", &["--version"]),
            commit,
            date: output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        }
    }
}
