//! The Manager's steps as public calls: a custom plan (init, start, an
//! update, then an early stop) drives a ManagedApplication on the local
//! broker (`NOST_TEST_AMQP_PORT` names another local node than 5672).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeDelta;
use nost_app::messages::{
    FreezeCommand, InitCommand, ResumeCommand, StartCommand, StopCommand, UpdateCommand,
};
use nost_app::simulator::Mode;
use nost_app::{Application, ManagedApplication, ManagedHooks, Manager, StartOptions, TestPlan};
use nost_config::{Config, Credentials, NostDuration};
use nost_testkit::unique;

fn config() -> Config {
    let start = chrono::DateTime::parse_from_rfc3339("2024-01-01T12:00:00Z")
        .unwrap()
        .to_utc();
    let port: u32 = std::env::var("NOST_TEST_AMQP_PORT")
        .map(|p| p.parse().unwrap())
        .unwrap_or(5672);
    Config::builder()
        .rabbitmq(|r| {
            r.host = "127.0.0.1".into();
            r.port = port;
            r.reconnect_delay = 1;
        })
        .manager(|m| {
            m.sim_start_time = Some(start);
            m.sim_stop_time = Some(start + TimeDelta::seconds(600));
            m.time_scale_factor = 10.0;
            m.command_lead = NostDuration::microseconds(300_000);
            m.required_apps = vec!["alpha".into()];
            m.init_retry_delay_s = 2;
            m.time_status_step = Some(NostDuration::seconds(5));
        })
        .managed_application("default", |a| {
            a.shut_down_when_terminated = true;
            a.time_status_step = Some(NostDuration::seconds(5));
        })
        .build()
        .unwrap()
}

fn options() -> StartOptions {
    StartOptions {
        auth: Credentials::basic("guest", "guest").into(),
        set_offset: Some(false),
        ..Default::default()
    }
}

/// Records the commands it heard and the simulator's mode at that moment.
#[derive(Default)]
struct Heard(Mutex<Vec<String>>);

impl ManagedHooks for Heard {
    fn on_init(&self, app: &Application, _: &InitCommand) {
        self.0
            .lock()
            .unwrap()
            .push(format!("init {}", app.simulator().mode()));
    }
    fn on_start(&self, _: &Application, cmd: &StartCommand) {
        let f = cmd.tasking_parameters.time_scaling_factor;
        self.0.lock().unwrap().push(format!("start {f}"));
    }
    fn on_update(&self, _: &Application, cmd: &UpdateCommand) {
        let f = cmd.tasking_parameters.time_scaling_factor;
        self.0.lock().unwrap().push(format!("update {f}"));
    }
    fn on_stop(&self, app: &Application, cmd: &StopCommand) {
        let at = (cmd.tasking_parameters.sim_stop_time - app.simulator().init_time()).num_seconds();
        let mode = app.simulator().mode();
        self.0.lock().unwrap().push(format!("stop +{at}s {mode}"));
    }
}

#[tokio::test]
async fn a_custom_plan_from_the_public_steps() {
    let prefix = unique("steps");
    let cfg = config();
    let alpha = ManagedApplication::start_up("alpha", &prefix, &cfg, options())
        .await
        .unwrap();
    let heard = Arc::new(Heard::default());
    alpha.add_hooks(heard.clone());
    let manager = Manager::start_up("manager", &prefix, &cfg, options())
        .await
        .unwrap();
    let plan = TestPlan::from_config(cfg.execution.manager.as_ref().unwrap()).unwrap();
    let start = plan.sim_start_time;

    let inits = manager.init(&plan).await.unwrap();
    assert_eq!(inits, 1, "alpha was ready after the first init");
    manager.start(&plan).await.unwrap();
    let asim = alpha.app().simulator().clone();
    tokio::time::timeout(Duration::from_secs(10), asim.wait_for_mode(Mode::Executing))
        .await
        .unwrap();
    // Twice as fast from scenario +10 s, on both sides.
    manager
        .update(20.0, start + TimeDelta::seconds(10))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while asim.time_scale_factor() != 20.0 {
        assert!(tokio::time::Instant::now() < deadline, "update not applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Stop at +40 s instead of the plan's +600 s.
    let stop_at = start + TimeDelta::seconds(40);
    assert_eq!(manager.stop(Some(stop_at)).await.unwrap(), stop_at);
    tokio::time::timeout(Duration::from_secs(10), alpha.wait_terminated())
        .await
        .unwrap();
    assert_eq!(asim.time(), stop_at);
    assert_eq!(manager.app().simulator().time(), stop_at);
    assert_eq!(manager.app().simulator().mode(), Mode::Terminated);
    // The hooks ran after the built-in handling of each command.
    assert_eq!(
        *heard.0.lock().unwrap(),
        [
            "init UNDEFINED",
            "start 10",
            "update 20",
            "stop +40s EXECUTING"
        ]
    );
    manager.app().shut_down().await;
}

/// Records freeze and resume commands with what they carried and the
/// application's simulator at that moment.
#[derive(Default)]
struct FreezeResume(Mutex<Vec<String>>);

impl ManagedHooks for FreezeResume {
    fn on_freeze(&self, app: &Application, cmd: &FreezeCommand) {
        let at =
            (cmd.tasking_parameters.sim_freeze_time - app.simulator().init_time()).num_seconds();
        let d = cmd.tasking_parameters.freeze_duration.is_some();
        self.0
            .lock()
            .unwrap()
            .push(format!("freeze +{at}s duration {d}"));
    }
    fn on_resume(&self, app: &Application, cmd: &ResumeCommand) {
        // After the built-in handling: re-anchored on the manager's mapping.
        let sim = app.simulator();
        let p = &cmd.tasking_parameters;
        let anchored = sim.wallclock_at(p.sim_resume_time) == p.resume_time;
        let mode = sim.mode();
        self.0
            .lock()
            .unwrap()
            .push(format!("resume anchored {anchored} {mode}"));
    }
}

#[tokio::test]
async fn freeze_and_resume_hooks_run_after_the_built_in_handling() {
    let prefix = unique("hooksfr");
    let cfg = config();
    let alpha = ManagedApplication::start_up("alpha", &prefix, &cfg, options())
        .await
        .unwrap();
    let heard = Arc::new(FreezeResume::default());
    alpha.add_hooks(heard.clone());
    let manager = Manager::start_up("manager", &prefix, &cfg, options())
        .await
        .unwrap();
    let plan = TestPlan::from_config(cfg.execution.manager.as_ref().unwrap()).unwrap();
    let start = plan.sim_start_time;
    manager.init(&plan).await.unwrap();
    manager.start(&plan).await.unwrap();
    let asim = alpha.app().simulator().clone();
    tokio::time::timeout(Duration::from_secs(10), asim.wait_for_mode(Mode::Executing))
        .await
        .unwrap();

    // An indefinite freeze at scenario +10 s: alpha pauses there.
    let freeze_at = start + TimeDelta::seconds(10);
    manager.freeze(freeze_at, None).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), asim.wait_for_mode(Mode::Paused))
        .await
        .unwrap();
    assert_eq!(*heard.0.lock().unwrap(), ["freeze +10s duration false"]);

    manager.resume().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), asim.wait_for_mode(Mode::Executing))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while heard.0.lock().unwrap().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no resume hook");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resumed = heard.0.lock().unwrap()[1].clone();
    assert!(
        resumed.starts_with("resume anchored true "),
        "hook saw the re-anchored simulator: {resumed}"
    );
    assert!(
        !resumed.ends_with("PAUSED"),
        "hook ran after the resume was handled: {resumed}"
    );

    let stop_at = start + TimeDelta::seconds(20);
    manager.stop(Some(stop_at)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), alpha.wait_terminated())
        .await
        .unwrap();
    assert_eq!(heard.0.lock().unwrap().len(), 2, "one call each");
    manager.app().shut_down().await;
}
