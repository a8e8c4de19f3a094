//! What the refresher tells its subscribers.

use std::time::Duration;

use crate::error::{AuthError, FatalKind};

/// How a new access token was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Renewal {
    /// A `refresh_token` grant.
    Refresh,
    /// The credentials' own grant again (service account, or user account
    /// without OTP), because there was no usable refresh token.
    Grant,
}

impl Renewal {
    /// `refresh_token` or `grant`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Renewal::Refresh => "refresh_token",
            Renewal::Grant => "grant",
        }
    }
}

/// One step of the refresher, published on
/// [`TokenManager::subscribe_events`](crate::TokenManager::subscribe_events).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthEvent {
    /// A new access token was published.
    Renewed {
        /// Whether a refresh token or a new grant produced it.
        via: Renewal,
        /// Its lifetime, if known.
        expires_in: Option<Duration>,
        /// When the next renewal is due.
        next_renewal_in: Duration,
    },
    /// A renewal failed in a way that may pass; the next try is scheduled.
    Retrying {
        /// Failed attempts in a row.
        attempt: u32,
        /// Until the next try.
        delay: Duration,
        /// What went wrong.
        error: AuthError,
    },
    /// A renewal failed in a way retrying cannot fix; the refresher stopped.
    Failed {
        /// What went wrong.
        error: AuthError,
    },
    /// The login is over and cannot be renewed without the user; the
    /// refresher stopped.
    LoginExpired {
        /// Why ([`AuthError::LoginExpired`]).
        error: AuthError,
    },
}

impl AuthEvent {
    /// For the events that stop the refresher ([`AuthEvent::Failed`],
    /// [`AuthEvent::LoginExpired`]): why, typed, and the error.
    pub fn fatal(&self) -> Option<(FatalKind, &AuthError)> {
        match self {
            AuthEvent::Failed { error } | AuthEvent::LoginExpired { error } => {
                Some((error.fatal_kind().unwrap_or(FatalKind::Other), error))
            }
            _ => None,
        }
    }
}
