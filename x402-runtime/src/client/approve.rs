//! Approving Permit2 for a token from the payer's wallet (feature `chain`): the one on-chain
//! step a Permit2 payment needs, once per token.

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::providers::ProviderBuilder;
use alloy_primitives::{Address, B256, U256};

use crate::schemes::permit2::PERMIT2;

use super::signer::PaymentSigner;

/// How long [`PaymentSigner::approve_permit2`] waits for the approval to be mined.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one call to the node may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

mod erc20 {
    alloy::sol! {
        /// The ERC-20 calls an approval needs.
        #[sol(rpc)]
        interface IErc20 {
            function allowance(address owner, address spender) external view returns (uint256);
            function approve(address spender, uint256 amount) external returns (bool);
        }
    }
}

/// Why Permit2 could not be approved (nothing secret in it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApproveError(String);

impl std::fmt::Display for ApproveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ApproveError {}

impl PaymentSigner {
    /// Lets Permit2 move `token` for the payer: sends `approve(PERMIT2, max)` from the payer's
    /// address through the EVM node at `rpc_url` (the payer pays the gas) and waits for it to
    /// be mined. Returns the transaction, or `None` when the allowance already is the maximum
    /// (nothing is sent).
    ///
    /// Needed once per token before paying Permit2 offers (`upto`, and `exact` offers with
    /// `extra.assetTransferMethod: "permit2"`); without it the server refuses such payments
    /// with `permit2_allowance_required`.
    ///
    /// ```no_run
    /// use x402_runtime::client::PaymentSigner;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let signer = PaymentSigner::from_env()?;
    /// let usdc = "0x036CbD53842c5426634e7929541eC2318f3dCF7e".parse()?;
    /// match signer.approve_permit2("http://127.0.0.1:8545", usdc).await? {
    ///     Some(transaction) => println!("approved in {transaction}"),
    ///     None => println!("already approved"),
    /// }
    /// # Ok(()) }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "chain")))]
    pub async fn approve_permit2(
        &self,
        rpc_url: &str,
        token: Address,
    ) -> Result<Option<B256>, ApproveError> {
        let url: reqwest::Url = rpc_url
            .parse()
            .map_err(|_| ApproveError(format!("`{rpc_url}` is not a URL")))?;
        let http = reqwest::Client::builder()
            .timeout(RPC_TIMEOUT)
            .build()
            .map_err(|e| ApproveError(format!("cannot build an HTTP client: {e}")))?;
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(self.key().clone()))
            .connect_reqwest(http, url);
        let erc20 = erc20::IErc20::new(token, &provider);
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            ApproveError(format!("{what} of {token} through {rpc_url} failed: {e}"))
        };
        let allowance = erc20
            .allowance(self.address(), PERMIT2)
            .call()
            .await
            .map_err(|e| failed("reading the Permit2 allowance", &e))?;
        if allowance == U256::MAX {
            return Ok(None);
        }
        let receipt = erc20
            .approve(PERMIT2, U256::MAX)
            .send()
            .await
            .map_err(|e| failed("sending approve(PERMIT2, max)", &e))?
            .with_timeout(Some(RECEIPT_TIMEOUT))
            .get_receipt()
            .await
            .map_err(|e| failed("waiting for approve(PERMIT2, max)", &e))?;
        if !receipt.status() {
            return Err(ApproveError(format!(
                "approve(PERMIT2, max) on {token} reverted in {}",
                receipt.transaction_hash
            )));
        }
        Ok(Some(receipt.transaction_hash))
    }
}
