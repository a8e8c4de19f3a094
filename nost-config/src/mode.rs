//! The four ways in, and how one is chosen.

use std::fmt;

use secrecy::SecretString;

use crate::env::{CLIENT_ID, CLIENT_SECRET_KEY, Credentials, PASSWORD, USERNAME};

/// Tokens handed to `start_up` by a backend acting for a logged-in user.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// The user's access token.
    pub access_token: Option<SecretString>,
    /// The user's refresh token.
    pub refresh_token: Option<SecretString>,
}

impl Tokens {
    /// Both tokens.
    pub fn pair(access_token: impl Into<String>, refresh_token: impl Into<String>) -> Self {
        Tokens {
            access_token: Some(SecretString::from(access_token.into())),
            refresh_token: Some(SecretString::from(refresh_token.into())),
        }
    }
}

/// The authentication mode, with exactly the credentials it uses.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// RabbitMQ username/password (keycloak_authentication: false).
    Basic {
        /// `USERNAME`.
        username: String,
        /// `PASSWORD`.
        password: SecretString,
    },
    /// Keycloak `client_credentials` grant.
    ServiceAccount {
        /// `CLIENT_ID`.
        client_id: String,
        /// `CLIENT_SECRET_KEY`.
        client_secret: SecretString,
    },
    /// Keycloak `password` grant (OTP when the realm asks).
    UserAccount {
        /// `USERNAME`.
        username: String,
        /// `PASSWORD`.
        password: SecretString,
        /// `CLIENT_ID`.
        client_id: String,
        /// `CLIENT_SECRET_KEY`.
        client_secret: SecretString,
    },
    /// Tokens obtained elsewhere, renewed with the issuing client.
    PreAcquired {
        /// The client that issued the tokens.
        client_id: String,
        /// Its secret; `None` for a public client.
        client_secret: Option<SecretString>,
        /// The forwarded access token.
        access_token: SecretString,
        /// The forwarded refresh token.
        refresh_token: SecretString,
    },
}

/// The name of a mode, without its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModeKind {
    /// See [`AuthMode::Basic`].
    Basic,
    /// See [`AuthMode::ServiceAccount`].
    ServiceAccount,
    /// See [`AuthMode::UserAccount`].
    UserAccount,
    /// See [`AuthMode::PreAcquired`].
    PreAcquired,
}

impl ModeKind {
    /// `basic`, `service_account`, `user_account` or `pre_acquired`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ModeKind::Basic => "basic",
            ModeKind::ServiceAccount => "service_account",
            ModeKind::UserAccount => "user_account",
            ModeKind::PreAcquired => "pre_acquired",
        }
    }
}

impl fmt::Display for ModeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AuthMode {
    /// Which mode this is.
    pub fn kind(&self) -> ModeKind {
        match self {
            AuthMode::Basic { .. } => ModeKind::Basic,
            AuthMode::ServiceAccount { .. } => ModeKind::ServiceAccount,
            AuthMode::UserAccount { .. } => ModeKind::UserAccount,
            AuthMode::PreAcquired { .. } => ModeKind::PreAcquired,
        }
    }

    /// True for the three Keycloak modes.
    pub fn uses_keycloak(&self) -> bool {
        self.kind() != ModeKind::Basic
    }

    /// Choose the mode from `keycloak_authentication`, the credential
    /// variables and the tokens given to `start_up`.
    pub fn detect(
        keycloak_authentication: bool,
        creds: &Credentials,
        tokens: &Tokens,
    ) -> Result<AuthMode, ModeError> {
        let [u, p, i, s] = creds.presence();
        let (a, r) = (
            tokens.access_token.is_some(),
            tokens.refresh_token.is_some(),
        );
        let absent = |pairs: &[(&'static str, bool)]| -> Vec<&'static str> {
            pairs
                .iter()
                .filter(|(_, here)| !here)
                .map(|(n, _)| *n)
                .collect()
        };
        let err = |kind, missing: Vec<&'static str>, extra: Vec<&'static str>| ModeError {
            kind,
            missing,
            extra,
        };

        if !keycloak_authentication {
            if a || r {
                let extra = [("access_token", a), ("refresh_token", r)]
                    .iter()
                    .filter(|(_, here)| *here)
                    .map(|(n, _)| *n)
                    .collect();
                return Err(err(ModeErrorKind::TokensWithoutKeycloak, vec![], extra));
            }
            return match (&creds.username, &creds.password) {
                (Some(username), Some(password)) => Ok(AuthMode::Basic {
                    username: username.clone(),
                    password: password.clone(),
                }),
                _ => Err(err(
                    ModeErrorKind::BasicNeedsUsernamePassword,
                    absent(&[(USERNAME, u), (PASSWORD, p)]),
                    vec![],
                )),
            };
        }

        match (a, r) {
            (true, false) => {
                return Err(err(
                    ModeErrorKind::AccessTokenWithoutRefreshToken,
                    vec!["refresh_token"],
                    vec![],
                ));
            }
            (false, true) => {
                return Err(err(
                    ModeErrorKind::RefreshTokenWithoutAccessToken,
                    vec!["access_token"],
                    vec![],
                ));
            }
            (true, true) => {
                let (Some(access_token), Some(refresh_token)) =
                    (&tokens.access_token, &tokens.refresh_token)
                else {
                    return Err(err(ModeErrorKind::NoCredentials, vec![], vec![]));
                };
                return match &creds.client_id {
                    Some(client_id) => Ok(AuthMode::PreAcquired {
                        client_id: client_id.clone(),
                        client_secret: creds.client_secret.clone(),
                        access_token: access_token.clone(),
                        refresh_token: refresh_token.clone(),
                    }),
                    None => Err(err(
                        ModeErrorKind::PreAcquiredNeedsClientId,
                        vec![CLIENT_ID],
                        vec![],
                    )),
                };
            }
            (false, false) => {}
        }

        match (u, p, i, s) {
            (true, true, true, true) => Ok(AuthMode::UserAccount {
                username: creds.username.clone().unwrap_or_default(),
                password: creds.password.clone().unwrap_or_default(),
                client_id: creds.client_id.clone().unwrap_or_default(),
                client_secret: creds.client_secret.clone().unwrap_or_default(),
            }),
            (false, false, true, true) => Ok(AuthMode::ServiceAccount {
                client_id: creds.client_id.clone().unwrap_or_default(),
                client_secret: creds.client_secret.clone().unwrap_or_default(),
            }),
            (true, false, ..) | (false, true, ..) => Err(err(
                ModeErrorKind::UsernamePasswordTogether,
                absent(&[(USERNAME, u), (PASSWORD, p)]),
                vec![],
            )),
            (true, true, ..) => Err(err(
                ModeErrorKind::UserAccountNeedsClient,
                absent(&[(CLIENT_ID, i), (CLIENT_SECRET_KEY, s)]),
                vec![],
            )),
            (false, false, true, false) => Err(err(
                ModeErrorKind::ClientIdWithoutSecret,
                vec![CLIENT_SECRET_KEY],
                vec![],
            )),
            (false, false, false, true) => Err(err(
                ModeErrorKind::ClientSecretWithoutId,
                vec![CLIENT_ID],
                vec![],
            )),
            (false, false, false, false) => Err(err(
                ModeErrorKind::NoCredentials,
                vec![USERNAME, PASSWORD, CLIENT_ID, CLIENT_SECRET_KEY],
                vec![],
            )),
        }
    }
}

/// What is wrong with a combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModeErrorKind {
    /// keycloak_authentication is false, but USERNAME/PASSWORD are not both set.
    BasicNeedsUsernamePassword,
    /// Tokens were given to start_up while keycloak_authentication is false.
    TokensWithoutKeycloak,
    /// Exactly one of USERNAME/PASSWORD (Keycloak on).
    UsernamePasswordTogether,
    /// USERNAME+PASSWORD with Keycloak on, but not both CLIENT_ID and CLIENT_SECRET_KEY.
    UserAccountNeedsClient,
    /// CLIENT_ID alone without pre-acquired tokens.
    ClientIdWithoutSecret,
    /// CLIENT_SECRET_KEY without CLIENT_ID.
    ClientSecretWithoutId,
    /// An access token without a refresh token.
    AccessTokenWithoutRefreshToken,
    /// A refresh token without an access token.
    RefreshTokenWithoutAccessToken,
    /// Pre-acquired tokens without CLIENT_ID.
    PreAcquiredNeedsClientId,
    /// Nothing at all (Keycloak on).
    NoCredentials,
}

/// A combination of configuration, variables and tokens that is no mode.
///
/// Its message names what is missing or not expected (never a value) and
/// lists the valid modes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{}\n{}", self.summary(), names("missing", &self.missing), names("not expected", &self.extra), VALID_MODES)]
pub struct ModeError {
    /// What kind of mistake.
    pub kind: ModeErrorKind,
    /// Variables or arguments that are needed but absent.
    pub missing: Vec<&'static str>,
    /// Variables or arguments present that this combination cannot use.
    pub extra: Vec<&'static str>,
}

/// The valid modes and their variables, as every refusal lists them.
pub const VALID_MODES: &str = "valid authentication modes:
  1. basic (servers.rabbitmq.keycloak_authentication: false): USERNAME + PASSWORD
  2. service_account (keycloak_authentication: true): CLIENT_ID + CLIENT_SECRET_KEY
  3. user_account (keycloak_authentication: true): USERNAME + PASSWORD + CLIENT_ID + CLIENT_SECRET_KEY (OTP when the realm asks)
  4. pre_acquired (keycloak_authentication: true): access_token + refresh_token given to start_up, CLIENT_ID (+ CLIENT_SECRET_KEY for a confidential client)";

fn names(label: &str, list: &[&str]) -> String {
    if list.is_empty() {
        String::new()
    } else {
        format!("; {label}: {}", list.join(", "))
    }
}

impl ModeError {
    fn summary(&self) -> &'static str {
        match self.kind {
            ModeErrorKind::BasicNeedsUsernamePassword => {
                "basic authentication (keycloak_authentication: false) needs USERNAME and PASSWORD in .env or the environment"
            }
            ModeErrorKind::TokensWithoutKeycloak => {
                "tokens were given to start_up but servers.rabbitmq.keycloak_authentication is false; set it to true (with a servers.keycloak section) or do not pass tokens"
            }
            ModeErrorKind::UsernamePasswordTogether => {
                "USERNAME and PASSWORD must be given together (if USERNAME comes from the operating system, set both in .env or neither)"
            }
            ModeErrorKind::UserAccountNeedsClient => {
                "keycloak_authentication is true, so USERNAME + PASSWORD (user account) also need CLIENT_ID and CLIENT_SECRET_KEY; for basic auth set keycloak_authentication: false"
            }
            ModeErrorKind::ClientIdWithoutSecret => {
                "CLIENT_ID without CLIENT_SECRET_KEY is only valid with pre-acquired tokens given to start_up; for a service account also set CLIENT_SECRET_KEY"
            }
            ModeErrorKind::ClientSecretWithoutId => "CLIENT_SECRET_KEY is set but CLIENT_ID is not",
            ModeErrorKind::AccessTokenWithoutRefreshToken => {
                "an access token was given without a refresh token; the session cannot be kept alive without one"
            }
            ModeErrorKind::RefreshTokenWithoutAccessToken => {
                "a refresh token was given without an access token; pass both"
            }
            ModeErrorKind::PreAcquiredNeedsClientId => {
                "pre-acquired tokens need CLIENT_ID: the client that issued them, which Keycloak requires to refresh them"
            }
            ModeErrorKind::NoCredentials => {
                "keycloak_authentication is true but no credentials were found in .env or the environment"
            }
        }
    }
}
