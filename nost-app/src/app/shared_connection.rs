//! One AMQP connection for many applications of one process.

use nost_amqp::{ConnectSettings, Login};
use nost_auth::TokenManager;
use nost_config::{Config, ModeKind};

use super::error::AppError;
use super::options::AuthInputs;
use super::shared::SharedTokens;
use super::{auth_link, detect_mode};

/// One AMQP connection (one socket, one I/O thread) that many
/// [`Application`](super::Application)s of a process share through
/// [`StartOptions::shared_connection`](crate::StartOptions::shared_connection), a channel pair each.
///
/// Without it every application opens its own connection: 1,000 satellites
/// in one process are 1,000 connections and 1,000 I/O threads. With it they
/// are one. Each application keeps its own channels, buffer, topology and
/// publisher confirms: a refused publish or a deleted queue of one
/// application does not disturb the others; a loss of the connection
/// restores all of them (each re-declares its exchanges, queues and
/// consumers and re-publishes its unconfirmed messages).
///
/// It logs in once, with the mode detected from the configuration and the
/// [`AuthInputs`] given to [`start`](Self::start) (or takes the tokens of
/// a [`SharedTokens`]: composable), and sends
/// every renewed token once with `connection.update-secret`. Applications
/// started with it use its login and token manager and never close it;
/// [`shut_down`](Self::shut_down) it after the last application.
///
/// ```no_run
/// # async fn run(config: nost_config::Config) -> Result<(), nost_app::AppError> {
/// use nost_app::{Application, AuthInputs, SharedConnection, StartOptions};
/// // AuthInputs::default(): credentials from `.env` / the environment.
/// let conn = SharedConnection::start(&config, AuthInputs::default()).await?;
/// let options = StartOptions::default().with_shared_connection(conn.clone());
/// let a = Application::start_up("sat-1", "fire", &config, options.clone()).await?;
/// let b = Application::start_up("sat-2", "fire", &config, options).await?;
/// # a.shut_down().await; b.shut_down().await;
/// conn.shut_down().await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SharedConnection {
    mode: ModeKind,
    login: Login,
    tokens: Option<TokenManager>,
    owns_tokens: bool,
    conn: nost_amqp::SharedConnection,
}

/// How a [`SharedConnection`] logs in and is named.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct SharedConnectionOptions {
    /// Who logs in (credentials, `.env`, tokens, OTP); not read when
    /// `shared_tokens` is set.
    pub auth: AuthInputs,
    /// Take the tokens of this Keycloak session instead of logging in
    /// (composable: one session, one connection, many applications).
    pub shared_tokens: Option<SharedTokens>,
    /// Name shown in RabbitMQ's management UI (default
    /// `nost-rs shared connection`).
    pub connection_name: Option<String>,
}

impl SharedConnectionOptions {
    /// Log in with `auth`.
    pub fn new(auth: impl Into<AuthInputs>) -> Self {
        SharedConnectionOptions {
            auth: auth.into(),
            ..Default::default()
        }
    }

    /// Use the tokens of `tokens` instead of logging in.
    pub fn with_shared_tokens(mut self, tokens: SharedTokens) -> Self {
        self.shared_tokens = Some(tokens);
        self
    }

    /// Name the connection in RabbitMQ's management UI.
    pub fn with_connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = Some(name.into());
        self
    }
}

impl From<AuthInputs> for SharedConnectionOptions {
    fn from(auth: AuthInputs) -> Self {
        SharedConnectionOptions::new(auth)
    }
}

impl SharedConnection {
    /// Validate `config`, log in (or take `options.shared_tokens`) and open
    /// the connection to `servers.rabbitmq`, named
    /// `options.connection_name` (default `nost-rs shared connection`).
    pub async fn start(
        config: &Config,
        options: impl Into<SharedConnectionOptions>,
    ) -> Result<Self, AppError> {
        let options = options.into();
        config.validate_all()?;
        let (mode, login, tokens, owns_tokens) = match &options.shared_tokens {
            Some(shared) => {
                let (login, manager) = shared.login(config)?;
                (shared.mode(), login, Some(manager), false)
            }
            None => {
                let mode = detect_mode(config, &options.auth)?;
                let (login, manager) = auth_link::login(&mode, config, &options.auth).await?;
                (mode.kind(), login, manager, true)
            }
        };
        let mut settings = ConnectSettings::new(config.servers.rabbitmq.clone(), login.clone());
        settings.connection_name = options
            .connection_name
            .unwrap_or_else(|| "nost-rs shared connection".into());
        match nost_amqp::SharedConnection::connect(settings).await {
            Ok(conn) => Ok(SharedConnection {
                mode,
                login,
                tokens,
                owns_tokens,
                conn,
            }),
            Err(e) => {
                if let Some(t) = tokens.as_ref().filter(|_| owns_tokens) {
                    t.shut_down().await;
                }
                Err(e.into())
            }
        }
    }

    /// The detected authentication mode.
    pub fn mode(&self) -> ModeKind {
        self.mode
    }

    /// The token manager in Keycloak modes.
    pub fn token_manager(&self) -> Option<&TokenManager> {
        self.tokens.as_ref()
    }

    /// The AMQP connection (events: connects, losses, `update-secret`).
    pub fn amqp(&self) -> &nost_amqp::SharedConnection {
        &self.conn
    }

    /// Whether the connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.conn.is_connected()
    }

    /// Close the connection and stop the token renewal it started (not
    /// that of a [`SharedTokens`] it was given). Shut the applications
    /// down first.
    pub async fn shut_down(&self) {
        self.conn.shut_down().await;
        if let Some(t) = self.tokens.as_ref().filter(|_| self.owns_tokens) {
            t.shut_down().await;
        }
    }

    /// What an application on this connection logs in with.
    pub(crate) fn app_login(&self) -> (ModeKind, Login, Option<TokenManager>, bool) {
        (self.mode, self.login.clone(), self.tokens.clone(), false)
    }
}
