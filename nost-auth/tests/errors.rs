//! Every error row of keycloak.md maps to its typed error; odd answers and
//! transport failures are typed too, and no message leaks a secret.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use nost_auth::{AuthError, InactiveReason, KeycloakIssuer, TokenIssuer};
use nost_config::{AuthMode, KeycloakConfig, SecretString};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRETS: &[&str] = &[
    "pw-SECRET",
    "client-SECRET",
    "rt-SECRET",
    "otp-987654",
    "at-SECRET",
];

fn user() -> AuthMode {
    AuthMode::UserAccount {
        username: "alice".into(),
        password: SecretString::from("pw-SECRET"),
        client_id: "app".into(),
        client_secret: SecretString::from("client-SECRET"),
    }
}

fn service() -> AuthMode {
    AuthMode::ServiceAccount {
        client_id: "svc".into(),
        client_secret: SecretString::from("client-SECRET"),
    }
}

#[derive(Clone, Copy, Debug)]
enum Req {
    Password,
    PasswordWithOtp,
    ClientCredentials,
    Refresh,
}

async fn answer(req: Req, status: u16, body: ResponseTemplate) -> AuthError {
    let _ = status;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(body)
        .mount(&server)
        .await;
    let mode = match req {
        Req::ClientCredentials => service(),
        _ => user(),
    };
    let source =
        KeycloakIssuer::new(&mode, &keycloak(&server, 240), Duration::from_secs(5)).unwrap();
    let result = match req {
        Req::Password | Req::ClientCredentials => source.obtain(None).await,
        Req::PasswordWithOtp => source.obtain(Some(SecretString::from("otp-987654"))).await,
        Req::Refresh => source.renew(SecretString::from("rt-SECRET")).await,
    };
    let err = result.unwrap_err();
    assert_no_secret(&err);
    err
}

fn assert_no_secret(err: &AuthError) {
    let text = format!("{err} {err:?}");
    for s in SECRETS {
        assert!(!text.contains(s), "{s} in {text}");
    }
}

async fn kc_error(req: Req, status: u16, error: &str, description: &str) -> AuthError {
    answer(
        req,
        status,
        ResponseTemplate::new(status).set_body_json(err_body(error, description)),
    )
    .await
}

#[tokio::test]
async fn keycloak_error_table() {
    use AuthError as E;
    use InactiveReason as R;
    let client = |s: &str| s.to_string();
    let rows: Vec<(Req, u16, &str, &str, AuthError)> = vec![
        (
            Req::Password,
            401,
            "invalid_grant",
            "Invalid user credentials",
            E::InvalidCredentials { otp_sent: false },
        ),
        (
            Req::Password,
            400,
            "invalid_grant",
            "Invalid user credentials",
            E::InvalidCredentials { otp_sent: false },
        ),
        // OTP missing or wrong in a stock realm: the same text.
        (
            Req::PasswordWithOtp,
            401,
            "invalid_grant",
            "Invalid user credentials",
            E::InvalidCredentials { otp_sent: true },
        ),
        (
            Req::Password,
            400,
            "invalid_grant",
            "Account disabled",
            E::AccountDisabled,
        ),
        (
            Req::Password,
            400,
            "invalid_grant",
            "Account is not fully set up",
            E::AccountNotFullySetUp,
        ),
        (
            Req::Password,
            401,
            "unauthorized_client",
            "Client not allowed for direct access grants",
            E::DirectGrantsDisabled {
                client_id: client("app"),
            },
        ),
        (
            Req::Password,
            401,
            "unauthorized_client",
            "Invalid client or Invalid client credentials",
            E::InvalidClient {
                client_id: client("app"),
            },
        ),
        (
            Req::ClientCredentials,
            401,
            "unauthorized_client",
            "Invalid client or Invalid client credentials",
            E::InvalidClient {
                client_id: client("svc"),
            },
        ),
        (
            Req::ClientCredentials,
            401,
            "invalid_client",
            "Invalid client or Invalid client credentials",
            E::InvalidClient {
                client_id: client("svc"),
            },
        ),
        (
            Req::ClientCredentials,
            400,
            "invalid_request",
            "Client not enabled to retrieve service account",
            E::ServiceAccountDisabled {
                client_id: client("svc"),
            },
        ),
        (
            Req::ClientCredentials,
            401,
            "unauthorized_client",
            "Client not enabled to retrieve service account",
            E::ServiceAccountDisabled {
                client_id: client("svc"),
            },
        ),
        (
            Req::Refresh,
            400,
            "invalid_grant",
            "Token is not active",
            E::RefreshTokenInactive {
                reason: R::TokenNotActive,
            },
        ),
        (
            Req::Refresh,
            400,
            "invalid_grant",
            "Session not active",
            E::RefreshTokenInactive {
                reason: R::SessionNotActive,
            },
        ),
        (
            Req::Refresh,
            400,
            "invalid_grant",
            "Client session not active",
            E::RefreshTokenInactive {
                reason: R::ClientSessionNotActive,
            },
        ),
        (
            Req::Refresh,
            400,
            "invalid_grant",
            "Stale token",
            E::RefreshTokenInactive {
                reason: R::StaleToken,
            },
        ),
        (
            Req::Refresh,
            400,
            "invalid_grant",
            "Unmatching clients",
            E::RefreshTokenInactive {
                reason: R::UnmatchingClients,
            },
        ),
        (
            Req::Refresh,
            400,
            "invalid_grant",
            "Maximum allowed refresh token reuse exceeded",
            E::RefreshTokenInactive {
                reason: R::ReuseExceeded,
            },
        ),
        (
            Req::Refresh,
            400,
            "invalid_grant",
            "Invalid refresh token",
            E::RefreshTokenInactive {
                reason: R::Rejected,
            },
        ),
        (
            Req::Refresh,
            401,
            "unauthorized_client",
            "Invalid client or Invalid client credentials",
            E::InvalidClient {
                client_id: client("app"),
            },
        ),
        // Customised direct-grant flows that say so.
        (
            Req::Password,
            401,
            "invalid_grant",
            "Invalid OTP",
            E::OtpRequired,
        ),
        (
            Req::Password,
            401,
            "invalid_grant",
            "Two-factor authentication required",
            E::OtpRequired,
        ),
        (Req::Password, 401, "mfa_required", "", E::OtpRequired),
        (
            Req::PasswordWithOtp,
            401,
            "invalid_grant",
            "Invalid TOTP code",
            E::OtpRejected,
        ),
        (
            Req::PasswordWithOtp,
            401,
            "invalid_grant",
            "one-time password expired",
            E::OtpRejected,
        ),
        (
            Req::Password,
            503,
            "temporarily_unavailable",
            "Keycloak is starting",
            E::ServiceUnavailable { status: 503 },
        ),
    ];
    for (req, status, error, description, expected) in rows {
        let got = kc_error(req, status, error, description).await;
        assert_eq!(got, expected, "{req:?} {status} {error} / {description}");
    }
}

#[tokio::test]
async fn status_code_does_not_decide() {
    // The same body under 400 and 401 (it varies by Keycloak version).
    for status in [400, 401] {
        assert_eq!(
            kc_error(Req::Refresh, status, "invalid_grant", "Session not active").await,
            AuthError::RefreshTokenInactive {
                reason: InactiveReason::SessionNotActive
            }
        );
    }
}

#[tokio::test]
async fn unknown_error_is_rejected_with_its_code() {
    let e = kc_error(
        Req::ClientCredentials,
        400,
        "invalid_scope",
        "Invalid scopes: foo",
    )
    .await;
    assert_eq!(
        e,
        AuthError::Rejected {
            error: "invalid_scope".into(),
            description: "Invalid scopes: foo".into()
        }
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn odd_answers() {
    let html = ResponseTemplate::new(503).set_body_string("<html>Service Unavailable</html>");
    assert_eq!(
        answer(Req::Refresh, 503, html).await,
        AuthError::ServiceUnavailable { status: 503 }
    );
    let gw = ResponseTemplate::new(502).set_body_string("");
    assert_eq!(
        answer(Req::Refresh, 502, gw).await,
        AuthError::ServiceUnavailable { status: 502 }
    );
    let nf = ResponseTemplate::new(404).set_body_string("Not Found");
    assert!(matches!(
        answer(Req::Password, 404, nf).await,
        AuthError::MalformedResponse { status: 404, .. }
    ));
    // A 200 that is not a token answer; it must not be echoed (it may hold a token).
    let junk = ResponseTemplate::new(200).set_body_string(r#"{"token":"at-SECRET"}"#);
    assert!(matches!(
        answer(Req::Password, 200, junk).await,
        AuthError::MalformedResponse { status: 200, .. }
    ));
    let junk = ResponseTemplate::new(200).set_body_string("at-SECRET");
    assert!(matches!(
        answer(Req::Password, 200, junk).await,
        AuthError::MalformedResponse { status: 200, .. }
    ));
    let wrong_type = ResponseTemplate::new(200).set_body_string(r#"{"access_token":42}"#);
    assert!(matches!(
        answer(Req::Password, 200, wrong_type).await,
        AuthError::MalformedResponse { .. }
    ));
}

#[tokio::test]
async fn expiry_falls_back_to_jwt_exp() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"access_token": jwt(120)})),
        )
        .mount(&server)
        .await;
    let source =
        KeycloakIssuer::new(&service(), &keycloak(&server, 240), Duration::from_secs(5)).unwrap();
    let set = source.obtain(None).await.unwrap();
    let life = set.expires_in.unwrap();
    assert!(
        life > Duration::from_secs(115) && life <= Duration::from_secs(120),
        "{life:?}"
    );
    assert!(set.refresh_token.is_none());
}

#[tokio::test]
async fn connection_refused_is_transport() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let kc = KeycloakConfig {
        host: "127.0.0.1".into(),
        port: u32::from(port),
        ..KeycloakConfig::default()
    };
    let source = KeycloakIssuer::new(&service(), &kc, Duration::from_secs(5)).unwrap();
    let e = source.obtain(None).await.unwrap_err();
    assert!(matches!(e, AuthError::Transport { .. }), "{e:?}");
    assert!(e.is_retryable());
    assert!(e.to_string().contains("servers.keycloak"), "{e}");
    assert_no_secret(&e);
}

#[tokio::test]
async fn tls_against_a_plain_server_fails_cleanly() {
    let server = MockServer::start().await;
    let kc = KeycloakConfig {
        tls: Some(true),
        ..keycloak(&server, 240)
    };
    let source = KeycloakIssuer::new(&service(), &kc, Duration::from_secs(5)).unwrap();
    assert!(source.token_url().starts_with("https://"));
    let e = source.obtain(None).await.unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::Transport { .. } | AuthError::TlsCertificate { .. }
        ),
        "{e:?}"
    );
    assert!(bodies(&server).await.is_empty());
}

#[test]
fn ca_cert_problems_are_explained() {
    let dir = std::env::temp_dir().join(format!("nost-auth-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    for path in [dir.join("missing.pem"), not_pem] {
        let kc = KeycloakConfig {
            host: "keycloak.example".into(),
            tls_ca_cert: Some(path.display().to_string()),
            ..KeycloakConfig::default()
        };
        let e = KeycloakIssuer::new(&service(), &kc, Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, AuthError::CaCert { .. }), "{e:?}");
        assert!(
            e.to_string().contains("servers.keycloak.tls_ca_cert"),
            "{e}"
        );
    }
}

#[test]
fn every_message_says_what_to_do_and_leaks_nothing() {
    let all = [
        AuthError::InvalidCredentials { otp_sent: false },
        AuthError::InvalidCredentials { otp_sent: true },
        AuthError::OtpRequired,
        AuthError::OtpRejected,
        AuthError::AccountDisabled,
        AuthError::AccountNotFullySetUp,
        AuthError::LoginExpired {
            reason: Some(InactiveReason::SessionNotActive),
            hint: "start again",
        },
        AuthError::TlsCertificate {
            url: "https://kc:8443/x".into(),
            detail: "invalid peer certificate: UnknownIssuer".into(),
            source: None,
        },
    ];
    for e in &all {
        assert_no_secret(e);
        assert!(e.to_string().len() > 40, "{e}");
    }
    assert!(
        AuthError::InvalidCredentials { otp_sent: false }
            .to_string()
            .contains("NOST_OTP")
    );
    assert!(AuthError::OtpRequired.to_string().contains("NOST_OTP"));
    assert!(
        AuthError::TlsCertificate {
            url: String::new(),
            detail: String::new(),
            source: None,
        }
        .to_string()
        .contains("servers.keycloak.tls_ca_cert")
    );
    // Three distinct messages: wrong password, OTP required, OTP rejected.
    let texts: std::collections::HashSet<String> = [
        AuthError::InvalidCredentials { otp_sent: false },
        AuthError::OtpRequired,
        AuthError::OtpRejected,
    ]
    .iter()
    .map(|e| e.to_string())
    .collect();
    assert_eq!(texts.len(), 3);
}
