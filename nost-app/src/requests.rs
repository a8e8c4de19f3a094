//! Requests to the manager (`PREFIX.APP.request.*`): `request_resume` on
//! every [`Application`], `request_freeze` and `request_update` on a
//! [`ManagedApplication`], as in `nost_tools`.

use chrono::{DateTime, Utc};
use nost_config::NostDuration;

use crate::messages::{FreezeRequest, NostMessage, ResumeRequest, UpdateRequest};
use crate::simulator::{Mode, Simulator};
use crate::{AppError, Application, ManagedApplication, topics};

/// The scenario time of "now": the scenario time of wallclock now while
/// executing (never before the last committed step), else the current
/// scenario time.
fn scenario_now(sim: &Simulator) -> DateTime<Utc> {
    let t = sim.time();
    if sim.mode() == Mode::Executing {
        sim.scenario_at(sim.wallclock_now()).max(t)
    } else {
        t
    }
}

impl Application {
    /// Ask the manager to resume (`request.resume`). With no `tolerance`,
    /// `execution.general.resume_tolerance` (12 h by default) is sent when
    /// it is non-zero, as `nost_tools` does; the manager then resumes only
    /// if its scenario time is within the tolerance of `sim_resume_time`.
    pub async fn request_resume(
        &self,
        sim_resume_time: Option<DateTime<Utc>>,
        tolerance: Option<NostDuration>,
    ) -> Result<(), AppError> {
        let tolerance = tolerance.or_else(|| {
            let t = self
                .config()
                .execution
                .general_or_default()
                .resume_tolerance;
            (!t.is_zero()).then_some(t)
        });
        let body = ResumeRequest::new(self.name(), sim_resume_time, tolerance).to_json();
        self.send_message(topics::REQUEST_RESUME, &body).await
    }
}

impl ManagedApplication {
    /// Ask the manager to freeze (`request.freeze`) at scenario time
    /// `sim_freeze_time`, or **now** when `None` (`nost_tools` crashes
    /// there, its bug 27). `freezeTime` is the wallclock time of the
    /// freeze; with a `freeze_duration`, `resumeTime` is `freezeTime +
    /// duration` (a wallclock time). Without a duration the freeze lasts
    /// until something resumes the run.
    pub async fn request_freeze(
        &self,
        sim_freeze_time: Option<DateTime<Utc>>,
        freeze_duration: Option<NostDuration>,
    ) -> Result<(), AppError> {
        let sim = self.app().simulator();
        let (at, wall) = match sim_freeze_time {
            Some(t) => (t, sim.wallclock_at(t)),
            None => (scenario_now(sim), sim.wallclock_now()),
        };
        let body = FreezeRequest::new(at, wall, freeze_duration, self.app().name()).to_json();
        self.app().send_message(topics::REQUEST_FREEZE, &body).await
    }

    /// Ask the manager to change the time-scale factor
    /// (`request.update`) at `sim_update_time` (`None`: the manager's
    /// scenario now).
    pub async fn request_update(
        &self,
        time_scale_factor: f64,
        sim_update_time: Option<DateTime<Utc>>,
    ) -> Result<(), AppError> {
        if !(time_scale_factor > 0.0 && time_scale_factor.is_finite()) {
            return Err(AppError::InvalidTimeScale(time_scale_factor));
        }
        let body =
            UpdateRequest::new(time_scale_factor, sim_update_time, self.app().name()).to_json();
        self.app().send_message(topics::REQUEST_UPDATE, &body).await
    }

    /// [`Application::request_resume`] of the underlying application.
    pub async fn request_resume(
        &self,
        sim_resume_time: Option<DateTime<Utc>>,
        tolerance: Option<NostDuration>,
    ) -> Result<(), AppError> {
        self.app().request_resume(sim_resume_time, tolerance).await
    }
}
