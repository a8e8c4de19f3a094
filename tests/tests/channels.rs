//! The YAML `channels` section on the local broker: its exchanges, and the
//! queues and bindings of the starting application, exist after `start_up`
//! (checked by passive declares and a routed message from raw lapin); the
//! queues go at shutdown; bad entries fail naming the field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use nost_app::{AppError, Application, StartOptions};
use nost_config::{Config, Credentials, Origin};
use nost_testkit::unique;

fn options() -> StartOptions {
    StartOptions {
        auth: Credentials::basic("guest", "guest").into(),
        set_offset: Some(false),
        ..Default::default()
    }
}

fn load(channels: &str) -> Config {
    nost_config::load_str(
        &format!(
            "servers:\n  rabbitmq:\n    host: \"127.0.0.1\"\nchannels:\n{channels}execution: {{}}\n"
        ),
        Origin::Program,
    )
    .unwrap()
    .config
}

async fn connect() -> Connection {
    Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        ConnectionProperties::default(),
    )
    .await
    .unwrap()
}

/// Whether a queue exists, and its message count (passive declare on a
/// channel of its own: a 404 closes that channel).
async fn queue(conn: &Connection, name: &str) -> Option<u32> {
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        name.into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .ok()
    .map(|q| q.message_count())
}

async fn exchange_exists(conn: &Connection, name: &str) -> bool {
    let ch = conn.create_channel().await.unwrap();
    ch.exchange_declare(
        name.into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .is_ok()
}

async fn delete_exchange(conn: &Connection, name: &str) {
    let ch = conn.create_channel().await.unwrap();
    let _ = ch
        .exchange_delete(name.into(), ExchangeDeleteOptions::default())
        .await;
}

#[tokio::test]
async fn start_up_declares_the_channels_and_shutdown_removes_its_queues() {
    let p = unique("chan");
    let (fires, events) = (format!("{p}-fires"), format!("{p}-events"));
    let (detected, reported, ground_q) = (
        format!("{p}.fire.detected"),
        format!("{p}.fire.reported"),
        format!("{p}.ground.in"),
    );
    let cfg = load(&format!(
        "  fire:\n    detected:\n      address: {detected}\n      description: AsyncAPI keys are accepted\n      bindings:\n        amqp:\n          is: routingKey\n          exchange:\n            name: {fires}\n            type: topic\n            durable: true\n            autoDelete: false\n    reported:\n      address: {reported}\n      bindings:\n        amqp:\n          exchange:\n            name: {events}\n            type: fanout\n            durable: false\n  ground:\n    in:\n      address: {ground_q}\n      bindings:\n        amqp:\n          exchange:\n            name: {fires}\n"
    ));
    let conn = connect().await;
    let app = Application::start_up("fire", &p, &cfg, options())
        .await
        .unwrap();

    assert!(exchange_exists(&conn, &fires).await, "exchange {fires}");
    assert!(exchange_exists(&conn, &events).await, "exchange {events}");
    assert_eq!(queue(&conn, &detected).await, Some(0), "queue {detected}");
    assert_eq!(queue(&conn, &reported).await, Some(0), "queue {reported}");
    assert_eq!(
        queue(&conn, &ground_q).await,
        None,
        "another application's queue is declared by that application"
    );

    // The bindings route: a message on each exchange lands in its queue.
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for (ex, key) in [(&fires, &detected), (&events, &"anything".to_owned())] {
        let c = ch
            .basic_publish(
                ex.as_str().into(),
                key.as_str().into(),
                BasicPublishOptions::default(),
                b"{}",
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(c.is_ack());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while queue(&conn, &detected).await != Some(1) || queue(&conn, &reported).await != Some(1) {
        assert!(
            Instant::now() < deadline,
            "messages not routed to the channel queues"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    app.shut_down().await;
    assert_eq!(queue(&conn, &detected).await, None, "deleted at shutdown");
    assert_eq!(queue(&conn, &reported).await, None, "deleted at shutdown");
    // Exchanges stay for the other applications of the run.
    assert!(exchange_exists(&conn, &fires).await);
    delete_exchange(&conn, &fires).await;
    delete_exchange(&conn, &events).await;
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn bad_entries_fail_naming_the_field() {
    // Refused by validation (also for a configuration changed in code).
    let mut cfg = load("");
    cfg.channels.insert(
        "fire".into(),
        serde_json::json!({"d": {"address": "q", "bindings": {"amqp": {"exchange": {"type": "fanot"}}}}}),
    );
    let err = Application::start_up("fire", &unique("chanbad"), &cfg, options())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("channels.fire.d.bindings.amqp.exchange.type") && err.contains("fanout"),
        "{err}"
    );

    // The run's prefix exchange with other flags would get a 406: refused up front.
    let p = unique("chanpre");
    let cfg = load(&format!(
        "  fire:\n    d:\n      address: {p}.q\n      bindings:\n        amqp:\n          exchange:\n            name: {p}\n"
    ));
    match Application::start_up("fire", &p, &cfg, options()).await {
        Err(AppError::Channel { path, reason, .. }) => {
            assert_eq!(path, "channels.fire.d.bindings.amqp.exchange");
            assert!(reason.contains("prefix exchange"), "{reason}");
        }
        other => panic!("expected a Channel error, got {other:?}"),
    }

    // Refused by the broker: the exchange exists with another type.
    let conn = connect().await;
    let p = unique("chanbroker");
    let ex = format!("{p}-ex");
    let ch = conn.create_channel().await.unwrap();
    ch.exchange_declare(
        ex.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let q = format!("{p}.q");
    let cfg = load(&format!(
        "  fire:\n    d:\n      address: {q}\n      bindings:\n        amqp:\n          exchange:\n            name: {ex}\n"
    ));
    match Application::start_up("fire", &p, &cfg, options()).await {
        Err(AppError::Channel {
            path,
            reason,
            source,
        }) => {
            assert_eq!(path, "channels.fire.d.bindings.amqp.exchange");
            assert!(reason.contains(&ex), "{reason}");
            // The broker's refusal stays reachable as the error's source.
            assert!(
                matches!(
                    source.as_deref(),
                    Some(nost_amqp::AmqpError::PreconditionFailed { .. })
                ),
                "{source:?}"
            );
        }
        other => panic!("expected a Channel error, got {other:?}"),
    }
    assert_eq!(queue(&conn, &q).await, None, "nothing left behind");
    delete_exchange(&conn, &ex).await;
    let _ = conn.close(200, "bye".into()).await;
}
