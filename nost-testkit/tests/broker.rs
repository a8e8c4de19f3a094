//! The OAuth2 node's failure path: a configuration the node refuses makes
//! `start` fail fast with the node's `[error]` lines, leaving nothing behind.
//! (The success path is proven by `tests/tests/harness.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use nost_testkit::{BrokerError, BrokerOptions, OAuthBroker};

#[test]
fn a_refused_configuration_fails_fast_with_the_error_lines_and_leaves_nothing() {
    if !std::path::Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server").exists() {
        eprintln!("RabbitMQ is not installed; skipped");
        return;
    }
    let t = Instant::now();
    let err = OAuthBroker::start(BrokerOptions {
        // Does not exist on 3.10.8: the node refuses to boot.
        extra_config: vec!["auth_oauth2.preferred_username_claims.1 = user_name".into()],
        ..Default::default()
    })
    .expect_err("the node must refuse this key");
    let took = t.elapsed();
    let text = err.to_string();
    assert!(matches!(err, BrokerError::Boot(_)), "{err:?}");
    assert!(text.contains("error"), "{text}");
    assert!(took < Duration::from_secs(45), "took {took:?}: {text}");
    eprintln!("start failed after {took:?} as expected:\n{text}");
    // Other runs may have nodes of their own: look for this one's config.
    let ours: Vec<_> = leftovers()
        .into_iter()
        .filter(|d| {
            std::fs::read_to_string(d.join("etc/rabbitmq.conf"))
                .is_ok_and(|c| c.contains("preferred_username_claims"))
        })
        .collect();
    assert!(ours.is_empty(), "left behind: {ours:?}");
}

fn leftovers() -> Vec<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("nost-oauth-node-"))
        })
        .collect()
}
