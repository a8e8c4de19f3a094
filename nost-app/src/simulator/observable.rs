//! Property-change notifications of entities (`nost_tools`' `Observable`
//! and `Observer.on_change`).

use crate::app::lock;
use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, TryLockError};

/// A property value carried by a [`Change`]: any `Send + Sync` value,
/// read back typed with [`Change::old`] / [`Change::new`].
pub type Value = Arc<dyn Any + Send + Sync>;

/// One property change of an entity: `source` (the entity's name),
/// `property`, old and new values, as `nost_tools` hands them to
/// `on_change(source, property_name, old_value, new_value)`.
#[derive(Clone)]
pub struct Change {
    /// The name of the entity that changed.
    pub source: String,
    /// The property name (`"time"` for the entity clock).
    pub property: String,
    old: Value,
    new: Value,
}

impl Change {
    /// A change of `property` of `source` from `old` to `new`.
    pub fn new<T: Any + Send + Sync>(source: &str, property: &str, old: T, new: T) -> Self {
        Change {
            source: source.to_owned(),
            property: property.to_owned(),
            old: Arc::new(old),
            new: Arc::new(new),
        }
    }

    /// The old value, if it is a `T`.
    pub fn old<T: Any>(&self) -> Option<&T> {
        self.old.downcast_ref()
    }

    /// The new value, if it is a `T`.
    pub fn new_value<T: Any>(&self) -> Option<&T> {
        self.new.downcast_ref()
    }
}

impl fmt::Debug for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Change")
            .field("source", &self.source)
            .field("property", &self.property)
            .finish_non_exhaustive()
    }
}

/// Receives the [`Change`]s of an [`Observable`], in order, one at a time.
///
/// Called after the entity's lock is released (never while the simulator
/// or a caller holds the entity), so an observer may read or update the
/// entity; it must not block (send to a channel for I/O).
pub trait EntityObserver: Send + Sync {
    /// One change.
    fn on_change(&self, change: &Change);
}

impl<F> EntityObserver for F
where
    F: Fn(&Change) + Send + Sync,
{
    fn on_change(&self, change: &Change) {
        self(change)
    }
}

/// Identifies an observer added to an [`Observable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntityObserverId(u64);

type ObserverList = (u64, Vec<(EntityObserverId, Arc<dyn EntityObserver>)>);

#[derive(Default)]
struct Inner {
    observers: Mutex<ObserverList>,
    pending: Mutex<VecDeque<Change>>,
    delivery: Mutex<()>,
}

/// The observer list of an entity. Cheap to clone (all clones share the
/// list).
///
/// [`notify`](Observable::notify) only queues the change; it is delivered
/// by [`deliver`](Observable::deliver), which the simulator calls after
/// each `initialize`/`tick`/`tock` and an [`EntityRef`](super::EntityRef)
/// calls when its guard is dropped — always with the entity unlocked, so
/// observers can lock it.
#[derive(Clone, Default)]
pub struct Observable {
    inner: Arc<Inner>,
}

impl fmt::Debug for Observable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = lock(&self.inner.observers).1.len();
        f.debug_struct("Observable").field("observers", &n).finish()
    }
}

impl Observable {
    /// No observers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an observer; it hears every later change.
    pub fn add_observer(&self, observer: Arc<dyn EntityObserver>) -> EntityObserverId {
        let mut o = lock(&self.inner.observers);
        let id = EntityObserverId(o.0);
        o.0 += 1;
        o.1.push((id, observer));
        id
    }

    /// Remove an observer; `false` when it was not there.
    pub fn remove_observer(&self, id: EntityObserverId) -> bool {
        let mut o = lock(&self.inner.observers);
        let before = o.1.len();
        o.1.retain(|(i, _)| *i != id);
        o.1.len() != before
    }

    /// Queue a change of `property` from `old` to `new`, unless they are
    /// equal (as `nost_tools`' `notify_observers`).
    pub fn notify<T: Any + Send + Sync + PartialEq>(
        &self,
        source: &str,
        property: &str,
        old: T,
        new: T,
    ) {
        if old != new {
            self.notify_change(Change::new(source, property, old, new));
        }
    }

    /// Queue a change as it is (no equality check).
    pub fn notify_change(&self, change: Change) {
        lock(&self.inner.pending).push_back(change);
    }

    /// Deliver the queued changes, in order. Whoever holds the delivery
    /// lock drains the queue, including changes queued meanwhile.
    pub fn deliver(&self) {
        loop {
            let guard = match self.inner.delivery.try_lock() {
                Ok(g) => g,
                Err(TryLockError::WouldBlock) => return,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
            };
            loop {
                let next = lock(&self.inner.pending).pop_front();
                let Some(change) = next else { break };
                let observers: Vec<Arc<dyn EntityObserver>> = lock(&self.inner.observers)
                    .1
                    .iter()
                    .map(|(_, o)| Arc::clone(o))
                    .collect();
                for o in observers {
                    o.on_change(&change);
                }
            }
            drop(guard);
            if lock(&self.inner.pending).is_empty() {
                return;
            }
        }
    }
}
