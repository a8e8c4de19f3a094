//! Status messages carry the application's description (left out when
//! there is none), in nost_tools' field order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeDelta;
use nost_app::simulator::RunPlan;
use nost_app::{Application, Message, StartOptions};
use nost_config::{Config, Credentials, NostDuration};
use nost_testkit::unique;

fn options() -> StartOptions {
    StartOptions {
        auth: Credentials::basic("guest", "guest").into(),
        set_offset: Some(false),
        ..Default::default()
    }
}

#[tokio::test]
async fn ready_mode_and_time_statuses_carry_the_description() {
    let prefix = unique("description");
    let cfg = Config::builder()
        .rabbitmq(|r| {
            r.host = "127.0.0.1".into();
            r.port = std::env::var("NOST_TEST_AMQP_PORT")
                .map(|p| p.parse().unwrap())
                .unwrap_or(5672);
        })
        .build()
        .unwrap();
    let recorder = Application::start_up("recorder", &prefix, &cfg, options())
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let s = seen.clone();
    recorder
        .add_pattern_callback("*.status.*", move |m: Message| {
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
    let sat = Application::start_up(
        "sat",
        &prefix,
        &cfg,
        StartOptions {
            description: Some("a \"quoted\" satellite".into()),
            time_status_step: Some(NostDuration::seconds(1)),
            ..options()
        },
    )
    .await
    .unwrap();
    let plain = Application::start_up("plain", &prefix, &cfg, options())
        .await
        .unwrap();
    sat.ready().await.unwrap();
    plain.ready().await.unwrap();
    let t0 = chrono::Utc::now();
    sat.simulator()
        .run(RunPlan::new(t0, TimeDelta::seconds(2)).time_scale_factor(100.0))
        .await
        .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let has = |k: &str, seen: &[(String, String)]| seen.iter().any(|(key, _)| key.ends_with(k));
    loop {
        let s = seen.lock().unwrap().clone();
        if has("sat.status.ready", &s)
            && has("plain.status.ready", &s)
            && s.iter()
                .filter(|(k, _)| k.ends_with("sat.status.mode"))
                .count()
                == 5
            && has("sat.status.time", &s)
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.lock().unwrap().clone();
    for (key, body) in &seen {
        if key.contains(".sat.") {
            assert!(
                body.starts_with(
                    r#"{"name":"sat","description":"a \"quoted\" satellite","properties":"#
                ),
                "{key}: {body}"
            );
        } else if key.contains(".plain.") {
            assert_eq!(body, r#"{"name":"plain","properties":{"ready":true}}"#);
        }
    }
    sat.shut_down().await;
    plain.shut_down().await;
    recorder.shut_down().await;
}
