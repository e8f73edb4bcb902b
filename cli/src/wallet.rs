//! `x402 wallet`: the paying address and, with an RPC, its balances; or approving Permit2 for
//! a token.

use std::process::ExitCode;

use alloy::providers::{Provider, ProviderBuilder};
use alloy_primitives::U256;
use serde_json::{Value, json};
use x402_runtime::client::{PaymentSigner, format_amount};
use x402_runtime::network::{Asset, Network};
use x402_runtime::schemes::exact_evm::payload::parse_address;
use x402_runtime::schemes::permit2::PERMIT2;

use crate::Error;

alloy::sol! {
    #[sol(rpc)]
    interface Erc20 {
        function balanceOf(address account) external view returns (uint256);
    }
}

/// Prints the address; with `rpc_url`, the chain, the native balance and the balance of every
/// known stablecoin on that chain. With a Solana key (feature `svm`), the same for Solana: its
/// address and, with `svm_rpc_url`, the cluster the node serves, SOL and USDC.
pub(crate) async fn run(
    signer: &PaymentSigner,
    rpc_url: Option<&str>,
    svm_rpc_url: Option<&str>,
    json: bool,
) -> Result<ExitCode, Error> {
    let (shown, text) = evm(signer, rpc_url).await?;
    #[cfg(feature = "svm")]
    let (shown, text) = match crate::wallet_svm::report(signer, svm_rpc_url).await? {
        Some((svm, svm_text)) => {
            let mut shown = shown;
            shown["solana"] = svm;
            (shown, format!("{text}\n{svm_text}"))
        }
        None => (shown, text),
    };
    #[cfg(not(feature = "svm"))]
    let _ = svm_rpc_url;
    if json {
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else {
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The EVM part: JSON and text.
async fn evm(signer: &PaymentSigner, rpc_url: Option<&str>) -> Result<(Value, String), Error> {
    let address = signer.address();
    let Some(rpc_url) = rpc_url else {
        let text = format!("address  {address}\n(set X402_RPC_URL or --rpc-url to see balances)\n");
        return Ok((json!({ "address": address.to_checksum(None) }), text));
    };
    let url = rpc_url
        .parse()
        .map_err(|_| format!("`{rpc_url}` is not a URL"))?;
    let provider = ProviderBuilder::new().connect_http(url);
    let reach = |e: alloy::transports::TransportError| format!("cannot reach {rpc_url}: {e}");
    let chain_id = provider.get_chain_id().await.map_err(reach)?;
    let network = Network::from_chain_id(chain_id);
    let native = provider.get_balance(address).await.map_err(reach)?;
    let mut tokens = Vec::new();
    for asset in Asset::builtins(&network) {
        // Built-in tokens of an EVM chain are EVM contracts.
        let Some(token) = asset.address.as_evm() else {
            continue;
        };
        // A local or forked chain may lack some of the known tokens: say so, keep going.
        let balance = match provider.get_code_at(token).await.map_err(reach)? {
            code if code.is_empty() => Err("no contract at this address on this chain".to_owned()),
            _ => Erc20::new(token, &provider)
                .balanceOf(address)
                .call()
                .await
                .map_err(|e| format!("balanceOf failed: {e}")),
        };
        tokens.push((asset, balance));
    }
    let shown = json!({
        "address": address.to_checksum(None),
        "network": network.caip2,
        "native": format_amount(native, 18),
        "tokens": tokens.iter().map(|(asset, balance)| token_json(asset, balance)).collect::<Vec<_>>(),
    });
    let mut text = format!(
        "address  {address}\nnetwork  {}\nnative   {} ETH\n",
        network.caip2,
        format_amount(native, 18)
    );
    if tokens.is_empty() {
        text.push_str("(no known stablecoin on this chain)\n");
    }
    for (asset, balance) in &tokens {
        text.push_str(&token_line(asset, balance));
    }
    Ok((shown, text))
}

/// One token's balance (or why it is unavailable) as JSON.
pub(crate) fn token_json(asset: &Asset, balance: &Result<U256, String>) -> Value {
    match balance {
        Ok(balance) => json!({
            "currency": asset.currency.symbol(),
            "asset": asset.address.to_string(),
            "balance": format_amount(*balance, asset.decimals),
            "atomic": balance.to_string(),
        }),
        Err(why) => json!({
            "currency": asset.currency.symbol(),
            "asset": asset.address.to_string(),
            "unavailable": why,
        }),
    }
}

/// One token's balance (or why it is unavailable) as a text line.
pub(crate) fn token_line(asset: &Asset, balance: &Result<U256, String>) -> String {
    let shown = match balance {
        Ok(balance) => format_amount(*balance, asset.decimals),
        Err(why) => format!("unavailable: {why}"),
    };
    format!(
        "{:<8} {shown} ({})\n",
        asset.currency.symbol(),
        asset.address
    )
}

/// Lets Permit2 move `token` for the payer (`approve(PERMIT2, max)` through `rpc_url`), unless
/// it already may.
pub(crate) async fn approve_permit2(
    signer: &PaymentSigner,
    rpc_url: &str,
    token: &str,
    json: bool,
) -> Result<ExitCode, Error> {
    let token = parse_address(token.trim(), "token")
        .map_err(|_| format!("--approve-permit2: `{token}` is not a token address"))?;
    let sent = signer.approve_permit2(rpc_url, token).await?;
    if json {
        println!(
            "{}",
            json!({
                "address": signer.address().to_checksum(None),
                "token": token.to_checksum(None),
                "spender": PERMIT2.to_checksum(None),
                "transaction": sent.map(|tx| tx.to_string()),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    match sent {
        Some(transaction) => println!(
            "approved Permit2 ({PERMIT2}) to move {token} for {} in {transaction}",
            signer.address()
        ),
        None => println!(
            "Permit2 ({PERMIT2}) may already move {token} for {}: nothing sent",
            signer.address()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
