//! Opening a connection and restoring the recorded topology on it.

use std::sync::Arc;

use futures_util::StreamExt;

use super::consumer::{ConsumerSpec, start_consumer};
use super::topology::{bind, declare_exchange, declare_queue};
use super::{Inner, Live, SessionEvent, lock};
use crate::conn::handshake;
use crate::error::AmqpError;
use crate::settings::Login;

/// Open a connection and its channel, then restore exchanges, queues,
/// bindings and consumers. On failure the half-open connection is closed.
pub(super) async fn open(inner: &Arc<Inner>, generation: u64) -> Result<Live, AmqpError> {
    let s = &inner.settings;
    let (password, secret) = match &s.login {
        Login::Password { password, .. } => (password.clone(), None),
        Login::Token(src) => {
            let limit = s.connection_timeout();
            let token = match tokio::time::timeout(limit, src.fresh()).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    // A source that failed for good says so, typed, even
                    // when `fresh` reported it as a passing failure.
                    return Err(src
                        .failure()
                        .map_or_else(|| e.into(), AmqpError::TokenFailed));
                }
                Err(_) => return Err(AmqpError::TokenTimeout { timeout: limit }),
            };
            (token.clone(), Some(token))
        }
    };
    let timeout = s.connection_timeout();
    let conn = handshake(s, &password).await?;
    let conn = Arc::new(conn);
    // Bounded here, not by dropping this future: a connection dropped
    // while restoring would stay open at the broker.
    let blocked = crate::link_state::BlockedFlag::default();
    let restored =
        tokio::time::timeout(timeout, restore(inner, generation, &conn, secret, blocked))
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
    blocked: crate::link_state::BlockedFlag,
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
        blocked,
    };
    // On a shared connection, its owner watches it (shared_link).
    if inner.shared.is_none() {
        watch_connection(inner, conn, generation, live.blocked.clone());
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
fn watch_connection(
    inner: &Arc<Inner>,
    conn: &lapin::Connection,
    generation: u64,
    blocked: crate::link_state::BlockedFlag,
) {
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
                    let timeout = blocked_limit.unwrap_or_default();
                    let _ = broken.send((generation, AmqpError::BlockedTooLong { timeout }));
                    return;
                }
            };
            match e {
                lapin::Event::Error(e) => {
                    if is_channel_error(&e) && status.connected() {
                        continue;
                    }
                    let _ = broken.send((
                        generation,
                        AmqpError::ConnectionLost {
                            reason: e.to_string(),
                            source: Some(nost_config::Cause::new(e)),
                        },
                    ));
                    return;
                }
                lapin::Event::ConnectionBlocked(reason) => {
                    tracing::warn!(target: "nost_amqp", %reason, "RabbitMQ blocked the connection; publishing waits");
                    blocked.set(Some(reason.clone()));
                    let _ = events.send(SessionEvent::Blocked { reason });
                    blocked_until = blocked_limit.map(|d| tokio::time::Instant::now() + d);
                }
                lapin::Event::ConnectionUnblocked => {
                    tracing::info!(target: "nost_amqp", "RabbitMQ unblocked the connection");
                    blocked.set(None);
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
