//! What a session's own connection and a shared connection do alike:
//! the handshake, waiting for the connection to be up, and pushing renewed
//! tokens to it with `connection.update-secret`.

use std::time::Duration;

use lapin::Connect;
use nost_config::{ExposeSecret, SecretString};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::error::AmqpError;
use crate::session::SessionEvent;
use crate::settings::{ConnectSettings, Login};

/// How long `update-secret` may take before the connection is given up.
const UPDATE_SECRET_TIMEOUT: Duration = Duration::from_secs(10);

/// Open a bare connection to the current node, logging in with
/// `password`, bounded by `connection_timeout`.
pub(crate) async fn handshake(
    s: &ConnectSettings,
    password: &SecretString,
) -> Result<lapin::Connection, AmqpError> {
    let uri = s.uri(password)?;
    let tls = s.tls_config()?;
    let rt = lapin::runtime::default_runtime().map_err(|e| {
        AmqpError::from_lapin(&e, &s.endpoint(), &s.rabbitmq.virtual_host, s.uses_token())
    })?;
    let timeout = s.connection_timeout();
    tokio::time::timeout(timeout, uri.connect_with_config(s.properties(), tls, rt))
        .await
        .map_err(|_| AmqpError::ConnectTimeout {
            endpoint: s.endpoint(),
            timeout,
        })?
        .map_err(|e| AmqpError::from_handshake(&e, s))
}

/// The value `live` holds once it is `Some` and `up`, waiting up to `wait`
/// for it: [`AmqpError::Shutdown`] when `cancel` fires first (or the
/// sender is gone), [`AmqpError::NotConnected`] with `timed_out`'s words
/// when `wait` passes.
pub(crate) async fn wait_until_up<T: Clone>(
    live: &watch::Sender<Option<T>>,
    cancel: &CancellationToken,
    wait: Duration,
    mut up: impl FnMut(&T) -> bool,
    timed_out: impl FnOnce(Duration) -> String,
) -> Result<T, AmqpError> {
    let mut rx = live.subscribe();
    let found = tokio::select! {
        biased;
        r = tokio::time::timeout(wait, rx.wait_for(|l| l.as_ref().is_some_and(&mut up))) => r,
        _ = cancel.cancelled() => return Err(AmqpError::Shutdown),
    };
    match found {
        Ok(Ok(l)) => l.clone().ok_or(AmqpError::Shutdown),
        Ok(Err(_)) => Err(AmqpError::Shutdown),
        Err(_) => Err(AmqpError::NotConnected {
            reason: timed_out(wait),
        }),
    }
}

/// The renewed tokens of a Keycloak login, the current one marked seen;
/// `None` in basic mode.
pub(crate) fn token_feed(login: &Login) -> Option<watch::Receiver<SecretString>> {
    match login {
        Login::Token(src) => {
            let mut rx = src.subscribe();
            rx.borrow_and_update();
            Some(rx)
        }
        Login::Password { .. } => None,
    }
}

/// The next renewed token; never resolves without a feed or once it is
/// gone. Cancel-safe.
pub(crate) async fn renewed(feed: &mut Option<watch::Receiver<SecretString>>) -> SecretString {
    loop {
        match feed.as_mut() {
            Some(rx) => match rx.changed().await {
                Ok(()) => return rx.borrow_and_update().clone(),
                Err(_) => *feed = None,
            },
            None => std::future::pending().await,
        }
    }
}

/// Send `token` on `conn` with `update-secret`, bounded by 10 s.
pub(crate) async fn push_secret(
    conn: &lapin::Connection,
    token: &SecretString,
    s: &ConnectSettings,
) -> Result<(), AmqpError> {
    let update = conn.update_secret(token.expose_secret().into(), "secret".into());
    match tokio::time::timeout(UPDATE_SECRET_TIMEOUT, update).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(AmqpError::from_update_secret(
            &e,
            &s.endpoint(),
            &s.rabbitmq.virtual_host,
        )),
        Err(_) => Err(AmqpError::SecretUpdateTimeout {
            timeout: UPDATE_SECRET_TIMEOUT,
        }),
    }
}

/// Send a renewed `token` on `conn` (see [`push_secret`]) and report it:
/// [`SessionEvent::SecretUpdated`], or [`SessionEvent::SecretUpdateFailed`]
/// with the error, which the caller answers by reconnecting. `connection`
/// names the connection in the log (`own`, `shared`).
pub(crate) async fn push_renewed(
    conn: &lapin::Connection,
    token: &SecretString,
    s: &ConnectSettings,
    events: &broadcast::Sender<SessionEvent>,
    connection: &'static str,
) -> Result<(), AmqpError> {
    match push_secret(conn, token, s).await {
        Ok(()) => {
            tracing::info!(target: "nost_amqp", connection, "renewed token sent to RabbitMQ (update-secret)");
            let _ = events.send(SessionEvent::SecretUpdated);
            Ok(())
        }
        Err(error) => {
            tracing::warn!(target: "nost_amqp", connection, %error, "update-secret failed; reconnecting with the current token");
            let _ = events.send(SessionEvent::SecretUpdateFailed {
                error: error.clone(),
            });
            Err(error)
        }
    }
}
