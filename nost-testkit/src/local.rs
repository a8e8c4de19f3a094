//! Session settings for the shared default node (127.0.0.1:5672): as
//! `guest`, or as a [`BrokerUser`] in its own virtual host, and a user whose
//! one exchange refuses one routing key ([`ForbiddenTopic`]).

use nost_amqp::{ConnectSettings, Login, Outgoing};
use nost_config::{RabbitMqConfig, SecretString};

use crate::BrokerUser;

/// `guest` on 127.0.0.1:5672 with `connection_name`, reconnecting after
/// 1 s, a 10 s connection timeout, the other settings as the YAML's defaults.
pub fn local_settings(connection_name: &str) -> ConnectSettings {
    local_settings_with(connection_name, |_| {})
}

/// [`local_settings`] with `tune` applied to `servers.rabbitmq` (another
/// port, a heartbeat, a buffer limit, …).
pub fn local_settings_with(
    connection_name: &str,
    tune: impl FnOnce(&mut RabbitMqConfig),
) -> ConnectSettings {
    settings_as("/", "guest", "guest", connection_name, tune)
}

impl BrokerUser {
    /// This user in its own virtual host on the default node, otherwise as
    /// [`local_settings`].
    pub fn settings(&self, connection_name: &str) -> ConnectSettings {
        settings_as(
            &self.name,
            &self.name,
            &self.password,
            connection_name,
            |_| {},
        )
    }
}

fn settings_as(
    vhost: &str,
    username: &str,
    password: &str,
    connection_name: &str,
    tune: impl FnOnce(&mut RabbitMqConfig),
) -> ConnectSettings {
    let mut rabbitmq = RabbitMqConfig {
        host: "127.0.0.1".into(),
        port: 5672,
        virtual_host: vhost.into(),
        reconnect_delay: 1,
        connection_timeout: 10,
        ..Default::default()
    };
    tune(&mut rabbitmq);
    let mut settings = ConnectSettings::new(
        rabbitmq,
        Login::Password {
            username: username.into(),
            password: SecretString::from(password),
        },
    );
    settings.connection_name = connection_name.to_owned();
    settings
}

/// A [`BrokerUser`] `name` that may write to its exchange `name` only with
/// routing keys ending in `.ok` ([`ok_key`](Self::ok_key)); the broker
/// refuses [`bad_key`](Self::bad_key) with a 403.
pub struct ForbiddenTopic {
    /// The user (also its virtual host's name), removed when dropped.
    pub user: BrokerUser,
    /// The exchange with the topic permission.
    pub exchange: String,
    /// `{exchange}.app.ok`: allowed.
    pub ok_key: String,
    /// `{exchange}.app.bad`: refused.
    pub bad_key: String,
}

impl ForbiddenTopic {
    /// Create the user, its virtual host and the topic permission.
    pub fn create(name: &str) -> ForbiddenTopic {
        let user = BrokerUser::create(name);
        let exchange = name.to_owned();
        user.set_topic_write(&exchange, "\\.ok$");
        ForbiddenTopic {
            ok_key: format!("{exchange}.app.ok"),
            bad_key: format!("{exchange}.app.bad"),
            user,
            exchange,
        }
    }

    /// A message with `body` to the exchange with the allowed key.
    pub fn ok_message(&self, body: impl Into<Vec<u8>>) -> Outgoing {
        self.message(&self.ok_key, body.into())
    }

    /// A message with `body` to the exchange with the refused key.
    pub fn bad_message(&self, body: impl Into<Vec<u8>>) -> Outgoing {
        self.message(&self.bad_key, body.into())
    }

    fn message(&self, routing_key: &str, body: Vec<u8>) -> Outgoing {
        Outgoing {
            exchange: self.exchange.clone(),
            routing_key: routing_key.to_owned(),
            body,
        }
    }

    /// The user's settings (see [`BrokerUser::settings`]).
    pub fn settings(&self, connection_name: &str) -> ConnectSettings {
        self.user.settings(connection_name)
    }

    /// A consumer of everything published to the exchange (queue
    /// `{exchange}.q`, key `{exchange}.#`) on a connection of its own.
    pub async fn consumer(&self) -> (nost_amqp::Session, nost_amqp::Subscription) {
        crate::consumer(
            self.settings(&format!("{}-consumer", self.exchange)),
            &self.exchange,
            &format!("{}.q", self.exchange),
            &format!("{}.#", self.exchange),
        )
        .await
    }
}
