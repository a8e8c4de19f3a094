//! Typed errors, and how Keycloak's error JSON maps onto them.
//!
//! Every message says what to do next and never contains a secret, a token,
//! a password or a response body (only Keycloak's `error` code and, for
//! unrecognised errors, its short `error_description`).

use std::fmt;

use nost_config::Cause;

/// Why Keycloak no longer accepts a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InactiveReason {
    /// `Token is not active`: the refresh token has expired.
    TokenNotActive,
    /// `Session not active`: Keycloak's SSO session (the user's login)
    /// ended. The variants are named after Keycloak's own words.
    SessionNotActive,
    /// `Client session not active`: Keycloak's session of this client ended.
    ClientSessionNotActive,
    /// `Stale token`: issued before a revocation (not-before policy).
    StaleToken,
    /// `Unmatching clients`: issued to another client.
    UnmatchingClients,
    /// `Maximum allowed refresh token reuse exceeded`: an old rotated token.
    ReuseExceeded,
    /// Another `invalid_grant` answer to a refresh (e.g. `Invalid refresh token`).
    Rejected,
}

impl fmt::Display for InactiveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InactiveReason::TokenNotActive => "the refresh token has expired (Token is not active)",
            InactiveReason::SessionNotActive => {
                "the SSO session has ended: idle or maximum lifetime reached, logout, or revocation (Session not active)"
            }
            InactiveReason::ClientSessionNotActive => {
                "the client session has ended (Client session not active)"
            }
            InactiveReason::StaleToken => {
                "the token predates a revocation in Keycloak (Stale token)"
            }
            InactiveReason::UnmatchingClients => {
                "the refresh token was issued to another client; CLIENT_ID must name the client that issued it (Unmatching clients)"
            }
            InactiveReason::ReuseExceeded => {
                "an old refresh token was used again after rotation; only the newest one is valid (Maximum allowed refresh token reuse exceeded)"
            }
            InactiveReason::Rejected => "Keycloak no longer accepts the refresh token",
        })
    }
}

/// Everything that can go wrong while obtaining or renewing tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// `invalid_grant` / `Invalid user credentials`.
    #[error("{}", invalid_credentials_text(*otp_sent))]
    InvalidCredentials {
        /// Whether a one-time password was sent with the request.
        otp_sent: bool,
    },
    /// Keycloak's answer mentions an OTP and none was sent (or none could be read).
    #[error(
        "Keycloak requires a one-time password (OTP) for this account and none was given: set the NOST_OTP environment variable or pass the OTP (the `otp` option), or run interactively to be prompted"
    )]
    OtpRequired,
    /// Keycloak's answer mentions an OTP and one was sent.
    #[error(
        "Keycloak rejected the one-time password (OTP): it may be wrong or expired; try again with the current code"
    )]
    OtpRejected,
    /// The OTP prompt failed.
    #[error("could not read the one-time password from the terminal: {detail}")]
    OtpPrompt {
        /// What went wrong (no input is ever echoed here).
        detail: String,
        /// The terminal's error.
        #[source]
        source: Option<Cause>,
    },
    /// `invalid_grant` / `Account disabled`.
    #[error("the Keycloak account is disabled: ask the realm administrator to enable it")]
    AccountDisabled,
    /// `invalid_grant` / `Account is not fully set up`.
    #[error(
        "the Keycloak account is not fully set up (required actions are pending, e.g. update the password, configure OTP, verify the e-mail): log in once through the Keycloak account console to complete them, then retry"
    )]
    AccountNotFullySetUp,
    /// `unauthorized_client` / `Client not allowed for direct access grants`.
    #[error(
        "Keycloak client '{client_id}' does not allow direct access grants (the password grant): enable \"Direct access grants\" for this client in Keycloak, or use a service account"
    )]
    DirectGrantsDisabled {
        /// `CLIENT_ID`.
        client_id: String,
    },
    /// The client has no service account (`…service account…`).
    #[error(
        "Keycloak client '{client_id}' has no service account: enable \"Service accounts roles\" (client authentication on) for this client in Keycloak, or use a user account"
    )]
    ServiceAccountDisabled {
        /// `CLIENT_ID`.
        client_id: String,
    },
    /// `invalid_client` or `unauthorized_client` / `Invalid client or Invalid client credentials`.
    #[error(
        "Keycloak does not accept client '{client_id}' with the configured credentials: check CLIENT_ID and CLIENT_SECRET_KEY (the client may be unknown or disabled, or its secret may have been regenerated)"
    )]
    InvalidClient {
        /// `CLIENT_ID`.
        client_id: String,
    },
    /// A refresh was refused because the login or the refresh token is over.
    #[error("Keycloak no longer accepts the refresh token: {reason}")]
    RefreshTokenInactive {
        /// Which answer Keycloak gave.
        reason: InactiveReason,
    },
    /// The login cannot be renewed without the user (pre-acquired tokens,
    /// or a user account that needed an OTP).
    #[error("the Keycloak login has expired{}: {hint}", reason.map(|r| format!(" ({r})")).unwrap_or_default())]
    LoginExpired {
        /// Keycloak's refusal of the last refresh, if that is how it ended.
        reason: Option<InactiveReason>,
        /// What the user should do.
        hint: &'static str,
    },
    /// Keycloak answered 5xx (or `temporarily_unavailable` / `server_error`).
    #[error(
        "Keycloak is unavailable (HTTP {status}); this is usually temporary, renewal is retried"
    )]
    ServiceUnavailable {
        /// The HTTP status.
        status: u16,
    },
    /// No HTTP answer (connection refused, DNS, timeout, TLS handshake).
    #[error("cannot reach Keycloak at {url}: {detail}; check servers.keycloak.host, port and tls")]
    Transport {
        /// The token endpoint.
        url: String,
        /// The innermost error's words.
        detail: String,
        /// The HTTP client's error.
        #[source]
        source: Option<Cause>,
    },
    /// Keycloak's TLS certificate was not accepted.
    #[error(
        "Keycloak's TLS certificate at {url} was not accepted ({detail}); if Keycloak uses a private or self-signed CA, set servers.keycloak.tls_ca_cert to the PEM file of that CA (TLS verification cannot be turned off)"
    )]
    TlsCertificate {
        /// The token endpoint.
        url: String,
        /// The verifier's complaint.
        detail: String,
        /// The HTTP client's error (the TLS library's refusal is in its
        /// chain: [`Cause::find`]).
        #[source]
        source: Option<Cause>,
    },
    /// `servers.keycloak.tls_ca_cert` cannot be used.
    #[error(
        "cannot use servers.keycloak.tls_ca_cert '{path}': {detail}; it must name a PEM file holding the CA certificate(s) that signed Keycloak's certificate"
    )]
    CaCert {
        /// The configured path.
        path: String,
        /// What is wrong with it.
        detail: String,
        /// The error reading or parsing it, if there was one.
        #[source]
        source: Option<Cause>,
    },
    /// An answer that is not what Keycloak sends.
    #[error(
        "Keycloak's answer (HTTP {status}) could not be understood: {what}; check that servers.keycloak (host, port, realm, tls) points at Keycloak"
    )]
    MalformedResponse {
        /// The HTTP status.
        status: u16,
        /// What was wrong with it.
        what: &'static str,
    },
    /// Keycloak's answer was longer than the limit and was not read further.
    #[error(
        "Keycloak's answer (HTTP {status}) is longer than {limit} bytes and was not read; check that servers.keycloak (host, port, realm) points at Keycloak's token endpoint and not at another server"
    )]
    ResponseTooLarge {
        /// The HTTP status.
        status: u16,
        /// The limit in bytes.
        limit: usize,
    },
    /// A Keycloak error this crate does not know.
    #[error("Keycloak refused the request: {error}{}", if description.is_empty() { String::new() } else { format!(" ({description})") })]
    Rejected {
        /// Keycloak's `error` code.
        error: String,
        /// Keycloak's `error_description`, shortened.
        description: String,
    },
    /// Basic mode has no tokens.
    #[error(
        "basic authentication (servers.rabbitmq.keycloak_authentication: false) uses the RabbitMQ USERNAME and PASSWORD directly; there are no Keycloak tokens to manage"
    )]
    NotKeycloak,
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client for Keycloak: {detail}")]
    Client {
        /// The reason.
        detail: String,
        /// The HTTP client's error.
        #[source]
        source: Option<Cause>,
    },
    /// The token manager was shut down.
    #[error("the token manager has been shut down")]
    ShutDown,
}

fn invalid_credentials_text(otp_sent: bool) -> &'static str {
    if otp_sent {
        "Keycloak rejected the credentials: check USERNAME, PASSWORD and the one-time password (OTP codes expire after a short time; use the current one)"
    } else {
        "Keycloak rejected the username or password (Invalid user credentials): check USERNAME and PASSWORD. If the account uses a one-time password, a stock Keycloak realm gives this same answer for a missing OTP: supply it up front with the NOST_OTP environment variable or the `otp` option"
    }
}

impl AuthError {
    /// Whether trying again later may succeed (network, 5xx, unknown answers).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            AuthError::ServiceUnavailable { .. }
                | AuthError::Transport { .. }
                | AuthError::MalformedResponse { .. }
                | AuthError::ResponseTooLarge { .. }
                | AuthError::Rejected { .. }
        )
    }

    /// Whether Keycloak refused a refresh token that can never work again.
    pub fn is_refresh_token_inactive(&self) -> bool {
        matches!(self, AuthError::RefreshTokenInactive { .. })
    }

    /// Why renewal can no longer succeed, when it cannot; `None` for a
    /// failure that may pass ([`is_retryable`](Self::is_retryable)) and for
    /// [`AuthError::ShutDown`].
    pub fn fatal_kind(&self) -> Option<FatalKind> {
        if self.is_retryable() {
            return None;
        }
        Some(match self {
            AuthError::ShutDown => return None,
            AuthError::LoginExpired { .. } | AuthError::RefreshTokenInactive { .. } => {
                FatalKind::LoginExpired
            }
            AuthError::InvalidCredentials { .. }
            | AuthError::OtpRequired
            | AuthError::OtpRejected
            | AuthError::AccountDisabled
            | AuthError::AccountNotFullySetUp => FatalKind::CredentialsRejected,
            AuthError::InvalidClient { .. }
            | AuthError::DirectGrantsDisabled { .. }
            | AuthError::ServiceAccountDisabled { .. } => FatalKind::ClientRejected,
            _ => FatalKind::Other,
        })
    }
}

/// Why a Keycloak login can no longer be renewed (see
/// [`AuthError::fatal_kind`]): the application cannot go on without the
/// user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FatalKind {
    /// The login is over (Keycloak's SSO session maximum reached, logout,
    /// revoked or expired refresh token, pre-acquired tokens that ran out).
    LoginExpired,
    /// Keycloak refuses the user's credentials (password changed, account
    /// disabled, an OTP needed).
    CredentialsRejected,
    /// Keycloak refuses the client (secret regenerated, client disabled or
    /// deleted, grant type not allowed).
    ClientRejected,
    /// Another failure retrying cannot fix (TLS trust, configuration).
    Other,
}

impl FatalKind {
    /// `login_expired`, `credentials_rejected`, `client_rejected`, `other`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FatalKind::LoginExpired => "login_expired",
            FatalKind::CredentialsRejected => "credentials_rejected",
            FatalKind::ClientRejected => "client_rejected",
            FatalKind::Other => "other",
        }
    }

    /// What the user has to do.
    pub fn advice(&self) -> &'static str {
        match self {
            FatalKind::LoginExpired => {
                "log in again (start the application again; with pre-acquired tokens, obtain fresh ones from the user's login)"
            }
            FatalKind::CredentialsRejected => {
                "check USERNAME and PASSWORD (and the one-time password) in .env, then start again"
            }
            FatalKind::ClientRejected => {
                "check CLIENT_ID and CLIENT_SECRET_KEY in .env (the secret may have been regenerated in Keycloak), then start again"
            }
            FatalKind::Other => "fix the cause named above, then start again",
        }
    }
}

impl fmt::Display for FatalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the request was, for classifying Keycloak's answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    /// A password grant (OTP keywords are only looked for there).
    pub password_grant: bool,
    /// A refresh grant.
    pub refresh_grant: bool,
    /// An OTP was sent.
    pub otp_sent: bool,
    /// The client id, for messages.
    pub client_id: &'a str,
}

/// The OTP keywords of `nost_tools`, plus `one-time` (case-insensitive).
pub(crate) fn mentions_otp(text: &str) -> bool {
    let t = text.to_lowercase();
    ["otp", "totp", "one-time", "two-factor", "2fa", "mfa"]
        .iter()
        .any(|k| t.contains(k))
}

/// Map Keycloak's `error` / `error_description` to a typed error.
pub(crate) fn classify(error: &str, description: &str, status: u16, req: Request<'_>) -> AuthError {
    let e = error.to_ascii_lowercase();
    let d = description.to_lowercase();
    let client_id = req.client_id.to_string();

    let inactive = if d.contains("token is not active") {
        Some(InactiveReason::TokenNotActive)
    } else if d.contains("client session not active")
        || d.contains("session doesn't have required client")
    {
        // The latter: Keycloak 26 after it revoked the client session
        // (e.g. a rotated refresh token was reused).
        Some(InactiveReason::ClientSessionNotActive)
    } else if d.contains("session not active") {
        Some(InactiveReason::SessionNotActive)
    } else if d.contains("stale token") {
        Some(InactiveReason::StaleToken)
    } else if d.contains("unmatching clients")
        || d.contains("token client and authorized client don't match")
    {
        // Keycloak 26 says "Invalid refresh token. Token client and
        // authorized client don't match"; older ones "Unmatching clients".
        Some(InactiveReason::UnmatchingClients)
    } else if d.contains("refresh token reuse") {
        Some(InactiveReason::ReuseExceeded)
    } else {
        None
    };
    if let Some(reason) = inactive {
        return AuthError::RefreshTokenInactive { reason };
    }
    if d.contains("account disabled") {
        return AuthError::AccountDisabled;
    }
    if d.contains("not fully set up") {
        return AuthError::AccountNotFullySetUp;
    }
    if d.contains("service account") {
        return AuthError::ServiceAccountDisabled { client_id };
    }
    if d.contains("direct access grant") {
        return AuthError::DirectGrantsDisabled { client_id };
    }
    if req.password_grant && (mentions_otp(&e) || mentions_otp(&d)) {
        return if req.otp_sent {
            AuthError::OtpRejected
        } else {
            AuthError::OtpRequired
        };
    }
    if e == "invalid_client" || d.contains("invalid client") {
        return AuthError::InvalidClient { client_id };
    }
    if e == "invalid_grant" {
        if req.refresh_grant {
            return AuthError::RefreshTokenInactive {
                reason: InactiveReason::Rejected,
            };
        }
        if req.password_grant {
            return AuthError::InvalidCredentials {
                otp_sent: req.otp_sent,
            };
        }
    }
    if e == "temporarily_unavailable" || e == "server_error" {
        return AuthError::ServiceUnavailable { status };
    }
    AuthError::Rejected {
        error: printable(error, 64),
        description: printable(description, 200),
    }
}

fn printable(s: &str, max: usize) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: Request<'static> = Request {
        password_grant: true,
        refresh_grant: false,
        otp_sent: false,
        client_id: "c",
    };

    #[test]
    fn keycloak_26_wording_of_another_clients_refresh_token_is_recognised() {
        let refresh = Request {
            password_grant: false,
            refresh_grant: true,
            ..PW
        };
        let e = classify(
            "invalid_grant",
            "Invalid refresh token. Token client and authorized client don't match",
            400,
            refresh,
        );
        assert_eq!(
            e,
            AuthError::RefreshTokenInactive {
                reason: InactiveReason::UnmatchingClients
            }
        );
        let e = classify(
            "invalid_grant",
            "Session doesn't have required client",
            400,
            refresh,
        );
        assert_eq!(
            e,
            AuthError::RefreshTokenInactive {
                reason: InactiveReason::ClientSessionNotActive
            }
        );
    }

    #[test]
    fn otp_keywords() {
        for t in [
            "Invalid OTP",
            "TOTP required",
            "One-Time code",
            "Two-Factor",
            "2FA",
            "MFA needed",
        ] {
            assert!(mentions_otp(t), "{t}");
        }
        assert!(!mentions_otp("Invalid user credentials"));
    }

    #[test]
    fn otp_only_looked_for_on_password_grants() {
        let r = Request {
            password_grant: false,
            ..PW
        };
        assert!(matches!(
            classify("invalid_grant", "otp missing", 400, r),
            AuthError::Rejected { .. }
        ));
        assert_eq!(
            classify("invalid_grant", "otp missing", 400, PW),
            AuthError::OtpRequired
        );
        let sent = Request {
            otp_sent: true,
            ..PW
        };
        assert_eq!(
            classify("invalid_grant", "Invalid TOTP", 401, sent),
            AuthError::OtpRejected
        );
    }

    #[test]
    fn unknown_errors_are_shortened() {
        let long = "x".repeat(500);
        let e = classify("weird\n", &long, 400, PW);
        let text = e.to_string();
        assert!(text.len() < 400, "{text}");
        assert!(!text.contains('\n'));
    }
}
