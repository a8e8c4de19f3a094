//! End to end against wiremock with every log line captured at TRACE:
//! no secret or token appears in logs, `Debug` output or error messages.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use nost_auth::{AuthError, AuthEvent, AuthOptions, OtpProvider, TokenManager};
use nost_config::{AuthMode, SecretString};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PASSWORD: &str = "pw-S3CR3T-user";
const CLIENT_SECRET: &str = "cs-S3CR3T-client";
const OTP: &str = "otp-777111";
const ACCESS: &str = "at-S3CR3T-issued";
const REFRESH: &str = "rt-S3CR3T-issued";
const FWD_REFRESH: &str = "rt-S3CR3T-forwarded";

fn secrets() -> Vec<String> {
    let mut s: Vec<String> = [PASSWORD, CLIENT_SECRET, OTP, ACCESS, REFRESH, FWD_REFRESH]
        .iter()
        .map(|s| s.to_string())
        .collect();
    s.push("S3CR3T".into());
    s.push("777111".into());
    s
}

fn assert_clean(what: &str, text: &str) {
    for s in secrets() {
        assert!(!text.contains(&s), "{s} found in {what}:\n{text}");
    }
}

struct Prompt;

#[async_trait]
impl OtpProvider for Prompt {
    async fn one_time_password(&self) -> Result<SecretString, AuthError> {
        Ok(SecretString::from(OTP))
    }
}

async fn mount(server: &MockServer, needle: &str, priority: u8, r: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(body_string_contains(needle))
        .respond_with(r)
        .with_priority(priority)
        .mount(server)
        .await;
}

fn ok(expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(ok_body(ACCESS, Some(REFRESH), expires_in))
}

#[tokio::test]
async fn user_account_session_logs_no_secret() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let server = MockServer::start().await;
    mount(&server, "totp=", 1, ok(1)).await;
    mount(
        &server,
        "grant_type=password",
        2,
        ResponseTemplate::new(401).set_body_json(err_body("invalid_grant", "OTP required")),
    )
    .await;
    mount(&server, "grant_type=refresh_token", 3, ok(1)).await;
    let mode = AuthMode::UserAccount {
        username: "alice".into(),
        password: SecretString::from(PASSWORD),
        client_id: "app".into(),
        client_secret: SecretString::from(CLIENT_SECRET),
    };
    let options = AuthOptions {
        otp_provider: Some(Arc::new(Prompt)),
        ..AuthOptions::default()
    };
    assert_clean("AuthMode Debug", &format!("{mode:?}"));
    assert_clean("AuthOptions Debug", &format!("{options:?}"));
    let m = TokenManager::start(&mode, &keycloak(&server, 240), options)
        .await
        .unwrap();
    let mut events = m.subscribe_events();
    // expires_in 1 s: renewals every 0.8 s on the real clock.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let refreshes = bodies(&server)
        .await
        .iter()
        .filter(|b| b.contains("grant_type=refresh_token"))
        .count();
    assert!((1..=3).contains(&refreshes), "{refreshes} refreshes in 2 s");
    let event = events.recv().await.unwrap();
    assert!(matches!(event, AuthEvent::Renewed { .. }));
    assert_clean("event Debug", &format!("{event:?}"));
    assert_clean("TokenManager Debug", &format!("{m:?}"));
    assert_clean("AccessToken Debug", &format!("{:?}", m.access_token()));
    assert_clean("token watch Debug", &format!("{:?}", m.subscribe_tokens()));
    m.shut_down().await;
    let text = logs.text();
    assert!(
        text.contains("INFO") && text.contains("access token renewed"),
        "{text}"
    );
    assert_clean("logs", &text);
}

#[tokio::test]
async fn failures_log_no_secret() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let server = MockServer::start().await;
    // Start-up refused with wrong credentials.
    mount(
        &server,
        "grant_type=password",
        1,
        ResponseTemplate::new(401)
            .set_body_json(err_body("invalid_grant", "Invalid user credentials")),
    )
    .await;
    let user = AuthMode::UserAccount {
        username: "alice".into(),
        password: SecretString::from(PASSWORD),
        client_id: "app".into(),
        client_secret: SecretString::from(CLIENT_SECRET),
    };
    let opts = AuthOptions {
        otp: Some(SecretString::from(OTP)),
        ..AuthOptions::default()
    };
    let e = TokenManager::start(&user, &keycloak(&server, 240), opts)
        .await
        .unwrap_err();
    assert_clean("error", &format!("{e} {e:?}"));

    // Service account: 503 (retry event), then revoked refresh token and a
    // fallback grant.
    let server = MockServer::start().await;
    mount(&server, "grant_type=client_credentials", 1, ok(300)).await;
    Mock::given(method("POST"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(ResponseTemplate::new(503).set_body_string(format!("<html>{REFRESH}</html>")))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    mount(
        &server,
        "grant_type=refresh_token",
        3,
        ResponseTemplate::new(400).set_body_json(err_body("invalid_grant", "Session not active")),
    )
    .await;
    let svc = AuthMode::ServiceAccount {
        client_id: "svc".into(),
        client_secret: SecretString::from(CLIENT_SECRET),
    };
    let m = TokenManager::start(&svc, &keycloak(&server, 240), AuthOptions::default())
        .await
        .unwrap();
    let mut events = m.subscribe_events();
    let e = m.renew_now().await.unwrap_err();
    assert_eq!(e, AuthError::ServiceUnavailable { status: 503 });
    m.renew_now().await.unwrap();
    let retry = events.recv().await.unwrap();
    assert!(matches!(retry, AuthEvent::Retrying { attempt: 1, .. }));
    assert_clean("retry event", &format!("{retry:?}"));
    m.shut_down().await;

    // Pre-acquired tokens whose session was revoked.
    let server = MockServer::start().await;
    mount(
        &server,
        "grant_type=refresh_token",
        1,
        ResponseTemplate::new(400).set_body_json(err_body("invalid_grant", "Stale token")),
    )
    .await;
    let pre = AuthMode::PreAcquired {
        client_id: "web".into(),
        client_secret: None,
        access_token: SecretString::from(format!("{}S3CR3T", jwt(300))),
        refresh_token: SecretString::from(FWD_REFRESH),
    };
    let m = TokenManager::start(&pre, &keycloak(&server, 240), AuthOptions::default())
        .await
        .unwrap();
    let mut events = m.subscribe_events();
    let e = m.renew_now().await.unwrap_err();
    assert!(matches!(e, AuthError::LoginExpired { .. }));
    let ev = events.recv().await.unwrap();
    assert!(matches!(ev, AuthEvent::LoginExpired { .. }));
    assert_clean("session expired", &format!("{e} {e:?} {ev:?}"));
    m.shut_down().await;

    let text = logs.text();
    assert!(text.contains("WARN"), "{text}");
    assert!(text.contains("ERROR"), "{text}");
    assert_clean("logs", &text);
}
