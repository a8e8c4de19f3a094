//! Logging as the YAML's logging fields describe it: console by default,
//! plus a size-rotated file when `enable_file_logging` is true (like
//! Python's `RotatingFileHandler`: `max_bytes`, `backup_count`).
//!
//! A library does not install a global subscriber behind its user's back:
//! call [`init`] from `main` (the `nost` command does).

use std::path::PathBuf;

use nost_config::LoggingConfig;
use rolling_file::{BasicRollingFileAppender, RollingConditionBasic};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::AppError;

/// Keeps the file writer flushing; drop it at the very end of `main`.
#[must_use = "dropping the guard stops file logging"]
pub struct LogGuard {
    _guard: Option<tracing_appender::non_blocking::WorkerGuard>,
    /// The log file, when file logging is on.
    pub file: Option<PathBuf>,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard")
            .field("file", &self.file)
            .finish()
    }
}

/// Flushes after every record, so the file is current (the appender buffers).
struct FlushEach<W: std::io::Write>(W);

impl<W: std::io::Write> std::io::Write for FlushEach<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.0.flush()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// `DEBUG`, `INFO`, `WARNING`/`WARN`, `ERROR`, `CRITICAL` (as `ERROR`).
pub fn level(name: &str) -> Result<LevelFilter, AppError> {
    match name.trim().to_ascii_uppercase().as_str() {
        "DEBUG" => Ok(LevelFilter::DEBUG),
        "INFO" => Ok(LevelFilter::INFO),
        "WARNING" | "WARN" => Ok(LevelFilter::WARN),
        "ERROR" | "CRITICAL" => Ok(LevelFilter::ERROR),
        "NOTSET" | "TRACE" => Ok(LevelFilter::TRACE),
        other => Err(AppError::Message(format!(
            "log_level {other:?} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
        ))),
    }
}

/// The file a configuration logs to: `log_dir/log_filename`, or
/// `log_dir/<APP>_<YYYYmmdd_HHMMSS>.log` (local time) as `nost_tools` names it.
pub fn file_path(app_name: &str, logging: &LoggingConfig) -> PathBuf {
    let name = logging.log_filename.clone().unwrap_or_else(|| {
        format!(
            "{app_name}_{}.log",
            chrono::Local::now().format("%Y%m%d_%H%M%S")
        )
    });
    PathBuf::from(&logging.log_dir).join(name)
}

/// The file layer alone (for composing your own subscriber).
pub fn file_layer<S>(
    app_name: &str,
    logging: &LoggingConfig,
) -> Result<(impl Layer<S> + Send + Sync + 'static, LogGuard), AppError>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let path = file_path(app_name, logging);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            AppError::Message(format!("cannot create log_dir {}: {e}", dir.display()))
        })?;
    }
    let appender = BasicRollingFileAppender::new(
        &path,
        RollingConditionBasic::new().max_size(logging.max_bytes.max(1)),
        logging.backup_count as usize,
    )
    .map_err(|e| AppError::Message(format!("cannot open log file {}: {e}", path.display())))?;
    let (writer, guard) = tracing_appender::non_blocking(FlushEach(appender));
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(writer)
        .with_filter(level(&logging.log_level)?);
    Ok((
        layer,
        LogGuard {
            _guard: Some(guard),
            file: Some(path),
        },
    ))
}

/// Install console logging (stderr; `NOST_LOG`/`RUST_LOG` filters, else
/// `log_level`) and, when `enable_file_logging`, the rotating file.
pub fn init(app_name: &str, logging: &LoggingConfig) -> Result<LogGuard, AppError> {
    let console_filter = EnvFilter::try_from_env("NOST_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| {
            EnvFilter::new(
                level(&logging.log_level)
                    .map(|l| l.to_string())
                    .unwrap_or_else(|_| "info".into()),
            )
        });
    let console = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(console_filter);
    if logging.enable_file_logging {
        let (file, guard) =
            file_layer::<tracing_subscriber::layer::Layered<_, Registry>>(app_name, logging)?;
        let _ = tracing_subscriber::registry()
            .with(console)
            .with(file)
            .try_init();
        Ok(guard)
    } else {
        let _ = tracing_subscriber::registry().with(console).try_init();
        Ok(LogGuard {
            _guard: None,
            file: None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_file_rotates_by_size_and_keeps_backup_count_files() {
        let dir = tempfile::tempdir().unwrap();
        let logging = LoggingConfig {
            enable_file_logging: true,
            log_dir: dir.path().join("logs").display().to_string(),
            log_filename: Some("app.log".into()),
            log_level: "INFO".into(),
            max_bytes: 300,
            backup_count: 2,
            ..Default::default()
        };
        let (layer, guard) = file_layer::<Registry>("app", &logging).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..50 {
                tracing::info!(line = i, "a line long enough to fill the file quickly");
                tracing::debug!("below the level: never written");
            }
        });
        drop(guard);
        let mut files: Vec<String> = std::fs::read_dir(dir.path().join("logs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["app.log", "app.log.1", "app.log.2"]);
        let text = std::fs::read_to_string(dir.path().join("logs/app.log")).unwrap();
        assert!(
            text.contains("line=49") && !text.contains("never written"),
            "{text}"
        );
    }

    #[test]
    fn default_names_and_levels_follow_nost_tools() {
        let p = file_path("fire", &LoggingConfig::default());
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("fire_")
                && name.ends_with(".log")
                && name.len() == "fire_20240101_120000.log".len(),
            "{name}"
        );
        assert_eq!(p.parent().unwrap(), std::path::Path::new("logs"));
        assert_eq!(level("WARNING").unwrap(), LevelFilter::WARN);
        assert!(level("LOUD").is_err());
    }
}
