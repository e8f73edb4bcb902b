//! Reading a 402 challenge ([`Challenge`]: the v2 `PAYMENT-REQUIRED` header, or a v1 body) and
//! choosing the offer to pay: each offer is resolved to a token the [`Policy`] allows
//! ([`Candidate`]), and the payable ones are ranked by its preferences.

use alloy_primitives::U256;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use http::HeaderMap;
use serde_json::{Map, Value};

use crate::network::{AccountId, Asset, Network};
use crate::proto::header::parse_uint;
use crate::proto::{PAYMENT_REQUIRED, PaymentRequired, PaymentRequiredV1};
use crate::schemes::exact_evm::payload::parse_address;

use super::policy::Policy;
use super::signer::{Method, PaymentSigner, SignError, SignedPayment};

/// An offer of a v2 or v1 challenge, resolved to a known token.
pub(super) struct Candidate {
    /// The offer's position in the challenge.
    pub(super) index: usize,
    pub(super) network: Network,
    pub(super) asset: Asset,
    /// The price in the token's atomic units (the maximum, for `upto`).
    pub(super) amount: U256,
    pub(super) pay_to: AccountId,
}

/// A challenge as read from a 402.
pub(super) enum Challenge {
    V2(PaymentRequired),
    V1(PaymentRequiredV1),
}

impl Challenge {
    /// Reads the v2 `PAYMENT-REQUIRED` header, or else (no header, or an unreadable one) a v1
    /// body.
    pub(super) fn read(headers: &HeaderMap, body: &[u8]) -> Result<Challenge, String> {
        let v2 = headers.get(PAYMENT_REQUIRED).map(|value| {
            let text = value
                .to_str()
                .map_err(|_| "PAYMENT-REQUIRED is not ASCII".to_owned())?;
            let json = decode_base64(text).ok_or("PAYMENT-REQUIRED is not base64")?;
            serde_json::from_slice::<PaymentRequired>(&json)
                .map_err(|e| format!("PAYMENT-REQUIRED is not a challenge: {e}"))
        });
        let v2_error = match v2 {
            Some(Ok(challenge)) => return Ok(Challenge::V2(challenge)),
            Some(Err(why)) => Some(why),
            None => None,
        };
        match serde_json::from_slice::<PaymentRequiredV1>(body) {
            Ok(v1) if v1.x402_version == 1 => Ok(Challenge::V1(v1)),
            Ok(v1) => Err(format!("unknown x402Version {}", v1.x402_version)),
            Err(_) => Err(v2_error
                .unwrap_or_else(|| "no PAYMENT-REQUIRED header and no x402 v1 body".to_owned())),
        }
    }

    /// The offers `policy` allows, most preferred first (its network order, then its currency
    /// order, then the cheapest: an `upto` offer ranks by its maximum), and why each other offer
    /// cannot be paid. `svm`: the signer can pay on Solana.
    pub(super) fn candidates(&self, policy: &Policy, svm: bool) -> (Vec<Candidate>, Vec<String>) {
        let mut reasons = Vec::new();
        let mut candidates = Vec::new();
        let names = self.network_names();
        for (index, (offer, name)) in self.offers().into_iter().zip(&names).enumerate() {
            match resolve(policy, index, &offer, svm) {
                Ok(candidate) => candidates.push(candidate),
                Err(why) => reasons.push(format!("offer on {name}: {why}")),
            }
        }
        let rank = |c: &Candidate| {
            let network = policy
                .networks
                .iter()
                .position(|n| *n == c.network)
                .unwrap_or(0);
            let currency = policy
                .currencies
                .iter()
                .position(|x| *x == c.asset.currency)
                .unwrap_or(usize::MAX);
            (network, currency, c.amount)
        };
        candidates.sort_by_key(rank);
        (candidates, reasons)
    }

    /// The fields of each offer a choice depends on, in the server's order.
    fn offers(&self) -> Vec<OfferFields<'_>> {
        match self {
            Challenge::V2(c) => c
                .accepts
                .iter()
                .map(|o| OfferFields {
                    scheme: &o.scheme,
                    network: Network::from_caip2(&o.network),
                    amount: &o.amount,
                    asset: &o.asset,
                    pay_to: &o.pay_to,
                    extra: o.extra.as_ref(),
                    v1: false,
                })
                .collect(),
            Challenge::V1(c) => c
                .accepts
                .iter()
                .map(|o| OfferFields {
                    scheme: &o.scheme,
                    network: Network::from_v1_name(&o.network),
                    amount: &o.max_amount_required,
                    asset: &o.asset,
                    pay_to: &o.pay_to,
                    extra: o.extra.as_ref(),
                    v1: true,
                })
                .collect(),
        }
    }

    fn network_names(&self) -> Vec<String> {
        match self {
            Challenge::V2(c) => c.accepts.iter().map(|o| o.network.clone()).collect(),
            Challenge::V1(c) => c.accepts.iter().map(|o| o.network.clone()).collect(),
        }
    }

    /// The Solana offer at `index`, as a payment transaction reads it.
    #[cfg(feature = "svm")]
    pub(super) fn svm_offer(&self, index: usize) -> Option<super::svm::SvmOffer<'_>> {
        match self {
            Challenge::V2(c) => c.accepts.get(index).map(|o| super::svm::SvmOffer {
                scheme: &o.scheme,
                amount: &o.amount,
                asset: &o.asset,
                pay_to: &o.pay_to,
                max_timeout_seconds: o.max_timeout_seconds,
                extra: o.extra.as_ref(),
            }),
            Challenge::V1(c) => c.accepts.get(index).map(|o| super::svm::SvmOffer {
                scheme: &o.scheme,
                amount: &o.max_amount_required,
                asset: &o.asset,
                pay_to: &o.pay_to,
                max_timeout_seconds: o.max_timeout_seconds,
                extra: o.extra.as_ref(),
            }),
        }
    }

    /// Signs the Solana offer at `index` on the chain `facts`.
    #[cfg(feature = "svm")]
    pub(super) fn sign_svm(
        &self,
        signer: &PaymentSigner,
        index: usize,
        facts: &super::svm::SvmChainFacts,
    ) -> Result<SignedPayment, SignError> {
        match self {
            Challenge::V2(c) => signer.sign_svm_v2(c, index, facts),
            Challenge::V1(c) => signer.sign_svm_v1(&c.accepts[index], facts),
        }
    }

    /// Signs the offer at `index`.
    pub(super) fn sign(
        &self,
        signer: &PaymentSigner,
        index: usize,
    ) -> Result<SignedPayment, SignError> {
        match self {
            Challenge::V2(c) => signer.sign_v2(c, index),
            Challenge::V1(c) => signer.sign_v1(&c.accepts[index]),
        }
    }
}

/// What a choice reads of one v2 or v1 offer.
struct OfferFields<'a> {
    scheme: &'a str,
    network: Option<Network>,
    /// The price, or the maximum of an `upto` offer.
    amount: &'a str,
    asset: &'a str,
    pay_to: &'a str,
    extra: Option<&'a Map<String, Value>>,
    v1: bool,
}

/// Resolves one offer to a token `policy` pays in, or says why not. `svm`: the signer can pay
/// on Solana.
fn resolve(
    policy: &Policy,
    index: usize,
    offer: &OfferFields<'_>,
    svm: bool,
) -> Result<Candidate, String> {
    let (amount, asset, pay_to) = (offer.amount, offer.asset, offer.pay_to);
    let network = offer
        .network
        .clone()
        .ok_or("not a network this client knows")?;
    if network.is_evm() {
        Method::of(offer.scheme, offer.extra, offer.v1).map_err(|e| e.to_string())?;
    } else {
        payable_on_solana(offer.scheme, svm)?;
    }
    if !policy.networks.is_empty() && !policy.networks.contains(&network) {
        return Err("not one of the allowed networks".to_owned());
    }
    let address = parse_account(&network, asset)
        .ok_or_else(|| format!("asset `{asset}` is not an address"))?;
    let asset = policy
        .assets
        .iter()
        .find(|a| a.address == address && a.network == network.caip2)
        .cloned()
        .or_else(|| Asset::find(&network, address))
        .ok_or_else(|| format!("unknown token {address}"))?;
    if !policy.currencies.contains(&asset.currency) {
        return Err(format!("{} is not an allowed currency", asset.currency));
    }
    let amount =
        parse_uint(amount, "amount").map_err(|_| format!("amount `{amount}` is not an integer"))?;
    let pay_to = parse_account(&network, pay_to)
        .ok_or_else(|| format!("payTo `{pay_to}` is not an address"))?;
    Ok(Candidate {
        index,
        network,
        asset,
        amount,
        pay_to,
    })
}

/// An account of `network`'s family written as that family writes it.
fn parse_account(network: &Network, text: &str) -> Option<AccountId> {
    if network.is_evm() {
        return parse_address(text, "account").ok().map(AccountId::Evm);
    }
    text.parse::<crate::network::SvmAddress>()
        .ok()
        .map(AccountId::Svm)
}

/// Whether an offer of `scheme` on Solana can be paid; `svm`: the signer has a Solana key.
fn payable_on_solana(scheme: &str, svm: bool) -> Result<(), String> {
    if cfg!(not(feature = "svm")) {
        return Err("not an EVM network (paying on Solana needs the `svm` feature)".to_owned());
    }
    if !svm {
        return Err(
            "a Solana network, and this client has no Solana key (X402_SVM_PAYER_KEY)".to_owned(),
        );
    }
    if scheme != crate::schemes::exact_evm::EXACT {
        return Err(format!(
            "cannot pay the `{scheme}` scheme on Solana (only `exact`)"
        ));
    }
    Ok(())
}

/// Accepts padded or unpadded standard base64 (servers differ).
pub(super) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::price::Currency;

    /// A Solana offer beside an EVM one: the EVM one is the candidate, the Solana one is given
    /// a reason (this client pays on EVM networks only).
    #[test]
    fn an_offer_on_solana_is_not_a_candidate() {
        let challenge: PaymentRequired = serde_json::from_value(serde_json::json!({
            "x402Version": 2,
            "resource": {"url": "http://127.0.0.1:9/paid"},
            "accepts": [
                {"scheme": "exact", "network": crate::network::SOLANA_DEVNET, "amount": "1000",
                 "asset": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
                 "payTo": "EdmxWPmx2WH6WgFfTdu9xfkYf3k1g5wD1zccTVySEEh1", "maxTimeoutSeconds": 60,
                 "extra": {"feePayer": "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse"}},
                {"scheme": "exact", "network": "eip155:84532", "amount": "1000",
                 "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                 "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "maxTimeoutSeconds": 60,
                 "extra": {"name": "USDC", "version": "2"}}
            ]
        }))
        .expect("a challenge");
        let policy = Policy {
            max_per_request: std::collections::HashMap::new(),
            budget: std::collections::HashMap::new(),
            networks: Vec::new(),
            currencies: vec![Currency::Usdc],
            assets: Vec::new(),
            resend_attempts: 0,
            max_wait: None,
            #[cfg(feature = "svm")]
            svm_rpc_url: None,
        };
        let (candidates, reasons) = Challenge::V2(challenge).candidates(&policy, false);
        let chosen: Vec<_> = candidates
            .iter()
            .map(|c| c.network.caip2.as_str())
            .collect();
        assert_eq!(chosen, ["eip155:84532"]);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("Solana"), "{reasons:?}");
    }

    /// With a Solana key, the Solana offer is a candidate too, its mint resolved to the built-in
    /// devnet USDC; a network preference puts it first.
    #[cfg(feature = "svm")]
    #[test]
    fn with_a_solana_key_an_offer_on_solana_is_a_candidate() {
        let challenge: PaymentRequired = serde_json::from_value(serde_json::json!({
            "x402Version": 2,
            "resource": {"url": "http://127.0.0.1:9/paid"},
            "accepts": [
                {"scheme": "exact", "network": "eip155:84532", "amount": "1000",
                 "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                 "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "maxTimeoutSeconds": 60,
                 "extra": {"name": "USDC", "version": "2"}},
                {"scheme": "exact", "network": crate::network::SOLANA_DEVNET, "amount": "1000",
                 "asset": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
                 "payTo": "EdmxWPmx2WH6WgFfTdu9xfkYf3k1g5wD1zccTVySEEh1", "maxTimeoutSeconds": 60,
                 "extra": {"feePayer": "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse"}},
                {"scheme": "upto", "network": crate::network::SOLANA_DEVNET, "amount": "1000",
                 "asset": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
                 "payTo": "EdmxWPmx2WH6WgFfTdu9xfkYf3k1g5wD1zccTVySEEh1", "maxTimeoutSeconds": 60}
            ]
        }))
        .expect("a challenge");
        let devnet = Network::from_caip2(crate::network::SOLANA_DEVNET).expect("devnet");
        let policy = Policy {
            max_per_request: std::collections::HashMap::new(),
            budget: std::collections::HashMap::new(),
            networks: vec![devnet.clone(), Network::from_chain_id(84532)],
            currencies: vec![Currency::Usdc],
            assets: Vec::new(),
            resend_attempts: 0,
            max_wait: None,
            svm_rpc_url: None,
        };
        let (candidates, reasons) = Challenge::V2(challenge).candidates(&policy, true);
        let chosen: Vec<_> = candidates.iter().map(|c| c.index).collect();
        assert_eq!(chosen, [1, 0], "Solana first, as preferred");
        assert_eq!(candidates[0].network, devnet);
        assert_eq!(candidates[0].asset.decimals, 6);
        assert_eq!(
            candidates[0].pay_to.to_string(),
            "EdmxWPmx2WH6WgFfTdu9xfkYf3k1g5wD1zccTVySEEh1"
        );
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("only `exact`"), "{reasons:?}");
    }
}
