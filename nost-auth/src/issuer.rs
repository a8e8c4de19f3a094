//! The seam between the refresher and whatever issues tokens.

use async_trait::async_trait;
use secrecy::SecretString;

use crate::error::AuthError;
use crate::token::TokenSet;

/// Something that issues tokens for one set of credentials: Keycloak
/// ([`KeycloakIssuer`](crate::KeycloakIssuer)) or a test double.
///
/// With the `mock` feature, `MockTokenIssuer` (mockall) implements it.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait TokenIssuer: Send + Sync {
    /// A new token pair by the credentials' own grant (`client_credentials`
    /// or `password`); `otp` is sent along when given. Sources that have no
    /// grant (pre-acquired tokens) answer [`AuthError::LoginExpired`].
    async fn obtain(&self, otp: Option<SecretString>) -> Result<TokenSet, AuthError>;

    /// A new token pair for a refresh token (`refresh_token` grant).
    async fn renew(&self, refresh_token: SecretString) -> Result<TokenSet, AuthError>;
}
