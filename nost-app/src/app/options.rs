//! What `start_up` accepts besides the prefix and configuration.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use nost_config::{Credentials, EnvFile, NostDuration, SecretString};

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
    /// A pre-acquired access token (needs `refresh_token`).
    pub access_token: Option<SecretString>,
    /// The matching refresh token.
    pub refresh_token: Option<SecretString>,
    /// Credentials given in code; `None`: read `.env` / the environment.
    pub credentials: Option<Credentials>,
    /// Which `.env` to read when `credentials` is `None`.
    pub env_file: EnvFile,
    /// A one-time password for a user account whose realm needs one.
    pub otp: Option<SecretString>,
    /// Ask for an OTP on the terminal when Keycloak says one is needed.
    pub otp_provider: Option<Arc<dyn nost_auth::OtpProvider>>,
    /// Install SIGINT/SIGTERM handlers that shut the application down.
    pub handle_signals: bool,
    /// Name shown for the connection in RabbitMQ's management UI.
    pub connection_name: Option<String>,
    /// Use this Keycloak login instead of logging in again: many applications,
    /// one token request per renewal. Credentials and tokens above are then
    /// not read.
    pub shared_tokens: Option<super::shared::SharedTokens>,
    /// Borrow channels on this connection instead of opening one: many
    /// applications, one AMQP connection and I/O thread. Its login (and
    /// token manager) is used; credentials, tokens and `shared_tokens`
    /// above are then not read, nor `connection_name`.
    pub shared_connection: Option<super::shared_connection::SharedConnection>,
    /// Use this simulator (e.g. one with entities already added) instead
    /// of a new one on the system clock.
    pub simulator: Option<crate::simulator::Simulator>,
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
            .field("tokens_given", &self.access_token.is_some())
            .field("credentials", &self.credentials)
            .field("env_file", &self.env_file)
            .field("handle_signals", &self.handle_signals)
            .field("shared_tokens", &self.shared_tokens.is_some())
            .field("shared_connection", &self.shared_connection.is_some())
            .field("simulator", &self.simulator.is_some())
            .field("description", &self.description)
            .field("skip_file_logging", &self.skip_file_logging)
            .finish_non_exhaustive()
    }
}
