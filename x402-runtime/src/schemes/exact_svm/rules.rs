//! The rules a Solana `exact` payment obeys, checked in one place against the offer's terms.
//!
//! The order and the reason codes follow the official facilitator (`@x402/svm`, v2 static path),
//! so that a payer sees the same reason from us as from it; the rules it skips but the scheme's
//! specification requires are checked too (see [`codes`]). What needs the network (the fee payer
//! being one of the facilitator's, simulation, balances) is not here.

use borsh::BorshDeserialize as _;
use solana_compute_budget_interface::ComputeBudgetInstruction;
use spl_token_interface::instruction::TokenInstruction;

use super::payload::{SvmInstruction, SvmTransaction};
use super::program::{
    self, Key, MAX_COMPUTE_UNIT_LIMIT, MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS, MAX_INSTRUCTIONS,
    MAX_MEMO_BYTES, MIN_INSTRUCTIONS,
};

/// The reasons a payment is refused. Those of the official facilitator carry its strings; the
/// ones marked *specification* are rules it does not check, named in its style.
pub mod codes {
    /// The payload is not a readable legacy or v0 transaction (or is a v1 one).
    pub const COULD_NOT_BE_DECODED: &str =
        "invalid_exact_svm_payload_transaction_could_not_be_decoded";
    /// The message loads accounts from address lookup tables (refused here; the official
    /// facilitator resolves them only on its smart-wallet path).
    pub const ADDRESS_TABLE_LOOKUP: &str = "invalid_exact_svm_payload_address_table_lookup";
    /// The offer names no fee payer (the facilitator's `/supported` listed none for the network).
    pub const MISSING_FEE_PAYER: &str = "invalid_exact_svm_payload_missing_fee_payer";
    /// The transaction's fee payer is not the offer's `extra.feePayer`.
    pub const FEE_PAYER_MISMATCH: &str = "invalid_exact_svm_fee_payer_mismatch";
    /// More signatures are required than the fee payer's and the payer's (*specification*).
    pub const EXCESSIVE_SIGNERS: &str = "invalid_exact_svm_payload_excessive_signers";
    /// A signer's signature does not verify over the message.
    pub const SIGNATURE_INVALID: &str = "invalid_exact_svm_payload_signature_invalid";
    /// Fewer than 3 or more than 7 instructions.
    pub const INSTRUCTIONS_LENGTH: &str =
        "invalid_exact_svm_payload_transaction_instructions_length";
    /// The first instruction is not a compute unit limit.
    pub const COMPUTE_LIMIT_INSTRUCTION: &str =
        "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction";
    /// The compute unit limit is above [`MAX_COMPUTE_UNIT_LIMIT`](super::MAX_COMPUTE_UNIT_LIMIT).
    pub const COMPUTE_LIMIT_TOO_HIGH: &str =
        "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction_too_high";
    /// The second instruction is not a compute unit price.
    pub const COMPUTE_PRICE_INSTRUCTION: &str =
        "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction";
    /// The compute unit price is above 5 000 000 microlamports.
    pub const COMPUTE_PRICE_TOO_HIGH: &str =
        "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction_too_high";
    /// The third instruction is not a `TransferChecked` of SPL Token or Token-2022 with exactly
    /// its four accounts (the count is *specification*).
    pub const NO_TRANSFER_INSTRUCTION: &str = "invalid_exact_svm_payload_no_transfer_instruction";
    /// The fee payer is the transfer's authority or owns its source account.
    pub const FEE_PAYER_TRANSFERRING_FUNDS: &str =
        "invalid_exact_svm_payload_transaction_fee_payer_transferring_funds";
    /// The fee payer is among an instruction's accounts or is its program (*specification*).
    pub const FEE_PAYER_IN_INSTRUCTION_ACCOUNTS: &str =
        "invalid_exact_svm_payload_transaction_fee_payer_included_in_instruction_accounts";
    /// The transfer's authority is not the second signer (*specification*: the payer signs).
    pub const AUTHORITY_NOT_SIGNER: &str = "invalid_exact_svm_payload_authority_not_signer";
    /// The transfer moves another mint than the offer's `asset`.
    pub const MINT_MISMATCH: &str = "invalid_exact_svm_payload_mint_mismatch";
    /// The destination is not `payTo`'s associated token account for the mint.
    pub const RECIPIENT_MISMATCH: &str = "invalid_exact_svm_payload_recipient_mismatch";
    /// The amount is not the offer's amount.
    pub const AMOUNT_MISMATCH: &str = "invalid_exact_svm_payload_amount_mismatch";
    /// The transfer's decimals are not the mint's (checked when the offer knows them).
    pub const DECIMALS_MISMATCH: &str = "invalid_exact_svm_payload_decimals_mismatch";
    /// The fourth instruction is neither a memo nor a Lighthouse assertion.
    pub const UNKNOWN_FOURTH_INSTRUCTION: &str =
        "invalid_exact_svm_payload_unknown_fourth_instruction";
    /// The fifth instruction is neither a memo nor a Lighthouse assertion.
    pub const UNKNOWN_FIFTH_INSTRUCTION: &str =
        "invalid_exact_svm_payload_unknown_fifth_instruction";
    /// The sixth instruction is neither a memo nor a Lighthouse assertion.
    pub const UNKNOWN_SIXTH_INSTRUCTION: &str =
        "invalid_exact_svm_payload_unknown_sixth_instruction";
    /// The seventh instruction is neither a memo nor a Lighthouse assertion.
    pub const UNKNOWN_SEVENTH_INSTRUCTION: &str =
        "invalid_exact_svm_payload_unknown_seventh_instruction";
    /// A memo is longer than 256 bytes.
    pub const MEMO_TOO_LONG: &str = "invalid_exact_svm_payload_memo_too_long";
    /// The offer names a memo and the transaction has not exactly one.
    pub const MEMO_COUNT: &str = "invalid_exact_svm_payload_memo_count";
    /// The memo is not the offer's.
    pub const MEMO_MISMATCH: &str = "invalid_exact_svm_payload_memo_mismatch";
}

/// What an offer asks of a Solana payment, as raw keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvmTerms {
    /// The token's mint (the offer's `asset`).
    pub mint: Key,
    /// The recipient's wallet (the offer's `payTo`); the transfer goes to its associated token
    /// account.
    pub pay_to: Key,
    /// The amount in the mint's atomic units.
    pub amount: u64,
    /// The facilitator's fee payer (the offer's `extra.feePayer`).
    pub fee_payer: Key,
    /// The mint's decimals, when known.
    pub decimals: Option<u8>,
    /// The memo the offer names (`extra.memo`), if any.
    pub memo: Option<String>,
}

/// What an accepted payment is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvmPaymentFacts {
    /// The payer: the transfer's authority, who signed.
    pub payer: Key,
    /// The amount transferred, in atomic units.
    pub amount: u64,
    /// The token account paid from.
    pub source: Key,
    /// The token account paid to.
    pub destination: Key,
    /// The token program of the transfer (SPL Token or Token-2022).
    pub token_program: Key,
    /// SHA-256 of the message bytes: the payment's identity for replay protection.
    pub message_hash: [u8; 32],
}

/// The `TransferChecked` found in the third instruction.
struct Transfer {
    program: Key,
    source: Key,
    mint: Key,
    destination: Key,
    authority: Key,
    amount: u64,
    decimals: u8,
}

/// Checks a payment transaction against the offer's terms; the first rule broken is returned
/// as its reason code (one of [`codes`]).
pub fn check(tx: &SvmTransaction, terms: &SvmTerms) -> Result<SvmPaymentFacts, &'static str> {
    check_signers(tx, terms)?;
    let count = tx.instructions.len();
    if !(MIN_INSTRUCTIONS..=MAX_INSTRUCTIONS).contains(&count) {
        return Err(codes::INSTRUCTIONS_LENGTH);
    }
    let [limit, price, transfer, optional @ ..] = tx.instructions.as_slice() else {
        return Err(codes::INSTRUCTIONS_LENGTH);
    };
    check_compute_budget(limit, price)?;
    let transfer = read_transfer(transfer)?;
    check_fee_payer_isolated(tx, terms, &transfer)?;
    check_transfer(&transfer, terms)?;
    check_optional(optional, terms)?;
    Ok(SvmPaymentFacts {
        payer: transfer.authority,
        amount: transfer.amount,
        source: transfer.source,
        destination: transfer.destination,
        token_program: transfer.program,
        message_hash: tx.message_hash(),
    })
}

/// The fee payer is the offer's; exactly two signers (fee payer, payer); the payer's signature
/// verifies. The fee payer's slot is not checked: it is empty until the facilitator signs.
fn check_signers(tx: &SvmTransaction, terms: &SvmTerms) -> Result<(), &'static str> {
    if tx.fee_payer() != Some(&terms.fee_payer) {
        return Err(codes::FEE_PAYER_MISMATCH);
    }
    if tx.header.required_signatures > 2 {
        return Err(codes::EXCESSIVE_SIGNERS);
    }
    let message = tx.message_bytes();
    for (key, signature) in tx.keys.iter().zip(&tx.signatures).skip(1) {
        let verifies = ed25519_dalek::VerifyingKey::from_bytes(key).is_ok_and(|key| {
            key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
                .is_ok()
        });
        if !verifies {
            return Err(codes::SIGNATURE_INVALID);
        }
    }
    Ok(())
}

fn check_compute_budget(
    limit: &SvmInstruction,
    price: &SvmInstruction,
) -> Result<(), &'static str> {
    match compute_budget(limit) {
        Some(ComputeBudgetInstruction::SetComputeUnitLimit(units)) => {
            if units > MAX_COMPUTE_UNIT_LIMIT {
                return Err(codes::COMPUTE_LIMIT_TOO_HIGH);
            }
        }
        _ => return Err(codes::COMPUTE_LIMIT_INSTRUCTION),
    }
    match compute_budget(price) {
        Some(ComputeBudgetInstruction::SetComputeUnitPrice(micro_lamports)) => {
            if micro_lamports > MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS {
                return Err(codes::COMPUTE_PRICE_TOO_HIGH);
            }
        }
        _ => return Err(codes::COMPUTE_PRICE_INSTRUCTION),
    }
    Ok(())
}

/// A Compute Budget instruction without accounts, its data exactly one instruction.
fn compute_budget(ix: &SvmInstruction) -> Option<ComputeBudgetInstruction> {
    if ix.program != program::COMPUTE_BUDGET_PROGRAM || !ix.accounts.is_empty() {
        return None;
    }
    ComputeBudgetInstruction::try_from_slice(&ix.data).ok()
}

fn read_transfer(ix: &SvmInstruction) -> Result<Transfer, &'static str> {
    if !program::is_token_program(&ix.program) {
        return Err(codes::NO_TRANSFER_INSTRUCTION);
    }
    let Ok(TokenInstruction::TransferChecked { amount, decimals }) =
        TokenInstruction::unpack(&ix.data)
    else {
        return Err(codes::NO_TRANSFER_INSTRUCTION);
    };
    // `unpack` ignores trailing bytes: the instruction is exactly tag, amount, decimals.
    let [source, mint, destination, authority] = ix.accounts.as_slice() else {
        return Err(codes::NO_TRANSFER_INSTRUCTION);
    };
    if ix.data.len() != 10 {
        return Err(codes::NO_TRANSFER_INSTRUCTION);
    }
    Ok(Transfer {
        program: ix.program,
        source: *source,
        mint: *mint,
        destination: *destination,
        authority: *authority,
        amount,
        decimals,
    })
}

/// The fee payer moves no funds and appears in no instruction; the payer is the second signer.
fn check_fee_payer_isolated(
    tx: &SvmTransaction,
    terms: &SvmTerms,
    transfer: &Transfer,
) -> Result<(), &'static str> {
    let fee_payer = &terms.fee_payer;
    let fee_payer_source =
        program::associated_token_account(fee_payer, &transfer.mint, &transfer.program);
    if transfer.authority == *fee_payer || transfer.source == fee_payer_source {
        return Err(codes::FEE_PAYER_TRANSFERRING_FUNDS);
    }
    let named = |ix: &SvmInstruction| ix.program == *fee_payer || ix.accounts.contains(fee_payer);
    if tx.instructions.iter().any(named) {
        return Err(codes::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS);
    }
    if tx.header.required_signatures != 2 || tx.keys.get(1) != Some(&transfer.authority) {
        return Err(codes::AUTHORITY_NOT_SIGNER);
    }
    Ok(())
}

fn check_transfer(transfer: &Transfer, terms: &SvmTerms) -> Result<(), &'static str> {
    if transfer.mint != terms.mint {
        return Err(codes::MINT_MISMATCH);
    }
    let destination =
        program::associated_token_account(&terms.pay_to, &terms.mint, &transfer.program);
    if transfer.destination != destination {
        return Err(codes::RECIPIENT_MISMATCH);
    }
    if transfer.amount != terms.amount {
        return Err(codes::AMOUNT_MISMATCH);
    }
    if terms
        .decimals
        .is_some_and(|decimals| decimals != transfer.decimals)
    {
        return Err(codes::DECIMALS_MISMATCH);
    }
    Ok(())
}

fn is_memo(ix: &SvmInstruction) -> bool {
    ix.program == program::MEMO_PROGRAM || ix.program == program::MEMO_V1_PROGRAM
}

/// Instructions after the transfer: memos and Lighthouse assertions only; memos bounded, and
/// the offer's memo exactly once when it names one.
fn check_optional(optional: &[SvmInstruction], terms: &SvmTerms) -> Result<(), &'static str> {
    const UNKNOWN: [&str; 4] = [
        codes::UNKNOWN_FOURTH_INSTRUCTION,
        codes::UNKNOWN_FIFTH_INSTRUCTION,
        codes::UNKNOWN_SIXTH_INSTRUCTION,
        codes::UNKNOWN_SEVENTH_INSTRUCTION,
    ];
    for (ix, code) in optional.iter().zip(UNKNOWN) {
        if !is_memo(ix) && ix.program != program::LIGHTHOUSE_PROGRAM {
            return Err(code);
        }
        if is_memo(ix) && ix.data.len() > MAX_MEMO_BYTES {
            return Err(codes::MEMO_TOO_LONG);
        }
    }
    if let Some(memo) = &terms.memo {
        let mut memos = optional.iter().filter(|ix| is_memo(ix));
        let (Some(only), None) = (memos.next(), memos.next()) else {
            return Err(codes::MEMO_COUNT);
        };
        if only.data != memo.as_bytes() {
            return Err(codes::MEMO_MISMATCH);
        }
    }
    Ok(())
}
