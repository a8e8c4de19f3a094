//! When renewal can no longer succeed, the token manager says so, typed
//! (session expired / credentials rejected / client rejected), against the
//! Keycloak emulation; retryable failures (503) keep retrying and recover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use nost_auth::{AuthEvent, AuthOptions, FatalKind, TokenManager};
use nost_config::{AuthMode, KeycloakConfig, SecretString};
use nost_testkit::{KeycloakEmulator, SigningKey};

async fn emulator() -> KeycloakEmulator {
    KeycloakEmulator::builder(SigningKey::generate("fatal").unwrap())
        .realm("NOS-T")
        .client("svc", Some("svc-secret"))
        .client("nost-client", Some("c-secret"))
        .client("frontend", None)
        .user("alice", "wonderland", None)
        .client_credentials_refresh(false)
        .access_lifetime(2)
        .start()
        .await
}

fn config(kc: &KeycloakEmulator) -> KeycloakConfig {
    KeycloakConfig {
        host: kc.host(),
        port: u32::from(kc.port()),
        realm: kc.realm(),
        tls: None,
        tls_ca_cert: None,
        token_refresh_interval: 240,
    }
}

async fn fatal_within(tm: &TokenManager) -> (FatalKind, nost_auth::AuthError) {
    tokio::time::timeout(Duration::from_secs(20), tm.fatal())
        .await
        .expect("the fatal outcome is reported")
}

#[tokio::test]
async fn a_rotated_client_secret_is_client_rejected() {
    let kc = emulator().await;
    let mode = AuthMode::ServiceAccount {
        client_id: "svc".into(),
        client_secret: SecretString::from("svc-secret"),
    };
    let tm = TokenManager::start(&mode, &config(&kc), AuthOptions::default())
        .await
        .unwrap();
    kc.add_client("svc", Some("rotated-secret"));
    let (kind, error) = fatal_within(&tm).await;
    assert_eq!(kind, FatalKind::ClientRejected, "{error}");
    assert!(kind.advice().contains("CLIENT_SECRET_KEY"));
    assert!(!error.to_string().contains("svc-secret"));
    assert_eq!(tm.stopped_by().and_then(|e| e.fatal_kind()), Some(kind));
    tm.shutdown().await;
}

#[tokio::test]
async fn an_ended_session_of_pre_acquired_tokens_is_session_expired() {
    let kc = emulator().await;
    let (access, refresh) = kc.issue_session("alice", "frontend");
    let mode = AuthMode::PreAcquired {
        client_id: "frontend".into(),
        client_secret: None,
        access_token: SecretString::from(access),
        refresh_token: SecretString::from(refresh),
    };
    let tm = TokenManager::start(&mode, &config(&kc), AuthOptions::default())
        .await
        .unwrap();
    kc.revoke_sessions();
    let (kind, error) = fatal_within(&tm).await;
    assert_eq!(kind, FatalKind::SessionExpired, "{error}");
    assert!(kind.advice().contains("log in again"));
    tm.shutdown().await;
}

#[tokio::test]
async fn a_changed_password_after_the_session_ended_is_credentials_rejected() {
    let kc = emulator().await;
    let mode = AuthMode::UserAccount {
        username: "alice".into(),
        password: SecretString::from("wonderland"),
        client_id: "nost-client".into(),
        client_secret: SecretString::from("c-secret"),
    };
    let tm = TokenManager::start(&mode, &config(&kc), AuthOptions::default())
        .await
        .unwrap();
    kc.revoke_sessions();
    kc.add_user("alice", "changed-password");
    let (kind, error) = fatal_within(&tm).await;
    assert_eq!(kind, FatalKind::CredentialsRejected, "{error}");
    assert!(kind.advice().contains("PASSWORD"));
    tm.shutdown().await;
}

#[tokio::test]
async fn an_outage_is_retried_and_recovers_without_a_fatal_outcome() {
    let kc = emulator().await;
    let mode = AuthMode::ServiceAccount {
        client_id: "svc".into(),
        client_secret: SecretString::from("svc-secret"),
    };
    let tm = TokenManager::start(&mode, &config(&kc), AuthOptions::default())
        .await
        .unwrap();
    let mut events = tm.subscribe_events();
    kc.fail_next(2);
    let mut retries = 0;
    let recovered = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            tokio::select! {
                ev = events.recv() => match ev.unwrap() {
                    AuthEvent::Retrying { error, .. } => {
                        assert_eq!(error.fatal_kind(), None, "{error}");
                        retries += 1;
                    }
                    AuthEvent::Renewed { .. } if retries >= 2 => return,
                    other => assert!(other.fatal().is_none(), "{other:?}"),
                },
                (kind, e) = tm.fatal() => panic!("fatal {kind}: {e}"),
            }
        }
    })
    .await;
    assert!(recovered.is_ok(), "recovered after {retries} retries");
    assert_eq!(tm.stopped_by(), None);
    tm.shutdown().await;
}
