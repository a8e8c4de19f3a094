//! Application configurations of the suites: one for the shared default
//! node, one for an OAuth2 node with Keycloak (the emulation or a real one)
//! on this machine.

use nost_config::{Config, ConfigBuilder, RabbitMqConfig};

/// `servers.rabbitmq` on 127.0.0.1 (port 5672), reconnecting after 1 s,
/// with `tune` applied; the rest as the YAML's defaults. Panics if `tune`
/// makes it invalid.
pub fn local_config(tune: impl FnOnce(&mut RabbitMqConfig)) -> Config {
    Config::builder()
        .rabbitmq(|r| {
            r.host = "127.0.0.1".into();
            r.reconnect_delay = 1;
            tune(r);
        })
        .build()
        .unwrap_or_else(|e| panic!("a local configuration: {e}"))
}

/// The OAuth2 node on 127.0.0.1:`amqp_port` (1 s reconnect delay, 15 s
/// connection timeout) with Keycloak over plain HTTP on
/// 127.0.0.1:`keycloak_port`, realm [`REALM`](crate::realm::REALM), tokens
/// renewed every `refresh_interval` s at the latest. Panics if invalid.
pub fn oauth_config(amqp_port: u16, keycloak_port: u16, refresh_interval: u64) -> Config {
    oauth_config_builder(amqp_port, keycloak_port, refresh_interval)
        .build()
        .unwrap_or_else(|e| panic!("an OAuth2 configuration: {e}"))
}

/// [`oauth_config`] still to be changed (`.rabbitmq(|r| …)`) and built.
pub fn oauth_config_builder(
    amqp_port: u16,
    keycloak_port: u16,
    refresh_interval: u64,
) -> ConfigBuilder {
    Config::builder()
        .rabbitmq(|r| {
            r.host = "127.0.0.1".into();
            r.port = u32::from(amqp_port);
            r.reconnect_delay = 1;
            r.connection_timeout = 15;
        })
        .keycloak(|k| {
            k.host = "127.0.0.1".into();
            k.port = u32::from(keycloak_port);
            k.realm = crate::realm::REALM.into();
            k.tls = Some(false);
            k.token_refresh_interval = refresh_interval;
        })
}
