//! The `NOS-T` realm the real-Keycloak suites import ([`NostRealm`]), and
//! RFC 6238 TOTP codes for its OTP user ([`totp`]).
//!
//! The realm is shaped like NOS-T's deployment: every access token carries
//! the audience `rabbitmq` (an `oidc-audience-mapper`), the RabbitMQ scopes
//! in `scope` (client scopes named `rabbitmq.read:*/*/*` …, default scopes
//! of every client) and the same scopes in an `extra_scope` claim (a
//! hard-coded claim mapper; the broker reads it through
//! `auth_oauth2.additional_scopes_key`). Access tokens live
//! [`NostRealm::access_token_lifespan`] seconds (10 s by default) so
//! renewals happen within a test; "Revoke Refresh Token" is on (each refresh
//! token is single-use). Secrets and passwords are random per realm.
//!
//! Clients: [`SERVICE_CLIENT`] (confidential, service account, Keycloak's
//! default of no refresh token for `client_credentials`),
//! [`SERVICE_REFRESH_CLIENT`] (the same with
//! `client_credentials.use_refresh_token` on), [`USER_CLIENT`] (confidential,
//! direct access grants) and [`PUBLIC_CLIENT`] (public, like NOS-T's
//! `nost_monitor_nodejs`; direct grants on so a test can obtain the tokens a
//! frontend would forward). Users: [`USER`] (password) and [`OTP_USER`]
//! (password and a TOTP credential whose secret [`NostRealm`] knows).

use std::fmt;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use crate::keycloak::SigningKey;

/// Realm name.
pub const REALM: &str = "NOS-T";
/// Confidential client with a service account; no refresh token for
/// `client_credentials` (Keycloak's default).
pub const SERVICE_CLIENT: &str = "nost-service";
/// Confidential client with a service account and
/// `client_credentials.use_refresh_token` on.
pub const SERVICE_REFRESH_CLIENT: &str = "nost-service-refresh";
/// Confidential client for the password grant.
pub const USER_CLIENT: &str = "nost-user-client";
/// Public client, like NOS-T's monitor frontend.
pub const PUBLIC_CLIENT: &str = "nost_monitor_nodejs";
/// User with a password only.
pub const USER: &str = "alice";
/// User with a password and a TOTP credential.
pub const OTP_USER: &str = "otto";
/// The `kid` of the realm's imported RSA signing key.
pub const REALM_KID: &str = "nost-keycloak-key";
/// RabbitMQ scopes granted to every client (three-part form for topic
/// exchanges).
pub const RABBITMQ_SCOPES: [&str; 3] = [
    "rabbitmq.read:*/*/*",
    "rabbitmq.write:*/*/*",
    "rabbitmq.configure:*/*/*",
];
/// Period of the OTP credential (s).
pub const TOTP_PERIOD: u64 = 30;
/// Digits of the OTP credential.
pub const TOTP_DIGITS: u32 = 6;

/// Secrets and lifetimes of one realm instance. `Debug` hides the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct NostRealm {
    /// Access token lifespan of the realm (s).
    pub access_token_lifespan: u32,
    /// Secret of [`SERVICE_CLIENT`].
    pub service_secret: String,
    /// Secret of [`SERVICE_REFRESH_CLIENT`].
    pub service_refresh_secret: String,
    /// Secret of [`USER_CLIENT`].
    pub user_client_secret: String,
    /// Password of [`USER`].
    pub user_password: String,
    /// Password of [`OTP_USER`].
    pub otp_user_password: String,
    /// The OTP secret as Keycloak stores it (its UTF-8 bytes are the HMAC
    /// key); authenticator apps take [`otp_secret_base32`](Self::otp_secret_base32).
    pub otp_secret: String,
}

impl fmt::Debug for NostRealm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NostRealm")
            .field("access_token_lifespan", &self.access_token_lifespan)
            .finish_non_exhaustive()
    }
}

fn random_word(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    (0..len)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}

impl NostRealm {
    /// A realm with fresh random secrets and 10 s access tokens.
    pub fn generate() -> Self {
        NostRealm {
            access_token_lifespan: 10,
            service_secret: random_word(32),
            service_refresh_secret: random_word(32),
            user_client_secret: random_word(32),
            user_password: random_word(16),
            otp_user_password: random_word(16),
            otp_secret: random_word(20),
        }
    }

    /// The OTP secret in base32 (no padding), as an authenticator app
    /// expects it.
    pub fn otp_secret_base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(self.otp_secret.as_bytes())
    }

    /// The TOTP code of [`OTP_USER`] at UNIX time `unix_secs`.
    pub fn totp_at(&self, unix_secs: u64) -> String {
        totp(
            self.otp_secret.as_bytes(),
            unix_secs,
            TOTP_PERIOD,
            TOTP_DIGITS,
        )
    }

    /// The TOTP code of [`OTP_USER`] now.
    pub fn totp_now(&self) -> String {
        self.totp_at(unix_now())
    }

    /// A code that is not valid now (nor in the adjacent periods Keycloak
    /// tolerates).
    pub fn wrong_totp(&self) -> String {
        let now = unix_now();
        let valid: Vec<String> = (0..3)
            .map(|i| self.totp_at(now + i * TOTP_PERIOD - TOTP_PERIOD))
            .collect();
        (0u32..)
            .map(|n| format!("{:06}", (n * 7919 + 123_457) % 1_000_000))
            .find(|c| !valid.contains(c))
            .unwrap_or_else(|| "000000".into())
    }

    /// The realm representation for `--import-realm`, signing with `key`
    /// (its `kid` becomes the `kid` of every token).
    pub fn to_json(&self, key: &SigningKey) -> Value {
        let extra_scope = RABBITMQ_SCOPES.join(" ");
        let mappers = json!([
            {
                "name": "audience rabbitmq",
                "protocol": "openid-connect",
                "protocolMapper": "oidc-audience-mapper",
                "config": {
                    "included.custom.audience": "rabbitmq",
                    "access.token.claim": "true",
                    "id.token.claim": "false",
                    "introspection.token.claim": "true"
                }
            },
            {
                "name": "extra_scope",
                "protocol": "openid-connect",
                "protocolMapper": "oidc-hardcoded-claim-mapper",
                "config": {
                    "claim.name": "extra_scope",
                    "claim.value": extra_scope,
                    "jsonType.label": "String",
                    "access.token.claim": "true",
                    "id.token.claim": "false",
                    "userinfo.token.claim": "false",
                    "introspection.token.claim": "true"
                }
            }
        ]);
        let mut default_scopes: Vec<&str> = RABBITMQ_SCOPES.to_vec();
        default_scopes.extend(["basic", "profile"]);
        let client = |id: &str, extra: Value| {
            let mut c = json!({
                "clientId": id,
                "enabled": true,
                "protocol": "openid-connect",
                "standardFlowEnabled": false,
                "implicitFlowEnabled": false,
                "directAccessGrantsEnabled": false,
                "serviceAccountsEnabled": false,
                "publicClient": false,
                "protocolMappers": mappers,
                "defaultClientScopes": default_scopes,
                "optionalClientScopes": [],
                "attributes": {}
            });
            if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
                for (k, v) in extra {
                    c.insert(k.clone(), v.clone());
                }
            }
            c
        };
        let mut scopes: Vec<Value> = RABBITMQ_SCOPES
            .iter()
            .map(|s| {
                json!({
                    "name": s,
                    "protocol": "openid-connect",
                    "attributes": {
                        "include.in.token.scope": "true",
                        "display.on.consent.screen": "false"
                    }
                })
            })
            .collect();
        // Importing client scopes replaces Keycloak's defaults: `basic`
        // (sub) and `profile` (preferred_username) are restated here.
        scopes.push(json!({
            "name": "basic",
            "protocol": "openid-connect",
            "attributes": {"include.in.token.scope": "false", "display.on.consent.screen": "false"},
            "protocolMappers": [{
                "name": "sub",
                "protocol": "openid-connect",
                "protocolMapper": "oidc-sub-mapper",
                "config": {"access.token.claim": "true", "introspection.token.claim": "true"}
            }]
        }));
        scopes.push(json!({
            "name": "profile",
            "protocol": "openid-connect",
            "attributes": {"include.in.token.scope": "true", "display.on.consent.screen": "false"},
            "protocolMappers": [{
                "name": "username",
                "protocol": "openid-connect",
                "protocolMapper": "oidc-usermodel-property-mapper",
                "config": {
                    "user.attribute": "username",
                    "claim.name": "preferred_username",
                    "jsonType.label": "String",
                    "access.token.claim": "true",
                    "id.token.claim": "true",
                    "userinfo.token.claim": "true",
                    "introspection.token.claim": "true"
                }
            }]
        }));
        let otp_secret_data = json!({ "value": self.otp_secret }).to_string();
        let otp_credential_data = json!({
            "subType": "totp",
            "digits": TOTP_DIGITS,
            "counter": 0,
            "period": TOTP_PERIOD,
            "algorithm": "HmacSHA1"
        })
        .to_string();
        let user = |name: &str, password: &str| {
            json!({
                "username": name,
                "enabled": true,
                "email": format!("{name}@example.org"),
                "emailVerified": true,
                "firstName": name,
                "lastName": "Test",
                "credentials": [{"type": "password", "value": password, "temporary": false}]
            })
        };
        let mut otp_user = user(OTP_USER, &self.otp_user_password);
        if let Some(creds) = otp_user
            .get_mut("credentials")
            .and_then(Value::as_array_mut)
        {
            creds.push(json!({
                "type": "otp",
                "userLabel": "nost-test",
                "secretData": otp_secret_data,
                "credentialData": otp_credential_data
            }));
        }
        json!({
            "realm": REALM,
            "enabled": true,
            "sslRequired": "none",
            "accessTokenLifespan": self.access_token_lifespan,
            "ssoSessionIdleTimeout": 1800,
            "ssoSessionMaxLifespan": 36000,
            "revokeRefreshToken": true,
            "refreshTokenMaxReuse": 0,
            // Tests running side by side log the OTP user in within one
            // 30 s period: the same code must work twice (Keycloak's
            // default refuses a used code). Keycloak reads the OTP policy
            // only as a whole: without `otpPolicyType` the flag is ignored.
            "otpPolicyType": "totp",
            "otpPolicyAlgorithm": "HmacSHA1",
            "otpPolicyDigits": TOTP_DIGITS,
            "otpPolicyPeriod": TOTP_PERIOD,
            "otpPolicyLookAheadWindow": 1,
            "otpPolicyInitialCounter": 0,
            "otpPolicyCodeReusable": true,
            "clientScopes": scopes,
            "clients": [
                client(SERVICE_CLIENT, json!({
                    "secret": self.service_secret,
                    "serviceAccountsEnabled": true
                })),
                client(SERVICE_REFRESH_CLIENT, json!({
                    "secret": self.service_refresh_secret,
                    "serviceAccountsEnabled": true,
                    "attributes": {"client_credentials.use_refresh_token": "true"}
                })),
                client(USER_CLIENT, json!({
                    "secret": self.user_client_secret,
                    "directAccessGrantsEnabled": true
                })),
                client(PUBLIC_CLIENT, json!({
                    "publicClient": true,
                    "directAccessGrantsEnabled": true
                })),
            ],
            "users": [
                user(USER, &self.user_password),
                otp_user,
                {"username": format!("service-account-{SERVICE_CLIENT}"), "enabled": true,
                 "serviceAccountClientId": SERVICE_CLIENT},
                {"username": format!("service-account-{SERVICE_REFRESH_CLIENT}"), "enabled": true,
                 "serviceAccountClientId": SERVICE_REFRESH_CLIENT},
            ],
            "components": {
                "org.keycloak.keys.KeyProvider": [{
                    "name": "nost-test-rsa",
                    "providerId": "rsa",
                    "subComponents": {},
                    "config": {
                        "priority": ["1000"],
                        "enabled": ["true"],
                        "active": ["true"],
                        "algorithm": ["RS256"],
                        "privateKey": [key.private_pem],
                        "kid": [key.kid]
                    }
                }]
            }
        })
    }

    /// `NAME=value` pairs describing the realm (prefix `prefix`).
    pub fn to_env(&self, prefix: &str) -> Vec<(String, String)> {
        vec![
            (
                format!("{prefix}ACCESS_TOKEN_LIFESPAN"),
                self.access_token_lifespan.to_string(),
            ),
            (
                format!("{prefix}SERVICE_SECRET"),
                self.service_secret.clone(),
            ),
            (
                format!("{prefix}SERVICE_REFRESH_SECRET"),
                self.service_refresh_secret.clone(),
            ),
            (
                format!("{prefix}USER_CLIENT_SECRET"),
                self.user_client_secret.clone(),
            ),
            (format!("{prefix}USER_PASSWORD"), self.user_password.clone()),
            (
                format!("{prefix}OTP_USER_PASSWORD"),
                self.otp_user_password.clone(),
            ),
            (format!("{prefix}OTP_SECRET"), self.otp_secret.clone()),
        ]
    }

    /// The realm described by [`to_env`](Self::to_env) variables, if all set.
    pub fn from_env(prefix: &str) -> Option<Self> {
        let var = |k: &str| std::env::var(format!("{prefix}{k}")).ok();
        Some(NostRealm {
            access_token_lifespan: var("ACCESS_TOKEN_LIFESPAN")?.parse().ok()?,
            service_secret: var("SERVICE_SECRET")?,
            service_refresh_secret: var("SERVICE_REFRESH_SECRET")?,
            user_client_secret: var("USER_CLIENT_SECRET")?,
            user_password: var("USER_PASSWORD")?,
            otp_user_password: var("OTP_USER_PASSWORD")?,
            otp_secret: var("OTP_SECRET")?,
        })
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 6238 TOTP (HMAC-SHA1) of `key` at UNIX time `unix_secs`.
pub fn totp(key: &[u8], unix_secs: u64, period: u64, digits: u32) -> String {
    let counter = unix_secs / period.max(1);
    // HMAC accepts keys of any length: new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let code = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    let modulus = 10u32.pow(digits.min(9));
    format!("{:0width$}", code % modulus, width = digits as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_rfc_6238_sha1_vectors() {
        let key = b"12345678901234567890";
        assert_eq!(totp(key, 59, 30, 8), "94287082");
        assert_eq!(totp(key, 1_111_111_109, 30, 8), "07081804");
        assert_eq!(totp(key, 1_234_567_890, 30, 8), "89005924");
        assert_eq!(totp(key, 20_000_000_000, 30, 8), "65353130");
        assert_eq!(totp(key, 59, 30, 6), "287082");
    }

    #[test]
    fn the_realm_round_trips_through_the_environment_and_hides_secrets() {
        let realm = NostRealm::generate();
        let env = realm.to_env("X_");
        assert!(env.iter().any(|(k, _)| k == "X_OTP_SECRET"));
        let debug = format!("{realm:?}");
        assert!(!debug.contains(&realm.service_secret), "{debug}");
        assert_ne!(realm.wrong_totp(), realm.totp_now());
        assert_eq!(
            data_encoding::BASE32_NOPAD
                .decode(realm.otp_secret_base32().as_bytes())
                .ok(),
            Some(realm.otp_secret.as_bytes().to_vec())
        );
    }
}
