//! `rpc/<network>`, `clock/<network>`, `token/<network>/<currency>`, `permit2/<network>`: for
//! each network with an RPC URL, the node serves that chain, its clock agrees with this
//! machine's, each token offered there is deployed (an EIP-3009 token with the EIP-712 domain
//! the offer names), and where a token is paid through Permit2, Permit2 and the x402 proxies are
//! deployed.

use std::time::Duration;

use x402_runtime::network::{Asset, Network, TransferMethod};
use x402_runtime::schemes::exact_evm::chain::{RpcChainReader, TokenDomain};
use x402_runtime::schemes::exact_evm::eip3009;
use x402_runtime::schemes::permit2;
use x402_runtime::{Currency, unix_now};

use super::report::redact_url;
use super::settings::Deployment;
use super::{Check, TIMEOUT};

/// A clock difference up to this is normal (block interval, propagation).
pub(super) const CLOCK_PASS: Duration = Duration::from_secs(30);

/// The checks of every configured network, network by network.
pub(super) async fn check(
    deployment: &Deployment,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for network in deployment.config.networks() {
        let rpc = format!("rpc/{}", network.caip2);
        // The configuration takes EVM networks only; these checks read EVM nodes.
        let Some(chain_id) = network.chain_id() else {
            checks.push(Check::skipped(&rpc, "not an EVM network: no chain checks"));
            continue;
        };
        let source = RpcChainReader::url_variable(network, lookup);
        let (Some(reader), Some((variable, url))) = (&deployment.reader, source) else {
            checks.push(Check::skipped(
                &rpc,
                format!(
                    "no RPC URL: set X402_RPC_URL_{} (or X402_RPC_URL for every network) to \
                     check the chain id, the tokens and the clock",
                    chain_id
                ),
            ));
            continue;
        };
        let at = format!("{variable} ({})", redact_url(&url));
        let status = match bounded(reader.node_status(network)).await {
            Ok(status) => status,
            Err(why) => {
                checks.push(Check::fail(
                    &rpc,
                    format!("{at}: {why} (tokens and clock not checked)"),
                    format!("check {variable}: the URL, and that the node is up and reachable"),
                ));
                continue;
            }
        };
        if status.chain_id != chain_id {
            checks.push(Check::fail(
                &rpc,
                format!(
                    "{at} serves chain {}, not {chain_id} ({}); tokens and clock not checked",
                    status.chain_id, network.caip2
                ),
                format!("set {variable} to a node of chain {chain_id}"),
            ));
            continue;
        }
        checks.push(Check::pass(
            &rpc,
            format!(
                "{at}: chain {} at block {}",
                status.chain_id, status.block_number
            ),
        ));
        let skew = i128::from(unix_now()) - i128::from(status.block_timestamp);
        let allowance = deployment.config.clock_skew();
        checks.push(clock(network, skew, allowance));
        let assets = offered(deployment, network);
        for asset in &assets {
            checks.push(match asset.transfer {
                TransferMethod::Eip3009 => token(reader, network, asset).await,
                TransferMethod::Permit2 => permit2_token(reader, network, asset).await,
            });
        }
        if assets.iter().any(|a| a.transfer == TransferMethod::Permit2) {
            checks.push(permit2_contracts(reader, network).await);
        }
    }
    checks
}

/// The tokens offered on `network`: the configuration's asset of each built-in currency, then
/// the other tokens it adds there.
fn offered(deployment: &Deployment, network: &Network) -> Vec<Asset> {
    let config = &deployment.config;
    let builtin = Currency::ALL
        .into_iter()
        .filter_map(|currency| config.asset(network, currency));
    let added = config
        .assets()
        .iter()
        .filter(|a| a.network == network.caip2 && !Currency::ALL.contains(&a.currency))
        .cloned();
    builtin.chain(added).collect()
}

/// A token paid through Permit2 has code (its EIP-712 domain only matters for an EIP-2612
/// permit a payer may send instead of approving Permit2).
async fn permit2_token(reader: &RpcChainReader, network: &Network, asset: &Asset) -> Check {
    let name = format!("token/{}/{}", network.caip2, asset.currency.symbol());
    let what = format!("{} at {}", asset.currency.symbol(), asset.address);
    let Some(token) = asset.address.as_evm() else {
        return Check::skipped(&name, format!("{what}: not an EVM token"));
    };
    match bounded(reader.has_code(network, token)).await {
        Err(why) => Check::fail(
            &name,
            format!("{what}: {why}"),
            "check the RPC node (it must answer eth_getCode)",
        ),
        Ok(false) => Check::fail(
            &name,
            format!(
                "{what}: no contract at this address on chain {}",
                chain_of(network)
            ),
            "configure the token's address on this chain (X402_TOKENS)",
        ),
        Ok(true) => Check::pass(
            &name,
            format!("{what}: deployed; paid through Permit2 (payers approve Permit2 once)"),
        ),
    }
}

/// Permit2 and both x402 Permit2 proxies are deployed at their canonical addresses.
async fn permit2_contracts(reader: &RpcChainReader, network: &Network) -> Check {
    let name = format!("permit2/{}", network.caip2);
    let contracts = [
        ("Permit2", permit2::PERMIT2),
        ("the x402 exact Permit2 proxy", permit2::EXACT_PROXY),
        ("the x402 upto Permit2 proxy", permit2::UPTO_PROXY),
    ];
    let mut missing = Vec::new();
    for (what, address) in contracts {
        match bounded(reader.has_code(network, address)).await {
            Ok(true) => {}
            Ok(false) => missing.push(format!("{what} ({address})")),
            Err(why) => {
                return Check::fail(
                    &name,
                    format!("{what}: {why}"),
                    "check the RPC node (it must answer eth_getCode)",
                );
            }
        }
    }
    if missing.is_empty() {
        return Check::pass(
            &name,
            "Permit2 and the x402 exact and upto proxies are deployed",
        );
    }
    Check::fail(
        &name,
        format!(
            "not deployed on chain {}: {}",
            chain_of(network),
            missing.join(", ")
        ),
        "Permit2 payments cannot settle on this chain: pay its tokens with EIP-3009 if they \
         support it, or use a chain where the canonical Permit2 and x402 proxies are deployed",
    )
}

/// The chain a network is, as the checks name it: its chain id, or its CAIP-2 id for a network
/// that has none.
fn chain_of(network: &Network) -> String {
    network
        .chain_id()
        .map_or_else(|| network.caip2.clone(), |id| id.to_string())
}

/// `future`, bounded by [`TIMEOUT`], its error as text.
async fn bounded<T, E: std::fmt::Display>(
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(TIMEOUT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", TIMEOUT.as_secs())),
    }
}

/// `skew`: this machine's clock minus the latest block's timestamp, in seconds. Within
/// [`CLOCK_PASS`] passes; up to the clock-skew allowance warns; beyond fails (authorizations
/// the server takes as valid could be expired, or not yet valid, on chain).
pub(super) fn clock(network: &Network, skew: i128, allowance: Duration) -> Check {
    let name = format!("clock/{}", network.caip2);
    let off = skew.unsigned_abs();
    let direction = if skew >= 0 {
        "behind this machine's clock (this clock is ahead, or the node is stalled or syncing)"
    } else {
        "ahead of this machine's clock (this clock is behind)"
    };
    let detail = format!("the latest block's timestamp is {off} s {direction}");
    let fix = "sync this machine's clock (NTP: chrony, systemd-timesyncd) and check that the \
               node is synced; validAfter and validBefore are checked against both clocks";
    let pass_limit = u128::from(CLOCK_PASS.as_secs().min(allowance.as_secs()));
    if off <= pass_limit {
        Check::pass(
            &name,
            format!("the latest block is {off} s from this machine's clock"),
        )
    } else if off <= u128::from(allowance.as_secs()) {
        Check::warn(&name, detail, fix)
    } else {
        Check::fail(
            &name,
            format!(
                "{detail}, beyond the {} s clock-skew allowance",
                allowance.as_secs()
            ),
            fix,
        )
    }
}

/// The token has code, and its EIP-712 domain is the one the offer names.
async fn token(reader: &RpcChainReader, network: &Network, asset: &Asset) -> Check {
    let name = format!("token/{}/{}", network.caip2, asset.currency.symbol());
    let what = format!("{} at {}", asset.currency.symbol(), asset.address);
    let Some(token) = asset.address.as_evm() else {
        return Check::skipped(&name, format!("{what}: not an EVM token"));
    };
    match bounded(reader.token_domain(network, token)).await {
        Err(why) => Check::fail(
            &name,
            format!("{what}: {why}"),
            "check the RPC node (it must answer eth_call and eth_getCode)",
        ),
        Ok(None) => Check::fail(
            &name,
            format!(
                "{what}: no contract at this address on chain {}",
                chain_of(network)
            ),
            format!(
                "the offer names a token that is not deployed on this chain: point the RPC at \
                 {} itself (a fork or local chain may lack it), or configure the asset deployed \
                 there (X402ConfigBuilder::asset)",
                network.caip2
            ),
        ),
        Ok(Some(domain)) => compare(&name, &what, network, asset, &domain),
    }
}

/// The token's domain against the offer's `extra` (and its `DOMAIN_SEPARATOR()`, when it has
/// one, against the separator payers sign with).
pub(super) fn compare(
    name: &str,
    what: &str,
    network: &Network,
    asset: &Asset,
    domain: &TokenDomain,
) -> Check {
    let read = if domain.erc5267 {
        "eip712Domain()"
    } else {
        "name() and version()"
    };
    let deployed = format!("name \"{}\" version \"{}\"", domain.name, domain.version);
    let offered = format!(
        "name \"{}\" version \"{}\"",
        asset.eip712_name, asset.eip712_version
    );
    if domain.name != asset.eip712_name || domain.version != asset.eip712_version {
        return Check::fail(
            name,
            format!(
                "{what}: the token's EIP-712 domain ({read}) is {deployed}, the offer's extra \
                 says {offered}: payers would sign for the wrong domain and no payment would \
                 verify"
            ),
            format!(
                "configure the asset with the deployed domain (X402ConfigBuilder::asset with \
                 eip712_name \"{}\", eip712_version \"{}\"), or check that the RPC serves {} \
                 and this is the token you mean",
                domain.name, domain.version, network.caip2
            ),
        );
    }
    let (Some(chain_id), Some(token)) = (network.chain_id(), asset.address.as_evm()) else {
        return Check::skipped(name, format!("{what}: not an EVM token"));
    };
    let expected =
        eip3009::domain(&asset.eip712_name, &asset.eip712_version, chain_id, token).separator();
    match domain.separator {
        Some(separator) if separator != expected => Check::fail(
            name,
            format!(
                "{what}: {deployed} as offered, but DOMAIN_SEPARATOR() is {separator}, not \
                 {expected} (chain {chain_id}): payments signed for the offer would not verify"
            ),
            format!(
                "check that the RPC serves {} and the token is the one meant",
                network.caip2
            ),
        ),
        Some(_) => Check::pass(
            name,
            format!("{what}: {deployed} ({read}), DOMAIN_SEPARATOR matches"),
        ),
        None => Check::pass(name, format!("{what}: {deployed} ({read})")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    fn base_sepolia() -> Network {
        Network::from_caip2("eip155:84532").expect("network")
    }

    #[test]
    fn clock_thresholds() {
        let allowance = Duration::from_secs(60);
        let status = |skew| clock(&base_sepolia(), skew, allowance).status;
        assert_eq!(status(0), Status::Pass);
        assert_eq!(status(30), Status::Pass);
        assert_eq!(status(-30), Status::Pass);
        assert_eq!(status(31), Status::Warn);
        assert_eq!(status(-60), Status::Warn);
        assert_eq!(status(61), Status::Fail);
        assert_eq!(status(-3600), Status::Fail);
        let ahead = clock(&base_sepolia(), -90, allowance);
        assert!(ahead.detail.contains("90 s ahead"), "{ahead:?}");
        assert!(
            ahead.detail.contains("60 s clock-skew allowance"),
            "{ahead:?}"
        );
        // A tighter allowance tightens the pass band too.
        let tight = Duration::from_secs(10);
        assert_eq!(clock(&base_sepolia(), 20, tight).status, Status::Fail);
        assert_eq!(clock(&base_sepolia(), 10, tight).status, Status::Pass);
    }

    fn usdc() -> Asset {
        Asset::builtin(&base_sepolia(), Currency::Usdc).expect("usdc")
    }

    fn domain(name: &str, separator: Option<alloy_primitives::B256>) -> TokenDomain {
        TokenDomain {
            name: name.to_owned(),
            version: "2".to_owned(),
            erc5267: false,
            separator,
        }
    }

    #[test]
    fn domains_are_compared_with_the_offer() {
        let network = base_sepolia();
        let asset = usdc();
        let right =
            eip3009::domain("USDC", "2", 84532, asset.address.as_evm().expect("EVM")).separator();
        let check = |d: &TokenDomain| compare("token", "USDC", &network, &asset, d);
        assert_eq!(check(&domain("USDC", Some(right))).status, Status::Pass);
        assert_eq!(check(&domain("USDC", None)).status, Status::Pass);
        let renamed = check(&domain("USD Coin", Some(right)));
        assert_eq!(renamed.status, Status::Fail);
        assert!(renamed.detail.contains("\"USD Coin\""), "{renamed:?}");
        let other_chain =
            eip3009::domain("USDC", "2", 8453, asset.address.as_evm().expect("EVM")).separator();
        let wrong = check(&domain("USDC", Some(other_chain)));
        assert_eq!(wrong.status, Status::Fail);
        assert!(wrong.detail.contains("DOMAIN_SEPARATOR()"), "{wrong:?}");
    }
}
