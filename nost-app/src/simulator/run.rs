//! Runs: initialize, execute/run, and the run loop that steps scenario
//! time against the wallclock.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::state::State;
use super::{Mode, SimError, SimEvent, Simulator};

/// The longest single sleep of the run loop.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// What a run does: [`Simulator::execute`] and [`Simulator::run`] take one.
///
/// [`RunPlan::new`] sets the initial scenario time and the duration; the
/// rest has defaults (a time step of 1 s, starting now, one scenario
/// second per wallclock second), changed with the methods of the same
/// names or by setting the fields:
///
/// ```
/// use chrono::{TimeDelta, TimeZone, Utc};
/// use nost_app::simulator::RunPlan;
///
/// let start = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
/// let plan = RunPlan::new(start, TimeDelta::hours(1))
///     .time_step(TimeDelta::minutes(10))
///     .time_scale_factor(60.0);
/// assert_eq!(plan.wallclock_epoch, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunPlan {
    /// Scenario time at the start of the run.
    pub init_time: DateTime<Utc>,
    /// Scenario time the run lasts (non-negative).
    pub duration: TimeDelta,
    /// Scenario time of one step (positive; default 1 s).
    pub time_step: TimeDelta,
    /// Wallclock time at which scenario time `init_time` is reached and
    /// the run starts executing; `None` (the default) = now.
    pub wallclock_epoch: Option<DateTime<Utc>>,
    /// Scenario seconds per wallclock second (positive; default 1.0).
    pub time_scale_factor: f64,
}

impl RunPlan {
    /// A run from `init_time` lasting `duration` of scenario time, with the
    /// defaults for the rest.
    pub fn new(init_time: DateTime<Utc>, duration: TimeDelta) -> Self {
        RunPlan {
            init_time,
            duration,
            time_step: TimeDelta::seconds(1),
            wallclock_epoch: None,
            time_scale_factor: 1.0,
        }
    }

    /// Steps of `time_step` scenario time.
    pub fn time_step(mut self, time_step: TimeDelta) -> Self {
        self.time_step = time_step;
        self
    }

    /// Start at wallclock `epoch` (`None`: now).
    pub fn wallclock_epoch(mut self, epoch: impl Into<Option<DateTime<Utc>>>) -> Self {
        self.wallclock_epoch = epoch.into();
        self
    }

    /// `factor` scenario seconds per wallclock second.
    pub fn time_scale_factor(mut self, factor: f64) -> Self {
        self.time_scale_factor = factor;
        self
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
    fn start_run(&self, plan: &RunPlan) -> Result<(), SimError> {
        let RunPlan {
            init_time,
            duration,
            time_step,
            wallclock_epoch,
            time_scale_factor,
        } = *plan;
        Self::check_factor(time_scale_factor)?;
        if time_step <= TimeDelta::zero() {
            return Err(SimError::not_positive("time step", time_step));
        }
        if duration < TimeDelta::zero() || init_time.checked_add_signed(duration).is_none() {
            return Err(SimError::InvalidDuration(duration));
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

    /// Start a run of `plan` on a new tokio task and return at once (mode
    /// INITIALIZED): from its initial time for its duration of scenario
    /// time in its time steps, starting at its wallclock epoch (`None` =
    /// now) with its time-scale factor.
    ///
    /// Allowed in UNDEFINED, INITIALIZED or TERMINATED when no run is in
    /// progress; refused (nothing changes) otherwise.
    pub fn execute(&self, plan: RunPlan) -> Result<RunHandle, SimError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| SimError::NoRuntime)?;
        self.start_run(&plan)?;
        let sim = self.clone();
        let join = rt.spawn(async move { sim.drive().await });
        Ok(RunHandle { join })
    }

    /// Like [`execute`](Self::execute), but runs in the calling task and
    /// returns when the run has ended. Dropping the future ends the run
    /// (TERMINATING → TERMINATED).
    pub async fn run(&self, plan: RunPlan) -> Result<(), SimError> {
        self.start_run(&plan)?;
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
}
