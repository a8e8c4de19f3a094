//! How `nost` ends when it cannot go on: a Keycloak login that can no
//! longer be renewed (exit 3, with what to do) and a second SIGINT during a
//! slow shutdown (exit 130 at once). On the OAuth2 node of
//! `cargo xtask integration`/`test` with the Keycloak emulation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nost_testkit::unique;
use nost_testkit::{KID, OAuthBrokerInfo};
use nost_testkit::{KeycloakEmulator, SigningKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const REALM: &str = "NOS-T";

struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    node: OAuthBrokerInfo,
    kc: KeycloakEmulator,
}

async fn setup() -> Setup {
    let node = OAuthBrokerInfo::from_env_or_panic();
    let key = SigningKey::from_pem_file(&node.signing_key_path(), KID).unwrap();
    let kc = KeycloakEmulator::start(REALM, key).await;
    let tmp = tempfile::tempdir().unwrap();
    Setup {
        dir: tmp.path().to_path_buf(),
        _dir: tmp,
        node,
        kc,
    }
}

impl Setup {
    /// A YAML for the broker on `amqp_port` and the emulator, and an `.env`.
    fn files(&self, amqp_port: u16, connection_timeout: u64, env: &str) -> (PathBuf, PathBuf) {
        let cfg = self.dir.join("nost.yaml");
        std::fs::write(
            &cfg,
            format!(
                "servers:\n  rabbitmq:\n    keycloak_authentication: true\n    host: 127.0.0.1\n    port: {amqp_port}\n    reconnect_delay: 1\n    connection_timeout: {connection_timeout}\n  keycloak:\n    host: 127.0.0.1\n    port: {}\n    realm: {REALM}\n    tls: false\n    token_refresh_interval: 240\nexecution:\n  managed_applications:\n    default:\n      set_offset: False\n",
                self.kc.port()
            ),
        )
        .unwrap();
        let env_file = self.dir.join("nost.env");
        std::fs::write(&env_file, env).unwrap();
        (cfg, env_file)
    }
}

/// A running `nost` whose standard error is collected line by line.
struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

fn spawn(args: &[&str], cfg: &Path, env_file: &Path, log: &str) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nost"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .arg("--env-file")
        .arg(env_file)
        .env_remove("USERNAME")
        .env_remove("PASSWORD")
        .env_remove("CLIENT_ID")
        .env_remove("CLIENT_SECRET_KEY")
        .env_remove("NOST_OTP")
        .env("NOST_LOG", log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().unwrap();
    let text = stderr.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            let mut t = text.lock().unwrap();
            t.push_str(&line);
            t.push('\n');
        }
    });
    Running {
        child,
        stderr,
        reader: Some(reader),
    }
}

impl Running {
    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait (polling) until standard error contains `text`.
    fn wait_for(&mut self, text: &str, within: Duration) {
        let until = Instant::now() + within;
        while !self.stderr().contains(text) {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.finish();
                panic!("nost ended ({status}) before {text:?}: {}", self.stderr());
            }
            assert!(
                Instant::now() < until,
                "no {text:?} on stderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit code, waiting at most `within`; kills it after that.
    fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let until = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.finish();
                return status.code();
            }
            if Instant::now() >= until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.finish();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn finish(&mut self) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback proxy that can go silent: links stay open but nothing is
/// forwarded any more (a network outage as a dropped route looks, the kind
/// that makes a shutdown wait for answers).
struct SilentProxy {
    port: u16,
    silent: watch::Sender<bool>,
}

impl SilentProxy {
    async fn start(target: u16) -> SilentProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (silent, _) = watch::channel(false);
        let gate = silent.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                else {
                    continue;
                };
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                tokio::spawn(pump(ri, wo, gate.subscribe()));
                tokio::spawn(pump(ro, wi, gate.subscribe()));
            }
        });
        SilentProxy { port, silent }
    }

    fn go_silent(&self) {
        self.silent.send_replace(true);
    }
}

/// Copy until silent; then hold the link open without forwarding.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut silent: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
            _ = silent.wait_for(|s| *s) => break,
        };
        if *silent.borrow() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    // Keep both halves: the peers see an open link that never answers.
    std::future::pending::<()>().await;
    drop((from, to));
}

/// A service account `client` with `secret` whose tokens live 3 s (renewed
/// after ~2.4 s): the YAML and `.env` for it on the test run's node.
fn service_account(s: &Setup, client: &str, secret: &str) -> (PathBuf, PathBuf) {
    s.kc.add_client(client, Some(secret));
    s.kc.set_access_lifetime(3);
    s.files(
        s.node.amqp_port,
        10,
        &format!("CLIENT_ID={client}\nCLIENT_SECRET_KEY={secret}\n"),
    )
}

/// The secret of `client` is regenerated in Keycloak while `nost` runs:
/// its next renewal is refused and `nost` exits 3, saying to check
/// CLIENT_SECRET_KEY and showing no secret, after one refused renewal.
fn regenerate_the_secret_and_expect_exit_3(
    s: &Setup,
    nost: &mut Running,
    client: &str,
    secret: &str,
) {
    let grants_before = s.kc.request_count("client_credentials");
    s.kc.add_client(client, Some("regenerated-in-keycloak"));
    let code = nost.exit_code(Duration::from_secs(30));
    let err = nost.stderr();
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("client_rejected"), "{err}");
    assert!(
        err.contains("CLIENT_SECRET_KEY"),
        "says what to check: {err}"
    );
    assert!(!err.contains(secret), "no secret on stderr: {err}");
    // One retry cycle: the first refused renewal ends it.
    assert_eq!(
        s.kc.request_count("client_credentials") - grants_before,
        1,
        "one refused renewal, then nothing more"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_exits_3_when_the_client_secret_is_rejected_and_says_to_check_it() {
    let s = setup().await;
    let client = unique("cli-svc");
    let secret = "cli-SECRET-listen-1";
    let (cfg, env) = service_account(&s, &client, secret);
    let prefix = unique("exit3");
    let mut nost = spawn(&["listen", "--prefix", &prefix], &cfg, &env, "warn");
    nost.wait_for("listening on", Duration::from_secs(30));
    regenerate_the_secret_and_expect_exit_3(&s, &mut nost, &client, secret);
}

#[tokio::test(flavor = "multi_thread")]
async fn managed_exits_3_when_the_password_is_refused_after_the_session_ended() {
    let s = setup().await;
    let client = unique("cli-user");
    let password = "cli-PASSWORD-1";
    s.kc.add_client(&client, Some("cli-client-secret"));
    s.kc.add_user("dora", password);
    s.kc.set_access_lifetime(3);
    let (cfg, env) = s.files(
        s.node.amqp_port,
        10,
        &format!(
            "CLIENT_ID={client}\nCLIENT_SECRET_KEY=cli-client-secret\nUSERNAME=dora\nPASSWORD={password}\n"
        ),
    );
    let prefix = unique("exit3m");
    let mut nost = spawn(
        &["managed", "--name", "sat", "--prefix", &prefix],
        &cfg,
        &env,
        "warn",
    );
    nost.wait_for("waiting for", Duration::from_secs(30));
    s.kc.revoke_sessions();
    s.kc.add_user("dora", "changed-by-the-admin");
    let code = nost.exit_code(Duration::from_secs(30));
    let err = nost.stderr();
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("credentials_rejected"), "{err}");
    assert!(
        err.contains("USERNAME and PASSWORD"),
        "says what to check: {err}"
    );
    for secret in [password, "cli-client-secret"] {
        assert!(!err.contains(secret), "no secret on stderr: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn manager_exits_3_when_the_client_secret_is_rejected_during_init() {
    let s = setup().await;
    let client = unique("cli-mgr");
    let secret = "cli-SECRET-manager-1";
    let (cfg, env) = service_account(&s, &client, secret);
    // A manager that waits at init for an application that never comes.
    let yaml = std::fs::read_to_string(&cfg).unwrap().replace(
        "execution:\n",
        "execution:\n  manager:\n    sim_start_time: \"2024-01-01T12:00:00Z\"\n    sim_stop_time: \"2024-01-01T12:01:00Z\"\n    time_step: \"0:00:01\"\n    time_scale_factor: 30.0\n    required_apps: [absent]\n    init_retry_delay_s: 1\n    set_offset: False\n",
    );
    std::fs::write(&cfg, yaml).unwrap();
    let prefix = unique("exit3g");
    let mut nost = spawn(&["manager", "--prefix", &prefix], &cfg, &env, "warn");
    nost.wait_for("init for", Duration::from_secs(30));
    regenerate_the_secret_and_expect_exit_3(&s, &mut nost, &client, secret);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sigint_during_a_shutdown_in_a_broker_outage_exits_at_once_with_130() {
    let s = setup().await;
    let client = unique("cli-sig");
    s.kc.add_client(&client, Some("cli-sig-secret"));
    // The node of this test run behind a proxy that goes silent.
    let proxy = SilentProxy::start(s.node.amqp_port).await;
    // A long connection_timeout: the first shutdown waits for it.
    let (cfg, env) = s.files(
        proxy.port,
        120,
        &format!("CLIENT_ID={client}\nCLIENT_SECRET_KEY=cli-sig-secret\n"),
    );
    let prefix = unique("sig");
    let mut nost = spawn(
        &["listen", "--prefix", &prefix],
        &cfg,
        &env,
        "warn,nost_app=info",
    );
    nost.wait_for("listening on", Duration::from_secs(30));
    proxy.go_silent();
    nost.signal("-INT");
    nost.wait_for("signal received; shutting down", Duration::from_secs(10));
    // The first shutdown now waits for the broker's answers (up to the
    // 120 s connection_timeout); a second SIGINT ends it at once.
    nost.signal("-INT");
    let code = nost.exit_code(Duration::from_secs(20));
    let err = nost.stderr();
    assert_eq!(code, Some(130), "{err}");
    assert!(
        err.contains("second signal; exiting without finishing the shutdown"),
        "{err}"
    );
    assert!(
        !err.contains("application shut down"),
        "the shutdown did not finish: {err}"
    );
}
