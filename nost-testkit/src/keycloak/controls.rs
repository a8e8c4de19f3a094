//! Switches on a running emulator: clients, users, lifetimes, rotation,
//! scopes, revocations and emulated outages.

use super::KeycloakEmulator;
use super::state::{Client, User, random_uuid, unix_now};

impl KeycloakEmulator {
    /// Adds (or replaces) a client. `secret: None` makes a public client.
    /// Direct grants and the service account are enabled.
    pub fn add_client(&self, id: &str, secret: Option<&str>) {
        self.state().clients.insert(
            id.to_owned(),
            Client {
                enabled: true,
                secret: secret.map(str::to_owned),
                direct_grants: true,
                service_account: true,
                service_account_sub: random_uuid(),
            },
        );
    }

    /// Enables or disables direct access grants (password grant) and the
    /// service account (client_credentials grant) of a known client.
    pub fn set_client_flags(&self, id: &str, direct_grants: bool, service_account: bool) {
        if let Some(c) = self.state().clients.get_mut(id) {
            c.direct_grants = direct_grants;
            c.service_account = service_account;
        }
    }

    /// Enables or disables a known client; a disabled client gets
    /// `invalid_client` like an unknown one.
    pub fn set_client_enabled(&self, id: &str, enabled: bool) {
        if let Some(c) = self.state().clients.get_mut(id) {
            c.enabled = enabled;
        }
    }

    /// Adds (or replaces) an enabled, fully set up user without OTP.
    pub fn add_user(&self, username: &str, password: &str) {
        self.state().users.insert(
            username.to_owned(),
            User {
                password: password.to_owned(),
                otp: None,
                enabled: true,
                fully_set_up: true,
                sub: random_uuid(),
            },
        );
    }

    /// Requires (or, with `None`, stops requiring) this one-time password
    /// for the user's password grants. Read from form field `otp`, else
    /// `totp`.
    pub fn set_user_otp(&self, username: &str, otp: Option<&str>) {
        if let Some(u) = self.state().users.get_mut(username) {
            u.otp = otp.map(str::to_owned);
        }
    }

    /// Sets whether the user is enabled and whether no required actions are
    /// pending.
    pub fn set_user_state(&self, username: &str, enabled: bool, fully_set_up: bool) {
        if let Some(u) = self.state().users.get_mut(username) {
            u.enabled = enabled;
            u.fully_set_up = fully_set_up;
        }
    }

    /// `stock = true` (default): a missing or wrong OTP gets
    /// `invalid_grant`/`Invalid user credentials`, like a stock realm.
    /// `false`: a customised flow answering `Invalid user credentials: OTP
    /// required` (missing) or `Invalid one-time password (OTP)` (wrong).
    pub fn set_otp_style(&self, stock: bool) {
        self.state().stock_otp = stock;
    }

    /// Access token lifetime for grants (`expires_in` and JWT `exp`).
    pub fn set_access_lifetime(&self, secs: u64) {
        self.state().access_lifetime = secs;
    }

    /// Refresh token lifetime for tokens issued from now on
    /// (`refresh_expires_in`); 0 makes them expire at once.
    pub fn set_refresh_lifetime(&self, secs: u64) {
        self.state().refresh_lifetime = secs;
    }

    /// Whether `client_credentials` answers include a refresh token
    /// (default `false`, like Keycloak ≥ 12).
    pub fn set_client_credentials_refresh(&self, on: bool) {
        self.state().client_credentials_refresh = on;
    }

    /// "Revoke Refresh Token": each refresh token can be used once; reuse
    /// gets `Maximum allowed refresh token reuse exceeded`.
    pub fn set_rotation(&self, on: bool) {
        self.state().rotation = on;
    }

    /// Scopes put in the `scope` claim and answer field, and an optional
    /// Keycloak-mapped `extra_scope` claim.
    pub fn set_scopes(&self, scope: &str, extra_scope: Option<&str>) {
        let mut s = self.state();
        s.scope = scope.to_owned();
        s.extra_scope = extra_scope.map(str::to_owned);
    }

    /// Ends every existing session: all refresh tokens issued so far get
    /// `invalid_grant`/`Session not active`. New logins work.
    pub fn revoke_sessions(&self) {
        let mut s = self.state();
        let sessions: Vec<String> = s
            .refresh_tokens
            .values()
            .map(|r| r.session.clone())
            .collect();
        s.revoked_sessions.extend(sessions);
    }

    /// Ends the client sessions (not the SSO sessions) of every refresh
    /// token issued to `client_id` so far: refreshing them gets
    /// `invalid_grant`/`Client session not active`.
    pub fn end_client_sessions(&self, client_id: &str) {
        let mut s = self.state();
        let sessions: Vec<String> = s
            .refresh_tokens
            .values()
            .filter(|r| r.client_id == client_id)
            .map(|r| r.session.clone())
            .collect();
        s.ended_client_sessions.extend(sessions);
    }

    /// A realm "not before" revocation: every refresh token issued before
    /// the next second gets `invalid_grant`/`Stale token`.
    pub fn revoke_tokens_issued_before_now(&self) {
        let mut s = self.state();
        s.not_before = unix_now() + 1;
    }

    /// The next `n` requests get 503 with a JSON
    /// `temporarily_unavailable` error body.
    pub fn fail_next(&self, n: usize) {
        let mut s = self.state();
        s.fail_remaining = n;
        s.fail_plain = false;
    }

    /// The next `n` requests get 503 with a plain-text body, like a reverse
    /// proxy in front of a stopped Keycloak.
    pub fn fail_next_plain(&self, n: usize) {
        let mut s = self.state();
        s.fail_remaining = n;
        s.fail_plain = true;
    }
}
