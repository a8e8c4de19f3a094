//! The seam between token management (`nost-auth`) and connections.

use async_trait::async_trait;
use nost_config::SecretString;
use tokio::sync::watch;

/// Where a connection gets its access token.
///
/// `nost-auth`'s token manager implements this (via `nost-app`); tests can
/// supply a static or scripted source.
#[async_trait]
pub trait TokenSource: Send + Sync + 'static {
    /// Every new access token, starting with the current one.
    fn subscribe(&self) -> watch::Receiver<SecretString>;

    /// A token good enough to open a connection now: renew first when the
    /// current one is close to expiry.
    async fn fresh(&self) -> Result<SecretString, String>;
}
