//! Errors and warnings of loading a configuration.

use std::fmt;
use std::path::PathBuf;

use crate::mode::ModeError;

/// Where a piece of configuration came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A YAML file.
    File(PathBuf),
    /// Text or values given by the program.
    Program,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Program => f.write_str("<configuration built in code>"),
        }
    }
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path, e.g. `servers.rabbitmq.port`.
    pub path: String,
    /// What is wrong and what would be valid.
    pub message: String,
    /// 1-based line of the field in the file, when it could be found.
    pub line: Option<usize>,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// A configuration that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The YAML file does not exist.
    #[error(
        "configuration file {path} not found (paths are relative to the current directory {cwd})"
    )]
    NotFound {
        /// The path as given.
        path: PathBuf,
        /// The current directory it was resolved against.
        cwd: String,
    },
    /// The file exists but could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file holds no YAML document.
    #[error(
        "configuration {origin} is empty: it needs at least `servers:` and `execution:` sections"
    )]
    Empty {
        /// The file.
        origin: Origin,
    },
    /// The YAML does not parse or does not fit the schema.
    #[error("{origin}{}: {message}", location_suffix(*line, *column))]
    Parse {
        /// The file.
        origin: Origin,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// Values that parse but are not valid.
    #[error("invalid configuration in {origin}:\n{}", list(errors))]
    Invalid {
        /// The file.
        origin: Origin,
        /// Each offending field.
        errors: Vec<FieldError>,
    },
    /// The `.env` file could not be read or parsed.
    #[error("cannot read environment file {path}{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    EnvFile {
        /// The `.env` file.
        path: PathBuf,
        /// 1-based line of the offending entry, when known.
        line: Option<usize>,
        /// What is wrong (values are never quoted).
        message: String,
    },
    /// The credentials, configuration and tokens do not make one valid mode.
    #[error(transparent)]
    Mode(#[from] ModeError),
}

fn location_suffix(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l} column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Something accepted for compatibility that is probably a mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Dotted path of the key, e.g. `servers.rabbitmq.virtualHost`.
    pub path: String,
    /// What was noticed and what to do.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}
