//! Sessions on a [`SharedConnection`]: channels borrowed from one
//! connection, reopened on their own after a channel-level failure and
//! restored on the next connection after a loss.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::topology::Topology;
use super::{Inner, Live, Session, SessionEvent, connect, lock, publisher};
use crate::error::AmqpError;
use crate::jitter::backoff;
use crate::message::MessageProperties;
use crate::outbox::Outbox;
use crate::settings::ConnectSettings;
use crate::shared::SharedConnection;

impl Session {
    /// A session on a [`SharedConnection`]: its own channels (declarations
    /// and consumers, publishing with confirms), outbox, topology and
    /// events, on the shared connection instead of one of its own.
    ///
    /// `settings` give the session's buffer size, message properties and
    /// timeouts; the connection logs in with the shared connection's
    /// settings, and token renewals go to it (once, not per session). A
    /// refused publish or a deleted queue reopens this session's channels
    /// only; after a loss of the connection every session re-declares its
    /// topology and re-publishes its unconfirmed messages on the next one.
    /// [`shut_down`](Self::shut_down) closes the channels, not the connection.
    pub async fn connect_shared(
        settings: ConnectSettings,
        shared: &SharedConnection,
    ) -> Result<Session, AmqpError> {
        let (broken_tx, broken_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(64);
        let inner = Arc::new(Inner {
            props: MessageProperties::from_config(&settings.rabbitmq),
            outbox: Outbox::new(settings.rabbitmq.queue_max_size),
            settings,
            topology: Mutex::new(Topology::default()),
            live: watch::channel(None).0,
            events,
            broken: broken_tx,
            cancel: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            consumer_tags: Mutex::new(HashMap::new()),
            shared: Some(shared.clone()),
        });
        let first = open_on(&inner, shared, 1).await?;
        inner.live.send_replace(Some(first));
        inner.outbox.set_connected(true);
        tracing::debug!(target: "nost_amqp", url = %shared.url(), "session opened on the shared connection");
        let _ = inner.events.send(SessionEvent::Connected { generation: 1 });
        let sup = tokio::spawn(supervise(inner.clone(), shared.clone(), broken_rx));
        let publ = tokio::spawn(publisher::publisher(inner.clone()));
        lock(&inner.tasks).extend([sup, publ]);
        Ok(Session { inner })
    }
}

/// A channel on the shared connection (waiting up to `connection_timeout`
/// for it to be up), with the recorded topology restored.
async fn open_on(
    inner: &Arc<Inner>,
    shared: &SharedConnection,
    generation: u64,
) -> Result<Live, AmqpError> {
    let wait = inner.settings.connection_timeout();
    let up = shared.current(wait).await?;
    tokio::time::timeout(
        wait,
        connect::restore(inner, generation, &up.conn, None, up.blocked.clone()),
    )
    .await
    .unwrap_or_else(|_| {
        Err(AmqpError::NotConnected {
            reason: format!(
                "restoring the session on the shared connection took over {} s",
                wait.as_secs()
            ),
        })
    })
}

/// Whether this session's channels are on the shared connection now up.
fn on_current(live: &watch::Sender<Option<Live>>, shared: &SharedConnection) -> bool {
    let ours = live.borrow();
    let theirs = shared.inner.live.borrow();
    match (ours.as_ref(), theirs.as_ref()) {
        (Some(l), Some(s)) => Arc::ptr_eq(&l.conn, &s.conn),
        _ => false,
    }
}

/// Reopens this session's channels after a failure of one of them, or on
/// the next connection after a loss of the shared one.
async fn supervise(
    inner: Arc<Inner>,
    shared: SharedConnection,
    mut broken: mpsc::UnboundedReceiver<(u64, AmqpError)>,
) {
    let mut conn_rx = shared.inner.live.subscribe();
    conn_rx.borrow_and_update();
    let mut generation = 1u64;
    loop {
        let reason = tokio::select! {
            _ = inner.cancel.cancelled() => return,
            msg = broken.recv() => match msg {
                Some((g, reason)) if g == generation => reason,
                Some(_) => continue,
                None => return,
            },
            r = conn_rx.changed() => {
                if r.is_err() {
                    return;
                }
                conn_rx.borrow_and_update();
                if on_current(&inner.live, &shared) {
                    continue;
                }
                AmqpError::ConnectionLost {
                    reason: "the shared connection was lost".to_owned(),
                    source: None,
                }
            }
        };
        inner.outbox.set_connected(false);
        if let Some(old) = inner.live.send_replace(None) {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    old.channel.close(200, "reopening".into()),
                )
                .await;
            });
        }
        tracing::warn!(target: "nost_amqp", %reason, "session channels lost; reopening them on the shared connection");
        let _ = inner.events.send(SessionEvent::Disconnected { reason });
        let base = inner.settings.reconnect_delay();
        let mut attempt = 0u32;
        let mut delay = backoff(base, 1);
        loop {
            tokio::select! {
                _ = inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            attempt += 1;
            generation += 1;
            match open_on(&inner, &shared, generation).await {
                Ok(live) => {
                    if inner.cancel.is_cancelled() {
                        let _ = live.channel.close(200, "shutdown".into()).await;
                        return;
                    }
                    inner.live.send_replace(Some(live));
                    inner.outbox.set_connected(true);
                    conn_rx.borrow_and_update();
                    tracing::info!(target: "nost_amqp", attempt, "session restored on the shared connection");
                    let _ = inner.events.send(SessionEvent::Connected { generation });
                    break;
                }
                Err(e) => {
                    delay = backoff(base, attempt + 1);
                    tracing::warn!(target: "nost_amqp", attempt, error = %e, retry_in_s = delay.as_secs_f64(), "restoring the session on the shared connection failed");
                    let _ = inner.events.send(SessionEvent::ReconnectFailed {
                        attempt,
                        error: e,
                        retry_in: delay,
                    });
                }
            }
        }
    }
}
