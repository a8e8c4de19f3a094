//! Commands during a run: pause, resume, time-scale updates, duration
//! and time-step changes, terminate, the wallclock offset.

use chrono::{DateTime, TimeDelta, Utc};

use super::state::{PendingUpdate, State};
use super::{Mode, SimError, Simulator};

impl Simulator {
    /// EXECUTING → PAUSING; the run loop makes it PAUSED. A pause during
    /// the wait for a step commits that step without waiting.
    pub fn pause(&self) -> Result<(), SimError> {
        self.mutate(|s| {
            if s.mode != Mode::Executing {
                return Err(SimError::InvalidMode {
                    action: "pause",
                    mode: s.mode,
                });
            }
            s.set_mode(Mode::Pausing);
            Ok(())
        })
    }

    /// PAUSING/PAUSED → RESUMING, re-anchored at once (wallclock epoch =
    /// now, simulation epoch = current time); the run loop makes it
    /// EXECUTING.
    pub fn resume(&self) -> Result<(), SimError> {
        let now = self.inner.clock.now();
        // Re-anchor now, so that wallclock_at is right at once (a freeze
        // computed right after a resume must not use the old time line).
        self.resume_anchored(|s| (now, s.time))
    }

    /// Like [`resume`](Self::resume), but the run re-anchors to the given
    /// mapping (wallclock `resume_time` ↔ scenario `sim_resume_time`, the
    /// fields of a `resume` command) instead of to its own now, so every
    /// application resumed by one command keeps the same time line
    /// (`nost_tools` ignores them: its bug 28). A simulator whose time is
    /// ahead of that mapping waits; one behind catches up.
    pub fn resume_at(
        &self,
        resume_time: DateTime<Utc>,
        sim_resume_time: DateTime<Utc>,
    ) -> Result<(), SimError> {
        self.resume_anchored(|_| (resume_time, sim_resume_time))
    }

    /// PAUSING/PAUSED → RESUMING with the epochs `anchor` picks (wallclock,
    /// scenario) from the state.
    fn resume_anchored(
        &self,
        anchor: impl FnOnce(&State) -> (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<(), SimError> {
        self.mutate(|s| {
            if !matches!(s.mode, Mode::Pausing | Mode::Paused) {
                return Err(SimError::InvalidMode {
                    action: "resume",
                    mode: s.mode,
                });
            }
            (s.wallclock_epoch, s.simulation_epoch) = anchor(s);
            s.set_mode(Mode::Resuming);
            Ok(())
        })
    }

    fn check_active(s: &State, action: &'static str) -> Result<(), SimError> {
        if !s.running {
            return Err(SimError::NotRunning { action });
        }
        if !s.is_active() {
            return Err(SimError::InvalidMode {
                action,
                mode: s.mode,
            });
        }
        Ok(())
    }

    /// Change the time-scale factor at the step that crosses scenario time
    /// `sim_update_time` (at the next step when it is `None` or has passed),
    /// re-anchoring the epochs at that step's start. Allowed while a run is
    /// in progress (before EXECUTING, and while paused, too).
    pub fn update(
        &self,
        time_scale_factor: f64,
        sim_update_time: Option<DateTime<Utc>>,
    ) -> Result<(), SimError> {
        Self::check_factor(time_scale_factor)?;
        self.mutate(|s| {
            Self::check_active(s, "update the time-scale factor")?;
            let u = PendingUpdate {
                factor: time_scale_factor,
                at: sim_update_time,
            };
            // Keep the list ordered by scenario time (None first), stable.
            let pos = s
                .pending_updates
                .iter()
                .position(|p| match (p.at, u.at) {
                    (_, None) => p.at.is_some(),
                    (None, Some(_)) => false,
                    (Some(a), Some(b)) => a > b,
                })
                .unwrap_or(s.pending_updates.len());
            s.pending_updates.insert(pos, u);
            Ok(())
        })
    }

    /// End the run at scenario time `end` (duration = end − initial time),
    /// taking effect after the current step. Allowed while a run is in
    /// progress.
    pub fn set_end_time(&self, end: DateTime<Utc>) -> Result<(), SimError> {
        let init = self.init_time();
        self.set_duration(end - init)
    }

    /// Change the run's duration, taking effect after the current step.
    /// Allowed while a run is in progress.
    pub fn set_duration(&self, duration: TimeDelta) -> Result<(), SimError> {
        self.mutate(|s| {
            Self::check_active(s, "change the duration")?;
            if s.init_time.checked_add_signed(duration).is_none() {
                return Err(SimError::InvalidDuration(duration));
            }
            s.pending_duration = Some(duration);
            Ok(())
        })
    }

    /// Change the time step, taking effect after the current step. Allowed
    /// while a run is in progress.
    pub fn set_time_step(&self, time_step: TimeDelta) -> Result<(), SimError> {
        if time_step <= TimeDelta::zero() {
            return Err(SimError::not_positive("time step", time_step));
        }
        self.mutate(|s| {
            Self::check_active(s, "change the time step")?;
            s.pending_time_step = Some(time_step);
            Ok(())
        })
    }

    /// End the run early: TERMINATING now (a step in progress is not
    /// committed), TERMINATED once the loop has stopped. Allowed while a run
    /// is in progress; a second call while TERMINATING is a no-op.
    pub fn terminate(&self) -> Result<(), SimError> {
        self.mutate(|s| {
            if s.running && s.mode == Mode::Terminating {
                return Ok(());
            }
            Self::check_active(s, "terminate")?;
            s.set_mode(Mode::Terminating);
            Ok(())
        })
    }

    /// Set the wallclock offset (e.g. from NTP). Allowed in any mode except
    /// TERMINATING; the run loop re-evaluates its wait at once.
    pub fn set_wallclock_offset(&self, offset: TimeDelta) -> Result<(), SimError> {
        let s = self.state();
        if s.mode == Mode::Terminating {
            return Err(SimError::InvalidMode {
                action: "set the wallclock offset",
                mode: s.mode,
            });
        }
        self.inner.clock.set_offset(offset);
        drop(s);
        self.inner.notify.notify_one();
        Ok(())
    }
}
