//! The `channels` section: exchanges and queues declared at start-up.
//!
//! Shape (as `nost_tools` 3.6.0 reads it, AsyncAPI style):
//!
//! ```yaml
//! channels:
//!   fire:                       # the application that owns the queues
//!     detected:                 # a channel name (free)
//!       address: fires.detected # queue name and binding key
//!       bindings:
//!         amqp:
//!           exchange:
//!             name: fires       # default `default_exchange`
//!             type: topic       # topic (default), direct, fanout, headers
//!             durable: true     # default true
//!             autoDelete: false # default false
//!             vhost: /          # default "/", must be servers.rabbitmq.virtual_host
//! ```
//!
//! Every exchange of the section is declared by every application at
//! `start_up`; the queues (named `address`, bound with key `address`, durable
//! and auto-delete as their exchange, as `nost_tools`' `ChannelConfig`) only
//! by the application named by the first key. Other keys of an entry
//! (`description`, `messages`, `bindings.amqp.is`, …) are accepted and
//! not read.

use serde_json::Value as Json;

use crate::error::{ConfigWarning, FieldError};
use crate::schema::Config;

/// The exchange name `nost_tools` gives an entry without `exchange.name`.
pub const DEFAULT_EXCHANGE: &str = "default_exchange";

/// An exchange of the `channels` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelExchange {
    /// Exchange name.
    pub name: String,
    /// `topic`, `direct`, `fanout` or `headers`.
    pub kind: String,
    /// Survives a broker restart.
    pub durable: bool,
    /// Deleted by the broker when its last binding goes.
    pub auto_delete: bool,
    /// Virtual host (always the connection's; checked by validation).
    pub vhost: String,
}

/// One entry `channels.<app>.<channel>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelDeclaration {
    /// The owning application (first key).
    pub app: String,
    /// The channel's name (second key).
    pub channel: String,
    /// Queue name and binding key.
    pub address: String,
    /// The exchange the queue is bound to.
    pub exchange: ChannelExchange,
}

impl ChannelDeclaration {
    /// `channels.<app>.<channel>`, for messages.
    pub fn path(&self) -> String {
        format!("channels.{}.{}", self.app, self.channel)
    }
}

const KINDS: [&str; 4] = ["topic", "direct", "fanout", "headers"];
const EXCHANGE_KEYS: [&str; 5] = ["name", "type", "durable", "autoDelete", "vhost"];

impl Config {
    /// Every entry of `channels`, in file order of apps and channels (sorted
    /// by name); entries that do not validate are left out (the loader and
    /// [`Config::validate_all`] report them).
    pub fn channel_declarations(&self) -> Vec<ChannelDeclaration> {
        parse(self).0
    }

    /// The entries owned by application `app`.
    pub fn channels_of(&self, app: &str) -> Vec<ChannelDeclaration> {
        self.channel_declarations()
            .into_iter()
            .filter(|c| c.app == app)
            .collect()
    }

    /// Each exchange of `channels` once.
    pub fn channel_exchanges(&self) -> Vec<ChannelExchange> {
        let mut out: Vec<ChannelExchange> = Vec::new();
        for c in self.channel_declarations() {
            if !out.iter().any(|e| e.name == c.exchange.name) {
                out.push(c.exchange);
            }
        }
        out
    }
}

/// Errors and warnings of the `channels` section.
pub(crate) fn check(config: &Config) -> (Vec<FieldError>, Vec<ConfigWarning>) {
    let (_, errors, warnings) = parse(config);
    (errors, warnings)
}

fn err(path: String, message: impl Into<String>) -> FieldError {
    FieldError {
        path,
        message: message.into(),
        line: None,
    }
}

fn amqp_name(path: String, what: &str, v: &str, errors: &mut Vec<FieldError>) -> bool {
    if v.is_empty() {
        errors.push(err(path, format!("the {what} must not be empty")));
    } else if v.len() > 255 {
        errors.push(err(
            path,
            format!("the {what} is {} bytes; AMQP allows at most 255", v.len()),
        ));
    } else if v.starts_with("amq.") {
        errors.push(err(
            path,
            format!("{v:?}: names starting with `amq.` are reserved by the broker"),
        ));
    } else {
        return true;
    }
    false
}

fn parse(config: &Config) -> (Vec<ChannelDeclaration>, Vec<FieldError>, Vec<ConfigWarning>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let vhost = &config.servers.rabbitmq.virtual_host;
    for (app, channels) in &config.channels {
        let app_path = format!("channels.{app}");
        let Json::Object(channels) = channels else {
            errors.push(err(
                app_path,
                "must be a mapping of channel names to entries with `address` and `bindings.amqp.exchange`",
            ));
            continue;
        };
        for (channel, entry) in channels {
            let path = format!("{app_path}.{channel}");
            let Json::Object(entry) = entry else {
                errors.push(err(
                    path,
                    "must be a mapping with `address` and `bindings.amqp.exchange`",
                ));
                continue;
            };
            let mut ok = true;
            let address = match entry.get("address") {
                Some(Json::String(a)) => {
                    ok &= amqp_name(format!("{path}.address"), "address", a, &mut errors);
                    a.clone()
                }
                None | Some(Json::Null) => {
                    errors.push(err(
                        format!("{path}.address"),
                        "missing: the queue name and binding key of this channel (e.g. `address: fires.detected`)",
                    ));
                    ok = false;
                    String::new()
                }
                Some(other) => {
                    errors.push(err(
                        format!("{path}.address"),
                        format!("must be a string (got {other})"),
                    ));
                    ok = false;
                    String::new()
                }
            };
            let amqp = entry
                .get("bindings")
                .and_then(|b| b.as_object())
                .and_then(|b| b.get("amqp"));
            let amqp = match amqp {
                Some(Json::Object(m)) => m,
                _ => {
                    errors.push(err(
                        format!("{path}.bindings.amqp"),
                        "missing or not a mapping: write `bindings: {amqp: {exchange: {name: …}}}`",
                    ));
                    continue;
                }
            };
            let ex_path = format!("{path}.bindings.amqp.exchange");
            let empty = serde_json::Map::new();
            let ex = match amqp.get("exchange") {
                None | Some(Json::Null) => &empty,
                Some(Json::Object(m)) => m,
                Some(other) => {
                    errors.push(err(
                        ex_path,
                        format!("must be a mapping with name, type, durable, autoDelete, vhost (got {other})"),
                    ));
                    continue;
                }
            };
            for k in ex.keys() {
                if !EXCHANGE_KEYS.contains(&k.as_str()) {
                    let norm = |s: &str| s.replace('_', "").to_ascii_lowercase();
                    let hint = EXCHANGE_KEYS
                        .iter()
                        .find(|x| norm(x) == norm(k))
                        .map(|x| format!("; did you mean `{x}`?"))
                        .unwrap_or_default();
                    warnings.push(ConfigWarning {
                        path: format!("{ex_path}.{k}"),
                        message: format!("unknown key, ignored{hint}"),
                    });
                }
            }
            let string =
                |key: &str, default: &str, errors: &mut Vec<FieldError>| -> Option<String> {
                    match ex.get(key) {
                        None | Some(Json::Null) => Some(default.to_owned()),
                        Some(Json::String(s)) => Some(s.clone()),
                        Some(other) => {
                            errors.push(err(
                                format!("{ex_path}.{key}"),
                                format!("must be a string (got {other})"),
                            ));
                            None
                        }
                    }
                };
            let boolean =
                |key: &str, default: bool, errors: &mut Vec<FieldError>| -> Option<bool> {
                    match ex.get(key) {
                        None | Some(Json::Null) => Some(default),
                        Some(Json::Bool(b)) => Some(*b),
                        Some(other) => {
                            errors.push(err(
                                format!("{ex_path}.{key}"),
                                format!("must be true or false (got {other})"),
                            ));
                            None
                        }
                    }
                };
            let name = string("name", DEFAULT_EXCHANGE, &mut errors);
            let kind = string("type", "topic", &mut errors);
            let durable = boolean("durable", true, &mut errors);
            let auto_delete = boolean("autoDelete", false, &mut errors);
            let ex_vhost = string("vhost", "/", &mut errors);
            let (Some(name), Some(kind), Some(durable), Some(auto_delete), Some(ex_vhost)) =
                (name, kind, durable, auto_delete, ex_vhost)
            else {
                continue;
            };
            ok &= amqp_name(
                format!("{ex_path}.name"),
                "exchange name",
                &name,
                &mut errors,
            );
            if !KINDS.contains(&kind.as_str()) {
                errors.push(err(
                    format!("{ex_path}.type"),
                    format!(
                        "{kind:?} is not an exchange type; use topic, direct, fanout or headers"
                    ),
                ));
                ok = false;
            }
            if &ex_vhost != vhost {
                errors.push(err(
                    format!("{ex_path}.vhost"),
                    format!(
                        "{ex_vhost:?} is not servers.rabbitmq.virtual_host ({vhost:?}): an application declares channels only on the virtual host it connects to"
                    ),
                ));
                ok = false;
            }
            if !ok {
                continue;
            }
            let exchange = ChannelExchange {
                name,
                kind,
                durable,
                auto_delete,
                vhost: ex_vhost,
            };
            if let Some(first) = out
                .iter()
                .find(|c: &&ChannelDeclaration| c.exchange.name == exchange.name)
                && first.exchange != exchange
            {
                errors.push(err(
                    ex_path,
                    format!(
                        "conflicting settings for exchange {:?}: {} declares it {}, this entry {}",
                        exchange.name,
                        first.path(),
                        describe(&first.exchange),
                        describe(&exchange)
                    ),
                ));
                continue;
            }
            out.push(ChannelDeclaration {
                app: app.clone(),
                channel: channel.clone(),
                address,
                exchange,
            });
        }
    }
    (out, errors, warnings)
}

fn describe(e: &ChannelExchange) -> String {
    format!(
        "type {}, durable {}, autoDelete {}",
        e.kind, e.durable, e.auto_delete
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::{ConfigError, Origin, load_str};

    fn load(channels: &str) -> Result<crate::LoadedConfig, ConfigError> {
        load_str(
            &format!("servers:\n  rabbitmq: {{}}\nchannels:\n{channels}execution: {{}}\n"),
            Origin::Program,
        )
    }

    #[test]
    fn entries_are_read_with_nost_tools_defaults() {
        let l = load(
            "  fire:\n    detected:\n      address: fires.detected\n      description: free text\n      bindings:\n        amqp:\n          is: routingKey\n          exchange:\n            name: fires\n  ground:\n    reported:\n      address: fires.reported\n      bindings:\n        amqp:\n          exchange:\n            name: fires\n    other:\n      address: other.q\n      bindings:\n        amqp: {}\n",
        )
        .unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let all = l.config.channel_declarations();
        assert_eq!(all.len(), 3);
        let fire = l.config.channels_of("fire");
        assert_eq!(fire.len(), 1);
        assert_eq!(fire[0].address, "fires.detected");
        assert_eq!(fire[0].exchange.kind, "topic");
        assert!(fire[0].exchange.durable && !fire[0].exchange.auto_delete);
        let names: Vec<String> = l
            .config
            .channel_exchanges()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["fires", super::DEFAULT_EXCHANGE]);
    }

    #[test]
    fn bad_entries_name_the_field() {
        let cases = [
            (
                "  fire:\n    d:\n      bindings:\n        amqp:\n          exchange:\n            name: x\n",
                "channels.fire.d.address",
            ),
            (
                "  fire:\n    d:\n      address: a\n",
                "channels.fire.d.bindings.amqp",
            ),
            (
                "  fire:\n    d:\n      address: a\n      bindings:\n        amqp:\n          exchange:\n            type: fanot\n",
                "channels.fire.d.bindings.amqp.exchange.type",
            ),
            (
                "  fire:\n    d:\n      address: a\n      bindings:\n        amqp:\n          exchange:\n            durable: \"yes\"\n",
                "channels.fire.d.bindings.amqp.exchange.durable",
            ),
            (
                "  fire:\n    d:\n      address: a\n      bindings:\n        amqp:\n          exchange:\n            vhost: other\n",
                "channels.fire.d.bindings.amqp.exchange.vhost",
            ),
            (
                "  fire:\n    d:\n      address: amq.x\n      bindings:\n        amqp: {}\n",
                "channels.fire.d.address",
            ),
            (
                "  fire:\n    a:\n      address: a\n      bindings:\n        amqp:\n          exchange:\n            name: e\n    b:\n      address: b\n      bindings:\n        amqp:\n          exchange:\n            name: e\n            autoDelete: true\n",
                "channels.fire.b.bindings.amqp.exchange",
            ),
            ("  fire: 3\n", "channels.fire"),
        ];
        for (yaml, path) in cases {
            match load(yaml) {
                Err(ConfigError::Invalid { errors, .. }) => {
                    assert!(errors.iter().any(|e| e.path == path), "{path}: {errors:?}")
                }
                other => panic!("{path}: expected Invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn misspelled_exchange_keys_are_warnings() {
        let l = load(
            "  fire:\n    d:\n      address: a\n      bindings:\n        amqp:\n          exchange:\n            auto_delete: true\n",
        )
        .unwrap();
        assert_eq!(
            l.warnings[0].path,
            "channels.fire.d.bindings.amqp.exchange.auto_delete"
        );
        assert!(l.warnings[0].message.contains("autoDelete"));
    }
}
