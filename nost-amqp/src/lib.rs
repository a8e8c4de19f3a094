//! RabbitMQ connections for NOS-T applications.
//!
//! The only crate that touches `lapin`. A [`Session`] is one connection and
//! one channel (as `nost_tools` uses) that:
//!
//! - logs in with PLAIN username/password (basic mode) or with the current
//!   access token as password and an empty username (Keycloak modes), and
//!   pushes every renewed token with `connection.update-secret`;
//! - verifies TLS always, against `tls_ca_cert` only when it is set, else
//!   the system trust store, with host-name verification;
//! - reconnects after any unexpected loss with backoff starting at
//!   `reconnect_delay`, with the newest token, re-declaring exchanges and
//!   queues, re-binding and restoring consumers;
//! - publishes with publisher confirms, on a channel of its own, through an
//!   ordered buffer of at most `queue_max_size` messages. Delivery is
//!   **at-least-once**: unconfirmed messages are re-sent after a reconnect
//!   or a reopened channel, so consumers may see duplicates
//!   ([`Delivery::redelivered`] and the message id help to spot them);
//! - ends every message confirmed or refused. A refusal (the broker closes
//!   the channel with 403/404/406 over one publish, e.g. a forbidden topic)
//!   fails only that message: the channel is reopened, the connection stays,
//!   the other unconfirmed messages are re-published in order. A nack is
//!   retried with backoff for a window ([`NackRetry`], 60 s by default:
//!   a quorum queue nacks while its cluster elects a leader), then
//!   refused. Learn the
//!   verdict per message with [`Session::publish_tracked`] /
//!   [`Session::publish_confirmed`], or for all with [`Session::flush`],
//!   which reports the refused ones as [`AmqpError::Refused`].
//!
//! Many sessions of one process can share one connection (and its one I/O
//! thread): [`SharedConnection`] with [`Session::connect_shared`], a channel
//! pair per session.
//!
//! It knows nothing of NOS-T topics or Keycloak: `nost-app` composes those.
//!
//! ```no_run
//! # async fn demo() -> Result<(), nost_amqp::AmqpError> {
//! use nost_amqp::{ConnectSettings, ExchangeSpec, Login, Outgoing, Session};
//! use nost_config::{RabbitMqConfig, SecretString};
//!
//! let login = Login::Password { username: "guest".into(), password: SecretString::from("guest") };
//! let session = Session::connect(ConnectSettings::new(RabbitMqConfig::default(), login)).await?;
//! session.declare_exchange(ExchangeSpec::nost("demo")).await?;
//! session
//!     .publish(Outgoing { exchange: "demo".into(), routing_key: "demo.app.hello".into(), body: b"{}".to_vec() })
//!     .await?;
//! session.shut_down(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```

// The public surface is the `pub use` list below; every module is private,
// and no lapin type appears in it (messages, properties, errors and events
// are this crate's own types; lapin's errors are only reachable as
// `source()` of an `AmqpError`).
#![warn(unreachable_pub)]

mod conn;
mod error;
mod jitter;
mod link_state;
mod message;
mod outbox;
mod session;
mod settings;
mod shared;
mod token;

pub use error::{AmqpError, Refusal};
pub use link_state::LinkState;
pub use message::{Delivery, HeaderValue, MessageProperties, Outgoing, Properties};
pub use outbox::Confirm;
pub use session::{Session, SessionEvent, Subscription};
pub use settings::{BindingSpec, ConnectSettings, ExchangeSpec, Login, NackRetry, QueueSpec};
pub use shared::SharedConnection;
pub use token::{TokenError, TokenFailure, TokenFailureKind, TokenSource};
