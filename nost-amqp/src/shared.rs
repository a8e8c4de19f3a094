//! One AMQP connection for many sessions of one process.
//!
//! A [`SharedConnection`] owns a lapin connection (and so its one I/O
//! thread), reconnects it after a loss and pushes every renewed token to it
//! with `connection.update-secret`, once per renewal. Sessions made with
//! [`Session::connect_shared`](crate::Session::connect_shared) borrow
//! channels from it (one for declarations and consumers, one for publishing
//! with confirms) and keep their whole API: a channel-level failure (a
//! refused publish, a deleted queue) reopens only that session's channels;
//! a connection loss restores every session on the next connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use nost_config::ExposeSecret;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::AmqpError;
use crate::jitter::backoff;
use crate::outbox::lock;
use crate::session::{SessionEvent, is_channel_error};
use crate::settings::{ConnectSettings, Login};

/// The connection currently up.
#[derive(Clone)]
pub(crate) struct SharedLive {
    pub(crate) conn: Arc<lapin::Connection>,
    /// Whether the broker blocked it; every session on it reads this.
    pub(crate) blocked: crate::link_state::BlockedFlag,
}

pub(crate) struct SharedInner {
    pub(crate) settings: ConnectSettings,
    pub(crate) live: watch::Sender<Option<SharedLive>>,
    events: broadcast::Sender<SessionEvent>,
    broken: mpsc::UnboundedSender<(u64, AmqpError)>,
    pub(crate) cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// One AMQP connection that many [`Session`](crate::Session)s of a process
/// share, a channel pair each (opt-in; see
/// [`Session::connect_shared`](crate::Session::connect_shared)).
///
/// It logs in with its own [`ConnectSettings`] (the sessions' logins are
/// not used to connect), reconnects with backoff after a loss, and sends
/// each renewed token once with `update-secret`. Clones share the
/// connection; [`shut_down`](Self::shut_down) closes it after the sessions
/// are shut down.
#[derive(Clone)]
pub struct SharedConnection {
    pub(crate) inner: Arc<SharedInner>,
}

impl std::fmt::Debug for SharedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedConnection")
            .field("url", &self.inner.settings.display_url())
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl SharedConnection {
    /// Open the connection, failing with a clear error if the broker cannot
    /// be reached (or refuses) within `connection_timeout` (tried
    /// `connection_attempts` times, over every node of a cluster).
    pub async fn connect(settings: ConnectSettings) -> Result<SharedConnection, AmqpError> {
        let (broken, broken_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(SharedInner {
            settings,
            live: watch::channel(None).0,
            events: broadcast::channel(1024).0,
            broken,
            cancel: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
        });
        let s = &inner.settings;
        let attempts = s.rabbitmq.connection_attempts.max(1) as usize * s.node_count().max(1);
        let mut tried = 0;
        let conn = loop {
            tried += 1;
            match dial(s).await {
                Ok(c) => break c,
                Err(e @ (AmqpError::Unreachable { .. } | AmqpError::ConnectTimeout { .. }))
                    if tried < attempts =>
                {
                    tracing::warn!(target: "nost_amqp", node = %s.endpoint(), error = %e, "RabbitMQ node did not answer; trying again");
                    s.next_node();
                    if tried % s.node_count().max(1) == 0 {
                        tokio::time::sleep(Duration::from_secs(s.rabbitmq.retry_delay)).await;
                    }
                }
                Err(e) => return Err(e),
            }
        };
        let blocked = watch_connection(&inner, &conn, 1);
        inner.live.send_replace(Some(SharedLive {
            conn: Arc::new(conn),
            blocked,
        }));
        tracing::info!(target: "nost_amqp", url = %s.display_url(), "shared connection to RabbitMQ open");
        let _ = inner.events.send(SessionEvent::Connected { generation: 1 });
        let sup = tokio::spawn(supervise(inner.clone(), broken_rx));
        lock(&inner.tasks).push(sup);
        Ok(SharedConnection { inner })
    }

    /// Events of the connection itself (connects, losses, token updates).
    pub fn events(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.events.subscribe()
    }

    /// Whether the connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.inner
            .live
            .borrow()
            .as_ref()
            .is_some_and(|l| l.conn.status().connected())
    }

    /// The broker URL, without credentials.
    pub fn url(&self) -> String {
        self.inner.settings.display_url()
    }

    /// The connection up now; waits up to `wait` for one.
    pub(crate) async fn current(&self, wait: Duration) -> Result<SharedLive, AmqpError> {
        crate::conn::wait_until_up(
            &self.inner.live,
            &self.inner.cancel,
            wait,
            |l| l.conn.status().connected(),
            |wait| {
                format!(
                    "the shared connection was not up within {} s",
                    wait.as_secs()
                )
            },
        )
        .await
    }

    /// Close the connection; it is not reopened. Shut the sessions that
    /// use it down first (their channels are closed with it otherwise).
    pub async fn shut_down(&self) {
        if self.inner.cancel.is_cancelled() {
            return;
        }
        self.inner.cancel.cancel();
        if let Some(live) = self.inner.live.send_replace(None) {
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                live.conn.close(200, "shutdown".into()),
            )
            .await;
        }
        let tasks: Vec<JoinHandle<()>> = lock(&self.inner.tasks).drain(..).collect();
        for t in tasks {
            let _ = t.await;
        }
        let _ = self.inner.events.send(SessionEvent::ShutDown);
    }
}

/// Open a bare connection (as a session's does, without channels), bounded
/// by `connection_timeout`. A token renewed while it opened is pushed at
/// once.
async fn dial(s: &ConnectSettings) -> Result<lapin::Connection, AmqpError> {
    let password = match &s.login {
        Login::Password { password, .. } => password.clone(),
        Login::Token(src) => src.fresh().await?,
    };
    let conn = crate::conn::handshake(s, &password).await?;
    if let Login::Token(src) = &s.login {
        let now = src.subscribe().borrow().clone();
        if now.expose_secret() != password.expose_secret() {
            let _ = crate::conn::push_secret(&conn, &now, s).await;
        }
    }
    Ok(conn)
}

/// Report connection-level errors to the supervisor (a channel closed by
/// the broker is the session's business, not a loss); the flag it keeps
/// while the broker blocks the connection.
fn watch_connection(
    inner: &Arc<SharedInner>,
    conn: &lapin::Connection,
    generation: u64,
) -> crate::link_state::BlockedFlag {
    let blocked = crate::link_state::BlockedFlag::default();
    let flag = blocked.clone();
    let mut ev = conn.events_listener();
    let status = conn.status().clone();
    let broken = inner.broken.clone();
    let events = inner.events.clone();
    tokio::spawn(async move {
        while let Some(e) = ev.next().await {
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
                    tracing::warn!(target: "nost_amqp", %reason, "RabbitMQ blocked the shared connection; publishing waits");
                    blocked.set(Some(reason.clone()));
                    let _ = events.send(SessionEvent::Blocked { reason });
                }
                lapin::Event::ConnectionUnblocked => {
                    blocked.set(None);
                    let _ = events.send(SessionEvent::Unblocked);
                }
                _ => {}
            }
        }
    });
    flag
}

/// The token source's failure for good, if it failed: then a lost
/// connection is not reopened (as a session's own, see `supervisor`).
fn gave_up(inner: &SharedInner) -> bool {
    let Login::Token(src) = &inner.settings.login else {
        return false;
    };
    let Some(failure) = src.failure() else {
        return false;
    };
    tracing::error!(target: "nost_amqp", error = %failure, "no new access token can come; the shared connection is not reopened");
    let _ = inner.events.send(SessionEvent::TokenFailed { failure });
    true
}

/// Reconnects after a loss and pushes renewed tokens, once per renewal.
async fn supervise(inner: Arc<SharedInner>, mut broken: mpsc::UnboundedReceiver<(u64, AmqpError)>) {
    let mut tokens = crate::conn::token_feed(&inner.settings.login);
    let mut generation = 1u64;
    loop {
        let reason = tokio::select! {
            _ = inner.cancel.cancelled() => return,
            msg = broken.recv() => match msg {
                Some((g, reason)) if g == generation => reason,
                Some(_) => continue,
                None => return,
            },
            token = crate::conn::renewed(&mut tokens) => {
                let live = inner.live.borrow().clone();
                let Some(live) = live else { continue };
                match crate::conn::push_renewed(&live.conn, &token, &inner.settings, &inner.events, "shared").await {
                    Ok(()) => continue,
                    Err(error) => error,
                }
            }
        };
        if let Some(old) = inner.live.send_replace(None) {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    old.conn.close(320, "reconnecting".into()),
                )
                .await;
            });
        }
        inner.settings.next_node();
        tracing::warn!(target: "nost_amqp", %reason, next = %inner.settings.endpoint(), "shared connection to RabbitMQ lost; reconnecting");
        let _ = inner.events.send(SessionEvent::Disconnected { reason });
        if gave_up(&inner) {
            return;
        }
        let base = inner.settings.reconnect_delay();
        let mut attempt = 0u32;
        let mut delay = backoff(base, 1);
        loop {
            tokio::select! {
                _ = inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            attempt += 1;
            match dial(&inner.settings).await {
                Ok(conn) => {
                    if inner.cancel.is_cancelled() {
                        let _ = conn.close(200, "shutdown".into()).await;
                        return;
                    }
                    generation += 1;
                    let blocked = watch_connection(&inner, &conn, generation);
                    inner.live.send_replace(Some(SharedLive {
                        conn: Arc::new(conn),
                        blocked,
                    }));
                    tracing::info!(target: "nost_amqp", attempt, url = %inner.settings.display_url(), "shared connection to RabbitMQ reopened");
                    let _ = inner.events.send(SessionEvent::Connected { generation });
                    break;
                }
                Err(e) => {
                    if gave_up(&inner) {
                        return;
                    }
                    inner.settings.next_node();
                    delay = backoff(base, attempt + 1);
                    tracing::warn!(target: "nost_amqp", attempt, error = %e, retry_in_s = delay.as_secs_f64(), "reconnecting the shared connection failed");
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
