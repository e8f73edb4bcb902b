use x402_runtime::paid;

#[paid(price = "0.01", networks = ["eip155:8453", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"])]
async fn report() -> &'static str {
    "paid"
}

fn main() {}
