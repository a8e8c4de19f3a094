#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use nost_config::NostDuration;

use super::*;

fn t(h: u32, m: u32, s: u32, us: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, h, m, s).unwrap() + TimeDelta::microseconds(us)
}

/// Serializes to exactly `sample` and `sample` parses back to `msg`.
fn exact<M: NostMessage + PartialEq + std::fmt::Debug>(msg: M, sample: &str) {
    assert_eq!(msg.to_json(), sample);
    assert_eq!(M::from_json(sample.as_bytes()).unwrap(), msg, "{sample}");
}

#[test]
fn the_twelve_samples_of_section_4_2() {
    exact(
        InitCommand::new(t(12, 0, 0, 0), t(13, 0, 0, 0), vec!["a".into(), "b".into()]),
        r#"{"taskingParameters":{"simStartTime":"2024-01-01T12:00:00Z","simStopTime":"2024-01-01T13:00:00Z","requiredApps":["a","b"]}}"#,
    );
    exact(
        StartCommand::new(
            Some(t(11, 59, 55, 572_874)),
            Some(t(12, 0, 0, 0)),
            Some(t(13, 0, 0, 0)),
            60.0,
        ),
        r#"{"taskingParameters":{"startTime":"2024-01-01T11:59:55.572874Z","simStartTime":"2024-01-01T12:00:00Z","simStopTime":"2024-01-01T13:00:00Z","timeScalingFactor":60.0}}"#,
    );
    exact(
        StopCommand::new(t(12, 0, 0, 0)),
        r#"{"taskingParameters":{"simStopTime":"2024-01-01T12:00:00Z"}}"#,
    );
    exact(
        UpdateCommand::new(2.0, t(12, 0, 0, 0)),
        r#"{"taskingParameters":{"timeScalingFactor":2.0,"simUpdateTime":"2024-01-01T12:00:00Z"}}"#,
    );
    exact(
        FreezeCommand::new(t(12, 0, 0, 0), None),
        r#"{"taskingParameters":{"simFreezeTime":"2024-01-01T12:00:00Z","freezeDuration":null}}"#,
    );
    exact(
        ResumeCommand::new(t(12, 30, 0, 573_114), t(12, 0, 0, 0)),
        r#"{"taskingParameters":{"resumeTime":"2024-01-01T12:30:00.573114Z","simResumeTime":"2024-01-01T12:00:00Z"}}"#,
    );
    let freeze_req = FreezeRequest::new(
        t(12, 0, 0, 0),
        t(12, 0, 0, 0),
        Some(NostDuration::seconds(300)),
        "x",
    );
    assert_eq!(
        freeze_req.tasking_parameters.resume_time,
        Some(t(12, 5, 0, 0))
    );
    exact(
        freeze_req,
        r#"{"taskingParameters":{"simFreezeTime":"2024-01-01T12:00:00Z","freezeTime":"2024-01-01T12:00:00Z","freezeDuration":"PT5M","resumeTime":"2024-01-01T12:05:00Z","requestingApp":"x"}}"#,
    );
    exact(
        ResumeRequest::new("x", None, None),
        r#"{"taskingParameters":{"requestingApp":"x","simResumeTime":null,"tolerance":null}}"#,
    );
    exact(
        UpdateRequest::new(10.0, None, "x"),
        r#"{"taskingParameters":{"timeScalingFactor":10.0,"simUpdateTime":null,"requestingApp":"x"}}"#,
    );
    exact(
        ReadyStatus::new("app"),
        r#"{"name":"app","properties":{"ready":true}}"#,
    );
    let mut mode = ModeStatus::new("app", Mode::Executing);
    mode.description = Some("d".into());
    exact(
        mode,
        r#"{"name":"app","description":"d","properties":{"mode":"EXECUTING"}}"#,
    );
    exact(
        TimeStatus::new("app", t(12, 0, 0, 0), t(12, 0, 1, 573_420)),
        r#"{"name":"app","properties":{"simTime":"2024-01-01T12:00:00Z","time":"2024-01-01T12:00:01.573420Z"}}"#,
    );
}

#[test]
fn naive_and_offset_datetimes_parse_as_utc() {
    let naive = br#"{"taskingParameters":{"simStopTime":"2024-01-01T12:00:00"}}"#;
    assert_eq!(
        StopCommand::from_json(naive).unwrap(),
        StopCommand::new(t(12, 0, 0, 0))
    );
    let frac = br#"{"taskingParameters":{"simStopTime":"2024-01-01T12:00:00.25"}}"#;
    assert_eq!(
        StopCommand::from_json(frac).unwrap(),
        StopCommand::new(t(12, 0, 0, 250_000))
    );
    let offset = br#"{"taskingParameters":{"simStopTime":"2024-01-01T13:00:00+01:00"}}"#;
    assert_eq!(
        StopCommand::from_json(offset).unwrap(),
        StopCommand::new(t(12, 0, 0, 0))
    );
    // Re-serialized as UTC with `Z`.
    assert_eq!(
        StopCommand::from_json(naive).unwrap().to_json(),
        r#"{"taskingParameters":{"simStopTime":"2024-01-01T12:00:00Z"}}"#
    );
}

#[test]
fn snake_case_keys_count_as_missing() {
    let e = StopCommand::from_json(
        br#"{"taskingParameters":{"sim_stop_time":"2024-01-01T12:00:00Z"}}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("simStopTime"), "{e}");
    assert!(e.to_string().contains("StopCommand"), "{e}");
    assert!(
        InitCommand::from_json(
            br#"{"tasking_parameters":{"simStartTime":"2024-01-01T12:00:00Z","simStopTime":"2024-01-01T13:00:00Z"}}"#
        )
        .is_err()
    );
    // For an optional field, the snake_case key is ignored (value is None).
    let s = StartCommand::from_json(
        br#"{"taskingParameters":{"start_time":"2024-01-01T12:00:00Z","time_scaling_factor":5}}"#,
    )
    .unwrap();
    assert_eq!(s, StartCommand::new(None, None, None, 1.0));
}

#[test]
fn unknown_keys_are_ignored_and_defaults_apply() {
    let init = InitCommand::from_json(
        br#"{"extra":1,"taskingParameters":{"simStartTime":"2024-01-01T12:00:00Z","simStopTime":"2024-01-01T13:00:00Z","other":"x"}}"#,
    )
    .unwrap();
    assert!(init.tasking_parameters.required_apps.is_empty());
    let start = StartCommand::from_json(br#"{"taskingParameters":{}}"#).unwrap();
    assert_eq!(start.tasking_parameters.time_scaling_factor, 1.0);
    let ready = ReadyStatus::from_json(br#"{"name":"a","properties":{}}"#).unwrap();
    assert!(ready.properties.ready);
    let int_factor = UpdateCommand::from_json(
        br#"{"taskingParameters":{"timeScalingFactor":60,"simUpdateTime":"2024-01-01T12:00:00Z"}}"#,
    )
    .unwrap();
    assert_eq!(int_factor.tasking_parameters.time_scaling_factor, 60.0);
    assert_eq!(
        int_factor.to_json(),
        r#"{"taskingParameters":{"timeScalingFactor":60.0,"simUpdateTime":"2024-01-01T12:00:00Z"}}"#,
        "floats always carry a decimal part"
    );
}

#[test]
fn factor_must_be_positive() {
    for bad in ["0", "0.0", "-1", "null"] {
        let start = format!(r#"{{"taskingParameters":{{"timeScalingFactor":{bad}}}}}"#);
        assert!(
            StartCommand::from_json(start.as_bytes()).is_err(),
            "start {bad}"
        );
        let update = format!(
            r#"{{"taskingParameters":{{"timeScalingFactor":{bad},"simUpdateTime":"2024-01-01T12:00:00Z"}}}}"#
        );
        assert!(
            UpdateCommand::from_json(update.as_bytes()).is_err(),
            "update {bad}"
        );
        let request =
            format!(r#"{{"taskingParameters":{{"timeScalingFactor":{bad},"requestingApp":"x"}}}}"#);
        assert!(
            UpdateRequest::from_json(request.as_bytes()).is_err(),
            "request {bad}"
        );
    }
    let e = UpdateCommand::from_json(
        br#"{"taskingParameters":{"timeScalingFactor":0,"simUpdateTime":"2024-01-01T12:00:00Z"}}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("greater than 0"), "{e}");
    // Required on update and update request.
    assert!(
        UpdateCommand::from_json(
            br#"{"taskingParameters":{"simUpdateTime":"2024-01-01T12:00:00Z"}}"#
        )
        .is_err()
    );
    assert!(UpdateRequest::from_json(br#"{"taskingParameters":{"requestingApp":"x"}}"#).is_err());
}

#[test]
fn required_fields_are_required() {
    assert!(
        InitCommand::from_json(br#"{"taskingParameters":{"simStartTime":"2024-01-01T12:00:00Z"}}"#)
            .is_err()
    );
    assert!(FreezeCommand::from_json(br#"{"taskingParameters":{"freezeDuration":null}}"#).is_err());
    assert!(
        ResumeCommand::from_json(br#"{"taskingParameters":{"resumeTime":"2024-01-01T12:00:00Z"}}"#)
            .is_err()
    );
    assert!(
        FreezeRequest::from_json(
            br#"{"taskingParameters":{"simFreezeTime":"2024-01-01T12:00:00Z","freezeTime":"2024-01-01T12:00:00Z"}}"#
        )
        .is_err(),
        "requestingApp is required"
    );
    assert!(ResumeRequest::from_json(br#"{"taskingParameters":{}}"#).is_err());
    assert!(ReadyStatus::from_json(br#"{"properties":{"ready":true}}"#).is_err());
    assert!(ModeStatus::from_json(br#"{"name":"a","properties":{}}"#).is_err());
    assert!(ModeStatus::from_json(br#"{"name":"a","properties":{"mode":"RUNNING"}}"#).is_err());
    assert!(
        TimeStatus::from_json(br#"{"name":"a","properties":{"simTime":"2024-01-01T12:00:00Z"}}"#)
            .is_err()
    );
    assert!(StopCommand::from_json(b"not json").is_err());
    assert!(StopCommand::from_json(br#"{"taskingParameters":{"simStopTime":"noon"}}"#).is_err());
}

#[test]
fn freeze_and_resume_times_must_be_after_1970() {
    assert!(
        FreezeCommand::from_json(
            br#"{"taskingParameters":{"simFreezeTime":"1970-01-01T00:00:00Z"}}"#
        )
        .is_err()
    );
    assert!(
        FreezeCommand::from_json(
            br#"{"taskingParameters":{"simFreezeTime":"1969-07-20T20:17:00Z"}}"#
        )
        .is_err()
    );
    assert!(
        FreezeCommand::from_json(
            br#"{"taskingParameters":{"simFreezeTime":"1970-01-01T00:00:01Z"}}"#
        )
        .is_ok()
    );
    assert!(
        ResumeCommand::from_json(
            br#"{"taskingParameters":{"resumeTime":"2024-01-01T12:00:00Z","simResumeTime":"1960-01-01T00:00:00Z"}}"#
        )
        .is_err()
    );
    assert!(
        FreezeRequest::from_json(
            br#"{"taskingParameters":{"simFreezeTime":"1960-01-01T00:00:00Z","freezeTime":"2024-01-01T12:00:00Z","requestingApp":"x"}}"#
        )
        .is_err()
    );
}

#[test]
fn durations_in_every_pydantic_form() {
    for form in [r#""PT90S""#, r#""PT1M30S""#, "90", "90.0", r#""0:01:30""#] {
        let body = format!(
            r#"{{"taskingParameters":{{"simFreezeTime":"2024-01-01T12:00:00Z","freezeDuration":{form}}}}}"#
        );
        let f = FreezeCommand::from_json(body.as_bytes()).unwrap();
        assert_eq!(
            f.tasking_parameters.freeze_duration,
            Some(NostDuration::seconds(90)),
            "{form}"
        );
        assert_eq!(
            f.to_json(),
            r#"{"taskingParameters":{"simFreezeTime":"2024-01-01T12:00:00Z","freezeDuration":"PT1M30S"}}"#
        );
    }
    let r = ResumeRequest::from_json(
        br#"{"taskingParameters":{"requestingApp":"x","simResumeTime":"2024-01-01T12:00:00Z","tolerance":"PT43200S"}}"#,
    )
    .unwrap();
    assert_eq!(
        r.tasking_parameters.tolerance,
        Some(NostDuration::seconds(43_200))
    );
    assert!(r.to_json().contains(r#""tolerance":"PT12H""#));
}

#[test]
fn description_is_omitted_only_when_none() {
    let mut s = ReadyStatus::new("app");
    assert!(!s.to_json().contains("description"));
    s.description = Some("ready to go".into());
    assert_eq!(
        s.to_json(),
        r#"{"name":"app","description":"ready to go","properties":{"ready":true}}"#
    );
    let mut t0 = TimeStatus::new("a", t(12, 0, 0, 0), t(12, 0, 0, 0));
    assert!(!t0.to_json().contains("description"));
    t0.description = Some(String::new());
    assert!(t0.to_json().contains(r#""description":"""#));
    // An explicit null on input is fine too.
    let m =
        ModeStatus::from_json(br#"{"name":"a","description":null,"properties":{"mode":"PAUSED"}}"#)
            .unwrap();
    assert_eq!(m, ModeStatus::new("a", Mode::Paused));
}
