//! What a session declares, recorded so that every reconnect restores it.

use lapin::ExchangeKind;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::AMQPValue;

use super::consumer::ConsumerSpec;
use crate::settings::{BindingSpec, ExchangeSpec, QueueSpec, no_args};

/// Exchanges, queues, bindings and consumers, in declaration order.
#[derive(Default)]
pub(super) struct Topology {
    pub(super) exchanges: Vec<ExchangeSpec>,
    pub(super) queues: Vec<QueueSpec>,
    pub(super) bindings: Vec<BindingSpec>,
    pub(super) consumers: Vec<ConsumerSpec>,
}

pub(super) async fn declare_exchange(ch: &lapin::Channel, s: &ExchangeSpec) -> lapin::Result<()> {
    let kind = match s.kind.as_str() {
        "topic" => ExchangeKind::Topic,
        "direct" => ExchangeKind::Direct,
        "fanout" => ExchangeKind::Fanout,
        "headers" => ExchangeKind::Headers,
        other => ExchangeKind::Custom(other.into()),
    };
    let opts = ExchangeDeclareOptions {
        durable: s.durable,
        auto_delete: s.auto_delete,
        ..Default::default()
    };
    ch.exchange_declare(s.name.as_str().into(), kind, opts, no_args())
        .await
}

pub(super) async fn declare_queue(ch: &lapin::Channel, s: &QueueSpec) -> lapin::Result<()> {
    let opts = QueueDeclareOptions {
        durable: s.durable,
        auto_delete: s.auto_delete,
        exclusive: s.exclusive,
        ..Default::default()
    };
    let mut args = no_args();
    if s.quorum {
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
    }
    ch.queue_declare(s.name.as_str().into(), opts, args)
        .await
        .map(|_| ())
}

pub(super) async fn bind(ch: &lapin::Channel, b: &BindingSpec) -> lapin::Result<()> {
    ch.queue_bind(
        b.queue.as_str().into(),
        b.exchange.as_str().into(),
        b.key.as_str().into(),
        QueueBindOptions::default(),
        no_args(),
    )
    .await
}
