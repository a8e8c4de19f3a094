//! One Keycloak login for many applications of one process.

use nost_amqp::Login;
use nost_auth::TokenManager;
use nost_config::{Config, ModeKind};

use super::error::AppError;
use super::options::AuthInputs;
use super::{auth_link, detect_mode};

/// A Keycloak login (one token request per renewal, one refresher) that many
/// [`Application`](super::Application)s of a process share through
/// [`StartOptions::shared_tokens`](crate::StartOptions::shared_tokens).
///
/// Without it every application logs in and renews on its own: 200
/// applications under one service account make 200 token requests per
/// renewal cycle. With it they make one, and every connection receives each
/// new token by `connection.update-secret`.
///
/// Applications started with it never stop it; [`shut_down`](Self::shut_down)
/// it (or drop every clone) when the last application is done.
///
/// ```no_run
/// # async fn run(config: nost_config::Config) -> Result<(), nost_app::AppError> {
/// use nost_app::{Application, AuthInputs, SharedTokens, StartOptions};
/// // AuthInputs::default(): credentials from `.env` / the environment.
/// let tokens = SharedTokens::start(&config, &AuthInputs::default()).await?;
/// let options = StartOptions::default().with_shared_tokens(tokens.clone());
/// let a = Application::start_up("sat-1", "fire", &config, options.clone()).await?;
/// let b = Application::start_up("sat-2", "fire", &config, options).await?;
/// # a.shut_down().await; b.shut_down().await;
/// tokens.shut_down().await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SharedTokens {
    mode: ModeKind,
    manager: TokenManager,
}

impl SharedTokens {
    /// Detect the mode from `config` and `auth` (as `start_up` does) and
    /// log in once. Basic mode has no tokens to share and is refused.
    pub async fn start(config: &Config, auth: &AuthInputs) -> Result<Self, AppError> {
        config.validate_all()?;
        let mode = detect_mode(config, auth)?;
        let (_, manager) = auth_link::login(&mode, config, auth).await?;
        let manager = manager.ok_or_else(not_keycloak)?;
        Ok(SharedTokens {
            mode: mode.kind(),
            manager,
        })
    }

    /// The detected mode (never [`ModeKind::Basic`]).
    pub fn mode(&self) -> ModeKind {
        self.mode
    }

    /// The shared token manager (current token, events, renew now).
    pub fn token_manager(&self) -> &TokenManager {
        &self.manager
    }

    /// Stop renewing. Applications still connected keep their current
    /// token until it expires.
    pub async fn shut_down(&self) {
        self.manager.shut_down().await;
    }

    /// The broker login of an application that uses this session.
    pub(crate) fn login(&self, config: &Config) -> Result<(Login, TokenManager), AppError> {
        if !config.servers.rabbitmq.keycloak_authentication {
            return Err(not_keycloak());
        }
        Ok((auth_link::token_login(&self.manager), self.manager.clone()))
    }
}

fn not_keycloak() -> AppError {
    AppError::NotKeycloak
}
