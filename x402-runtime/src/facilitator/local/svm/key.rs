//! The fee payer's key: read from the forms Solana wallets and the CLI export, never shown.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey};
use zeroize::Zeroizing;

use crate::base::ConfigError;
use crate::schemes::exact_svm::program::{Key, key_to_string};

/// The facilitator's fee payer on Solana: the ed25519 key that co-signs (and pays for) every
/// settlement. `Debug` shows only its public address; the secret is zeroed when dropped.
pub(crate) struct FeePayer {
    key: SigningKey,
    address: Key,
}

impl fmt::Debug for FeePayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeePayer")
            .field("address", &key_to_string(&self.address))
            .finish_non_exhaustive()
    }
}

impl FeePayer {
    /// Reads `text`: base58 of the 64-byte keypair (seed, then public key, as wallets export
    /// it), base58 of the 32-byte seed, or a JSON array of the 64 (or 32) bytes (a Solana CLI
    /// keypair file). A keypair whose public half is not its seed's is refused. Errors never
    /// contain the key.
    pub(crate) fn parse(text: &str) -> Result<Self, ConfigError> {
        let text = text.trim();
        let bytes: Zeroizing<Vec<u8>> = Zeroizing::new(if text.starts_with('[') {
            serde_json::from_str(text).map_err(|_| {
                ConfigError::new("the Solana fee payer key is not a JSON array of bytes (0 to 255)")
            })?
        } else {
            bs58::decode(text).into_vec().map_err(|_| {
                ConfigError::new("the Solana fee payer key is neither base58 nor a JSON array")
            })?
        });
        let key = match <&[u8; 64]>::try_from(bytes.as_slice()) {
            Ok(pair) => SigningKey::from_keypair_bytes(pair).map_err(|_| {
                ConfigError::new(
                    "the Solana fee payer keypair's public half does not belong to its secret half",
                )
            })?,
            Err(_) => match <&[u8; 32]>::try_from(bytes.as_slice()) {
                Ok(seed) => SigningKey::from_bytes(seed),
                Err(_) => {
                    return Err(ConfigError::new(format!(
                        "the Solana fee payer key holds {} bytes: expected a 64-byte keypair or a 32-byte seed",
                        bytes.len()
                    )));
                }
            },
        };
        Ok(Self::from_signing_key(key))
    }

    /// The fee payer for `key`.
    pub(crate) fn from_signing_key(key: SigningKey) -> Self {
        let address = key.verifying_key().to_bytes();
        Self { key, address }
    }

    /// Its public address.
    pub(crate) fn address(&self) -> &Key {
        &self.address
    }

    /// Its signature over `message`: deterministic (ed25519), so the same payment always gets
    /// the same signature, which is the transaction's id.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}
