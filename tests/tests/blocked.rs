//! A broker under a resource alarm blocks the connections that publish
//! (`connection.blocked`). On a node of our own (the alarm would stop every
//! other test on a shared broker), with RabbitMQ's memory alarm raised by
//! `set_vm_memory_high_watermark 0`: publishing waits, the block is
//! reported as an event, nothing is lost once it clears; a block longer than
//! `blocked_connection_timeout` ends the connection, naming the setting, and
//! the session comes back with every message. A flush that runs out of
//! time says which it is: blocked, or (broker stopped) not connected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use nost_amqp::{
    AmqpError, ConnectSettings, ExchangeSpec, LinkState, Outgoing, Session, SessionEvent,
    Subscription,
};
use nost_testkit::{
    BrokerOptions, OAuthBroker, collect_numbers, count_events, local_settings_with, unique,
    wait_for_disconnect, wait_for_event,
};
use tokio::sync::broadcast;

async fn own_node() -> OAuthBroker {
    tokio::task::spawn_blocking(|| OAuthBroker::start(BrokerOptions::default()))
        .await
        .unwrap()
        .expect("a RabbitMQ node of this test")
}

fn settings(port: u16, name: &str, blocked_timeout: Option<u64>) -> ConnectSettings {
    local_settings_with(name, |r| {
        r.port = u32::from(port);
        r.blocked_connection_timeout = blocked_timeout;
    })
}

fn alarm(node: &OAuthBroker, on: bool) {
    let watermark = if on { "0" } else { "0.4" };
    node.rabbitmqctl(&["set_vm_memory_high_watermark", watermark])
        .unwrap();
}

/// A consumer on a connection of its own (consumers are not blocked).
async fn consumer(port: u16, exchange: &str) -> (Session, Subscription) {
    nost_testkit::consumer(
        settings(port, &format!("{exchange}-consumer"), None),
        exchange,
        &format!("{exchange}.q"),
        &format!("{exchange}.#"),
    )
    .await
}

/// A session that publishes to `exchange`, and its events.
async fn publisher(
    port: u16,
    exchange: &str,
    blocked_timeout: Option<u64>,
) -> (Session, broadcast::Receiver<SessionEvent>) {
    let session = Session::connect(settings(port, exchange, blocked_timeout))
        .await
        .unwrap();
    let events = session.events();
    session
        .declare_exchange(ExchangeSpec::nost(exchange))
        .await
        .unwrap();
    (session, events)
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

#[tokio::test]
async fn a_blocked_broker_makes_publishing_wait_and_loses_nothing() {
    let mut node = own_node().await;
    let port = node.amqp_port();

    // Part 1: no limit. Publishing waits while blocked; nothing is lost.
    let exchange = unique("blocked");
    let (cons, mut sub) = consumer(port, &exchange).await;
    let (session, mut events) = publisher(port, &exchange, None).await;
    publish_range(&session, &exchange, 0..100).await;
    session.flush(Duration::from_secs(30)).await.unwrap();
    alarm(&node, true);
    publish_range(&session, &exchange, 100..300).await;
    let reason = wait_for_event(&mut events, "Blocked", |e| match e {
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
    // A flush that runs out of time says the broker blocked the
    // connection (not "not connected") and what to do; nothing is dropped.
    let err = session.flush(Duration::from_secs(1)).await.unwrap_err();
    let text = err.to_string();
    match &err {
        AmqpError::FlushTimeout {
            waiting,
            unconfirmed,
            state: LinkState::Blocked { reason },
            ..
        } => {
            assert!(waiting + unconfirmed > 0, "{text}");
            assert!(!reason.is_empty(), "{text}");
        }
        other => panic!("expected a FlushTimeout naming the block, got {other:?}"),
    }
    assert!(
        text.contains("blocked the connection")
            && text.contains("blocked_connection_timeout")
            && text.contains("stay in the buffer")
            && !text.contains("not connected"),
        "{text}"
    );
    assert_eq!(
        session.link_state(),
        LinkState::Blocked {
            reason: reason.clone()
        }
    );
    alarm(&node, false);
    wait_for_event(&mut events, "Unblocked", |e| {
        matches!(e, SessionEvent::Unblocked).then_some(())
    })
    .await;
    session.flush(Duration::from_secs(30)).await.unwrap();
    assert_eq!(session.link_state(), LinkState::Connected);
    let seen = collect_numbers(&mut sub, 300).await;
    assert_eq!(seen, (0..300).collect::<HashSet<_>>(), "all 300 arrived");
    let c = count_events(&mut events);
    assert_eq!(
        c.disconnected, 0,
        "no connection loss without a limit: {c:?}"
    );
    session.shut_down(Duration::from_secs(5)).await;

    // Part 2: `blocked_connection_timeout: 2`. The block outlasts it: the
    // connection ends naming the setting; after the alarm clears the
    // session is back and every message arrives.
    let exchange2 = unique("blocked-limit");
    let (cons2, mut sub2) = consumer(port, &exchange2).await;
    let (session, mut events) = publisher(port, &exchange2, Some(2)).await;
    alarm(&node, true);
    publish_range(&session, &exchange2, 0..50).await;
    wait_for_event(&mut events, "Blocked", |e| {
        matches!(e, SessionEvent::Blocked { .. }).then_some(())
    })
    .await;
    let reason = wait_for_disconnect(&mut events).await;
    assert!(
        matches!(reason, nost_amqp::AmqpError::BlockedTooLong { .. })
            && reason.to_string().contains("blocked_connection_timeout"),
        "the loss names the setting: {reason}"
    );
    alarm(&node, false);
    session.flush(Duration::from_secs(60)).await.unwrap();
    let seen = collect_numbers(&mut sub2, 50).await;
    assert_eq!(seen, (0..50).collect::<HashSet<_>>(), "all 50 arrived");

    // Part 3: the broker stops. A flush that runs out of time says the
    // connection is down (not blocked); once the broker is back, the 50
    // published meanwhile arrive. The queue is the publishing session's
    // own: it re-declares it (a transient queue dies with the broker's
    // stop) before it publishes again, so no message can find it missing.
    let q3 = format!("{exchange2}.q3");
    nost_testkit::declare_bound_queue(&session, &exchange2, &q3, &format!("{exchange2}.#")).await;
    let mut sub3 = session.consume(&q3, 500).await.unwrap();
    node.rabbitmqctl(&["stop_app"]).unwrap();
    wait_for_disconnect(&mut events).await;
    publish_range(&session, &exchange2, 50..100).await;
    let err = session.flush(Duration::from_secs(1)).await.unwrap_err();
    assert!(
        matches!(
            &err,
            AmqpError::FlushTimeout { waiting, unconfirmed, state: LinkState::Disconnected, .. }
                if waiting + unconfirmed == 50
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("not connected to RabbitMQ"),
        "{err}"
    );
    node.rabbitmqctl(&["start_app"]).unwrap();
    session.flush(Duration::from_secs(90)).await.unwrap();
    let seen = collect_numbers(&mut sub3, 50).await;
    assert_eq!(
        seen,
        (50..100).collect::<HashSet<_>>(),
        "the 50 sent while down arrived"
    );
    session.shut_down(Duration::from_secs(5)).await;
    cons.shut_down(Duration::from_secs(5)).await;
    cons2.shut_down(Duration::from_secs(5)).await;
    node.stop();
}
