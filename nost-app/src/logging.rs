//! Logging as the YAML's logging fields describe it: console by default,
//! plus a size-rotated file when `enable_file_logging` is true (like
//! Python's `RotatingFileHandler`: `max_bytes`, `backup_count`).
//!
//! `start_up` applies the file part itself (unless
//! [`StartOptions::skip_file_logging`](crate::StartOptions::skip_file_logging)):
//! it registers the file with a process-wide router ([`register`]) and
//! removes it at shutdown. tracing has one global subscriber per process,
//! so the files are not subscribers of their own: the router is one layer
//! ([`router_layer`]) that writes each event to every registered file whose
//! `log_level` admits it, like `nost_tools`' handlers on Python's root
//! logger (each file hears the whole process). Several applications in one
//! process each add their file; applications with the same file share it
//! (one line per event). When no global subscriber is installed yet, the
//! first registration installs one holding just the router (no console
//! output is added); a program with its own subscriber adds
//! [`router_layer`] to it, or gets one warning that the YAML's file stays
//! empty. [`init`] (the `nost` command) installs console + router.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use nost_config::LoggingConfig;
use rolling_file::{BasicRollingFileAppender, RollingConditionBasic};
use tracing::level_filters::LevelFilter;
#[cfg(test)]
use tracing_subscriber::Registry;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::AppError;

/// Keeps the file writer flushing; drop it at the very end of `main`.
#[must_use = "dropping the guard stops file logging"]
pub struct LogGuard {
    _guard: Option<tracing_appender::non_blocking::WorkerGuard>,
    _registration: Option<FileLogRegistration>,
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
        other => Err(AppError::LogLevel(other.to_owned())),
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
        std::fs::create_dir_all(dir).map_err(|source| AppError::File {
            action: "create log_dir",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let appender = BasicRollingFileAppender::new(
        &path,
        RollingConditionBasic::new().max_size(logging.max_bytes.max(1)),
        logging.backup_count as usize,
    )
    .map_err(|source| AppError::File {
        action: "open log file",
        path: path.clone(),
        source,
    })?;
    let (writer, guard) = tracing_appender::non_blocking(FlushEach(appender));
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(writer)
        .with_filter(level(&logging.log_level)?);
    Ok((
        layer,
        LogGuard {
            _guard: Some(guard),
            _registration: None,
            file: Some(path),
        },
    ))
}

/// Install console logging (stderr; `NOST_LOG`/`RUST_LOG` filters, else
/// `log_level`) and the file router, and when `enable_file_logging`,
/// register the rotating file (the same file `start_up` of `app_name` then
/// shares).
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
    let _ = tracing_subscriber::registry()
        .with(console)
        .with(router_layer())
        .try_init();
    if logging.enable_file_logging {
        let registration = register(app_name, logging)?;
        let file = Some(registration.path().to_path_buf());
        Ok(LogGuard {
            _guard: None,
            _registration: Some(registration),
            file,
        })
    } else {
        Ok(LogGuard {
            _guard: None,
            _registration: None,
            file: None,
        })
    }
}

type Appender = BasicRollingFileAppender;

struct Sink {
    key: (String, String, Option<String>),
    path: PathBuf,
    level: LevelFilter,
    writer: Mutex<Appender>,
    users: AtomicUsize,
}

static SINKS: RwLock<Vec<Arc<Sink>>> = RwLock::new(Vec::new());
/// The most verbose level of any registered file, as `LevelFilter` index
/// (0 = off … 5 = trace).
static MAX_LEVEL: AtomicUsize = AtomicUsize::new(0);
static ROUTER_IN_USE: AtomicBool = AtomicBool::new(false);
static WARNED: AtomicBool = AtomicBool::new(false);

fn level_index(l: LevelFilter) -> usize {
    match l {
        LevelFilter::OFF => 0,
        LevelFilter::ERROR => 1,
        LevelFilter::WARN => 2,
        LevelFilter::INFO => 3,
        LevelFilter::DEBUG => 4,
        _ => 5,
    }
}

fn index_level(i: usize) -> LevelFilter {
    [
        LevelFilter::OFF,
        LevelFilter::ERROR,
        LevelFilter::WARN,
        LevelFilter::INFO,
        LevelFilter::DEBUG,
        LevelFilter::TRACE,
    ][i.min(5)]
}

fn sinks() -> std::sync::RwLockReadGuard<'static, Vec<Arc<Sink>>> {
    SINKS.read().unwrap_or_else(|p| p.into_inner())
}

fn sinks_mut() -> std::sync::RwLockWriteGuard<'static, Vec<Arc<Sink>>> {
    SINKS.write().unwrap_or_else(|p| p.into_inner())
}

fn update_max_level(list: &[Arc<Sink>]) {
    let max = list.iter().map(|s| level_index(s.level)).max().unwrap_or(0);
    if MAX_LEVEL.swap(max, Ordering::SeqCst) != max {
        tracing::callsite::rebuild_interest_cache();
    }
}

/// A file registered with the router; dropping it (at the application's
/// shutdown) unregisters it, and the last user closes the file.
#[must_use = "dropping the registration stops writing the file"]
pub struct FileLogRegistration {
    sink: Arc<Sink>,
}

impl FileLogRegistration {
    /// The file written.
    pub fn path(&self) -> &std::path::Path {
        &self.sink.path
    }
}

impl std::fmt::Debug for FileLogRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLogRegistration")
            .field("path", &self.sink.path)
            .finish()
    }
}

impl Drop for FileLogRegistration {
    fn drop(&mut self) {
        if self.sink.users.fetch_sub(1, Ordering::SeqCst) == 1 {
            let mut list = sinks_mut();
            list.retain(|s| !Arc::ptr_eq(s, &self.sink));
            update_max_level(&list);
        }
    }
}

/// Write `app_name`'s log file as `logging` describes (it need not have
/// `enable_file_logging`: the caller decided). The same app name, `log_dir`
/// and `log_filename` share one file.
pub fn register(app_name: &str, logging: &LoggingConfig) -> Result<FileLogRegistration, AppError> {
    let filter = level(&logging.log_level)?;
    ensure_router();
    let key = (
        app_name.to_owned(),
        logging.log_dir.clone(),
        logging.log_filename.clone(),
    );
    let mut list = sinks_mut();
    if let Some(s) = list.iter().find(|s| s.key == key) {
        s.users.fetch_add(1, Ordering::SeqCst);
        return Ok(FileLogRegistration { sink: s.clone() });
    }
    let path = file_path(app_name, logging);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| AppError::File {
            action: "create log_dir",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let appender = BasicRollingFileAppender::new(
        &path,
        RollingConditionBasic::new().max_size(logging.max_bytes.max(1)),
        logging.backup_count as usize,
    )
    .map_err(|source| AppError::File {
        action: "open log file",
        path: path.clone(),
        source,
    })?;
    let sink = Arc::new(Sink {
        key,
        path,
        level: filter,
        writer: Mutex::new(appender),
        users: AtomicUsize::new(1),
    });
    list.push(sink.clone());
    update_max_level(&list);
    Ok(FileLogRegistration { sink })
}

/// Install a global subscriber holding the router when none is installed;
/// warn once when another one without it is.
fn ensure_router() {
    if ROUTER_IN_USE.load(Ordering::SeqCst) {
        return;
    }
    let installed = tracing_subscriber::registry()
        .with(router_layer())
        .try_init()
        .is_ok();
    if !installed && !ROUTER_IN_USE.load(Ordering::SeqCst) && !WARNED.swap(true, Ordering::SeqCst) {
        tracing::warn!(target: "nost_app", "a global tracing subscriber without nost_app::logging::router_layer() is installed: the log file of the YAML's logging fields gets no lines; add router_layer() to your subscriber, or set StartOptions::skip_file_logging");
    }
}

/// The layer writing events to the registered files: add it to your own
/// subscriber (`registry().with(your_layers).with(router_layer())`).
pub fn router_layer<S>() -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    FileRouter.with_filter(RouterFilter)
}

struct FileRouter;

struct RouterFilter;

impl<S> tracing_subscriber::layer::Filter<S> for RouterFilter {
    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        _cx: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        index_level(MAX_LEVEL.load(Ordering::Relaxed)) >= *meta.level()
    }

    fn callsite_enabled(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if index_level(MAX_LEVEL.load(Ordering::Relaxed)) >= *meta.level() {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(index_level(MAX_LEVEL.load(Ordering::Relaxed)))
    }
}

impl<S: tracing::Subscriber> Layer<S> for FileRouter {
    fn on_layer(&mut self, _subscriber: &mut S) {
        ROUTER_IN_USE.store(true, Ordering::SeqCst);
    }

    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let meta = event.metadata();
        let list = sinks();
        if !list.iter().any(|s| s.level >= *meta.level()) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        // Python's default format: `%(asctime)s [%(levelname)s] %(name)s: %(message)s`.
        let level = match *meta.level() {
            tracing::Level::ERROR => "ERROR",
            tracing::Level::WARN => "WARNING",
            tracing::Level::INFO => "INFO",
            tracing::Level::DEBUG => "DEBUG",
            tracing::Level::TRACE => "TRACE",
        };
        let line = format!(
            "{} [{level}] {}: {}{}\n",
            chrono::Local::now().format("%Y-%m-%d %H:%M:%S,%3f"),
            meta.target(),
            fields.message,
            fields.rest
        );
        for s in list.iter().filter(|s| s.level >= *meta.level()) {
            let mut w = s.writer.lock().unwrap_or_else(|p| p.into_inner());
            let _ = w.write_all(line.as_bytes()).and_then(|()| w.flush());
        }
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.rest.push_str(&format!(" {}={value}", field.name()));
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message.push_str(&format!("{value:?}"));
        } else {
            self.rest.push_str(&format!(" {}={value:?}", field.name()));
        }
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
