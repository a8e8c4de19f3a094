//! What NOS-T users write: `Application`, `ManagedApplication` and `Manager`,
//! speaking the NOS-T protocol byte for byte like Python `nost_tools` 3.6.0.

pub mod app;

pub use app::error::{AppError, HandlerError};
pub use app::options::StartOptions;
pub use app::{Application, Message};
