//! Entities: things stepped by the simulator, each with its own scenario
//! clock and observers (`nost_tools`' `Entity`).

use crate::app::lock;
use std::any::Any;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};

use super::observable::Observable;

/// The property name of an entity's clock (`nost_tools`' `PROPERTY_TIME`).
pub const PROPERTY_TIME: &str = "time";

/// What every entity carries, as `nost_tools`' `Entity` base class: a
/// name, its own scenario clock (initial, current and next time) and its
/// observers. Embed it and return it from [`Entity::base`].
#[derive(Debug, Clone)]
pub struct EntityBase {
    name: String,
    init_time: Option<DateTime<Utc>>,
    time: Option<DateTime<Utc>>,
    next_time: Option<DateTime<Utc>>,
    observable: Observable,
}

impl EntityBase {
    /// A base named `name` (times unset until `initialize`).
    pub fn new(name: impl Into<String>) -> Self {
        EntityBase {
            name: name.into(),
            init_time: None,
            time: None,
            next_time: None,
            observable: Observable::new(),
        }
    }

    /// The entity's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Initial, current and next time become `init_time`.
    pub fn initialize(&mut self, init_time: DateTime<Utc>) {
        self.init_time = Some(init_time);
        self.time = Some(init_time);
        self.next_time = Some(init_time);
    }

    /// Next time = current time + `step`.
    pub fn tick(&mut self, step: TimeDelta) {
        self.next_time = self.time.and_then(|t| t.checked_add_signed(step));
    }

    /// Commit: current time = next time, notifying `time` (old, new) when
    /// it changed.
    pub fn tock(&mut self) {
        if let (Some(old), Some(new)) = (self.time, self.next_time)
            && old != new
        {
            self.time = Some(new);
            self.observable.notify(&self.name, PROPERTY_TIME, old, new);
        }
    }

    /// The entity's current scenario time (`None` before `initialize`).
    pub fn time(&self) -> Option<DateTime<Utc>> {
        self.time
    }

    /// The time the last `tick` computed the state for.
    pub fn next_time(&self) -> Option<DateTime<Utc>> {
        self.next_time
    }

    /// The time of the last `initialize`.
    pub fn init_time(&self) -> Option<DateTime<Utc>> {
        self.init_time
    }

    /// The entity's observers.
    pub fn observable(&self) -> &Observable {
        &self.observable
    }

    /// Queue a property change (delivered once the entity is unlocked);
    /// nothing when `old == new`.
    pub fn notify<T: Any + Send + Sync + PartialEq>(&self, property: &str, old: T, new: T) {
        self.observable.notify(&self.name, property, old, new);
    }
}

/// Something whose state advances with scenario time.
///
/// Each step, the simulator calls [`tick`](Entity::tick) on every entity
/// (compute the next state), waits for the wallclock, then
/// [`tock`](Entity::tock) on every entity (commit it), in the order the
/// entities were added. The defaults advance the entity's own clock in
/// [`EntityBase`]; an override calls `self.base_mut().tick(step)` (or
/// `tock()`, `initialize(t)`) as a Python entity calls `super()`.
///
/// Hooks must not block (no blocking I/O; send to a channel instead).
///
/// ```
/// use chrono::{TimeDelta, TimeZone, Utc};
/// use nost_app::simulator::{Entity, EntityBase};
///
/// struct Counter { base: EntityBase, steps: u32 }
///
/// impl Entity for Counter {
///     fn base(&self) -> &EntityBase { &self.base }
///     fn base_mut(&mut self) -> &mut EntityBase { &mut self.base }
///     fn tock(&mut self) {
///         self.base.tock();
///         let old = self.steps;
///         self.steps += 1;
///         self.base.notify("steps", old, self.steps);
///     }
/// }
///
/// let mut c = Counter { base: EntityBase::new("counter"), steps: 0 };
/// let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
/// c.initialize(t0);
/// c.tick(TimeDelta::seconds(10));
/// c.tock();
/// assert_eq!(c.base().time(), Some(t0 + TimeDelta::seconds(10)));
/// assert_eq!(c.steps, 1);
/// ```
pub trait Entity: Send + 'static {
    /// The entity's base (name, clock, observers).
    fn base(&self) -> &EntityBase;

    /// The entity's base, mutably.
    fn base_mut(&mut self) -> &mut EntityBase;

    /// The entity's name.
    fn name(&self) -> &str {
        self.base().name()
    }

    /// The run starts at `init_time`.
    fn initialize(&mut self, init_time: DateTime<Utc>) {
        self.base_mut().initialize(init_time);
    }

    /// Compute the state after `step` of scenario time.
    fn tick(&mut self, step: TimeDelta) {
        self.base_mut().tick(step);
    }

    /// Commit the state computed by the last `tick`.
    fn tock(&mut self) {
        self.base_mut().tock();
    }
}

/// A shared handle to an entity of type `E` held by a simulator. Cheap to
/// clone; usable from any task (e.g. a message callback) while the
/// simulator runs: [`lock`](EntityRef::lock) waits at most for the entity's
/// current `tick`/`tock`.
///
/// ```
/// use std::sync::Arc;
/// use nost_app::simulator::{Change, Entity, EntityBase, RecordingObserver, Simulator};
///
/// struct Satellite { base: EntityBase, fires: Vec<u32> }
/// impl Entity for Satellite {
///     fn base(&self) -> &EntityBase { &self.base }
///     fn base_mut(&mut self) -> &mut EntityBase { &mut self.base }
/// }
///
/// let sim = Simulator::new();
/// let sat = sim.add_entity(Satellite { base: EntityBase::new("sat-1"), fires: vec![] }).unwrap();
/// let rec = Arc::new(RecordingObserver::new());
/// sat.observable().add_observer(rec.clone());
/// // What an on_fire callback does: find the entity by name and type, update it.
/// sim.with_entity::<Satellite, _>("sat-1", |s| {
///     let old = s.fires.len();
///     s.fires.push(7);
///     s.base.notify("fires", old, s.fires.len());
/// });
/// assert_eq!(sim.entity::<Satellite>("sat-1").unwrap().lock().fires, [7]);
/// // Delivered once the entity was unlocked.
/// let c: &Change = &rec.changes()[0].change;
/// assert_eq!((c.old::<usize>(), c.new_value::<usize>()), (Some(&0), Some(&1)));
/// ```
pub struct EntityRef<E> {
    cell: Arc<Mutex<E>>,
    observable: Observable,
}

impl<E> Clone for EntityRef<E> {
    fn clone(&self) -> Self {
        EntityRef {
            cell: Arc::clone(&self.cell),
            observable: self.observable.clone(),
        }
    }
}

impl<E> fmt::Debug for EntityRef<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntityRef")
            .field("type", &std::any::type_name::<E>())
            .finish_non_exhaustive()
    }
}

impl<E: Entity> EntityRef<E> {
    pub(crate) fn new(entity: E) -> Self {
        let observable = entity.base().observable().clone();
        EntityRef {
            cell: Arc::new(Mutex::new(entity)),
            observable,
        }
    }

    /// Lock the entity. Changes it notifies are delivered when the guard
    /// is dropped. Do not hold the guard across an `.await`.
    pub fn lock(&self) -> EntityGuard<'_, E> {
        EntityGuard {
            guard: Some(lock(&self.cell)),
            observable: &self.observable,
        }
    }

    /// Run `f` on the locked entity, then deliver the changes it notified.
    pub fn with<R>(&self, f: impl FnOnce(&mut E) -> R) -> R {
        let mut g = self.lock();
        f(&mut g)
    }

    /// The entity's observers (add observers here).
    pub fn observable(&self) -> &Observable {
        &self.observable
    }

    pub(crate) fn erased(&self) -> Slot {
        Slot {
            any: Arc::clone(&self.cell) as Arc<dyn Any + Send + Sync>,
            dynamic: Arc::clone(&self.cell) as Arc<dyn DynEntity>,
            observable: self.observable.clone(),
        }
    }

    pub(crate) fn from_slot(slot: &Slot) -> Option<Self> {
        Arc::clone(&slot.any)
            .downcast::<Mutex<E>>()
            .ok()
            .map(|cell| EntityRef {
                cell,
                observable: slot.observable.clone(),
            })
    }
}

/// The locked entity of an [`EntityRef`]; derefs to `E`. Dropping it
/// unlocks the entity and delivers the changes notified meanwhile.
pub struct EntityGuard<'a, E> {
    guard: Option<MutexGuard<'a, E>>,
    observable: &'a Observable,
}

impl<E> Deref for EntityGuard<'_, E> {
    type Target = E;
    fn deref(&self) -> &E {
        match &self.guard {
            Some(g) => g,
            None => unreachable!("the guard is only taken in drop"),
        }
    }
}

impl<E> DerefMut for EntityGuard<'_, E> {
    fn deref_mut(&mut self) -> &mut E {
        match &mut self.guard {
            Some(g) => g,
            None => unreachable!("the guard is only taken in drop"),
        }
    }
}

impl<E> Drop for EntityGuard<'_, E> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.observable.deliver();
    }
}

/// Type-erased operations the simulator needs.
pub(crate) trait DynEntity: Send + Sync {
    fn name(&self) -> String;
    fn initialize(&self, t: DateTime<Utc>);
    fn tick(&self, step: TimeDelta);
    fn tock(&self);
}

impl<E: Entity> DynEntity for Mutex<E> {
    fn name(&self) -> String {
        lock(self).name().to_owned()
    }
    fn initialize(&self, t: DateTime<Utc>) {
        lock(self).initialize(t);
    }
    fn tick(&self, step: TimeDelta) {
        lock(self).tick(step);
    }
    fn tock(&self) {
        lock(self).tock();
    }
}

/// One entity as the simulator stores it.
#[derive(Clone)]
pub(crate) struct Slot {
    pub(crate) any: Arc<dyn Any + Send + Sync>,
    pub(crate) dynamic: Arc<dyn DynEntity>,
    pub(crate) observable: Observable,
}
