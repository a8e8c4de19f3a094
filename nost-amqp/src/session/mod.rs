//! A connection that stays up: reconnects, re-declares, re-consumes and
//! pushes renewed tokens, while publishers and consumers carry on.

mod connect;
mod consumer;
mod publisher;
mod shared_link;
mod supervisor;
mod topology;

pub(crate) use connect::is_channel_error;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::{BasicCancelOptions, QueueDeleteOptions, QueuePurgeOptions};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{AmqpError, Refusal};
use crate::message::{MessageProperties, Outgoing};
use crate::outbox::{Confirm, Outbox, Pending};
use crate::settings::{BindingSpec, ConnectSettings, ExchangeSpec, QueueSpec, no_args};
pub use consumer::Subscription;
use consumer::{ConsumerSpec, start_consumer};
use topology::Topology;

/// What happens to a session (or a shared connection), for logs and
/// applications.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SessionEvent {
    /// Connected (again); `generation` counts connections.
    Connected {
        /// 1 for the first connection.
        generation: u64,
    },
    /// The connection or channel was lost.
    Disconnected {
        /// Why: the connection closed or failed
        /// ([`AmqpError::ConnectionLost`]), a failed declaration closed the
        /// channel, a consumer ended, `update-secret` failed, …
        reason: AmqpError,
    },
    /// A reconnect attempt failed; another follows after `retry_in`.
    ReconnectFailed {
        /// Attempt number since the loss.
        attempt: u32,
        /// Why this attempt failed.
        error: AmqpError,
        /// Wait before the next attempt.
        retry_in: Duration,
    },
    /// A renewed token was accepted with `connection.update-secret`.
    SecretUpdated,
    /// `update-secret` failed; the session reconnects with the current token.
    SecretUpdateFailed {
        /// The broker's refusal ([`AmqpError::SecretRefused`]) or
        /// [`AmqpError::SecretUpdateTimeout`].
        error: AmqpError,
    },
    /// The broker refused a message (e.g. no write permission); it was not
    /// re-sent, and its [`Confirm`] (or the next `flush`) reports it.
    PublishRefused {
        /// The message (exchange, routing key) and the broker's reason.
        refusal: Refusal,
    },
    /// The broker blocked the connection (a resource alarm): publishing
    /// waits; after `blocked_connection_timeout` the session reconnects.
    Blocked {
        /// The broker's words.
        reason: String,
    },
    /// The broker unblocked the connection.
    Unblocked,
    /// The broker closed the publishing channel over a refused message;
    /// it was reopened on the same connection (no reconnect).
    ChannelReopened,
    /// The token source can never give a token again (the login is over,
    /// credentials or client refused): new messages are refused with
    /// [`AmqpError::TokenFailed`], and once the connection is lost the
    /// session does not reconnect (what waits in the buffer then fails too).
    TokenFailed {
        /// Why, typed, and what to do.
        failure: crate::token::TokenFailure,
    },
    /// The session was shut down on request.
    ShutDown,
}

#[derive(Clone)]
struct Live {
    generation: u64,
    conn: Arc<lapin::Connection>,
    channel: lapin::Channel,
    /// The token the connection logged in with (Keycloak modes): a newer
    /// one is pushed with `update-secret` as soon as the supervisor runs.
    secret: Option<nost_config::SecretString>,
    /// Whether the broker blocked this connection (shared by every session
    /// on it).
    blocked: crate::link_state::BlockedFlag,
}

struct Inner {
    settings: ConnectSettings,
    props: MessageProperties,
    topology: Mutex<Topology>,
    live: watch::Sender<Option<Live>>,
    outbox: Outbox,
    events: broadcast::Sender<SessionEvent>,
    /// Reports that the connection (or a channel) of a generation broke.
    broken: mpsc::UnboundedSender<(u64, AmqpError)>,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
    consumer_tags: Mutex<HashMap<u64, (u64, String)>>,
    /// The connection borrowed from, for sessions made with
    /// [`Session::connect_shared`]; `None`: a connection of its own.
    shared: Option<crate::shared::SharedConnection>,
}

/// A long-lived AMQP session: one connection with a channel for
/// declarations and consumers and one for publishing (with confirms), and
/// everything needed to come back after a loss.
///
/// Delivery is at-least-once: a message sent but not yet confirmed when the
/// connection drops is sent again after the reconnect, so a consumer may see
/// it twice. Order is kept: the buffer drains oldest first before new
/// messages.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("url", &self.inner.settings.display_url())
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Session {
    /// Connect, failing with a clear error if the broker cannot be reached
    /// (or refuses) within `connection_timeout`.
    pub async fn connect(settings: ConnectSettings) -> Result<Session, AmqpError> {
        let (broken_tx, broken_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(1024);
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
            shared: None,
        });
        inner.settings.warn_unapplied();
        let attempts = inner.settings.rabbitmq.connection_attempts.max(1);
        let nodes = inner.settings.node_count();
        // Subscribed before the first token is taken: a token renewed while
        // the first connection opens is seen (and pushed) by the supervisor.
        let tokens = crate::conn::token_feed(&inner.settings.login);
        let mut attempt = 0;
        let mut tried = 0;
        let first = loop {
            tried += 1;
            // `open` bounds the handshake and the restore by
            // connection_timeout each, and closes what it opened on failure.
            let res = connect::open(&inner, 1).await;
            match res {
                Ok(live) => break live,
                // Another node of a cluster, or (connection_attempts /
                // retry_delay) another round: only for what a retry can cure.
                Err(e @ (AmqpError::Unreachable { .. } | AmqpError::ConnectTimeout { .. }))
                    if tried < nodes || attempt + 1 < attempts =>
                {
                    let failed = inner.settings.endpoint();
                    inner.settings.next_node();
                    if tried < nodes {
                        tracing::warn!(target: "nost_amqp", node = %failed, next = %inner.settings.endpoint(), error = %e, "RabbitMQ node did not answer; trying the next");
                        continue;
                    }
                    tried = 0;
                    attempt += 1;
                    tracing::warn!(target: "nost_amqp", attempt, attempts, error = %e, "connecting to RabbitMQ failed; trying again");
                    tokio::time::sleep(Duration::from_secs(inner.settings.rabbitmq.retry_delay))
                        .await;
                }
                Err(e) => return Err(e),
            }
        };
        inner.live.send_replace(Some(first));
        inner.outbox.set_connected(true);
        tracing::info!(target: "nost_amqp", url = %inner.settings.display_url(), "connected to RabbitMQ");
        let _ = inner.events.send(SessionEvent::Connected { generation: 1 });
        let sup = tokio::spawn(supervisor::supervise(inner.clone(), broken_rx, tokens));
        let publ = tokio::spawn(publisher::publisher(inner.clone()));
        lock(&inner.tasks).extend([sup, publ]);
        Ok(Session { inner })
    }

    /// Session events (connects, losses, token updates, refusals).
    pub fn events(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.events.subscribe()
    }

    /// Whether a connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.inner.live.borrow().is_some()
    }

    /// The broker URL, without credentials.
    pub fn url(&self) -> String {
        self.inner.settings.display_url()
    }

    /// The connection up now, with a usable channel (one a failed
    /// declaration closed is being replaced); waits up to
    /// `connection_timeout` for it.
    async fn live(&self) -> Result<Live, AmqpError> {
        crate::conn::wait_until_up(
            &self.inner.live,
            &self.inner.cancel,
            self.inner.settings.connection_timeout(),
            |l| l.channel.status().connected(),
            |wait| format!("no connection within {} s", wait.as_secs()),
        )
        .await
    }

    fn classify(&self, live: &Live, e: &lapin::Error) -> AmqpError {
        let err = AmqpError::from_lapin(
            e,
            &self.inner.settings.endpoint(),
            &self.inner.settings.rabbitmq.virtual_host,
            self.inner.settings.uses_token(),
        );
        // A failed operation closes the channel: let the supervisor reopen.
        let _ = self.inner.broken.send((live.generation, err.clone()));
        err
    }

    /// Declare an exchange now and after every reconnect.
    pub async fn declare_exchange(&self, spec: ExchangeSpec) -> Result<(), AmqpError> {
        let live = self.live().await?;
        topology::declare_exchange(&live.channel, &spec)
            .await
            .map_err(|e| self.classify(&live, &e))?;
        let mut t = lock(&self.inner.topology);
        if !t.exchanges.contains(&spec) {
            t.exchanges.push(spec);
        }
        Ok(())
    }

    /// Declare a queue now and after every reconnect.
    pub async fn declare_queue(&self, spec: QueueSpec) -> Result<(), AmqpError> {
        let live = self.live().await?;
        topology::declare_queue(&live.channel, &spec)
            .await
            .map_err(|e| self.classify(&live, &e))?;
        let mut t = lock(&self.inner.topology);
        if !t.queues.contains(&spec) {
            t.queues.push(spec);
        }
        Ok(())
    }

    /// Bind a queue now and after every reconnect.
    pub async fn bind_queue(&self, spec: BindingSpec) -> Result<(), AmqpError> {
        let live = self.live().await?;
        topology::bind(&live.channel, &spec)
            .await
            .map_err(|e| self.classify(&live, &e))?;
        let mut t = lock(&self.inner.topology);
        if !t.bindings.contains(&spec) {
            t.bindings.push(spec);
        }
        Ok(())
    }

    /// Consume from a queue with manual acks and `prefetch` unacknowledged
    /// messages at most; restored after every reconnect.
    pub async fn consume(&self, queue: &str, prefetch: u16) -> Result<Subscription, AmqpError> {
        let live = self.live().await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let spec = ConsumerSpec {
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            queue: queue.to_owned(),
            prefetch,
            tx,
            stop: self.inner.cancel.child_token(),
        };
        start_consumer(&self.inner, &live, &spec)
            .await
            .map_err(|e| self.classify(&live, &e))?;
        lock(&self.inner.topology).consumers.push(spec);
        Ok(Subscription {
            rx,
            queue: queue.to_owned(),
        })
    }

    /// Stop consuming, then purge, unbind (with the binding keys) and delete
    /// a queue this session declared; it is not restored any more.
    pub async fn delete_queue(&self, queue: &str) -> Result<(), AmqpError> {
        self.remove_queue(queue, true).await
    }

    /// Delete a queue this session declared right away, without purging or
    /// unbinding first (which need read permission): for undoing a
    /// subscription that could not be set up.
    pub async fn discard_queue(&self, queue: &str) -> Result<(), AmqpError> {
        self.remove_queue(queue, false).await
    }

    async fn remove_queue(&self, queue: &str, tidy: bool) -> Result<(), AmqpError> {
        let (consumers, bindings) = {
            let mut t = lock(&self.inner.topology);
            t.queues.retain(|q| q.name != queue);
            let (gone, kept): (Vec<_>, Vec<_>) =
                t.consumers.drain(..).partition(|c| c.queue == queue);
            t.consumers = kept;
            let (b_gone, b_kept): (Vec<_>, Vec<_>) =
                t.bindings.drain(..).partition(|b| b.queue == queue);
            t.bindings = b_kept;
            (gone, b_gone)
        };
        let live = self.live().await?;
        for c in &consumers {
            c.stop.cancel();
            let tag = lock(&self.inner.consumer_tags).remove(&c.id);
            if let Some((_, tag)) = tag.filter(|(g, _)| *g == live.generation) {
                let _ = live
                    .channel
                    .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                    .await;
            }
        }
        let ch = &live.channel;
        let run = async {
            if tidy {
                ch.queue_purge(queue.into(), QueuePurgeOptions::default())
                    .await?;
            }
            for b in bindings.iter().filter(|_| tidy) {
                ch.queue_unbind(
                    b.queue.as_str().into(),
                    b.exchange.as_str().into(),
                    b.key.as_str().into(),
                    no_args(),
                )
                .await?;
            }
            ch.queue_delete(queue.into(), QueueDeleteOptions::default())
                .await
                .map(|_| ())
        };
        run.await.map_err(|e| self.classify(&live, &e))
    }

    /// Queue a message (buffered): returns once it is in the ordered
    /// buffer, before the broker has seen it. While connected a full buffer
    /// waits for room; while disconnected it refuses with
    /// [`AmqpError::BufferFull`]. If the broker refuses the message, the
    /// next [`Session::flush`] reports it (and a
    /// [`SessionEvent::PublishRefused`] is sent).
    pub async fn publish(&self, msg: Outgoing) -> Result<(), AmqpError> {
        self.inner.outbox.push(Pending::new(msg)).await
    }

    /// Queue a message like [`Session::publish`] and return a handle that
    /// resolves to the broker's verdict on this one message: `Ok(())` once
    /// confirmed, [`AmqpError::PublishRefused`] when refused.
    pub async fn publish_tracked(&self, msg: Outgoing) -> Result<Confirm, AmqpError> {
        let (pending, confirm) = Pending::tracked(msg);
        self.inner.outbox.push(pending).await?;
        Ok(confirm)
    }

    /// Publish one message and wait for the broker's verdict on it.
    pub async fn publish_confirmed(&self, msg: Outgoing) -> Result<(), AmqpError> {
        self.publish_tracked(msg).await?.await
    }

    /// Wait until every queued message is confirmed or refused. Fails with
    /// [`AmqpError::Refused`] listing the messages refused since the last
    /// `flush` (those not reported to a [`Confirm`] handle), and with
    /// [`AmqpError::FlushTimeout`] when `timeout` passes first (saying
    /// whether the connection is down, blocked or up; nothing is dropped).
    pub async fn flush(&self, timeout: Duration) -> Result<(), AmqpError> {
        let res = tokio::time::timeout(timeout, async {
            loop {
                let wait = self.inner.outbox.progress.notified();
                if self.inner.outbox.counts() == (0, 0) {
                    return;
                }
                wait.await;
            }
        })
        .await;
        if let Some((error, _)) = self.inner.outbox.take_lost() {
            return Err(error);
        }
        let refused = self.inner.outbox.take_refused();
        if !refused.is_empty() {
            return Err(AmqpError::Refused { refused });
        }
        let (waiting, unconfirmed) = self.inner.outbox.counts();
        res.map_err(|_| AmqpError::FlushTimeout {
            waiting,
            unconfirmed,
            timeout,
            state: self.link_state(),
        })
    }

    /// Whether the connection is down, blocked by the broker (a resource
    /// alarm) or up: why buffered messages may be waiting.
    pub fn link_state(&self) -> crate::LinkState {
        match self.inner.live.borrow().as_ref() {
            None => crate::LinkState::Disconnected,
            Some(l) => match l.blocked.reason() {
                Some(reason) => crate::LinkState::Blocked { reason },
                None => crate::LinkState::Connected,
            },
        }
    }

    /// (waiting, unconfirmed) message counts.
    pub fn pending(&self) -> (usize, usize) {
        self.inner.outbox.counts()
    }

    /// Close consumers, channel and connection cleanly (after up to
    /// `flush_timeout` for queued messages). Never reconnects afterwards.
    pub async fn shut_down(&self, flush_timeout: Duration) {
        if self.inner.cancel.is_cancelled() {
            return;
        }
        if self.is_connected() {
            let _ = self.flush(flush_timeout).await;
        }
        self.inner.cancel.cancel();
        self.inner.outbox.close();
        let consumers: Vec<ConsumerSpec> = lock(&self.inner.topology).consumers.drain(..).collect();
        let live = self.inner.live.send_replace(None);
        if let Some(live) = live {
            for c in &consumers {
                let tag = lock(&self.inner.consumer_tags).remove(&c.id);
                if let Some((_, tag)) = tag {
                    let _ = live
                        .channel
                        .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                        .await;
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                let _ = live.channel.close(200, "shutdown".into()).await;
                // A shared connection stays for the other sessions.
                if self.inner.shared.is_none() {
                    let _ = live.conn.close(200, "shutdown".into()).await;
                }
            })
            .await;
        }
        drop(consumers);
        let tasks: Vec<JoinHandle<()>> = lock(&self.inner.tasks).drain(..).collect();
        for t in tasks {
            let _ = t.await;
        }
        tracing::info!(target: "nost_amqp", url = %self.inner.settings.display_url(), "AMQP session shut down");
        let _ = self.inner.events.send(SessionEvent::ShutDown);
    }
}

use crate::outbox::lock;

fn err_of(inner: &Inner, e: &lapin::Error) -> AmqpError {
    AmqpError::from_lapin(
        e,
        &inner.settings.endpoint(),
        &inner.settings.rabbitmq.virtual_host,
        inner.settings.uses_token(),
    )
}
