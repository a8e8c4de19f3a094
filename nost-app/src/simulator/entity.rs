//! Entities: things stepped by the simulator.

use chrono::{DateTime, TimeDelta, Utc};

/// Something whose state advances with scenario time.
///
/// Each step, the simulator calls [`tick`](Entity::tick) on every entity
/// (compute the next state), waits for the wallclock, then
/// [`tock`](Entity::tock) on every entity (commit it). Calls come from the
/// simulator task, in the order the entities were added, and must not block
/// (no blocking I/O; hand heavy work to another task). An entity must not
/// call back into the simulator's entity methods (`add_entity`, …).
pub trait Entity: Send {
    /// The entity's name (used by `remove_entity`).
    fn name(&self) -> &str;

    /// The run starts at `init_time`.
    fn initialize(&mut self, init_time: DateTime<Utc>) {
        let _ = init_time;
    }

    /// Compute the state after `step` of scenario time.
    fn tick(&mut self, step: TimeDelta) {
        let _ = step;
    }

    /// Commit the state computed by the last `tick`.
    fn tock(&mut self) {}
}
