//! `Manager`: executes a test plan (init until the required apps are
//! ready, start, stop) and serves freeze/resume/update requests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use nost_config::{Config, ManagerConfig, NostDuration};
use tokio::sync::Notify;

use crate::app::{Application, Message, RoleSettings};
use crate::messages::TimeStatus;
use crate::messages::{
    FreezeCommand, FreezeRequest, InitCommand, NostMessage, ReadyStatus, ResumeCommand,
    ResumeRequest, StartCommand, StopCommand, UpdateCommand, UpdateRequest,
};
use crate::simulator::{Mode, RunPlan};
use crate::topics;
use crate::{AppError, StartOptions};

/// The parameters of a run, as in `execution.manager`.
#[derive(Debug, Clone)]
pub struct TestPlan {
    /// Scenario start.
    pub sim_start_time: DateTime<Utc>,
    /// Scenario end.
    pub sim_stop_time: DateTime<Utc>,
    /// Wallclock start; `None`: now + `command_lead`.
    pub start_time: Option<DateTime<Utc>>,
    /// The manager's simulator step.
    pub time_step: NostDuration,
    /// Scenario seconds per wallclock second.
    pub time_scale_factor: f64,
    /// How far ahead of an action its command is sent.
    pub command_lead: NostDuration,
    /// Apps that must report ready (the manager's own name is ignored).
    pub required_apps: Vec<String>,
    /// Wait after each init.
    pub init_retry_delay: Duration,
    /// Maximum number of inits.
    pub init_max_retry: u32,
}

impl TestPlan {
    /// The plan of `execution.manager`; the scenario times are required.
    pub fn from_config(m: &ManagerConfig) -> Result<TestPlan, AppError> {
        let need = |v: Option<DateTime<Utc>>, f: &str| {
            v.ok_or_else(|| AppError::MissingSetting {
                setting: format!("execution.manager.{f}"),
                needed_for:
                    "to run a test plan (an RFC 3339 time such as \"2024-01-01T12:00:00Z\")".into(),
            })
        };
        Ok(TestPlan {
            sim_start_time: need(m.sim_start_time, "sim_start_time")?,
            sim_stop_time: need(m.sim_stop_time, "sim_stop_time")?,
            start_time: m.start_time,
            time_step: m.time_step,
            time_scale_factor: m.time_scale_factor,
            command_lead: m.command_lead,
            required_apps: m.required_apps.clone(),
            init_retry_delay: Duration::from_secs(m.init_retry_delay_s),
            init_max_retry: m.init_max_retry.max(1),
        })
    }
}

/// What a finished test plan saw.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Apps that reported ready, with their `ready` value.
    pub ready: BTreeMap<String, bool>,
    /// Init messages sent.
    pub inits_sent: u32,
    /// Wallclock start of the scenario.
    pub start_time: Option<DateTime<Utc>>,
    /// Scenario end reached.
    pub sim_stop_time: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Shared {
    ready: BTreeMap<String, bool>,
    /// The status callbacks are in place.
    subscribed: bool,
    /// The own simulator's run started by [`Manager::start`].
    run: Option<crate::simulator::RunHandle>,
}

/// A NOS-T manager.
#[derive(Clone, Debug)]
pub struct Manager {
    app: Application,
    shared: Arc<(Mutex<Shared>, Notify)>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("ready", &self.ready)
            .finish()
    }
}

impl Manager {
    /// Start up as `name` (usually `manager`) with the settings of
    /// `execution.manager` (explicit options win) and subscribe to requests.
    pub async fn start_up(
        name: &str,
        prefix: &str,
        config: &Config,
        options: StartOptions,
    ) -> Result<Manager, AppError> {
        let section = config.execution.manager.clone().unwrap_or_default();
        let role = RoleSettings {
            time_status_step: options.time_status_step.or(section.time_status_step),
            time_status_init: options.time_status_init.or(section.time_status_init),
            shut_down_when_terminated: options
                .shut_down_when_terminated
                .unwrap_or(section.shut_down_when_terminated),
            set_offset: options.set_offset.unwrap_or(section.set_offset),
            logging: Some(section.logging.clone()),
        };
        let app = Application::start_up_with(name, prefix, config, options, role).await?;
        let manager = Manager {
            app,
            shared: Arc::new((Mutex::new(Shared::default()), Notify::new())),
        };
        if let Err(e) = manager.subscribe_requests().await {
            // Close what start-up opened: connection, queues, token renewal.
            manager.app.shut_down().await;
            return Err(e);
        }
        Ok(manager)
    }

    /// The underlying application.
    pub fn app(&self) -> &Application {
        &self.app
    }

    async fn subscribe_requests(&self) -> Result<(), AppError> {
        let m = self.clone();
        self.app
            .add_message_callback("*", topics::REQUEST_UPDATE, move |msg: Message| {
                let m = m.clone();
                async move {
                    let req = UpdateRequest::from_json(&msg.body)?;
                    let p = req.tasking_parameters;
                    let at = p.sim_update_time.unwrap_or_else(|| m.app.simulator().time());
                    tokio::spawn(async move {
                        let sim = m.app.simulator().clone();
                        sim.wait_for(|x| x == Mode::Executing || x == Mode::Terminated).await;
                        if let Err(e) = m.update(p.time_scaling_factor, at).await {
                            tracing::warn!(target: "nost_app", error = %e, "update request not applied");
                        }
                    });
                    Ok(())
                }
            })
            .await?;
        let m = self.clone();
        self.app
            .add_message_callback("*", topics::REQUEST_RESUME, move |msg: Message| {
                let m = m.clone();
                async move {
                    let req = ResumeRequest::from_json(&msg.body)?;
                    let p = req.tasking_parameters;
                    let sim = m.app.simulator();
                    let close_enough = match (p.sim_resume_time, p.tolerance) {
                        (Some(t), Some(tol)) => (sim.time() - t).abs() <= tol.as_delta().abs(),
                        _ => true,
                    };
                    if close_enough {
                        m.resume().await?;
                    } else {
                        tracing::info!(target: "nost_app", from = %p.requesting_app, "resume request outside its tolerance; ignored");
                    }
                    Ok(())
                }
            })
            .await?;
        let m = self.clone();
        self.app
            .add_message_callback("*", topics::REQUEST_FREEZE, move |msg: Message| {
                let m = m.clone();
                async move {
                    let req = FreezeRequest::from_json(&msg.body)?;
                    let p = req.tasking_parameters;
                    tokio::spawn(async move {
                        if let Err(e) = m.freeze(p.sim_freeze_time, p.freeze_duration).await {
                            tracing::warn!(target: "nost_app", error = %e, "freeze request failed");
                        }
                    });
                    Ok(())
                }
            })
            .await?;
        Ok(())
    }

    /// Execute a test plan to its end (TERMINATED); returns what was seen.
    /// The steps are public for custom plans: [`init`](Self::init),
    /// [`start`](Self::start), [`wait_for_stop`](Self::wait_for_stop),
    /// [`stop`](Self::stop) (and [`update`](Self::update),
    /// [`freeze`](Self::freeze), [`resume`](Self::resume) in between).
    pub async fn execute_test_plan(&self, plan: TestPlan) -> Result<RunSummary, AppError> {
        let inits = self.init(&plan).await?;
        let start_time = self.start(&plan).await?;
        self.wait_for_stop(&plan).await?;
        let stop_at = self.stop(None).await?;
        let summary = RunSummary {
            ready: lock(&self.shared.0).ready.clone(),
            inits_sent: inits,
            start_time: Some(start_time),
            sim_stop_time: Some(stop_at),
        };
        tracing::info!(target: "nost_app", inits, "test plan finished");
        Ok(summary)
    }

    fn required(&self, plan: &TestPlan) -> Vec<String> {
        let own = self.app.name();
        plan.required_apps
            .iter()
            .filter(|a| a.as_str() != own)
            .cloned()
            .collect()
    }

    fn check_plan(plan: &TestPlan) -> Result<(TimeDelta, TimeDelta), AppError> {
        let duration = plan.sim_stop_time - plan.sim_start_time;
        if duration < TimeDelta::zero() {
            return Err(AppError::InvalidSetting {
                setting: "execution.manager.sim_stop_time".into(),
                problem: "must not be before sim_start_time".into(),
            });
        }
        let lead = plan.command_lead.as_delta();
        if lead < TimeDelta::zero() {
            return Err(AppError::InvalidSetting {
                setting: "execution.manager.command_lead".into(),
                problem: "must not be negative".into(),
            });
        }
        Ok((duration, lead))
    }

    /// Listen to `status.ready` and `status.time` (once per manager); time
    /// statuses are logged with their latency per application.
    async fn prepare(&self) -> Result<(), AppError> {
        {
            let mut s = lock(&self.shared.0);
            if s.subscribed {
                return Ok(());
            }
            s.subscribed = true;
        }
        let app = &self.app;
        let shared = self.shared.clone();
        app.add_message_callback("*", topics::STATUS_READY, move |msg: Message| {
            let shared = shared.clone();
            async move {
                let status = ReadyStatus::from_json(&msg.body)?;
                lock(&shared.0)
                    .ready
                    .insert(msg.sender().to_owned(), status.properties.ready);
                shared.1.notify_waiters();
                Ok(())
            }
        })
        .await?;
        let sim = app.simulator().clone();
        app.add_message_callback("*", topics::STATUS_TIME, move |msg: Message| {
            let sim = sim.clone();
            async move {
                let status = TimeStatus::from_json(&msg.body)?;
                let latency = sim.wallclock_now() - status.properties.time;
                tracing::info!(
                    target: "nost_app",
                    app = msg.sender(),
                    sim_time = %status.properties.sim_time,
                    latency_ms = latency.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0,
                    "time status"
                );
                Ok(())
            }
        })
        .await
    }

    /// Init step: mark the required apps not ready, then publish `init`
    /// until every one reported ready or `init_max_retry` inits were sent
    /// (then warn and go on, as nost_tools). Returns the inits sent.
    pub async fn init(&self, plan: &TestPlan) -> Result<u32, AppError> {
        Self::check_plan(plan)?;
        let required = self.required(plan);
        self.prepare().await?;
        {
            let mut s = lock(&self.shared.0);
            for a in &required {
                s.ready.insert(a.clone(), false);
            }
        }
        let mut inits = 0;
        let init =
            InitCommand::new(plan.sim_start_time, plan.sim_stop_time, required.clone()).to_json();
        for _ in 0..plan.init_max_retry {
            self.app.send_message(topics::INIT, &init).await?;
            inits += 1;
            let now = tokio::time::Instant::now();
            let deadline = now
                .checked_add(plan.init_retry_delay)
                .unwrap_or(now + Duration::from_secs(nost_config::MAX_SECONDS));
            loop {
                let wait = self.shared.1.notified();
                if self.all_ready(&required) {
                    break;
                }
                if tokio::time::timeout_at(deadline, wait).await.is_err() {
                    break;
                }
            }
            if self.all_ready(&required) {
                break;
            }
        }
        if !self.all_ready(&required) {
            tracing::warn!(target: "nost_app", ?required, "not every required app reported ready; continuing");
        }
        Ok(inits)
    }

    /// Start step: wait until `start_time − command_lead` (start time =
    /// the plan's, or now + lead), publish `start`, run the own simulator,
    /// and return the start time once it is EXECUTING.
    pub async fn start(&self, plan: &TestPlan) -> Result<DateTime<Utc>, AppError> {
        let (duration, lead) = Self::check_plan(plan)?;
        let sim = self.app.simulator().clone();
        let start_time = match plan.start_time {
            Some(t) => t,
            None => sim
                .wallclock_now()
                .checked_add_signed(lead)
                .ok_or_else(|| AppError::InvalidSetting {
                    setting: "execution.manager.command_lead".into(),
                    problem: format!(
                        "{} is too long: now plus the lead is beyond the datetime range",
                        plan.command_lead
                    ),
                })?,
        };
        sleep_until_wallclock(&sim, sub_saturating(start_time, lead)).await;
        let start = StartCommand::new(
            Some(start_time),
            Some(plan.sim_start_time),
            Some(plan.sim_stop_time),
            plan.time_scale_factor,
        )
        .to_json();
        self.app.send_message(topics::START, &start).await?;
        let run = sim.execute(
            RunPlan::new(plan.sim_start_time, duration)
                .time_step(plan.time_step.as_delta())
                .wallclock_epoch(start_time)
                .time_scale_factor(plan.time_scale_factor),
        )?;
        lock(&self.shared.0).run = Some(run);
        sim.wait_for(|m| m == Mode::Executing || m == Mode::Terminated)
            .await;
        Ok(start_time)
    }

    /// Wait until `command_lead` before the own simulator's (possibly
    /// moved) scenario end, following updates and freezes.
    pub async fn wait_for_stop(&self, plan: &TestPlan) -> Result<(), AppError> {
        let (_, lead) = Self::check_plan(plan)?;
        let sim = self.app.simulator().clone();
        loop {
            match sim.mode() {
                Mode::Terminating | Mode::Terminated => break,
                Mode::Paused | Mode::Pausing => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                _ => {}
            }
            let send_at = sub_saturating(sim.wallclock_at(sim.end_time()), lead);
            let left = (send_at - sim.wallclock_now()).to_std().unwrap_or_default();
            if left.is_zero() {
                break;
            }
            let ended =
                sim.wait_for(|m| matches!(m, Mode::Terminating | Mode::Terminated | Mode::Paused));
            tokio::select! {
                _ = tokio::time::sleep(left.min(Duration::from_secs(30))) => {}
                _ = ended => {}
            }
        }
        Ok(())
    }

    /// Stop step: publish `stop` with `sim_stop_time` (`None`: the own
    /// simulator's end time), end the own run there when it is executing,
    /// and wait for it to end. Returns the stop time sent.
    pub async fn stop(
        &self,
        sim_stop_time: Option<DateTime<Utc>>,
    ) -> Result<DateTime<Utc>, AppError> {
        let sim = self.app.simulator().clone();
        let stop_at = sim_stop_time.unwrap_or_else(|| sim.end_time());
        self.app
            .send_message(topics::STOP, &StopCommand::new(stop_at).to_json())
            .await?;
        if sim_stop_time.is_some()
            && sim.mode() == Mode::Executing
            && let Err(e) = sim.set_end_time(stop_at)
        {
            tracing::warn!(target: "nost_app", error = %e, "own stop not applied");
        }
        let run = lock(&self.shared.0).run.take();
        if let Some(run) = run {
            let _ = run.join().await;
        }
        Ok(stop_at)
    }

    fn all_ready(&self, required: &[String]) -> bool {
        let s = lock(&self.shared.0);
        required
            .iter()
            .all(|a| s.ready.get(a).copied().unwrap_or(false))
    }

    /// Publish `update` and schedule the same change on the own simulator.
    pub async fn update(
        &self,
        factor: f64,
        sim_update_time: DateTime<Utc>,
    ) -> Result<(), AppError> {
        self.app
            .send_message(
                topics::UPDATE,
                &UpdateCommand::new(factor, sim_update_time).to_json(),
            )
            .await?;
        self.app
            .simulator()
            .update(factor, Some(sim_update_time))
            .map_err(AppError::from)
    }

    /// Publish `freeze`, pause at `sim_freeze_time`, and resume after
    /// `duration` of wallclock time when one is given.
    pub async fn freeze(
        &self,
        sim_freeze_time: DateTime<Utc>,
        duration: Option<NostDuration>,
    ) -> Result<(), AppError> {
        self.app
            .send_message(
                topics::FREEZE,
                &FreezeCommand::new(sim_freeze_time, duration).to_json(),
            )
            .await?;
        let sim = self.app.simulator().clone();
        if sim.time() < sim_freeze_time {
            sleep_until_wallclock(&sim, sim.wallclock_at(sim_freeze_time)).await;
        }
        if sim.mode() == Mode::Executing {
            sim.pause()?;
        }
        if let Some(d) = duration {
            tokio::time::sleep(d.to_std()).await;
            if matches!(sim.mode(), Mode::Paused | Mode::Pausing) {
                self.resume().await?;
            }
        }
        Ok(())
    }

    /// Publish `resume` and resume the own simulator.
    pub async fn resume(&self) -> Result<(), AppError> {
        let sim = self.app.simulator();
        // Whole microseconds: exactly what the message carries.
        let (resume_time, sim_resume_time) = (
            chrono::SubsecRound::trunc_subsecs(sim.wallclock_now(), 6),
            chrono::SubsecRound::trunc_subsecs(sim.time(), 6),
        );
        let body = ResumeCommand::new(resume_time, sim_resume_time).to_json();
        self.app.send_message(topics::RESUME, &body).await?;
        // The same mapping the managed applications re-anchor to.
        if matches!(sim.mode(), Mode::Paused | Mode::Pausing) {
            sim.resume_at(resume_time, sim_resume_time)?;
        }
        Ok(())
    }
}

fn sub_saturating(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_sub_signed(d).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

async fn sleep_until_wallclock(sim: &crate::simulator::Simulator, at: DateTime<Utc>) {
    let left = (at - sim.wallclock_now()).to_std().unwrap_or_default();
    tokio::time::sleep(left).await;
}

use crate::app::lock;
