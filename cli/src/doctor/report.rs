//! A check's outcome, the report as text or JSON, and the redaction of URLs in what is shown.

use std::fmt::Write as _;

use serde_json::{Value, json};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Checked, fine.
    Pass,
    /// Works, but deserves a look (does not fail the run).
    Warn,
    /// Will not work as configured: the run exits 1.
    Fail,
    /// Not checked; the detail says why.
    Skipped,
}

impl Status {
    /// The name in `--json`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skipped => "skipped",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skipped => "SKIP",
        }
    }
}

/// One check's outcome. Detail and fix are redacted when built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Check {
    pub(crate) name: String,
    pub(crate) status: Status,
    pub(crate) detail: String,
    pub(crate) fix: Option<String>,
}

impl Check {
    fn new(name: &str, status: Status, detail: &str, fix: Option<&str>) -> Check {
        Check {
            name: name.to_owned(),
            status,
            detail: redact(detail),
            fix: fix.map(redact),
        }
    }

    pub(crate) fn pass(name: &str, detail: impl AsRef<str>) -> Check {
        Check::new(name, Status::Pass, detail.as_ref(), None)
    }

    pub(crate) fn warn(name: &str, detail: impl AsRef<str>, fix: impl AsRef<str>) -> Check {
        Check::new(name, Status::Warn, detail.as_ref(), Some(fix.as_ref()))
    }

    pub(crate) fn fail(name: &str, detail: impl AsRef<str>, fix: impl AsRef<str>) -> Check {
        Check::new(name, Status::Fail, detail.as_ref(), Some(fix.as_ref()))
    }

    pub(crate) fn skipped(name: &str, why: impl AsRef<str>) -> Check {
        Check::new(name, Status::Skipped, why.as_ref(), None)
    }
}

/// Whether no check failed.
pub(crate) fn ok(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.status != Status::Fail)
}

/// `{"ok": bool, "checks": [{"name", "status", "detail", "fix"}]}`.
pub(crate) fn json(checks: &[Check]) -> Value {
    let list: Vec<Value> = checks
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "status": c.status.as_str(),
                "detail": c.detail,
                "fix": c.fix,
            })
        })
        .collect();
    json!({ "ok": ok(checks), "checks": list })
}

/// One line per check (`PASS  name  detail`), its fix below it, then a summary.
pub(crate) fn text(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for check in checks {
        let _ = writeln!(
            out,
            "{}  {:<width$}  {}",
            check.status.label(),
            check.name,
            check.detail
        );
        if let Some(fix) = &check.fix {
            let _ = writeln!(out, "{:<pad$}fix: {fix}", "", pad = 6 + width + 2);
        }
    }
    let count = |status| checks.iter().filter(|c| c.status == status).count();
    let _ = writeln!(
        out,
        "\n{} passed, {} warning{}, {} failed, {} skipped: {}",
        count(Status::Pass),
        count(Status::Warn),
        if count(Status::Warn) == 1 { "" } else { "s" },
        count(Status::Fail),
        count(Status::Skipped),
        if ok(checks) {
            "ready"
        } else {
            "NOT ready: fix the failed checks"
        }
    );
    out
}

/// A URL as it may be shown: scheme, host and port only, with `/…` when it has a path, query
/// or fragment (RPC providers put API keys there) and never its user or password. Text that
/// does not parse as a URL is shown as `<URL>`.
pub(crate) fn redact_url(url: &str) -> String {
    let Ok(parsed) = reqwest::Url::parse(url.trim()) else {
        return "<URL>".to_owned();
    };
    let Some(host) = parsed.host_str() else {
        return "<URL>".to_owned();
    };
    let mut shown = format!("{}://{host}", parsed.scheme());
    if let Some(port) = parsed.port() {
        let _ = write!(shown, ":{port}");
    }
    let has_more = !matches!(parsed.path(), "" | "/")
        || parsed.query().is_some()
        || parsed.fragment().is_some();
    if has_more {
        shown.push_str("/…");
    }
    shown
}

/// `text` with every URL in it (`scheme://…`: http, https, ws, redis, postgres, …) replaced by
/// [`redact_url`]'s form: error messages quote the URL they called, API key and all, and a
/// configuration error quotes the value it refused.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(mark) = rest.find("://") {
        let start = rest[..mark]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| {
                c.is_whitespace() || matches!(c, ')' | '(' | '`' | '"' | '\'' | '<' | '>')
            })
            .unwrap_or(tail.len());
        let url = tail[..end].trim_end_matches([',', ';', '.', ':']);
        if start == mark {
            // `://` with no scheme before it: not a URL; keep it and go on.
            out.push_str("://");
            rest = &tail[3..];
            continue;
        }
        out.push_str(&redact_url(url));
        rest = &tail[url.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_show_their_origin_only() {
        assert_eq!(redact_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(
            redact_url("http://127.0.0.1:8545/"),
            "http://127.0.0.1:8545"
        );
        assert_eq!(
            redact_url("https://user:s3cret@rpc.example.com/v2/KEY123?x=1"),
            "https://rpc.example.com/…"
        );
        assert_eq!(
            redact_url("https://x402.org/facilitator"),
            "https://x402.org/…"
        );
        assert_eq!(redact_url("not a url"), "<URL>");
        assert_eq!(
            redact_url("redis://:pw@127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn urls_inside_messages_are_redacted() {
        let message = "error sending request for url (https://u:pw@base.example/v2/abcdef/supported): \
                       connection refused; also http://10.0.0.1:9/key?token=t.";
        let shown = redact(message);
        assert_eq!(
            shown,
            "error sending request for url (https://base.example/…): connection refused; also \
             http://10.0.0.1:9/….",
        );
        for secret in ["pw", "abcdef", "token=t", "u:"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(redact("no url here"), "no url here");
        assert_eq!(
            redact("`http://127.0.0.1:9` refused"),
            "`http://127.0.0.1:9` refused"
        );
        assert_eq!(
            redact("at http://u:p@127.0.0.1:9/k: down"),
            "at http://127.0.0.1:9/…: down"
        );
        assert_eq!(
            redact("X402_DATABASE_URL `postgres://app:hunter2@db:5432/pay` refused, and wss://k@n"),
            "X402_DATABASE_URL `postgres://db:5432/…` refused, and wss://n"
        );
        assert_eq!(redact("odd :// text"), "odd :// text");
    }

    #[test]
    fn checks_are_redacted_when_built() {
        let check = Check::fail(
            "rpc/eip155:8453",
            "cannot reach https://base-mainnet.example/v2/SECRETKEY",
            "check https://base-mainnet.example/v2/SECRETKEY",
        );
        assert!(!format!("{check:?}").contains("SECRETKEY"), "{check:?}");
    }

    fn sample() -> Vec<Check> {
        vec![
            Check::pass("payTo", "0x90F79bf6EB2c4f870365E785982E1f101E93b906"),
            Check::warn("store", "in use by a running server", "stop the server"),
            Check::skipped("rpc/eip155:8453", "no RPC URL: set X402_RPC_URL_8453"),
        ]
    }

    #[test]
    fn the_text_report_aligns_names_and_puts_fixes_below() {
        let text = text(&sample());
        assert_eq!(
            text,
            "PASS  payTo            0x90F79bf6EB2c4f870365E785982E1f101E93b906\n\
             WARN  store            in use by a running server\n\
             \x20                      fix: stop the server\n\
             SKIP  rpc/eip155:8453  no RPC URL: set X402_RPC_URL_8453\n\
             \n\
             1 passed, 1 warning, 0 failed, 1 skipped: ready\n"
        );
        let mut failed = sample();
        failed.push(Check::fail("facilitator", "unreachable", "start it"));
        assert!(
            super::text(&failed)
                .ends_with("1 failed, 1 skipped: NOT ready: fix the failed checks\n")
        );
    }

    #[test]
    fn the_json_report_has_stable_fields() {
        let mut checks = sample();
        assert_eq!(
            json(&checks),
            json!({
                "ok": true,
                "checks": [
                    {"name": "payTo", "status": "pass",
                     "detail": "0x90F79bf6EB2c4f870365E785982E1f101E93b906", "fix": null},
                    {"name": "store", "status": "warn", "detail": "in use by a running server",
                     "fix": "stop the server"},
                    {"name": "rpc/eip155:8453", "status": "skipped",
                     "detail": "no RPC URL: set X402_RPC_URL_8453", "fix": null},
                ]
            })
        );
        checks.push(Check::fail("config", "bad", "fix it"));
        assert_eq!(json(&checks)["ok"], false);
        assert!(!ok(&checks));
    }
}
