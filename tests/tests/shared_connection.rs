//! Many sessions (and applications) on one shared AMQP connection, on the
//! default broker: one broker connection, a refused publish or a deleted
//! queue of one session disturbs no other, a closed connection restores
//! them all and loses nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use nost_amqp::{AmqpError, ExchangeSpec, Outgoing, Session, SessionEvent, SharedConnection};
use nost_app::{Application, StartOptions};
use nost_config::Credentials;
use nost_testkit::{
    ForbiddenTopic, close_connections_named, collect_numbers, consumer, count_events,
    declare_bound_queue, local_config, local_settings, rabbitmqctl, transient_queue, unique,
};
use tokio::sync::broadcast;

/// The default node's connections whose client properties mention `name`.
fn connections_named(name: &str) -> usize {
    rabbitmqctl(&[
        "list_connections",
        "-q",
        "--no-table-headers",
        "client_properties",
    ])
    .lines()
    .filter(|l| l.contains(name))
    .count()
}

/// Message `k` of session `i`: body `i * 10_000 + k`, key `{exchange}.s{i}.seq`.
fn numbered(exchange: &str, i: usize, k: usize) -> Outgoing {
    Outgoing {
        exchange: exchange.to_owned(),
        routing_key: format!("{exchange}.s{i}.seq"),
        body: (i * 10_000 + k).to_string().into_bytes(),
    }
}

/// (connected, disconnected, channel reopened, refused) events so far.
fn count(events: &mut broadcast::Receiver<SessionEvent>) -> (usize, usize, usize, usize) {
    let c = count_events(events);
    (c.connected, c.disconnected, c.reopened, c.refused)
}

#[tokio::test]
async fn a_refused_publish_and_a_deleted_queue_disturb_no_other_session_of_the_connection() {
    const SESSIONS: usize = 5;
    const EACH: usize = 200;
    let name = unique("shrefuse");
    let fence = ForbiddenTopic::create(&name);
    let s = |n: &str| fence.settings(n);
    let (consumer, mut sub) = fence.consumer().await;
    let shared_name = format!("{name}-shared");
    let shared = SharedConnection::connect(s(&shared_name)).await.unwrap();
    let mut shared_events = shared.events();
    let mut sessions = Vec::new();
    for i in 0..SESSIONS {
        let session = Session::connect_shared(s(&format!("{name}-s{i}")), &shared)
            .await
            .unwrap();
        session
            .declare_exchange(ExchangeSpec::nost(&fence.exchange))
            .await
            .unwrap();
        sessions.push(session);
    }
    // Session 1 consumes a queue of its own, which is then deleted.
    let own = format!("{name}.own1");
    sessions[1]
        .declare_queue(transient_queue(&own))
        .await
        .unwrap();
    let _own_sub = sessions[1].consume(&own, 10).await.unwrap();
    assert_eq!(
        connections_named(&name),
        2,
        "the consumer's connection and one shared connection"
    );
    assert_eq!(connections_named(&shared_name), 1);
    let mut events: Vec<_> = sessions.iter().map(Session::events).collect();

    // Session 0 sends one forbidden message in the middle of its own.
    let bad = sessions[0]
        .publish_tracked(fence.bad_message("999999"))
        .await
        .unwrap();
    rabbitmqctl(&["delete_queue", "-p", &name, &own]);
    for k in 0..EACH {
        for (i, session) in sessions.iter().enumerate() {
            session
                .publish(fence.ok_message((i * 10_000 + k).to_string()))
                .await
                .unwrap();
        }
    }
    match tokio::time::timeout(Duration::from_secs(30), bad)
        .await
        .unwrap()
    {
        Err(AmqpError::PublishRefused(r)) => assert_eq!(r.code, Some(403)),
        other => panic!("the forbidden message: {other:?}"),
    }
    for session in &sessions {
        session.flush(Duration::from_secs(30)).await.unwrap();
    }
    let seen = collect_numbers(&mut sub, SESSIONS * EACH).await;
    let want: HashSet<usize> = (0..SESSIONS)
        .flat_map(|i| (0..EACH).map(move |k| i * 10_000 + k))
        .collect();
    assert_eq!(seen.len(), SESSIONS * EACH, "every allowed message arrived");
    assert_eq!(seen, want);
    // Session 1 reopens its channels (the broker cancelled its consumer);
    // the deleted queue is declared again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut c1 = (0, 0, 0, 0);
    while c1.0 == 0 && tokio::time::Instant::now() < deadline {
        let c = count(&mut events[1]);
        c1 = (c1.0 + c.0, c1.1 + c.1, c1.2 + c.2, c1.3 + c.3);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((c1.0, c1.1), (1, 1), "session 1 reopened its channels once");
    assert_eq!(
        count(&mut events[0]),
        (0, 0, 1, 1),
        "session 0: one refusal, its publishing channel reopened"
    );
    for (i, e) in events.iter_mut().enumerate().skip(2) {
        assert_eq!(count(e), (0, 0, 0, 0), "session {i} was not disturbed");
    }
    assert_eq!(
        count(&mut shared_events),
        (0, 0, 0, 0),
        "the shared connection stayed up"
    );
    assert_eq!(connections_named(&shared_name), 1);
    for session in &sessions {
        session.shut_down(Duration::from_secs(5)).await;
    }
    assert!(
        shared.is_connected(),
        "sessions leave the shared connection open"
    );
    shared.shut_down().await;
    consumer.shut_down(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_closed_shared_connection_restores_every_session_and_loses_nothing() {
    const SESSIONS: usize = 5;
    const EACH: usize = 400;
    let name = unique("shclose");
    let exchange = name.clone();
    let (consumer, mut sub) = consumer(
        local_settings(&format!("{name}-consumer")),
        &exchange,
        &format!("{name}.q"),
        &format!("{exchange}.#"),
    )
    .await;
    let shared_name = format!("{name}-shared");
    let shared = SharedConnection::connect(local_settings(&shared_name))
        .await
        .unwrap();
    let mut shared_events = shared.events();
    let mut tasks = Vec::new();
    let mut sessions = Vec::new();
    for i in 0..SESSIONS {
        let session = Session::connect_shared(local_settings(&format!("{name}-s{i}")), &shared)
            .await
            .unwrap();
        // Each also consumes a queue of its own, restored after the loss.
        let own = format!("{name}.own{i}");
        declare_bound_queue(&session, &exchange, &own, &format!("{exchange}.s{i}.#")).await;
        let own = session.consume(&own, 50).await.unwrap();
        sessions.push((session.clone(), own));
        let exchange = exchange.clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..EACH {
                session.publish(numbered(&exchange, i, k)).await.unwrap();
                if k % 10 == 0 {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        }));
    }
    assert_eq!(connections_named(&name), 2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let closed = tokio::task::spawn_blocking({
        let n = shared_name.clone();
        move || close_connections_named(&n)
    })
    .await
    .unwrap();
    assert_eq!(closed, 1, "one shared connection to close");
    for t in tasks {
        t.await.unwrap();
    }
    // And more after the close, on the restored channels.
    const AFTER: usize = 100;
    for (i, (session, _)) in sessions.iter().enumerate() {
        for k in EACH..EACH + AFTER {
            session.publish(numbered(&exchange, i, k)).await.unwrap();
        }
    }
    for (session, _) in &sessions {
        session.flush(Duration::from_secs(60)).await.unwrap();
    }
    let total = EACH + AFTER;
    let seen = collect_numbers(&mut sub, SESSIONS * total).await;
    let want: HashSet<usize> = (0..SESSIONS)
        .flat_map(|i| (0..total).map(move |k| i * 10_000 + k))
        .collect();
    assert_eq!(seen.len(), SESSIONS * total, "nothing lost");
    assert_eq!(seen, want);
    // Every session's own consumer was restored on the new connection.
    for (i, (_, own)) in sessions.iter_mut().enumerate() {
        let got = collect_numbers(own, total).await;
        assert_eq!(got.len(), total, "session {i}'s own queue consumer");
    }
    let (connected, disconnected, _, _) = count(&mut shared_events);
    assert_eq!((connected, disconnected), (1, 1), "reconnected once");
    assert_eq!(connections_named(&name), 2, "still one shared connection");
    for (session, _) in &sessions {
        session.shut_down(Duration::from_secs(5)).await;
    }
    shared.shut_down().await;
    consumer.shut_down(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn twenty_applications_on_a_shared_connection_are_one_broker_connection() {
    const APPS: usize = 20;
    let prefix = unique("shapps");
    let config = local_config(|_| {});
    let shared = nost_app::SharedConnectionOptions::new(Credentials::basic("guest", "guest"))
        .with_connection_name(format!("{prefix}-shared"));
    let conn = nost_app::SharedConnection::start(&config, shared)
        .await
        .unwrap();
    let (consumer, mut sub) = consumer(
        local_settings(&format!("{prefix}-consumer")),
        &prefix,
        &format!("{prefix}.q"),
        &format!("{prefix}.*.count"),
    )
    .await;
    let options = StartOptions {
        shared_connection: Some(conn.clone()),
        set_offset: Some(false),
        ..Default::default()
    };
    let mut apps = Vec::new();
    for i in 0..APPS {
        let app = Application::start_up(&format!("sat{i}"), &prefix, &config, options.clone())
            .await
            .unwrap();
        apps.push(app);
    }
    assert_eq!(
        connections_named(&prefix),
        2,
        "one shared connection (and the consumer's)"
    );
    for (i, app) in apps.iter().enumerate() {
        for k in 0..10 {
            app.send_message("count", &(i * 100 + k).to_string())
                .await
                .unwrap();
        }
    }
    let seen = collect_numbers(&mut sub, APPS * 10).await;
    assert_eq!(
        seen.len(),
        APPS * 10,
        "every application's messages arrived"
    );
    for app in &apps {
        app.shut_down().await;
    }
    assert!(conn.is_connected());
    conn.shut_down().await;
    consumer.shut_down(Duration::from_secs(5)).await;
}

/// On the OAuth2 node (`cargo xtask integration`): tokens of 4 s renewed
/// about every 3 s reach the one shared connection (an update-secret per
/// renewal, not per application), and five applications keep publishing
/// past several expiries without a reconnect.
#[tokio::test]
async fn renewed_tokens_reach_the_shared_connection_once_and_every_application_keeps_publishing() {
    use nost_testkit::{KID, OAuthBrokerInfo, count_into};
    use nost_testkit::{KeycloakEmulator, SigningKey};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let node = OAuthBrokerInfo::from_env_or_panic();
    let key = SigningKey::from_pem_file(&node.signing_key_path(), KID).unwrap();
    let kc = KeycloakEmulator::start("NOS-T", key).await;
    kc.add_client("sos-service", Some("svc-secret"));
    kc.set_access_lifetime(4);
    let config = nost_testkit::oauth_config(node.amqp_port, kc.port(), 240);
    let base = StartOptions {
        auth: Credentials::client("sos-service", Some("svc-secret".into())).into(),
        set_offset: Some(false),
        ..Default::default()
    };
    let conn = nost_app::SharedConnection::start(&config, base.auth.clone())
        .await
        .unwrap();
    assert_eq!(conn.mode(), nost_config::ModeKind::ServiceAccount);
    let mut conn_events = conn.amqp().events();
    let options = StartOptions {
        shared_connection: Some(conn.clone()),
        ..base
    };
    let prefix = unique("shrenew");
    let received = Arc::new(AtomicUsize::new(0));
    let mut apps = Vec::new();
    for i in 0..5 {
        let app = Application::start_up(&format!("sat{i}"), &prefix, &config, options.clone())
            .await
            .unwrap();
        app.add_message_callback(&format!("sat{i}"), "tick", count_into(&received))
            .await
            .unwrap();
        apps.push(app);
    }
    let mut app_events: Vec<_> = apps.iter().map(|a| a.session().events()).collect();
    let mut renewals = conn.token_manager().unwrap().subscribe_events();
    // 12 s of publishing: three token lifetimes.
    let mut sent = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(12);
    while tokio::time::Instant::now() < until {
        for app in &apps {
            app.send_message("tick", "{}").await.unwrap();
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for app in &apps {
        app.flush(Duration::from_secs(10)).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while received.load(Ordering::SeqCst) < sent && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        received.load(Ordering::SeqCst),
        sent,
        "every message delivered"
    );
    let mut renewed = 0;
    while let Ok(e) = renewals.try_recv() {
        if matches!(e, nost_auth::AuthEvent::Renewed { .. }) {
            renewed += 1;
        }
    }
    let c = count_events(&mut conn_events);
    let (updates, drops) = (c.secret_updated, c.disconnected);
    assert!(renewed >= 3, "the token was renewed ({renewed})");
    assert!(
        updates >= 3 && updates <= renewed,
        "one update-secret per renewal on the shared connection ({updates} for {renewed})"
    );
    assert_eq!(drops, 0, "the shared connection was never lost");
    for (i, e) in app_events.iter_mut().enumerate() {
        assert_eq!(count(e).1, 0, "sat{i} never lost its channels");
    }
    for app in &apps {
        app.shut_down().await;
    }
    conn.shut_down().await;
}
