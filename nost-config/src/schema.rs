//! The YAML schema of `nost_tools` 3.6.0: same field names, same defaults.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use validator::Validate;

use crate::duration::NostDuration;

/// A whole NOS-T configuration file: `servers`, `channels`, `execution`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
pub struct Config {
    /// Broker and identity-provider settings (required).
    #[validate(nested)]
    pub servers: Servers,
    /// Predefined exchanges and queues (`channels.<app>.<channel>`), declared
    /// at start-up; read through [`Config::channel_declarations`] (see
    /// [`crate::channels`]). `nost_tools` 3.6.0 cannot load a non-empty one.
    #[serde(default)]
    pub channels: BTreeMap<String, serde_json::Value>,
    /// Run parameters of each role (required; `{}` is accepted).
    #[validate(nested)]
    pub execution: Execution,
}

/// `servers`: `rabbitmq` (required) and `keycloak` (required when
/// `keycloak_authentication` is on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
pub struct Servers {
    /// The AMQP broker.
    #[validate(nested)]
    pub rabbitmq: RabbitMqConfig,
    /// The Keycloak server issuing tokens.
    #[serde(default)]
    #[validate(nested)]
    pub keycloak: Option<KeycloakConfig>,
}

/// `servers.rabbitmq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(default)]
pub struct RabbitMqConfig {
    /// Use Keycloak tokens instead of username/password.
    pub keycloak_authentication: bool,
    /// AMQPS. The port is not changed automatically: set `port: 5671`.
    pub tls: bool,
    /// Trust only this CA bundle (PEM) instead of the system store.
    pub tls_ca_cert: Option<String>,
    /// Seconds before the first reconnect attempt.
    #[validate(range(min = 1, message = "must be at least 1 second"))]
    pub reconnect_delay: u64,
    /// Messages kept while disconnected.
    #[validate(range(min = 1, message = "must be at least 1"))]
    pub queue_max_size: usize,
    /// Broker host name.
    #[validate(length(min = 1, message = "must not be empty"))]
    pub host: String,
    /// Broker port.
    #[validate(range(min = 1, max = 65535, message = "must be a port between 1 and 65535"))]
    pub port: u32,
    /// AMQP virtual host.
    #[validate(length(min = 1, message = "must not be empty (use \"/\")"))]
    pub virtual_host: String,
    /// Client proposal for channel-max.
    #[validate(range(min = 1, max = 65535, message = "must be between 1 and 65535"))]
    pub channel_max: u32,
    /// Client proposal for frame-max.
    #[validate(range(min = 4096, message = "must be at least 4096 bytes"))]
    pub frame_max: u32,
    /// Heartbeat seconds; `None` accepts the broker's proposal, 0 disables.
    pub heartbeat: Option<u16>,
    /// Attempts when opening a connection.
    #[validate(range(min = 1, message = "must be at least 1"))]
    pub connection_attempts: u32,
    /// Seconds between those attempts.
    pub retry_delay: u64,
    /// Seconds start-up waits for connection and channel.
    #[validate(range(min = 1, message = "must be at least 1 second"))]
    pub connection_timeout: u64,
    /// TCP connect timeout, seconds.
    #[validate(range(min = 1, message = "must be at least 1 second"))]
    pub socket_timeout: u64,
    /// Timeout of the whole TCP+TLS+AMQP handshake, seconds.
    #[validate(range(min = 1, message = "must be at least 1 second"))]
    pub stack_timeout: u64,
    /// Locale sent in Start-Ok.
    pub locale: String,
    /// Seconds to tolerate a blocked connection; `None`: forever.
    pub blocked_connection_timeout: Option<u64>,
    /// Message property `content-type`.
    pub content_type: Option<String>,
    /// Message property `content-encoding`.
    pub content_encoding: Option<String>,
    /// Message headers (string values).
    pub headers: Option<BTreeMap<String, String>>,
    /// 1 = transient, 2 = persistent.
    #[validate(range(min = 1, max = 2, message = "must be 1 (transient) or 2 (persistent)"))]
    pub delivery_mode: Option<u8>,
    /// Message priority.
    pub priority: Option<u8>,
    /// Message property `correlation-id`.
    pub correlation_id: Option<String>,
    /// Message property `reply-to`.
    pub reply_to: Option<String>,
    /// Sent as the `expiration` property (milliseconds, as text).
    pub message_expiration: Option<String>,
    /// Message property `message-id`.
    pub message_id: Option<String>,
    /// Message property `timestamp` (sent as whole seconds; in `nost_tools`
    /// setting it breaks publishing).
    #[serde(default, deserialize_with = "crate::time::deserialize_opt")]
    pub timestamp: Option<DateTime<Utc>>,
    /// Message property `type`.
    #[serde(rename = "type")]
    pub message_type: Option<String>,
    /// Message property `user-id` (RabbitMQ checks it against the login).
    pub user_id: Option<String>,
    /// Message property `app-id`.
    pub app_id: Option<String>,
    /// Message property `cluster-id`.
    pub cluster_id: Option<String>,
    /// nost-rs extension (not read by `nost_tools`): received message bodies
    /// longer than this many bytes are logged and rejected before any parsing
    /// (default 4 MiB).
    #[validate(range(min = 1, message = "must be at least 1 byte"))]
    pub max_body_size: usize,
    /// nost-rs extension: every node of a cluster, each `host` or
    /// `host:port` (`[::1]:5672` for IPv6; without a port, `port` is used).
    /// When given it replaces `host`/`port`, which `nost_tools` keeps using.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[validate(custom(function = "validate_hosts"))]
    pub hosts: Vec<String>,
    /// nost-rs extension: try `hosts` in a random order (spreads many
    /// applications over a cluster) instead of as written.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shuffle_hosts: bool,
    /// nost-rs extension: the type of subscription queues. `classic` (the
    /// default, as `nost_tools`) lives on one node; `quorum` is replicated
    /// across a cluster, so a subscription survives the loss of a node.
    #[serde(skip_serializing_if = "QueueType::is_classic")]
    pub queue_type: QueueType,
    /// nost-rs extension: seconds a message the broker nacks is retried
    /// (with backoff from 0.2 s doubling up to 2 s) before it is refused.
    /// A broker nacks when a `reject-publish` queue is full, or while a
    /// quorum queue elects a new leader after losing a node. 0 refuses at
    /// the first nack.
    #[serde(skip_serializing_if = "is_default_nack_retry_window")]
    #[validate(range(
        max = 3600,
        message = "must be between 0 (refuse at the first nack) and 3600 seconds"
    ))]
    pub nack_retry_window: u64,
}

/// The default of `servers.rabbitmq.nack_retry_window`: 60 s, long enough
/// to ride through a quorum queue's leader election.
pub const DEFAULT_NACK_RETRY_WINDOW: u64 = 60;

fn is_default_nack_retry_window(v: &u64) -> bool {
    *v == DEFAULT_NACK_RETRY_WINDOW
}

/// `servers.rabbitmq.queue_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// One node holds the queue (`nost_tools`' queues).
    #[default]
    Classic,
    /// Replicated across the cluster (durable, never auto-deleted).
    Quorum,
}

impl QueueType {
    fn is_classic(&self) -> bool {
        *self == QueueType::Classic
    }
}

/// One broker node: a host and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// AMQP(S) port.
    pub port: u16,
}

impl std::fmt::Display for BrokerEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; `default_port` when none.
fn parse_endpoint(text: &str, default_port: u32) -> Result<BrokerEndpoint, String> {
    let text = text.trim();
    let port_of = |p: &str| -> Result<u16, String> {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("`{text}`: the port must be a number from 1 to 65535"))
    };
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{text}`: missing `]` after an IPv6 address"))?;
        match after.strip_prefix(':') {
            Some(p) => (host, port_of(p)?),
            None if after.is_empty() => (host, 0),
            None => return Err(format!("`{text}`: expected `[address]:port`")),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(format!(
                    "`{text}`: write IPv6 addresses as `[address]:port`"
                ));
            }
            Some((h, p)) => (h, port_of(p)?),
            None => (text, 0),
        }
    };
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(format!("`{text}`: expected `host` or `host:port`"));
    }
    let port = if port == 0 {
        u16::try_from(default_port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("`{text}` has no port and `port` ({default_port}) is invalid"))?
    } else {
        port
    };
    Ok(BrokerEndpoint {
        host: host.to_owned(),
        port,
    })
}

fn validate_hosts(hosts: &[String]) -> Result<(), validator::ValidationError> {
    for h in hosts {
        if let Err(e) = parse_endpoint(h, 5672) {
            let mut err = validator::ValidationError::new("hosts");
            err.message = Some(
                format!(
                    "{e} (each entry is `host` or `host:port`, e.g. `rabbit-1.example.org:5671`)"
                )
                .into(),
            );
            return Err(err);
        }
    }
    Ok(())
}

impl RabbitMqConfig {
    /// The nodes to connect to, in the order to try them: `hosts` when
    /// written (entries without a port get `port`), else `host:port`.
    /// Entries that do not parse are skipped (validation reports them).
    pub fn endpoints(&self) -> Vec<BrokerEndpoint> {
        if self.hosts.is_empty() {
            // `host` is a bare name, also when it holds an IPv6 address.
            return u16::try_from(self.port)
                .map(|port| BrokerEndpoint {
                    host: self.host.clone(),
                    port,
                })
                .into_iter()
                .collect();
        }
        self.hosts
            .iter()
            .filter_map(|h| parse_endpoint(h, self.port).ok())
            .collect()
    }
}

/// The default of `servers.rabbitmq.max_body_size`: 4 MiB.
pub const DEFAULT_MAX_BODY_SIZE: usize = 4 * 1024 * 1024;

impl Default for RabbitMqConfig {
    fn default() -> Self {
        RabbitMqConfig {
            keycloak_authentication: false,
            tls: false,
            tls_ca_cert: None,
            reconnect_delay: 10,
            queue_max_size: 5000,
            host: "localhost".into(),
            port: 5672,
            virtual_host: "/".into(),
            channel_max: 65535,
            frame_max: 131_072,
            heartbeat: None,
            connection_attempts: 1,
            retry_delay: 2,
            connection_timeout: 30,
            socket_timeout: 10,
            stack_timeout: 15,
            locale: "en_US".into(),
            blocked_connection_timeout: None,
            content_type: None,
            content_encoding: None,
            headers: None,
            delivery_mode: None,
            priority: None,
            correlation_id: None,
            reply_to: None,
            message_expiration: None,
            message_id: None,
            timestamp: None,
            message_type: None,
            user_id: None,
            app_id: None,
            cluster_id: None,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            hosts: Vec::new(),
            shuffle_hosts: false,
            queue_type: QueueType::Classic,
            nack_retry_window: DEFAULT_NACK_RETRY_WINDOW,
        }
    }
}

/// `servers.keycloak`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(default)]
pub struct KeycloakConfig {
    /// Keycloak host name.
    #[validate(length(min = 1, message = "must not be empty"))]
    pub host: String,
    /// Keycloak port (always written into the URL).
    #[validate(range(min = 1, max = 65535, message = "must be a port between 1 and 65535"))]
    pub port: u32,
    /// Realm name.
    #[validate(length(min = 1, message = "must not be empty"))]
    pub realm: String,
    /// HTTPS when true. `None` (not written): plain HTTP only when the host
    /// is exactly `localhost`, `127.0.0.1` or `::1` (`nost_tools` uses HTTP
    /// for any host merely *containing* `localhost`/`127.0.0.1`).
    pub tls: Option<bool>,
    /// CA bundle (PEM) trusted for the HTTPS connection to Keycloak.
    pub tls_ca_cert: Option<String>,
    /// Seconds between token renewals (never later than 80% of a token's life).
    #[validate(range(min = 1, message = "must be at least 1 second"))]
    pub token_refresh_interval: u64,
}

impl Default for KeycloakConfig {
    fn default() -> Self {
        KeycloakConfig {
            host: "localhost".into(),
            port: 8080,
            realm: "master".into(),
            tls: None,
            tls_ca_cert: None,
            token_refresh_interval: 240,
        }
    }
}

impl KeycloakConfig {
    /// Whether the token endpoint is HTTPS.
    ///
    /// An explicit `tls` wins. When `tls` is not written, HTTP only for a
    /// loopback host ([`is_loopback_host`](Self::is_loopback_host)).
    pub fn uses_https(&self) -> bool {
        match self.tls {
            Some(tls) => tls,
            None => !self.is_loopback_host(),
        }
    }

    /// Whether `host` is exactly `localhost`, `127.0.0.1` or `::1` (with or
    /// without brackets), the only hosts plain HTTP is used for when `tls` is
    /// not written.
    pub fn is_loopback_host(&self) -> bool {
        let h = self.host.trim();
        let h = h
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(h);
        h.eq_ignore_ascii_case("localhost") || h == "127.0.0.1" || h == "::1"
    }

    /// `{scheme}://{host}:{port}/realms/{realm}/protocol/openid-connect/token`.
    pub fn token_url(&self) -> String {
        let scheme = if self.uses_https() { "https" } else { "http" };
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "{scheme}://{host}:{}/realms/{}/protocol/openid-connect/token",
            self.port,
            encode_path_segment(&self.realm)
        )
    }
}

/// RFC 3986 unreserved characters stay, everything else is %XX.
const URI_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode_path_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, URI_COMPONENT).to_string()
}

/// `execution`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(default)]
pub struct Execution {
    /// Shared settings; absent in many files (we then use its defaults
    /// instead of crashing as `nost_tools` does).
    #[validate(nested)]
    pub general: Option<GeneralConfig>,
    /// The manager's test plan.
    #[validate(nested)]
    pub manager: Option<ManagerConfig>,
    /// Per managed application (by name, with an optional `default`).
    /// Validated entry by entry by the loader.
    pub managed_applications: BTreeMap<String, ManagedApplicationConfig>,
    /// Per unmanaged application (by name). Validated entry by entry by the loader.
    pub applications: BTreeMap<String, ApplicationConfig>,
    /// The logger application.
    #[validate(nested)]
    pub logger_application: Option<LoggerApplicationConfig>,
}

impl Default for Execution {
    fn default() -> Self {
        Execution {
            general: None,
            manager: None,
            managed_applications: BTreeMap::from([(
                "default".to_owned(),
                ManagedApplicationConfig::default(),
            )]),
            applications: BTreeMap::from([("default".to_owned(), ApplicationConfig::default())]),
            logger_application: None,
        }
    }
}

impl Execution {
    /// `execution.general`, or its defaults when the section is absent.
    pub fn general_or_default(&self) -> GeneralConfig {
        self.general.clone().unwrap_or_default()
    }

    /// Settings of managed application `name`: its own entry, else `default`,
    /// else the schema defaults (where `nost_tools` crashes).
    pub fn managed_application(&self, name: &str) -> ManagedApplicationConfig {
        self.managed_applications
            .get(name)
            .or_else(|| self.managed_applications.get("default"))
            .cloned()
            .unwrap_or_default()
    }
}

/// `execution.general`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(default)]
pub struct GeneralConfig {
    /// Conventional run prefix (the library takes the prefix at start-up).
    #[validate(length(min = 1, message = "must not be empty"))]
    pub prefix: String,
    /// NTP refresh period, seconds.
    #[validate(range(min = 1, message = "must be at least 1 second"))]
    pub wallclock_offset_refresh_interval: u64,
    /// NTP server.
    pub ntp_host: String,
    /// Default `tolerance` of resume requests.
    pub resume_tolerance: NostDuration,
}

impl Default for GeneralConfig {
    fn default() -> Self {
        GeneralConfig {
            prefix: "nost".into(),
            wallclock_offset_refresh_interval: 10_800,
            ntp_host: "pool.ntp.org".into(),
            resume_tolerance: NostDuration::seconds(12 * 3600),
        }
    }
}

/// Logging fields shared by the manager and application sections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(default)]
pub struct LoggingConfig {
    /// Write a rotating log file.
    pub enable_file_logging: bool,
    /// Directory of the log file.
    pub log_dir: String,
    /// File name; `None`: `<APP>_<YYYYmmdd_HHMMSS>.log`.
    pub log_filename: Option<String>,
    /// `DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`.
    pub log_level: String,
    /// Rotate after this many bytes.
    #[validate(range(min = 1, message = "must be at least 1 byte"))]
    pub max_bytes: u64,
    /// Rotated files kept.
    pub backup_count: u32,
    /// Python logging format (kept for compatibility).
    pub log_format: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            enable_file_logging: false,
            log_dir: "logs".into(),
            log_filename: None,
            log_level: "INFO".into(),
            max_bytes: 10_485_760,
            backup_count: 5,
            log_format: "%(asctime)s [%(levelname)s] %(name)s: %(message)s".into(),
        }
    }
}

/// `execution.manager`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(default)]
pub struct ManagerConfig {
    /// Scenario start (needed to run a test plan).
    #[serde(default, deserialize_with = "crate::time::deserialize_opt")]
    pub sim_start_time: Option<DateTime<Utc>>,
    /// Scenario end (needed to run a test plan).
    #[serde(default, deserialize_with = "crate::time::deserialize_opt")]
    pub sim_stop_time: Option<DateTime<Utc>>,
    /// Wallclock start; `None`: now + `command_lead`.
    #[serde(default, deserialize_with = "crate::time::deserialize_opt")]
    pub start_time: Option<DateTime<Utc>>,
    /// The manager's simulator step (scenario time after scaling).
    pub time_step: NostDuration,
    /// Scenario seconds per wallclock second.
    #[validate(range(exclusive_min = 0.0, message = "must be greater than 0"))]
    pub time_scale_factor: f64,
    /// Period of `status.time`; `None`: no time status.
    pub time_status_step: Option<NostDuration>,
    /// Scenario time of the first time status; `None`: scenario start.
    #[serde(default, deserialize_with = "crate::time::deserialize_opt")]
    pub time_status_init: Option<DateTime<Utc>>,
    /// How far ahead of an action its command is sent.
    pub command_lead: NostDuration,
    /// Apps that must report ready.
    pub required_apps: Vec<String>,
    /// Seconds to wait after each init.
    pub init_retry_delay_s: u64,
    /// Maximum number of inits.
    #[validate(range(min = 1, message = "must be at least 1"))]
    pub init_max_retry: u32,
    /// Run NTP clock correction.
    pub set_offset: bool,
    /// Shut down on TERMINATED.
    pub shut_down_when_terminated: bool,
    /// False: `time_step` was written in wallclock time and has been scaled.
    pub is_scenario_time_step: bool,
    /// False: `time_status_step` was written in wallclock time and has been scaled.
    pub is_scenario_time_status_step: bool,
    /// Logging fields.
    #[serde(flatten)]
    #[validate(nested)]
    pub logging: LoggingConfig,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            sim_start_time: None,
            sim_stop_time: None,
            start_time: None,
            time_step: NostDuration::seconds(1),
            time_scale_factor: 1.0,
            time_status_step: None,
            time_status_init: None,
            command_lead: NostDuration::ZERO,
            required_apps: Vec::new(),
            init_retry_delay_s: 5,
            init_max_retry: 5,
            set_offset: true,
            shut_down_when_terminated: false,
            is_scenario_time_step: true,
            is_scenario_time_status_step: true,
            logging: LoggingConfig::default(),
        }
    }
}

/// `execution.managed_applications.<APP>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(default)]
pub struct ManagedApplicationConfig {
    /// Used only to scale the `is_scenario_*` steps.
    #[validate(range(exclusive_min = 0.0, message = "must be greater than 0"))]
    pub time_scale_factor: f64,
    /// The app's simulator step.
    pub time_step: NostDuration,
    /// Run NTP clock correction.
    pub set_offset: bool,
    /// Period of `status.time`; `None`: no time status.
    pub time_status_step: Option<NostDuration>,
    /// Scenario time of the first time status.
    #[serde(default, deserialize_with = "crate::time::deserialize_opt")]
    pub time_status_init: Option<DateTime<Utc>>,
    /// Shut down on TERMINATED.
    pub shut_down_when_terminated: bool,
    /// Name of the manager whose commands are followed.
    #[validate(length(min = 1, message = "must not be empty"))]
    pub manager_app_name: String,
    /// False: `time_step` was written in wallclock time and has been scaled.
    pub is_scenario_time_step: bool,
    /// False: `time_status_step` was written in wallclock time and has been scaled.
    pub is_scenario_time_status_step: bool,
    /// Free-form app parameters, passed through unchanged.
    pub configuration_parameters: Option<serde_json::Value>,
    /// Logging fields.
    #[serde(flatten)]
    #[validate(nested)]
    pub logging: LoggingConfig,
}

impl Default for ManagedApplicationConfig {
    fn default() -> Self {
        ManagedApplicationConfig {
            time_scale_factor: 1.0,
            time_step: NostDuration::seconds(1),
            set_offset: true,
            time_status_step: None,
            time_status_init: None,
            shut_down_when_terminated: false,
            manager_app_name: "manager".into(),
            is_scenario_time_step: true,
            is_scenario_time_status_step: true,
            configuration_parameters: None,
            logging: LoggingConfig::default(),
        }
    }
}

/// `execution.applications.<APP>` (unmanaged applications).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(default)]
pub struct ApplicationConfig {
    /// Run NTP clock correction.
    pub set_offset: bool,
    /// Unused by the library (kept for compatibility).
    pub time_scale_factor: f64,
    /// Unused by the library (kept for compatibility).
    pub time_step: NostDuration,
    /// Period of `status.time`.
    pub time_status_step: Option<NostDuration>,
    /// Scenario time of the first time status; `None`: the scenario start
    /// (`nost_tools` uses its import time here, a naive local time).
    #[serde(default, deserialize_with = "crate::time::deserialize_opt")]
    pub time_status_init: Option<DateTime<Utc>>,
    /// Shut down on TERMINATED.
    pub shut_down_when_terminated: bool,
    /// Name of the manager.
    pub manager_app_name: String,
    /// Free-form app parameters, passed through unchanged.
    pub configuration_parameters: Option<serde_json::Value>,
    /// Logging fields.
    #[serde(flatten)]
    #[validate(nested)]
    pub logging: LoggingConfig,
}

impl Default for ApplicationConfig {
    fn default() -> Self {
        ApplicationConfig {
            set_offset: true,
            time_scale_factor: 1.0,
            time_step: NostDuration::seconds(1),
            time_status_step: Some(NostDuration::seconds(10)),
            time_status_init: None,
            shut_down_when_terminated: false,
            manager_app_name: "manager".into(),
            configuration_parameters: None,
            logging: LoggingConfig::default(),
        }
    }
}

/// `execution.logger_application` (no logging fields).
///
/// `log_app`, `log_topic` and `log_dir` are nost-rs extensions (in
/// `nost_tools` they are arguments of `LoggerApplication.start_up`, with the
/// same defaults except `log_app`); `nost_tools` ignores them in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(default)]
pub struct LoggerApplicationConfig {
    /// The application whose messages are logged; `*` (the default) is
    /// every application. `nost_tools`' default `+` is an MQTT wildcard that
    /// matches nothing in AMQP: it is read as `*` (with a warning).
    #[validate(custom(function = "validate_log_app"))]
    pub log_app: String,
    /// The topic pattern logged (`#`, the default: every topic; AMQP `*`
    /// and `#` wildcards).
    #[validate(custom(function = "validate_log_topic"))]
    pub log_topic: String,
    /// Directory of the CSV log files (created when missing).
    #[validate(length(
        min = 1,
        message = "must not be empty (use \".\" for the current directory)"
    ))]
    pub log_dir: String,
    /// Run NTP clock correction.
    pub set_offset: bool,
    /// Unused (kept for compatibility).
    pub time_scale_factor: f64,
    /// Unused (kept for compatibility).
    pub time_step: NostDuration,
    /// Period of `status.time`.
    pub time_status_step: Option<NostDuration>,
    /// Scenario time of the first time status.
    #[serde(default, deserialize_with = "crate::time::deserialize_opt")]
    pub time_status_init: Option<DateTime<Utc>>,
    /// Shut down on TERMINATED.
    pub shut_down_when_terminated: bool,
    /// Name of the manager.
    pub manager_app_name: String,
}

fn validate_log_app(app: &str) -> Result<(), validator::ValidationError> {
    if app.is_empty() || app.contains('.') || (app.contains(['*', '#']) && app.len() > 1) {
        let mut e = validator::ValidationError::new("log_app");
        e.message = Some(
            format!("{app:?}: write one application name, or `*` for every application").into(),
        );
        return Err(e);
    }
    Ok(())
}

fn validate_log_topic(topic: &str) -> Result<(), validator::ValidationError> {
    let bad = topic.is_empty()
        || topic
            .split('.')
            .any(|w| w.is_empty() || (w.contains(['*', '#']) && w.len() > 1));
    if bad {
        let mut e = validator::ValidationError::new("log_topic");
        e.message = Some(
            format!("{topic:?}: write dot-separated words, where a word may be `*` (one word) or `#` (any words), e.g. `status.#`").into(),
        );
        return Err(e);
    }
    Ok(())
}

impl Default for LoggerApplicationConfig {
    fn default() -> Self {
        LoggerApplicationConfig {
            log_app: "*".into(),
            log_topic: "#".into(),
            log_dir: ".".into(),
            set_offset: true,
            time_scale_factor: 1.0,
            time_step: NostDuration::seconds(1),
            time_status_step: Some(NostDuration::seconds(10)),
            time_status_init: None,
            shut_down_when_terminated: false,
            manager_app_name: "manager".into(),
        }
    }
}

#[cfg(test)]
mod endpoint_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn with_hosts(hosts: &[&str]) -> RabbitMqConfig {
        RabbitMqConfig {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            port: 5671,
            ..Default::default()
        }
    }

    #[test]
    fn hosts_take_their_own_port_or_the_section_port() {
        let r = with_hosts(&["a.example.org", "b:5673", "[::1]", "[fe80::1]:5674"]);
        let got: Vec<String> = r.endpoints().iter().map(|e| e.to_string()).collect();
        assert_eq!(
            got,
            [
                "a.example.org:5671",
                "b:5673",
                "[::1]:5671",
                "[fe80::1]:5674"
            ]
        );
        assert!(r.validate().is_ok());
    }

    #[test]
    fn without_hosts_the_single_host_is_the_only_node() {
        let r = RabbitMqConfig::default();
        assert_eq!(r.endpoints().len(), 1);
        assert_eq!(r.endpoints()[0].to_string(), "localhost:5672");
    }

    #[test]
    fn bad_entries_are_refused_with_what_would_be_valid() {
        for bad in ["b:0", "b:70000", "b:x", "::1", "[::1", "a b", "", "[::1]x"] {
            let err = with_hosts(&[bad]).validate().unwrap_err().to_string();
            assert!(err.contains("host:port"), "{bad}: {err}");
        }
    }
}
