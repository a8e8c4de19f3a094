//! `cargo xtask`: the project's automation.
//!
//! - `test`: everything: `cargo fmt --check`, clippy with warnings as
//!   errors, `cargo doc` with warnings denied and `cargo package` of the
//!   published crates, then all workspace tests with a throwaway OAuth2
//!   RabbitMQ node beside the default one.
//! - `integration`: only the workspace-level suites (`tests/`), with the node.
//! - `node`: start a node, print its `NOST_TEST_OAUTH_*` variables, stop it
//!   on Enter or Ctrl-C (for running single tests by hand).
//! - `bench`: build `nost-bench` in release mode and run every benchmark
//!   (not part of `test`: timings never decide a pass).
//! - `cluster`: a RabbitMQ cluster on loopback until Enter or Ctrl-C.
//! - `demo`: the README's main job: `nost demo` on the local broker, with a
//!   throwaway node (and RabbitMQ installed first) when none answers.
//! - `fuzz [SECONDS]`: run each cargo-fuzz target of `fuzz/` (nightly).
//! - `keycloak [--write DIR]`: a real Keycloak with the NOS-T realm and an
//!   OAuth2 node trusting it; prints URLs, clients, users and a YAML + `.env`
//!   per mode, stops both on Enter or Ctrl-C. `test` and `integration` start
//!   the same Keycloak in the background (`NOST_TEST_KEYCLOAK_*`; set
//!   `NOST_XTASK_KEYCLOAK=0` to leave it out).
//!
//! The node is always stopped and its directory removed, also when tests
//! fail or on Ctrl-C/SIGTERM; a final check looks for leftovers.

mod fuzz;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use nost_testkit::Cluster;
use nost_testkit::{BrokerOptions, OAuthBroker};

mod cluster;
mod demo;

mod keycloak;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "nost-rs automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// fmt check, clippy -D warnings, all workspace tests with an OAuth2 node.
    Test {
        /// Skip `cargo fmt --all -- --check`.
        #[arg(long)]
        no_fmt: bool,
        /// Skip `cargo clippy --workspace --all-targets -- -D warnings`.
        #[arg(long)]
        no_clippy: bool,
        /// Skip `cargo doc` (warnings denied) and `cargo package` of the
        /// publishable crates.
        #[arg(long)]
        no_publish_check: bool,
        /// Extra arguments for `cargo test --workspace` (after `--`).
        #[arg(last = true)]
        test_args: Vec<String>,
    },
    /// `cargo test -p nost-tests` with an OAuth2 node.
    Integration {
        /// Extra arguments for `cargo test -p nost-tests` (after `--`).
        #[arg(last = true)]
        test_args: Vec<String>,
    },
    /// Start an OAuth2 node, print its environment, stop it on Enter.
    Node,
    /// Run every cargo-fuzz target of `fuzz/` for SECONDS each (nightly).
    Fuzz {
        /// Seconds per target.
        #[arg(default_value_t = 60)]
        seconds: u64,
    },
    /// Benchmarks: raw lapin, nost-rs and Python nost_tools side by side.
    Bench {
        /// Arguments for `nost-bench run` (after `--`, e.g. `--reps 3`).
        #[arg(last = true)]
        bench_args: Vec<String>,
    },
    /// A RabbitMQ cluster on loopback (basic auth and JWTs), until Enter,
    /// Ctrl-C or SIGTERM.
    Cluster {
        /// How many nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Also write DIR/{cluster.yaml,.env,nodes.txt} and DIR/ready last.
        #[arg(long, value_name = "DIR")]
        write: Option<PathBuf>,
    },
    /// The main job: `nost demo` on the local broker, starting a throwaway
    /// node (installing rabbitmq-server first) when none answers.
    Demo {
        /// Always start a throwaway node, even when localhost:5672 answers.
        #[arg(long)]
        own_node: bool,
        /// Arguments for `nost demo` (after `--`, e.g. `--minutes 5`).
        #[arg(last = true)]
        demo_args: Vec<String>,
    },
    /// A real Keycloak (NOS-T realm) and an OAuth2 node trusting it, until Enter.
    Keycloak {
        /// Also write DIR/{service_account,user_account,user_otp,pre_acquired}.{yaml,env},
        /// the pre-acquired tokens, otp-secret.txt and, last, DIR/ready.
        #[arg(long, value_name = "DIR")]
        write: Option<PathBuf>,
        /// Access token lifespan of the realm, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        token_lifespan: u32,
    },
}

/// The node and the running cargo child, reachable from the signal handler.
#[derive(Default)]
struct Running {
    broker: Mutex<Option<OAuthBroker>>,
    cluster: Mutex<Option<Cluster>>,
    /// Files that say "ready" (`--write DIR`): removed when stopping.
    ready_files: Mutex<Vec<PathBuf>>,
    child: AtomicU32,
    interrupted: AtomicBool,
}

impl Running {
    /// Stop the node; the lock is held meanwhile, so a second caller (main
    /// thread vs. signal handler) waits until the node is really gone.
    fn stop_node(&self) {
        let mut slot = match self.broker.lock() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(mut broker) = slot.take() {
            let t = Instant::now();
            broker.stop();
            eprintln!(
                "xtask: RabbitMQ node stopped in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
        let mut slot = match self.cluster.lock() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Ok(mut files) = self.ready_files.lock() {
            for f in files.drain(..) {
                let _ = std::fs::remove_file(f);
            }
        }
        if let Some(mut cluster) = slot.take() {
            let t = Instant::now();
            cluster.stop();
            eprintln!(
                "xtask: RabbitMQ cluster stopped in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
    }
}

/// One line per step for the summary.
struct Summary(Vec<(String, bool, f64)>);

impl Summary {
    fn record(&mut self, name: &str, ok: bool, started: Instant) -> bool {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "xtask: step {name}: {} ({secs:.1} s)",
            if ok { "ok" } else { "FAILED" }
        );
        self.0.push((name.to_owned(), ok, secs));
        ok
    }

    fn print(&self) -> bool {
        eprintln!("\nxtask summary:");
        for (name, ok, secs) in &self.0 {
            eprintln!(
                "  {:<8} {name} ({secs:.1} s)",
                if *ok { "ok" } else { "FAILED" }
            );
        }
        let all = self.0.iter().all(|(_, ok, _)| *ok);
        eprintln!("xtask: {}", if all { "all ok" } else { "FAILED" });
        all
    }
}

/// The crates meant for crates.io (the others have `publish = false`).
const PUBLISHED: [&str; 5] = [
    "nost-config",
    "nost-auth",
    "nost-amqp",
    "nost-app",
    "nost-cli",
];

/// Ready to publish: the docs build with warnings denied (broken links, bad
/// code blocks) and the published crates package (manifests complete, path
/// dependencies carry versions). Both reuse clippy's dependency builds.
fn publish_check(running: &Running, summary: &mut Summary) {
    let t = Instant::now();
    let env = [("RUSTDOCFLAGS".to_owned(), "-D warnings".to_owned())];
    let ok = cargo(running, &["doc", "--no-deps", "--workspace"], &[], &env);
    summary.record(
        "cargo doc --no-deps --workspace (RUSTDOCFLAGS=-D warnings)",
        ok,
        t,
    );
    let t = Instant::now();
    let mut args = vec!["package", "--no-verify", "--allow-dirty"];
    for p in PUBLISHED {
        args.extend(["-p", p]);
    }
    let ok = cargo(running, &args, &[], &[]);
    summary.record("cargo package --no-verify (the published crates)", ok, t);
}

fn cargo(running: &Running, args: &[&str], extra: &[String], env: &[(String, String)]) -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut line = args.join(" ");
    if !extra.is_empty() {
        line = format!("{line} -- {}", extra.join(" "));
    }
    eprintln!("xtask: cargo {line}");
    let mut cmd = Command::new(cargo);
    cmd.args(args);
    // `cargo run` set these for xtask itself; inherited, they look like a
    // changed environment to build scripts (ring's reads CARGO_PKG_*), which
    // then rebuild on every switch between `cargo build` and `cargo xtask`.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || matches!(
                key.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
            )
        {
            cmd.env_remove(key.as_ref());
        }
    }
    if !extra.is_empty() {
        cmd.arg("--").args(extra);
    }
    let Ok(mut child) = cmd.envs(env.iter().cloned()).spawn() else {
        eprintln!("xtask: could not run cargo");
        return false;
    };
    running.child.store(child.id(), Ordering::SeqCst);
    let ok = child.wait().map(|s| s.success()).unwrap_or(false);
    running.child.store(0, Ordering::SeqCst);
    if running.interrupted.load(Ordering::SeqCst) {
        // The signal handler stops the node and exits; do not race it.
        loop {
            std::thread::park();
        }
    }
    ok
}

/// What the steps after the start need to know about the node.
struct Started {
    env: Vec<(String, String)>,
    node: String,
    dir: PathBuf,
}

fn start_node(running: &Running, extra_config: Vec<String>) -> Result<Started> {
    eprintln!("xtask: starting the OAuth2 RabbitMQ node");
    let started = Instant::now();
    let broker = OAuthBroker::start(BrokerOptions {
        extra_config,
        ..BrokerOptions::default()
    })
    .context("OAuth2 node")?;
    eprintln!(
        "xtask: OAuth2 node {} ready in {:.1} s (amqp {}, amqps {})",
        broker.node_name(),
        started.elapsed().as_secs_f64(),
        broker.amqp_port(),
        broker.amqps_port()
    );
    let out = Started {
        env: broker.export_env(),
        node: broker.node_name().to_owned(),
        dir: broker.info().dir.clone(),
    };
    if let Ok(mut slot) = running.broker.lock() {
        *slot = Some(broker);
    }
    Ok(out)
}

/// Nothing may be left behind: the directory is gone and epmd does not
/// know the node.
fn check_leftovers(node: &str, dir: &std::path::Path) -> Result<()> {
    let short = node.split('@').next().unwrap_or(node);
    let mut names = String::new();
    // epmd may need a moment to drop the name after the node died.
    for _ in 0..20 {
        names = Command::new("epmd")
            .arg("-names")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if !names.lines().any(|l| l.contains(&format!("name {short} "))) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let registered = names.lines().any(|l| l.contains(&format!("name {short} ")));
    if registered || dir.exists() {
        bail!(
            "left behind: node {node} registered in epmd: {registered}; directory {} exists: {}",
            dir.display(),
            dir.exists()
        );
    }
    Ok(())
}

/// Keycloak, booting in the background from the start of the run (when
/// wanted and it could be prepared).
fn start_keycloak(summary: &mut Summary) -> Option<keycloak::Background> {
    if !keycloak::wanted() {
        eprintln!("xtask: NOST_XTASK_KEYCLOAK=0: no real Keycloak for this run");
        return None;
    }
    let t = Instant::now();
    match keycloak::Background::start() {
        Ok(kc) => Some(kc),
        Err(e) => {
            eprintln!("xtask: {e:#}");
            summary.record("prepare Keycloak", false, t);
            None
        }
    }
}

/// Build the tests first (the node would idle meanwhile), then start the
/// node, run them with its environment (and Keycloak's, started earlier in
/// the background), stop both, check for leftovers.
fn tests_with_node(
    running: &Running,
    summary: &mut Summary,
    test_args: &[&str],
    extra: &[String],
    mut kc: Option<keycloak::Background>,
) -> bool {
    let t = Instant::now();
    let mut build: Vec<&str> = test_args.to_vec();
    build.push("--no-run");
    if !summary.record("build tests", cargo(running, &build, &[], &[]), t) {
        if let Some(kc) = kc {
            let _ = kc.stop();
        }
        return false;
    }
    let t = Instant::now();
    let trust = kc.as_ref().map(keycloak::Background::broker_config);
    let Started { mut env, node, dir } = match start_node(running, trust.unwrap_or_default()) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            return summary.record("start OAuth2 node", false, t);
        }
    };
    summary.record("start OAuth2 node", true, t);
    let mut kc_ok = true;
    if let Some(kc) = kc.as_mut() {
        let t = Instant::now();
        match kc.wait() {
            Ok(kc_env) => env.extend(kc_env),
            Err(e) => {
                eprintln!("xtask: {e:#}");
                kc_ok = false;
            }
        }
        summary.record("wait for Keycloak", kc_ok, t);
    }
    let t = Instant::now();
    let ok = kc_ok && cargo(running, test_args, extra, &env);
    summary.record(&format!("cargo {}", test_args.join(" ")), ok, t);
    let t = Instant::now();
    running.stop_node();
    let mut clean = match check_leftovers(&node, &dir) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            false
        }
    };
    if let Some(kc) = kc
        && let Err(e) = kc.stop()
    {
        eprintln!("xtask: {e:#}");
        clean = false;
    }
    summary.record("stop node, no leftovers", clean, t);
    ok && clean
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let running = Arc::new(Running::default());
    let on_signal = Arc::clone(&running);
    // Ctrl-C / SIGTERM / SIGHUP: stop the cargo child and the node (it
    // lives in its own process group, so it gets no signal of its own).
    let handler = ctrlc::set_handler(move || {
        on_signal.interrupted.store(true, Ordering::SeqCst);
        let child = on_signal.child.load(Ordering::SeqCst);
        if child != 0 {
            let _ = Command::new("kill")
                .args(["-TERM", &child.to_string()])
                .status();
        }
        on_signal.stop_node();
        keycloak::stop_on_signal();
        eprintln!("xtask: interrupted");
        std::process::exit(130);
    });
    if let Err(e) = handler {
        eprintln!("xtask: cannot handle signals ({e}); Ctrl-C may leave the node running");
    }
    let mut summary = Summary(Vec::new());
    match cli.command {
        Cmd::Test {
            no_fmt,
            no_clippy,
            no_publish_check,
            test_args,
        } => {
            let kc = start_keycloak(&mut summary);
            if !no_fmt {
                let t = Instant::now();
                let ok = cargo(&running, &["fmt", "--all", "--", "--check"], &[], &[]);
                summary.record("cargo fmt --all -- --check", ok, t);
            }
            if !no_clippy {
                let t = Instant::now();
                let args = [
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ];
                let ok = cargo(&running, &args, &[], &[]);
                summary.record("cargo clippy --workspace --all-targets -D warnings", ok, t);
            }
            if !no_publish_check {
                publish_check(&running, &mut summary);
            }
            tests_with_node(
                &running,
                &mut summary,
                &["test", "--workspace"],
                &test_args,
                kc,
            );
        }
        Cmd::Integration { test_args } => {
            let kc = start_keycloak(&mut summary);
            tests_with_node(
                &running,
                &mut summary,
                &["test", "-p", "nost-tests"],
                &test_args,
                kc,
            );
        }
        Cmd::Bench { bench_args } => return bench(&running, &bench_args),
        Cmd::Cluster { nodes, write } => {
            return cluster::cluster(&running, nodes, write.as_deref());
        }
        Cmd::Demo {
            own_node,
            demo_args,
        } => return demo::demo(&running, own_node, &demo_args),
        Cmd::Fuzz { seconds } => return fuzz::run(seconds),
        Cmd::Keycloak {
            write,
            token_lifespan,
        } => return keycloak::command(write.as_deref(), token_lifespan),
        Cmd::Node => {
            return match start_node(&running, Vec::new()) {
                Ok(Started { env, node, dir }) => {
                    for (k, v) in &env {
                        println!("export {k}='{v}'");
                    }
                    eprintln!("xtask: press Enter (or Ctrl-C) to stop {node}");
                    let mut line = String::new();
                    let _ = std::io::stdin().read_line(&mut line);
                    running.stop_node();
                    match check_leftovers(&node, &dir) {
                        Ok(()) => ExitCode::SUCCESS,
                        Err(e) => {
                            eprintln!("xtask: {e:#}");
                            ExitCode::FAILURE
                        }
                    }
                }
                Err(e) => {
                    eprintln!("xtask: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    running.stop_node();
    if summary.print() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `cargo build --release -p nost-bench`, then `nost-bench run ARGS` from
/// the workspace root (it starts and stops its own OAuth2 node).
fn bench(running: &Running, args: &[String]) -> ExitCode {
    if !cargo(
        running,
        &["build", "--release", "-p", "nost-bench"],
        &[],
        &[],
    ) {
        return ExitCode::FAILURE;
    }
    let root = workspace_root();
    let target = target_dir();
    let exe = target.join("release/nost-bench");
    eprintln!("xtask: {} run {}", exe.display(), args.join(" "));
    let spawned = Command::new(&exe)
        .arg("run")
        .arg("--target-dir")
        .arg(&target)
        .arg("--out")
        .arg(target.join("bench"))
        .args(args)
        .current_dir(&root)
        .spawn();
    let Ok(mut child) = spawned else {
        eprintln!("xtask: could not run {}", exe.display());
        return ExitCode::FAILURE;
    };
    running.child.store(child.id(), Ordering::SeqCst);
    let ok = child.wait().map(|s| s.success()).unwrap_or(false);
    running.child.store(0, Ordering::SeqCst);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The workspace's top directory.
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where cargo puts what it builds.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}
