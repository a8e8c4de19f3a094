//! `nost check`: validate a configuration and show the detected mode.

use std::process::ExitCode;

use nost_config::{AuthMode, CLIENT_ID, CLIENT_SECRET_KEY, PASSWORD, USERNAME};
use serde_json::json;

use crate::common::ConfigArgs;

/// Arguments of `nost check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let r = args.config.resolve()?;
    let c = &r.loaded.config;
    let mode = AuthMode::detect(
        c.servers.rabbitmq.keycloak_authentication,
        &r.credentials,
        &r.tokens,
    )?;
    let rmq = &c.servers.rabbitmq;
    let scheme = if rmq.tls { "amqps" } else { "amqp" };
    let nodes: Vec<String> = rmq.endpoints().iter().map(|e| e.to_string()).collect();
    let broker = format!(
        "{scheme}://{}/{}",
        nodes.first().map(String::as_str).unwrap_or("?"),
        rmq.virtual_host.trim_start_matches('/')
    );
    let token_url = mode
        .uses_keycloak()
        .then(|| c.servers.keycloak.as_ref().map(|k| k.token_url()))
        .flatten();
    let variables: serde_json::Map<String, serde_json::Value> =
        [USERNAME, PASSWORD, CLIENT_ID, CLIENT_SECRET_KEY]
            .iter()
            .map(|name| {
                let v = match r.credentials.sources.get(name) {
                    Some(src) => json!({"present": true, "source": src.to_string()}),
                    None => json!({"present": false}),
                };
                (name.to_string(), v)
            })
            .collect();
    let warnings: Vec<String> = r.loaded.warnings.iter().map(|w| w.to_string()).collect();
    if args.json {
        let out = json!({
            "mode": mode.kind().as_str(),
            "config": r.loaded.origin.to_string(),
            "broker": {"url": broker, "host": rmq.host, "port": rmq.port, "nodes": nodes, "shuffle_hosts": rmq.shuffle_hosts, "queue_type": rmq.queue_type, "virtual_host": rmq.virtual_host, "tls": rmq.tls},
            "keycloak": token_url.as_ref().map(|u| json!({"token_url": u})),
            "env_file": r.credentials.env_file.as_ref().map(|p| p.display().to_string()),
            "variables": variables,
            "tokens_given": r.tokens.access_token.is_some(),
            "warnings": warnings,
        });
        println!("{out}");
    } else {
        println!("configuration: {} (valid)", r.loaded.origin);
        println!("mode:          {}", mode.kind());
        println!("broker:        {broker}");
        if nodes.len() > 1 {
            println!(
                "nodes:         {} (tried {}; a reconnect moves on to the next)",
                nodes.join(", "),
                if rmq.shuffle_hosts {
                    "from a random one"
                } else {
                    "in this order"
                }
            );
        }
        if rmq.queue_type == nost_config::QueueType::Quorum {
            println!("queues:        quorum (replicated across the cluster)");
        }
        if let Some(u) = &token_url {
            println!("keycloak:      {u}");
        }
        match &r.credentials.env_file {
            Some(p) => println!(".env:          {}", p.display()),
            None => println!(".env:          (none found)"),
        }
        for (name, v) in &variables {
            let src = v
                .get("source")
                .and_then(|s| s.as_str())
                .unwrap_or("not set");
            println!("  {name:<18} {src}");
        }
        for w in &warnings {
            println!("warning: {w}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
