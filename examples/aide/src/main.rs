//! A paid API on aide: `X402_PAY_TO=0x… cargo run -p example-aide`, then
//! `curl http://127.0.0.1:4021/openapi.json`.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let x402 = x402_runtime::X402::from_env()?;
    let app = example_aide::app(&x402)?;
    let listen = std::env::var("X402_LISTEN").unwrap_or_else(|_| "127.0.0.1:4021".into());
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
