//! `cargo xtask demo`: the README's main job, on a fresh machine too.
//!
//! Runs `nost demo` against the broker on 127.0.0.1:5672 when one answers.
//! When none does, it starts a throwaway node from the installed
//! `rabbitmq-server` (the testkit's node: own directory, free port,
//! guest/guest) and stops it afterwards; when RabbitMQ is not installed it
//! installs Debian's `rabbitmq-server` first (as root), saying so, or says
//! how to get it and fails.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nost_testkit::{BrokerOptions, OAuthBroker, rabbitmq_installed};

use crate::{Running, cargo, target_dir, workspace_root};

/// Where `nost demo` goes by default.
const DEFAULT_BROKER: &str = "127.0.0.1:5672";

fn answers(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .is_ok_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

/// `apt-get install rabbitmq-server` when we may (root, apt-get present).
fn install_rabbitmq(running: &Running) -> Result<(), String> {
    let how = "install it with `sudo apt-get install rabbitmq-server` (Debian/Ubuntu) and run `cargo xtask demo` again, or pass `-- --config FILE` with a broker of yours";
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let has_apt = Command::new("apt-get")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !is_root || !has_apt {
        return Err(format!("RabbitMQ is not installed: {how}"));
    }
    eprintln!(
        "xtask: RabbitMQ is not installed; installing Debian's rabbitmq-server (apt-get install rabbitmq-server) ..."
    );
    let t = Instant::now();
    let ok = run_logged(running, Command::new("apt-get").args(["update", "-qq"]))
        && run_logged(
            running,
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "rabbitmq-server"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        );
    if !ok || !rabbitmq_installed() {
        return Err(format!("installing rabbitmq-server failed: {how}"));
    }
    eprintln!(
        "xtask: rabbitmq-server installed in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run_logged(running: &Running, cmd: &mut Command) -> bool {
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    running.child.store(child.id(), Ordering::SeqCst);
    let ok = child.wait().is_ok_and(|s| s.success());
    running.child.store(0, Ordering::SeqCst);
    ok
}

/// A YAML + `.env` pair for the throwaway node on `port`.
fn write_config(dir: &Path, port: u16) -> std::io::Result<(PathBuf, PathBuf)> {
    let yaml = dir.join("demo.yaml");
    let env = dir.join("demo.env");
    std::fs::write(
        &yaml,
        format!(
            "servers:\n  rabbitmq:\n    keycloak_authentication: False\n    host: \"127.0.0.1\"\n    port: {port}\nexecution: {{}}\n"
        ),
    )?;
    std::fs::write(&env, "USERNAME=\"guest\"\nPASSWORD=\"guest\"\n")?;
    Ok((yaml, env))
}

/// Build `nost`, make sure a broker answers, run `nost demo ARGS`.
pub(crate) fn demo(running: &Running, own_node: bool, args: &[String]) -> ExitCode {
    if !cargo(running, &["build", "-p", "nost-cli"], &[], &[]) {
        return ExitCode::FAILURE;
    }
    let nost = target_dir().join("debug/nost");
    let own_config = args.iter().any(|a| a == "--config" || a == "-c");
    let mut extra: Vec<String> = Vec::new();
    let workdir = tempfile::Builder::new().prefix("nost-demo-").tempdir();
    let mut node = None;
    if !own_config && (own_node || !answers(DEFAULT_BROKER)) {
        if !own_node {
            eprintln!("xtask: no RabbitMQ answers on {DEFAULT_BROKER}");
        }
        if !rabbitmq_installed()
            && let Err(e) = install_rabbitmq(running)
        {
            eprintln!("xtask: {e}");
            return ExitCode::FAILURE;
        }
        // Installing may have started the system's own node.
        if own_node || !answers(DEFAULT_BROKER) {
            eprintln!("xtask: starting a throwaway RabbitMQ node for the demo");
            let t = Instant::now();
            let started = OAuthBroker::start(BrokerOptions::default());
            let broker = match started {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("xtask: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let port = broker.amqp_port();
            eprintln!(
                "xtask: throwaway node {} on 127.0.0.1:{port} ready in {:.1} s (stopped after the demo)",
                broker.node_name(),
                t.elapsed().as_secs_f64()
            );
            node = Some(broker.node_name().to_owned());
            if let Ok(mut slot) = running.broker.lock() {
                *slot = Some(broker);
            }
            let files = workdir
                .as_ref()
                .map_err(|e| e.to_string())
                .and_then(|d| write_config(d.path(), port).map_err(|e| e.to_string()));
            match files {
                Ok((yaml, env)) => {
                    extra.extend(["--config".into(), yaml.display().to_string()]);
                    extra.extend(["--env-file".into(), env.display().to_string()]);
                }
                Err(e) => {
                    eprintln!("xtask: cannot write the demo configuration: {e}");
                    running.stop_node();
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let spawned = Command::new(&nost)
        .arg("demo")
        .args(&extra)
        .args(args)
        .current_dir(workspace_root())
        .spawn();
    let ok = match spawned {
        Ok(mut child) => {
            running.child.store(child.id(), Ordering::SeqCst);
            let ok = child.wait().is_ok_and(|s| s.success());
            running.child.store(0, Ordering::SeqCst);
            ok
        }
        Err(e) => {
            eprintln!("xtask: could not run {}: {e}", nost.display());
            false
        }
    };
    if let Some(name) = node {
        running.stop_node();
        eprintln!("xtask: throwaway node {name} stopped");
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
