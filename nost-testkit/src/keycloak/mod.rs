//! A Keycloak token endpoint emulated on [`wiremock`].
//!
//! [`KeycloakEmulator`] answers
//! `POST /realms/{realm}/protocol/openid-connect/token` the way Keycloak does
//! (as measured against Keycloak 26.4.0 by the `keycloak_conformance` suite): `client_credentials`, `password` (with optional
//! OTP) and `refresh_token` grants, Keycloak's error codes and descriptions,
//! refresh-token rotation, session revocation and simulated outages. Access
//! tokens are real RS256 JWTs signed with a [`SigningKey`], so a RabbitMQ node
//! configured with the matching public key accepts them.
//!
//! Every behaviour switch lives in shared state and may be flipped while the
//! emulator is serving requests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

mod builder;
mod controls;
mod grants;
mod keys;
mod mint;
mod state;

pub use builder::KeycloakBuilder;
use grants::TokenEndpoint;
pub use keys::SigningKey;
pub use mint::TokenOptions;
use state::State;

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

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
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
