//! Requests sent by applications to the manager (`PREFIX.APP.request.*`).

use chrono::{DateTime, Utc};
use nost_config::NostDuration;
use serde::{Deserialize, Serialize};

use super::{NostMessage, validate};
use crate::time_fmt;

/// `request.freeze`: ask the manager to freeze the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FreezeRequest {
    /// The parameters.
    pub tasking_parameters: FreezeRequestParameters,
}

/// Parameters of [`FreezeRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FreezeRequestParameters {
    /// Scenario time of the freeze (required, after 1970).
    #[serde(
        serialize_with = "time_fmt::utc::serialize",
        deserialize_with = "validate::after_1970"
    )]
    pub sim_freeze_time: DateTime<Utc>,
    /// Wallclock time matching `sim_freeze_time` (required).
    #[serde(with = "time_fmt::utc")]
    pub freeze_time: DateTime<Utc>,
    /// Wallclock length of the freeze (`None` = indefinite; never negative).
    #[serde(default, deserialize_with = "validate::freeze_duration")]
    pub freeze_duration: Option<NostDuration>,
    /// `freeze_time + freeze_duration`: a **wallclock** time.
    #[serde(default, with = "time_fmt::option")]
    pub resume_time: Option<DateTime<Utc>>,
    /// The requesting app (required).
    pub requesting_app: String,
}

impl FreezeRequest {
    /// Build a freeze request; `resumeTime` is set to `freeze_time +
    /// freeze_duration` when a duration is given, as `nost_tools` does
    /// (`None` when that sum is beyond the datetime range).
    pub fn new(
        sim_freeze_time: DateTime<Utc>,
        freeze_time: DateTime<Utc>,
        freeze_duration: Option<NostDuration>,
        requesting_app: impl Into<String>,
    ) -> Self {
        FreezeRequest {
            tasking_parameters: FreezeRequestParameters {
                sim_freeze_time,
                freeze_time,
                freeze_duration,
                resume_time: freeze_duration
                    .and_then(|d| freeze_time.checked_add_signed(d.as_delta())),
                requesting_app: requesting_app.into(),
            },
        }
    }
}

impl NostMessage for FreezeRequest {
    const NAME: &'static str = "FreezeRequest";
}

/// `request.resume`: ask the manager to resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeRequest {
    /// The parameters.
    pub tasking_parameters: ResumeRequestParameters,
}

/// Parameters of [`ResumeRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeRequestParameters {
    /// The requesting app (required).
    pub requesting_app: String,
    /// Scenario time the requester is at (`None` = resume now).
    #[serde(default, with = "time_fmt::option")]
    pub sim_resume_time: Option<DateTime<Utc>>,
    /// How far the manager's scenario time may be from `sim_resume_time`
    /// (`None` = resume now; never negative).
    #[serde(default, deserialize_with = "validate::tolerance")]
    pub tolerance: Option<NostDuration>,
}

impl ResumeRequest {
    /// Build a resume request.
    pub fn new(
        requesting_app: impl Into<String>,
        sim_resume_time: Option<DateTime<Utc>>,
        tolerance: Option<NostDuration>,
    ) -> Self {
        ResumeRequest {
            tasking_parameters: ResumeRequestParameters {
                requesting_app: requesting_app.into(),
                sim_resume_time,
                tolerance,
            },
        }
    }
}

impl NostMessage for ResumeRequest {
    const NAME: &'static str = "ResumeRequest";
}

/// `request.update`: ask the manager to change the time-scale factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRequest {
    /// The parameters.
    pub tasking_parameters: UpdateRequestParameters,
}

/// Parameters of [`UpdateRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRequestParameters {
    /// New factor, > 0 (required).
    #[serde(deserialize_with = "validate::positive_factor")]
    pub time_scaling_factor: f64,
    /// Scenario time at which it applies (`None` = the manager's now).
    #[serde(default, with = "time_fmt::option")]
    pub sim_update_time: Option<DateTime<Utc>>,
    /// The requesting app (required).
    pub requesting_app: String,
}

impl UpdateRequest {
    /// Build an update request.
    pub fn new(
        time_scaling_factor: f64,
        sim_update_time: Option<DateTime<Utc>>,
        requesting_app: impl Into<String>,
    ) -> Self {
        UpdateRequest {
            tasking_parameters: UpdateRequestParameters {
                time_scaling_factor,
                sim_update_time,
                requesting_app: requesting_app.into(),
            },
        }
    }
}

impl NostMessage for UpdateRequest {
    const NAME: &'static str = "UpdateRequest";
}
