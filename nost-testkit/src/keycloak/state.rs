//! The emulator's realm: clients, users, sessions, refresh tokens and the
//! behaviour switches, and how access tokens are built from them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};
use wiremock::ResponseTemplate;

use super::TOKEN_AUDIENCE;
use super::keys::sign_with;

#[derive(Debug, Clone)]
pub(super) struct Client {
    pub(super) enabled: bool,
    pub(super) secret: Option<String>,
    pub(super) direct_grants: bool,
    pub(super) service_account: bool,
    pub(super) service_account_sub: String,
}

#[derive(Debug, Clone)]
pub(super) struct User {
    pub(super) password: String,
    pub(super) otp: Option<String>,
    pub(super) enabled: bool,
    pub(super) fully_set_up: bool,
    pub(super) sub: String,
}

#[derive(Debug, Clone)]
pub(super) struct RefreshRecord {
    pub(super) session: String,
    pub(super) sub: String,
    pub(super) username: Option<String>,
    pub(super) client_id: String,
    pub(super) expires_at: Instant,
    pub(super) issued_at: i64,
    pub(super) used: bool,
    /// The grant asked for `scope=openid`: refreshes carry an ID token too.
    pub(super) openid: bool,
}

pub(super) struct State {
    pub(super) realm: String,
    pub(super) issuer: String,
    pub(super) kid: String,
    pub(super) encoding_key: EncodingKey,
    pub(super) clients: HashMap<String, Client>,
    pub(super) users: HashMap<String, User>,
    pub(super) stock_otp: bool,
    pub(super) access_lifetime: u64,
    pub(super) refresh_lifetime: u64,
    pub(super) client_credentials_refresh: bool,
    pub(super) rotation: bool,
    pub(super) scope: String,
    pub(super) extra_scope: Option<String>,
    pub(super) refresh_tokens: HashMap<String, RefreshRecord>,
    pub(super) revoked_sessions: HashSet<String>,
    pub(super) ended_client_sessions: HashSet<String>,
    pub(super) not_before: i64,
    pub(super) fail_remaining: usize,
    pub(super) fail_plain: bool,
    pub(super) requests: Vec<BTreeMap<String, String>>,
    /// The request being answered asked for `scope=openid`.
    pub(super) openid_asked: bool,
}

/// Who a token is for.
pub(super) struct Subject<'a> {
    pub(super) sub: &'a str,
    pub(super) username: Option<&'a str>,
    pub(super) client_id: &'a str,
}

impl State {
    pub(super) fn claims(
        &self,
        who: &Subject<'_>,
        lifetime_secs: i64,
        session: Option<&str>,
    ) -> Value {
        let now = unix_now();
        let mut claims = json!({
            "exp": now + lifetime_secs,
            "iat": now,
            "jti": random_uuid(),
            "iss": self.issuer,
            "aud": TOKEN_AUDIENCE,
            "sub": who.sub,
            "typ": "Bearer",
            "azp": who.client_id,
            "client_id": who.client_id,
            "scope": self.scope,
        });
        if let Some(map) = claims.as_object_mut() {
            if let Some(extra) = &self.extra_scope {
                map.insert("extra_scope".into(), json!(extra));
            }
            if let Some(username) = who.username {
                map.insert("preferred_username".into(), json!(username));
            }
            if let Some(session) = session {
                map.insert("sid".into(), json!(session));
                map.insert("session_state".into(), json!(session));
            }
        }
        claims
    }

    pub(super) fn sign(&self, claims: &Value) -> String {
        sign_with(&self.encoding_key, &self.kid, claims)
    }

    pub(super) fn new_refresh_token(&mut self, who: &Subject<'_>, session: &str) -> String {
        let token = random_token();
        self.refresh_tokens.insert(
            token.clone(),
            RefreshRecord {
                session: session.to_owned(),
                sub: who.sub.to_owned(),
                username: who.username.map(str::to_owned),
                client_id: who.client_id.to_owned(),
                expires_at: Instant::now() + Duration::from_secs(self.refresh_lifetime),
                issued_at: unix_now(),
                used: false,
                openid: self.openid_asked,
            },
        );
        token
    }

    /// Builds the 200 answer for a grant; `with_refresh` decides whether a
    /// refresh token is included. When the grant asked for `scope=openid`
    /// (`self.openid_asked`), the scope starts with `openid` and an
    /// `id_token` comes back, as Keycloak does.
    pub(super) fn token_response(
        &mut self,
        who: &Subject<'_>,
        session: &str,
        with_refresh: bool,
    ) -> ResponseTemplate {
        let lifetime = i64::try_from(self.access_lifetime).unwrap_or(i64::MAX / 2);
        let saved_scope = self.scope.clone();
        if self.openid_asked && !self.scope.split_whitespace().any(|w| w == "openid") {
            self.scope = format!("openid {}", self.scope);
        }
        let access = self.sign(&self.claims(who, lifetime, Some(session)));
        let mut body = json!({
            "access_token": access,
            "expires_in": self.access_lifetime,
            "refresh_expires_in": if with_refresh { self.refresh_lifetime } else { 0 },
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": session,
            "scope": self.scope,
        });
        if self.openid_asked {
            let now = unix_now();
            let id_token = self.sign(&json!({
                "exp": now + lifetime,
                "iat": now,
                "jti": random_uuid(),
                "iss": self.issuer,
                "aud": who.client_id,
                "sub": who.sub,
                "typ": "ID",
                "azp": who.client_id,
                "sid": session,
            }));
            if let Some(map) = body.as_object_mut() {
                map.insert("id_token".into(), json!(id_token));
            }
        }
        self.scope = saved_scope;
        if with_refresh {
            let refresh = self.new_refresh_token(who, session);
            if let Some(map) = body.as_object_mut() {
                map.insert("refresh_token".into(), json!(refresh));
            }
        }
        ResponseTemplate::new(200).set_body_json(body)
    }
}

pub(super) fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    i64::try_from(secs).unwrap_or(i64::MAX / 2)
}

pub(super) fn random_uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub(super) fn random_token() -> String {
    let b: [u8; 48] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
