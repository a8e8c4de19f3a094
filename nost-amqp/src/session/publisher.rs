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
//! - **A nack** is retried with backoff for the retry window
//!   ([`NackRetry`](crate::NackRetry), `servers.rabbitmq.nack_retry_window`)
//!   after its first nack, then refused. No reconnect. A message nacked
//!   for [`RENEW_AFTER`] on one channel gets a fresh channel (once its
//!   in-flight messages are settled): RabbitMQ 3.10 keeps nacking a
//!   channel whose quorum-queue state still points at a leader that died,
//!   long after the cluster elected a new one, while a new channel is
//!   accepted at once.
//! - **A connection loss** puts every unconfirmed message back at the front
//!   of the outbox for the next connection (at-least-once).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{Confirmation, PublisherConfirm};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Inner, Live, SessionEvent, err_of};
use crate::error::{AmqpError, Refusal};
use crate::outbox::Pending;

/// How many messages may wait for a publisher confirm at once.
const CONFIRM_WINDOW: usize = 512;
/// How long a message may be nacked on one channel before the channel is
/// renewed (see the module documentation).
const RENEW_AFTER: Duration = Duration::from_secs(5);
/// How long to wait for the outstanding confirms after a channel failed.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// Why one publish channel ended.
enum End {
    /// The broker closed the channel over a message: reopen it.
    Refused,
    /// The connection is gone or replaced; `Some` reports the loss.
    Connection(Option<AmqpError>),
    /// Nacks persisted on the channel: close it and open a new one.
    Renew,
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
    /// When the current channel was opened.
    opened: Option<Instant>,
    /// Nacks persisted on this channel: renew it once nothing is in flight.
    renew: bool,
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
                Err(e) => End::Connection(Some(AmqpError::ConnectionLost {
                    reason: format!("cannot open the publishing channel: {}", err_of(&inner, &e)),
                    source: Some(nost_config::Cause::new(e)),
                })),
            };
            match end {
                End::Refused => {
                    let _ = inner.events.send(SessionEvent::ChannelReopened);
                    continue;
                }
                End::Renew => continue,
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

/// Where one in-flight message is.
enum Stage {
    /// Queued for the socket or written; the broker's ack or nack is due.
    Confirming(PublisherConfirm),
    /// lapin refused the publish at once (the channel is closing): kept in
    /// its place so [`advance`] reports it in order.
    Failed(lapin::Error),
}

/// A message sent on the current channel and not yet confirmed.
struct Sent {
    p: Pending,
    stage: Stage,
}

/// Hand one message to lapin without waiting for its frames to be written.
///
/// `basic_publish` resolves only once lapin's I/O thread wrote the frames,
/// and only then hands out the confirm: awaiting that write cost a wake-up
/// of this task per message, on top of the one for the ack. The vendored
/// lapin's `basic_publish_queued` (see `vendor/lapin/PATCHED.md`) queues
/// the frames and returns the confirm at once; a write that fails later
/// fails the confirm, since lapin drops queued frames only when it tears
/// the channel or the connection down, and that rejects every pending
/// confirm. Calls follow the outbox order, so the delivery tags do too.
fn start_publish(inner: &Inner, channel: &lapin::Channel, p: Pending) -> Sent {
    let stage = match channel.basic_publish_queued(
        p.msg.exchange.as_str().into(),
        p.msg.routing_key.as_str().into(),
        BasicPublishOptions::default(),
        &p.msg.body,
        inner.props.basic(),
    ) {
        Ok(confirm) => Stage::Confirming(confirm),
        Err(e) => Stage::Failed(e),
    };
    Sent { p, stage }
}

/// What [`advance`] found at the front of the in-flight messages.
#[derive(Default)]
struct Settled {
    /// Confirmed, oldest first.
    acked: Vec<Pending>,
    /// Nacked, oldest first.
    nacked: Vec<Pending>,
    /// The channel failed: the front message (still in flight) and every
    /// one after it are unconfirmed.
    failed: Option<lapin::Error>,
}

/// Settle the in-flight messages from the front while their verdicts are
/// in; ready when at least one settled or the channel failed. Only the
/// front message registers a waker: one wake-up per run of confirms (the
/// broker acks with `multiple`), not one per message.
fn advance(inflight: &mut VecDeque<Sent>, cx: &mut Context<'_>) -> Poll<Settled> {
    let mut out = Settled::default();
    while let Some(front) = inflight.front_mut() {
        let verdict = match &mut front.stage {
            Stage::Failed(e) => Err(e.clone()),
            Stage::Confirming(confirm) => match Pin::new(confirm).poll(cx) {
                Poll::Ready(r) => r,
                Poll::Pending => break,
            },
        };
        match verdict {
            Ok(verdict) => {
                if let Some(sent) = inflight.pop_front() {
                    match verdict {
                        Confirmation::Nack(_) => out.nacked.push(sent.p),
                        _ => out.acked.push(sent.p),
                    }
                }
            }
            Err(e) => {
                out.failed = Some(e);
                break;
            }
        }
    }
    if out.acked.is_empty() && out.nacked.is_empty() && out.failed.is_none() {
        Poll::Pending
    } else {
        Poll::Ready(out)
    }
}

/// The first error among the verdicts after the front message (which
/// failed already), in order.
async fn first_error(inflight: &mut VecDeque<Sent>) -> Option<lapin::Error> {
    for sent in inflight.iter_mut().skip(1) {
        match &mut sent.stage {
            Stage::Failed(e) => return Some(e.clone()),
            Stage::Confirming(confirm) => {
                if let Err(e) = confirm.await {
                    return Some(e);
                }
            }
        }
    }
    None
}

/// Hand the settled messages to the outbox (one update for the lot) and
/// the nacked ones to the retry list; the failure, if any.
fn settle(inner: &Inner, carry: &mut Carry, s: Settled) -> Option<lapin::Error> {
    carry.probe = carry.probe.saturating_sub(s.acked.len() + s.nacked.len());
    for p in s.acked.iter().filter(|p| p.nacks > 0) {
        let after = p.first_nack.map(|t| t.elapsed()).unwrap_or_default();
        tracing::debug!(target: "nost_amqp", exchange = %p.msg.exchange, routing_key = %p.msg.routing_key, nacks = p.nacks, after_ms = after.as_millis() as u64, "a nacked message was confirmed on retry");
    }
    inner.outbox.settle_ok(s.acked);
    for p in s.nacked {
        nacked(inner, p, carry);
    }
    s.failed
}

/// A nack: retry after a backoff while the message is inside its retry
/// window (from its first nack), else refuse it. The last retry is due at
/// the window's end, so a window is used in full.
fn nacked(inner: &Inner, mut p: Pending, carry: &mut Carry) {
    let policy = inner.settings.nack_retry;
    let now = Instant::now();
    let first = *p.first_nack.get_or_insert(now);
    p.nacks += 1;
    let on_this_channel = carry
        .opened
        .map_or(Duration::ZERO, |t| now.duration_since(t));
    if now.duration_since(first) >= RENEW_AFTER && on_this_channel >= RENEW_AFTER && !carry.renew {
        tracing::warn!(target: "nost_amqp", exchange = %p.msg.exchange, routing_key = %p.msg.routing_key, since_first_nack_ms = now.duration_since(first).as_millis() as u64, "the broker keeps nacking on this publishing channel; renewing the channel");
        carry.renew = true;
    }
    let end = first + policy.window();
    if now >= end {
        let reason = format!(
            "the broker nacked it {} times over {:.1} s (retried with backoff for the nack retry window, servers.rabbitmq.nack_retry_window = {} s)",
            p.nacks,
            now.duration_since(first).as_secs_f64(),
            policy.window().as_secs_f64()
        );
        refuse(inner, p, None, reason);
        return;
    }
    let due = (now + policy.backoff(p.nacks)).min(end);
    // A failover nacks every message for seconds, dozens of times each:
    // one warning per message, the later retries at debug level.
    if p.nacks == 1 {
        tracing::warn!(target: "nost_amqp", exchange = %p.msg.exchange, routing_key = %p.msg.routing_key, window_s = policy.window().as_secs_f64(), "the broker nacked a message; retrying it with backoff");
    } else {
        tracing::debug!(target: "nost_amqp", exchange = %p.msg.exchange, routing_key = %p.msg.routing_key, attempt = p.nacks, since_first_nack_ms = now.duration_since(first).as_millis() as u64, "the broker nacked a message again; retrying it");
    }
    let at = carry.retries.partition_point(|(t, _)| *t <= due);
    carry.retries.insert(at, (due, p));
}

fn refuse(inner: &Inner, p: Pending, code: Option<u16>, reason: String) {
    let refusal = Refusal::new(&p.msg.exchange, &p.msg.routing_key, code, reason);
    tracing::error!(target: "nost_amqp", exchange = %refusal.exchange, routing_key = %refusal.routing_key, reason = %refusal.reason, hint = refusal.hint(), "message refused by the broker");
    let _ = inner.events.send(SessionEvent::PublishRefused {
        refusal: refusal.clone(),
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
    let mut inflight: VecDeque<Sent> = VecDeque::new();
    let mut batch: Vec<Pending> = Vec::with_capacity(CONFIRM_WINDOW);
    carry.opened = Some(Instant::now());
    carry.renew = false;
    let mut renew_by: Option<Instant> = None;
    // Wake once at the start: the outbox may hold messages already.
    inner.outbox.items.notify_one();
    let failure: lapin::Error = loop {
        if carry.renew {
            // Nothing new goes out; once the in-flight verdicts are in
            // (or after DRAIN_WAIT), close this channel for a new one.
            let by = *renew_by.get_or_insert_with(|| Instant::now() + DRAIN_WAIT);
            if inflight.is_empty() || Instant::now() >= by {
                inner
                    .outbox
                    .requeue_front(inflight.into_iter().map(|s| s.p));
                // The broker may take them now: retry on the new channel at once.
                let now = Instant::now();
                for (due, _) in carry.retries.iter_mut() {
                    *due = now;
                }
                let _ = tokio::time::timeout(
                    DRAIN_WAIT,
                    channel.close(
                        200,
                        "renewing the publishing channel after persistent nacks".into(),
                    ),
                )
                .await;
                return End::Renew;
            }
        }
        let window = if carry.probe > 0 { 1 } else { CONFIRM_WINDOW };
        let room = window.saturating_sub(inflight.len());
        let next_retry = carry.retries.front().map(|(t, _)| *t);
        // Nacked messages waiting for a retry count against the buffer's
        // limit: while they fill it, nothing new is taken (publishers wait,
        // as for a full buffer), so a long nack window cannot pile up
        // messages beyond `queue_max_size`.
        let fresh = room > 0 && !carry.renew && carry.retries.len() < inner.outbox.limit();
        let resend = next_retry.is_some() && room > 0 && !carry.renew;
        tokio::select! {
            biased;
            settled = std::future::poll_fn(|cx| advance(&mut inflight, cx)), if !inflight.is_empty() => {
                if let Some(e) = settle(inner, carry, settled) {
                    break e;
                }
            }
            _ = inner.cancel.cancelled() => return End::Shutdown,
            r = live_rx.changed() => {
                if r.is_err() || live_rx.borrow().as_ref().map(|l| l.generation) != Some(live.generation) {
                    inner.outbox.requeue_front(inflight.into_iter().map(|s| s.p));
                    return End::Connection(None);
                }
            }
            _ = tokio::time::sleep_until(renew_by.unwrap_or_else(Instant::now)), if renew_by.is_some() => {}
            _ = tokio::time::sleep_until(next_retry.unwrap_or_else(Instant::now)), if resend => {
                let now = Instant::now();
                while inflight.len() < window && carry.retries.front().is_some_and(|(t, _)| *t <= now) {
                    let Some((_, p)) = carry.retries.pop_front() else { break };
                    inflight.push_back(start_publish(inner, channel, p));
                }
            }
            _ = inner.outbox.items.notified(), if fresh => {
                // Send as much as the window allows; a publish that fails
                // stays in flight and `advance` reports it in order.
                batch.clear();
                inner.outbox.take_batch(room, &mut batch);
                for p in batch.drain(..) {
                    inflight.push_back(start_publish(inner, channel, p));
                }
                if inflight.len() >= window || inner.outbox.counts().0 > 0 {
                    // More to do: wake ourselves again.
                    inner.outbox.items.notify_one();
                }
            }
        }
    };

    // The channel failed. Every message before the failed one is settled
    // (`advance` goes in order); the failed one and all after it are
    // unconfirmed. When its error is not the broker's close (say, lapin
    // saw the channel closing first), the close comes with the verdicts
    // still due: wait for the first one that fails, for its reason.
    let mut cause = failure;
    if !matches!(cause.kind(), lapin::ErrorKind::ProtocolError(_))
        && let Ok(Some(e)) = tokio::time::timeout(DRAIN_WAIT, first_error(&mut inflight)).await
    {
        cause = e;
    }
    let channel_refusal = match cause.kind() {
        lapin::ErrorKind::ProtocolError(amqp)
            if super::connect::is_channel_error(&cause) && live.conn.status().connected() =>
        {
            Some((amqp.get_id(), amqp.get_message().to_string()))
        }
        _ => None,
    };
    let Some((code, reason)) = channel_refusal else {
        inner
            .outbox
            .requeue_front(inflight.into_iter().map(|s| s.p));
        return End::Connection(Some(err_of(inner, &cause)));
    };
    let mut inflight: VecDeque<Pending> = inflight.into_iter().map(|s| s.p).collect();
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
