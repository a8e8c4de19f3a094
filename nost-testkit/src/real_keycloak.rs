//! A real Keycloak server for the test suites: the pinned
//! `org.keycloak:keycloak-quarkus-dist` fetched with Maven (cached in
//! `~/.m2` and unpacked once under `target/keycloak/<version>/`), started in
//! dev mode on a free loopback port with its own temporary home and an
//! in-memory database, importing the [`NostRealm`].
//!
//! The realm signs with its own RSA key (kid [`REALM_KID`]). An OAuth2
//! RabbitMQ node trusts it when started with
//! [`RealKeycloak::broker_config`] in
//! [`BrokerOptions::extra_config`](crate::broker::BrokerOptions::extra_config):
//! a second `auth_oauth2.signing_keys` entry beside the node's own key, so
//! the node can start before Keycloak is up (the key exists from
//! [`RealKeycloak::prepare`] on) and nothing is restarted.
//!
//! ```no_run
//! use nost_testkit::{BrokerOptions, KeycloakOptions, OAuthBroker, RealKeycloak};
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut kc = RealKeycloak::prepare(KeycloakOptions::default())?;
//! let node = OAuthBroker::start(BrokerOptions {
//!     extra_config: kc.broker_config(),
//!     ..Default::default()
//! })?;
//! kc.start()?; // fetches the distribution if needed, waits until the realm answers
//! println!("{}", kc.info().token_url());
//! # drop(node); Ok(()) }
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::keycloak::SigningKey;
use crate::process_group::{ProcessGroup, Term};
use crate::realm::{NostRealm, REALM, REALM_KID};

/// The pinned Keycloak version (Maven Central served 26.4.0 … 26.7.3 when
/// this was written; 26.4.0 runs on OpenJDK 17).
pub const KEYCLOAK_VERSION: &str = "26.4.0";
/// Prefix of the variables of [`RealKeycloakInfo::to_env`].
pub const ENV_PREFIX: &str = "NOST_TEST_KEYCLOAK_";
/// JDKs tried in order when `NOST_KEYCLOAK_JAVA_HOME` / `JAVA_HOME` are unset.
const JDKS: [&str; 4] = [
    "/usr/lib/jvm/java-17-openjdk-amd64",
    "/usr/lib/jvm/java-21-openjdk-amd64",
    "/usr/lib/jvm/temurin-25-jdk-amd64",
    "/usr/lib/jvm/java-25-openjdk-amd64",
];

/// Why Keycloak could not be fetched, started or used.
#[derive(Debug, thiserror::Error)]
pub enum KeycloakError {
    /// `mvn` failed or is missing.
    #[error(
        "could not fetch org.keycloak:keycloak-quarkus-dist:{version}:tar.gz with Maven ({detail}); install Maven (`apt-get install maven`) and make sure Maven Central is reachable"
    )]
    Fetch {
        /// The version asked for.
        version: String,
        /// What went wrong.
        detail: String,
    },
    /// No usable JDK.
    #[error(
        "no Java runtime for Keycloak: set NOST_KEYCLOAK_JAVA_HOME or JAVA_HOME to an OpenJDK 17, 21 or 25 (tried {0})"
    )]
    NoJava(String),
    /// Keycloak did not come up; the end of its output follows.
    #[error("Keycloak did not start: {0}")]
    Boot(String),
    /// A command failed.
    #[error("{command} failed: {detail}")]
    Command {
        /// What ran.
        command: String,
        /// Its error output.
        detail: String,
    },
    /// File system trouble.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Options of [`RealKeycloak::prepare`].
#[derive(Debug, Clone)]
pub struct KeycloakOptions {
    /// Keycloak version to fetch (default [`KEYCLOAK_VERSION`]).
    pub version: String,
    /// Where distributions are unpacked (`<dir>/<version>/keycloak-<version>`);
    /// default `target/keycloak` of this workspace.
    pub cache_dir: PathBuf,
    /// The realm to import (default: [`NostRealm::generate`]).
    pub realm: NostRealm,
    /// How long to wait for the realm to answer (default 300 s: the first
    /// start builds the server, over a minute on two busy cores).
    pub boot_timeout: Duration,
    /// A `sh` watchdog stops Keycloak and removes its directory when the
    /// starting process dies without [`RealKeycloak::stop`]. Default `true`.
    pub watchdog: bool,
}

impl Default for KeycloakOptions {
    fn default() -> Self {
        KeycloakOptions {
            version: KEYCLOAK_VERSION.to_owned(),
            cache_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/keycloak"),
            realm: NostRealm::generate(),
            boot_timeout: Duration::from_secs(300),
            watchdog: true,
        }
    }
}

/// How to reach a running Keycloak (also from another process, through
/// [`to_env`](Self::to_env) / [`from_env`](Self::from_env)).
#[derive(Debug, Clone)]
pub struct RealKeycloakInfo {
    /// HTTP port on 127.0.0.1.
    pub port: u16,
    /// The imported realm's secrets.
    pub realm: NostRealm,
    /// Bootstrap admin user of the master realm.
    pub admin_user: String,
    /// Its password (random per run).
    pub admin_password: String,
    /// The server's temporary home.
    pub dir: PathBuf,
}

impl RealKeycloakInfo {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT/realms/NOS-T` (the tokens' `iss`).
    pub fn issuer(&self) -> String {
        format!("{}/realms/{REALM}", self.base_url())
    }

    /// The realm's token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer())
    }

    /// The realm's JWKS endpoint.
    pub fn jwks_url(&self) -> String {
        format!("{}/protocol/openid-connect/certs", self.issuer())
    }

    /// Variables describing this server (and the realm's secrets).
    pub fn to_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (format!("{ENV_PREFIX}PORT"), self.port.to_string()),
            (format!("{ENV_PREFIX}ADMIN_USER"), self.admin_user.clone()),
            (
                format!("{ENV_PREFIX}ADMIN_PASSWORD"),
                self.admin_password.clone(),
            ),
            (format!("{ENV_PREFIX}DIR"), self.dir.display().to_string()),
        ];
        env.extend(self.realm.to_env(ENV_PREFIX));
        env
    }

    /// The server described by [`to_env`](Self::to_env) variables, if set.
    pub fn from_env() -> Option<Self> {
        let var = |k: &str| std::env::var(format!("{ENV_PREFIX}{k}")).ok();
        Some(RealKeycloakInfo {
            port: var("PORT")?.parse().ok()?,
            realm: NostRealm::from_env(ENV_PREFIX)?,
            admin_user: var("ADMIN_USER")?,
            admin_password: var("ADMIN_PASSWORD")?,
            dir: var("DIR")?.into(),
        })
    }

    /// The Keycloak started by `cargo xtask test`/`integration`, or a panic
    /// saying how to run the suite (a missing server fails, never skips).
    pub fn from_env_or_panic() -> Self {
        Self::from_env().unwrap_or_else(|| {
            panic!(
                "no real Keycloak: run this suite with `cargo xtask integration` (or `cargo xtask test`), which starts one and sets {ENV_PREFIX}*"
            )
        })
    }
}

/// A Keycloak server with the NOS-T realm; stopped (and its directory
/// removed) by [`stop`](Self::stop) or on drop.
pub struct RealKeycloak {
    info: RealKeycloakInfo,
    options: KeycloakOptions,
    key: SigningKey,
    child: Option<Child>,
    watchdog: Option<Child>,
    dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for RealKeycloak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealKeycloak")
            .field("port", &self.info.port)
            .field("dir", &self.info.dir)
            .finish_non_exhaustive()
    }
}

fn free_port() -> Result<u16, KeycloakError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn random_password() -> String {
    let b: [u8; 18] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The unpacked distribution of `version` under `cache_dir`, fetched with
/// `mvn dependency:copy` (Maven's own cache in `~/.m2` holds the archive)
/// and unpacked with `tar` when not there yet.
pub fn ensure_distribution(version: &str, cache_dir: &Path) -> Result<PathBuf, KeycloakError> {
    let home = cache_dir.join(version).join(format!("keycloak-{version}"));
    if home.join("bin/kc.sh").exists() && home.join("lib/quarkus-run.jar").exists() {
        return Ok(home);
    }
    let fetch = |detail: String| KeycloakError::Fetch {
        version: version.to_owned(),
        detail,
    };
    let download = cache_dir.join(format!("{version}.download"));
    std::fs::create_dir_all(&download)?;
    let out = Command::new("mvn")
        .args(["-q", "-B", "dependency:copy"])
        .arg(format!(
            "-Dartifact=org.keycloak:keycloak-quarkus-dist:{version}:tar.gz"
        ))
        .arg(format!("-DoutputDirectory={}", download.display()))
        .current_dir(&download)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fetch(format!("cannot run mvn: {e}")))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        return Err(fetch(tail.into_iter().rev().collect::<Vec<_>>().join("\n")));
    }
    let archive = download.join(format!("keycloak-quarkus-dist-{version}.tar.gz"));
    // Unpack beside, then rename: a half-unpacked tree is never taken for
    // a complete one.
    let unpack = cache_dir.join(format!("{version}.unpack"));
    let _ = std::fs::remove_dir_all(&unpack);
    std::fs::create_dir_all(&unpack)?;
    let out = Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&unpack)
        .output()?;
    if !out.status.success() {
        return Err(KeycloakError::Command {
            command: format!("tar xzf {}", archive.display()),
            detail: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let target = cache_dir.join(version);
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&unpack, &target)?;
    let _ = std::fs::remove_dir_all(&download);
    Ok(home)
}

/// The JDK Keycloak runs on: `NOST_KEYCLOAK_JAVA_HOME`, `JAVA_HOME`, then
/// the Debian/Temurin locations.
pub fn java_home() -> Result<PathBuf, KeycloakError> {
    let mut tried = Vec::new();
    let candidates = ["NOST_KEYCLOAK_JAVA_HOME", "JAVA_HOME"]
        .iter()
        .filter_map(|v| std::env::var_os(v).map(PathBuf::from))
        .chain(JDKS.iter().map(PathBuf::from));
    for c in candidates {
        if c.join("bin/java").exists() {
            return Ok(c);
        }
        tried.push(c.display().to_string());
    }
    Err(KeycloakError::NoJava(tried.join(", ")))
}

/// Watchdog: wait for `$1` (the starter) to die, then SIGTERM the process
/// group `$2`, SIGKILL after 10 s, and remove the directory `$3`.
const WATCHDOG: &str = r#"
parent=$1; group=$2; dir=$3
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
kill -TERM "-$group" 2>/dev/null
i=0
while [ $i -lt 100 ] && kill -0 "-$group" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
kill -KILL "-$group" 2>/dev/null
rm -rf "$dir"
"#;

impl RealKeycloak {
    /// Make the temporary home, the realm's signing key and the realm file,
    /// and pick a port; nothing runs yet.
    pub fn prepare(options: KeycloakOptions) -> Result<RealKeycloak, KeycloakError> {
        let tmp = tempfile::Builder::new()
            .prefix("nost-keycloak-")
            .tempdir()?;
        let dir = tmp.path().to_path_buf();
        for sub in ["data/import", "keys", "log"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        crate::broker::make_rsa_key(&dir.join("keys/realm.pem"), &dir.join("keys/realm_pub.pem"))
            .map_err(|e| KeycloakError::Command {
            command: "RSA-2048 key generation".into(),
            detail: e.to_string(),
        })?;
        let key = SigningKey::from_pem_file(&dir.join("keys/realm.pem"), REALM_KID)?;
        let realm_json = options.realm.to_json(&key);
        std::fs::write(
            dir.join(format!("data/import/{REALM}.json")),
            serde_json::to_vec_pretty(&realm_json).map_err(std::io::Error::other)?,
        )?;
        let info = RealKeycloakInfo {
            port: free_port()?,
            realm: options.realm.clone(),
            admin_user: "nost-admin".into(),
            admin_password: random_password(),
            dir,
        };
        Ok(RealKeycloak {
            info,
            options,
            key,
            child: None,
            watchdog: None,
            dir: Some(tmp),
        })
    }

    /// `rabbitmq.conf` lines that make an OAuth2 node trust the realm's key.
    pub fn broker_config(&self) -> Vec<String> {
        vec![format!(
            "auth_oauth2.signing_keys.{REALM_KID} = {}",
            self.info.dir.join("keys/realm_pub.pem").display()
        )]
    }

    /// The realm's private signing key (kid [`REALM_KID`]).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// How to reach it.
    pub fn info(&self) -> &RealKeycloakInfo {
        &self.info
    }

    /// Fetch the distribution if needed, start Keycloak and wait until the
    /// realm's discovery document answers 200.
    pub fn start(&mut self) -> Result<(), KeycloakError> {
        let dist = ensure_distribution(&self.options.version, &self.options.cache_dir)?;
        let java = java_home()?;
        let home = &self.info.dir;
        // A home of our own: bin/ copied (kc.sh resolves its own path),
        // the rest linked to the cached distribution; data/ is ours.
        let bin = home.join("bin");
        if !bin.exists() {
            std::fs::create_dir_all(&bin)?;
            for entry in std::fs::read_dir(dist.join("bin"))? {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    std::fs::copy(entry.path(), bin.join(entry.file_name()))?;
                }
            }
            for link in ["lib", "themes", "providers", "conf", "version.txt"] {
                std::os::unix::fs::symlink(dist.join(link), home.join(link))?;
            }
        }
        let stdout = std::fs::File::create(home.join("log/keycloak.txt"))?;
        let stderr = stdout.try_clone()?;
        let mut cmd = Command::new(bin.join("kc.sh"));
        cmd.args([
            "start-dev",
            "--http-host=127.0.0.1",
            &format!("--http-port={}", self.info.port),
            "--db=dev-mem",
            "--import-realm",
        ])
        .env("JAVA_HOME", &java)
        .env("KC_BOOTSTRAP_ADMIN_USERNAME", &self.info.admin_user)
        .env("KC_BOOTSTRAP_ADMIN_PASSWORD", &self.info.admin_password)
        .env_remove("JAVA_OPTS")
        .env_remove("KC_DB")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd.spawn()?;
        if self.options.watchdog {
            let mut w = Command::new("sh");
            w.arg("-c")
                .arg(WATCHDOG)
                .arg("nost-keycloak-watchdog")
                .arg(std::process::id().to_string())
                .arg(child.id().to_string())
                .arg(home)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            {
                use std::os::unix::process::CommandExt;
                w.process_group(0);
            }
            self.watchdog = w.spawn().ok();
        }
        self.child = Some(child);
        if let Err(e) = self.wait_ready(self.options.boot_timeout) {
            self.stop();
            return Err(e);
        }
        Ok(())
    }

    /// The process group id of the running server (0 when not running), for
    /// a signal handler.
    pub fn process_group(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), KeycloakError> {
        let started = Instant::now();
        let path = format!("/realms/{REALM}/.well-known/openid-configuration");
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(KeycloakError::Boot(format!(
                    "kc.sh exited ({status}):\n{}",
                    self.log_tail(40)
                )));
            }
            if started.elapsed() > timeout {
                return Err(KeycloakError::Boot(format!(
                    "the realm did not answer within {} s:\n{}",
                    timeout.as_secs(),
                    self.log_tail(40)
                )));
            }
            if http_status(self.info.port, &path) == Some(200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The last `n` lines of the server's output.
    pub fn log_tail(&self, n: usize) -> String {
        let text =
            std::fs::read_to_string(self.info.dir.join("log/keycloak.txt")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Stop the server (SIGTERM to its process group, SIGKILL after 15 s)
    /// and remove its directory. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            ProcessGroup::stop(&mut child, Term::Group, Duration::from_secs(15));
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

impl Drop for RealKeycloak {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Status of `GET path` on 127.0.0.1:`port` (plain HTTP/1.1), if any answer.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 32];
    let n = s.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `POST` a form to `path` on 127.0.0.1:`port` (HTTP/1.0, so the answer is
/// never chunked): the status and the body parsed as JSON (`Null` if it is
/// not JSON).
pub fn post_form(
    port: u16,
    path: &str,
    form: &[(&str, &str)],
) -> Result<(u16, serde_json::Value), KeycloakError> {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    http(
        port,
        "POST",
        path,
        "Content-Type: application/x-www-form-urlencoded\r\n",
        &body,
    )
}

/// One HTTP/1.0 request on 127.0.0.1:`port`; `headers` are complete lines.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> Result<(u16, serde_json::Value), KeycloakError> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n{headers}Accept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    ))
}

impl RealKeycloakInfo {
    /// An access token of the bootstrap admin (master realm, `admin-cli`).
    pub fn admin_token(&self) -> Result<String, KeycloakError> {
        let (status, body) = post_form(
            self.port,
            "/realms/master/protocol/openid-connect/token",
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", &self.admin_user),
                ("password", &self.admin_password),
            ],
        )?;
        body.get("access_token")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| KeycloakError::Command {
                command: "admin login".into(),
                detail: format!("HTTP {status}, error {:?}", body.get("error")),
            })
    }

    /// `PUT /admin/realms/NOS-T` with `update` (a partial realm
    /// representation).
    pub fn update_realm(&self, update: &serde_json::Value) -> Result<(), KeycloakError> {
        let token = self.admin_token()?;
        let (status, body) = http(
            self.port,
            "PUT",
            &format!("/admin/realms/{REALM}"),
            &format!("Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"),
            &update.to_string(),
        )?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(KeycloakError::Command {
                command: "PUT realm".into(),
                detail: format!("HTTP {status}: {body}"),
            })
        }
    }

    /// A token request to the realm's token endpoint (see [`post_form`]).
    pub fn token_request(
        &self,
        form: &[(&str, &str)],
    ) -> Result<(u16, serde_json::Value), KeycloakError> {
        post_form(
            self.port,
            &format!("/realms/{REALM}/protocol/openid-connect/token"),
            form,
        )
    }
}
