//! A real Keycloak (NOS-T realm) and an OAuth2 RabbitMQ node trusting it:
//! `cargo xtask keycloak [--write DIR]` for trying the four modes by hand,
//! and [`Background`] for `cargo xtask test`/`integration`, which start
//! Keycloak at once (it takes a minute on two cores) while the rest runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use nost_testkit::realm::{
    self, NostRealm, OTP_USER, PUBLIC_CLIENT, SERVICE_CLIENT, SERVICE_REFRESH_CLIENT, USER,
    USER_CLIENT,
};
use nost_testkit::{BrokerOptions, OAuthBroker};
use nost_testkit::{KeycloakOptions, RealKeycloak, RealKeycloakInfo};

/// What a signal handler must stop.
static NODE: Mutex<Option<OAuthBroker>> = Mutex::new(None);
static KEYCLOAK: Mutex<Option<RealKeycloak>> = Mutex::new(None);
/// Process group of a Keycloak still booting in a [`Background`] thread.
static BOOTING_GROUP: Mutex<Option<PathBuf>> = Mutex::new(None);

fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    match slot.lock() {
        Ok(mut s) => s.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    }
}

fn put<T>(slot: &Mutex<Option<T>>, value: T) {
    match slot.lock() {
        Ok(mut s) => *s = Some(value),
        Err(poisoned) => *poisoned.into_inner() = Some(value),
    }
}

/// Stop whatever this module started (from the Ctrl-C/SIGTERM handler). A
/// Keycloak still booting in a thread is stopped by its watchdog once the
/// xtask has exited.
pub fn stop_on_signal() {
    if let Some(mut node) = take(&NODE) {
        node.stop();
    }
    if let Some(mut kc) = take(&KEYCLOAK) {
        kc.stop();
        eprintln!("xtask: Keycloak stopped");
    }
    if let Some(dir) = take(&BOOTING_GROUP) {
        eprintln!(
            "xtask: Keycloak was still starting; its watchdog stops it and removes {}",
            dir.display()
        );
    }
}

/// Whether `NOST_XTASK_KEYCLOAK=0` asks to leave Keycloak out (the
/// real-Keycloak suite then fails, it never skips).
pub fn wanted() -> bool {
    std::env::var("NOST_XTASK_KEYCLOAK").map_or(true, |v| v != "0")
}

/// Keycloak starting in a thread while the caller does other work.
pub struct Background {
    trust: Vec<String>,
    dir: PathBuf,
    started: Instant,
    thread: Option<JoinHandle<Result<(RealKeycloak, f64)>>>,
}

impl Background {
    /// Prepare the realm (key, files) and start booting Keycloak in a thread.
    pub fn start() -> Result<Background> {
        let mut kc = RealKeycloak::prepare(KeycloakOptions::default()).context("Keycloak")?;
        let trust = kc.broker_config();
        let dir = kc.info().dir.clone();
        put(&BOOTING_GROUP, dir.clone());
        eprintln!(
            "xtask: starting Keycloak {} in the background",
            nost_testkit::KEYCLOAK_VERSION
        );
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            kc.start().context("Keycloak")?;
            Ok((kc, started.elapsed().as_secs_f64()))
        });
        Ok(Background {
            trust,
            dir,
            started,
            thread: Some(thread),
        })
    }

    /// `rabbitmq.conf` lines for the OAuth2 node to trust the realm's key.
    pub fn broker_config(&self) -> Vec<String> {
        self.trust.clone()
    }

    /// Wait until Keycloak answers; its `NOST_TEST_KEYCLOAK_*` variables.
    pub fn wait(&mut self) -> Result<Vec<(String, String)>> {
        let thread = self
            .thread
            .take()
            .ok_or_else(|| anyhow!("Keycloak was already awaited"))?;
        let (kc, boot) = thread
            .join()
            .map_err(|_| anyhow!("the Keycloak start thread panicked"))??;
        eprintln!(
            "xtask: Keycloak ready at {} (it took {boot:.1} s to start; awaited {:.1} s after its start)",
            kc.info().base_url(),
            self.started.elapsed().as_secs_f64()
        );
        let env = kc.info().to_env();
        let _ = take(&BOOTING_GROUP);
        put(&KEYCLOAK, kc);
        Ok(env)
    }

    /// Stop Keycloak and check that its directory is gone.
    pub fn stop(mut self) -> Result<()> {
        if let Some(thread) = self.thread.take() {
            // Still booting (or failed): wait for the thread, then stop.
            if let Ok(Ok((mut kc, _))) = thread.join() {
                kc.stop();
            }
        }
        let _ = take(&BOOTING_GROUP);
        if let Some(mut kc) = take(&KEYCLOAK) {
            let t = Instant::now();
            kc.stop();
            eprintln!(
                "xtask: Keycloak stopped in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
        if self.dir.exists() {
            bail!("left behind: Keycloak directory {}", self.dir.display());
        }
        Ok(())
    }
}

/// `cargo xtask keycloak [--write DIR]`.
pub fn command(write: Option<&Path>, token_lifespan: u32) -> ExitCode {
    match run(write, token_lifespan) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            stop_on_signal();
            ExitCode::FAILURE
        }
    }
}

fn run(write: Option<&Path>, token_lifespan: u32) -> Result<()> {
    let started = Instant::now();
    let mut realm = NostRealm::generate();
    // By hand, a minute (the default) is long enough to look at a token
    // and still see renewals within a short session.
    realm.access_token_lifespan = token_lifespan.max(1);
    let mut kc = RealKeycloak::prepare(KeycloakOptions {
        realm,
        ..KeycloakOptions::default()
    })?;
    let trust = kc.broker_config();
    eprintln!("xtask: starting Keycloak and the OAuth2 RabbitMQ node");
    let kc_thread = std::thread::spawn(move || kc.start().map(|()| kc));
    let node = OAuthBroker::start(BrokerOptions {
        extra_config: trust,
        ..BrokerOptions::default()
    })
    .context("OAuth2 node")?;
    let amqp_port = node.amqp_port();
    let node_name = node.node_name().to_owned();
    let mut test_env = node.export_env();
    put(&NODE, node);
    let kc = kc_thread
        .join()
        .map_err(|_| anyhow!("the Keycloak start thread panicked"))?
        .context("Keycloak")?;
    let info = kc.info().clone();
    put(&KEYCLOAK, kc);
    eprintln!(
        "xtask: both ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let (access, refresh) = pre_acquired_tokens(&info)?;
    let files = mode_files(&info, amqp_port);
    print_summary(&info, amqp_port, &node_name, &files);
    test_env.extend(info.to_env());
    let exports: String = test_env
        .iter()
        .map(|(k, v)| format!("export {k}='{v}'\n"))
        .collect();
    println!(
        "\n# For the test suites by hand (cargo test -p nost-tests --test real_keycloak):\n{exports}"
    );
    if let Some(dir) = write {
        std::fs::create_dir_all(dir)?;
        for (name, yaml, env) in &files {
            std::fs::write(dir.join(format!("{name}.yaml")), yaml)?;
            std::fs::write(dir.join(format!("{name}.env")), env)?;
        }
        std::fs::write(dir.join("pre_acquired.access"), &access)?;
        std::fs::write(dir.join("pre_acquired.refresh"), &refresh)?;
        std::fs::write(
            dir.join("otp-secret.txt"),
            format!("{}\n", info.realm.otp_secret_base32()),
        )?;
        std::fs::write(dir.join("test.env"), &exports)?;
        std::fs::write(dir.join("ready"), "ready\n")?;
        eprintln!("xtask: wrote the files to {}", dir.display());
    }
    eprintln!("xtask: press Enter (or Ctrl-C) to stop Keycloak and the node");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    stop_on_signal();
    eprintln!("xtask: stopped");
    Ok(())
}

/// Tokens of the public client for the password user, as a frontend would
/// forward them.
fn pre_acquired_tokens(info: &RealKeycloakInfo) -> Result<(String, String)> {
    let (status, body) = info.token_request(&[
        ("grant_type", "password"),
        ("client_id", PUBLIC_CLIENT),
        ("username", USER),
        ("password", &info.realm.user_password),
        ("scope", "openid"),
    ])?;
    let field = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    match (field("access_token"), field("refresh_token")) {
        (Some(a), Some(r)) => Ok((a, r)),
        _ => bail!(
            "the public client got no tokens (HTTP {status}, error {:?})",
            field("error")
        ),
    }
}

/// `(mode, yaml, env)` for the four Keycloak modes.
fn mode_files(info: &RealKeycloakInfo, amqp_port: u16) -> Vec<(&'static str, String, String)> {
    let yaml = |comment: &str| {
        format!(
            "# {comment}
servers:
  rabbitmq:
    keycloak_authentication: True
    host: \"127.0.0.1\"
    port: {amqp_port}
    tls: False
    virtual_host: \"/\"
  keycloak:
    host: \"127.0.0.1\"
    port: {kc}
    tls: False
    realm: \"{realm}\"
    token_refresh_interval: 240
execution:
  general:
    prefix: sos
",
            kc = info.port,
            realm = realm::REALM,
        )
    };
    let r = &info.realm;
    vec![
        (
            "service_account",
            yaml("Keycloak service account (client_credentials), local test stack"),
            format!(
                "CLIENT_ID=\"{SERVICE_CLIENT}\"\nCLIENT_SECRET_KEY=\"{}\"\n# With refresh tokens for client_credentials: CLIENT_ID=\"{SERVICE_REFRESH_CLIENT}\" CLIENT_SECRET_KEY=\"{}\"\n",
                r.service_secret, r.service_refresh_secret
            ),
        ),
        (
            "user_account",
            yaml("Keycloak user account (password grant), local test stack"),
            format!(
                "USERNAME=\"{USER}\"\nPASSWORD=\"{}\"\nCLIENT_ID=\"{USER_CLIENT}\"\nCLIENT_SECRET_KEY=\"{}\"\n",
                r.user_password, r.user_client_secret
            ),
        ),
        (
            "user_otp",
            yaml(
                "Keycloak user account with a TOTP credential: give the current code with NOST_OTP or --otp",
            ),
            format!(
                "USERNAME=\"{OTP_USER}\"\nPASSWORD=\"{}\"\nCLIENT_ID=\"{USER_CLIENT}\"\nCLIENT_SECRET_KEY=\"{}\"\n# TOTP secret (base32) in otp-secret.txt\n",
                r.otp_user_password, r.user_client_secret
            ),
        ),
        (
            "pre_acquired",
            yaml(
                "Pre-acquired tokens of the public client: --access-token-file pre_acquired.access --refresh-token-file pre_acquired.refresh",
            ),
            format!("CLIENT_ID=\"{PUBLIC_CLIENT}\"\n"),
        ),
    ]
}

fn print_summary(
    info: &RealKeycloakInfo,
    amqp_port: u16,
    node: &str,
    files: &[(&'static str, String, String)],
) {
    let r = &info.realm;
    println!(
        "Keycloak      {}  (admin console: {}/admin, user {} / {})",
        info.base_url(),
        info.base_url(),
        info.admin_user,
        info.admin_password
    );
    println!(
        "realm         {}  token endpoint {}",
        realm::REALM,
        info.token_url()
    );
    println!("OAuth2 broker amqp://127.0.0.1:{amqp_port}  (node {node}; trusts the realm's key)");
    println!(
        "access tokens live {} s; refresh tokens are single-use (revoke refresh token on)",
        r.access_token_lifespan
    );
    println!();
    println!("clients");
    println!(
        "  {SERVICE_CLIENT:<22} confidential, service account, no refresh token   secret {}",
        r.service_secret
    );
    println!(
        "  {SERVICE_REFRESH_CLIENT:<22} confidential, service account, refresh tokens on secret {}",
        r.service_refresh_secret
    );
    println!(
        "  {USER_CLIENT:<22} confidential, direct access grants              secret {}",
        r.user_client_secret
    );
    println!("  {PUBLIC_CLIENT:<22} public, direct access grants (pre-acquired tokens)");
    println!("users");
    println!("  {USER:<8} password {}", r.user_password);
    println!(
        "  {OTP_USER:<8} password {}  TOTP secret (base32) {}  current code {}",
        r.otp_user_password,
        r.otp_secret_base32(),
        r.totp_now()
    );
    for (name, yaml, env) in files {
        println!("\n=== {name}.yaml\n{yaml}=== {name}.env\n{env}");
    }
    println!(
        "Try: cargo run -p nost-cli -- token --config DIR/service_account.yaml --env-file DIR/service_account.env"
    );
}
