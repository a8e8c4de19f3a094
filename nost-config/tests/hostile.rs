//! Absurd numbers in a YAML file are errors that name the field and its
//! line, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use nost_config::{ConfigError, NostDuration, Origin, load_str};

fn managed(field_line: &str) -> String {
    format!(
        "servers:\n  rabbitmq:\n    host: localhost\nexecution:\n  managed_applications:\n    app:\n      {field_line}\n"
    )
}

fn manager(field_line: &str) -> String {
    format!(
        "servers:\n  rabbitmq:\n    host: localhost\nexecution:\n  manager:\n    {field_line}\n"
    )
}

/// The error text of a file that must be refused.
fn refused(yaml: &str) -> String {
    match load_str(yaml, Origin::File("app.yaml".into())) {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_time_step_beyond_chrono_names_the_field_and_line_instead_of_panicking() {
    let err = refused(&managed("time_step: 10000000000000000"));
    assert!(err.contains("app.yaml"), "{err}");
    assert!(err.contains("line 7"), "{err}");
    assert!(err.contains("time_step"), "{err}");
    assert!(err.contains("out of range"), "{err}");
}

#[test]
fn absurd_numbers_in_every_duration_and_factor_field_are_refused_with_their_field() {
    let cases: &[(&str, &str, bool)] = &[
        // (field, value, in the manager section?)
        ("time_step", "10000000000000000", false),
        ("time_step", "-10000000000000000", false),
        ("time_step", "1.0e300", false),
        ("time_step", ".inf", false),
        ("time_step", "-.inf", false),
        ("time_step", ".nan", false),
        ("time_step", "-1", false),
        ("time_step", "0", false),
        ("time_step", "\"P999999999999Y\"", false),
        ("time_step", "\"99999999999999999999:00:00\"", false),
        ("time_step", "\"-0:00:01\"", false),
        ("time_status_step", "\"-PT1S\"", false),
        ("time_status_step", "18446744073709551615", false),
        ("time_scale_factor", ".nan", false),
        ("time_scale_factor", ".inf", false),
        ("time_scale_factor", "-2", false),
        ("time_scale_factor", "0", false),
        ("time_scale_factor", ".nan", true),
        ("time_scale_factor", "1.0e400", true),
        ("command_lead", "\"-0:00:05\"", true),
        ("command_lead", "9223372036854775807", true),
        ("time_step", "9223372036854775807", true),
        ("init_retry_delay_s", "18446744073709551615", true),
        ("sim_start_time", "1.0e300", true),
        ("sim_start_time", ".nan", true),
        ("sim_start_time", "\"99999-01-01T00:00:00Z\"", true),
        ("sim_start_time", "-9223372036854775808", true),
        ("time_status_init", "\"0000-00-00\"", true),
    ];
    for (field, value, in_manager) in cases {
        let line = format!("{field}: {value}");
        let yaml = if *in_manager {
            manager(&line)
        } else {
            managed(&line)
        };
        let err = refused(&yaml);
        assert!(err.contains(field), "{line}: {err}");
        assert!(err.contains("line"), "{line}: no line in {err}");
    }
}

#[test]
fn absurd_delays_and_timeouts_are_refused() {
    for field in [
        "reconnect_delay",
        "retry_delay",
        "connection_timeout",
        "socket_timeout",
        "stack_timeout",
        "blocked_connection_timeout",
    ] {
        let yaml = format!(
            "servers:\n  rabbitmq:\n    host: localhost\n    {field}: 18446744073709551615\nexecution: {{}}\n"
        );
        let err = refused(&yaml);
        assert!(
            err.contains(&format!("servers.rabbitmq.{field}")) && err.contains("line 4"),
            "{err}"
        );
    }
    let yaml = "servers:\n  rabbitmq:\n    keycloak_authentication: true\n  keycloak:\n    host: kc\n    token_refresh_interval: 99999999999\nexecution: {}\n";
    let err = refused(yaml);
    assert!(
        err.contains("servers.keycloak.token_refresh_interval") && err.contains("line 6"),
        "{err}"
    );
}

#[test]
fn scaling_an_in_range_step_out_of_range_is_an_error() {
    let yaml = "servers:\n  rabbitmq: {}\nexecution:\n  managed_applications:\n    a:\n      time_scale_factor: 1.0e300\n      is_scenario_time_step: false\n      time_step: \"1000:00:00\"\n";
    let err = refused(yaml);
    assert!(
        err.contains("time_step") && err.contains("out of range"),
        "{err}"
    );
}

#[test]
fn durations_parse_without_overflow_at_the_edges() {
    for text in [
        "9223372036854:00:00",
        "-9223372036854775807",
        "106751991167 days, 0:00:00",
        "-106751991167 days, 0:00:00",
        "P292471Y",
        "PT9223372036854.775807S",
        "99999999999999999999d",
    ] {
        if let Ok(d) = text.parse::<NostDuration>() {
            // Writing it back must not overflow either.
            let _ = d.to_iso8601();
            let _ = d.to_hms();
        }
    }
    assert_eq!(NostDuration::seconds(i64::MAX), NostDuration::MAX);
    assert_eq!(NostDuration::seconds(i64::MIN), NostDuration::MIN);
    assert_eq!(NostDuration::microseconds(i64::MIN), NostDuration::MIN);
    assert!(NostDuration::MIN.to_iso8601().starts_with("-P"));
    assert!(NostDuration::from_secs_f64(f64::NAN).is_none());
    assert!(NostDuration::from_secs_f64(1e13).is_none());
    assert!(NostDuration::try_seconds(9_223_372_036_855).is_none());
    assert!(NostDuration::MAX.scaled(2.0).is_none());
}

#[test]
fn a_file_built_of_garbage_is_a_parse_error() {
    for yaml in [
        "servers: [\n",
        "servers:\n  rabbitmq:\n    port: 99999999999999999999999\nexecution: {}\n",
        "servers:\n  rabbitmq:\n    port: -1\nexecution: {}\n",
        "&a [*a]",
        "servers: !!binary AAAA\nexecution: {}\n",
    ] {
        match load_str(yaml, Origin::Program) {
            Ok(_) => panic!("accepted {yaml:?}"),
            Err(
                ConfigError::Parse { .. } | ConfigError::Invalid { .. } | ConfigError::Empty { .. },
            ) => {}
            Err(e) => panic!("unexpected error kind for {yaml:?}: {e}"),
        }
    }
}
