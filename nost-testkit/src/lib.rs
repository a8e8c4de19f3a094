//! Test support for nost-rs, never shipped: a throwaway OAuth2-enabled
//! RabbitMQ node ([`broker`]), a cluster of such nodes ([`cluster`]) and a Keycloak emulation on wiremock
//! ([`keycloak`]) that mints real RS256 tokens the node verifies, and the
//! Python `nost_tools` peer in a virtual environment ([`python`]).
//!
//! ```no_run
//! use nost_testkit::broker::{BrokerOptions, OAuthBroker, OAuthBrokerInfo};
//! use nost_testkit::KeycloakEmulator;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // The node of `cargo xtask integration`, or one of our own.
//! let own;
//! let node = match OAuthBrokerInfo::from_env() {
//!     Some(info) => info,
//!     None => {
//!         own = OAuthBroker::start(BrokerOptions::default())?;
//!         own.info().clone()
//!     }
//! };
//! let kc = KeycloakEmulator::builder(node.signing_key()?)
//!     .realm("NOS-T")
//!     .client("sos-service", Some("secret"))
//!     .user("alice", "pw", None)
//!     .start()
//!     .await;
//! // POST kc.token_url() … then connect to amqp://127.0.0.1:{node.amqp_port}
//! // with user "" and the access token as password.
//! # let _ = kc; Ok(()) }
//! ```

pub mod broker;
pub mod cluster;
pub mod keycloak;
pub mod python;
pub use keycloak::*;
