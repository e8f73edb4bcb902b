//! The PostgreSQL of the tests: the throwaway cluster `scripts/postgres.sh` starts (its URL in
//! `X402_TEST_POSTGRES_URL`), with a fresh schema for each test so that tests sharing the
//! database do not see each other's rows.

use std::io::Write as _;

use crate::install::in_ci;

/// A URL of the test database whose connections use a fresh, empty schema named after `test`
/// (through the `options` parameter's `search_path`). Without `X402_TEST_POSTGRES_URL`, fails
/// the test (panics) under `CI=true`, and elsewhere prints `SKIPPED <test>: <why>` and returns
/// `None`.
pub async fn postgres_database(test: &str) -> Option<String> {
    let url = match std::env::var("X402_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ if in_ci() => panic!(
            "{test}: X402_TEST_POSTGRES_URL is not set (CI=true: PostgreSQL is required, not skipped); run scripts/test.sh"
        ),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: X402_TEST_POSTGRES_URL is not set (scripts/postgres.sh start prints one)"
            );
            return None;
        }
    };
    let schema: String = format!("t{}_{test}", std::process::id())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{test}: the test PostgreSQL at {url} does not answer: {e}"));
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .unwrap_or_else(|e| panic!("{test}: cannot create the schema {schema}: {e}"));
    drop(client);
    let _ = connection.await;
    let separator = if url.contains('?') { '&' } else { '?' };
    Some(format!(
        "{url}{separator}options=-c%20search_path%3D{schema}"
    ))
}
