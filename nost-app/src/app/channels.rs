//! Declaring the YAML `channels` section at start-up.

use nost_amqp::{BindingSpec, ExchangeSpec, QueueSpec, Session};
use nost_config::Config;

use super::error::AppError;

/// Declare every exchange of `channels`, then the queues (and bindings) of
/// the entries owned by `app`; returns those queue names (deleted again at
/// shutdown, as `nost_tools` deletes them).
pub(crate) async fn declare(
    session: &Session,
    config: &Config,
    app: &str,
    prefix: &str,
) -> Result<Vec<String>, AppError> {
    let mut queues = Vec::new();
    match declare_into(session, config, app, prefix, &mut queues).await {
        Ok(()) => Ok(queues),
        Err(e) => {
            // No queue of a failed start-up may stay behind collecting messages.
            for q in &queues {
                if let Err(d) = session.discard_queue(q).await {
                    tracing::warn!(target: "nost_app", queue = %q, error = %d, "could not remove a channels queue after a failed start-up");
                }
            }
            Err(e)
        }
    }
}

async fn declare_into(
    session: &Session,
    config: &Config,
    app: &str,
    prefix: &str,
    queues: &mut Vec<String>,
) -> Result<(), AppError> {
    let all = config.channel_declarations();
    let nost = ExchangeSpec::nost(prefix);
    let mut declared: Vec<String> = Vec::new();
    for c in &all {
        let e = &c.exchange;
        if declared.contains(&e.name) {
            continue;
        }
        let path = format!("{}.bindings.amqp.exchange", c.path());
        let spec = ExchangeSpec {
            name: e.name.clone(),
            kind: e.kind.clone(),
            durable: e.durable,
            auto_delete: e.auto_delete,
        };
        if e.name == prefix {
            if spec != nost {
                return Err(AppError::Channel {
                    path,
                    reason: format!(
                        "exchange {prefix:?} is the run's prefix exchange, which every NOS-T application declares topic, durable, autoDelete true; declaring it {}, durable {}, autoDelete {} would be refused (406): write those settings or use another name",
                        e.kind, e.durable, e.auto_delete
                    ),
                    source: None,
                });
            }
            declared.push(e.name.clone());
            continue;
        }
        session
            .declare_exchange(spec)
            .await
            .map_err(|err| AppError::Channel {
                path: path.clone(),
                reason: format!(
                    "declaring exchange {:?} failed: {err} (an exchange of that name with other settings exists, or the user may not configure it)",
                    e.name
                ),
                source: Some(Box::new(err)),
            })?;
        declared.push(e.name.clone());
    }
    for c in all.iter().filter(|c| c.app == app) {
        let spec = QueueSpec {
            durable: c.exchange.durable,
            auto_delete: c.exchange.auto_delete,
            ..QueueSpec::nost(&c.address)
        };
        let path = format!("{}.address", c.path());
        session
            .declare_queue(spec)
            .await
            .map_err(|err| AppError::Channel {
                path: path.clone(),
                reason: format!(
                    "declaring queue {:?} failed: {err} (a queue of that name with other settings exists, or the user may not configure it)",
                    c.address
                ),
                source: Some(Box::new(err)),
            })?;
        queues.push(c.address.clone());
        session
            .bind_queue(BindingSpec {
                queue: c.address.clone(),
                exchange: c.exchange.name.clone(),
                key: c.address.clone(),
            })
            .await
            .map_err(|err| AppError::Channel {
                path,
                reason: format!(
                    "binding queue {:?} to exchange {:?} failed: {err}",
                    c.address, c.exchange.name
                ),
                source: Some(Box::new(err)),
            })?;
    }
    Ok(())
}
