//! The three grants and the exact form fields `nost_tools` sends for each.
//!
//! The empty `code=`, `redirect_uri=` (and `username=`/`password=` for
//! client credentials) and `scope=openid` are kept, byte-compatible with
//! `nost_tools` 3.6.0 (python-keycloak); Keycloak ignores them.

use secrecy::{ExposeSecret, SecretString};

/// A client id and its secret (`None` or empty: a public client).
#[derive(Clone)]
pub(crate) struct ClientAuth {
    pub id: String,
    pub secret: Option<SecretString>,
}

impl ClientAuth {
    pub(crate) fn new(id: &str, secret: Option<&SecretString>) -> Self {
        ClientAuth {
            id: id.to_string(),
            secret: secret.filter(|s| !s.expose_secret().is_empty()).cloned(),
        }
    }
}

/// One request to the token endpoint.
pub(crate) enum Grant<'a> {
    /// `grant_type=client_credentials`.
    ClientCredentials,
    /// `grant_type=password`, with `totp` when an OTP is given.
    Password {
        username: &'a str,
        password: &'a SecretString,
        otp: Option<&'a SecretString>,
    },
    /// `grant_type=refresh_token`.
    Refresh { refresh_token: &'a SecretString },
}

impl Grant<'_> {
    /// The form fields, in `nost_tools`' order.
    pub(crate) fn form<'a>(&'a self, client: &'a ClientAuth) -> Vec<(&'static str, &'a str)> {
        let mut f: Vec<(&'static str, &'a str)> = Vec::with_capacity(9);
        match self {
            Grant::Password {
                username,
                password,
                otp,
            } => {
                f.push(("username", username));
                f.push(("password", password.expose_secret()));
                f.push(("client_id", &client.id));
                f.push(("grant_type", "password"));
                f.push(("code", ""));
                f.push(("redirect_uri", ""));
                f.push(("scope", "openid"));
                if let Some(otp) = otp {
                    f.push(("totp", otp.expose_secret()));
                }
            }
            Grant::ClientCredentials => {
                f.push(("username", ""));
                f.push(("password", ""));
                f.push(("client_id", &client.id));
                f.push(("grant_type", "client_credentials"));
                f.push(("code", ""));
                f.push(("redirect_uri", ""));
                f.push(("scope", "openid"));
            }
            Grant::Refresh { refresh_token } => {
                f.push(("client_id", &client.id));
                f.push(("grant_type", "refresh_token"));
                f.push(("refresh_token", refresh_token.expose_secret()));
            }
        }
        if let Some(secret) = &client.secret {
            f.push(("client_secret", secret.expose_secret()));
        }
        f
    }

    /// The `grant_type`, for logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::Password { .. } => "password",
            Grant::Refresh { .. } => "refresh_token",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_secret_is_a_public_client() {
        let empty = SecretString::from("");
        let c = ClientAuth::new("id", Some(&empty));
        let rt = SecretString::from("r");
        let g = Grant::Refresh { refresh_token: &rt };
        assert_eq!(
            g.form(&c),
            vec![
                ("client_id", "id"),
                ("grant_type", "refresh_token"),
                ("refresh_token", "r")
            ]
        );
    }
}
