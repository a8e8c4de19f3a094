//! A dedicated RabbitMQ node with the OAuth2 backend, per the measured
//! recipe in `shared/spec/oauth-broker.md`: its own temporary directory,
//! free ports, an RSA signing key and a TLS CA made for the run.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::keycloak::SigningKey;

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
    /// A helper command (openssl, rabbitmqctl) failed.
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

/// How to reach and control a running test node (also from another process).
#[derive(Debug, Clone)]
pub struct OAuthBrokerInfo {
    /// Plain AMQP port on 127.0.0.1.
    pub amqp_port: u16,
    /// AMQPS port on 127.0.0.1 (certificate for localhost/127.0.0.1/::1).
    pub amqps_port: u16,
    /// The node's directory (keys/, tls/, log/ …).
    pub dir: PathBuf,
    /// Erlang node name.
    pub node: String,
    /// Erlang distribution port.
    pub dist_port: u16,
    /// The `kid` the node knows the signing key by ([`KID`]).
    pub kid: String,
}

impl OAuthBrokerInfo {
    /// The private signing key (PKCS#8 PEM) the node trusts, `kid` [`KID`].
    pub fn signing_key_path(&self) -> PathBuf {
        self.dir.join("keys/rsa.pem")
    }

    /// The CA that signed the node's TLS certificate.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }

    /// The key the node trusts, ready for a [`KeycloakEmulator`](crate::KeycloakEmulator).
    pub fn signing_key(&self) -> Result<SigningKey, BrokerError> {
        Ok(SigningKey::from_pem_file(
            &self.signing_key_path(),
            &self.kid,
        )?)
    }

    /// `amqp://127.0.0.1:PORT` (no credentials: the token is the password).
    pub fn amqp_url(&self) -> String {
        format!("amqp://127.0.0.1:{}", self.amqp_port)
    }

    /// Environment variables that describe this node to test processes.
    pub fn to_env(&self) -> Vec<(String, String)> {
        vec![
            (format!("{ENV_PREFIX}AMQP_PORT"), self.amqp_port.to_string()),
            (
                format!("{ENV_PREFIX}AMQPS_PORT"),
                self.amqps_port.to_string(),
            ),
            (format!("{ENV_PREFIX}DIR"), self.dir.display().to_string()),
            (format!("{ENV_PREFIX}NODE"), self.node.clone()),
            (format!("{ENV_PREFIX}DIST_PORT"), self.dist_port.to_string()),
            (format!("{ENV_PREFIX}KID"), self.kid.clone()),
            (
                format!("{ENV_PREFIX}CA_CERT"),
                self.ca_cert_path().display().to_string(),
            ),
            (
                format!("{ENV_PREFIX}SIGNING_KEY"),
                self.signing_key_path().display().to_string(),
            ),
        ]
    }

    /// The node described by [`to_env`](Self::to_env) variables, if set.
    pub fn from_env() -> Option<Self> {
        let var = |k: &str| std::env::var(format!("{ENV_PREFIX}{k}")).ok();
        Some(OAuthBrokerInfo {
            amqp_port: var("AMQP_PORT")?.parse().ok()?,
            amqps_port: var("AMQPS_PORT")?.parse().ok()?,
            dir: var("DIR")?.into(),
            node: var("NODE")?,
            dist_port: var("DIST_PORT")?.parse().ok()?,
            kid: var("KID").unwrap_or_else(|| KID.to_owned()),
        })
    }

    /// The node started by `cargo xtask integration`/`test`, or a panic
    /// saying how to run the suite.
    pub fn from_env_or_panic() -> Self {
        Self::from_env().unwrap_or_else(|| {
            panic!(
                "no OAuth2 RabbitMQ node: run this suite with `cargo xtask integration` (or `cargo xtask test`), which starts one and sets {ENV_PREFIX}*"
            )
        })
    }

    /// The environment `rabbitmq-server` and `rabbitmqctl` run with for
    /// this node (HOME, RABBITMQ_*, ERL_CRASH_DUMP).
    pub fn node_env(&self) -> Vec<(String, String)> {
        let d = |p: &str| self.dir.join(p).display().to_string();
        vec![
            ("HOME".into(), d("home")),
            ("RABBITMQ_NODENAME".into(), self.node.clone()),
            ("RABBITMQ_NODE_IP_ADDRESS".into(), "127.0.0.1".into()),
            ("RABBITMQ_NODE_PORT".into(), self.amqp_port.to_string()),
            ("RABBITMQ_DIST_PORT".into(), self.dist_port.to_string()),
            ("RABBITMQ_CONFIG_FILE".into(), d("etc/rabbitmq.conf")),
            ("RABBITMQ_CONFIG_FILES".into(), d("etc/conf.d/*.conf")),
            (
                "RABBITMQ_ADVANCED_CONFIG_FILE".into(),
                d("etc/advanced.config"),
            ),
            (
                "RABBITMQ_ENABLED_PLUGINS_FILE".into(),
                d("etc/enabled_plugins"),
            ),
            ("RABBITMQ_MNESIA_BASE".into(), d("data")),
            ("RABBITMQ_LOG_BASE".into(), d("log")),
            ("RABBITMQ_PID_FILE".into(), d("data/node.pid")),
            ("RABBITMQ_CONF_ENV_FILE".into(), d("etc/rabbitmq-env.conf")),
            (
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS".into(),
                "-kernel inet_dist_use_interface {127,0,0,1}".into(),
            ),
            ("ERL_CRASH_DUMP".into(), d("log/erl_crash.dump")),
        ]
    }

    /// Run `rabbitmqctl -n NODE ARGS…` against this node.
    pub fn rabbitmqctl(&self, args: &[&str]) -> Result<String, BrokerError> {
        let out = Command::new(format!("{BIN}/rabbitmqctl"))
            .arg("-n")
            .arg(&self.node)
            .args(args)
            .envs(self.node_env())
            .output()?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(BrokerError::Command {
                command: format!("rabbitmqctl {}", args.join(" ")),
                detail: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Close every client connection of the node (a forced drop).
    pub fn close_all_connections(&self, reason: &str) -> Result<usize, BrokerError> {
        let out = self.rabbitmqctl(&["list_connections", "-q", "--no-table-headers", "pid"])?;
        let pids: Vec<&str> = out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        for pid in &pids {
            self.rabbitmqctl(&["close_connection", pid, reason])?;
        }
        Ok(pids.len())
    }
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

/// `n` distinct free loopback ports (all bound at once, then released).
fn free_ports<const N: usize>() -> Result<[u16; N], BrokerError> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports = [0u16; N];
    for (p, l) in ports.iter_mut().zip(&listeners) {
        *p = l.local_addr()?.port();
    }
    Ok(ports)
}

fn run(cmd: &mut Command) -> Result<(), BrokerError> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BrokerError::Command {
            command: format!("{cmd:?}"),
            detail: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// An RSA-2048 key pair (with the `openssl` CLI): private PKCS#8 PEM at
/// `private`, public SPKI PEM at `public`.
pub fn make_rsa_key(private: &Path, public: &Path) -> Result<(), BrokerError> {
    run(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(private)
        .stderr(Stdio::piped()))?;
    run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(private)
        .arg("-out")
        .arg(public))
}

/// A CA (`ca.pem`) and a server certificate it signed (`server.pem`,
/// `server.key`; SAN localhost, 127.0.0.1, ::1) in `dir`, made with rcgen
/// (ECDSA P-256).
fn make_tls(dir: &Path) -> Result<(), BrokerError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let tls = |e: rcgen::Error| BrokerError::Command {
        command: "rcgen".into(),
        detail: e.to_string(),
    };
    let ca_key = KeyPair::generate().map_err(tls)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "nost-test-ca");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(tls)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().map_err(tls)?;
    let mut server = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(tls)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.is_ca = IsCa::ExplicitNoCa;
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    let server_cert = server.signed_by(&key, &issuer).map_err(tls)?;

    std::fs::write(dir.join("ca.pem"), ca_cert.pem())?;
    std::fs::write(dir.join("server.pem"), server_cert.pem())?;
    std::fs::write(dir.join("server.key"), key.serialize_pem())?;
    Ok(())
}

/// Script of the watchdog: wait for `$1` (the starter) to die, then stop
/// the node's process group `$2` (SIGTERM to the pid in the pid file,
/// SIGKILL after 10 s) and remove the directory `$3`.
const WATCHDOG: &str = r#"
parent=$1; group=$2; dir=$3
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
[ -d "$dir" ] || exit 0
pid=$(cat "$dir/data/node.pid" 2>/dev/null)
[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
i=0
while [ $i -lt 100 ] && kill -0 "-$group" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
kill -KILL "-$group" 2>/dev/null
rm -rf "$dir"
"#;

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

        let stdout = std::fs::File::create(dir.join("log/stdout.txt"))?;
        let stderr = std::fs::File::create(dir.join("log/stderr.txt"))?;
        let mut cmd = Command::new(format!("{BIN}/rabbitmq-server"));
        cmd.envs(info.node_env())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd.spawn()?;
        let watchdog = if options.watchdog {
            let mut w = Command::new("sh");
            w.arg("-c")
                .arg(WATCHDOG)
                .arg("nost-oauth-watchdog")
                .arg(std::process::id().to_string())
                .arg(child.id().to_string())
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            #[cfg(unix)]
            {
                use std::os::unix::process::CommandExt;
                // Not in our process group: Ctrl-C must not take it down.
                w.process_group(0);
            }
            w.spawn().ok()
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
        let group = format!("-{}", child.id());
        run(Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::piped()))?;
        // Gone once nothing of the group answers a signal any more.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline
            && Command::new("kill")
                .args(["-0", "--", &group])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
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
            let _ = Command::new("kill")
                .args([
                    "-TERM",
                    node_pid.as_deref().unwrap_or(&child.id().to_string()),
                ])
                .stderr(Stdio::null())
                .status();
            let group = format!("-{}", child.id());
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                let exited = matches!(child.try_wait(), Ok(Some(_)));
                let group_alive = Command::new("kill")
                    .args(["-0", "--", &group])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if exited && !group_alive {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // Whatever is left in the node's process group goes too.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
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
