//! What can go wrong talking to RabbitMQ, in words that say what to check.
//!
//! Each error that comes from an underlying one (lapin's, an I/O error, the
//! token source's) keeps it as its `source()`, as a [`Cause`] (lapin's own
//! types stay inside this crate: reach them, if need be, with
//! [`Cause::downcast_ref`]).

use std::time::Duration;

use nost_config::Cause;

use crate::token::{TokenError, TokenFailure};

/// An AMQP failure, classified.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AmqpError {
    /// The broker did not answer within `connection_timeout`.
    #[error(
        "could not connect to RabbitMQ at {endpoint} within {} s; is the broker running and reachable? (servers.rabbitmq.host/port, servers.rabbitmq.connection_timeout)",
        timeout.as_secs()
    )]
    ConnectTimeout {
        /// `host:port`.
        endpoint: String,
        /// The limit that passed.
        timeout: Duration,
    },
    /// TCP connection failed (refused, unreachable, DNS).
    #[error(
        "cannot reach RabbitMQ at {endpoint}: {reason}; check servers.rabbitmq.host and port, and that the broker is running"
    )]
    Unreachable {
        /// `host:port`.
        endpoint: String,
        /// The OS error.
        reason: String,
        /// The client's error.
        #[source]
        source: Cause,
    },
    /// The TLS handshake failed, usually certificate verification.
    #[error(
        "TLS handshake with {endpoint} failed: {reason}. If the broker uses a private CA, set servers.rabbitmq.tls_ca_cert to its CA bundle (PEM); the certificate must name the host in its subjectAltName. TLS verification is never switched off"
    )]
    Tls {
        /// `host:port`.
        endpoint: String,
        /// The TLS library's message.
        reason: String,
        /// The client's (or the CA file's I/O) error; the TLS library's
        /// error is in its chain when it reported one.
        #[source]
        source: Option<Cause>,
    },
    /// Login refused: wrong username/password, or a token the broker rejected.
    #[error("RabbitMQ at {endpoint} refused the login ({reason}); {hint}")]
    LoginRefused {
        /// `host:port`.
        endpoint: String,
        /// The broker's text.
        reason: String,
        /// What to check for this authentication mode.
        hint: &'static str,
        /// The client's error.
        #[source]
        source: Cause,
    },
    /// 403 on a resource: the credentials lack a permission (or scope).
    #[error(
        "access refused by RabbitMQ: {reason}; check the token's scopes (rabbitmq.read/write/configure:<vhost>/<name>/<routing key>) or the user's permissions on virtual host {vhost:?}"
    )]
    AccessRefused {
        /// The broker's text, naming the resource.
        reason: String,
        /// The virtual host.
        vhost: String,
        /// The client's error.
        #[source]
        source: Cause,
    },
    /// 404: a queue or exchange does not exist.
    #[error("not found: {reason}")]
    NotFound {
        /// The broker's text, naming the resource.
        reason: String,
        /// The client's error.
        #[source]
        source: Cause,
    },
    /// 406: a declaration differs from what already exists.
    #[error(
        "precondition failed: {reason}; a peer declared it with other flags (NOS-T exchanges are topic, durable, auto-delete)"
    )]
    PreconditionFailed {
        /// The broker's text, naming the resource.
        reason: String,
        /// The client's error.
        #[source]
        source: Cause,
    },
    /// The broker refused a new token on `update-secret`.
    #[error("RabbitMQ refused the renewed token ({reason}); reconnecting with the current token")]
    SecretRefused {
        /// The broker's text.
        reason: String,
        /// The client's error.
        #[source]
        source: Cause,
    },
    /// `update-secret` got no answer in time.
    #[error("update-secret got no answer within {} s", timeout.as_secs())]
    SecretUpdateTimeout {
        /// How long it was waited for.
        timeout: Duration,
    },
    /// The connection (or, on a shared connection, this session's channels)
    /// went away: closed by the broker, an I/O failure, a missed heartbeat.
    #[error("{reason}")]
    ConnectionLost {
        /// What was reported.
        reason: String,
        /// The client's error, when it reported one.
        #[source]
        source: Option<Cause>,
    },
    /// The broker kept the connection blocked (a resource alarm) longer
    /// than `servers.rabbitmq.blocked_connection_timeout`.
    #[error(
        "the broker kept the connection blocked longer than servers.rabbitmq.blocked_connection_timeout ({} s)",
        timeout.as_secs()
    )]
    BlockedTooLong {
        /// `blocked_connection_timeout`.
        timeout: Duration,
    },
    /// A consumer ended without being asked to: cancelled by the broker
    /// (its queue deleted) or failed.
    #[error("consumer on {queue}{}", source.as_ref().map_or_else(|| " was cancelled by the broker".to_owned(), |c| format!(": {c}")))]
    ConsumerLost {
        /// The queue it consumed from.
        queue: String,
        /// The client's error, when it reported one.
        #[source]
        source: Option<Cause>,
    },
    /// The outgoing buffer is full while disconnected.
    #[error(
        "message not accepted: {limit} messages are already waiting for the broker to come back (servers.rabbitmq.queue_max_size); nothing was dropped, retry later or raise the limit"
    )]
    BufferFull {
        /// `queue_max_size`.
        limit: usize,
    },
    /// The broker refused one message (channel closed with 403/404/406 on
    /// its publish, or nacked after the retries); only this message failed.
    #[error("{0}")]
    PublishRefused(Box<Refusal>),
    /// `flush` found messages the broker refused since the last `flush`.
    #[error(
        "{} message(s) refused by RabbitMQ (the others were confirmed); first: {}",
        refused.len(),
        refused.first().map(|r| r.to_string()).unwrap_or_default()
    )]
    Refused {
        /// Each refused message, oldest first.
        refused: Vec<Refusal>,
    },
    /// The session was shut down.
    #[error("the AMQP session is shut down")]
    Shutdown,
    /// The connection is down and the operation needs it now.
    #[error("not connected to RabbitMQ ({reason}); a reconnect is under way")]
    NotConnected {
        /// What is missing, e.g. "no connection within 5 s".
        reason: String,
    },
    /// `flush` (or a wait for a verdict) ran out of time with messages
    /// still waiting or unconfirmed. They are not lost: they stay in the
    /// buffer and go out, or are confirmed, later.
    #[error(
        "{waiting} message(s) waiting and {unconfirmed} unconfirmed after {} s: {}; they stay in the buffer and are sent and confirmed later (wait again, e.g. flush once more)",
        timeout.as_secs_f64(),
        state.explain()
    )]
    FlushTimeout {
        /// Messages not yet handed to the broker.
        waiting: usize,
        /// Messages sent and not yet confirmed.
        unconfirmed: usize,
        /// The limit that passed.
        timeout: Duration,
        /// Why: no connection, a blocked one, or a slow broker.
        state: crate::LinkState,
    },
    /// The token source has no token now (the identity provider is down or
    /// unreachable); connecting is tried again.
    #[error("no access token for RabbitMQ: {source}")]
    TokenUnavailable {
        /// The token source's error (with `nost-app`, a
        /// `nost_auth::AuthError`: [`Cause::downcast_ref`]).
        #[source]
        source: Cause,
    },
    /// The token source gave no token within `connection_timeout`.
    #[error(
        "no access token for RabbitMQ: the token source gave no token within {} s (servers.rabbitmq.connection_timeout)",
        timeout.as_secs()
    )]
    TokenTimeout {
        /// `connection_timeout`.
        timeout: Duration,
    },
    /// The token source can never give a token again (the login is over,
    /// credentials or client refused): the session stopped reconnecting and
    /// refuses new messages. Match [`TokenFailure::kind`] to tell "log in
    /// again" from "fix the credentials".
    #[error(transparent)]
    TokenFailed(TokenFailure),
    /// Anything else the broker or client reported.
    #[error("AMQP error: {reason}")]
    Other {
        /// What was reported.
        reason: String,
        /// The client's error.
        #[source]
        source: Cause,
    },
}

impl From<TokenError> for AmqpError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Unavailable(source) => AmqpError::TokenUnavailable { source },
            TokenError::Failed(f) => AmqpError::TokenFailed(f),
        }
    }
}

/// One message the broker would not take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// The exchange it was published to.
    pub exchange: String,
    /// Its routing key.
    pub routing_key: String,
    /// The AMQP reply code of the channel close (403 access refused, 404
    /// not found, 406 precondition failed); `None` for a nack.
    pub code: Option<u16>,
    /// The broker's reason, as it gave it.
    pub reason: String,
}

impl Refusal {
    pub(crate) fn new(
        exchange: &str,
        routing_key: &str,
        code: Option<u16>,
        reason: String,
    ) -> Self {
        Refusal {
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
            code,
            reason,
        }
    }

    /// What to check for this kind of refusal.
    pub fn hint(&self) -> &'static str {
        match self.code {
            Some(403) => {
                "check the user's write and topic permissions on this exchange and routing key (rabbitmqctl list_permissions / list_topic_permissions) or, with Keycloak, that the token's scopes include rabbitmq.write:<vhost>/<exchange>/<routing key pattern>"
            }
            Some(404) => {
                "the exchange does not exist on the broker; it must be declared before publishing (an application declares its prefix exchange at start-up)"
            }
            Some(406) => {
                "the broker refused the message itself (a property or limit such as user_id, expiration or max message size)"
            }
            None => {
                "a queue it is routed to refused it (a max-length policy with overflow reject-publish is full) or the broker could not store it (a quorum queue without a leader longer than the retry window); it was retried with backoff for servers.rabbitmq.nack_retry_window before giving up: make room in the queue, or raise nack_retry_window to wait longer"
            }
            Some(_) => "see the broker's log for the reason",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RabbitMQ refused the message to exchange {:?} with routing key {:?}: {}; {}",
            self.exchange,
            self.routing_key,
            self.reason,
            self.hint()
        )
    }
}

impl AmqpError {
    /// Classify a lapin error. `endpoint` and `vhost` only go into messages.
    pub(crate) fn from_lapin(
        e: &lapin::Error,
        endpoint: &str,
        vhost: &str,
        token_mode: bool,
    ) -> Self {
        use lapin::ErrorKind as K;
        let source = Cause::new(e.clone());
        match e.kind() {
            K::ProtocolError(amqp) => classify_reply(amqp, source, endpoint, vhost, token_mode),
            K::IOError(io) if is_tls_failure(io) => AmqpError::Tls {
                endpoint: endpoint.to_owned(),
                reason: io.to_string(),
                source: Some(source),
            },
            K::IOError(io) => AmqpError::Unreachable {
                endpoint: endpoint.to_owned(),
                reason: io.to_string(),
                source,
            },
            _ => AmqpError::Other {
                reason: e.to_string(),
                source,
            },
        }
    }

    /// A lapin error of a connection handshake over TLS: rustls aborts a
    /// handshake with an untrusted certificate and the transport may only
    /// report the broken socket, so on a TLS connection anything but a
    /// refused TCP connect is a TLS failure.
    pub(crate) fn from_handshake(e: &lapin::Error, s: &crate::settings::ConnectSettings) -> Self {
        match AmqpError::from_lapin(e, &s.endpoint(), &s.rabbitmq.virtual_host, s.uses_token()) {
            AmqpError::Unreachable {
                endpoint,
                reason,
                source,
            } if s.rabbitmq.tls
                && !matches!(e.kind(), lapin::ErrorKind::IOError(io) if io.kind() == std::io::ErrorKind::ConnectionRefused) =>
            {
                AmqpError::Tls {
                    endpoint,
                    reason,
                    source: Some(source),
                }
            }
            other => other,
        }
    }

    /// An error of `connection.update-secret`: the broker refusing the
    /// token (NOT_ALLOWED) is [`AmqpError::SecretRefused`].
    pub(crate) fn from_update_secret(e: &lapin::Error, endpoint: &str, vhost: &str) -> Self {
        use lapin::protocol::{AMQPErrorKind, AMQPHardError};
        match e.kind() {
            lapin::ErrorKind::ProtocolError(amqp)
                if matches!(amqp.kind(), AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED)) =>
            {
                AmqpError::SecretRefused {
                    reason: amqp.get_message().to_string(),
                    source: Cause::new(e.clone()),
                }
            }
            _ => AmqpError::from_lapin(e, endpoint, vhost, true),
        }
    }

    /// True when retrying the same operation cannot help (permissions, flags).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            AmqpError::AccessRefused { .. }
                | AmqpError::PreconditionFailed { .. }
                | AmqpError::NotFound { .. }
        )
    }
}

/// Whether an I/O error of the transport is a TLS failure: the TLS
/// library's error in its chain (rustls reports a failed handshake as an
/// I/O error wrapping `rustls::Error`), or the TLS connector's words for a
/// trust store it could not use (it gives those as text only, with no type
/// to match: "Could not load any valid certificates", no crypto provider).
fn is_tls_failure(io: &std::io::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = io
        .get_ref()
        .map(|e| e as &(dyn std::error::Error + 'static));
    while let Some(e) = next {
        if e.is::<rustls::Error>() {
            return true;
        }
        next = e.source();
    }
    let lower = io.to_string().to_ascii_lowercase();
    lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
}

fn classify_reply(
    amqp: &lapin::protocol::AMQPError,
    source: Cause,
    endpoint: &str,
    vhost: &str,
    token_mode: bool,
) -> AmqpError {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    let reason = amqp.get_message().to_string();
    match amqp.kind() {
        // RabbitMQ answers a refused login and a refused resource with the
        // same ACCESS_REFUSED; only its text tells them apart.
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)
            if reason.contains("Login was refused")
                || reason.contains("authentication mechanism") =>
        {
            AmqpError::LoginRefused {
                endpoint: endpoint.to_owned(),
                reason,
                hint: if token_mode {
                    "the broker rejected the token: check that it is not expired, that its audience includes the broker's resource server id (e.g. rabbitmq) and that it is signed by a key the broker trusts"
                } else {
                    "check USERNAME and PASSWORD, and that the user may log in to this virtual host"
                },
                source,
            }
        }
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => AmqpError::AccessRefused {
            reason,
            vhost: vhost.to_owned(),
            source,
        },
        AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND) => AmqpError::NotFound { reason, source },
        AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED) => {
            AmqpError::PreconditionFailed { reason, source }
        }
        _ => AmqpError::Other {
            reason: format!("{} {reason}", amqp.get_id()),
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::protocol::AMQPError;
    use std::error::Error as _;

    fn reply(code: u16, text: &str) -> lapin::Error {
        let amqp = AMQPError::from_id(code, text.into());
        lapin::ErrorKind::ProtocolError(amqp.unwrap_or_else(|| unreachable!("{code}"))).into()
    }

    fn classify(e: &lapin::Error) -> AmqpError {
        AmqpError::from_lapin(e, "h:5671", "/", false)
    }

    #[test]
    fn broker_replies_are_classified_by_their_code() {
        let e = classify(&reply(
            403,
            "ACCESS_REFUSED - write access to exchange 'x' in vhost '/' refused",
        ));
        assert!(matches!(e, AmqpError::AccessRefused { .. }), "{e:?}");
        let e = classify(&reply(
            403,
            "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN",
        ));
        assert!(matches!(e, AmqpError::LoginRefused { .. }), "{e:?}");
        let e = classify(&reply(404, "NOT_FOUND - no queue 'q'"));
        assert!(matches!(e, AmqpError::NotFound { .. }), "{e:?}");
        let e = classify(&reply(406, "PRECONDITION_FAILED - inequivalent arg"));
        assert!(matches!(e, AmqpError::PreconditionFailed { .. }), "{e:?}");
        let e = classify(&reply(320, "CONNECTION_FORCED - closed via management"));
        assert!(matches!(e, AmqpError::Other { .. }), "{e:?}");
        assert!(e.to_string().contains("320 CONNECTION_FORCED"), "{e}");
        // The client's error is the source.
        assert!(
            e.source()
                .is_some_and(|s| s.to_string().contains("CONNECTION_FORCED"))
        );
    }

    #[test]
    fn a_refused_update_secret_is_typed_and_other_errors_are_not() {
        let e = AmqpError::from_update_secret(
            &reply(530, "NOT_ALLOWED - new secret rejected"),
            "h:5671",
            "/",
        );
        assert!(matches!(e, AmqpError::SecretRefused { .. }), "{e:?}");
        let e = AmqpError::from_update_secret(&reply(404, "NOT_FOUND - x"), "h:5671", "/");
        assert!(matches!(e, AmqpError::NotFound { .. }), "{e:?}");
    }

    #[test]
    fn a_rustls_error_in_the_chain_is_a_tls_failure_and_a_refused_connect_is_not() {
        let bad_cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, bad_cert);
        let e = classify(&lapin::Error::from(io));
        let AmqpError::Tls { source, .. } = &e else {
            panic!("{e:?}")
        };
        let found = source.as_ref().and_then(|c| c.find::<rustls::Error>());
        assert!(
            matches!(found, Some(rustls::Error::InvalidCertificate(_))),
            "{e:?}"
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = classify(&lapin::Error::from(refused));
        assert!(matches!(e, AmqpError::Unreachable { .. }), "{e:?}");
    }

    #[test]
    fn a_token_error_keeps_its_kind_across_the_seam() {
        let fatal = crate::TokenFailure::new(
            crate::TokenFailureKind::LoginExpired,
            "the session ended",
            "log in again",
        );
        let e = AmqpError::from(TokenError::Failed(fatal));
        assert!(matches!(
            &e,
            AmqpError::TokenFailed(f) if f.kind == crate::TokenFailureKind::LoginExpired
        ));
        let down = std::io::Error::other("Keycloak is unavailable (HTTP 503)");
        let e = AmqpError::from(TokenError::unavailable(down));
        let AmqpError::TokenUnavailable { source } = &e else {
            panic!("{e:?}")
        };
        assert!(source.downcast_ref::<std::io::Error>().is_some());
        assert!(e.to_string().contains("HTTP 503"), "{e}");
    }
}
