//! What every replay store promises, as one table of checks run against each store (memory,
//! file, Postgres), so that the stores cannot drift apart.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alloy_primitives::{Address, B256};

use super::{ReplayStore, Slot, Unresolved};
use crate::network::{AccountId, SvmAddress};
use crate::schemes::ReplayKey;

/// A clock the checks move by hand.
#[derive(Clone)]
pub(crate) struct TestClock(Arc<AtomicU64>);

impl TestClock {
    pub(crate) fn at(now: u64) -> TestClock {
        TestClock(Arc::new(AtomicU64::new(now)))
    }

    pub(crate) fn set(&self, now: u64) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// The clock as a store reads it.
    pub(crate) fn now(&self) -> impl Fn() -> u64 + Send + Sync + 'static {
        let time = self.0.clone();
        move || time.load(Ordering::SeqCst)
    }
}

/// Where the checks start the clock.
pub(crate) const START: u64 = 1_000;

pub(crate) fn key(nonce: u8) -> ReplayKey {
    ReplayKey {
        network: "eip155:84532".to_owned(),
        asset: Address::repeat_byte(0x0a).into(),
        from: Address::repeat_byte(0x0b).into(),
        nonce: B256::repeat_byte(nonce),
    }
}

/// A key of a Solana payment: 32-byte accounts (the USDC devnet mint, a made-up payer).
pub(crate) fn svm_key(nonce: u8) -> ReplayKey {
    ReplayKey {
        network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".to_owned(),
        asset: "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
            .parse()
            .expect("base58 mint"),
        from: AccountId::Svm(SvmAddress([0xb5; 32])),
        nonce: B256::repeat_byte(nonce),
    }
}

pub(crate) fn request(nonce: u8) -> String {
    format!(r#"{{"x402Version":2,"paymentPayload":{{"n":{nonce}}},"paymentRequirements":{{}}}}"#)
}

/// Waits until `key` is free (a shared store releases in the background).
async fn freed(store: &dyn ReplayStore, key: &ReplayKey) -> bool {
    for _ in 0..100 {
        if store.lookup(key).await.is_none() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Runs every check on `store`, whose clock is `clock` (at [`START`]). `shared`: the store is
/// shared by processes, so reconciliation claims are exclusive.
pub(crate) async fn check(store: &dyn ReplayStore, clock: &TestClock, shared: bool) {
    clock.set(START);
    reserve_twice(store).await;
    release_rules(store).await;
    outcomes(store).await;
    credits(store).await;
    unresolved(store).await;
    retention(store, clock).await;
    if shared {
        claims(store, clock).await;
    }
    svm_accounts(store).await;
}

async fn reserve_twice(store: &dyn ReplayStore) {
    assert_eq!(store.reserve(&key(1), 2_000).await, Ok(()));
    assert_eq!(store.reserve(&key(1), 2_000).await, Err(Slot::InProgress));
    assert_eq!(store.lookup(&key(1)).await, Some(Slot::InProgress));
    assert_eq!(store.lookup(&key(2)).await, None, "nothing recorded");
    let copy = key(2);
    let copies = (0..32).map(|_| store.reserve(&copy, 2_000));
    let taken = futures_util::future::join_all(copies).await;
    assert_eq!(
        taken.iter().filter(|t| t.is_ok()).count(),
        1,
        "one of 32 concurrent copies takes the key: {taken:?}"
    );
}

async fn release_rules(store: &dyn ReplayStore) {
    // In progress and settling are freed.
    store.release(&key(1));
    assert!(freed(store, &key(1)).await, "an in-progress key is freed");
    assert_eq!(store.reserve(&key(1), 2_000).await, Ok(()));
    let settling = Slot::Settling {
        request: Some(request(1)),
        since: START,
    };
    store.record(&key(1), settling.clone(), 2_000).await;
    assert_eq!(store.lookup(&key(1)).await, Some(settling));
    store.release(&key(1));
    assert!(freed(store, &key(1)).await, "a refused settlement is freed");
    // A recorded outcome is not.
    assert_eq!(store.reserve(&key(3), 2_000).await, Ok(()));
    let pending = Slot::Pending {
        transaction: String::new(),
        request: Some(request(3)),
        since: START,
    };
    store.record(&key(3), pending.clone(), 90_000).await;
    store.release(&key(3));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.lookup(&key(3)).await, Some(pending.clone()));
    assert_eq!(store.reserve(&key(3), 2_000).await, Err(pending));
}

async fn outcomes(store: &dyn ReplayStore) {
    assert_eq!(store.reserve(&key(4), 2_000).await, Ok(()));
    let settled = Slot::Settled {
        transaction: "0x4444".to_owned(),
    };
    store.record(&key(4), settled.clone(), 90_000).await;
    store.release(&key(4));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.reserve(&key(4), 2_000).await, Err(settled.clone()));
    // Recording again with a shorter retention never shortens it (checked in `retention`).
    store.record(&key(4), settled.clone(), 3_000).await;
    assert_eq!(store.reserve(&key(5), 2_000).await, Ok(()));
    store.record(&key(5), Slot::ExpiredUnsettled, 90_000).await;
    assert_eq!(store.lookup(&key(5)).await, Some(Slot::ExpiredUnsettled));
    definite_outcomes_stay(store).await;
}

/// A late or reordered write of a weaker state never undoes a definite outcome; `settled`
/// replaces anything.
async fn definite_outcomes_stay(store: &dyn ReplayStore) {
    let (settled_key, expired_key) = (key(40), key(41));
    let settled = Slot::Settled {
        transaction: "0x4040".to_owned(),
    };
    let late = [
        Slot::Settling {
            request: Some(request(40)),
            since: START,
        },
        Slot::Pending {
            transaction: String::new(),
            request: Some(request(40)),
            since: START,
        },
        Slot::ExpiredUnsettled,
    ];
    assert_eq!(store.reserve(&settled_key, 2_000).await, Ok(()));
    store.record(&settled_key, settled.clone(), 90_000).await;
    for slot in &late {
        store.record(&settled_key, slot.clone(), 90_000).await;
        assert_eq!(
            store.lookup(&settled_key).await,
            Some(settled.clone()),
            "{slot:?}"
        );
    }
    assert_eq!(store.reserve(&expired_key, 2_000).await, Ok(()));
    store
        .record(&expired_key, Slot::ExpiredUnsettled, 90_000)
        .await;
    store.record(&expired_key, late[1].clone(), 90_000).await;
    assert_eq!(
        store.lookup(&expired_key).await,
        Some(Slot::ExpiredUnsettled)
    );
    store.record(&expired_key, settled.clone(), 90_000).await;
    assert_eq!(store.lookup(&expired_key).await, Some(settled));
}

async fn credits(store: &dyn ReplayStore) {
    assert!(store.credit("0xC0FFEE", &key(4)).await, "a fresh credit");
    assert!(
        store.credit("0xc0ffee", &key(4)).await,
        "the same payment again"
    );
    assert!(
        !store.credit("0xc0ffee", &key(5)).await,
        "one transaction never pays for two payments"
    );
    assert!(store.credit("0xbeef", &key(5)).await);
    assert!(
        !store.credit("0xBEEF", &key(4)).await,
        "an EVM hash in upper case finds its lower-case credit"
    );
}

async fn unresolved(store: &dyn ReplayStore) {
    assert_eq!(store.reserve(&key(6), 2_000).await, Ok(()));
    let settling = Slot::Settling {
        request: Some(request(6)),
        since: START + 1,
    };
    store.record(&key(6), settling.clone(), 2_000).await;
    let mut listed = store.unresolved().await.expect("listed");
    listed.sort_by(|a, b| a.key.cmp(&b.key));
    let pending = Slot::Pending {
        transaction: String::new(),
        request: Some(request(3)),
        since: START,
    };
    assert_eq!(
        listed,
        vec![
            Unresolved {
                key: key(3),
                slot: pending
            },
            Unresolved {
                key: key(6),
                slot: settling
            },
        ]
    );
    let settled = Slot::Settled {
        transaction: "0x3333".to_owned(),
    };
    store.record(&key(3), settled.clone(), 90_000).await;
    let listed = store.unresolved().await.expect("listed");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(store.lookup(&key(3)).await, Some(settled));
}

async fn retention(store: &dyn ReplayStore, clock: &TestClock) {
    assert_eq!(store.reserve(&key(7), 1_500).await, Ok(()));
    clock.set(2_001);
    assert_eq!(store.lookup(&key(7)).await, None, "an expired reservation");
    assert_eq!(store.reserve(&key(7), 3_000).await, Ok(()), "taken again");
    assert!(
        store
            .unresolved()
            .await
            .expect("listed")
            .iter()
            .all(|u| u.key != key(6)),
        "an expired settling key is not listed"
    );
    clock.set(50_000);
    assert_eq!(
        store.lookup(&key(4)).await,
        Some(Slot::Settled {
            transaction: "0x4444".to_owned()
        }),
        "a second record with a shorter retention did not shorten it"
    );
    assert!(
        !store.credit("0xc0ffee", &key(5)).await,
        "the credit of a kept payment is kept as long"
    );
    clock.set(90_001);
    assert_eq!(store.lookup(&key(4)).await, None, "retention is over");
    assert_eq!(store.reserve(&key(4), 200_000).await, Ok(()));
    clock.set(START);
}

async fn claims(store: &dyn ReplayStore, clock: &TestClock) {
    assert!(store.claim_reconciliation(&key(8), 5_000).await);
    assert!(
        !store.claim_reconciliation(&key(8), 5_000).await,
        "one reconciler at a time"
    );
    store.end_reconciliation(&key(8));
    let mut again = false;
    for _ in 0..100 {
        if store.claim_reconciliation(&key(8), 5_000).await {
            again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again, "given back");
    clock.set(5_001);
    assert!(
        store.claim_reconciliation(&key(8), 9_000).await,
        "an expired claim is taken over"
    );
    clock.set(START);
}

/// A Solana transaction id: a base58 signature, where case is part of the value.
pub(crate) const SIGNATURE: &str =
    "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW";

/// A payment by 32-byte accounts is kept, listed and credited under its own key, apart from the
/// EVM payment with the same nonce.
async fn svm_accounts(store: &dyn ReplayStore) {
    let (svm, evm) = (svm_key(9), key(9));
    assert_eq!(store.reserve(&svm, 2_000).await, Ok(()));
    assert_eq!(store.reserve(&evm, 2_000).await, Ok(()), "another payment");
    let settling = Slot::Settling {
        request: Some(request(9)),
        since: START,
    };
    store.record(&svm, settling.clone(), 2_000).await;
    assert_eq!(store.lookup(&svm).await, Some(settling.clone()));
    let listed = store.unresolved().await.expect("listed");
    assert!(
        listed.contains(&Unresolved {
            key: svm.clone(),
            slot: settling
        }),
        "{listed:?}"
    );
    let settled = Slot::Settled {
        transaction: SIGNATURE.to_owned(),
    };
    store.record(&svm, settled.clone(), 90_000).await;
    assert_eq!(
        store.lookup(&svm).await,
        Some(settled),
        "the signature keeps its case"
    );
    assert!(store.credit(SIGNATURE, &svm).await);
    assert!(
        !store.credit(SIGNATURE, &evm).await,
        "one transaction never pays for two payments"
    );
    assert!(
        store.credit(&SIGNATURE.replace('V', "v"), &evm).await,
        "a signature differing only in case is another transaction"
    );
    assert!(
        !store.credit(&SIGNATURE.replace('V', "v"), &svm).await,
        "and is credited under its own case"
    );
    store.release(&evm);
    assert!(freed(store, &evm).await);
}
