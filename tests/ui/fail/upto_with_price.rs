use x402_runtime::paid;

#[paid(price = "0.01", upto = "0.50")]
async fn summarise() -> &'static str {
    "summary"
}

fn main() {}
