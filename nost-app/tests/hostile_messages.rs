//! Hostile message bodies are typed errors naming what is wrong, never a
//! panic; deep JSON is refused by serde_json's recursion limit; a
//! `time_status_init` years before the start does not replay every step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use nost_app::messages::*;
use nost_app::simulator::{
    MAX_CATCH_UP, Mode, RunPlan, ScenarioSchedule, SimEvent, Simulator, TimeStatusPublisher,
    TokioClock,
};

const T: &str = "2024-01-01T12:00:00Z";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(T).unwrap().to_utc()
}

fn all_parsers(body: &[u8]) -> Vec<Result<(), MessageError>> {
    vec![
        InitCommand::from_json(body).map(drop),
        StartCommand::from_json(body).map(drop),
        StopCommand::from_json(body).map(drop),
        UpdateCommand::from_json(body).map(drop),
        FreezeCommand::from_json(body).map(drop),
        ResumeCommand::from_json(body).map(drop),
        FreezeRequest::from_json(body).map(drop),
        ResumeRequest::from_json(body).map(drop),
        UpdateRequest::from_json(body).map(drop),
        ReadyStatus::from_json(body).map(drop),
        ModeStatus::from_json(body).map(drop),
        TimeStatus::from_json(body).map(drop),
    ]
}

#[test]
fn json_nested_5000_deep_is_refused_by_the_recursion_limit() {
    for body in [
        format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
        format!(
            r#"{{"taskingParameters":{{"simStartTime":{}{}}}}}"#,
            "[".repeat(5000),
            "]".repeat(5000)
        ),
        format!(
            r#"{{"name":"a","properties":{}{}}}"#,
            "[".repeat(5000),
            "]".repeat(5000)
        ),
    ] {
        for (i, r) in all_parsers(body.as_bytes()).into_iter().enumerate() {
            let Err(e) = r else {
                panic!("parser {i} accepts {}", &body[..60]);
            };
            // Refused one way or another (recursion limit, type, missing
            // field): what matters is that nothing blows up.
            let _ = e.to_string();
        }
    }
    // Values the message types skip (unknown keys) are skipped without
    // recursion: a million levels do not overflow the stack.
    let skipped = format!(
        r#"{{"x":{}{},"name":"a","properties":{{"mode":"PAUSED"}}}}"#,
        "[".repeat(1_000_000),
        "]".repeat(1_000_000)
    );
    assert!(ModeStatus::from_json(skipped.as_bytes()).is_ok());
    // Where JSON is read into a tree (`Message::json`, Keycloak's answers),
    // serde_json's recursion limit refuses 128 levels and more.
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(serde_json::from_str::<serde_json::Value>(&nested(127)).is_ok());
    let e = serde_json::from_str::<serde_json::Value>(&nested(128)).unwrap_err();
    assert!(e.to_string().contains("recursion limit"), "{e}");
    let e = serde_json::from_str::<serde_json::Value>(&nested(5000)).unwrap_err();
    assert!(e.to_string().contains("recursion limit"), "{e}");
}

#[test]
fn absurd_durations_in_freeze_and_resume_are_errors_naming_the_field() {
    for duration in [
        "10000000000000000",
        "-1e300",
        "\"-PT5S\"",
        "\"P99999999999999Y\"",
    ] {
        let body = format!(
            r#"{{"taskingParameters":{{"simFreezeTime":"{T}","freezeDuration":{duration}}}}}"#
        );
        let e = FreezeCommand::from_json(body.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("freezeDuration"), "{e}");
        let req = format!(
            r#"{{"taskingParameters":{{"simFreezeTime":"{T}","freezeTime":"{T}","requestingApp":"m","freezeDuration":{duration}}}}}"#
        );
        let e = FreezeRequest::from_json(req.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("freezeDuration"), "{e}");
    }
    for tol in ["10000000000000000", "\"-PT1S\"", "-9223372036854775808"] {
        let body = format!(
            r#"{{"taskingParameters":{{"requestingApp":"m","simResumeTime":"{T}","tolerance":{tol}}}}}"#
        );
        let e = ResumeRequest::from_json(body.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("tolerance"), "{tol}: {e}");
    }
    // In range it parses; a freeze request near the end of time has no resume time.
    let body =
        format!(r#"{{"taskingParameters":{{"simFreezeTime":"{T}","freezeDuration":"P1000Y"}}}}"#);
    assert!(FreezeCommand::from_json(body.as_bytes()).is_ok());
    let near_end = DateTime::<Utc>::MAX_UTC - TimeDelta::seconds(1);
    let r = FreezeRequest::new(
        t0(),
        near_end,
        Some(nost_config::NostDuration::seconds(10)),
        "m",
    );
    assert_eq!(r.tasking_parameters.resume_time, None);
}

#[test]
fn absurd_factors_and_dates_are_refused() {
    for body in [
        format!(r#"{{"taskingParameters":{{"timeScalingFactor":0,"simUpdateTime":"{T}"}}}}"#),
        format!(r#"{{"taskingParameters":{{"timeScalingFactor":-1,"simUpdateTime":"{T}"}}}}"#),
        format!(r#"{{"taskingParameters":{{"timeScalingFactor":1e999,"simUpdateTime":"{T}"}}}}"#),
        format!(r#"{{"taskingParameters":{{"timeScalingFactor":"NaN","simUpdateTime":"{T}"}}}}"#),
        r#"{"taskingParameters":{"timeScalingFactor":2,"simUpdateTime":"99999-01-01T00:00:00Z"}}"#
            .into(),
        r#"{"taskingParameters":{"timeScalingFactor":2,"simUpdateTime":1e300}}"#.into(),
        r#"{"taskingParameters":{"timeScalingFactor":2,"simUpdateTime":-9.2e18}}"#.into(),
    ] {
        assert!(UpdateCommand::from_json(body.as_bytes()).is_err(), "{body}");
    }
    let reversed = r#"{"taskingParameters":{"simStartTime":"2024-01-02T00:00:00Z","simStopTime":"2024-01-01T00:00:00Z"}}"#;
    let e = InitCommand::from_json(reversed.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("simStopTime"), "{e}");
    let e = StartCommand::from_json(reversed.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("simStopTime"), "{e}");
}

#[test]
fn a_schedule_years_behind_reports_a_bounded_number_of_due_times() {
    let init = t0();
    let years_before = init - TimeDelta::days(365 * 30);
    let mut s = ScenarioSchedule::new(TimeDelta::seconds(1), Some(years_before)).unwrap();
    let initialized = SimEvent::ModeChanged {
        old: Mode::Initializing,
        new: Mode::Initialized,
    };
    assert!(s.on_event(&initialized, init).is_empty());
    let step = SimEvent::TimeChanged {
        old: init,
        new: init + TimeDelta::seconds(10),
    };
    let due = s.on_event(&step, init);
    // One for the 30 years before the start plus the ten seconds of the run.
    assert_eq!(due.len(), 11, "{due:?}");
    assert_eq!(due.last().copied(), Some(init + TimeDelta::seconds(10)));
    // A single event far ahead is capped, the latest due times kept.
    let year = init + TimeDelta::days(365);
    let due = s.on_event(
        &SimEvent::TimeChanged {
            old: init,
            new: year,
        },
        init,
    );
    assert_eq!(due.len(), MAX_CATCH_UP);
    assert_eq!(due.last().copied(), Some(year));
    assert_eq!(s.next_due(), Some(year + TimeDelta::seconds(1)));
}

#[tokio::test(start_paused = true)]
async fn a_time_status_init_years_before_the_start_does_not_flood_statuses() {
    let start = t0();
    let sim = Simulator::with_clock(Arc::new(TokioClock::starting_at(start)));
    let sent = Arc::new(AtomicUsize::new(0));
    let s = sent.clone();
    let publisher = TimeStatusPublisher::new(
        TimeDelta::seconds(1),
        Some(start - TimeDelta::days(365 * 10)),
        move |_| {
            s.fetch_add(1, Ordering::Relaxed);
        },
    )
    .unwrap();
    sim.add_observer(Arc::new(publisher));
    sim.run(RunPlan::new(start, TimeDelta::seconds(5)))
        .await
        .unwrap();
    // One status for the ten years before the start, one per second after.
    assert_eq!(sent.load(Ordering::Relaxed), 6);
}
