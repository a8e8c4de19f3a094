//! What a simulator holds besides its state: the clock, observers and
//! entities (added, removed, looked up).

use std::sync::Arc;

use super::{Clock, Entity, EntityRef, Mode, Observer, SimError, Simulator};

/// Identifies an added observer, for [`Simulator::remove_observer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObserverId(u64);

impl Simulator {
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
}
