//! Outgoing and incoming messages.

use std::collections::BTreeMap;

use lapin::BasicProperties;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use lapin::types::{AMQPValue, FieldTable};
use nost_config::RabbitMqConfig;

/// A message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Exchange (the NOS-T prefix).
    pub exchange: String,
    /// Routing key (`PREFIX.APP.TOPIC`).
    pub routing_key: String,
    /// Body (UTF-8 JSON for NOS-T messages).
    pub body: Vec<u8>,
}

/// The message properties `nost_tools` attaches: only those configured in
/// `servers.rabbitmq` (none by default). `timestamp` is sent as whole
/// seconds, which AMQP requires (in `nost_tools` it breaks publishing).
#[derive(Debug, Clone, Default)]
pub struct MessageProperties(BasicProperties);

impl MessageProperties {
    /// The properties configured in `servers.rabbitmq`.
    pub fn from_config(r: &RabbitMqConfig) -> Self {
        let mut p = BasicProperties::default();
        if let Some(v) = &r.content_type {
            p = p.with_content_type(v.as_str().into());
        }
        if let Some(v) = &r.content_encoding {
            p = p.with_content_encoding(v.as_str().into());
        }
        if let Some(h) = &r.headers {
            p = p.with_headers(headers(h));
        }
        if let Some(v) = r.delivery_mode {
            p = p.with_delivery_mode(v);
        }
        if let Some(v) = r.priority {
            p = p.with_priority(v);
        }
        if let Some(v) = &r.correlation_id {
            p = p.with_correlation_id(v.as_str().into());
        }
        if let Some(v) = &r.reply_to {
            p = p.with_reply_to(v.as_str().into());
        }
        if let Some(v) = &r.message_expiration {
            p = p.with_expiration(v.as_str().into());
        }
        if let Some(v) = &r.message_id {
            p = p.with_message_id(v.as_str().into());
        }
        if let Some(t) = r.timestamp {
            p = p.with_timestamp(u64::try_from(t.timestamp()).unwrap_or(0));
        }
        if let Some(v) = &r.message_type {
            p = p.with_type(v.as_str().into());
        }
        if let Some(v) = &r.user_id {
            p = p.with_user_id(v.as_str().into());
        }
        if let Some(v) = &r.app_id {
            p = p.with_app_id(v.as_str().into());
        }
        if let Some(v) = &r.cluster_id {
            p = p.with_cluster_id(v.as_str().into());
        }
        MessageProperties(p)
    }

    pub(crate) fn basic(&self) -> BasicProperties {
        self.0.clone()
    }
}

fn headers(h: &BTreeMap<String, String>) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in h {
        t.insert(k.as_str().into(), AMQPValue::LongString(v.as_str().into()));
    }
    t
}

/// A message received from a subscription. Ack or reject it; dropping it
/// without either leaves it unacknowledged until the connection closes.
#[derive(Debug)]
pub struct Delivery {
    /// Exchange it was published to.
    pub exchange: String,
    /// Its routing key.
    pub routing_key: String,
    /// Its body.
    pub body: Vec<u8>,
    /// Whether the broker delivered it before.
    pub redelivered: bool,
    /// Its properties.
    pub properties: BasicProperties,
    acker: lapin::Acker,
}

impl Delivery {
    pub(crate) fn from_lapin(d: lapin::message::Delivery) -> Self {
        Delivery {
            exchange: d.exchange.to_string(),
            routing_key: d.routing_key.to_string(),
            body: d.data,
            redelivered: d.redelivered,
            properties: d.properties,
            acker: d.acker,
        }
    }

    /// Acknowledge this one message (never `multiple`).
    pub async fn ack(&self) -> Result<(), crate::AmqpError> {
        self.acker
            .ack(BasicAckOptions { multiple: false })
            .await
            .map(|_| ())
            .map_err(|e| crate::AmqpError::Other(e.to_string()))
    }

    /// Reject it; `requeue: false` drops (or dead-letters) it, which is what
    /// a malformed message needs to avoid an endless redelivery loop.
    pub async fn reject(&self, requeue: bool) -> Result<(), crate::AmqpError> {
        self.acker
            .reject(BasicRejectOptions { requeue })
            .await
            .map(|_| ())
            .map_err(|e| crate::AmqpError::Other(e.to_string()))
    }
}
