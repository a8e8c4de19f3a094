//! What NOS-T users write: `Application`, `ManagedApplication` and `Manager`,
//! speaking the NOS-T protocol byte for byte like Python `nost_tools` 3.6.0.
//!
//! At the root: the roles ([`Application`], [`ManagedApplication`],
//! [`Manager`] with its [`TestPlan`], [`LoggerApplication`]), what they start
//! with ([`StartOptions`], [`AuthInputs`]), what many of them in one process
//! can share ([`SharedTokens`], [`SharedConnection`]) and how they fail
//! ([`AppError`], [`ErrorKind`]). Namespaces: [`messages`] (JSON bodies),
//! [`time_fmt`] (datetime wire format), [`topics`] (routing keys, queue
//! names, wildcard matching) and [`simulator`] (modes, scenario time,
//! entities, observers) are pure, network-free code; [`logging`] sets up
//! logging as the YAML's logging fields describe.
//!
//! It is the layer that knows NOS-T: topics, commands, status messages and
//! the simulator's modes. It is not a configuration reader (`nost-config`),
//! a Keycloak client (`nost-auth`) or an AMQP client (`nost-amqp`);
//! [`Application::start_up`] composes those.
//!
//! ```no_run
//! use nost_app::{Application, StartOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = nost_config::load_file("examples/config/basic.yaml")?.config;
//! let app = Application::start_up("fire", "demo", &config, StartOptions::default()).await?;
//! app.add_message_callback("*", "detection", |m| async move {
//!     println!("{} says {}", m.sender(), m.text()?);
//!     Ok(())
//! })
//! .await?;
//! app.send_message("detection", r#"{"lat":1.0}"#).await?;
//! app.shut_down().await;
//! # Ok(()) }
//! ```

#![warn(unreachable_pub)]

mod app;
mod logger;
pub mod logging;
mod managed;
mod manager;
pub mod messages;
mod ntp;
mod requests;
pub mod simulator;
pub mod time_fmt;
pub mod topics;

pub use app::error::{AppError, ErrorKind, HandlerError};
pub use app::options::{AuthInputs, StartOptions};
pub use app::shared::SharedTokens;
pub use app::shared_connection::{SharedConnection, SharedConnectionOptions};
pub use app::{Application, Message};
pub use logger::LoggerApplication;
pub use managed::{ManagedApplication, ManagedHooks};
pub use manager::{Manager, RunSummary, TestPlan};
