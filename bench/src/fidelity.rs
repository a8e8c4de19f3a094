//! Scenario fidelity at time scale 60, nost-rs and nost_tools in the same
//! run: one nost-rs Manager (in this process, the same for both) runs a
//! ten-minute scenario (ten wallclock seconds) for ten ManagedApplications
//! in one child process. The consumer timestamps every message:
//!
//! - `status.time`: arrival wallclock minus the scheduled wallclock of its
//!   `simTime` (`startTime + (simTime - simStartTime) / 60`, from the start
//!   command);
//! - `status.mode` EXECUTING: the spread (last minus first) of the ten
//!   arrivals, and how late the first and last are after `startTime`.
//!
//! Arrival at an independent consumer is the honest publish time: it adds
//! the delivery latency (about a millisecond here, see the latency figures).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use nost_app::{Manager, StartOptions, TestPlan};
use nost_config::Credentials;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::consumer::{Consumer, local_uri};
use crate::ctx::Ctx;
use crate::latency::now_micros;
use crate::measure::quantile;
use crate::proc::Proc;
use crate::startup::Starter;

/// Managed applications per run.
pub const APPS: usize = 10;
/// Scenario seconds per wallclock second.
pub const SCALE: f64 = 60.0;

/// What one run found.
#[derive(Debug, Clone, Serialize)]
pub struct FidelitySample {
    pub who: &'static str,
    pub apps: usize,
    pub time_scale: f64,
    /// `status.time` messages seen from the managed applications.
    pub time_statuses: usize,
    /// Arrival minus schedule, ms.
    pub time_p50_ms: f64,
    pub time_p99_ms: f64,
    pub time_max_ms: f64,
    /// Applications seen entering EXECUTING.
    pub executing: usize,
    /// Last minus first EXECUTING arrival, ms.
    pub executing_spread_ms: f64,
    /// First and last EXECUTING arrival after `startTime`, ms.
    pub executing_first_after_start_ms: f64,
    pub executing_last_after_start_ms: f64,
}

/// The scenario's YAML (read by the Manager, the nost-rs child and Python).
pub fn write_config(dir: &Path, port: u16) -> Result<std::path::PathBuf> {
    let apps: Vec<String> = (0..APPS).map(|i| format!("\"sat{i}\"")).collect();
    let yaml = [
        "servers:".to_owned(),
        "  rabbitmq:".into(),
        "    keycloak_authentication: False".into(),
        "    host: \"127.0.0.1\"".into(),
        format!("    port: {port}"),
        "execution:".into(),
        "  general:".into(),
        "    prefix: bench".into(),
        "  manager:".into(),
        "    sim_start_time: \"2024-01-01T12:00:00Z\"".into(),
        "    sim_stop_time: \"2024-01-01T12:10:00Z\"".into(),
        "    time_step: \"0:00:01\"".into(),
        format!("    time_scale_factor: {SCALE}"),
        "    command_lead: \"0:00:02\"".into(),
        format!("    required_apps: [{}]", apps.join(", ")),
        "    init_retry_delay_s: 1".into(),
        "    set_offset: False".into(),
        "  managed_applications:".into(),
        "    default:".into(),
        "      time_step: \"0:00:01\"".into(),
        "      time_status_step: \"0:00:10\"".into(),
        "      set_offset: False".into(),
        "      shut_down_when_terminated: False".into(),
        String::new(),
    ]
    .join("\n");
    let path = dir.join("fidelity.yaml");
    std::fs::write(&path, yaml)?;
    Ok(path)
}

/// One run with the managed applications of `who`.
pub async fn run_once(ctx: &Ctx, who: Starter) -> Result<FidelitySample> {
    let yaml = write_config(ctx.dir.path(), ctx.amqp_port)?;
    let prefix = crate::unique("fid");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let consumer = Consumer::start(
        local_uri(ctx.amqp_port, "guest", "guest"),
        &prefix,
        &format!("{prefix}.#"),
        Some(tx),
    )
    .await?;
    let anchor = (Instant::now(), now_micros());
    let (cmd, label) = match who {
        Starter::NostRs => {
            let mut c = ctx.rust_child("fidelity-nost", &prefix, Some((&yaml, &ctx.basic_env())));
            c.args(["--apps", &APPS.to_string()]);
            (c, "nost-rs")
        }
        Starter::NostTools => {
            let py = ctx.python.as_ref().context("Python is skipped")?;
            let mut c = tokio::process::Command::new(py);
            c.arg(ctx.scripts.join("fidelity.py"))
                .arg(&prefix)
                .arg(&yaml)
                .arg(APPS.to_string())
                .current_dir(ctx.dir.path());
            (c, "nost_tools 3.6.0")
        }
    };
    let mut child = Proc::spawn(label, cmd)?;
    child.expect("ready", Duration::from_secs(90)).await?;

    let config = nost_config::load_file(&yaml)?.config;
    let options = StartOptions {
        auth: Credentials::basic("guest", "guest").into(),
        set_offset: Some(false),
        ..Default::default()
    };
    let manager = Manager::start_up("manager", &prefix, &config, options).await?;
    let plan = TestPlan::from_config(
        config
            .execution
            .manager
            .as_ref()
            .context("execution.manager")?,
    )?;
    let ran = tokio::time::timeout(Duration::from_secs(90), manager.execute_test_plan(plan)).await;
    child.expect("done", Duration::from_secs(60)).await?;
    child.finish(Duration::from_secs(30)).await;
    manager.app().shut_down().await;
    consumer.close().await;
    match ran {
        Ok(r) => {
            r?;
        }
        Err(_) => bail!("the test plan did not finish within 90 s"),
    }

    let mut start: Option<(DateTime<Utc>, DateTime<Utc>, f64)> = None;
    let mut times: Vec<(f64, DateTime<Utc>)> = Vec::new();
    let mut executing: HashMap<String, f64> = HashMap::new();
    while let Ok((at, body)) = rx.try_recv() {
        let arrived = (anchor.1 + at.saturating_duration_since(anchor.0).as_micros()) as f64;
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
            continue;
        };
        let date = |x: &serde_json::Value| {
            x.as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.to_utc())
        };
        if let Some(t) = v.get("taskingParameters")
            && let (Some(st), Some(sst)) = (date(&t["startTime"]), date(&t["simStartTime"]))
        {
            start = Some((st, sst, t["timeScalingFactor"].as_f64().unwrap_or(1.0)));
            continue;
        }
        let name = v["name"].as_str().unwrap_or("");
        if name == "manager" || name.is_empty() {
            continue;
        }
        let props = &v["properties"];
        if let Some(sim) = date(&props["simTime"]) {
            times.push((arrived, sim));
        } else if props["mode"].as_str() == Some("EXECUTING") {
            executing.entry(name.to_owned()).or_insert(arrived);
        }
    }
    let (start_time, sim_start, scale) = start.context("no start command seen")?;
    let micros = |d: DateTime<Utc>| d.timestamp_micros() as f64;
    let mut late: Vec<f64> = times
        .iter()
        .map(|(arrived, sim)| {
            let offset_us = (*sim - sim_start).num_microseconds().unwrap_or(0) as f64 / scale;
            (arrived - (micros(start_time) + offset_us)) / 1e3
        })
        .collect();
    late.sort_by(f64::total_cmp);
    let mut exec: Vec<f64> = executing
        .values()
        .map(|a| (a - micros(start_time)) / 1e3)
        .collect();
    exec.sort_by(f64::total_cmp);
    let (first, last) = (
        exec.first().copied().unwrap_or(f64::NAN),
        exec.last().copied().unwrap_or(f64::NAN),
    );
    Ok(FidelitySample {
        who: label,
        apps: APPS,
        time_scale: scale,
        time_statuses: late.len(),
        time_p50_ms: quantile(&late, 0.5),
        time_p99_ms: quantile(&late, 0.99),
        time_max_ms: late.last().copied().unwrap_or(f64::NAN),
        executing: exec.len(),
        executing_spread_ms: last - first,
        executing_first_after_start_ms: first,
        executing_last_after_start_ms: last,
    })
}
