//! The `nost` command: thin glue over the nost-rs libraries.

mod cmd;
mod common;

use clap::{Parser, Subcommand};

const MODES_HELP: &str = "Authentication modes (chosen from the YAML, the .env file and token arguments):
  basic            servers.rabbitmq.keycloak_authentication: false; USERNAME + PASSWORD
  service_account  keycloak_authentication: true; CLIENT_ID + CLIENT_SECRET_KEY
  user_account     keycloak_authentication: true; USERNAME + PASSWORD + CLIENT_ID + CLIENT_SECRET_KEY
                   (an OTP via --otp or NOST_OTP when the realm asks for one)
  pre_acquired     keycloak_authentication: true; tokens given with --access-token-file and
                   --refresh-token-file, CLIENT_ID (+ CLIENT_SECRET_KEY for a confidential client)";

/// Tools for NOS-T applications on RabbitMQ.
#[derive(Parser, Debug)]
#[command(name = "nost", version, about, after_help = MODES_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load and validate a configuration as an application would; print the mode.
    Check(cmd::check::Args),
    /// Run a short scenario on the local broker: a manager and three managed applications.
    Demo(cmd::run::DemoArgs),
    /// Run the Manager's test plan from execution.manager.
    Manager(cmd::run::ManagerArgs),
    /// Run a ManagedApplication with the settings of execution.managed_applications.NAME.
    Managed(cmd::run::ManagedArgs),
    /// Perform the Keycloak grant of the detected mode and show the token's claims.
    Token(cmd::token::Args),
    /// Print every message under a prefix as JSON lines (a logger application).
    Listen(cmd::listen::Args),
    /// Publish one message as an application.
    Publish(cmd::publish::Args),
    /// Write every message under a prefix to a CSV file (nost_tools' LoggerApplication).
    Logger(cmd::logger::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // manager/managed log as their YAML section says (file logging included).
    if !matches!(cli.command, Command::Manager(_) | Command::Managed(_)) {
        common::init_logging();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Check(args) => cmd::check::run(args),
            Command::Demo(args) => cmd::run::demo(args).await,
            Command::Manager(args) => cmd::run::manager(args).await,
            Command::Managed(args) => cmd::run::managed(args).await,
            Command::Token(args) => cmd::token::run(args).await,
            Command::Listen(args) => cmd::listen::run(args).await,
            Command::Publish(args) => cmd::publish::run(args).await,
            Command::Logger(args) => cmd::logger::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            std::process::ExitCode::from(2)
        }
    }
}

/// The error and its causes (as `{e:#}` prints them), leaving out a cause
/// whose text the message already holds: errors that name their cause in
/// their own text also return it as their `source()`.
fn report(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
