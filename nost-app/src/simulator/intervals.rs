//! Interval callbacks and publishers (`nost_tools`' `observer.py` and
//! `publisher.py`): react every so much scenario or wallclock time, and to
//! one named property.

use crate::app::lock;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

use super::clock::add_saturating;
use super::observer::ScenarioSchedule;
use super::{Change, EntityObserver, Mode, Observer, SimError, SimEvent, Simulator};

fn positive(step: TimeDelta, what: &str) -> Result<TimeDelta, SimError> {
    if step > TimeDelta::zero() {
        Ok(step)
    } else {
        Err(SimError::not_positive(what, step))
    }
}

/// Calls `callback(sim, due)` every `interval` of scenario time, as
/// `nost_tools`' `ScenarioTimeIntervalCallback`: the first due time is one
/// interval after the run's initial time (the old value of the first
/// `time` change), and each `time` change reports every due time ≤ the new
/// time.
///
/// Unlike `nost_tools` (which keeps its schedule forever), the schedule
/// restarts with each run (on INITIALIZED).
pub struct ScenarioTimeIntervalCallback<F> {
    interval: TimeDelta,
    next: Mutex<Option<DateTime<Utc>>>,
    callback: F,
}

impl<F: Fn(&Simulator, DateTime<Utc>) + Send + Sync> ScenarioTimeIntervalCallback<F> {
    /// `interval` must be positive.
    pub fn new(interval: TimeDelta, callback: F) -> Result<Self, SimError> {
        Ok(ScenarioTimeIntervalCallback {
            interval: positive(interval, "interval")?,
            next: Mutex::new(None),
            callback,
        })
    }
}

impl<F: Fn(&Simulator, DateTime<Utc>) + Send + Sync> Observer for ScenarioTimeIntervalCallback<F> {
    fn on_event(&self, sim: &Simulator, event: &SimEvent) {
        let due = match *event {
            SimEvent::ModeChanged {
                new: Mode::Initialized,
                ..
            } => {
                *lock(&self.next) = None;
                return;
            }
            SimEvent::TimeChanged { old, new } => {
                let mut next = lock(&self.next);
                let mut t = next.unwrap_or_else(|| add_saturating(old, self.interval));
                let mut due = Vec::new();
                while t <= new && due.len() < super::MAX_CATCH_UP {
                    due.push(t);
                    t = add_saturating(t, self.interval);
                }
                *next = Some(t);
                due
            }
            _ => return,
        };
        for t in due {
            (self.callback)(sim, t);
        }
    }
}

/// Calls `publish(sim)` on `nost_tools`' `ScenarioTimeIntervalPublisher`
/// schedule: on INITIALIZED the next due time is `init` (or the run's
/// initial time); on each `time` change, once per due time ≤ the new time,
/// then the due time advances by `step` (or, when `None`, by the
/// simulator's time step). So the first publication follows the first
/// step. Catch-up is bounded as for [`ScenarioSchedule`].
pub struct ScenarioTimeIntervalPublisher<F> {
    step: Option<TimeDelta>,
    init: Option<DateTime<Utc>>,
    schedule: Mutex<Option<ScenarioSchedule>>,
    publish: F,
}

impl<F: Fn(&Simulator) + Send + Sync> ScenarioTimeIntervalPublisher<F> {
    /// `step`, when given, must be positive.
    pub fn new(
        step: Option<TimeDelta>,
        init: Option<DateTime<Utc>>,
        publish: F,
    ) -> Result<Self, SimError> {
        if let Some(s) = step {
            positive(s, "publisher step")?;
        }
        Ok(ScenarioTimeIntervalPublisher {
            step,
            init,
            schedule: Mutex::new(None),
            publish,
        })
    }
}

impl<F: Fn(&Simulator) + Send + Sync> Observer for ScenarioTimeIntervalPublisher<F> {
    fn on_event(&self, sim: &Simulator, event: &SimEvent) {
        let n = {
            let mut schedule = lock(&self.schedule);
            if matches!(
                event,
                SimEvent::ModeChanged {
                    new: Mode::Initialized,
                    ..
                }
            ) {
                let step = self.step.unwrap_or_else(|| sim.time_step());
                *schedule = ScenarioSchedule::new(step, self.init).ok();
            }
            match schedule.as_mut() {
                Some(s) => s.on_event(event, sim.init_time()).len(),
                None => 0,
            }
        };
        for _ in 0..n {
            (self.publish)(sim);
        }
    }
}

/// The state of a wallclock schedule.
#[derive(Debug, Default)]
struct WallSchedule {
    next: Option<DateTime<Utc>>,
}

impl WallSchedule {
    /// Due wallclock times ≤ `now`, advancing by `step`.
    fn due(&mut self, now: DateTime<Utc>, step: TimeDelta) -> Vec<DateTime<Utc>> {
        let mut t = self.next.unwrap_or_else(|| add_saturating(now, step));
        let mut due = Vec::new();
        if step <= TimeDelta::zero() {
            return due;
        }
        while t <= now && due.len() < super::MAX_CATCH_UP {
            due.push(t);
            t = add_saturating(t, step);
        }
        if due.len() == super::MAX_CATCH_UP && t <= now {
            // Far behind: start again from now rather than replaying.
            t = add_saturating(now, step);
        }
        self.next = Some(t);
        due
    }
}

fn is_resumed(event: &SimEvent) -> bool {
    matches!(
        event,
        SimEvent::ModeChanged {
            old: Mode::Resuming,
            new: Mode::Executing
        }
    )
}

fn is_initialized(event: &SimEvent) -> bool {
    matches!(
        event,
        SimEvent::ModeChanged {
            new: Mode::Initialized,
            ..
        }
    )
}

/// Calls `callback(sim, due)` every `interval` of wallclock time, checked
/// at each `time` change, as `nost_tools`' `WallclockTimeIntervalCallback`:
/// on INITIALIZED the next due time is `init` (when `None`, one interval
/// after the first `time` change's wallclock); on RESUMING → EXECUTING it
/// restarts one interval after now, so a pause causes no burst.
pub struct WallclockTimeIntervalCallback<F> {
    interval: TimeDelta,
    init: Option<DateTime<Utc>>,
    schedule: Mutex<WallSchedule>,
    callback: F,
}

impl<F: Fn(&Simulator, DateTime<Utc>) + Send + Sync> WallclockTimeIntervalCallback<F> {
    /// `interval` (wallclock) must be positive.
    pub fn new(
        interval: TimeDelta,
        init: Option<DateTime<Utc>>,
        callback: F,
    ) -> Result<Self, SimError> {
        Ok(WallclockTimeIntervalCallback {
            interval: positive(interval, "interval")?,
            init,
            schedule: Mutex::new(WallSchedule::default()),
            callback,
        })
    }
}

impl<F: Fn(&Simulator, DateTime<Utc>) + Send + Sync> Observer for WallclockTimeIntervalCallback<F> {
    fn on_event(&self, sim: &Simulator, event: &SimEvent) {
        let due = {
            let mut s = lock(&self.schedule);
            if is_resumed(event) {
                s.next = Some(add_saturating(sim.wallclock_now(), self.interval));
                return;
            }
            if is_initialized(event) {
                s.next = self.init;
                return;
            }
            if !matches!(event, SimEvent::TimeChanged { .. }) {
                return;
            }
            s.due(sim.wallclock_now(), self.interval)
        };
        for t in due {
            (self.callback)(sim, t);
        }
    }
}

/// Calls `publish(sim)` every `step` of wallclock time, checked at each
/// `time` change, as `nost_tools`' `WallclockTimeIntervalPublisher`: on
/// INITIALIZED the next due time is `init` (or wallclock now). With no
/// `step`, it advances by the simulator's wallclock step, the time step
/// **divided** by the time-scale factor
/// ([`Simulator::wallclock_time_step`]; `nost_tools` multiplies, its bug
/// 29). On RESUMING → EXECUTING it restarts one step after now (no burst
/// for the time spent paused).
pub struct WallclockTimeIntervalPublisher<F> {
    step: Option<TimeDelta>,
    init: Option<DateTime<Utc>>,
    schedule: Mutex<WallSchedule>,
    publish: F,
}

impl<F: Fn(&Simulator) + Send + Sync> WallclockTimeIntervalPublisher<F> {
    /// `step` (wallclock), when given, must be positive.
    pub fn new(
        step: Option<TimeDelta>,
        init: Option<DateTime<Utc>>,
        publish: F,
    ) -> Result<Self, SimError> {
        if let Some(s) = step {
            positive(s, "publisher step")?;
        }
        Ok(WallclockTimeIntervalPublisher {
            step,
            init,
            schedule: Mutex::new(WallSchedule::default()),
            publish,
        })
    }
}

impl<F: Fn(&Simulator) + Send + Sync> Observer for WallclockTimeIntervalPublisher<F> {
    fn on_event(&self, sim: &Simulator, event: &SimEvent) {
        let step = self.step.unwrap_or_else(|| sim.wallclock_time_step());
        let n = {
            let mut s = lock(&self.schedule);
            if is_resumed(event) {
                s.next = Some(add_saturating(sim.wallclock_now(), step));
                return;
            }
            if is_initialized(event) {
                s.next = Some(self.init.unwrap_or_else(|| sim.wallclock_now()));
                return;
            }
            if !matches!(event, SimEvent::TimeChanged { .. }) {
                return;
            }
            s.due(sim.wallclock_now(), step).len()
        };
        for _ in 0..n {
            (self.publish)(sim);
        }
    }
}

/// Calls `callback(change)` when the property named `property` changes,
/// on a simulator (source `"simulator"`) or an entity (`nost_tools`'
/// `PropertyChangeCallback`).
pub struct PropertyChangeCallback<F> {
    property: String,
    callback: F,
}

impl<F: Fn(&Change) + Send + Sync> PropertyChangeCallback<F> {
    /// React to changes of `property`.
    pub fn new(property: impl Into<String>, callback: F) -> Self {
        PropertyChangeCallback {
            property: property.into(),
            callback,
        }
    }
}

impl<F: Fn(&Change) + Send + Sync> Observer for PropertyChangeCallback<F> {
    fn on_event(&self, _sim: &Simulator, event: &SimEvent) {
        if event.property() == self.property {
            (self.callback)(&event.to_change());
        }
    }
}

impl<F: Fn(&Change) + Send + Sync> EntityObserver for PropertyChangeCallback<F> {
    fn on_change(&self, change: &Change) {
        if change.property == self.property {
            (self.callback)(change);
        }
    }
}
