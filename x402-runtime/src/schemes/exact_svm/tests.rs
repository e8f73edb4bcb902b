//! Payments built with the Solana crates (keys from fixed seeds: ed25519 seed = 32 × byte n),
//! one refusal per rule, and one transaction produced by the official client.

use ed25519_dalek::{Signer as _, SigningKey};
use proptest::prelude::*;
use solana_compute_budget_interface::ComputeBudgetInstruction;
use solana_message::compiled_instruction::CompiledInstruction;
use solana_message::v0::MessageAddressTableLookup;
use solana_message::{Address, Hash, MessageHeader, VersionedMessage, legacy, v0};
use solana_transaction::Signature;
use solana_transaction::versioned::VersionedTransaction;
use spl_token_interface::instruction::TokenInstruction;

use super::program::{self, Key};
use super::rules::codes;
use super::*;

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn key(seed: u8) -> Key {
    signing_key(seed).verifying_key().to_bytes()
}

const AMOUNT: u64 = 10_000;
const FEE_PAYER: u8 = 1;
const PAYER: u8 = 2;
const PAY_TO: u8 = 3;

fn terms() -> SvmTerms {
    SvmTerms {
        mint: program::USDC_DEVNET,
        pay_to: key(PAY_TO),
        amount: AMOUNT,
        fee_payer: key(FEE_PAYER),
        decimals: Some(6),
        memo: None,
    }
}

/// One instruction before compilation: program, accounts (key, writable), data.
#[derive(Clone)]
struct Ix {
    program: Key,
    accounts: Vec<(Key, bool)>,
    data: Vec<u8>,
}

fn limit(units: u32) -> Ix {
    Ix {
        program: program::COMPUTE_BUDGET_PROGRAM,
        accounts: vec![],
        data: ComputeBudgetInstruction::set_compute_unit_limit(units).data,
    }
}

fn price(micro_lamports: u64) -> Ix {
    Ix {
        program: program::COMPUTE_BUDGET_PROGRAM,
        accounts: vec![],
        data: ComputeBudgetInstruction::set_compute_unit_price(micro_lamports).data,
    }
}

fn transfer(authority: Key, mint: Key, pay_to: Key, amount: u64) -> Ix {
    let token = program::TOKEN_PROGRAM;
    Ix {
        program: token,
        accounts: vec![
            (
                program::associated_token_account(&authority, &mint, &token),
                true,
            ),
            (mint, false),
            (
                program::associated_token_account(&pay_to, &mint, &token),
                true,
            ),
            (authority, false),
        ],
        data: TokenInstruction::TransferChecked {
            amount,
            decimals: 6,
        }
        .pack(),
    }
}

fn memo(text: &str) -> Ix {
    Ix {
        program: program::MEMO_PROGRAM,
        accounts: vec![],
        data: text.as_bytes().to_vec(),
    }
}

/// A transaction as the official client builds it (v0, fee payer unsigned).
struct Build {
    signers: Vec<u8>,
    instructions: Vec<Ix>,
    legacy: bool,
    lookup: bool,
}

impl Build {
    fn official() -> Self {
        Self {
            signers: vec![PAYER],
            instructions: vec![
                limit(20_000),
                price(1),
                transfer(key(PAYER), program::USDC_DEVNET, key(PAY_TO), AMOUNT),
                memo("00112233445566778899aabbccddeeff"),
            ],
            legacy: false,
            lookup: false,
        }
    }

    fn with(mut self, index: usize, ix: Ix) -> Self {
        self.instructions[index] = ix;
        self
    }

    /// Static keys: fee payer, the signers, writable then read-only unsigned keys.
    fn keys(&self) -> (Vec<Key>, MessageHeader) {
        let mut keys: Vec<Key> = vec![key(FEE_PAYER)];
        keys.extend(self.signers.iter().map(|&seed| key(seed)));
        let signed = keys.len();
        let mut writable = Vec::new();
        let mut readonly = Vec::new();
        for ix in &self.instructions {
            for &(account, is_writable) in &ix.accounts {
                if is_writable {
                    writable.push(account);
                } else {
                    readonly.push(account);
                }
            }
            readonly.push(ix.program);
        }
        for account in writable {
            if !keys.contains(&account) {
                keys.push(account);
            }
        }
        let before = keys.len();
        for account in readonly {
            if !keys.contains(&account) {
                keys.push(account);
            }
        }
        let header = MessageHeader {
            num_required_signatures: u8::try_from(signed).expect("few signers"),
            num_readonly_signed_accounts: u8::try_from(signed - 1).expect("few signers"),
            num_readonly_unsigned_accounts: u8::try_from(keys.len() - before).expect("few keys"),
        };
        (keys, header)
    }

    fn message(&self) -> VersionedMessage {
        let (keys, header) = self.keys();
        let index = |account: &Key| {
            u8::try_from(
                keys.iter()
                    .position(|k| k == account)
                    .expect("compiled key"),
            )
            .expect("few keys")
        };
        let instructions = self
            .instructions
            .iter()
            .map(|ix| CompiledInstruction {
                program_id_index: index(&ix.program),
                accounts: ix
                    .accounts
                    .iter()
                    .map(|(account, _)| index(account))
                    .collect(),
                data: ix.data.clone(),
            })
            .collect();
        let account_keys = keys.iter().map(|k| Address::new_from_array(*k)).collect();
        let recent_blockhash = Hash::new_from_array([7; 32]);
        if self.legacy {
            return VersionedMessage::Legacy(legacy::Message {
                header,
                account_keys,
                recent_blockhash,
                instructions,
            });
        }
        let address_table_lookups = if self.lookup {
            vec![MessageAddressTableLookup {
                account_key: Address::new_from_array(key(9)),
                writable_indexes: vec![0],
                readonly_indexes: vec![],
            }]
        } else {
            vec![]
        };
        VersionedMessage::V0(v0::Message {
            header,
            account_keys,
            recent_blockhash,
            instructions,
            address_table_lookups,
        })
    }

    /// The wire bytes: slot 0 (fee payer) empty, each signer's signature over the message.
    fn wire(&self) -> Vec<u8> {
        let message = self.message();
        let bytes = message.serialize();
        let mut signatures = vec![Signature::from([0; 64])];
        for &seed in &self.signers {
            signatures.push(Signature::from(signing_key(seed).sign(&bytes).to_bytes()));
        }
        let tx = VersionedTransaction {
            signatures,
            message,
        };
        wincode::serialize(&tx).expect("a transaction serializes")
    }

    fn check(&self) -> Result<SvmPaymentFacts, &'static str> {
        check_with(self, &terms())
    }
}

fn check_with(build: &Build, terms: &SvmTerms) -> Result<SvmPaymentFacts, &'static str> {
    let tx = SvmTransaction::from_wire(build.wire()).map_err(|error| error.code())?;
    check(&tx, terms)
}

#[test]
fn accepts_the_official_layout() {
    let build = Build::official();
    let facts = build.check().expect("the payment is accepted");
    let token = program::TOKEN_PROGRAM;
    assert_eq!(facts.payer, key(PAYER));
    assert_eq!(facts.amount, AMOUNT);
    assert_eq!(
        facts.destination,
        program::associated_token_account(&key(PAY_TO), &program::USDC_DEVNET, &token)
    );
    assert_eq!(
        facts.source,
        program::associated_token_account(&key(PAYER), &program::USDC_DEVNET, &token)
    );
    let tx = SvmTransaction::from_wire(build.wire()).expect("decodes");
    use sha2::Digest as _;
    assert_eq!(
        facts.message_hash,
        <[u8; 32]>::from(sha2::Sha256::digest(build.message().serialize()))
    );
    assert_eq!(tx.message_bytes(), build.message().serialize().as_slice());
    assert_eq!(tx.header.required_signatures, 2);
    assert!(tx.v0);
}

#[test]
fn accepts_a_legacy_message_three_instructions_and_lighthouse() {
    let mut build = Build::official();
    build.legacy = true;
    build.instructions.truncate(3);
    assert!(build.check().is_ok());
    let mut build = Build::official();
    build.instructions.push(Ix {
        program: program::LIGHTHOUSE_PROGRAM,
        accounts: vec![],
        data: vec![1, 2, 3],
    });
    assert!(build.check().is_ok());
}

#[test]
fn token_2022_pays_to_its_own_associated_account() {
    let mint = program::USDC_DEVNET;
    let mut ix = transfer(key(PAYER), mint, key(PAY_TO), AMOUNT);
    ix.program = program::TOKEN_2022_PROGRAM;
    // Derived under the Token program, the destination is not the Token-2022 one.
    assert_eq!(
        Build::official().with(2, ix.clone()).check(),
        Err(codes::RECIPIENT_MISMATCH)
    );
    let token_2022 = program::TOKEN_2022_PROGRAM;
    ix.accounts[2].0 = program::associated_token_account(&key(PAY_TO), &mint, &token_2022);
    let facts = Build::official().with(2, ix).check().expect("accepted");
    assert_eq!(facts.token_program, token_2022);
}

#[test]
fn the_fee_payer_signature_goes_into_slot_zero() {
    let wire = Build::official().wire();
    let tx = SvmTransaction::from_wire(wire.clone()).expect("decodes");
    let signature = signing_key(FEE_PAYER).sign(tx.message_bytes()).to_bytes();
    let signed = tx.with_fee_payer_signature(&signature);
    assert_eq!(signed.len(), wire.len());
    assert_eq!(&signed[65..], &wire[65..]);
    let decoded: VersionedTransaction = wincode::deserialize_exact(&signed).expect("decodes");
    // Every signature now verifies, the fee payer's included.
    let message = decoded.message.serialize();
    for (signer, signature) in decoded
        .message
        .static_account_keys()
        .iter()
        .zip(&decoded.signatures)
    {
        let key = ed25519_dalek::VerifyingKey::from_bytes(&signer.to_bytes()).expect("a key");
        let signature = ed25519_dalek::Signature::from_bytes(signature.as_array());
        assert!(key.verify_strict(&message, &signature).is_ok());
    }
    let again = SvmTransaction::from_wire(signed).expect("decodes");
    assert_eq!(again.message_hash(), tx.message_hash());
}

#[test]
fn refuses_another_mint() {
    let other = program::USDC_MAINNET;
    let build = Build::official().with(2, transfer(key(PAYER), other, key(PAY_TO), AMOUNT));
    assert_eq!(build.check(), Err(codes::MINT_MISMATCH));
}

#[test]
fn refuses_another_amount() {
    let mint = program::USDC_DEVNET;
    for amount in [AMOUNT - 1, AMOUNT + 1] {
        let build = Build::official().with(2, transfer(key(PAYER), mint, key(PAY_TO), amount));
        assert_eq!(build.check(), Err(codes::AMOUNT_MISMATCH));
    }
}

#[test]
fn refuses_another_destination() {
    let mint = program::USDC_DEVNET;
    let build = Build::official().with(2, transfer(key(PAYER), mint, key(8), AMOUNT));
    assert_eq!(build.check(), Err(codes::RECIPIENT_MISMATCH));
    // payTo itself (the wallet, not its token account) is not the destination either.
    let mut ix = transfer(key(PAYER), mint, key(PAY_TO), AMOUNT);
    ix.accounts[2] = (key(PAY_TO), true);
    assert_eq!(
        Build::official().with(2, ix).check(),
        Err(codes::RECIPIENT_MISMATCH)
    );
}

#[test]
fn refuses_other_decimals_when_known() {
    let mut ix = transfer(key(PAYER), program::USDC_DEVNET, key(PAY_TO), AMOUNT);
    ix.data = TokenInstruction::TransferChecked {
        amount: AMOUNT,
        decimals: 9,
    }
    .pack();
    let build = Build::official().with(2, ix);
    assert_eq!(build.check(), Err(codes::DECIMALS_MISMATCH));
    let unknown = SvmTerms {
        decimals: None,
        ..terms()
    };
    assert!(check_with(&build, &unknown).is_ok());
}

#[test]
fn refuses_another_fee_payer() {
    let other = SvmTerms {
        fee_payer: key(8),
        ..terms()
    };
    assert_eq!(
        check_with(&Build::official(), &other),
        Err(codes::FEE_PAYER_MISMATCH)
    );
}

#[test]
fn refuses_the_fee_payer_as_authority() {
    let mut build = Build::official().with(
        2,
        transfer(key(FEE_PAYER), program::USDC_DEVNET, key(PAY_TO), AMOUNT),
    );
    build.signers = vec![];
    assert_eq!(build.check(), Err(codes::FEE_PAYER_TRANSFERRING_FUNDS));
    // The fee payer's token account as the source, with the payer as (delegate) authority.
    let mut ix = transfer(key(PAYER), program::USDC_DEVNET, key(PAY_TO), AMOUNT);
    let token = program::TOKEN_PROGRAM;
    ix.accounts[0] = (
        program::associated_token_account(&key(FEE_PAYER), &program::USDC_DEVNET, &token),
        true,
    );
    assert_eq!(
        Build::official().with(2, ix).check(),
        Err(codes::FEE_PAYER_TRANSFERRING_FUNDS)
    );
}

#[test]
fn refuses_the_fee_payer_in_an_instruction() {
    let mut build = Build::official();
    build.instructions[3].accounts.push((key(FEE_PAYER), false));
    assert_eq!(build.check(), Err(codes::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS));
    // The fee payer as the program of an instruction: Solana's own sanitizing refuses it.
    let mut build = Build::official();
    build.instructions[3].program = key(FEE_PAYER);
    assert_eq!(build.check(), Err(codes::COULD_NOT_BE_DECODED));
    let mut build = Build::official();
    build.instructions[0].accounts.push((key(FEE_PAYER), true));
    // A compute budget instruction with accounts is not the one the layout asks for.
    assert_eq!(build.check(), Err(codes::COMPUTE_LIMIT_INSTRUCTION));
}

#[test]
fn refuses_an_unknown_or_extra_instruction() {
    let unknown = Ix {
        program: key(8),
        accounts: vec![],
        data: vec![],
    };
    let build = Build::official().with(3, unknown.clone());
    assert_eq!(build.check(), Err(codes::UNKNOWN_FOURTH_INSTRUCTION));
    let mut build = Build::official();
    build.instructions.extend([memo("a"), memo("b"), unknown]);
    assert_eq!(build.check(), Err(codes::UNKNOWN_SEVENTH_INSTRUCTION));
    let mut build = Build::official();
    build
        .instructions
        .extend([memo("a"), memo("b"), memo("c"), memo("d")]);
    assert_eq!(build.check(), Err(codes::INSTRUCTIONS_LENGTH));
    let mut build = Build::official();
    build.instructions.truncate(2);
    assert_eq!(build.check(), Err(codes::INSTRUCTIONS_LENGTH));
    // A second transfer in place of the memo is not an optional instruction either.
    let again = transfer(key(PAYER), program::USDC_DEVNET, key(PAY_TO), AMOUNT);
    let build = Build::official().with(3, again);
    assert_eq!(build.check(), Err(codes::UNKNOWN_FOURTH_INSTRUCTION));
}

#[test]
fn refuses_compute_budget_out_of_bounds_or_out_of_place() {
    let cap = program::MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS;
    assert!(Build::official().with(1, price(cap)).check().is_ok());
    let build = Build::official().with(1, price(cap + 1));
    assert_eq!(build.check(), Err(codes::COMPUTE_PRICE_TOO_HIGH));
    let cap = program::MAX_COMPUTE_UNIT_LIMIT;
    assert!(Build::official().with(0, limit(cap)).check().is_ok());
    let build = Build::official().with(0, limit(cap + 1));
    assert_eq!(build.check(), Err(codes::COMPUTE_LIMIT_TOO_HIGH));
    let build = Build::official().with(0, price(1)).with(1, limit(20_000));
    assert_eq!(build.check(), Err(codes::COMPUTE_LIMIT_INSTRUCTION));
    let build = Build::official().with(1, limit(20_000));
    assert_eq!(build.check(), Err(codes::COMPUTE_PRICE_INSTRUCTION));
    let mut short = price(1);
    short.data.pop();
    assert_eq!(
        Build::official().with(1, short).check(),
        Err(codes::COMPUTE_PRICE_INSTRUCTION)
    );
}

#[test]
fn refuses_a_transfer_that_is_not_exactly_transfer_checked() {
    let good = transfer(key(PAYER), program::USDC_DEVNET, key(PAY_TO), AMOUNT);
    let mut plain = good.clone();
    plain.data = TokenInstruction::Transfer { amount: AMOUNT }.pack();
    let mut five = good.clone();
    five.accounts.push((key(8), false));
    let mut trailing = good.clone();
    trailing.data.push(0);
    let mut other_program = good;
    other_program.program = key(8);
    for ix in [plain, five, trailing, other_program] {
        assert_eq!(
            Build::official().with(2, ix).check(),
            Err(codes::NO_TRANSFER_INSTRUCTION)
        );
    }
}

#[test]
fn refuses_a_bad_payer_signature() {
    let build = Build::official();
    let mut wire = build.wire();
    // Slot 1 (the payer's signature) starts after the count and slot 0.
    wire[1 + 64 + 10] ^= 1;
    let tx = SvmTransaction::from_wire(wire).expect("still decodes");
    assert_eq!(check(&tx, &terms()), Err(codes::SIGNATURE_INVALID));
    // Signed by another key than the authority's.
    let mut wire = build.wire();
    let other = signing_key(8).sign(build.message().serialize().as_slice());
    wire[65..129].copy_from_slice(&other.to_bytes());
    let tx = SvmTransaction::from_wire(wire).expect("still decodes");
    assert_eq!(check(&tx, &terms()), Err(codes::SIGNATURE_INVALID));
}

#[test]
fn refuses_a_third_signer_and_an_unsigned_authority() {
    let mut build = Build::official();
    build.signers.push(8);
    assert_eq!(build.check(), Err(codes::EXCESSIVE_SIGNERS));
    // The authority is not a signer: only the fee payer signs.
    let mut build = Build::official();
    build.signers.clear();
    assert_eq!(build.check(), Err(codes::AUTHORITY_NOT_SIGNER));
}

#[test]
fn checks_the_offer_memo() {
    let with_memo = |text: &str| SvmTerms {
        memo: Some(text.to_owned()),
        ..terms()
    };
    let build = Build::official().with(3, memo("order-7"));
    assert!(check_with(&build, &with_memo("order-7")).is_ok());
    assert_eq!(
        check_with(&build, &with_memo("order-8")),
        Err(codes::MEMO_MISMATCH)
    );
    let mut two = Build::official().with(3, memo("order-7"));
    two.instructions.push(memo("order-7"));
    assert_eq!(
        check_with(&two, &with_memo("order-7")),
        Err(codes::MEMO_COUNT)
    );
    let long = "x".repeat(program::MAX_MEMO_BYTES + 1);
    let build = Build::official().with(3, memo(&long));
    assert_eq!(build.check(), Err(codes::MEMO_TOO_LONG));
}

#[test]
fn refuses_malformed_payloads() {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let wire = Build::official().wire();
    let json = format!(r#"{{"transaction":"{}"}}"#, b64(&wire));
    assert!(SvmTransaction::from_payload_json(&json).is_ok());
    let extra = format!(r#"{{"transaction":"{}","memo":"x"}}"#, b64(&wire));
    assert!(matches!(
        SvmTransaction::from_payload_json(&extra),
        Err(PayloadError::Shape(_))
    ));
    assert!(matches!(
        SvmTransaction::from_payload_json(r#"{"authorization":{}}"#),
        Err(PayloadError::Shape(_))
    ));
    assert_eq!(
        SvmTransaction::from_base64("not base64!"),
        Err(PayloadError::Base64)
    );
    let mut trailing = wire.clone();
    trailing.push(0);
    assert!(matches!(
        SvmTransaction::from_wire(trailing),
        Err(PayloadError::Malformed(_))
    ));
    let truncated = wire[..wire.len() - 1].to_vec();
    assert!(matches!(
        SvmTransaction::from_wire(truncated),
        Err(PayloadError::Malformed(_))
    ));
    assert!(matches!(
        SvmTransaction::from_wire(vec![0; 2000]),
        Err(PayloadError::TooLarge(2000))
    ));
    assert!(matches!(
        SvmTransaction::from_base64(&b64(&[0; 2000])),
        Err(PayloadError::TooLarge(_))
    ));
    assert!(matches!(
        SvmTransaction::from_wire(vec![]),
        Err(PayloadError::Malformed(_))
    ));
    // One signature for a message that requires two.
    let mut one = vec![1];
    one.extend_from_slice(&wire[65..]);
    assert!(matches!(
        SvmTransaction::from_wire(one),
        Err(PayloadError::Malformed(_))
    ));
    assert_eq!(PayloadError::Base64.code(), codes::COULD_NOT_BE_DECODED);
}

#[test]
fn refuses_v1_messages_and_lookup_tables() {
    // A v1 transaction starts with its version byte, whose top bit is set.
    let mut v1 = Build::official().wire();
    v1[0] = 0x81;
    assert_eq!(SvmTransaction::from_wire(v1), Err(PayloadError::V1Message));
    let mut build = Build::official();
    build.lookup = true;
    assert_eq!(
        SvmTransaction::from_wire(build.wire()),
        Err(PayloadError::AddressTableLookup)
    );
    assert_eq!(build.check(), Err(codes::ADDRESS_TABLE_LOOKUP));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes are read or refused, never a panic; so are mutations of a real payment.
    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1300),
                    flips in proptest::collection::vec((0usize..600, any::<u8>()), 1..6)) {
        if let Ok(tx) = SvmTransaction::from_wire(bytes) {
            let _ = check(&tx, &terms());
        }
        let mut wire = Build::official().wire();
        for (at, byte) in flips {
            let len = wire.len();
            wire[at % len] ^= byte;
        }
        if let Ok(tx) = SvmTransaction::from_wire(wire) {
            let _ = check(&tx, &terms());
        }
    }
}

/// A payment made by the official client (`@x402/svm` 2.27.0 `ExactSvmScheme`, against a LiteSVM
/// JSON-RPC front with USDC planted at the devnet mint; payer = seed 2, fee payer = seed 3, payTo
/// = seed 4), which the official facilitator verified (`isValid: true`). Memo = 32 random hex
/// characters, fee payer's slot empty; 496 bytes.
const OFFICIAL_PAYMENT: &str = "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAADiGl3evCt8ce8KMHOTsMNc7m+FH6b+ctj52EwsnbaRv+JVACZrDED9BlWzN1KrUuMbhyMdDqH+nGkw7RksIfUCgAIBBAjtSSjGKNHCxurpAziQWZVhKVknOlxj+TY2wUYUrIc30YE5dw6ofRdfVqNUZsNMfszLjYqRtO43ol32D1uPybOU7a8bnBYfbWmKRrmweAmkoY2/U8QytqJL8bEIg/zLIpj3j/v6j+jfTMORXJLD7QwIJeLu9vRSRWAEZNIbv6BHJDtELLORIVfxOpM9ATQoLQMrX/7NAaLb8bd5BgjfAC6nAwZGb+UhFzL/7K26csOb57yM5bvF9xJrLEObOkAAAAAFSlNamSkhBk0k6HFg2jh8fDW13bySu4HkH6hAQQVEjQbd9uHXZaGT2cvhRs7reawctIXtX1s3kTqM9YV+/wCpruutSnlvzC4V3ExgYbRe2bNz8mrfx5jKfS2MxYGCcY4EBQAFAiBOAAAFAAkDAQAAAAAAAAAHBAIEAwEKDBAnAAAAAAAABgYAIGVjYzU1YmY1OTVmZDk2ZjhiNGFiZWU5OWVjYjIxYmM1AA==";

fn official_terms() -> SvmTerms {
    let parse = |text: &str| program::parse_key(text).expect("a base58 address");
    SvmTerms {
        mint: parse("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"),
        pay_to: parse("EdmxWPmx2WH6WgFfTdu9xfkYf3k1g5wD1zccTVySEEh1"),
        amount: 10_000,
        fee_payer: parse("GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse"),
        decimals: Some(6),
        memo: None,
    }
}

#[test]
fn accepts_the_official_clients_payment() {
    let payload = format!(r#"{{"transaction":"{OFFICIAL_PAYMENT}"}}"#);
    let tx = SvmTransaction::from_payload_json(&payload).expect("the official payment decodes");
    assert_eq!(tx.wire().len(), 496);
    assert!(tx.v0);
    assert_eq!(tx.signatures[0], [0; 64]);
    let facts = check(&tx, &official_terms()).expect("the official payment is accepted");
    let text = |key: &Key| program::key_to_string(key);
    assert_eq!(
        text(&facts.payer),
        "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu"
    );
    // The associated token accounts the official client derived.
    assert_eq!(
        text(&facts.source),
        "GzpVTWkyGGfBXRaprnrhV3JtGj3TT52z5w2CrEJsTfjm"
    );
    assert_eq!(
        text(&facts.destination),
        "HfP3RZibPCj2EdqEyR7mSkKYSUzFPKsbRrMoR4i1mbmd"
    );
    assert_eq!(facts.amount, 10_000);
    assert_eq!(facts.token_program, program::TOKEN_PROGRAM);
    // The same seeds give the same keys here.
    assert_eq!(facts.payer, key(2));
    assert_eq!(official_terms().fee_payer, key(3));
    assert_eq!(official_terms().pay_to, key(4));
    let pricier = SvmTerms {
        amount: 10_001,
        ..official_terms()
    };
    assert_eq!(check(&tx, &pricier), Err(codes::AMOUNT_MISMATCH));
}

/// The scheme offers on Solana terms only, names the fee payer `/supported` lists, and refuses
/// every payment until it does.
#[test]
fn offers_on_solana_with_the_fee_payer_of_supported() {
    use crate::network::{Asset, Network, SOLANA_DEVNET, SvmAddress};
    use crate::price::{Currency, Price};
    use crate::proto::SupportedResponse;
    use crate::schemes::{OfferTerms, Scheme as _, Window};

    let devnet = Network::from_caip2(SOLANA_DEVNET).expect("devnet");
    let usdc = Asset::builtin(&devnet, Currency::Usdc).expect("USDC");
    let price = Price::from_atomic(u128::from(AMOUNT), Currency::Usdc);
    let supported: SupportedResponse = serde_json::from_value(serde_json::json!({"kinds": [
        {"x402Version": 2, "scheme": "exact", "network": SOLANA_DEVNET,
         "extra": {"feePayer": program::key_to_string(&key(FEE_PAYER))}}]}))
    .expect("supported");
    let terms = |supported| OfferTerms {
        network: &devnet,
        asset: &usdc,
        price: &price,
        pay_to: AccountId::Svm(SvmAddress(key(PAY_TO))),
        max_timeout_seconds: 60,
        upto: false,
        supported,
    };
    let window = Window {
        now: 0,
        earliest: 0,
        latest: 0,
    };
    let payment = SvmPayment::new(
        SvmTransaction::from_wire(Build::official().wire()).expect("decodes"),
        1_000,
    );
    assert_eq!(payment.deadline(), 1_000 + PAYMENT_LIFETIME);
    assert_eq!(payment.payer(), AccountId::Svm(SvmAddress(key(PAYER))));
    assert_eq!(payment.amount(), U256::from(AMOUNT));

    let offer = ExactSvm.offer(&terms(Some(&supported))).expect("an offer");
    let extra = offer.requirements.extra.as_ref().expect("extra");
    assert_eq!(extra["feePayer"], program::key_to_string(&key(FEE_PAYER)));
    assert_eq!(offer.requirements.amount, AMOUNT.to_string());
    assert_eq!(offer.check.check(&offer, &payment, &window), Ok(()));

    let unknown = ExactSvm.offer(&terms(None)).expect("an offer");
    assert!(
        unknown
            .requirements
            .extra
            .as_ref()
            .is_some_and(|e| e.is_empty())
    );
    assert_eq!(
        unknown.check.check(&unknown, &payment, &window),
        Err(Rejection::Payment(codes::MISSING_FEE_PAYER))
    );
    let upto = OfferTerms {
        upto: true,
        ..terms(Some(&supported))
    };
    assert!(ExactSvm.offer(&upto).is_none(), "no upto on Solana");
    // Two payloads that differ only in the fee payer's slot are one payment.
    let cosigned =
        SvmTransaction::from_wire(payment.transaction.with_fee_payer_signature(&[9; 64]))
            .expect("decodes");
    let cosigned = SvmPayment::new(cosigned, 2_000);
    assert_eq!(cosigned.signed(), payment.signed());
    assert_eq!(
        cosigned.replay_key(SOLANA_DEVNET, usdc.address),
        payment.replay_key(SOLANA_DEVNET, usdc.address)
    );
}
