use std::fmt;

/// Why the test bed could not be installed, started or used. The message says what to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// node, npm, python3 or bash is missing.
    MissingTool(String),
    /// `scripts/testbed-install.sh` failed, or left something out.
    Install(String),
    /// A contract artifact is missing or malformed, or could not be linked.
    Artifact(String),
    /// anvil or the Solana chain did not come up (the message ends with its log tail).
    Startup(String),
    /// An RPC call or transaction failed.
    Chain(String),
    /// A file could not be read or written.
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, message) = match self {
            Error::MissingTool(m) => ("missing tool", m),
            Error::Install(m) => ("install failed", m),
            Error::Artifact(m) => ("artifact", m),
            Error::Startup(m) => ("chain startup", m),
            Error::Chain(m) => ("chain", m),
            Error::Io(m) => ("io", m),
        };
        write!(f, "testbed: {kind}: {message}")
    }
}

impl std::error::Error for Error {}

/// `Error::Io` naming the path or action.
pub(crate) fn io(context: impl fmt::Display, err: std::io::Error) -> Error {
    Error::Io(format!("{context}: {err}"))
}

/// `Error::Chain` naming the action.
pub(crate) fn chain(context: impl fmt::Display, err: impl fmt::Display) -> Error {
    Error::Chain(format!("{context}: {err}"))
}
