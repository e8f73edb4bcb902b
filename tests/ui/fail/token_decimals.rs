use x402_runtime::paid;

#[paid(price = "0.01", currency = "WETH:037")]
async fn first() -> &'static str {
    "first"
}

#[paid(price = "0.0000001", currency = "PYUSD")]
async fn second() -> &'static str {
    "second"
}

fn main() {}
