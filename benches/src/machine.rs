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
        let changes = output("git", &["status", "--porcelain", "--untracked-files=no"]);
        if commit != "unknown" && !changes.is_empty() {
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

/// CPU time (user + system) used so far by this process's threads whose name starts with
/// `prefix` (Linux `/proc`; `None` elsewhere).
pub fn threads_cpu(prefix: &str) -> Option<std::time::Duration> {
    let ticks_per_s: f64 = clock_ticks();
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let Ok(name) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if !name.trim_end().starts_with(prefix) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        // Fields after the parenthesized name: state is field 3, utime 14 and stime 15.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let user: u64 = fields.get(11)?.parse().ok()?;
        let system: u64 = fields.get(12)?.parse().ok()?;
        ticks += user + system;
    }
    Some(std::time::Duration::from_secs_f64(
        ticks as f64 / ticks_per_s,
    ))
}

/// CPU time (user + system) used so far by process `pid`, all its threads (Linux `/proc`;
/// `None` elsewhere or once the process is gone).
pub fn process_cpu(pid: u32) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(std::time::Duration::from_secs_f64(
        (user + system) as f64 / clock_ticks(),
    ))
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        output("getconf", &["CLK_TCK"])
            .parse::<f64>()
            .ok()
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}
