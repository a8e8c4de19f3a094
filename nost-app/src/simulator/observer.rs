//! Observers of simulator changes and the interval helpers built on them.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};

use super::{Change, Clock, EntityObserver, Mode, SimError, Simulator};

/// A change of a simulator property. `property()` gives the `nost_tools`
/// property name (`mode`, `time`, `time_scale_factor`, `duration`,
/// `time_step`).
#[derive(Debug, Clone, PartialEq)]
pub enum SimEvent {
    /// The mode changed (only reported when the value actually changes).
    ModeChanged {
        /// Previous mode.
        old: Mode,
        /// New mode.
        new: Mode,
    },
    /// Scenario time advanced by a committed step.
    TimeChanged {
        /// Previous scenario time.
        old: DateTime<Utc>,
        /// New scenario time.
        new: DateTime<Utc>,
    },
    /// A time-scale factor change took effect.
    TimeScaleChanged {
        /// Previous factor.
        old: f64,
        /// New factor.
        new: f64,
    },
    /// A duration (end time) change took effect.
    DurationChanged {
        /// Previous duration.
        old: TimeDelta,
        /// New duration.
        new: TimeDelta,
    },
    /// A time-step change took effect.
    TimeStepChanged {
        /// Previous time step.
        old: TimeDelta,
        /// New time step.
        new: TimeDelta,
    },
}

impl SimEvent {
    /// The `nost_tools` property name.
    pub fn property(&self) -> &'static str {
        match self {
            SimEvent::ModeChanged { .. } => "mode",
            SimEvent::TimeChanged { .. } => "time",
            SimEvent::TimeScaleChanged { .. } => "time_scale_factor",
            SimEvent::DurationChanged { .. } => "duration",
            SimEvent::TimeStepChanged { .. } => "time_step",
        }
    }
}

/// Receives every [`SimEvent`] of a simulator, in order, one at a time.
///
/// Observers are called synchronously (usually from the simulator task, or
/// from the task that called e.g. [`Simulator::pause`]) and **must not
/// block**: send to a channel (e.g. `tokio::sync::mpsc::UnboundedSender`)
/// if the reaction is heavy or does I/O. They may call the simulator's
/// methods; events caused by that are delivered after the current one.
/// An observer that keeps a [`Simulator`] clone creates a reference cycle
/// (remove it with [`Simulator::remove_observer`] when done).
pub trait Observer: Send + Sync {
    /// One change. `sim` is the simulator that changed.
    fn on_event(&self, sim: &Simulator, event: &SimEvent);
}

impl<F> Observer for F
where
    F: Fn(&Simulator, &SimEvent) + Send + Sync,
{
    fn on_event(&self, sim: &Simulator, event: &SimEvent) {
        self(sim, event)
    }
}

/// One change a [`RecordingObserver`] kept: the change (source, property,
/// old and new value) and, when timestamped, the wallclock time it was
/// heard.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The change. For a simulator event the source is `"simulator"` and
    /// the values are a [`Mode`], `DateTime<Utc>`, `f64` or `TimeDelta`.
    pub change: Change,
    /// When it was heard (only when timestamped).
    pub time: Option<DateTime<Utc>>,
}

impl SimEvent {
    /// As a [`Change`] with source `"simulator"`.
    pub fn to_change(&self) -> Change {
        let p = self.property();
        match *self {
            SimEvent::ModeChanged { old, new } => Change::new("simulator", p, old, new),
            SimEvent::TimeChanged { old, new } => Change::new("simulator", p, old, new),
            SimEvent::TimeScaleChanged { old, new } => Change::new("simulator", p, old, new),
            SimEvent::DurationChanged { old, new } | SimEvent::TimeStepChanged { old, new } => {
                Change::new("simulator", p, old, new)
            }
        }
    }
}

#[derive(Debug, Default)]
struct Records {
    events: Vec<SimEvent>,
    changes: Vec<Recorded>,
}

/// Records changes of simulators and entities (`nost_tools`'
/// `RecordingObserver`): every one, or only those of the properties named
/// by [`with_filters`](RecordingObserver::with_filters), optionally
/// timestamped.
///
/// ```
/// use std::sync::Arc;
/// use nost_app::simulator::{Change, EntityObserver, RecordingObserver, SystemClock};
///
/// let rec = RecordingObserver::with_filters(["detected"]).timestamped(Arc::new(SystemClock::new()));
/// rec.on_change(&Change::new("sat-1", "time", 0, 1));
/// rec.on_change(&Change::new("sat-1", "detected", 0, 7));
/// let kept = rec.changes();
/// assert_eq!(kept.len(), 1);
/// assert_eq!(kept[0].change.new_value::<i32>(), Some(&7));
/// assert!(kept[0].time.is_some());
/// ```
#[derive(Debug, Default)]
pub struct RecordingObserver {
    filters: Option<Vec<String>>,
    clock: Option<Arc<dyn Clock>>,
    records: Mutex<Records>,
}

impl RecordingObserver {
    /// Records everything, without timestamps.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records only the named properties.
    pub fn with_filters<S: Into<String>>(properties: impl IntoIterator<Item = S>) -> Self {
        RecordingObserver {
            filters: Some(properties.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }

    /// Timestamp each record with `clock` (e.g. the simulator's clock).
    pub fn timestamped(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wants(&self, property: &str) -> bool {
        self.filters
            .as_ref()
            .is_none_or(|f| f.iter().any(|p| p == property))
    }

    /// Every recorded change (simulator and entity), in order.
    pub fn changes(&self) -> Vec<Recorded> {
        self.records().changes.clone()
    }

    /// Every recorded simulator event, in order.
    pub fn events(&self) -> Vec<SimEvent> {
        self.records().events.clone()
    }

    /// The new modes of every mode change so far, in order.
    pub fn modes(&self) -> Vec<Mode> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                SimEvent::ModeChanged { new, .. } => Some(new),
                _ => None,
            })
            .collect()
    }

    /// The new times of every time change so far, in order.
    pub fn times(&self) -> Vec<DateTime<Utc>> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                SimEvent::TimeChanged { new, .. } => Some(new),
                _ => None,
            })
            .collect()
    }
}

impl Observer for RecordingObserver {
    fn on_event(&self, _sim: &Simulator, event: &SimEvent) {
        if !self.wants(event.property()) {
            return;
        }
        let time = self.clock.as_ref().map(|c| c.now());
        let mut r = self.records();
        r.events.push(event.clone());
        r.changes.push(Recorded {
            change: event.to_change(),
            time,
        });
    }
}

impl EntityObserver for RecordingObserver {
    fn on_change(&self, change: &Change) {
        if !self.wants(&change.property) {
            return;
        }
        let time = self.clock.as_ref().map(|c| c.now());
        self.records().changes.push(Recorded {
            change: change.clone(),
            time,
        });
    }
}

/// The most due times one event of a [`ScenarioSchedule`] reports; the
/// earlier ones of a longer backlog are skipped (with a warning).
pub const MAX_CATCH_UP: usize = 1000;

/// A scenario-time schedule, as `nost_tools`' scenario-time interval
/// callback and time-status publisher keep it:
///
/// - on the change to `INITIALIZED`, the next due time becomes `init` (or
///   the run's initial time when `init` is `None`);
/// - on each `time` change, while the next due time ≤ the new time, that
///   due time is reported and `step` is added to it.
///
/// The initial time itself produces no `time` change, so the first report
/// comes after the first step.
///
/// Catch-up is bounded (where `nost_tools` reports every missed due time):
/// when `init` is before the run's initial time, the due times before it
/// are skipped but the last one, and one event never reports more than
/// [`MAX_CATCH_UP`] due times (the latest ones). The count is computed, not
/// stepped through, so an `init` years away costs nothing.
#[derive(Debug, Clone)]
pub struct ScenarioSchedule {
    step: TimeDelta,
    init: Option<DateTime<Utc>>,
    next: Option<DateTime<Utc>>,
    warned: bool,
}

fn nanos(d: TimeDelta) -> i128 {
    i128::from(d.num_seconds()) * 1_000_000_000 + i128::from(d.subsec_nanos())
}

/// `t + step × k`, `None` beyond the datetime range.
fn offset(t: DateTime<Utc>, step: TimeDelta, k: i128) -> Option<DateTime<Utc>> {
    let total = nanos(step).checked_mul(k)?;
    let secs = i64::try_from(total.div_euclid(1_000_000_000)).ok()?;
    let sub = u32::try_from(total.rem_euclid(1_000_000_000)).ok()?;
    t.checked_add_signed(TimeDelta::new(secs, sub)?)
}

impl ScenarioSchedule {
    /// `step` must be positive.
    pub fn new(step: TimeDelta, init: Option<DateTime<Utc>>) -> Result<Self, SimError> {
        if step <= TimeDelta::zero() {
            return Err(SimError::not_positive("schedule step", step));
        }
        Ok(ScenarioSchedule {
            step,
            init,
            next: None,
            warned: false,
        })
    }

    /// The step.
    pub fn step(&self) -> TimeDelta {
        self.step
    }

    /// The next due time (`None` before `INITIALIZED`).
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.next
    }

    /// How many due times from `next` are ≤ `t` (0 when `next` > `t`).
    fn due_count(&self, next: DateTime<Utc>, t: DateTime<Utc>) -> i128 {
        if next > t {
            return 0;
        }
        nanos(t - next) / nanos(self.step) + 1
    }

    fn skipped(&mut self, n: i128) {
        if n > 0 && !self.warned {
            self.warned = true;
            tracing::warn!(
                target: "nost_app",
                skipped = %n,
                step = %self.step,
                "scenario schedule far behind the run's time (e.g. time_status_init long before the scenario start): the missed due times are skipped, not reported one by one"
            );
        }
    }

    /// Feed one event; returns the due times that were passed, in order.
    /// `init_time` is the run's initial time (read on `INITIALIZED`).
    pub fn on_event(&mut self, event: &SimEvent, init_time: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut due = Vec::new();
        match event {
            SimEvent::ModeChanged {
                new: Mode::Initialized,
                ..
            } => {
                let first = self.init.unwrap_or(init_time);
                let n = self.due_count(first, init_time);
                if n > 1 {
                    self.skipped(n - 1);
                }
                self.next = if n > 1 {
                    offset(first, self.step, n - 1)
                } else {
                    Some(first)
                };
            }
            SimEvent::TimeChanged { new, .. } => {
                if let Some(next) = self.next {
                    let n = self.due_count(next, *new);
                    let take = n.min(MAX_CATCH_UP as i128);
                    self.skipped(n - take);
                    for k in (n - take)..n {
                        if let Some(t) = offset(next, self.step, k) {
                            due.push(t);
                        }
                    }
                    if n > 0 {
                        self.next = offset(next, self.step, n);
                    }
                }
            }
            _ => {}
        }
        due
    }
}

/// One time status to publish: the current scenario and wallclock times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeStatusTick {
    /// Current scenario time (the new time of the step).
    pub sim_time: DateTime<Utc>,
    /// Current wallclock time (the simulator's clock, offset included).
    pub wallclock: DateTime<Utc>,
}

/// The time-status cadence of `nost_tools` (section 4.7): a
/// [`ScenarioSchedule`] over `time_status_step` / `time_status_init` where
/// every due time yields a status carrying the **current** times. So when
/// `time_status_step` equals the time step, the first step yields two
/// identical statuses. Nothing is due while paused (scenario time stands
/// still).
#[derive(Debug, Clone)]
pub struct TimeStatusSchedule {
    schedule: ScenarioSchedule,
}

impl TimeStatusSchedule {
    /// `time_status_step` must be positive.
    pub fn new(
        time_status_step: TimeDelta,
        time_status_init: Option<DateTime<Utc>>,
    ) -> Result<Self, SimError> {
        Ok(TimeStatusSchedule {
            schedule: ScenarioSchedule::new(time_status_step, time_status_init)?,
        })
    }

    /// The next scenario time at which a status is due.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.schedule.next_due()
    }

    /// Feed one event of `sim`; returns the statuses to publish now.
    pub fn on_event(&mut self, sim: &Simulator, event: &SimEvent) -> Vec<TimeStatusTick> {
        let due = self.schedule.on_event(event, sim.init_time());
        if due.is_empty() {
            return Vec::new();
        }
        let sim_time = match event {
            SimEvent::TimeChanged { new, .. } => *new,
            _ => sim.time(),
        };
        let tick = TimeStatusTick {
            sim_time,
            wallclock: sim.wallclock_now(),
        };
        vec![tick; due.len()]
    }
}

/// An observer that runs a [`TimeStatusSchedule`] and hands each status to
/// `sink` (typically a closure sending a
/// [`TimeStatus`](crate::messages::TimeStatus) to a channel).
pub struct TimeStatusPublisher<F> {
    schedule: Mutex<TimeStatusSchedule>,
    sink: F,
}

impl<F: Fn(TimeStatusTick) + Send + Sync> TimeStatusPublisher<F> {
    /// `time_status_step` must be positive.
    pub fn new(
        time_status_step: TimeDelta,
        time_status_init: Option<DateTime<Utc>>,
        sink: F,
    ) -> Result<Self, SimError> {
        Ok(TimeStatusPublisher {
            schedule: Mutex::new(TimeStatusSchedule::new(time_status_step, time_status_init)?),
            sink,
        })
    }
}

impl<F: Fn(TimeStatusTick) + Send + Sync> Observer for TimeStatusPublisher<F> {
    fn on_event(&self, sim: &Simulator, event: &SimEvent) {
        let ticks = self
            .schedule
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .on_event(sim, event);
        for tick in ticks {
            (self.sink)(tick);
        }
    }
}
