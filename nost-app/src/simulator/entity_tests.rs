//! Entities (typed retrieval, own clock, observers, updates during a run)
//! and the interval helpers, on a paused tokio clock.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::test_support::*;
use super::*;

fn sim() -> Simulator {
    Simulator::with_clock(Arc::new(TokioClock::starting_at(base())))
}

/// A FireSat-like entity: fires are reported by message callbacks and
/// "started" when the entity commits the step that contains them.
struct Fires {
    base: EntityBase,
    reported: Vec<u32>,
    started: Vec<u32>,
}

impl Fires {
    fn new() -> Self {
        Fires {
            base: EntityBase::new("fires"),
            reported: Vec::new(),
            started: Vec::new(),
        }
    }
}

impl Entity for Fires {
    fn base(&self) -> &EntityBase {
        &self.base
    }
    fn base_mut(&mut self) -> &mut EntityBase {
        &mut self.base
    }
    fn tock(&mut self) {
        self.base.tock();
        for id in std::mem::take(&mut self.reported) {
            self.started.push(id);
            self.base.notify("started", None, Some(id));
        }
    }
}

struct Satellite {
    base: EntityBase,
    steps: u32,
}

impl Satellite {
    fn new(name: &str) -> Self {
        Satellite {
            base: EntityBase::new(name),
            steps: 0,
        }
    }
}

impl Entity for Satellite {
    fn base(&self) -> &EntityBase {
        &self.base
    }
    fn base_mut(&mut self) -> &mut EntityBase {
        &mut self.base
    }
    fn tick(&mut self, step: TimeDelta) {
        self.base.tick(step);
        self.steps += 1;
    }
}

#[tokio::test(start_paused = true)]
async fn entities_are_found_by_name_and_type_and_keep_their_own_clock() {
    let sim = sim();
    let s1 = sim.add_entity(Satellite::new("sat-1")).unwrap();
    sim.add_entity(Fires::new()).unwrap();
    sim.add_entity(Satellite::new("sat-2")).unwrap();

    assert!(sim.entity::<Satellite>("sat-2").is_some());
    assert!(sim.entity::<Fires>("sat-2").is_none(), "wrong type");
    assert!(sim.entity::<Satellite>("sat-3").is_none(), "no such name");
    let names: Vec<String> = sim
        .entities_of::<Satellite>()
        .iter()
        .map(|e| e.lock().name().to_owned())
        .collect();
    assert_eq!(names, ["sat-1", "sat-2"]);

    let times = Arc::new(RecordingObserver::with_filters([PROPERTY_TIME]));
    s1.observable().add_observer(times.clone());
    run_to_end(&sim, RunPlan::new(t0(), ms(2500)).time_scale_factor(100.0)).await;

    let sat = sim.entity::<Satellite>("sat-1").unwrap();
    assert_eq!(sat.lock().steps, 3);
    assert_eq!(sat.lock().base().time(), Some(t0() + ms(2500)));
    assert_eq!(sat.lock().base().init_time(), Some(t0()));
    let got: Vec<(DateTime<Utc>, DateTime<Utc>)> = times
        .changes()
        .iter()
        .map(|r| {
            assert_eq!(r.change.source, "sat-1");
            (
                *r.change.old::<DateTime<Utc>>().unwrap(),
                *r.change.new_value::<DateTime<Utc>>().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (t0(), t0() + secs(1)),
            (t0() + secs(1), t0() + secs(2)),
            (t0() + secs(2), t0() + ms(2500)),
        ]
    );

    // After the run (TERMINATED) entities can be added and removed again.
    assert_eq!(sim.mode(), Mode::Terminated);
    sim.add_entity(Satellite::new("sat-3")).unwrap();
    assert!(sim.remove_entity("sat-2").unwrap());
    assert!(!sim.remove_entity("sat-2").unwrap());
    assert_eq!(sim.entity_names(), ["sat-1", "fires", "sat-3"]);
}

#[tokio::test(start_paused = true)]
async fn a_message_callback_updates_an_entity_while_the_simulator_runs() {
    let sim = sim();
    sim.add_entity(Fires::new()).unwrap();
    let started = Arc::new(RecordingObserver::with_filters(["started"]));
    sim.entity::<Fires>("fires")
        .unwrap()
        .observable()
        .add_observer(started.clone());
    let run = sim.execute(RunPlan::new(t0(), secs(10))).unwrap();
    sim.wait_for_mode(Mode::Executing).await;
    assert!(
        matches!(
            sim.add_entity(Satellite::new("late")),
            Err(SimError::Running { .. })
        ),
        "no entity changes during a run"
    );

    // What an `on_fire` callback does, from another task, mid-run.
    let s2 = sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(3500)).await;
        s2.with_entity::<Fires, _>("fires", |f| f.reported.push(7))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let fires = s2.entity::<Fires>("fires").unwrap();
        fires.lock().reported.push(8);
    })
    .await
    .unwrap();
    run.join().await.unwrap();

    assert_eq!(sim.entity::<Fires>("fires").unwrap().lock().started, [7, 8]);
    let got: Vec<Option<u32>> = started
        .changes()
        .iter()
        .map(|r| *r.change.new_value::<Option<u32>>().unwrap())
        .collect();
    assert_eq!(got, [Some(7), Some(8)]);
}

#[tokio::test(start_paused = true)]
async fn an_entity_observer_may_lock_the_entity_it_observes() {
    let sim = sim();
    let fires = sim.add_entity(Fires::new()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (f2, s2) = (fires.clone(), seen.clone());
    fires
        .observable()
        .add_observer(Arc::new(PropertyChangeCallback::new(
            "started",
            move |_c: &Change| {
                let n = f2.lock().started.len();
                s2.lock().unwrap().push(n);
            },
        )));
    fires.with(|f| f.reported.extend([1, 2]));
    run_to_end(&sim, RunPlan::new(t0(), secs(2)).time_scale_factor(100.0)).await;
    // Delivered after the tock released the entity: both fires committed.
    assert_eq!(*seen.lock().unwrap(), [2, 2]);
}

#[tokio::test(start_paused = true)]
async fn recording_observer_filters_and_timestamps_simulator_changes() {
    let sim = sim();
    let rec = Arc::new(RecordingObserver::with_filters(["mode"]).timestamped(sim.clock().clone()));
    sim.add_observer(rec.clone());
    let all = Arc::new(RecordingObserver::new());
    sim.add_observer(all.clone());
    run_to_end(
        &sim,
        RunPlan::new(t0(), secs(2)).wallclock_epoch(base() + secs(5)),
    )
    .await;
    let changes = rec.changes();
    let modes: Vec<Mode> = changes
        .iter()
        .map(|r| *r.change.new_value::<Mode>().unwrap())
        .collect();
    assert_eq!(
        modes,
        [
            Mode::Initializing,
            Mode::Initialized,
            Mode::Executing,
            Mode::Terminating,
            Mode::Terminated
        ]
    );
    assert!(changes.iter().all(|r| r.change.source == "simulator"));
    assert_eq!(changes[0].time, Some(base()));
    assert_eq!(
        changes[2].time,
        Some(base() + secs(5)),
        "EXECUTING at the epoch"
    );
    assert_eq!(changes[4].time, Some(base() + secs(7)));
    // Unfiltered and untimestamped: modes and times.
    assert_eq!(all.changes().len(), 7);
    assert!(all.changes().iter().all(|r| r.time.is_none()));
}

type Seen = Arc<Mutex<Vec<(i64, i64)>>>;

/// (scenario ms since t0, wallclock ms since base) at each call.
fn record(seen: &Seen, sim: &Simulator) {
    seen.lock().unwrap().push((
        (sim.time() - t0()).num_milliseconds(),
        (sim.wallclock_now() - base()).num_milliseconds(),
    ));
}

#[tokio::test(start_paused = true)]
async fn scenario_time_interval_publisher_timing() {
    // nost_tools: due at init, init + step, … checked at each `time`
    // change, so the first publication follows the first step.
    let sim = sim();
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    sim.add_observer(Arc::new(
        ScenarioTimeIntervalPublisher::new(Some(secs(4)), None, move |sim: &Simulator| {
            record(&s2, sim)
        })
        .unwrap(),
    ));
    let steps: Seen = Arc::default();
    let s3 = steps.clone();
    sim.add_observer(Arc::new(
        ScenarioTimeIntervalPublisher::new(None, Some(t0() + secs(2)), move |sim: &Simulator| {
            record(&s3, sim)
        })
        .unwrap(),
    ));
    run_to_end(&sim, RunPlan::new(t0(), secs(10)).time_step(secs(3))).await;
    // Due 0 (at 3), 4 (at 6), 8 (at 9); 12 never.
    let got: Vec<i64> = seen.lock().unwrap().iter().map(|v| v.0).collect();
    assert_eq!(got, [3000, 6000, 9000]);
    // No step: the time step (3 s) from 2: due 2, 5, 8 → at 3, 6, 9.
    let got: Vec<i64> = steps.lock().unwrap().iter().map(|v| v.0).collect();
    assert_eq!(got, [3000, 6000, 9000]);
}

#[tokio::test(start_paused = true)]
async fn scenario_time_interval_callback_pins_the_due_times() {
    let sim = sim();
    let seen = interval_calls(&sim, secs(2));
    run_to_end(
        &sim,
        RunPlan::new(t0(), secs(7))
            .time_step(secs(3))
            .time_scale_factor(10.0),
    )
    .await;
    // Times 3, 6, 7: due 2 at 3, 4 and 6 at 6 (8 is past the end).
    assert_eq!(*seen.lock().unwrap(), [(2, 3), (4, 6), (6, 6)]);
    // A second run restarts the schedule.
    seen.lock().unwrap().clear();
    run_to_end(
        &sim,
        RunPlan::new(t0(), secs(3))
            .time_step(secs(3))
            .time_scale_factor(10.0),
    )
    .await;
    assert_eq!(*seen.lock().unwrap(), [(2, 3)]);
}

#[tokio::test(start_paused = true)]
async fn wallclock_step_divides_by_the_factor() {
    let sim = sim();
    sim.initialize(t0(), None, 10.0).unwrap();
    assert_eq!(sim.time_step(), secs(1));
    assert_eq!(sim.wallclock_time_step(), ms(100));
}

#[tokio::test(start_paused = true)]
async fn wallclock_interval_publisher_uses_the_wallclock_step_and_resets_on_resume() {
    let sim = sim();
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    // No step: wallclock step = 2 s ÷ 4 = 500 ms.
    sim.add_observer(Arc::new(
        WallclockTimeIntervalPublisher::new(None, None, move |sim: &Simulator| record(&s2, sim))
            .unwrap(),
    ));
    let cb: Seen = Arc::default();
    let c2 = cb.clone();
    sim.add_observer(Arc::new(
        WallclockTimeIntervalCallback::new(ms(1000), None, move |sim: &Simulator, due| {
            c2.lock().unwrap().push((
                (due - base()).num_milliseconds(),
                (sim.wallclock_now() - base()).num_milliseconds(),
            ))
        })
        .unwrap(),
    ));
    let start = tokio::time::Instant::now();
    let run = sim
        .execute(
            RunPlan::new(t0(), secs(12))
                .time_step(secs(2))
                .time_scale_factor(4.0),
        )
        .unwrap();
    tokio::time::sleep_until(start + Duration::from_millis(1200)).await;
    sim.pause().unwrap();
    sim.wait_for_mode(Mode::Paused).await;
    tokio::time::sleep_until(start + Duration::from_millis(11_200)).await;
    sim.resume().unwrap();
    run.join().await.unwrap();

    // Steps commit at wallclock 500, 1000, 1200 (pause), then after the
    // resume at 11200: 11700, 12200, 12700 (end, scenario 12 s).
    let got = seen.lock().unwrap().clone();
    let scenario: Vec<i64> = got.iter().map(|v| v.0).collect();
    let wall: Vec<i64> = got.iter().map(|v| v.1).collect();
    // Due 0 (at 500), 500 (at 500), 1000 (at 1000); reset at 11200 → due
    // 11700, 12200, 12700: one publication per step, no burst.
    assert_eq!(wall, [500, 500, 1000, 11_700, 12_200, 12_700], "{got:?}");
    assert_eq!(scenario, [2000, 2000, 4000, 8000, 10_000, 12_000]);
    // Callback: first due one interval after the first step (1500, not
    // reached before the pause); the resume at 11200 restarts it at 12200
    // instead of firing the 1500 due time late.
    let got = cb.lock().unwrap().clone();
    assert_eq!(got, [(12_200, 12_200)], "{got:?}");
}

#[tokio::test(start_paused = true)]
async fn resume_at_takes_the_commands_mapping_at_once() {
    let sim = sim();
    let start = tokio::time::Instant::now();
    let run = sim.execute(RunPlan::new(t0(), secs(20))).unwrap();
    tokio::time::sleep_until(start + Duration::from_millis(2500)).await;
    sim.pause().unwrap();
    sim.wait_for_mode(Mode::Paused).await;
    tokio::time::sleep_until(start + Duration::from_millis(5000)).await;
    // A manager resumed 100 ms ago at scenario +2 s.
    let (w, t) = (base() + ms(4900), t0() + secs(2));
    sim.resume_at(w, t).unwrap();
    // Re-anchored before the loop runs: a freeze computed now is right.
    assert_eq!((sim.wallclock_epoch(), sim.simulation_epoch()), (w, t));
    assert_eq!(sim.wallclock_at(t0() + secs(10)), base() + ms(12_900));
    sim.wait_for_mode(Mode::Executing).await;
    assert_eq!((sim.wallclock_epoch(), sim.simulation_epoch()), (w, t));
    run.join().await.unwrap();
    // The end follows the command's time line, not this simulator's resume.
    assert_eq!(sim.time(), t0() + secs(20));
    let end = sim.wallclock_now() - base();
    assert!(end >= ms(22_900) && end <= ms(22_903), "{end}");
    assert!(sim.resume_at(w, t).is_err(), "only from PAUSING/PAUSED");
}
