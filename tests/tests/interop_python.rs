//! Rust and Python nost_tools 3.6.0 (from PyPI) in one scenario on the local
//! broker: a Rust Manager drives a Python ManagedApplication, and a Python
//! Manager drives a Rust ManagedApplication.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nost_app::{Application, ManagedApplication, Manager, StartOptions, TestPlan};
use nost_config::{Config, Credentials, EnvFile};
use nost_testkit::{eventually, interop_scripts, python_with_nost_tools, rabbitmqctl, unique};

fn write_config(dir: &Path, prefix: &str, required: &str) -> std::path::PathBuf {
    let yaml = format!(
        r#"servers:
  rabbitmq:
    host: "127.0.0.1"
    port: 5672
execution:
  general:
    prefix: {prefix}
  manager:
    sim_start_time: "2024-01-01T12:00:00Z"
    sim_stop_time: "2024-01-01T12:01:00Z"
    time_step: "0:00:01"
    time_scale_factor: 20.0
    command_lead: "0:00:01"
    required_apps: [{required}]
    init_retry_delay_s: 2
    init_max_retry: 15
    time_status_step: "0:00:10"
    set_offset: False
  managed_applications:
    default:
      time_step: "0:00:01"
      time_status_step: "0:00:10"
      set_offset: False
"#
    );
    std::fs::write(dir.join(".env"), "USERNAME=\"guest\"\nPASSWORD=\"guest\"\n").unwrap();
    let p = dir.join("nost.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

fn python(dir: &Path, script: &str, args: &[&str]) -> Child {
    Command::new(python_with_nost_tools())
        .arg(interop_scripts().join(script))
        .args(args)
        .current_dir(dir)
        .env("NOST_INTEROP_TIMEOUT", "90")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait for a line on the child's stdout; returns the reader for later lines.
fn wait_line(child: &mut Child, want: &str) -> BufReader<std::process::ChildStdout> {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).unwrap();
        assert!(n > 0, "python peer exited before printing {want}");
        if line.trim() == want {
            return out;
        }
    }
}

fn options(dir: &Path) -> StartOptions {
    StartOptions {
        auth: Credentials::from_env(&EnvFile::Path(dir.join(".env")))
            .unwrap()
            .into(),
        ..Default::default()
    }
}

async fn recorder(
    prefix: &str,
    cfg: &Config,
    dir: &Path,
) -> (Application, Arc<Mutex<Vec<String>>>) {
    let rec = Application::start_up(
        "recorder",
        prefix,
        cfg,
        StartOptions {
            set_offset: Some(false),
            ..options(dir)
        },
    )
    .await
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    rec.add_pattern_callback("#", move |m| {
        let s = s.clone();
        async move {
            s.lock().unwrap().push(m.routing_key.clone());
            Ok(())
        }
    })
    .await
    .unwrap();
    (rec, seen)
}

fn topics_seen(seen: &Arc<Mutex<Vec<String>>>, prefix: &str) -> BTreeSet<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|k| k.strip_prefix(&format!("{prefix}.")).map(str::to_owned))
        .collect()
}

/// Every one of `expected` (topics under `prefix`) arrives, within 10 s.
async fn assert_topics_seen(seen: &Arc<Mutex<Vec<String>>>, prefix: &str, expected: &[&str]) {
    eventually(Duration::from_secs(10), || {
        let topics = topics_seen(seen, prefix);
        expected.iter().all(|t| topics.contains(*t))
    })
    .await;
    let topics = topics_seen(seen, prefix);
    for t in expected {
        assert!(topics.contains(*t), "{t} missing from {topics:?}");
    }
}

/// (name, durable, auto_delete, exclusive) of the queues under a prefix.
fn queues(prefix: &str) -> Vec<(String, String, String, String)> {
    rabbitmqctl(&[
        "list_queues",
        "-q",
        "--no-table-headers",
        "name",
        "durable",
        "auto_delete",
        "exclusive",
    ])
    .lines()
    .filter_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 4 && f[0].starts_with(&format!("{prefix}."))).then(|| {
            (
                f[0].to_owned(),
                f[1].to_owned(),
                f[2].to_owned(),
                f[3].to_owned(),
            )
        })
    })
    .collect()
}

fn exchange_flags(prefix: &str) -> Option<String> {
    rabbitmqctl(&[
        "list_exchanges",
        "-q",
        "--no-table-headers",
        "name",
        "type",
        "durable",
        "auto_delete",
    ])
    .lines()
    .find(|l| l.split_whitespace().next() == Some(prefix))
    .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
}

#[tokio::test]
async fn a_rust_manager_drives_a_python_managed_application() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("rsmgr");
    let yaml = write_config(dir.path(), &prefix, "pyapp");
    let cfg = nost_config::load_file(&yaml).unwrap().config;
    let (rec, seen) = recorder(&prefix, &cfg, dir.path()).await;

    let mut py = python(
        dir.path(),
        "managed.py",
        &[&prefix, yaml.to_str().unwrap(), "pyapp"],
    );
    let mut py_out = wait_line(&mut py, "STARTED");
    // The Python app's queues and the Rust manager's flags side by side.
    let py_queues = queues(&prefix);
    assert!(
        py_queues
            .iter()
            .any(|q| q.0 == format!("{prefix}.manager.init.pyapp")),
        "{py_queues:?}"
    );

    let manager = Manager::start_up("manager", &prefix, &cfg, options(dir.path()))
        .await
        .unwrap();
    assert_eq!(exchange_flags(&prefix).as_deref(), Some("topic true true"));
    let rust_queues = queues(&prefix);
    let flags = |name: &str| {
        rust_queues
            .iter()
            .find(|q| q.0 == name)
            .map(|q| (q.1.clone(), q.2.clone(), q.3.clone()))
    };
    assert_eq!(
        flags(&format!("{prefix}.star.request.update.manager")),
        flags(&format!("{prefix}.manager.init.pyapp")),
        "Rust and Python queues have the same flags"
    );
    assert!(flags(&format!("{prefix}.star.request.freeze.manager")).is_some());

    let plan = TestPlan::from_config(cfg.execution.manager.as_ref().unwrap()).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(90), manager.execute_test_plan(plan))
        .await
        .expect("the plan finishes")
        .unwrap();
    assert_eq!(
        summary.ready.get("pyapp"),
        Some(&true),
        "the Python app reported ready"
    );

    let status = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut py_out, &mut rest);
        (py.wait().unwrap(), rest)
    })
    .await
    .unwrap();
    assert!(
        status.0.success() && status.1.contains("TERMINATED"),
        "python: {status:?}"
    );
    let expected = [
        "manager.init",
        "manager.start",
        "manager.stop",
        "manager.status.mode",
        "manager.status.time",
        "pyapp.status.ready",
        "pyapp.status.mode",
        "pyapp.status.time",
    ];
    assert_topics_seen(&seen, &prefix, &expected).await;
    manager.app().shut_down().await;
    rec.shut_down().await;
}

#[tokio::test]
async fn a_python_manager_drives_a_rust_managed_application() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("pymgr");
    let yaml = write_config(dir.path(), &prefix, "rsapp");
    let cfg = nost_config::load_file(&yaml).unwrap().config;
    let (rec, seen) = recorder(&prefix, &cfg, dir.path()).await;

    let app = ManagedApplication::start_up("rsapp", &prefix, &cfg, options(dir.path()))
        .await
        .unwrap();
    let mut py = python(dir.path(), "manager.py", &[&prefix, yaml.to_str().unwrap()]);
    let mut py_out = wait_line(&mut py, "STARTED");
    let qs = queues(&prefix);
    let flags = |name: &str| {
        qs.iter()
            .find(|q| q.0 == name)
            .map(|q| (q.1.clone(), q.2.clone(), q.3.clone()))
    };
    assert_eq!(
        flags(&format!("{prefix}.manager.init.rsapp")),
        flags(&format!("{prefix}.star.request.update.manager")),
        "Rust and Python queues have the same flags: {qs:?}"
    );
    assert_eq!(exchange_flags(&prefix).as_deref(), Some("topic true true"));

    tokio::time::timeout(Duration::from_secs(90), app.wait_terminated())
        .await
        .expect("the Rust app reaches TERMINATED");
    let status = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut py_out, &mut rest);
        let mut err = String::new();
        if let Some(mut e) = py.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        (py.wait().unwrap(), rest, err)
    })
    .await
    .unwrap();
    assert!(
        status.0.success() && status.1.contains("TERMINATED"),
        "python: {status:?}"
    );
    let expected = [
        "manager.init",
        "manager.start",
        "manager.stop",
        "manager.status.mode",
        "rsapp.status.ready",
        "rsapp.status.mode",
        "rsapp.status.time",
    ];
    assert_topics_seen(&seen, &prefix, &expected).await;
    app.app().shut_down().await;
    rec.shut_down().await;
}
