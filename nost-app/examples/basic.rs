//! Basic auth against a local broker: `cargo run -p nost-app --example basic`
//! (RabbitMQ on localhost:5672; USERNAME/PASSWORD from `.env`, else guest/guest).

use nost_app::{Application, StartOptions};
use nost_config::{Config, Credentials, EnvFile};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::builder().build()?;
    let credentials = Credentials::from_env(&EnvFile::Discover)?;
    let credentials = if credentials.username.is_some() {
        credentials
    } else {
        Credentials::basic("guest", "guest")
    };
    let options = StartOptions {
        auth: credentials.into(),
        ..Default::default()
    };
    let app = Application::start_up("example", "demo", &config, options).await?;
    app.add_message_callback("*", "hello", |m| async move {
        println!("received {} from {}", m.text()?, m.sender());
        Ok(())
    })
    .await?;
    app.send_message("hello", r#"{"greeting":"hi"}"#).await?;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    app.shut_down().await;
    Ok(())
}
