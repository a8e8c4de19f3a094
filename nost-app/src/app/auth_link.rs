//! From the detected mode to a login for the broker, via nost-auth.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nost_amqp::Login;
use nost_auth::{AuthOptions, TokenManager};
use nost_config::{AuthMode, Config, SecretString};
use tokio::sync::watch;

use super::error::AppError;
use super::options::AuthInputs;

/// Renew before connecting when less than this is left of a token's life.
const MIN_TOKEN_LIFE_FOR_CONNECT: Duration = Duration::from_secs(30);

struct Feed(TokenManager);

#[async_trait]
impl nost_amqp::TokenSource for Feed {
    fn subscribe(&self) -> watch::Receiver<SecretString> {
        self.0.subscribe_tokens()
    }

    async fn fresh(&self) -> Result<SecretString, String> {
        self.0
            .fresh_access_token(MIN_TOKEN_LIFE_FOR_CONNECT)
            .await
            .map_err(|e| e.to_string())
    }

    fn failure(&self) -> Option<nost_amqp::TokenFailure> {
        let error = self.0.stopped_by()?;
        let kind = error.fatal_kind()?;
        Some(failure(kind, &error))
    }

    async fn failed(&self) -> nost_amqp::TokenFailure {
        let (kind, error) = self.0.fatal().await;
        failure(kind, &error)
    }
}

fn failure(kind: nost_auth::FatalKind, error: &nost_auth::AuthError) -> nost_amqp::TokenFailure {
    nost_amqp::TokenFailure::new(kind.as_str(), error.to_string(), kind.advice())
}

/// The broker login of `mode`; in Keycloak modes also the running token manager.
pub(crate) async fn login(
    mode: &AuthMode,
    config: &Config,
    auth: &AuthInputs,
) -> Result<(Login, Option<TokenManager>), AppError> {
    match mode {
        AuthMode::Basic { username, password } => Ok((
            Login::Password {
                username: username.clone(),
                password: password.clone(),
            },
            None,
        )),
        _ => {
            let keycloak =
                config
                    .servers
                    .keycloak
                    .clone()
                    .ok_or_else(|| AppError::MissingSetting {
                        setting: "servers.keycloak".into(),
                        needed_for: "when keycloak_authentication is true".into(),
                    })?;
            let auth_options = AuthOptions {
                otp: auth.otp.clone(),
                otp_provider: auth.otp_provider.clone(),
                http_timeout: Duration::from_secs(
                    config.servers.rabbitmq.connection_timeout.max(1),
                ),
                ..AuthOptions::default()
            };
            let manager = TokenManager::start(mode, &keycloak, auth_options).await?;
            Ok((token_login(&manager), Some(manager)))
        }
    }
}

/// The broker login that takes its tokens from `manager`.
pub(crate) fn token_login(manager: &TokenManager) -> Login {
    Login::Token(Arc::new(Feed(manager.clone())))
}
