//! `LoggerApplication`: writes every message under a prefix to a CSV file,
//! in `nost_tools`' log file format (described on [`LoggerApplication`]).

use crate::app::lock;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use nost_config::{Config, LoggerApplicationConfig};

use crate::app::{Application, RoleSettings};
use crate::{AppError, StartOptions};

/// The header line of every log file.
pub(crate) const HEADER: &str = "Timestamp,Topic,Payload";

/// A datetime as Python's `str(datetime)` prints an aware UTC one:
/// `2024-01-01 12:00:00.123456+00:00`, without `.ffffff` when the
/// microseconds are zero.
pub(crate) fn python_str(t: DateTime<Utc>) -> String {
    let base = t.format("%Y-%m-%d %H:%M:%S");
    match t.timestamp_subsec_micros() {
        0 => format!("{base}+00:00"),
        us => format!("{base}.{us:06}+00:00"),
    }
}

/// The file name `nost_tools` gives a log opened at `t`.
pub(crate) fn file_name(t: DateTime<Utc>) -> String {
    format!("{}.log", python_str(t).replace(' ', "T").replace(':', "-"))
}

/// One CSV field: as is, or quoted when it holds `,`, `"`, CR or LF.
pub(crate) fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

/// One row (with its `\n`).
pub(crate) fn csv_row(t: DateTime<Utc>, topic: &str, payload: &str) -> String {
    format!(
        "{},{},{}\n",
        csv_field(&python_str(t)),
        csv_field(topic),
        csv_field(payload)
    )
}

struct CsvLog {
    dir: PathBuf,
    path: PathBuf,
    file: Option<File>,
    rows: u64,
}

impl CsvLog {
    /// A new file named by `now` (a later microsecond when taken).
    fn open(dir: &Path, now: DateTime<Utc>) -> Result<CsvLog, AppError> {
        std::fs::create_dir_all(dir).map_err(|source| AppError::File {
            action: "create execution.logger_application.log_dir",
            path: dir.to_path_buf(),
            source,
        })?;
        let mut t = now;
        loop {
            let path = dir.join(file_name(t));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(format!("{HEADER}\n").as_bytes())
                        .and_then(|()| file.flush())
                        .map_err(|source| AppError::File {
                            action: "write",
                            path: path.clone(),
                            source,
                        })?;
                    tracing::info!(target: "nost_app", file = %path.display(), "logger opened its file");
                    return Ok(CsvLog {
                        dir: dir.to_path_buf(),
                        path,
                        file: Some(file),
                        rows: 0,
                    });
                }
                // Another logger opened a file in the same microsecond.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    t += TimeDelta::microseconds(1);
                }
                Err(source) => {
                    return Err(AppError::File {
                        action: "create log file",
                        path,
                        source,
                    });
                }
            }
        }
    }

    fn write(&mut self, row: &str) -> std::io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Err(std::io::Error::other("the log file is closed"));
        };
        file.write_all(row.as_bytes())?;
        file.flush()?;
        self.rows += 1;
        Ok(())
    }
}

/// A NOS-T application that writes every message it hears to a CSV file
/// (`nost_tools`' `LoggerApplication`).
///
/// The file is `<log_dir>/<wallclock>.log`, the wallclock (UTC, Python's
/// `str(datetime)` form) with `' '` → `'T'` and `':'` → `'-'`, e.g.
/// `2024-01-01T12-00-00.123456+00-00.log`; a new one at every start-up
/// (no rotation, as `nost_tools`; [`LoggerApplication::new_file`] starts
/// another). The first line is `Timestamp,Topic,Payload`; each message adds
/// `<wallclock>,<routing key>,<payload>` and a `\n`, the wallclock as Python
/// prints it (`2024-01-01 12:00:00.123456+00:00`). Unlike `nost_tools`,
/// which writes fields unquoted, a field holding `,`, `"`, CR or LF is
/// quoted as CSV does (RFC 4180: `"…"`, inner quotes doubled), so any
/// payload survives a CSV reader; every other line is byte for byte what
/// `nost_tools` writes.
///
/// Configured by `execution.logger_application` (`log_app`, `log_topic`,
/// `log_dir` and the start-up fields); without that section its defaults
/// are used (`nost_tools` crashes).
#[derive(Clone)]
pub struct LoggerApplication {
    app: Application,
    log: Arc<Mutex<CsvLog>>,
    binding_key: String,
}

impl std::fmt::Debug for LoggerApplication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggerApplication")
            .field("app", &self.app)
            .field("binding_key", &self.binding_key)
            .field("file", &self.file())
            .finish()
    }
}

impl LoggerApplication {
    /// Start up as application `name` (`nost_tools`' default is `logger`),
    /// open a new log file and subscribe to
    /// `PREFIX.<log_app>.<log_topic>` (`PREFIX.*.#` by default: every
    /// message of the run).
    pub async fn start_up(
        name: &str,
        prefix: &str,
        config: &Config,
        options: StartOptions,
    ) -> Result<LoggerApplication, AppError> {
        let section = config
            .execution
            .logger_application
            .clone()
            .unwrap_or_default();
        Self::start_up_with(name, prefix, config, options, section).await
    }

    /// Like [`LoggerApplication::start_up`] with the section given in code
    /// (validated like the file's).
    pub async fn start_up_with(
        name: &str,
        prefix: &str,
        config: &Config,
        options: StartOptions,
        mut section: LoggerApplicationConfig,
    ) -> Result<LoggerApplication, AppError> {
        if section.log_app == "+" {
            tracing::warn!(target: "nost_app", "log_app `+` is an MQTT wildcard and matches nothing in AMQP; logging every application (`*`)");
            section.log_app = "*".into();
        }
        let mut checked = config.clone();
        checked.execution.logger_application = Some(section.clone());
        checked.validate_all()?;
        let role = RoleSettings {
            time_status_step: options.time_status_step.or(section.time_status_step),
            time_status_init: options.time_status_init.or(section.time_status_init),
            shut_down_when_terminated: options
                .shut_down_when_terminated
                .unwrap_or(section.shut_down_when_terminated),
            set_offset: options.set_offset.unwrap_or(section.set_offset),
            logging: None,
        };
        let app = Application::start_up_with(name, prefix, config, options, role).await?;
        let log = match CsvLog::open(Path::new(&section.log_dir), app.simulator().wallclock_now()) {
            Ok(l) => Arc::new(Mutex::new(l)),
            Err(e) => {
                app.shut_down().await;
                return Err(e);
            }
        };
        let binding_key = crate::topics::routing_key(prefix, &section.log_app, &section.log_topic);
        let logger = LoggerApplication {
            app,
            log,
            binding_key,
        };
        let (sim, log) = (logger.app.simulator().clone(), logger.log.clone());
        let subscribed = logger
            .app
            .add_message_callback(&section.log_app, &section.log_topic, move |m| {
                let (sim, log) = (sim.clone(), log.clone());
                async move {
                    let payload = match std::str::from_utf8(&m.body) {
                        Ok(p) => std::borrow::Cow::Borrowed(p),
                        Err(_) => {
                            tracing::warn!(target: "nost_app", routing_key = %m.routing_key, "message body is not UTF-8; logged with U+FFFD in place of the invalid bytes");
                            String::from_utf8_lossy(&m.body)
                        }
                    };
                    let row = csv_row(sim.wallclock_now(), &m.routing_key, &payload);
                    lock(&log).write(&row)?;
                    Ok(())
                }
            })
            .await;
        if let Err(e) = subscribed {
            logger.app.shut_down().await;
            return Err(e);
        }
        tracing::info!(target: "nost_app", app = name, binding_key = %logger.binding_key, file = %logger.file().display(), "logger started up and listening for messages");
        Ok(logger)
    }

    /// The underlying application (name, prefix, simulator, sending).
    pub fn app(&self) -> &Application {
        &self.app
    }

    /// The binding key of its subscription, e.g. `PREFIX.*.#`.
    pub fn binding_key(&self) -> &str {
        &self.binding_key
    }

    /// The file being written.
    pub fn file(&self) -> PathBuf {
        lock(&self.log).path.clone()
    }

    /// Rows written to the current file (header not counted).
    pub fn rows(&self) -> u64 {
        lock(&self.log).rows
    }

    /// Close the current file and continue in a new one (named by now).
    pub fn new_file(&self) -> Result<PathBuf, AppError> {
        let mut log = lock(&self.log);
        let next = CsvLog::open(&log.dir, self.app.simulator().wallclock_now())?;
        *log = next;
        Ok(log.path.clone())
    }

    /// Shut the application down (every message acknowledged so far is in
    /// the file), then close the file.
    pub async fn shut_down(&self) {
        self.app.shut_down().await;
        let mut log = lock(&self.log);
        if log.file.take().is_some() {
            tracing::info!(target: "nost_app", file = %log.path.display(), rows = log.rows, "logger closed its file");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_and_names_are_pythons() {
        let t = Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap();
        assert_eq!(python_str(t), "2024-01-01 12:00:00+00:00");
        let t = t + TimeDelta::microseconds(123_456);
        assert_eq!(python_str(t), "2024-01-01 12:00:00.123456+00:00");
        assert_eq!(file_name(t), "2024-01-01T12-00-00.123456+00-00.log");
    }

    #[test]
    fn only_fields_that_need_it_are_quoted() {
        let t = Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap();
        assert_eq!(
            csv_row(t, "p.a.b", "plain"),
            "2024-01-01 12:00:00+00:00,p.a.b,plain\n"
        );
        assert_eq!(
            csv_row(t, "p.a.b", r#"{"a":1,"b":"x"}"#),
            "2024-01-01 12:00:00+00:00,p.a.b,\"{\"\"a\"\":1,\"\"b\"\":\"\"x\"\"}\"\n"
        );
        assert_eq!(csv_field("a\nb"), "\"a\nb\"");
    }
}
