//! The payer's side of `exact` on Solana: the payment transaction built and partially signed as
//! the official client builds it, so that any facilitator that accepts the official client's
//! payments accepts these.
//!
//! A v0 message without address lookup tables whose fee payer is the offer's `extra.feePayer`
//! (its signature slot left as 64 zero bytes for the facilitator), signed by the payer in slot 1,
//! with four instructions in this order: `SetComputeUnitLimit(20 000)`,
//! `SetComputeUnitPrice(1 microlamport)`, `TransferChecked` of the amount from the payer's
//! associated token account to `payTo`'s under the mint's token program, and a memo (the offer's
//! `extra.memo`, else 16 random bytes as 32 lowercase hex characters, which makes each payment
//! unique).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use solana_compute_budget_interface::ComputeBudgetInstruction;
use solana_message::{AccountMeta, Address, Hash, Instruction, VersionedMessage, v0};
use solana_transaction::Signature;
use solana_transaction::versioned::VersionedTransaction;
use spl_token_interface::instruction::TokenInstruction;

use super::payload::SvmTransaction;
use super::program::{self, Key, MAX_MEMO_BYTES};

/// The compute unit limit the official client asks for (a transfer uses well under 10 000).
pub const COMPUTE_UNIT_LIMIT: u32 = 20_000;
/// The compute unit price the official client offers, in microlamports per compute unit.
pub const COMPUTE_UNIT_PRICE_MICROLAMPORTS: u64 = 1;

/// What a payment transaction moves, and the chain facts it is built on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SvmTransfer {
    /// The facilitator's fee payer (the offer's `extra.feePayer`): the transaction's fee payer,
    /// which signs slot 0 later.
    pub fee_payer: Key,
    /// The token's mint (the offer's `asset`).
    pub mint: Key,
    /// The recipient's wallet (the offer's `payTo`); the transfer goes to its associated token
    /// account.
    pub pay_to: Key,
    /// The amount, in the mint's atomic units.
    pub amount: u64,
    /// The mint's decimals (`TransferChecked` states them).
    pub decimals: u8,
    /// The program that owns the mint: SPL Token or Token-2022.
    pub token_program: Key,
    /// The recent blockhash the transaction is bound to (it lands only while it is recent).
    pub recent_blockhash: [u8; 32],
    /// The offer's memo (`extra.memo`), if it names one.
    pub memo: Option<String>,
}

/// Why a payment transaction could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The token program is neither SPL Token nor Token-2022.
    NotATokenProgram(String),
    /// The payer would be the fee payer: the facilitator would pay with the payer's funds.
    PayerIsFeePayer,
    /// The offer's memo is longer than 256 bytes.
    MemoTooLong(usize),
    /// The message could not be compiled or the transaction encoded.
    Encoding(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotATokenProgram(program) => write!(
                f,
                "the mint is owned by {program}, neither SPL Token nor Token-2022"
            ),
            Self::PayerIsFeePayer => f.write_str("the offer's fee payer is the payer itself"),
            Self::MemoTooLong(len) => write!(
                f,
                "the offer's memo has {len} bytes, above the {MAX_MEMO_BYTES} allowed"
            ),
            Self::Encoding(why) => write!(f, "the transaction cannot be encoded: {why}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// The four instructions of a payment by `payer`, in the official client's order.
pub fn instructions(transfer: &SvmTransfer, payer: &Key, memo: &str) -> Vec<Instruction> {
    let address = |key: &Key| Address::new_from_array(*key);
    // The interface crates speak an older generation's `Instruction`: their data is taken as is.
    let compute_budget = |data: Vec<u8>| Instruction {
        program_id: address(&program::COMPUTE_BUDGET_PROGRAM),
        accounts: Vec::new(),
        data,
    };
    let source = program::associated_token_account(payer, &transfer.mint, &transfer.token_program);
    let destination = program::associated_token_account(
        &transfer.pay_to,
        &transfer.mint,
        &transfer.token_program,
    );
    let transfer_checked = Instruction {
        program_id: address(&transfer.token_program),
        accounts: vec![
            AccountMeta::new(address(&source), false),
            AccountMeta::new_readonly(address(&transfer.mint), false),
            AccountMeta::new(address(&destination), false),
            AccountMeta::new_readonly(address(payer), true),
        ],
        data: TokenInstruction::TransferChecked {
            amount: transfer.amount,
            decimals: transfer.decimals,
        }
        .pack(),
    };
    vec![
        compute_budget(ComputeBudgetInstruction::set_compute_unit_limit(COMPUTE_UNIT_LIMIT).data),
        compute_budget(
            ComputeBudgetInstruction::set_compute_unit_price(COMPUTE_UNIT_PRICE_MICROLAMPORTS).data,
        ),
        transfer_checked,
        Instruction {
            program_id: address(&program::MEMO_PROGRAM),
            accounts: Vec::new(),
            data: memo.as_bytes().to_vec(),
        },
    ]
}

/// Builds the payment transaction of `transfer` and signs it with `payer` (slot 1; the fee
/// payer's slot 0 stays 64 zero bytes). The memo is the offer's, else 32 random hex characters.
///
/// The result reads back through [`SvmTransaction::from_wire`], as a facilitator reads it; its
/// [`payload`] is the scheme's payload object.
pub fn build(
    transfer: &SvmTransfer,
    payer: &ed25519_dalek::SigningKey,
) -> Result<SvmTransaction, BuildError> {
    let memo = match &transfer.memo {
        Some(memo) => memo.clone(),
        None => random_memo()?,
    };
    build_with_memo(transfer, payer, &memo)
}

/// [`build`] with the memo given.
pub fn build_with_memo(
    transfer: &SvmTransfer,
    payer: &ed25519_dalek::SigningKey,
    memo: &str,
) -> Result<SvmTransaction, BuildError> {
    if !program::is_token_program(&transfer.token_program) {
        return Err(BuildError::NotATokenProgram(program::key_to_string(
            &transfer.token_program,
        )));
    }
    if memo.len() > MAX_MEMO_BYTES {
        return Err(BuildError::MemoTooLong(memo.len()));
    }
    let payer_key = payer.verifying_key().to_bytes();
    if payer_key == transfer.fee_payer {
        return Err(BuildError::PayerIsFeePayer);
    }
    let encoding = |why: &dyn std::fmt::Display| BuildError::Encoding(why.to_string());
    let message = v0::Message::try_compile(
        &Address::new_from_array(transfer.fee_payer),
        &instructions(transfer, &payer_key, memo),
        &[],
        Hash::new_from_array(transfer.recent_blockhash),
    )
    .map_err(|e| encoding(&e))?;
    let message = VersionedMessage::V0(message);
    let signature = ed25519_dalek::Signer::sign(payer, &message.serialize());
    let tx = VersionedTransaction {
        signatures: vec![Signature::default(), Signature::from(signature.to_bytes())],
        message,
    };
    let wire = wincode::serialize(&tx).map_err(|e| encoding(&e))?;
    SvmTransaction::from_wire(wire).map_err(|e| encoding(&e))
}

/// The scheme's payload object of a built transaction: `{"transaction": "<base64>"}`.
pub fn payload(tx: &SvmTransaction) -> serde_json::Value {
    serde_json::json!({ "transaction": BASE64.encode(tx.wire()) })
}

/// 16 random bytes as 32 lowercase hex characters, as the official client's default memo.
fn random_memo() -> Result<String, BuildError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| BuildError::Encoding(format!("no randomness for the memo: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemes::exact_svm::rules::{self, SvmTerms, codes};

    const PAYER_SEED: [u8; 32] = [6; 32];
    const FEE_PAYER_SEED: [u8; 32] = [3; 32];
    const MERCHANT_SEED: [u8; 32] = [4; 32];

    fn public(seed: [u8; 32]) -> Key {
        ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes()
    }

    fn transfer() -> SvmTransfer {
        SvmTransfer {
            fee_payer: public(FEE_PAYER_SEED),
            mint: program::USDC_DEVNET,
            pay_to: public(MERCHANT_SEED),
            amount: 10_000,
            decimals: 6,
            token_program: program::TOKEN_PROGRAM,
            recent_blockhash: [7; 32],
            memo: None,
        }
    }

    fn terms(transfer: &SvmTransfer) -> SvmTerms {
        SvmTerms {
            mint: transfer.mint,
            pay_to: transfer.pay_to,
            amount: transfer.amount,
            fee_payer: transfer.fee_payer,
            decimals: Some(transfer.decimals),
            memo: transfer.memo.clone(),
        }
    }

    fn payer() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&PAYER_SEED)
    }

    #[test]
    fn what_is_built_passes_the_rules_for_its_terms() {
        let transfer = transfer();
        let tx = build(&transfer, &payer()).expect("built");
        let facts = rules::check(&tx, &terms(&transfer)).expect("accepted");
        assert_eq!(facts.payer, public(PAYER_SEED));
        assert_eq!(facts.amount, 10_000);
        assert_eq!(
            facts.destination,
            program::associated_token_account(
                &transfer.pay_to,
                &transfer.mint,
                &program::TOKEN_PROGRAM
            )
        );
        assert_eq!(tx.recent_blockhash, [7; 32]);
        assert!(tx.v0);
        assert!(tx.wire().len() <= program::MAX_TRANSACTION_BYTES);
        // Read back from its payload object as a facilitator reads it.
        let json = payload(&tx).to_string();
        assert_eq!(SvmTransaction::from_payload_json(&json), Ok(tx));
    }

    #[test]
    fn what_is_built_fails_the_rules_for_other_terms() {
        let transfer = transfer();
        let tx = build(&transfer, &payer()).expect("built");
        type Change = fn(&mut SvmTerms);
        let cases: [(Change, &str); 5] = [
            (|t| t.amount += 1, codes::AMOUNT_MISMATCH),
            (|t| t.mint = program::USDC_MAINNET, codes::MINT_MISMATCH),
            (|t| t.pay_to = [9; 32], codes::RECIPIENT_MISMATCH),
            (|t| t.fee_payer = [9; 32], codes::FEE_PAYER_MISMATCH),
            (|t| t.decimals = Some(9), codes::DECIMALS_MISMATCH),
        ];
        for (change, code) in cases {
            let mut terms = terms(&transfer);
            change(&mut terms);
            assert_eq!(rules::check(&tx, &terms), Err(code));
        }
    }

    #[test]
    fn the_payer_signs_slot_one_and_the_fee_payer_slot_is_empty() {
        let tx = build(&transfer(), &payer()).expect("built");
        assert_eq!(tx.signatures.len(), 2);
        assert_eq!(tx.signatures[0], [0; 64]);
        assert_eq!(tx.keys[0], public(FEE_PAYER_SEED));
        assert_eq!(tx.keys[1], public(PAYER_SEED));
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public(PAYER_SEED)).expect("key");
        let signature = ed25519_dalek::Signature::from_bytes(&tx.signatures[1]);
        key.verify_strict(tx.message_bytes(), &signature)
            .expect("the payer's signature verifies over the message");
        assert_eq!(
            (
                tx.header.required_signatures,
                tx.header.readonly_signed,
                tx.header.readonly_unsigned
            ),
            (2, 1, 4),
            "the official client's header"
        );
    }

    /// The instruction bytes of the official client (`@x402/svm` 2.27.0, decoded from a payment
    /// it made): limit 20 000, price 1, TransferChecked of 10 000 at 6 decimals, memo.
    #[test]
    fn the_instructions_are_the_official_clients() {
        let tx = build_with_memo(&transfer(), &payer(), "0123456789abcdef0123456789abcdef")
            .expect("built");
        let ix = &tx.instructions;
        assert_eq!(ix.len(), 4);
        assert_eq!(ix[0].program, program::COMPUTE_BUDGET_PROGRAM);
        assert_eq!(ix[0].data, [0x02, 0x20, 0x4e, 0x00, 0x00]);
        assert_eq!(ix[1].program, program::COMPUTE_BUDGET_PROGRAM);
        assert_eq!(ix[1].data, [0x03, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ix[2].program, program::TOKEN_PROGRAM);
        assert_eq!(
            ix[2].data,
            [0x0c, 0x10, 0x27, 0, 0, 0, 0, 0, 0, 6],
            "TransferChecked(10 000, 6)"
        );
        let payer = public(PAYER_SEED);
        let source = program::associated_token_account(
            &payer,
            &program::USDC_DEVNET,
            &program::TOKEN_PROGRAM,
        );
        assert_eq!(ix[2].accounts[0], source);
        assert_eq!(ix[2].accounts[1], program::USDC_DEVNET);
        assert_eq!(ix[2].accounts[3], payer);
        assert_eq!(ix[3].program, program::MEMO_PROGRAM);
        assert_eq!(ix[3].data, b"0123456789abcdef0123456789abcdef");
        assert!(ix[3].accounts.is_empty());
        // The official client's payment is 496 bytes with a 32-byte memo.
        assert_eq!(tx.wire().len(), 496);
    }

    #[test]
    fn the_default_memo_is_32_random_hex_chars_and_an_offers_memo_is_kept() {
        let one = build(&transfer(), &payer()).expect("built");
        let two = build(&transfer(), &payer()).expect("built");
        let memo = |tx: &SvmTransaction| String::from_utf8(tx.instructions[3].data.clone());
        let first = memo(&one).expect("utf-8");
        assert_eq!(first.len(), 32);
        assert!(
            first
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_ne!(
            one.message_hash(),
            two.message_hash(),
            "each payment is unique"
        );
        let mut named = transfer();
        named.memo = Some("order 42".to_owned());
        let tx = build(&named, &payer()).expect("built");
        assert_eq!(tx.instructions[3].data, b"order 42");
        rules::check(&tx, &terms(&named)).expect("the offer's memo passes");
    }

    #[test]
    fn token_2022_pays_to_its_own_associated_accounts() {
        let mut transfer = transfer();
        transfer.token_program = program::TOKEN_2022_PROGRAM;
        let tx = build(&transfer, &payer()).expect("built");
        assert_eq!(tx.instructions[2].program, program::TOKEN_2022_PROGRAM);
        rules::check(&tx, &terms(&transfer)).expect("accepted");
    }

    #[test]
    fn bad_inputs_are_refused() {
        let mut other = transfer();
        other.token_program = program::MEMO_PROGRAM;
        assert!(matches!(
            build(&other, &payer()),
            Err(BuildError::NotATokenProgram(_))
        ));
        let mut own = transfer();
        own.fee_payer = public(PAYER_SEED);
        assert_eq!(build(&own, &payer()), Err(BuildError::PayerIsFeePayer));
        let mut long = transfer();
        long.memo = Some("m".repeat(257));
        assert_eq!(build(&long, &payer()), Err(BuildError::MemoTooLong(257)));
    }
}
