//! Opening a connection and restoring the recorded topology on it.

use std::sync::Arc;

use futures_util::StreamExt;
use lapin::Connect;

use super::consumer::{ConsumerSpec, start_consumer};
use super::topology::{bind, declare_exchange, declare_queue};
use super::{Inner, Live, SessionEvent, lock};
use crate::error::AmqpError;
use crate::settings::Login;

/// Open a connection and its channel, then restore exchanges, queues,
/// bindings and consumers. On failure the half-open connection is closed.
pub(super) async fn open(inner: &Arc<Inner>, generation: u64) -> Result<Live, AmqpError> {
    let s = &inner.settings;
    let err = |e: &lapin::Error| {
        AmqpError::from_lapin(e, &s.endpoint(), &s.rabbitmq.virtual_host, s.uses_token())
    };
    let (password, secret) = match &s.login {
        Login::Password { password, .. } => (password.clone(), None),
        Login::Token(src) => {
            let limit = s.connection_timeout();
            let fetched = tokio::time::timeout(limit, src.fresh())
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "the token source gave no token within {} s (servers.rabbitmq.connection_timeout)",
                        limit.as_secs()
                    ))
                });
            let token = match fetched {
                Ok(t) => t,
                // No token can come again: say why, typed (no retry helps).
                Err(e) => {
                    return Err(src
                        .failure()
                        .map_or(AmqpError::Token(e), AmqpError::TokenFailed));
                }
            };
            (token.clone(), Some(token))
        }
    };
    let uri = s.uri(&password)?;
    let tls = s.tls_config()?;
    let rt = lapin::runtime::default_runtime().map_err(|e| err(&e))?;
    let timeout = s.connection_timeout();
    let conn = tokio::time::timeout(timeout, uri.connect_with_config(s.properties(), tls, rt))
        .await
        .map_err(|_| AmqpError::ConnectTimeout {
            endpoint: s.endpoint(),
            timeout,
        })?
        .map_err(|e| match err(&e) {
            // rustls aborts a handshake with an untrusted certificate and the
            // transport only reports the broken socket: on a TLS connection
            // that accepted TCP, that is a TLS failure.
            AmqpError::Unreachable { endpoint, reason }
                if s.rabbitmq.tls && !reason.to_ascii_lowercase().contains("refused") =>
            {
                AmqpError::Tls { endpoint, reason }
            }
            other => other,
        })?;
    let conn = Arc::new(conn);
    // Bounded here, not by dropping this future: a connection dropped
    // while restoring would stay open at the broker.
    let restored = tokio::time::timeout(timeout, restore(inner, generation, &conn, secret))
        .await
        .unwrap_or_else(|_| {
            Err(AmqpError::ConnectTimeout {
                endpoint: s.endpoint(),
                timeout,
            })
        });
    match restored {
        Ok(live) => Ok(live),
        Err(e) => {
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                conn.close(200, "set-up failed".into()),
            )
            .await;
            Err(e)
        }
    }
}

pub(super) async fn restore(
    inner: &Arc<Inner>,
    generation: u64,
    conn: &Arc<lapin::Connection>,
    secret: Option<nost_config::SecretString>,
) -> Result<Live, AmqpError> {
    let s = &inner.settings;
    let err = |e: &lapin::Error| {
        AmqpError::from_lapin(e, &s.endpoint(), &s.rabbitmq.virtual_host, s.uses_token())
    };
    // The topology and consumer channel; the publisher opens its own.
    let channel = conn.create_channel().await.map_err(|e| err(&e))?;
    let live = Live {
        generation,
        conn: conn.clone(),
        channel,
        secret,
    };
    // On a shared connection, its owner watches it (shared_link).
    if inner.shared.is_none() {
        watch_connection(inner, conn, generation);
    }
    let (exchanges, queues, bindings) = {
        let t = lock(&inner.topology);
        (t.exchanges.clone(), t.queues.clone(), t.bindings.clone())
    };
    for x in &exchanges {
        declare_exchange(&live.channel, x)
            .await
            .map_err(|e| err(&e))?;
    }
    for q in &queues {
        declare_queue(&live.channel, q).await.map_err(|e| err(&e))?;
    }
    for b in &bindings {
        bind(&live.channel, b).await.map_err(|e| err(&e))?;
    }
    let consumers: Vec<ConsumerSpec> = lock(&inner.topology)
        .consumers
        .iter()
        .map(ConsumerSpec::again)
        .collect();
    for spec in consumers {
        start_consumer(inner, &live, &spec)
            .await
            .map_err(|e| err(&e))?;
    }
    Ok(live)
}

/// Report connection-level errors (close by the broker, I/O loss) to the
/// supervisor. A channel closed by the broker (403/404/406 …) while the
/// connection stays up is not a connection loss: the channel's user
/// handles it (the publisher reopens its channel).
fn watch_connection(inner: &Arc<Inner>, conn: &lapin::Connection, generation: u64) {
    let mut ev = conn.events_listener();
    let status = conn.status().clone();
    let broken = inner.broken.clone();
    let events = inner.events.clone();
    let blocked_limit = inner
        .settings
        .rabbitmq
        .blocked_connection_timeout
        .map(std::time::Duration::from_secs);
    tokio::spawn(async move {
        // While blocked: the moment it must be unblocked by.
        let mut blocked_until: Option<tokio::time::Instant> = None;
        loop {
            let e = tokio::select! {
                e = ev.next() => match e { Some(e) => e, None => return },
                _ = async {
                    match blocked_until {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let secs = blocked_limit.map(|d| d.as_secs()).unwrap_or_default();
                    let _ = broken.send((generation, format!("the broker kept the connection blocked longer than servers.rabbitmq.blocked_connection_timeout ({secs} s)")));
                    return;
                }
            };
            match e {
                lapin::Event::Error(e) => {
                    if is_channel_error(&e) && status.connected() {
                        continue;
                    }
                    let _ = broken.send((generation, e.to_string()));
                    return;
                }
                lapin::Event::ConnectionBlocked(reason) => {
                    tracing::warn!(target: "nost_amqp", %reason, "RabbitMQ blocked the connection; publishing waits");
                    let _ = events.send(SessionEvent::Blocked { reason });
                    blocked_until = blocked_limit.map(|d| tokio::time::Instant::now() + d);
                }
                lapin::Event::ConnectionUnblocked => {
                    tracing::info!(target: "nost_amqp", "RabbitMQ unblocked the connection");
                    let _ = events.send(SessionEvent::Unblocked);
                    blocked_until = None;
                }
                _ => {}
            }
        }
    });
}

/// A soft (channel-level) AMQP error: the connection survives it.
pub(crate) fn is_channel_error(e: &lapin::Error) -> bool {
    matches!(
        e.kind(),
        lapin::ErrorKind::ProtocolError(amqp)
            if matches!(amqp.kind(), lapin::protocol::AMQPErrorKind::Soft(_))
    )
}
