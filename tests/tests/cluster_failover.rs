//! When one broker is not enough: applications on a three-node RabbitMQ
//! cluster (nost-testkit starts it) ride through the loss of a node.
//!
//! - An application connected to node A, publishing continuously and
//!   consuming its own (quorum) subscription, loses A (`stop_app`, then a
//!   kill): it reconnects to another node, restores its topology there and
//!   loses no message it had accepted, counted at an independent consumer
//!   and at its own subscription, and keeps renewing its token there.
//! - 1,000 messages published while the consumer's node is killed all reach
//!   the consumer after its failover (quorum queues keep them).
//! - A manager and two managed applications on different nodes complete a
//!   scenario while the node of one of them is stopped and started again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use nost_amqp::SessionEvent;
use nost_app::{Application, ManagedApplication, Manager, StartOptions, TestPlan};
use nost_config::{Config, Credentials, KeycloakConfig, QueueType};
use nost_testkit::KeycloakEmulator;
use nost_testkit::unique;
use nost_testkit::{Cluster, ClusterOptions};

/// A configuration that knows every node, starting with `first`.
fn config(cluster: &Cluster, first: usize) -> Config {
    let mut hosts = cluster.hosts();
    hosts.rotate_left(first);
    Config::builder()
        .rabbitmq(|r| {
            r.host = "127.0.0.1".into();
            r.port = u32::from(cluster.node(first).amqp_port());
            r.hosts = hosts;
            r.reconnect_delay = 1;
            r.connection_timeout = 10;
            r.queue_type = QueueType::Quorum;
        })
        .build()
        .unwrap()
}

fn options() -> StartOptions {
    StartOptions {
        auth: Credentials::basic("guest", "guest").into(),
        set_offset: Some(false),
        ..Default::default()
    }
}

/// Sequence numbers received, shared with a callback.
type Seen = Arc<Mutex<BTreeSet<u32>>>;

async fn wait_for(what: &str, seen: &Seen, n: usize, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let got = seen.lock().unwrap().len();
        if got >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {got} of {n} after {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An independent consumer on node `i`: a quorum queue bound to
/// `PREFIX.#`, counting the `seq` of every body.
async fn independent_consumer(
    cluster: &Cluster,
    i: usize,
    prefix: &str,
) -> (Seen, lapin::Connection) {
    let conn = lapin::Connection::connect(
        &format!(
            "amqp://guest:guest@127.0.0.1:{}/%2f",
            cluster.node(i).amqp_port()
        ),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let queue = format!("{prefix}.independent");
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    ch.exchange_declare(
        prefix.into(),
        lapin::ExchangeKind::Topic,
        lapin::options::ExchangeDeclareOptions {
            durable: true,
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        args,
    )
    .await
    .unwrap();
    ch.queue_bind(
        queue.as_str().into(),
        prefix.into(),
        format!("{prefix}.#").as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let seen: Seen = Arc::default();
    let out = seen.clone();
    tokio::spawn(async move {
        while let Some(Ok(d)) = consumer.next().await {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&d.data)
                && let Some(n) = v.get("seq").and_then(|s| s.as_u64())
            {
                out.lock().unwrap().insert(n as u32);
            }
            let _ = d.ack(BasicAckOptions::default()).await;
        }
    });
    (seen, conn)
}

/// Count `Connected` events after the first.
fn reconnects(app: &Application) -> Arc<Mutex<u32>> {
    let count = Arc::new(Mutex::new(0));
    let mut ev = app.session().events();
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok(e) = ev.recv().await {
            if let SessionEvent::Connected { generation } = e
                && generation > 1
            {
                *c.lock().unwrap() += 1;
            }
        }
    });
    count
}

/// Count `SecretUpdated` events after the first reconnect.
fn renewals_after_reconnect(app: &Application) -> Arc<Mutex<u32>> {
    let count = Arc::new(Mutex::new(0));
    let mut ev = app.session().events();
    let c = count.clone();
    tokio::spawn(async move {
        let mut moved = false;
        while let Ok(e) = ev.recv().await {
            match e {
                SessionEvent::Connected { generation } if generation > 1 => moved = true,
                SessionEvent::SecretUpdated if moved => *c.lock().unwrap() += 1,
                _ => {}
            }
        }
    });
    count
}

async fn own_subscription(app: &Application) -> Seen {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    app.add_message_callback(app.name(), "ping", move |m| {
        let s = s.clone();
        async move {
            let v: serde_json::Value = m.json()?;
            if let Some(n) = v.get("seq").and_then(|x| x.as_u64()) {
                s.lock().unwrap().insert(n as u32);
            }
            Ok(())
        }
    })
    .await
    .unwrap();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_carries_applications_through_the_loss_of_a_node() {
    let t = std::time::Instant::now();
    let mut cluster = tokio::task::spawn_blocking(|| Cluster::start(ClusterOptions::default()))
        .await
        .unwrap()
        .expect("a three-node cluster (RabbitMQ installed?)");
    eprintln!("cluster up after {:?}", t.elapsed());

    // 1. Continuous publishing through node A (0) while A goes away.
    let prefix = unique("failover");
    let (independent, _c) = independent_consumer(&cluster, 2, &prefix).await;
    // With a service account whose token is renewed every second (the
    // nodes share the signing key the Keycloak emulation signs with).
    let key = cluster.node(0).signing_key().unwrap();
    let kc = KeycloakEmulator::start("NOS-T", key).await;
    kc.add_client("sos-sat", Some("sat-secret"));
    let mut token_config = config(&cluster, 0);
    token_config.servers.rabbitmq.keycloak_authentication = true;
    token_config.servers.keycloak = Some(KeycloakConfig {
        host: "127.0.0.1".into(),
        port: u32::from(kc.port()),
        realm: "NOS-T".into(),
        tls: Some(false),
        token_refresh_interval: 1,
        ..Default::default()
    });
    let sat = Application::start_up(
        "sat",
        &prefix,
        &token_config,
        StartOptions {
            auth: Credentials::client("sos-sat", Some("sat-secret".into())).into(),
            set_offset: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        sat.session()
            .url()
            .contains(&cluster.node(0).amqp_port().to_string())
    );
    let reconnected = reconnects(&sat);
    let renewed_after_failover = renewals_after_reconnect(&sat);
    let own = own_subscription(&sat).await;
    const N: u32 = 1000;
    let mut accepted = 0u32;
    for seq in 0..N {
        if seq == 300 {
            cluster.stop_app(0).unwrap();
        }
        if seq == 600 {
            let k = std::time::Instant::now();
            cluster.kill(0).unwrap();
            eprintln!("node A killed in {:?}", k.elapsed());
        }
        // Accepted into the ordered buffer: from here on it must arrive.
        sat.send_message("ping", &format!(r#"{{"seq":{seq}}}"#))
            .await
            .expect("accepted while failing over");
        accepted += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sat.flush(Duration::from_secs(60)).await.unwrap();
    wait_for("independent consumer", &independent, accepted as usize, 60).await;
    wait_for(
        "the application's own subscription",
        &own,
        accepted as usize,
        60,
    )
    .await;
    assert!(*reconnected.lock().unwrap() >= 1, "it reconnected");
    // Renewal goes on on the new node: update-secrets after the reconnect.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while *renewed_after_failover.lock().unwrap() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        *renewed_after_failover.lock().unwrap() >= 2,
        "tokens renewed with update-secret on the new node"
    );
    assert!(
        !sat.session()
            .url()
            .contains(&cluster.node(0).amqp_port().to_string()),
        "now on another node: {}",
        sat.session().url()
    );
    sat.shut_down().await;
    eprintln!("1. failover of a publisher done after {:?}", t.elapsed());
    cluster.restart(0).expect("node A back in the cluster");
    eprintln!("node A back after {:?}", t.elapsed());

    // 2. 1,000 messages while the consumer's node (B = 1) is killed.
    let prefix = unique("consumer-node-lost");
    let ground = Application::start_up("ground", &prefix, &config(&cluster, 1), options())
        .await
        .unwrap();
    let got = own_subscription(&ground).await;
    let fire = Application::start_up("fire", &prefix, &config(&cluster, 2), options())
        .await
        .unwrap();
    // Publishing starts right after the SIGKILL: the quorum queue on the
    // lost node nacks until its new leader is elected (tens of seconds
    // here), within the nack retry window; every message must arrive.
    let k = std::time::Instant::now();
    cluster.kill(1).unwrap();
    eprintln!("node B killed in {:?}", k.elapsed());
    for seq in 0..1000u32 {
        fire.send_message_as("ground", &["ping"], &format!(r#"{{"seq":{seq}}}"#))
            .await
            .unwrap();
    }
    fire.flush(Duration::from_secs(60)).await.unwrap();
    wait_for("the consumer after its failover", &got, 1000, 90).await;
    fire.shut_down().await;
    ground.shut_down().await;
    eprintln!("2. consumer's node killed done after {:?}", t.elapsed());
    cluster.restart(1).expect("node B back");
    eprintln!("node B back after {:?}", t.elapsed());

    // 3. A scenario across nodes while one node is stopped and started.
    let prefix = unique("cluster-scenario");
    let start = chrono::Utc::now();
    let mut cfg = config(&cluster, 0);
    cfg.execution.manager = Some(nost_config::ManagerConfig {
        sim_start_time: Some(start),
        sim_stop_time: Some(start + chrono::TimeDelta::seconds(600)),
        time_scale_factor: 30.0,
        time_step: nost_config::NostDuration::seconds(5),
        command_lead: nost_config::NostDuration::microseconds(500_000),
        required_apps: vec!["red".into(), "blue".into()],
        init_retry_delay_s: 2,
        set_offset: false,
        ..Default::default()
    });
    let red = ManagedApplication::start_up("red", &prefix, &config(&cluster, 1), options())
        .await
        .unwrap();
    let blue = ManagedApplication::start_up("blue", &prefix, &config(&cluster, 2), options())
        .await
        .unwrap();
    let manager = Manager::start_up("manager", &prefix, &cfg, options())
        .await
        .unwrap();
    let plan = TestPlan::from_config(cfg.execution.manager.as_ref().unwrap()).unwrap();
    let run = tokio::spawn(async move { manager.execute_test_plan(plan).await.map(|_| manager) });
    // While it runs (20 s of wallclock), blue's node goes and comes back.
    tokio::time::sleep(Duration::from_secs(6)).await;
    cluster.stop_app(2).unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    cluster.start_app(2).unwrap();
    let manager = run.await.unwrap().expect("the test plan ran");
    for app in [&red, &blue] {
        tokio::time::timeout(Duration::from_secs(60), app.wait_terminated())
            .await
            .unwrap_or_else(|_| panic!("{} reached TERMINATED", app.app().name()));
        app.app().shut_down().await;
    }
    manager.app().shut_down().await;
    eprintln!("3. scenario done after {:?}", t.elapsed());
    let mut cluster = cluster;
    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .unwrap();
}
