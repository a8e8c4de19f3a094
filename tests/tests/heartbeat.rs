//! `heartbeat` in the YAML reaches the broker: `0` disables heartbeats for
//! the connection (lapin alone would take the broker's 60 s proposal; see
//! vendor/lapin/PATCHED.md), another value is negotiated down to it. Read
//! back from the broker with `rabbitmqctl list_connections client_properties timeout`.

use std::time::Duration;

use nost_amqp::Session;
use nost_testkit::{eventually, local_settings_with, rabbitmqctl, unique};

async fn negotiated_timeout(heartbeat: u16) -> String {
    let name = unique("heartbeat");
    let settings = local_settings_with(&name, |r| r.heartbeat = Some(heartbeat));
    let session = Session::connect(settings).await.expect("connects");
    let mut timeout = String::new();
    let seen = eventually(Duration::from_secs(20), || {
        // client_properties holds the connection_name; timeout is last.
        let listed = rabbitmqctl(&["-q", "list_connections", "client_properties", "timeout"]);
        match listed.lines().find(|l| l.contains(&name)) {
            Some(line) => {
                timeout = line
                    .rsplit('\t')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                true
            }
            None => false,
        }
    })
    .await;
    session.shut_down(Duration::from_secs(5)).await;
    assert!(
        seen,
        "the connection {name} never showed in list_connections"
    );
    timeout
}

#[tokio::test]
async fn heartbeat_zero_disables_heartbeats_and_other_values_are_negotiated() {
    assert_eq!(
        negotiated_timeout(0).await,
        "0",
        "heartbeat: 0 must disable heartbeats"
    );
    assert_eq!(negotiated_timeout(17).await, "17");
}
