//! The table on stdout and the JSON beside it.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::json;

use crate::RunArgs;
use crate::ctx::Ctx;
use crate::fidelity::FidelitySample;
use crate::latency::LatencySample;
use crate::many::ManyResult;
use crate::measure::median;
use crate::publish::{PublishSample, Publisher};
use crate::renewal::RenewalResult;
use crate::startup::Starter;

/// Everything measured in one run.
pub struct Report {
    args: RunArgs,
    body_bytes: usize,
    publish: BTreeMap<&'static str, (Publisher, Vec<PublishSample>)>,
    startup: BTreeMap<&'static str, Vec<f64>>,
    pub renewal: Vec<RenewalResult>,
    pub many: Option<ManyResult>,
    pub latency: Vec<LatencySample>,
    pub fidelity: Vec<FidelitySample>,
    pub constellation: Vec<crate::constellation::ConstellationRow>,
}

#[derive(Serialize)]
struct PublishSummary {
    publisher: Publisher,
    runs: usize,
    median_msgs_per_s: f64,
    median_cpu_us_per_msg: f64,
    median_broker_us_per_msg: f64,
    samples: Vec<PublishSample>,
}

fn key(p: Publisher) -> &'static str {
    match p {
        Publisher::Lapin => "a_raw_lapin",
        Publisher::LapinConfirms => "a_raw_lapin_confirms",
        Publisher::NostRs => "b_nost_rs",
        Publisher::NostTools => "c_nost_tools",
        Publisher::NostRsBefore => "b0_nost_rs_before",
    }
}

fn starter_key(s: Starter) -> &'static str {
    match s {
        Starter::NostRs => "nost_rs",
        Starter::NostTools => "nost_tools",
    }
}

impl Report {
    pub fn new(args: &RunArgs, ctx: &Ctx) -> Report {
        Report {
            args: args.clone(),
            body_bytes: ctx.body.len(),
            publish: BTreeMap::new(),
            startup: BTreeMap::new(),
            renewal: Vec::new(),
            many: None,
            latency: Vec::new(),
            fidelity: Vec::new(),
            constellation: Vec::new(),
        }
    }

    pub fn publish_sample(&mut self, p: Publisher, s: PublishSample) {
        self.publish
            .entry(key(p))
            .or_insert((p, Vec::new()))
            .1
            .push(s);
    }

    pub fn startup_sample(&mut self, s: Starter, secs: f64) {
        self.startup.entry(starter_key(s)).or_default().push(secs);
    }

    fn publish_summary(&self) -> BTreeMap<&'static str, PublishSummary> {
        self.publish
            .iter()
            .map(|(k, (p, v))| {
                let rate: Vec<f64> = v.iter().map(|s| s.msgs_per_s).collect();
                let cpu: Vec<f64> = v.iter().map(|s| s.cpu_us_per_msg).collect();
                let broker: Vec<f64> = v.iter().filter_map(|s| s.broker_us_per_msg).collect();
                (
                    *k,
                    PublishSummary {
                        publisher: *p,
                        runs: v.len(),
                        median_msgs_per_s: median(&rate),
                        median_cpu_us_per_msg: median(&cpu),
                        median_broker_us_per_msg: median(&broker),
                        samples: v.clone(),
                    },
                )
            })
            .collect()
    }

    /// Print the table, write the JSON.
    pub fn finish(self) -> Result<()> {
        let publish = self.publish_summary();
        let rate = |k: &str| publish.get(k).map(|s| s.median_msgs_per_s);
        let cpu = |k: &str| publish.get(k).map(|s| s.median_cpu_us_per_msg);
        let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
        let startup: BTreeMap<&str, f64> = self
            .startup
            .iter()
            .map(|(k, v)| (*k, median(v) * 1e3))
            .collect();
        let ratios = json!({
            "throughput_b_over_a": ratio(rate("b_nost_rs"), rate("a_raw_lapin")),
            "throughput_b_over_c": ratio(rate("b_nost_rs"), rate("c_nost_tools")),
            "cpu_per_msg_b_over_a": ratio(cpu("b_nost_rs"), cpu("a_raw_lapin")),
            "throughput_b_over_a2": ratio(rate("b_nost_rs"), rate("a_raw_lapin_confirms")),
            "cpu_per_msg_b_over_a2": ratio(cpu("b_nost_rs"), cpu("a_raw_lapin_confirms")),
            "cpu_per_msg_b_over_c": ratio(cpu("b_nost_rs"), cpu("c_nost_tools")),
            "startup_c_over_b": ratio(startup.get("nost_tools").copied(), startup.get("nost_rs").copied()),
        });
        let machine = machine();
        let now = chrono::Utc::now();
        let doc = json!({
            "date": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "machine": machine,
            "settings": {
                "repetitions": self.args.reps,
                "messages": self.args.messages,
                "body_bytes": self.body_bytes,
                "renewal_seconds": self.args.renewal_secs,
                "applications": self.args.apps,
            },
            "publish": publish,
            "startup_ms_median": startup,
            "startup_ms_samples": self.startup.iter().map(|(k, v)| (*k, v.iter().map(|s| s * 1e3).collect::<Vec<_>>())).collect::<BTreeMap<_, _>>(),
            "ratios": ratios,
            "renewal_under_load": self.renewal,
            "many_applications": self.many,
            "latency": self.latency,
            "fidelity": self.fidelity,
            "constellation": self.constellation,
        });

        let mut t = String::new();
        let line = |t: &mut String, s: String| {
            t.push_str(&s);
            t.push('\n');
        };
        line(
            &mut t,
            format!(
                "\nnost-rs benchmarks, {} on {} ({} cores, {}), RabbitMQ {}",
                now.format("%Y-%m-%d %H:%M UTC"),
                machine["cpu"].as_str().unwrap_or("?"),
                machine["cores"],
                machine["kernel"].as_str().unwrap_or("?"),
                machine["rabbitmq"].as_str().unwrap_or("?"),
            ),
        );
        line(
            &mut t,
            format!(
                "\nPublish {} messages of {} bytes until an independent consumer has all; median of {} runs",
                self.args.messages, self.body_bytes, self.args.reps
            ),
        );
        line(
            &mut t,
            format!(
                "  {:<24} {:>10} {:>14} {:>17}",
                "publisher", "msgs/s", "CPU µs/msg", "broker µs/msg"
            ),
        );
        for s in publish.values() {
            line(
                &mut t,
                format!(
                    "  {:<24} {:>10.0} {:>14.2} {:>17.2}",
                    s.publisher.label(),
                    s.median_msgs_per_s,
                    s.median_cpu_us_per_msg,
                    s.median_broker_us_per_msg
                ),
            );
        }
        let fmt = |x: &serde_json::Value| x.as_f64().map_or("-".into(), |v| format!("{v:.2}"));
        for (label, k) in [
            ("raw lapin", "a"),
            ("lapin + confirms", "a2"),
            ("nost_tools", "c"),
        ] {
            line(
                &mut t,
                format!(
                    "  nost-rs / {label:<17} throughput {:>6}  CPU per msg {:>6}",
                    fmt(&ratios[format!("throughput_b_over_{k}").as_str()]),
                    fmt(&ratios[format!("cpu_per_msg_b_over_{k}").as_str()]),
                ),
            );
        }
        line(
            &mut t,
            format!(
                "\nStart-up, process spawn to status.ready at a consumer (basic mode); median of {} runs",
                self.args.reps
            ),
        );
        for (k, ms) in &startup {
            line(&mut t, format!("  {k:<24} {ms:>10.0} ms"));
        }
        line(
            &mut t,
            format!("  nost_tools/nost-rs {}", fmt(&ratios["startup_c_over_b"])),
        );
        for r in &self.renewal {
            line(
                &mut t,
                format!(
                    "\nRenewal under load (OAuth2 node, token renewed every second, {:.0} s at {})",
                    r.seconds,
                    r.target_msgs_per_s
                        .map_or("full rate".into(), |x| format!("{x:.0} msgs/s"))
                ),
            );
            line(
                &mut t,
                format!(
                    "  published {}  lost {}  duplicates {}  renewals {}  update-secrets {}  disconnects {}  ({:.0} msgs/s)",
                    r.published,
                    r.lost,
                    r.duplicates,
                    r.token_renewals,
                    r.update_secrets,
                    r.disconnects,
                    r.msgs_per_s
                ),
            );
            for (name, l) in [
                ("all messages", &r.latency_all),
                ("±250 ms of a renewal", &r.latency_around_renewals),
            ] {
                line(
                    &mut t,
                    format!(
                        "  latency {name:<22} p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms  (n={})",
                        l.p50_ms, l.p99_ms, l.max_ms, l.count
                    ),
                );
            }
        }
        latency_lines(&mut t, &self.latency, &self.fidelity);
        if let Some(m) = &self.many {
            line(
                &mut t,
                format!(
                    "\n{} applications in one process sharing one service account (SharedTokens)",
                    m.applications
                ),
            );
            line(
                &mut t,
                format!(
                    "  token requests per renewal {:.2} ({} in {} renewals)  connections updated per renewal {:.1}  disconnects {}",
                    m.token_requests_per_renewal,
                    m.token_requests,
                    m.renewals,
                    m.connections_updated_per_renewal,
                    m.disconnects
                ),
            );
            line(
                &mut t,
                format!(
                    "  resident memory {:.1} MiB ({:.1} MiB before the applications, {:.0} KiB per application)",
                    m.rss_mib, m.rss_before_apps_mib, m.rss_per_app_kib
                ),
            );
        }
        crate::constellation::render(&self.constellation, &mut t);
        print!("{t}");

        std::fs::create_dir_all(&self.args.out)
            .with_context(|| format!("{}", self.args.out.display()))?;
        let text = serde_json::to_string_pretty(&doc)?;
        let file = self
            .args
            .out
            .join(format!("bench-{}.json", now.format("%Y%m%dT%H%M%SZ")));
        std::fs::write(&file, &text).with_context(|| format!("{}", file.display()))?;
        std::fs::write(self.args.out.join("latest.json"), &text)?;
        std::fs::write(self.args.out.join("latest.txt"), &t)?;
        if !self.latency.is_empty() || !publish.is_empty() {
            let title = format!(
                "{} · {} ({} cores, loaded) · RabbitMQ {}",
                now.format("%Y-%m-%d %H:%M UTC"),
                machine["cpu"].as_str().unwrap_or("?"),
                machine["cores"],
                machine["rabbitmq"].as_str().unwrap_or("?"),
            );
            let cpu_bars: Vec<(String, f64)> = publish
                .values()
                .map(|s| (s.publisher.label().to_owned(), s.median_cpu_us_per_msg))
                .collect();
            let svg = crate::plot::latency_cpu(&title, &cpu_bars, &self.latency);
            let plot = self.args.out.join("latency-cpu.svg");
            std::fs::write(&plot, svg).with_context(|| format!("{}", plot.display()))?;
            eprintln!("bench: wrote {}", plot.display());
        }
        eprintln!("bench: wrote {} and latest.json/latest.txt", file.display());
        Ok(())
    }
}

/// The latency and fidelity tables.
fn latency_lines(t: &mut String, latency: &[LatencySample], fidelity: &[FidelitySample]) {
    use std::fmt::Write;
    if let Some(first) = latency.first() {
        let _ = writeln!(
            t,
            "\nPublish → consumer delivery latency at {:.0} msgs/s ({} messages each, send call to arrival)",
            first.rate, first.count
        );
        for l in latency {
            let _ = writeln!(
                t,
                "  {:<24} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.1} ms  (n={})  CPU {:>6.1} µs/msg",
                l.publisher.label(),
                l.latency.p50_ms,
                l.latency.p99_ms,
                l.latency.max_ms,
                l.received,
                l.cpu_us_per_msg
            );
        }
    }
    if let Some(first) = fidelity.first() {
        let _ = writeln!(
            t,
            "\nScenario fidelity: {} managed applications, time scale {}, one nost-rs Manager (arrival at a consumer minus schedule)",
            first.apps, first.time_scale
        );
        for f in fidelity {
            let _ = writeln!(
                t,
                "  {:<17} status.time p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms (n={})  EXECUTING spread {:>6.1} ms ({} apps, {:.1}–{:.1} ms after startTime)",
                f.who,
                f.time_p50_ms,
                f.time_p99_ms,
                f.time_max_ms,
                f.time_statuses,
                f.executing_spread_ms,
                f.executing,
                f.executing_first_after_start_ms,
                f.executing_last_after_start_ms
            );
        }
    }
}

fn machine() -> serde_json::Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let mem_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0);
    let run = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    json!({
        "hostname": read("/proc/sys/kernel/hostname").trim(),
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_gib": mem_gib,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "rabbitmq": run("rabbitmqctl", &["version"]),
        "python": run("python3", &["--version"]),
        "rustc": run("rustc", &["--version"]),
    })
}
