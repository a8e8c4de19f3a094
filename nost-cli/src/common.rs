//! What every command shares: configuration options and logging.

use std::path::PathBuf;

use anyhow::Context;
use nost_config::{Config, Credentials, EnvFile, LoadedConfig, Origin, SecretString, Tokens};

/// Options every command accepts to find its configuration.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// NOS-T YAML configuration (default: a local broker, basic auth).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// .env file with USERNAME/PASSWORD/CLIENT_ID/CLIENT_SECRET_KEY
    /// (default: the first .env from the current directory upwards).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// File holding a pre-acquired access token (pre_acquired mode).
    #[arg(long, value_name = "FILE", requires = "refresh_token_file")]
    pub access_token_file: Option<PathBuf>,
    /// File holding the matching refresh token.
    #[arg(long, value_name = "FILE", requires = "access_token_file")]
    pub refresh_token_file: Option<PathBuf>,
}

/// Everything a command needs to connect.
pub struct Resolved {
    pub loaded: LoadedConfig,
    pub credentials: Credentials,
    pub tokens: Tokens,
}

impl ConfigArgs {
    pub fn resolve(&self) -> anyhow::Result<Resolved> {
        let loaded = match &self.config {
            Some(p) => nost_config::load_file(p)?,
            None => LoadedConfig {
                config: Config::default(),
                warnings: Vec::new(),
                origin: Origin::Program,
            },
        };
        let env = match &self.env_file {
            Some(p) => EnvFile::Path(p.clone()),
            None => EnvFile::Discover,
        };
        let mut credentials = Credentials::from_env(&env)?;
        if self.config.is_none() && credentials.username.is_none() && credentials.password.is_none()
        {
            // The default local broker's account, as `nost demo` promises.
            let found = std::mem::take(&mut credentials);
            credentials = Credentials {
                client_id: found.client_id,
                client_secret: found.client_secret,
                ..Credentials::basic("guest", "guest")
            };
        }
        let read = |p: &PathBuf| -> anyhow::Result<SecretString> {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read token file {}", p.display()))?;
            Ok(SecretString::from(text.trim().to_owned()))
        };
        let tokens = Tokens {
            access_token: self.access_token_file.as_ref().map(read).transpose()?,
            refresh_token: self.refresh_token_file.as_ref().map(read).transpose()?,
        };
        Ok(Resolved {
            loaded,
            credentials,
            tokens,
        })
    }
}

impl Resolved {
    /// Start-up options for an application using these credentials/tokens.
    pub fn start_options(&self, otp: Option<String>) -> nost_app::StartOptions {
        let otp = otp.map(SecretString::from).or_else(nost_auth::otp_from_env);
        let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
        nost_app::StartOptions {
            auth: nost_app::AuthInputs {
                credentials: Some(self.credentials.clone()),
                access_token: self.tokens.access_token.clone(),
                refresh_token: self.tokens.refresh_token.clone(),
                otp,
                otp_provider: interactive.then(|| {
                    std::sync::Arc::new(nost_auth::TerminalOtpPrompt)
                        as std::sync::Arc<dyn nost_auth::OtpProvider>
                }),
                ..Default::default()
            },
            handle_signals: true,
            ..Default::default()
        }
    }

    /// `--prefix`, else `execution.general.prefix`.
    pub fn prefix(&self, given: Option<String>) -> String {
        given.unwrap_or_else(|| self.loaded.config.execution.general_or_default().prefix)
    }
}

pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // With the file router, so the YAML's log files of start_up get lines.
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let console = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let _ = tracing_subscriber::registry()
        .with(console)
        .with(nost_app::logging::router_layer())
        .try_init();
}

/// `--timeout`-like arguments: a finite number of seconds from 0 to ten years.
pub fn seconds_arg(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    let max = nost_config::MAX_SECONDS as f64;
    if v.is_finite() && (0.0..=max).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "must be a number of seconds from 0 to {max} (ten years), got {text}"
        ))
    }
}

/// A time-scale factor: a finite number greater than 0.
pub fn factor_arg(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!(
            "must be a finite number greater than 0, got {text}"
        ))
    }
}

/// Resolves when the application's Keycloak login can no longer be
/// renewed; never in basic mode.
pub async fn auth_fatal(
    app: &nost_app::Application,
) -> (nost_auth::FatalKind, nost_auth::AuthError) {
    match app.token_manager() {
        Some(tm) => tm.fatal().await,
        None => std::future::pending().await,
    }
}

/// Exit status 3 with what happened and what to do, on stderr.
pub fn fatal_exit(
    kind: nost_auth::FatalKind,
    error: &nost_auth::AuthError,
) -> std::process::ExitCode {
    eprintln!(
        "error: the Keycloak login cannot be renewed ({kind}): {error}\nwhat to do: {}",
        kind.advice()
    );
    std::process::ExitCode::from(3)
}
