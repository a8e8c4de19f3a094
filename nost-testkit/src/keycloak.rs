//! A Keycloak token endpoint emulated on [`wiremock`].
//!
//! [`KeycloakEmulator`] answers
//! `POST /realms/{realm}/protocol/openid-connect/token` the way Keycloak does
//! (see `spec/keycloak.md`): `client_credentials`, `password` (with optional
//! OTP) and `refresh_token` grants, Keycloak's error codes and descriptions,
//! refresh-token rotation, session revocation and simulated outages. Access
//! tokens are real RS256 JWTs signed with a [`SigningKey`], so a RabbitMQ node
//! configured with the matching public key accepts them.
//!
//! Every behaviour switch lives in shared state and may be flipped while the
//! emulator is serving requests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Scopes granted by default: OpenID basics plus full RabbitMQ rights in the
/// three-part form topic exchanges require.
pub const DEFAULT_SCOPE: &str =
    "openid profile rabbitmq.read:*/*/* rabbitmq.write:*/*/* rabbitmq.configure:*/*/*";

/// Full RabbitMQ rights only (no OpenID scopes), three-part form.
pub const FULL_RABBITMQ_SCOPE: &str =
    "rabbitmq.read:*/*/* rabbitmq.write:*/*/* rabbitmq.configure:*/*/*";

/// Read-only RabbitMQ rights: declaring or publishing is refused with 403.
pub const READ_ONLY_SCOPE: &str = "rabbitmq.read:*/*/*";

/// Audience placed in every access token (`aud`).
pub const TOKEN_AUDIENCE: [&str; 2] = ["rabbitmq", "account"];

/// An RSA private key (PKCS#8 or PKCS#1 PEM) and the key id (`kid`) put in
/// the header of the tokens it signs.
///
/// `Debug` never prints the key material.
#[derive(Clone)]
pub struct SigningKey {
    /// The private key, PEM encoded.
    pub private_pem: String,
    /// Key id written to the JWT header.
    pub kid: String,
}

impl SigningKey {
    /// Reads a PEM private key from `path` and pairs it with `kid`.
    pub fn from_pem_file(path: &Path, kid: &str) -> std::io::Result<Self> {
        Ok(Self {
            private_pem: std::fs::read_to_string(path)?,
            kid: kid.to_owned(),
        })
    }

    /// A fresh RSA-2048 key (made with the `openssl` CLI), e.g. one the
    /// broker does not trust, for refused-token tests.
    pub fn generate(kid: &str) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let private = dir.path().join("key.pem");
        crate::broker::make_rsa_key(&private, &dir.path().join("pub.pem"))
            .map_err(std::io::Error::other)?;
        Self::from_pem_file(&private, kid)
    }

    fn encoding_key(&self) -> Result<EncodingKey, jsonwebtoken::errors::Error> {
        EncodingKey::from_rsa_pem(self.private_pem.as_bytes())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("private_pem", &"<redacted>")
            .field("kid", &self.kid)
            .finish()
    }
}

#[derive(Debug, Clone)]
struct Client {
    enabled: bool,
    secret: Option<String>,
    direct_grants: bool,
    service_account: bool,
    service_account_sub: String,
}

#[derive(Debug, Clone)]
struct User {
    password: String,
    otp: Option<String>,
    enabled: bool,
    fully_set_up: bool,
    sub: String,
}

#[derive(Debug, Clone)]
struct RefreshRecord {
    session: String,
    sub: String,
    username: Option<String>,
    client_id: String,
    expires_at: Instant,
    issued_at: i64,
    used: bool,
    /// The grant asked for `scope=openid`: refreshes carry an ID token too.
    openid: bool,
}

struct State {
    realm: String,
    issuer: String,
    kid: String,
    encoding_key: EncodingKey,
    clients: HashMap<String, Client>,
    users: HashMap<String, User>,
    stock_otp: bool,
    access_lifetime: u64,
    refresh_lifetime: u64,
    client_credentials_refresh: bool,
    rotation: bool,
    scope: String,
    extra_scope: Option<String>,
    refresh_tokens: HashMap<String, RefreshRecord>,
    revoked_sessions: HashSet<String>,
    ended_client_sessions: HashSet<String>,
    not_before: i64,
    fail_remaining: usize,
    fail_plain: bool,
    requests: Vec<BTreeMap<String, String>>,
    /// The request being answered asked for `scope=openid`.
    openid_asked: bool,
}

/// Who a token is for.
struct Subject<'a> {
    sub: &'a str,
    username: Option<&'a str>,
    client_id: &'a str,
}

impl State {
    fn claims(&self, who: &Subject<'_>, lifetime_secs: i64, session: Option<&str>) -> Value {
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

    fn sign(&self, claims: &Value) -> String {
        sign_with(&self.encoding_key, &self.kid, claims)
    }

    fn new_refresh_token(&mut self, who: &Subject<'_>, session: &str) -> String {
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
    fn token_response(
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

fn sign_with(key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key)
        .unwrap_or_else(|e| panic!("signing a JWT with key {kid:?} failed: {e}"))
}

fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    i64::try_from(secs).unwrap_or(i64::MAX / 2)
}

fn random_uuid() -> String {
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

fn random_token() -> String {
    let b: [u8; 48] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn error(status: u16, error: &str, description: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": error,
        "error_description": description,
    }))
}

const BAD_CLIENT: &str = "Invalid client or Invalid client credentials";

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The wiremock responder for the token endpoint.
struct TokenEndpoint {
    state: Arc<Mutex<State>>,
}

impl Respond for TokenEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let form: BTreeMap<String, String> = url::form_urlencoded::parse(&request.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let basic = basic_credentials(request);
        let mut state = lock(&self.state);
        state.requests.push(form.clone());
        handle(&mut state, &form, basic)
    }
}

/// Client id and secret from an `Authorization: Basic` header, if any.
fn basic_credentials(request: &Request) -> Option<(String, String)> {
    let value = request.headers.get("authorization")?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(s.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

fn handle(
    state: &mut State,
    form: &BTreeMap<String, String>,
    basic: Option<(String, String)>,
) -> ResponseTemplate {
    if state.fail_remaining > 0 {
        state.fail_remaining -= 1;
        return if state.fail_plain {
            ResponseTemplate::new(503).set_body_string("Service Unavailable")
        } else {
            error(
                503,
                "temporarily_unavailable",
                "Keycloak is temporarily unavailable (emulated outage)",
            )
        };
    }

    state.openid_asked = form
        .get("scope")
        .is_some_and(|s| s.split_whitespace().any(|w| w == "openid"));
    let Some(grant_type) = form.get("grant_type").filter(|g| !g.is_empty()) else {
        return error(400, "invalid_request", "Missing form parameter: grant_type");
    };

    // Client authentication comes first, as in Keycloak.
    let (client_id, secret) = match basic {
        Some((id, secret)) => (id, Some(secret)),
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned(),
        ),
    };
    let Some(client) = state.clients.get(&client_id).cloned().filter(|c| c.enabled) else {
        return error(401, "invalid_client", BAD_CLIENT);
    };
    if let Some(expected) = &client.secret
        && secret.as_deref() != Some(expected.as_str())
    {
        return error(401, "unauthorized_client", BAD_CLIENT);
    }

    match grant_type.as_str() {
        "client_credentials" => client_credentials(state, &client_id, &client),
        "password" => password(state, form, &client_id, &client),
        "refresh_token" => refresh(state, form, &client_id),
        _ => error(400, "unsupported_grant_type", "Unsupported grant_type"),
    }
}

fn client_credentials(state: &mut State, client_id: &str, client: &Client) -> ResponseTemplate {
    if !client.service_account {
        return error(
            401,
            "unauthorized_client",
            "Client not enabled to retrieve service account",
        );
    }
    let username = format!("service-account-{client_id}");
    let who = Subject {
        sub: &client.service_account_sub,
        username: Some(&username),
        client_id,
    };
    let session = random_uuid();
    let with_refresh = state.client_credentials_refresh;
    state.token_response(&who, &session, with_refresh)
}

fn password(
    state: &mut State,
    form: &BTreeMap<String, String>,
    client_id: &str,
    client: &Client,
) -> ResponseTemplate {
    if !client.direct_grants {
        return error(
            400,
            "unauthorized_client",
            "Client not allowed for direct access grants",
        );
    }
    let username = form.get("username").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let Some(user) = state.users.get(&username).cloned() else {
        return error(401, "invalid_grant", "Invalid user credentials");
    };
    if user.password != password {
        return error(401, "invalid_grant", "Invalid user credentials");
    }
    if !user.enabled {
        return error(400, "invalid_grant", "Account disabled");
    }
    if let Some(expected) = &user.otp {
        let given = form
            .get("otp")
            .filter(|v| !v.is_empty())
            .or_else(|| form.get("totp").filter(|v| !v.is_empty()));
        match given {
            Some(otp) if otp == expected => {}
            Some(_) if state.stock_otp => {
                return error(401, "invalid_grant", "Invalid user credentials");
            }
            None if state.stock_otp => {
                return error(401, "invalid_grant", "Invalid user credentials");
            }
            Some(_) => return error(401, "invalid_grant", "Invalid one-time password (OTP)"),
            None => {
                return error(
                    401,
                    "invalid_grant",
                    "Invalid user credentials: OTP required",
                );
            }
        }
    }
    if !user.fully_set_up {
        return error(400, "invalid_grant", "Account is not fully set up");
    }
    let who = Subject {
        sub: &user.sub,
        username: Some(&username),
        client_id,
    };
    let session = random_uuid();
    state.token_response(&who, &session, true)
}

fn refresh(
    state: &mut State,
    form: &BTreeMap<String, String>,
    client_id: &str,
) -> ResponseTemplate {
    let Some(token) = form.get("refresh_token").filter(|t| !t.is_empty()) else {
        return error(
            400,
            "invalid_request",
            "Missing form parameter: refresh_token",
        );
    };
    let Some(record) = state.refresh_tokens.get(token).cloned() else {
        return error(400, "invalid_grant", "Session not active");
    };
    if state.revoked_sessions.contains(&record.session) {
        return error(400, "invalid_grant", "Session not active");
    }
    if state.ended_client_sessions.contains(&record.session) {
        return error(400, "invalid_grant", "Client session not active");
    }
    if record.issued_at < state.not_before {
        return error(400, "invalid_grant", "Stale token");
    }
    if Instant::now() >= record.expires_at {
        return error(400, "invalid_grant", "Token is not active");
    }
    if record.client_id != client_id {
        return error(400, "invalid_grant", "Unmatching clients");
    }
    if state.rotation {
        if record.used {
            return error(
                400,
                "invalid_grant",
                "Maximum allowed refresh token reuse exceeded",
            );
        }
        if let Some(r) = state.refresh_tokens.get_mut(token) {
            r.used = true;
        }
    }
    let who = Subject {
        sub: &record.sub,
        username: record.username.as_deref(),
        client_id,
    };
    state.openid_asked = state.openid_asked || record.openid;
    state.token_response(&who, &record.session, true)
}

/// A wiremock server that answers like Keycloak's token endpoint for one
/// realm. Dropping it stops the server.
pub struct KeycloakEmulator {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for KeycloakEmulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeycloakEmulator")
            .field("token_url", &self.token_url())
            .finish_non_exhaustive()
    }
}

impl KeycloakEmulator {
    /// Starts the emulator on a free port of 127.0.0.1 for `realm`, signing
    /// access tokens with `key`.
    ///
    /// No clients or users exist yet. Defaults: access tokens live 300 s,
    /// refresh tokens 1800 s, `client_credentials` returns no refresh token,
    /// no rotation, stock OTP style, scope [`DEFAULT_SCOPE`].
    ///
    /// # Panics
    /// If `key` is not a valid RSA private key in PEM form.
    pub async fn start(realm: &str, key: SigningKey) -> KeycloakEmulator {
        let encoding_key = key
            .encoding_key()
            .unwrap_or_else(|e| panic!("KeycloakEmulator: invalid RSA private key PEM: {e}"));
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            realm: realm.to_owned(),
            issuer: format!("{}/realms/{realm}", server.uri()),
            kid: key.kid.clone(),
            encoding_key,
            clients: HashMap::new(),
            users: HashMap::new(),
            stock_otp: true,
            access_lifetime: 300,
            refresh_lifetime: 1800,
            client_credentials_refresh: false,
            rotation: false,
            scope: DEFAULT_SCOPE.to_owned(),
            extra_scope: None,
            refresh_tokens: HashMap::new(),
            revoked_sessions: HashSet::new(),
            ended_client_sessions: HashSet::new(),
            not_before: 0,
            fail_remaining: 0,
            fail_plain: false,
            requests: Vec::new(),
            openid_asked: false,
        }));
        Mock::given(method("POST"))
            .and(path(format!(
                "/realms/{realm}/protocol/openid-connect/token"
            )))
            .respond_with(TokenEndpoint {
                state: Arc::clone(&state),
            })
            .mount(&server)
            .await;
        KeycloakEmulator { server, state }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Host the emulator listens on (`"127.0.0.1"`).
    pub fn host(&self) -> String {
        self.server.address().ip().to_string()
    }

    /// Port the emulator listens on.
    pub fn port(&self) -> u16 {
        self.server.address().port()
    }

    /// Realm name.
    pub fn realm(&self) -> String {
        self.state().realm.clone()
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.uri()
    }

    /// Token issuer (`iss`), `http://127.0.0.1:PORT/realms/REALM`.
    pub fn issuer(&self) -> String {
        self.state().issuer.clone()
    }

    /// `http://127.0.0.1:PORT/realms/REALM/protocol/openid-connect/token`.
    pub fn token_url(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer())
    }

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

    /// An access token for `sub`/`client_id` with the current scopes, signed
    /// with the emulator's key. A negative lifetime gives an expired token.
    pub fn mint_access_token(&self, sub: &str, client_id: &str, lifetime_secs: i64) -> String {
        let s = self.state();
        let who = Subject {
            sub,
            username: None,
            client_id,
        };
        s.sign(&s.claims(&who, lifetime_secs, None))
    }

    /// Like [`mint_access_token`](Self::mint_access_token) with the current
    /// access lifetime, but signed by `key` (and its `kid`), e.g. a key the
    /// broker does not know.
    ///
    /// # Panics
    /// If `key` is not a valid RSA private key in PEM form.
    pub fn mint_with_key(&self, key: &SigningKey, sub: &str, client_id: &str) -> String {
        let encoding_key = key
            .encoding_key()
            .unwrap_or_else(|e| panic!("mint_with_key: invalid RSA private key PEM: {e}"));
        let s = self.state();
        let who = Subject {
            sub,
            username: None,
            client_id,
        };
        let lifetime = i64::try_from(s.access_lifetime).unwrap_or(i64::MAX / 2);
        sign_with(&encoding_key, &key.kid, &s.claims(&who, lifetime, None))
    }

    /// A fresh session for `username` on `client_id` as if a frontend had
    /// logged in: `(access_token, refresh_token)`. The user and client need
    /// not be registered; `sub` is the user's id if known, else the user name.
    pub fn issue_session(&self, username: &str, client_id: &str) -> (String, String) {
        let mut s = self.state();
        s.openid_asked = false;
        let sub = s
            .users
            .get(username)
            .map_or_else(|| username.to_owned(), |u| u.sub.clone());
        let who = Subject {
            sub: &sub,
            username: Some(username),
            client_id,
        };
        let session = random_uuid();
        let lifetime = i64::try_from(s.access_lifetime).unwrap_or(i64::MAX / 2);
        let access = s.sign(&s.claims(&who, lifetime, Some(&session)));
        let refresh = s.new_refresh_token(&who, &session);
        (access, refresh)
    }

    /// [`issue_session`](Self::issue_session) under the name the harness
    /// brief uses: tokens as if a frontend had obtained them.
    pub fn issue_session_for(&self, username: &str, client_id: &str) -> (String, String) {
        self.issue_session(username, client_id)
    }

    /// An access token shaped by `opts` (see [`TokenOptions`]).
    pub fn mint(&self, opts: &TokenOptions) -> String {
        let s = self.state();
        let who = Subject {
            sub: &opts.sub,
            username: None,
            client_id: &opts.client_id,
        };
        let lifetime = opts
            .lifetime_secs
            .unwrap_or_else(|| i64::try_from(s.access_lifetime).unwrap_or(i64::MAX / 2));
        let mut claims = s.claims(&who, lifetime, None);
        if let Some(map) = claims.as_object_mut() {
            if let Some(scope) = &opts.scope {
                map.insert("scope".into(), json!(scope));
            }
            if let Some(extra) = &opts.extra_scope {
                map.insert("extra_scope".into(), json!(extra));
            }
            match &opts.audience {
                Some(aud) if aud.is_empty() => {
                    map.remove("aud");
                }
                Some(aud) => {
                    map.insert("aud".into(), json!(aud));
                }
                None => {}
            }
        }
        match &opts.key {
            Some(key) => {
                let encoding_key = key
                    .encoding_key()
                    .unwrap_or_else(|e| panic!("mint: invalid RSA private key PEM: {e}"));
                sign_with(&encoding_key, &key.kid, &claims)
            }
            None => s.sign(&claims),
        }
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.state().requests.clear();
    }

    /// Form bodies received by the token endpoint, in order (including
    /// requests answered with an error or an emulated outage).
    pub fn requests(&self) -> Vec<BTreeMap<String, String>> {
        self.state().requests.clone()
    }

    /// How many received requests had this `grant_type`.
    pub fn request_count(&self, grant_type: &str) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|r| r.get("grant_type").map(String::as_str) == Some(grant_type))
            .count()
    }
}

/// What [`KeycloakEmulator::mint`] puts in a token. `Default` gives
/// `sub`/`client_id` "test-client" with the emulator's current scopes,
/// lifetime, audience and key.
#[derive(Debug, Clone)]
pub struct TokenOptions {
    /// `sub` claim.
    pub sub: String,
    /// `client_id` and `azp` claims (the broker's user name).
    pub client_id: String,
    /// Seconds until `exp` (negative: already expired); `None`: the
    /// emulator's access lifetime.
    pub lifetime_secs: Option<i64>,
    /// `scope` claim instead of the emulator's (e.g. [`READ_ONLY_SCOPE`]).
    pub scope: Option<String>,
    /// An `extra_scope` claim.
    pub extra_scope: Option<String>,
    /// `aud` instead of [`TOKEN_AUDIENCE`]; an empty list removes `aud`.
    pub audience: Option<Vec<String>>,
    /// Sign with this key (and its `kid`) instead of the emulator's.
    pub key: Option<SigningKey>,
}

impl Default for TokenOptions {
    fn default() -> Self {
        TokenOptions {
            sub: "test-client".into(),
            client_id: "test-client".into(),
            lifetime_secs: None,
            scope: None,
            extra_scope: None,
            audience: None,
            key: None,
        }
    }
}

type Setup = Box<dyn FnOnce(&KeycloakEmulator) + Send>;

/// Builds a [`KeycloakEmulator`] with clients, users and switches set
/// before the first request: `KeycloakEmulator::builder(key).realm("NOS-T")
/// .client("svc", Some("secret")).user("alice", "pw").start().await`.
/// Everything can still be changed on the running emulator.
pub struct KeycloakBuilder {
    realm: String,
    key: SigningKey,
    setup: Vec<Setup>,
}

impl fmt::Debug for KeycloakBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeycloakBuilder")
            .field("realm", &self.realm)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl KeycloakEmulator {
    /// A builder for realm "NOS-T" signing with `key`.
    pub fn builder(key: SigningKey) -> KeycloakBuilder {
        KeycloakBuilder {
            realm: "NOS-T".into(),
            key,
            setup: Vec::new(),
        }
    }
}

impl KeycloakBuilder {
    fn then(mut self, f: impl FnOnce(&KeycloakEmulator) + Send + 'static) -> Self {
        self.setup.push(Box::new(f));
        self
    }

    /// Realm name (default "NOS-T").
    pub fn realm(mut self, realm: &str) -> Self {
        realm.clone_into(&mut self.realm);
        self
    }

    /// A client; `secret: None` makes a public client. See
    /// [`KeycloakEmulator::add_client`].
    pub fn client(self, id: &str, secret: Option<&str>) -> Self {
        let (id, secret) = (id.to_owned(), secret.map(str::to_owned));
        self.then(move |kc| kc.add_client(&id, secret.as_deref()))
    }

    /// See [`KeycloakEmulator::set_client_flags`].
    pub fn client_flags(self, id: &str, direct_grants: bool, service_account: bool) -> Self {
        let id = id.to_owned();
        self.then(move |kc| kc.set_client_flags(&id, direct_grants, service_account))
    }

    /// A user; `otp: Some(code)` requires that one-time password.
    pub fn user(self, username: &str, password: &str, otp: Option<&str>) -> Self {
        let (u, p, o) = (
            username.to_owned(),
            password.to_owned(),
            otp.map(str::to_owned),
        );
        self.then(move |kc| {
            kc.add_user(&u, &p);
            kc.set_user_otp(&u, o.as_deref());
        })
    }

    /// See [`KeycloakEmulator::set_otp_style`].
    pub fn stock_otp(self, stock: bool) -> Self {
        self.then(move |kc| kc.set_otp_style(stock))
    }

    /// See [`KeycloakEmulator::set_access_lifetime`].
    pub fn access_lifetime(self, secs: u64) -> Self {
        self.then(move |kc| kc.set_access_lifetime(secs))
    }

    /// See [`KeycloakEmulator::set_refresh_lifetime`].
    pub fn refresh_lifetime(self, secs: u64) -> Self {
        self.then(move |kc| kc.set_refresh_lifetime(secs))
    }

    /// See [`KeycloakEmulator::set_client_credentials_refresh`].
    pub fn client_credentials_refresh(self, on: bool) -> Self {
        self.then(move |kc| kc.set_client_credentials_refresh(on))
    }

    /// See [`KeycloakEmulator::set_rotation`].
    pub fn rotation(self, on: bool) -> Self {
        self.then(move |kc| kc.set_rotation(on))
    }

    /// See [`KeycloakEmulator::set_scopes`].
    pub fn scopes(self, scope: &str, extra_scope: Option<&str>) -> Self {
        let (s, e) = (scope.to_owned(), extra_scope.map(str::to_owned));
        self.then(move |kc| kc.set_scopes(&s, e.as_deref()))
    }

    /// Starts the emulator and applies the settings.
    pub async fn start(self) -> KeycloakEmulator {
        let kc = KeycloakEmulator::start(&self.realm, self.key).await;
        for f in self.setup {
            f(&kc);
        }
        kc
    }
}
