//! Routing keys, binding keys and queue names, named as `nost_tools` names
//! them.
//!
//! A routing key is `PREFIX.APP.TOPIC`; TOPIC may itself contain dots
//! (`status.ready`). In subscriptions, `*` matches exactly one word and `#`
//! zero or more words. `+` is **not** an AMQP wildcard.
//!
//! ```
//! use nost_app::topics::{STATUS_READY, queue_name, routing_key, sender_app, topic_matches};
//!
//! let key = routing_key("greenfield", "fire", STATUS_READY);
//! assert_eq!(key, "greenfield.fire.status.ready");
//! assert_eq!(sender_app(&key), Some("fire"));
//! assert!(topic_matches("greenfield.*.status.#", &key));
//! assert!(!topic_matches("greenfield.*.ready", &key));
//! // The queue the manager's subscription to everyone's status.ready gets:
//! assert_eq!(
//!     queue_name("greenfield.*.status.ready", "manager"),
//!     "greenfield.star.status.ready.manager"
//! );
//! ```

/// `init` (manager → managed apps, [`InitCommand`](crate::messages::InitCommand)).
pub const INIT: &str = "init";
/// `start` ([`StartCommand`](crate::messages::StartCommand)).
pub const START: &str = "start";
/// `stop` ([`StopCommand`](crate::messages::StopCommand)).
pub const STOP: &str = "stop";
/// `update` ([`UpdateCommand`](crate::messages::UpdateCommand)).
pub const UPDATE: &str = "update";
/// `freeze` ([`FreezeCommand`](crate::messages::FreezeCommand)).
pub const FREEZE: &str = "freeze";
/// `resume` ([`ResumeCommand`](crate::messages::ResumeCommand)).
pub const RESUME: &str = "resume";
/// `status.ready` ([`ReadyStatus`](crate::messages::ReadyStatus)).
pub const STATUS_READY: &str = "status.ready";
/// `status.mode` ([`ModeStatus`](crate::messages::ModeStatus)).
pub const STATUS_MODE: &str = "status.mode";
/// `status.time` ([`TimeStatus`](crate::messages::TimeStatus)).
pub const STATUS_TIME: &str = "status.time";
/// `request.freeze` ([`FreezeRequest`](crate::messages::FreezeRequest)).
pub const REQUEST_FREEZE: &str = "request.freeze";
/// `request.update` ([`UpdateRequest`](crate::messages::UpdateRequest)).
pub const REQUEST_UPDATE: &str = "request.update";
/// `request.resume` ([`ResumeRequest`](crate::messages::ResumeRequest)).
pub const REQUEST_RESUME: &str = "request.resume";

/// The six command topics a managed application subscribes to, in order.
pub const COMMAND_TOPICS: [&str; 6] = [INIT, START, STOP, UPDATE, FREEZE, RESUME];

/// A prefix or app name that cannot be used in a routing key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: it must be non-empty and contain no '.', '*' or '#'")]
pub struct NameError {
    /// What the value is (`"prefix"`, `"app name"`, …).
    pub what: &'static str,
    /// The refused value.
    pub value: String,
}

/// `PREFIX.APP.TOPIC`. Also the binding key for a subscription, where APP
/// may be `*`.
pub fn routing_key(prefix: &str, app: &str, topic: &str) -> String {
    format!("{prefix}.{app}.{topic}")
}

/// Whether a key contains the AMQP wildcards `*` or `#`.
pub fn has_wildcard(key: &str) -> bool {
    key.contains(['*', '#'])
}

/// The queue `nost_tools` declares for binding key `binding_key` and the
/// subscribing app `app`: every `*` becomes `star`, every `#` becomes `hash`,
/// then `"." + app` (e.g. `greenfield.*.status.ready` for `manager` gives
/// `greenfield.star.status.ready.manager`).
pub fn queue_name(binding_key: &str, app: &str) -> String {
    format!(
        "{}.{app}",
        binding_key.replace('*', "star").replace('#', "hash")
    )
}

/// Whether `routing_key` matches the AMQP topic pattern `pattern` (`*` =
/// exactly one word, `#` = zero or more words, anything else literal).
pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match (p.split_first(), k.split_first()) {
            (None, None) => true,
            (Some((&"#", p_rest)), _) => {
                go(p_rest, k) || k.split_first().is_some_and(|(_, k_rest)| go(p, k_rest))
            }
            (Some((&"*", p_rest)), Some((_, k_rest))) => go(p_rest, k_rest),
            (Some((a, p_rest)), Some((b, k_rest))) if a == b => go(p_rest, k_rest),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = routing_key.split('.').collect();
    go(&p, &k)
}

/// Check a prefix or app name: non-empty, no `.`, `*` or `#`. `what` names
/// the value in the error (`"prefix"`, `"app name"`).
pub fn validate_name(what: &'static str, value: &str) -> Result<(), NameError> {
    if value.is_empty() || value.contains(['.', '*', '#']) {
        return Err(NameError {
            what,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// The sending app of a message: the second dot-separated segment of its
/// routing key (`None` when there is none).
pub fn sender_app(routing_key: &str) -> Option<&str> {
    routing_key.split('.').nth(1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn routing_keys() {
        assert_eq!(routing_key("p", "manager", INIT), "p.manager.init");
        assert_eq!(
            routing_key("p", "fire", STATUS_READY),
            "p.fire.status.ready"
        );
        assert_eq!(
            routing_key("greenfield", "*", STATUS_READY),
            "greenfield.*.status.ready"
        );
    }

    #[test]
    fn queue_names_as_nost_tools_declares_them() {
        assert_eq!(
            queue_name("greenfield.manager.init", "fire"),
            "greenfield.manager.init.fire"
        );
        assert_eq!(
            queue_name("greenfield.*.status.ready", "manager"),
            "greenfield.star.status.ready.manager"
        );
        assert_eq!(queue_name("p.+.#", "logger"), "p.+.hash.logger");
        assert_eq!(queue_name("p.*.#", "x"), "p.star.hash.x");
        // Section 4.1, standard deployment with prefix `p`.
        for t in [
            REQUEST_FREEZE,
            REQUEST_RESUME,
            REQUEST_UPDATE,
            STATUS_READY,
            STATUS_TIME,
        ] {
            assert_eq!(
                queue_name(&routing_key("p", "*", t), "manager"),
                format!("p.star.{t}.manager")
            );
        }
        for t in COMMAND_TOPICS {
            assert_eq!(
                queue_name(&routing_key("p", "manager", t), "fire"),
                format!("p.manager.{t}.fire")
            );
        }
        assert!(has_wildcard("p.*.status.ready"));
        assert!(has_wildcard("p.#"));
        assert!(!has_wildcard("p.+.x"));
    }

    #[test]
    fn wildcards_match_like_amqp_topics() {
        assert!(topic_matches("p.*.status.ready", "p.fire.status.ready"));
        assert!(!topic_matches("p.*.status.ready", "p.fire.x.status.ready"));
        assert!(!topic_matches("p.*.status.ready", "p.status.ready"));
        assert!(topic_matches("p.manager.init", "p.manager.init"));
        assert!(!topic_matches("p.manager.init", "p.manager.start"));
        assert!(topic_matches("p.#", "p"), "# matches zero words");
        assert!(topic_matches("p.#", "p.a.b.c"));
        assert!(topic_matches("p.#.ready", "p.a.b.ready"));
        assert!(topic_matches("p.#.ready", "p.ready"));
        assert!(topic_matches("#", "a.b"));
        assert!(!topic_matches("p.*", "p"));
        assert!(
            !topic_matches("p.+.#", "p.fire.status"),
            "+ is no AMQP wildcard"
        );
        assert!(topic_matches("p.+.#", "p.+.x"));
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("app name", "fire").is_ok());
        for bad in ["", "a.b", "a*", "#"] {
            let e = validate_name("app name", bad).unwrap_err();
            assert_eq!(e.value, bad);
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
            assert!(e.to_string().contains("app name"), "{e}");
        }
    }

    #[test]
    fn sender_is_the_second_segment() {
        assert_eq!(sender_app("p.fire.status.ready"), Some("fire"));
        assert_eq!(sender_app("p.manager.init"), Some("manager"));
        assert_eq!(sender_app("p"), None);
    }
}
