//! The background task: one renewal at a time, on schedule or on request.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng as _;
use secrecy::SecretString;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{AuthError, InactiveReason};
use crate::event::{AuthEvent, Renewal};
use crate::issuer::TokenIssuer;
use crate::token::{AccessToken, TokenSet};

/// How failed renewals are retried.
///
/// The delay after the n-th failure in a row is `initial · 2ⁿ⁻¹`, capped at
/// `max`, scaled by a random factor in [0.5, 1] when `jitter` is on, then
/// shortened to 80% of the access token's remaining life (so a retry never
/// waits past expiry), and finally raised to `floor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure (default 1 s).
    pub initial: Duration,
    /// Longest delay (default 60 s).
    pub max: Duration,
    /// Shortest delay, also between two successful renewals (default 500 ms).
    pub floor: Duration,
    /// Randomise delays (default on).
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            floor: Duration::from_millis(500),
            jitter: true,
        }
    }
}

/// The shortest time between two renewals when Keycloak's tokens arrive
/// already expired by the local clock (`expires_in: 0`, or `exp` in the past:
/// probably clock skew), unless `token_refresh_interval` is shorter.
pub const CLOCK_SKEW_FLOOR: Duration = Duration::from_secs(30);

/// Renew after `interval`, but never later than 80% of the remaining life.
pub(crate) fn schedule(interval: Duration, remaining: Option<Duration>) -> Duration {
    remaining.map_or(interval, |r| interval.min(r.mul_f64(0.8)))
}

/// The delay before retry number `attempt` (1-based).
pub(crate) fn retry_delay(
    policy: &RetryPolicy,
    attempt: u32,
    remaining: Option<Duration>,
) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
    let mut d = policy.initial.saturating_mul(factor).min(policy.max);
    if policy.jitter {
        d = d.mul_f64(rand::rng().random_range(0.5..=1.0));
    }
    if let Some(r) = remaining.filter(|r| !r.is_zero()) {
        d = d.min(r.mul_f64(0.8));
    }
    d.max(policy.floor)
}

/// What to do when there is no usable refresh token.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fallback {
    /// Repeat the credentials' grant (without OTP).
    Grant,
    /// Report the login expired, with this advice.
    Expired(&'static str),
}

/// Advice when a user account that needed an OTP cannot be renewed.
pub(crate) const OTP_HINT: &str = "the account needs a one-time password, which is never asked for in the background; start again with a fresh OTP";

/// The refresh token and its expiry: owned by the task alone.
pub(crate) struct State {
    pub refresh_token: Option<SecretString>,
    pub refresh_expires_at: Option<Instant>,
}

/// A `renew_now` caller waiting for the result.
pub(crate) type Waiter = oneshot::Sender<Result<AccessToken, AuthError>>;

/// What the task and the handles share.
pub(crate) struct Core {
    pub issuer: Arc<dyn TokenIssuer>,
    pub fallback: Fallback,
    pub interval: Duration,
    pub retry: RetryPolicy,
    pub token_tx: watch::Sender<SecretString>,
    pub current: Mutex<AccessToken>,
    pub events: broadcast::Sender<AuthEvent>,
    pub terminal: Mutex<Option<AuthError>>,
    /// When the last token was published.
    pub renewed_at: Mutex<Instant>,
    /// Whether the clock-skew warning was given.
    pub skew_warned: std::sync::atomic::AtomicBool,
}

/// The crate's one poison-ignoring lock.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Core {
    pub(crate) fn current(&self) -> AccessToken {
        lock(&self.current).clone()
    }

    pub(crate) fn terminal(&self) -> Option<AuthError> {
        lock(&self.terminal).clone()
    }

    /// Whether the current token was published less than
    /// [`CLOCK_SKEW_FLOOR`] ago and is already expired by the local clock:
    /// renewing again would only give another such token.
    pub(crate) fn expired_on_arrival(&self) -> bool {
        self.current().remaining().is_some_and(|r| r.is_zero())
            && lock(&self.renewed_at).elapsed() < CLOCK_SKEW_FLOOR
    }

    /// The delay before the next renewal after `token` arrived, with the
    /// floor for tokens that are expired on arrival (warned once).
    pub(crate) fn next_renewal(&self, token: &AccessToken) -> Duration {
        let next = schedule(self.interval, token.remaining()).max(self.retry.floor);
        if !token.remaining().is_some_and(|r| r.is_zero()) {
            return next;
        }
        let floor = next.max(self.interval.min(CLOCK_SKEW_FLOOR));
        if !self
            .skew_warned
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                target: "nost_auth",
                renew_every_s = floor.as_secs_f64(),
                "Keycloak issued an access token that is already expired by this machine's clock (expires_in 0 or its exp in the past): the clocks of this machine and Keycloak probably differ (clock skew; check NTP on both). Renewing at this slower pace instead of continuously"
            );
        }
        floor
    }

    fn publish(&self, token: &AccessToken, via: Renewal, next: Duration) {
        *lock(&self.renewed_at) = Instant::now();
        *lock(&self.current) = token.clone();
        self.token_tx.send_replace(token.secret().clone());
        let expires_in = token.remaining();
        tracing::info!(
            target: "nost_auth",
            via = via.as_str(),
            expires_in_s = expires_in.map(|d| d.as_secs()),
            next_renewal_s = next.as_secs_f64(),
            "access token renewed"
        );
        let _ = self.events.send(AuthEvent::Renewed {
            via,
            expires_in,
            next_renewal_in: next,
        });
    }

    /// One renewal: the refresh token if usable, else the fallback.
    async fn renew_once(&self, state: &mut State) -> Result<(AccessToken, Renewal), AuthError> {
        let mut reason = None;
        if let Some(rt) = state.refresh_token.clone() {
            if state
                .refresh_expires_at
                .is_some_and(|t| Instant::now() >= t)
            {
                tracing::info!(target: "nost_auth", "the refresh token has expired; not using it");
                state.refresh_token = None;
                reason = Some(InactiveReason::TokenNotActive);
            } else {
                match self.issuer.renew(rt).await {
                    Ok(set) => return Ok((apply(state, set, true), Renewal::Refresh)),
                    Err(AuthError::RefreshTokenInactive { reason: r }) => {
                        tracing::warn!(target: "nost_auth", reason = %r, "Keycloak refused the refresh token");
                        state.refresh_token = None;
                        state.refresh_expires_at = None;
                        reason = Some(r);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        match self.fallback {
            Fallback::Grant => {
                tracing::info!(target: "nost_auth", "no usable refresh token; repeating the grant");
                match self.issuer.obtain(None).await {
                    Ok(set) => Ok((apply(state, set, false), Renewal::Grant)),
                    Err(AuthError::OtpRequired | AuthError::OtpRejected) => {
                        Err(AuthError::LoginExpired {
                            reason,
                            hint: OTP_HINT,
                        })
                    }
                    Err(e) => Err(e),
                }
            }
            Fallback::Expired(hint) => Err(AuthError::LoginExpired { reason, hint }),
        }
    }
}

/// Keep the newest refresh token; a fresh grant without one drops the old.
fn apply(state: &mut State, set: TokenSet, from_refresh: bool) -> AccessToken {
    let now = Instant::now();
    match set.refresh_token {
        Some(rt) => {
            state.refresh_token = Some(rt);
            state.refresh_expires_at = set.refresh_expires_in.map(|d| now + d);
        }
        None if !from_refresh => {
            state.refresh_token = None;
            state.refresh_expires_at = None;
        }
        None => {}
    }
    AccessToken::new(set.access_token, set.expires_in.map(|d| now + d))
}

/// `now + d`, at most ten years ahead (no `Instant` overflow).
pub(crate) fn far(d: Duration) -> Instant {
    Instant::now() + d.min(Duration::from_secs(315_360_000))
}

fn drain(requests: &mut mpsc::Receiver<Waiter>, waiters: &mut Vec<Waiter>) {
    while let Ok(w) = requests.try_recv() {
        waiters.push(w);
    }
}

fn answer(waiters: Vec<Waiter>, result: &Result<AccessToken, AuthError>) {
    for w in waiters {
        let _ = w.send(result.clone());
    }
}

/// The refresher loop; ends on cancellation or a terminal failure.
pub(crate) async fn run(
    core: Arc<Core>,
    mut state: State,
    mut requests: mpsc::Receiver<Waiter>,
    cancel: CancellationToken,
    first_due: Instant,
) {
    let mut due = first_due;
    let mut attempt: u32 = 0;
    loop {
        let mut waiters = Vec::new();
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            req = requests.recv() => match req {
                Some(w) => waiters.push(w),
                None => break,
            },
            () = tokio::time::sleep_until(due) => {}
        }
        drain(&mut requests, &mut waiters);
        let outcome = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            r = core.renew_once(&mut state) => r,
        };
        // Callers who asked while the request was in flight share its result.
        drain(&mut requests, &mut waiters);
        match outcome {
            Ok((token, via)) => {
                attempt = 0;
                let next = core.next_renewal(&token);
                due = far(next);
                core.publish(&token, via, next);
                answer(waiters, &Ok(token));
            }
            Err(error) if error.is_retryable() => {
                attempt = attempt.saturating_add(1);
                let remaining = core.current().remaining();
                let delay = retry_delay(&core.retry, attempt, remaining);
                due = far(delay);
                if remaining.is_some_and(|r| r.is_zero()) {
                    tracing::warn!(target: "nost_auth", "the access token has expired while renewal keeps failing");
                }
                tracing::warn!(
                    target: "nost_auth",
                    attempt,
                    delay_s = delay.as_secs_f64(),
                    error = %error,
                    "token renewal failed; retrying"
                );
                let _ = core.events.send(AuthEvent::Retrying {
                    attempt,
                    delay,
                    error: error.clone(),
                });
                answer(waiters, &Err(error));
            }
            Err(error) => {
                let event = if matches!(error, AuthError::LoginExpired { .. }) {
                    tracing::error!(target: "nost_auth", error = %error, "Keycloak login expired; token renewal stopped");
                    AuthEvent::LoginExpired {
                        error: error.clone(),
                    }
                } else {
                    tracing::error!(target: "nost_auth", error = %error, "token renewal failed; renewal stopped");
                    AuthEvent::Failed {
                        error: error.clone(),
                    }
                };
                *lock(&core.terminal) = Some(error.clone());
                let _ = core.events.send(event);
                answer(waiters, &Err(error));
                break;
            }
        }
    }
    tracing::debug!(target: "nost_auth", "token refresher stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_interval_or_80_percent() {
        let s = Duration::from_secs;
        assert_eq!(schedule(s(240), Some(s(300))), s(240));
        assert_eq!(schedule(s(240), Some(s(60))), s(48));
        assert_eq!(schedule(s(240), None), s(240));
        assert_eq!(schedule(s(240), Some(Duration::ZERO)), Duration::ZERO);
    }

    #[test]
    fn backoff_grows_caps_and_tightens() {
        let p = RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        };
        let s = Duration::from_secs;
        let d: Vec<_> = (1..=8).map(|a| retry_delay(&p, a, None)).collect();
        assert_eq!(d, vec![s(1), s(2), s(4), s(8), s(16), s(32), s(60), s(60)]);
        assert_eq!(retry_delay(&p, 7, Some(s(10))), s(8));
        assert_eq!(
            retry_delay(&p, 7, Some(Duration::from_millis(100))),
            p.floor
        );
        assert_eq!(retry_delay(&p, 99, None), s(60));
        let j = RetryPolicy::default();
        for a in 1..10 {
            let d = retry_delay(&j, a, None);
            assert!(d >= j.floor && d <= j.max);
        }
    }
}
