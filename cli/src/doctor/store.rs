//! `store`: the settlement record the server would keep. One arm per kind of record the
//! configuration can name; each opens it and writes and deletes a probe entry.

use std::path::{Path, PathBuf};

use x402_runtime::{FileStore, PostgresStore, X402Config};

use super::{Check, TIMEOUT};

const NAME: &str = "store";

/// The record a configuration names.
enum Record<'a> {
    /// `X402_STORE_PATH=memory`: nothing survives a restart.
    Memory,
    /// A redb file (`X402_STORE_PATH`, by default `x402-payments.redb`).
    File(&'a Path),
    /// The Postgres store and ledger (`X402_DATABASE_URL`).
    Postgres(&'a str),
}

fn record_of(config: &X402Config) -> Record<'_> {
    match (config.database_url(), config.store_path()) {
        (Some(url), _) => Record::Postgres(url),
        (None, Some(path)) => Record::File(path),
        (None, None) => Record::Memory,
    }
}

/// The `store` check.
pub(super) async fn check(config: &X402Config) -> Check {
    match record_of(config) {
        Record::Memory => Check::warn(
            NAME,
            "X402_STORE_PATH=memory: payments are recorded in memory only, so a restart forgets \
             settlements whose outcome is unknown (a resend could then be asked to pay again)",
            "unset X402_STORE_PATH (the record is then x402-payments.redb) or set it to a file \
             on persistent storage",
        ),
        Record::Postgres(url) => probe_postgres(url).await,
        Record::File(path) => {
            let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            match tokio::time::timeout(TIMEOUT, probe_file(path.to_path_buf())).await {
                Ok(check) => check,
                Err(_) => Check::fail(
                    NAME,
                    format!(
                        "{}: no answer within {} s",
                        shown.display(),
                        TIMEOUT.as_secs()
                    ),
                    "check the storage the file is on (a hung network mount?)",
                ),
            }
        }
    }
}

/// Connects (creating or upgrading the tables, as the server does at startup) and writes a
/// probe row in a transaction that is rolled back.
async fn probe_postgres(url: &str) -> Check {
    let probed = async {
        let store = PostgresStore::connect(url).await?;
        store.probe().await.map(|()| store.target().to_owned())
    };
    match tokio::time::timeout(TIMEOUT, probed).await {
        Ok(Ok(target)) => Check::pass(
            NAME,
            format!(
                "Postgres {target}: connected, tables ready, a probe row written and rolled back"
            ),
        ),
        Ok(Err(e)) => Check::fail(
            NAME,
            e.to_string(),
            "check X402_DATABASE_URL (host, port, database, user) and that the user may create \
             tables and write in that database",
        ),
        Err(_) => Check::fail(
            NAME,
            format!("Postgres: no answer within {} s", TIMEOUT.as_secs()),
            "check that the database named by X402_DATABASE_URL is up and reachable",
        ),
    }
}

/// Opens the file (created when missing, then removed again with the folders created for it)
/// and probes it.
async fn probe_file(path: PathBuf) -> Check {
    let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    let shown = shown.display();
    let existed = path.exists();
    let created = missing_folders(&path);
    let opened = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || FileStore::open(path)).await
    };
    let probed = match opened {
        Err(e) => Err((format!("{shown}: the open task failed: {e}"), false)),
        Ok(Err(e)) => Err((e.to_string(), e.in_use())),
        Ok(Ok(store)) => store.probe().await.map_err(|e| (e.to_string(), false)),
    };
    if !existed {
        let _ = std::fs::remove_file(&path);
        for folder in &created {
            let _ = std::fs::remove_dir(folder);
        }
    }
    match probed {
        Ok(()) if existed => Check::pass(
            NAME,
            format!("{shown}: opened, a probe entry written and deleted"),
        ),
        Ok(()) => Check::pass(
            NAME,
            format!(
                "{shown} does not exist yet: created, a probe entry written and deleted, then \
                 removed (the server creates it at startup)"
            ),
        ),
        Err((_, true)) => Check::warn(
            NAME,
            format!(
                "{shown} is in use by a running server (one process opens the record at a \
                 time), so it was not probed"
            ),
            "to probe it, run x402 doctor while the server is stopped",
        ),
        Err((why, false)) => Check::fail(
            NAME,
            why,
            "set X402_STORE_PATH to a file the server's user can create and write, on \
             persistent storage (or make its folder writable)",
        ),
    }
}

/// The folders above `path` that do not exist, deepest first (opening creates them).
fn missing_folders(path: &Path) -> Vec<PathBuf> {
    path.ancestors()
        .skip(1)
        .filter(|folder| !folder.as_os_str().is_empty())
        .take_while(|folder| !folder.exists())
        .map(Path::to_path_buf)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_folders_are_listed_deepest_first() {
        let root = std::env::temp_dir();
        let path = root.join("x402-doctor-none/a/b/record.redb");
        assert_eq!(
            missing_folders(&path),
            [
                root.join("x402-doctor-none/a/b"),
                root.join("x402-doctor-none/a"),
                root.join("x402-doctor-none"),
            ]
        );
        assert!(missing_folders(Path::new("record.redb")).is_empty());
    }
}
