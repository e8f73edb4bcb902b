use x402_runtime::paid;

struct Api {
    greeting: String,
}

impl Api {
    #[paid(price = "0.01")]
    async fn hello(&self) -> String {
        self.greeting.clone()
    }
}

fn main() {}
