//! NOS-T routing keys and queue names (section 3.4/3.5 of the reference).

use super::error::AppError;

/// `PREFIX.APP.TOPIC`.
pub fn routing_key(prefix: &str, app: &str, topic: &str) -> String {
    format!("{prefix}.{app}.{topic}")
}

/// The queue `nost_tools` declares for binding key `key` and subscriber
/// `app`: `*` becomes `star`, `#` becomes `hash`, then `.APP`.
pub fn queue_name(key: &str, app: &str) -> String {
    format!("{}.{app}", key.replace('*', "star").replace('#', "hash"))
}

/// Prefixes and app names may not contain `.`, `*` or `#`, nor be empty.
pub fn check_name(what: &str, name: &str) -> Result<(), AppError> {
    if name.is_empty() || name.contains(['.', '*', '#']) {
        return Err(AppError::InvalidName(format!(
            "{what} {name:?} must be non-empty and contain no '.', '*' or '#'"
        )));
    }
    Ok(())
}

/// Whether a routing key matches an AMQP topic pattern (`*` = one word,
/// `#` = zero or more words).
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match (p.first(), k.first()) {
            (None, None) => true,
            (Some(&"#"), _) => go(&p[1..], k) || (!k.is_empty() && go(p, &k[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &k[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &k[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    go(&p, &k)
}

/// The sender's app name: the second dot-separated segment.
pub fn sender_app(routing_key: &str) -> Option<&str> {
    routing_key.split('.').nth(1)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn wildcards_match_like_amqp_topics() {
        assert!(topic_matches("p.*.status.ready", "p.fire.status.ready"));
        assert!(!topic_matches("p.*.status.ready", "p.fire.x.status.ready"));
        assert!(topic_matches("p.#", "p"));
        assert!(topic_matches("p.#", "p.a.b.c"));
        assert!(topic_matches("p.#.ready", "p.a.b.ready"));
        assert!(
            !topic_matches("p.+.#", "p.fire.status"),
            "+ is no AMQP wildcard"
        );
    }

    #[test]
    fn names_and_senders() {
        assert!(check_name("app", "fire").is_ok());
        for bad in ["", "a.b", "a*", "#"] {
            assert!(check_name("app", bad).is_err());
        }
        assert_eq!(sender_app("p.fire.status.ready"), Some("fire"));
        assert_eq!(
            routing_key("p", "fire", "status.ready"),
            "p.fire.status.ready"
        );
    }
}
