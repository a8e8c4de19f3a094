//! The `nost` command as an operator uses it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use nost_testkit::unique;
use serde_json::Value;

fn nost() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nost"));
    c.env_remove("USERNAME")
        .env_remove("PASSWORD")
        .env_remove("CLIENT_ID")
        .env_remove("CLIENT_SECRET_KEY")
        .env_remove("NOST_OTP");
    c
}

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/config")
        .join(name)
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn check_reports_the_mode_of_each_example_as_json() {
    for (stem, mode) in [
        ("basic", "basic"),
        ("service-account", "service_account"),
        ("user-account", "user_account"),
    ] {
        let (code, out, err) = run(nost()
            .args(["check", "--json", "--config"])
            .arg(example(&format!("{stem}.yaml")))
            .arg("--env-file")
            .arg(example(&format!("{stem}.env"))));
        assert_eq!(code, 0, "{stem}: {err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["mode"], mode, "{stem}");
        // Values are never shown, only where they came from.
        for secret in ["your-password", "your-client-secret", "guest\""] {
            assert!(
                !out.contains(secret) && !err.contains(secret),
                "{stem} leaks {secret}: {out}"
            );
        }
    }
}

#[test]
fn check_accepts_pre_acquired_tokens_with_only_a_client_id() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("at"), "header.payload-t0k3n-AT.sig\n").unwrap();
    std::fs::write(dir.path().join("rt"), "t0k3n-RT\n").unwrap();
    let (code, out, err) = run(nost()
        .args(["check", "--json", "--config"])
        .arg(example("pre-acquired.yaml"))
        .arg("--env-file")
        .arg(example("pre-acquired.env"))
        .arg("--access-token-file")
        .arg(dir.path().join("at"))
        .arg("--refresh-token-file")
        .arg(dir.path().join("rt")));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["mode"], "pre_acquired");
    assert!(!out.contains("t0k3n") && !err.contains("t0k3n"));
}

#[test]
fn check_refuses_a_bad_combination_with_exit_2_and_the_valid_modes() {
    let (code, out, err) = run(nost()
        .args(["check", "--config"])
        .arg(example("pre-acquired.yaml"))
        .arg("--env-file")
        .arg(example("pre-acquired.env")));
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("CLIENT_SECRET_KEY") && err.contains("valid authentication modes"),
        "{err}"
    );
}

#[test]
fn check_points_at_the_line_of_an_invalid_value() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    std::fs::write(&p, "servers:\n  rabbitmq:\n    port: 0\nexecution: {}\n").unwrap();
    let (code, _, err) = run(nost()
        .args(["check", "--env-file"])
        .arg(example("basic.env"))
        .arg("--config")
        .arg(&p));
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.yaml") && err.contains("line 3") && err.contains("servers.rabbitmq.port"),
        "{err}"
    );
}

#[test]
fn help_explains_the_four_modes() {
    let (code, out, _) = run(nost().arg("--help"));
    assert_eq!(code, 0);
    for m in ["basic", "service_account", "user_account", "pre_acquired"] {
        assert!(out.contains(m), "{out}");
    }
}

#[test]
fn listen_prints_what_publish_sends_as_json_lines() {
    let prefix = unique("cli");
    let cfg = example("basic.yaml");
    let env = example("basic.env");
    let listener = nost()
        .args([
            "listen",
            "--count",
            "1",
            "--timeout",
            "30",
            "--prefix",
            &prefix,
            "--config",
        ])
        .arg(&cfg)
        .arg("--env-file")
        .arg(&env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the listener's queue exists.
    let queue = format!("{prefix}.hash.logger");
    for _ in 0..100 {
        if nost_testkit::rabbitmqctl(&["list_queues", "-q", "--no-table-headers", "name"])
            .contains(&queue)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, _, err) = run(nost()
        .args([
            "publish",
            "--prefix",
            &prefix,
            "--app",
            "sat",
            "--topic",
            "status.ready",
            "--config",
        ])
        .arg(&cfg)
        .arg("--env-file")
        .arg(&env)
        .arg(r#"{"name":"sat","properties":{"ready":true}}"#));
    assert_eq!(code, 0, "{err}");
    let out = listener.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["routing_key"], format!("{prefix}.sat.status.ready"));
    assert_eq!(line["body"]["properties"]["ready"], true);
    assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn demo_runs_a_complete_scenario_on_the_local_broker() {
    let (code, out, err) = run(nost().args(["demo", "--minutes", "5", "--time-scale", "150"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("scenario completed: every application TERMINATED"),
        "{out}"
    );
    for app in ["satellite", "ground", "fire"] {
        assert!(out.contains(&format!("{app}.status.ready")), "{out}");
    }
}

#[test]
fn demo_without_a_broker_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("nobroker.yaml");
    std::fs::write(&cfg, "servers:\n  rabbitmq:\n    host: 127.0.0.1\n    port: 9\n    connection_timeout: 3\nexecution: {}\n").unwrap();
    let (code, _, err) = run(nost()
        .args(["demo", "--config"])
        .arg(&cfg)
        .arg("--env-file")
        .arg(example("basic.env")));
    assert_eq!(code, 2);
    assert!(
        err.contains("rabbitmq-server") && err.contains("127.0.0.1:9"),
        "{err}"
    );
}

#[test]
fn manager_and_managed_commands_run_a_scenario_together() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("clirun");
    let cfg = dir.path().join("nost.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"servers:
  rabbitmq:
    host: "127.0.0.1"
execution:
  general:
    prefix: {prefix}
  manager:
    sim_start_time: "2024-01-01T12:00:00Z"
    sim_stop_time: "2024-01-01T12:02:00Z"
    time_scale_factor: 60
    command_lead: "0:00:01"
    required_apps: [rover]
    init_retry_delay_s: 1
    init_max_retry: 20
    set_offset: False
  managed_applications:
    rover:
      time_status_step: "0:00:30"
      set_offset: False
      shut_down_when_terminated: True
"#
        ),
    )
    .unwrap();
    let env = example("basic.env");
    let managed = nost()
        .args(["managed", "--name", "rover", "--config"])
        .arg(&cfg)
        .arg("--env-file")
        .arg(&env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, out, err) = run(nost()
        .args(["manager", "--config"])
        .arg(&cfg)
        .arg("--env-file")
        .arg(&env));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("scenario terminated") && out.contains("\"rover\": true"),
        "{out}"
    );
    let m = managed.wait_with_output().unwrap();
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    assert!(String::from_utf8_lossy(&m.stdout).contains("rover terminated"));
}

#[test]
fn managed_writes_the_log_file_its_section_asks_for() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("clilog");
    let cfg = dir.path().join("nost.yaml");
    let logs = dir.path().join("logs");
    std::fs::write(
        &cfg,
        format!(
            "servers:\n  rabbitmq:\n    host: 127.0.0.1\nexecution:\n  general:\n    prefix: {prefix}\n  managed_applications:\n    logged:\n      set_offset: False\n      enable_file_logging: True\n      log_dir: \"{}\"\n      log_filename: logged.log\n      log_level: INFO\n",
            logs.display()
        ),
    )
    .unwrap();
    let mut child = nost()
        .args(["managed", "--name", "logged", "--config"])
        .arg(&cfg)
        .arg("--env-file")
        .arg(example("basic.env"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let file = logs.join("logged.log");
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.contains("application started") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(text.contains("application started"), "log file: {text:?}");
    assert!(!text.contains("guest\""), "no secret in the log");
    assert!(
        status.success(),
        "SIGTERM shuts the application down cleanly: {status:?}"
    );
}

/// A YAML and `.env` for user `user` on its own virtual host.
fn user_config(dir: &std::path::Path, user: &nost_testkit::BrokerUser) -> (PathBuf, PathBuf) {
    let cfg = dir.join("nost.yaml");
    std::fs::write(
        &cfg,
        format!(
            "servers:\n  rabbitmq:\n    host: 127.0.0.1\n    virtual_host: \"{}\"\nexecution: {{}}\n",
            user.name
        ),
    )
    .unwrap();
    let env = dir.join("nost.env");
    std::fs::write(
        &env,
        format!(
            "USERNAME=\"{}\"\nPASSWORD=\"{}\"\n",
            user.name, user.password
        ),
    )
    .unwrap();
    (cfg, env)
}

fn wait_for_queue(queue: &str, present: bool, vhost: &str) -> bool {
    for _ in 0..150 {
        if nost_testkit::queue_names(vhost).iter().any(|q| q == queue) == present {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn publish_tells_which_lines_the_broker_refused_and_exits_1() {
    let name = unique("clirefuse");
    let user = nost_testkit::BrokerUser::create(&name);
    let prefix = unique("clip");
    user.set_topic_write(&prefix, "\\.ok$");
    let dir = tempfile::tempdir().unwrap();
    let (cfg, env) = user_config(dir.path(), &user);
    let publish = |extra: &[&str]| {
        let mut c = nost();
        c.args(["publish", "--prefix", &prefix, "--app", "sat", "--config"])
            .arg(&cfg)
            .arg("--env-file")
            .arg(&env)
            .args(extra);
        c
    };
    // One forbidden message: exit 1 with the reason.
    let (code, _, err) = run(&mut publish(&["--topic", "bad", "{}"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("{prefix}.sat.bad")), "{err}");
    // Lines from a file: the refused one is named by line and topic.
    let lines = dir.path().join("lines.txt");
    std::fs::write(
        &lines,
        "ok {\"n\":1}\nbad {\"n\":2}\nok {\"n\":3} with spaces\n",
    )
    .unwrap();
    let (code, _, err) = run(&mut publish(&["--lines", lines.to_str().unwrap()]));
    assert_eq!(code, 1, "{err}");
    let refused: Vec<&str> = err.lines().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(refused.len(), 1, "{err}");
    assert!(refused[0].starts_with("line 2: bad: "), "{err}");
    assert!(refused[0].contains("refused"), "{err}");
    // Standard input, all allowed: exit 0.
    let mut child = publish(&["--lines", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"ok 1\nok 2\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn listen_ends_cleanly_when_its_output_closes_and_leaves_no_queue() {
    let prefix = unique("clihead");
    let cfg = example("basic.yaml");
    let env = example("basic.env");
    let mut listener = nost()
        .args(["listen", "--timeout", "60", "--prefix", &prefix, "--config"])
        .arg(&cfg)
        .arg("--env-file")
        .arg(&env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let queue = format!("{prefix}.hash.logger");
    assert!(
        wait_for_queue(&queue, true, "/"),
        "the listener's queue exists"
    );
    let publish = |n: usize| {
        let (code, _, err) = run(nost()
            .args([
                "publish", "--prefix", &prefix, "--app", "sat", "--topic", "tick", "--config",
            ])
            .arg(&cfg)
            .arg("--env-file")
            .arg(&env)
            .arg(n.to_string()));
        assert_eq!(code, 0, "{err}");
    };
    publish(1);
    // `| head -1`: read one line, then close the pipe.
    let mut stdout = std::io::BufReader::new(listener.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let line: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(line["body"], 1);
    publish(2);
    let mut status = None;
    for _ in 0..300 {
        if let Some(s) = listener.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = status.expect("the listener ends after its output closed");
    assert!(status.success(), "{status:?}");
    assert!(wait_for_queue(&queue, false, "/"), "its queue is gone");
}

#[test]
fn a_killed_listener_leaves_no_queue_behind() {
    let prefix = unique("clikill");
    let mut listener = nost()
        .args(["listen", "--prefix", &prefix, "--config"])
        .arg(example("basic.yaml"))
        .arg("--env-file")
        .arg(example("basic.env"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let queue = format!("{prefix}.hash.logger");
    assert!(
        wait_for_queue(&queue, true, "/"),
        "the listener's queue exists"
    );
    listener.kill().unwrap();
    listener.wait().unwrap();
    assert!(
        wait_for_queue(&queue, false, "/"),
        "its queue went away with it"
    );
}
