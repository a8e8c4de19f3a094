//! The simulator's state behind its lock: mode, scenario time and its
//! mapping to the wallclock, pending changes, queued events, observers;
//! and the checks of what a mode allows.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

use super::clock::add_saturating;
use super::{Mode, Observer, ObserverId, SimError, SimEvent, Simulator};

#[derive(Debug, Clone, Copy)]
pub(super) struct PendingUpdate {
    pub(super) factor: f64,
    pub(super) at: Option<DateTime<Utc>>,
}

pub(super) struct State {
    pub(super) mode: Mode,
    pub(super) running: bool,
    pub(super) init_time: DateTime<Utc>,
    pub(super) time: DateTime<Utc>,
    pub(super) duration: TimeDelta,
    pub(super) time_step: TimeDelta,
    pub(super) factor: f64,
    pub(super) wallclock_epoch: DateTime<Utc>,
    pub(super) simulation_epoch: DateTime<Utc>,
    pub(super) pending_updates: Vec<PendingUpdate>,
    pub(super) pending_duration: Option<TimeDelta>,
    pub(super) pending_time_step: Option<TimeDelta>,
    pub(super) events: VecDeque<SimEvent>,
    pub(super) observers: Vec<(ObserverId, Arc<dyn Observer>)>,
    pub(super) next_observer_id: u64,
    pub(super) mode_tx: watch::Sender<Mode>,
}

impl State {
    pub(super) fn set_mode(&mut self, new: Mode) {
        if self.mode != new {
            let old = self.mode;
            self.mode = new;
            self.mode_tx.send_replace(new);
            self.events.push_back(SimEvent::ModeChanged { old, new });
        }
    }

    pub(super) fn end_time(&self) -> DateTime<Utc> {
        add_saturating(self.init_time, self.duration)
    }

    pub(super) fn wallclock_at(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        add_saturating(
            self.wallclock_epoch,
            scale(t - self.simulation_epoch, 1.0 / self.factor),
        )
    }

    pub(super) fn scenario_at(&self, w: DateTime<Utc>) -> DateTime<Utc> {
        add_saturating(
            self.simulation_epoch,
            scale(w - self.wallclock_epoch, self.factor),
        )
    }

    /// A run is in progress and not ending.
    pub(super) fn is_active(&self) -> bool {
        self.running && !matches!(self.mode, Mode::Terminating | Mode::Terminated)
    }
}

/// `d × k`, rounded to the microsecond.
pub(super) fn scale(d: TimeDelta, k: f64) -> TimeDelta {
    let us = d.num_microseconds().map_or(f64::MAX, |v| v as f64) * k;
    TimeDelta::microseconds(us.round() as i64)
}

impl Simulator {
    pub(super) fn check_idle(s: &State, action: &'static str) -> Result<(), SimError> {
        if s.running {
            return Err(SimError::Running { action });
        }
        if !s.mode.is_idle() {
            return Err(SimError::InvalidMode {
                action,
                mode: s.mode,
            });
        }
        Ok(())
    }

    pub(super) fn check_factor(factor: f64) -> Result<(), SimError> {
        if factor > 0.0 && factor.is_finite() {
            Ok(())
        } else {
            Err(SimError::InvalidFactor(factor))
        }
    }
}
