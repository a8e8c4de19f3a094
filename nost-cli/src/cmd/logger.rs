//! `nost logger`: a LoggerApplication writing every message under a prefix
//! to a CSV file in `nost_tools`' log format (`execution.logger_application`).

use std::process::ExitCode;
use std::time::Duration;

use nost_app::{LoggerApplication, StartOptions};

use crate::common::ConfigArgs;

/// Arguments of `nost logger`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Run prefix (default: execution.general.prefix).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Application name of the logger.
    #[arg(long, default_value = "logger")]
    pub name: String,
    /// Directory of the log files (default: execution.logger_application.log_dir).
    #[arg(long)]
    pub log_dir: Option<String>,
    /// Application to log, `*` for all (default: execution.logger_application.log_app).
    #[arg(long)]
    pub log_app: Option<String>,
    /// Topic pattern to log (default: execution.logger_application.log_topic).
    #[arg(long)]
    pub log_topic: Option<String>,
    /// Stop after this many seconds (default: at SIGINT/SIGTERM).
    #[arg(long, value_parser = crate::common::seconds_arg)]
    pub timeout: Option<f64>,
    /// One-time password for a user account.
    #[arg(long)]
    pub otp: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let r = args.config.resolve()?;
    let prefix = r.prefix(args.prefix.clone());
    let cfg = &r.loaded.config;
    let mut section = cfg.execution.logger_application.clone().unwrap_or_default();
    if let Some(d) = args.log_dir {
        section.log_dir = d;
    }
    if let Some(a) = args.log_app {
        section.log_app = a;
    }
    if let Some(t) = args.log_topic {
        section.log_topic = t;
    }
    let logger = LoggerApplication::start_up_with(
        &args.name,
        &prefix,
        cfg,
        StartOptions {
            handle_signals: true,
            ..r.start_options(args.otp.clone())
        },
        section,
    )
    .await?;
    eprintln!(
        "logger {} on {} writing {}",
        args.name,
        logger.binding_key(),
        logger.file().display()
    );
    match args.timeout {
        Some(s) => {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(s)) => {}
                _ = logger.app().shutting_down() => {}
            }
        }
        None => logger.app().shutting_down().await,
    }
    logger.shut_down().await;
    eprintln!("{} rows in {}", logger.rows(), logger.file().display());
    Ok(ExitCode::SUCCESS)
}
