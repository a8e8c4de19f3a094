//! `nost listen`: print every message under a prefix as JSON lines.

use std::process::ExitCode;
use std::time::Duration;

use nost_app::{Application, StartOptions};
use serde_json::json;
use tokio::sync::mpsc;

use crate::common::ConfigArgs;

/// Arguments of `nost listen`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Run prefix (default: execution.general.prefix).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Topic pattern under the prefix (AMQP wildcards: `*` one word, `#` any).
    #[arg(long, default_value = "#")]
    pub pattern: String,
    /// Application name of the listener (its queue is named after it).
    #[arg(long, default_value = "logger")]
    pub name: String,
    /// Stop after this many messages.
    #[arg(long)]
    pub count: Option<usize>,
    /// Stop after this many seconds.
    #[arg(long, value_parser = crate::common::seconds_arg)]
    pub timeout: Option<f64>,
    /// One-time password for a user account.
    #[arg(long)]
    pub otp: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let r = args.config.resolve()?;
    let prefix = r.prefix(args.prefix.clone());
    let app = Application::start_up(
        &args.name,
        &prefix,
        &r.loaded.config,
        StartOptions {
            set_offset: Some(false),
            ..r.start_options(args.otp.clone())
        },
    )
    .await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    app.add_pattern_callback(&args.pattern, move |m| {
        let tx = tx.clone();
        async move {
            let body = serde_json::from_slice::<serde_json::Value>(&m.body)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&m.body)));
            let line = json!({
                "routing_key": m.routing_key,
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "body": body,
            });
            tx.send(line.to_string()).ok();
            Ok(())
        }
    })
    .await?;
    eprintln!(
        "listening on {prefix}.{} ({} mode)",
        args.pattern,
        app.auth_mode()
    );
    let deadline = args
        .timeout
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .and_then(|d| tokio::time::Instant::now().checked_add(d));
    let mut seen = 0usize;
    loop {
        if args.count.is_some_and(|n| seen >= n) {
            break;
        }
        let next = async {
            match deadline {
                Some(d) => tokio::time::timeout_at(d, rx.recv()).await.ok().flatten(),
                None => rx.recv().await,
            }
        };
        tokio::select! {
            line = next => match line {
                Some(l) => { println!("{l}"); seen += 1; }
                None => break,
            },
            _ = app.closed() => break,
            (kind, error) = crate::common::auth_fatal(&app) => {
                app.shut_down().await;
                return Ok(crate::common::fatal_exit(kind, &error));
            }
        }
    }
    app.shut_down().await;
    let complete = args.count.is_none_or(|n| seen >= n);
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
