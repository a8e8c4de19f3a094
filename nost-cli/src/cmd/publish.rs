//! `nost publish`: send one message, or one per line of a file, as an
//! application, and say truthfully what the broker did with each.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use nost_amqp::AmqpError;
use nost_app::{AppError, Application, StartOptions};

use crate::common::ConfigArgs;

/// Arguments of `nost publish`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Run prefix (default: execution.general.prefix).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Sending application name.
    #[arg(long)]
    pub app: String,
    /// Topic (may contain dots, e.g. status.ready).
    #[arg(long, required_unless_present = "lines", conflicts_with = "lines")]
    pub topic: Option<String>,
    /// Publish one message per line of FILE (`-` for standard input),
    /// written as `TOPIC PAYLOAD` (the first space separates them).
    #[arg(long, value_name = "FILE")]
    pub lines: Option<String>,
    /// One-time password for a user account.
    #[arg(long)]
    pub otp: Option<String>,
    /// The message body (usually JSON).
    #[arg(required_unless_present = "lines", conflicts_with = "lines")]
    pub payload: Option<String>,
}

/// How long to wait for the broker's verdict on everything sent.
const VERDICT_WAIT: Duration = Duration::from_secs(30);

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let r = args.config.resolve()?;
    let prefix = r.prefix(args.prefix.clone());
    // Read the lines first: a missing file fails before connecting.
    let lines = match &args.lines {
        Some(path) => Some(read_lines(path)?),
        None => None,
    };
    let mut options = StartOptions {
        set_offset: Some(false),
        ..r.start_options(args.otp.clone())
    };
    options.handle_signals = false;
    let app = Application::start_up(&args.app, &prefix, &r.loaded.config, options).await?;
    let code = match lines {
        Some(lines) => publish_lines(&app, &prefix, &args.app, lines).await,
        None => {
            let topic = args.topic.clone().unwrap_or_default();
            let payload = args.payload.clone().unwrap_or_default();
            match verdict(&app, app.send_message_confirmed(&topic, &payload)).await {
                Ok(()) => {
                    eprintln!("published on {prefix}.{}.{topic}", args.app);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
    };
    app.shut_down().await;
    Ok(code)
}

/// The verdict, or after [`VERDICT_WAIT`] an error saying why none came
/// (no connection, a connection the broker blocked, or a slow broker).
async fn verdict(
    app: &Application,
    f: impl std::future::Future<Output = Result<(), AppError>>,
) -> Result<(), AppError> {
    tokio::time::timeout(VERDICT_WAIT, f)
        .await
        .unwrap_or_else(|_| {
            let session = app.session();
            let (waiting, unconfirmed) = session.pending();
            Err(AppError::Amqp(AmqpError::FlushTimeout {
                waiting,
                unconfirmed,
                timeout: VERDICT_WAIT,
                state: session.link_state(),
            }))
        })
}

fn read_lines(path: &str) -> anyhow::Result<Vec<String>> {
    let read = |r: &mut dyn BufRead| -> std::io::Result<Vec<String>> { r.lines().collect() };
    let lines = if path == "-" {
        read(&mut std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(path)
            .map_err(|e| anyhow::anyhow!("cannot read --lines {path}: {e}"))?;
        read(&mut std::io::BufReader::new(f))
    };
    lines.map_err(|e| anyhow::anyhow!("cannot read --lines {path}: {e}"))
}

/// Publish every line in order; exit 0 only when the broker confirmed
/// every message, else one line on stderr per message that failed.
async fn publish_lines(
    app: &Application,
    prefix: &str,
    name: &str,
    lines: Vec<String>,
) -> ExitCode {
    let mut handles = Vec::new();
    let mut failed = 0usize;
    let mut sent = 0usize;
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let Some((topic, payload)) = line.split_once(' ') else {
            eprintln!(
                "line {n}: {line}: not sent: expected `TOPIC PAYLOAD` (the first space separates them)"
            );
            failed += 1;
            continue;
        };
        match app.send_message_tracked(topic, payload).await {
            Ok(h) => handles.push((n, topic.to_owned(), h)),
            Err(e) => {
                eprintln!("line {n}: {topic}: {e}");
                failed += 1;
            }
        }
    }
    for (n, topic, h) in handles {
        match verdict(app, async { Ok(h.await?) }).await {
            Ok(()) => sent += 1,
            Err(e) => {
                let reason = match &e {
                    AppError::Amqp(AmqpError::PublishRefused(r)) => r.to_string(),
                    other => other.to_string(),
                };
                eprintln!("line {n}: {topic}: {reason}");
                failed += 1;
            }
        }
    }
    eprintln!("{sent} message(s) confirmed on {prefix}.{name}.*, {failed} not");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
