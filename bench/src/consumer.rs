//! The independent consumer: a raw lapin connection that counts (and, when
//! asked, timestamps) what arrives on a NOS-T topic exchange.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::{Notify, mpsc};

/// Counts deliveries on `PREFIX` with a binding key; optionally sends each
/// body with its arrival time.
pub struct Consumer {
    conn: Connection,
    count: Arc<AtomicUsize>,
    arrived: Arc<Notify>,
}

impl Consumer {
    /// Declare the prefix exchange as every NOS-T peer does (topic, durable,
    /// auto-delete), an exclusive queue bound with `key`, and consume
    /// without acknowledgements.
    pub async fn start(
        uri: AMQPUri,
        prefix: &str,
        key: &str,
        bodies: Option<mpsc::UnboundedSender<(Instant, Vec<u8>)>>,
    ) -> Result<Consumer> {
        let conn = Connection::connect_uri(uri, ConnectionProperties::default())
            .await
            .context("consumer connection")?;
        let ch = conn.create_channel().await?;
        ch.exchange_declare(
            prefix.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
        let q = ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        ch.queue_bind(
            q.name().clone(),
            prefix.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        let mut deliveries = ch
            .basic_consume(
                q.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let count = Arc::new(AtomicUsize::new(0));
        let arrived = Arc::new(Notify::new());
        let (c, a) = (count.clone(), arrived.clone());
        tokio::spawn(async move {
            while let Some(Ok(d)) = deliveries.next().await {
                if let Some(tx) = &bodies {
                    let _ = tx.send((Instant::now(), d.data));
                }
                c.fetch_add(1, Ordering::Release);
                a.notify_waiters();
            }
        });
        Ok(Consumer {
            conn,
            count,
            arrived,
        })
    }

    /// Messages received so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Wait until `n` messages have arrived; fails when none arrives for `idle`.
    pub async fn wait_for(&self, n: usize, idle: Duration) -> Result<Instant> {
        loop {
            let notified = self.arrived.notified();
            let have = self.count();
            if have >= n {
                return Ok(Instant::now());
            }
            if tokio::time::timeout(idle, notified).await.is_err() {
                let now = self.count();
                if now == have {
                    bail!("the consumer stopped at {now} of {n} messages ({idle:?} without one)");
                }
            }
        }
    }

    /// Close the connection.
    pub async fn close(self) {
        let _ = self.conn.close(200, "bench done".into()).await;
    }
}

/// `amqp://USER:PASSWORD@127.0.0.1:PORT/%2f`.
pub fn local_uri(port: u16, user: &str, password: &str) -> AMQPUri {
    let mut uri = AMQPUri::default();
    uri.authority.host = "127.0.0.1".into();
    uri.authority.port = port;
    uri.authority.userinfo.username = user.to_owned();
    uri.authority.userinfo.password = password.to_owned();
    uri
}
