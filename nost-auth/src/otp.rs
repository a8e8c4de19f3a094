//! One-time passwords: given up front, from `NOST_OTP`, or typed at a prompt.

use std::io::IsTerminal;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::error::AuthError;

/// The environment variable a CLI may read the OTP from (see [`otp_from_env`]).
pub const OTP_ENV_VAR: &str = "NOST_OTP";

/// The OTP in `NOST_OTP`, if set and not blank.
///
/// Nothing in this crate calls it on its own: a program that wants the
/// variable honoured passes the result as [`AuthOptions::otp`](crate::AuthOptions::otp).
pub fn otp_from_env() -> Option<SecretString> {
    std::env::var(OTP_ENV_VAR)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .map(SecretString::from)
}

/// Asked for an OTP when Keycloak says one is needed at start-up.
///
/// It is only ever called while [`TokenManager::start`](crate::TokenManager::start)
/// logs in, never by the background refresher. With the `mock` feature,
/// `MockOtpProvider` (mockall) implements it.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait OtpProvider: Send + Sync {
    /// The current one-time password.
    async fn one_time_password(&self) -> Result<SecretString, AuthError>;
}

/// Prompts `Enter OTP: ` on the terminal with echo off (only when standard
/// input is a terminal; otherwise [`AuthError::OtpRequired`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct TerminalOtpPrompt;

#[async_trait]
impl OtpProvider for TerminalOtpPrompt {
    async fn one_time_password(&self) -> Result<SecretString, AuthError> {
        if !std::io::stdin().is_terminal() {
            return Err(AuthError::OtpRequired);
        }
        let read = tokio::task::spawn_blocking(|| rpassword::prompt_password("Enter OTP: "))
            .await
            .map_err(|e| AuthError::OtpPrompt {
                detail: e.to_string(),
                source: Some(nost_config::Cause::new(e)),
            })?
            .map_err(|e| AuthError::OtpPrompt {
                detail: e.to_string(),
                source: Some(nost_config::Cause::new(e)),
            })?;
        let code = SecretString::from(read.trim().to_string());
        if code.expose_secret().is_empty() {
            return Err(AuthError::OtpRequired);
        }
        Ok(code)
    }
}
