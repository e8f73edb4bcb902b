//! An interop script of the official x402 packages (`interop/scripts/<name>.mjs`: a seller, a
//! facilitator) run as a child process on a free port of 127.0.0.1 ([`Script`]).

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::error::io;
use crate::install::tail;
use crate::{Error, Paths};

/// How long a script may take to answer its ready path.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running interop script, killed on drop.
#[derive(Debug)]
pub struct Script {
    process: Option<Child>,
    url: String,
}

impl Script {
    /// Starts `node interop/scripts/<script>` with `PORT` (a free port of 127.0.0.1) and `env`,
    /// and waits until GET `ready_path` answers 200 (at most 20 s). Its output goes to
    /// `target/testbed/<script>-<pid>-<port>.log`, whose tail a startup error carries.
    pub async fn start(
        paths: &Paths,
        script: &str,
        env: &[(&str, &str)],
        ready_path: &str,
    ) -> Result<Script, Error> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| io("a free port", e))?
            .port();
        let log_path = paths
            .work_dir
            .join(format!("{script}-{}-{port}.log", std::process::id()));
        let log = File::create(&log_path).map_err(|e| io(log_path.display(), e))?;
        let err_log = log.try_clone().map_err(|e| io(log_path.display(), e))?;
        let process = Command::new(&paths.node)
            .arg(paths.interop.join("scripts").join(script))
            .env("PORT", port.to_string())
            .envs(env.iter().copied())
            .current_dir(&paths.interop)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| io(format!("start node {script}"), e))?;
        let mut started = Script {
            process: Some(process),
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| crate::error::chain("HTTP client", e))?;
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            let answer = client
                .get(format!("{}{ready_path}", started.url))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status() == 200) {
                return Ok(started);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        started.kill();
        Err(Error::Startup(format!(
            "{script} did not answer {ready_path} within {} s\n{}",
            READY_TIMEOUT.as_secs(),
            tail(&log_path, 30)
        )))
    }

    /// `http://127.0.0.1:<port>`: the script's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Kills the script and waits for it to exit. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        self.kill();
    }
}
