use x402_runtime::paid;

#[paid(upto = "0.50", settle = "before")]
async fn summarise() -> &'static str {
    "summary"
}

fn main() {}
