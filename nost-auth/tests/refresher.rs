//! The refresh schedule with tokio's paused clock and a scripted source.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use nost_auth::{
    AuthError, AuthEvent, AuthOptions, FirstToken, InactiveReason, Renewal, RetryPolicy,
    TokenManager,
};
use nost_config::{ExposeSecret, SecretString};
use tokio::time::sleep;

const S: fn(u64) -> Duration = Duration::from_secs;

fn no_jitter() -> AuthOptions {
    AuthOptions {
        retry: RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        },
        ..AuthOptions::default()
    }
}

fn unavailable() -> AuthError {
    AuthError::ServiceUnavailable { status: 503 }
}

fn inactive(reason: InactiveReason) -> AuthError {
    AuthError::RefreshTokenInactive { reason }
}

async fn start(source: &Arc<FakeIssuer>, login: FirstToken, interval: u64) -> TokenManager {
    TokenManager::start_with_issuer(source.clone(), login, S(interval), no_jitter())
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn interval_wins_when_shorter_than_80_percent() {
    let src = FakeIssuer::new(|_, n| Ok(set(n, S(300), true)));
    let m = start(&src, FirstToken::ServiceAccount, 240).await;
    sleep(S(239)).await;
    assert_eq!(src.calls().len(), 1, "only the start-up grant");
    sleep(S(2)).await;
    assert_eq!(src.calls().len(), 2);
    sleep(S(240 * 3)).await;
    assert_eq!(src.times(), vec![0.0, 240.0, 480.0, 720.0, 960.0]);
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn eighty_percent_of_life_wins_over_a_long_interval() {
    let src = FakeIssuer::new(|_, n| Ok(set(n, S(100), true)));
    let m = start(&src, FirstToken::ServiceAccount, 240).await;
    sleep(S(250)).await;
    assert_eq!(src.times(), vec![0.0, 80.0, 160.0, 240.0]);
    assert_eq!(m.current_access_token().expose_secret(), "at-3");
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn retries_503_with_backoff_then_recovers() {
    // Start-up, then three 503s, then success.
    let src = FakeIssuer::new(|_, n| match n {
        1..=3 => Err(unavailable()),
        _ => Ok(set(n, S(300), true)),
    });
    let m = start(&src, FirstToken::ServiceAccount, 240).await;
    let mut events = m.subscribe_events();
    sleep(S(260)).await;
    // 240, then +1 s, +2 s, +4 s.
    assert_eq!(src.times(), vec![0.0, 240.0, 241.0, 243.0, 247.0]);
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    for (i, e) in seen[..3].iter().enumerate() {
        match e {
            AuthEvent::Retrying {
                attempt,
                delay,
                error,
            } => {
                assert_eq!(*attempt, i as u32 + 1);
                assert_eq!(*delay, S(1 << i));
                assert_eq!(*error, unavailable());
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        seen[3],
        AuthEvent::Renewed {
            via: Renewal::Refresh,
            ..
        }
    ));
    // Back on schedule after the success.
    sleep(S(240)).await;
    assert_eq!(src.times().last().copied(), Some(487.0));
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn retries_tighten_and_never_wait_past_expiry() {
    let src = FakeIssuer::new(|_, n| match n {
        0 => Ok(set(0, S(20), true)),
        _ => Err(unavailable()),
    });
    let m = start(&src, FirstToken::ServiceAccount, 240).await;
    sleep(S(20)).await;
    let times = src.times();
    // First renewal at 80% of 20 s, then retries before expiry at 20 s.
    assert_eq!(times[1], 16.0);
    assert!(times.len() >= 5, "{times:?}");
    let before_expiry: Vec<f64> = times.iter().copied().filter(|t| *t < 20.0).collect();
    for w in before_expiry.windows(2) {
        let gap = w[1] - w[0];
        let left = 20.0 - w[0];
        assert!(
            gap <= (left * 0.8).max(0.5) + 1e-6,
            "waited {gap} with {left} left: {times:?}"
        );
    }
    // After expiry: capped backoff, still retrying.
    sleep(S(600)).await;
    let t = src.times();
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g <= 60.0 + 1e-6), "{gaps:?}");
    assert!(m.stopped_by().is_none());
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn service_account_without_refresh_token_repeats_its_grant() {
    let src = FakeIssuer::new(|_, n| Ok(set(n, S(300), false)));
    let m = start(&src, FirstToken::ServiceAccount, 240).await;
    let mut events = m.subscribe_events();
    sleep(S(500)).await;
    assert_eq!(src.calls(), vec![Call::Obtain(None); 3]);
    assert!(matches!(
        events.recv().await.unwrap(),
        AuthEvent::Renewed {
            via: Renewal::Grant,
            ..
        }
    ));
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn service_account_with_revoked_refresh_token_falls_back_to_grant() {
    let src = FakeIssuer::new(|c, n| match c {
        Call::Renew(_) => Err(inactive(InactiveReason::SessionNotActive)),
        Call::Obtain(_) => Ok(set(n, S(300), n == 0)),
    });
    let m = start(&src, FirstToken::ServiceAccount, 240).await;
    sleep(S(241)).await;
    assert_eq!(
        src.calls(),
        vec![
            Call::Obtain(None),
            Call::Renew("rt-0".into()),
            Call::Obtain(None)
        ]
    );
    assert_eq!(m.current_access_token().expose_secret(), "at-2");
    // The dead refresh token is not tried again.
    sleep(S(240)).await;
    assert_eq!(src.calls().last(), Some(&Call::Obtain(None)));
    assert_eq!(src.count(|c| matches!(c, Call::Renew(_))), 1);
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn rotation_keeps_the_newest_refresh_token() {
    let src = FakeIssuer::new(|c, n| match c {
        Call::Renew(rt) if n > 1 && *rt != format!("rt-{}", n - 1) => {
            Err(inactive(InactiveReason::ReuseExceeded))
        }
        _ => Ok(set(n, S(300), true)),
    });
    let m = start(&src, FirstToken::ServiceAccount, 240).await;
    sleep(S(240 * 4 + 1)).await;
    assert_eq!(
        src.calls(),
        vec![
            Call::Obtain(None),
            Call::Renew("rt-0".into()),
            Call::Renew("rt-1".into()),
            Call::Renew("rt-2".into()),
            Call::Renew("rt-3".into()),
        ]
    );
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn refresh_without_new_refresh_token_keeps_the_old_one() {
    let src = FakeIssuer::new(|c, n| match c {
        Call::Obtain(_) => Ok(set(n, S(300), true)),
        Call::Renew(_) => Ok(set(n, S(300), false)),
    });
    let m = start(&src, FirstToken::ServiceAccount, 240).await;
    sleep(S(481)).await;
    assert_eq!(
        src.calls(),
        vec![
            Call::Obtain(None),
            Call::Renew("rt-0".into()),
            Call::Renew("rt-0".into())
        ]
    );
    m.shut_down().await;
}

fn pre_acquired(life: i64) -> FirstToken {
    FirstToken::PreAcquired {
        access_token: SecretString::from(jwt(life)),
        refresh_token: SecretString::from("rt-fwd"),
    }
}

#[tokio::test(start_paused = true)]
async fn pre_acquired_revoked_session_is_a_typed_event() {
    let src = FakeIssuer::new(|_, _| Err(inactive(InactiveReason::SessionNotActive)));
    let m = start(&src, pre_acquired(300), 240).await;
    let mut events = m.subscribe_events();
    sleep(S(1000)).await;
    assert_eq!(
        src.calls(),
        vec![Call::Renew("rt-fwd".into())],
        "no grant, no retry"
    );
    match events.recv().await.unwrap() {
        AuthEvent::LoginExpired {
            error: AuthError::LoginExpired { reason, .. },
        } => assert_eq!(reason, Some(InactiveReason::SessionNotActive)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        m.stopped_by(),
        Some(AuthError::LoginExpired { .. })
    ));
    assert!(matches!(
        m.renew_now().await,
        Err(AuthError::LoginExpired { .. })
    ));
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn pre_acquired_first_renewal_follows_the_token_life() {
    // 100 s left: first renewal at 80 s, not at the 240 s interval.
    let src = FakeIssuer::new(|_, n| Ok(set(n, S(300), true)));
    let m = start(&src, pre_acquired(100), 240).await;
    sleep(S(78)).await;
    assert!(src.calls().is_empty());
    sleep(S(3)).await;
    assert_eq!(src.calls(), vec![Call::Renew("rt-fwd".into())]);
    m.shut_down().await;

    // Already expired: renewed at once.
    let src = FakeIssuer::new(|_, n| Ok(set(n, S(300), true)));
    let m = start(&src, pre_acquired(-30), 240).await;
    sleep(Duration::from_millis(10)).await;
    assert_eq!(src.calls().len(), 1);
    assert_eq!(m.current_access_token().expose_secret(), "at-0");
    m.shut_down().await;

    // Not a JWT (age unknown): renewed at once.
    let src = FakeIssuer::new(|_, n| Ok(set(n, S(300), true)));
    let login = FirstToken::PreAcquired {
        access_token: SecretString::from("opaque"),
        refresh_token: SecretString::from("rt-fwd"),
    };
    let m = start(&src, login, 240).await;
    sleep(Duration::from_millis(10)).await;
    assert_eq!(src.calls().len(), 1);
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn user_account_fallback_depends_on_otp_at_start() {
    let respond = |c: &Call, n: usize| match c {
        Call::Renew(_) => Err(inactive(InactiveReason::TokenNotActive)),
        Call::Obtain(_) => Ok(set(n, S(300), true)),
    };
    // No OTP at start: the password grant is repeated (without OTP).
    let src = FakeIssuer::new(respond);
    let m = start(&src, FirstToken::UserAccount, 240).await;
    sleep(S(241)).await;
    assert_eq!(
        src.calls(),
        vec![
            Call::Obtain(None),
            Call::Renew("rt-0".into()),
            Call::Obtain(None)
        ]
    );
    m.shut_down().await;

    // OTP given at start: the session expires instead.
    let src = FakeIssuer::new(respond);
    let opts = AuthOptions {
        otp: Some(SecretString::from("123456")),
        ..no_jitter()
    };
    let m = TokenManager::start_with_issuer(src.clone(), FirstToken::UserAccount, S(240), opts)
        .await
        .unwrap();
    let mut events = m.subscribe_events();
    sleep(S(1000)).await;
    assert_eq!(
        src.calls(),
        vec![
            Call::Obtain(Some("123456".into())),
            Call::Renew("rt-0".into())
        ]
    );
    assert!(matches!(
        events.recv().await.unwrap(),
        AuthEvent::LoginExpired { .. }
    ));
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn fallback_grant_that_now_needs_an_otp_reports_login_expired() {
    let src = FakeIssuer::new(|c, n| match (c, n) {
        (_, 0) => Ok(set(0, S(300), true)),
        (Call::Renew(_), _) => Err(inactive(InactiveReason::SessionNotActive)),
        (Call::Obtain(_), _) => Err(AuthError::OtpRequired),
    });
    let m = start(&src, FirstToken::UserAccount, 240).await;
    let mut events = m.subscribe_events();
    sleep(S(1000)).await;
    assert_eq!(src.calls().len(), 3);
    assert!(matches!(
        events.recv().await.unwrap(),
        AuthEvent::LoginExpired { .. }
    ));
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn permanent_failure_stops_with_failed_event() {
    let src = FakeIssuer::new(|_, n| match n {
        0 => Ok(set(0, S(300), false)),
        _ => Err(AuthError::AccountDisabled),
    });
    let m = start(&src, FirstToken::ServiceAccount, 240).await;
    let mut events = m.subscribe_events();
    sleep(S(2000)).await;
    assert_eq!(src.calls().len(), 2);
    assert_eq!(
        events.recv().await.unwrap(),
        AuthEvent::Failed {
            error: AuthError::AccountDisabled
        }
    );
    assert_eq!(m.renew_now().await.unwrap_err(), AuthError::AccountDisabled);
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn single_flight_for_fifty_subscribers() {
    let src = FakeIssuer::with_delay(Duration::from_millis(200), |_, n| Ok(set(n, S(300), true)));
    let m = start(&src, FirstToken::ServiceAccount, 240).await;
    // 50 holders of the same credentials, each watching tokens.
    let holders: Vec<TokenManager> = (0..50).map(|_| m.clone()).collect();
    let mut watchers: Vec<_> = holders.iter().map(|h| h.subscribe_tokens()).collect();

    // All 50 ask at once: one request.
    let tasks: Vec<_> = holders
        .iter()
        .map(|h| {
            let h = h.clone();
            tokio::spawn(async move { h.renew_now().await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().secret().expose_secret(), "at-1");
    }
    assert_eq!(src.calls().len(), 2, "start-up + one renewal");

    // Three scheduled cycles: one request each, every watcher sees each token.
    for cycle in 0..3 {
        sleep(S(241)).await;
        assert_eq!(src.calls().len(), 3 + cycle);
    }
    for w in &mut watchers {
        assert!(w.has_changed().unwrap());
        assert_eq!(w.borrow_and_update().expose_secret(), "at-4");
    }
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn renew_now_during_a_scheduled_renewal_shares_it() {
    let src = FakeIssuer::with_delay(S(2), |_, n| Ok(set(n, S(300), true)));
    let m = start(&src, FirstToken::ServiceAccount, 240).await;
    sleep(S(241)).await; // scheduled renewal in flight (240..242)
    let t = m.renew_now().await.unwrap();
    assert_eq!(t.secret().expose_secret(), "at-1");
    assert_eq!(src.calls().len(), 2);
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_joins_and_stops_renewing() {
    let src = FakeIssuer::new(|_, n| Ok(set(n, S(300), true)));
    let m = start(&src, FirstToken::ServiceAccount, 240).await;
    let other = m.clone();
    m.shut_down().await;
    m.shut_down().await; // idempotent
    sleep(S(1000)).await;
    assert_eq!(src.calls().len(), 1);
    assert_eq!(other.renew_now().await.unwrap_err(), AuthError::ShutDown);
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_stops_the_task() {
    let src = FakeIssuer::new(|_, n| Ok(set(n, S(300), true)));
    let m = start(&src, FirstToken::ServiceAccount, 240).await;
    let rx = m.subscribe_tokens();
    drop(m);
    sleep(S(1000)).await;
    assert_eq!(src.calls().len(), 1);
    drop(rx);
}

#[tokio::test(start_paused = true)]
async fn fresh_access_token_renews_only_near_expiry() {
    let src = FakeIssuer::new(|_, n| Ok(set(n, S(300), true)));
    let m = start(&src, FirstToken::ServiceAccount, 240).await;
    let t = m.fresh_access_token(S(30)).await.unwrap();
    assert_eq!(t.expose_secret(), "at-0");
    let t = m.fresh_access_token(S(400)).await.unwrap();
    assert_eq!(t.expose_secret(), "at-1");
    assert_eq!(src.calls().len(), 2);
    m.shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn start_up_errors_are_returned() {
    let src = FakeIssuer::new(|_, _| {
        Err(AuthError::InvalidClient {
            client_id: "svc".into(),
        })
    });
    let e = TokenManager::start_with_issuer(src, FirstToken::ServiceAccount, S(240), no_jitter())
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::InvalidClient { .. }));
}
