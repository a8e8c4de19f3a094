//! An application on the local broker: publish, subscribe with wildcards,
//! reject what it cannot read, and leave nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use nost_app::{AppError, Application, StartOptions};
use nost_config::{Config, Credentials};
use nost_testkit::{local_config, rabbitmqctl, unique};
use tokio::sync::mpsc;

fn local() -> (Config, StartOptions) {
    let config = local_config(|_| {});
    let options = StartOptions {
        auth: Credentials::basic("guest", "guest").into(),
        set_offset: Some(false),
        ..Default::default()
    };
    (config, options)
}

#[tokio::test]
async fn two_applications_talk_under_a_prefix_with_wildcard_subscriptions() {
    let prefix = unique("story");
    let (config, options) = local();
    let fire = Application::start_up("fire", &prefix, &config, options.clone())
        .await
        .unwrap();
    let ground = Application::start_up("ground", &prefix, &config, options)
        .await
        .unwrap();

    let (tx, mut rx) = mpsc::unbounded_channel();
    ground
        .add_message_callback("*", "detection", move |m| {
            let tx = tx.clone();
            async move {
                tx.send((m.sender().to_owned(), m.text()?.to_owned())).ok();
                Ok(())
            }
        })
        .await
        .unwrap();
    // The queue is named as nost_tools names it.
    let queues = rabbitmqctl(&["list_queues", "-q", "--no-table-headers", "name"]);
    assert!(
        queues
            .lines()
            .any(|q| q.trim() == format!("{prefix}.star.detection.ground")),
        "{queues}"
    );

    fire.send_message("detection", r#"{"lat":1.0}"#)
        .await
        .unwrap();
    let (sender, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((sender.as_str(), body.as_str()), ("fire", r#"{"lat":1.0}"#));

    fire.shut_down().await;
    ground.shut_down().await;
    let queues = rabbitmqctl(&["list_queues", "-q", "--no-table-headers", "name"]);
    assert!(
        !queues.contains(&prefix),
        "queues removed at shutdown: {queues}"
    );
    assert!(matches!(
        fire.send_message("detection", "{}").await,
        Err(AppError::ShutDown)
    ));
}

#[tokio::test]
async fn closed_resolves_once_the_shutdown_has_finished_not_when_it_begins() {
    let prefix = unique("closed");
    let (config, options) = local();
    let app = Application::start_up("closer", &prefix, &config, options)
        .await
        .unwrap();
    app.add_message_callback("*", "data", |_m| async { Ok(()) })
        .await
        .unwrap();
    let stopper = {
        let app = app.clone();
        tokio::spawn(async move { app.shut_down().await })
    };
    tokio::time::timeout(Duration::from_secs(30), app.shutting_down())
        .await
        .expect("shutdown began");
    tokio::time::timeout(Duration::from_secs(30), app.closed())
        .await
        .expect("shutdown finished");
    // Everything shutdown does is done by now.
    assert!(!app.session().is_connected(), "connection closed");
    let queues = rabbitmqctl(&["list_queues", "-q", "--no-table-headers", "name"]);
    assert!(!queues.contains(&prefix), "queue removed: {queues}");
    assert!(matches!(
        app.send_message("data", "{}").await,
        Err(AppError::ShutDown)
    ));
    stopper.await.unwrap();
}

#[tokio::test]
async fn a_message_the_handler_cannot_read_is_rejected_once_not_redelivered_forever() {
    let prefix = unique("malformed");
    let (config, options) = local();
    let app = Application::start_up("reader", &prefix, &config, options)
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    app.add_message_callback("writer", "data", move |m| {
        let tx = tx.clone();
        async move {
            tx.send(()).ok();
            let _: serde_json::Value = m.json()?;
            Ok(())
        }
    })
    .await
    .unwrap();
    app.send_message_as("writer", &["data"], "not json")
        .await
        .unwrap();
    app.send_message_as("writer", &["data"], "{\"ok\":true}")
        .await
        .unwrap();
    let mut calls = 0;
    while tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .is_ok()
    {
        calls += 1;
        assert!(calls < 5, "redelivery loop");
    }
    assert_eq!(calls, 2, "each message handled exactly once");
    app.shut_down().await;
}

#[tokio::test]
async fn an_access_token_without_a_refresh_token_fails_before_any_network_io() {
    let (mut config, mut options) = local();
    config.servers.rabbitmq.keycloak_authentication = true;
    config.servers.rabbitmq.port = 1; // nothing listens: any I/O would fail differently
    config.servers.keycloak = Some(Default::default());
    options.auth.credentials = Some(Credentials::client("nost_monitor", None));
    options.auth.access_token = Some("a.b.c".to_owned().into());
    let err = Application::start_up("app", "p", &config, options)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("refresh_token"), "{text}");
}

#[tokio::test]
async fn an_unreachable_broker_is_reported_within_connection_timeout() {
    let (mut config, options) = local();
    config.servers.rabbitmq.port = 9; // discard port: nothing listens
    config.servers.rabbitmq.connection_timeout = 3;
    let started = std::time::Instant::now();
    let err = Application::start_up("app", "p", &config, options)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    assert!(err.to_string().contains("127.0.0.1:9"), "{err}");
}
