//! Why a simulator operation was refused.

use chrono::TimeDelta;

use super::Mode;

/// Why a simulator operation was refused. Nothing changed when one is
/// returned; each says what would be accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The operation is not allowed in the current mode (e.g. a pause
    /// while PAUSED, an entity added while EXECUTING).
    #[error(
        "cannot {action} while the simulator is {mode}; wait for a mode that allows it (Simulator::wait_for) or check Simulator::mode first"
    )]
    InvalidMode {
        /// What was attempted.
        action: &'static str,
        /// The mode at that moment.
        mode: Mode,
    },
    /// A run is already in progress.
    #[error(
        "cannot {action}: a run is in progress; terminate it (Simulator::terminate) or wait for TERMINATED first"
    )]
    Running {
        /// What was attempted.
        action: &'static str,
    },
    /// No run is in progress.
    #[error(
        "cannot {action}: no run is in progress; start one with Simulator::execute or run first"
    )]
    NotRunning {
        /// What was attempted.
        action: &'static str,
    },
    /// A step or interval that is zero or negative.
    #[error("the {what} must be positive, got {got}; give it a duration above zero (e.g. 1 s)")]
    NotPositive {
        /// Which step or interval (e.g. `time step`, `interval`).
        what: String,
        /// What was given.
        got: TimeDelta,
    },
    /// A time-scale factor that is zero, negative or not finite.
    #[error(
        "the time-scale factor must be a positive number, got {0}; give e.g. 1.0 for real time or 60.0 for a scenario minute per wallclock second"
    )]
    InvalidFactor(f64),
    /// A negative duration, or one whose end lies outside the representable
    /// dates.
    #[error(
        "the duration must be non-negative and end within the representable dates, got {0}; give a shorter, non-negative duration"
    )]
    InvalidDuration(TimeDelta),
    /// `execute` was called outside a tokio runtime.
    #[error(
        "the simulator needs a tokio runtime; call Simulator::execute from async code under a runtime (e.g. #[tokio::main])"
    )]
    NoRuntime,
    /// The run task panicked (e.g. in an observer or entity).
    #[error(
        "the simulator task panicked (in an observer or entity callback); the panic message is in the log above"
    )]
    Panicked,
}

impl SimError {
    /// `what` must be positive and got `got`.
    pub(crate) fn not_positive(what: impl Into<String>, got: TimeDelta) -> Self {
        SimError::NotPositive {
            what: what.into(),
            got,
        }
    }
}
