//! Every Keycloak mode end to end: a token from the Keycloak emulation,
//! verified by a real OAuth2-enabled RabbitMQ node (started by
//! `cargo xtask integration`), publishing and consuming on a topic exchange.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nost_amqp::{AmqpError, SessionEvent};
use nost_app::{AppError, Application, StartOptions};
use nost_config::{Config, Credentials, SecretString};
use nost_testkit::{KID, OAuthBrokerInfo};
use nost_testkit::{KeycloakEmulator, SigningKey};
use nost_testkit::{count_events, eventually, unique};
use tokio::sync::mpsc;

const REALM: &str = "NOS-T";

async fn setup() -> (OAuthBrokerInfo, KeycloakEmulator) {
    let node = OAuthBrokerInfo::from_env_or_panic();
    let key = SigningKey::from_pem_file(&node.signing_key_path(), KID).unwrap();
    let kc = KeycloakEmulator::start(REALM, key).await;
    (node, kc)
}

fn config(node: &OAuthBrokerInfo, kc: &KeycloakEmulator, refresh_interval: u64) -> Config {
    nost_testkit::oauth_config(node.amqp_port, kc.port(), refresh_interval)
}

/// Start two apps, send from one, receive at the other on a topic exchange.
async fn round_trip(config: &Config, sender_opts: StartOptions, receiver_opts: StartOptions) {
    let prefix = unique("oauth");
    let rx_app = Application::start_up("ground", &prefix, config, receiver_opts)
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    rx_app
        .add_message_callback("*", "status.ready", move |m| {
            let tx = tx.clone();
            async move {
                tx.send(m.routing_key.clone()).ok();
                Ok(())
            }
        })
        .await
        .unwrap();
    let tx_app = Application::start_up("sat", &prefix, config, sender_opts)
        .await
        .unwrap();
    tx_app.ready().await.unwrap();
    let key = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("delivered")
        .unwrap();
    assert_eq!(key, format!("{prefix}.sat.status.ready"));
    tx_app.shut_down().await;
    rx_app.shut_down().await;
}

fn with(credentials: Credentials) -> StartOptions {
    StartOptions {
        auth: credentials.into(),
        set_offset: Some(false),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_service_account_gets_its_token_and_talks_through_the_oauth_broker() {
    let (node, kc) = setup().await;
    kc.add_client("sos-service", Some("svc-secret"));
    let cfg = config(&node, &kc, 240);
    let creds = Credentials::client("sos-service", Some("svc-secret".into()));
    round_trip(&cfg, with(creds.clone()), with(creds)).await;
    assert!(kc.request_count("client_credentials") >= 2);
}

#[tokio::test]
async fn a_user_account_without_otp_logs_in_with_the_password_grant() {
    let (node, kc) = setup().await;
    kc.add_client("nost-client", Some("c-secret"));
    kc.add_user("alice", "wonderland");
    let cfg = config(&node, &kc, 240);
    let creds = Credentials::client("nost-client", Some("c-secret".into()))
        .with_user("alice", "wonderland");
    round_trip(&cfg, with(creds.clone()), with(creds)).await;
    assert!(kc.request_count("password") >= 2);
}

#[tokio::test]
async fn a_user_account_with_otp_gives_it_up_front() {
    let (node, kc) = setup().await;
    kc.add_client("nost-client", Some("c-secret"));
    kc.add_user("bob", "builder");
    kc.set_user_otp("bob", Some("424242"));
    let cfg = config(&node, &kc, 240);
    let creds =
        Credentials::client("nost-client", Some("c-secret".into())).with_user("bob", "builder");
    // Without the OTP a stock realm says "Invalid user credentials".
    let err = Application::start_up("sat", "nootp", &cfg, with(creds.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Auth(_)), "{err:?}");
    let otp = with(creds).with_otp(SecretString::from("424242"));
    round_trip(&cfg, otp.clone(), otp).await;
    let with_totp = kc
        .requests()
        .iter()
        .filter(|r| r.get("totp").map(String::as_str) == Some("424242"))
        .count();
    assert!(with_totp >= 2, "the OTP was sent as totp");
}

#[tokio::test]
async fn a_backend_acts_for_a_user_with_pre_acquired_tokens_of_a_public_client() {
    let (node, kc) = setup().await;
    kc.add_client("nost_monitor_nodejs", None);
    kc.add_user("carol", "pw");
    let cfg = config(&node, &kc, 240);
    let options = || {
        let (access, refresh) = kc.issue_session("carol", "nost_monitor_nodejs");
        StartOptions {
            auth: nost_app::AuthInputs::from(Credentials::client("nost_monitor_nodejs", None))
                .with_tokens(SecretString::from(access), SecretString::from(refresh)),
            set_offset: Some(false),
            ..Default::default()
        }
    };
    round_trip(&cfg, options(), options()).await;
    assert_eq!(
        kc.request_count("password") + kc.request_count("client_credentials"),
        0,
        "no grant of its own"
    );
}

#[tokio::test]
async fn tokens_renewed_on_a_live_connection_keep_publishing_past_the_first_expiry() {
    let (node, kc) = setup().await;
    kc.add_client("sos-service", Some("svc-secret"));
    kc.set_access_lifetime(4);
    let cfg = config(&node, &kc, 240); // the 80% rule renews every ~3.2 s
    let creds = Credentials::client("sos-service", Some("svc-secret".into()));
    let prefix = unique("renew");
    let app = Application::start_up("sat", &prefix, &cfg, with(creds))
        .await
        .unwrap();
    let mut events = app.session().events();
    let received = Arc::new(AtomicUsize::new(0));
    app.add_message_callback("sat", "tick", nost_testkit::count_into(&received))
        .await
        .unwrap();
    // 12 s of publishing: three token lifetimes, with the broker re-checking
    // permissions every second.
    let mut sent = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(12);
    while tokio::time::Instant::now() < until {
        app.send_message("tick", "{}").await.unwrap();
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.session().flush(Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let c = count_events(&mut events);
    let (updates, drops) = (c.secret_updated, c.reasons);
    assert!(
        updates >= 3,
        "update-secret sent on each renewal ({updates})"
    );
    // Had update-secret not carried the new token, the broker would have
    // refused publishing after the first expiry and the session would have
    // had to reconnect.
    assert!(drops.is_empty(), "no connection loss: {drops:?}");
    assert_eq!(
        received.load(Ordering::SeqCst),
        sent,
        "every message delivered"
    );
    app.shut_down().await;
}

#[tokio::test]
async fn a_read_only_token_is_refused_with_the_exchange_named() {
    let (node, kc) = setup().await;
    kc.add_client("reader", Some("r-secret"));
    kc.set_scopes("rabbitmq.read:*/*/*", None);
    let cfg = config(&node, &kc, 240);
    let prefix = unique("readonly");
    let err = Application::start_up(
        "sat",
        &prefix,
        &cfg,
        with(Credentials::client("reader", Some("r-secret".into()))),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, AppError::Amqp(AmqpError::AccessRefused { .. })),
        "{err:?}"
    );
    assert!(text.contains(&prefix) && text.contains("scopes"), "{text}");
}

#[tokio::test]
async fn a_token_without_write_scope_has_each_message_refused_and_reported() {
    let (node, kc) = setup().await;
    kc.add_client("nowrite", Some("n-secret"));
    kc.set_scopes("rabbitmq.read:*/*/* rabbitmq.configure:*/*/*", None);
    let cfg = config(&node, &kc, 240);
    let prefix = unique("nowrite");
    let app = Application::start_up(
        "sat",
        &prefix,
        &cfg,
        with(Credentials::client("nowrite", Some("n-secret".into()))),
    )
    .await
    .unwrap();
    let mut events = app.session().events();
    app.send_message("status.ready", "{}").await.unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Ok(SessionEvent::PublishRefused { refusal }) = events.recv().await {
                return (refusal.exchange.clone(), refusal.to_string());
            }
        }
    })
    .await
    .expect("the application is told");
    assert_eq!(refused.0, prefix);
    assert!(refused.1.contains(&prefix), "{}", refused.1);
    app.shut_down().await;
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_refused_at_connect() {
    let (node, kc) = setup().await;
    kc.add_client("nost_monitor_nodejs", None);
    let dir = tempfile::tempdir().unwrap();
    nost_testkit::make_rsa_key(&dir.path().join("k.pem"), &dir.path().join("k.pub")).unwrap();
    let other = SigningKey::from_pem_file(&dir.path().join("k.pem"), KID).unwrap();
    let forged = kc.mint_with_key(&other, "mallory", "nost_monitor_nodejs");
    let (_, refresh) = kc.issue_session("mallory", "nost_monitor_nodejs");
    let cfg = config(&node, &kc, 240);
    let options = StartOptions {
        auth: nost_app::AuthInputs::from(Credentials::client("nost_monitor_nodejs", None))
            .with_tokens(
                SecretString::from(forged.clone()),
                SecretString::from(refresh),
            ),
        set_offset: Some(false),
        ..Default::default()
    };
    let err = Application::start_up("sat", &unique("forged"), &cfg, options)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, AppError::Amqp(AmqpError::LoginRefused { .. })),
        "{err:?}"
    );
    assert!(text.contains("rejected the token"), "{text}");
    assert!(!text.contains(&forged), "no token in messages");
}

#[tokio::test]
async fn tls_with_the_ca_of_the_node_works_and_without_it_says_how_to_fix() {
    let (node, kc) = setup().await;
    kc.add_client("sos-service", Some("svc-secret"));
    let mut cfg = config(&node, &kc, 240);
    cfg.servers.rabbitmq.tls = true;
    cfg.servers.rabbitmq.host = "localhost".into();
    cfg.servers.rabbitmq.port = u32::from(node.amqps_port);
    let creds = Credentials::client("sos-service", Some("svc-secret".into()));

    let err = Application::start_up("sat", &unique("tls"), &cfg, with(creds.clone()))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("tls_ca_cert"), "{text}");
    // Typed, with the TLS library's refusal in its source chain.
    let AppError::Amqp(AmqpError::Tls { source, .. }) = &err else {
        panic!("not a TLS error: {err:?}");
    };
    let mut chain = Vec::new();
    let mut next = source
        .as_ref()
        .map(|c| c as &(dyn std::error::Error + 'static));
    while let Some(e) = next {
        chain.push(e.to_string());
        next = e.source();
    }
    assert!(
        chain.iter().any(|c| c.contains("certificate")),
        "the chain holds the verifier's words: {chain:?}"
    );

    cfg.servers.rabbitmq.tls_ca_cert = Some(node.ca_cert_path().display().to_string());
    round_trip(&cfg, with(creds.clone()), with(creds)).await;
}

/// A manager and three managed applications in one Keycloak mode, with
/// tokens that live 4 s so they are renewed (and pushed) during the run.
async fn scenario_in_mode(
    kc: &KeycloakEmulator,
    node: &OAuthBrokerInfo,
    options: impl Fn() -> StartOptions,
) {
    use nost_app::{ManagedApplication, Manager, TestPlan};
    use nost_config::NostDuration;
    kc.set_access_lifetime(4);
    let mut cfg = config(node, kc, 240);
    let start = chrono::DateTime::parse_from_rfc3339("2024-01-01T12:00:00Z")
        .unwrap()
        .to_utc();
    cfg.execution.manager = Some(nost_config::ManagerConfig {
        sim_start_time: Some(start),
        sim_stop_time: Some(start + chrono::TimeDelta::seconds(240)),
        time_scale_factor: 30.0, // 8 s of wallclock: two token lifetimes
        time_step: NostDuration::seconds(2),
        time_status_step: Some(NostDuration::seconds(30)),
        command_lead: NostDuration::microseconds(500_000),
        required_apps: vec!["a1".into(), "a2".into(), "a3".into()],
        init_retry_delay_s: 2,
        set_offset: false,
        ..Default::default()
    });
    let prefix = unique("kcrun");
    let opts = || StartOptions {
        set_offset: Some(false),
        ..options()
    };
    let mut apps = Vec::new();
    for name in ["a1", "a2", "a3"] {
        apps.push(
            ManagedApplication::start_up(name, &prefix, &cfg, opts())
                .await
                .unwrap(),
        );
    }
    let manager = Manager::start_up("manager", &prefix, &cfg, opts())
        .await
        .unwrap();
    let mut events: Vec<_> = apps.iter().map(|a| a.app().session().events()).collect();
    events.push(manager.app().session().events());
    let plan = TestPlan::from_config(cfg.execution.manager.as_ref().unwrap()).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(60), manager.execute_test_plan(plan))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary.ready.len(), 3);
    for a in &apps {
        tokio::time::timeout(Duration::from_secs(10), a.wait_terminated())
            .await
            .unwrap();
    }
    for mut ev in events {
        let c = count_events(&mut ev);
        let (updates, drops) = (c.secret_updated, c.disconnected);
        assert!(updates >= 1, "tokens renewed during the run");
        assert_eq!(drops, 0, "no connection lost");
    }
    for a in &apps {
        a.app().shut_down().await;
    }
    manager.app().shut_down().await;
}

#[tokio::test]
async fn a_scenario_runs_with_service_account_tokens_renewed_during_the_run() {
    let (node, kc) = setup().await;
    kc.add_client("svc", Some("s"));
    scenario_in_mode(&kc, &node, || {
        with(Credentials::client("svc", Some("s".into())))
    })
    .await;
}

#[tokio::test]
async fn a_scenario_runs_with_user_account_tokens_renewed_during_the_run() {
    let (node, kc) = setup().await;
    kc.add_client("app", Some("s"));
    kc.add_user("alice", "pw");
    scenario_in_mode(&kc, &node, || {
        with(Credentials::client("app", Some("s".into())).with_user("alice", "pw"))
    })
    .await;
}

#[tokio::test]
async fn a_scenario_runs_with_pre_acquired_tokens_renewed_during_the_run() {
    let (node, kc) = setup().await;
    kc.add_client("monitor", None);
    scenario_in_mode(&kc, &node, || {
        let (access, refresh) = kc.issue_session("carol", "monitor");
        StartOptions {
            auth: nost_app::AuthInputs::from(Credentials::client("monitor", None))
                .with_tokens(SecretString::from(access), SecretString::from(refresh)),
            set_offset: Some(false),
            ..Default::default()
        }
    })
    .await;
}

#[tokio::test]
async fn many_applications_share_one_service_account_session_and_one_request_per_renewal() {
    let (node, kc) = setup().await;
    kc.add_client("sos-service", Some("svc-secret"));
    // Long enough that connecting does not renew first (it does under 30 s).
    kc.set_access_lifetime(120);
    let cfg = config(&node, &kc, 1); // renew every second
    let creds = Credentials::client("sos-service", Some("svc-secret".into()));
    let shared = nost_app::SharedTokens::start(&cfg, &with(creds).auth)
        .await
        .unwrap();
    assert_eq!(shared.mode(), nost_config::ModeKind::ServiceAccount);
    let options = StartOptions {
        shared_tokens: Some(shared.clone()),
        set_offset: Some(false),
        ..Default::default()
    };
    let prefix = unique("shared");
    let mut apps = Vec::new();
    for i in 0..5 {
        let app = Application::start_up(&format!("sat{i}"), &prefix, &cfg, options.clone())
            .await
            .unwrap();
        apps.push(app);
    }
    let mut updates: Vec<_> = apps.iter().map(|a| a.session().events()).collect();
    let mut renewals = shared.token_manager().subscribe_events();
    let mut next_renewal = async || {
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(10), renewals.recv())
                .await
                .expect("a renewal within 10 s")
                .unwrap();
            if matches!(ev, nost_auth::AuthEvent::Renewed { .. }) {
                return;
            }
        }
    };
    // Count from just after one renewal (the next is a second away) to
    // just after the third following it.
    next_renewal().await;
    kc.clear_requests();
    for _ in 0..3 {
        next_renewal().await;
    }
    assert_eq!(
        kc.requests().len(),
        3,
        "one token request per renewal for five applications"
    );
    // Each connection's update-secrets, counted until all have 3 (or 10 s).
    let mut counts = vec![0usize; updates.len()];
    eventually(Duration::from_secs(10), || {
        for (rx, n) in updates.iter_mut().zip(&mut counts) {
            while let Ok(e) = rx.try_recv() {
                if matches!(e, SessionEvent::SecretUpdated) {
                    *n += 1;
                }
            }
        }
        counts.iter().all(|n| *n >= 3)
    })
    .await;
    for (i, n) in counts.iter().enumerate() {
        assert!(
            *n >= 3,
            "sat{i} got each renewed token ({n} update-secrets)"
        );
    }
    // One application leaving does not stop the others' renewals.
    apps.remove(0).shut_down().await;
    next_renewal().await;
    apps[0].send_message("tick", "{}").await.unwrap();
    apps[0]
        .session()
        .flush(Duration::from_secs(5))
        .await
        .unwrap();
    for app in apps {
        app.shut_down().await;
    }
    shared.shut_down().await;
}

#[tokio::test]
async fn shared_tokens_refuse_basic_mode() {
    let cfg = Config::builder().build().unwrap();
    let err = nost_app::SharedTokens::start(&cfg, &Credentials::basic("guest", "guest").into())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Keycloak mode"), "{err}");
    assert!(!err.contains("guest\""), "{err}");
}

#[tokio::test]
async fn a_token_whose_write_scope_excludes_one_topic_fails_only_that_message_of_a_thousand() {
    let (node, kc) = setup().await;
    kc.add_client("scoped", Some("s-secret"));
    let prefix = unique("scoped");
    // Write only to PREFIX.sat.ok on the prefix exchange (topic form); the
    // queues (PREFIX.…) may be written to for binding.
    kc.set_scopes(
        &format!(
            "rabbitmq.read:*/*/* rabbitmq.configure:*/*/* rabbitmq.write:*/{prefix}/{prefix}.sat.ok rabbitmq.write:*/{prefix}.*/*"
        ),
        None,
    );
    let cfg = config(&node, &kc, 240);
    let creds = Credentials::client("scoped", Some("s-secret".into()));
    let ground = Application::start_up("ground", &prefix, &cfg, with(creds.clone()))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    ground
        .add_message_callback("sat", "#", move |m| {
            let tx = tx.clone();
            async move {
                tx.send((m.routing_key.clone(), m.text()?.parse::<usize>()?))
                    .ok();
                Ok(())
            }
        })
        .await
        .unwrap();
    let sat = Application::start_up("sat", &prefix, &cfg, with(creds))
        .await
        .unwrap();
    let mut events = sat.session().events();
    const N: usize = 1_000;
    const BAD: usize = 500;
    let mut handles = Vec::new();
    for i in 0..N {
        let topic = if i == BAD { "bad" } else { "ok" };
        handles.push(
            sat.send_message_tracked(topic, &i.to_string())
                .await
                .unwrap(),
        );
    }
    let mut refused = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        match tokio::time::timeout(Duration::from_secs(60), h)
            .await
            .unwrap()
        {
            Ok(()) => {}
            Err(AmqpError::PublishRefused(r)) => refused.push((i, r)),
            Err(e) => panic!("message {i}: {e:?}"),
        }
    }
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, BAD);
    assert_eq!(refused[0].1.routing_key, format!("{prefix}.sat.bad"));
    assert!(
        refused[0].1.to_string().contains("scopes"),
        "{}",
        refused[0].1
    );
    let mut seen = std::collections::HashSet::new();
    while seen.len() < N - 1 {
        let (key, seq) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("every allowed message arrives")
            .unwrap();
        assert_eq!(key, format!("{prefix}.sat.ok"));
        seen.insert(seq);
    }
    assert!(!seen.contains(&BAD));
    let (mut conns, mut drops, mut reopened) = (0, 0, 0);
    let mut reasons = Vec::new();
    while let Ok(e) = events.try_recv() {
        match e {
            SessionEvent::Connected { .. } => conns += 1,
            SessionEvent::Disconnected { reason } => {
                drops += 1;
                reasons.push(reason);
            }
            SessionEvent::ChannelReopened => reopened += 1,
            _ => {}
        }
    }
    assert_eq!(
        (conns, drops, reopened),
        (0, 0, 1),
        "no connection loss, one channel reopen; lost: {reasons:?}"
    );
    sat.shut_down().await;
    ground.shut_down().await;
}

/// A token source whose renewal lands while the first connection's
/// handshake is under way: the handshake gets the current token and, in the
/// same moment, a newer one is published (deterministic: no timing).
struct RenewsDuringTheHandshake {
    tokens: tokio::sync::watch::Sender<SecretString>,
    newer: SecretString,
    renewed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl nost_amqp::TokenSource for RenewsDuringTheHandshake {
    fn subscribe(&self) -> tokio::sync::watch::Receiver<SecretString> {
        self.tokens.subscribe()
    }

    async fn fresh(&self) -> Result<SecretString, nost_amqp::TokenError> {
        let current = self.tokens.borrow().clone();
        if !self.renewed.swap(true, Ordering::SeqCst) {
            self.tokens.send_replace(self.newer.clone());
        }
        Ok(current)
    }
}

#[tokio::test]
async fn a_token_renewed_during_the_handshake_is_pushed_right_after_the_connection_opens() {
    let (node, kc) = setup().await;
    // The handshake's token expires in 3 s; the renewed one lives long.
    let short_life = 3;
    let old = kc.mint_access_token("handshake-svc", "handshake-svc", short_life);
    let newer = kc.mint_access_token("handshake-svc", "handshake-svc", 600);
    let expired_at = std::time::SystemTime::now() + Duration::from_secs(short_life as u64);
    let source = Arc::new(RenewsDuringTheHandshake {
        tokens: tokio::sync::watch::channel(SecretString::from(old)).0,
        newer: SecretString::from(newer),
        renewed: false.into(),
    });
    let cfg = config(&node, &kc, 240);
    let mut settings = nost_amqp::ConnectSettings::new(
        cfg.servers.rabbitmq.clone(),
        nost_amqp::Login::Token(source),
    );
    settings.connection_name = unique("handshake");
    let session = nost_amqp::Session::connect(settings).await.unwrap();
    // Wait until the handshake's token is expired and the broker's
    // permission tick (1 s) has passed.
    while std::time::SystemTime::now() < expired_at + Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Had the connection stayed on the old token, each of these would be
    // refused 403 ("Provided JWT token has expired").
    let prefix = unique("handshake");
    session
        .declare_exchange(nost_amqp::ExchangeSpec::nost(&prefix))
        .await
        .unwrap();
    let queue = format!("{prefix}.q");
    session
        .declare_queue(nost_amqp::QueueSpec::nost(&queue))
        .await
        .unwrap();
    session
        .bind_queue(nost_amqp::BindingSpec {
            queue: queue.clone(),
            exchange: prefix.clone(),
            key: format!("{prefix}.#"),
        })
        .await
        .unwrap();
    let mut sub = session.consume(&queue, 10).await.unwrap();
    session
        .publish_confirmed(nost_amqp::Outgoing {
            exchange: prefix.clone(),
            routing_key: format!("{prefix}.sat.tick"),
            body: b"{}".to_vec(),
        })
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), sub.recv())
        .await
        .expect("delivered")
        .unwrap();
    assert_eq!(got.routing_key, format!("{prefix}.sat.tick"));
    got.ack().await.unwrap();
    let mut events = session.events();
    session.delete_queue(&queue).await.unwrap();
    session.shut_down(Duration::from_secs(5)).await;
    while let Ok(e) = events.try_recv() {
        assert!(
            !matches!(e, SessionEvent::Disconnected { .. }),
            "no reconnect was needed: {e:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_start_up_stops_its_token_renewal() {
    let (node, kc) = setup().await;
    kc.add_client("reader-stop", Some("r-secret"));
    kc.set_scopes("rabbitmq.read:*/*/*", None);
    // Renewed every ~1.6 s while the refresher runs.
    kc.set_access_lifetime(2);
    let cfg = config(&node, &kc, 240);
    let prefix = unique("stoprenew");
    let err = Application::start_up(
        "sat",
        &prefix,
        &cfg,
        with(Credentials::client("reader-stop", Some("r-secret".into()))),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, AppError::Amqp(AmqpError::AccessRefused { .. })),
        "{err:?}"
    );
    let after_failure = kc.requests().len();
    // The grant, and the renewal before connecting (a 2 s token is short).
    assert!((1..=2).contains(&after_failure), "{after_failure} requests");
    // Three renewal periods: a refresher left running would have asked twice.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        kc.requests().len(),
        after_failure,
        "no token request after the failed start-up"
    );
}
