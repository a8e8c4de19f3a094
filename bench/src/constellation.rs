//! A constellation in one process: many Applications, each sending a
//! `status.time` per second, with a connection each or one shared
//! connection (nost-rs), and as many nost_tools Applications in one Python
//! process. Start-up to all `status.ready`, resident memory, OS threads,
//! broker connections and CPU per application per second, each measured
//! in a child process of its own.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use futures_util::{StreamExt, TryStreamExt};
use nost_app::{Application, SharedConnection, StartOptions};
use serde::Serialize;

use crate::child::AppArgs;
use crate::ctx::Ctx;
use crate::measure::{cpu_time, rss_kib};
use crate::proc::{Proc, numbers};

/// Applications started at once by the Rust child.
const START_CONCURRENCY: usize = 20;
/// Broker sockets left for everyone else when the per-application
/// connections are capped to the broker's limit.
const SOCKETS_SPARE: usize = 64;

/// One client's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ConstellationRow {
    pub client: String,
    /// Asked for.
    pub requested: usize,
    /// Started (fewer when the broker's socket limit capped it).
    pub applications: usize,
    pub startup_s: f64,
    pub rss_mib: f64,
    pub threads: u64,
    pub broker_connections: usize,
    pub seconds: u64,
    pub messages_sent: u64,
    pub cpu_s: f64,
    pub cpu_us_per_app_per_s: f64,
    pub note: String,
}

/// The three clients, in one run.
pub async fn run(ctx: &Ctx, apps: usize, py_apps: usize, secs: u64) -> Vec<ConstellationRow> {
    let mut rows = Vec::new();
    let (limit, used) = broker_sockets();
    let room = limit.saturating_sub(used + SOCKETS_SPARE);
    let each = apps.min(room);
    let mut cases: Vec<(&str, usize, &str)> = vec![
        ("nost-rs, shared connection", apps, "shared"),
        ("nost-rs, a connection each", each, "each"),
    ];
    if ctx.before_exe.is_some() {
        // The same shared-connection child of the other build, in the same
        // run: before/after as a ratio.
        cases.insert(1, ("nost-rs (before), shared connection", apps, "shared"));
    }
    for (label, n, mode) in cases {
        crate::step(&format!(
            "constellation: {n} applications, {label}, {secs} s of status.time"
        ));
        let prefix = crate::unique("const");
        let mut cmd = ctx.rust_child("constellation", &prefix, None);
        if label.contains("(before)")
            && let Some(exe) = &ctx.before_exe
        {
            let std = cmd.as_std_mut();
            let args: Vec<std::ffi::OsString> = std.get_args().map(Into::into).collect();
            cmd = tokio::process::Command::new(exe);
            cmd.args(args);
        }
        cmd.args(["--apps", &n.to_string(), "--secs", &secs.to_string()]);
        if mode == "shared" {
            cmd.arg("--shared");
        }
        cmd.env("NOST_BENCH_BODY", &ctx.body);
        let mut note = String::new();
        if mode == "each" && n < apps {
            note = format!(
                "capped: the broker allows {limit} sockets ({used} in use, {SOCKETS_SPARE} left for others)"
            );
        }
        match measure(label, cmd, apps, secs, note).await {
            Ok(r) => rows.push(r),
            Err(e) => eprintln!("bench: constellation {label} failed: {e:#}"),
        }
    }
    if ctx.python.is_some() {
        crate::step(&format!(
            "constellation: {py_apps} nost_tools applications in one Python process, {secs} s"
        ));
        let prefix = crate::unique("constpy");
        match ctx.python_child("constellation.py", &prefix) {
            Ok(mut cmd) => {
                cmd.args([py_apps.to_string(), secs.to_string()]);
                cmd.env("NOST_BENCH_BODY", &ctx.body);
                match measure(
                    "nost_tools",
                    cmd,
                    py_apps,
                    secs,
                    "started one after another (nost_tools is synchronous)".into(),
                )
                .await
                {
                    Ok(r) => rows.push(r),
                    Err(e) => eprintln!("bench: constellation nost_tools failed: {e:#}"),
                }
            }
            Err(e) => eprintln!("bench: constellation nost_tools: {e:#}"),
        }
    }
    rows
}

/// Spawn, wait for `ready STARTUP_S N RSS_KIB THREADS`, count the broker
/// connections, say `go`, read `done USER_S SYS_S RSS_KIB THREADS SENT`.
async fn measure(
    label: &str,
    cmd: tokio::process::Command,
    requested: usize,
    secs: u64,
    note: String,
) -> Result<ConstellationRow> {
    let mut child = Proc::spawn(label, cmd)?;
    let ready = numbers(&child.expect("ready", Duration::from_secs(900)).await?);
    ensure!(ready.len() == 4, "unexpected ready line from {label}");
    let pid = child.pid().context("child pid")?;
    let connections = tokio::task::spawn_blocking(move || amqp_sockets_of(pid)).await?;
    child.send("go").await?;
    let done = numbers(
        &child
            .expect("done", Duration::from_secs(secs + 300))
            .await?,
    );
    ensure!(done.len() == 5, "unexpected done line from {label}");
    child.finish(Duration::from_secs(120)).await;
    let started = ready[1] as usize;
    let cpu = done[0] + done[1];
    Ok(ConstellationRow {
        client: label.to_owned(),
        requested,
        applications: started,
        startup_s: ready[0],
        rss_mib: done[2].max(ready[2]) / 1024.0,
        threads: done[3].max(ready[3]) as u64,
        broker_connections: connections,
        seconds: secs,
        messages_sent: done[4] as u64,
        cpu_s: cpu,
        cpu_us_per_app_per_s: cpu * 1e6 / (started.max(1) as f64 * secs.max(1) as f64),
        note,
    })
}

/// The default node's (sockets limit, sockets used).
fn broker_sockets() -> (usize, usize) {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["status", "--formatter", "json"])
        .output();
    let v: Option<serde_json::Value> = out
        .ok()
        .and_then(|o| serde_json::from_slice(&o.stdout).ok());
    let fd = v.as_ref().and_then(|v| v.get("file_descriptors"));
    let get = |k: &str| {
        fd.and_then(|f| f.get(k))
            .and_then(serde_json::Value::as_u64)
            .map(|x| x as usize)
    };
    (
        get("sockets_limit").unwrap_or(usize::MAX / 2),
        get("sockets_used").unwrap_or(0),
    )
}

/// Established TCP connections of process `pid` to the broker port 5672
/// (`ss`): its broker connections, whatever the client names them.
fn amqp_sockets_of(pid: u32) -> usize {
    let tag = format!("pid={pid},");
    std::process::Command::new("ss")
        .args(["-tnpH", "state", "established", "( dport = :5672 )"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains(&tag))
                .count()
        })
        .unwrap_or(0)
}

/// OS threads of this process (`Threads:` of `/proc/self/status`).
fn threads() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Raise the soft open-files limit to the hard one: a connection each
/// needs a descriptor each.
fn raise_nofile() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// The child: start `count` applications (on one shared connection with
/// `shared`), each sends `status.ready`; print `ready`; on `go` each sends
/// a `status.time` per second for `secs` s; print `done`.
pub async fn child(args: AppArgs, count: usize, secs: u64, shared: bool) -> Result<()> {
    raise_nofile();
    let body = std::env::var("NOST_BENCH_BODY").context("NOST_BENCH_BODY is not set")?;
    let (config, options) = args.load()?;
    let t0 = Instant::now();
    let conn = if shared {
        let o = nost_app::SharedConnectionOptions::new(options.auth.clone())
            .with_connection_name(format!("nost-rs {} shared", args.prefix));
        Some(SharedConnection::start(&config, o).await?)
    } else {
        None
    };
    let options = StartOptions {
        shared_connection: conn.clone(),
        ..options
    };
    let apps: Vec<Application> = futures_util::stream::iter(0..count)
        .map(|i| {
            let (config, options, prefix) = (&config, options.clone(), &args.prefix);
            async move {
                let a = Application::start_up(&format!("sat{i}"), prefix, config, options).await?;
                a.ready().await?;
                a.flush(Duration::from_secs(60)).await?;
                Ok::<_, nost_app::AppError>(a)
            }
        })
        .buffer_unordered(START_CONCURRENCY)
        .try_collect()
        .await?;
    let startup = t0.elapsed().as_secs_f64();
    say(&format!(
        "ready {startup:.6} {} {} {}",
        apps.len(),
        rss_kib().unwrap_or(0),
        threads()
    ));
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(
        &mut tokio::io::BufReader::new(tokio::io::stdin()),
        &mut line,
    )
    .await?;
    let start = cpu_time();
    let sent: Vec<u64> = futures_util::future::join_all(apps.iter().map(|a| {
        let body = body.as_str();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0;
            for _ in 0..secs {
                tick.tick().await;
                if a.send_message("status.time", body).await.is_ok() {
                    n += 1;
                }
            }
            // The first tick is at once: one more makes the measured span
            // `secs` seconds, as the Python child's (it sleeps after its
            // last round).
            tick.tick().await;
            n
        }
    }))
    .await;
    for a in &apps {
        a.flush(Duration::from_secs(60)).await?;
    }
    let (u, s) = cpu_time();
    say(&format!(
        "done {:.6} {:.6} {} {} {}",
        u.saturating_sub(start.0).as_secs_f64(),
        s.saturating_sub(start.1).as_secs_f64(),
        rss_kib().unwrap_or(0),
        threads(),
        sent.iter().sum::<u64>()
    ));
    futures_util::future::join_all(apps.iter().map(|a| a.shut_down())).await;
    if let Some(c) = conn {
        c.shut_down().await;
    }
    Ok(())
}

fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The rows of the table.
pub fn render(rows: &[ConstellationRow], t: &mut String) {
    if rows.is_empty() {
        return;
    }
    t.push_str(
        "\nA constellation in one process: each application sends a status.time per second\n",
    );
    for r in rows {
        t.push_str(&format!(
            "  {:<28} {:>5} apps  start-up {:>7.2} s  RSS {:>7.1} MiB  threads {:>5}  broker connections {:>5}  CPU/app/s {:>8.1} µs  ({} sent in {} s){}\n",
            r.client,
            r.applications,
            r.startup_s,
            r.rss_mib,
            r.threads,
            r.broker_connections,
            r.cpu_us_per_app_per_s,
            r.messages_sent,
            r.seconds,
            if r.note.is_empty() { String::new() } else { format!("  [{}]", r.note) }
        ));
    }
    let by = |k: &str| {
        rows.iter()
            .find(|r| r.client.contains(k) && !r.client.contains("(before)"))
    };
    if let (Some(s), Some(b)) = (
        by("shared"),
        rows.iter().find(|r| r.client.contains("(before)")),
    ) {
        t.push_str(&format!(
            "  CPU/app/s nost-rs shared over the same of the --nost-before build: {:.3}\n",
            s.cpu_us_per_app_per_s / b.cpu_us_per_app_per_s
        ));
    }
    if let (Some(s), Some(p)) = (by("shared"), by("nost_tools")) {
        t.push_str(&format!(
            "  CPU/app/s nost-rs shared over nost_tools: {:.3}\n",
            s.cpu_us_per_app_per_s / p.cpu_us_per_app_per_s
        ));
    }
}
