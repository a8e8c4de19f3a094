//! What `start_up` accepts besides the prefix and configuration.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use nost_config::{Credentials, EnvFile, NostDuration, SecretString};

use super::shared::SharedTokens;
use super::shared_connection::SharedConnection;
use crate::simulator::Simulator;

/// Options of `start_up`, as in `nost_tools` plus what a Rust user needs.
///
/// `None` values are taken from the application's section of the YAML
/// (`execution.applications.<APP>` etc.), else from the schema defaults.
#[derive(Clone, Default)]
pub struct StartOptions {
    /// Correct the wallclock with NTP (first correction at start-up).
    pub set_offset: Option<bool>,
    /// Scenario time between `status.time` messages.
    pub time_status_step: Option<NostDuration>,
    /// Scenario time of the first `status.time`.
    pub time_status_init: Option<DateTime<Utc>>,
    /// Shut down when the simulator reaches TERMINATED.
    pub shut_down_when_terminated: Option<bool>,
    /// Who the application is: credentials, `.env`, pre-acquired tokens,
    /// one-time password. Not read when `shared_tokens` or
    /// `shared_connection` is set (their login is used).
    pub auth: AuthInputs,
    /// Install SIGINT/SIGTERM handlers that shut the application down.
    pub handle_signals: bool,
    /// Name shown for the connection in RabbitMQ's management UI.
    pub connection_name: Option<String>,
    /// Use this Keycloak login instead of logging in again: many applications,
    /// one token request per renewal. `auth` is then not read.
    pub shared_tokens: Option<SharedTokens>,
    /// Borrow channels on this connection instead of opening one: many
    /// applications, one AMQP connection and I/O thread. Its login (and
    /// token manager) is used; `auth` and `shared_tokens` above are then
    /// not read, nor `connection_name`.
    pub shared_connection: Option<SharedConnection>,
    /// Use this simulator (e.g. one with entities already added) instead
    /// of a new one on the system clock.
    pub simulator: Option<Simulator>,
    /// The application's description, carried by its status messages
    /// (`nost_tools`' `app_description`); `None`: left out.
    pub description: Option<String>,
    /// Do not write the log file that the role's YAML logging fields
    /// (`enable_file_logging`, `log_dir`, …) ask for (see
    /// [`crate::logging`]). Off by default: `start_up` writes it.
    pub skip_file_logging: bool,
}

impl fmt::Debug for StartOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartOptions")
            .field("set_offset", &self.set_offset)
            .field("time_status_step", &self.time_status_step)
            .field("time_status_init", &self.time_status_init)
            .field("shut_down_when_terminated", &self.shut_down_when_terminated)
            .field("auth", &self.auth)
            .field("handle_signals", &self.handle_signals)
            .field("shared_tokens", &self.shared_tokens.is_some())
            .field("shared_connection", &self.shared_connection.is_some())
            .field("simulator", &self.simulator.is_some())
            .field("description", &self.description)
            .field("skip_file_logging", &self.skip_file_logging)
            .finish_non_exhaustive()
    }
}

impl StartOptions {
    /// Log in with `credentials` (instead of reading `.env`).
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.auth.credentials = Some(credentials);
        self
    }

    /// Use these authentication inputs.
    pub fn with_auth(mut self, auth: AuthInputs) -> Self {
        self.auth = auth;
        self
    }

    /// Act with pre-acquired tokens (see [`AuthInputs::with_tokens`]).
    pub fn with_tokens(
        mut self,
        access_token: impl Into<SecretString>,
        refresh_token: impl Into<SecretString>,
    ) -> Self {
        self.auth = self.auth.with_tokens(access_token, refresh_token);
        self
    }

    /// Send this one-time password with the first login.
    pub fn with_otp(mut self, otp: impl Into<SecretString>) -> Self {
        self.auth.otp = Some(otp.into());
        self
    }

    /// Share this Keycloak session (see [`StartOptions::shared_tokens`]).
    pub fn with_shared_tokens(mut self, tokens: SharedTokens) -> Self {
        self.shared_tokens = Some(tokens);
        self
    }

    /// Share this connection (see [`StartOptions::shared_connection`]).
    pub fn with_shared_connection(mut self, connection: SharedConnection) -> Self {
        self.shared_connection = Some(connection);
        self
    }

    /// Correct the wallclock with NTP or not (see [`StartOptions::set_offset`]).
    pub fn with_set_offset(mut self, set_offset: bool) -> Self {
        self.set_offset = Some(set_offset);
        self
    }
}

/// What identifies an application to Keycloak and RabbitMQ: what
/// [`Application::start_up`](super::Application::start_up) (through
/// [`StartOptions::auth`]), [`SharedTokens::start`] and
/// [`SharedConnection::start`] detect the authentication mode from.
///
/// ```
/// use nost_app::{AuthInputs, StartOptions};
/// use nost_config::Credentials;
///
/// let auth = AuthInputs::from(Credentials::basic("guest", "guest"));
/// let options = StartOptions::default().with_auth(auth).with_set_offset(false);
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
pub struct AuthInputs {
    /// Credentials given in code; `None`: read `.env` / the environment.
    pub credentials: Option<Credentials>,
    /// Which `.env` to read when `credentials` is `None`.
    pub env_file: EnvFile,
    /// A pre-acquired access token (needs `refresh_token`).
    pub access_token: Option<SecretString>,
    /// The matching refresh token.
    pub refresh_token: Option<SecretString>,
    /// A one-time password for a user account whose realm needs one.
    pub otp: Option<SecretString>,
    /// Ask for an OTP (e.g. on the terminal) when Keycloak says one is needed.
    pub otp_provider: Option<Arc<dyn nost_auth::OtpProvider>>,
}

impl AuthInputs {
    /// Act for a user with tokens obtained elsewhere (e.g. by a front end):
    /// the pre-acquired tokens mode.
    pub fn with_tokens(
        mut self,
        access_token: impl Into<SecretString>,
        refresh_token: impl Into<SecretString>,
    ) -> Self {
        self.access_token = Some(access_token.into());
        self.refresh_token = Some(refresh_token.into());
        self
    }
}

impl From<Credentials> for AuthInputs {
    fn from(credentials: Credentials) -> Self {
        AuthInputs {
            credentials: Some(credentials),
            ..AuthInputs::default()
        }
    }
}

impl fmt::Debug for AuthInputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthInputs")
            .field("credentials", &self.credentials)
            .field("env_file", &self.env_file)
            .field("tokens_given", &self.access_token.is_some())
            .field("otp_given", &self.otp.is_some())
            .field("otp_provider", &self.otp_provider.is_some())
            .finish()
    }
}
