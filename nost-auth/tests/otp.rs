//! The OTP matrix against a wiremock Keycloak.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use common::*;
use nost_auth::{AuthError, AuthEvent, AuthOptions, OtpProvider, TokenManager};
use nost_config::{AuthMode, SecretString};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Answers a fixed code and counts how often it was asked.
#[derive(Default)]
struct CountingPrompt(AtomicUsize);

#[async_trait]
impl OtpProvider for CountingPrompt {
    async fn one_time_password(&self) -> Result<SecretString, AuthError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(SecretString::from("654321"))
    }
}

fn user() -> AuthMode {
    AuthMode::UserAccount {
        username: "alice".into(),
        password: SecretString::from("pw"),
        client_id: "app".into(),
        client_secret: SecretString::from("cs"),
    }
}

fn options(otp: Option<&str>, prompt: &Arc<CountingPrompt>) -> AuthOptions {
    AuthOptions {
        otp: otp.map(SecretString::from),
        otp_provider: Some(prompt.clone()),
        ..AuthOptions::default()
    }
}

async fn respond(server: &MockServer, needle: &str, priority: u8, r: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(body_string_contains(needle))
        .respond_with(r)
        .with_priority(priority)
        .mount(server)
        .await;
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(ok_body("at-1", Some("rt-1"), 300))
}

fn fail(description: &str) -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(err_body("invalid_grant", description))
}

#[tokio::test]
async fn no_otp_needed_never_prompts() {
    let server = MockServer::start().await;
    respond(&server, "grant_type=password", 5, ok()).await;
    let prompt = Arc::new(CountingPrompt::default());
    let m = TokenManager::start(&user(), &keycloak(&server, 240), options(None, &prompt))
        .await
        .unwrap();
    assert_eq!(prompt.0.load(Ordering::SeqCst), 0);
    assert_eq!(bodies(&server).await.len(), 1);
    m.shut_down().await;
}

#[tokio::test]
async fn otp_indicated_is_prompted_and_sent_as_totp() {
    let server = MockServer::start().await;
    respond(&server, "totp=654321", 1, ok()).await;
    respond(
        &server,
        "grant_type=password",
        5,
        fail("Invalid OTP: one-time password required"),
    )
    .await;
    let prompt = Arc::new(CountingPrompt::default());
    let m = TokenManager::start(&user(), &keycloak(&server, 240), options(None, &prompt))
        .await
        .unwrap();
    assert_eq!(prompt.0.load(Ordering::SeqCst), 1);
    let b = bodies(&server).await;
    assert_eq!(b.len(), 2);
    assert!(!b[0].contains("totp"));
    assert!(
        b[1].contains("&scope=openid&totp=654321&client_secret=cs"),
        "{}",
        b[1]
    );
    m.shut_down().await;
}

#[tokio::test]
async fn otp_indicated_without_provider_is_otp_required() {
    let server = MockServer::start().await;
    respond(&server, "grant_type=password", 5, fail("OTP required")).await;
    let e = TokenManager::start(&user(), &keycloak(&server, 240), AuthOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e, AuthError::OtpRequired);
}

#[tokio::test]
async fn otp_up_front_is_sent_first_without_prompt() {
    let server = MockServer::start().await;
    respond(&server, "totp=111222", 1, ok()).await;
    respond(
        &server,
        "grant_type=password",
        5,
        fail("Invalid user credentials"),
    )
    .await;
    let prompt = Arc::new(CountingPrompt::default());
    let m = TokenManager::start(
        &user(),
        &keycloak(&server, 240),
        options(Some("111222"), &prompt),
    )
    .await
    .unwrap();
    assert_eq!(prompt.0.load(Ordering::SeqCst), 0);
    assert_eq!(bodies(&server).await.len(), 1);
    m.shut_down().await;
}

#[tokio::test]
async fn otp_rejected() {
    // Given up front and refused by a realm that says so.
    let server = MockServer::start().await;
    respond(&server, "grant_type=password", 5, fail("Invalid TOTP")).await;
    let prompt = Arc::new(CountingPrompt::default());
    let e = TokenManager::start(
        &user(),
        &keycloak(&server, 240),
        options(Some("000000"), &prompt),
    )
    .await
    .unwrap_err();
    assert_eq!(e, AuthError::OtpRejected);
    assert_eq!(prompt.0.load(Ordering::SeqCst), 0);

    // Prompted, then refused: asked once, not again.
    let e = TokenManager::start(&user(), &keycloak(&server, 240), options(None, &prompt))
        .await
        .unwrap_err();
    assert_eq!(e, AuthError::OtpRejected);
    assert_eq!(prompt.0.load(Ordering::SeqCst), 1);
    assert_eq!(bodies(&server).await.len(), 3);
}

#[tokio::test]
async fn wrong_password_never_prompts() {
    let server = MockServer::start().await;
    respond(
        &server,
        "grant_type=password",
        5,
        fail("Invalid user credentials"),
    )
    .await;
    let prompt = Arc::new(CountingPrompt::default());
    let e = TokenManager::start(&user(), &keycloak(&server, 240), options(None, &prompt))
        .await
        .unwrap_err();
    assert_eq!(e, AuthError::InvalidCredentials { otp_sent: false });
    assert_eq!(prompt.0.load(Ordering::SeqCst), 0);
    assert_eq!(bodies(&server).await.len(), 1);
}

#[tokio::test]
async fn user_who_needed_an_otp_is_never_prompted_again() {
    let server = MockServer::start().await;
    respond(
        &server,
        "grant_type=refresh_token",
        1,
        ResponseTemplate::new(400).set_body_json(err_body("invalid_grant", "Session not active")),
    )
    .await;
    respond(&server, "totp=654321", 2, ok()).await;
    respond(&server, "grant_type=password", 5, fail("OTP required")).await;
    let prompt = Arc::new(CountingPrompt::default());
    let m = TokenManager::start(&user(), &keycloak(&server, 240), options(None, &prompt))
        .await
        .unwrap();
    let mut events = m.subscribe_events();
    let e = m.renew_now().await.unwrap_err();
    assert!(matches!(e, AuthError::LoginExpired { .. }), "{e:?}");
    assert!(matches!(
        events.recv().await.unwrap(),
        AuthEvent::LoginExpired { .. }
    ));
    assert_eq!(
        prompt.0.load(Ordering::SeqCst),
        1,
        "prompted at start-up only"
    );
    let b = bodies(&server).await;
    assert_eq!(
        b.len(),
        3,
        "no password grant after the refresh failed: {b:?}"
    );
    assert!(b[2].contains("grant_type=refresh_token"));
    // The refresher has stopped; later calls report why.
    assert!(matches!(
        m.renew_now().await,
        Err(AuthError::LoginExpired { .. })
    ));
    m.shut_down().await;
}

#[tokio::test]
async fn user_without_otp_repeats_the_password_grant() {
    let server = MockServer::start().await;
    respond(
        &server,
        "grant_type=refresh_token",
        1,
        ResponseTemplate::new(400).set_body_json(err_body("invalid_grant", "Token is not active")),
    )
    .await;
    respond(&server, "grant_type=password", 5, ok()).await;
    let m = TokenManager::start(&user(), &keycloak(&server, 240), AuthOptions::default())
        .await
        .unwrap();
    m.renew_now().await.unwrap();
    let b = bodies(&server).await;
    assert_eq!(b.len(), 3);
    assert!(b[1].contains("grant_type=refresh_token"));
    assert!(b[2].contains("grant_type=password") && !b[2].contains("totp"));
    m.shut_down().await;
}
