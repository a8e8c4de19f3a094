//! A manager and two managed applications on the local broker finish their
//! scenario exactly as without hostile traffic, while malformed and absurd
//! NOS-T messages flood every routing key they listen to (invalid JSON,
//! wrong types, non-positive factors, absurd durations and dates, 2 MiB and
//! 5 MiB bodies, 5,000-deep JSON, invalid UTF-8).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use nost_app::{Application, ManagedApplication, Manager, StartOptions, TestPlan};
use nost_config::{Config, Credentials, NostDuration};
use nost_testkit::unique;

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
            m.sim_stop_time = Some(start + chrono::TimeDelta::seconds(120));
            m.time_scale_factor = 30.0;
            m.command_lead = NostDuration::microseconds(500_000);
            m.required_apps = vec!["alpha".into(), "bravo".into()];
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

const T: &str = "2024-01-01T12:00:30Z";

/// Bodies no receiver may act on.
fn hostile_bodies() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "",
        "not json",
        "{",
        "[]",
        "null",
        "42",
        r#"{"taskingParameters":5}"#,
        r#"{"taskingParameters":{"simStartTime":1e999,"simStopTime":"x"}}"#,
        r#"{"taskingParameters":{"simStartTime":"99999-01-01T00:00:00Z","simStopTime":"2024-01-01T12:02:00Z"}}"#,
        r#"{"taskingParameters":{"simStartTime":"2024-01-01T12:02:00Z","simStopTime":"2024-01-01T12:00:00Z"}}"#,
        r#"{"taskingParameters":{"startTime":-1e300,"timeScalingFactor":60}}"#,
        r#"{"taskingParameters":{"timeScalingFactor":-1,"simUpdateTime":"2024-01-01T12:00:30Z"}}"#,
        r#"{"taskingParameters":{"timeScalingFactor":0,"simUpdateTime":"2024-01-01T12:00:30Z","requestingApp":"m"}}"#,
        r#"{"taskingParameters":{"timeScalingFactor":"NaN","simUpdateTime":"2024-01-01T12:00:30Z","requestingApp":"m"}}"#,
        r#"{"taskingParameters":{"timeScalingFactor":1e999,"simUpdateTime":"2024-01-01T12:00:30Z","requestingApp":"m"}}"#,
        r#"{"taskingParameters":{"simStopTime":"0000-00-00T00:00:00Z"}}"#,
        r#"{"taskingParameters":{"simStopTime":9.2e18}}"#,
        r#"{"taskingParameters":{"resumeTime":"1969-12-31T23:59:59Z","simResumeTime":"2024-01-01T12:00:30Z"}}"#,
        r#"{"name":"alpha","properties":{"ready":"yes"}}"#,
        r#"{"name":"alpha","properties":{"mode":"EXPLODING"}}"#,
        r#"{"name":7,"properties":{"simTime":"2024-01-01T12:00:30Z","time":"x"}}"#,
        r#"{"taskingParameters":{"requestingApp":"m","simResumeTime":"2024-01-01T12:00:30Z","tolerance":"-PT5S"}}"#,
        r#"{"taskingParameters":{"requestingApp":"m","simResumeTime":"2024-01-01T12:00:30Z","tolerance":10000000000000000}}"#,
        r#"{"taskingParameters":{"simResumeTime":"2024-01-01T12:00:30Z"}}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    for duration in [
        "10000000000000000",
        "-10000000000000000",
        "1e300",
        "\"P99999999999Y\"",
        "\"-PT5S\"",
        "\"9999999999999999999:00:00\"",
        "true",
    ] {
        v.push(
            format!(
                r#"{{"taskingParameters":{{"simFreezeTime":"{T}","freezeDuration":{duration}}}}}"#
            )
            .into_bytes(),
        );
        v.push(
            format!(r#"{{"taskingParameters":{{"simFreezeTime":"{T}","freezeTime":"{T}","freezeDuration":{duration},"requestingApp":"m"}}}}"#)
                .into_bytes(),
        );
    }
    v.push(format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes());
    // Deep arrays where each message type expects a value (a deep object
    // under an unknown key would be skipped, and `{"taskingParameters":{}}`
    // is a valid start command).
    for field in [
        "simStartTime",
        "simStopTime",
        "timeScalingFactor",
        "simFreezeTime",
        "resumeTime",
        "requestingApp",
    ] {
        v.push(
            format!(
                r#"{{"taskingParameters":{{"{field}":{}{}}}}}"#,
                "[".repeat(5000),
                "]".repeat(5000)
            )
            .into_bytes(),
        );
    }
    v.push(
        format!(
            r#"{{"name":"alpha","properties":{}{}}}"#,
            "[".repeat(5000),
            "]".repeat(5000)
        )
        .into_bytes(),
    );
    v.push(format!(r#"{{"taskingParameters":"{}"}}"#, "a".repeat(2 << 20)).into_bytes());
    v.push(vec![0xff, 0xfe, b'{', 0x80]);
    v
}

/// Whether `body` is a valid NOS-T message of the routing key's topic.
fn is_valid(key: &str, body: &[u8]) -> bool {
    use nost_app::messages::*;
    let topic: Vec<&str> = key.splitn(3, '.').collect();
    match topic.get(2).copied().unwrap_or_default() {
        "init" => InitCommand::from_json(body).is_ok(),
        "start" => StartCommand::from_json(body).is_ok(),
        "stop" => StopCommand::from_json(body).is_ok(),
        "update" => UpdateCommand::from_json(body).is_ok(),
        "freeze" => FreezeCommand::from_json(body).is_ok(),
        "resume" => ResumeCommand::from_json(body).is_ok(),
        "request.update" => UpdateRequest::from_json(body).is_ok(),
        "request.resume" => ResumeRequest::from_json(body).is_ok(),
        "request.freeze" => FreezeRequest::from_json(body).is_ok(),
        "status.ready" => ReadyStatus::from_json(body).is_ok(),
        "status.mode" => ModeStatus::from_json(body).is_ok(),
        "status.time" => TimeStatus::from_json(body).is_ok(),
        _ => false,
    }
}

/// Every key the manager and the managed applications listen to.
fn keys(prefix: &str) -> Vec<String> {
    let mut k: Vec<String> = ["init", "start", "stop", "update", "freeze", "resume"]
        .iter()
        .map(|t| format!("{prefix}.manager.{t}"))
        .collect();
    for t in [
        "request.update",
        "request.resume",
        "request.freeze",
        "status.ready",
        "status.time",
    ] {
        k.push(format!("{prefix}.mallory.{t}"));
        k.push(format!("{prefix}.alpha.{t}"));
    }
    k
}

#[tokio::test]
async fn a_scenario_finishes_as_without_a_flood_of_hostile_messages() {
    let prefix = unique("flood");
    let cfg = config();
    let recorder = Application::start_up("recorder", &prefix, &cfg, options())
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let hostile_seen = Arc::new(AtomicUsize::new(0));
    let (s, h) = (seen.clone(), hostile_seen.clone());
    recorder
        .add_pattern_callback("#", move |m| {
            let (s, h) = (s.clone(), h.clone());
            async move {
                if is_valid(&m.routing_key, &m.body) {
                    let text = String::from_utf8_lossy(&m.body).into_owned();
                    s.lock().unwrap().push((m.routing_key.clone(), text));
                } else {
                    h.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
        })
        .await
        .unwrap();

    let mut apps = Vec::new();
    for name in ["alpha", "bravo"] {
        apps.push(
            ManagedApplication::start_up(name, &prefix, &cfg, options())
                .await
                .unwrap(),
        );
    }
    let manager = Manager::start_up("manager", &prefix, &cfg, options())
        .await
        .unwrap();

    // The flood: every hostile body on every key, in rounds, until the run ends.
    let conn = Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let bodies = hostile_bodies();
    let keys = keys(&prefix);
    let done = tokio_util::sync::CancellationToken::new();
    let stop = done.clone();
    let (p, published) = (prefix.clone(), Arc::new(AtomicUsize::new(0)));
    let count = published.clone();
    let flood = tokio::spawn(async move {
        let mut round = 0;
        while !stop.is_cancelled() {
            for key in &keys {
                for body in &bodies {
                    // The 2 MiB body only in the first round; a body that is
                    // a valid message of this key's topic (e.g. a reversed
                    // init is a fine stop command) is not hostile there.
                    if (body.len() > 1 << 20 && round > 0) || is_valid(key, body) {
                        continue;
                    }
                    ch.basic_publish(
                        p.as_str().into(),
                        key.as_str().into(),
                        BasicPublishOptions::default(),
                        body,
                        BasicProperties::default(),
                    )
                    .await
                    .unwrap()
                    .await
                    .unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            if round == 0 {
                // One body above the 4 MiB max_body_size on a command key.
                let big = vec![b'{'; 5 << 20];
                ch.basic_publish(
                    p.as_str().into(),
                    format!("{p}.manager.start").as_str().into(),
                    BasicPublishOptions::default(),
                    &big,
                    BasicProperties::default(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
                count.fetch_add(1, Ordering::Relaxed);
            }
            round += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        round
    });

    let plan = TestPlan::from_config(cfg.execution.manager.as_ref().unwrap()).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(90), manager.execute_test_plan(plan))
        .await
        .expect("the plan finishes despite the flood")
        .unwrap();
    for app in &apps {
        tokio::time::timeout(Duration::from_secs(20), app.wait_terminated())
            .await
            .expect("each managed application terminates");
        assert_eq!(app.app().simulator().time(), summary.sim_stop_time.unwrap());
    }
    done.cancel();
    let rounds = flood.await.unwrap();
    let published = published.load(Ordering::Relaxed);
    assert!(
        rounds >= 2,
        "the flood lasted the whole run ({rounds} rounds)"
    );
    assert_eq!(summary.ready.len(), 2, "{:?}", summary.ready);
    assert!(summary.ready.values().all(|r| *r));
    assert_eq!(summary.inits_sent, 1, "the apps answered the first init");

    // The recorder (whose max_body_size is the default 4 MiB too) saw every
    // hostile message but the 5 MiB one, and none of them was valid.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while hostile_seen.load(Ordering::Relaxed) < published - 1
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        hostile_seen.load(Ordering::Relaxed),
        published - 1,
        "hostile messages seen by the recorder (published {published})"
    );

    // Each managed app went through the modes exactly once, as without the flood.
    let seen = seen.lock().unwrap().clone();
    for name in ["alpha", "bravo"] {
        let modes: Vec<&str> = seen
            .iter()
            .filter(|(k, _)| k == &format!("{prefix}.{name}.status.mode"))
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
        .map(|m| format!(r#"{{"name":"{name}","properties":{{"mode":"{m}"}}}}"#))
        .collect();
        assert_eq!(modes, expected, "{name}");
        // 120 s of scenario in 10 s time-status steps: 12 steps, the first
        // one twice (nost_tools' cadence), never more.
        let times = seen
            .iter()
            .filter(|(k, _)| k == &format!("{prefix}.{name}.status.time"))
            .count();
        assert!((12..=13).contains(&times), "{name}: {times} time statuses");
    }
    let ready = seen
        .iter()
        .filter(|(k, _)| k.ends_with(".status.ready"))
        .count();
    assert_eq!(ready, 2, "one ready per app");
    eprintln!("flood: {published} hostile messages in {rounds} rounds");
    manager.app().shut_down().await;
    recorder.shut_down().await;
    let _ = conn.close(200, "done".into()).await;
}
