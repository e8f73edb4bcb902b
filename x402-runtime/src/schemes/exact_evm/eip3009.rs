//! EIP-3009 `TransferWithAuthorization`: the EIP-712 digest and the local signature check.
//!
//! The digest is built with alloy's `sol!` types and `Eip712Domain`; nothing is hashed by hand.
//! Signatures of externally owned accounts follow Circle's FiatToken: 65 bytes `r ‖ s ‖ v`, `v`
//! in {27, 28}, `s` in the lower half of the curve order, and the recovered signer equal to
//! `from`. The paywall checks the form alone ([`signature_form`]): whether a well-formed signature
//! by someone else is valid depends on whether `from` is a contract wallet (ERC-1271), which only
//! the chain can tell, so recovering the signer there would decide nothing. The facilitator,
//! which reads the chain, recovers it ([`check_signature`]).

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::{Eip712Domain, SolStruct, sol};

use super::payload::Authorization;
use crate::schemes::Rejection;

sol! {
    /// The EIP-3009 typed message.
    #[derive(Debug)]
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// Half the secp256k1 group order: the largest `s` Circle's `ECRecover` accepts.
const SECP256K1_HALF_ORDER: U256 = U256::from_be_slice(&alloy_primitives::hex!(
    "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0"
));

/// The EIP-712 domain of a token's `transferWithAuthorization`.
pub fn domain(name: &str, version: &str, chain_id: u64, token: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some(name.to_owned().into()),
        Some(version.to_owned().into()),
        Some(U256::from(chain_id)),
        Some(token),
        None,
    )
}

/// The separator of [`domain`], from a small per-thread memo: a facilitator checks payments for
/// the same few tokens again and again, and each separator costs several keccak256 hashes.
///
/// ```
/// use alloy_primitives::address;
/// use x402_runtime::schemes::exact_evm::eip3009::{domain, domain_separator};
///
/// let usdc = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
/// assert_eq!(
///     domain_separator("USDC", "2", 84532, usdc),
///     domain("USDC", "2", 84532, usdc).separator()
/// );
/// ```
pub fn domain_separator(name: &str, version: &str, chain_id: u64, token: Address) -> B256 {
    type Entry = (u64, Address, String, String, B256);
    /// The most separators kept per thread.
    const KEPT: usize = 8;
    thread_local! {
        static MEMO: std::cell::RefCell<Vec<Entry>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        let found = memo
            .iter()
            .find(|(id, t, n, v, _)| *id == chain_id && *t == token && n == name && v == version);
        if let Some((.., separator)) = found {
            return *separator;
        }
        let separator = domain(name, version, chain_id, token).separator();
        if memo.len() == KEPT {
            memo.remove(0);
        }
        memo.push((
            chain_id,
            token,
            name.to_owned(),
            version.to_owned(),
            separator,
        ));
        separator
    })
}

impl From<&Authorization> for TransferWithAuthorization {
    fn from(a: &Authorization) -> Self {
        TransferWithAuthorization {
            from: a.from,
            to: a.to,
            value: a.value,
            validAfter: a.valid_after,
            validBefore: a.valid_before,
            nonce: a.nonce,
        }
    }
}

/// The digest a payer signs, from a precomputed domain separator.
pub fn signing_hash(domain_separator: &B256, authorization: &Authorization) -> B256 {
    let struct_hash = TransferWithAuthorization::from(authorization).eip712_hash_struct();
    crate::schemes::eip712_digest(domain_separator, &struct_hash)
}

/// Outcome of the local signature check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    /// A 65-byte ECDSA signature by `from`.
    Valid,
    /// Not a signature FiatToken's ecrecover accepts (`v` not 27 or 28, high `s`, zero `r` or
    /// `s`): refuse.
    Invalid,
    /// A well-formed ECDSA signature that does not recover to `from`. Refused by an EOA, but
    /// FiatToken asks `from` through ERC-1271 when it has code (a contract wallet whose owner
    /// signs with an ordinary key), which only a checker that reads the chain can decide.
    OtherSigner,
    /// Too short to be any signature: a malformed payload.
    Malformed,
    /// Longer than 65 bytes (ERC-1271 or ERC-6492 smart-wallet data): only the facilitator,
    /// which can read the chain, can decide.
    NeedsChain,
}

/// What a signature's bytes say before any key is recovered (FiatToken's rules of form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureForm {
    /// A well-formed 65-byte ECDSA signature: who signed it takes a recovery to tell.
    Ecdsa(alloy_primitives::Signature),
    /// Not a signature FiatToken's ecrecover accepts (see [`SignatureCheck::Invalid`]).
    Invalid,
    /// Shorter than 65 bytes.
    Malformed,
    /// Longer than 65 bytes: smart-wallet data only the chain can judge.
    NeedsChain,
}

/// The form of a signature: length, `v` in {27, 28}, `r` and `s` non-zero, `s` in the lower half
/// of the curve order. No key is recovered: this costs nanoseconds.
///
/// ```
/// use x402_runtime::schemes::exact_evm::eip3009::{SignatureForm, signature_form};
///
/// let mut signature = [0x11u8; 65];
/// signature[64] = 27;
/// assert!(matches!(signature_form(&signature), SignatureForm::Ecdsa(_)));
/// signature[64] = 1;
/// assert_eq!(signature_form(&signature), SignatureForm::Invalid);
/// assert_eq!(signature_form(&signature[..64]), SignatureForm::Malformed);
/// ```
pub fn signature_form(signature: &[u8]) -> SignatureForm {
    if signature.len() > 65 {
        return SignatureForm::NeedsChain;
    }
    if signature.len() < 65 {
        return SignatureForm::Malformed;
    }
    let v = signature[64];
    if v != 27 && v != 28 {
        return SignatureForm::Invalid;
    }
    let r = U256::from_be_slice(&signature[..32]);
    let s = U256::from_be_slice(&signature[32..64]);
    if s > SECP256K1_HALF_ORDER || s.is_zero() || r.is_zero() {
        return SignatureForm::Invalid;
    }
    SignatureForm::Ecdsa(alloy_primitives::Signature::new(r, s, v == 28))
}

/// The paywall's judgement of a signature from its form alone: a well-formed signature passes
/// (who signed it is the facilitator's to judge, with the chain), a longer one too (smart-wallet
/// data), a shorter one is malformed (400) and one FiatToken refuses is answered `invalid`.
pub fn check_form(signature: &[u8], invalid: &'static str) -> Result<(), Rejection> {
    match signature_form(signature) {
        SignatureForm::Ecdsa(_) | SignatureForm::NeedsChain => Ok(()),
        SignatureForm::Invalid => Err(Rejection::Payment(invalid)),
        SignatureForm::Malformed => Err(Rejection::Malformed(
            "the signature is shorter than 65 bytes".into(),
        )),
    }
}

/// Checks an EOA signature over `digest` against `from`, with FiatToken's rules: its form, then
/// the signer it recovers to.
pub fn check_signature(signature: &[u8], digest: &B256, from: Address) -> SignatureCheck {
    match signature_form(signature) {
        SignatureForm::Ecdsa(sig) => match sig.recover_address_from_prehash(digest) {
            Ok(signer) if signer == from => SignatureCheck::Valid,
            _ => SignatureCheck::OtherSigner,
        },
        SignatureForm::Invalid => SignatureCheck::Invalid,
        SignatureForm::Malformed => SignatureCheck::Malformed,
        SignatureForm::NeedsChain => SignatureCheck::NeedsChain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, b256, hex};

    fn vector_authorization() -> Authorization {
        Authorization {
            from: address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
            to: address!("0x209693Bc6afc0C5328bA36FaF03C514EF312287C"),
            value: U256::from(10_000),
            valid_after: U256::ZERO,
            valid_before: U256::from(1_900_000_000u64),
            nonce: b256!("0x0000000000000000000000000000000000000000000000000000000000000001"),
        }
    }

    #[test]
    fn reproduces_the_reference_vectors() {
        let auth = vector_authorization();
        let usdc = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
        let d = domain("USDC", "2", 84532, usdc);
        assert_eq!(
            d.separator(),
            b256!("0x71f17a3b2ff373b803d70a5a07c046c1a2bc8e89c09ef722fcb047abe94c9818")
        );
        let struct_hash = TransferWithAuthorization::from(&auth).eip712_hash_struct();
        assert_eq!(
            struct_hash,
            b256!("0x1f5232edc0d627cf3635687b5001792f57f607b148d57749628ee9d823586582")
        );
        let digest = signing_hash(&d.separator(), &auth);
        assert_eq!(
            digest,
            b256!("0x00af7a33c1c153b511b1e1f642c57b9220b4a5f5f7b3ea9179529d6ec3dbd186")
        );
        assert_eq!(
            digest,
            TransferWithAuthorization::from(&auth).eip712_signing_hash(&d)
        );
        let sig = hex!(
            "31b0b2c257841128d341f63620c057d174155c2f51630b95bff21858367386af3296f16340309fc845e3eefe6790cc75ca9a36f6ce3aa4619913ef7fd67d7c9c1c"
        );
        assert_eq!(
            check_signature(&sig, &digest, auth.from),
            SignatureCheck::Valid
        );

        let base = domain(
            "USD Coin",
            "2",
            8453,
            address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
        );
        let digest_b = signing_hash(&base.separator(), &auth);
        assert_eq!(
            digest_b,
            b256!("0x9e3cb0dbb6e4ca8cd0d0ebb2006a6e9c491a9381e91ffa1c0f21d95f77c232db")
        );
        // Vector A's signature is not valid on Base mainnet's domain: it recovers to someone else.
        assert_eq!(
            check_signature(&sig, &digest_b, auth.from),
            SignatureCheck::OtherSigner
        );
    }

    #[test]
    fn rejects_high_s_and_bad_v() {
        let auth = vector_authorization();
        let usdc = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
        let digest = signing_hash(&domain("USDC", "2", 84532, usdc).separator(), &auth);
        let sig = hex!(
            "31b0b2c257841128d341f63620c057d174155c2f51630b95bff21858367386af3296f16340309fc845e3eefe6790cc75ca9a36f6ce3aa4619913ef7fd67d7c9c1c"
        );
        // The high-s twin: s' = n - s, v flipped. It recovers the same signer but FiatToken refuses it.
        let n = U256::from_be_slice(&hex!(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
        ));
        let s = U256::from_be_slice(&sig[32..64]);
        let mut twin = sig;
        twin[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
        twin[64] = if sig[64] == 27 { 28 } else { 27 };
        assert_eq!(
            check_signature(&twin, &digest, auth.from),
            SignatureCheck::Invalid
        );
        let mut bad_v = sig;
        bad_v[64] = 1;
        assert_eq!(
            check_signature(&bad_v, &digest, auth.from),
            SignatureCheck::Invalid
        );
        assert_eq!(
            check_signature(&sig[..64], &digest, auth.from),
            SignatureCheck::Malformed
        );
        assert_eq!(
            check_signature(&[0u8; 1], &digest, auth.from),
            SignatureCheck::Malformed
        );
        let mut long = sig.to_vec();
        long.push(0);
        assert_eq!(
            check_signature(&long, &digest, auth.from),
            SignatureCheck::NeedsChain
        );
        let other = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
        assert_eq!(
            check_signature(&sig, &digest, other),
            SignatureCheck::OtherSigner
        );
    }

    #[test]
    fn the_form_follows_fiat_tokens_ecrecover() {
        let digest = B256::repeat_byte(0x42);
        let from = address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        let mut sig = [0x11u8; 65];
        for v in [27, 28] {
            sig[64] = v;
            assert_eq!(
                check_signature(&sig, &digest, from),
                SignatureCheck::OtherSigner
            );
        }
        for v in [0, 1, 17, 29] {
            sig[64] = v;
            assert_eq!(
                check_signature(&sig, &digest, from),
                SignatureCheck::Invalid,
                "v = {v}"
            );
        }
        sig[64] = 27;
        let mut high = sig;
        high[32..64].copy_from_slice(&(SECP256K1_HALF_ORDER + U256::from(1)).to_be_bytes::<32>());
        assert_eq!(
            check_signature(&high, &digest, from),
            SignatureCheck::Invalid,
            "high s"
        );
        let mut edge = sig;
        edge[32..64].copy_from_slice(&SECP256K1_HALF_ORDER.to_be_bytes::<32>());
        assert_eq!(
            check_signature(&edge, &digest, from),
            SignatureCheck::OtherSigner,
            "s = n/2"
        );
        let mut zero_r = sig;
        zero_r[..32].fill(0);
        assert_eq!(
            check_signature(&zero_r, &digest, from),
            SignatureCheck::Invalid,
            "r = 0"
        );
        let mut zero_s = sig;
        zero_s[32..64].fill(0);
        assert_eq!(
            check_signature(&zero_s, &digest, from),
            SignatureCheck::Invalid,
            "s = 0"
        );
        assert_eq!(
            check_signature(&sig[..64], &digest, from),
            SignatureCheck::Malformed
        );
        assert_eq!(
            check_signature(&[], &digest, from),
            SignatureCheck::Malformed
        );
    }
}
