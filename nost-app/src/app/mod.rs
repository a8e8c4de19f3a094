//! `Application`: start-up, publishing, subscriptions and shutdown.

pub(crate) mod auth_link;
mod channels;
pub(crate) mod error;
pub(crate) mod options;
pub(crate) mod shared;
pub(crate) mod shared_connection;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use nost_amqp::{BindingSpec, ConnectSettings, ExchangeSpec, Outgoing, QueueSpec, Session};
use nost_auth::TokenManager;
use nost_config::{AuthMode, Config, Credentials, ModeKind, Tokens};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::messages::{ModeStatus, NostMessage, ReadyStatus, TimeStatus};
use crate::simulator::{Mode, SimEvent, Simulator, TimeStatusPublisher};

use crate::topics::{queue_name, routing_key, validate_name};
use error::{AppError, HandlerError};
use options::{AuthInputs, StartOptions};

/// How long shutdown waits for queued messages to be confirmed.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

/// A message received by a callback.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Message {
    /// `PREFIX.APP.TOPIC` of the message.
    pub routing_key: String,
    /// The body (UTF-8 JSON for NOS-T messages).
    pub body: Vec<u8>,
    /// The AMQP properties the sender set (message id, timestamp, app id,
    /// headers, …).
    pub properties: nost_amqp::Properties,
    /// Whether the broker delivered this message before: delivery is
    /// at-least-once, so after a reconnect a message can come twice.
    pub redelivered: bool,
}

impl Message {
    /// The sending app: the second segment of the routing key.
    pub fn sender(&self) -> &str {
        crate::topics::sender_app(&self.routing_key).unwrap_or_default()
    }

    /// The body as text.
    pub fn text(&self) -> Result<&str, HandlerError> {
        Ok(std::str::from_utf8(&self.body)?)
    }

    /// Parse the body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HandlerError> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

type BoxFut = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;
type Handler = Arc<dyn Fn(Message) -> BoxFut + Send + Sync>;

struct Inner {
    name: String,
    prefix: String,
    config: Config,
    mode: ModeKind,
    session: Session,
    tokens: Option<TokenManager>,
    /// False when the tokens belong to a [`shared::SharedTokens`]: the
    /// owner, not this application, stops their renewal.
    owns_tokens: bool,
    handlers: Mutex<HashMap<String, Vec<Handler>>>,
    queues: Mutex<Vec<String>>,
    subscribe_lock: tokio::sync::Mutex<()>,
    closing: CancellationToken,
    closed: tokio::sync::OnceCell<()>,
    /// Cancelled when shutdown has finished.
    shut: CancellationToken,
    simulator: Simulator,
    description: Option<String>,
    /// Status messages in order, to the task that sends them (see `spawn_status_sender`).
    status_queue: mpsc::UnboundedSender<Queued>,
    /// The YAML's log file, written until shutdown.
    file_log: Mutex<Option<crate::logging::FileLogRegistration>>,
}

enum Queued {
    Message(String, String),
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// What a role takes from its YAML section (or its start-up options).
#[derive(Debug, Clone, Default)]
pub(crate) struct RoleSettings {
    pub time_status_step: Option<nost_config::NostDuration>,
    pub time_status_init: Option<chrono::DateTime<chrono::Utc>>,
    pub shut_down_when_terminated: bool,
    pub set_offset: bool,
    /// The role's logging fields (`None`: the role has none, the logger).
    pub logging: Option<nost_config::LoggingConfig>,
}

/// A NOS-T application connected under one prefix.
///
/// Cheap to clone; all clones are the same application.
#[derive(Clone)]
pub struct Application {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("name", &self.inner.name)
            .field("prefix", &self.inner.prefix)
            .field("mode", &self.inner.mode)
            .field("session", &self.inner.session)
            .finish()
    }
}

impl Application {
    /// Detect the authentication mode, obtain tokens (Keycloak modes),
    /// connect to RabbitMQ and declare the prefix exchange (topic, durable,
    /// auto-delete, as every NOS-T peer does).
    ///
    /// Fails before any network I/O when the mode is invalid (e.g. an access
    /// token without a refresh token), and with a clear error, not a hang,
    /// when Keycloak or the broker cannot be reached within
    /// `connection_timeout`.
    pub async fn start_up(
        name: &str,
        prefix: &str,
        config: &Config,
        options: StartOptions,
    ) -> Result<Application, AppError> {
        let section = config.execution.applications.get(name).cloned();
        let settings = RoleSettings {
            time_status_step: options
                .time_status_step
                .or_else(|| section.as_ref().and_then(|s| s.time_status_step)),
            time_status_init: options
                .time_status_init
                .or_else(|| section.as_ref().and_then(|s| s.time_status_init)),
            shut_down_when_terminated: options
                .shut_down_when_terminated
                .or_else(|| section.as_ref().map(|s| s.shut_down_when_terminated))
                .unwrap_or(false),
            set_offset: options
                .set_offset
                .or_else(|| section.as_ref().map(|s| s.set_offset))
                .unwrap_or(true),
            logging: section.map(|s| s.logging),
        };
        Self::start_up_with(name, prefix, config, options, settings).await
    }

    pub(crate) async fn start_up_with(
        name: &str,
        prefix: &str,
        config: &Config,
        options: StartOptions,
        role: RoleSettings,
    ) -> Result<Application, AppError> {
        validate_name("application name", name)?;
        validate_name("prefix", prefix)?;
        config.validate_all()?;
        // As nost_tools: the file is set up before connecting, so the
        // connection's lines are in it too.
        let file_log = match role.logging.as_ref() {
            Some(l) if l.enable_file_logging && !options.skip_file_logging => {
                let r = crate::logging::register(name, l)?;
                tracing::info!(target: "nost_app", app = name, file = %r.path().display(), "file logging configured");
                Some(r)
            }
            _ => None,
        };
        let (mode, login, token_manager, owns_tokens) =
            match (&options.shared_connection, &options.shared_tokens) {
                (Some(conn), _) => conn.app_login(),
                (None, Some(shared)) => {
                    let (login, manager) = shared.login(config)?;
                    (shared.mode(), login, Some(manager), false)
                }
                (None, None) => {
                    let mode = detect_mode(config, &options.auth)?;
                    let (login, manager) = auth_link::login(&mode, config, &options.auth).await?;
                    (mode.kind(), login, manager, true)
                }
            };
        let mut settings = ConnectSettings::new(config.servers.rabbitmq.clone(), login);
        settings.connection_name = options
            .connection_name
            .clone()
            .unwrap_or_else(|| format!("nost-rs {prefix}.{name}"));
        let connected = match &options.shared_connection {
            Some(conn) => Session::connect_shared(settings, conn.amqp()).await,
            None => Session::connect(settings).await,
        };
        let session = match connected {
            Ok(s) => s,
            Err(e) => {
                if let Some(t) = token_manager.as_ref().filter(|_| owns_tokens) {
                    t.shut_down().await;
                }
                return Err(e.into());
            }
        };
        if let Err(e) = session.declare_exchange(ExchangeSpec::nost(prefix)).await {
            // Close what was opened: the connection and the token renewal.
            session.shut_down(Duration::ZERO).await;
            if let Some(t) = token_manager.as_ref().filter(|_| owns_tokens) {
                t.shut_down().await;
            }
            return Err(e.into());
        }
        let channel_queues = match channels::declare(&session, config, name, prefix).await {
            Ok(q) => q,
            Err(e) => {
                session.shut_down(Duration::ZERO).await;
                if let Some(t) = token_manager.as_ref().filter(|_| owns_tokens) {
                    t.shut_down().await;
                }
                return Err(e);
            }
        };
        tracing::info!(target: "nost_app", app = name, prefix, mode = %mode, url = %session.url(), "application started");
        let (status_queue, status_rx) = mpsc::unbounded_channel::<Queued>();
        let app = Application {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                prefix: prefix.to_owned(),
                config: config.clone(),
                mode,
                session,
                tokens: token_manager,
                owns_tokens,
                handlers: Mutex::new(HashMap::new()),
                queues: Mutex::new(channel_queues),
                subscribe_lock: tokio::sync::Mutex::new(()),
                closing: CancellationToken::new(),
                closed: tokio::sync::OnceCell::new(),
                shut: CancellationToken::new(),
                simulator: options.simulator.clone().unwrap_or_default(),
                description: options.description.clone(),
                status_queue,
                file_log: Mutex::new(file_log),
            }),
        };
        app.spawn_status_sender(status_rx);
        app.observe_simulator(&role)?;
        if role.set_offset {
            crate::ntp::start(&app, config);
        }
        if options.handle_signals {
            app.shut_down_on_signals();
        }
        Ok(app)
    }

    /// The application's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The run prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The detected authentication mode.
    pub fn auth_mode(&self) -> ModeKind {
        self.inner.mode
    }

    /// The AMQP session (events, pending counts).
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    /// The token manager in Keycloak modes (shared with other applications
    /// when started with [`StartOptions::shared_tokens`]).
    pub fn token_manager(&self) -> Option<&TokenManager> {
        self.inner.tokens.as_ref()
    }

    /// Why the Keycloak session can no longer be renewed, once it cannot
    /// (typed by [`nost_auth::AuthError::fatal_kind`]); `None` in basic mode
    /// and while renewals succeed or are retried.
    pub fn auth_failure(&self) -> Option<nost_auth::AuthError> {
        self.inner
            .tokens
            .as_ref()?
            .stopped_by()
            .filter(|e| e.fatal_kind().is_some())
    }

    /// A token that is cancelled when shutdown begins.
    pub fn closing(&self) -> CancellationToken {
        self.inner.closing.clone()
    }

    /// Publish `payload` on `PREFIX.<own name>.<topic>`.
    pub async fn send_message(&self, topic: &str, payload: &str) -> Result<(), AppError> {
        self.send_message_as(&self.inner.name, &[topic], payload)
            .await
    }

    /// Publish `payload` on `PREFIX.<app>.<topic>` for each topic, as
    /// `nost_tools`' `send_message(app_name, app_topics, payload)`.
    pub async fn send_message_as(
        &self,
        app: &str,
        topics: &[&str],
        payload: &str,
    ) -> Result<(), AppError> {
        if self.inner.closed.initialized() {
            return Err(AppError::ShutDown);
        }
        // Renewal can no longer succeed: the message would wait in the
        // buffer forever, so say why instead.
        if let Some(e) = self.auth_failure() {
            return Err(AppError::Auth(e));
        }
        for topic in topics {
            self.inner
                .session
                .publish(Outgoing {
                    exchange: self.inner.prefix.clone(),
                    routing_key: routing_key(&self.inner.prefix, app, topic),
                    body: payload.as_bytes().to_vec(),
                })
                .await?;
        }
        Ok(())
    }

    /// Publish `payload` on `PREFIX.<own name>.<topic>` and wait for the
    /// broker's verdict on this message: `Ok(())` once confirmed, or
    /// [`AppError::Amqp`] with [`nost_amqp::AmqpError::PublishRefused`]
    /// naming exchange, routing key and the broker's reason.
    pub async fn send_message_confirmed(&self, topic: &str, payload: &str) -> Result<(), AppError> {
        Ok(self.send_message_tracked(topic, payload).await?.await?)
    }

    /// Publish `payload` on `PREFIX.<own name>.<topic>` (buffered, like
    /// [`Application::send_message`]) and return a handle that resolves to
    /// the broker's verdict on this message.
    pub async fn send_message_tracked(
        &self,
        topic: &str,
        payload: &str,
    ) -> Result<nost_amqp::Confirm, AppError> {
        if self.inner.closed.initialized() {
            return Err(AppError::ShutDown);
        }
        Ok(self
            .inner
            .session
            .publish_tracked(Outgoing {
                exchange: self.inner.prefix.clone(),
                routing_key: routing_key(&self.inner.prefix, &self.inner.name, topic),
                body: payload.as_bytes().to_vec(),
            })
            .await?)
    }

    /// Wait until every message sent so far is confirmed or refused; the
    /// refused ones (since the last `flush`) come back as
    /// [`nost_amqp::AmqpError::Refused`]. When `timeout` passes first,
    /// [`nost_amqp::AmqpError::FlushTimeout`] says whether the connection
    /// is down, blocked by the broker (a resource alarm) or up with the
    /// broker slow to confirm; the messages stay buffered either way.
    pub async fn flush(&self, timeout: Duration) -> Result<(), AppError> {
        // Status messages queued by observers reach the session first.
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.inner.status_queue.send(Queued::Barrier(done)).is_ok() {
            let _ = tokio::time::timeout(timeout, wait).await;
        }
        Ok(self.inner.session.flush(timeout).await?)
    }

    /// Serialize `value` as compact JSON and publish it on `topic`.
    pub async fn send_json<T: serde::Serialize>(
        &self,
        topic: &str,
        value: &T,
    ) -> Result<(), AppError> {
        let body = serde_json::to_string(value).map_err(AppError::Json)?;
        self.send_message(topic, &body).await
    }

    /// Call `handler` for messages on `PREFIX.<app>.<topic>`; `app` and
    /// `topic` may hold AMQP wildcards (`*` one word, `#` any words).
    ///
    /// The queue is named as `nost_tools` names it (`…star…`/`…hash…` plus
    /// `.<own name>`). A handler error rejects the message without requeue
    /// (logged), so a malformed message cannot loop. Handlers of one queue
    /// run one message at a time, off the connection's I/O.
    pub async fn add_message_callback<F, Fut>(
        &self,
        app: &str,
        topic: &str,
        handler: F,
    ) -> Result<(), AppError>
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let key = routing_key(&self.inner.prefix, app, topic);
        self.subscribe(key, false, handler).await
    }

    /// Call `handler` for messages whose routing key matches
    /// `PREFIX.<pattern>` (e.g. `#` for everything under the prefix).
    pub async fn add_pattern_callback<F, Fut>(
        &self,
        pattern: &str,
        handler: F,
    ) -> Result<(), AppError>
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.subscribe(format!("{}.{pattern}", self.inner.prefix), false, handler)
            .await
    }

    /// Like [`Application::add_pattern_callback`], but on a queue that goes
    /// away with its consumer (non-durable, auto-delete), also when the
    /// process is killed: for listeners such as `nost listen`.
    pub async fn add_transient_pattern_callback<F, Fut>(
        &self,
        pattern: &str,
        handler: F,
    ) -> Result<(), AppError>
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.subscribe(format!("{}.{pattern}", self.inner.prefix), true, handler)
            .await
    }

    async fn subscribe<F, Fut>(
        &self,
        key: String,
        transient: bool,
        handler: F,
    ) -> Result<(), AppError>
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |m| Box::pin(handler(m)));
        let _guard = self.inner.subscribe_lock.lock().await;
        {
            let mut hs = lock(&self.inner.handlers);
            if let Some(list) = hs.get_mut(&key) {
                list.push(handler);
                return Ok(());
            }
        }
        let queue = queue_name(&key, &self.inner.name);
        let s = &self.inner.session;
        let spec = if transient {
            QueueSpec {
                durable: false,
                auto_delete: true,
                ..QueueSpec::nost(&queue)
            }
        } else {
            QueueSpec::nost_of(&queue, self.inner.config.servers.rabbitmq.queue_type)
        };
        s.declare_queue(spec).await?;
        let consumed = async {
            s.bind_queue(BindingSpec {
                queue: queue.clone(),
                exchange: self.inner.prefix.clone(),
                key: key.clone(),
            })
            .await?;
            s.consume(&queue, 1).await
        }
        .await;
        let mut sub = match consumed {
            Ok(sub) => sub,
            Err(e) => {
                // No durable queue may stay behind collecting messages.
                if let Err(d) = s.discard_queue(&queue).await {
                    tracing::warn!(target: "nost_app", %queue, error = %d, "could not remove the queue of a failed subscription");
                }
                return Err(e.into());
            }
        };
        lock(&self.inner.handlers).insert(key.clone(), vec![handler]);
        lock(&self.inner.queues).push(queue.clone());
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let max_body = inner.config.servers.rabbitmq.max_body_size;
            while let Some(d) = sub.recv().await {
                if d.body.len() > max_body {
                    tracing::warn!(target: "nost_app", routing_key = %d.routing_key, bytes = d.body.len(), max_body_size = max_body, "message body longer than servers.rabbitmq.max_body_size; rejected without requeue, handlers not called");
                    if let Err(e) = d.reject(false).await {
                        tracing::debug!(target: "nost_app", error = %e, "reject after a connection loss; the broker redelivers");
                    }
                    continue;
                }
                let handlers = lock(&inner.handlers).get(&key).cloned().unwrap_or_default();
                let msg = Message {
                    routing_key: d.routing_key.clone(),
                    body: d.body.clone(),
                    properties: d.properties.clone(),
                    redelivered: d.redelivered,
                };
                let mut failed = None;
                for h in handlers {
                    // A panicking handler must not take the subscription
                    // down with it: the message is rejected, the next one
                    // handled.
                    match std::panic::AssertUnwindSafe(h(msg.clone()))
                        .catch_unwind()
                        .await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => failed = Some(Failure::Error(e)),
                        Err(panic) => failed = Some(Failure::Panic(panic_text(&*panic))),
                    }
                }
                let res = match failed {
                    None => d.ack().await,
                    Some(Failure::Error(e)) => {
                        tracing::warn!(target: "nost_app", %queue, routing_key = %d.routing_key, error = %e, "message handler failed; message rejected without requeue");
                        d.reject(false).await
                    }
                    Some(Failure::Panic(text)) => {
                        tracing::error!(target: "nost_app", %queue, routing_key = %d.routing_key, panic = %text, "message handler panicked; message rejected without requeue, the subscription goes on");
                        d.reject(false).await
                    }
                };
                if let Err(e) = res {
                    tracing::debug!(target: "nost_app", error = %e, "ack/reject after a connection loss; the broker redelivers");
                }
            }
        });
        Ok(())
    }

    /// Publish `status.ready` (`{"name":…,"properties":{"ready":true}}`).
    pub async fn ready(&self) -> Result<(), AppError> {
        let mut status = ReadyStatus::new(self.inner.name.clone());
        status.description = self.inner.description.clone();
        let body = status.to_json();
        self.send_message("status.ready", &body).await
    }

    /// Shut down once: flush queued messages (up to 5 s), remove this
    /// application's queues (purge, unbind with the binding key, delete),
    /// close consumers, channels and connection, stop token renewal. The
    /// whole takes at most `connection_timeout`, also during an outage
    /// (then the queues stay on the broker, with a warning).
    pub async fn shut_down(&self) {
        let inner = self.inner.clone();
        self.inner
            .closed
            .get_or_init(|| async move {
                inner.closing.cancel();
                if inner.simulator.is_running() {
                    let _ = inner.simulator.terminate();
                }
                // Bounded in total by connection_timeout, even during an outage.
                let budget = Duration::from_secs(inner.config.servers.rabbitmq.connection_timeout.max(1));
                let deadline = tokio::time::Instant::now() + budget;
                let left = || deadline.saturating_duration_since(tokio::time::Instant::now()).min(SHUTDOWN_FLUSH);
                // Let queued status messages reach the session before flushing.
                let (done, wait) = tokio::sync::oneshot::channel();
                if inner.status_queue.send(Queued::Barrier(done)).is_ok() {
                    let _ = tokio::time::timeout(left(), wait).await;
                }
                if inner.session.is_connected()
                    && let Err(e) = inner.session.flush(left()).await
                {
                    tracing::warn!(target: "nost_app", error = %e, "not every message was confirmed at shutdown");
                }
                let queues: Vec<String> = lock(&inner.queues).drain(..).collect();
                for q in queues {
                    if !inner.session.is_connected() {
                        tracing::warn!(target: "nost_app", queue = %q, "not connected at shutdown; queue left on the broker");
                        continue;
                    }
                    match tokio::time::timeout(left(), inner.session.delete_queue(&q)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!(target: "nost_app", queue = %q, error = %e, "could not delete queue at shutdown"),
                        Err(_) => tracing::warn!(target: "nost_app", queue = %q, "no answer deleting the queue at shutdown"),
                    }
                }
                inner.session.shut_down(left()).await;
                if let Some(t) = inner.tokens.as_ref().filter(|_| inner.owns_tokens) {
                    t.shut_down().await;
                }
                tracing::info!(target: "nost_app", app = %inner.name, "application shut down");
                drop(lock(&inner.file_log).take());
            })
            .await;
        // After the cell is set: once `closed()` resolves, sending fails
        // with `AppError::ShutDown`.
        self.inner.shut.cancel();
    }

    /// The application's simulator (scenario time, modes).
    pub fn simulator(&self) -> &Simulator {
        &self.inner.simulator
    }

    /// Queue a message from synchronous code (observers); sent in order.
    pub(crate) fn queue_message(&self, topic: &str, body: String) {
        let _ = self
            .inner
            .status_queue
            .send(Queued::Message(topic.to_owned(), body));
    }

    fn spawn_status_sender(&self, mut rx: mpsc::UnboundedReceiver<Queued>) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            while let Some(q) = rx.recv().await {
                match q {
                    Queued::Message(topic, body) => {
                        let Some(inner) = weak.upgrade() else { return };
                        let app = Application { inner };
                        if let Err(e) = app.send_message(&topic, &body).await {
                            tracing::warn!(target: "nost_app", %topic, error = %e, "status message not sent");
                        }
                    }
                    Queued::Barrier(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
    }

    /// `status.mode` on every mode change, `status.time` on the
    /// time-status schedule, shutdown on TERMINATED when configured.
    fn observe_simulator(&self, settings: &RoleSettings) -> Result<(), AppError> {
        let weak = Arc::downgrade(&self.inner);
        let shut_down = settings.shut_down_when_terminated;
        self.inner
            .simulator
            .add_observer(Arc::new(move |_sim: &Simulator, ev: &SimEvent| {
                let Some(inner) = weak.upgrade() else { return };
                if let SimEvent::ModeChanged { new, .. } = ev {
                    let app = Application { inner };
                    let mut status = ModeStatus::new(app.inner.name.clone(), *new);
                    status.description = app.inner.description.clone();
                    app.queue_message("status.mode", status.to_json());
                    if *new == Mode::Terminated && shut_down {
                        tokio::spawn(async move { app.shut_down().await });
                    }
                }
            }));
        if let Some(step) = settings
            .time_status_step
            .filter(|s| !s.is_zero() && !s.is_negative())
        {
            let weak = Arc::downgrade(&self.inner);
            let publisher = TimeStatusPublisher::new(
                step.as_delta(),
                settings.time_status_init,
                move |tick| {
                    let Some(inner) = weak.upgrade() else { return };
                    let app = Application { inner };
                    let mut status =
                        TimeStatus::new(app.inner.name.clone(), tick.sim_time, tick.wallclock);
                    status.description = app.inner.description.clone();
                    let body = status.to_json();
                    app.queue_message("status.time", body);
                },
            )?;
            self.inner.simulator.add_observer(Arc::new(publisher));
        }
        Ok(())
    }

    /// Wait until shutdown has begun (by [`shut_down`](Self::shut_down),
    /// a signal, or TERMINATED with `shut_down_when_terminated`); it may
    /// still be flushing and closing. See also [`closing`](Self::closing).
    pub async fn shutting_down(&self) {
        self.inner.closing.cancelled().await;
    }

    /// Wait until shutdown has finished: messages flushed, queues removed,
    /// connection closed, token renewal stopped.
    pub async fn closed(&self) {
        self.inner.shut.cancelled().await;
    }

    fn shut_down_on_signals(&self) {
        let app = self.clone();
        tokio::spawn(async move {
            // Listening from the start, so a second signal that comes
            // right after the first is not missed.
            let mut signals = Signals::new();
            tokio::select! {
                _ = signals.next() => {}
                _ = app.shutting_down() => return,
            }
            tracing::info!(target: "nost_app", "signal received; shutting down (a second signal exits at once)");
            tokio::select! {
                _ = app.shut_down() => {}
                _ = signals.next() => {
                    tracing::warn!(target: "nost_app", "second signal; exiting without finishing the shutdown (exit status 130)");
                    std::process::exit(130);
                }
            }
        });
    }
}

/// SIGINT and SIGTERM, listened to from creation on.
struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next SIGINT or SIGTERM.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        if s.recv().await.is_none() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = recv(&mut self.int) => {}
                _ = recv(&mut self.term) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

enum Failure {
    Error(HandlerError),
    Panic(String),
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// The crate's one poison-ignoring lock (a panicking user callback must not
/// take the application down).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The mode from the YAML, the credentials (given or from `.env`) and the
/// tokens handed to `start_up`; refused before any I/O when invalid.
pub(crate) fn detect_mode(config: &Config, auth: &AuthInputs) -> Result<AuthMode, AppError> {
    let credentials = match &auth.credentials {
        Some(c) => c.clone(),
        None => Credentials::from_env(&auth.env_file)?,
    };
    let tokens = Tokens {
        access_token: auth.access_token.clone(),
        refresh_token: auth.refresh_token.clone(),
    };
    Ok(AuthMode::detect(
        config.servers.rabbitmq.keycloak_authentication,
        &credentials,
        &tokens,
    )?)
}
