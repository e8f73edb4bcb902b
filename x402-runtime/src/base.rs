//! Primitives every layer may use: the boxed future of the crate's async traits, the clock, and
//! the configuration error.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

/// A boxed, sendable future, the return type of the [`Facilitator`](crate::Facilitator),
/// [`ReplayStore`](crate::ReplayStore) and [`ChainReader`](crate::schemes::exact_evm::chain::ChainReader) methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Seconds since the Unix epoch, from the system clock.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A source of the current time in unix seconds (the system clock unless a test injects one).
pub type Clock = std::sync::Arc<dyn Fn() -> u64 + Send + Sync>;

/// A configuration mistake, with the fix in its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(String);

impl ConfigError {
    #[cfg_attr(
        not(any(feature = "server", feature = "client", feature = "chain")),
        allow(dead_code)
    )]
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ConfigError(message.into())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}
