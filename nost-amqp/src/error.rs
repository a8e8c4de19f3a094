//! What can go wrong talking to RabbitMQ, in words that say what to check.

use std::time::Duration;

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
    },
    /// 404: a queue or exchange does not exist.
    #[error("not found: {reason}")]
    NotFound {
        /// The broker's text, naming the resource.
        reason: String,
    },
    /// 406: a declaration differs from what already exists.
    #[error(
        "precondition failed: {reason}; a peer declared it with other flags (NOS-T exchanges are topic, durable, auto-delete)"
    )]
    PreconditionFailed {
        /// The broker's text, naming the resource.
        reason: String,
    },
    /// The broker refused a new token on `update-secret`.
    #[error("RabbitMQ refused the renewed token ({reason}); reconnecting with the current token")]
    SecretRefused {
        /// The broker's text.
        reason: String,
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
    /// The token source failed to provide a token.
    #[error("no access token for RabbitMQ: {0}")]
    Token(String),
    /// The token source can never give a token again (session over,
    /// credentials or client refused): the session stopped reconnecting and
    /// refuses new messages.
    #[error("{0}")]
    TokenFailed(crate::token::TokenFailure),
    /// Anything else the broker or client reported.
    #[error("AMQP error: {0}")]
    Other(String),
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
                "a queue it is routed to refused it (a max-length policy with overflow reject-publish is full) or the broker could not store it; it was retried with backoff before giving up"
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
        match e.kind() {
            K::ProtocolError(amqp) => {
                let code = amqp.get_id();
                let reason = amqp.get_message().to_string();
                classify_reply(code, reason, endpoint, vhost, token_mode)
            }
            K::IOError(io) => {
                let reason = io.to_string();
                let lower = reason.to_ascii_lowercase();
                if lower.contains("certificate")
                    || lower.contains("tls")
                    || lower.contains("handshake")
                {
                    AmqpError::Tls {
                        endpoint: endpoint.to_owned(),
                        reason,
                    }
                } else {
                    AmqpError::Unreachable {
                        endpoint: endpoint.to_owned(),
                        reason,
                    }
                }
            }
            _ => {
                let text = e.to_string();
                if text.contains("ACCESS_REFUSED") || text.contains("403") {
                    classify_reply(403, text, endpoint, vhost, token_mode)
                } else {
                    AmqpError::Other(text)
                }
            }
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

fn classify_reply(
    code: u16,
    reason: String,
    endpoint: &str,
    vhost: &str,
    token_mode: bool,
) -> AmqpError {
    let login = reason.contains("Login was refused") || reason.contains("authentication mechanism");
    match code {
        403 if login => AmqpError::LoginRefused {
            endpoint: endpoint.to_owned(),
            reason,
            hint: if token_mode {
                "the broker rejected the token: check that it is not expired, that its audience includes the broker's resource server id (e.g. rabbitmq) and that it is signed by a key the broker trusts"
            } else {
                "check USERNAME and PASSWORD, and that the user may log in to this virtual host"
            },
        },
        403 => AmqpError::AccessRefused {
            reason,
            vhost: vhost.to_owned(),
        },
        404 => AmqpError::NotFound { reason },
        406 => AmqpError::PreconditionFailed { reason },
        530 if reason.contains("secret") => AmqpError::SecretRefused { reason },
        _ => AmqpError::Other(format!("{code} {reason}")),
    }
}
