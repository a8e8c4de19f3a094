//! Confirm wake-ups in batches: one timer for many publishers.
//!
//! The broker acks each channel's messages separately, so on a shared
//! connection of many sessions (or under load, when acks trickle in) every
//! ack woke a publisher task from lapin's I/O thread: a cross-thread wake
//! and a context switch per message, the largest cost of a constellation
//! after lapin's own. Instead, a publisher waiting for a confirm hands
//! lapin a [`Flag`] waker: lapin's wake only puts the publisher on the
//! [`ConfirmTicker`]'s list, and the ticker's one task wakes everything on
//! it every [`TICK`] (from a tokio worker, no cross-thread hand-over per
//! message). A confirm is seen at most one tick (~1–2 ms) later; order,
//! verdicts and failure handling are the publisher's, unchanged.
//!
//! The ticker's task starts with the first confirm waited for. When
//! nothing arrives for [`IDLE_TICKS`] ticks it parks (no timer runs while
//! everything is quiet); the next wake unparks it and is handled at once.
//! Once the ticker is stopped (its owner shut down), wakes go straight to
//! the publisher.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::outbox::lock;

/// How often the ticker hands the gathered wakes on.
const TICK: Duration = Duration::from_millis(1);
/// Empty ticks before the ticker parks.
const IDLE_TICKS: u32 = 16;

/// One task that wakes many publishers per tick.
pub(crate) struct ConfirmTicker {
    ready: Mutex<Vec<Arc<Flag>>>,
    /// The task waits for [`ConfirmTicker::unpark`].
    parked: AtomicBool,
    /// The task has ended: wake directly.
    stopped: AtomicBool,
    unpark: Notify,
    /// The task was spawned.
    started: AtomicBool,
    /// Ends the task.
    cancel: CancellationToken,
}

impl ConfirmTicker {
    /// A ticker whose task (spawned when first needed) runs until `cancel`.
    pub(crate) fn new(cancel: CancellationToken) -> Arc<ConfirmTicker> {
        Arc::new(ConfirmTicker {
            ready: Mutex::new(Vec::new()),
            parked: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            unpark: Notify::new(),
            started: AtomicBool::new(false),
            cancel,
        })
    }

    /// Spawn the task on the current runtime, once.
    fn ensure_started(self: &Arc<Self>) {
        if !self.started.load(Ordering::Relaxed) && !self.started.swap(true, Ordering::SeqCst) {
            tokio::spawn(run(self.clone()));
        }
    }

    /// A publisher's flag on this ticker.
    pub(crate) fn flag(self: &Arc<Self>) -> Arc<Flag> {
        Arc::new(Flag {
            armed: AtomicBool::new(false),
            task: AtomicWaker::new(),
            ticker: self.clone(),
        })
    }

    /// Wake everything on the list; how many.
    fn wake_ready(&self) -> usize {
        let ready = std::mem::take(&mut *lock(&self.ready));
        let n = ready.len();
        for f in ready {
            f.task.wake();
        }
        n
    }
}

async fn run(t: Arc<ConfirmTicker>) {
    let cancel = t.cancel.clone();
    let mut idle = 0;
    loop {
        if t.wake_ready() == 0 {
            idle += 1;
        } else {
            idle = 0;
        }
        if idle >= IDLE_TICKS {
            idle = 0;
            t.parked.store(true, Ordering::SeqCst);
            // A wake that came before `parked` was set is on the list.
            if !lock(&t.ready).is_empty() && t.parked.swap(false, Ordering::SeqCst) {
                continue;
            }
            tokio::select! {
                _ = t.unpark.notified() => continue,
                _ = cancel.cancelled() => break,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = cancel.cancelled() => break,
        }
    }
    t.stopped.store(true, Ordering::SeqCst);
    t.wake_ready();
}

/// The waker a publisher gives lapin while it waits for a confirm.
pub(crate) struct Flag {
    /// Set while the publisher waits; a wake clears it and lists the flag
    /// once.
    armed: AtomicBool,
    /// The publisher task.
    task: AtomicWaker,
    ticker: Arc<ConfirmTicker>,
}

impl Flag {
    /// Poll `f` with this flag as the waker, on behalf of the task of `cx`.
    pub(crate) fn poll<T>(
        self: &Arc<Self>,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        self.ticker.ensure_started();
        self.task.register(cx.waker());
        // Armed before the poll: a wake during it is not lost.
        self.armed.store(true, Ordering::SeqCst);
        let waker = Waker::from(self.clone());
        let out = f(&mut Context::from_waker(&waker));
        if out.is_ready() {
            self.armed.store(false, Ordering::SeqCst);
        }
        out
    }
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.armed.swap(false, Ordering::SeqCst) {
            return;
        }
        let t = &self.ticker;
        if t.stopped.load(Ordering::SeqCst) {
            self.task.wake();
            return;
        }
        lock(&t.ready).push(self.clone());
        if t.parked.swap(false, Ordering::SeqCst) {
            t.unpark.notify_one();
        }
        // The ticker may have stopped meanwhile: then it may not see the
        // list again.
        if t.stopped.load(Ordering::SeqCst) {
            t.wake_ready();
        }
    }
}
