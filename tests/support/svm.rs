//! Solana test bed pieces shared by the Solana tests: the official scripts started on 127.0.0.1,
//! and a facilitator proxy that counts the calls it forwards.

use std::collections::HashMap;
use std::fs::File;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use x402_testbed::Paths;

use super::{Child, http, serve};

/// Starts `interop/scripts/<script>` on a free port of 127.0.0.1 with `env`; returns it and its
/// base URL once GET `ready_path` answers 200. Its output goes to `target/testbed/`.
pub async fn start_script(
    paths: &Paths,
    script: &str,
    env: &[(&str, &str)],
    ready_path: &str,
) -> (Child, String) {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let log_path = paths
        .work_dir
        .join(format!("{script}-{}-{port}.log", std::process::id()));
    let log = File::create(&log_path).expect("log file");
    let child = Child(
        tokio::process::Command::new(&paths.node)
            .arg(paths.interop.join("scripts").join(script))
            .env("PORT", port.to_string())
            .envs(env.iter().copied())
            .current_dir(&paths.interop)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("node"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = http();
    for _ in 0..100 {
        let answer = client.get(format!("{base}{ready_path}")).send().await;
        if answer.is_ok_and(|r| r.status() == 200) {
            return (child, base);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    panic!("{script} did not answer {ready_path}:\n{log}");
}

/// A proxy in front of a facilitator that counts the calls of each path it forwards.
#[derive(Clone)]
pub struct CountingProxy {
    pub url: String,
    calls: Arc<Mutex<HashMap<String, usize>>>,
}

#[derive(Clone)]
struct Forward {
    target: String,
    calls: Arc<Mutex<HashMap<String, usize>>>,
}

impl CountingProxy {
    /// Serves the proxy to `target` on 127.0.0.1.
    pub async fn start(target: &str) -> CountingProxy {
        let calls = Arc::new(Mutex::new(HashMap::new()));
        let state = Forward {
            target: target.to_owned(),
            calls: calls.clone(),
        };
        let app = Router::new().fallback(forward).with_state(state);
        CountingProxy {
            url: serve(app).await,
            calls,
        }
    }

    /// How many calls of `path` (e.g. `/verify`) were forwarded.
    pub fn count(&self, path: &str) -> usize {
        self.calls
            .lock()
            .expect("lock")
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

async fn forward(State(state): State<Forward>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    *state
        .calls
        .lock()
        .expect("lock")
        .entry(path.clone())
        .or_default() += 1;
    let method = request.method().clone();
    let body: Bytes = match axum::body::to_bytes(request.into_body(), 1 << 20).await {
        Ok(body) => body,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let sent = http()
        .request(method, format!("{}{path}", state.target))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).expect("status");
            let body = answer.bytes().await.unwrap_or_default();
            (status, [("content-type", "application/json")], body).into_response()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
