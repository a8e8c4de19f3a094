//! Reading a YAML file into a validated [`Config`].

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use serde_norway::Value as Yaml;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::duration::{NostDuration, is_plain_hms};
use crate::error::{ConfigError, ConfigWarning, FieldError, Origin};
use crate::schema::Config;

/// A configuration that passed validation, with what was noticed on the way.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The validated configuration.
    pub config: Config,
    /// Unknown keys and other things accepted for compatibility.
    pub warnings: Vec<ConfigWarning>,
    /// Where it came from.
    pub origin: Origin,
}

/// Read, parse and validate a YAML file. A relative path is resolved against
/// the current directory. Warnings are also logged at `warn` level.
pub fn load_file(path: impl AsRef<Path>) -> Result<LoadedConfig, ConfigError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ConfigError::NotFound {
            path: path.to_path_buf(),
            cwd: std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "?".into()),
        },
        _ => ConfigError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    load_str(&text, Origin::File(PathBuf::from(path)))
}

/// Parse and validate YAML text. `origin` only names the source in messages.
pub fn load_str(text: &str, origin: Origin) -> Result<LoadedConfig, ConfigError> {
    let raw: Yaml = serde_norway::from_str(text).map_err(|e| parse_error(&origin, &e))?;
    if raw.is_null() {
        return Err(ConfigError::Empty { origin });
    }
    if !raw.is_mapping() {
        return Err(ConfigError::Parse {
            origin,
            line: Some(1),
            column: Some(1),
            message: "the top level must be a mapping with `servers:` and `execution:`".into(),
        });
    }
    let mut config: Config = serde_norway::from_str(text).map_err(|e| {
        flattened_field_error(text, &raw, &origin, &e).unwrap_or_else(|| parse_error(&origin, &e))
    })?;

    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let raw_json: Json = serde_json::to_value(&raw).unwrap_or(Json::Null);

    apply_scaling(&mut config, &raw_json, &mut warnings, &mut errors);
    check_keycloak_section(&raw_json, &mut errors);
    if let Some(l) = config.execution.logger_application.as_mut()
        && l.log_app == "+"
    {
        l.log_app = "*".into();
        warnings.push(ConfigWarning {
            path: "execution.logger_application.log_app".into(),
            message: "`+` is an MQTT wildcard and matches nothing in AMQP (nost_tools' default); read as `*`, every application".into(),
        });
    }
    if let Ok(typed) = serde_json::to_value(&config) {
        unknown_keys(&raw_json, &typed, "", &mut warnings);
    }
    warnings.extend(crate::channels::check(&config).1);
    errors.extend(
        check(&config)
            .into_iter()
            .filter(|e| {
                // The raw check above already reported a missing/empty keycloak section.
                !(e.path == "servers.keycloak" && errors.iter().any(|x| x.path == e.path))
            })
            .collect::<Vec<_>>(),
    );
    if !errors.is_empty() {
        for e in &mut errors {
            e.line = find_line(text, &e.path);
        }
        return Err(ConfigError::Invalid { origin, errors });
    }
    for w in &warnings {
        tracing::warn!(target: "nost_config", origin = %origin, "{w}");
    }
    Ok(LoadedConfig {
        config,
        warnings,
        origin,
    })
}

fn parse_error(origin: &Origin, e: &serde_norway::Error) -> ConfigError {
    let loc = e.location();
    ConfigError::Parse {
        origin: origin.clone(),
        line: loc.as_ref().map(|l| l.line()),
        column: loc.as_ref().map(|l| l.column()),
        message: e.to_string(),
    }
}

/// The role sections flatten their logging fields, and serde then reports
/// an error of any of their fields against the section alone: find the field
/// by reading each one on its own, and give its path and line.
fn flattened_field_error(
    text: &str,
    raw: &Yaml,
    origin: &Origin,
    e: &serde_norway::Error,
) -> Option<ConfigError> {
    use crate::schema::{ApplicationConfig, ManagedApplicationConfig, ManagerConfig};
    let message = e.to_string();
    let (section, _) = message.split_once(": ")?;
    let parts: Vec<&str> = section.split('.').collect();
    let node = parts
        .iter()
        .try_fold(raw, |node, key| node.get(*key))?
        .as_mapping()?;
    let reads = |one: Yaml| -> Result<(), String> {
        let r = match parts.as_slice() {
            ["execution", "manager"] => serde_norway::from_value::<ManagerConfig>(one).map(drop),
            ["execution", "managed_applications", _] => {
                serde_norway::from_value::<ManagedApplicationConfig>(one).map(drop)
            }
            ["execution", "applications", _] => {
                serde_norway::from_value::<ApplicationConfig>(one).map(drop)
            }
            _ => return Ok(()),
        };
        r.map_err(|e| e.to_string())
    };
    for (key, value) in node {
        let mut one = serde_norway::Mapping::new();
        one.insert(key.clone(), value.clone());
        if let Err(inner) = reads(Yaml::Mapping(one)) {
            let key = key.as_str()?;
            let path = format!("{section}.{key}");
            let inner = inner
                .split(" at line ")
                .next()
                .unwrap_or(&inner)
                .trim_start_matches(&format!("{key}: "))
                .to_owned();
            return Some(ConfigError::Parse {
                origin: origin.clone(),
                line: find_line(text, &path),
                column: None,
                message: format!("{path}: {inner}"),
            });
        }
    }
    None
}

const KEYCLOAK_MISSING: &str = "servers.rabbitmq.keycloak_authentication is true but the servers.keycloak section is missing or empty; add host, port and realm of your Keycloak, or set keycloak_authentication: false for basic auth";

/// `keycloak_authentication: true` needs a non-empty `servers.keycloak`.
fn check_keycloak_section(raw: &Json, errors: &mut Vec<FieldError>) {
    let kc_on = raw
        .pointer("/servers/rabbitmq/keycloak_authentication")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let section = raw.pointer("/servers/keycloak");
    let empty = match section {
        None | Some(Json::Null) => true,
        Some(Json::Object(m)) => m.is_empty(),
        Some(_) => false,
    };
    if kc_on && empty {
        errors.push(FieldError {
            path: "servers.keycloak".into(),
            message: KEYCLOAK_MISSING.into(),
            line: None,
        });
    }
}

/// The scaling rule of `is_scenario_time_step` / `is_scenario_time_status_step`.
fn apply_scaling(
    config: &mut Config,
    raw: &Json,
    warnings: &mut Vec<ConfigWarning>,
    errors: &mut Vec<FieldError>,
) {
    if let Some(m) = config.execution.manager.as_mut() {
        let base = "execution.manager";
        let f = m.time_scale_factor;
        if let Some(d) = scale_one(
            raw,
            base,
            "time_step",
            m.is_scenario_time_step,
            f,
            warnings,
            errors,
        ) {
            m.time_step = d;
        }
        if let Some(d) = scale_one(
            raw,
            base,
            "time_status_step",
            m.is_scenario_time_status_step,
            f,
            warnings,
            errors,
        ) {
            m.time_status_step = Some(d);
        }
    }
    for (name, app) in config.execution.managed_applications.iter_mut() {
        let base = format!("execution.managed_applications.{name}");
        let f = app.time_scale_factor;
        if let Some(d) = scale_one(
            raw,
            &base,
            "time_step",
            app.is_scenario_time_step,
            f,
            warnings,
            errors,
        ) {
            app.time_step = d;
        }
        if let Some(d) = scale_one(
            raw,
            &base,
            "time_status_step",
            app.is_scenario_time_status_step,
            f,
            warnings,
            errors,
        ) {
            app.time_status_step = Some(d);
        }
    }
}

fn scale_one(
    raw: &Json,
    base: &str,
    field: &str,
    is_scenario: bool,
    factor: f64,
    warnings: &mut Vec<ConfigWarning>,
    errors: &mut Vec<FieldError>,
) -> Option<NostDuration> {
    if is_scenario {
        return None;
    }
    let pointer = format!("/{}/{field}", base.replace('.', "/"));
    let path = format!("{base}.{field}");
    match raw.pointer(&pointer) {
        Some(Json::String(s)) if is_plain_hms(s) => {
            let d: NostDuration = s.parse().ok()?;
            let scaled = d.scaled(factor);
            if scaled.is_none() {
                errors.push(FieldError {
                    path,
                    message: format!("{s:?} scaled by time_scale_factor {factor} is out of range"),
                    line: None,
                });
            }
            scaled
        }
        Some(Json::String(s)) => {
            errors.push(FieldError {
                path,
                message: format!(
                    "{s:?} cannot be scaled from wallclock to scenario time; with is_scenario_{field}: false write it as \"H:MM:SS\" (three whole numbers, e.g. \"0:00:01\")"
                ),
                line: None,
            });
            None
        }
        Some(Json::Number(_)) => {
            warnings.push(ConfigWarning {
                path,
                message: format!(
                    "a number is not scaled by time_scale_factor (as in nost_tools); write \"H:MM:SS\" if is_scenario_{field}: false should scale it"
                ),
            });
            None
        }
        _ => None,
    }
}

/// Keys present in the file but unknown to the schema.
fn unknown_keys(raw: &Json, typed: &Json, path: &str, out: &mut Vec<ConfigWarning>) {
    let (Json::Object(r), Json::Object(t)) = (raw, typed) else {
        return;
    };
    for (k, v) in r {
        let p = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match t.get(k) {
            None => out.push(ConfigWarning {
                message: unknown_key_message(k, t.keys()),
                path: p,
            }),
            Some(tv) if !is_free_form(&p) => unknown_keys(v, tv, &p, out),
            Some(_) => {}
        }
    }
}

fn is_free_form(path: &str) -> bool {
    path == "channels" || path.ends_with(".headers") || path.ends_with(".configuration_parameters")
}

fn unknown_key_message<'a>(key: &str, known: impl Iterator<Item = &'a String>) -> String {
    let norm = |s: &str| s.replace('_', "").to_ascii_lowercase();
    let close = known.into_iter().find(|k| norm(k) == norm(key));
    match close {
        Some(k) => format!("unknown key, ignored; did you mean `{k}`?"),
        None => "unknown key, ignored".into(),
    }
}

/// Every rule a typed configuration must satisfy.
pub(crate) fn check(config: &Config) -> Vec<FieldError> {
    let mut out = Vec::new();
    if config.servers.rabbitmq.keycloak_authentication && config.servers.keycloak.is_none() {
        out.push(FieldError {
            path: "servers.keycloak".into(),
            message: KEYCLOAK_MISSING.into(),
            line: None,
        });
    }
    if let Err(e) = config.validate() {
        flatten(&e, "", &mut out);
    }
    for (name, app) in &config.execution.managed_applications {
        if let Err(e) = app.validate() {
            flatten(
                &e,
                &format!("execution.managed_applications.{name}"),
                &mut out,
            );
        }
    }
    for (name, app) in &config.execution.applications {
        if let Err(e) = app.validate() {
            flatten(&e, &format!("execution.applications.{name}"), &mut out);
        }
    }
    out.extend(sanity(config));
    out.extend(crate::channels::check(config).0);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The longest number of seconds accepted for a delay, timeout or period
/// (ten years): longer values cannot be added to a clock reading.
pub const MAX_SECONDS: u64 = 315_360_000;

/// Numbers a schema type accepts but a run cannot use: non-finite factors,
/// non-positive steps, negative leads, delays beyond [`MAX_SECONDS`].
fn sanity(config: &Config) -> Vec<FieldError> {
    let mut out = Vec::new();
    let mut err = |path: String, message: String| {
        out.push(FieldError {
            path,
            message,
            line: None,
        })
    };
    let mut factor = |path: String, f: f64| {
        if !(f.is_finite() && f > 0.0) {
            err(
                path,
                format!("must be a finite number greater than 0 (got {f})"),
            );
        }
    };
    if let Some(m) = &config.execution.manager {
        factor(
            "execution.manager.time_scale_factor".into(),
            m.time_scale_factor,
        );
    }
    for (name, a) in &config.execution.managed_applications {
        factor(
            format!("execution.managed_applications.{name}.time_scale_factor"),
            a.time_scale_factor,
        );
    }
    for (name, a) in &config.execution.applications {
        factor(
            format!("execution.applications.{name}.time_scale_factor"),
            a.time_scale_factor,
        );
    }
    if let Some(l) = &config.execution.logger_application {
        factor(
            "execution.logger_application.time_scale_factor".into(),
            l.time_scale_factor,
        );
    }
    let mut positive = |path: String, d: Option<NostDuration>| {
        if let Some(d) = d
            && (d.is_negative() || d.is_zero())
        {
            err(path, format!("must be a positive duration (got {d})"));
        }
    };
    if let Some(m) = &config.execution.manager {
        positive("execution.manager.time_step".into(), Some(m.time_step));
        positive(
            "execution.manager.time_status_step".into(),
            m.time_status_step,
        );
    }
    for (name, a) in &config.execution.managed_applications {
        let base = format!("execution.managed_applications.{name}");
        positive(format!("{base}.time_step"), Some(a.time_step));
        positive(format!("{base}.time_status_step"), a.time_status_step);
    }
    for (name, a) in &config.execution.applications {
        positive(
            format!("execution.applications.{name}.time_status_step"),
            a.time_status_step,
        );
    }
    if let Some(l) = &config.execution.logger_application {
        positive(
            "execution.logger_application.time_status_step".into(),
            l.time_status_step,
        );
    }
    let mut not_negative = |path: String, d: NostDuration| {
        if d.is_negative() {
            err(path, format!("must not be negative (got {d})"));
        }
    };
    if let Some(m) = &config.execution.manager {
        not_negative("execution.manager.command_lead".into(), m.command_lead);
    }
    if let Some(g) = &config.execution.general {
        not_negative(
            "execution.general.resume_tolerance".into(),
            g.resume_tolerance,
        );
    }
    let mut seconds = |path: &str, v: Option<u64>| {
        if let Some(v) = v
            && v > MAX_SECONDS
        {
            err(
                path.to_owned(),
                format!("must be at most {MAX_SECONDS} seconds (ten years), got {v}"),
            );
        }
    };
    let r = &config.servers.rabbitmq;
    seconds("servers.rabbitmq.reconnect_delay", Some(r.reconnect_delay));
    seconds("servers.rabbitmq.retry_delay", Some(r.retry_delay));
    seconds(
        "servers.rabbitmq.connection_timeout",
        Some(r.connection_timeout),
    );
    seconds("servers.rabbitmq.socket_timeout", Some(r.socket_timeout));
    seconds("servers.rabbitmq.stack_timeout", Some(r.stack_timeout));
    seconds(
        "servers.rabbitmq.blocked_connection_timeout",
        r.blocked_connection_timeout,
    );
    if let Some(k) = &config.servers.keycloak {
        seconds(
            "servers.keycloak.token_refresh_interval",
            Some(k.token_refresh_interval),
        );
    }
    if let Some(g) = &config.execution.general {
        seconds(
            "execution.general.wallclock_offset_refresh_interval",
            Some(g.wallclock_offset_refresh_interval),
        );
    }
    if let Some(m) = &config.execution.manager {
        seconds(
            "execution.manager.init_retry_delay_s",
            Some(m.init_retry_delay_s),
        );
        if let (Some(a), Some(b)) = (m.sim_start_time, m.sim_stop_time)
            && b < a
        {
            err(
                "execution.manager.sim_stop_time".into(),
                format!("must not be before sim_start_time ({a})"),
            );
        }
    }
    out
}

fn flatten(errors: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        // `logging` is flattened into its parent in YAML.
        let path = match (prefix.is_empty(), field.as_ref()) {
            (_, "logging") => prefix.to_owned(),
            (true, f) => f.to_owned(),
            (false, f) => format!("{prefix}.{f}"),
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for e in list {
                    let mut message = e
                        .message
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| e.code.to_string());
                    if let Some(v) = e.params.get("value") {
                        message.push_str(&format!(" (got {v})"));
                    }
                    out.push(FieldError {
                        path: path.clone(),
                        message,
                        line: None,
                    });
                }
            }
            ValidationErrorsKind::Struct(inner) => flatten(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (i, inner) in items {
                    flatten(inner, &format!("{path}[{i}]"), out);
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
}

/// Best-effort line of a dotted key path in block-style YAML.
fn find_line(text: &str, path: &str) -> Option<usize> {
    let mut start = 0usize;
    let mut min_indent: Option<usize> = None;
    let mut found = None;
    let lines: Vec<&str> = text.lines().collect();
    for seg in path.split('.') {
        let seg = seg.split('[').next().unwrap_or(seg);
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if min_indent.is_some_and(|mi| indent < mi) {
                break;
            }
            let key = trimmed.trim_start_matches("- ");
            let key = key.trim_matches(|c| c == '"' || c == '\'');
            if key.starts_with(seg)
                && key[seg.len()..]
                    .trim_start_matches(['"', '\''])
                    .trim_start()
                    .starts_with(':')
            {
                hit = Some((i, indent));
                break;
            }
        }
        let (i, indent) = hit?;
        found = Some(i + 1);
        start = i + 1;
        min_indent = Some(indent + 1);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::find_line;

    #[test]
    fn logger_section_reads_its_extensions_and_fixes_the_mqtt_wildcard() {
        let yaml = |body: &str| {
            format!("servers:\n  rabbitmq: {{}}\nexecution:\n  logger_application:\n{body}")
        };
        let l = super::load_str(
            &yaml("    log_app: \"+\"\n    log_topic: status.#\n    log_dir: out\n"),
            crate::Origin::Program,
        )
        .expect("valid");
        let s = l.config.execution.logger_application.expect("section");
        assert_eq!(
            (s.log_app.as_str(), s.log_topic.as_str()),
            ("*", "status.#")
        );
        assert_eq!(s.log_dir, "out");
        assert_eq!(l.warnings[0].path, "execution.logger_application.log_app");
        for (body, path) in [
            (
                "    log_topic: status..x\n",
                "execution.logger_application.log_topic",
            ),
            (
                "    log_topic: \"\"\n",
                "execution.logger_application.log_topic",
            ),
            ("    log_app: a.b\n", "execution.logger_application.log_app"),
            (
                "    log_dir: \"\"\n",
                "execution.logger_application.log_dir",
            ),
        ] {
            match super::load_str(&yaml(body), crate::Origin::Program) {
                Err(crate::ConfigError::Invalid { errors, .. }) => {
                    assert!(errors.iter().any(|e| e.path == path), "{body}: {errors:?}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn finds_nested_keys() {
        let text = "servers:\n  rabbitmq:\n    host: x\n    port: 0\n  keycloak:\n    port: 1\n";
        assert_eq!(find_line(text, "servers.rabbitmq.port"), Some(4));
        assert_eq!(find_line(text, "servers.keycloak.port"), Some(6));
        assert_eq!(find_line(text, "servers.nothing"), None);
    }
}
