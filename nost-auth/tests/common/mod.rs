//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use nost_auth::{AuthError, TokenIssuer, TokenSet};
use nost_config::{ExposeSecret, KeycloakConfig, SecretString};
use tokio::time::Instant;
use wiremock::MockServer;

/// A JWT (unsigned) whose `exp` is `secs` from now.
pub fn jwt(secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.c2lnbmF0dXJl",
        e.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        e.encode(format!(r#"{{"exp":{},"aud":"rabbitmq"}}"#, now + secs))
    )
}

/// `servers.keycloak` pointing at a wiremock server (plain HTTP: 127.0.0.1).
pub fn keycloak(server: &MockServer, interval: u64) -> KeycloakConfig {
    let addr = server.address();
    KeycloakConfig {
        host: addr.ip().to_string(),
        port: u32::from(addr.port()),
        realm: "NOS-T".into(),
        tls: None,
        tls_ca_cert: None,
        token_refresh_interval: interval,
    }
}

pub const TOKEN_PATH: &str = "/realms/NOS-T/protocol/openid-connect/token";

/// Keycloak's success body.
pub fn ok_body(access: &str, refresh: Option<&str>, expires_in: u64) -> serde_json::Value {
    let mut v = serde_json::json!({
        "access_token": access,
        "expires_in": expires_in,
        "refresh_expires_in": 1800,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "session_state": "3f0c",
        "scope": "openid profile"
    });
    if let Some(r) = refresh {
        v["refresh_token"] = serde_json::Value::from(r);
    }
    v
}

/// Keycloak's error body.
pub fn err_body(error: &str, description: &str) -> serde_json::Value {
    serde_json::json!({"error": error, "error_description": description})
}

/// The received form bodies, in order.
pub async fn bodies(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

/// A token set `at-n` / `rt-n` living `life`.
pub fn set(n: usize, life: Duration, refresh: bool) -> TokenSet {
    TokenSet {
        access_token: SecretString::from(format!("at-{n}")),
        expires_in: Some(life),
        refresh_token: refresh.then(|| SecretString::from(format!("rt-{n}"))),
        refresh_expires_in: None,
    }
}

/// One call a [`FakeIssuer`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `obtain(otp)`.
    Obtain(Option<String>),
    /// `renew(refresh_token)`.
    Renew(String),
}

type Responder = dyn Fn(&Call, usize) -> Result<TokenSet, AuthError> + Send + Sync;

/// A scripted token source recording its calls with their (tokio) time.
pub struct FakeIssuer {
    start: Instant,
    calls: Mutex<Vec<(Duration, Call)>>,
    respond: Box<Responder>,
    delay: Duration,
}

impl FakeIssuer {
    /// `respond(call, index of the call)`.
    pub fn new(
        respond: impl Fn(&Call, usize) -> Result<TokenSet, AuthError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Self::with_delay(Duration::ZERO, respond)
    }

    /// Each answer takes `delay`.
    pub fn with_delay(
        delay: Duration,
        respond: impl Fn(&Call, usize) -> Result<TokenSet, AuthError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(FakeIssuer {
            start: Instant::now(),
            calls: Mutex::new(Vec::new()),
            respond: Box::new(respond),
            delay,
        })
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Seconds since creation of each call.
    pub fn times(&self) -> Vec<f64> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _)| t.as_secs_f64())
            .collect()
    }

    pub fn count(&self, pred: impl Fn(&Call) -> bool) -> usize {
        self.calls().iter().filter(|c| pred(c)).count()
    }

    async fn call(&self, call: Call) -> Result<TokenSet, AuthError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push((self.start.elapsed(), call.clone()));
            calls.len() - 1
        };
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        (self.respond)(&call, n)
    }
}

#[async_trait]
impl TokenIssuer for FakeIssuer {
    async fn obtain(&self, otp: Option<SecretString>) -> Result<TokenSet, AuthError> {
        self.call(Call::Obtain(otp.map(|o| o.expose_secret().to_string())))
            .await
    }

    async fn renew(&self, refresh_token: SecretString) -> Result<TokenSet, AuthError> {
        self.call(Call::Renew(refresh_token.expose_secret().to_string()))
            .await
    }
}

/// Captures every tracing line (TRACE and up) on this thread.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Install as this thread's subscriber until the guard drops.
    pub fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(self.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
