//! Errors of applications.

use std::path::PathBuf;

/// Why an application could not start or act.
///
/// Each variant says what went wrong; the ones caused by another error keep
/// it as their [`source`](std::error::Error::source). To react rather than
/// print, match the variant or ask [`AppError::kind`]:
///
/// ```
/// use nost_app::{AppError, ErrorKind};
///
/// fn what_now(e: &AppError) -> &'static str {
///     match e.kind() {
///         ErrorKind::Authentication => "log in again",
///         ErrorKind::Unavailable => "the broker or Keycloak is down: try later",
///         ErrorKind::ShutDown => "the application is gone",
///         _ => "fix the cause and start again",
///     }
/// }
/// assert_eq!(what_now(&AppError::ShutDown), "the application is gone");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The configuration, `.env` or token arguments do not make a valid mode.
    #[error(transparent)]
    Config(#[from] nost_config::ConfigError),
    /// Keycloak refused or could not be reached.
    #[error(transparent)]
    Auth(#[from] nost_auth::AuthError),
    /// RabbitMQ refused or could not be reached.
    #[error(transparent)]
    Amqp(#[from] nost_amqp::AmqpError),
    /// A prefix, app or topic name that cannot be used.
    #[error("invalid name: {0}")]
    InvalidName(#[from] crate::topics::NameError),
    /// A value given to `send_json` that cannot be serialized as JSON.
    #[error("invalid message: {0}")]
    Json(#[source] serde_json::Error),
    /// A setting that is required here is not given.
    #[error("{setting} is required {needed_for}")]
    MissingSetting {
        /// Dotted path of the setting, e.g. `execution.manager.sim_start_time`.
        setting: String,
        /// When or for what it is needed, and what a valid value looks like.
        needed_for: String,
    },
    /// A setting whose value cannot be used (e.g. a `time_step` that is not
    /// positive, a stop time before the start time).
    #[error("{setting} {problem}")]
    InvalidSetting {
        /// Dotted path of the setting, e.g. `execution.manager.command_lead`.
        setting: String,
        /// What is wrong with its value.
        problem: String,
    },
    /// A `log_level` that is not a Python logging level.
    #[error("log_level {0:?} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")]
    LogLevel(String),
    /// A file or directory (log file, log directory) that could not be
    /// created, opened or written.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// What was tried, e.g. `create log_dir`, `open log file`, `write`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A time-scale factor that is not a positive finite number.
    #[error("the requested time-scale factor must be a positive number, got {0}")]
    InvalidTimeScale(f64),
    /// Shared tokens were asked for in basic mode, which has none.
    #[error(
        "shared tokens need a Keycloak mode (servers.rabbitmq.keycloak_authentication: True \
         with a service account, a user account or pre-acquired tokens); \
         basic mode has no tokens to share"
    )]
    NotKeycloak,
    /// A `channels` entry that could not be declared (its path, e.g.
    /// `channels.fire.detected.bindings.amqp.exchange`, and why).
    #[error("{path}: {reason}")]
    Channel {
        /// Dotted path of the entry in the YAML.
        path: String,
        /// What went wrong and what to do.
        reason: String,
        /// The broker's refusal, when it refused.
        #[source]
        source: Option<Box<nost_amqp::AmqpError>>,
    },
    /// The simulator refused a command (a pause while not executing, a
    /// non-positive time step, …).
    #[error(transparent)]
    Simulator(#[from] crate::simulator::SimError),
    /// The application was shut down.
    #[error("the application is shut down")]
    ShutDown,
}

/// What an [`AppError`] means for the caller (see [`AppError::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration, a setting, a name or an argument is wrong: fix it
    /// and start again (also TLS trust settings).
    Usage,
    /// Keycloak or the broker refuses who we are (credentials, client
    /// secret, an expired session or token): log in again or fix the
    /// credentials; retrying as is cannot help.
    Authentication,
    /// Keycloak or the broker cannot be reached or is not connected now:
    /// trying again later may succeed.
    Unavailable,
    /// The broker refused an operation (permissions, a missing exchange, a
    /// queue declared with other settings, a refused message).
    Refused,
    /// A local file could not be created or written.
    Io,
    /// The application is shut down.
    ShutDown,
    /// Anything else.
    Other,
}

impl AppError {
    /// What this error means for the caller: log in again, try later, fix
    /// the configuration, …
    pub fn kind(&self) -> ErrorKind {
        use nost_amqp::AmqpError as A;
        match self {
            AppError::Config(_)
            | AppError::InvalidName(_)
            | AppError::Json(_)
            | AppError::Simulator(_)
            | AppError::MissingSetting { .. }
            | AppError::InvalidSetting { .. }
            | AppError::LogLevel(_)
            | AppError::InvalidTimeScale(_)
            | AppError::NotKeycloak => ErrorKind::Usage,
            AppError::File { .. } => ErrorKind::Io,
            AppError::ShutDown => ErrorKind::ShutDown,
            AppError::Channel { .. } => ErrorKind::Refused,
            AppError::Auth(e) => auth_kind(e),
            AppError::Amqp(e) => match e {
                A::LoginRefused { .. } | A::SecretRefused { .. } | A::TokenFailed(_) => {
                    ErrorKind::Authentication
                }
                A::ConnectTimeout { .. }
                | A::Unreachable { .. }
                | A::NotConnected { .. }
                | A::FlushTimeout { .. }
                | A::BufferFull { .. } => ErrorKind::Unavailable,
                A::Tls { .. } => ErrorKind::Usage,
                A::AccessRefused { .. }
                | A::NotFound { .. }
                | A::PreconditionFailed { .. }
                | A::PublishRefused(_)
                | A::Refused { .. } => ErrorKind::Refused,
                A::Shutdown => ErrorKind::ShutDown,
                _ => ErrorKind::Other,
            },
        }
    }

    /// Whether Keycloak or the broker refuses the login or the session is
    /// over: the user has to log in again (or fix the credentials).
    pub fn is_auth(&self) -> bool {
        self.kind() == ErrorKind::Authentication
    }

    /// Whether Keycloak or the broker cannot be reached right now (trying
    /// again later may succeed).
    pub fn is_unavailable(&self) -> bool {
        self.kind() == ErrorKind::Unavailable
    }
}

fn auth_kind(e: &nost_auth::AuthError) -> ErrorKind {
    use nost_auth::FatalKind as F;
    if matches!(e, nost_auth::AuthError::ShutDown) {
        return ErrorKind::ShutDown;
    }
    if e.is_retryable() {
        return ErrorKind::Unavailable;
    }
    match e.fatal_kind() {
        Some(F::LoginExpired | F::CredentialsRejected | F::ClientRejected) => {
            ErrorKind::Authentication
        }
        Some(_) => ErrorKind::Usage,
        None => ErrorKind::Other,
    }
}

impl From<nost_config::ModeError> for AppError {
    fn from(e: nost_config::ModeError) -> Self {
        AppError::Config(e.into())
    }
}

/// What a message handler returns when it could not handle a message; the
/// message is then rejected without requeue (no redelivery loop).
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn kinds_tell_log_in_again_from_broker_down() {
        let expired = AppError::Auth(nost_auth::AuthError::LoginExpired {
            reason: None,
            hint: "log in again",
        });
        assert!(expired.is_auth() && !expired.is_unavailable());
        let down = AppError::Amqp(nost_amqp::AmqpError::Unreachable {
            endpoint: "localhost:5672".into(),
            reason: "connection refused".into(),
            source: nost_config::Cause::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            )),
        });
        assert!(down.is_unavailable() && !down.is_auth());
        assert_eq!(AppError::LogLevel("LOUD".into()).kind(), ErrorKind::Usage);
    }

    #[test]
    fn file_errors_keep_their_cause() {
        let e = AppError::File {
            action: "create log_dir",
            path: "logs".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(
            e.to_string().starts_with("cannot create log_dir logs: "),
            "{e}"
        );
        let cause = e.source().and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            cause.map(|c| c.kind()),
            Some(std::io::ErrorKind::PermissionDenied)
        );
    }
}
