use x402_runtime::paid;

#[paid(price = "0.01")]
async fn hello(name: impl ToString) -> String {
    name.to_string()
}

fn main() {}
