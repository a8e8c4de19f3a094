//! The publisher: sends the outbox in order, with publisher confirms, on a
//! channel of its own.
//!
//! Every message ends confirmed or refused:
//!
//! - **A refusal** (the broker closes the channel with 403, 404 or 406 over
//!   one publish) fails only that message. The broker names the routing key
//!   (topic permissions) or the exchange in its reason, so the message is
//!   found among the unconfirmed ones; every other unconfirmed message is
//!   re-published, in order, on a reopened channel. The connection stays.
//!   When the reason names no message (a 406 on a property), the
//!   unconfirmed messages are re-sent one at a time until the broker
//!   refuses one again: then that one is known.
//! - **A nack** is retried [`MAX_NACK_RETRIES`] times with backoff, then
//!   refused. No reconnect.
//! - **A connection loss** puts every unconfirmed message back at the front
//!   of the outbox for the next connection (at-least-once).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{Confirmation, PublisherConfirm};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Inner, Live, SessionEvent, err_of};
use crate::error::Refusal;
use crate::outbox::Pending;

/// How many messages may wait for a publisher confirm at once.
const CONFIRM_WINDOW: usize = 512;
/// How often a nacked message is published again before it is refused.
pub const MAX_NACK_RETRIES: u32 = 3;
/// The pause before the first retry of a nacked message; doubles each time.
const NACK_BACKOFF: Duration = Duration::from_millis(200);
/// How long to wait for the outstanding confirms after a channel failed.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// Why one publish channel ended.
enum End {
    /// The broker closed the channel over a message: reopen it.
    Refused,
    /// The connection is gone or replaced; `Some` reports the loss.
    Connection(Option<String>),
    /// The session shuts down.
    Shutdown,
}

/// What the publisher carries from one channel to the next.
#[derive(Default)]
struct Carry {
    /// Nacked messages waiting for their retry, earliest first.
    retries: VecDeque<(Instant, Pending)>,
    /// While > 0, one message at a time (finding which one the broker refuses).
    probe: usize,
}

pub(super) async fn publisher(inner: Arc<Inner>) {
    let mut live_rx = inner.live.subscribe();
    let mut carry = Carry::default();
    'connection: loop {
        // Wait for a live connection.
        let live = loop {
            if inner.cancel.is_cancelled() {
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
        loop {
            let end = match open_channel(&live).await {
                Ok(channel) => run(&inner, &live, &channel, &mut live_rx, &mut carry).await,
                Err(e) => End::Connection(Some(format!(
                    "cannot open the publishing channel: {}",
                    err_of(&inner, &e)
                ))),
            };
            match end {
                End::Refused => {
                    let _ = inner.events.send(SessionEvent::ChannelReopened);
                    continue;
                }
                End::Shutdown => return,
                End::Connection(reason) => {
                    if let Some(reason) = reason {
                        let _ = inner.broken.send((live.generation, reason));
                    }
                    // Wait until this connection is replaced.
                    while live_rx.borrow().as_ref().map(|l| l.generation) == Some(live.generation) {
                        tokio::select! {
                            r = live_rx.changed() => if r.is_err() { return },
                            _ = inner.cancel.cancelled() => return,
                        }
                    }
                    continue 'connection;
                }
            }
        }
    }
}

async fn open_channel(live: &Live) -> lapin::Result<lapin::Channel> {
    let channel = live.conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

async fn publish(
    inner: &Inner,
    channel: &lapin::Channel,
    p: &Pending,
) -> lapin::Result<PublisherConfirm> {
    channel
        .basic_publish(
            p.msg.exchange.as_str().into(),
            p.msg.routing_key.as_str().into(),
            BasicPublishOptions::default(),
            &p.msg.body,
            inner.props.basic(),
        )
        .await
}

/// A nack: retry later, or refuse after the last retry.
fn nacked(inner: &Inner, mut p: Pending, carry: &mut Carry) {
    p.nacks += 1;
    if p.nacks > MAX_NACK_RETRIES {
        let reason = format!(
            "the broker nacked it {} times (retried {MAX_NACK_RETRIES} times with backoff)",
            p.nacks
        );
        refuse(inner, p, None, reason);
        return;
    }
    let due = Instant::now() + NACK_BACKOFF * (1u32 << (p.nacks - 1));
    tracing::warn!(target: "nost_amqp", exchange = %p.msg.exchange, routing_key = %p.msg.routing_key, attempt = p.nacks, "the broker nacked a message; retrying it");
    let at = carry.retries.partition_point(|(t, _)| *t <= due);
    carry.retries.insert(at, (due, p));
}

fn refuse(inner: &Inner, p: Pending, code: Option<u16>, reason: String) {
    let refusal = Refusal::new(&p.msg.exchange, &p.msg.routing_key, code, reason);
    tracing::error!(target: "nost_amqp", exchange = %refusal.exchange, routing_key = %refusal.routing_key, reason = %refusal.reason, hint = refusal.hint(), "message refused by the broker");
    let _ = inner.events.send(SessionEvent::PublishRefused {
        exchange: refusal.exchange.clone(),
        routing_key: refusal.routing_key.clone(),
        error: refusal.to_string(),
    });
    inner.outbox.settle_refused(p, refusal);
}

/// The one unconfirmed message a channel close names: by routing key and
/// exchange for a topic refusal (`… topic 'KEY' in exchange 'X' …`), by
/// exchange otherwise (`… exchange 'X' …`).
fn culprit(inflight: &VecDeque<Pending>, reason: &str) -> Option<usize> {
    let names_exchange = |p: &Pending| reason.contains(&format!("exchange '{}'", p.msg.exchange));
    if reason.contains("topic '") {
        inflight.iter().position(|p| {
            names_exchange(p) && reason.contains(&format!("topic '{}'", p.msg.routing_key))
        })
    } else {
        inflight.iter().position(names_exchange)
    }
}

/// Publish on one channel until it fails, the connection changes or the
/// session shuts down.
async fn run(
    inner: &Arc<Inner>,
    live: &Live,
    channel: &lapin::Channel,
    live_rx: &mut watch::Receiver<Option<Live>>,
    carry: &mut Carry,
) -> End {
    let mut inflight: VecDeque<Pending> = VecDeque::new();
    let mut confirms = FuturesOrdered::new();
    let mut batch: Vec<Pending> = Vec::with_capacity(CONFIRM_WINDOW);
    // Wake once at the start: the outbox may hold messages already.
    inner.outbox.items.notify_one();
    let failure: lapin::Error = loop {
        let window = if carry.probe > 0 { 1 } else { CONFIRM_WINDOW };
        let room = window.saturating_sub(inflight.len());
        let next_retry = carry.retries.front().map(|(t, _)| *t);
        tokio::select! {
            biased;
            Some(res) = confirms.next(), if !confirms.is_empty() => {
                // Take every confirm that is already in: one outbox update
                // for the lot.
                let mut acked = Vec::new();
                let mut failed = None;
                let mut next = Some(res);
                while let Some(res) = next {
                    match res {
                        Ok(Confirmation::Nack(_)) => {
                            if let Some(p) = inflight.pop_front() {
                                nacked(inner, p, carry);
                            }
                        }
                        Ok(_) => acked.extend(inflight.pop_front()),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                    carry.probe = carry.probe.saturating_sub(1);
                    next = confirms.next().now_or_never().flatten();
                }
                inner.outbox.settle_ok(acked);
                if let Some(e) = failed {
                    break e;
                }
            }
            _ = inner.cancel.cancelled() => return End::Shutdown,
            r = live_rx.changed() => {
                if r.is_err() || live_rx.borrow().as_ref().map(|l| l.generation) != Some(live.generation) {
                    inner.outbox.requeue_front(inflight.into_iter());
                    return End::Connection(None);
                }
            }
            _ = tokio::time::sleep_until(next_retry.unwrap_or_else(Instant::now)), if next_retry.is_some() && room > 0 => {
                let now = Instant::now();
                let mut failed = None;
                while inflight.len() < window && carry.retries.front().is_some_and(|(t, _)| *t <= now) {
                    let Some((_, p)) = carry.retries.pop_front() else { break };
                    let res = publish(inner, channel, &p).await;
                    inflight.push_back(p);
                    match res {
                        Ok(c) => confirms.push_back(c),
                        Err(e) => { failed = Some(e); break; }
                    }
                }
                if let Some(e) = failed {
                    break e;
                }
            }
            _ = inner.outbox.items.notified(), if room > 0 => {
                // Send as much as the window allows.
                let mut failed = None;
                batch.clear();
                inner.outbox.take_batch(room, &mut batch);
                let mut msgs = batch.drain(..);
                for p in msgs.by_ref() {
                    let res = publish(inner, channel, &p).await;
                    inflight.push_back(p);
                    match res {
                        Ok(c) => confirms.push_back(c),
                        Err(e) => { failed = Some(e); break; }
                    }
                }
                // Taken but not sent (a failure): back to the front; the
                // unconfirmed go before them below.
                let unsent: Vec<Pending> = msgs.collect();
                if !unsent.is_empty() {
                    inner.outbox.requeue_front(unsent.into_iter());
                }
                if inflight.len() >= window || inner.outbox.counts().0 > 0 {
                    // More to do: wake ourselves again.
                    inner.outbox.items.notify_one();
                }
                if let Some(e) = failed {
                    break e;
                }
            }
        }
    };

    // The channel failed. Collect the confirms that came in before the
    // failure (in order), up to the first error: that error is the broker's
    // close, and every message still in `inflight` is unconfirmed.
    let mut cause = failure;
    let mut acked = Vec::new();
    if !matches!(cause.kind(), lapin::ErrorKind::ProtocolError(_)) {
        while let Ok(Some(res)) = tokio::time::timeout(DRAIN_WAIT, confirms.next()).await {
            match res {
                Ok(Confirmation::Nack(_)) => {
                    if let Some(p) = inflight.pop_front() {
                        nacked(inner, p, carry);
                    }
                }
                Ok(_) => acked.extend(inflight.pop_front()),
                Err(e) => {
                    cause = e;
                    break;
                }
            }
        }
    }
    inner.outbox.settle_ok(acked);
    let channel_refusal = match cause.kind() {
        lapin::ErrorKind::ProtocolError(amqp)
            if super::connect::is_channel_error(&cause) && live.conn.status().connected() =>
        {
            Some((amqp.get_id(), amqp.get_message().to_string()))
        }
        _ => None,
    };
    let Some((code, reason)) = channel_refusal else {
        inner.outbox.requeue_front(inflight.into_iter());
        return End::Connection(Some(err_of(inner, &cause).to_string()));
    };
    let found = if carry.probe > 0 {
        (!inflight.is_empty()).then_some(0)
    } else {
        culprit(&inflight, &reason)
    };
    match found.and_then(|i| inflight.remove(i)) {
        Some(p) => {
            carry.probe = 0;
            refuse(inner, p, Some(code), reason);
        }
        None => {
            tracing::warn!(target: "nost_amqp", %reason, unconfirmed = inflight.len(), "the broker closed the publishing channel without naming the message; re-sending the unconfirmed ones one at a time to find it");
            carry.probe = inflight.len();
        }
    }
    inner.outbox.requeue_front(inflight.into_iter());
    End::Refused
}
