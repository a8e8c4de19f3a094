//! Stories of a connection that loses nothing, on the default broker
//! (127.0.0.1:5672, guest/guest).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use nost_amqp::{AmqpError, ConnectSettings, ExchangeSpec, Login, Outgoing, Session, SessionEvent};
use nost_config::SecretString;
use nost_testkit::{
    Proxy, close_connections_named, declare_bound_queue, local_settings_with, rabbitmqctl, unique,
    wait_for_disconnect,
};

fn settings(port: u16, name: &str, queue_max_size: usize) -> ConnectSettings {
    local_settings_with(name, |r| {
        r.port = u32::from(port);
        r.queue_max_size = queue_max_size;
    })
}

fn msg(exchange: &str, seq: usize) -> Outgoing {
    Outgoing {
        exchange: exchange.into(),
        routing_key: format!("{exchange}.app.seq"),
        body: seq.to_string().into_bytes(),
    }
}

#[tokio::test]
async fn an_application_publishes_and_consumes_on_the_local_broker() {
    let name = unique("basic");
    let session = Session::connect(settings(5672, &name, 100)).await.unwrap();
    declare_bound_queue(
        &session,
        &name,
        &format!("{name}.q"),
        &format!("{name}.*.seq"),
    )
    .await;
    let mut sub = session.consume(&format!("{name}.q"), 10).await.unwrap();
    session.publish(msg(&name, 7)).await.unwrap();
    let d = tokio::time::timeout(Duration::from_secs(10), sub.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.body, b"7");
    assert_eq!(d.routing_key, format!("{name}.app.seq"));
    d.ack().await.unwrap();
    session.delete_queue(&format!("{name}.q")).await.unwrap();
    session.shut_down(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn ten_thousand_messages_survive_ten_forced_closes_in_order() {
    let name = unique("closes");
    let queue = format!("{name}.q");
    let session = Session::connect(settings(5672, &name, 20_000))
        .await
        .unwrap();
    declare_bound_queue(&session, &name, &queue, &format!("{name}.#")).await;
    let mut sub = session.consume(&queue, 500).await.unwrap();
    let mut events = session.events();
    let reconnects = tokio::spawn(async move {
        let mut n = 0;
        loop {
            match events.recv().await {
                Ok(SessionEvent::Connected { .. }) => n += 1,
                Ok(SessionEvent::ShutDown)
                | Err(tokio::sync::broadcast::error::RecvError::Closed) => return n,
                _ => {}
            }
        }
    });

    const N: usize = 10_000;
    let publisher = {
        let session = session.clone();
        let name = name.clone();
        tokio::spawn(async move {
            for i in 0..N {
                session.publish(msg(&name, i)).await.expect("publish");
                if i % 100 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let closer = {
        let name = name.clone();
        tokio::spawn(async move {
            let mut closed = 0;
            while closed < 10 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let n = tokio::task::spawn_blocking({
                    let name = name.clone();
                    move || close_connections_named(&name)
                })
                .await
                .unwrap();
                closed += n;
            }
            closed
        })
    };

    // Consume until every sequence number was seen at least once.
    let mut seen = HashSet::new();
    let mut first_order = Vec::with_capacity(N);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    while seen.len() < N {
        let d = tokio::time::timeout_at(deadline, sub.recv())
            .await
            .expect("all messages within the deadline")
            .expect("the subscription survives the closes");
        let seq: usize = std::str::from_utf8(&d.body).unwrap().parse().unwrap();
        if seen.insert(seq) {
            first_order.push(seq);
        }
        let _ = d.ack().await; // an ack on a closed channel fails; the broker redelivers
    }
    publisher.await.unwrap();
    let closes = closer.await.unwrap();
    assert!(closes >= 10, "{closes} closes");
    // At-least-once: duplicates are allowed, but every message arrived and
    // the first arrival of each is in publishing order.
    assert_eq!(first_order, (0..N).collect::<Vec<_>>());
    session.delete_queue(&queue).await.unwrap();
    session.shut_down(Duration::from_secs(5)).await;
    let reconnects = reconnects.await.unwrap();
    assert!(reconnects >= 10, "{reconnects} reconnects");
}

#[tokio::test]
async fn a_full_buffer_refuses_the_next_message_and_keeps_the_rest_in_order() {
    const LIMIT: usize = 50;
    let name = unique("buffer");
    let queue = format!("{name}.q");
    // The consumer talks to the broker directly; the publisher through a proxy we cut.
    let direct = Session::connect(settings(5672, &format!("{name}-consumer"), 100))
        .await
        .unwrap();
    declare_bound_queue(&direct, &name, &queue, &format!("{name}.#")).await;
    let mut sub = direct.consume(&queue, 100).await.unwrap();

    let proxy = Proxy::to_default_node().await;
    let session = Session::connect(settings(proxy.port(), &name, LIMIT))
        .await
        .unwrap();
    session
        .declare_exchange(ExchangeSpec::nost(&name))
        .await
        .unwrap();
    let mut events = session.events();
    proxy.cut().await;
    wait_for_disconnect(&mut events).await;
    assert!(!session.is_connected());
    for i in 0..LIMIT {
        session.publish(msg(&name, i)).await.unwrap();
    }
    let refused = session.publish(msg(&name, LIMIT)).await.unwrap_err();
    assert!(
        matches!(refused, AmqpError::BufferFull { limit: LIMIT }),
        "{refused:?}"
    );
    let text = refused.to_string();
    assert!(
        text.contains("queue_max_size") && text.contains("50"),
        "{text}"
    );

    proxy.restore();
    let mut got = Vec::new();
    while got.len() < LIMIT {
        let d = tokio::time::timeout(Duration::from_secs(90), sub.recv())
            .await
            .expect("buffered messages arrive after the broker returns")
            .unwrap();
        got.push(
            String::from_utf8(d.body.clone())
                .unwrap()
                .parse::<usize>()
                .unwrap(),
        );
        d.ack().await.unwrap();
    }
    assert_eq!(got, (0..LIMIT).collect::<Vec<_>>());
    // The refused one was never sent.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), sub.recv())
            .await
            .is_err(),
        "nothing beyond the limit arrives"
    );
    session.shut_down(Duration::from_secs(5)).await;
    direct.delete_queue(&queue).await.unwrap();
    direct.shut_down(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn shutdown_closes_cleanly_and_never_reconnects() {
    let name = unique("shutdown");
    let queue = format!("{name}.q");
    let session = Session::connect(settings(5672, &name, 100)).await.unwrap();
    declare_bound_queue(&session, &name, &queue, &format!("{name}.#")).await;
    let mut sub = session.consume(&queue, 10).await.unwrap();
    let consumers = || rabbitmqctl(&["list_consumers", "-q", "--no-table-headers", "queue_name"]);
    assert!(consumers().lines().any(|l| l.trim() == queue));
    let mut events = session.events();

    session.shut_down(Duration::from_secs(5)).await;

    assert!(!session.is_connected());
    assert!(sub.recv().await.is_none(), "the subscription ends");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert!(
        matches!(seen.as_slice(), [SessionEvent::ShutDown]),
        "no reconnect after an intentional shutdown: {seen:?}"
    );
    assert!(
        !consumers().lines().any(|l| l.trim() == queue),
        "no leftover consumer"
    );
    let conns = rabbitmqctl(&[
        "list_connections",
        "-q",
        "--no-table-headers",
        "client_properties",
    ]);
    assert!(!conns.contains(&name), "no leftover connection");
    assert!(matches!(
        session.publish(msg(&name, 1)).await,
        Err(AmqpError::Shutdown)
    ));
    rabbitmqctl(&["delete_queue", &queue]);
}

#[tokio::test]
async fn an_unreachable_broker_is_a_clear_error_not_a_hang() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = Session::connect(settings(port, "nobody", 10))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(matches!(err, AmqpError::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn wrong_basic_credentials_are_refused_with_a_hint() {
    let mut s = settings(5672, "wrongpw", 10);
    s.login = Login::Password {
        username: "guest".into(),
        password: SecretString::from("not-the-password-XYZ"),
    };
    let err = Session::connect(s).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, AmqpError::LoginRefused { .. }), "{err:?}");
    assert!(text.contains("USERNAME and PASSWORD"), "{text}");
    assert!(!text.contains("not-the-password-XYZ"), "{text}");
}
