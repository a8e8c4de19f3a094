//! Pre-acquired tokens: a backend acting for a logged-in user.
//! `ACCESS_TOKEN=… REFRESH_TOKEN=… cargo run -p nost-app --example pre_acquired -- CONFIG.yaml`
//! with CLIENT_ID (the client that issued the tokens) in `.env`.

use nost_app::{Application, AuthInputs, StartOptions};
use nost_config::SecretString;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/config/pre-acquired.yaml".into());
    let config = nost_config::load_file(path)?.config;
    let prefix = config.execution.general_or_default().prefix;
    let token = |name: &str| std::env::var(name).ok().map(SecretString::from);
    let options = StartOptions {
        auth: AuthInputs {
            // Both are required: without the refresh token the session could not be kept alive.
            access_token: token("ACCESS_TOKEN"),
            refresh_token: token("REFRESH_TOKEN"),
            ..Default::default()
        },
        ..Default::default()
    };
    let app = Application::start_up("monitor", &prefix, &config, options).await?;
    app.send_message(
        "status.ready",
        r#"{"name":"monitor","properties":{"ready":true}}"#,
    )
    .await?;
    app.shut_down().await;
    Ok(())
}
