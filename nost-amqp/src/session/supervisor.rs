//! The supervisor: reconnects after a loss and pushes renewed tokens.

use std::sync::Arc;
use std::time::Duration;

use nost_config::{ExposeSecret, SecretString};
use tokio::sync::{mpsc, watch};

use crate::conn::{push_renewed, renewed};

use super::connect::open;
use super::{Inner, SessionEvent};
use crate::error::AmqpError;
use crate::settings::Login;
use crate::token::TokenFailure;

use crate::jitter::backoff;

/// Resolves when the session's token source fails for good; never in
/// basic mode.
async fn token_failed(inner: &Inner) -> TokenFailure {
    match &inner.settings.login {
        Login::Token(src) => src.failed().await,
        Login::Password { .. } => std::future::pending().await,
    }
}

/// The token source's failure for good, if it failed.
fn token_failure(inner: &Inner) -> Option<TokenFailure> {
    match &inner.settings.login {
        Login::Token(src) => src.failure(),
        Login::Password { .. } => None,
    }
}

/// A fatal token outcome: from now on `publish` fails with it; reported
/// once.
fn report_failure(inner: &Inner, failure: &TokenFailure) {
    tracing::error!(target: "nost_amqp", error = %failure, "no new access token can come; new messages are refused and a lost connection is not reopened");
    inner
        .outbox
        .refuse_new(AmqpError::TokenFailed(failure.clone()));
    let _ = inner.events.send(SessionEvent::TokenFailed {
        failure: failure.clone(),
    });
}

/// Reconnects after losses and pushes renewed tokens. `tokens` was
/// subscribed before the first connection took its token, so a token
/// renewed while a handshake was in progress is pushed right after it.
pub(super) async fn supervise(
    inner: Arc<Inner>,
    mut broken: mpsc::UnboundedReceiver<(u64, AmqpError)>,
    mut tokens: Option<watch::Receiver<SecretString>>,
) {
    let mut generation = 1u64;
    // The token the live connection carries.
    let mut carried = inner.live.borrow().as_ref().and_then(|l| l.secret.clone());
    let mut failure: Option<TokenFailure> = None;
    loop {
        let reason = tokio::select! {
            _ = inner.cancel.cancelled() => return,
            msg = broken.recv() => match msg {
                Some((g, reason)) if g == generation => reason,
                Some(_) => continue,
                None => return,
            },
            f = token_failed(&inner), if failure.is_none() => {
                report_failure(&inner, &f);
                failure = Some(f);
                continue;
            }
            token = renewed(&mut tokens) => {
                let live = inner.live.borrow().clone();
                let Some(live) = live else { continue };
                if carried.as_ref().is_some_and(|c| c.expose_secret() == token.expose_secret()) {
                    // The connection logged in with this very token.
                    continue;
                }
                match push_renewed(&live.conn, &token, &inner.settings, &inner.events, "own").await {
                    Ok(()) => {
                        carried = Some(token);
                        continue;
                    }
                    Err(error) => error,
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
        // A cluster: the lost node may be gone for a while, try the next.
        inner.settings.next_node();
        tracing::warn!(target: "nost_amqp", %reason, next = %inner.settings.endpoint(), "connection to RabbitMQ lost; reconnecting");
        let _ = inner.events.send(SessionEvent::Disconnected { reason });
        let base = inner.settings.reconnect_delay();
        let mut attempt = 0u32;
        let mut delay = backoff(base, 1);
        loop {
            // The token source failed for good: no reconnect can log in, so
            // stop here instead of retrying forever.
            if failure.is_none()
                && let Some(f) = token_failure(&inner)
            {
                report_failure(&inner, &f);
                failure = Some(f);
            }
            if let Some(f) = &failure {
                tracing::error!(target: "nost_amqp", error = %f, "not reconnecting to RabbitMQ: no access token can come");
                inner.outbox.give_up();
                return;
            }
            tokio::select! {
                _ = inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
                f = token_failed(&inner), if failure.is_none() => {
                    report_failure(&inner, &f);
                    failure = Some(f);
                    continue;
                }
            }
            attempt += 1;
            generation += 1;
            // Not cancelled midway: a dropped half-open connection could stay
            // open at the broker. `open` is bounded by connection_timeout.
            match open(&inner, generation).await {
                Ok(live) => {
                    if inner.cancel.is_cancelled() {
                        // Shutdown began while this connection opened: it must not stay.
                        let _ = live.conn.close(200, "shutdown".into()).await;
                        return;
                    }
                    carried = live.secret.clone();
                    // Stale "broken" reports of older connections are dropped by generation.
                    inner.live.send_replace(Some(live));
                    inner.outbox.set_connected(true);
                    tracing::info!(target: "nost_amqp", attempt, url = %inner.settings.display_url(), "reconnected to RabbitMQ");
                    let _ = inner.events.send(SessionEvent::Connected { generation });
                    break;
                }
                Err(e) => {
                    inner.settings.next_node();
                    delay = backoff(base, attempt + 1);
                    tracing::warn!(target: "nost_amqp", attempt, error = %e, retry_in_s = delay.as_secs_f64(), "reconnect failed");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jitter::MAX_RECONNECT_DELAY;

    #[test]
    fn backoff_grows_exponentially_with_full_jitter_below_the_cap() {
        let base = Duration::from_secs(1);
        for attempt in 1..=10u32 {
            let ceiling = (base * 2u32.pow(attempt - 1)).min(MAX_RECONNECT_DELAY);
            let waits: Vec<Duration> = (0..200).map(|_| backoff(base, attempt)).collect();
            assert!(waits.iter().all(|w| *w < ceiling), "attempt {attempt}");
            // Full jitter: spread over the whole range, not in lockstep.
            let low = waits.iter().filter(|w| **w < ceiling / 4).count();
            let high = waits.iter().filter(|w| **w > ceiling * 3 / 4).count();
            assert!(
                low > 10 && high > 10,
                "attempt {attempt}: {low} low, {high} high"
            );
        }
        assert!(backoff(base, 40) < MAX_RECONNECT_DELAY);
    }
}
