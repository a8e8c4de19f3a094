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
    tm.shut_down().await;
}

#[tokio::test]
async fn pre_acquired_tokens_that_run_out_are_login_expired() {
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
    assert_eq!(kind, FatalKind::LoginExpired, "{error}");
    assert!(kind.advice().contains("log in again"));
    tm.shut_down().await;
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
    tm.shut_down().await;
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
    tm.shut_down().await;
}

// ---------------------------------------------------------------------------
// The AMQP session on the OAuth2 node (`cargo xtask integration`): a fatal
// outcome stops the reconnects and reaches publish, typed.

mod on_the_oauth_node {
    use std::time::Duration;

    use nost_amqp::{AmqpError, Outgoing, SessionEvent, TokenFailureKind};
    use nost_app::{AppError, Application, StartOptions};
    use nost_config::{Config, Credentials, SecretString};
    use nost_testkit::{KID, OAuthBrokerInfo};
    use nost_testkit::{KeycloakEmulator, SigningKey};
    use nost_testkit::{unique, wait_for_disconnect, wait_for_event};
    use tokio::sync::broadcast;

    const REALM: &str = "NOS-T";

    async fn setup() -> (OAuthBrokerInfo, KeycloakEmulator) {
        let node = OAuthBrokerInfo::from_env_or_panic();
        let key = SigningKey::from_pem_file(&node.signing_key_path(), KID).unwrap();
        let kc = KeycloakEmulator::start(REALM, key).await;
        kc.set_access_lifetime(3);
        (node, kc)
    }

    fn config(node: &OAuthBrokerInfo, kc: &KeycloakEmulator) -> Config {
        nost_testkit::oauth_config_builder(node.amqp_port, kc.port(), 240)
            .rabbitmq(|r| r.connection_timeout = 10)
            .build()
            .unwrap()
    }

    /// Close the node's connections whose client-provided name contains `name`.
    fn close_connections_named(node: &OAuthBrokerInfo, name: &str) -> usize {
        let out = node
            .rabbitmqctl(&[
                "list_connections",
                "-q",
                "--no-table-headers",
                "pid",
                "client_properties",
            ])
            .unwrap();
        let mut n = 0;
        for line in out.lines().filter(|l| l.contains(name)) {
            if let Some(pid) = line.split_whitespace().next() {
                node.rabbitmqctl(&[
                    "close_connection",
                    pid,
                    "test: the broker drops the connection",
                ])
                .unwrap();
                n += 1;
            }
        }
        n
    }

    /// Connects and reconnect attempts reported within `window` (a closed
    /// event channel ends the count).
    async fn reconnect_attempts_within(
        events: &mut broadcast::Receiver<SessionEvent>,
        window: Duration,
    ) -> usize {
        let mut attempts = 0;
        let watch = tokio::time::sleep(window);
        tokio::pin!(watch);
        loop {
            tokio::select! {
                _ = &mut watch => return attempts,
                e = events.recv() => match e {
                    Ok(SessionEvent::ReconnectFailed { .. } | SessionEvent::Connected { .. }) => attempts += 1,
                    Ok(_) => {}
                    Err(_) => return attempts,
                },
            }
        }
    }

    /// Nothing was asked of Keycloak since the verdict, and `app` shuts down
    /// within `within` without a connection.
    async fn quiet_after_the_verdict(
        kc: &KeycloakEmulator,
        requests_at_verdict: usize,
        app: &Application,
        within: Duration,
    ) {
        assert_eq!(
            kc.requests().len(),
            requests_at_verdict,
            "no Keycloak request after the fatal verdict"
        );
        tokio::time::timeout(within, app.shut_down())
            .await
            .expect("shut down without a connection");
    }

    /// Start `app` with `options`, make renewal fail for good with
    /// `break_it`, then drop its connection at the broker: the session
    /// reports the typed outcome, refuses publishing with it and makes no
    /// reconnect attempt; nothing more is asked of Keycloak.
    async fn stops_reconnecting(
        kc: &KeycloakEmulator,
        node: &OAuthBrokerInfo,
        mut options: StartOptions,
        break_it: impl FnOnce(),
        kind: TokenFailureKind,
        advice: &str,
    ) {
        let prefix = unique("fatal");
        let name = unique("fatal-conn");
        options.connection_name = Some(name.clone());
        options.set_offset = Some(false);
        let app = Application::start_up("sat", &prefix, &config(node, kc), options)
            .await
            .unwrap();
        let mut events = app.session().events();
        app.send_message_confirmed("before", "{}").await.unwrap();
        break_it();
        let failure = wait_for_event(&mut events, "TokenFailed", |e| match e {
            SessionEvent::TokenFailed { failure } => Some(failure.clone()),
            _ => None,
        })
        .await;
        assert_eq!(failure.kind, kind, "{failure}");
        assert!(failure.advice.contains(advice), "{failure}");
        let requests_at_verdict = kc.requests().len();
        // Publishing says why, typed, instead of buffering.
        let err = app
            .session()
            .publish(Outgoing {
                exchange: prefix.clone(),
                routing_key: format!("{prefix}.sat.after"),
                body: b"{}".to_vec(),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AmqpError::TokenFailed(f) if f.kind == kind),
            "{err:?}"
        );
        let err = app.send_message("after", "{}").await.unwrap_err();
        assert!(
            matches!(&err, AppError::Auth(e) if e.fatal_kind().map(|k| k.as_str()) == Some(kind.as_str())),
            "{err:?}"
        );
        // The broker drops the connection (as RabbitMQ 4 does when the token
        // expires): the session does not try to come back.
        assert_eq!(close_connections_named(node, &name), 1);
        let reason = wait_for_disconnect(&mut events).await;
        // Without the fix the supervisor tries again within 1 s, 2 s, 4 s …
        // (reconnect_delay 1, full jitter): watch two of those windows.
        let attempts = reconnect_attempts_within(&mut events, Duration::from_secs(4)).await;
        assert!(
            attempts <= 1,
            "{attempts} reconnect attempts after the fatal verdict ({reason})"
        );
        assert!(!app.session().is_connected());
        quiet_after_the_verdict(kc, requests_at_verdict, &app, Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn a_rejected_client_secret_stops_the_reconnects_and_fails_publishing_typed() {
        let (node, kc) = setup().await;
        let client = unique("svc");
        kc.add_client(&client, Some("svc-secret-1"));
        let options = StartOptions {
            auth: Credentials::client(&client, Some("svc-secret-1".into())).into(),
            ..Default::default()
        };
        stops_reconnecting(
            &kc,
            &node,
            options,
            || kc.add_client(&client, Some("rotated-secret")),
            TokenFailureKind::ClientRejected,
            "CLIENT_SECRET_KEY",
        )
        .await;
    }

    #[tokio::test]
    async fn a_revoked_session_stops_the_reconnects_and_fails_publishing_typed() {
        let (node, kc) = setup().await;
        kc.add_client("frontend", None);
        kc.add_user("carol", "pw");
        let (access, refresh) = kc.issue_session("carol", "frontend");
        let options = StartOptions {
            auth: nost_app::AuthInputs::from(Credentials::client("frontend", None))
                .with_tokens(SecretString::from(access), SecretString::from(refresh)),
            ..Default::default()
        };
        stops_reconnecting(
            &kc,
            &node,
            options,
            || kc.revoke_sessions(),
            TokenFailureKind::LoginExpired,
            "log in again",
        )
        .await;
    }

    /// The same verdict on a connection shared by applications: the
    /// connection is not reopened after a loss, and Keycloak is not asked
    /// again.
    #[tokio::test]
    async fn a_shared_connection_is_not_reopened_after_a_fatal_verdict() {
        let (node, kc) = setup().await;
        let client = unique("svc");
        kc.add_client(&client, Some("svc-secret-1"));
        let name = unique("fatal-shared");
        let config = config(&node, &kc);
        let shared_options = nost_app::SharedConnectionOptions::new(Credentials::client(
            &client,
            Some("svc-secret-1".into()),
        ))
        .with_connection_name(name.clone());
        let conn = nost_app::SharedConnection::start(&config, shared_options)
            .await
            .unwrap();
        let mut events = conn.amqp().events();
        let prefix = unique("fatal");
        let options = StartOptions {
            shared_connection: Some(conn.clone()),
            set_offset: Some(false),
            ..Default::default()
        };
        let app = Application::start_up("sat", &prefix, &config, options)
            .await
            .unwrap();
        app.send_message_confirmed("before", "{}").await.unwrap();
        kc.add_client(&client, Some("rotated-secret"));
        let tm = conn.token_manager().expect("a Keycloak mode");
        let (kind, _) = tokio::time::timeout(Duration::from_secs(20), tm.fatal())
            .await
            .expect("the fatal outcome is reported");
        assert_eq!(kind.as_str(), "client_rejected");
        let requests_at_verdict = kc.requests().len();
        assert_eq!(close_connections_named(&node, &name), 1);
        wait_for_disconnect(&mut events).await;
        let failure = wait_for_event(&mut events, "TokenFailed", |e| match e {
            SessionEvent::TokenFailed { failure } => Some(failure.clone()),
            _ => None,
        })
        .await;
        assert_eq!(failure.kind, TokenFailureKind::ClientRejected, "{failure}");
        // Two windows of the backoff (reconnect_delay 1 s, full jitter).
        let attempts = reconnect_attempts_within(&mut events, Duration::from_secs(4)).await;
        assert_eq!(attempts, 0, "reconnect attempts after the fatal verdict");
        assert!(!conn.is_connected());
        // Bounded by connection_timeout (10 s) in total, as during any outage.
        quiet_after_the_verdict(&kc, requests_at_verdict, &app, Duration::from_secs(15)).await;
        conn.shut_down().await;
    }
}
