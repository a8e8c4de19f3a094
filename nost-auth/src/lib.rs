//! Keycloak token flows for NOS-T and a background refresher that keeps a
//! login alive for as long as a run lasts.
//!
//! This crate owns every token: [`TokenManager::start`] obtains the first
//! one in the detected [`AuthMode`](nost_config::AuthMode), renews it in a
//! tokio task, and publishes each new access token
//! ([`TokenManager::subscribe_tokens`]) and what happened
//! ([`TokenManager::subscribe_events`]). It does **not** open AMQP
//! connections or send `Update-Secret` (that is `nost-amqp`'s job), does not
//! verify token signatures (it only decodes `exp`), and does not read
//! configuration files (`nost-config`).
//!
//! # Keycloak
//! - The token URL is [`KeycloakConfig::token_url`](nost_config::KeycloakConfig::token_url).
//!   Its scheme follows `servers.keycloak.tls` when written; when absent,
//!   plain HTTP only for a host that is exactly `localhost`, `127.0.0.1` or
//!   `::1`. Plain HTTP to any other host is logged as a warning.
//! - Answers longer than [`MAX_RESPONSE_BYTES`] (1 MiB) are not read
//!   ([`AuthError::ResponseTooLarge`]).
//! - TLS verification is always on (rustls). With `servers.keycloak.tls_ca_cert`
//!   that PEM bundle is the only trust anchor; otherwise the built-in webpki
//!   roots. A rejected certificate is [`AuthError::TlsCertificate`], which
//!   says to set `servers.keycloak.tls_ca_cert`.
//! - Grants send exactly `nost_tools`' form fields, client secret in the body
//!   (client_secret_post; a public client sends `client_id` alone). The odd
//!   empty `code=`, `redirect_uri=` (and `username=`/`password=` for
//!   `client_credentials`) and `scope=openid` are **kept** for
//!   byte-compatibility; Keycloak ignores them.
//! - Keycloak's `error`/`error_description` (not the HTTP status) decide the
//!   [`AuthError`]; 5xx without them is [`AuthError::ServiceUnavailable`].
//!   No message ever contains a secret, token or response body.
//!
//! # OTP
//! An OTP is sent (as `totp`) when given up front ([`AuthOptions::otp`],
//! e.g. from [`otp_from_env`] reading `NOST_OTP`). Otherwise the
//! [`OtpProvider`] (e.g. [`TerminalOtpPrompt`]) is asked only when Keycloak's
//! answer mentions `otp`, `totp`, `one-time`, `two-factor`, `2fa` or `mfa`.
//! A stock realm answers `Invalid user credentials` for a missing OTP, so
//! its users must give the OTP up front. The refresher never asks for one.
//!
//! # Renewal
//! Every `token_refresh_interval`, but never later than 80% of the access
//! token's remaining life. Failures that may pass (network, 5xx) are retried
//! with exponential backoff and jitter, never waiting past expiry
//! ([`RetryPolicy`]). One renewal at a time, whatever the number of clones
//! and [`TokenManager::renew_now`] callers; the newest refresh token is kept.
//! Without a usable refresh token a service account repeats its grant, a
//! user account repeats the password grant only if it needed no OTP at
//! start-up, and pre-acquired tokens end with [`AuthEvent::LoginExpired`].
//! Timing uses tokio's clock, so tests control it with paused time.
//!
//! [`AuthMode::Basic`](nost_config::AuthMode::Basic) has no tokens:
//! [`TokenManager::start`] refuses it with [`AuthError::NotKeycloak`].
//!
//! ```no_run
//! # async fn run(mode: nost_config::AuthMode, keycloak: nost_config::KeycloakConfig) -> Result<(), nost_auth::AuthError> {
//! use std::sync::Arc;
//! use nost_auth::{AuthOptions, TerminalOtpPrompt, TokenManager, otp_from_env};
//!
//! let options = AuthOptions {
//!     otp: otp_from_env(),
//!     otp_provider: Some(Arc::new(TerminalOtpPrompt)),
//!     ..AuthOptions::default()
//! };
//! let tokens = TokenManager::start(&mode, &keycloak, options).await?;
//! let mut updates = tokens.subscribe_tokens();
//! while updates.changed().await.is_ok() {
//!     let _new_token = updates.borrow().clone(); // hand it to the connection
//! }
//! tokens.shut_down().await;
//! # Ok(()) }
//! ```

// The public surface is the `pub use` list below (and the public modules);
// everything else is crate-private.
#![warn(unreachable_pub)]

mod error;
mod event;
mod grant;
mod issuer;
mod keycloak;
mod manager;
mod otp;
mod refresher;
mod token;

pub use error::{AuthError, FatalKind, InactiveReason};
pub use event::{AuthEvent, Renewal};
#[cfg(any(test, feature = "mock"))]
pub use issuer::MockTokenIssuer;
pub use issuer::TokenIssuer;
pub use keycloak::{KeycloakIssuer, MAX_RESPONSE_BYTES, parse_token_response};
pub use manager::{AuthOptions, FirstToken, TokenManager};
#[cfg(any(test, feature = "mock"))]
pub use otp::MockOtpProvider;
pub use otp::{OTP_ENV_VAR, OtpProvider, TerminalOtpPrompt, otp_from_env};
pub use refresher::{CLOCK_SKEW_FLOOR, RetryPolicy};
pub use token::{AccessToken, TokenSet, jwt_claims, jwt_remaining};
