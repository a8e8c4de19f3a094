//! Keycloak user account (`password` grant, OTP when the realm needs one):
//! `NOST_OTP=123456 cargo run -p nost-app --example user_account -- CONFIG.yaml`
//! with USERNAME, PASSWORD, CLIENT_ID and CLIENT_SECRET_KEY in `.env`.

use std::sync::Arc;

use nost_app::{Application, AuthInputs, StartOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/config/user-account.yaml".into());
    let config = nost_config::load_file(path)?.config;
    let prefix = config.execution.general_or_default().prefix;
    let options = StartOptions {
        auth: AuthInputs {
            // A stock realm answers "Invalid user credentials" for a missing OTP,
            // so give it up front when the account has one...
            otp: nost_auth::otp_from_env(),
            // ...or let Keycloak's answer trigger a prompt (terminal only).
            otp_provider: Some(Arc::new(nost_auth::TerminalOtpPrompt)),
            ..Default::default()
        },
        ..Default::default()
    };
    let app = Application::start_up("analyst", &prefix, &config, options).await?;
    app.ready().await?;
    app.shut_down().await;
    Ok(())
}
