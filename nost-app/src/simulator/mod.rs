//! The NOS-T simulator (nost_tools' `Simulator`): modes, scenario time
//! paced against the wallclock by a time-scale factor, entities and
//! observers, driven by a tokio task.
//!
//! On a [`TokioClock`] under paused tokio time a run takes no real time:
//!
//! ```
//! use std::sync::Arc;
//! use chrono::{TimeDelta, TimeZone, Utc};
//! use nost_app::simulator::{Mode, Simulator, TokioClock};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let start = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
//! let sim = Simulator::with_clock(Arc::new(TokioClock::starting_at(start)));
//! // One scenario hour in ten-minute steps, 60 scenario seconds per wallclock second.
//! sim.run(start, TimeDelta::hours(1), TimeDelta::minutes(10), None, 60.0)
//!     .await
//!     .unwrap();
//! assert_eq!(sim.mode(), Mode::Terminated);
//! assert_eq!(sim.time(), start + TimeDelta::hours(1));
//! # }
//! ```
//!
//! Mapping between the two time lines:
//! `wallclock(t) = wallclock_epoch + (t − simulation_epoch) / factor`.
//!
//! A run ([`Simulator::execute`]) goes INITIALIZING → INITIALIZED, sleeps
//! until the wallclock epoch, becomes EXECUTING and steps:
//!
//! 1. step = min(time_step, end − time); every entity `tick`s;
//! 2. next = time + step;
//! 3. a pending factor change whose scenario time is before `next` (or has
//!    none) re-anchors the epochs at the current time and takes effect;
//! 4. wait until `wallclock(next)` (a pause or terminate ends the wait);
//! 5. when TERMINATING, stop here;
//! 6. every entity `tock`s;
//! 7. a pending duration or time-step change takes effect;
//! 8. time = next.
//!
//! PAUSING becomes PAUSED at the loop's next turn (a pause during a step
//! wait commits that step without waiting). A resume re-anchors at once
//! (wallclock epoch = now, simulation epoch = current time; or the mapping
//! of a `resume` command with [`Simulator::resume_at`]) and the loop turns
//! RESUMING into EXECUTING, so the whole schedule shifts by the length of
//! the pause. The run ends with
//! TERMINATING → TERMINATED.
//!
//! Nothing here blocks a thread: waits are tokio sleeps (at most 1 s each)
//! that also wake as soon as the state changes.

mod clock;
mod entity;
mod intervals;
mod mode;
mod observable;
mod observer;

#[cfg(test)]
mod entity_tests;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{Notify, watch};

pub use clock::{Clock, SystemClock, TokioClock};
pub use entity::{Entity, EntityBase, EntityGuard, EntityRef, PROPERTY_TIME};
pub use intervals::{
    PropertyChangeCallback, ScenarioTimeIntervalCallback, ScenarioTimeIntervalPublisher,
    WallclockTimeIntervalCallback, WallclockTimeIntervalPublisher,
};
pub use mode::{Mode, ParseModeError};
pub use observable::{Change, EntityObserver, EntityObserverId, Observable, Value};
pub use observer::{
    MAX_CATCH_UP, Observer, Recorded, RecordingObserver, ScenarioSchedule, SimEvent,
    TimeStatusPublisher, TimeStatusSchedule, TimeStatusTick,
};

use clock::add_saturating;
use entity::Slot;

/// The longest single sleep of the run loop.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Why a simulator operation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The operation is not allowed in the current mode.
    #[error("cannot {action} while the simulator is {mode}")]
    InvalidMode {
        /// What was attempted.
        action: &'static str,
        /// The mode at that moment.
        mode: Mode,
    },
    /// A run is already in progress.
    #[error("cannot {action}: a run is in progress")]
    Running {
        /// What was attempted.
        action: &'static str,
    },
    /// No run is in progress.
    #[error("cannot {action}: no run is in progress")]
    NotRunning {
        /// What was attempted.
        action: &'static str,
    },
    /// A bad argument (non-positive factor or step, negative duration, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// `execute` was called outside a tokio runtime.
    #[error("the simulator needs a tokio runtime")]
    NoRuntime,
    /// The run task panicked (e.g. in an observer or entity).
    #[error("the simulator task panicked")]
    Panicked,
}

/// Identifies an added observer, for [`Simulator::remove_observer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObserverId(u64);

#[derive(Debug, Clone, Copy)]
struct PendingUpdate {
    factor: f64,
    at: Option<DateTime<Utc>>,
}

struct State {
    mode: Mode,
    running: bool,
    init_time: DateTime<Utc>,
    time: DateTime<Utc>,
    duration: TimeDelta,
    time_step: TimeDelta,
    factor: f64,
    wallclock_epoch: DateTime<Utc>,
    simulation_epoch: DateTime<Utc>,
    pending_updates: Vec<PendingUpdate>,
    pending_duration: Option<TimeDelta>,
    pending_time_step: Option<TimeDelta>,
    events: VecDeque<SimEvent>,
    observers: Vec<(ObserverId, Arc<dyn Observer>)>,
    next_observer_id: u64,
    mode_tx: watch::Sender<Mode>,
}

impl State {
    fn set_mode(&mut self, new: Mode) {
        if self.mode != new {
            let old = self.mode;
            self.mode = new;
            self.mode_tx.send_replace(new);
            self.events.push_back(SimEvent::ModeChanged { old, new });
        }
    }

    fn end_time(&self) -> DateTime<Utc> {
        add_saturating(self.init_time, self.duration)
    }

    fn wallclock_at(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        add_saturating(
            self.wallclock_epoch,
            scale(t - self.simulation_epoch, 1.0 / self.factor),
        )
    }

    fn scenario_at(&self, w: DateTime<Utc>) -> DateTime<Utc> {
        add_saturating(
            self.simulation_epoch,
            scale(w - self.wallclock_epoch, self.factor),
        )
    }

    /// A run is in progress and not ending.
    fn is_active(&self) -> bool {
        self.running && !matches!(self.mode, Mode::Terminating | Mode::Terminated)
    }
}

/// `d × k`, rounded to the microsecond.
fn scale(d: TimeDelta, k: f64) -> TimeDelta {
    let us = d.num_microseconds().map_or(f64::MAX, |v| v as f64) * k;
    TimeDelta::microseconds(us.round() as i64)
}

/// Lock order: `entities` (the list) before `state`. Neither is held while
/// observers run (`delivery` is), nor while an entity is locked (the run
/// loop works on a copy of the list).
struct Inner {
    state: Mutex<State>,
    entities: Mutex<Vec<Slot>>,
    delivery: Mutex<()>,
    notify: Notify,
    clock: Arc<dyn Clock>,
}

/// The simulator. Cheap to clone (a handle to shared state); every method
/// takes `&self` and is safe to call from any task or thread.
///
/// Before the first [`initialize`](Simulator::initialize), times read as
/// 1970-01-01T00:00:00Z, the duration as zero, the time step as 1 s and the
/// factor as 1.0.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state();
        f.debug_struct("Simulator")
            .field("mode", &s.mode)
            .field("time", &s.time)
            .field("end_time", &s.end_time())
            .field("time_step", &s.time_step)
            .field("time_scale_factor", &s.factor)
            .field("wallclock_epoch", &s.wallclock_epoch)
            .field("simulation_epoch", &s.simulation_epoch)
            .finish_non_exhaustive()
    }
}

impl Default for Simulator {
    fn default() -> Self {
        Self::new()
    }
}

/// The task of a run started by [`Simulator::execute`]. Dropping it does not
/// stop the run (use [`Simulator::terminate`]).
#[derive(Debug)]
pub struct RunHandle {
    join: tokio::task::JoinHandle<()>,
}

impl RunHandle {
    /// Wait for the run to end (TERMINATED).
    pub async fn join(self) -> Result<(), SimError> {
        self.join.await.map_err(|_| SimError::Panicked)
    }

    /// Whether the run task has ended.
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }
}

enum WaitEnd {
    Reached,
    Interrupted(Mode),
}

/// Ends a run when its future is dropped or unwinds before finishing.
struct RunGuard {
    sim: Simulator,
    armed: bool,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if self.armed {
            self.sim.finish_run(!std::thread::panicking());
        }
    }
}

impl Simulator {
    /// A simulator on the system clock ([`SystemClock`]).
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock::new()))
    }

    /// A simulator on the given clock (e.g. [`TokioClock`] in tests).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        let (mode_tx, _) = watch::channel(Mode::Undefined);
        Simulator {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    mode: Mode::Undefined,
                    running: false,
                    init_time: epoch,
                    time: epoch,
                    duration: TimeDelta::zero(),
                    time_step: TimeDelta::seconds(1),
                    factor: 1.0,
                    wallclock_epoch: epoch,
                    simulation_epoch: epoch,
                    pending_updates: Vec::new(),
                    pending_duration: None,
                    pending_time_step: None,
                    events: VecDeque::new(),
                    observers: Vec::new(),
                    next_observer_id: 0,
                    mode_tx,
                }),
                entities: Mutex::new(Vec::new()),
                delivery: Mutex::new(()),
                notify: Notify::new(),
                clock,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn entities(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.inner
            .entities
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the entity list, so that no list lock is held while an
    /// entity is locked (a callback may hold an entity and add another).
    fn slots(&self) -> Vec<Slot> {
        self.entities().clone()
    }

    /// Run `f` on every entity in order, then deliver their changes.
    fn each_entity(&self, f: impl Fn(&dyn entity::DynEntity)) {
        let slots = self.slots();
        for s in &slots {
            f(s.dynamic.as_ref());
            s.observable.deliver();
        }
    }

    /// Change the state, then deliver the events it queued and wake the
    /// run loop.
    fn mutate<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.state());
        self.inner.notify.notify_one();
        self.deliver();
        r
    }

    /// Deliver queued events, one at a time and in order. Whoever holds the
    /// delivery lock drains the queue, including events queued meanwhile
    /// by other callers or by the observers themselves.
    fn deliver(&self) {
        loop {
            let guard = match self.inner.delivery.try_lock() {
                Ok(g) => g,
                Err(TryLockError::WouldBlock) => return,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
            };
            loop {
                let next = {
                    let mut s = self.state();
                    s.events.pop_front().map(|e| {
                        let observers: Vec<Arc<dyn Observer>> =
                            s.observers.iter().map(|(_, o)| Arc::clone(o)).collect();
                        (e, observers)
                    })
                };
                let Some((event, observers)) = next else {
                    break;
                };
                for o in observers {
                    o.on_event(self, &event);
                }
            }
            drop(guard);
            if self.state().events.is_empty() {
                return;
            }
        }
    }

    // ----- configuration -------------------------------------------------

    /// The wallclock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Add an observer; it hears every later event.
    pub fn add_observer(&self, observer: Arc<dyn Observer>) -> ObserverId {
        let mut s = self.state();
        let id = ObserverId(s.next_observer_id);
        s.next_observer_id += 1;
        s.observers.push((id, observer));
        id
    }

    /// Remove an observer; `false` when it was not there.
    pub fn remove_observer(&self, id: ObserverId) -> bool {
        let mut s = self.state();
        let before = s.observers.len();
        s.observers.retain(|(i, _)| *i != id);
        s.observers.len() != before
    }

    /// Add an entity and return a typed handle to it. Allowed in
    /// UNDEFINED, INITIALIZED or TERMINATED outside a run (before or after
    /// the application's `start_up`); the mode becomes UNDEFINED.
    pub fn add_entity<E: Entity>(&self, entity: E) -> Result<EntityRef<E>, SimError> {
        let handle = EntityRef::new(entity);
        {
            let mut ents = self.entities();
            let mut s = self.state();
            Self::check_idle(&s, "add an entity")?;
            ents.push(handle.erased());
            s.set_mode(Mode::Undefined);
        }
        self.deliver();
        Ok(handle)
    }

    /// Remove the first entity named `name`; `false` when there is none.
    /// Allowed like [`add_entity`](Self::add_entity); the mode becomes
    /// UNDEFINED.
    pub fn remove_entity(&self, name: &str) -> Result<bool, SimError> {
        {
            let s = self.state();
            Self::check_idle(&s, "remove an entity")?;
        }
        let target = self
            .slots()
            .into_iter()
            .position(|e| e.dynamic.name() == name);
        let removed = {
            let mut ents = self.entities();
            let mut s = self.state();
            Self::check_idle(&s, "remove an entity")?;
            let removed = target.filter(|i| *i < ents.len()).map(|i| ents.remove(i));
            if removed.is_some() {
                s.set_mode(Mode::Undefined);
            }
            removed.is_some()
        };
        self.deliver();
        Ok(removed)
    }

    /// The entities' names, in order.
    pub fn entity_names(&self) -> Vec<String> {
        self.slots().iter().map(|e| e.dynamic.name()).collect()
    }

    /// The first entity named `name` if it is an `E` (`nost_tools`'
    /// `get_entities_by_name`, typed).
    pub fn entity<E: Entity>(&self, name: &str) -> Option<EntityRef<E>> {
        self.slots()
            .iter()
            .filter_map(EntityRef::<E>::from_slot)
            .find(|e| e.lock().name() == name)
    }

    /// Every entity of type `E`, in order (`get_entities_by_type`).
    pub fn entities_of<E: Entity>(&self) -> Vec<EntityRef<E>> {
        self.slots()
            .iter()
            .filter_map(EntityRef::<E>::from_slot)
            .collect()
    }

    /// Run `f` on the entity named `name` of type `E` (locked, its changes
    /// delivered afterwards); `None` when there is none.
    pub fn with_entity<E: Entity, R>(&self, name: &str, f: impl FnOnce(&mut E) -> R) -> Option<R> {
        self.entity::<E>(name).map(|e| e.with(f))
    }

    fn check_idle(s: &State, action: &'static str) -> Result<(), SimError> {
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

    fn check_factor(factor: f64) -> Result<(), SimError> {
        if factor > 0.0 && factor.is_finite() {
            Ok(())
        } else {
            Err(SimError::InvalidArgument(format!(
                "the time-scale factor must be a positive number, got {factor}"
            )))
        }
    }

    // ----- runs ----------------------------------------------------------

    /// INITIALIZING → INITIALIZED: time = initial time = simulation epoch =
    /// `init_time`, wallclock epoch = `wallclock_epoch` (or now), every
    /// entity initialized. Allowed in UNDEFINED, INITIALIZED or TERMINATED
    /// outside a run.
    pub fn initialize(
        &self,
        init_time: DateTime<Utc>,
        wallclock_epoch: Option<DateTime<Utc>>,
        time_scale_factor: f64,
    ) -> Result<(), SimError> {
        Self::check_factor(time_scale_factor)?;
        self.mutate(|s| Self::check_idle(s, "initialize"))?;
        self.do_initialize(init_time, wallclock_epoch, time_scale_factor, None);
        Ok(())
    }

    fn do_initialize(
        &self,
        init_time: DateTime<Utc>,
        wallclock_epoch: Option<DateTime<Utc>>,
        factor: f64,
        run: Option<(TimeDelta, TimeDelta)>,
    ) {
        let now = self.inner.clock.now();
        self.mutate(|s| {
            s.set_mode(Mode::Initializing);
            s.init_time = init_time;
            s.time = init_time;
            s.simulation_epoch = init_time;
            s.wallclock_epoch = wallclock_epoch.unwrap_or(now);
            s.factor = factor;
            s.pending_updates.clear();
            s.pending_duration = None;
            s.pending_time_step = None;
            if let Some((duration, time_step)) = run {
                s.duration = duration;
                s.time_step = time_step;
            }
        });
        self.each_entity(|e| e.initialize(init_time));
        self.mutate(|s| s.set_mode(Mode::Initialized));
    }

    /// Validate, claim the simulator for a run and initialize it.
    fn start_run(
        &self,
        init_time: DateTime<Utc>,
        duration: TimeDelta,
        time_step: TimeDelta,
        wallclock_epoch: Option<DateTime<Utc>>,
        time_scale_factor: f64,
    ) -> Result<(), SimError> {
        Self::check_factor(time_scale_factor)?;
        if time_step <= TimeDelta::zero() {
            return Err(SimError::InvalidArgument(format!(
                "the time step must be positive, got {time_step}"
            )));
        }
        if duration < TimeDelta::zero() || init_time.checked_add_signed(duration).is_none() {
            return Err(SimError::InvalidArgument(format!(
                "the duration must be non-negative and in range, got {duration}"
            )));
        }
        self.mutate(|s| {
            Self::check_idle(s, "start a run")?;
            s.running = true;
            Ok(())
        })?;
        self.do_initialize(
            init_time,
            wallclock_epoch,
            time_scale_factor,
            Some((duration, time_step)),
        );
        Ok(())
    }

    /// Start a run on a new tokio task and return at once (mode
    /// INITIALIZED): from `init_time` for `duration` of scenario time in
    /// steps of `time_step`, starting at wallclock `wallclock_epoch` (`None`
    /// = now) with `time_scale_factor` scenario seconds per wallclock second.
    ///
    /// Allowed in UNDEFINED, INITIALIZED or TERMINATED when no run is in
    /// progress; refused (nothing changes) otherwise.
    pub fn execute(
        &self,
        init_time: DateTime<Utc>,
        duration: TimeDelta,
        time_step: TimeDelta,
        wallclock_epoch: Option<DateTime<Utc>>,
        time_scale_factor: f64,
    ) -> Result<RunHandle, SimError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| SimError::NoRuntime)?;
        self.start_run(
            init_time,
            duration,
            time_step,
            wallclock_epoch,
            time_scale_factor,
        )?;
        let sim = self.clone();
        let join = rt.spawn(async move { sim.drive().await });
        Ok(RunHandle { join })
    }

    /// Like [`execute`](Self::execute), but runs in the calling task and
    /// returns when the run has ended. Dropping the future ends the run
    /// (TERMINATING → TERMINATED).
    pub async fn run(
        &self,
        init_time: DateTime<Utc>,
        duration: TimeDelta,
        time_step: TimeDelta,
        wallclock_epoch: Option<DateTime<Utc>>,
        time_scale_factor: f64,
    ) -> Result<(), SimError> {
        self.start_run(
            init_time,
            duration,
            time_step,
            wallclock_epoch,
            time_scale_factor,
        )?;
        self.drive().await;
        Ok(())
    }

    /// End the run: TERMINATING (unless already), then TERMINATED.
    fn finish_run(&self, notify_observers: bool) {
        let f = |s: &mut State| {
            s.set_mode(Mode::Terminating);
            s.set_mode(Mode::Terminated);
            s.running = false;
            s.pending_updates.clear();
            s.pending_duration = None;
            s.pending_time_step = None;
        };
        if notify_observers {
            self.mutate(f);
        } else {
            f(&mut self.state());
        }
    }

    /// Sleep until `target(state)` (wallclock; `None` = no deadline) or
    /// until the mode satisfies `interrupt`.
    async fn wait(
        &self,
        target: impl Fn(&State) -> Option<DateTime<Utc>>,
        interrupt: impl Fn(Mode) -> bool,
    ) -> WaitEnd {
        loop {
            let (mode, deadline) = {
                let s = self.state();
                (s.mode, target(&s))
            };
            if interrupt(mode) {
                return WaitEnd::Interrupted(mode);
            }
            let sleep = match deadline {
                Some(t) => {
                    let now = self.inner.clock.now();
                    if t <= now {
                        return WaitEnd::Reached;
                    }
                    (t - now).to_std().unwrap_or(Duration::ZERO).min(MAX_SLEEP)
                }
                None => MAX_SLEEP,
            };
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.inner.notify.notified() => {}
            }
        }
    }

    /// The run loop (after INITIALIZED).
    async fn drive(&self) {
        let mut guard = RunGuard {
            sim: self.clone(),
            armed: true,
        };
        let started = self
            .wait(|s| Some(s.wallclock_epoch), |m| m == Mode::Terminating)
            .await;
        if matches!(started, WaitEnd::Reached) {
            self.mutate(|s| {
                if s.mode == Mode::Initialized {
                    s.set_mode(Mode::Executing);
                }
            });
            self.step_loop().await;
        }
        guard.armed = false;
        self.finish_run(true);
    }

    async fn step_loop(&self) {
        loop {
            // Turn PAUSING/RESUMING into PAUSED/EXECUTING and decide what to do.
            let step = self.mutate(|s| {
                if s.time >= s.end_time() {
                    return None;
                }
                match s.mode {
                    Mode::Pausing => {
                        s.set_mode(Mode::Paused);
                        Some(None)
                    }
                    Mode::Paused => Some(None),
                    Mode::Resuming => {
                        // The epochs were re-anchored by resume/resume_at.
                        s.set_mode(Mode::Executing);
                        Some(None)
                    }
                    Mode::Executing => {
                        let step = s.time_step.min(s.end_time() - s.time);
                        Some(Some((step, s.time + step)))
                    }
                    _ => None,
                }
            });
            let (step, next) = match step {
                None => return,
                Some(None) => {
                    // Paused (or just changed mode): wait for a change.
                    self.wait(|_| None, |m| m != Mode::Paused).await;
                    continue;
                }
                Some(Some(v)) => v,
            };

            self.each_entity(|e| e.tick(step));

            self.mutate(|s| {
                let mut i = 0;
                while i < s.pending_updates.len() {
                    let u = s.pending_updates[i];
                    if u.at.is_none_or(|t| t < next) {
                        s.pending_updates.remove(i);
                        s.wallclock_epoch = s.wallclock_at(s.time);
                        s.simulation_epoch = s.time;
                        let old = s.factor;
                        s.factor = u.factor;
                        s.events
                            .push_back(SimEvent::TimeScaleChanged { old, new: u.factor });
                    } else {
                        i += 1;
                    }
                }
            });

            let end = self
                .wait(|s| Some(s.wallclock_at(next)), |m| m != Mode::Executing)
                .await;
            if matches!(end, WaitEnd::Interrupted(Mode::Terminating)) {
                return;
            }

            self.each_entity(|e| e.tock());

            self.mutate(|s| {
                if let Some(d) = s.pending_duration.take() {
                    let old = s.duration;
                    s.duration = d;
                    s.events
                        .push_back(SimEvent::DurationChanged { old, new: d });
                }
                if let Some(d) = s.pending_time_step.take() {
                    let old = s.time_step;
                    s.time_step = d;
                    s.events
                        .push_back(SimEvent::TimeStepChanged { old, new: d });
                }
                let old = s.time;
                s.time = next;
                s.events.push_back(SimEvent::TimeChanged { old, new: next });
            });
        }
    }

    // ----- commands during a run -----------------------------------------

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
        self.mutate(|s| {
            if !matches!(s.mode, Mode::Pausing | Mode::Paused) {
                return Err(SimError::InvalidMode {
                    action: "resume",
                    mode: s.mode,
                });
            }
            // Re-anchor now, so that wallclock_at is right at once (a
            // freeze computed right after a resume must not use the old
            // time line).
            s.wallclock_epoch = now;
            s.simulation_epoch = s.time;
            s.set_mode(Mode::Resuming);
            Ok(())
        })
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
        self.mutate(|s| {
            if !matches!(s.mode, Mode::Pausing | Mode::Paused) {
                return Err(SimError::InvalidMode {
                    action: "resume",
                    mode: s.mode,
                });
            }
            s.wallclock_epoch = resume_time;
            s.simulation_epoch = sim_resume_time;
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
                return Err(SimError::InvalidArgument(format!(
                    "duration out of range: {duration}"
                )));
            }
            s.pending_duration = Some(duration);
            Ok(())
        })
    }

    /// Change the time step, taking effect after the current step. Allowed
    /// while a run is in progress.
    pub fn set_time_step(&self, time_step: TimeDelta) -> Result<(), SimError> {
        if time_step <= TimeDelta::zero() {
            return Err(SimError::InvalidArgument(format!(
                "the time step must be positive, got {time_step}"
            )));
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

    // ----- getters -------------------------------------------------------

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
