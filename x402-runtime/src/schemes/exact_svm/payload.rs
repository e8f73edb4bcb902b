//! The `exact` SVM payload: `{"transaction": "<base64 wire transaction>"}`, read into a
//! [`SvmTransaction`] whose parts the rules check.

use base64::Engine as _;
use serde::Deserialize;
use solana_message::VersionedMessage;
use solana_transaction::versioned::VersionedTransaction;

use super::program::{Key, MAX_TRANSACTION_BYTES};

/// Why a payload is not a readable Solana payment transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// The payload is not the JSON object `{"transaction": "<base64>"}`.
    Shape(String),
    /// `transaction` is not standard base64.
    Base64,
    /// The transaction is longer than a Solana packet (1232 bytes).
    TooLarge(usize),
    /// The bytes are not a well-formed legacy or v0 transaction.
    Malformed(String),
    /// A v1 message, which the scheme does not use.
    V1Message,
    /// The message loads accounts from address lookup tables, which the scheme refuses.
    AddressTableLookup,
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Shape(why) => {
                write!(f, "the payload is not {{\"transaction\": <base64>}}: {why}")
            }
            Self::Base64 => f.write_str("the transaction is not standard base64"),
            Self::TooLarge(len) => write!(
                f,
                "the transaction has {len} bytes, above Solana's {MAX_TRANSACTION_BYTES}"
            ),
            Self::Malformed(why) => write!(f, "the transaction cannot be decoded: {why}"),
            Self::V1Message => f.write_str("v1 transaction messages are not accepted"),
            Self::AddressTableLookup => {
                f.write_str("address lookup tables are not accepted in a payment")
            }
        }
    }
}

impl std::error::Error for PayloadError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    #[serde(borrow)]
    transaction: std::borrow::Cow<'a, str>,
}

/// One instruction of the message, its program and accounts resolved to keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvmInstruction {
    /// The program the instruction calls.
    pub program: Key,
    /// The accounts it passes, in order.
    pub accounts: Vec<Key>,
    /// Its data.
    pub data: Vec<u8>,
}

/// The counts of the message header: which static keys sign and which are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Signatures required: the first this many static keys sign.
    pub required_signatures: u8,
    /// The last this many of the signing keys are read-only.
    pub readonly_signed: u8,
    /// The last this many of the other keys are read-only.
    pub readonly_unsigned: u8,
}

/// A payment transaction as received: its wire bytes, the message the signers signed, and that
/// message's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvmTransaction {
    wire: Vec<u8>,
    message_start: usize,
    /// The signatures, one per required signer, in the order of the signing keys (an unsigned
    /// slot is 64 zero bytes).
    pub signatures: Vec<[u8; 64]>,
    /// Whether the message is v0 (`false`: legacy).
    pub v0: bool,
    /// The header counts.
    pub header: Header,
    /// The static account keys; the first is the fee payer.
    pub keys: Vec<Key>,
    /// The recent blockhash the transaction is bound to.
    pub recent_blockhash: [u8; 32],
    /// The instructions, in order.
    pub instructions: Vec<SvmInstruction>,
}

impl SvmTransaction {
    /// Reads the scheme's payload object (`{"transaction": "<base64>"}`; other fields refused).
    pub fn from_payload_json(json: &str) -> Result<Self, PayloadError> {
        let wire: Wire<'_> =
            serde_json::from_str(json).map_err(|error| PayloadError::Shape(error.to_string()))?;
        Self::from_base64(&wire.transaction)
    }

    /// Reads a base64 wire transaction.
    pub fn from_base64(text: &str) -> Result<Self, PayloadError> {
        // Base64 of the largest transaction: refuse longer text before decoding it.
        if text.len() > MAX_TRANSACTION_BYTES.div_ceil(3) * 4 {
            return Err(PayloadError::TooLarge(text.len() / 4 * 3));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| PayloadError::Base64)?;
        Self::from_wire(bytes)
    }

    /// Reads a wire transaction: the signatures (short-vec counted), then a legacy or v0
    /// message. The bytes must be exactly one canonical transaction.
    pub fn from_wire(wire: Vec<u8>) -> Result<Self, PayloadError> {
        if wire.len() > MAX_TRANSACTION_BYTES {
            return Err(PayloadError::TooLarge(wire.len()));
        }
        // A v1 transaction starts with its version byte (top bit set); a legacy or v0 one with
        // the signature count, which is below 128.
        if wire.first().is_some_and(|byte| byte & 0x80 != 0) {
            return Err(PayloadError::V1Message);
        }
        let tx: VersionedTransaction = wincode::deserialize_exact(&wire)
            .map_err(|error| PayloadError::Malformed(error.to_string()))?;
        let message = match &tx.message {
            VersionedMessage::V1(_) => return Err(PayloadError::V1Message),
            VersionedMessage::V0(v0) if !v0.address_table_lookups.is_empty() => {
                return Err(PayloadError::AddressTableLookup);
            }
            message => message,
        };
        tx.sanitize()
            .map_err(|error| PayloadError::Malformed(error.to_string()))?;
        // The message as signed is the bytes after the signatures; it must be what the decoded
        // message encodes to, so that what is checked is what was signed.
        let message_start = 1 + 64 * tx.signatures.len();
        if wire.get(message_start..) != Some(message.serialize().as_slice()) {
            return Err(PayloadError::Malformed(
                "the message is not canonically encoded".to_owned(),
            ));
        }
        Ok(Self::from_parts(wire, message_start, &tx, message))
    }

    fn from_parts(
        wire: Vec<u8>,
        message_start: usize,
        tx: &VersionedTransaction,
        message: &VersionedMessage,
    ) -> Self {
        let keys: Vec<Key> = message
            .static_account_keys()
            .iter()
            .map(|key| key.to_bytes())
            .collect();
        // `sanitize` checked that every index is within the static keys.
        let key = |index: u8| keys.get(usize::from(index)).copied().unwrap_or_default();
        let instructions = message
            .instructions()
            .iter()
            .map(|ix| SvmInstruction {
                program: key(ix.program_id_index),
                accounts: ix.accounts.iter().map(|&index| key(index)).collect(),
                data: ix.data.clone(),
            })
            .collect();
        let header = message.header();
        Self {
            signatures: tx.signatures.iter().map(|s| *s.as_array()).collect(),
            v0: matches!(message, VersionedMessage::V0(_)),
            header: Header {
                required_signatures: header.num_required_signatures,
                readonly_signed: header.num_readonly_signed_accounts,
                readonly_unsigned: header.num_readonly_unsigned_accounts,
            },
            recent_blockhash: message.recent_blockhash().to_bytes(),
            keys,
            instructions,
            message_start,
            wire,
        }
    }

    /// The transaction as received.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// The message bytes as received: what each signer signed, and the preimage of the
    /// payment's identity ([`message_hash`](Self::message_hash)).
    pub fn message_bytes(&self) -> &[u8] {
        self.wire.get(self.message_start..).unwrap_or_default()
    }

    /// SHA-256 of the message bytes: the same payment whatever the fee payer's signature.
    pub fn message_hash(&self) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(self.message_bytes()).into()
    }

    /// The transaction with the fee payer's signature in slot 0, the rest of the bytes as
    /// received: what the facilitator sends, without re-encoding the message the payer signed.
    pub fn with_fee_payer_signature(&self, signature: &[u8; 64]) -> Vec<u8> {
        let mut wire = self.wire.clone();
        // Slot 0 follows the one-byte signature count (fewer than 128 signatures fit a packet).
        if let Some(slot) = wire.get_mut(1..65) {
            slot.copy_from_slice(signature);
        }
        wire
    }

    /// The fee payer: the first static key.
    pub fn fee_payer(&self) -> Option<&Key> {
        self.keys.first()
    }
}
