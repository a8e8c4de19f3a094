//! The ordered buffer between `publish` and the broker.
//!
//! While connected, a full buffer makes `publish` wait (back-pressure);
//! while disconnected it refuses at once with [`AmqpError::BufferFull`], so
//! nothing is ever dropped silently. Messages sent but not yet confirmed go
//! back to the front, in order, when a connection drops.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::error::AmqpError;
use crate::message::Outgoing;

#[derive(Default)]
struct State {
    queue: VecDeque<Outgoing>,
    inflight: usize,
    connected: bool,
    closed: bool,
}

pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Something to send, or the state changed.
    pub(crate) items: Notify,
    /// Room in the queue, or everything confirmed.
    pub(crate) progress: Notify,
    limit: usize,
}

impl Outbox {
    pub(crate) fn new(limit: usize) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            items: Notify::new(),
            progress: Notify::new(),
            limit: limit.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) async fn push(&self, msg: Outgoing) -> Result<(), AmqpError> {
        let mut msg = Some(msg);
        loop {
            let wait = self.progress.notified();
            {
                let mut s = self.lock();
                if s.closed {
                    return Err(AmqpError::Shutdown);
                }
                if s.queue.len() < self.limit {
                    let was_empty = s.queue.is_empty();
                    if let Some(m) = msg.take() {
                        s.queue.push_back(m);
                    }
                    drop(s);
                    // Only the first message wakes the sender: it takes
                    // whatever has queued up meanwhile, and wakes itself
                    // again while anything is left. A wake-up per message
                    // cost more CPU than the AMQP work at full rate.
                    if was_empty {
                        self.items.notify_one();
                    }
                    return Ok(());
                }
                if !s.connected {
                    return Err(AmqpError::BufferFull { limit: self.limit });
                }
            }
            wait.await;
        }
    }

    /// Up to `max` next messages into `out`, counted as in flight. One lock
    /// and one wake-up per batch, not per message: at full rate the
    /// per-message hand-over between producer and sender cost more CPU
    /// than the AMQP work.
    pub(crate) fn take_batch(&self, max: usize, out: &mut Vec<Outgoing>) {
        let mut s = self.lock();
        let n = max.min(s.queue.len());
        out.extend(s.queue.drain(..n));
        s.inflight += n;
        drop(s);
        if n > 0 {
            self.progress.notify_waiters();
        }
    }

    pub(crate) fn confirmed(&self, n: usize) {
        let mut s = self.lock();
        s.inflight = s.inflight.saturating_sub(n);
        drop(s);
        self.progress.notify_waiters();
    }

    /// Unconfirmed messages go back to the front, oldest first.
    pub(crate) fn requeue_front(&self, msgs: impl DoubleEndedIterator<Item = Outgoing>) {
        let mut s = self.lock();
        let mut n = 0;
        for m in msgs.rev() {
            s.queue.push_front(m);
            n += 1;
        }
        s.inflight = s.inflight.saturating_sub(n);
        drop(s);
        self.items.notify_one();
        self.progress.notify_waiters();
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.lock().connected = connected;
        self.items.notify_one();
        self.progress.notify_waiters();
    }

    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.items.notify_one();
        self.progress.notify_waiters();
    }

    /// (waiting, in flight)
    pub(crate) fn counts(&self) -> (usize, usize) {
        let s = self.lock();
        (s.queue.len(), s.inflight)
    }
}
