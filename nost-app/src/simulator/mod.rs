//! The NOS-T simulator (nost_tools' `Simulator`): modes, scenario time
//! paced against the wallclock by a time-scale factor, entities and
//! observers, driven by a tokio task.
//!
//! On a [`TokioClock`] under paused tokio time a run takes no real time:
//!
//! ```
//! use std::sync::Arc;
//! use chrono::{TimeDelta, TimeZone, Utc};
//! use nost_app::simulator::{Mode, RunPlan, Simulator, TokioClock};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let start = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
//! let sim = Simulator::with_clock(Arc::new(TokioClock::starting_at(start)));
//! // One scenario hour in ten-minute steps, 60 scenario seconds per wallclock second.
//! let plan = RunPlan::new(start, TimeDelta::hours(1))
//!     .time_step(TimeDelta::minutes(10))
//!     .time_scale_factor(60.0);
//! sim.run(plan).await.unwrap();
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
mod commands;
mod entity;
mod error;
mod getters;
mod intervals;
mod mode;
mod observable;
mod observer;
mod registry;
mod run;
mod state;

#[cfg(test)]
mod entity_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{Notify, watch};

pub use clock::{Clock, SystemClock, TokioClock};
pub use entity::{Entity, EntityBase, EntityGuard, EntityRef, PROPERTY_TIME};
pub use error::SimError;
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
pub use registry::ObserverId;
pub use run::{RunHandle, RunPlan};

use entity::Slot;
use state::State;

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
}
