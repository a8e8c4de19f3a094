//! The four Keycloak modes against a **real** Keycloak (the pinned
//! `keycloak-quarkus-dist` with the NOS-T realm of `nost_testkit::realm`)
//! and the real OAuth2 RabbitMQ node trusting the realm's key. Both are
//! started once per run by `cargo xtask integration`/`test`
//! (`NOST_TEST_KEYCLOAK_*`, `NOST_TEST_OAUTH_*`); without them every test
//! fails, none is skipped.
//!
//! Access tokens live 10 s in that realm and the applications renew every
//! 3 s (`token_refresh_interval`), so three renewals and the first token's
//! expiry happen within ~13 s; the modes run side by side in one test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nost_app::{AppError, Application, StartOptions};
use nost_auth::{AuthError, AuthEvent, FatalKind, InactiveReason};
use nost_config::{Config, Credentials, SecretString};
use nost_testkit::OAuthBrokerInfo;
use nost_testkit::RealKeycloakInfo;
use nost_testkit::realm::{
    OTP_USER, PUBLIC_CLIENT, REALM, SERVICE_CLIENT, SERVICE_REFRESH_CLIENT, USER, USER_CLIENT,
};
use nost_testkit::unique;
use serde_json::Value;
use tokio::time::Instant;

fn stack() -> (OAuthBrokerInfo, RealKeycloakInfo) {
    (
        OAuthBrokerInfo::from_env_or_panic(),
        RealKeycloakInfo::from_env_or_panic(),
    )
}

fn config(node: &OAuthBrokerInfo, kc: &RealKeycloakInfo, refresh_interval: u64) -> Config {
    nost_testkit::oauth_config(node.amqp_port, kc.port, refresh_interval)
}

fn with(credentials: Credentials) -> StartOptions {
    StartOptions {
        auth: credentials.into(),
        set_offset: Some(false),
        ..Default::default()
    }
}

/// A token request straight to the real Keycloak: status and JSON body.
async fn token_request(kc: &RealKeycloakInfo, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(kc.token_url())
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Tokens of the public client for `USER`, as a frontend would forward them.
async fn frontend_tokens(kc: &RealKeycloakInfo) -> (String, String) {
    let (status, body) = token_request(
        kc,
        &[
            ("grant_type", "password"),
            ("client_id", PUBLIC_CLIENT),
            ("username", USER),
            ("password", &kc.realm.user_password),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn pre_acquired(access: String, refresh: String) -> StartOptions {
    StartOptions {
        auth: nost_app::AuthInputs::from(Credentials::client(PUBLIC_CLIENT, None))
            .with_tokens(SecretString::from(access), SecretString::from(refresh)),
        set_offset: Some(false),
        ..Default::default()
    }
}

/// Ends one SSO session through the admin API (other sessions of the same
/// user, e.g. of tests running beside, stay).
async fn end_session(kc: &RealKeycloakInfo, session: &str) {
    let http = reqwest::Client::new();
    let admin: Value = http
        .post(format!(
            "{}/realms/master/protocol/openid-connect/token",
            kc.base_url()
        ))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", &kc.admin_user),
            ("password", &kc.admin_password),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", admin["access_token"].as_str().unwrap());
    let status = http
        .delete(format!(
            "{}/admin/realms/{REALM}/sessions/{session}",
            kc.base_url()
        ))
        .header("Authorization", &bearer)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "ending the session: {status}");
}

/// What one application saw while publishing to itself across renewals.
#[derive(Debug)]
struct Run {
    mode: &'static str,
    sent: usize,
    received: usize,
    updates: usize,
    drops: Vec<String>,
    renewals: Vec<String>,
}

/// One application, one connection: publish to itself every 100 ms until
/// the broker has been sent at least three renewed tokens by update-secret
/// and the first access token has expired (so publishing past it proves
/// the renewed tokens are used), then count what arrived.
async fn across_three_renewals(
    mode: &'static str,
    cfg: &Config,
    lifespan: u32,
    options: StartOptions,
) -> Run {
    let prefix = unique("realkc");
    let app = Application::start_up("sat", &prefix, cfg, options)
        .await
        .unwrap_or_else(|e| panic!("{mode}: {e}"));
    let mut events = app.session().events();
    let mut auth = app
        .token_manager()
        .expect("a Keycloak mode")
        .subscribe_events();
    let received = Arc::new(AtomicUsize::new(0));
    app.add_message_callback("sat", "tick", nost_testkit::count_into(&received))
        .await
        .unwrap();
    let started = Instant::now();
    let past_expiry = Duration::from_secs(u64::from(lifespan) + 2);
    let deadline = started + Duration::from_secs(90);
    let (mut sent, mut updates, mut drops, mut renewals) = (0, 0, Vec::new(), Vec::new());
    while updates < 3 || started.elapsed() < past_expiry {
        assert!(
            Instant::now() < deadline,
            "{mode}: only {updates} update-secrets in 90 s"
        );
        app.send_message("tick", "{}").await.unwrap();
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let c = nost_testkit::count_events(&mut events);
        updates += c.secret_updated;
        drops.extend(c.reasons);
        while let Ok(e) = auth.try_recv() {
            renewals.push(format!("{e:?}"));
        }
    }
    app.session()
        .flush(Duration::from_secs(15))
        .await
        .unwrap_or_else(|e| panic!("{mode}: flush: {e}"));
    let until = Instant::now() + Duration::from_secs(15);
    while received.load(Ordering::SeqCst) < sent && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.shut_down().await;
    Run {
        mode,
        sent,
        received: received.load(Ordering::SeqCst),
        updates,
        drops,
        renewals,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_mode_keeps_one_connection_across_three_renewals_losing_nothing() {
    let (node, kc) = stack();
    let cfg = config(&node, &kc, 3);
    let r = &kc.realm;
    let lifespan = r.access_token_lifespan;
    let service = Credentials::client(SERVICE_CLIENT, Some(r.service_secret.clone()));
    let service_refresh = Credentials::client(
        SERVICE_REFRESH_CLIENT,
        Some(r.service_refresh_secret.clone()),
    );
    let user = Credentials::client(USER_CLIENT, Some(r.user_client_secret.clone()))
        .with_user(USER, &r.user_password);
    let otp_user = Credentials::client(USER_CLIENT, Some(r.user_client_secret.clone()))
        .with_user(OTP_USER, &r.otp_user_password);
    let otp = with(otp_user).with_otp(SecretString::from(r.totp_now()));
    let (access, refresh) = frontend_tokens(&kc).await;
    let runs = tokio::join!(
        across_three_renewals("service account", &cfg, lifespan, with(service)),
        across_three_renewals(
            "service account with refresh tokens",
            &cfg,
            lifespan,
            with(service_refresh)
        ),
        across_three_renewals("user account", &cfg, lifespan, with(user)),
        across_three_renewals("user account with OTP", &cfg, lifespan, otp),
        across_three_renewals(
            "pre-acquired tokens of the public client",
            &cfg,
            lifespan,
            pre_acquired(access, refresh)
        ),
    );
    let runs = [runs.0, runs.1, runs.2, runs.3, runs.4];
    for run in &runs {
        eprintln!(
            "{}: sent {}, received {}, update-secrets {}, renewals {:?}",
            run.mode,
            run.sent,
            run.received,
            run.updates,
            run.renewals
                .iter()
                .map(|r| r.split(',').next().unwrap_or_default())
                .collect::<Vec<_>>()
        );
        assert!(run.updates >= 3, "{run:?}");
        assert!(run.drops.is_empty(), "no connection lost: {run:?}");
        assert_eq!(run.received, run.sent, "every message delivered: {run:?}");
    }
    // Keycloak's default gives a service account no refresh token: it
    // renews by repeating its grant; with the client setting on, it
    // refreshes.
    let how = |i: usize| {
        runs[i]
            .renewals
            .iter()
            .filter(|e| e.contains("Renewed"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(how(0).iter().all(|e| e.contains("Grant")), "{:?}", how(0));
    assert!(how(1).iter().all(|e| e.contains("Refresh")), "{:?}", how(1));
    for (i, run) in runs.iter().enumerate().skip(2) {
        assert!(
            how(i).iter().all(|e| e.contains("Refresh")),
            "{}: {:?}",
            run.mode,
            how(i)
        );
    }
}

#[tokio::test]
async fn a_missing_otp_says_one_may_be_required_and_a_wrong_one_is_told_apart() {
    let (node, kc) = stack();
    let cfg = config(&node, &kc, 240);
    let r = &kc.realm;
    let creds = Credentials::client(USER_CLIENT, Some(r.user_client_secret.clone()))
        .with_user(OTP_USER, &r.otp_user_password);

    // Keycloak's own answers (stock direct-grant flow).
    let base = [
        ("grant_type", "password"),
        ("client_id", USER_CLIENT),
        ("client_secret", r.user_client_secret.as_str()),
        ("username", OTP_USER),
        ("password", r.otp_user_password.as_str()),
    ];
    let wrong = r.wrong_totp();
    let (s1, missing_body) = token_request(&kc, &base).await;
    let mut with_wrong = base.to_vec();
    with_wrong.push(("totp", &wrong));
    let (s2, wrong_body) = token_request(&kc, &with_wrong).await;
    eprintln!(
        "Keycloak, OTP missing: {s1} {}; OTP wrong: {s2} {}",
        error_of(&missing_body),
        error_of(&wrong_body)
    );
    for (s, b) in [(s1, &missing_body), (s2, &wrong_body)] {
        assert_eq!(s, 401);
        assert_eq!(b["error"], "invalid_grant");
        assert_eq!(b["error_description"], "Invalid user credentials");
    }

    let missing = Application::start_up("sat", &unique("nootp"), &cfg, with(creds.clone()))
        .await
        .unwrap_err();
    let AppError::Auth(missing) = missing else {
        panic!("{missing:?}")
    };
    assert_eq!(missing, AuthError::InvalidCredentials { otp_sent: false });
    let text = missing.to_string();
    assert!(
        text.contains("one-time password") && text.contains("NOST_OTP"),
        "{text}"
    );

    let wrong_err = Application::start_up(
        "sat",
        &unique("badotp"),
        &cfg,
        with(creds.clone()).with_otp(SecretString::from(wrong.clone())),
    )
    .await
    .unwrap_err();
    let AppError::Auth(wrong_err) = wrong_err else {
        panic!("{wrong_err:?}")
    };
    assert_eq!(wrong_err, AuthError::InvalidCredentials { otp_sent: true });
    assert_ne!(wrong_err.to_string(), text, "told apart from a missing OTP");
    assert!(
        !wrong_err.to_string().contains(&wrong),
        "no OTP in messages"
    );

    let app = Application::start_up(
        "sat",
        &unique("otp"),
        &cfg,
        with(creds).with_otp(SecretString::from(r.totp_now())),
    )
    .await
    .unwrap();
    app.send_message("status.ready", "{}").await.unwrap();
    app.session().flush(Duration::from_secs(10)).await.unwrap();
    app.shut_down().await;
}

/// Keycloak keeps session and token times in whole seconds: renewals in
/// the same second look alike to its reuse check.
async fn next_second() {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let start = now();
    while now() == start {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `error` and `error_description` only (never a token).
fn error_of(body: &Value) -> String {
    format!("{} / {}", body["error"], body["error_description"])
}

#[tokio::test]
async fn rotated_refresh_tokens_are_single_use_and_the_newest_is_kept() {
    let (node, kc) = stack();
    let cfg = config(&node, &kc, 240);
    let (access, refresh) = frontend_tokens(&kc).await;
    let app = Application::start_up(
        "sat",
        &unique("rotate"),
        &cfg,
        pre_acquired(access, refresh.clone()),
    )
    .await
    .unwrap();
    let tokens = app.token_manager().unwrap();
    // Each renewal must present the newest refresh token: Keycloak refuses
    // a used one ("revoke refresh token" is on in the realm).
    for _ in 0..3 {
        next_second().await;
        tokens.renew_now().await.unwrap();
    }
    app.send_message("status.ready", "{}").await.unwrap();
    app.session().flush(Duration::from_secs(10)).await.unwrap();
    // The forwarded refresh token was used by the first renewal: Keycloak
    // refuses it now ...
    let (status, body) = token_request(
        &kc,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", PUBLIC_CLIENT),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    eprintln!(
        "Keycloak, reused refresh token: {status} {}",
        error_of(&body)
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        [
            "Stale token",
            "Maximum allowed refresh token reuse exceeded"
        ]
        .contains(&description),
        "{description}"
    );
    // ... and, taking the reuse for theft, ends the client session: the
    // application's next renewal fails with a typed error, never a panic.
    let err = tokens.renew_now().await.unwrap_err();
    eprintln!("nost-auth after the reuse: {err:?} / {err}");
    assert!(
        matches!(
            err,
            AuthError::LoginExpired {
                reason: Some(InactiveReason::ClientSessionNotActive),
                ..
            }
        ),
        "{err:?}"
    );
    app.shut_down().await;
}

#[tokio::test]
async fn an_ended_sso_session_stops_renewal_with_a_typed_login_expired_error() {
    let (node, kc) = stack();
    let cfg = config(&node, &kc, 240);
    // A session of its own, ended alone below.
    let (status, body) = token_request(
        &kc,
        &[
            ("grant_type", "password"),
            ("client_id", PUBLIC_CLIENT),
            ("username", USER),
            ("password", &kc.realm.user_password),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let session = body["session_state"].as_str().unwrap().to_owned();
    let app = Application::start_up(
        "sat",
        &unique("sso"),
        &cfg,
        pre_acquired(
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        ),
    )
    .await
    .unwrap();
    let tokens = app.token_manager().unwrap();
    let mut events = tokens.subscribe_events();
    tokens.renew_now().await.unwrap();
    end_session(&kc, &session).await;
    let err = tokens.renew_now().await.unwrap_err();
    assert_eq!(
        err,
        AuthError::LoginExpired {
            reason: Some(InactiveReason::SessionNotActive),
            hint: match &err {
                AuthError::LoginExpired { hint, .. } => hint,
                _ => "",
            },
        },
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("Session not active"), "{text}");
    let told = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(AuthEvent::LoginExpired { .. }) = events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(
        told.is_ok(),
        "the application is told through the auth events"
    );
    // ... and the application itself knows it: sending fails with the
    // typed end of the session instead of buffering until the token lapses.
    let failure = app.auth_failure().expect("the application knows why");
    assert_eq!(
        failure.fatal_kind(),
        Some(FatalKind::LoginExpired),
        "{failure}"
    );
    match app.send_message("status.ping", "{}").await {
        Err(AppError::Auth(e)) => {
            assert_eq!(e.fatal_kind(), Some(FatalKind::LoginExpired), "{e}");
        }
        other => panic!("send_message must fail with the ended session, got {other:?}"),
    }
    app.shut_down().await;
}
