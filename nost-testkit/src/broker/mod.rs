//! A dedicated RabbitMQ node with the OAuth2 backend (RabbitMQ 3.10's
//! `rabbit_auth_backend_oauth2`, configured as measured): its own temporary directory,
//! free ports, an RSA signing key and a TLS CA made for the run.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::keycloak::SigningKey;
use crate::process_group::{ProcessGroup, Term};

mod info;
mod keys;
mod spawn;

pub use info::OAuthBrokerInfo;
use keys::make_tls;
pub use keys::{make_rsa_key, rsa_key_pair};
use spawn::{free_ports, spawn_node, spawn_watchdog};

const BIN: &str = "/usr/lib/rabbitmq/bin";
/// The `kid` of the signing key the node trusts.
pub const KID: &str = "nost-test-key";
/// Prefix of the environment variables written by [`OAuthBroker::export_env`].
pub const ENV_PREFIX: &str = "NOST_TEST_OAUTH_";

/// Why the node could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// RabbitMQ is not installed where Debian puts it.
    #[error(
        "{BIN}/rabbitmq-server not found: install RabbitMQ with its OAuth2 plugin (`apt-get install rabbitmq-server`)"
    )]
    NotInstalled,
    /// A helper command (rabbitmqctl, key generation) failed.
    #[error("{command} failed: {detail}")]
    Command {
        /// What ran.
        command: String,
        /// Its error output.
        detail: String,
    },
    /// The node did not come up; its `[error]` lines follow.
    #[error("the OAuth2 RabbitMQ node did not start: {0}")]
    Boot(String),
    /// File system trouble.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Options of [`OAuthBroker::start`].
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// How often a channel re-checks its cached permissions (the broker
    /// default is 60 s; short makes token expiry visible fast). Default 1 s.
    pub channel_tick: Duration,
    /// How long to wait for the node to boot (default 60 s).
    pub boot_timeout: Duration,
    /// Start a tiny `sh` watchdog that stops the node and removes its
    /// directory when the process that started it dies without calling
    /// [`OAuthBroker::stop`] (a panic with `panic = "abort"`, SIGKILL, or a
    /// node kept in a `static` of a test binary). Default `true`.
    pub watchdog: bool,
    /// Extra `rabbitmq.conf` lines appended to the measured configuration.
    pub extra_config: Vec<String>,
    /// The Erlang cookie (nodes of one cluster share it). Default: random.
    pub cookie: Option<String>,
    /// A directory with `rsa.pem`/`rsa_pub.pem` to trust instead of a new
    /// key pair (nodes of one cluster verify the same tokens).
    pub keys_from: Option<PathBuf>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            channel_tick: Duration::from_millis(1000),
            boot_timeout: Duration::from_secs(60),
            watchdog: true,
            extra_config: Vec::new(),
            cookie: None,
            keys_from: None,
        }
    }
}

/// A running node; stopped (and its directory removed) by [`stop`](Self::stop) or on drop.
pub struct OAuthBroker {
    info: OAuthBrokerInfo,
    child: Option<Child>,
    watchdog: Option<Child>,
    dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for OAuthBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthBroker")
            .field("info", &self.info)
            .finish()
    }
}

/// 20 random capital letters: an Erlang cookie.
pub(crate) fn random_cookie() -> String {
    let bytes: [u8; 20] = rand::random();
    bytes.iter().map(|b| char::from(b'A' + b % 26)).collect()
}

/// Whether Debian's RabbitMQ server is installed (where the node is started from).
pub fn rabbitmq_installed() -> bool {
    Path::new(BIN).join("rabbitmq-server").exists()
}

impl OAuthBroker {
    /// Start a node and wait until it accepts AMQP logins
    /// (`rabbitmqctl await_startup` succeeded).
    pub fn start(options: BrokerOptions) -> Result<OAuthBroker, BrokerError> {
        if !rabbitmq_installed() {
            return Err(BrokerError::NotInstalled);
        }
        let tmp = tempfile::Builder::new()
            .prefix("nost-oauth-node-")
            .tempdir()?;
        let dir = tmp.path().to_path_buf();
        for sub in ["home", "etc/conf.d", "data", "log", "keys", "tls"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let [amqp_port, amqps_port, dist_port] = free_ports::<3>()?;
        let suffix: u32 = rand::random();
        let info = OAuthBrokerInfo {
            amqp_port,
            amqps_port,
            dir: dir.clone(),
            node: format!("nosttest-{}-{suffix:08x}@localhost", std::process::id()),
            dist_port,
            kid: KID.to_owned(),
        };
        let cookie = dir.join("home/.erlang.cookie");
        let cookie_value = options.cookie.clone().unwrap_or_else(random_cookie);
        std::fs::write(&cookie, cookie_value)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400))?;
        }
        match &options.keys_from {
            Some(from) => {
                for f in ["rsa.pem", "rsa_pub.pem"] {
                    std::fs::copy(from.join(f), dir.join("keys").join(f))?;
                }
            }
            None => make_rsa_key(&dir.join("keys/rsa.pem"), &dir.join("keys/rsa_pub.pem"))?,
        }
        make_tls(&dir.join("tls"))?;
        let d = |p: &str| dir.join(p).display().to_string();
        std::fs::write(
            dir.join("etc/rabbitmq.conf"),
            format!(
                "listeners.tcp.1 = 127.0.0.1:{amqp}
listeners.ssl.1 = 127.0.0.1:{amqps}
ssl_options.cacertfile = {ca}
ssl_options.certfile = {cert}
ssl_options.keyfile = {key}
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
auth_backends.1 = rabbit_auth_backend_oauth2
auth_backends.2 = internal
default_user = guest
default_pass = guest
loopback_users = none
auth_oauth2.resource_server_id = rabbitmq
auth_oauth2.additional_scopes_key = extra_scope
auth_oauth2.default_key = {KID}
auth_oauth2.signing_keys.{KID} = {pubkey}
log.console = false
log.file.level = debug
{extra}",
                amqp = info.amqp_port,
                amqps = info.amqps_port,
                ca = d("tls/ca.pem"),
                cert = d("tls/server.pem"),
                key = d("tls/server.key"),
                pubkey = d("keys/rsa_pub.pem"),
                extra = options
                    .extra_config
                    .iter()
                    .map(|l| format!("{l}\n"))
                    .collect::<String>(),
            ),
        )?;
        std::fs::write(
            dir.join("etc/advanced.config"),
            format!(
                "[{{rabbit, [{{channel_tick_interval, {}}}]}}].\n",
                options.channel_tick.as_millis()
            ),
        )?;
        std::fs::write(
            dir.join("etc/enabled_plugins"),
            "[rabbitmq_auth_backend_oauth2].\n",
        )?;
        std::fs::write(dir.join("etc/rabbitmq-env.conf"), "")?;

        let child = spawn_node(&info)?;
        let watchdog = if options.watchdog {
            spawn_watchdog(&dir, child.id())
        } else {
            None
        };
        let mut broker = OAuthBroker {
            info,
            child: Some(child),
            watchdog,
            dir: Some(tmp),
        };
        if let Err(e) = broker.wait_ready(options.boot_timeout) {
            broker.stop();
            return Err(e);
        }
        Ok(broker)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), BrokerError> {
        let started = Instant::now();
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(BrokerError::Boot(format!(
                    "rabbitmq-server exited ({status}):\n{}",
                    self.error_lines()
                )));
            }
            if started.elapsed() > timeout {
                return Err(BrokerError::Boot(format!(
                    "not ready within {} s:\n{}",
                    timeout.as_secs(),
                    self.error_lines()
                )));
            }
            if TcpStream::connect(("127.0.0.1", self.info.amqp_port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let left = timeout.saturating_sub(started.elapsed()).as_secs().max(5);
        self.info
            .rabbitmqctl(&["await_startup", "--timeout", &left.to_string()])
            .map_err(|e| BrokerError::Boot(format!("{e}\n{}", self.error_lines())))
            .map(|_| ())
    }

    /// `[error]` lines from the node's output and logs (for boot failures).
    pub fn error_lines(&self) -> String {
        let mut lines = Vec::new();
        let mut files = vec![
            self.info.dir.join("log/stdout.txt"),
            self.info.dir.join("log/stderr.txt"),
        ];
        if let Ok(rd) = std::fs::read_dir(self.info.dir.join("log")) {
            files.extend(
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "log")),
            );
        }
        for f in files {
            let mut text = String::new();
            if std::fs::File::open(&f)
                .and_then(|mut h| h.read_to_string(&mut text))
                .is_ok()
            {
                lines.extend(
                    text.lines()
                        .filter(|l| {
                            l.contains("[error]") || l.contains("ERROR") || l.contains("error:")
                        })
                        .map(str::to_owned),
                );
            }
        }
        const MAX: usize = 60;
        if lines.is_empty() {
            "(no [error] lines in the node's output or log)".into()
        } else if lines.len() > MAX {
            let more = lines.len() - MAX;
            lines.truncate(MAX);
            format!("{}\n… ({more} more [error] lines)", lines.join("\n"))
        } else {
            lines.join("\n")
        }
    }

    /// How to reach it.
    pub fn info(&self) -> &OAuthBrokerInfo {
        &self.info
    }

    /// Plain AMQP port on 127.0.0.1.
    pub fn amqp_port(&self) -> u16 {
        self.info.amqp_port
    }

    /// AMQPS port on 127.0.0.1.
    pub fn amqps_port(&self) -> u16 {
        self.info.amqps_port
    }

    /// The CA that signed the node's TLS certificate (PEM).
    pub fn ca_cert_path(&self) -> PathBuf {
        self.info.ca_cert_path()
    }

    /// Erlang node name, `nosttest-<pid>-<random>@localhost`.
    pub fn node_name(&self) -> &str {
        &self.info.node
    }

    /// The private key (and `kid`) the node trusts, for minting tokens.
    pub fn signing_key(&self) -> Result<SigningKey, BrokerError> {
        self.info.signing_key()
    }

    /// Run `rabbitmqctl -n NODE ARGS…` against this node (stdout on success).
    pub fn rabbitmqctl(&self, args: &[&str]) -> Result<String, BrokerError> {
        self.info.rabbitmqctl(args)
    }

    /// SIGKILL the node's process group: a crash, no clean shutdown. The
    /// directory stays until [`stop`](Self::stop).
    pub fn kill(&self) -> Result<(), BrokerError> {
        let Some(child) = &self.child else {
            return Ok(());
        };
        ProcessGroup::of(child).kill(None)?;
        Ok(())
    }

    /// Start the node again after [`kill`](Self::kill) (same name, ports,
    /// data: a cluster member rejoins its cluster) and wait until it is ready.
    pub fn restart(&mut self, timeout: Duration) -> Result<(), BrokerError> {
        if let Some(mut old) = self.child.take() {
            let _ = old.wait();
        }
        let child = spawn_node(&self.info)?;
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
            self.watchdog = spawn_watchdog(&self.info.dir, child.id());
        }
        self.child = Some(child);
        self.wait_ready(timeout)
    }

    /// `NOST_TEST_OAUTH_*` variables that let another process use this node
    /// through [`OAuthBrokerInfo::from_env`].
    pub fn export_env(&self) -> Vec<(String, String)> {
        self.info.to_env()
    }

    /// Stop the node (SIGTERM to the pid in its pid file, up to 10 s, then
    /// SIGKILL to its process group) and remove its directory. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid_file = self.info.dir.join("data/node.pid");
            let node_pid = std::fs::read_to_string(&pid_file)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty());
            // The Erlang VM of the pid file (else the script) stops cleanly on
            // SIGTERM and takes the rest of the group with it; whatever is
            // left after 10 s is killed.
            let pid = node_pid.and_then(|p| p.parse().ok()).unwrap_or(child.id());
            ProcessGroup::stop(&mut child, Term::Pid(pid), Duration::from_secs(10));
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

impl Drop for OAuthBroker {
    fn drop(&mut self) {
        self.stop();
    }
}
