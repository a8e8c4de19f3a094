//! Consuming on a session of nost-amqp in a test: a transient queue bound
//! to a NOS-T exchange, a consumer on a connection of its own, and the
//! distinct messages that arrived.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nost_amqp::{
    BindingSpec, ConnectSettings, Delivery, ExchangeSpec, QueueSpec, Session, Subscription,
};

/// How long [`collect_distinct`] waits for all it wants.
const COLLECT_WITHIN: Duration = Duration::from_secs(60);

/// A non-durable queue `name` that stays when its consumer goes.
pub fn transient_queue(name: &str) -> QueueSpec {
    QueueSpec {
        name: name.into(),
        durable: false,
        auto_delete: false,
        exclusive: false,
        quorum: false,
    }
}

/// Declare the NOS-T topic exchange `exchange` and a [`transient_queue`]
/// `queue` bound to it with `key`. Panics with the broker's reason.
pub async fn declare_bound_queue(session: &Session, exchange: &str, queue: &str, key: &str) {
    session
        .declare_exchange(ExchangeSpec::nost(exchange))
        .await
        .unwrap_or_else(|e| panic!("declare exchange {exchange}: {e}"));
    session
        .declare_queue(transient_queue(queue))
        .await
        .unwrap_or_else(|e| panic!("declare queue {queue}: {e}"));
    session
        .bind_queue(BindingSpec {
            queue: queue.into(),
            exchange: exchange.into(),
            key: key.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("bind {queue} to {exchange} with {key}: {e}"));
}

/// A consumer on a connection of its own: `queue` bound to `exchange` with
/// `key` (see [`declare_bound_queue`]), 500 unacknowledged at the most.
pub async fn consumer(
    settings: ConnectSettings,
    exchange: &str,
    queue: &str,
    key: &str,
) -> (Session, Subscription) {
    let session = Session::connect(settings)
        .await
        .unwrap_or_else(|e| panic!("the consumer connects: {e}"));
    declare_bound_queue(&session, exchange, queue, key).await;
    let sub = session
        .consume(queue, 500)
        .await
        .unwrap_or_else(|e| panic!("consume {queue}: {e}"));
    (session, sub)
}

/// Acknowledge deliveries and keep the distinct values `pick` reads from
/// them, until `want` are in or a minute has passed.
pub async fn collect_distinct<T: Eq + Hash>(
    sub: &mut Subscription,
    want: usize,
    mut pick: impl FnMut(&Delivery) -> T,
) -> HashSet<T> {
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + COLLECT_WITHIN;
    while seen.len() < want {
        let Ok(Some(d)) = tokio::time::timeout_at(deadline, sub.recv()).await else {
            break;
        };
        seen.insert(pick(&d));
        d.ack()
            .await
            .unwrap_or_else(|e| panic!("ack {}: {e}", d.routing_key));
    }
    seen
}

/// [`collect_distinct`] of bodies that are decimal numbers.
pub async fn collect_numbers(sub: &mut Subscription, want: usize) -> HashSet<usize> {
    collect_distinct(sub, want, body_number).await
}

/// The body of `d` read as a decimal number; panics if it is none.
pub fn body_number(d: &Delivery) -> usize {
    std::str::from_utf8(&d.body)
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("not a number: {:?}", String::from_utf8_lossy(&d.body)))
}

/// A message handler that only counts what it is given into `counter`
/// (for `Application::add_message_callback`).
pub fn count_into<M, E>(
    counter: &Arc<AtomicUsize>,
) -> impl Fn(M) -> std::future::Ready<Result<(), E>> + Send + Sync + 'static
where
    M: 'static,
    E: 'static,
{
    let counter = counter.clone();
    move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(()))
    }
}
