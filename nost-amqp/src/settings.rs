//! Turning `servers.rabbitmq` plus credentials into what lapin needs.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lapin::types::FieldTable;
use lapin::uri::{
    AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo, SASLMechanism,
};
use nost_config::{BrokerEndpoint, ExposeSecret, QueueType, RabbitMqConfig, SecretString};

use crate::error::AmqpError;
use crate::token::TokenSource;

/// How the connection logs in.
#[derive(Clone)]
pub enum Login {
    /// PLAIN username/password (basic mode).
    Password {
        /// `USERNAME`.
        username: String,
        /// `PASSWORD`.
        password: SecretString,
    },
    /// The access token as password, username empty as `nost_tools` sends it;
    /// every renewed token is pushed with `connection.update-secret`.
    Token(Arc<dyn TokenSource>),
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Login::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", &"[REDACTED]")
                .finish(),
            Login::Token(_) => f.write_str("Token([REDACTED])"),
        }
    }
}

/// Everything needed to open (and re-open) a connection.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    /// `servers.rabbitmq`.
    pub rabbitmq: RabbitMqConfig,
    /// How to log in.
    pub login: Login,
    /// Shown in the RabbitMQ management UI.
    pub connection_name: String,
    /// How long a nacked message is retried before it is refused
    /// (`servers.rabbitmq.nack_retry_window`, see [`NackRetry`]).
    pub nack_retry: NackRetry,
    /// Which of the broker nodes is tried next (shared by clones).
    node: NodeCursor,
}

/// How a nacked message is retried: published again after a backoff
/// (`first_backoff`, doubling, at most `max_backoff`) until the broker
/// confirms it, for at most `window` after its first nack; a nack after
/// that refuses it ([`AmqpError::PublishRefused`], reason "nacked …").
///
/// A broker nacks when it cannot take a message now: a queue under
/// `max-length` with `overflow: reject-publish` is full, or a quorum queue
/// has no leader while its cluster elects one after losing a node (seconds
/// to tens of seconds). The default window (60 s) rides through such an
/// election; a window of zero refuses at the first nack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NackRetry {
    window: Duration,
    first_backoff: Duration,
    max_backoff: Duration,
}

impl NackRetry {
    /// The default window: `servers.rabbitmq.nack_retry_window`'s default.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
    /// The default pause before the first retry.
    pub const DEFAULT_FIRST_BACKOFF: Duration = Duration::from_millis(200);
    /// The default longest pause between two retries.
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(2);
    /// The shortest pause between two retries (no busy loop on a nack).
    const MIN_BACKOFF: Duration = Duration::from_millis(10);

    /// Retry for `window` after the first nack, with the default backoff
    /// (0.2 s, doubling, at most 2 s).
    pub fn new(window: Duration) -> Self {
        NackRetry {
            window,
            first_backoff: Self::DEFAULT_FIRST_BACKOFF,
            max_backoff: Self::DEFAULT_MAX_BACKOFF,
        }
    }

    /// With another backoff: `first` before the first retry, doubling, at
    /// most `max` (`first` is at least 10 ms, `max` at least `first`).
    pub fn with_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.first_backoff = first.max(Self::MIN_BACKOFF);
        self.max_backoff = max.max(self.first_backoff);
        self
    }

    /// How long after its first nack a message is still retried.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The pause before retry `attempt` (1 = the first retry).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        self.first_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

impl Default for NackRetry {
    fn default() -> Self {
        NackRetry::new(Self::DEFAULT_WINDOW)
    }
}

/// The position in `servers.rabbitmq.endpoints()` and the order they are
/// tried in (as written, or one random rotation per session).
#[derive(Debug, Clone, Default)]
struct NodeCursor {
    current: Arc<AtomicUsize>,
}

impl ConnectSettings {
    /// Settings from the configuration section and a login.
    pub fn new(rabbitmq: RabbitMqConfig, login: Login) -> Self {
        ConnectSettings {
            node: NodeCursor::default(),
            connection_name: "nost-rs".into(),
            nack_retry: NackRetry::new(Duration::from_secs(rabbitmq.nack_retry_window)),
            rabbitmq,
            login,
        }
        .shuffled()
    }

    /// With another nack retry policy than `servers.rabbitmq.nack_retry_window`.
    pub fn with_nack_retry(mut self, nack_retry: NackRetry) -> Self {
        self.nack_retry = nack_retry;
        self
    }

    /// With `shuffle_hosts`, start at a random node: applications started
    /// together spread over the cluster (the order after it is kept, so
    /// each reconnect still moves on to the next node).
    fn shuffled(self) -> Self {
        let n = self.rabbitmq.endpoints().len();
        if self.rabbitmq.shuffle_hosts && n > 1 {
            let start = (crate::jitter::random_unit() * n as f64) as usize;
            self.node.current.store(start % n, Ordering::Relaxed);
        }
        self
    }

    /// The node tried now (and next): `servers.rabbitmq.hosts`, or
    /// `host`/`port` when no list is written.
    pub fn current_node(&self) -> BrokerEndpoint {
        let nodes = self.rabbitmq.endpoints();
        let i = self.node.current.load(Ordering::Relaxed);
        nodes
            .get(i % nodes.len().max(1))
            .cloned()
            .unwrap_or_else(|| BrokerEndpoint {
                host: self.rabbitmq.host.clone(),
                port: u16::try_from(self.rabbitmq.port).unwrap_or(5672),
            })
    }

    /// How many nodes there are to try.
    pub fn node_count(&self) -> usize {
        self.rabbitmq.endpoints().len().max(1)
    }

    /// Move on to the next node (after a failed attempt or a lost
    /// connection); with one node this stays on it.
    pub(crate) fn next_node(&self) {
        let n = self.node_count();
        let _ = self
            .node
            .current
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |i| Some((i + 1) % n));
    }

    /// `host:port` of the current node, for messages.
    pub fn endpoint(&self) -> String {
        self.current_node().to_string()
    }

    /// `amqp(s)://host:port/<vhost percent-encoded>`, without credentials.
    pub fn display_url(&self) -> String {
        let scheme = if self.rabbitmq.tls { "amqps" } else { "amqp" };
        format!(
            "{scheme}://{}/{}",
            self.endpoint(),
            percent_encode(&self.rabbitmq.virtual_host)
        )
    }

    /// Warn about settings that are accepted but have no effect here.
    pub(crate) fn warn_unapplied(&self) {
        let r = &self.rabbitmq;
        let d = RabbitMqConfig::default();
        if r.socket_timeout != d.socket_timeout || r.stack_timeout != d.stack_timeout {
            tracing::warn!(target: "nost_amqp", "servers.rabbitmq.socket_timeout and stack_timeout are ignored: connection_timeout bounds the TCP connect and the whole handshake");
        }
    }

    pub(crate) fn uses_token(&self) -> bool {
        matches!(self.login, Login::Token(_))
    }

    pub(crate) fn connection_timeout(&self) -> Duration {
        Duration::from_secs(self.rabbitmq.connection_timeout.max(1))
    }

    pub(crate) fn reconnect_delay(&self) -> Duration {
        Duration::from_secs(self.rabbitmq.reconnect_delay.max(1))
    }

    /// The URI lapin connects with (the virtual host is given raw, so no
    /// escaping problems with `/`).
    pub(crate) fn uri(&self, password: &SecretString) -> Result<AMQPUri, AmqpError> {
        let r = &self.rabbitmq;
        let node = self.current_node();
        let username = match &self.login {
            Login::Password { username, .. } => username.clone(),
            Login::Token(_) => String::new(),
        };
        Ok(AMQPUri {
            scheme: if r.tls {
                AMQPScheme::AMQPS
            } else {
                AMQPScheme::AMQP
            },
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username,
                    password: password.expose_secret().to_owned(),
                },
                host: node.host,
                port: node.port,
            },
            vhost: r.virtual_host.clone(),
            query: AMQPQueryString {
                frame_max: Some(r.frame_max),
                channel_max: Some(u16::try_from(r.channel_max).unwrap_or(u16::MAX)),
                heartbeat: r.heartbeat,
                connection_timeout: Some(self.connection_timeout().as_millis() as u64),
                auth_mechanism: Some(SASLMechanism::Plain),
            },
        })
    }

    pub(crate) fn properties(&self) -> lapin::ConnectionProperties {
        lapin::ConnectionProperties::default()
            .with_locale(self.rabbitmq.locale.as_str().into())
            .with_connection_name(self.connection_name.as_str().into())
            .with_client_property("product".into(), "nost-rs".into())
    }

    /// The trust anchors: only `tls_ca_cert` when set, else the system store.
    pub(crate) fn tls_config(&self) -> Result<lapin::tcp::OwnedTLSConfig, AmqpError> {
        if !self.rabbitmq.tls {
            return Ok(lapin::tcp::OwnedTLSConfig::default());
        }
        let pem = match &self.rabbitmq.tls_ca_cert {
            Some(path) => std::fs::read_to_string(path).map_err(|e| AmqpError::Tls {
                endpoint: self.endpoint(),
                reason: format!("cannot read servers.rabbitmq.tls_ca_cert {path}: {e}"),
                source: Some(nost_config::Cause::new(e)),
            })?,
            None => system_roots_pem(),
        };
        Ok(lapin::tcp::OwnedTLSConfig {
            identity: None,
            cert_chain: Some(pem),
        })
    }
}

/// The system's root certificates as one PEM bundle. Certificates the
/// platform store could not give (unreadable files, bad entries) are
/// reported at warn and skipped, not dropped silently.
fn system_roots_pem() -> String {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(target: "nost_amqp", "system root certificates: {e}; skipped (the {} found are used; servers.rabbitmq.tls_ca_cert names a CA file instead)", found.certs.len());
    }
    let pems: Vec<pem::Pem> = found
        .certs
        .iter()
        .map(|c| pem::Pem::new("CERTIFICATE", c.as_ref()))
        .collect();
    pem::encode_many_config(
        &pems,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// RFC 3986 unreserved characters stay, everything else is %XX.
const URI_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, URI_COMPONENT).to_string()
}

/// Flags of an exchange declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeSpec {
    /// Exchange name.
    pub name: String,
    /// `topic`, `direct`, `fanout` or `headers`.
    pub kind: String,
    /// Survives a broker restart.
    pub durable: bool,
    /// Deleted when its last binding goes.
    pub auto_delete: bool,
}

impl ExchangeSpec {
    /// The NOS-T exchange for a prefix: topic, durable, auto-delete.
    pub fn nost(prefix: &str) -> Self {
        ExchangeSpec {
            name: prefix.to_owned(),
            kind: "topic".into(),
            durable: true,
            auto_delete: true,
        }
    }
}

/// Flags of a queue declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Queue name.
    pub name: String,
    /// Survives a broker restart.
    pub durable: bool,
    /// Deleted when its last consumer goes.
    pub auto_delete: bool,
    /// Only this connection may use it.
    pub exclusive: bool,
    /// A quorum queue (`x-queue-type: quorum`): replicated across a
    /// cluster; must be durable, not auto-delete, not exclusive.
    pub quorum: bool,
}

impl QueueSpec {
    /// A NOS-T subscription queue: durable, not auto-delete, not exclusive.
    pub fn nost(name: &str) -> Self {
        QueueSpec {
            name: name.to_owned(),
            durable: true,
            auto_delete: false,
            exclusive: false,
            quorum: false,
        }
    }

    /// A NOS-T subscription queue of the configured type
    /// (`servers.rabbitmq.queue_type`).
    pub fn nost_of(name: &str, queue_type: QueueType) -> Self {
        QueueSpec {
            quorum: queue_type == QueueType::Quorum,
            ..QueueSpec::nost(name)
        }
    }
}

/// A queue bound to an exchange with a binding key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingSpec {
    /// Queue name.
    pub queue: String,
    /// Exchange name.
    pub exchange: String,
    /// Binding key (may hold `*`/`#`).
    pub key: String,
}

pub(crate) fn no_args() -> FieldTable {
    FieldTable::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn warnings_for(rabbitmq: RabbitMqConfig) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let login = Login::Password {
            username: "guest".into(),
            password: SecretString::from("guest"),
        };
        tracing::subscriber::with_default(subscriber, || {
            ConnectSettings::new(rabbitmq, login).warn_unapplied();
        });
        let bytes = out.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// `heartbeat: 0` is applied now (vendor/lapin keeps an explicit 0), so
    /// neither it nor another value is warned about.
    #[test]
    fn heartbeat_settings_are_not_warned_about() {
        for heartbeat in [Some(0), Some(30), None] {
            let out = warnings_for(RabbitMqConfig {
                heartbeat,
                ..RabbitMqConfig::default()
            });
            assert!(!out.contains("heartbeat"), "{heartbeat:?}: {out}");
        }
    }

    #[test]
    fn nack_backoff_doubles_up_to_its_cap() {
        let r = NackRetry::default();
        assert_eq!(r.window(), Duration::from_secs(60));
        let waits: Vec<u128> = (1..=7).map(|a| r.backoff(a).as_millis()).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(r.backoff(u32::MAX), Duration::from_secs(2));
        let odd =
            NackRetry::new(Duration::from_secs(1)).with_backoff(Duration::ZERO, Duration::ZERO);
        assert_eq!(odd.backoff(1), Duration::from_millis(10), "no busy loop");
        assert_eq!(odd.backoff(5), Duration::from_millis(10));
    }

    #[test]
    fn the_nack_window_comes_from_the_configuration() {
        let login = Login::Password {
            username: "guest".into(),
            password: SecretString::from("guest"),
        };
        let rabbitmq = RabbitMqConfig {
            nack_retry_window: 7,
            ..RabbitMqConfig::default()
        };
        let s = ConnectSettings::new(rabbitmq, login.clone());
        assert_eq!(s.nack_retry.window(), Duration::from_secs(7));
        let s = ConnectSettings::new(RabbitMqConfig::default(), login)
            .with_nack_retry(NackRetry::new(Duration::from_secs(1)));
        assert_eq!(s.nack_retry.window(), Duration::from_secs(1));
    }
}
