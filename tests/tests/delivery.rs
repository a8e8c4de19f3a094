//! Delivery that loses nothing, on the default broker: a refused message
//! fails only itself, a nack is an outcome, a panicking handler does not
//! stop its subscription, handlers see the properties.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nost_amqp::{AmqpError, ExchangeSpec, Outgoing, Session};
use nost_app::{Application, StartOptions};
use nost_config::{Config, Credentials, RabbitMqConfig};
use nost_testkit::{
    BrokerUser, ForbiddenTopic, Proxy, QueuePolicy, collect_distinct, count_events,
    declare_bound_queue, local_config, local_settings, local_settings_with, queue_names,
    rabbitmqctl, unique, wait_for_disconnect,
};
use tokio::sync::mpsc;

#[tokio::test]
async fn a_forbidden_topic_fails_only_its_own_message_of_a_thousand() {
    let name = unique("refuse");
    let fence = ForbiddenTopic::create(&name);
    let (consumer, mut sub) = fence.consumer().await;

    let session = Session::connect(fence.settings(&name)).await.unwrap();
    let mut events = session.events();
    const N: usize = 1_000;
    const BAD: usize = 500;
    let mut handles = Vec::with_capacity(N);
    for i in 0..N {
        let body = i.to_string();
        let message = if i == BAD {
            fence.bad_message(body)
        } else {
            fence.ok_message(body)
        };
        let h = session
            .publish_tracked(message)
            .await
            .expect("accepted into the buffer");
        handles.push(h);
    }
    let mut refusals = Vec::new();
    let mut confirmed = 0;
    for (i, h) in handles.into_iter().enumerate() {
        match tokio::time::timeout(Duration::from_secs(60), h)
            .await
            .unwrap()
        {
            Ok(()) => confirmed += 1,
            Err(AmqpError::PublishRefused(r)) => refusals.push((i, r)),
            Err(other) => panic!("message {i}: {other:?}"),
        }
    }
    assert_eq!(confirmed, N - 1);
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let (i, r) = &refusals[0];
    assert_eq!(*i, BAD);
    assert_eq!(
        (r.exchange.as_str(), r.routing_key.as_str()),
        (fence.exchange.as_str(), fence.bad_key.as_str())
    );
    assert_eq!(r.code, Some(403));
    let text = AmqpError::PublishRefused(r.clone()).to_string();
    assert!(
        text.contains(&fence.bad_key) && text.contains("topic permissions"),
        "{text}"
    );
    session.flush(Duration::from_secs(10)).await.unwrap();

    let mut keys = Vec::new();
    let seen = collect_distinct(&mut sub, N - 1, |d| {
        keys.push(d.routing_key.clone());
        nost_testkit::body_number(d)
    })
    .await;
    let want: HashSet<usize> = (0..N).filter(|i| *i != BAD).collect();
    assert_eq!(seen.len(), N - 1, "all allowed messages arrived");
    assert_eq!(seen, want);
    assert!(!keys.contains(&fence.bad_key));
    count_events(&mut events).assert_one_refusal_kept_the_connection();
    session.shut_down(Duration::from_secs(5)).await;
    consumer.shut_down(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn flush_reports_the_refused_message_of_buffered_sends() {
    let name = unique("flushrefuse");
    let fence = ForbiddenTopic::create(&name);
    let session = Session::connect(fence.settings(&name)).await.unwrap();
    session
        .declare_exchange(ExchangeSpec::nost(&fence.exchange))
        .await
        .unwrap();
    for i in 0..20 {
        let body = i.to_string();
        let message = if i == 7 {
            fence.bad_message(body)
        } else {
            fence.ok_message(body)
        };
        session.publish(message).await.unwrap();
    }
    let err = session.flush(Duration::from_secs(30)).await.unwrap_err();
    let AmqpError::Refused { refused } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].routing_key, fence.bad_key);
    assert!(err.to_string().contains("1 message(s) refused"), "{err}");
    // Reported once: the next flush is clean.
    session.flush(Duration::from_secs(5)).await.unwrap();
    session.shut_down(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_nack_is_retried_then_refused_without_a_reconnect() {
    let name = unique("nack");
    let queue = format!("{name}.q");
    let _policy = QueuePolicy::set(&queue, r#"{"max-length":5,"overflow":"reject-publish"}"#);
    // A short nack retry window (the default 60 s rides through a cluster
    // election): retried at 0.2, 0.6 and 1 s, then refused.
    let s =
        local_settings(&name).with_nack_retry(nost_amqp::NackRetry::new(Duration::from_secs(1)));
    let session = Session::connect(s).await.unwrap();
    declare_bound_queue(&session, &name, &queue, &format!("{name}.#")).await;
    let mut events = session.events();
    let mut handles = Vec::new();
    for i in 0..10 {
        handles.push(
            session
                .publish_tracked(Outgoing {
                    exchange: name.clone(),
                    routing_key: format!("{name}.app.seq"),
                    body: i.to_string().into_bytes(),
                })
                .await
                .unwrap(),
        );
    }
    let mut ok = 0;
    let mut refused = Vec::new();
    for h in handles {
        match tokio::time::timeout(Duration::from_secs(30), h)
            .await
            .unwrap()
        {
            Ok(()) => ok += 1,
            Err(AmqpError::PublishRefused(r)) => refused.push(r),
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!((ok, refused.len()), (5, 5), "{refused:?}");
    for r in &refused {
        assert_eq!(r.code, None);
        assert!(r.reason.contains("nacked"), "{}", r.reason);
        assert!(r.to_string().contains("reject-publish"), "{r}");
    }
    let c = count_events(&mut events);
    assert_eq!((c.connected, c.disconnected, c.refused), (0, 0, 5), "{c:?}");
    let depth = rabbitmqctl(&[
        "list_queues",
        "-q",
        "--no-table-headers",
        "name",
        "messages",
    ]);
    let line = depth
        .lines()
        .find(|l| l.split_whitespace().next() == Some(queue.as_str()))
        .unwrap_or_default()
        .to_owned();
    assert_eq!(line.split_whitespace().nth(1), Some("5"), "{line}");
    session.delete_queue(&queue).await.unwrap();
    session.shut_down(Duration::from_secs(5)).await;
}

fn local(tune: impl FnOnce(&mut RabbitMqConfig)) -> (Config, StartOptions) {
    let config = local_config(tune);
    let options = StartOptions {
        auth: Credentials::basic("guest", "guest").into(),
        set_offset: Some(false),
        ..Default::default()
    };
    (config, options)
}

/// As [`local`], but as `user` in its own virtual host.
fn local_as(user: &BrokerUser) -> (Config, StartOptions) {
    let (config, mut options) = local(|r| {
        r.virtual_host = user.name.clone();
        r.connection_timeout = 10;
    });
    options.auth = Credentials::basic(&user.name, &user.password).into();
    (config, options)
}

#[tokio::test]
async fn a_handler_that_panics_on_every_third_message_still_sees_all_hundred() {
    let prefix = unique("panic");
    let (config, options) = local(|_| {});
    let app = Application::start_up("ground", &prefix, &config, options)
        .await
        .unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let (tx, mut rx) = mpsc::unbounded_channel();
    app.add_message_callback("ground", "tick", move |m| {
        let s = s.clone();
        let tx = tx.clone();
        async move {
            let n = s.fetch_add(1, Ordering::SeqCst) + 1;
            tx.send(m.text()?.to_owned()).ok();
            if n.is_multiple_of(3) {
                panic!("handler bug on message {n}");
            }
            Ok(())
        }
    })
    .await
    .unwrap();
    for i in 0..100 {
        app.send_message("tick", &i.to_string()).await.unwrap();
    }
    app.flush(Duration::from_secs(10)).await.unwrap();
    let mut bodies = HashSet::new();
    while bodies.len() < 100 {
        let b = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("every message reaches the handler")
            .unwrap();
        bodies.insert(b);
    }
    assert_eq!(bodies.len(), 100);
    // Panicked messages were rejected, not requeued: nothing comes again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.load(Ordering::SeqCst), 100);
    app.shut_down().await;
}

#[tokio::test]
async fn handlers_see_the_amqp_properties_and_the_redelivered_flag() {
    let prefix = unique("props");
    let (rx_config, options) = local(|_| {});
    let (tx_config, _) = local(|r| {
        r.message_id = Some("m-42".into());
        r.app_id = Some("sat-app".into());
        r.content_type = Some("application/json".into());
        r.timestamp = Some(chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        r.headers = Some([("mission".to_owned(), "fire".to_owned())].into());
    });
    let ground = Application::start_up("ground", &prefix, &rx_config, options.clone())
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    ground
        .add_message_callback("sat", "status.ready", move |m| {
            let tx = tx.clone();
            async move {
                tx.send(m).ok();
                Ok(())
            }
        })
        .await
        .unwrap();
    let sat = Application::start_up("sat", &prefix, &tx_config, options)
        .await
        .unwrap();
    sat.send_message_confirmed("status.ready", "{}")
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let p = &m.properties;
    assert_eq!(p.message_id.as_deref(), Some("m-42"));
    assert_eq!(p.app_id.as_deref(), Some("sat-app"));
    assert_eq!(p.content_type.as_deref(), Some("application/json"));
    assert_eq!(p.timestamp, Some(1_700_000_000));
    assert_eq!(
        p.headers.get("mission").and_then(|v| v.as_str()),
        Some("fire")
    );
    assert!(!m.redelivered);
    sat.shut_down().await;
    ground.shut_down().await;
}

/// No queue of `vhost` on the default node has `prefix` in its name.
fn assert_no_queue_left(vhost: &str, prefix: &str) {
    let queues = queue_names(vhost);
    assert!(
        !queues.iter().any(|q| q.contains(prefix)),
        "no queue left collecting messages: {queues:?}"
    );
}

fn connections() -> String {
    rabbitmqctl(&[
        "list_connections",
        "-q",
        "--no-table-headers",
        "client_properties",
    ])
}

/// Poll until no connection of the default node mentions `name`.
async fn no_connection_named(name: &str) -> bool {
    for _ in 0..50 {
        let name = name.to_owned();
        let left = tokio::task::spawn_blocking(move || connections().contains(&name))
            .await
            .unwrap();
        if !left {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test]
async fn shutdown_during_an_outage_takes_at_most_connection_timeout() {
    let prefix = unique("outage");
    let proxy = Proxy::to_default_node().await;
    let port = proxy.port();
    let (config, options) = local(|r| {
        r.port = u32::from(port);
        r.connection_timeout = 4;
    });
    let app = Application::start_up("sat", &prefix, &config, options)
        .await
        .unwrap();
    for topic in ["a", "b", "c"] {
        app.add_message_callback("*", topic, |_| async { Ok(()) })
            .await
            .unwrap();
    }
    let mut events = app.session().events();
    proxy.cut().await;
    wait_for_disconnect(&mut events).await;
    app.send_message("a", "{}").await.unwrap();
    // 4 s in all (plus slack for a loaded machine), not 4 s per queue.
    tokio::time::timeout(Duration::from_secs(7), app.shut_down())
        .await
        .expect("shutdown is bounded by connection_timeout");
    for topic in ["a", "b", "c"] {
        rabbitmqctl(&["delete_queue", &format!("{prefix}.star.{topic}.sat")]);
    }
}

#[tokio::test]
async fn a_shutdown_racing_a_reconnect_leaves_no_connection() {
    let name = unique("race");
    let proxy = Proxy::to_default_node().await;
    for round in 0..3u64 {
        let conn_name = format!("{name}-{round}");
        let s = local_settings_with(&conn_name, |r| r.port = u32::from(proxy.port()));
        let session = Session::connect(s).await.unwrap();
        let mut events = session.events();
        proxy.cut().await;
        wait_for_disconnect(&mut events).await;
        proxy.restore();
        // Shut down while the reconnect is (likely) under way.
        tokio::time::sleep(Duration::from_millis(100 * round)).await;
        session.shut_down(Duration::from_secs(1)).await;
        assert!(
            no_connection_named(&conn_name).await,
            "round {round}: a connection stayed open"
        );
    }
}

#[tokio::test]
async fn a_failed_start_up_closes_its_connection() {
    let prefix = unique("failstart");
    // A peer declared the prefix exchange with other flags: 406 at start-up.
    let peer = Session::connect(local_settings(&format!("{prefix}-peer")))
        .await
        .unwrap();
    peer.declare_exchange(ExchangeSpec {
        name: prefix.clone(),
        kind: "direct".into(),
        durable: false,
        auto_delete: false,
    })
    .await
    .unwrap();
    let (config, options) = local(|_| {});
    let err = Application::start_up("sat", &prefix, &config, options)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            nost_app::AppError::Amqp(AmqpError::PreconditionFailed { .. })
        ),
        "{err:?}"
    );
    assert!(
        no_connection_named(&format!("{prefix}.sat")).await,
        "the failed application's connection is closed"
    );
    rabbitmqctl(&["delete_exchange", &prefix]);
    peer.shut_down(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_subscription_refused_at_bind_leaves_no_durable_queue() {
    let name = unique("nobind");
    let user = BrokerUser::create(&name);
    // May declare and write, may not read: binding needs read on the exchange.
    rabbitmqctl(&["set_permissions", "-p", &name, &name, ".*", ".*", "^$"]);
    let prefix = unique("nb");
    let (config, options) = local_as(&user);
    let app = Application::start_up("sat", &prefix, &config, options)
        .await
        .unwrap();
    let err = app
        .add_message_callback("*", "tick", |_| async { Ok(()) })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            nost_app::AppError::Amqp(AmqpError::AccessRefused { .. })
        ),
        "{err:?}"
    );
    assert_no_queue_left(&name, &prefix);
    app.shut_down().await;
}

#[tokio::test]
async fn connection_attempts_and_retry_delay_apply_to_the_first_connect() {
    let name = unique("attempts");
    let proxy = Proxy::to_default_node().await;
    proxy.cut().await; // the broker is "down" at start-up
    let mut s = local_settings_with(&name, |r| {
        r.port = u32::from(proxy.port());
        r.connection_attempts = 10;
        r.retry_delay = 1;
    });
    let connect = tokio::spawn(Session::connect(s.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.restore();
    let session = tokio::time::timeout(Duration::from_secs(60), connect)
        .await
        .unwrap()
        .unwrap()
        .expect("a later attempt connects");
    assert!(session.is_connected());
    session.shut_down(Duration::from_secs(5)).await;
    // With one attempt, the same outage is an error at once.
    proxy.cut().await;
    s.rabbitmq.connection_attempts = 1;
    assert!(Session::connect(s).await.is_err());
}

#[tokio::test]
async fn a_refusal_that_names_no_message_is_found_by_resending_one_at_a_time() {
    // user_id must match the login, else the broker closes the channel with
    // a 406 that names neither exchange nor routing key.
    let name = unique("userid");
    let s = local_settings_with(&name, |r| r.user_id = Some("somebody-else".into()));
    let session = Session::connect(s).await.unwrap();
    session
        .declare_exchange(ExchangeSpec::nost(&name))
        .await
        .unwrap();
    let mut events = session.events();
    let mut handles = Vec::new();
    for i in 0..3 {
        handles.push(
            session
                .publish_tracked(Outgoing {
                    exchange: name.clone(),
                    routing_key: format!("{name}.app.m{i}"),
                    body: b"{}".to_vec(),
                })
                .await
                .unwrap(),
        );
    }
    for (i, h) in handles.into_iter().enumerate() {
        match tokio::time::timeout(Duration::from_secs(60), h)
            .await
            .unwrap()
        {
            Err(AmqpError::PublishRefused(r)) => {
                assert_eq!(r.routing_key, format!("{name}.app.m{i}"));
                assert_eq!(r.code, Some(406));
                assert!(r.reason.contains("user_id"), "{}", r.reason);
            }
            other => panic!("message {i}: {other:?}"),
        }
    }
    let c = count_events(&mut events);
    assert_eq!((c.connected, c.disconnected, c.refused), (0, 0, 3), "{c:?}");
    session.shut_down(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_start_up_refused_at_consume_closes_everything_it_opened() {
    let name = unique("noconsume");
    let user = BrokerUser::create(&name);
    let prefix = unique("nc");
    // May declare and write; may read the prefix exchange (binding needs
    // that) but no queue: basic.consume of the command queue gets 403.
    let read = format!("^{prefix}$");
    rabbitmqctl(&["set_permissions", "-p", &name, &name, ".*", ".*", &read]);
    let (config, options) = local_as(&user);
    let err = nost_app::ManagedApplication::start_up("sat", &prefix, &config, options)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            nost_app::AppError::Amqp(AmqpError::AccessRefused { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("queue"), "names the queue: {err}");
    // No connection of this user stays open …
    let mut left = String::new();
    for _ in 0..50 {
        left = rabbitmqctl(&["list_connections", "-q", "--no-table-headers", "user"]);
        if !left.lines().any(|l| l.trim() == name) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !left.lines().any(|l| l.trim() == name),
        "a connection of {name} stayed open: {left}"
    );
    // … and no queue is left collecting messages.
    assert_no_queue_left(&name, &prefix);
}

/// A proxy to the default broker that stops forwarding the broker's answers
/// once the client opens its first channel (the handshake is done, the
/// restore waits): links stay open, client → broker keeps flowing.
async fn proxy_silent_after_channel_open() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let outbound = tokio::net::TcpStream::connect("127.0.0.1:5672")
                .await
                .unwrap();
            let (mut ri, mut wi) = inbound.into_split();
            let (mut ro, mut wo) = outbound.into_split();
            let (silent, mut quiet) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = ri.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    // A method frame on channel 1: channel.open (class 20, method 10).
                    let chunk = &buf[..n];
                    if chunk
                        .windows(11)
                        .any(|w| w[..3] == [1, 0, 1] && w[7..11] == [0, 20, 0, 10])
                    {
                        silent.send_replace(true);
                    }
                    if wo.write_all(chunk).await.is_err() {
                        break;
                    }
                }
                std::future::pending::<()>().await;
                drop(wo);
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = tokio::select! {
                        r = ro.read(&mut buf) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
                        _ = quiet.wait_for(|s| *s) => break,
                    };
                    if *quiet.borrow() || wi.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                std::future::pending::<()>().await;
                drop((ro, wi));
            });
        }
    });
    port
}

#[tokio::test]
async fn a_connect_that_times_out_while_restoring_leaves_no_connection() {
    let name = unique("restore-timeout");
    let port = proxy_silent_after_channel_open().await;
    let s = local_settings_with(&name, |r| {
        r.port = u32::from(port);
        r.connection_timeout = 2;
    });
    let err = Session::connect(s).await.unwrap_err();
    assert!(matches!(err, AmqpError::ConnectTimeout { .. }), "{err:?}");
    assert!(
        no_connection_named(&name).await,
        "the connection opened before the timeout is closed"
    );
}

/// Two switches of [`PausableProxy`]: while one is on, that direction holds
/// what it read (broker → client) or stops reading (client → broker).
#[derive(Clone, Default)]
struct Pauses {
    up: Arc<tokio::sync::watch::Sender<bool>>,
    down: Arc<tokio::sync::watch::Sender<bool>>,
    /// Bytes the broker sent while `down` was on.
    held: Arc<AtomicUsize>,
}

/// A proxy to the default broker for one link whose directions can be held
/// apart; its listening socket has a small receive buffer so that a held
/// client → broker direction backs up into the client quickly.
async fn pausable_proxy() -> (u16, Pauses) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(8).unwrap();
    let port = listener.local_addr().unwrap().port();
    let pauses = Pauses::default();
    let p = pauses.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let outbound = tokio::net::TcpStream::connect("127.0.0.1:5672")
                .await
                .unwrap();
            let (mut ri, mut wi) = inbound.into_split();
            let (mut ro, mut wo) = outbound.into_split();
            let mut up = p.up.subscribe();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    if up.wait_for(|paused| !*paused).await.is_err() {
                        break;
                    }
                    match ri.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if wo.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
            let mut down = p.down.subscribe();
            let held = p.held.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = match ro.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if *down.borrow_and_update() {
                        held.fetch_add(n, Ordering::SeqCst);
                        if down.wait_for(|paused| !*paused).await.is_err() {
                            break;
                        }
                    }
                    if wi.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, pauses)
}

/// The broker's channel.close for a refused message reaches the client
/// while many publishes are still queued in lapin, unwritten (the socket is
/// backed up). lapin answers with channel.close-ok ahead of its queued
/// frames; a publish frame written on that channel after the close-ok is a
/// connection error for RabbitMQ (504 "expected 'channel.open'"). Nothing
/// queued for the closed channel may follow its close-ok: the connection
/// stays and every allowed message arrives.
#[tokio::test]
async fn a_refusal_answered_while_publishes_are_queued_keeps_the_connection() {
    let name = unique("refusequeued");
    let fence = ForbiddenTopic::create(&name);
    let (consumer, mut sub) = fence.consumer().await;
    let (port, pauses) = pausable_proxy().await;
    let mut s = fence.settings(&name);
    s.rabbitmq.port = u32::from(port);
    let session = Session::connect(s).await.unwrap();
    let mut events = session.events();

    const N: usize = 300;
    const SIZE: usize = 64 * 1024;
    // The publishing channel is open and idle.
    session
        .publish_confirmed(fence.ok_message(format!("{N}:")))
        .await
        .unwrap();
    // The refused message reaches the broker; its channel.close is held.
    pauses.down.send_replace(true);
    let bad = session
        .publish_tracked(fence.bad_message("bad"))
        .await
        .unwrap();
    assert!(
        nost_testkit::eventually(Duration::from_secs(10), || {
            pauses.held.load(Ordering::SeqCst) > 0
        })
        .await,
        "the broker answered the refused publish"
    );
    // Allowed messages pile up behind it: far more than the socket buffers
    // and lapin's send buffer hold while the broker reads nothing.
    pauses.up.send_replace(true);
    let mut handles = Vec::with_capacity(N);
    for i in 0..N {
        let mut body = format!("{i}:").into_bytes();
        body.resize(SIZE, b'x');
        handles.push(
            session
                .publish_tracked(fence.ok_message(body))
                .await
                .unwrap(),
        );
    }
    assert!(
        nost_testkit::eventually(Duration::from_secs(10), || session.pending().0 == 0).await,
        "every message handed to lapin: {:?}",
        session.pending()
    );
    // The close arrives with the publishes still queued; lapin queues its
    // close-ok, then the broker reads again.
    pauses.down.send_replace(false);
    let err = tokio::time::timeout(Duration::from_secs(10), bad)
        .await
        .expect("the refusal is reported")
        .unwrap_err();
    assert!(matches!(err, AmqpError::PublishRefused(_)), "{err:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    pauses.up.send_replace(false);

    for (i, h) in handles.into_iter().enumerate() {
        let verdict = tokio::time::timeout(Duration::from_secs(60), h)
            .await
            .unwrap_or_else(|_| panic!("message {i}: no verdict; {:?}", count_events(&mut events)));
        assert!(
            verdict.is_ok(),
            "message {i}: {verdict:?}; {:?}",
            count_events(&mut events)
        );
    }
    let seen = collect_distinct(&mut sub, N + 1, |d| {
        let head = d.body.split(|b| *b == b':').next().unwrap().to_vec();
        String::from_utf8(head).unwrap().parse::<usize>().unwrap()
    })
    .await;
    assert_eq!(seen.len(), N + 1, "all allowed messages arrived");
    count_events(&mut events).assert_one_refusal_kept_the_connection();
    session.shut_down(Duration::from_secs(5)).await;
    consumer.shut_down(Duration::from_secs(5)).await;
}
