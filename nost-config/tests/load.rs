//! A YAML file written for nost_tools loads with the same effective values.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use nost_config::{
    ConfigError, NostDuration, Origin, load_file, load_str,
    schema::{ManagedApplicationConfig, RabbitMqConfig},
};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/config")
        .join(name)
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn a_minimal_file_gets_every_default_of_nost_tools() {
    let loaded = load_str("servers:\n  rabbitmq: {}\nexecution: {}\n", Origin::Program).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let r = &loaded.config.servers.rabbitmq;
    assert!(!r.keycloak_authentication);
    assert!(!r.tls);
    assert_eq!(r.tls_ca_cert, None);
    assert_eq!(r.reconnect_delay, 10);
    assert_eq!(r.queue_max_size, 5000);
    assert_eq!(r.host, "localhost");
    assert_eq!(r.port, 5672);
    assert_eq!(r.virtual_host, "/");
    assert_eq!(r.channel_max, 65535);
    assert_eq!(r.frame_max, 131072);
    assert_eq!(r.heartbeat, None);
    assert_eq!(r.connection_attempts, 1);
    assert_eq!(r.retry_delay, 2);
    assert_eq!(r.connection_timeout, 30);
    assert_eq!(r.socket_timeout, 10);
    assert_eq!(r.stack_timeout, 15);
    assert_eq!(r.locale, "en_US");
    assert_eq!(r.blocked_connection_timeout, None);
    // Message properties: none set by default, so none are sent.
    assert_eq!(
        (
            &r.content_type,
            &r.content_encoding,
            &r.headers,
            r.delivery_mode,
            r.priority
        ),
        (&None, &None, &None, None, None)
    );
    assert_eq!(
        (
            &r.correlation_id,
            &r.reply_to,
            &r.message_expiration,
            &r.message_id
        ),
        (&None, &None, &None, &None)
    );
    assert_eq!(
        (
            r.timestamp,
            &r.message_type,
            &r.user_id,
            &r.app_id,
            &r.cluster_id
        ),
        (None, &None, &None, &None, &None)
    );
    assert_eq!(r, &RabbitMqConfig::default());

    assert!(loaded.config.servers.keycloak.is_none());
    assert!(loaded.config.channels.is_empty());
    let e = &loaded.config.execution;
    assert!(e.general.is_none(), "absent as in nost_tools");
    assert!(e.manager.is_none());
    assert!(e.logger_application.is_none());
    assert_eq!(
        e.managed_applications.keys().collect::<Vec<_>>(),
        vec!["default"]
    );
    assert_eq!(e.applications.keys().collect::<Vec<_>>(), vec!["default"]);

    let g = e.general_or_default();
    assert_eq!(g.prefix, "nost");
    assert_eq!(g.wallclock_offset_refresh_interval, 10800);
    assert_eq!(g.ntp_host, "pool.ntp.org");
    assert_eq!(g.resume_tolerance, NostDuration::seconds(12 * 3600));

    let m = ManagedApplicationConfig::default();
    assert_eq!(m.time_scale_factor, 1.0);
    assert_eq!(m.time_step, NostDuration::seconds(1));
    assert!(m.set_offset);
    assert_eq!(m.time_status_step, None);
    assert_eq!(m.time_status_init, None);
    assert!(!m.shut_down_when_terminated);
    assert_eq!(m.manager_app_name, "manager");
    assert!(m.is_scenario_time_step && m.is_scenario_time_status_step);
    assert!(!m.logging.enable_file_logging);
    assert_eq!(m.logging.log_dir, "logs");
    assert_eq!(m.logging.log_filename, None);
    assert_eq!(m.logging.log_level, "INFO");
    assert_eq!(m.logging.max_bytes, 10_485_760);
    assert_eq!(m.logging.backup_count, 5);

    let a = &e.applications["default"];
    assert_eq!(a.time_status_step, Some(NostDuration::seconds(10)));
    assert!(a.set_offset);
}

#[test]
fn manager_and_keycloak_defaults() {
    let loaded = load_str(
        "servers:\n  rabbitmq:\n    keycloak_authentication: true\n  keycloak:\n    realm: NOS-T\nexecution:\n  manager: {}\n",
        Origin::Program,
    )
    .unwrap();
    let kc = loaded.config.servers.keycloak.as_ref().unwrap();
    assert_eq!(kc.host, "localhost");
    assert_eq!(kc.port, 8080);
    assert_eq!(kc.token_refresh_interval, 240);
    assert_eq!(kc.tls_ca_cert, None);
    assert_eq!(
        kc.token_url(),
        "http://localhost:8080/realms/NOS-T/protocol/openid-connect/token"
    );
    let m = loaded.config.execution.manager.as_ref().unwrap();
    assert_eq!(m.sim_start_time, None);
    assert_eq!(m.time_step, NostDuration::seconds(1));
    assert_eq!(m.time_scale_factor, 1.0);
    assert_eq!(m.time_status_step, None);
    assert_eq!(m.command_lead, NostDuration::ZERO);
    assert!(m.required_apps.is_empty());
    assert_eq!(m.init_retry_delay_s, 5);
    assert_eq!(m.init_max_retry, 5);
    assert!(m.set_offset);
    assert!(!m.shut_down_when_terminated);
}

#[test]
fn the_full_example_loads_with_every_value() {
    let loaded = load_file(example("full.yaml")).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = &loaded.config;
    let r = &c.servers.rabbitmq;
    assert!(r.keycloak_authentication && r.tls);
    assert_eq!(r.tls_ca_cert.as_deref(), Some("/etc/ssl/nost/ca.pem"));
    assert_eq!((r.reconnect_delay, r.queue_max_size), (5, 1000));
    assert_eq!(
        (r.host.as_str(), r.port, r.virtual_host.as_str()),
        ("broker.example.org", 5671, "sos")
    );
    assert_eq!(
        (r.channel_max, r.frame_max, r.heartbeat),
        (2047, 65536, Some(30))
    );
    assert_eq!(
        (r.connection_attempts, r.retry_delay, r.connection_timeout),
        (3, 4, 20)
    );
    assert_eq!((r.socket_timeout, r.stack_timeout), (7, 12));
    assert_eq!(r.locale, "en_GB");
    assert_eq!(r.blocked_connection_timeout, Some(60));
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(r.content_encoding.as_deref(), Some("utf-8"));
    assert_eq!(r.headers.as_ref().unwrap()["team"], "fire");
    assert_eq!((r.delivery_mode, r.priority), (Some(2), Some(5)));
    assert_eq!(r.correlation_id.as_deref(), Some("corr-1"));
    assert_eq!(r.reply_to.as_deref(), Some("replies"));
    assert_eq!(r.message_expiration.as_deref(), Some("60000"));
    assert_eq!(r.message_id.as_deref(), Some("msg-1"));
    assert_eq!(r.timestamp, Some(t("2024-01-01T00:00:00Z")));
    assert_eq!(r.message_type.as_deref(), Some("nost"));
    assert_eq!(r.user_id.as_deref(), Some("sos-user"));
    assert_eq!(r.app_id.as_deref(), Some("fire"));
    assert_eq!(r.cluster_id.as_deref(), Some("c1"));

    let kc = c.servers.keycloak.as_ref().unwrap();
    assert_eq!(
        kc.token_url(),
        "https://auth.example.org:8443/realms/NOS-T/protocol/openid-connect/token"
    );
    assert_eq!(kc.token_refresh_interval, 120);
    assert_eq!(kc.tls_ca_cert.as_deref(), Some("/etc/ssl/nost/kc-ca.pem"));

    let g = c.execution.general.as_ref().unwrap();
    assert_eq!(g.prefix, "sos");
    assert_eq!(g.wallclock_offset_refresh_interval, 3600);
    assert_eq!(g.ntp_host, "time.example.org");
    assert_eq!(g.resume_tolerance, NostDuration::seconds(3600));

    let m = c.execution.manager.as_ref().unwrap();
    assert_eq!(m.sim_start_time, Some(t("2020-01-01T07:20:00Z")));
    assert_eq!(m.sim_stop_time, Some(t("2020-01-01T10:20:00Z")));
    assert_eq!(m.start_time, Some(t("2026-01-01T00:00:00Z")));
    // is_scenario_time_step: false scales "0:00:01" by 60.
    assert_eq!(m.time_step, NostDuration::seconds(60));
    assert_eq!(m.time_scale_factor, 60.0);
    assert_eq!(m.time_status_step, Some(NostDuration::seconds(10)));
    assert_eq!(m.time_status_init, Some(t("2020-01-01T07:21:00Z")));
    assert_eq!(m.command_lead, NostDuration::seconds(5));
    assert_eq!(m.required_apps, ["manager", "fire", "ground"]);
    assert_eq!((m.init_retry_delay_s, m.init_max_retry), (3, 7));
    assert!(!m.set_offset && m.shut_down_when_terminated);
    assert!(m.logging.enable_file_logging);
    assert_eq!(m.logging.log_dir, "mgr-logs");
    assert_eq!(m.logging.log_filename.as_deref(), Some("manager.log"));
    assert_eq!(m.logging.log_level, "DEBUG");
    assert_eq!(
        (m.logging.max_bytes, m.logging.backup_count),
        (1_048_576, 3)
    );

    let fire = c.execution.managed_application("fire");
    assert_eq!(fire.time_step, NostDuration::seconds(120), "0:00:02 x 60");
    assert_eq!(
        fire.time_status_step,
        Some(NostDuration::seconds(300)),
        "0:00:05 x 60"
    );
    assert_eq!(
        fire.configuration_parameters.as_ref().unwrap()["threshold"],
        0.5
    );
    // Unknown apps fall back to `default`.
    assert_eq!(
        c.execution.managed_application("smoke").time_step,
        NostDuration::seconds(60)
    );
    let ground = &c.execution.applications["ground"];
    assert_eq!(ground.time_status_step, Some(NostDuration::seconds(30)));
    assert_eq!(
        ground.configuration_parameters.as_ref().unwrap()["stations"],
        4
    );
    let logger = c.execution.logger_application.as_ref().unwrap();
    assert_eq!(logger.time_status_step, Some(NostDuration::seconds(20)));
}

#[test]
fn every_example_file_loads() {
    for f in [
        "basic.yaml",
        "service-account.yaml",
        "user-account.yaml",
        "pre-acquired.yaml",
    ] {
        let loaded = load_file(example(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(loaded.warnings.is_empty(), "{f}: {:?}", loaded.warnings);
    }
}

#[test]
fn unknown_keys_are_warnings_with_their_path() {
    let loaded = load_str(
        "info: x\nservers:\n  rabbitmq:\n    virtualHost: sos\nexecution:\n  application: {}\n  time_scale_updates: []\n",
        Origin::Program,
    )
    .unwrap();
    let paths: Vec<&str> = loaded.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "execution.application",
            "execution.time_scale_updates",
            "info",
            "servers.rabbitmq.virtualHost"
        ]
    );
    let vh = &loaded.warnings[3];
    assert!(vh.message.contains("did you mean `virtual_host`"), "{vh}");
    // The typo did not silently change the value.
    assert_eq!(loaded.config.servers.rabbitmq.virtual_host, "/");
}

#[test]
fn unknown_keys_inside_free_form_maps_are_not_warned() {
    let loaded = load_str(
        "servers:\n  rabbitmq:\n    headers: {anything: x}\nexecution:\n  applications:\n    a:\n      configuration_parameters: {whatever: 1}\n",
        Origin::Program,
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn parse_errors_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    std::fs::write(&p, "servers:\n  rabbitmq:\n    port: [\nexecution: {}\n").unwrap();
    let err = load_file(&p).unwrap_err();
    let ConfigError::Parse { line, column, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(line.is_some() && column.is_some());
    let msg = err.to_string();
    assert!(msg.contains("bad.yaml") && msg.contains("line "), "{msg}");

    std::fs::write(
        &p,
        "servers:\n  rabbitmq:\n    port: eighty\nexecution: {}\n",
    )
    .unwrap();
    let msg = load_file(&p).unwrap_err().to_string();
    assert!(msg.contains("bad.yaml") && msg.contains("line 3"), "{msg}");
    assert!(msg.contains("port"), "{msg}");
}

#[test]
fn invalid_values_name_the_field_its_line_and_what_is_valid() {
    let text = "servers:\n  rabbitmq:\n    port: 70000\n    host: \"\"\nexecution:\n  manager:\n    time_scale_factor: 0\n";
    let err = load_str(text, Origin::Program).unwrap_err();
    let ConfigError::Invalid { errors, .. } = &err else {
        panic!("{err:?}")
    };
    let port = errors
        .iter()
        .find(|e| e.path == "servers.rabbitmq.port")
        .unwrap();
    assert_eq!(port.line, Some(3));
    assert!(port.message.contains("between 1 and 65535"), "{port}");
    assert!(errors.iter().any(|e| e.path == "servers.rabbitmq.host"));
    let f = errors
        .iter()
        .find(|e| e.path == "execution.manager.time_scale_factor")
        .unwrap();
    assert!(f.message.contains("greater than 0"));
}

#[test]
fn keycloak_on_needs_a_keycloak_section() {
    for kc in ["", "  keycloak:\n", "  keycloak: {}\n"] {
        let text = format!(
            "servers:\n  rabbitmq:\n    keycloak_authentication: true\n{kc}execution: {{}}\n"
        );
        let err = load_str(&text, Origin::Program).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("servers.keycloak"), "{msg}");
        assert!(msg.contains("keycloak_authentication"), "{msg}");
    }
}

#[test]
fn missing_required_sections_and_files() {
    let err = load_str("execution: {}\n", Origin::Program).unwrap_err();
    assert!(err.to_string().contains("servers"), "{err}");
    let err = load_str("servers:\n  rabbitmq: {}\n", Origin::Program).unwrap_err();
    assert!(err.to_string().contains("execution"), "{err}");
    let err = load_str("# nothing\n", Origin::Program).unwrap_err();
    assert!(matches!(err, ConfigError::Empty { .. }), "{err:?}");
    let err = load_file("/no/such/nost.yaml").unwrap_err();
    assert!(matches!(err, ConfigError::NotFound { .. }), "{err:?}");
}

#[test]
fn wallclock_steps_are_scaled_only_from_hms_text() {
    let base = "servers:\n  rabbitmq: {}\nexecution:\n  managed_applications:\n    a:\n      time_scale_factor: 10\n      is_scenario_time_step: false\n      time_step: ";
    let ok = load_str(&format!("{base}\"0:00:03\"\n"), Origin::Program).unwrap();
    assert_eq!(
        ok.config.execution.managed_application("a").time_step,
        NostDuration::seconds(30)
    );
    // Fractional or ISO forms cannot be scaled, as in nost_tools: an error naming the field.
    let err = load_str(&format!("{base}\"PT3S\"\n"), Origin::Program).unwrap_err();
    assert!(
        err.to_string()
            .contains("execution.managed_applications.a.time_step"),
        "{err}"
    );
    // A number is kept unscaled as nost_tools does, but not silently.
    let num = load_str(&format!("{base}3\n"), Origin::Program).unwrap();
    assert_eq!(
        num.config.execution.managed_application("a").time_step,
        NostDuration::seconds(3)
    );
    assert_eq!(num.warnings.len(), 1);
}

#[test]
fn datetimes_accept_the_forms_yaml_files_use() {
    let text = "servers:\n  rabbitmq: {}\nexecution:\n  manager:\n    sim_start_time: 2020-01-01T07:20:00Z\n    sim_stop_time: \"2020-01-01 08:20:00\"\n    start_time: 1577865600\n";
    let m = load_str(text, Origin::Program)
        .unwrap()
        .config
        .execution
        .manager
        .unwrap();
    assert_eq!(m.sim_start_time, Some(t("2020-01-01T07:20:00Z")));
    assert_eq!(m.sim_stop_time, Some(t("2020-01-01T08:20:00Z")));
    assert_eq!(m.start_time, Some(t("2020-01-01T08:00:00Z")));
}

#[test]
fn the_builder_validates_like_the_loader() {
    let err = nost_config::Config::builder()
        .rabbitmq(|r| r.port = 0)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("servers.rabbitmq.port"), "{err}");
    let err = nost_config::Config::builder()
        .rabbitmq(|r| r.keycloak_authentication = true)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("servers.keycloak"), "{err}");
    let ok = nost_config::Config::builder()
        .keycloak(|k| {
            k.host = "kc.example".into();
            k.realm = "NOS-T".into();
        })
        .build()
        .unwrap();
    assert!(ok.servers.rabbitmq.keycloak_authentication);
    assert_eq!(
        ok.servers.rabbitmq.host, "localhost",
        "no silent change of other values"
    );
}

#[test]
fn the_nack_retry_window_is_read_and_absurd_values_name_the_field() {
    let defaults = load_str("servers:\n  rabbitmq: {}\nexecution: {}\n", Origin::Program).unwrap();
    assert_eq!(defaults.config.servers.rabbitmq.nack_retry_window, 60);
    let set = load_str(
        "servers:\n  rabbitmq:\n    nack_retry_window: 5\nexecution: {}\n",
        Origin::Program,
    )
    .unwrap();
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
    assert_eq!(set.config.servers.rabbitmq.nack_retry_window, 5);
    let text = "servers:\n  rabbitmq:\n    nack_retry_window: 86400\nexecution: {}\n";
    let err = load_str(text, Origin::Program).unwrap_err();
    let ConfigError::Invalid { errors, .. } = &err else {
        panic!("{err:?}")
    };
    let e = errors
        .iter()
        .find(|e| e.path == "servers.rabbitmq.nack_retry_window")
        .unwrap();
    assert_eq!(e.line, Some(3));
    assert!(
        e.message.contains("between 0") && e.message.contains("3600"),
        "{e}"
    );
    assert!(e.message.contains("86400"), "{e}");
    let err = load_str(
        "servers:\n  rabbitmq:\n    nack_retry_window: -1\nexecution: {}\n",
        Origin::Program,
    )
    .unwrap_err();
    assert!(err.to_string().contains("nack_retry_window"), "{err}");
}
