//! Configuration of NOS-T applications: a YAML file plus `.env`, validated,
//! and the one authentication mode they describe.
//!
//! This crate reads the same files as Python `nost_tools` 3.6.0 (same field
//! names, same defaults) and is stricter where the original is silently
//! wrong: unknown keys are reported as warnings with their path, invalid
//! values are errors naming the file, line and field, and a configuration
//! built in code is validated instead of falling back to defaults.
//!
//! It does no network I/O: it does not talk to Keycloak (`nost-auth`) or
//! RabbitMQ (`nost-amqp`).
//!
//! ```
//! use nost_config::{AuthMode, Credentials, ModeKind, Tokens};
//!
//! let loaded = nost_config::load_str(
//!     "servers:\n  rabbitmq:\n    host: localhost\nexecution: {}\n",
//!     nost_config::Origin::Program,
//! )
//! .expect("valid");
//! let creds = Credentials::basic("guest", "guest");
//! let mode = AuthMode::detect(
//!     loaded.config.servers.rabbitmq.keycloak_authentication,
//!     &creds,
//!     &Tokens::default(),
//! )
//! .expect("a mode");
//! assert_eq!(mode.kind(), ModeKind::Basic);
//! ```
//!
//! Secrets (passwords, client secrets, tokens) are held in
//! [`secrecy::SecretString`] from the moment they are read, so `Debug` output
//! and errors never show them.

// The public surface is the `pub use` list below (and the public modules);
// everything else is crate-private.
#![warn(unreachable_pub)]

mod builder;
mod cause;
pub mod channels;
pub mod dotenv;
pub mod duration;
mod env;
mod error;
mod load;
mod mode;
pub mod schema;
pub mod time;

pub use builder::ConfigBuilder;
pub use cause::Cause;
pub use channels::{ChannelDeclaration, ChannelExchange};
pub use duration::NostDuration;
pub use env::{
    CLIENT_ID, CLIENT_SECRET_KEY, Credentials, EnvFile, PASSWORD, USERNAME, VarSource, find_dotenv,
};
pub use error::{ConfigError, ConfigWarning, FieldError, Origin};
pub use load::{LoadedConfig, MAX_SECONDS, load_file, load_str};
pub use mode::{AuthMode, ModeError, ModeErrorKind, ModeKind, Tokens, VALID_MODES};
pub use schema::{
    ApplicationConfig, BrokerEndpoint, Config, DEFAULT_MAX_BODY_SIZE, Execution, GeneralConfig,
    KeycloakConfig, LoggerApplicationConfig, LoggingConfig, ManagedApplicationConfig,
    ManagerConfig, QueueType, RabbitMqConfig, Servers,
};
pub use secrecy::{ExposeSecret, SecretString};
