//! The measured processes. Each runs alone so the OS accounts its CPU and
//! memory to it only; the parent talks to it with lines on stdin/stdout:
//! the child prints `ready` when connected, works, and on a `report` line
//! prints what it measured since `ready`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use futures_util::{StreamExt, TryStreamExt};
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use nost_app::{Application, ManagedApplication, SharedTokens, StartOptions};
use nost_config::{Config, Credentials, EnvFile};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::measure::{cpu_time, rss_kib};

/// The measured roles.
#[derive(Subcommand, Debug)]
pub enum Child {
    /// A bare lapin publish loop: no buffer, default properties; with
    /// `--confirms` publisher confirms are on and all awaited at the end
    /// (what the confirms alone cost).
    PublishLapin {
        #[arg(long)]
        url: String,
        #[arg(long)]
        prefix: String,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        confirms: bool,
        /// Publishes started before the oldest is awaited (1: each
        /// `basic_publish` awaited before the next, the plain loop).
        #[arg(long, default_value_t = 1)]
        inflight: usize,
    },
    /// nost-rs `send_message` (publisher confirms, ordered buffer).
    PublishNost {
        #[command(flatten)]
        app: AppArgs,
        #[arg(long)]
        count: usize,
    },
    /// A paced bare lapin loop (no confirms): message `i` at `start + i /
    /// rate`, the send wallclock (µs, 16 characters) before the body.
    LatencyLapin {
        #[arg(long)]
        url: String,
        #[arg(long)]
        prefix: String,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        rate: f64,
    },
    /// The same paced loop with nost-rs `send_message`.
    LatencyNost {
        #[command(flatten)]
        app: AppArgs,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        rate: f64,
    },
    /// `apps` ManagedApplications `sat0..` in this process: `ready` once all
    /// are up, `done` once all executed and terminated (a Manager elsewhere
    /// runs the scenario).
    FidelityNost {
        #[command(flatten)]
        app: AppArgs,
        #[arg(long)]
        apps: usize,
    },
    /// Start a basic-mode Application, send `status.ready`, shut down.
    StartupNost {
        #[command(flatten)]
        app: AppArgs,
    },
    /// Many Applications sharing one Keycloak session.
    Many {
        #[command(flatten)]
        app: AppArgs,
        #[arg(long)]
        apps: usize,
        /// Renewals to watch before reporting.
        #[arg(long)]
        renewals: usize,
    },
    /// A constellation: many Applications sending a status.time per second.
    Constellation {
        #[command(flatten)]
        app: AppArgs,
        #[arg(long)]
        apps: usize,
        #[arg(long)]
        secs: u64,
        /// One shared connection instead of one per application.
        #[arg(long)]
        shared: bool,
    },
}

/// Where an Application child finds its configuration.
#[derive(clap::Args, Debug)]
pub struct AppArgs {
    #[arg(long)]
    pub(crate) prefix: String,
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    env_file: PathBuf,
}

impl AppArgs {
    pub(crate) fn load(&self) -> Result<(Config, StartOptions)> {
        let config = nost_config::load_file(&self.config)
            .with_context(|| format!("{}", self.config.display()))?
            .config;
        let credentials = Credentials::from_env(&EnvFile::Path(self.env_file.clone()))?;
        let options = StartOptions {
            auth: credentials.into(),
            set_offset: Some(false),
            ..Default::default()
        };
        Ok((config, options))
    }
}

fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn wait_for_report() -> Result<()> {
    let mut line = String::new();
    BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await?;
    Ok(())
}

fn body() -> Result<Vec<u8>> {
    std::env::var("NOST_BENCH_BODY")
        .map(String::into_bytes)
        .context("NOST_BENCH_BODY is not set")
}

/// CPU since `start` as `cpu USER_S SYS_S`.
fn cpu_line(start: (Duration, Duration)) -> String {
    let (u, s) = cpu_time();
    format!(
        "cpu {:.6} {:.6}",
        (u.saturating_sub(start.0)).as_secs_f64(),
        (s.saturating_sub(start.1)).as_secs_f64()
    )
}

pub async fn run(child: Child) -> Result<()> {
    match child {
        Child::PublishLapin {
            url,
            prefix,
            count,
            confirms,
            inflight,
        } => {
            let body = body()?;
            let conn = Connection::connect(&url, ConnectionProperties::default()).await?;
            let ch = conn.create_channel().await?;
            if confirms {
                ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
                    .await?;
            }
            let key = format!("{prefix}.sat.status.time");
            let start = cpu_time();
            say("ready");
            let publish = || {
                ch.basic_publish(
                    prefix.as_str().into(),
                    key.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default(),
                )
            };
            let mut pending = Vec::with_capacity(if confirms { count } else { 0 });
            if inflight <= 1 {
                for _ in 0..count {
                    let confirm = publish().await?;
                    if confirms {
                        pending.push(confirm);
                    }
                }
            } else {
                // Up to `inflight` publishes joined at a time (frames
                // pushed in order at their first poll).
                let mut left = count;
                while left > 0 {
                    let n = left.min(inflight);
                    left -= n;
                    let batch = futures_util::future::join_all((0..n).map(|_| publish())).await;
                    for confirm in batch {
                        let confirm = confirm?;
                        if confirms {
                            pending.push(confirm);
                        }
                    }
                }
            }
            for c in pending {
                c.await?;
            }
            wait_for_report().await?;
            say(&cpu_line(start));
            conn.close(200, "bye".into()).await?;
        }
        Child::PublishNost { app, count } => {
            let body = String::from_utf8(body()?)?;
            let (config, options) = app.load()?;
            let a = Application::start_up("sat", &app.prefix, &config, options).await?;
            let start = cpu_time();
            say("ready");
            for _ in 0..count {
                a.send_message("status.time", &body).await?;
            }
            a.session().flush(Duration::from_secs(120)).await?;
            wait_for_report().await?;
            say(&cpu_line(start));
            a.shut_down().await;
        }
        Child::LatencyLapin {
            url,
            prefix,
            count,
            rate,
        } => {
            let body = String::from_utf8(body()?)?;
            let conn = Connection::connect(&url, ConnectionProperties::default()).await?;
            let ch = conn.create_channel().await?;
            let key = format!("{prefix}.sat.status.time");
            let start = cpu_time();
            say("ready");
            let t0 = tokio::time::Instant::now();
            for i in 0..count {
                tokio::time::sleep_until(t0 + Duration::from_secs_f64(i as f64 / rate)).await;
                let stamped = format!("{:>16}|{body}", crate::latency::now_micros());
                ch.basic_publish(
                    prefix.as_str().into(),
                    key.as_str().into(),
                    BasicPublishOptions::default(),
                    stamped.as_bytes(),
                    BasicProperties::default(),
                )
                .await?;
            }
            wait_for_report().await?;
            say(&cpu_line(start));
            conn.close(200, "bye".into()).await?;
        }
        Child::LatencyNost { app, count, rate } => {
            let body = String::from_utf8(body()?)?;
            let (config, options) = app.load()?;
            let a = Application::start_up("sat", &app.prefix, &config, options).await?;
            let start = cpu_time();
            say("ready");
            let t0 = tokio::time::Instant::now();
            for i in 0..count {
                tokio::time::sleep_until(t0 + Duration::from_secs_f64(i as f64 / rate)).await;
                let stamped = format!("{:>16}|{body}", crate::latency::now_micros());
                a.send_message("status.time", &stamped).await?;
            }
            a.session().flush(Duration::from_secs(120)).await?;
            wait_for_report().await?;
            say(&cpu_line(start));
            a.shut_down().await;
        }
        Child::FidelityNost { app, apps } => {
            let (config, options) = app.load()?;
            let mut managed = Vec::with_capacity(apps);
            for i in 0..apps {
                managed.push(
                    ManagedApplication::start_up(
                        &format!("sat{i}"),
                        &app.prefix,
                        &config,
                        options.clone(),
                    )
                    .await?,
                );
            }
            say("ready");
            let all = futures_util::future::join_all(managed.iter().map(|m| m.wait_terminated()));
            if tokio::time::timeout(Duration::from_secs(120), all)
                .await
                .is_err()
            {
                bail!("the managed applications did not terminate within 120 s");
            }
            say("done");
            tokio::time::sleep(Duration::from_millis(500)).await;
            futures_util::future::join_all(managed.iter().map(|m| m.app().shut_down())).await;
        }
        Child::StartupNost { app } => {
            let (config, options) = app.load()?;
            let a = Application::start_up("sat", &app.prefix, &config, options).await?;
            a.ready().await?;
            a.shut_down().await;
        }
        Child::Many {
            app,
            apps,
            renewals,
        } => many(app, apps, renewals).await?,
        Child::Constellation {
            app,
            apps,
            secs,
            shared,
        } => crate::constellation::child(app, apps, secs, shared).await?,
    }
    Ok(())
}

/// Start `count` applications on one shared Keycloak session; print
/// `ready RSS_BEFORE_KIB RSS_KIB`, `mark` just after a renewal; on `go`
/// watch `renewals` renewals, print `renewed N`, then
/// `done RENEWALS SECRET_UPDATES DISCONNECTS RSS_KIB`.
async fn many(args: AppArgs, count: usize, renewals: usize) -> Result<()> {
    let (config, options) = args.load()?;
    let shared = SharedTokens::start(&config, &options.auth).await?;
    let options = StartOptions {
        shared_tokens: Some(shared.clone()),
        ..options
    };
    let before = rss_kib().unwrap_or(0);
    // Twenty at a time: the broker accepts connections one by one anyway.
    let apps: Vec<Application> = futures_util::stream::iter(0..count)
        .map(|i| {
            let (config, options, prefix) = (&config, options.clone(), &args.prefix);
            async move { Application::start_up(&format!("sat{i}"), prefix, config, options).await }
        })
        .buffer_unordered(20)
        .try_collect()
        .await?;
    say(&format!("ready {before} {}", rss_kib().unwrap_or(0)));
    let mut updates: Vec<_> = apps.iter().map(|a| a.session().events()).collect();
    let mut events = shared.token_manager().subscribe_events();
    let mut next_renewal = async || -> Result<()> {
        loop {
            match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
                Ok(Ok(nost_auth::AuthEvent::Renewed { .. })) => return Ok(()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => bail!("renewal events: {e}"),
                Err(_) => bail!("no renewal within 30 s"),
            }
        }
    };
    // Just after a renewal the next is a whole interval away: the parent
    // resets Keycloak's request log now and says go.
    next_renewal().await?;
    say("mark");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for rx in &mut updates {
        while rx.try_recv().is_ok() {}
    }
    wait_for_report().await?;
    let mut seen = 0;
    while seen < renewals {
        next_renewal().await?;
        seen += 1;
    }
    say(&format!("renewed {seen}"));
    // update-secret goes out right after each renewal; give the last one a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut secret_updates = 0usize;
    let mut drops = 0usize;
    for rx in &mut updates {
        while let Ok(e) = rx.try_recv() {
            match e {
                nost_amqp::SessionEvent::SecretUpdated => secret_updates += 1,
                nost_amqp::SessionEvent::Disconnected { .. } => drops += 1,
                _ => {}
            }
        }
    }
    say(&format!(
        "done {seen} {secret_updates} {drops} {}",
        rss_kib().unwrap_or(0)
    ));
    futures_util::future::join_all(apps.iter().map(|a| a.shut_down())).await;
    shared.shut_down().await;
    Ok(())
}
