//! Status messages published by every role (`PREFIX.APP.status.*`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Mode, NostMessage, validate};
use crate::time_fmt;

/// `status.ready`: `{"name":…,"properties":{"ready":true}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadyStatus {
    /// The app name (required).
    pub name: String,
    /// Free text; left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The properties.
    pub properties: ReadyProperties,
}

/// Properties of [`ReadyStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadyProperties {
    /// Whether the app is ready (default true).
    #[serde(default = "validate::yes")]
    pub ready: bool,
}

impl ReadyStatus {
    /// `ready = true`, no description.
    pub fn new(name: impl Into<String>) -> Self {
        ReadyStatus {
            name: name.into(),
            description: None,
            properties: ReadyProperties { ready: true },
        }
    }
}

impl NostMessage for ReadyStatus {
    const NAME: &'static str = "ReadyStatus";
}

/// `status.mode`: `{"name":…,"properties":{"mode":"EXECUTING"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeStatus {
    /// The app name (required).
    pub name: String,
    /// Free text; left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The properties.
    pub properties: ModeProperties,
}

/// Properties of [`ModeStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeProperties {
    /// The new mode (required).
    pub mode: Mode,
}

impl ModeStatus {
    /// No description.
    pub fn new(name: impl Into<String>, mode: Mode) -> Self {
        ModeStatus {
            name: name.into(),
            description: None,
            properties: ModeProperties { mode },
        }
    }
}

impl NostMessage for ModeStatus {
    const NAME: &'static str = "ModeStatus";
}

/// `status.time`: current scenario and wallclock time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeStatus {
    /// The app name (required).
    pub name: String,
    /// Free text; left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The properties.
    pub properties: TimeProperties,
}

/// Properties of [`TimeStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeProperties {
    /// Current scenario time (required).
    #[serde(with = "time_fmt::utc")]
    pub sim_time: DateTime<Utc>,
    /// Current wallclock time, UTC + NTP offset (required).
    #[serde(with = "time_fmt::utc")]
    pub time: DateTime<Utc>,
}

impl TimeStatus {
    /// No description.
    pub fn new(name: impl Into<String>, sim_time: DateTime<Utc>, time: DateTime<Utc>) -> Self {
        TimeStatus {
            name: name.into(),
            description: None,
            properties: TimeProperties { sim_time, time },
        }
    }
}

impl NostMessage for TimeStatus {
    const NAME: &'static str = "TimeStatus";
}
