//! Credentials from `.env` and the process environment.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use crate::error::ConfigError;

/// The four variables NOS-T reads.
pub const USERNAME: &str = "USERNAME";
/// Password variable.
pub const PASSWORD: &str = "PASSWORD";
/// Keycloak client id variable.
pub const CLIENT_ID: &str = "CLIENT_ID";
/// Keycloak client secret variable.
pub const CLIENT_SECRET_KEY: &str = "CLIENT_SECRET_KEY";

/// Which `.env` file to read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EnvFile {
    /// Walk up from the current directory to the first `.env`, like
    /// python-dotenv's `find_dotenv(usecwd=True)`.
    #[default]
    Discover,
    /// This file (it must exist).
    Path(PathBuf),
    /// Only the process environment.
    None,
}

/// Where a variable's value was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarSource {
    /// The `.env` file at this path.
    DotEnv(PathBuf),
    /// The process environment.
    Process,
    /// Passed by the program.
    Program,
}

impl fmt::Display for VarSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarSource::DotEnv(p) => write!(f, "{}", p.display()),
            VarSource::Process => f.write_str("process environment"),
            VarSource::Program => f.write_str("program"),
        }
    }
}

/// The credential variables, secrets redacted in `Debug`.
///
/// A variable set to an empty string counts as present (as in `nost_tools`).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// `USERNAME`.
    pub username: Option<String>,
    /// `PASSWORD`.
    pub password: Option<SecretString>,
    /// `CLIENT_ID`.
    pub client_id: Option<String>,
    /// `CLIENT_SECRET_KEY`.
    pub client_secret: Option<SecretString>,
    /// Where each present variable came from.
    pub sources: BTreeMap<&'static str, VarSource>,
    /// The `.env` file that was read, if any.
    pub env_file: Option<PathBuf>,
}

impl Credentials {
    /// Username and password given in code (the environment is not read).
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        let mut c = Credentials {
            username: Some(username.into()),
            password: Some(SecretString::from(password.into())),
            ..Default::default()
        };
        c.sources.insert(USERNAME, VarSource::Program);
        c.sources.insert(PASSWORD, VarSource::Program);
        c
    }

    /// Client id and optional secret given in code.
    pub fn client(client_id: impl Into<String>, client_secret: Option<String>) -> Self {
        let mut c = Credentials {
            client_id: Some(client_id.into()),
            ..Default::default()
        };
        c.sources.insert(CLIENT_ID, VarSource::Program);
        if let Some(s) = client_secret {
            c.client_secret = Some(SecretString::from(s));
            c.sources.insert(CLIENT_SECRET_KEY, VarSource::Program);
        }
        c
    }

    /// Add a username and password given in code.
    pub fn with_user(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self.password = Some(SecretString::from(password.into()));
        self.sources.insert(USERNAME, VarSource::Program);
        self.sources.insert(PASSWORD, VarSource::Program);
        self
    }

    /// Read the four variables: `.env` values override the process
    /// environment, as in `nost_tools`. The process environment is not changed.
    pub fn from_env(env_file: &EnvFile) -> Result<Self, ConfigError> {
        let path = match env_file {
            EnvFile::Discover => std::env::current_dir().ok().and_then(|d| find_dotenv(&d)),
            EnvFile::Path(p) => {
                if !p.is_file() {
                    return Err(ConfigError::EnvFile {
                        path: p.clone(),
                        line: None,
                        message: "file not found".into(),
                    });
                }
                Some(p.clone())
            }
            EnvFile::None => None,
        };
        let file_vars = match &path {
            Some(p) => read_dotenv(p)?,
            None => {
                if *env_file == EnvFile::Discover {
                    tracing::warn!(target: "nost_config", "no .env file found from the current directory upwards; using the process environment only");
                }
                BTreeMap::new()
            }
        };
        let lookup = |name: &'static str, sources: &mut BTreeMap<&'static str, VarSource>| {
            // A key without `=` sets nothing (python-dotenv's `None`).
            if let Some(Some(v)) = file_vars.get(name) {
                if let Some(p) = &path {
                    sources.insert(name, VarSource::DotEnv(p.clone()));
                }
                return Some(v.clone());
            }
            let v = std::env::var(name).ok()?;
            sources.insert(name, VarSource::Process);
            Some(v)
        };
        let mut sources = BTreeMap::new();
        Ok(Credentials {
            username: lookup(USERNAME, &mut sources),
            password: lookup(PASSWORD, &mut sources).map(SecretString::from),
            client_id: lookup(CLIENT_ID, &mut sources),
            client_secret: lookup(CLIENT_SECRET_KEY, &mut sources).map(SecretString::from),
            sources,
            env_file: path,
        })
    }

    /// Which of the four variables are present, in the order
    /// USERNAME, PASSWORD, CLIENT_ID, CLIENT_SECRET_KEY.
    pub fn presence(&self) -> [bool; 4] {
        [
            self.username.is_some(),
            self.password.is_some(),
            self.client_id.is_some(),
            self.client_secret.is_some(),
        ]
    }
}

/// The first regular file named `.env` in `start` or one of its parents.
pub fn find_dotenv(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|d| d.join(".env"))
        .find(|p| p.is_file())
}

/// The file's values as python-dotenv reads them (see [`crate::dotenv`]);
/// `None` for a key written without `=`. A line that does not parse is an
/// error naming the line (never its content).
fn read_dotenv(path: &Path) -> Result<BTreeMap<String, Option<String>>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| ConfigError::EnvFile {
        path: path.to_path_buf(),
        line: None,
        message: e.to_string(),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        ConfigError::EnvFile {
            path: path.to_path_buf(),
            line: Some(line),
            message: "not valid UTF-8 text; save the file as UTF-8".into(),
        }
    })?;
    let parsed = crate::dotenv::dotenv_values(&text, &|name| std::env::var(name).ok());
    if let Some(line) = parsed.invalid_lines.first() {
        // python-dotenv skips such a line with a warning; a mistyped
        // credential silently ignored gives a login error far from its cause,
        // so it is an error here (naming the line, never its content).
        return Err(ConfigError::EnvFile {
            path: path.to_path_buf(),
            line: Some(*line),
            message: format!(
                "{} cannot be parsed (python-dotenv would skip it with a warning): expected KEY=value, with a quoted value closed by its quote and followed by nothing but a # comment",
                if parsed.invalid_lines.len() == 1 {
                    "this line".to_owned()
                } else {
                    format!("this line and {} more", parsed.invalid_lines.len() - 1)
                }
            ),
        });
    }
    Ok(parsed.values.into_iter().collect())
}
