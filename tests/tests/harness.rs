//! The integration harness itself, proven against a real OAuth2-enabled
//! RabbitMQ node: tokens from the Keycloak emulation (over HTTP, like a
//! client gets them) open raw lapin connections; forged, expired and
//! read-only tokens are refused the way oauth-broker.md says; the emulator
//! answers every error row of keycloak.md.
//!
//! Under `cargo xtask test`/`integration` the node comes from the
//! `NOST_TEST_OAUTH_*` variables. Run alone (`cargo test -p nost-tests
//! --test harness`), this binary starts its own node once; the node's
//! watchdog stops it and removes its directory when the binary exits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use nost_testkit::unique;
use nost_testkit::{BrokerOptions, OAuthBroker, OAuthBrokerInfo};
use nost_testkit::{KeycloakEmulator, READ_ONLY_SCOPE, SigningKey, TokenOptions};
use serde_json::Value;

const REALM: &str = "NOS-T";

/// The node for this binary: the xtask's, or one started here once.
fn node() -> &'static OAuthBrokerInfo {
    static NODE: OnceLock<(OAuthBrokerInfo, Option<OAuthBroker>)> = OnceLock::new();
    &NODE
        .get_or_init(|| {
            if let Some(info) = OAuthBrokerInfo::from_env() {
                return (info, None);
            }
            let t = std::time::Instant::now();
            let broker = OAuthBroker::start(BrokerOptions::default())
                .unwrap_or_else(|e| panic!("cannot start the OAuth2 test node: {e}"));
            eprintln!(
                "harness: started {} in {:.1} s",
                broker.node_name(),
                t.elapsed().as_secs_f64()
            );
            (broker.info().clone(), Some(broker))
        })
        .0
}

async fn emulator() -> KeycloakEmulator {
    let key = node().signing_key().unwrap();
    KeycloakEmulator::builder(key)
        .realm(REALM)
        .client("sos-service", Some("svc-secret"))
        .client("nost-client", Some("c-secret"))
        .client("frontend", None)
        .user("alice", "wonderland", None)
        .user("bob", "builder", Some("424242"))
        .start()
        .await
}

/// POST a form to the token endpoint; status and JSON body.
async fn post(kc: &KeycloakEmulator, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(kc.token_url())
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn client_credentials(kc: &KeycloakEmulator, id: &str, secret: &str) -> String {
    let (status, body) = post(
        kc,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// A raw lapin connection to the node: user name "", password = token.
async fn connect(token: &str) -> lapin::Result<Connection> {
    let mut uri = AMQPUri::default();
    uri.authority.host = "127.0.0.1".into();
    uri.authority.port = node().amqp_port;
    uri.authority.userinfo.username = String::new();
    uri.authority.userinfo.password = token.to_owned();
    tokio::time::timeout(
        Duration::from_secs(15),
        Connection::connect_uri(uri, ConnectionProperties::default()),
    )
    .await
    .expect("connect finished in time")
}

fn assert_refused_at_login(result: lapin::Result<Connection>, what: &str) {
    let err = result
        .err()
        .unwrap_or_else(|| panic!("{what}: the node accepted it"));
    let text = format!("{err} / {err:?}");
    assert!(
        text.contains("ACCESS_REFUSED") || text.contains("403"),
        "{what}: {text}"
    );
}

#[tokio::test]
async fn a_client_credentials_token_lets_lapin_publish_and_consume_on_a_topic_exchange() {
    let kc = emulator().await;
    let token = client_credentials(&kc, "sos-service", "svc-secret").await;
    // Exactly what a client sends, once.
    let requests = kc.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["grant_type"], "client_credentials");
    assert_eq!(requests[0]["client_id"], "sos-service");

    let conn = connect(&token).await.expect("the node accepts the token");
    let ch = conn.create_channel().await.unwrap();
    let exchange = unique("harness");
    ch.exchange_declare(
        exchange.as_str().into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let queue = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let key = format!("{exchange}.sat.status.ready");
    ch.queue_bind(
        queue.name().clone(),
        exchange.as_str().into(),
        format!("{exchange}.#").as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.name().clone(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.basic_publish(
        exchange.as_str().into(),
        key.as_str().into(),
        BasicPublishOptions::default(),
        b"{\"ready\":true}",
        BasicProperties::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("delivered in time")
        .expect("consumer open")
        .unwrap();
    assert_eq!(delivery.routing_key.as_str(), key);
    assert_eq!(delivery.data, b"{\"ready\":true}");
    delivery.ack(BasicAckOptions::default()).await.unwrap();

    // The broker's user name is the token's client_id.
    let users = node()
        .rabbitmqctl(&["list_connections", "-q", "--no-table-headers", "user"])
        .unwrap();
    assert!(users.lines().any(|l| l.trim() == "sos-service"), "{users}");
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test]
async fn forged_expired_and_audience_less_tokens_are_refused_at_connect() {
    let kc = emulator().await;
    let rogue = SigningKey::generate(nost_testkit::KID).unwrap();
    let forged = kc.mint(&TokenOptions {
        key: Some(rogue),
        ..Default::default()
    });
    assert_refused_at_login(connect(&forged).await, "token signed with another key");
    let expired = kc.mint(&TokenOptions {
        lifetime_secs: Some(-60),
        ..Default::default()
    });
    assert_refused_at_login(connect(&expired).await, "expired token");
    let no_aud = kc.mint(&TokenOptions {
        audience: Some(vec![]),
        ..Default::default()
    });
    assert_refused_at_login(connect(&no_aud).await, "token without aud");
    assert_refused_at_login(connect("not-a-jwt").await, "garbage");
    // The same claims with the node's key are fine.
    let good = kc.mint(&TokenOptions::default());
    connect(&good).await.expect("the node's key is accepted");
}

#[tokio::test]
async fn a_read_only_token_cannot_declare_or_publish() {
    let kc = emulator().await;
    kc.set_scopes(READ_ONLY_SCOPE, None);
    let token = client_credentials(&kc, "sos-service", "svc-secret").await;
    let conn = connect(&token).await.expect("read-only tokens may log in");

    let ch = conn.create_channel().await.unwrap();
    let exchange = unique("readonly");
    let err = ch
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ACCESS_REFUSED"), "{err}");
    assert!(err.contains(&format!("exchange '{exchange}'")), "{err}");

    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let published = async {
        ch.basic_publish(
            "amq.topic".into(),
            "nost.x".into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
        .await?
        .await
    };
    let err = tokio::time::timeout(Duration::from_secs(10), published)
        .await
        .expect("the broker answers")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("ACCESS_REFUSED"), "{err}");
    assert!(err.contains("exchange 'amq.topic'"), "{err}");
}

#[tokio::test]
async fn rabbitmqctl_can_close_one_clients_connection() {
    let kc = emulator().await;
    kc.add_client("closeme", Some("x"));
    let token = client_credentials(&kc, "closeme", "x").await;
    let conn = connect(&token).await.unwrap();
    let list = node()
        .rabbitmqctl(&[
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "user",
        ])
        .unwrap();
    let pid = list
        .lines()
        .find_map(|l| {
            let mut parts = l.split_whitespace();
            let pid = parts.next()?;
            (parts.next()? == "closeme").then_some(pid)
        })
        .unwrap_or_else(|| panic!("no connection of closeme in {list}"));
    node()
        .rabbitmqctl(&["close_connection", pid, "harness test"])
        .unwrap();
    for _ in 0..50 {
        if !conn.status().connected() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the connection is still open");
}

/// Every error row of keycloak.md, as a client sees it over HTTP.
#[tokio::test]
async fn the_emulator_answers_every_keycloak_error_row() {
    let kc = emulator().await;
    kc.add_client("no-direct", Some("nd"));
    kc.set_client_flags("no-direct", false, false);
    kc.add_client("disabled", Some("d"));
    kc.set_client_enabled("disabled", false);
    kc.add_user("off", "pw");
    kc.set_user_state("off", false, true);
    kc.add_user("new", "pw");
    kc.set_user_state("new", true, false);

    let pw =
        |client: &'static str, secret: &'static str, user: &'static str, pass: &'static str| {
            vec![
                ("grant_type", "password"),
                ("client_id", client),
                ("client_secret", secret),
                ("username", user),
                ("password", pass),
            ]
        };
    let bad_client = "Invalid client or Invalid client credentials";
    let mut with_wrong_otp = pw("nost-client", "c-secret", "bob", "builder");
    with_wrong_otp.push(("totp", "000000"));
    // (situation, form, error, error_description)
    type Row = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        &'static str,
        &'static str,
    );
    let table: Vec<Row> = vec![
        (
            "wrong password",
            pw("nost-client", "c-secret", "alice", "nope"),
            "invalid_grant",
            "Invalid user credentials",
        ),
        (
            "unknown user",
            pw("nost-client", "c-secret", "nobody", "x"),
            "invalid_grant",
            "Invalid user credentials",
        ),
        (
            "OTP missing (stock realm)",
            pw("nost-client", "c-secret", "bob", "builder"),
            "invalid_grant",
            "Invalid user credentials",
        ),
        (
            "OTP wrong (stock realm)",
            with_wrong_otp,
            "invalid_grant",
            "Invalid user credentials",
        ),
        (
            "account disabled",
            pw("nost-client", "c-secret", "off", "pw"),
            "invalid_grant",
            "Account disabled",
        ),
        (
            "required actions pending",
            pw("nost-client", "c-secret", "new", "pw"),
            "invalid_grant",
            "Account is not fully set up",
        ),
        (
            "direct grants disabled",
            pw("no-direct", "nd", "alice", "wonderland"),
            "unauthorized_client",
            "Client not allowed for direct access grants",
        ),
        (
            "wrong client secret",
            pw("nost-client", "wrong", "alice", "wonderland"),
            "unauthorized_client",
            bad_client,
        ),
        (
            "unknown client",
            pw("ghost", "x", "alice", "wonderland"),
            "invalid_client",
            bad_client,
        ),
        (
            "disabled client",
            pw("disabled", "d", "alice", "wonderland"),
            "invalid_client",
            bad_client,
        ),
        (
            "service account missing",
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "no-direct"),
                ("client_secret", "nd"),
            ],
            "unauthorized_client",
            "Client not enabled to retrieve service account",
        ),
    ];
    for (what, form, error, description) in table {
        let (status, body) = post(&kc, &form).await;
        assert!(status == 400 || status == 401, "{what}: {status} {body}");
        assert_eq!(body["error"], error, "{what}: {body}");
        assert_eq!(body["error_description"], description, "{what}: {body}");
    }

    // Refresh-token rows.
    let kcr = &kc;
    let refresh = |client: &'static str, token: String| async move {
        let secret = if client == "nost-client" {
            "c-secret"
        } else {
            ""
        };
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("client_id", client),
            ("refresh_token", token.as_str()),
        ];
        if !secret.is_empty() {
            form.push(("client_secret", secret));
        }
        post(kcr, &form).await
    };
    let expect = |answer: (u16, Value), what: &str, description: &str| {
        let (status, body) = answer;
        assert!(status == 400 || status == 401, "{what}: {status} {body}");
        assert_eq!(body["error"], "invalid_grant", "{what}: {body}");
        assert_eq!(body["error_description"], description, "{what}: {body}");
    };

    let (_, r) = kc.issue_session_for("alice", "frontend");
    expect(
        refresh("nost-client", r).await,
        "another client_id",
        "Unmatching clients",
    );

    kc.set_rotation(true);
    let (_, r) = kc.issue_session_for("alice", "frontend");
    let (status, body) = refresh("frontend", r.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].as_str().is_some_and(|n| n != r));
    expect(
        refresh("frontend", r).await,
        "reused rotated token",
        "Maximum allowed refresh token reuse exceeded",
    );
    kc.set_rotation(false);

    let (_, r) = kc.issue_session_for("alice", "frontend");
    kc.revoke_sessions();
    expect(
        refresh("frontend", r).await,
        "SSO session ended",
        "Session not active",
    );

    let (_, r) = kc.issue_session_for("alice", "frontend");
    kc.end_client_sessions("frontend");
    expect(
        refresh("frontend", r).await,
        "client session ended",
        "Client session not active",
    );

    let (_, r) = kc.issue_session_for("alice", "frontend");
    kc.revoke_tokens_issued_before_now();
    expect(
        refresh("frontend", r).await,
        "not-before revocation",
        "Stale token",
    );
    // After the revocation second, new tokens work again.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    kc.set_refresh_lifetime(0);
    let (_, r) = kc.issue_session_for("alice", "frontend");
    expect(
        refresh("frontend", r).await,
        "refresh token expired",
        "Token is not active",
    );

    // OTP in a customised realm names the OTP; `otp` is read before `totp`.
    kc.set_otp_style(false);
    let (_, body) = post(&kc, &pw("nost-client", "c-secret", "bob", "builder")).await;
    let text = body["error_description"].as_str().unwrap().to_lowercase();
    assert!(text.contains("otp"), "{body}");
    let mut form = pw("nost-client", "c-secret", "bob", "builder");
    form.push(("otp", "424242"));
    form.push(("totp", "000000"));
    let (status, body) = post(&kc, &form).await;
    assert_eq!(status, 200, "{body}");

    // Outage: 503 for the next two requests, then back.
    kc.fail_next(2);
    let cc = [
        ("grant_type", "client_credentials"),
        ("client_id", "sos-service"),
        ("client_secret", "svc-secret"),
    ];
    assert_eq!(post(&kc, &cc).await.0, 503);
    assert_eq!(post(&kc, &cc).await.0, 503);
    let (status, body) = post(&kc, &cc).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "client_credentials gives no refresh token by default: {body}"
    );
    for field in [
        "access_token",
        "expires_in",
        "refresh_expires_in",
        "token_type",
        "not-before-policy",
        "session_state",
        "scope",
    ] {
        assert!(body.get(field).is_some(), "{field} missing: {body}");
    }
    assert_eq!(body["token_type"], "Bearer");
}
