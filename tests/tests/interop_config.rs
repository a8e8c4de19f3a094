//! A YAML file written for nost_tools gives the same effective values in
//! nost-rs as in Python nost_tools 3.6.0 itself (installed from PyPI).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use nost_testkit::{interop_scripts, python_with_nost_tools};
use serde_json::Value;

fn python_view(yaml: &std::path::Path) -> Value {
    let dir = tempfile::tempdir().unwrap();
    // nost_tools reads credentials while loading; give it a complete .env.
    std::fs::write(
        dir.path().join(".env"),
        "USERNAME=u\nPASSWORD=p\nCLIENT_ID=c\nCLIENT_SECRET_KEY=s\n",
    )
    .unwrap();
    let out = Command::new(python_with_nost_tools())
        .arg(interop_scripts().join("effective_config.py"))
        .arg(yaml)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn strip(v: &mut Value, keys: &[&str]) {
    if let Value::Object(m) = v {
        for k in keys {
            m.remove(*k);
        }
        for (_, child) in m.iter_mut() {
            strip(child, keys);
        }
    }
}

#[test]
fn the_full_example_has_the_same_effective_values_as_in_nost_tools() {
    let yaml =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/config/full.yaml");
    let mut py = python_view(&yaml);
    let ours = nost_config::load_file(&yaml).unwrap().config;
    let mut rs = serde_json::json!({
        "rabbitmq": ours.servers.rabbitmq,
        "keycloak": ours.servers.keycloak,
        "execution": ours.execution,
    });
    // Not part of nost_tools' schema (read separately), a value nost_tools
    // sets to its import time (we use the scenario start instead), and the
    // nost-rs extension `servers.rabbitmq.max_body_size`.
    for v in [&mut py, &mut rs] {
        strip(v, &["configuration_parameters"]);
        // A nost-rs setting nost_tools does not have.
        if let Some(r) = v.pointer_mut("/rabbitmq") {
            strip(r, &["max_body_size"]);
        }
        for app in ["applications", "logger_application"] {
            if let Some(section) = v.pointer_mut(&format!("/execution/{app}")) {
                strip(section, &["time_status_init"]);
            }
        }
        // nost-rs extensions of the logger section (start_up arguments in nost_tools).
        if let Some(section) = v.pointer_mut("/execution/logger_application") {
            strip(section, &["log_app", "log_topic", "log_dir"]);
        }
    }
    for key in ["rabbitmq", "keycloak"] {
        assert_eq!(rs[key], py[key], "servers.{key}");
    }
    for key in [
        "general",
        "manager",
        "managed_applications",
        "applications",
        "logger_application",
    ] {
        assert_eq!(
            rs["execution"][key], py["execution"][key],
            "execution.{key}"
        );
    }
}
