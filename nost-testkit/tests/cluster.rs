//! The cluster harness: three real nodes form one cluster, a quorum queue
//! declared through one node is read through another, a node stopped and
//! started again rejoins, a killed node leaves the others running, and
//! nothing is left behind (epmd names, directories).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use nost_testkit::{Cluster, ClusterOptions, epmd_knows};

async fn connect(port: u16) -> Connection {
    Connection::connect(
        &format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
        ConnectionProperties::default(),
    )
    .await
    .expect("guest login on a cluster node")
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_form_one_cluster_survive_a_stop_and_a_kill_and_leave_nothing() {
    if !nost_testkit::rabbitmq_installed() {
        panic!("RabbitMQ is not installed: `apt-get install rabbitmq-server` (.ci/run does)");
    }
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(ClusterOptions::default()))
        .await
        .unwrap()
        .expect("cluster");
    let names: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|n| n.node_name().to_owned())
        .collect();
    let dirs: Vec<_> = cluster
        .nodes()
        .iter()
        .map(|n| n.info().dir.clone())
        .collect();
    let mut running = cluster.running_nodes();
    running.sort();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(running, expected, "all three nodes run in one cluster");

    // Replicated: 50 messages in through node 0, out through node 2.
    let a = connect(cluster.node(0).amqp_port()).await;
    let ch = a.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let queue = format!("cluster-test-{}", std::process::id());
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(queue.as_str().into(), durable, quorum())
        .await
        .unwrap();
    for i in 0..50u32 {
        ch.basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            i.to_string().as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let c = connect(cluster.node(2).amqp_port()).await;
    let cch = c.create_channel().await.unwrap();
    let mut consumer = cch
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 50 {
        let d = tokio::time::timeout(Duration::from_secs(20), consumer.next())
            .await
            .expect("a delivery within 20 s")
            .unwrap()
            .unwrap();
        got.push(String::from_utf8_lossy(&d.data).parse::<u32>().unwrap());
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    assert_eq!(got, (0..50).collect::<Vec<_>>(), "all 50, in order");
    ch.queue_delete(queue.as_str().into(), Default::default())
        .await
        .unwrap();
    let _ = a.close(200, "done".into()).await;
    let _ = c.close(200, "done".into()).await;

    // stop_app / start_app: the node leaves and rejoins.
    tokio::task::spawn_blocking(move || {
        cluster.stop_app(1).unwrap();
        cluster
            .await_running(2, Duration::from_secs(30))
            .expect("two left");
        assert_eq!(cluster.running_nodes().len(), 2);
        cluster.start_app(1).unwrap();
        cluster
            .await_running(3, Duration::from_secs(60))
            .expect("rejoined");
        // A crash of node 2: the other two keep running.
        cluster.kill(2).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while cluster.running_nodes().len() != 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
        }
        assert_eq!(cluster.running_nodes().len(), 2, "two run after a kill");
        let mut cluster = cluster;
        cluster.stop();
    })
    .await
    .unwrap();

    // Nothing behind.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while names.iter().any(|n| epmd_knows(n)) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for n in &names {
        assert!(!epmd_knows(n), "{n} still registered in epmd");
    }
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}
