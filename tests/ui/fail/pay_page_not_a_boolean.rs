use x402_runtime::paid;

/// Current weather.
#[paid(price = "0.001", pay_page = "off")]
async fn weather() -> &'static str {
    "sunny"
}

fn main() {}
