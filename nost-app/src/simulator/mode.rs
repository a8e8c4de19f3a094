//! The simulator modes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A simulator mode, written on the wire with the exact upper-case names of
/// `nost_tools` (`"EXECUTING"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    /// Not initialized (the initial mode).
    #[default]
    Undefined,
    /// Initializing entities.
    Initializing,
    /// Initialized; a run waits here for its wallclock epoch.
    Initialized,
    /// Stepping scenario time.
    Executing,
    /// A pause was requested; the run loop turns it into `Paused`.
    Pausing,
    /// Scenario time stands still.
    Paused,
    /// A resume was requested; the run loop re-anchors and executes again.
    Resuming,
    /// The run is ending.
    Terminating,
    /// The run has ended.
    Terminated,
}

impl Mode {
    /// Every mode, in protocol order.
    pub const ALL: [Mode; 9] = [
        Mode::Undefined,
        Mode::Initializing,
        Mode::Initialized,
        Mode::Executing,
        Mode::Pausing,
        Mode::Paused,
        Mode::Resuming,
        Mode::Terminating,
        Mode::Terminated,
    ];

    /// The wire name (`"EXECUTING"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Undefined => "UNDEFINED",
            Mode::Initializing => "INITIALIZING",
            Mode::Initialized => "INITIALIZED",
            Mode::Executing => "EXECUTING",
            Mode::Pausing => "PAUSING",
            Mode::Paused => "PAUSED",
            Mode::Resuming => "RESUMING",
            Mode::Terminating => "TERMINATING",
            Mode::Terminated => "TERMINATED",
        }
    }

    /// Whether entities may be added or removed, the simulator initialized
    /// or a run started: `UNDEFINED`, `INITIALIZED` or `TERMINATED`.
    pub fn is_idle(self) -> bool {
        matches!(self, Mode::Undefined | Mode::Initialized | Mode::Terminated)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown mode name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown mode {0:?}: expected one of UNDEFINED, INITIALIZING, INITIALIZED, EXECUTING, PAUSING, PAUSED, RESUMING, TERMINATING, TERMINATED"
)]
pub struct ParseModeError(pub String);

impl FromStr for Mode {
    type Err = ParseModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| ParseModeError(s.to_owned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wire_names() {
        for m in Mode::ALL {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert_eq!(serde_json::from_str::<Mode>(&json).unwrap(), m);
            assert_eq!(m.as_str().parse::<Mode>().unwrap(), m);
        }
        assert!("executing".parse::<Mode>().is_err());
        assert!(serde_json::from_str::<Mode>("\"Executing\"").is_err());
    }
}
