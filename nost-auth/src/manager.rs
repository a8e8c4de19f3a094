//! The handle everyone shares: current token, subscriptions, renewals, shutdown.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nost_config::{AuthMode, KeycloakConfig};
use secrecy::SecretString;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::error::{AuthError, FatalKind};
use crate::event::AuthEvent;
use crate::issuer::TokenIssuer;
use crate::keycloak::{KeycloakIssuer, PRE_ACQUIRED_HINT};
use crate::otp::OtpProvider;
use crate::refresher::{self, Core, Fallback, OTP_HINT, RetryPolicy, State, Waiter, schedule};
use crate::token::{AccessToken, TokenSet};

/// Options for [`TokenManager::start`].
#[derive(Clone)]
pub struct AuthOptions {
    /// A one-time password to send with the first password grant (e.g. from
    /// [`otp_from_env`](crate::otp_from_env) or a `--otp` flag).
    pub otp: Option<SecretString>,
    /// Asked for an OTP when Keycloak's answer at start-up says one is needed
    /// and none was given (e.g. [`TerminalOtpPrompt`](crate::TerminalOtpPrompt)).
    /// `None`: such a login fails with [`AuthError::OtpRequired`].
    pub otp_provider: Option<Arc<dyn OtpProvider>>,
    /// How failed renewals are retried.
    pub retry: RetryPolicy,
    /// Timeout of each HTTP request to Keycloak (default 30 s).
    pub http_timeout: Duration,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            otp: None,
            otp_provider: None,
            retry: RetryPolicy::default(),
            http_timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for AuthOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthOptions")
            .field("otp", &self.otp.as_ref().map(|_| "[REDACTED]"))
            .field("otp_provider", &self.otp_provider.as_ref().map(|_| ".."))
            .field("retry", &self.retry)
            .field("http_timeout", &self.http_timeout)
            .finish()
    }
}

/// How [`TokenManager::start_with_issuer`] gets its first token.
#[derive(Debug, Clone)]
pub enum FirstToken {
    /// `issuer.obtain(None)`; renewals fall back to the grant.
    ServiceAccount,
    /// `issuer.obtain(otp)`, prompting through the OTP provider when the
    /// answer asks for an OTP. Renewals fall back to the grant only when no
    /// OTP was used.
    UserAccount,
    /// Start from these tokens; no fallback grant.
    PreAcquired {
        /// The forwarded access token.
        access_token: SecretString,
        /// The forwarded refresh token.
        refresh_token: SecretString,
    },
}

/// Owns a Keycloak login and keeps its tokens fresh in a background task.
///
/// Cheap to clone: every clone shares the same tokens and the same single
/// renewal at a time. The task stops on [`shut_down`](Self::shut_down), on a
/// failure retrying cannot fix, or when the last clone is dropped.
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

struct Inner {
    core: Arc<Core>,
    requests: mpsc::Sender<Waiter>,
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    _stop_on_drop: DropGuard,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("access_token", &self.access_token())
            .field("stopped", &self.inner.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    /// Log in to Keycloak in `mode` and start renewing.
    ///
    /// [`AuthMode::Basic`] has no tokens: [`AuthError::NotKeycloak`].
    pub async fn start(
        mode: &AuthMode,
        keycloak: &KeycloakConfig,
        options: AuthOptions,
    ) -> Result<Self, AuthError> {
        let issuer = KeycloakIssuer::new(mode, keycloak, options.http_timeout)?;
        let first = match mode {
            AuthMode::Basic { .. } => return Err(AuthError::NotKeycloak),
            AuthMode::ServiceAccount { .. } => FirstToken::ServiceAccount,
            AuthMode::UserAccount { .. } => FirstToken::UserAccount,
            AuthMode::PreAcquired {
                access_token,
                refresh_token,
                ..
            } => FirstToken::PreAcquired {
                access_token: access_token.clone(),
                refresh_token: refresh_token.clone(),
            },
        };
        tracing::info!(target: "nost_auth", mode = %mode.kind(), url = issuer.token_url(), "logging in to Keycloak");
        Self::start_with_issuer(
            Arc::new(issuer),
            first,
            Duration::from_secs(keycloak.token_refresh_interval),
            options,
        )
        .await
    }

    /// Start with any [`TokenIssuer`] (a test double, another backend),
    /// renewing every `refresh_interval` at most.
    pub async fn start_with_issuer(
        issuer: Arc<dyn TokenIssuer>,
        first: FirstToken,
        refresh_interval: Duration,
        options: AuthOptions,
    ) -> Result<Self, AuthError> {
        let (set, fallback, known_expiry_required) = match first {
            FirstToken::ServiceAccount => (issuer.obtain(None).await?, Fallback::Grant, false),
            FirstToken::UserAccount => {
                let (set, otp_used) = login_user(issuer.as_ref(), &options).await?;
                let fallback = if otp_used {
                    Fallback::Expired(OTP_HINT)
                } else {
                    Fallback::Grant
                };
                (set, fallback, false)
            }
            FirstToken::PreAcquired {
                access_token,
                refresh_token,
            } => (
                TokenSet::from_access_token(access_token).with_refresh_token(refresh_token),
                Fallback::Expired(PRE_ACQUIRED_HINT),
                true,
            ),
        };
        let now = Instant::now();
        let token = AccessToken::new(set.access_token, set.expires_in.map(|d| now + d));
        let interval = refresh_interval.max(options.retry.floor);
        // A forwarded token of unknown age is renewed at once.
        let first = if known_expiry_required && token.expires_at().is_none() {
            Duration::ZERO
        } else if !known_expiry_required && token.remaining().is_some_and(|r| r.is_zero()) {
            // Expired on arrival from Keycloak: clock skew, see `next_renewal`.
            Duration::MAX
        } else {
            schedule(interval, token.remaining())
        };
        tracing::info!(
            target: "nost_auth",
            expires_in_s = token.remaining().map(|d| d.as_secs()),
            first_renewal_s = first.as_secs_f64(),
            "logged in to Keycloak"
        );
        let (token_tx, _) = watch::channel(token.secret().clone());
        let (events, _) = broadcast::channel(64);
        let core = Arc::new(Core {
            issuer,
            fallback,
            interval,
            retry: options.retry,
            token_tx,
            current: Mutex::new(token),
            events,
            terminal: Mutex::new(None),
            renewed_at: Mutex::new(now),
            skew_warned: std::sync::atomic::AtomicBool::new(false),
        });
        let first = if first == Duration::MAX {
            core.next_renewal(&core.current())
        } else {
            first
        };
        let state = State {
            refresh_token: set.refresh_token,
            refresh_expires_at: set.refresh_expires_in.map(|d| now + d),
        };
        let (requests, rx) = mpsc::channel(256);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(refresher::run(
            core.clone(),
            state,
            rx,
            cancel.clone(),
            refresher::far(first),
        ));
        Ok(TokenManager {
            inner: Arc::new(Inner {
                core,
                requests,
                _stop_on_drop: cancel.clone().drop_guard(),
                cancel,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    /// The current access token with its expiry.
    pub fn access_token(&self) -> AccessToken {
        self.inner.core.current()
    }

    /// The current access token.
    pub fn current_access_token(&self) -> SecretString {
        self.access_token().secret().clone()
    }

    /// Every new access token, starting with the current one.
    pub fn subscribe_tokens(&self) -> watch::Receiver<SecretString> {
        self.inner.core.token_tx.subscribe()
    }

    /// The refresher's events from now on.
    pub fn subscribe_events(&self) -> broadcast::Receiver<AuthEvent> {
        self.inner.core.events.subscribe()
    }

    /// Renew now. Concurrent calls (and a scheduled renewal in flight) share
    /// one request to Keycloak.
    pub async fn renew_now(&self) -> Result<AccessToken, AuthError> {
        let (tx, rx) = oneshot::channel();
        if self.inner.requests.send(tx).await.is_err() {
            return Err(self.stopped_error());
        }
        rx.await.unwrap_or_else(|_| Err(self.stopped_error()))
    }

    /// The current access token, renewed first when less than `min_remaining`
    /// of its life is left. A token of unknown expiry is returned as is.
    pub async fn fresh_access_token(
        &self,
        min_remaining: Duration,
    ) -> Result<SecretString, AuthError> {
        let token = self.access_token();
        match token.remaining() {
            // A token expired on arrival (clock skew) is not renewed again
            // before the floor: the broker may well accept it by its clock.
            Some(_) if self.inner.core.expired_on_arrival() => Ok(token.secret().clone()),
            Some(r) if r < min_remaining => Ok(self.renew_now().await?.secret().clone()),
            _ => Ok(token.secret().clone()),
        }
    }

    /// Wait until renewal can no longer succeed (the refresher stopped on
    /// its own: login expired, credentials or client rejected) and return
    /// why. Never returns while renewals succeed or are being retried, nor
    /// after [`shut_down`](Self::shut_down). Cancel-safe.
    pub async fn fatal(&self) -> (FatalKind, AuthError) {
        let mut events = self.subscribe_events();
        loop {
            if let Some(e) = self.stopped_by()
                && let Some(kind) = e.fatal_kind()
            {
                return (kind, e);
            }
            match events.recv().await {
                Ok(ev) => {
                    if let Some((kind, e)) = ev.fatal() {
                        return (kind, e.clone());
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// Why the refresher stopped, if it did on its own.
    pub fn stopped_by(&self) -> Option<AuthError> {
        self.inner.core.terminal()
    }

    /// Stop renewing and wait for the task to end. Idempotent; later
    /// [`renew_now`](Self::renew_now) calls answer [`AuthError::ShutDown`].
    pub async fn shut_down(&self) {
        self.inner.cancel.cancel();
        let task = crate::refresher::lock(&self.inner.task).take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::warn!(target: "nost_auth", error = %e, "token refresher task ended abnormally");
        }
    }

    fn stopped_error(&self) -> AuthError {
        if self.inner.cancel.is_cancelled() {
            return AuthError::ShutDown;
        }
        self.inner.core.terminal().unwrap_or(AuthError::ShutDown)
    }
}

/// The password grant, prompting for an OTP only when Keycloak asks.
/// Returns the tokens and whether an OTP was used.
async fn login_user(
    issuer: &dyn TokenIssuer,
    options: &AuthOptions,
) -> Result<(TokenSet, bool), AuthError> {
    let upfront = options.otp.is_some();
    match issuer.obtain(options.otp.clone()).await {
        Ok(set) => Ok((set, upfront)),
        Err(AuthError::OtpRequired) if !upfront => {
            let Some(provider) = &options.otp_provider else {
                return Err(AuthError::OtpRequired);
            };
            tracing::info!(target: "nost_auth", "Keycloak asks for a one-time password");
            let otp = provider.one_time_password().await?;
            let set = issuer.obtain(Some(otp)).await?;
            Ok((set, true))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::issuer::MockTokenIssuer;
    use crate::otp::MockOtpProvider;
    use secrecy::ExposeSecret;

    fn tokens(at: &str) -> TokenSet {
        TokenSet::from_access_token(SecretString::from(at.to_string()))
            .with_refresh_token(SecretString::from("rt"))
    }

    #[tokio::test]
    async fn mocks_drive_the_otp_flow() {
        let mut source = MockTokenIssuer::new();
        let mut seq = mockall::Sequence::new();
        source
            .expect_obtain()
            .withf(|otp| otp.is_none())
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Err(AuthError::OtpRequired));
        source
            .expect_obtain()
            .withf(|otp| otp.as_ref().map(|o| o.expose_secret().to_string()) == Some("42".into()))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(tokens("at")));
        source.expect_renew().never();
        let mut otp = MockOtpProvider::new();
        otp.expect_one_time_password()
            .times(1)
            .returning(|| Ok(SecretString::from("42")));
        let options = AuthOptions {
            otp_provider: Some(Arc::new(otp)),
            ..AuthOptions::default()
        };
        let m = TokenManager::start_with_issuer(
            Arc::new(source),
            FirstToken::UserAccount,
            Duration::from_secs(240),
            options,
        )
        .await
        .unwrap();
        assert_eq!(m.current_access_token().expose_secret(), "at");
        m.shut_down().await;
    }

    #[tokio::test]
    async fn no_prompt_when_keycloak_does_not_ask() {
        let mut source = MockTokenIssuer::new();
        source
            .expect_obtain()
            .times(1)
            .returning(|_| Err(AuthError::InvalidCredentials { otp_sent: false }));
        let mut otp = MockOtpProvider::new();
        otp.expect_one_time_password().never();
        let options = AuthOptions {
            otp_provider: Some(Arc::new(otp)),
            ..AuthOptions::default()
        };
        let e = TokenManager::start_with_issuer(
            Arc::new(source),
            FirstToken::UserAccount,
            Duration::from_secs(240),
            options,
        )
        .await
        .unwrap_err();
        assert_eq!(e, AuthError::InvalidCredentials { otp_sent: false });
    }
}
