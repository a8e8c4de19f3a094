//! Clock faults and hostile Keycloak answers: tokens expired on arrival do
//! not make the refresher hammer Keycloak, oversized answers are refused,
//! plain http to a remote host is warned about.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use nost_auth::{
    AuthError, AuthOptions, CLOCK_SKEW_FLOOR, FirstToken, KeycloakIssuer, MAX_RESPONSE_BYTES,
    RetryPolicy, TokenManager,
};
use nost_config::{AuthMode, KeycloakConfig, SecretString};
use tokio::time::sleep;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn no_jitter() -> AuthOptions {
    AuthOptions {
        retry: RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        },
        ..AuthOptions::default()
    }
}

fn service() -> AuthMode {
    AuthMode::ServiceAccount {
        client_id: "svc".into(),
        client_secret: SecretString::from("s"),
    }
}

#[tokio::test(start_paused = true)]
async fn tokens_expired_on_arrival_are_renewed_at_the_floor_not_every_half_second() {
    let logs = Logs::default();
    let _guard = logs.capture();
    // expires_in 0: what a Keycloak whose clock is behind ours looks like
    // (and what `exp` in the past by the local clock gives).
    let src = FakeIssuer::new(|_, n| Ok(set(n, Duration::ZERO, false)));
    let m = TokenManager::start_with_issuer(
        src.clone(),
        FirstToken::ServiceAccount,
        Duration::from_secs(240),
        no_jitter(),
    )
    .await
    .unwrap();
    // Connections asking for a fresh token do not trigger renewals either.
    for _ in 0..10 {
        let _ = m.fresh_access_token(Duration::from_secs(30)).await.unwrap();
    }
    sleep(Duration::from_secs(300)).await;
    let calls = src.calls().len();
    let floor = CLOCK_SKEW_FLOOR.as_secs();
    // Start-up grant plus one renewal per floor (without the floor: 600).
    assert!(
        calls >= 2 && calls as u64 <= 1 + 300 / floor + 1,
        "{calls} Keycloak requests in 300 s"
    );
    let warnings = logs.text().matches("clock skew").count();
    assert_eq!(warnings, 1, "warned once: {}", logs.text());
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn a_short_but_valid_lifetime_keeps_its_schedule() {
    let src = FakeIssuer::new(|_, n| Ok(set(n, Duration::from_secs(4), false)));
    let m = TokenManager::start_with_issuer(
        src.clone(),
        FirstToken::ServiceAccount,
        Duration::from_secs(240),
        no_jitter(),
    )
    .await
    .unwrap();
    sleep(Duration::from_millis(10_100)).await;
    // 80% of 4 s: renewals at 3.2, 6.4, 9.6 s.
    assert_eq!(src.calls().len(), 4, "{:?}", src.times());
    m.shut_down().await;
}

#[tokio::test]
async fn an_answer_above_one_mebibyte_is_refused_with_a_clear_error() {
    let server = MockServer::start().await;
    let padding = "x".repeat(MAX_RESPONSE_BYTES + 10);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "at", "expires_in": 300, "padding": padding,
        })))
        .mount(&server)
        .await;
    let e = TokenManager::start(&service(), &keycloak(&server, 240), no_jitter())
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::ResponseTooLarge { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("1048576 bytes") && text.contains("servers.keycloak"),
        "{text}"
    );

    // Below the limit the same answer is read.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "at", "expires_in": 300, "padding": "x".repeat(100_000),
        })))
        .mount(&server)
        .await;
    let m = TokenManager::start(&service(), &keycloak(&server, 240), no_jitter())
        .await
        .unwrap();
    m.shut_down().await;
}

fn kc(host: &str, tls: Option<bool>) -> KeycloakConfig {
    KeycloakConfig {
        host: host.into(),
        port: 8443,
        realm: "NOS-T".into(),
        tls,
        tls_ca_cert: None,
        token_refresh_interval: 240,
    }
}

#[test]
fn plain_http_only_for_loopback_hosts_or_when_written_and_warned_for_remote_hosts() {
    for (host, tls, scheme) in [
        ("localhost", None, "http://"),
        ("LOCALHOST", None, "http://"),
        ("127.0.0.1", None, "http://"),
        ("::1", None, "http://[::1]"),
        ("[::1]", None, "http://[::1]"),
        ("localhost.example.org", None, "https://"),
        ("mylocalhost", None, "https://"),
        ("127.0.0.1.nip.io", None, "https://"),
        ("nost.example.org", None, "https://"),
        ("nost.example.org", Some(false), "http://"),
        ("localhost", Some(true), "https://"),
    ] {
        let url = kc(host, tls).token_url();
        assert!(url.starts_with(scheme), "{host} {tls:?}: {url}");
    }
    let warned = |host: &str, tls: Option<bool>| {
        let logs = Logs::default();
        let _guard = logs.capture();
        KeycloakIssuer::new(&service(), &kc(host, tls), Duration::from_secs(5)).unwrap();
        logs.text().contains("plain http")
    };
    assert!(warned("nost.example.org", Some(false)));
    assert!(warned("10.0.0.7", Some(false)));
    assert!(!warned("localhost", None));
    assert!(!warned("127.0.0.1", Some(false)));
    assert!(
        !warned("localhost.example.org", None),
        "https: nothing to warn"
    );
}
