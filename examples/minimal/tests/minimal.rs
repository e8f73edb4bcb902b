//! The minimal example as a user runs it: the binary, configured from the environment, answers
//! an unpaid request with the 402 and its price, and serves nothing for free.

use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

#[tokio::test]
async fn the_binary_answers_402_with_the_price() {
    let mut server = Command::new(env!("CARGO_BIN_EXE_example-minimal"))
        .env("X402_PAY_TO", PAY_TO)
        .env("X402_NETWORK", "eip155:84532")
        // Nothing leaves the machine: no facilitator is needed for a 402.
        .env("X402_FACILITATOR_URL", "http://127.0.0.1:9")
        .env("X402_LISTEN", "127.0.0.1:0")
        .env(
            "X402_STORE_PATH",
            std::env::temp_dir().join(format!("minimal-{}.redb", std::process::id())),
        )
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start example-minimal");
    let stdout = server.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the server starts within 30 s")
        .expect("stdout readable")
        .expect("a first line");
    let base = line
        .strip_prefix("listening on ")
        .expect("the listening line");

    let answer = reqwest::get(format!("{base}/joke"))
        .await
        .expect("GET /joke");
    assert_eq!(answer.status(), 402);
    let header = answer.headers()["payment-required"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body = answer.text().await.expect("body");
    assert!(
        !body.contains("agent pay"),
        "the joke is not given away: {body}"
    );
    let challenge: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(header)
            .expect("base64"),
    )
    .expect("json");
    let offer = &challenge["accepts"][0];
    assert_eq!(
        offer["amount"], "1000",
        "0.001 USDC in atomic units: {offer}"
    );
    assert_eq!(offer["payTo"], PAY_TO);
    assert_eq!(offer["network"], "eip155:84532");
    server.kill().await.expect("stop the server");
}
