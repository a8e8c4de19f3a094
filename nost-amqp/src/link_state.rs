//! What state a session's connection is in, for the errors that have to
//! say why messages are still waiting: down, blocked by a resource alarm,
//! or up with the broker slow to confirm. lapin reports `connection.blocked`
//! only as an event, so the watcher of each connection records it here.

use std::sync::{Arc, Mutex};

/// Why buffered messages have not gone out or been confirmed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkState {
    /// No connection: a reconnect is under way.
    Disconnected,
    /// The broker blocked the connection (`connection.blocked`, a memory
    /// or disk alarm) with this reason.
    Blocked {
        /// The broker's reason, e.g. `low on memory`.
        reason: String,
    },
    /// The connection is up and not blocked; the broker has not
    /// confirmed yet.
    Connected,
}

impl LinkState {
    /// What the state means for the waiting messages and what to check.
    pub fn explain(&self) -> String {
        match self {
            LinkState::Disconnected => {
                "not connected to RabbitMQ; a reconnect is under way".to_owned()
            }
            LinkState::Blocked { reason } => format!(
                "RabbitMQ has blocked the connection ({reason}): a resource alarm (memory or disk) on the broker holds publishers until it clears; ask the broker's operator, or set servers.rabbitmq.blocked_connection_timeout to reconnect after a limit"
            ),
            LinkState::Connected => "the connection is up but the broker has not confirmed them yet (an overloaded broker, or a queue that cannot take them now, e.g. a quorum queue without a majority of its nodes)".to_owned(),
        }
    }
}

/// The `connection.blocked` reason of one connection while it is blocked;
/// clones share it.
#[derive(Clone, Default)]
pub(crate) struct BlockedFlag(Arc<Mutex<Option<String>>>);

impl BlockedFlag {
    pub(crate) fn set(&self, reason: Option<String>) {
        *crate::outbox::lock(&self.0) = reason;
    }

    pub(crate) fn reason(&self) -> Option<String> {
        crate::outbox::lock(&self.0).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_says_what_to_check() {
        assert!(LinkState::Disconnected.explain().contains("reconnect"));
        let blocked = LinkState::Blocked {
            reason: "low on memory".into(),
        }
        .explain();
        assert!(
            blocked.contains("low on memory") && blocked.contains("blocked_connection_timeout")
        );
        assert!(LinkState::Connected.explain().contains("not confirmed"));
    }

    #[test]
    fn the_flag_is_shared_by_clones() {
        let a = BlockedFlag::default();
        let b = a.clone();
        a.set(Some("low on disk".into()));
        assert_eq!(b.reason().as_deref(), Some("low on disk"));
        b.set(None);
        assert_eq!(a.reason(), None);
    }
}
