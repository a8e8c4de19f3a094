//! What a simulator reads out: mode, times, factor, the time mapping, and
//! waiting for a mode.

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

use super::state::scale;
use super::{Mode, Simulator};

impl Simulator {
    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.state().mode
    }

    /// Whether a run is in progress (from `execute` until TERMINATED).
    pub fn is_running(&self) -> bool {
        self.state().running
    }

    /// The current scenario time (last committed step).
    pub fn time(&self) -> DateTime<Utc> {
        self.state().time
    }

    /// The run's initial scenario time.
    pub fn init_time(&self) -> DateTime<Utc> {
        self.state().init_time
    }

    /// The run's end scenario time (initial time + duration).
    pub fn end_time(&self) -> DateTime<Utc> {
        self.state().end_time()
    }

    /// The run's duration (scenario time).
    pub fn duration(&self) -> TimeDelta {
        self.state().duration
    }

    /// The time step (scenario time).
    pub fn time_step(&self) -> TimeDelta {
        self.state().time_step
    }

    /// Scenario seconds per wallclock second.
    pub fn time_scale_factor(&self) -> f64 {
        self.state().factor
    }

    /// The wallclock duration of one time step: time step ÷ time-scale
    /// factor (`nost_tools`' `get_wallclock_time_step` multiplies, bug 29).
    pub fn wallclock_time_step(&self) -> TimeDelta {
        let s = self.state();
        scale(s.time_step, 1.0 / s.factor)
    }

    /// The wallclock anchor of the time mapping.
    pub fn wallclock_epoch(&self) -> DateTime<Utc> {
        self.state().wallclock_epoch
    }

    /// The scenario anchor of the time mapping.
    pub fn simulation_epoch(&self) -> DateTime<Utc> {
        self.state().simulation_epoch
    }

    /// Wallclock now (the clock, offset included).
    pub fn wallclock_now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The wallclock time of scenario time `t` under the current epochs and
    /// factor: `wallclock_epoch + (t − simulation_epoch) / factor`.
    pub fn wallclock_at(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.state().wallclock_at(t)
    }

    /// The scenario time of wallclock time `w` (inverse of
    /// [`wallclock_at`](Self::wallclock_at)).
    pub fn scenario_at(&self, w: DateTime<Utc>) -> DateTime<Utc> {
        self.state().scenario_at(w)
    }

    /// A receiver of the current mode. It only keeps the latest value, so a
    /// short-lived mode can be missed; use observers to see every change.
    pub fn mode_watch(&self) -> watch::Receiver<Mode> {
        self.state().mode_tx.subscribe()
    }

    /// Wait until the mode is `mode` (returns at once if it already is).
    /// Cancel-safe. See [`wait_for`](Self::wait_for) to also stop on other
    /// modes (e.g. waiting for EXECUTING or TERMINATED).
    pub async fn wait_for_mode(&self, mode: Mode) {
        self.wait_for(|m| m == mode).await;
    }

    /// Wait until `pred(mode)` holds and return that mode. Cancel-safe.
    pub async fn wait_for(&self, mut pred: impl FnMut(Mode) -> bool) -> Mode {
        let mut rx = self.mode_watch();
        match rx.wait_for(|m| pred(*m)).await {
            Ok(m) => *m,
            // The sender lives as long as `self`; unreachable in practice.
            Err(_) => self.mode(),
        }
    }
}
