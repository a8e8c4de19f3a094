//! `nost listen`: print every message under a prefix as JSON lines.
//!
//! Each message is acknowledged only after its line is written; a closed
//! standard output (`nost listen | head -1`) ends the listener cleanly; its
//! queue is non-durable and auto-delete, so it goes away with the listener
//! even when the process is killed.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    // The handler writes the line itself: the message is acknowledged only
    // after its line is out. A closed standard output ends the listener.
    let (tx, mut rx) = mpsc::unbounded_channel::<Written>();
    let written = Arc::new(AtomicUsize::new(0));
    let limit = args.count;
    let counter = written.clone();
    let subscribed = app
        .add_transient_pattern_callback(&args.pattern, move |m| {
            let tx = tx.clone();
            let counter = counter.clone();
            async move {
                if limit.is_some_and(|n| counter.load(Ordering::SeqCst) >= n) {
                    return Err("enough messages printed (--count)".into());
                }
                let body = serde_json::from_slice::<serde_json::Value>(&m.body)
                    .unwrap_or_else(|_| json!(String::from_utf8_lossy(&m.body)));
                let line = json!({
                    "routing_key": m.routing_key,
                    "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "body": body,
                });
                let mut out = std::io::stdout().lock();
                let res = writeln!(out, "{line}").and_then(|()| out.flush());
                drop(out);
                match res {
                    Ok(()) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                        tx.send(Written::Line).ok();
                        Ok(())
                    }
                    Err(e) => {
                        tx.send(Written::Closed).ok();
                        Err(format!("standard output closed: {e}").into())
                    }
                }
            }
        })
        .await;
    if let Err(e) = subscribed {
        app.shut_down().await;
        return Err(e.into());
    }
    eprintln!(
        "listening on {prefix}.{} ({} mode)",
        args.pattern,
        app.auth_mode()
    );
    let deadline = args
        .timeout
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .and_then(|d| tokio::time::Instant::now().checked_add(d));
    let mut closed_stdout = false;
    loop {
        if args
            .count
            .is_some_and(|n| written.load(Ordering::SeqCst) >= n)
        {
            break;
        }
        let next = async {
            match deadline {
                Some(d) => tokio::time::timeout_at(d, rx.recv()).await.ok().flatten(),
                None => rx.recv().await,
            }
        };
        tokio::select! {
            w = next => match w {
                Some(Written::Line) => {}
                Some(Written::Closed) => { closed_stdout = true; break; }
                None => break,
            },
            _ = app.shutting_down() => break,
            (kind, error) = crate::common::auth_fatal(&app) => {
                app.shut_down().await;
                return Ok(crate::common::fatal_exit(kind, &error));
            }
        }
    }
    app.shut_down().await;
    let seen = written.load(Ordering::SeqCst);
    let complete = closed_stdout || args.count.is_none_or(|n| seen >= n);
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

enum Written {
    Line,
    Closed,
}
