//! What NOS-T users write: `Application`, `ManagedApplication` and `Manager`,
//! speaking the NOS-T protocol byte for byte like Python `nost_tools` 3.6.0.
//!
//! Pure (network-free) parts: [`messages`] (JSON bodies), [`time_fmt`]
//! (datetime wire format), [`topics`] (routing keys, queue names, wildcard
//! matching) and [`simulator`] (modes, scenario time, entities, observers).

pub mod app;
pub mod logger;
pub mod logging;
pub mod managed;
pub mod manager;
pub mod messages;
pub mod ntp;
pub mod requests;
pub mod simulator;
pub mod time_fmt;
pub mod topics;

pub use app::error::{AppError, HandlerError};
pub use app::options::StartOptions;
pub use app::shared::SharedTokens;
pub use app::shared_connection::SharedConnection;
pub use app::{Application, Message};
pub use logger::LoggerApplication;
pub use managed::{ManagedApplication, ManagedHooks};
pub use manager::{Manager, RunSummary, TestPlan};
