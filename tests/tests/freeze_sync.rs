//! Freeze/resume keeps applications in step (nost_tools' bug 28): after
//! three freezes by the Manager, three ManagedApplications and the Manager
//! map wallclock to scenario time identically, because each re-anchors to
//! the `resumeTime`/`simResumeTime` of the resume command.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::TimeDelta;
use std::sync::Arc;

use nost_app::simulator::{Mode, RecordingObserver};
use nost_app::{ManagedApplication, Manager, StartOptions, TestPlan};
use nost_config::{Config, Credentials, NostDuration};
use nost_testkit::unique;

fn config() -> Config {
    let start = chrono::DateTime::parse_from_rfc3339("2024-01-01T12:00:00Z")
        .unwrap()
        .to_utc();
    Config::builder()
        .rabbitmq(|r| {
            r.host = "127.0.0.1".into();
            r.port = std::env::var("NOST_TEST_AMQP_PORT")
                .map(|p| p.parse().unwrap())
                .unwrap_or(5672);
            r.reconnect_delay = 1;
        })
        .manager(|m| {
            m.sim_start_time = Some(start);
            m.sim_stop_time = Some(start + TimeDelta::seconds(60));
            m.time_scale_factor = 10.0;
            m.command_lead = NostDuration::microseconds(500_000);
            m.required_apps = vec!["alpha".into(), "bravo".into(), "charlie".into()];
            m.init_retry_delay_s = 2;
        })
        .managed_application("default", |a| {
            a.shut_down_when_terminated = true;
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

#[tokio::test]
async fn three_freezes_leave_no_spread_between_applications() {
    let prefix = unique("freezesync");
    let cfg = config();
    let mut apps = Vec::new();
    for name in ["alpha", "bravo", "charlie"] {
        apps.push(
            ManagedApplication::start_up(name, &prefix, &cfg, options())
                .await
                .unwrap(),
        );
    }
    let recorders: Vec<Arc<RecordingObserver>> = apps
        .iter()
        .map(|a| {
            let r = Arc::new(RecordingObserver::with_filters(["mode"]));
            a.app().simulator().add_observer(r.clone());
            r
        })
        .collect();
    let manager = Manager::start_up("manager", &prefix, &cfg, options())
        .await
        .unwrap();
    let plan = TestPlan::from_config(cfg.execution.manager.as_ref().unwrap()).unwrap();
    let start = plan.sim_start_time;
    let m2 = manager.clone();
    let run = tokio::spawn(async move { m2.execute_test_plan(plan).await });
    let msim = manager.app().simulator().clone();
    tokio::time::timeout(Duration::from_secs(20), msim.wait_for_mode(Mode::Executing))
        .await
        .unwrap();

    for k in 1..=3 {
        manager
            .freeze(
                start + TimeDelta::seconds(10 * k),
                Some(NostDuration::microseconds(300_000)),
            )
            .await
            .unwrap();
    }
    // Each application paused three times and is executing again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let pauses: Vec<usize> = recorders
            .iter()
            .map(|r| r.modes().iter().filter(|m| **m == Mode::Paused).count())
            .collect();
        let executing = apps
            .iter()
            .all(|a| a.app().simulator().mode() == Mode::Executing);
        if pauses == [3, 3, 3] && executing {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pauses {pauses:?}; modes {:?}",
            recorders.iter().map(|r| r.modes()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(msim.mode() == Mode::Executing, "{:?}", msim.mode());

    // One wallclock instant, four mappings.
    let w = msim.wallclock_now();
    let mut times = vec![msim.scenario_at(w)];
    times.extend(apps.iter().map(|a| a.app().simulator().scenario_at(w)));
    let spread = *times.iter().max().unwrap() - *times.iter().min().unwrap();
    println!("scenario-time spread after three freezes: {spread}");
    assert!(
        spread <= TimeDelta::milliseconds(1),
        "applications drifted apart: spread {spread} ({times:?})"
    );
    for a in &apps {
        assert_eq!(
            a.app().simulator().wallclock_epoch(),
            msim.wallclock_epoch()
        );
        assert_eq!(
            a.app().simulator().simulation_epoch(),
            msim.simulation_epoch()
        );
    }

    let summary = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    for a in &apps {
        tokio::time::timeout(Duration::from_secs(10), a.wait_terminated())
            .await
            .unwrap();
        assert_eq!(a.app().simulator().time(), summary.sim_stop_time.unwrap());
    }
    manager.app().shut_down().await;
}
