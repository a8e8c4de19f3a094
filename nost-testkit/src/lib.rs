//! Test support for nost-rs, never shipped: a throwaway OAuth2-enabled
//! RabbitMQ node ([`OAuthBroker`]), a cluster of such nodes ([`Cluster`]),
//! a Keycloak emulation on wiremock ([`KeycloakEmulator`]) that mints real
//! RS256 tokens the node verifies, a real Keycloak with the NOS-T realm
//! ([`RealKeycloak`], the realm's names in [`realm`]), and the Python
//! `nost_tools` peer in a virtual environment ([`nost_tools_python`]).
//! For the shared default node (127.0.0.1:5672): a cuttable TCP [`Proxy`],
//! [`rabbitmqctl`], a [`BrokerUser`] with its own virtual host, a
//! [`QueuePolicy`], [`unique`] names and [`eventually`] for polling; for
//! nost-amqp sessions on it: [`local_settings`], a [`consumer`] and
//! [`collect_numbers`], [`count_events`] and [`wait_for_event`].
//!
//! It is not a mock of RabbitMQ: the nodes are real `rabbitmq-server`
//! processes (Debian's package), each with its own directory, ports, RSA
//! signing key and TLS CA, stopped and removed when dropped.
//!
//! ```no_run
//! use nost_testkit::{BrokerOptions, KeycloakEmulator, OAuthBroker, OAuthBrokerInfo};
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

mod broker;
mod cluster;
mod configs;
mod consume;
mod events;
mod keycloak;
mod local;
mod process_group;
mod python;
mod real_keycloak;
pub mod realm;
mod support;

pub use broker::{
    BrokerError, BrokerOptions, ENV_PREFIX as OAUTH_ENV_PREFIX, KID, OAuthBroker, OAuthBrokerInfo,
    make_rsa_key, rabbitmq_installed, rsa_key_pair,
};
pub use cluster::{Cluster, ClusterOptions, epmd_knows};
pub use configs::{local_config, oauth_config, oauth_config_builder};
pub use consume::{
    body_number, collect_distinct, collect_numbers, consumer, count_into, declare_bound_queue,
    transient_queue,
};
pub use events::{EventCounts, count_events, wait_for_disconnect, wait_for_event};
pub use keycloak::{
    DEFAULT_SCOPE, FULL_RABBITMQ_SCOPE, KeycloakBuilder, KeycloakEmulator, READ_ONLY_SCOPE,
    SigningKey, TOKEN_AUDIENCE, TokenOptions,
};
pub use local::{ForbiddenTopic, local_settings, local_settings_with};
pub use python::{NOST_TOOLS_VERSION, ensure_package, nost_tools_python};
pub use real_keycloak::{
    ENV_PREFIX as KEYCLOAK_ENV_PREFIX, KEYCLOAK_VERSION, KeycloakError, KeycloakOptions,
    RealKeycloak, RealKeycloakInfo, ensure_distribution, java_home, post_form,
};
pub use support::{
    BrokerUser, Proxy, QueuePolicy, close_connections_named, eventually, interop_scripts,
    python_with_nost_tools, queue_names, rabbitmqctl, unique,
};
