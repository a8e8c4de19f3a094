//! Tokens made directly, without a grant: for pre-acquired sessions and for
//! tokens the broker must refuse (expired, wrong key, wrong scope or audience).

use serde_json::json;

use super::KeycloakEmulator;
use super::keys::{SigningKey, sign_with};
use super::state::{Subject, random_uuid};

impl KeycloakEmulator {
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
    /// `scope` claim instead of the emulator's (e.g. [`READ_ONLY_SCOPE`](super::READ_ONLY_SCOPE)).
    pub scope: Option<String>,
    /// An `extra_scope` claim.
    pub extra_scope: Option<String>,
    /// `aud` instead of [`TOKEN_AUDIENCE`](super::TOKEN_AUDIENCE); an empty list removes `aud`.
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
