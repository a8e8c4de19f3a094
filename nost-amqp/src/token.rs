//! The seam between token management (`nost-auth`) and connections.

use async_trait::async_trait;
use nost_config::SecretString;
use tokio::sync::watch;

/// Why a token source can never give a token again (the Keycloak session
/// ended, the credentials or the client were refused): a session stops
/// reconnecting and fails publishing with it
/// ([`AmqpError::TokenFailed`](crate::AmqpError::TokenFailed)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenFailure {
    /// What kind of failure, as the source names it (nost-auth's
    /// `FatalKind::as_str`: `session_expired`, `credentials_rejected`,
    /// `client_rejected`, `other`).
    pub kind: String,
    /// What happened (never a secret).
    pub error: String,
    /// What the user has to do.
    pub advice: String,
}

impl TokenFailure {
    /// A failure of `kind` with its message and advice.
    pub fn new(
        kind: impl Into<String>,
        error: impl Into<String>,
        advice: impl Into<String>,
    ) -> Self {
        TokenFailure {
            kind: kind.into(),
            error: error.into(),
            advice: advice.into(),
        }
    }
}

impl std::fmt::Display for TokenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the access token can no longer be renewed ({}): {}; {}",
            self.kind, self.error, self.advice
        )
    }
}

/// Where a connection gets its access token.
///
/// `nost-auth`'s token manager implements this (via `nost-app`); tests can
/// supply a static or scripted source.
#[async_trait]
pub trait TokenSource: Send + Sync + 'static {
    /// Every new access token, starting with the current one.
    fn subscribe(&self) -> watch::Receiver<SecretString>;

    /// A token good enough to open a connection now: renew first when the
    /// current one is close to expiry.
    async fn fresh(&self) -> Result<SecretString, String>;

    /// Why no token can ever come again, once that is so; `None` while
    /// tokens come or failures are retried (the default: never).
    fn failure(&self) -> Option<TokenFailure> {
        None
    }

    /// Resolves once [`failure`](Self::failure) is known (the default:
    /// never). Cancel-safe.
    async fn failed(&self) -> TokenFailure {
        std::future::pending().await
    }
}
