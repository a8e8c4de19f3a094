//! Helpers of the workspace's integration suites for the shared default
//! node (127.0.0.1:5672, guest/guest): a TCP proxy that can cut the network,
//! `rabbitmqctl` for the default node, a user with its own virtual host, a
//! queue policy, unique names, polling for a condition, and the Python peer.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// A loopback TCP proxy in front of a broker whose link can be cut and restored.
pub struct Proxy {
    addr: SocketAddr,
    blocked: Arc<AtomicBool>,
    links: Arc<Mutex<CancellationToken>>,
    stop: CancellationToken,
}

impl Proxy {
    /// Listen on a free loopback port and forward to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let blocked = Arc::new(AtomicBool::new(false));
        let links = Arc::new(Mutex::new(CancellationToken::new()));
        let stop = CancellationToken::new();
        let (b, l, s) = (blocked.clone(), links.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = s.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((mut inbound, _)) = accepted else {
                    continue;
                };
                if b.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let cut = l.lock().await.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = cut.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        Ok(Proxy {
            addr,
            blocked,
            links,
            stop,
        })
    }

    /// A proxy in front of the default node (127.0.0.1:5672); panics when
    /// no loopback port can be bound.
    pub async fn to_default_node() -> Proxy {
        let node = SocketAddr::from(([127, 0, 0, 1], 5672));
        Proxy::start(node)
            .await
            .unwrap_or_else(|e| panic!("a proxy to {node}: {e}"))
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Drop every open link and refuse new ones (a network outage).
    pub async fn cut(&self) {
        self.blocked.store(true, Ordering::SeqCst);
        let mut l = self.links.lock().await;
        l.cancel();
        *l = CancellationToken::new();
    }

    /// Accept links again.
    pub fn restore(&self) {
        self.blocked.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Run `rabbitmqctl` against the default node and return stdout.
pub fn rabbitmqctl(args: &[&str]) -> String {
    match Command::new("rabbitmqctl").args(args).output() {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => panic!("rabbitmqctl {args:?} could not run: {e}"),
    }
}

/// Close every connection of the default node whose client-provided name
/// is `name`; returns how many were closed.
pub fn close_connections_named(name: &str) -> usize {
    let out = rabbitmqctl(&[
        "list_connections",
        "-q",
        "--no-table-headers",
        "pid",
        "client_properties",
    ]);
    let mut n = 0;
    for line in out.lines().filter(|l| l.contains(name)) {
        if let Some(pid) = line.split_whitespace().next() {
            rabbitmqctl(&["close_connection", pid, "test: forced close"]);
            n += 1;
        }
    }
    n
}

/// The names of the queues in virtual host `vhost` of the default node.
pub fn queue_names(vhost: &str) -> Vec<String> {
    rabbitmqctl(&[
        "list_queues",
        "-p",
        vhost,
        "-q",
        "--no-table-headers",
        "name",
    ])
    .lines()
    .map(str::trim)
    .filter(|q| !q.is_empty())
    .map(str::to_owned)
    .collect()
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}x{nanos}", std::process::id())
}

/// The Python interpreter of a virtual environment with `nost-tools==3.6.0`
/// from PyPI, created once under `target/interop-venv` (or taken from
/// `NOST_TEST_PYTHON`). Panics with what to install when it cannot be made.
pub fn python_with_nost_tools() -> std::path::PathBuf {
    static PY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PY.get_or_init(|| {
        let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
        crate::nost_tools_python(&target).unwrap_or_else(|e| panic!("{e}"))
    })
    .clone()
}

/// The directory of the Python peer scripts (`tests/interop`).
pub fn interop_scripts() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop")
}

/// A user of the default node with its own virtual host, full permissions
/// there, removed (with the virtual host) when dropped.
pub struct BrokerUser {
    /// User name (also the virtual host's name).
    pub name: String,
    /// Its password.
    pub password: String,
}

impl BrokerUser {
    /// Create user `name` with password `password`, the virtual host `name`
    /// and configure/write/read permissions on it.
    pub fn create(name: &str) -> BrokerUser {
        let password = format!("pw-{name}");
        rabbitmqctl(&["add_user", name, &password]);
        rabbitmqctl(&["add_vhost", name]);
        rabbitmqctl(&["set_permissions", "-p", name, name, ".*", ".*", ".*"]);
        BrokerUser {
            name: name.to_owned(),
            password,
        }
    }

    /// Restrict writing to `exchange` to routing keys matching `write`
    /// (a regular expression); reading stays open.
    pub fn set_topic_write(&self, exchange: &str, write: &str) {
        rabbitmqctl(&[
            "set_topic_permissions",
            "-p",
            &self.name,
            &self.name,
            exchange,
            write,
            ".*",
        ]);
    }
}

impl Drop for BrokerUser {
    fn drop(&mut self) {
        rabbitmqctl(&["delete_vhost", &self.name]);
        rabbitmqctl(&["delete_user", &self.name]);
    }
}

/// A policy on the default node's `/` virtual host for exactly one queue
/// name, cleared when dropped.
pub struct QueuePolicy {
    name: String,
}

impl QueuePolicy {
    /// Apply `definition` (JSON) to the queue named `queue` only.
    pub fn set(queue: &str, definition: &str) -> QueuePolicy {
        let name = format!("{queue}-policy");
        let pattern = format!("^{}$", queue.replace('.', "\\."));
        rabbitmqctl(&[
            "set_policy",
            "--apply-to",
            "queues",
            &name,
            &pattern,
            definition,
        ]);
        QueuePolicy { name }
    }
}

impl Drop for QueuePolicy {
    fn drop(&mut self) {
        rabbitmqctl(&["clear_policy", &self.name]);
    }
}

/// Poll `condition` every 50 ms until it holds or `timeout` has passed;
/// whether it held. For "wait until it arrived, then assert" instead of a
/// sleep before the assertion.
pub async fn eventually(timeout: std::time::Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
