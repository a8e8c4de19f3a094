//! A broker under a resource alarm blocks the connections that publish
//! (`connection.blocked`). On a node of our own (the alarm would stop every
//! other test on a shared broker), with RabbitMQ's memory alarm raised by
//! `set_vm_memory_high_watermark 0`: publishing waits, the block is
//! reported as an event, nothing is lost once it clears; a block longer than
//! `blocked_connection_timeout` ends the connection, naming the setting, and
//! the session comes back with every message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use nost_amqp::{
    BindingSpec, ConnectSettings, ExchangeSpec, Login, Outgoing, QueueSpec, Session, SessionEvent,
    Subscription,
};
use nost_config::{RabbitMqConfig, SecretString};
use nost_testkit::{BrokerOptions, OAuthBroker, unique};
use tokio::sync::broadcast;

async fn own_node() -> OAuthBroker {
    tokio::task::spawn_blocking(|| OAuthBroker::start(BrokerOptions::default()))
        .await
        .unwrap()
        .expect("a RabbitMQ node of this test")
}

fn settings(port: u16, name: &str, blocked_timeout: Option<u64>) -> ConnectSettings {
    let rabbitmq = RabbitMqConfig {
        host: "127.0.0.1".into(),
        port: u32::from(port),
        reconnect_delay: 1,
        connection_timeout: 10,
        blocked_connection_timeout: blocked_timeout,
        ..Default::default()
    };
    let mut s = ConnectSettings::new(
        rabbitmq,
        Login::Password {
            username: "guest".into(),
            password: SecretString::from("guest"),
        },
    );
    s.connection_name = name.to_owned();
    s
}

fn alarm(node: &OAuthBroker, on: bool) {
    let watermark = if on { "0" } else { "0.4" };
    node.rabbitmqctl(&["set_vm_memory_high_watermark", watermark])
        .unwrap();
}

/// A consumer on a connection of its own (consumers are not blocked).
async fn consumer(port: u16, exchange: &str) -> (Session, Subscription) {
    let s = Session::connect(settings(port, &format!("{exchange}-consumer"), None))
        .await
        .unwrap();
    s.declare_exchange(ExchangeSpec::nost(exchange))
        .await
        .unwrap();
    let queue = format!("{exchange}.q");
    s.declare_queue(QueueSpec {
        name: queue.clone(),
        durable: false,
        auto_delete: false,
        exclusive: false,
        quorum: false,
    })
    .await
    .unwrap();
    s.bind_queue(BindingSpec {
        queue: queue.clone(),
        exchange: exchange.into(),
        key: format!("{exchange}.#"),
    })
    .await
    .unwrap();
    let sub = s.consume(&queue, 500).await.unwrap();
    (s, sub)
}

async fn wait_for<T>(
    events: &mut broadcast::Receiver<SessionEvent>,
    what: &str,
    mut pick: impl FnMut(&SessionEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let e = events.recv().await.unwrap();
            if let Some(t) = pick(&e) {
                return t;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} event"))
}

async fn publish_range(session: &Session, exchange: &str, range: std::ops::Range<usize>) {
    for i in range {
        session
            .publish(Outgoing {
                exchange: exchange.to_owned(),
                routing_key: format!("{exchange}.sat.n"),
                body: i.to_string().into_bytes(),
            })
            .await
            .expect("accepted into the buffer");
    }
}

async fn collect(sub: &mut Subscription, want: usize) -> HashSet<usize> {
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < want {
        let Ok(Some(d)) = tokio::time::timeout_at(deadline, sub.recv()).await else {
            break;
        };
        seen.insert(std::str::from_utf8(&d.body).unwrap().parse().unwrap());
        d.ack().await.unwrap();
    }
    seen
}

#[tokio::test]
async fn a_blocked_broker_makes_publishing_wait_and_loses_nothing() {
    let mut node = own_node().await;
    let port = node.amqp_port();

    // Part 1: no limit. Publishing waits while blocked; nothing is lost.
    let exchange = unique("blocked");
    let (cons, mut sub) = consumer(port, &exchange).await;
    let session = Session::connect(settings(port, &exchange, None))
        .await
        .unwrap();
    let mut events = session.events();
    session
        .declare_exchange(ExchangeSpec::nost(&exchange))
        .await
        .unwrap();
    publish_range(&session, &exchange, 0..100).await;
    session.flush(Duration::from_secs(30)).await.unwrap();
    alarm(&node, true);
    publish_range(&session, &exchange, 100..300).await;
    let reason = wait_for(&mut events, "Blocked", |e| match e {
        SessionEvent::Blocked { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(!reason.is_empty());
    // While blocked, what was sent after the alarm is still waiting here.
    let (waiting, inflight) = session.pending();
    assert!(
        waiting + inflight > 0,
        "blocked: the messages wait in the session"
    );
    alarm(&node, false);
    wait_for(&mut events, "Unblocked", |e| {
        matches!(e, SessionEvent::Unblocked).then_some(())
    })
    .await;
    session.flush(Duration::from_secs(30)).await.unwrap();
    let seen = collect(&mut sub, 300).await;
    assert_eq!(seen, (0..300).collect::<HashSet<_>>(), "all 300 arrived");
    let mut lost = 0;
    while let Ok(e) = events.try_recv() {
        if matches!(e, SessionEvent::Disconnected { .. }) {
            lost += 1;
        }
    }
    assert_eq!(lost, 0, "no connection loss without a limit");
    session.shut_down(Duration::from_secs(5)).await;

    // Part 2: `blocked_connection_timeout: 2`. The block outlasts it: the
    // connection ends naming the setting; after the alarm clears the
    // session is back and every message arrives.
    let exchange2 = unique("blocked-limit");
    let (cons2, mut sub2) = consumer(port, &exchange2).await;
    let session = Session::connect(settings(port, &exchange2, Some(2)))
        .await
        .unwrap();
    let mut events = session.events();
    session
        .declare_exchange(ExchangeSpec::nost(&exchange2))
        .await
        .unwrap();
    alarm(&node, true);
    publish_range(&session, &exchange2, 0..50).await;
    wait_for(&mut events, "Blocked", |e| {
        matches!(e, SessionEvent::Blocked { .. }).then_some(())
    })
    .await;
    let reason = wait_for(&mut events, "Disconnected", |e| match e {
        SessionEvent::Disconnected { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(reason, nost_amqp::AmqpError::BlockedTooLong { .. })
            && reason.to_string().contains("blocked_connection_timeout"),
        "the loss names the setting: {reason}"
    );
    alarm(&node, false);
    session.flush(Duration::from_secs(60)).await.unwrap();
    let seen = collect(&mut sub2, 50).await;
    assert_eq!(seen, (0..50).collect::<HashSet<_>>(), "all 50 arrived");
    session.shut_down(Duration::from_secs(5)).await;
    cons.shut_down(Duration::from_secs(5)).await;
    cons2.shut_down(Duration::from_secs(5)).await;
    node.stop();
}
