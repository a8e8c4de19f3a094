//! The ordered buffer between `publish` and the broker.
//!
//! While connected, a full buffer makes `publish` wait (back-pressure);
//! while disconnected it refuses at once with [`AmqpError::BufferFull`], so
//! nothing is ever dropped silently. Messages sent but not yet confirmed go
//! back to the front, in order, when a connection or channel drops.
//!
//! Every message ends confirmed or refused. A refusal goes to the message's
//! [`Confirm`] handle when it has a live one, else into the log that the
//! next `flush` reports.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use tokio::sync::{Notify, oneshot};

use crate::error::{AmqpError, Refusal};
use crate::message::Outgoing;

/// A message on its way, with whoever waits for its verdict.
pub(crate) struct Pending {
    pub(crate) msg: Outgoing,
    verdict: Option<oneshot::Sender<Result<(), AmqpError>>>,
    /// How often the broker nacked it so far.
    pub(crate) nacks: u32,
    /// When the broker first nacked it (the retry window starts there).
    pub(crate) first_nack: Option<tokio::time::Instant>,
}

impl Pending {
    pub(crate) fn new(msg: Outgoing) -> Pending {
        Pending {
            msg,
            verdict: None,
            nacks: 0,
            first_nack: None,
        }
    }

    pub(crate) fn tracked(msg: Outgoing) -> (Pending, Confirm) {
        let (tx, rx) = oneshot::channel();
        (
            Pending {
                msg,
                verdict: Some(tx),
                nacks: 0,
                first_nack: None,
            },
            Confirm { rx },
        )
    }
}

/// The broker's verdict on one message, to await: `Ok(())` once the broker
/// confirmed it, [`AmqpError::PublishRefused`] when it refused it, or
/// [`AmqpError::Shutdown`] when the session ended before a verdict.
///
/// Dropping the handle is fine: a refusal is then reported by the next
/// [`Session::flush`](crate::Session::flush) instead.
#[derive(Debug)]
#[must_use = "a Confirm does nothing unless awaited; drop it to leave the verdict to flush()"]
pub struct Confirm {
    rx: oneshot::Receiver<Result<(), AmqpError>>,
}

impl Future for Confirm {
    type Output = Result<(), AmqpError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(AmqpError::Shutdown)))
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    inflight: usize,
    connected: bool,
    closed: bool,
    refused: Vec<Refusal>,
    /// The token source failed for good: new messages get this error.
    failed: Option<AmqpError>,
    /// Messages given up for it since the last `take_lost`.
    lost: usize,
}

pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Something to send, or the state changed.
    pub(crate) items: Notify,
    /// Room in the queue, or everything settled.
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

    /// `queue_max_size`.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) async fn push(&self, msg: Pending) -> Result<(), AmqpError> {
        let mut msg = Some(msg);
        loop {
            let wait = self.progress.notified();
            {
                let mut s = self.lock();
                if s.closed {
                    return Err(AmqpError::Shutdown);
                }
                if let Some(e) = &s.failed {
                    return Err(e.clone());
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
    pub(crate) fn take_batch(&self, max: usize, out: &mut Vec<Pending>) {
        let mut s = self.lock();
        let n = max.min(s.queue.len());
        out.extend(s.queue.drain(..n));
        s.inflight += n;
        drop(s);
        if n > 0 {
            self.progress.notify_waiters();
        }
    }

    /// `n` in-flight messages were confirmed.
    pub(crate) fn confirmed(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut s = self.lock();
        s.inflight = s.inflight.saturating_sub(n);
        drop(s);
        self.progress.notify_waiters();
    }

    /// Tell each waiting handle its message was confirmed.
    pub(crate) fn settle_ok(&self, done: impl IntoIterator<Item = Pending>) {
        let mut n = 0;
        for p in done {
            n += 1;
            if let Some(tx) = p.verdict {
                let _ = tx.send(Ok(()));
            }
        }
        self.confirmed(n);
    }

    /// An in-flight message was refused: its handle learns why, or the
    /// next `flush` does.
    pub(crate) fn settle_refused(&self, p: Pending, refusal: Refusal) {
        let unseen = match p.verdict {
            Some(tx) => tx
                .send(Err(AmqpError::PublishRefused(Box::new(refusal.clone()))))
                .is_err(),
            None => true,
        };
        let mut s = self.lock();
        if unseen {
            s.refused.push(refusal);
        }
        s.inflight = s.inflight.saturating_sub(1);
        drop(s);
        self.progress.notify_waiters();
    }

    /// Refusals not reported to a handle since the last call.
    pub(crate) fn take_refused(&self) -> Vec<Refusal> {
        std::mem::take(&mut self.lock().refused)
    }

    /// Unconfirmed messages go back to the front, oldest first (or fail at
    /// once when the session gave up for good, see [`Outbox::give_up`]).
    pub(crate) fn requeue_front(&self, msgs: impl DoubleEndedIterator<Item = Pending>) {
        let mut s = self.lock();
        if !s.connected
            && let Some(e) = s.failed.clone()
        {
            drop(s);
            let lost = fail_each(msgs, &e);
            let mut s = self.lock();
            s.lost += lost;
            s.inflight = s.inflight.saturating_sub(lost);
            drop(s);
            self.progress.notify_waiters();
            return;
        }
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

    /// No more messages; what is still waiting gets [`AmqpError::Shutdown`]
    /// as its verdict (dropping the senders does that).
    pub(crate) fn close(&self) {
        let left: Vec<Pending> = {
            let mut s = self.lock();
            s.closed = true;
            s.queue.drain(..).collect()
        };
        drop(left);
        self.items.notify_one();
        self.progress.notify_waiters();
    }

    /// From now on `publish` fails with `error` (the token source failed
    /// for good); what is already queued still goes out while connected.
    pub(crate) fn refuse_new(&self, error: AmqpError) {
        self.lock().failed = Some(error);
        self.progress.notify_waiters();
    }

    /// No connection will come again: every waiting message fails with
    /// the error given to [`Outbox::refuse_new`] (its handle learns it, the
    /// next `flush` reports it).
    pub(crate) fn give_up(&self) {
        let (left, error) = {
            let mut s = self.lock();
            (s.queue.drain(..).collect::<Vec<_>>(), s.failed.clone())
        };
        let error = error.unwrap_or(AmqpError::Shutdown);
        let lost = fail_each(left.into_iter(), &error);
        self.lock().lost += lost;
        self.progress.notify_waiters();
    }

    /// The error and the number of messages given up since the last call.
    pub(crate) fn take_lost(&self) -> Option<(AmqpError, usize)> {
        let mut s = self.lock();
        let n = std::mem::take(&mut s.lost);
        s.failed.clone().filter(|_| n > 0).map(|e| (e, n))
    }

    /// (waiting, in flight)
    pub(crate) fn counts(&self) -> (usize, usize) {
        let s = self.lock();
        (s.queue.len(), s.inflight)
    }
}

/// Give each message `error` as its verdict; returns how many.
fn fail_each(msgs: impl Iterator<Item = Pending>, error: &AmqpError) -> usize {
    let mut n = 0;
    for p in msgs {
        n += 1;
        if let Some(tx) = p.verdict {
            let _ = tx.send(Err(error.clone()));
        }
    }
    n
}

/// The crate's one poison-ignoring lock: a panic while a guard was held
/// (a user callback, never our own code) does not take the session down.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
