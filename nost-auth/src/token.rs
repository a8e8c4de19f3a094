//! Tokens: the access token handed to connections and the pair Keycloak returns.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

/// An access token and when it expires. `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    expires_at: Option<Instant>,
}

impl AccessToken {
    /// A token expiring at `expires_at` (`None`: unknown).
    pub fn new(secret: SecretString, expires_at: Option<Instant>) -> Self {
        AccessToken { secret, expires_at }
    }

    /// A token whose expiry is read from its JWT `exp` claim (not verified).
    pub fn from_jwt(secret: SecretString) -> Self {
        let expires_at = jwt_remaining(secret.expose_secret()).map(|r| Instant::now() + r);
        AccessToken { secret, expires_at }
    }

    /// The token itself.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// When it expires, if known.
    pub fn expires_at(&self) -> Option<Instant> {
        self.expires_at
    }

    /// Time left before it expires (zero once expired), if known.
    pub fn remaining(&self) -> Option<Duration> {
        self.expires_at
            .map(|t| t.saturating_duration_since(Instant::now()))
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"[REDACTED]")
            .field("remaining", &self.remaining())
            .finish()
    }
}

/// What a token endpoint returns. `Debug` never shows the tokens.
#[derive(Clone)]
pub struct TokenSet {
    /// The access token.
    pub access_token: SecretString,
    /// Its lifetime from now: `expires_in`, else the JWT `exp` claim.
    pub expires_in: Option<Duration>,
    /// The refresh token, when one was issued (not by `client_credentials`
    /// by default).
    pub refresh_token: Option<SecretString>,
    /// The refresh token's lifetime (`None`: unknown, or 0 for offline tokens).
    pub refresh_expires_in: Option<Duration>,
}

impl TokenSet {
    /// An access token alone, its lifetime read from its JWT `exp` claim.
    pub fn from_access_token(access_token: SecretString) -> Self {
        let expires_in = jwt_remaining(access_token.expose_secret());
        TokenSet {
            access_token,
            expires_in,
            refresh_token: None,
            refresh_expires_in: None,
        }
    }

    /// Add a refresh token.
    pub fn with_refresh_token(mut self, refresh_token: SecretString) -> Self {
        self.refresh_token = Some(refresh_token);
        self
    }
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"[REDACTED]")
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish()
    }
}

/// The claims (payload) of a JWT as JSON, without verifying the signature:
/// for display and scheduling, never for trust. `None` when the token is
/// not a JWT with a base64url JSON payload.
///
/// ```
/// // {"sub":"alice","exp":1} as the payload of an unsigned token
/// let token = "e30.eyJzdWIiOiJhbGljZSIsImV4cCI6MX0.";
/// let claims = nost_auth::jwt_claims(token).unwrap();
/// assert_eq!(claims["sub"], "alice");
/// assert!(nost_auth::jwt_claims("not a token").is_none());
/// ```
pub fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Time left until a JWT's `exp` (zero when past), without verifying it.
/// `None` when the token is not a JWT or has no numeric `exp`.
pub fn jwt_remaining(token: &str) -> Option<Duration> {
    let claims = jwt_claims(token)?;
    let exp = claims.get("exp")?.as_f64()?;
    if !exp.is_finite() {
        return None;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Some(seconds(exp - now))
}

/// Non-negative, bounded seconds (ten years at most) as a duration.
pub(crate) fn seconds(s: f64) -> Duration {
    if s.is_nan() || s <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(s.min(315_360_000.0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn jwt(claims: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(r#"{"alg":"RS256"}"#),
            e.encode(claims)
        )
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn exp_is_decoded() {
        let r = jwt_remaining(&jwt(&format!(r#"{{"exp":{}}}"#, now() + 300))).unwrap();
        assert!(r > Duration::from_secs(295) && r <= Duration::from_secs(300));
        let past = jwt_remaining(&jwt(&format!(r#"{{"exp":{}}}"#, now() - 10))).unwrap();
        assert_eq!(past, Duration::ZERO);
    }

    #[test]
    fn not_a_jwt() {
        for t in [
            "",
            "abc",
            "a.b.c",
            "a.!!!.c",
            &jwt("[]"),
            &jwt(r#"{"exp":"x"}"#),
            &jwt("{}"),
        ] {
            assert_eq!(jwt_remaining(t), None, "{t}");
        }
    }

    #[test]
    fn debug_redacts() {
        let t = AccessToken::new(SecretString::from("sekret-token"), None);
        assert!(!format!("{t:?}").contains("sekret"));
        let s = TokenSet::from_access_token(SecretString::from("sekret-a"))
            .with_refresh_token(SecretString::from("sekret-r"));
        assert!(!format!("{s:?}").contains("sekret"));
    }
}
