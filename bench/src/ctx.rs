//! What every suite shares: the binary to spawn, the Python peer, the
//! configuration files of the default broker, the message body.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::TimeZone;
use nost_app::messages::{NostMessage, TimeStatus};
use tokio::process::Command;

/// Shared by the suites of one run.
pub struct Ctx {
    /// This binary, for the Rust children.
    pub exe: PathBuf,
    /// The venv interpreter with nost_tools 3.6.0, unless Python is skipped.
    pub python: Option<PathBuf>,
    /// `bench/python`.
    pub scripts: PathBuf,
    /// Holds the configuration files.
    pub dir: tempfile::TempDir,
    /// The default broker's port (guest/guest).
    pub amqp_port: u16,
    /// A NOS-T `status.time` body.
    pub body: String,
    /// Another nost-bench build whose nost-rs publisher is measured too.
    pub before_exe: Option<PathBuf>,
}

impl Ctx {
    pub fn new(python: Option<PathBuf>, amqp_port: u16) -> Result<Ctx> {
        let dir = tempfile::tempdir()?;
        write_basic_config(dir.path(), amqp_port)?;
        Ok(Ctx {
            exe: std::env::current_exe().context("the bench binary's path")?,
            python,
            scripts: Path::new(env!("CARGO_MANIFEST_DIR")).join("python"),
            dir,
            amqp_port,
            body: time_status_body(),
            before_exe: None,
        })
    }

    /// `nost.yaml` of the default broker, basic mode.
    pub fn basic_yaml(&self) -> PathBuf {
        self.dir.path().join("nost.yaml")
    }

    /// `.env` with the guest credentials.
    pub fn basic_env(&self) -> PathBuf {
        self.dir.path().join(".env")
    }

    /// `nost-bench child SUB --prefix P --config Y --env-file E` (the basic
    /// configuration unless others are given).
    pub fn rust_child(&self, sub: &str, prefix: &str, files: Option<(&Path, &Path)>) -> Command {
        let (yaml, env) = match files {
            Some((y, e)) => (y.to_owned(), e.to_owned()),
            None => (self.basic_yaml(), self.basic_env()),
        };
        let mut c = Command::new(&self.exe);
        c.args(["child", sub, "--prefix", prefix])
            .arg("--config")
            .arg(yaml)
            .arg("--env-file")
            .arg(env);
        c
    }

    /// `python SCRIPT PREFIX BASIC_YAML` in the configuration directory
    /// (nost_tools finds `.env` there).
    pub fn python_child(&self, script: &str, prefix: &str) -> Result<Command> {
        let py = self.python.as_ref().context("Python is skipped")?;
        let mut c = Command::new(py);
        c.arg(self.scripts.join(script))
            .arg(prefix)
            .arg(self.basic_yaml())
            .current_dir(self.dir.path());
        Ok(c)
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`.
    pub fn default_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.amqp_port)
    }
}

fn write_basic_config(dir: &Path, port: u16) -> Result<()> {
    std::fs::write(
        dir.join("nost.yaml"),
        format!(
            "servers:\n  rabbitmq:\n    keycloak_authentication: False\n    host: \"127.0.0.1\"\n    port: {port}\nexecution:\n  general:\n    prefix: bench\n"
        ),
    )?;
    std::fs::write(dir.join(".env"), "USERNAME=\"guest\"\nPASSWORD=\"guest\"\n")?;
    Ok(())
}

/// The body every publisher sends (~110 bytes): a `status.time`, as
/// nost_tools and nost-rs serialize it.
fn time_status_body() -> String {
    let sim = chrono::Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).single();
    let wall = chrono::Utc
        .with_ymd_and_hms(2026, 11, 28, 9, 30, 0)
        .single()
        .map(|t| t + chrono::Duration::microseconds(123_456));
    match (sim, wall) {
        (Some(s), Some(w)) => TimeStatus::new("satellite-alpha".to_owned(), s, w).to_json(),
        _ => String::from("{}"),
    }
}
