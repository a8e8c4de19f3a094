//! The seam between token management (`nost-auth`, composed by `nost-app`)
//! and connections: typed, so that an application can tell "log in again"
//! from "the identity provider is down" by matching.

use async_trait::async_trait;
use nost_config::{Cause, SecretString};
use tokio::sync::watch;

/// Why a token source can never give a token again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenFailureKind {
    /// The login is over (its maximum lifetime reached, logged out,
    /// revoked, pre-acquired tokens that ran out): the user has to log in
    /// again.
    LoginExpired,
    /// The user's credentials are refused (password changed, account
    /// disabled, a one-time password needed).
    CredentialsRejected,
    /// The client is refused (secret regenerated, client disabled or
    /// deleted, grant type not allowed).
    ClientRejected,
    /// Another failure retrying cannot fix (TLS trust, configuration).
    Other,
}

impl TokenFailureKind {
    /// `login_expired`, `credentials_rejected`, `client_rejected`,
    /// `other`: the words `nost-auth` uses for the same verdicts
    /// (`FatalKind::as_str`).
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenFailureKind::LoginExpired => "login_expired",
            TokenFailureKind::CredentialsRejected => "credentials_rejected",
            TokenFailureKind::ClientRejected => "client_rejected",
            TokenFailureKind::Other => "other",
        }
    }
}

impl std::fmt::Display for TokenFailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token source's verdict that no token can ever come again: a session
/// stops reconnecting and fails publishing with it
/// ([`AmqpError::TokenFailed`](crate::AmqpError::TokenFailed)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the access token can no longer be renewed ({kind}): {error}; {advice}")]
#[non_exhaustive]
pub struct TokenFailure {
    /// The kind of verdict: match it to tell "log in again" from "fix the
    /// credentials".
    pub kind: TokenFailureKind,
    /// What happened, in words (never a secret).
    pub error: String,
    /// What the user has to do.
    pub advice: String,
    /// The source's own error (with `nost-app`, a `nost_auth::AuthError`:
    /// [`Cause::downcast_ref`]).
    #[source]
    pub cause: Option<Cause>,
}

impl TokenFailure {
    /// A failure of `kind` with its message and advice.
    pub fn new(
        kind: TokenFailureKind,
        error: impl Into<String>,
        advice: impl Into<String>,
    ) -> Self {
        TokenFailure {
            kind,
            error: error.into(),
            advice: advice.into(),
            cause: None,
        }
    }

    /// The same failure, keeping the source's own error as its cause
    /// (its text is [`error`](Self::error)).
    pub fn caused_by<E: std::error::Error + Send + Sync + 'static>(
        kind: TokenFailureKind,
        error: E,
        advice: impl Into<String>,
    ) -> Self {
        TokenFailure {
            kind,
            error: error.to_string(),
            advice: advice.into(),
            cause: Some(Cause::new(error)),
        }
    }
}

/// Why [`TokenSource::fresh`] gave no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No token now, but one may come (the identity provider is down or
    /// unreachable, or answered with an error that may pass): connecting is
    /// tried again.
    #[error(transparent)]
    Unavailable(Cause),
    /// No token can ever come again.
    #[error(transparent)]
    Failed(TokenFailure),
}

impl TokenError {
    /// A token that may come later, for `error`.
    pub fn unavailable<E: std::error::Error + Send + Sync + 'static>(error: E) -> Self {
        TokenError::Unavailable(Cause::new(error))
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
    async fn fresh(&self) -> Result<SecretString, TokenError>;

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
