//! `x402 wallet` on Solana: the Solana paying address and, with a Solana RPC URL, the cluster
//! the node serves (told by its genesis hash), the SOL balance and the USDC balance (of the
//! payer's associated token account).

use alloy_primitives::U256;
use serde_json::{Value, json};
use x402_runtime::client::{PaymentSigner, format_amount};
use x402_runtime::network::{Asset, Network, SOLANA_DEVNET, SOLANA_MAINNET};
use x402_runtime::schemes::exact_svm::program::{TOKEN_PROGRAM, associated_token_account};
use x402_runtime::schemes::exact_svm::rpc::SvmRpc;

use crate::Error;
use crate::wallet::{token_json, token_line};

/// Lamports in one SOL.
const SOL_DECIMALS: u8 = 9;

/// The Solana part of the wallet (JSON and text), `None` when the signer has no Solana key.
pub(crate) async fn report(
    signer: &PaymentSigner,
    rpc_url: Option<&str>,
) -> Result<Option<(Value, String)>, Error> {
    let Some(address) = signer.svm_address() else {
        return Ok(None);
    };
    let Some(rpc_url) = rpc_url else {
        let text = format!(
            "address  {address}\n(set X402_SVM_RPC_URL or --svm-rpc-url to see Solana balances)\n"
        );
        return Ok(Some((json!({ "address": address.to_string() }), text)));
    };
    let rpc = SvmRpc::new(rpc_url)?;
    let reach = |e: x402_runtime::schemes::exact_svm::rpc::SvmRpcError| {
        format!("cannot read the Solana node: {e}")
    };
    let genesis = rpc.call("getGenesisHash", json!([])).await.map_err(reach)?;
    let network = cluster(genesis.as_str().unwrap_or_default())
        .ok_or_else(|| format!("the Solana node serves an unknown cluster (genesis {genesis})"))?;
    let lamports = rpc.balance(address.as_bytes()).await.map_err(reach)?;
    let mut tokens = Vec::new();
    for asset in Asset::builtins(&network) {
        let Some(mint) = asset.address.as_svm() else {
            continue;
        };
        let account = associated_token_account(address.as_bytes(), mint.as_bytes(), &TOKEN_PROGRAM);
        // No token account yet holds nothing.
        let balance = match rpc.account(&account).await.map_err(reach)? {
            None => Ok(U256::ZERO),
            Some(info) => info
                .token_amount()
                .map(U256::from)
                .ok_or_else(|| "the associated token account is not a token account".to_owned()),
        };
        tokens.push((asset, balance));
    }
    let shown = json!({
        "address": address.to_string(),
        "network": network.caip2,
        "native": format_amount(U256::from(lamports), SOL_DECIMALS),
        "tokens": tokens.iter().map(|(asset, balance)| token_json(asset, balance)).collect::<Vec<_>>(),
    });
    let mut text = format!(
        "address  {address}\nnetwork  {}\nnative   {} SOL\n",
        network.caip2,
        format_amount(U256::from(lamports), SOL_DECIMALS)
    );
    for (asset, balance) in &tokens {
        text.push_str(&token_line(asset, balance));
    }
    Ok(Some((shown, text)))
}

/// The Solana cluster whose CAIP-2 id is the first 32 characters of `genesis`.
fn cluster(genesis: &str) -> Option<Network> {
    [SOLANA_MAINNET, SOLANA_DEVNET]
        .into_iter()
        .find(|caip2| {
            caip2
                .strip_prefix("solana:")
                .is_some_and(|reference| genesis.get(..32) == Some(reference))
        })
        .and_then(Network::from_caip2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_is_told_by_its_genesis_hash() {
        let devnet = cluster("EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG").expect("devnet");
        assert_eq!(devnet.caip2, SOLANA_DEVNET);
        let mainnet = cluster("5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d").expect("mainnet");
        assert_eq!(mainnet.caip2, SOLANA_MAINNET);
        assert!(cluster("4uhcVJyU9pJkvQyS88uRDiswHXSCkY3zQawwpjk2NsNY").is_none());
        assert!(cluster("").is_none());
    }
}
