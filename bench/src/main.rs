//! `nost-bench`: the measurements behind `cargo xtask bench`.
//!
//! Raw lapin, nost-rs and Python `nost_tools` 3.6.0 on the same broker in
//! the same run, each figure the median of several repetitions, reported as
//! ratios (a shared, noisy machine makes absolute numbers travel badly).
//! It is not a test: nothing here passes or fails on a timing.
//!
//! The measured clients run as child processes of this binary (`child …`
//! subcommands, or the scripts in `bench/python`) so the OS accounts CPU and
//! memory to them alone.

mod child;
mod constellation;
mod consumer;
mod ctx;
mod fidelity;
mod latency;
mod many;
mod measure;
mod plot;
mod proc;
mod publish;
mod renewal;
mod report;
mod startup;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use nost_testkit::KeycloakEmulator;
use nost_testkit::{BrokerOptions, OAuthBroker, OAuthBrokerInfo};

use crate::ctx::Ctx;
use crate::publish::Publisher;
use crate::report::Report;
use crate::startup::Starter;

#[derive(Parser)]
#[command(
    name = "nost-bench",
    about = "nost-rs benchmarks (run through `cargo xtask bench`)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every benchmark and write the table and the JSON.
    Run(RunArgs),
    /// A measured process (spawned by `run`).
    #[command(subcommand, hide = true)]
    Child(child::Child),
}

#[derive(clap::Args, Debug, Clone)]
struct RunArgs {
    /// Repetitions of each publish and start-up measurement (median reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Messages per publish run.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Seconds of publishing under 1 s token renewals.
    #[arg(long, default_value_t = 30)]
    renewal_secs: u64,
    /// The paced second run under renewal (messages per second).
    #[arg(long, default_value_t = 1000.0)]
    paced_rate: f64,
    /// Messages per paced latency run.
    #[arg(long, default_value_t = 5_000)]
    latency_messages: usize,
    /// The paced latency runs' rate (messages per second).
    #[arg(long, default_value_t = 1000.0)]
    latency_rate: f64,
    /// Applications sharing one service-account session.
    #[arg(long, default_value_t = 200)]
    apps: usize,
    /// Renewal cycles watched with the many applications.
    #[arg(long, default_value_t = 5)]
    renewals: usize,
    /// Where the JSON goes (`bench-<UTC time>.json` and `latest.json`).
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// The cargo target directory (the Python venv lives under it).
    #[arg(long, default_value = "target")]
    target_dir: PathBuf,
    /// Leave Python nost_tools out (no venv, no PyPI).
    #[arg(long)]
    no_python: bool,
    /// Run only these suites.
    #[arg(long, value_delimiter = ',', default_values = ["publish", "latency", "fidelity", "startup", "renewal", "many", "constellation"])]
    only: Vec<Suite>,
    /// Also measure the nost-rs publisher of this other nost-bench build
    /// (e.g. one built before a change), in the same run.
    #[arg(long)]
    nost_before: Option<PathBuf>,
    /// Applications of the constellation suite (nost-rs).
    #[arg(long, default_value_t = 1000)]
    constellation_apps: usize,
    /// nost_tools Applications in one Python process for the constellation.
    #[arg(long, default_value_t = 100)]
    constellation_python_apps: usize,
    /// Seconds of status.time in the constellation suite.
    #[arg(long, default_value_t = 60)]
    constellation_secs: u64,
    /// The default broker's AMQP port (guest/guest).
    #[arg(long, default_value_t = 5672)]
    amqp_port: u16,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Suite {
    Publish,
    Latency,
    Fidelity,
    Startup,
    Renewal,
    Many,
    Constellation,
}

/// A name unique to this run.
pub(crate) fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "bench{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nost-bench: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let res = match cli.command {
        Cmd::Child(c) => rt.block_on(child::run(c)),
        Cmd::Run(args) => rt.block_on(run(args)),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nost-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn step(what: &str) {
    eprintln!("bench: {what}");
}

async fn run(args: RunArgs) -> Result<()> {
    let python = if args.no_python {
        None
    } else {
        step("Python nost_tools 3.6.0 venv");
        // Children run in another directory: the path must be absolute.
        let target = std::path::absolute(&args.target_dir)?;
        let py = tokio::task::spawn_blocking(move || nost_testkit::nost_tools_python(&target))
            .await?
            .map_err(anyhow::Error::msg)
            .context("Python nost_tools (use --no-python to leave it out)")?;
        Some(py)
    };
    let mut ctx = Ctx::new(python, args.amqp_port)?;
    ctx.before_exe = args.nost_before.clone();
    let mut report = Report::new(&args, &ctx);

    let publishers: Vec<Publisher> = [
        Publisher::Lapin,
        Publisher::LapinConfirms,
        Publisher::NostRsBefore,
        Publisher::NostRs,
        Publisher::NostTools,
    ]
    .into_iter()
    .filter(|p| *p != Publisher::NostTools || ctx.python.is_some())
    .filter(|p| *p != Publisher::NostRsBefore || ctx.before_exe.is_some())
    .collect();
    let runs = |s: Suite| args.only.contains(&s);
    if runs(Suite::Publish) {
        step("warm-up");
        for p in &publishers {
            publish::run_once(&ctx, *p, args.messages / 10).await?;
        }
    }
    for rep in (1..=args.reps).filter(|_| runs(Suite::Publish)) {
        for p in &publishers {
            let s = publish::run_once(&ctx, *p, args.messages).await?;
            eprintln!(
                "bench: publish {rep}/{} {:<17} {:>9.0} msg/s {:>7.2} µs CPU/msg, broker {:>6.2} µs/msg",
                args.reps,
                p.label(),
                s.msgs_per_s,
                s.cpu_us_per_msg,
                s.broker_us_per_msg.unwrap_or(f64::NAN)
            );
            report.publish_sample(*p, s);
        }
    }
    if runs(Suite::Latency) {
        for p in publishers
            .iter()
            .filter(|p| !matches!(p, Publisher::LapinConfirms | Publisher::NostRsBefore))
        {
            let s = latency::run_once(&ctx, *p, args.latency_messages, args.latency_rate).await?;
            eprintln!(
                "bench: latency {:<17} p50 {:>6.2} ms p99 {:>6.2} ms ({} of {})",
                p.label(),
                s.latency.p50_ms,
                s.latency.p99_ms,
                s.received,
                s.count
            );
            report.latency.push(s);
        }
    }
    let starters: Vec<Starter> = [Starter::NostRs, Starter::NostTools]
        .into_iter()
        .filter(|s| !matches!(s, Starter::NostTools) || ctx.python.is_some())
        .collect();
    for s in starters.iter().filter(|_| runs(Suite::Fidelity)) {
        step(&format!("scenario fidelity, {s:?}"));
        match fidelity::run_once(&ctx, *s).await {
            Ok(f) => {
                eprintln!(
                    "bench: fidelity {:<17} status.time p50 {:.1} ms p99 {:.1} ms, EXECUTING spread {:.1} ms",
                    f.who, f.time_p50_ms, f.time_p99_ms, f.executing_spread_ms
                );
                report.fidelity.push(f);
            }
            Err(e) => eprintln!("bench: scenario fidelity ({s:?}) failed: {e:#}"),
        }
    }
    for rep in (1..=args.reps).filter(|_| runs(Suite::Startup)) {
        for s in &starters {
            let secs = startup::run_once(&ctx, *s).await?;
            eprintln!(
                "bench: start-up {rep}/{} {s:?} {:.0} ms",
                args.reps,
                secs * 1e3
            );
            report.startup_sample(*s, secs);
        }
    }

    if runs(Suite::Constellation) {
        report.constellation = constellation::run(
            &ctx,
            args.constellation_apps,
            args.constellation_python_apps,
            args.constellation_secs,
        )
        .await;
    }

    if !runs(Suite::Renewal) && !runs(Suite::Many) {
        return report.finish();
    }
    let (own, node) = oauth_node().await?;
    let kc = KeycloakEmulator::start(renewal::REALM, node.signing_key()?).await;
    kc.add_client(renewal::CLIENT, Some(renewal::SECRET));
    if runs(Suite::Renewal) {
        for rate in [None, Some(args.paced_rate)] {
            step(&format!(
                "renewal under load: {} s at {}, token renewed every second",
                args.renewal_secs,
                rate.map_or("full rate".into(), |r| format!("{r} msgs/s"))
            ));
            let run_for = Duration::from_secs(args.renewal_secs);
            match renewal::run(&node, &kc, &ctx.body, run_for, rate).await {
                Ok(r) => report.renewal.push(r),
                Err(e) => eprintln!("bench: renewal under load failed: {e:#}"),
            }
        }
    }
    if runs(Suite::Many) {
        step(&format!(
            "{} applications sharing one service account",
            args.apps
        ));
        match many::run(&ctx, &node, &kc, args.apps, args.renewals).await {
            Ok(m) => report.many = Some(m),
            Err(e) => eprintln!("bench: many applications failed: {e:#}"),
        }
    }
    drop(kc);
    if let Some(mut broker) = own {
        tokio::task::spawn_blocking(move || broker.stop()).await?;
    }
    report.finish()?;
    Ok(())
}

/// The node of `cargo xtask node`/`integration` if its variables are set,
/// else one of our own (stopped at the end, or by its watchdog if we die).
async fn oauth_node() -> Result<(Option<OAuthBroker>, OAuthBrokerInfo)> {
    if let Some(info) = OAuthBrokerInfo::from_env() {
        return Ok((None, info));
    }
    step("starting an OAuth2 RabbitMQ node");
    let broker = tokio::task::spawn_blocking(|| OAuthBroker::start(BrokerOptions::default()))
        .await?
        .context("OAuth2 node")?;
    let info = broker.info().clone();
    Ok((Some(broker), info))
}
