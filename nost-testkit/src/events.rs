//! What a session of nost-amqp reported: waiting for one event, counting
//! the ones that matter to "nothing was disturbed".

use std::time::Duration;

use nost_amqp::{AmqpError, SessionEvent};
use tokio::sync::broadcast;

/// How long [`wait_for_event`] waits.
const WAIT_WITHIN: Duration = Duration::from_secs(60);

/// Counts of the events a session reported (see [`count_events`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EventCounts {
    /// `Connected` (a reconnect; the first connection is reported before
    /// anyone can subscribe).
    pub connected: usize,
    /// `Disconnected`.
    pub disconnected: usize,
    /// `ChannelReopened`.
    pub reopened: usize,
    /// `PublishRefused`.
    pub refused: usize,
    /// `SecretUpdated` (a renewed token reached the connection).
    pub secret_updated: usize,
    /// Why each connection was lost, for assertion messages.
    pub reasons: Vec<String>,
}

impl EventCounts {
    /// Panics unless exactly one message was refused and its channel
    /// reopened once, with no connection lost or regained: a refusal that
    /// stayed on its channel.
    #[track_caller]
    pub fn assert_one_refusal_kept_the_connection(&self) {
        assert_eq!(
            (
                self.connected,
                self.disconnected,
                self.refused,
                self.reopened
            ),
            (0, 0, 1, 1),
            "no connection loss, one refusal, one channel reopen: {self:?}"
        );
    }
}

/// Count what `events` holds now, without waiting.
pub fn count_events(events: &mut broadcast::Receiver<SessionEvent>) -> EventCounts {
    let mut c = EventCounts::default();
    while let Ok(e) = events.try_recv() {
        match e {
            SessionEvent::Connected { .. } => c.connected += 1,
            SessionEvent::Disconnected { reason } => {
                c.disconnected += 1;
                c.reasons.push(reason.to_string());
            }
            SessionEvent::ChannelReopened => c.reopened += 1,
            SessionEvent::PublishRefused { .. } => c.refused += 1,
            SessionEvent::SecretUpdated => c.secret_updated += 1,
            _ => {}
        }
    }
    c
}

/// Wait (a minute at the most, else panic naming `what`) for the first
/// event that `pick` picks something from.
pub async fn wait_for_event<T>(
    events: &mut broadcast::Receiver<SessionEvent>,
    what: &str,
    mut pick: impl FnMut(&SessionEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT_WITHIN, async {
        loop {
            match events.recv().await {
                Ok(e) => {
                    if let Some(t) = pick(&e) {
                        return t;
                    }
                }
                Err(e) => panic!("no {what} event: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} event within {WAIT_WITHIN:?}"))
}

/// Wait for the next `Disconnected`: why the connection was lost.
pub async fn wait_for_disconnect(events: &mut broadcast::Receiver<SessionEvent>) -> AmqpError {
    wait_for_event(events, "Disconnected", |e| match e {
        SessionEvent::Disconnected { reason } => Some(reason.clone()),
        _ => None,
    })
    .await
}
