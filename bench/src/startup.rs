//! Start-up: from spawning the process to its `status.ready` at an
//! independent consumer, for a basic-mode Application (whole process:
//! runtime or interpreter start, imports, configuration, connection).

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::consumer::{Consumer, local_uri};
use crate::ctx::Ctx;
use crate::proc::Proc;

/// Which implementation starts.
#[derive(Debug, Clone, Copy)]
pub enum Starter {
    NostRs,
    NostTools,
}

/// Seconds from spawn to `status.ready` received.
pub async fn run_once(ctx: &Ctx, who: Starter) -> Result<f64> {
    let prefix = crate::unique("start");
    let consumer = Consumer::start(
        local_uri(ctx.amqp_port, "guest", "guest"),
        &prefix,
        &format!("{prefix}.*.status.ready"),
        None,
    )
    .await?;
    let (name, cmd) = match who {
        Starter::NostRs => (
            "nost-rs start-up",
            ctx.rust_child("startup-nost", &prefix, None),
        ),
        Starter::NostTools => (
            "nost_tools start-up",
            ctx.python_child("startup.py", &prefix)?,
        ),
    };
    let t0 = Instant::now();
    let child = Proc::spawn(name, cmd)?;
    let t1 = consumer.wait_for(1, Duration::from_secs(60)).await?;
    child.finish(Duration::from_secs(30)).await;
    consumer.close().await;
    Ok((t1 - t0).as_secs_f64())
}
