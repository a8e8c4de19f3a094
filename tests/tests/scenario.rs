//! A whole NOS-T run on the local broker: a Manager and three
//! ManagedApplications go through init, start and stop to TERMINATED.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nost_app::{Application, ManagedApplication, Manager, StartOptions, TestPlan};
use nost_config::{Config, Credentials, NostDuration};
use nost_testkit::{eventually, unique};

fn config() -> Config {
    let start = chrono::DateTime::parse_from_rfc3339("2024-01-01T12:00:00Z")
        .unwrap()
        .to_utc();
    Config::builder()
        .rabbitmq(|r| {
            r.host = "127.0.0.1".into();
            r.reconnect_delay = 1;
        })
        .manager(|m| {
            m.sim_start_time = Some(start);
            m.sim_stop_time = Some(start + chrono::TimeDelta::seconds(60));
            m.time_scale_factor = 30.0;
            m.command_lead = NostDuration::microseconds(500_000);
            m.required_apps = vec!["alpha".into(), "bravo".into(), "charlie".into()];
            m.init_retry_delay_s = 2;
            m.time_status_step = Some(NostDuration::seconds(10));
        })
        .managed_application("default", |a| {
            a.time_status_step = Some(NostDuration::seconds(10));
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
async fn a_manager_runs_three_managed_applications_to_terminated() {
    let prefix = unique("scenario");
    let cfg = config();
    // A recorder sees every message under the prefix.
    let recorder = Application::start_up("recorder", &prefix, &cfg, options())
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let s = seen.clone();
    recorder
        .add_pattern_callback("#", move |m| {
            let s = s.clone();
            async move {
                s.lock()
                    .unwrap()
                    .push((m.routing_key.clone(), m.text()?.to_owned()));
                Ok(())
            }
        })
        .await
        .unwrap();

    let mut apps = Vec::new();
    for name in ["alpha", "bravo", "charlie"] {
        apps.push(
            ManagedApplication::start_up(name, &prefix, &cfg, options())
                .await
                .unwrap(),
        );
    }
    let manager = Manager::start_up("manager", &prefix, &cfg, options())
        .await
        .unwrap();
    let plan = TestPlan::from_config(cfg.execution.manager.as_ref().unwrap()).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(60), manager.execute_test_plan(plan))
        .await
        .expect("the plan finishes")
        .unwrap();
    assert_eq!(summary.ready.len(), 3, "{:?}", summary.ready);
    for app in &apps {
        tokio::time::timeout(Duration::from_secs(10), app.wait_terminated())
            .await
            .unwrap();
        assert_eq!(app.app().simulator().time(), summary.sim_stop_time.unwrap());
    }
    let keys = [
        "manager.init",
        "manager.start",
        "manager.stop",
        "alpha.status.ready",
        "bravo.status.ready",
        "charlie.status.ready",
        "alpha.status.mode",
        "alpha.status.time",
        "manager.status.mode",
        "manager.status.time",
    ];
    // Wait until the recorder has them all (and alpha's last mode), then check.
    let alpha_terminated = r#"{"name":"alpha","properties":{"mode":"TERMINATED"}}"#;
    eventually(Duration::from_secs(10), || {
        let seen = seen.lock().unwrap();
        keys.iter()
            .all(|key| seen.iter().any(|(k, _)| k == &format!("{prefix}.{key}")))
            && seen.iter().any(|(_, b)| b == alpha_terminated)
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    let has = |key: &str| seen.iter().any(|(k, _)| k == &format!("{prefix}.{key}"));
    for key in keys {
        assert!(
            has(key),
            "{key} not seen; saw {:?}",
            seen.iter().map(|(k, _)| k).collect::<Vec<_>>()
        );
    }
    let modes: Vec<&str> = seen
        .iter()
        .filter(|(k, _)| k == &format!("{prefix}.alpha.status.mode"))
        .map(|(_, b)| b.as_str())
        .collect();
    let expected: Vec<String> = [
        "INITIALIZING",
        "INITIALIZED",
        "EXECUTING",
        "TERMINATING",
        "TERMINATED",
    ]
    .iter()
    .map(|m| format!(r#"{{"name":"alpha","properties":{{"mode":"{m}"}}}}"#))
    .collect();
    assert_eq!(modes, expected);
    manager.app().shut_down().await;
    recorder.shut_down().await;
}
