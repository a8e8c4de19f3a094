//! `ManagedApplication`: an application whose simulator follows a manager's
//! `init`/`start`/`stop`/`update`/`freeze`/`resume` commands.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use nost_config::Config;

use crate::app::{Application, Message, RoleSettings};
use crate::messages::{
    FreezeCommand, InitCommand, NostMessage, ResumeCommand, StartCommand, StopCommand,
    UpdateCommand,
};
use crate::simulator::{Mode, RunPlan};
use crate::topics;
use crate::{AppError, HandlerError, StartOptions};

#[derive(Default)]
struct Times {
    start: Option<DateTime<Utc>>,
    stop: Option<DateTime<Utc>>,
}

/// Reactions to the manager's commands, as Python users override
/// `on_manager_init` … `on_manager_resume`: each is called after the
/// built-in handling of its command (so the simulator has already been
/// started, stopped, updated, paused or resumed), with the parsed command.
/// Hooks run on the delivery task and must not block (spawn for I/O).
/// The defaults do nothing.
pub trait ManagedHooks: Send + Sync {
    /// After `init` (the ready status is sent).
    fn on_init(&self, app: &Application, cmd: &InitCommand) {
        let _ = (app, cmd);
    }
    /// After `start` (the simulator's run is started).
    fn on_start(&self, app: &Application, cmd: &StartCommand) {
        let _ = (app, cmd);
    }
    /// After `stop` (the end time is set).
    fn on_stop(&self, app: &Application, cmd: &StopCommand) {
        let _ = (app, cmd);
    }
    /// After `update` (the factor change is scheduled).
    fn on_update(&self, app: &Application, cmd: &UpdateCommand) {
        let _ = (app, cmd);
    }
    /// After `freeze` (the pause at the freeze time is scheduled).
    fn on_freeze(&self, app: &Application, cmd: &FreezeCommand) {
        let _ = (app, cmd);
    }
    /// After `resume` (the simulator is resuming).
    fn on_resume(&self, app: &Application, cmd: &ResumeCommand) {
        let _ = (app, cmd);
    }
}

type Hooks = Arc<Mutex<Vec<Arc<dyn ManagedHooks>>>>;

fn run_hooks(hooks: &Hooks, f: impl Fn(&dyn ManagedHooks)) {
    let hooks: Vec<Arc<dyn ManagedHooks>> = lock(hooks).clone();
    for h in hooks {
        f(h.as_ref());
    }
}

/// A NOS-T managed application.
#[derive(Clone)]
pub struct ManagedApplication {
    app: Application,
    manager: String,
    hooks: Hooks,
}

impl std::fmt::Debug for ManagedApplication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedApplication")
            .field("app", &self.app)
            .field("manager", &self.manager)
            .field("hooks", &lock(&self.hooks).len())
            .finish()
    }
}

impl ManagedApplication {
    /// Start up with the settings of `execution.managed_applications.<name>`
    /// (else `default`, else the schema defaults; explicit options win) and
    /// subscribe to the manager's six commands.
    pub async fn start_up(
        name: &str,
        prefix: &str,
        config: &Config,
        options: StartOptions,
    ) -> Result<ManagedApplication, AppError> {
        let section = config.execution.managed_application(name);
        let role = RoleSettings {
            time_status_step: options.time_status_step.or(section.time_status_step),
            time_status_init: options.time_status_init.or(section.time_status_init),
            shut_down_when_terminated: options
                .shut_down_when_terminated
                .unwrap_or(section.shut_down_when_terminated),
            set_offset: options.set_offset.unwrap_or(section.set_offset),
            logging: Some(section.logging.clone()),
        };
        let time_step = section.time_step.as_delta();
        if time_step <= TimeDelta::zero() {
            return Err(AppError::InvalidSetting {
                setting: format!("execution.managed_applications.{name}.time_step"),
                problem: "must be positive".into(),
            });
        }
        let manager = section.manager_app_name.clone();
        topics::validate_name("manager name", &manager)?;
        let app = Application::start_up_with(name, prefix, config, options, role).await?;
        let managed = ManagedApplication {
            app,
            manager,
            hooks: Arc::default(),
        };
        if let Err(e) = managed.subscribe(time_step).await {
            // Close what start-up opened: connection, queues, token renewal.
            managed.app.shut_down().await;
            return Err(e);
        }
        Ok(managed)
    }

    /// The underlying application (publish, subscribe, shut down).
    pub fn app(&self) -> &Application {
        &self.app
    }

    /// Add reactions to the manager's commands (called in the order added,
    /// after the built-in handling).
    pub fn add_hooks(&self, hooks: Arc<dyn ManagedHooks>) {
        lock(&self.hooks).push(hooks);
    }

    /// The manager this application follows.
    pub fn manager_name(&self) -> &str {
        &self.manager
    }

    /// Wait until the simulator reaches TERMINATED (only a run gets there).
    pub async fn wait_terminated(&self) {
        self.app.simulator().wait_for_mode(Mode::Terminated).await;
    }

    async fn subscribe(&self, time_step: TimeDelta) -> Result<(), AppError> {
        let times = Arc::new(Mutex::new(Times::default()));
        let app = self.app.clone();
        let mgr = self.manager.clone();

        let (a, t) = (app.clone(), times.clone());
        let hk = self.hooks.clone();
        app.add_message_callback(&mgr, topics::INIT, move |m: Message| {
            let (a, t) = (a.clone(), t.clone());
            let hk = hk.clone();
            async move {
                let cmd = InitCommand::from_json(&m.body)?;
                let hooked = cmd.clone();
                {
                    let mut t = lock(&t);
                    t.start = Some(cmd.tasking_parameters.sim_start_time);
                    t.stop = Some(cmd.tasking_parameters.sim_stop_time);
                }
                a.ready().await?;
                run_hooks(&hk, |h| h.on_init(&a, &hooked));
                Ok(())
            }
        })
        .await?;

        let (a, t) = (app.clone(), times.clone());
        let hk = self.hooks.clone();
        app.add_message_callback(&mgr, topics::START, move |m: Message| {
            let (a, t) = (a.clone(), t.clone());
            let hk = hk.clone();
            async move {
                let cmd = StartCommand::from_json(&m.body)?;
                let hooked = cmd.clone();
                let p = cmd.tasking_parameters;
                let (start, stop) = {
                    let mut t = lock(&t);
                    if p.sim_start_time.is_some() {
                        t.start = p.sim_start_time;
                    }
                    if p.sim_stop_time.is_some() {
                        t.stop = p.sim_stop_time;
                    }
                    (t.start, t.stop)
                };
                let (Some(start), Some(stop)) = (start, stop) else {
                    return Err(boxed("start without scenario start/stop times (and no init before it)"));
                };
                let sim = a.simulator();
                if sim.is_running() {
                    tracing::warn!(target: "nost_app", app = a.name(), "start received while running; ignored");
                    return Ok(());
                }
                sim.execute(RunPlan {
                    init_time: start,
                    duration: stop - start,
                    time_step,
                    wallclock_epoch: p.start_time,
                    time_scale_factor: p.time_scaling_factor,
                })
                    .map_err(|e| boxed(&e.to_string()))?;
                run_hooks(&hk, |h| h.on_start(&a, &hooked));
                Ok(())
            }
        })
        .await?;

        let a = app.clone();
        let hk = self.hooks.clone();
        app.add_message_callback(&mgr, topics::STOP, move |m: Message| {
            let a = a.clone();
            let hk = hk.clone();
            async move {
                let cmd = StopCommand::from_json(&m.body)?;
                let hooked = cmd.clone();
                if let Err(e) = a.simulator().set_end_time(cmd.tasking_parameters.sim_stop_time) {
                    tracing::warn!(target: "nost_app", app = a.name(), error = %e, "stop command not applied");
                }
                run_hooks(&hk, |h| h.on_stop(&a, &hooked));
                Ok(())
            }
        })
        .await?;

        let a = app.clone();
        let hk = self.hooks.clone();
        app.add_message_callback(&mgr, topics::UPDATE, move |m: Message| {
            let a = a.clone();
            let hk = hk.clone();
            async move {
                let cmd = UpdateCommand::from_json(&m.body)?;
                let hooked = cmd.clone();
                let p = cmd.tasking_parameters;
                // Allowed before EXECUTING too: it applies at the crossing step.
                if let Err(e) = a.simulator().update(p.time_scaling_factor, Some(p.sim_update_time)) {
                    tracing::warn!(target: "nost_app", app = a.name(), error = %e, "update command not applied");
                }
                run_hooks(&hk, |h| h.on_update(&a, &hooked));
                Ok(())
            }
        })
        .await?;

        let a = app.clone();
        let hk = self.hooks.clone();
        app.add_message_callback(&mgr, topics::FREEZE, move |m: Message| {
            let a = a.clone();
            let hk = hk.clone();
            async move {
                let cmd = FreezeCommand::from_json(&m.body)?;
                let hooked = cmd.clone();
                let at = cmd.tasking_parameters.sim_freeze_time;
                let sim = a.simulator().clone();
                // Waiting for the freeze time happens off the delivery path.
                // The target is recomputed while waiting: a resume (or an
                // update) handled meanwhile moves the time line, e.g. when
                // this freeze is delivered before the previous resume.
                tokio::spawn(async move {
                    loop {
                        let mode = sim.mode();
                        if matches!(mode, Mode::Terminating | Mode::Terminated) {
                            return;
                        }
                        let left = sim.wallclock_at(at) - sim.wallclock_now();
                        if mode == Mode::Executing
                            && (sim.time() >= at || left <= TimeDelta::zero())
                        {
                            break;
                        }
                        let wait = left.to_std().unwrap_or_default().clamp(
                            std::time::Duration::from_millis(1),
                            std::time::Duration::from_millis(100),
                        );
                        let mut modes = sim.mode_watch();
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = modes.changed() => {}
                        }
                    }
                    if sim.mode() == Mode::Executing {
                        let _ = sim.pause();
                    }
                });
                run_hooks(&hk, |h| h.on_freeze(&a, &hooked));
                Ok(())
            }
        })
        .await?;

        let a = app.clone();
        let hk = self.hooks.clone();
        app.add_message_callback(&mgr, topics::RESUME, move |m: Message| {
            let a = a.clone();
            let hk = hk.clone();
            async move {
                let cmd = ResumeCommand::from_json(&m.body)?;
                let hooked = cmd.clone();
                let p = cmd.tasking_parameters;
                // Re-anchor to the manager's mapping (bug 28 of nost_tools).
                if matches!(a.simulator().mode(), Mode::Paused | Mode::Pausing) {
                    a.simulator()
                        .resume_at(p.resume_time, p.sim_resume_time)
                        .map_err(|e| boxed(&e.to_string()))?;
                }
                run_hooks(&hk, |h| h.on_resume(&a, &hooked));
                Ok(())
            }
        })
        .await?;
        Ok(())
    }
}

fn boxed(text: &str) -> HandlerError {
    text.to_owned().into()
}

use crate::app::lock;
