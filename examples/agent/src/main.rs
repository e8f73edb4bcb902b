//! An agent: reads what an API charges, pays one call within a budget, prints the receipt.
//!
//! ```text
//! X402_PAYER_KEY=0x… cargo run -p example-agent -- http://127.0.0.1:4021 "/weather?city=Paris"
//! ```

use x402_runtime::Currency;
use x402_runtime::client::{PaymentSigner, X402Client, discover};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let api = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:4021".into());
    let path = args.next().unwrap_or_else(|| "/weather?city=Paris".into());
    let network = std::env::var("X402_NETWORK").unwrap_or_else(|_| "eip155:84532".into());

    // X402_PAYER_KEY (hex), or X402_KEYSTORE with X402_KEYSTORE_PASSWORD.
    let agent = X402Client::builder(PaymentSigner::from_env()?)
        .max_per_request(Currency::Usdc, "0.01") // refuse any call that costs more
        .budget(Currency::Usdc, "0.05") // and stop after 0.05 USDC in all
        .networks([network])
        .build()?;

    for endpoint in discover(agent.http(), &api).await?.endpoints {
        let (method, route) = (endpoint.method, endpoint.path);
        println!(
            "{method} {route} costs {} {}",
            endpoint.price, endpoint.currency
        );
    }

    let answer = agent.get(&format!("{api}{path}")).await?;
    println!("{} {}", answer.status(), answer.text());
    match answer.receipt() {
        Some(receipt) if receipt.success => println!(
            "paid by {} in transaction {} on {}",
            receipt.payer.as_deref().unwrap_or("?"),
            receipt.transaction,
            receipt.network
        ),
        _ => println!("nothing was paid"),
    }
    println!("spent {} USDC of 0.05", agent.spent(Currency::Usdc));
    Ok(())
}
