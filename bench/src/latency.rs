//! Publish → consumer delivery latency at a paced rate (1,000 msgs/s by
//! default) for raw lapin, nost-rs and nost_tools in the same run.
//!
//! Each publisher sends message `i` at `start + i / rate` and puts the
//! wallclock of the send call (µs since the epoch, 16 characters) before
//! the `status.time` body; the consumer subtracts it from the arrival
//! wallclock. Publisher, consumer and broker share one machine and clock.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::consumer::{Consumer, local_uri};
use crate::ctx::Ctx;
use crate::proc::{Proc, numbers};
use crate::publish::Publisher;
use crate::renewal::Latency;

/// One paced run of one publisher.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySample {
    pub publisher: Publisher,
    pub rate: f64,
    pub count: usize,
    pub received: usize,
    pub latency: Latency,
    /// Publisher CPU per message at this rate, in µs.
    pub cpu_us_per_msg: f64,
}

/// The wallclock in µs since the epoch.
pub fn now_micros() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// `count` messages from `who` at `rate` per second.
pub async fn run_once(ctx: &Ctx, who: Publisher, count: usize, rate: f64) -> Result<LatencySample> {
    let prefix = crate::unique("lat");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let consumer = Consumer::start(
        local_uri(ctx.amqp_port, "guest", "guest"),
        &prefix,
        &format!("{prefix}.#"),
        Some(tx),
    )
    .await?;
    // Arrival `Instant`s to wallclock.
    let anchor = (Instant::now(), now_micros());
    let (n, r) = (count.to_string(), rate.to_string());
    let mut cmd = match who {
        Publisher::Lapin | Publisher::LapinConfirms => {
            let mut c = Command::new(&ctx.exe);
            c.args(["child", "latency-lapin", "--url", &ctx.default_url()])
                .args(["--prefix", &prefix, "--count", &n, "--rate", &r]);
            c
        }
        Publisher::NostRs | Publisher::NostRsBefore => {
            let mut c = ctx.rust_child("latency-nost", &prefix, None);
            c.args(["--count", &n, "--rate", &r]);
            c
        }
        Publisher::NostTools => {
            let mut c = ctx.python_child("latency.py", &prefix)?;
            c.args([&n, &r]);
            c
        }
    };
    cmd.env("NOST_BENCH_BODY", &ctx.body);
    let mut child = Proc::spawn(who.label(), cmd)?;
    child.expect("ready", Duration::from_secs(60)).await?;
    let expected = Duration::from_secs_f64(count as f64 / rate);
    consumer
        .wait_for(count, Duration::from_secs(30) + expected)
        .await?;
    child.send("report").await?;
    let cpu = numbers(&child.expect("cpu", Duration::from_secs(60)).await?);
    child.finish(Duration::from_secs(20)).await;
    consumer.close().await;
    let mut ms = Vec::with_capacity(count);
    while let Ok((at, body)) = rx.try_recv() {
        let sent: u128 = std::str::from_utf8(body.get(..16).context("short body")?)?
            .trim()
            .parse()
            .context("no send time in the body")?;
        let arrived = anchor.1 + at.saturating_duration_since(anchor.0).as_micros();
        ms.push(arrived.saturating_sub(sent) as f64 / 1e3);
    }
    Ok(LatencySample {
        publisher: who,
        rate,
        count,
        received: ms.len(),
        latency: Latency::of(ms),
        cpu_us_per_msg: cpu.iter().sum::<f64>() * 1e6 / count as f64,
    })
}
