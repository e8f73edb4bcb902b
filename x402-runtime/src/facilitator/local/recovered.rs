//! Signers already recovered: the one secp256k1 recovery of a payment, kept from `verify` for
//! its `settle`.
//!
//! Recovering a signer is a pure function of the digest and the signature, and the most costly
//! step of a check (tens of microseconds). A payment is checked twice, by `verify` and again by
//! `settle` (a facilitator trusts no caller between the two), so the second check finds the
//! signer of the first here instead of recovering it again. Only valid signatures are kept, by
//! their exact bytes: a different signature, digest or payer is recovered afresh. The memo is
//! bounded: when it holds [`CAPACITY`] signers it starts over.

use alloy_primitives::{Address, B256};
use dashmap::DashMap;

use crate::schemes::exact_evm::eip3009::{self, SignatureCheck};

/// The most signers kept at once.
pub(super) const CAPACITY: usize = 16_384;

/// The signers of recently checked valid signatures, by digest and payer.
#[derive(Debug, Default)]
pub(super) struct Recovered {
    valid: DashMap<(B256, Address), [u8; 65]>,
}

impl Recovered {
    /// [`eip3009::check_signature`], answered from the memo when these exact bytes were found
    /// valid before; the payment's entry is taken out when `last` (its settlement).
    pub(super) fn check(
        &self,
        signature: &[u8],
        digest: &B256,
        from: Address,
        last: bool,
    ) -> SignatureCheck {
        let key = (*digest, from);
        let known = if last {
            self.valid
                .remove_if(&key, |_, kept| kept[..] == *signature)
                .is_some()
        } else {
            self.valid
                .get(&key)
                .is_some_and(|kept| kept[..] == *signature)
        };
        if known {
            return SignatureCheck::Valid;
        }
        let check = eip3009::check_signature(signature, digest, from);
        if check == SignatureCheck::Valid
            && !last
            && let Ok(bytes) = <[u8; 65]>::try_from(signature)
        {
            if self.valid.len() >= CAPACITY {
                self.valid.clear();
            }
            self.valid.insert(key, bytes);
        }
        check
    }

    /// How many signers are kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.valid.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U256;
    use alloy_signer::SignerSync;
    use alloy_signer_local::PrivateKeySigner;

    fn signed(digest: &B256) -> (PrivateKeySigner, Vec<u8>) {
        let key: PrivateKeySigner =
            "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
                .parse()
                .expect("a key");
        let signature = key.sign_hash_sync(digest).expect("signs");
        let mut bytes = signature.as_bytes().to_vec();
        // FiatToken's form: v of 27 or 28.
        if bytes[64] < 27 {
            bytes[64] += 27;
        }
        (key, bytes)
    }

    #[test]
    fn a_valid_signature_is_recovered_once_for_verify_and_settle() {
        let memo = Recovered::default();
        let digest = B256::repeat_byte(7);
        let (key, signature) = signed(&digest);
        let from = key.address();
        assert_eq!(
            memo.check(&signature, &digest, from, false),
            SignatureCheck::Valid
        );
        assert_eq!(memo.len(), 1);
        assert_eq!(
            memo.check(&signature, &digest, from, false),
            SignatureCheck::Valid
        );
        assert_eq!(
            memo.check(&signature, &digest, from, true),
            SignatureCheck::Valid
        );
        assert_eq!(memo.len(), 0, "settlement takes the entry out");
    }

    #[test]
    fn other_bytes_are_recovered_afresh() {
        let memo = Recovered::default();
        let digest = B256::repeat_byte(7);
        let (key, signature) = signed(&digest);
        let from = key.address();
        assert_eq!(
            memo.check(&signature, &digest, from, false),
            SignatureCheck::Valid
        );
        // The same payer and digest with another signature (a forged one) is not taken from the
        // memo: it is recovered, to someone else.
        let mut forged = signature.clone();
        forged[10] ^= 1;
        assert_ne!(
            memo.check(&forged, &digest, from, true),
            SignatureCheck::Valid
        );
        // Another payer claiming the valid signature is refused too.
        let other = Address::repeat_byte(1);
        assert_eq!(
            memo.check(&signature, &digest, other, false),
            SignatureCheck::OtherSigner
        );
        // Another digest (other terms) is recovered afresh.
        let elsewhere = B256::from(U256::from(1));
        assert_eq!(
            memo.check(&signature, &elsewhere, from, false),
            SignatureCheck::OtherSigner
        );
        assert_eq!(memo.len(), 1, "only valid signatures are kept");
    }

    #[test]
    fn the_memo_is_bounded() {
        let memo = Recovered::default();
        let digest = B256::repeat_byte(9);
        let (key, signature) = signed(&digest);
        for i in 0..CAPACITY {
            memo.valid
                .insert((B256::from(U256::from(i)), key.address()), [0u8; 65]);
        }
        assert_eq!(
            memo.check(&signature, &digest, key.address(), false),
            SignatureCheck::Valid
        );
        assert_eq!(memo.len(), 1, "a full memo starts over");
    }
}
