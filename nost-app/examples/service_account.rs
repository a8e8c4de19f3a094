//! Keycloak service account (`client_credentials`):
//! `cargo run -p nost-app --example service_account -- CONFIG.yaml`
//! with CLIENT_ID and CLIENT_SECRET_KEY in `.env`.

use nost_app::{Application, StartOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/config/service-account.yaml".into());
    let config = nost_config::load_file(path)?.config;
    let prefix = config.execution.general_or_default().prefix;
    // Tokens are obtained, renewed on token_refresh_interval (never later than
    // 80% of their life) and pushed into the live connection.
    let app = Application::start_up("sensor", &prefix, &config, StartOptions::default()).await?;
    app.send_message(
        "status.ready",
        r#"{"name":"sensor","properties":{"ready":true}}"#,
    )
    .await?;
    app.shut_down().await;
    Ok(())
}
