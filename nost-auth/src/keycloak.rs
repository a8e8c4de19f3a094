//! Keycloak's token endpoint over HTTPS (reqwest + rustls).

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use nost_config::{AuthMode, Cause, KeycloakConfig};
use secrecy::SecretString;

use crate::error::{AuthError, Request, classify};
use crate::grant::{ClientAuth, Grant};
use crate::issuer::TokenIssuer;
use crate::token::{TokenSet, jwt_remaining, seconds};

/// How the source obtains a first token.
#[derive(Clone)]
enum Creds {
    Service,
    User {
        username: String,
        password: SecretString,
    },
    PreAcquired,
}

/// The Keycloak token endpoint for one mode's credentials.
///
/// TLS verification is always on. With `servers.keycloak.tls_ca_cert`, that
/// CA bundle is the *only* trust anchor; otherwise the built-in (webpki)
/// roots are used.
#[derive(Clone)]
pub struct KeycloakIssuer {
    http: reqwest::Client,
    url: String,
    client: ClientAuth,
    creds: Creds,
}

impl fmt::Debug for KeycloakIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeycloakIssuer")
            .field("url", &self.url)
            .field("client_id", &self.client.id)
            .finish_non_exhaustive()
    }
}

impl KeycloakIssuer {
    /// The token endpoint of `keycloak` with the credentials of `mode`
    /// (not [`AuthMode::Basic`], which has no tokens). `timeout` bounds each
    /// HTTP request.
    pub fn new(
        mode: &AuthMode,
        keycloak: &KeycloakConfig,
        timeout: Duration,
    ) -> Result<Self, AuthError> {
        let (client, creds) = match mode {
            AuthMode::Basic { .. } => return Err(AuthError::NotKeycloak),
            AuthMode::ServiceAccount {
                client_id,
                client_secret,
            } => (
                ClientAuth::new(client_id, Some(client_secret)),
                Creds::Service,
            ),
            AuthMode::UserAccount {
                username,
                password,
                client_id,
                client_secret,
            } => (
                ClientAuth::new(client_id, Some(client_secret)),
                Creds::User {
                    username: username.clone(),
                    password: password.clone(),
                },
            ),
            AuthMode::PreAcquired {
                client_id,
                client_secret,
                ..
            } => (
                ClientAuth::new(client_id, client_secret.as_ref()),
                Creds::PreAcquired,
            ),
        };
        let url = keycloak.token_url();
        if !keycloak.uses_https() && !keycloak.is_loopback_host() {
            tracing::warn!(
                target: "nost_auth",
                url = %url,
                "Keycloak is reached over plain http to a host that is not this machine: credentials and tokens travel unencrypted; set servers.keycloak.tls: true unless this network is trusted"
            );
        }
        Ok(KeycloakIssuer {
            http: http_client(keycloak, timeout)?,
            url,
            client,
            creds,
        })
    }

    /// The token endpoint URL.
    pub fn token_url(&self) -> &str {
        &self.url
    }

    async fn exchange(&self, grant: Grant<'_>) -> Result<TokenSet, AuthError> {
        let req = Request {
            password_grant: matches!(grant, Grant::Password { .. }),
            refresh_grant: matches!(grant, Grant::Refresh { .. }),
            otp_sent: matches!(grant, Grant::Password { otp: Some(_), .. }),
            client_id: &self.client.id,
        };
        tracing::debug!(target: "nost_auth", grant = grant.name(), url = %self.url, "token request");
        let response = self
            .http
            .post(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&grant.form(&self.client))
            .send()
            .await
            .map_err(|e| transport_error(&self.url, e))?;
        let status = response.status().as_u16();
        let body = read_limited(response, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| match e {
                Limited::TooLarge => AuthError::ResponseTooLarge {
                    status,
                    limit: MAX_RESPONSE_BYTES,
                },
                Limited::Http(e) => transport_error(&self.url, e),
            })?;
        let result = parse_response(status, &body, req);
        if let Err(e) = &result {
            tracing::warn!(target: "nost_auth", grant = grant.name(), status, error = %e, "token request failed");
        }
        result
    }
}

#[async_trait]
impl TokenIssuer for KeycloakIssuer {
    async fn obtain(&self, otp: Option<SecretString>) -> Result<TokenSet, AuthError> {
        match &self.creds {
            Creds::Service => self.exchange(Grant::ClientCredentials).await,
            Creds::User { username, password } => {
                self.exchange(Grant::Password {
                    username,
                    password,
                    otp: otp.as_ref(),
                })
                .await
            }
            Creds::PreAcquired => Err(AuthError::LoginExpired {
                reason: None,
                hint: PRE_ACQUIRED_HINT,
            }),
        }
    }

    async fn renew(&self, refresh_token: SecretString) -> Result<TokenSet, AuthError> {
        self.exchange(Grant::Refresh {
            refresh_token: &refresh_token,
        })
        .await
    }
}

/// The longest Keycloak answer read (a token response is a few KiB).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

enum Limited {
    TooLarge,
    Http(reqwest::Error),
}

/// The body, chunk by chunk, refusing more than `limit` bytes (also when the
/// `Content-Length` already says so), so a wrong endpoint cannot make us
/// buffer an unbounded answer.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, Limited> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Limited::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Limited::Http)? {
        if body.len() + chunk.len() > limit {
            return Err(Limited::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What the user of pre-acquired tokens must do when they run out.
pub(crate) const PRE_ACQUIRED_HINT: &str = "pre-acquired tokens cannot be renewed without the user; obtain fresh tokens from the user's login and start again";

fn http_client(keycloak: &KeycloakConfig, timeout: Duration) -> Result<reqwest::Client, AuthError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(15)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("nost-auth/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &keycloak.tls_ca_cert {
        let ca_error = |detail: String, source: Option<Cause>| AuthError::CaCert {
            path: path.clone(),
            detail,
            source,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string(), Some(Cause::new(e))))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ca_error("not a PEM certificate bundle".into(), Some(Cause::new(e))))?;
        if certs.is_empty() {
            return Err(ca_error(
                "no PEM certificate found in the file".into(),
                None,
            ));
        }
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| AuthError::Client {
        detail: e.to_string(),
        source: Some(Cause::new(e)),
    })
}

/// A reqwest failure as a typed error: a certificate the TLS library
/// refused apart.
fn transport_error(url: &str, e: reqwest::Error) -> AuthError {
    let timeout = e.is_timeout();
    let mut causes = Vec::new();
    let mut next = e.source();
    while let Some(s) = next {
        causes.push(s.to_string());
        next = s.source();
    }
    let detail = causes.last().cloned().unwrap_or_else(|| e.to_string());
    let source = Cause::new(e);
    if timeout {
        return AuthError::Transport {
            url: url.to_string(),
            detail: "the request timed out".into(),
            source: Some(source),
        };
    }
    // rustls gives a refused certificate as its own error type, wrapped in
    // the I/O error of the connection: matched by type, not by its words.
    let refused_certificate = matches!(
        source.find::<rustls::Error>(),
        Some(
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::InvalidCertRevocationList(_)
        )
    );
    if refused_certificate {
        return AuthError::TlsCertificate {
            url: url.to_string(),
            detail,
            source: Some(source),
        };
    }
    AuthError::Transport {
        url: url.to_string(),
        detail,
        source: Some(source),
    }
}

/// How a token endpoint answer with HTTP `status` and `body` is read (as the
/// answer to a password grant without OTP by client `client_id`): the typed
/// tokens or the typed error. Never panics, whatever the body (fuzzed).
pub fn parse_token_response(
    status: u16,
    body: &[u8],
    grant: &str,
    client_id: &str,
) -> Result<TokenSet, AuthError> {
    parse_response(
        status,
        body,
        Request {
            password_grant: grant == "password",
            refresh_grant: grant == "refresh_token",
            otp_sent: false,
            client_id,
        },
    )
}

/// Keycloak's answer, success or error, as typed values. Never panics.
pub(crate) fn parse_response(
    status: u16,
    body: &[u8],
    req: Request<'_>,
) -> Result<TokenSet, AuthError> {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    if let Some(obj) = json.as_ref().and_then(|v| v.as_object()) {
        if let Some(error) = obj.get("error").and_then(|v| v.as_str()) {
            let description = obj
                .get("error_description")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            return Err(classify(error, description, status, req));
        }
        if (200..300).contains(&status) {
            let Some(access) = obj
                .get("access_token")
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
            else {
                return Err(AuthError::MalformedResponse {
                    status,
                    what: "the answer has no access_token",
                });
            };
            let secs = |key: &str| obj.get(key).and_then(|v| v.as_f64()).map(seconds);
            return Ok(TokenSet {
                // `exp` is whole seconds from the issue time, so the token may
                // live up to a second less than `expires_in`: trust the shorter.
                expires_in: match (secs("expires_in"), jwt_remaining(access)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
                refresh_token: obj
                    .get("refresh_token")
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.is_empty())
                    .map(|s| SecretString::from(s.to_string())),
                refresh_expires_in: secs("refresh_expires_in").filter(|d| !d.is_zero()),
                access_token: SecretString::from(access.to_string()),
            });
        }
    }
    if status >= 500 {
        return Err(AuthError::ServiceUnavailable { status });
    }
    Err(AuthError::MalformedResponse {
        status,
        what: match status {
            200..=299 => "the answer is not a JSON object",
            404 => "not found; check servers.keycloak.realm",
            _ => "an error status without Keycloak's error JSON",
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const REQ: Request<'static> = Request {
        password_grant: false,
        refresh_grant: true,
        otp_sent: false,
        client_id: "c",
    };

    #[test]
    fn garbage_never_panics() {
        let bodies: &[&[u8]] = &[
            b"",
            b"null",
            b"[]",
            b"\xff\xfe",
            b"<html>503</html>",
            br#"{"access_token":5}"#,
            br#"{"access_token":""}"#,
            br#"{"error":7}"#,
            br#"{"access_token":"a","expires_in":"x","refresh_token":null}"#,
            br#"{"access_token":"a","expires_in":-5,"refresh_expires_in":1e300}"#,
        ];
        for status in [200, 400, 401, 404, 500, 503] {
            for b in bodies {
                let _ = parse_response(status, b, REQ);
            }
        }
    }

    #[test]
    fn success_fields() {
        let set = parse_response(
            200,
            br#"{"access_token":"a","expires_in":300,"refresh_expires_in":0,"refresh_token":"r","token_type":"Bearer"}"#,
            REQ,
        )
        .unwrap();
        assert_eq!(set.expires_in, Some(Duration::from_secs(300)));
        assert_eq!(set.refresh_expires_in, None);
        assert!(set.refresh_token.is_some());
    }

    #[test]
    fn html_503_is_unavailable() {
        assert_eq!(
            parse_response(503, b"<html>", REQ).err(),
            Some(AuthError::ServiceUnavailable { status: 503 })
        );
    }
}
