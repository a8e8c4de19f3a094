//! `nost manager` and `nost managed` with Python nost_tools 3.6.0 peers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};

use nost_testkit::{interop_scripts, python_with_nost_tools, unique};

fn config(dir: &Path, prefix: &str, app: &str) -> std::path::PathBuf {
    std::fs::write(dir.join(".env"), "USERNAME=guest\nPASSWORD=guest\n").unwrap();
    let p = dir.join("nost.yaml");
    std::fs::write(
        &p,
        format!(
            r#"servers:
  rabbitmq:
    host: "127.0.0.1"
execution:
  general:
    prefix: {prefix}
  manager:
    sim_start_time: "2024-01-01T12:00:00Z"
    sim_stop_time: "2024-01-01T12:01:00Z"
    time_scale_factor: 20.0
    command_lead: "0:00:01"
    required_apps: [{app}]
    init_retry_delay_s: 2
    init_max_retry: 15
    set_offset: False
  managed_applications:
    default:
      time_status_step: "0:00:10"
      set_offset: False
      shut_down_when_terminated: True
"#
        ),
    )
    .unwrap();
    p
}

fn nost(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nost"));
    c.current_dir(dir)
        .env_remove("USERNAME")
        .env_remove("PASSWORD");
    c
}

#[test]
fn nost_manager_drives_a_python_managed_application() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("climgr");
    let cfg = config(dir.path(), &prefix, "pyapp");
    let py = Command::new(python_with_nost_tools())
        .arg(interop_scripts().join("managed.py"))
        .args([prefix.as_str(), cfg.to_str().unwrap(), "pyapp"])
        .current_dir(dir.path())
        .env("NOST_INTEROP_TIMEOUT", "90")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = nost(dir.path())
        .args(["manager", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"pyapp\": true"), "{stdout}");
    let py = py.wait_with_output().unwrap();
    assert!(
        py.status.success() && String::from_utf8_lossy(&py.stdout).contains("TERMINATED"),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
}

#[test]
fn a_python_manager_drives_nost_managed() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("climgd");
    let cfg = config(dir.path(), &prefix, "rsapp");
    let managed = nost(dir.path())
        .args(["managed", "--name", "rsapp", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Give the Rust app a moment to subscribe; the manager's init retries cover the rest.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let py = Command::new(python_with_nost_tools())
        .arg(interop_scripts().join("manager.py"))
        .args([prefix.as_str(), cfg.to_str().unwrap()])
        .current_dir(dir.path())
        .env("NOST_INTEROP_TIMEOUT", "90")
        .output()
        .unwrap();
    assert!(
        py.status.success() && String::from_utf8_lossy(&py.stdout).contains("TERMINATED"),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let m = managed.wait_with_output().unwrap();
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    assert!(String::from_utf8_lossy(&m.stdout).contains("rsapp terminated"));
}
