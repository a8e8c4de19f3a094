//! Renewal under load: nost-rs publishes at full rate on the OAuth2 node
//! while its service-account token is renewed every second; an independent
//! consumer (its own long-lived token) timestamps every arrival.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nost_amqp::SessionEvent;
use nost_app::{Application, StartOptions};
use nost_config::{Config, Credentials};
use nost_testkit::KeycloakEmulator;
use nost_testkit::OAuthBrokerInfo;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::consumer::{Consumer, local_uri};
use crate::measure::quantile;

pub const REALM: &str = "NOS-T";
pub const CLIENT: &str = "bench-service";
pub const SECRET: &str = "bench-secret";

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(mut xs: Vec<f64>) -> Latency {
        xs.sort_by(f64::total_cmp);
        Latency {
            count: xs.len(),
            p50_ms: quantile(&xs, 0.5),
            p99_ms: quantile(&xs, 0.99),
            max_ms: xs.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// What one run under renewal found.
#[derive(Debug, Clone, Serialize)]
pub struct RenewalResult {
    /// `None`: full rate.
    pub target_msgs_per_s: Option<f64>,
    pub seconds: f64,
    pub published: usize,
    pub msgs_per_s: f64,
    pub received_distinct: usize,
    pub duplicates: usize,
    pub lost: usize,
    pub token_renewals: usize,
    pub update_secrets: usize,
    pub disconnects: usize,
    pub publish_errors: usize,
    /// From `send_message` being called to arrival at the consumer.
    pub latency_all: Latency,
    /// The same for messages sent within ±250 ms of an update-secret.
    pub latency_around_renewals: Latency,
}

/// The OAuth2 node's configuration for the emulated Keycloak, renewing every
/// `refresh_s` seconds.
pub fn oauth_config(
    node: &OAuthBrokerInfo,
    kc: &KeycloakEmulator,
    refresh_s: u64,
) -> Result<Config> {
    // A longer connection timeout than the suites': the bench loads the machine.
    Ok(
        nost_testkit::oauth_config_builder(node.amqp_port, kc.port(), refresh_s)
            .rabbitmq(|r| r.connection_timeout = 30)
            .build()?,
    )
}

/// Publish for `run_for` with 1 s renewals, at full rate or paced at
/// `rate` messages per second.
pub async fn run(
    node: &OAuthBrokerInfo,
    kc: &KeycloakEmulator,
    body: &str,
    run_for: Duration,
    rate: Option<f64>,
) -> Result<RenewalResult> {
    kc.set_access_lifetime(10);
    let cfg = oauth_config(node, kc, 1)?;
    let prefix = crate::unique("renew");
    let (tx, mut arrivals) = mpsc::unbounded_channel();
    let consumer_token = kc.mint_access_token("bench-consumer", CLIENT, 3600);
    let consumer = Consumer::start(
        local_uri(node.amqp_port, "", &consumer_token),
        &prefix,
        &format!("{prefix}.#"),
        Some(tx),
    )
    .await?;
    let app = Application::start_up(
        "sat",
        &prefix,
        &cfg,
        StartOptions {
            auth: Credentials::client(CLIENT, Some(SECRET.into())).into(),
            set_offset: Some(false),
            ..Default::default()
        },
    )
    .await
    .context("nost-rs publisher on the OAuth2 node")?;
    let tokens = app.token_manager().context("a Keycloak mode")?.clone();
    let mut renewed = tokens.subscribe_events();
    // The event channel lives as long as the token manager's clones: count
    // in the open and stop the task when done.
    let renewal_count = Arc::new(AtomicUsize::new(0));
    let counter = renewal_count.clone();
    let renewals = tokio::spawn(async move {
        while let Ok(e) = renewed.recv().await {
            if matches!(e, nost_auth::AuthEvent::Renewed { .. }) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let session_events: Arc<Mutex<Vec<(Instant, SessionEvent)>>> = Arc::default();
    let mut events = app.session().events();
    let log = session_events.clone();
    let watcher = tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            if let Ok(mut l) = log.lock() {
                l.push((Instant::now(), e));
            }
        }
    });

    let mut sent_at: Vec<Instant> = Vec::with_capacity(1 << 20);
    let mut publish_errors = 0;
    let start = Instant::now();
    while start.elapsed() < run_for {
        let seq = sent_at.len();
        if let Some(r) = rate {
            let due = start + Duration::from_secs_f64(seq as f64 / r);
            tokio::time::sleep_until(due.into()).await;
        }
        sent_at.push(Instant::now());
        if app
            .send_message("status.time", &format!("{seq:>10}|{body}"))
            .await
            .is_err()
        {
            publish_errors += 1;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let published = sent_at.len();
    app.session().flush(Duration::from_secs(120)).await?;
    let _ = consumer.wait_for(published, Duration::from_secs(20)).await;
    let token_renewals = renewal_count.load(Ordering::SeqCst);
    renewals.abort();
    watcher.abort();
    app.shut_down().await;
    tokens.shut_down().await;
    consumer.close().await;

    let mut first: HashMap<usize, Instant> = HashMap::with_capacity(published);
    let mut duplicates = 0;
    while let Ok((at, data)) = arrivals.try_recv() {
        let seq = std::str::from_utf8(&data)
            .ok()
            .and_then(|s| s.get(..10))
            .and_then(|s| s.trim().parse::<usize>().ok());
        if let Some(seq) = seq
            && first.insert(seq, at).is_some()
        {
            duplicates += 1;
        }
    }
    let events = session_events.lock().map(|l| l.clone()).unwrap_or_default();
    let updates: Vec<Instant> = events
        .iter()
        .filter(|(_, e)| matches!(e, SessionEvent::SecretUpdated))
        .map(|(t, _)| *t)
        .collect();
    let disconnects = events
        .iter()
        .filter(|(_, e)| matches!(e, SessionEvent::Disconnected { .. }))
        .count();
    let near = Duration::from_millis(250);
    let mut all = Vec::with_capacity(first.len());
    let mut around = Vec::new();
    for (seq, t_sent) in sent_at.iter().enumerate() {
        let Some(t_recv) = first.get(&seq) else {
            continue;
        };
        let ms = t_recv.saturating_duration_since(*t_sent).as_secs_f64() * 1e3;
        all.push(ms);
        if updates.iter().any(|u| {
            u.saturating_duration_since(*t_sent) < near
                && t_sent.saturating_duration_since(*u) < near
        }) {
            around.push(ms);
        }
    }
    Ok(RenewalResult {
        target_msgs_per_s: rate,
        seconds,
        published,
        msgs_per_s: published as f64 / seconds,
        received_distinct: first.len(),
        duplicates,
        lost: published - first.len().min(published),
        token_renewals,
        update_secrets: updates.len(),
        disconnects,
        publish_errors,
        latency_all: Latency::of(all),
        latency_around_renewals: Latency::of(around),
    })
}
