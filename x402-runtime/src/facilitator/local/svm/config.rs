//! The Solana part of the in-process facilitator's configuration.

use std::collections::HashMap;

use super::{FeePayer, SvmBackend};
use crate::base::ConfigError;
use crate::network::{Network, SOLANA_DEVNET, SOLANA_MAINNET};
use crate::schemes::exact_svm::rpc::{DEVNET_RPC_URL, MAINNET_RPC_URL};

/// The Solana options of a [`LocalFacilitatorBuilder`](super::super::LocalFacilitatorBuilder).
#[derive(Default)]
pub(crate) struct SvmOptions {
    pub(crate) rpc: HashMap<String, String>,
    pub(crate) default_rpc: Option<String>,
    /// The fee payer key as given (parsed by `build`, never shown).
    pub(crate) key: Option<String>,
}

/// The per-cluster RPC variables: `(network, variable)`.
const CLUSTER_RPC_VARIABLES: [(&str, &str); 2] = [
    (SOLANA_DEVNET, "X402_SVM_RPC_URL_DEVNET"),
    (SOLANA_MAINNET, "X402_SVM_RPC_URL_MAINNET"),
];

impl SvmOptions {
    /// Reads `X402_SVM_RPC_URL`, `X402_SVM_RPC_URL_DEVNET`, `X402_SVM_RPC_URL_MAINNET` and
    /// `X402_SVM_FACILITATOR_KEY` through `lookup` (blank values are ignored).
    pub(crate) fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Self {
        let read = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut options = Self {
            default_rpc: read("X402_SVM_RPC_URL").map(|u| u.trim().to_owned()),
            key: read("X402_SVM_FACILITATOR_KEY"),
            ..Self::default()
        };
        for (network, variable) in CLUSTER_RPC_VARIABLES {
            if let Some(url) = read(variable) {
                options
                    .rpc
                    .insert(network.to_owned(), url.trim().to_owned());
            }
        }
        options
    }

    /// The backend of `network`: its RPC URL ([`rpc_url`](Self::rpc_url)) and the fee payer
    /// key, parsed here.
    pub(crate) fn backend(&self, network: &Network) -> Result<SvmBackend, ConfigError> {
        let fee_payer = self.key.as_deref().map(FeePayer::parse).transpose()?;
        SvmBackend::new(network.clone(), self.rpc_url(network)?, fee_payer)
    }

    /// The RPC URL of `network`: its own, else the default, else the cluster's public endpoint.
    pub(crate) fn rpc_url(&self, network: &Network) -> Result<&str, ConfigError> {
        let public = match network.caip2.as_str() {
            SOLANA_DEVNET => Some(DEVNET_RPC_URL),
            SOLANA_MAINNET => Some(MAINNET_RPC_URL),
            _ => None,
        };
        self.rpc
            .get(&network.caip2)
            .map(String::as_str)
            .or(self.default_rpc.as_deref())
            .or(public)
            .ok_or_else(|| {
                ConfigError::new(format!(
                    "no Solana RPC URL for {}: set X402_SVM_RPC_URL",
                    network.caip2
                ))
            })
    }
}
