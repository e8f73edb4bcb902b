//! Accounts on any network family: a payer, a recipient, a token contract or mint.
//!
//! An EVM account is a 20-byte [`Address`] (written EIP-55, `0x…`); a Solana (SVM) account is a
//! 32-byte public key ([`SvmAddress`], written base58). [`AccountId`] holds either, so that what
//! every scheme shares (the replay key, the payer of a payment, the recipient of an offer, the
//! records of the stores) speaks of accounts without assuming a chain family.

use std::fmt;
use std::str::FromStr;

use alloy_primitives::Address;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Solana (SVM) account: a 32-byte public key, written in base58.
///
/// ```
/// use x402_runtime::network::SvmAddress;
///
/// let mint: SvmAddress = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v".parse().unwrap();
/// assert_eq!(mint.to_string(), "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v");
/// assert_eq!(mint.as_bytes().len(), 32);
/// assert!("0x036CbD53842c5426634e7929541eC2318f3dCF7e".parse::<SvmAddress>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SvmAddress(pub [u8; 32]);

impl SvmAddress {
    /// Parses base58 text at compile time, for constants: text that is not base58 or longer than
    /// 32 bytes fails the build; it must be exactly 32 bytes (the constants' tests read them back).
    pub(crate) const fn from_base58_const(text: &str) -> SvmAddress {
        SvmAddress(bs58::decode(text.as_bytes()).into_array_const_unwrap())
    }

    /// The 32 bytes of the public key.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for SvmAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for SvmAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SvmAddress({self})")
    }
}

impl FromStr for SvmAddress {
    type Err = AccountParseError;

    /// Base58 (Bitcoin alphabet) of exactly 32 bytes.
    fn from_str(text: &str) -> Result<SvmAddress, AccountParseError> {
        let bad = || AccountParseError(format!("`{text}` is not a base58 32-byte Solana address"));
        // 32 bytes take 32 to 44 base58 digits; anything longer is refused before decoding.
        if text.len() > 44 {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        match bs58::decode(text).onto(&mut bytes[..]) {
            Ok(32) => Ok(SvmAddress(bytes)),
            _ => Err(bad()),
        }
    }
}

/// An account on any supported network family: who pays, who is paid, which token.
///
/// Written as the family writes it ([`Display`](fmt::Display) and serde): an EVM account as its
/// EIP-55 checksummed `0x…` address, a Solana account in base58. Parsing reads `0x` + 40 hex
/// digits as EVM (a mixed-case address must carry a valid EIP-55 checksum) and any other text as
/// base58 of 32 bytes. The byte forms ([`as_bytes`](AccountId::as_bytes) /
/// [`from_bytes`](AccountId::from_bytes)) tell the families apart by length: 20 bytes EVM, 32 SVM.
///
/// ```
/// use alloy_primitives::address;
/// use x402_runtime::network::AccountId;
///
/// let evm = AccountId::from(address!("0x036cbd53842c5426634e7929541ec2318f3dcf7e"));
/// assert_eq!(evm.to_string(), "0x036CbD53842c5426634e7929541eC2318f3dCF7e");
/// assert!(evm.as_evm().is_some());
/// assert_eq!(AccountId::from_bytes(evm.as_bytes()), Some(evm));
///
/// let mint: AccountId = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v".parse().unwrap();
/// assert_eq!(mint.as_evm(), None);
/// assert_eq!(mint.as_bytes().len(), 32);
/// assert_eq!(serde_json::to_string(&mint).unwrap(), r#""EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v""#);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountId {
    /// An EVM account (20 bytes).
    Evm(Address),
    /// A Solana account (32 bytes).
    Svm(SvmAddress),
}

impl AccountId {
    /// The EVM address, when this is an EVM account.
    pub const fn as_evm(&self) -> Option<Address> {
        match self {
            AccountId::Evm(address) => Some(*address),
            AccountId::Svm(_) => None,
        }
    }

    /// The Solana address, when this is a Solana account.
    pub const fn as_svm(&self) -> Option<SvmAddress> {
        match self {
            AccountId::Svm(address) => Some(*address),
            AccountId::Evm(_) => None,
        }
    }

    /// The account's bytes: 20 for EVM, 32 for Solana.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            AccountId::Evm(address) => address.as_slice(),
            AccountId::Svm(address) => &address.0,
        }
    }

    /// Whether `text` names this account, as a counterpart's answer may write it: an EVM address
    /// `0x` + 40 hex digits in any letter case (its checksum is not judged), a Solana address in
    /// base58.
    ///
    /// ```
    /// use alloy_primitives::address;
    /// use x402_runtime::network::AccountId;
    ///
    /// let payer = AccountId::from(address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"));
    /// assert!(payer.matches_text("0x70997970c51812dc3a010c7d01b50e0d17dc79c8"));
    /// assert!(!payer.matches_text("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"));
    /// ```
    pub fn matches_text(&self, text: &str) -> bool {
        match self {
            AccountId::Evm(address) => text.parse::<Address>().is_ok_and(|a| a == *address),
            AccountId::Svm(address) => text.parse::<SvmAddress>().is_ok_and(|a| a == *address),
        }
    }

    /// The account of these bytes, by their length: 20 is an EVM address, 32 a Solana public
    /// key; any other length is `None`.
    pub fn from_bytes(bytes: &[u8]) -> Option<AccountId> {
        match bytes.len() {
            20 => Some(AccountId::Evm(Address::from_slice(bytes))),
            32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(bytes);
                Some(AccountId::Svm(SvmAddress(key)))
            }
            _ => None,
        }
    }
}

impl From<Address> for AccountId {
    fn from(address: Address) -> AccountId {
        AccountId::Evm(address)
    }
}

impl From<SvmAddress> for AccountId {
    fn from(address: SvmAddress) -> AccountId {
        AccountId::Svm(address)
    }
}

impl PartialEq<Address> for AccountId {
    fn eq(&self, other: &Address) -> bool {
        self.as_evm().as_ref() == Some(other)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountId::Evm(address) => f.write_str(&address.to_checksum(None)),
            AccountId::Svm(address) => fmt::Display::fmt(address, f),
        }
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountId::Evm(address) => write!(f, "Evm({})", address.to_checksum(None)),
            AccountId::Svm(address) => write!(f, "Svm({address})"),
        }
    }
}

impl FromStr for AccountId {
    type Err = AccountParseError;

    fn from_str(text: &str) -> Result<AccountId, AccountParseError> {
        if text.starts_with("0x") {
            return parse_evm(text).map(AccountId::Evm);
        }
        text.parse().map(AccountId::Svm)
    }
}

/// `0x` + 40 hex digits; mixed case must be a valid EIP-55 checksum.
fn parse_evm(text: &str) -> Result<Address, AccountParseError> {
    let bad = || AccountParseError(format!("`{text}` is not a 0x-prefixed 20-byte address"));
    let hex = text.get(2..).ok_or_else(bad)?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let address: Address = hex.parse().map_err(|_| bad())?;
    let mixed =
        hex.bytes().any(|b| b.is_ascii_lowercase()) && hex.bytes().any(|b| b.is_ascii_uppercase());
    if mixed && address.to_checksum(None)[2..] != *hex {
        return Err(AccountParseError(format!(
            "`{text}` has an invalid EIP-55 checksum"
        )));
    }
    Ok(address)
}

impl Serialize for AccountId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<AccountId, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for SvmAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SvmAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SvmAddress, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Text that is not an account: neither a `0x` EVM address nor base58 of 32 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountParseError(String);

impl fmt::Display for AccountParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AccountParseError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;

    const USDC_MINT: &str = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";

    #[test]
    fn evm_accounts_read_and_write_eip55() {
        let text = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
        let account: AccountId = text.parse().expect("checksummed");
        assert_eq!(account.to_string(), text);
        assert_eq!(
            text.to_lowercase().parse::<AccountId>().expect("lowercase"),
            account
        );
        assert!(
            "0x70997970c51812dc3A010C7d01b50e0d17dc79C8"
                .parse::<AccountId>()
                .is_err()
        );
        for bad in ["0x", "0x1234", "0xzz997970C51812dc3A010C7d01b50e0d17dc79C8"] {
            assert!(bad.parse::<AccountId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn svm_accounts_read_and_write_base58() {
        let mint: AccountId = USDC_MINT.parse().expect("base58");
        assert_eq!(mint.to_string(), USDC_MINT);
        // The all-zero key is 32 `1`s.
        let zero: AccountId = "11111111111111111111111111111111".parse().expect("zeros");
        assert_eq!(zero.as_bytes(), &[0u8; 32]);
        for bad in [
            "",
            "0OIl",
            // 31 and 33 zero bytes.
            "1111111111111111111111111111111",
            "111111111111111111111111111111111",
            "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1vv",
            "1111111111111111111111111111111111111111111111",
        ] {
            assert!(bad.parse::<AccountId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn byte_forms_tell_the_families_apart_by_length() {
        let evm = AccountId::from(address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e"));
        let svm: AccountId = USDC_MINT.parse().expect("base58");
        for account in [evm, svm] {
            assert_eq!(AccountId::from_bytes(account.as_bytes()), Some(account));
        }
        assert_eq!(evm.as_bytes().len(), 20);
        assert_eq!(svm.as_bytes().len(), 32);
        assert_eq!(AccountId::from_bytes(&[0u8; 21]), None);
        assert_eq!(AccountId::from_bytes(&[]), None);
    }

    #[test]
    fn serde_uses_the_display_text() {
        let svm: AccountId = USDC_MINT.parse().expect("base58");
        let evm = AccountId::from(address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e"));
        for account in [evm, svm] {
            let json = serde_json::to_string(&account).expect("serialize");
            assert_eq!(json, format!("\"{account}\""));
            let back: AccountId = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, account);
        }
        assert!(serde_json::from_str::<AccountId>("\"nope0\"").is_err());
    }
}
