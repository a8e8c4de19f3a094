//! A connection that stays up: reconnects, re-declares, re-consumes and
//! pushes renewed tokens, while publishers and consumers carry on.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::{Confirmation, Connect, ExchangeKind};
use nost_config::ExposeSecret;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::AmqpError;
use crate::message::{Delivery, MessageProperties, Outgoing};
use crate::outbox::Outbox;
use crate::settings::{BindingSpec, ConnectSettings, ExchangeSpec, Login, QueueSpec, no_args};

/// How many messages may wait for a publisher confirm at once.
const CONFIRM_WINDOW: usize = 512;
/// The longest pause between reconnect attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(60);

/// What happens to a session, for logs and applications.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// Connected (again); `generation` counts connections.
    Connected {
        /// 1 for the first connection.
        generation: u64,
    },
    /// The connection or channel was lost.
    Disconnected {
        /// What was reported.
        reason: String,
    },
    /// A reconnect attempt failed; another follows after `retry_in`.
    ReconnectFailed {
        /// Attempt number since the loss.
        attempt: u32,
        /// Why it failed.
        error: String,
        /// Wait before the next attempt.
        retry_in: Duration,
    },
    /// A renewed token was accepted with `connection.update-secret`.
    SecretUpdated,
    /// `update-secret` failed; the session reconnects with the current token.
    SecretUpdateFailed {
        /// Why.
        error: String,
    },
    /// The broker refused a message (e.g. no write permission); it was not re-sent.
    PublishRefused {
        /// Exchange.
        exchange: String,
        /// Routing key.
        routing_key: String,
        /// The broker's reason.
        error: String,
    },
    /// The session was shut down on request.
    ShutDown,
}

#[derive(Clone)]
struct Live {
    generation: u64,
    conn: Arc<lapin::Connection>,
    channel: lapin::Channel,
}

struct ConsumerSpec {
    id: u64,
    queue: String,
    prefetch: u16,
    tx: mpsc::UnboundedSender<Delivery>,
    stop: CancellationToken,
}

#[derive(Default)]
struct Topology {
    exchanges: Vec<ExchangeSpec>,
    queues: Vec<QueueSpec>,
    bindings: Vec<BindingSpec>,
    consumers: Vec<ConsumerSpec>,
}

struct Inner {
    settings: ConnectSettings,
    props: MessageProperties,
    topology: Mutex<Topology>,
    live: watch::Sender<Option<Live>>,
    outbox: Outbox,
    events: broadcast::Sender<SessionEvent>,
    broken: mpsc::UnboundedSender<(u64, String)>,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
    consumer_tags: Mutex<HashMap<u64, (u64, String)>>,
}

/// A long-lived AMQP session: one connection, one channel, publisher
/// confirms, and everything needed to come back after a loss.
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

/// Deliveries of one subscription; it survives reconnects.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<Delivery>,
    /// The queue consumed from.
    pub queue: String,
}

impl Subscription {
    /// The next delivery; `None` once the session is shut down or the
    /// queue was deleted.
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.rx.recv().await
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
        });
        let deadline = inner.settings.connection_timeout();
        let first = tokio::time::timeout(deadline, open(&inner, 1))
            .await
            .map_err(|_| AmqpError::ConnectTimeout {
                endpoint: inner.settings.endpoint(),
                timeout: deadline,
            })??;
        inner.live.send_replace(Some(first));
        inner.outbox.set_connected(true);
        tracing::info!(target: "nost_amqp", url = %inner.settings.display_url(), "connected to RabbitMQ");
        let _ = inner.events.send(SessionEvent::Connected { generation: 1 });
        let sup = tokio::spawn(supervise(inner.clone(), broken_rx));
        let publ = tokio::spawn(publisher(inner.clone()));
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

    async fn live(&self) -> Result<Live, AmqpError> {
        let mut rx = self.inner.live.subscribe();
        let wait = self.inner.settings.connection_timeout();
        let res = tokio::time::timeout(wait, async {
            loop {
                if let Some(l) = rx.borrow_and_update().clone() {
                    return Ok(l);
                }
                if self.inner.cancel.is_cancelled() || rx.changed().await.is_err() {
                    return Err(AmqpError::Shutdown);
                }
            }
        })
        .await;
        res.unwrap_or_else(|_| {
            Err(AmqpError::NotConnected {
                reason: format!("no connection within {} s", wait.as_secs()),
            })
        })
    }

    fn classify(&self, live: &Live, e: &lapin::Error) -> AmqpError {
        let err = AmqpError::from_lapin(
            e,
            &self.inner.settings.endpoint(),
            &self.inner.settings.rabbitmq.virtual_host,
            self.inner.settings.uses_token(),
        );
        // A failed operation closes the channel: let the supervisor reopen.
        let _ = self.inner.broken.send((live.generation, err.to_string()));
        err
    }

    /// Declare an exchange now and after every reconnect.
    pub async fn declare_exchange(&self, spec: ExchangeSpec) -> Result<(), AmqpError> {
        let live = self.live().await?;
        declare_exchange(&live.channel, &spec)
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
        declare_queue(&live.channel, &spec)
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
        bind(&live.channel, &spec)
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
            ch.queue_purge(queue.into(), QueuePurgeOptions::default())
                .await?;
            for b in &bindings {
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

    /// Queue a message. While connected a full buffer waits for room;
    /// while disconnected it refuses with [`AmqpError::BufferFull`].
    pub async fn publish(&self, msg: Outgoing) -> Result<(), AmqpError> {
        self.inner.outbox.push(msg).await
    }

    /// Wait until every queued message is confirmed by the broker.
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
        let (waiting, inflight) = self.inner.outbox.counts();
        res.map_err(|_| AmqpError::NotConnected {
            reason: format!(
                "{waiting} messages waiting and {inflight} unconfirmed after {} s",
                timeout.as_secs()
            ),
        })
    }

    /// (waiting, unconfirmed) message counts.
    pub fn pending(&self) -> (usize, usize) {
        self.inner.outbox.counts()
    }

    /// Close consumers, channel and connection cleanly (after up to
    /// `flush_timeout` for queued messages). Never reconnects afterwards.
    pub async fn shutdown(&self, flush_timeout: Duration) {
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
                let _ = live.conn.close(200, "shutdown".into()).await;
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn declare_exchange(ch: &lapin::Channel, s: &ExchangeSpec) -> lapin::Result<()> {
    let kind = match s.kind.as_str() {
        "topic" => ExchangeKind::Topic,
        "direct" => ExchangeKind::Direct,
        "fanout" => ExchangeKind::Fanout,
        "headers" => ExchangeKind::Headers,
        other => ExchangeKind::Custom(other.into()),
    };
    let opts = ExchangeDeclareOptions {
        durable: s.durable,
        auto_delete: s.auto_delete,
        ..Default::default()
    };
    ch.exchange_declare(s.name.as_str().into(), kind, opts, no_args())
        .await
}

async fn declare_queue(ch: &lapin::Channel, s: &QueueSpec) -> lapin::Result<()> {
    let opts = QueueDeclareOptions {
        durable: s.durable,
        auto_delete: s.auto_delete,
        exclusive: s.exclusive,
        ..Default::default()
    };
    ch.queue_declare(s.name.as_str().into(), opts, no_args())
        .await
        .map(|_| ())
}

async fn bind(ch: &lapin::Channel, b: &BindingSpec) -> lapin::Result<()> {
    ch.queue_bind(
        b.queue.as_str().into(),
        b.exchange.as_str().into(),
        b.key.as_str().into(),
        QueueBindOptions::default(),
        no_args(),
    )
    .await
}

async fn start_consumer(inner: &Arc<Inner>, live: &Live, spec: &ConsumerSpec) -> lapin::Result<()> {
    live.channel
        .basic_qos(spec.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = live
        .channel
        .basic_consume(
            spec.queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            no_args(),
        )
        .await?;
    lock(&inner.consumer_tags).insert(spec.id, (live.generation, consumer.tag().to_string()));
    let tx = spec.tx.clone();
    let stop = spec.stop.clone();
    let broken = inner.broken.clone();
    let generation = live.generation;
    let queue = spec.queue.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                item = consumer.next() => match item {
                    Some(Ok(d)) => {
                        if tx.send(Delivery::from_lapin(d)).is_err() {
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        let _ = broken.send((generation, format!("consumer on {queue}: {e}")));
                        return;
                    }
                    None => {
                        if !stop.is_cancelled() {
                            let _ = broken.send((generation, format!("consumer on {queue} was cancelled by the broker")));
                        }
                        return;
                    }
                }
            }
        }
    });
    Ok(())
}

/// Open a connection and channel and restore the recorded topology.
async fn open(inner: &Arc<Inner>, generation: u64) -> Result<Live, AmqpError> {
    let s = &inner.settings;
    let err = |e: &lapin::Error| {
        AmqpError::from_lapin(e, &s.endpoint(), &s.rabbitmq.virtual_host, s.uses_token())
    };
    let password = match &s.login {
        Login::Password { password, .. } => password.clone(),
        Login::Token(src) => src.fresh().await.map_err(AmqpError::Token)?,
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
    let channel = conn.create_channel().await.map_err(|e| err(&e))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| err(&e))?;
    let live = Live {
        generation,
        conn: conn.clone(),
        channel,
    };
    // Watch for connection-level errors (close by the broker, I/O loss).
    let mut ev = conn.events_listener();
    let broken = inner.broken.clone();
    tokio::spawn(async move {
        while let Some(e) = ev.next().await {
            if let lapin::Event::Error(e) = e {
                let _ = broken.send((generation, e.to_string()));
                return;
            }
        }
    });
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
    let consumers: Vec<(
        u64,
        String,
        u16,
        mpsc::UnboundedSender<Delivery>,
        CancellationToken,
    )> = lock(&inner.topology)
        .consumers
        .iter()
        .map(|c| {
            (
                c.id,
                c.queue.clone(),
                c.prefetch,
                c.tx.clone(),
                c.stop.clone(),
            )
        })
        .collect();
    for (id, queue, prefetch, tx, stop) in consumers {
        let spec = ConsumerSpec {
            id,
            queue,
            prefetch,
            tx,
            stop,
        };
        start_consumer(inner, &live, &spec)
            .await
            .map_err(|e| err(&e))?;
    }
    Ok(live)
}

/// Reconnects after losses and pushes renewed tokens.
async fn supervise(inner: Arc<Inner>, mut broken: mpsc::UnboundedReceiver<(u64, String)>) {
    let mut tokens = match &inner.settings.login {
        Login::Token(src) => {
            let mut rx = src.subscribe();
            rx.borrow_and_update();
            Some(rx)
        }
        Login::Password { .. } => None,
    };
    let mut generation = 1u64;
    loop {
        let reason = tokio::select! {
            _ = inner.cancel.cancelled() => return,
            msg = broken.recv() => match msg {
                Some((g, reason)) if g == generation => reason,
                Some(_) => continue,
                None => return,
            },
            changed = async {
                match tokens.as_mut() {
                    Some(rx) => rx.changed().await,
                    None => std::future::pending().await,
                }
            } => {
                if changed.is_err() {
                    tokens = None;
                    continue;
                }
                let token = tokens.as_mut().map(|rx| rx.borrow_and_update().clone());
                let live = inner.live.borrow().clone();
                let (Some(token), Some(live)) = (token, live) else { continue };
                let res = tokio::time::timeout(
                    Duration::from_secs(10),
                    live.conn.update_secret(token.expose_secret().into(), "secret".into()),
                ).await;
                match res {
                    Ok(Ok(())) => {
                        tracing::info!(target: "nost_amqp", "renewed token sent to RabbitMQ (update-secret)");
                        let _ = inner.events.send(SessionEvent::SecretUpdated);
                        continue;
                    }
                    Ok(Err(e)) => {
                        let error = AmqpError::from_lapin(&e, &inner.settings.endpoint(), &inner.settings.rabbitmq.virtual_host, true).to_string();
                        tracing::warn!(target: "nost_amqp", %error, "update-secret failed; reconnecting with the current token");
                        let _ = inner.events.send(SessionEvent::SecretUpdateFailed { error: error.clone() });
                        error
                    }
                    Err(_) => {
                        let error = "update-secret got no answer within 10 s".to_owned();
                        tracing::warn!(target: "nost_amqp", %error, "reconnecting with the current token");
                        let _ = inner.events.send(SessionEvent::SecretUpdateFailed { error: error.clone() });
                        error
                    }
                }
            }
        };
        // The connection is gone (or unusable): reconnect until it works.
        inner.outbox.set_connected(false);
        if let Some(old) = inner.live.send_replace(None) {
            let conn = old.conn.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    conn.close(320, "reconnecting".into()),
                )
                .await;
            });
        }
        tracing::warn!(target: "nost_amqp", %reason, "connection to RabbitMQ lost; reconnecting");
        let _ = inner.events.send(SessionEvent::Disconnected { reason });
        let mut delay = inner.settings.reconnect_delay();
        let mut attempt = 0u32;
        loop {
            tokio::select! {
                _ = inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            attempt += 1;
            generation += 1;
            match open(&inner, generation).await {
                Ok(live) => {
                    // Stale "broken" reports of older connections are dropped by generation.
                    inner.live.send_replace(Some(live));
                    inner.outbox.set_connected(true);
                    tracing::info!(target: "nost_amqp", attempt, url = %inner.settings.display_url(), "reconnected to RabbitMQ");
                    let _ = inner.events.send(SessionEvent::Connected { generation });
                    break;
                }
                Err(e) => {
                    let next = (delay * 2).min(MAX_RECONNECT_DELAY);
                    tracing::warn!(target: "nost_amqp", attempt, error = %e, retry_in_s = delay.as_secs_f64(), "reconnect failed");
                    let _ = inner.events.send(SessionEvent::ReconnectFailed {
                        attempt,
                        error: e.to_string(),
                        retry_in: delay,
                    });
                    delay = next;
                }
            }
        }
    }
}

/// Sends queued messages in order with publisher confirms.
async fn publisher(inner: Arc<Inner>) {
    let mut live_rx = inner.live.subscribe();
    loop {
        // Wait for a live channel.
        let live = loop {
            if inner.cancel.is_cancelled() && inner.outbox.counts().0 == 0 {
                return;
            }
            if let Some(l) = live_rx.borrow_and_update().clone() {
                break l;
            }
            tokio::select! {
                r = live_rx.changed() => if r.is_err() { return },
                _ = inner.cancel.cancelled() => return,
            }
        };
        let mut inflight: VecDeque<Outgoing> = VecDeque::new();
        let mut batch: Vec<Outgoing> = Vec::with_capacity(CONFIRM_WINDOW);
        let mut unsent: Vec<Outgoing> = Vec::new();
        let mut confirms = FuturesOrdered::new();
        let failure: Option<AmqpError> = loop {
            let can_send = inflight.len() < CONFIRM_WINDOW;
            tokio::select! {
                biased;
                Some(res) = confirms.next(), if !confirms.is_empty() => {
                    // Take every confirm that is already in: one outbox
                    // update for the lot.
                    let mut acked = 0;
                    let mut failed = None;
                    let mut next = Some(res);
                    while let Some(res) = next {
                        match res {
                            Ok(Confirmation::Ack(_)) | Ok(Confirmation::NotRequested) => {
                                inflight.pop_front();
                                acked += 1;
                            }
                            Ok(Confirmation::Nack(_)) => {
                                failed = Some(AmqpError::Other("the broker nacked a message".into()));
                                break;
                            }
                            Err(e) => {
                                failed = Some(err_of(&inner, &e));
                                break;
                            }
                        }
                        next = confirms.next().now_or_never().flatten();
                    }
                    if acked > 0 {
                        inner.outbox.confirmed(acked);
                    }
                    if let Some(f) = failed { break Some(f); }
                }
                r = live_rx.changed() => {
                    if r.is_err() || live_rx.borrow().as_ref().map(|l| l.generation) != Some(live.generation) {
                        break None;
                    }
                }
                _ = inner.outbox.items.notified(), if can_send => {
                    // Send as much as the window allows.
                    let mut failed = None;
                    batch.clear();
                    inner.outbox.take_batch(CONFIRM_WINDOW - inflight.len(), &mut batch);
                    let mut msgs = batch.drain(..);
                    for msg in msgs.by_ref() {
                        let res = live.channel.basic_publish(
                            msg.exchange.as_str().into(),
                            msg.routing_key.as_str().into(),
                            BasicPublishOptions::default(),
                            &msg.body,
                            inner.props.basic(),
                        ).await;
                        inflight.push_back(msg);
                        match res {
                            Ok(confirm) => confirms.push_back(confirm),
                            Err(e) => { failed = Some(err_of(&inner, &e)); break; }
                        }
                    }
                    // Taken but not sent (a failure): back to the outbox below.
                    unsent.extend(msgs);
                    if inflight.len() >= CONFIRM_WINDOW || inner.outbox.counts().0 > 0 {
                        // More to do: wake ourselves again.
                        inner.outbox.items.notify_one();
                    }
                    if let Some(f) = failed { break Some(f); }
                }
            }
        };
        if let Some(err) = &failure {
            let _ = inner.broken.send((live.generation, err.to_string()));
        }
        // First to the front: the unconfirmed go back before them.
        if !unsent.is_empty() {
            inner.outbox.requeue_front(unsent.drain(..));
        }
        match failure {
            Some(e) if e.is_permanent() => {
                // Re-sending cannot help: report each message, drop it.
                let n = inflight.len();
                for m in inflight.drain(..) {
                    tracing::error!(target: "nost_amqp", exchange = %m.exchange, routing_key = %m.routing_key, error = %e, "message refused by the broker");
                    let _ = inner.events.send(SessionEvent::PublishRefused {
                        exchange: m.exchange,
                        routing_key: m.routing_key,
                        error: e.to_string(),
                    });
                }
                inner.outbox.confirmed(n);
            }
            _ => inner.outbox.requeue_front(inflight.into_iter()),
        }
        // Wait until this connection is replaced.
        while live_rx.borrow().as_ref().map(|l| l.generation) == Some(live.generation) {
            tokio::select! {
                r = live_rx.changed() => if r.is_err() { return },
                _ = inner.cancel.cancelled() => return,
            }
        }
    }
}

fn err_of(inner: &Inner, e: &lapin::Error) -> AmqpError {
    AmqpError::from_lapin(
        e,
        &inner.settings.endpoint(),
        &inner.settings.rabbitmq.virtual_host,
        inner.settings.uses_token(),
    )
}
