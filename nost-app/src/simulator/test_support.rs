//! What the simulator's test modules share: the scenario's start, the test
//! clock's base, durations, a whole run, an interval-callback recorder.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::{RunPlan, ScenarioTimeIntervalCallback, Simulator};

/// The scenario's start time.
pub(super) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap()
}

/// Where the test clock's wallclock starts.
pub(super) fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, 0, 0, 0).unwrap()
}

pub(super) fn secs(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

pub(super) fn ms(m: i64) -> TimeDelta {
    TimeDelta::milliseconds(m)
}

/// Execute `plan` and wait until the run has ended.
pub(super) async fn run_to_end(sim: &Simulator, plan: RunPlan) {
    sim.execute(plan).unwrap().join().await.unwrap();
}

/// A [`ScenarioTimeIntervalCallback`] every `interval` on `sim` that records
/// (due time, simulator time at the call), in seconds since [`t0`].
pub(super) fn interval_calls(sim: &Simulator, interval: TimeDelta) -> Arc<Mutex<Vec<(i64, i64)>>> {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let record = calls.clone();
    sim.add_observer(Arc::new(
        ScenarioTimeIntervalCallback::new(interval, move |sim: &Simulator, due| {
            record.lock().unwrap().push((
                (due - t0()).num_seconds(),
                (sim.time() - t0()).num_seconds(),
            ))
        })
        .unwrap(),
    ));
    calls
}
