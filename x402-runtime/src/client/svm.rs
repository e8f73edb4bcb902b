//! Paying on Solana (`exact` SVM): the payer's ed25519 key ([`SvmKey`], from
//! [`SVM_PAYER_KEY_ENV`] or a keypair file), the chain facts a payment transaction needs
//! ([`SvmChainFacts`]: a recent blockhash, the mint's decimals and token program, read from a
//! Solana node when the offer does not carry them), and the signed payment
//! ([`SvmSignedTransfer`]), built by [`exact_svm::build`](crate::schemes::exact_svm::build).

use std::path::Path;

use alloy_primitives::{B256, U256};
use serde_json::{Map, Value};

use crate::base::{ConfigError, unix_now};
use crate::network::{AccountId, Asset, Network, SOLANA_DEVNET, SOLANA_MAINNET, SvmAddress};
use crate::schemes::exact_svm::build::{self, SvmTransfer};
use crate::schemes::exact_svm::program::{self, Key, parse_key};
use crate::schemes::exact_svm::rpc::{DEVNET_RPC_URL, MAINNET_RPC_URL, SvmRpc};
use crate::schemes::exact_svm::{SvmTransaction, rules};
use crate::schemes::{ReplayKey, SchemePayload};

use crate::proto::{PAYMENT_SIGNATURE, PaymentRequired, PaymentRequirementsV1, X_PAYMENT};
use crate::schemes::exact_evm::EXACT;

use super::signer::{
    PaymentSigner, SignError, SignedAuthorization, SignedPayment, add_payment_identifier,
    sign_error,
};

/// Environment variable holding the Solana payer's key: base58 of the 64-byte keypair (seed,
/// then public key, as wallets export it) or of the 32-byte seed, or the JSON array of 64 bytes
/// of a Solana CLI keypair file.
pub const SVM_PAYER_KEY_ENV: &str = "X402_SVM_PAYER_KEY";
/// Environment variable naming a Solana keypair file (the JSON array of 64 bytes written by
/// `solana-keygen`), used when [`SVM_PAYER_KEY_ENV`] is not set.
pub const SVM_PAYER_KEYPAIR_ENV: &str = "X402_SVM_PAYER_KEYPAIR";
/// Environment variable naming the Solana JSON-RPC node the client reads blockhashes and mints
/// from (default: the cluster's public endpoint).
pub const SVM_RPC_URL_ENV: &str = "X402_SVM_RPC_URL";

/// A signed Solana payment is counted live this long after signing, at least: its blockhash
/// lets it land for 150 blocks (about 60 to 90 seconds), counted here with a wide margin.
const SVM_VALIDITY_SECS: u64 = 180;

/// The Solana payer's ed25519 key. `Debug` shows the address only.
#[derive(Clone)]
pub(super) struct SvmKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for SvmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SvmKey").field(&self.address()).finish()
    }
}

impl SvmKey {
    /// Reads a key: base58 of 64 bytes (seed, then the public key, which must be the seed's) or
    /// of a 32-byte seed, or a JSON array of 64 bytes. Errors never quote the text.
    pub(super) fn parse(text: &str) -> Result<SvmKey, ConfigError> {
        let text = text.trim();
        let bytes: Vec<u8> = if text.starts_with('[') {
            serde_json::from_str(text).map_err(|_| {
                ConfigError::new("the Solana payer key is not a JSON array of 64 bytes")
            })?
        } else {
            bs58::decode(text).into_vec().map_err(|_| {
                ConfigError::new(
                    "the Solana payer key is neither base58 nor a JSON array of 64 bytes",
                )
            })?
        };
        let key = match bytes.len() {
            32 | 64 => {
                let mut seed = [0u8; 32];
                seed.copy_from_slice(&bytes[..32]);
                ed25519_dalek::SigningKey::from_bytes(&seed)
            }
            n => {
                return Err(ConfigError::new(format!(
                    "the Solana payer key has {n} bytes; expected a 64-byte keypair or a 32-byte \
                     seed"
                )));
            }
        };
        if bytes.len() == 64 && bytes[32..] != key.verifying_key().to_bytes() {
            return Err(ConfigError::new(
                "the Solana payer keypair's public half is not its seed's public key",
            ));
        }
        Ok(SvmKey(key))
    }

    /// Reads a keypair file (a JSON array of 64 bytes, or base58 text).
    pub(super) fn from_file(path: &Path) -> Result<SvmKey, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(format!(
                "cannot read the Solana keypair file {}: {}",
                path.display(),
                e.kind()
            ))
        })?;
        SvmKey::parse(&text).map_err(|e| ConfigError::new(format!("{}: {}", path.display(), e)))
    }

    /// The key configured in the environment, if any: [`SVM_PAYER_KEY_ENV`], else
    /// [`SVM_PAYER_KEYPAIR_ENV`].
    pub(super) fn from_env() -> Result<Option<SvmKey>, ConfigError> {
        if let Some(key) = std::env::var(SVM_PAYER_KEY_ENV)
            .ok()
            .filter(|k| !k.trim().is_empty())
        {
            return SvmKey::parse(&key)
                .map(Some)
                .map_err(|e| ConfigError::new(format!("{SVM_PAYER_KEY_ENV}: {}", e)));
        }
        match std::env::var_os(SVM_PAYER_KEYPAIR_ENV).filter(|p| !p.is_empty()) {
            Some(path) => SvmKey::from_file(Path::new(&path))
                .map(Some)
                .map_err(|e| ConfigError::new(format!("{SVM_PAYER_KEYPAIR_ENV}: {}", e))),
            None => Ok(None),
        }
    }

    /// The paying address.
    pub(super) fn address(&self) -> SvmAddress {
        SvmAddress(self.0.verifying_key().to_bytes())
    }
}

impl PaymentSigner {
    /// The same signer, paying on Solana too with `key`: base58 of the 64-byte keypair (seed,
    /// then public key; a public half that is not the seed's is refused) or of the 32-byte seed,
    /// or a JSON array of 64 bytes (a Solana CLI keypair file's content).
    pub fn with_svm_key(mut self, key: &str) -> Result<Self, ConfigError> {
        self.svm = Some(SvmKey::parse(key)?);
        Ok(self)
    }

    /// The same signer, paying on Solana too with the key of a keypair file (as written by
    /// `solana-keygen`: a JSON array of 64 bytes).
    pub fn with_svm_keypair_file(mut self, path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        self.svm = Some(SvmKey::from_file(path.as_ref())?);
        Ok(self)
    }

    /// The same signer, paying on Solana too with the key configured in the environment
    /// ([`SVM_PAYER_KEY_ENV`], else the keypair file named by [`SVM_PAYER_KEYPAIR_ENV`]), when
    /// one is set; unchanged otherwise.
    pub fn with_svm_from_env(mut self) -> Result<Self, ConfigError> {
        if let Some(key) = SvmKey::from_env()? {
            self.svm = Some(key);
        }
        Ok(self)
    }

    /// The Solana paying address, when the signer has a Solana key.
    pub fn svm_address(&self) -> Option<SvmAddress> {
        self.svm.as_ref().map(SvmKey::address)
    }

    fn svm_key(&self) -> Result<&SvmKey, SignError> {
        self.svm.as_ref().ok_or_else(|| {
            sign_error(format!(
                "cannot pay on Solana without a Solana key (set {SVM_PAYER_KEY_ENV})"
            ))
        })
    }

    /// Signs the Solana offer `challenge.accepts[index]` into a v2 payment (`accepted` is the
    /// offer verbatim): a transaction built on `facts`, as the official client builds it.
    /// Extensions are echoed as by [`sign_v2`](Self::sign_v2).
    pub fn sign_svm_v2(
        &self,
        challenge: &PaymentRequired,
        index: usize,
        facts: &SvmChainFacts,
    ) -> Result<SignedPayment, SignError> {
        let offer = challenge
            .accepts
            .get(index)
            .ok_or_else(|| sign_error(format!("the challenge has no offer #{index}")))?;
        let network = svm_network(Network::from_caip2(&offer.network), &offer.network)?;
        let fields = SvmOffer {
            scheme: &offer.scheme,
            amount: &offer.amount,
            asset: &offer.asset,
            pay_to: &offer.pay_to,
            max_timeout_seconds: offer.max_timeout_seconds,
            extra: offer.extra.as_ref(),
        };
        let (signed, payload) = sign(self.svm_key()?, &fields, facts)?;
        let mut extensions = challenge.extensions.clone();
        let payment_id = extensions.as_mut().and_then(add_payment_identifier);
        let mut payment = serde_json::json!({
            "x402Version": 2,
            "resource": challenge.resource,
            "accepted": offer,
            "payload": payload,
        });
        if let Some(extensions) = extensions {
            payment["extensions"] = Value::Object(extensions);
        }
        Ok(svm_payment(
            PAYMENT_SIGNATURE,
            &payment,
            network,
            signed,
            payment_id,
        ))
    }

    /// Signs a v1 Solana offer (`solana-devnet`, `solana`) into an `X-PAYMENT` payment.
    pub fn sign_svm_v1(
        &self,
        offer: &PaymentRequirementsV1,
        facts: &SvmChainFacts,
    ) -> Result<SignedPayment, SignError> {
        let network = svm_network(Network::from_v1_name(&offer.network), &offer.network)?;
        let fields = SvmOffer {
            scheme: &offer.scheme,
            amount: &offer.max_amount_required,
            asset: &offer.asset,
            pay_to: &offer.pay_to,
            max_timeout_seconds: offer.max_timeout_seconds,
            extra: offer.extra.as_ref(),
        };
        let (signed, payload) = sign(self.svm_key()?, &fields, facts)?;
        let payment = serde_json::json!({
            "x402Version": 1,
            "scheme": offer.scheme,
            "network": offer.network,
            "payload": payload,
        });
        Ok(svm_payment(X_PAYMENT, &payment, network, signed, None))
    }
}

/// A Solana network, or why not.
fn svm_network(network: Option<Network>, name: &str) -> Result<Network, SignError> {
    network.filter(|n| !n.is_evm()).ok_or_else(|| {
        sign_error(format!(
            "`{name}` is not a Solana network this client knows"
        ))
    })
}

/// The [`SignedPayment`] of a Solana `payment` envelope.
fn svm_payment(
    header: &'static str,
    payment: &Value,
    network: Network,
    signed: SvmSignedTransfer,
    payment_id: Option<String>,
) -> SignedPayment {
    use base64::Engine as _;
    let mint = signed
        .transaction
        .instructions
        .get(2)
        .and_then(|ix| ix.accounts.get(1));
    SignedPayment {
        header,
        value: base64::engine::general_purpose::STANDARD.encode(payment.to_string()),
        scheme: EXACT,
        network: network.caip2,
        asset: AccountId::Svm(SvmAddress(mint.copied().unwrap_or_default())),
        authorization: SignedAuthorization::Svm(signed),
        payment_id,
    }
}

/// What a Solana payment transaction is built on besides the offer: read from the chain (or the
/// offer's `extra.recentBlockhash`) before signing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SvmChainFacts {
    /// A recent blockhash (the transaction lands only while it is recent).
    pub recent_blockhash: [u8; 32],
    /// The mint's decimals.
    pub decimals: u8,
    /// The program that owns the mint (SPL Token or Token-2022).
    pub token_program: [u8; 32],
}

/// A signed Solana payment: the partially signed transaction and what it pays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SvmSignedTransfer {
    /// The transaction, signed by the payer (the fee payer's slot empty).
    pub transaction: SvmTransaction,
    /// The payer (the transfer's authority).
    pub payer: SvmAddress,
    /// The amount, in the mint's atomic units.
    pub amount: u64,
    /// The unix time from which this client counts the payment as unable to land (its
    /// blockhash has expired).
    pub deadline: u64,
}

impl SchemePayload for SvmSignedTransfer {
    fn payer(&self) -> AccountId {
        AccountId::Svm(self.payer)
    }

    fn amount(&self) -> U256 {
        U256::from(self.amount)
    }

    fn deadline(&self) -> u64 {
        self.deadline
    }

    /// The payment's identity is the SHA-256 of its message bytes.
    fn replay_key(&self, network: &str, asset: AccountId) -> ReplayKey {
        ReplayKey {
            network: network.to_owned(),
            asset,
            from: self.payer(),
            nonce: B256::from(self.transaction.message_hash()),
        }
    }

    fn signed(&self) -> Vec<u8> {
        self.transaction.message_bytes().to_vec()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The fields of a Solana offer a payment is built from.
pub(super) struct SvmOffer<'a> {
    pub(super) scheme: &'a str,
    pub(super) amount: &'a str,
    pub(super) asset: &'a str,
    pub(super) pay_to: &'a str,
    pub(super) max_timeout_seconds: u64,
    pub(super) extra: Option<&'a Map<String, Value>>,
}

impl SvmOffer<'_> {
    /// A field of `extra` as text.
    fn extra(&self, name: &str) -> Option<&str> {
        self.extra.and_then(|e| e.get(name)).and_then(Value::as_str)
    }

    /// The offer's `extra.recentBlockhash`, when it is 32 bytes of base58.
    fn recent_blockhash(&self) -> Option<Key> {
        self.extra("recentBlockhash").and_then(parse_key)
    }
}

/// Signs `offer` with `key` on the chain `facts`: the transaction and the payload object.
pub(super) fn sign(
    key: &SvmKey,
    offer: &SvmOffer<'_>,
    facts: &SvmChainFacts,
) -> Result<(SvmSignedTransfer, Value), SignError> {
    let malformed = |what: &str| sign_error(format!("malformed Solana offer: {what}"));
    if offer.scheme != EXACT {
        return Err(sign_error(format!(
            "cannot pay the `{}` scheme on Solana (only `exact`)",
            offer.scheme
        )));
    }
    let account = |text: &str, field: &str| {
        parse_key(text).ok_or_else(|| malformed(&format!("`{field}` is not a Solana address")))
    };
    let fee_payer = offer
        .extra("feePayer")
        .ok_or_else(|| malformed("no `extra.feePayer`"))?;
    let memo = match offer.extra.and_then(|e| e.get("memo")) {
        None | Some(Value::Null) => None,
        Some(Value::String(memo)) => Some(memo.clone()),
        Some(_) => return Err(malformed("`extra.memo` is not text")),
    };
    let transfer = SvmTransfer {
        fee_payer: account(fee_payer, "extra.feePayer")?,
        mint: account(offer.asset, "asset")?,
        pay_to: account(offer.pay_to, "payTo")?,
        amount: offer
            .amount
            .parse()
            .map_err(|_| malformed("`amount` is not a 64-bit integer"))?,
        decimals: facts.decimals,
        token_program: facts.token_program,
        recent_blockhash: facts.recent_blockhash,
        memo,
    };
    let transaction = build::build(&transfer, &key.0).map_err(|e| sign_error(e.to_string()))?;
    let payload = build::payload(&transaction);
    let signed = SvmSignedTransfer {
        transaction,
        payer: key.address(),
        amount: transfer.amount,
        deadline: unix_now().saturating_add(offer.max_timeout_seconds.max(SVM_VALIDITY_SECS)),
    };
    Ok((signed, payload))
}

/// The JSON-RPC node of `network`: `url` when set, else the cluster's public endpoint.
pub(super) fn rpc_for(network: &Network, url: Option<&str>) -> Result<SvmRpc, SignError> {
    let url = match (url, network.caip2.as_str()) {
        (Some(url), _) => url,
        (None, SOLANA_MAINNET) => MAINNET_RPC_URL,
        (None, SOLANA_DEVNET) => DEVNET_RPC_URL,
        (None, other) => {
            return Err(sign_error(format!(
                "no Solana RPC node known for `{other}`: set {SVM_RPC_URL_ENV}"
            )));
        }
    };
    SvmRpc::new(url).map_err(|e| sign_error(e.to_string()))
}

/// Reads what a payment of `offer` in `asset` needs from the chain: the offer's blockhash or
/// the node's latest, and the decimals and token program (known for the built-in USDC mints,
/// else read from the mint account, whose decimals must be the asset's).
pub(super) async fn chain_facts(
    rpc: &SvmRpc,
    offer: &SvmOffer<'_>,
    asset: &Asset,
) -> Result<SvmChainFacts, SignError> {
    let node = |e: &dyn std::fmt::Display| sign_error(format!("reading the Solana chain: {e}"));
    let mint = asset
        .address
        .as_svm()
        .map(|a| *a.as_bytes())
        .ok_or_else(|| sign_error("the asset is not a Solana mint"))?;
    let recent_blockhash = match offer.recent_blockhash() {
        Some(hash) => hash,
        None => rpc.latest_blockhash().await.map_err(|e| node(&e))?.0,
    };
    let (decimals, token_program) = if mint == program::USDC_DEVNET || mint == program::USDC_MAINNET
    {
        (asset.decimals, program::TOKEN_PROGRAM)
    } else {
        let account = rpc
            .account(&mint)
            .await
            .map_err(|e| node(&e))?
            .ok_or_else(|| sign_error(format!("the mint {} does not exist", asset.address)))?;
        if !program::is_token_program(&account.owner) {
            return Err(sign_error(format!(
                "the mint {} is not owned by SPL Token nor Token-2022",
                asset.address
            )));
        }
        let decimals = account
            .mint_decimals()
            .ok_or_else(|| sign_error(format!("{} is not a mint account", asset.address)))?;
        if decimals != asset.decimals {
            return Err(sign_error(format!(
                "the mint {} has {decimals} decimals, the asset {}: {}",
                asset.address,
                asset.decimals,
                rules::codes::DECIMALS_MISMATCH
            )));
        }
        (decimals, account.owner)
    };
    Ok(SvmChainFacts {
        recent_blockhash,
        decimals,
        token_program,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test bed's second payer (S6): seed = 32 times the byte 6. Public test key.
    const S6_KEYPAIR: &str =
        "7z8GcFcMNwCGuiNX7AzpkXrzhnqenSpYoA6hdHqfmbKbaEW6tJwdNgjuz2Zu3tZUo3sKdrDouJmTixxVZGyY8iS";
    const S6_ADDRESS: &str = "AKkzLhjhyFtM9j7WAhbaqYpFe49cXeJBg2kzLRC2PnNa";

    #[test]
    fn a_key_is_read_from_each_form() {
        let seed = [6u8; 32];
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let keypair: Vec<u8> = seed.iter().chain(public.iter()).copied().collect();
        let forms = [
            S6_KEYPAIR.to_owned(),
            bs58::encode(seed).into_string(),
            serde_json::to_string(&keypair).expect("json"),
            format!("  {S6_KEYPAIR}\n"),
        ];
        for form in forms {
            let key = SvmKey::parse(&form).expect("a key");
            assert_eq!(key.address().to_string(), S6_ADDRESS);
        }
    }

    #[test]
    fn a_bad_key_is_refused_without_quoting_it() {
        let mut keypair = bs58::decode(S6_KEYPAIR).into_vec().expect("base58");
        keypair[63] ^= 1;
        let mismatched = bs58::encode(&keypair).into_string();
        let short = bs58::encode(&keypair[..31]).into_string();
        for text in [
            mismatched.as_str(),
            short.as_str(),
            "0OIl",
            "[1,2,3]",
            "[256]",
        ] {
            let error = SvmKey::parse(text).expect_err("refused").to_string();
            assert!(!error.contains(text), "{error}");
        }
        let error = SvmKey::parse(&mismatched).expect_err("refused").to_string();
        assert!(error.contains("public half"), "{error}");
    }

    #[test]
    fn debug_shows_the_address_only() {
        let key = SvmKey::parse(S6_KEYPAIR).expect("key");
        let shown = format!("{key:?}");
        assert!(shown.contains(S6_ADDRESS), "{shown}");
        assert!(!shown.contains(S6_KEYPAIR), "{shown}");
    }

    /// Public test key #1 of the anvil/hardhat mnemonic (the signer's EVM half).
    const EVM_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    const MERCHANT: &str = "EdmxWPmx2WH6WgFfTdu9xfkYf3k1g5wD1zccTVySEEh1";
    const FEE_PAYER: &str = "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse";

    fn signer() -> PaymentSigner {
        PaymentSigner::from_key(EVM_KEY)
            .expect("key")
            .with_svm_key(S6_KEYPAIR)
            .expect("svm key")
    }

    fn offer() -> Value {
        serde_json::json!({
            "scheme": "exact", "network": SOLANA_DEVNET, "amount": "10000",
            "asset": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU", "payTo": MERCHANT,
            "maxTimeoutSeconds": 60, "extra": {"feePayer": FEE_PAYER}
        })
    }

    const FACTS: SvmChainFacts = SvmChainFacts {
        recent_blockhash: [9; 32],
        decimals: 6,
        token_program: program::TOKEN_PROGRAM,
    };

    fn terms() -> rules::SvmTerms {
        rules::SvmTerms {
            mint: program::USDC_DEVNET,
            pay_to: parse_key(MERCHANT).expect("key"),
            amount: 10_000,
            fee_payer: parse_key(FEE_PAYER).expect("key"),
            decimals: Some(6),
            memo: None,
        }
    }

    /// The header value decoded: the envelope JSON.
    fn envelope(signed: &SignedPayment) -> Value {
        use base64::Engine as _;
        let json = base64::engine::general_purpose::STANDARD
            .decode(&signed.value)
            .expect("base64");
        serde_json::from_slice(&json).expect("json")
    }

    #[test]
    fn a_v2_solana_offer_is_signed_into_a_payment_the_rules_accept() {
        let challenge: PaymentRequired = serde_json::from_value(serde_json::json!({
            "x402Version": 2, "resource": {"url": "http://127.0.0.1/paid"}, "accepts": [offer()]
        }))
        .expect("challenge");
        let signed = signer().sign_svm_v2(&challenge, 0, &FACTS).expect("signed");
        assert_eq!(signed.header, PAYMENT_SIGNATURE);
        assert_eq!(signed.network, SOLANA_DEVNET);
        assert_eq!(signed.payer().to_string(), S6_ADDRESS);
        assert_eq!(signed.amount(), U256::from(10_000));
        assert!(signed.deadline() >= unix_now() + SVM_VALIDITY_SECS - 5);
        let envelope = envelope(&signed);
        assert_eq!(envelope["x402Version"], 2);
        assert_eq!(envelope["accepted"], offer(), "the offer verbatim");
        let payload = envelope["payload"].to_string();
        let tx = SvmTransaction::from_payload_json(&payload).expect("a transaction");
        assert_eq!(tx.recent_blockhash, [9; 32]);
        let facts = rules::check(&tx, &terms()).expect("accepted");
        assert_eq!(signed.nonce(), B256::from(facts.message_hash));
        assert_eq!(
            signed.replay_key().asset.to_string(),
            "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
        );
    }

    #[test]
    fn a_v1_solana_offer_is_signed_into_an_x_payment() {
        let mut offer = offer();
        offer["network"] = "solana-devnet".into();
        offer["maxAmountRequired"] = offer["amount"].take();
        offer["resource"] = "http://127.0.0.1/paid".into();
        offer["description"] = "".into();
        offer["mimeType"] = "".into();
        let offer: PaymentRequirementsV1 = serde_json::from_value(offer).expect("v1 offer");
        let signed = signer().sign_svm_v1(&offer, &FACTS).expect("signed");
        assert_eq!(signed.header, X_PAYMENT);
        let envelope = envelope(&signed);
        assert_eq!(
            (
                &envelope["x402Version"],
                &envelope["scheme"],
                &envelope["network"]
            ),
            (&1.into(), &"exact".into(), &"solana-devnet".into())
        );
        let tx = SvmTransaction::from_payload_json(&envelope["payload"].to_string())
            .expect("a transaction");
        rules::check(&tx, &terms()).expect("accepted");
    }

    #[test]
    fn without_a_solana_key_nothing_is_signed_and_debug_hides_the_key() {
        let evm_only = PaymentSigner::from_key(EVM_KEY).expect("key");
        assert_eq!(evm_only.svm_address(), None);
        let offer: PaymentRequirementsV1 = serde_json::from_value(serde_json::json!({
            "scheme": "exact", "network": "solana-devnet", "maxAmountRequired": "1",
            "resource": "http://127.0.0.1/", "description": "", "mimeType": "",
            "asset": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU", "payTo": MERCHANT,
            "maxTimeoutSeconds": 60, "extra": {"feePayer": FEE_PAYER}
        }))
        .expect("v1 offer");
        let error = evm_only.sign_svm_v1(&offer, &FACTS).expect_err("no key");
        assert!(error.to_string().contains(SVM_PAYER_KEY_ENV), "{error}");
        let shown = format!("{:?}", signer());
        assert!(shown.contains(S6_ADDRESS), "{shown}");
        assert!(!shown.contains(S6_KEYPAIR), "{shown}");
    }

    /// A Solana node double on 127.0.0.1: the latest blockhash is 32 bytes of 5, and every
    /// account is a mint of `decimals` owned by `owner`.
    async fn node(owner: Key, decimals: u8) -> String {
        use axum::Json;
        use base64::Engine as _;
        let app = axum::Router::new().fallback(move |Json(request): Json<Value>| async move {
            let mut mint = vec![0u8; 82];
            mint[44] = decimals;
            mint[45] = 1;
            let result = match request["method"].as_str() {
                Some("getLatestBlockhash") => serde_json::json!({"context": {"slot": 1},
                    "value": {"blockhash": bs58::encode([5u8; 32]).into_string(),
                              "lastValidBlockHeight": 150}}),
                Some("getAccountInfo") => serde_json::json!({"context": {"slot": 1},
                    "value": {"owner": program::key_to_string(&owner), "lamports": 1,
                              "data": [base64::engine::general_purpose::STANDARD.encode(&mint),
                                       "base64"],
                              "executable": false, "rentEpoch": 0}}),
                _ => Value::Null,
            };
            Json(serde_json::json!({"jsonrpc": "2.0", "id": request["id"], "result": result}))
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// A token of `decimals` at a mint that is not a built-in one.
    fn other_token(decimals: u8) -> Asset {
        let mint = SvmAddress([8; 32]);
        Asset {
            currency: crate::price::Currency::Usdc,
            network: SOLANA_DEVNET.to_owned(),
            address: AccountId::Svm(mint),
            eip712_name: "USDC".to_owned(),
            eip712_version: String::new(),
            decimals,
            transfer: crate::network::TransferMethod::Eip3009,
        }
    }

    fn fields(extra: &Map<String, Value>) -> SvmOffer<'_> {
        SvmOffer {
            scheme: EXACT,
            amount: "1",
            asset: "",
            pay_to: MERCHANT,
            max_timeout_seconds: 60,
            extra: Some(extra),
        }
    }

    #[tokio::test]
    async fn chain_facts_come_from_the_offer_or_the_node() {
        let rpc = SvmRpc::new(&node(program::TOKEN_2022_PROGRAM, 6).await).expect("rpc");
        let no_hash = Map::new();
        // A mint that is not built in: its program and decimals from its account.
        let facts = chain_facts(&rpc, &fields(&no_hash), &other_token(6))
            .await
            .expect("facts");
        assert_eq!(
            facts,
            SvmChainFacts {
                recent_blockhash: [5; 32],
                decimals: 6,
                token_program: program::TOKEN_2022_PROGRAM,
            }
        );
        // Decimals other than the asset's are refused before anything is signed.
        let error = chain_facts(&rpc, &fields(&no_hash), &other_token(9))
            .await
            .expect_err("decimals differ");
        assert!(error.to_string().contains("decimals"), "{error}");
        // The offer's blockhash is used as is; the built-in USDC needs no account read.
        let mut with_hash = Map::new();
        with_hash.insert(
            "recentBlockhash".to_owned(),
            bs58::encode([4u8; 32]).into_string().into(),
        );
        let usdc = Asset::builtin(
            &Network::from_caip2(SOLANA_DEVNET).expect("devnet"),
            crate::price::Currency::Usdc,
        )
        .expect("devnet USDC");
        let unreachable = SvmRpc::new("http://127.0.0.1:9").expect("rpc");
        let facts = chain_facts(&unreachable, &fields(&with_hash), &usdc)
            .await
            .expect("no node needed");
        assert_eq!(
            (facts.recent_blockhash, facts.decimals, facts.token_program),
            ([4; 32], 6, program::TOKEN_PROGRAM)
        );
        // A mint owned by another program is refused.
        let rpc = SvmRpc::new(&node(program::MEMO_PROGRAM, 6).await).expect("rpc");
        let error = chain_facts(&rpc, &fields(&no_hash), &other_token(6))
            .await
            .expect_err("not a token program");
        assert!(error.to_string().contains("not owned"), "{error}");
    }

    #[test]
    fn a_keypair_file_is_read() {
        let dir = std::env::temp_dir().join(format!("x402-svm-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("id.json");
        let bytes = bs58::decode(S6_KEYPAIR).into_vec().expect("base58");
        std::fs::write(&path, serde_json::to_string(&bytes).expect("json")).expect("write");
        let key = SvmKey::from_file(&path).expect("key");
        assert_eq!(key.address().to_string(), S6_ADDRESS);
        let missing = SvmKey::from_file(&dir.join("none.json")).expect_err("missing");
        assert!(missing.to_string().contains("none.json"), "{missing}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
