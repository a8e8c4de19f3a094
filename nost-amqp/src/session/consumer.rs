//! Consumers: lapin's deliveries forwarded to a [`Subscription`] that
//! outlives reconnects.

use std::sync::Arc;

use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Inner, Live, lock};
use crate::error::AmqpError;
use crate::message::Delivery;
use crate::settings::no_args;

/// One `consume` call, restored after every reconnect.
pub(super) struct ConsumerSpec {
    pub(super) id: u64,
    pub(super) queue: String,
    pub(super) prefetch: u16,
    pub(super) tx: mpsc::UnboundedSender<Delivery>,
    pub(super) stop: CancellationToken,
}

impl ConsumerSpec {
    /// The same consumer, for restoring it on a new connection.
    pub(super) fn again(&self) -> ConsumerSpec {
        ConsumerSpec {
            id: self.id,
            queue: self.queue.clone(),
            prefetch: self.prefetch,
            tx: self.tx.clone(),
            stop: self.stop.clone(),
        }
    }
}

/// Deliveries of one subscription; it survives reconnects.
#[derive(Debug)]
pub struct Subscription {
    pub(super) rx: mpsc::UnboundedReceiver<Delivery>,
    /// The queue consumed from.
    pub queue: String,
}

impl Subscription {
    /// The next delivery; `None` once the session is shut down or the
    /// queue was deleted.
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }
}

/// `basic.qos` + `basic.consume` on the connection's channel, and a task
/// that forwards each delivery (a loss of the consumer is reported to the
/// supervisor).
pub(super) async fn start_consumer(
    inner: &Arc<Inner>,
    live: &Live,
    spec: &ConsumerSpec,
) -> lapin::Result<()> {
    live.channel
        .basic_qos(spec.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = live
        .channel
        .basic_consume(
            spec.queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            no_args(),
        )
        .await?;
    lock(&inner.consumer_tags).insert(spec.id, (live.generation, consumer.tag().to_string()));
    let tx = spec.tx.clone();
    let stop = spec.stop.clone();
    let broken = inner.broken.clone();
    let generation = live.generation;
    let queue = spec.queue.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                item = consumer.next() => match item {
                    Some(Ok(d)) => {
                        if tx.send(Delivery::from_lapin(d)).is_err() {
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        let _ = broken.send((generation, AmqpError::ConsumerLost { queue, source: Some(nost_config::Cause::new(e)) }));
                        return;
                    }
                    None => {
                        if !stop.is_cancelled() {
                            let _ = broken.send((generation, AmqpError::ConsumerLost { queue, source: None }));
                        }
                        return;
                    }
                }
            }
        }
    });
    Ok(())
}
