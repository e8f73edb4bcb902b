//! The Solana programs and accounts an `exact` payment touches, and the limits it must stay in.
//!
//! Keys are raw 32-byte account addresses ([`Key`]); the Solana crates' own address types (two
//! generations of them) are converted through bytes here and nowhere else.

use solana_address::Address;

/// A Solana account address: the 32 bytes of an ed25519 public key or of a program-derived
/// address.
pub type Key = [u8; 32];

/// The SPL Token program.
pub const TOKEN_PROGRAM: Key = spl_token_interface::ID.to_bytes();
/// The Token-2022 program (SPL Token with extensions).
pub const TOKEN_2022_PROGRAM: Key =
    Address::from_str_const("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb").to_bytes();
/// The Associated Token Account program, which owns the derivation of a wallet's token account.
pub const ASSOCIATED_TOKEN_PROGRAM: Key =
    spl_associated_token_account_interface::program::ID.to_bytes();
/// The Compute Budget program (compute unit limit and price).
pub const COMPUTE_BUDGET_PROGRAM: Key = solana_compute_budget_interface::ID.to_bytes();
/// The Memo program, v1 (the first deployment).
pub const MEMO_V1_PROGRAM: Key =
    Address::from_str_const("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo").to_bytes();
/// The Memo program, v3 (the one the official client uses).
pub const MEMO_PROGRAM: Key =
    Address::from_str_const("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr").to_bytes();
/// Lighthouse, the assertion program some wallets (Phantom) append to a transaction.
pub const LIGHTHOUSE_PROGRAM: Key =
    Address::from_str_const("L2TExMFKdjpN9kozasaurPirfHy9P8sbXoAN1qA3S95").to_bytes();

/// USDC on Solana mainnet (6 decimals, SPL Token program).
pub const USDC_MAINNET: Key =
    Address::from_str_const("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v").to_bytes();
/// USDC on Solana devnet (6 decimals, SPL Token program).
pub const USDC_DEVNET: Key =
    Address::from_str_const("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU").to_bytes();

/// The highest compute unit price accepted, in microlamports per compute unit (5 lamports per
/// unit), as the official facilitator: the fee payer pays it.
pub const MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS: u64 = 5_000_000;
/// The highest compute unit limit accepted. The scheme's specification recommends 400 000 as a
/// facilitator's bound; a transfer uses well under 10 000 (the official client asks 20 000), so
/// this bounds the fee (limit × price) at 2 000 000 000 000 microlamports = 2 000 000 lamports
/// (0.002 SOL) above the signature fee.
pub const MAX_COMPUTE_UNIT_LIMIT: u32 = 400_000;
/// The longest memo accepted, in bytes, as the official facilitator.
pub const MAX_MEMO_BYTES: usize = 256;
/// The fewest instructions of a payment: compute unit limit, compute unit price, transfer.
pub const MIN_INSTRUCTIONS: usize = 3;
/// The most instructions of a payment: the three, then up to four memos or assertions.
pub const MAX_INSTRUCTIONS: usize = 7;
/// The largest transaction Solana accepts (one network packet), in bytes.
pub const MAX_TRANSACTION_BYTES: usize = 1232;

/// Whether `program` is SPL Token or Token-2022, the two programs whose `TransferChecked` pays.
pub fn is_token_program(program: &Key) -> bool {
    *program == TOKEN_PROGRAM || *program == TOKEN_2022_PROGRAM
}

/// The associated token account of `owner` for `mint` under `token_program`: where a payment to
/// `owner` must arrive (the offer's `payTo` is the owner wallet, never a token account).
pub fn associated_token_account(owner: &Key, mint: &Key, token_program: &Key) -> Key {
    // The interface crate speaks an older generation's `Pubkey`: convert through bytes.
    spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(
        &(*owner).into(),
        &(*mint).into(),
        &(*token_program).into(),
    )
    .to_bytes()
}

/// Reads a base58 account address (as in `payTo`, `asset`, `extra.feePayer`); `None` unless it
/// is 32 bytes of base58.
pub fn parse_key(text: &str) -> Option<Key> {
    text.parse::<Address>()
        .ok()
        .map(|address| address.to_bytes())
}

/// The base58 text of an account address.
pub fn key_to_string(key: &Key) -> String {
    Address::new_from_array(*key).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_ids_are_the_published_ones() {
        assert_eq!(
            key_to_string(&TOKEN_PROGRAM),
            "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
        );
        assert_eq!(
            key_to_string(&ASSOCIATED_TOKEN_PROGRAM),
            "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"
        );
        assert_eq!(
            key_to_string(&COMPUTE_BUDGET_PROGRAM),
            "ComputeBudget111111111111111111111111111111"
        );
        assert!(is_token_program(&TOKEN_2022_PROGRAM));
        assert!(!is_token_program(&MEMO_PROGRAM));
    }

    #[test]
    fn parse_key_refuses_what_is_not_an_address() {
        assert_eq!(
            parse_key("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"),
            Some(USDC_MAINNET)
        );
        assert_eq!(parse_key("0x1234"), None);
        assert_eq!(parse_key(""), None);
        assert_eq!(parse_key("1111"), None);
    }
}
