//! FireSat's messages, with the topics and JSON fields of nost_tools'
//! example (`PREFIX.fire.location`, `PREFIX.constellation.detected`,
//! `PREFIX.constellation.reported`, `PREFIX.constellation.location`,
//! `PREFIX.ground.location`).

use chrono::{DateTime, Utc};
use nost_app::time_fmt;
use serde::{Deserialize, Serialize};

/// `fire.location`: a fire started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct FireStarted {
    /// Unique fire identifier.
    pub fireId: u32,
    /// Ignition (scenario time).
    #[serde(with = "time_fmt::utc")]
    pub start: DateTime<Utc>,
    /// Latitude (deg).
    pub latitude: f64,
    /// Longitude (deg).
    pub longitude: f64,
}

/// `constellation.detected`: the first detection of a fire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct FireDetected {
    /// Unique fire identifier.
    pub fireId: u32,
    /// Detection (scenario time).
    #[serde(with = "time_fmt::utc")]
    pub detected: DateTime<Utc>,
    /// The detecting satellite.
    pub detected_by: String,
}

/// `constellation.reported`: the first report of a fire to a ground
/// station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct FireReported {
    /// Unique fire identifier.
    pub fireId: u32,
    /// Report (scenario time).
    #[serde(with = "time_fmt::utc")]
    pub reported: DateTime<Utc>,
    /// The reporting satellite.
    pub reported_by: String,
    /// The receiving ground station.
    pub reported_to: u32,
}

/// `ground.location`: a ground station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct GroundLocation {
    /// Unique station identifier.
    pub groundId: u32,
    /// Latitude (deg).
    pub latitude: f64,
    /// Longitude (deg).
    pub longitude: f64,
    /// Minimum elevation (deg) for communication.
    pub elevAngle: f64,
    /// Whether the station works.
    #[serde(default = "yes")]
    pub operational: bool,
}

fn yes() -> bool {
    true
}

/// `constellation.location`: where a satellite is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct SatelliteStatus {
    /// Index in the constellation.
    pub id: u32,
    /// Satellite name.
    pub name: String,
    /// Sub-satellite latitude (deg).
    pub latitude: f64,
    /// Sub-satellite longitude (deg).
    pub longitude: f64,
    /// Altitude (m).
    pub altitude: f64,
    /// Radius (m) of the sensor's circle on the ground.
    pub radius: f64,
    /// In range of an operational ground station.
    pub commRange: bool,
    /// Scenario time.
    #[serde(with = "time_fmt::utc")]
    pub time: DateTime<Utc>,
}
