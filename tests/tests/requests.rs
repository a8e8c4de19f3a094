//! Requests (`request_freeze` now, `request_update`, `request_resume` with
//! the default tolerance) from a managed application to a Manager on the
//! local broker, and an entity added before `start_up` and updated by a
//! message callback during the run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nost_app::simulator::{Entity, EntityBase, Mode, Simulator};
use nost_app::{Application, ManagedApplication, Manager, Message, StartOptions, TestPlan};
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
            m.sim_stop_time = Some(start + chrono::TimeDelta::seconds(120));
            m.time_scale_factor = 20.0;
            m.command_lead = NostDuration::microseconds(500_000);
            m.required_apps = vec!["alpha".into()];
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

/// Counts pings (set by a message callback) and steps.
struct Pinged {
    base: EntityBase,
    pings: Vec<String>,
    steps: u32,
}

impl Entity for Pinged {
    fn base(&self) -> &EntityBase {
        &self.base
    }
    fn base_mut(&mut self) -> &mut EntityBase {
        &mut self.base
    }
    fn tock(&mut self) {
        self.base.tock();
        self.steps += 1;
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn requests_reach_the_manager_and_entities_follow_callbacks() {
    let prefix = unique("requests");
    let cfg = config();
    let recorder = Application::start_up("recorder", &prefix, &cfg, options())
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let s = seen.clone();
    recorder
        .add_pattern_callback("#", move |m: Message| {
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

    // An entity added before start_up.
    let sim = Simulator::new();
    sim.add_entity(Pinged {
        base: EntityBase::new("pinged"),
        pings: Vec::new(),
        steps: 0,
    })
    .unwrap();
    let alpha = ManagedApplication::start_up(
        "alpha",
        &prefix,
        &cfg,
        StartOptions {
            simulator: Some(sim),
            ..options()
        },
    )
    .await
    .unwrap();
    // The on_fire pattern: a callback finds the entity and updates it.
    let a = alpha.app().clone();
    alpha
        .app()
        .add_message_callback("recorder", "ping", move |m: Message| {
            let a = a.clone();
            async move {
                let text = m.text()?.to_owned();
                a.simulator()
                    .with_entity::<Pinged, _>("pinged", |p| p.pings.push(text))
                    .ok_or("no entity named pinged")?;
                Ok(())
            }
        })
        .await
        .unwrap();

    let manager = Manager::start_up("manager", &prefix, &cfg, options())
        .await
        .unwrap();
    let plan = TestPlan::from_config(cfg.execution.manager.as_ref().unwrap()).unwrap();
    let m2 = manager.clone();
    let run = tokio::spawn(async move { m2.execute_test_plan(plan).await });

    let asim = alpha.app().simulator().clone();
    tokio::time::timeout(Duration::from_secs(20), asim.wait_for_mode(Mode::Executing))
        .await
        .unwrap();
    recorder.send_message("ping", "one").await.unwrap();

    // Freeze now, for 1 s of wallclock.
    alpha
        .request_freeze(None, Some(NostDuration::seconds(1)))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), asim.wait_for_mode(Mode::Paused))
        .await
        .expect("alpha paused by the manager's freeze");
    let frozen_at = asim.time();
    tokio::time::timeout(Duration::from_secs(10), asim.wait_for_mode(Mode::Executing))
        .await
        .expect("resumed after the duration");
    assert!(asim.time() >= frozen_at);

    // Update the factor through the manager.
    alpha.request_update(40.0, None).await.unwrap();
    until("alpha at factor 40", || asim.time_scale_factor() == 40.0).await;
    until("manager at factor 40", || {
        manager.app().simulator().time_scale_factor() == 40.0
    })
    .await;
    recorder.send_message("ping", "two").await.unwrap();

    // A resume request while running carries the default tolerance.
    alpha.request_resume(Some(asim.time()), None).await.unwrap();

    let summary = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the plan finishes")
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), alpha.wait_terminated())
        .await
        .unwrap();
    assert_eq!(asim.time(), summary.sim_stop_time.unwrap());
    let pinged = asim.entity::<Pinged>("pinged").unwrap();
    assert_eq!(pinged.lock().pings, ["one", "two"]);
    assert_eq!(pinged.lock().steps, 120, "one tock per 1 s step");
    assert_eq!(pinged.lock().base().time(), summary.sim_stop_time);

    until("the resume request is recorded", || {
        seen.lock()
            .unwrap()
            .iter()
            .any(|(k, _)| k.ends_with("alpha.request.resume"))
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    let bodies = |key: &str| -> Vec<serde_json::Value> {
        seen.iter()
            .filter(|(k, _)| *k == format!("{prefix}.{key}"))
            .map(|(_, b)| serde_json::from_str(b).unwrap())
            .collect()
    };
    let freeze_req = bodies("alpha.request.freeze");
    assert_eq!(freeze_req.len(), 1);
    let p = &freeze_req[0]["taskingParameters"];
    assert_eq!(p["requestingApp"], "alpha");
    assert_eq!(p["freezeDuration"], "PT1S");
    assert!(p["simFreezeTime"].is_string() && p["freezeTime"].is_string());
    assert!(p["resumeTime"].is_string());
    assert_eq!(bodies("manager.freeze").len(), 1);
    assert!(!bodies("manager.resume").is_empty());
    let update_req = bodies("alpha.request.update");
    assert_eq!(
        update_req[0]["taskingParameters"]["timeScalingFactor"],
        40.0
    );
    assert!(update_req[0]["taskingParameters"]["simUpdateTime"].is_null());
    assert_eq!(bodies("manager.update").len(), 1);
    let resume_req = bodies("alpha.request.resume");
    assert_eq!(resume_req[0]["taskingParameters"]["tolerance"], "PT12H");
    let modes: Vec<String> = bodies("alpha.status.mode")
        .iter()
        .map(|b| b["properties"]["mode"].as_str().unwrap().to_owned())
        .collect();
    assert!(modes.iter().any(|m| m == "PAUSED"), "{modes:?}");
    manager.app().shut_down().await;
    recorder.shut_down().await;
}
