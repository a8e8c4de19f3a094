//! Errors of applications.

/// Why an application could not start or act.
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
    InvalidName(String),
    /// A message that could not be built.
    #[error("invalid message: {0}")]
    Message(String),
    /// A required setting is missing (e.g. the manager's scenario times).
    #[error("{0}")]
    Missing(String),
    /// A `channels` entry that could not be declared (its path, e.g.
    /// `channels.fire.detected.bindings.amqp.exchange`, and why).
    #[error("{path}: {reason}")]
    Channel {
        /// Dotted path of the entry in the YAML.
        path: String,
        /// What went wrong and what to do.
        reason: String,
    },
    /// The simulator refused a command (a pause while not executing, a
    /// non-positive time step, …).
    #[error(transparent)]
    Simulator(#[from] crate::simulator::SimError),
    /// The application was shut down.
    #[error("the application is shut down")]
    ShutDown,
}

impl From<nost_config::ModeError> for AppError {
    fn from(e: nost_config::ModeError) -> Self {
        AppError::Config(e.into())
    }
}

/// What a message handler returns when it could not handle a message; the
/// message is then rejected without requeue (no redelivery loop).
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;
