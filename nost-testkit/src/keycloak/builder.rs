//! [`KeycloakBuilder`]: an emulator set up before its first request.

use std::fmt;

use super::{KeycloakEmulator, SigningKey};

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
