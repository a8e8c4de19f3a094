//! The JSON bodies of the NOS-T protocol, serialized byte for byte as `nost_tools` 3.6.0 writes them.
//!
//! - Compact JSON, camelCase keys in the documented order.
//! - Commands and requests write `null` for empty optional fields; status
//!   messages leave out a `None` `description`.
//! - Datetimes in the [`time_fmt`](crate::time_fmt) wire format (always UTC,
//!   `Z`); durations as ISO-8601 via [`NostDuration`](nost_config::NostDuration).
//!
//! Parsing follows pydantic: only camelCase keys are read (a snake_case key
//! is an unknown key, so the field counts as missing), unknown keys are
//! ignored, integers are accepted for floats, naive datetimes are taken as
//! UTC, `timeScalingFactor` must be > 0, and the freeze/resume datetimes
//! must be after 1970-01-01T00:00:00Z.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use nost_app::messages::{InitCommand, NostMessage, StartCommand};
//!
//! let start = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
//! let stop = Utc.with_ymd_and_hms(2026, 6, 1, 2, 0, 0).unwrap();
//! let init = InitCommand::new(start, stop, vec!["fire".into()]);
//! assert_eq!(
//!     init.to_json(),
//!     r#"{"taskingParameters":{"simStartTime":"2026-06-01T00:00:00Z","simStopTime":"2026-06-01T02:00:00Z","requiredApps":["fire"]}}"#
//! );
//! assert_eq!(InitCommand::from_json(init.to_json().as_bytes()).unwrap(), init);
//! // A stop before the start is refused, naming what is wrong.
//! let bad = br#"{"taskingParameters":{"simStartTime":"2026-06-01T02:00:00Z","simStopTime":"2026-06-01T00:00:00Z"}}"#;
//! assert!(InitCommand::from_json(bad).is_err());
//! assert!(StartCommand::from_json(b"{}").is_err());
//! ```

mod commands;
mod requests;
mod status;

#[cfg(test)]
mod tests;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::simulator::Mode;
pub use commands::{
    FreezeCommand, FreezeParameters, InitCommand, InitParameters, ResumeCommand, ResumeParameters,
    StartCommand, StartParameters, StopCommand, StopParameters, UpdateCommand, UpdateParameters,
};
pub use requests::{
    FreezeRequest, FreezeRequestParameters, ResumeRequest, ResumeRequestParameters, UpdateRequest,
    UpdateRequestParameters,
};
pub use status::{
    ModeProperties, ModeStatus, ReadyProperties, ReadyStatus, TimeProperties, TimeStatus,
};

/// A message body that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid {message} body: {source}")]
pub struct MessageError {
    /// The message type (`"StartCommand"`).
    pub message: &'static str,
    /// What serde_json reported (missing field, bad value, …).
    #[source]
    pub source: serde_json::Error,
}

/// Reading and writing a NOS-T message body.
pub trait NostMessage: Serialize + DeserializeOwned {
    /// The type name used in errors (`"StartCommand"`).
    const NAME: &'static str;

    /// Compact JSON, no trailing newline, exactly as `nost_tools` writes it.
    fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail (string keys, no maps
        // with non-string keys, finite floats); fall back to "{}" regardless.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// Parse and validate a body. JSON nested deeper than 128 levels is
    /// refused by serde_json's recursion limit (no stack overflow).
    fn from_json(body: &[u8]) -> Result<Self, MessageError> {
        let value: Self = serde_json::from_slice(body).map_err(|source| MessageError {
            message: Self::NAME,
            source,
        })?;
        value.check().map_err(|text| MessageError {
            message: Self::NAME,
            source: <serde_json::Error as serde::de::Error>::custom(text),
        })?;
        Ok(value)
    }

    /// Rules between fields (e.g. stop not before start); the text names
    /// the field.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Serde validators shared by the message types.
pub(crate) mod validate {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer};

    /// `timeScalingFactor`: a number > 0.
    pub(crate) fn positive_factor<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let v = f64::deserialize(d)?;
        if v > 0.0 && v.is_finite() {
            Ok(v)
        } else {
            Err(serde::de::Error::custom(format!(
                "timeScalingFactor must be greater than 0, got {v}"
            )))
        }
    }

    /// The default `timeScalingFactor` of a start command.
    pub(crate) fn one() -> f64 {
        1.0
    }

    /// `true`, the default of `ready`.
    pub(crate) fn yes() -> bool {
        true
    }

    /// `freezeDuration`: absent, `null` or a duration that is not negative.
    pub(crate) fn freeze_duration<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<nost_config::NostDuration>, D::Error> {
        non_negative(d, "freezeDuration")
    }

    /// `tolerance`: absent, `null` or a duration that is not negative.
    pub(crate) fn tolerance<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<nost_config::NostDuration>, D::Error> {
        non_negative(d, "tolerance")
    }

    fn non_negative<'de, D: Deserializer<'de>>(
        d: D,
        field: &str,
    ) -> Result<Option<nost_config::NostDuration>, D::Error> {
        let v = Option::<nost_config::NostDuration>::deserialize(d)
            .map_err(|e| serde::de::Error::custom(format!("{field}: {e}")))?;
        match v {
            Some(x) if x.is_negative() => Err(serde::de::Error::custom(format!(
                "{field} must not be negative, got {}",
                x.to_iso8601()
            ))),
            v => Ok(v),
        }
    }

    /// A datetime after 1970-01-01T00:00:00Z.
    pub(crate) fn after_1970<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let v = crate::time_fmt::utc::deserialize(d)?;
        if v > DateTime::UNIX_EPOCH {
            Ok(v)
        } else {
            Err(serde::de::Error::custom(format!(
                "datetime must be after 1970-01-01T00:00:00Z, got {}",
                crate::time_fmt::format(&v)
            )))
        }
    }
}
