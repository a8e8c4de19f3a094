//! `nost publish`: send one message as an application.

use std::process::ExitCode;

use nost_app::{Application, StartOptions};

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
    #[arg(long)]
    pub topic: String,
    /// One-time password for a user account.
    #[arg(long)]
    pub otp: Option<String>,
    /// The message body (usually JSON).
    pub payload: String,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let r = args.config.resolve()?;
    let prefix = r.prefix(args.prefix.clone());
    let mut options = StartOptions {
        set_offset: Some(false),
        ..r.start_options(args.otp.clone())
    };
    options.handle_signals = false;
    let app = Application::start_up(&args.app, &prefix, &r.loaded.config, options).await?;
    app.send_message(&args.topic, &args.payload).await?;
    app.session()
        .flush(std::time::Duration::from_secs(10))
        .await?;
    app.shut_down().await;
    eprintln!("published on {prefix}.{}.{}", args.app, args.topic);
    Ok(ExitCode::SUCCESS)
}
