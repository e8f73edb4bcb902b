//! Arbitrary bytes as a payment header (v2 and v1) and as the JSON inside one: the decoder never
//! panics, caps sizes first, and every encoding of one payment has one replay key. The
//! properties are in `x402_fuzz::check`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    x402_fuzz::check(data);
});
