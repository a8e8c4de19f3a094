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

/// A header value as the broker delivered it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HeaderValue {
    /// A string (long or short).
    Text(String),
    /// Any integer type.
    Int(i64),
    /// `f32` or `f64`.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A timestamp, seconds since the epoch.
    Timestamp(u64),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<HeaderValue>),
    /// A nested table.
    Table(BTreeMap<String, HeaderValue>),
    /// No value.
    Void,
    /// A decimal or other value, as text.
    Other(String),
}

impl HeaderValue {
    fn from_amqp(v: &AMQPValue) -> Self {
        match v {
            AMQPValue::Boolean(b) => HeaderValue::Bool(*b),
            AMQPValue::ShortShortInt(i) => HeaderValue::Int(i64::from(*i)),
            AMQPValue::ShortShortUInt(i) => HeaderValue::Int(i64::from(*i)),
            AMQPValue::ShortInt(i) => HeaderValue::Int(i64::from(*i)),
            AMQPValue::ShortUInt(i) => HeaderValue::Int(i64::from(*i)),
            AMQPValue::LongInt(i) => HeaderValue::Int(i64::from(*i)),
            AMQPValue::LongUInt(i) => HeaderValue::Int(i64::from(*i)),
            AMQPValue::LongLongInt(i) => HeaderValue::Int(*i),
            AMQPValue::Float(f) => HeaderValue::Float(f64::from(*f)),
            AMQPValue::Double(f) => HeaderValue::Float(*f),
            AMQPValue::ShortString(s) => HeaderValue::Text(s.as_str().to_owned()),
            AMQPValue::LongString(s) => {
                HeaderValue::Text(String::from_utf8_lossy(s.as_bytes()).into_owned())
            }
            AMQPValue::FieldArray(a) => {
                HeaderValue::Array(a.as_slice().iter().map(HeaderValue::from_amqp).collect())
            }
            AMQPValue::Timestamp(t) => HeaderValue::Timestamp(*t),
            AMQPValue::FieldTable(t) => HeaderValue::Table(table(t)),
            AMQPValue::ByteArray(b) => HeaderValue::Bytes(b.as_slice().to_vec()),
            AMQPValue::Void => HeaderValue::Void,
            other => HeaderValue::Other(format!("{other:?}")),
        }
    }

    /// The text, when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::Text(s) => Some(s),
            _ => None,
        }
    }
}

fn table(t: &FieldTable) -> BTreeMap<String, HeaderValue> {
    t.inner()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), HeaderValue::from_amqp(v)))
        .collect()
}

/// The AMQP properties of a received message, as the publisher set them.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Properties {
    /// The body's MIME type (`content_type`), e.g. `application/json`.
    pub content_type: Option<String>,
    /// The body's encoding (`content_encoding`), e.g. `gzip`.
    pub content_encoding: Option<String>,
    /// Application headers.
    pub headers: BTreeMap<String, HeaderValue>,
    /// 1 transient, 2 persistent.
    pub delivery_mode: Option<u8>,
    /// `priority`, 0–9 (honoured by priority queues only).
    pub priority: Option<u8>,
    /// `correlation_id`: ties a reply to its request.
    pub correlation_id: Option<String>,
    /// `reply_to`: where a reply is expected (a queue name).
    pub reply_to: Option<String>,
    /// `expiration` (milliseconds, as text).
    pub expiration: Option<String>,
    /// `message_id`: with [`Delivery::redelivered`], spots duplicates.
    pub message_id: Option<String>,
    /// `timestamp`, seconds since the epoch.
    pub timestamp: Option<u64>,
    /// `type`: the application's name for the kind of message.
    pub message_type: Option<String>,
    /// `user_id` (the broker checks it against the login).
    pub user_id: Option<String>,
    /// `app_id`: the publishing application, as it names itself.
    pub app_id: Option<String>,
    /// `cluster_id` (deprecated in AMQP 0-9-1; passed through).
    pub cluster_id: Option<String>,
}

impl Properties {
    fn from_lapin(p: &BasicProperties) -> Self {
        let s = |v: &Option<lapin::types::ShortString>| v.as_ref().map(|v| v.as_str().to_owned());
        Properties {
            content_type: s(p.content_type()),
            content_encoding: s(p.content_encoding()),
            headers: p.headers().as_ref().map(table).unwrap_or_default(),
            delivery_mode: *p.delivery_mode(),
            priority: *p.priority(),
            correlation_id: s(p.correlation_id()),
            reply_to: s(p.reply_to()),
            expiration: s(p.expiration()),
            message_id: s(p.message_id()),
            timestamp: *p.timestamp(),
            message_type: s(p.kind()),
            user_id: s(p.user_id()),
            app_id: s(p.app_id()),
            cluster_id: s(p.cluster_id()),
        }
    }
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
    /// Whether the broker delivered it before (to this or another
    /// consumer): after a reconnect, a message may arrive twice.
    pub redelivered: bool,
    /// Its properties.
    pub properties: Properties,
    acker: lapin::Acker,
}

impl Delivery {
    pub(crate) fn from_lapin(d: lapin::message::Delivery) -> Self {
        Delivery {
            exchange: d.exchange.to_string(),
            routing_key: d.routing_key.to_string(),
            body: d.data,
            redelivered: d.redelivered,
            properties: Properties::from_lapin(&d.properties),
            acker: d.acker,
        }
    }

    /// Acknowledge this one message (never `multiple`).
    pub async fn ack(&self) -> Result<(), crate::AmqpError> {
        self.acker
            .ack(BasicAckOptions { multiple: false })
            .await
            .map(|_| ())
            .map_err(|e| crate::AmqpError::Other {
                reason: e.to_string(),
                source: nost_config::Cause::new(e),
            })
    }

    /// Reject it; `requeue: false` drops (or dead-letters) it, which is what
    /// a malformed message needs to avoid an endless redelivery loop.
    pub async fn reject(&self, requeue: bool) -> Result<(), crate::AmqpError> {
        self.acker
            .reject(BasicRejectOptions { requeue })
            .await
            .map(|_| ())
            .map_err(|e| crate::AmqpError::Other {
                reason: e.to_string(),
                source: nost_config::Cause::new(e),
            })
    }
}
