//! Commands published by the manager (`PREFIX.MGR.{init,start,stop,update,freeze,resume}`).

use chrono::{DateTime, Utc};
use nost_config::NostDuration;
use serde::{Deserialize, Serialize};

use super::{NostMessage, validate};
use crate::time_fmt;

/// `init`: `{"taskingParameters":{"simStartTime":…,"simStopTime":…,"requiredApps":[…]}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitCommand {
    /// The parameters.
    pub tasking_parameters: InitParameters,
}

/// Parameters of [`InitCommand`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitParameters {
    /// Scenario start time (required).
    #[serde(with = "time_fmt::utc")]
    pub sim_start_time: DateTime<Utc>,
    /// Scenario stop time (required).
    #[serde(with = "time_fmt::utc")]
    pub sim_stop_time: DateTime<Utc>,
    /// Apps the manager waits for (default empty).
    #[serde(default)]
    pub required_apps: Vec<String>,
}

impl InitCommand {
    /// Build an init command.
    pub fn new(
        sim_start_time: DateTime<Utc>,
        sim_stop_time: DateTime<Utc>,
        required_apps: Vec<String>,
    ) -> Self {
        InitCommand {
            tasking_parameters: InitParameters {
                sim_start_time,
                sim_stop_time,
                required_apps,
            },
        }
    }
}

impl NostMessage for InitCommand {
    const NAME: &'static str = "InitCommand";

    fn check(&self) -> Result<(), String> {
        let p = &self.tasking_parameters;
        stop_after_start(Some(p.sim_start_time), Some(p.sim_stop_time))
    }
}

fn stop_after_start(
    start: Option<DateTime<Utc>>,
    stop: Option<DateTime<Utc>>,
) -> Result<(), String> {
    match (start, stop) {
        (Some(a), Some(b)) if b < a => Err(format!(
            "simStopTime {} is before simStartTime {}",
            time_fmt::format(&b),
            time_fmt::format(&a)
        )),
        _ => Ok(()),
    }
}

/// `start`: wallclock start, scenario start/stop and time-scale factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartCommand {
    /// The parameters.
    pub tasking_parameters: StartParameters,
}

/// Parameters of [`StartCommand`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartParameters {
    /// Wallclock time at which the scenario starts (`None` = now).
    #[serde(default, with = "time_fmt::option")]
    pub start_time: Option<DateTime<Utc>>,
    /// Scenario start time (`None` = keep the one from init).
    #[serde(default, with = "time_fmt::option")]
    pub sim_start_time: Option<DateTime<Utc>>,
    /// Scenario stop time (`None` = keep the one from init).
    #[serde(default, with = "time_fmt::option")]
    pub sim_stop_time: Option<DateTime<Utc>>,
    /// Scenario seconds per wallclock second, > 0 (default 1.0).
    #[serde(
        default = "validate::one",
        deserialize_with = "validate::positive_factor"
    )]
    pub time_scaling_factor: f64,
}

impl StartCommand {
    /// Build a start command.
    pub fn new(
        start_time: Option<DateTime<Utc>>,
        sim_start_time: Option<DateTime<Utc>>,
        sim_stop_time: Option<DateTime<Utc>>,
        time_scaling_factor: f64,
    ) -> Self {
        StartCommand {
            tasking_parameters: StartParameters {
                start_time,
                sim_start_time,
                sim_stop_time,
                time_scaling_factor,
            },
        }
    }
}

impl NostMessage for StartCommand {
    const NAME: &'static str = "StartCommand";

    fn check(&self) -> Result<(), String> {
        let p = &self.tasking_parameters;
        stop_after_start(p.sim_start_time, p.sim_stop_time)
    }
}

/// `stop`: `{"taskingParameters":{"simStopTime":…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopCommand {
    /// The parameters.
    pub tasking_parameters: StopParameters,
}

/// Parameters of [`StopCommand`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopParameters {
    /// New scenario end time (required).
    #[serde(with = "time_fmt::utc")]
    pub sim_stop_time: DateTime<Utc>,
}

impl StopCommand {
    /// Build a stop command.
    pub fn new(sim_stop_time: DateTime<Utc>) -> Self {
        StopCommand {
            tasking_parameters: StopParameters { sim_stop_time },
        }
    }
}

impl NostMessage for StopCommand {
    const NAME: &'static str = "StopCommand";
}

/// `update`: change the time-scale factor at a scenario time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateCommand {
    /// The parameters.
    pub tasking_parameters: UpdateParameters,
}

/// Parameters of [`UpdateCommand`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateParameters {
    /// New factor, > 0 (required).
    #[serde(deserialize_with = "validate::positive_factor")]
    pub time_scaling_factor: f64,
    /// Scenario time at which it applies (required).
    #[serde(with = "time_fmt::utc")]
    pub sim_update_time: DateTime<Utc>,
}

impl UpdateCommand {
    /// Build an update command.
    pub fn new(time_scaling_factor: f64, sim_update_time: DateTime<Utc>) -> Self {
        UpdateCommand {
            tasking_parameters: UpdateParameters {
                time_scaling_factor,
                sim_update_time,
            },
        }
    }
}

impl NostMessage for UpdateCommand {
    const NAME: &'static str = "UpdateCommand";
}

/// `freeze`: pause at a scenario time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FreezeCommand {
    /// The parameters.
    pub tasking_parameters: FreezeParameters,
}

/// Parameters of [`FreezeCommand`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FreezeParameters {
    /// Scenario time of the freeze (required, after 1970).
    #[serde(
        serialize_with = "time_fmt::utc::serialize",
        deserialize_with = "validate::after_1970"
    )]
    pub sim_freeze_time: DateTime<Utc>,
    /// Wallclock length of the freeze (`None` = until a resume command;
    /// never negative).
    #[serde(default, deserialize_with = "validate::freeze_duration")]
    pub freeze_duration: Option<NostDuration>,
}

impl FreezeCommand {
    /// Build a freeze command.
    pub fn new(sim_freeze_time: DateTime<Utc>, freeze_duration: Option<NostDuration>) -> Self {
        FreezeCommand {
            tasking_parameters: FreezeParameters {
                sim_freeze_time,
                freeze_duration,
            },
        }
    }
}

impl NostMessage for FreezeCommand {
    const NAME: &'static str = "FreezeCommand";
}

/// `resume`: resume a frozen run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeCommand {
    /// The parameters.
    pub tasking_parameters: ResumeParameters,
}

/// Parameters of [`ResumeCommand`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeParameters {
    /// The manager's wallclock now (required, after 1970).
    #[serde(
        serialize_with = "time_fmt::utc::serialize",
        deserialize_with = "validate::after_1970"
    )]
    pub resume_time: DateTime<Utc>,
    /// The manager's scenario now (required, after 1970).
    #[serde(
        serialize_with = "time_fmt::utc::serialize",
        deserialize_with = "validate::after_1970"
    )]
    pub sim_resume_time: DateTime<Utc>,
}

impl ResumeCommand {
    /// Build a resume command.
    pub fn new(resume_time: DateTime<Utc>, sim_resume_time: DateTime<Utc>) -> Self {
        ResumeCommand {
            tasking_parameters: ResumeParameters {
                resume_time,
                sim_resume_time,
            },
        }
    }
}

impl NostMessage for ResumeCommand {
    const NAME: &'static str = "ResumeCommand";
}
