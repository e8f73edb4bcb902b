//! The physical bound of a verified payment: recovering the signer of an ECDSA signature.
//!
//! Every paid request needs at least one secp256k1 public key recovery (`ecrecover`); nothing
//! else on the paid path is as expensive. [`measure`] runs it on every core at once, so the rate
//! it reports is what this machine can do at best, under the same load as the run around it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, Signature, U256, keccak256};
use alloy_signer::SignerSync as _;
use alloy_signer_local::PrivateKeySigner;
use x402_runtime::schemes::exact_evm::Authorization;
use x402_runtime::schemes::exact_evm::eip3009::{self, SignatureCheck};

/// A signed EIP-3009 authorization and everything checking it needs.
#[derive(Clone, Debug)]
pub struct Signed {
    /// The token's EIP-712 domain separator (Base Sepolia USDC).
    pub separator: B256,
    /// The authorization.
    pub authorization: Authorization,
    /// Its EIP-712 digest.
    pub digest: B256,
    /// `r ‖ s ‖ v`, `v` in {27, 28}.
    pub signature: [u8; 65],
    /// The same signature, parsed.
    pub parsed: Signature,
}

/// `n` authorizations signed by the test bed's payer, each with its own nonce.
pub fn signed(n: usize) -> Vec<Signed> {
    let signer: PrivateKeySigner = x402_testbed::PAYER_KEY.parse().expect("payer key");
    let separator =
        eip3009::domain("USDC", "2", x402_testbed::CHAIN_ID, x402_testbed::USDC).separator();
    (0..n)
        .map(|i| {
            let authorization = Authorization {
                from: signer.address(),
                to: x402_testbed::MERCHANT,
                value: U256::from(1000),
                valid_after: U256::ZERO,
                valid_before: U256::from(2_000_000_000u64),
                nonce: keccak256((i as u64).to_be_bytes()),
            };
            let digest = eip3009::signing_hash(&separator, &authorization);
            let parsed = signer.sign_hash_sync(&digest).expect("signing");
            Signed {
                separator,
                authorization,
                digest,
                signature: parsed.as_bytes(),
                parsed,
            }
        })
        .collect()
}

/// Bare `ecrecover`: the signer's address from a parsed signature and a digest.
pub fn ecrecover(s: &Signed) -> Option<Address> {
    s.parsed.recover_address_from_prehash(&s.digest).ok()
}

/// A facilitator's signature check: EIP-712 digest, FiatToken's signature rules, ecrecover,
/// compared with `from`.
pub fn signature_check(s: &Signed) -> bool {
    let digest = eip3009::signing_hash(&s.separator, &s.authorization);
    eip3009::check_signature(&s.signature, &digest, s.authorization.from) == SignatureCheck::Valid
}

/// Operations per second of `op` over `items`, with `threads` threads in parallel for `time`.
pub fn rate<T: Sync>(items: &[T], threads: usize, time: Duration, op: fn(&T) -> bool) -> f64 {
    let counts: Vec<(u64, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let start = Instant::now();
                    let mut done = 0u64;
                    let mut i = t;
                    while start.elapsed() < time {
                        for _ in 0..16 {
                            assert!(black_box(op(black_box(&items[i % items.len()]))));
                            i += 1;
                            done += 1;
                        }
                    }
                    (done, start.elapsed())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bound thread"))
            .collect()
    });
    counts
        .iter()
        .map(|(done, took)| *done as f64 / took.as_secs_f64())
        .sum()
}

/// `(ecrecover per second, signature checks per second)`, all cores in parallel.
pub fn measure(items: &[Signed], threads: usize, time: Duration) -> (f64, f64) {
    let recover = rate(items, threads, time, |s| {
        ecrecover(s) == Some(s.authorization.from)
    });
    let verify = rate(items, threads, time, signature_check);
    (recover, verify)
}
