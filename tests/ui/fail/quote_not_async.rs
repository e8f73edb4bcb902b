use x402_runtime::{Quote, quote};

#[quote]
fn per_row() -> Quote {
    Quote::atomic(1_000)
}

fn main() {}
