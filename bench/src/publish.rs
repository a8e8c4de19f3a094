//! Publish throughput and client CPU per message: a publisher process sends
//! N messages; the clock runs from its `ready` until an independent
//! consumer has received all N.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::process::Command;

use crate::consumer::{Consumer, local_uri};
use crate::ctx::Ctx;
use crate::proc::{Proc, numbers};

/// Who publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Publisher {
    /// (a) a bare lapin loop.
    Lapin,
    /// (a') lapin with publisher confirms, awaited at the end.
    LapinConfirms,
    /// (b) nost-rs `Application::send_message`.
    NostRs,
    /// (c) Python nost_tools 3.6.0 `Application.send_message`.
    NostTools,
    /// (b) from another build of nost-bench (`--nost-before`), to compare
    /// a change in one run.
    NostRsBefore,
}

impl Publisher {
    pub fn label(self) -> &'static str {
        match self {
            Publisher::Lapin => "raw lapin",
            Publisher::LapinConfirms => "lapin + confirms",
            Publisher::NostRs => "nost-rs",
            Publisher::NostTools => "nost_tools 3.6.0",
            Publisher::NostRsBefore => "nost-rs (before)",
        }
    }
}

/// One run of one publisher.
#[derive(Debug, Clone, Serialize)]
pub struct PublishSample {
    /// Publisher `ready` to the last message at the consumer.
    pub seconds: f64,
    /// Messages per second over that time.
    pub msgs_per_s: f64,
    /// User + system CPU of the publisher process over the same time.
    pub cpu_seconds: f64,
    /// CPU per message in microseconds.
    pub cpu_us_per_msg: f64,
    /// The broker's CPU per message over the same time (µs; the broker is
    /// shared, so whatever else it did then counts too). `None` when its
    /// process was not found.
    pub broker_us_per_msg: Option<f64>,
}

/// The broker's process (listening on `port`), looked up once.
fn broker_pid(port: u16) -> Option<u32> {
    static PID: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *PID.get_or_init(|| crate::measure::listener_pid(port))
}

/// Run `who` once with `count` messages.
pub async fn run_once(ctx: &Ctx, who: Publisher, count: usize) -> Result<PublishSample> {
    let prefix = crate::unique("tput");
    let consumer = Consumer::start(
        local_uri(ctx.amqp_port, "guest", "guest"),
        &prefix,
        &format!("{prefix}.#"),
        None,
    )
    .await?;
    let mut cmd = match who {
        Publisher::Lapin | Publisher::LapinConfirms => {
            let mut c = Command::new(&ctx.exe);
            c.args(["child", "publish-lapin", "--url", &ctx.default_url()])
                .args(["--prefix", &prefix, "--count", &count.to_string()]);
            if who == Publisher::LapinConfirms {
                c.arg("--confirms");
            }
            c
        }
        Publisher::NostRs | Publisher::NostRsBefore => {
            let mut c = ctx.rust_child("publish-nost", &prefix, None);
            if who == Publisher::NostRsBefore {
                let exe = ctx.before_exe.as_ref().context("--nost-before")?;
                let mut b = Command::new(exe);
                b.args(c.as_std().get_args());
                c = b;
            }
            c.args(["--count", &count.to_string()]);
            c
        }
        Publisher::NostTools => {
            let mut c = ctx.python_child("publish.py", &prefix)?;
            c.arg(count.to_string());
            c
        }
    };
    cmd.env("NOST_BENCH_BODY", &ctx.body);
    let mut child = Proc::spawn(who.label(), cmd)?;
    child.expect("ready", Duration::from_secs(60)).await?;
    let t0 = Instant::now();
    let broker = broker_pid(ctx.amqp_port);
    let broker0 = broker.and_then(crate::measure::process_cpu);
    let t1 = consumer.wait_for(count, Duration::from_secs(30)).await?;
    let broker1 = broker.and_then(crate::measure::process_cpu);
    child.send("report").await?;
    let cpu = numbers(&child.expect("cpu", Duration::from_secs(60)).await?);
    child.finish(Duration::from_secs(20)).await;
    let extra = consumer.count().saturating_sub(count);
    consumer.close().await;
    if extra > 0 {
        eprintln!("bench: {} delivered {extra} duplicates", who.label());
    }
    let seconds = (t1 - t0).as_secs_f64();
    let cpu_seconds = cpu.iter().sum::<f64>();
    Ok(PublishSample {
        seconds,
        msgs_per_s: count as f64 / seconds,
        cpu_seconds,
        cpu_us_per_msg: cpu_seconds * 1e6 / count as f64,
        broker_us_per_msg: broker0
            .zip(broker1)
            .map(|(a, b)| (b.saturating_sub(a)).as_secs_f64() * 1e6 / count as f64),
    })
}
