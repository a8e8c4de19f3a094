//! Each grant sends exactly `nost_tools`' form fields, in each mode.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use nost_auth::{AuthOptions, TokenManager};
use nost_config::{AuthMode, ExposeSecret, SecretString};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn keycloak_ok(refresh: Option<&str>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("at-1", refresh, 300)))
        .mount(&server)
        .await;
    server
}

fn service() -> AuthMode {
    AuthMode::ServiceAccount {
        client_id: "svc".into(),
        client_secret: SecretString::from("s3cr3t"),
    }
}

fn user() -> AuthMode {
    AuthMode::UserAccount {
        username: "alice".into(),
        password: SecretString::from("pa ss&word"),
        client_id: "app".into(),
        client_secret: SecretString::from("s3cr3t"),
    }
}

#[tokio::test]
async fn client_credentials_fields() {
    let server = keycloak_ok(None).await;
    let m = TokenManager::start(&service(), &keycloak(&server, 240), AuthOptions::default())
        .await
        .unwrap();
    assert_eq!(m.current_access_token().expose_secret(), "at-1");
    assert_eq!(
        bodies(&server).await,
        vec![
            "username=&password=&client_id=svc&grant_type=client_credentials&code=&redirect_uri=&scope=openid&client_secret=s3cr3t"
        ]
    );
    m.shut_down().await;
}

#[tokio::test]
async fn password_fields_without_otp() {
    let server = keycloak_ok(Some("rt-1")).await;
    let m = TokenManager::start(&user(), &keycloak(&server, 240), AuthOptions::default())
        .await
        .unwrap();
    assert_eq!(
        bodies(&server).await,
        vec![
            "username=alice&password=pa+ss%26word&client_id=app&grant_type=password&code=&redirect_uri=&scope=openid&client_secret=s3cr3t"
        ]
    );
    m.shut_down().await;
}

#[tokio::test]
async fn password_fields_with_otp_then_refresh_fields() {
    let server = keycloak_ok(Some("rt-1")).await;
    let options = AuthOptions {
        otp: Some(SecretString::from("123456")),
        ..AuthOptions::default()
    };
    let m = TokenManager::start(&user(), &keycloak(&server, 240), options)
        .await
        .unwrap();
    m.renew_now().await.unwrap();
    assert_eq!(
        bodies(&server).await,
        vec![
            "username=alice&password=pa+ss%26word&client_id=app&grant_type=password&code=&redirect_uri=&scope=openid&totp=123456&client_secret=s3cr3t",
            "client_id=app&grant_type=refresh_token&refresh_token=rt-1&client_secret=s3cr3t",
        ]
    );
    m.shut_down().await;
}

#[tokio::test]
async fn pre_acquired_public_client_refresh_fields() {
    let server = keycloak_ok(Some("rt-2")).await;
    let mode = AuthMode::PreAcquired {
        client_id: "nost_monitor_nodejs".into(),
        client_secret: None,
        access_token: SecretString::from(jwt(300)),
        refresh_token: SecretString::from("rt-forwarded"),
    };
    let m = TokenManager::start(&mode, &keycloak(&server, 240), AuthOptions::default())
        .await
        .unwrap();
    assert!(bodies(&server).await.is_empty(), "no grant at start-up");
    m.renew_now().await.unwrap();
    m.renew_now().await.unwrap();
    assert_eq!(
        bodies(&server).await,
        vec![
            "client_id=nost_monitor_nodejs&grant_type=refresh_token&refresh_token=rt-forwarded",
            "client_id=nost_monitor_nodejs&grant_type=refresh_token&refresh_token=rt-2",
        ]
    );
    m.shut_down().await;
}

#[tokio::test]
async fn pre_acquired_confidential_client_sends_secret() {
    let server = keycloak_ok(Some("rt-2")).await;
    let mode = AuthMode::PreAcquired {
        client_id: "web".into(),
        client_secret: Some(SecretString::from("s3cr3t")),
        access_token: SecretString::from(jwt(300)),
        refresh_token: SecretString::from("rt-forwarded"),
    };
    let m = TokenManager::start(&mode, &keycloak(&server, 240), AuthOptions::default())
        .await
        .unwrap();
    m.renew_now().await.unwrap();
    assert_eq!(
        bodies(&server).await,
        vec![
            "client_id=web&grant_type=refresh_token&refresh_token=rt-forwarded&client_secret=s3cr3t"
        ]
    );
    m.shut_down().await;
}

#[tokio::test]
async fn service_account_with_refresh_token_refreshes() {
    let server = keycloak_ok(Some("rt-1")).await;
    let m = TokenManager::start(&service(), &keycloak(&server, 240), AuthOptions::default())
        .await
        .unwrap();
    m.renew_now().await.unwrap();
    assert_eq!(
        bodies(&server).await[1],
        "client_id=svc&grant_type=refresh_token&refresh_token=rt-1&client_secret=s3cr3t"
    );
    m.shut_down().await;
}

#[tokio::test]
async fn basic_mode_is_refused() {
    let mode = AuthMode::Basic {
        username: "guest".into(),
        password: SecretString::from("guest"),
    };
    let err = TokenManager::start(
        &mode,
        &nost_config::KeycloakConfig::default(),
        AuthOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err, nost_auth::AuthError::NotKeycloak);
}
