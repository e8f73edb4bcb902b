//! `payTo` and `config`: the recipient, and the configuration read as `X402::from_env` reads it
//! (`X402Config::from_lookup`, and `RpcChainReader::from_lookup` for the RPC URLs).

use alloy_primitives::Address;
use x402_runtime::X402Config;
use x402_runtime::schemes::exact_evm::chain::RpcChainReader;

use super::Check;

const PAY_TO: &str = "X402_PAY_TO";

/// Stands in for a recipient that is missing or not an address, so that the other settings
/// are still checked (reported as such; no check uses the recipient).
const STAND_IN: &str = "0x000000000000000000000000000000000000dEaD";

/// The `payTo` check, and the recipient the other settings are read with.
#[derive(Clone, Debug)]
pub(super) struct PayTo {
    pub(super) check: Check,
    /// `X402_PAY_TO` checksummed, when it is an address (right or wrong case).
    corrected: Option<String>,
}

/// The deployment as the server would read it.
pub(super) struct Deployment {
    pub(super) config: X402Config,
    /// The RPC URLs, as `X402::from_env` gives the paywall its chain reader (`None`: no
    /// network has one).
    pub(super) reader: Option<RpcChainReader>,
}

/// The `config` check and, when it passed, the deployment.
pub(super) struct Read {
    pub(super) check: Check,
    pub(super) deployment: Option<Deployment>,
}

/// Checks `X402_PAY_TO`: set, an address, EIP-55 checksummed (the fix names the checksummed
/// form when only the case is wrong), not the zero address.
pub(super) fn pay_to(lookup: &dyn Fn(&str) -> Option<String>) -> PayTo {
    let name = "payTo";
    let text = lookup(PAY_TO)
        .map(|t| t.trim().to_owned())
        .unwrap_or_default();
    if text.is_empty() {
        return PayTo {
            check: Check::fail(
                name,
                "X402_PAY_TO is not set",
                "set X402_PAY_TO to the EIP-55 checksummed address that receives payments",
            ),
            corrected: None,
        };
    }
    let Ok(address) = text.parse::<Address>() else {
        return PayTo {
            check: Check::fail(
                name,
                format!("X402_PAY_TO `{text}` is not an address (0x and 40 hex digits)"),
                "set X402_PAY_TO to the address that receives payments, copied from its wallet",
            ),
            corrected: None,
        };
    };
    let checksummed = address.to_checksum(None);
    if address == Address::ZERO {
        return PayTo {
            check: Check::fail(
                name,
                "X402_PAY_TO is the zero address: payments to it are burnt",
                "set X402_PAY_TO to the address that receives payments",
            ),
            corrected: None,
        };
    }
    let check = if Address::parse_checksummed(&text, None).is_err() {
        Check::fail(
            name,
            format!("X402_PAY_TO `{text}` is not EIP-55 checksummed (the letters' case is wrong)"),
            format!(
                "copy the address exactly as its wallet shows it; if {checksummed} is the address \
                 that receives payments, set X402_PAY_TO={checksummed}"
            ),
        )
    } else {
        Check::pass(name, format!("{checksummed} (EIP-55 checksummed)"))
    };
    PayTo {
        check,
        corrected: Some(checksummed),
    }
}

/// Reads the configuration through the runtime (`X402Config::from_lookup`, then the RPC URLs
/// through `RpcChainReader::from_lookup`), with the recipient as `payTo` corrected it.
pub(super) fn read(lookup: &dyn Fn(&str) -> Option<String>, pay_to: &PayTo) -> Read {
    let name = "config";
    let recipient = pay_to.corrected.as_deref().unwrap_or(STAND_IN).to_owned();
    let note = match (&pay_to.corrected, pay_to.check.status) {
        (_, super::Status::Pass) => "",
        (Some(_), _) => " (read with X402_PAY_TO as payTo corrects it)",
        (None, _) => " (read with a stand-in recipient, since X402_PAY_TO is unusable)",
    };
    let read = |variable: &str| {
        if variable == PAY_TO {
            Some(recipient.clone())
        } else {
            lookup(variable)
        }
    };
    let fix = "correct the variable the message names: X402::from_env refuses to start with it";
    let config = match X402Config::from_lookup(read) {
        Ok(config) => config,
        Err(e) => {
            return Read {
                check: Check::fail(name, e.to_string(), fix),
                deployment: None,
            };
        }
    };
    let reader = match RpcChainReader::from_lookup(config.networks(), lookup) {
        Ok(reader) => reader,
        Err(e) => {
            return Read {
                check: Check::fail(name, e.to_string(), fix),
                deployment: None,
            };
        }
    };
    let mut detail = summary(&config);
    detail.push_str(note);
    Read {
        check: Check::pass(name, detail),
        deployment: Some(Deployment { config, reader }),
    }
}

/// `networks eip155:84532; facilitator https://x402.org/…; record x402-payments.redb`.
fn summary(config: &X402Config) -> String {
    let networks: Vec<&str> = config.networks().iter().map(|n| n.caip2.as_str()).collect();
    let record = config
        .store_path()
        .map_or_else(|| "memory".to_owned(), |p| p.display().to_string());
    let mut text = format!(
        "networks {}; facilitator {}; record {record}",
        networks.join(", "),
        config.facilitator_url()
    );
    let prices = config.prices().count();
    if prices > 0 {
        text.push_str(&format!(
            "; {prices} price{} set (checked against the routes at startup)",
            if prices == 1 { "" } else { "s" }
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    const RIGHT: &str = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn pay_to_names_the_checksummed_form() {
        let right = pay_to(&env(&[(PAY_TO, RIGHT)]));
        assert_eq!(right.check.status, Status::Pass, "{:?}", right.check);
        let lower = pay_to(&env(&[(PAY_TO, &RIGHT.to_lowercase())]));
        assert_eq!(lower.check.status, Status::Fail);
        let fix = lower.check.fix.expect("a fix");
        assert!(fix.contains(&format!("X402_PAY_TO={RIGHT}")), "{fix}");
        assert_eq!(lower.corrected.as_deref(), Some(RIGHT));
        for (text, says) in [
            ("", "not set"),
            ("0x1234", "not an address"),
            ("0x0000000000000000000000000000000000000000", "zero address"),
        ] {
            let check = pay_to(&env(&[(PAY_TO, text)])).check;
            assert_eq!(check.status, Status::Fail, "{text}");
            assert!(check.detail.contains(says), "{text}: {}", check.detail);
        }
    }

    #[test]
    fn the_rest_is_read_with_the_corrected_recipient() {
        let vars = env(&[
            (PAY_TO, &RIGHT.to_lowercase()),
            ("X402_NETWORK", "eip155:8453"),
        ]);
        let read = read(&vars, &pay_to(&vars));
        assert_eq!(read.check.status, Status::Pass, "{:?}", read.check);
        assert!(
            read.check.detail.contains("corrects it"),
            "{}",
            read.check.detail
        );
        let deployment = read.deployment.expect("deployment");
        assert_eq!(deployment.config.networks()[0].caip2, "eip155:8453");
        assert!(deployment.reader.is_none());

        for unusable in ["", "0x0000000000000000000000000000000000000000", "nope"] {
            let vars = env(&[(PAY_TO, unusable)]);
            let read = super::read(&vars, &pay_to(&vars));
            assert_eq!(
                read.check.status,
                Status::Pass,
                "{unusable}: {:?}",
                read.check
            );
            assert!(
                read.check.detail.contains("stand-in"),
                "{}",
                read.check.detail
            );
        }

        let vars = env(&[(PAY_TO, RIGHT), ("X402_NETWORK", "base")]);
        let bad = super::read(&vars, &pay_to(&vars));
        assert_eq!(bad.check.status, Status::Fail);
        assert!(
            bad.check.detail.contains("eip155:<chain id>"),
            "{}",
            bad.check.detail
        );
        assert!(bad.deployment.is_none());

        let vars = env(&[(PAY_TO, RIGHT), ("X402_RPC_URL", "not a url")]);
        let bad = super::read(&vars, &pay_to(&vars));
        assert_eq!(bad.check.status, Status::Fail);
        assert!(
            bad.check.detail.contains("not a valid URL"),
            "{}",
            bad.check.detail
        );
    }
}
