//! `nost manager`, `nost managed` and `nost demo`: running scenarios.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{TimeDelta, Utc};
use nost_app::simulator::{Mode, SimEvent, Simulator};
use nost_app::{AppError, Application, ManagedApplication, Manager, StartOptions, TestPlan};
use nost_config::{Config, Credentials, NostDuration};

use crate::common::ConfigArgs;

/// Arguments of `nost manager`.
#[derive(clap::Args, Debug)]
pub struct ManagerArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Run prefix (default: execution.general.prefix).
    #[arg(long)]
    pub prefix: Option<String>,
    /// The manager's application name.
    #[arg(long, default_value = "manager")]
    pub name: String,
    /// One-time password for a user account.
    #[arg(long)]
    pub otp: Option<String>,
}

/// Arguments of `nost managed`.
#[derive(clap::Args, Debug)]
pub struct ManagedArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Application name (settings from execution.managed_applications.NAME or .default).
    #[arg(long)]
    pub name: String,
    /// Run prefix (default: execution.general.prefix).
    #[arg(long)]
    pub prefix: Option<String>,
    /// One-time password for a user account.
    #[arg(long)]
    pub otp: Option<String>,
}

/// Arguments of `nost demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Use this configuration instead of the local broker (localhost:5672, guest/guest).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// .env file for the credentials of --config.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<std::path::PathBuf>,
    /// Scenario minutes to simulate (1 to 1,000,000).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub minutes: i64,
    /// Scenario seconds per wallclock second.
    #[arg(long, default_value_t = 120.0, value_parser = crate::common::factor_arg)]
    pub time_scale: f64,
}

/// Print scenario progress on stderr when it is a terminal.
fn progress(sim: &Simulator, label: &str) {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return;
    }
    let label = label.to_owned();
    sim.add_observer(Arc::new(move |s: &Simulator, ev: &SimEvent| {
        if let SimEvent::TimeChanged { new, .. } = ev {
            let total = (s.end_time() - s.init_time()).num_seconds().max(1);
            let done = (*new - s.init_time()).num_seconds();
            let width = 30;
            let filled = (done * width / total).clamp(0, width) as usize;
            eprint!(
                "\r{label} [{}{}] {} ({:.0}%)",
                "#".repeat(filled),
                "-".repeat(width as usize - filled),
                new.format("%Y-%m-%d %H:%M:%S"),
                100.0 * done as f64 / total as f64
            );
            if done >= total {
                eprintln!();
            }
        }
    }));
}

fn no_broker_hint(e: &AppError) -> String {
    match e {
        AppError::Amqp(
            nost_amqp::AmqpError::Unreachable { .. } | nost_amqp::AmqpError::ConnectTimeout { .. },
        ) => format!(
            "{e}\nno RabbitMQ answered. From a checkout, `cargo xtask demo` starts a throwaway broker for the demo; or start one locally (`apt-get install rabbitmq-server && rabbitmq-server -detached` listens on localhost:5672 with guest/guest), or pass --config with your broker"
        ),
        other => other.to_string(),
    }
}

pub async fn manager(args: ManagerArgs) -> anyhow::Result<ExitCode> {
    let r = args.config.resolve()?;
    let prefix = r.prefix(args.prefix.clone());
    let cfg = &r.loaded.config;
    let section = cfg.execution.manager.as_ref().context(
        "execution.manager is required to run a manager (sim_start_time, sim_stop_time, …)",
    )?;
    let _log = nost_app::logging::init(&args.name, &section.logging)?;
    let plan = TestPlan::from_config(section)?;
    let started = Instant::now();
    let manager = Manager::start_up(&args.name, &prefix, cfg, r.start_options(args.otp.clone()))
        .await
        .map_err(|e| anyhow::anyhow!(no_broker_hint(&e)))?;
    progress(manager.app().simulator(), "scenario");
    let counter = count_messages(manager.app(), &prefix).await?;
    eprintln!(
        "manager {} on {prefix} ({} mode): init for {:?}",
        args.name,
        manager.app().auth_mode(),
        plan.required_apps
    );
    let summary = tokio::select! {
        s = manager.execute_test_plan(plan) => s?,
        (kind, error) = crate::common::auth_fatal(manager.app()) => {
            manager.app().shut_down().await;
            return Ok(crate::common::fatal_exit(kind, &error));
        }
    };
    manager.app().shut_down().await;
    println!(
        "scenario terminated: apps ready {:?}, inits sent {}, messages seen {}, wallclock {:.1} s",
        summary.ready,
        summary.inits_sent,
        counter
            .lock()
            .map(|c| c.values().sum::<usize>())
            .unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

async fn count_messages(
    app: &Application,
    _prefix: &str,
) -> anyhow::Result<Arc<Mutex<BTreeMap<String, usize>>>> {
    let counts = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let c = counts.clone();
    app.add_pattern_callback("#", move |m| {
        let c = c.clone();
        async move {
            let topic = m
                .routing_key
                .splitn(3, '.')
                .nth(2)
                .unwrap_or_default()
                .to_owned();
            if let Ok(mut c) = c.lock() {
                *c.entry(format!("{}.{topic}", m.sender())).or_default() += 1;
            }
            Ok(())
        }
    })
    .await?;
    Ok(counts)
}

pub async fn managed(args: ManagedArgs) -> anyhow::Result<ExitCode> {
    let r = args.config.resolve()?;
    let prefix = r.prefix(args.prefix.clone());
    let cfg = &r.loaded.config;
    let _log = nost_app::logging::init(
        &args.name,
        &cfg.execution.managed_application(&args.name).logging,
    )?;
    let app =
        ManagedApplication::start_up(&args.name, &prefix, cfg, r.start_options(args.otp.clone()))
            .await
            .map_err(|e| anyhow::anyhow!(no_broker_hint(&e)))?;
    progress(app.app().simulator(), &args.name);
    eprintln!(
        "{} waiting for {} on {prefix} ({} mode)",
        args.name,
        app.manager_name(),
        app.app().auth_mode()
    );
    let shut_down = cfg
        .execution
        .managed_application(&args.name)
        .shut_down_when_terminated;
    // With shut_down_when_terminated the application also begins its own
    // shutdown at TERMINATED, so both branches may be ready: the mode
    // decides what is reported, not which branch won.
    tokio::select! {
        _ = app.wait_terminated(), if shut_down => {}
        _ = app.app().shutting_down() => {}
        (kind, error) = crate::common::auth_fatal(app.app()) => {
            app.app().shut_down().await;
            return Ok(crate::common::fatal_exit(kind, &error));
        }
    }
    // Read before our own shutdown, which ends a run still in progress.
    let terminated = app.app().simulator().mode() == Mode::Terminated;
    app.app().shut_down().await;
    if terminated {
        println!("{} terminated", args.name);
    } else {
        println!("{} shut down", args.name);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let (config, credentials) = match &args.config {
        Some(path) => {
            let cargs = ConfigArgs {
                config: Some(path.clone()),
                env_file: args.env_file.clone(),
                ..Default::default()
            };
            let r = cargs.resolve()?;
            (r.loaded.config.clone(), r.credentials.clone())
        }
        None => (
            Config::builder().build()?,
            Credentials::basic("guest", "guest"),
        ),
    };
    let start = Utc::now()
        .date_naive()
        .and_hms_opt(12, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or_else(Utc::now);
    let stop = TimeDelta::try_minutes(args.minutes.max(1))
        .and_then(|d| start.checked_add_signed(d))
        .ok_or_else(|| anyhow::anyhow!("--minutes {} is out of range", args.minutes))?;
    let apps = ["satellite", "ground", "fire"];
    let mut config = config;
    config.execution.manager = Some(nost_config::ManagerConfig {
        sim_start_time: Some(start),
        sim_stop_time: Some(stop),
        time_scale_factor: args.time_scale,
        time_step: NostDuration::seconds(10),
        time_status_step: Some(NostDuration::seconds(60)),
        command_lead: NostDuration::microseconds(500_000),
        required_apps: apps.iter().map(|a| a.to_string()).collect(),
        init_retry_delay_s: 2,
        set_offset: false,
        ..Default::default()
    });
    config.execution.managed_applications.insert(
        "default".into(),
        nost_config::ManagedApplicationConfig {
            time_step: NostDuration::seconds(10),
            time_status_step: Some(NostDuration::seconds(60)),
            set_offset: false,
            ..Default::default()
        },
    );
    let options = StartOptions {
        auth: credentials.into(),
        set_offset: Some(false),
        ..Default::default()
    };
    let prefix = format!("demo{}", std::process::id());
    println!(
        "NOS-T demo: a manager and {} managed applications under prefix {prefix}",
        apps.len()
    );
    println!(
        "scenario {} → {} at {}x",
        start.format("%H:%M"),
        stop.format("%H:%M"),
        args.time_scale
    );
    let started = Instant::now();
    let recorder = Application::start_up("recorder", &prefix, &config, options.clone())
        .await
        .map_err(|e| anyhow::anyhow!(no_broker_hint(&e)))?;
    let counts = count_messages(&recorder, &prefix).await?;
    let mut managed = Vec::new();
    for name in apps {
        managed.push(ManagedApplication::start_up(name, &prefix, &config, options.clone()).await?);
    }
    let manager = Manager::start_up("manager", &prefix, &config, options).await?;
    progress(manager.app().simulator(), "scenario");
    let plan = TestPlan::from_config(
        config
            .execution
            .manager
            .as_ref()
            .context("manager section")?,
    )?;
    let summary = tokio::select! {
        s = manager.execute_test_plan(plan) => s?,
        (kind, error) = crate::common::auth_fatal(manager.app()) => {
            manager.app().shut_down().await;
            return Ok(crate::common::fatal_exit(kind, &error));
        }
    };
    let mut final_modes = Vec::new();
    for m in &managed {
        tokio::time::timeout(Duration::from_secs(30), m.wait_terminated())
            .await
            .ok();
        let sim = m.app().simulator();
        final_modes.push((m.app().name().to_owned(), sim.mode(), sim.time()));
        m.app().shut_down().await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    manager.app().shut_down().await;
    recorder.shut_down().await;

    println!("\nwhat happened:");
    println!(
        "  apps ready after {} init(s): {:?}",
        summary.inits_sent, summary.ready
    );
    for (name, mode, time) in &final_modes {
        println!(
            "  {name:<10} {mode} at scenario time {}",
            time.format("%H:%M:%S")
        );
    }
    println!("  messages on the broker, by sender and topic:");
    if let Ok(c) = counts.lock() {
        for (k, v) in c.iter() {
            println!("    {k:<28} {v}");
        }
    }
    let done = final_modes.iter().all(|(_, m, _)| *m == Mode::Terminated);
    println!(
        "{} in {:.1} s wallclock",
        if done {
            "scenario completed: every application TERMINATED"
        } else {
            "scenario did not complete"
        },
        started.elapsed().as_secs_f64()
    );
    Ok(if done {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
