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

    async fn fresh(&self) -> Result<SecretString, nost_amqp::TokenError> {
        self.0
            .fresh_access_token(MIN_TOKEN_LIFE_FOR_CONNECT)
            .await
            .map_err(|e| match e.fatal_kind() {
                Some(kind) => nost_amqp::TokenError::Failed(failure(kind, e)),
                None => nost_amqp::TokenError::unavailable(e),
            })
    }

    fn failure(&self) -> Option<nost_amqp::TokenFailure> {
        let error = self.0.stopped_by()?;
        let kind = error.fatal_kind()?;
        Some(failure(kind, error))
    }

    async fn failed(&self) -> nost_amqp::TokenFailure {
        let (kind, error) = self.0.fatal().await;
        failure(kind, error)
    }
}

/// nost-auth's verdict as nost-amqp's, the [`nost_auth::AuthError`] kept
/// as its cause.
fn failure(kind: nost_auth::FatalKind, error: nost_auth::AuthError) -> nost_amqp::TokenFailure {
    use nost_amqp::TokenFailureKind as K;
    let typed = match kind {
        nost_auth::FatalKind::LoginExpired => K::LoginExpired,
        nost_auth::FatalKind::CredentialsRejected => K::CredentialsRejected,
        nost_auth::FatalKind::ClientRejected => K::ClientRejected,
        _ => K::Other,
    };
    nost_amqp::TokenFailure::caused_by(typed, error, kind.advice())
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
