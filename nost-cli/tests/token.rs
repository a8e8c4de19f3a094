//! `nost token` and `nost check` against the Keycloak emulation, each mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use nost_testkit::{KeycloakEmulator, SigningKey};
use serde_json::Value;

struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    kc: KeycloakEmulator,
    config: PathBuf,
}

async fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    nost_testkit::make_rsa_key(&dir.join("k.pem"), &dir.join("k.pub")).unwrap();
    let key = SigningKey::from_pem_file(&dir.join("k.pem"), "test").unwrap();
    let kc = KeycloakEmulator::start("NOS-T", key).await;
    let config = dir.join("nost.yaml");
    std::fs::write(
        &config,
        format!(
            "servers:\n  rabbitmq:\n    keycloak_authentication: true\n  keycloak:\n    host: 127.0.0.1\n    port: {}\n    realm: NOS-T\n    tls: false\nexecution: {{}}\n",
            kc.port()
        ),
    )
    .unwrap();
    Setup {
        _dir: tmp,
        dir,
        kc,
        config,
    }
}

fn nost(s: &Setup, env: &str, args: &[&str]) -> (i32, String, String) {
    let env_file = s.dir.join("test.env");
    std::fs::write(&env_file, env).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nost"))
        .args(args)
        .arg("--config")
        .arg(&s.config)
        .arg("--env-file")
        .arg(&env_file)
        .env_remove("NOST_OTP")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_no_secret(texts: &[&str], secrets: &[&str]) {
    for t in texts {
        for s in secrets {
            assert!(!t.contains(s), "secret {s:?} leaked in {t}");
        }
    }
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn token_for_a_service_account_shows_claims_but_not_the_token() {
    let s = setup().await;
    s.kc.add_client("svc", Some("svc-SECRET-1"));
    let env = "CLIENT_ID=svc\nCLIENT_SECRET_KEY=svc-SECRET-1\n";
    let (code, out, err) = nost(&s, env, &["token", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["mode"], "service_account");
    assert_eq!(v["refresh_token_returned"], false);
    assert!(
        v["audience"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "rabbitmq")
    );
    assert!(
        v["rabbitmq_scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "rabbitmq.write:*/*/*")
    );
    assert!(v["expires_at"].is_string() && v["subject"].is_string());
    assert!(v.get("access_token").is_none());
    assert_no_secret(&[&out, &err], &["svc-SECRET-1", "eyJ"]);
    let (code, out, _) = nost(&s, env, &["check", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json(&out)["mode"], "service_account");
    assert_eq!(json(&out)["keycloak"]["token_url"], s.kc.token_url());
}

#[tokio::test(flavor = "multi_thread")]
async fn token_for_a_user_account_with_otp_via_the_flag() {
    let s = setup().await;
    s.kc.add_client("app", Some("app-SECRET-2"));
    s.kc.add_user("alice", "pw-SECRET-3");
    s.kc.set_user_otp("alice", Some("987654"));
    let env =
        "USERNAME=alice\nPASSWORD=pw-SECRET-3\nCLIENT_ID=app\nCLIENT_SECRET_KEY=app-SECRET-2\n";
    let (code, _, err) = nost(&s, env, &["token", "--json"]);
    assert_eq!(code, 2, "without the OTP the stock realm refuses");
    assert!(err.contains("NOST_OTP") || err.contains("OTP"), "{err}");
    let (code, out, err) = nost(&s, env, &["token", "--json", "--otp", "987654"]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["mode"], "user_account");
    assert_eq!(v["refresh_token_returned"], true);
    assert_no_secret(&[&out, &err], &["pw-SECRET-3", "app-SECRET-2", "eyJ"]);
    assert!(
        s.kc.requests()
            .iter()
            .any(|r| r.get("totp").map(String::as_str) == Some("987654"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_for_pre_acquired_tokens_of_a_public_client_refreshes_them() {
    let s = setup().await;
    s.kc.add_client("monitor", None);
    let (access, refresh) = s.kc.issue_session("carol", "monitor");
    std::fs::write(s.dir.join("at"), &access).unwrap();
    std::fs::write(s.dir.join("rt"), &refresh).unwrap();
    let at = s.dir.join("at").display().to_string();
    let rt = s.dir.join("rt").display().to_string();
    let args = [
        "--access-token-file",
        at.as_str(),
        "--refresh-token-file",
        rt.as_str(),
    ];
    let (code, out, err) = nost(
        &s,
        "CLIENT_ID=monitor\n",
        &[&["check", "--json"][..], &args].concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["mode"], "pre_acquired");
    let (code, out, err) = nost(
        &s,
        "CLIENT_ID=monitor\n",
        &[&["token", "--json"][..], &args].concat(),
    );
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["mode"], "pre_acquired");
    assert_eq!(v["subject"], "carol");
    assert_no_secret(&[&out, &err], &[access.as_str(), refresh.as_str()]);
    assert_eq!(s.kc.request_count("refresh_token"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_printed_only_when_asked() {
    let s = setup().await;
    s.kc.add_client("svc", Some("s"));
    let (code, out, _) = nost(
        &s,
        "CLIENT_ID=svc\nCLIENT_SECRET_KEY=s\n",
        &["token", "--json", "--print-access-token"],
    );
    assert_eq!(code, 0);
    assert!(
        json(&out)["access_token"]
            .as_str()
            .unwrap()
            .starts_with("eyJ")
    );
}
