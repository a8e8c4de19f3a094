//! A RabbitMQ cluster on loopback: several [`OAuthBroker`] nodes that share
//! one Erlang cookie and one signing key, joined with `join_cluster`.
//!
//! Each node has its own name, ports and directory; basic auth
//! (guest/guest) and JWT logins work on every node, as on the single test
//! node. [`Cluster::stop`] (or drop) stops every node and removes every
//! directory.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::broker::{BrokerError, BrokerOptions, OAuthBroker, random_cookie};

/// Options of [`Cluster::start`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// How many nodes (at least 1; default 3).
    pub nodes: usize,
    /// Options of every node (the cookie and keys are set by the cluster).
    pub node: BrokerOptions,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            nodes: 3,
            node: BrokerOptions::default(),
        }
    }
}

/// A running cluster; stopped, leaving nothing behind, by [`Cluster::stop`]
/// or on drop.
#[derive(Debug)]
pub struct Cluster {
    nodes: Vec<OAuthBroker>,
}

impl Cluster {
    /// Start `options.nodes` nodes and join every node after the first to
    /// the first; returns once `cluster_status` shows all of them running.
    pub fn start(options: ClusterOptions) -> Result<Cluster, BrokerError> {
        let count = options.nodes.max(1);
        let cookie = options.node.cookie.clone().unwrap_or_else(random_cookie);
        let first = OAuthBroker::start(BrokerOptions {
            cookie: Some(cookie.clone()),
            ..options.node.clone()
        })?;
        let keys = first.info().dir.join("keys");
        // The others boot side by side (each boot is mostly waiting).
        let rest: Vec<Result<OAuthBroker, BrokerError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (1..count)
                .map(|_| {
                    let opts = BrokerOptions {
                        cookie: Some(cookie.clone()),
                        keys_from: Some(keys.clone()),
                        ..options.node.clone()
                    };
                    s.spawn(move || OAuthBroker::start(opts))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(BrokerError::Boot("a node's start thread panicked".into()))
                    })
                })
                .collect()
        });
        let mut cluster = Cluster { nodes: vec![first] };
        for node in rest {
            // On error the nodes started so far are stopped by drop.
            cluster.nodes.push(node?);
        }
        let seed = cluster.nodes[0].node_name().to_owned();
        for node in &cluster.nodes[1..] {
            node.rabbitmqctl(&["stop_app"])?;
            node.rabbitmqctl(&["join_cluster", &seed])?;
            node.rabbitmqctl(&["start_app"])?;
        }
        cluster.await_running(count, Duration::from_secs(60))?;
        Ok(cluster)
    }

    /// Wait until `cluster_status` of the first running node lists `n`
    /// running nodes.
    pub fn await_running(&self, n: usize, timeout: Duration) -> Result<(), BrokerError> {
        let started = Instant::now();
        loop {
            let running = self.running_nodes();
            if running.len() >= n {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(BrokerError::Boot(format!(
                    "cluster: {} of {n} nodes running after {} s ({running:?})",
                    running.len(),
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Names of the nodes `cluster_status` reports as running, asked of
    /// the first node that answers.
    pub fn running_nodes(&self) -> Vec<String> {
        for node in &self.nodes {
            let Ok(out) = node.rabbitmqctl(&["cluster_status", "--formatter", "json"]) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&out) else {
                continue;
            };
            if let Some(list) = v.get("running_nodes").and_then(|r| r.as_array()) {
                return list
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect();
            }
        }
        Vec::new()
    }

    /// The nodes, in start order (the first is the seed).
    pub fn nodes(&self) -> &[OAuthBroker] {
        &self.nodes
    }

    /// Node `i`.
    ///
    /// # Panics
    /// When `i` is not below the node count (test code only).
    pub fn node(&self, i: usize) -> &OAuthBroker {
        &self.nodes[i]
    }

    /// `127.0.0.1:PORT` of every node's plain AMQP listener.
    pub fn hosts(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.amqp_port()))
            .collect()
    }

    /// `rabbitmqctl -n NODE stop_app` on node `i` (the node's Erlang VM
    /// stays up; `start_app` brings RabbitMQ back).
    pub fn stop_app(&self, i: usize) -> Result<(), BrokerError> {
        self.node(i).rabbitmqctl(&["stop_app"]).map(|_| ())
    }

    /// `rabbitmqctl -n NODE start_app` on node `i`.
    pub fn start_app(&self, i: usize) -> Result<(), BrokerError> {
        self.node(i).rabbitmqctl(&["start_app"]).map(|_| ())
    }

    /// SIGKILL node `i`'s process group (a crash, not a shutdown); its
    /// directory stays until [`stop`](Self::stop).
    pub fn kill(&self, i: usize) -> Result<(), BrokerError> {
        self.node(i).kill()
    }

    /// Stop every node and remove every directory.
    pub fn stop(&mut self) {
        for node in self.nodes.iter_mut().rev() {
            node.stop();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `epmd -names` still lists `node` (name part before `@`).
pub fn epmd_knows(node: &str) -> bool {
    let short = node.split('@').next().unwrap_or(node);
    Command::new("epmd")
        .arg("-names")
        .stderr(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.contains(&format!("name {short} ")))
        })
        .unwrap_or(false)
}
