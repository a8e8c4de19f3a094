//! `nost token`: perform the grant of the detected mode and show what the
//! broker will see, never the token itself unless asked.

use std::process::ExitCode;
use std::time::Duration;

use nost_auth::{KeycloakIssuer, TokenIssuer};
use nost_config::{AuthMode, ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::common::ConfigArgs;

/// Arguments of `nost token`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// One-time password for a user account (or set NOST_OTP).
    #[arg(long)]
    pub otp: Option<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also print the access token itself (it is a credential: handle with care).
    #[arg(long)]
    pub print_access_token: bool,
}

/// The claims part of a JWT, without verifying it (`Null` when it is none).
fn claims(token: &str) -> Value {
    nost_auth::jwt_claims(token).unwrap_or(Value::Null)
}

fn rabbitmq_scopes(c: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["scope", "extra_scope"] {
        match &c[key] {
            Value::String(s) => out.extend(s.split_whitespace().map(str::to_owned)),
            Value::Array(a) => out.extend(a.iter().filter_map(|v| v.as_str().map(str::to_owned))),
            _ => {}
        }
    }
    out.retain(|s| s.starts_with("rabbitmq."));
    out.dedup();
    out
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let r = args.config.resolve()?;
    let c = &r.loaded.config;
    let mode = AuthMode::detect(
        c.servers.rabbitmq.keycloak_authentication,
        &r.credentials,
        &r.tokens,
    )?;
    let Some(keycloak) = c.servers.keycloak.as_ref().filter(|_| mode.uses_keycloak()) else {
        anyhow::bail!(
            "mode {} uses no tokens (servers.rabbitmq.keycloak_authentication is false); `nost check` shows the configuration",
            mode.kind()
        );
    };
    let source = KeycloakIssuer::new(
        &mode,
        keycloak,
        Duration::from_secs(c.servers.rabbitmq.connection_timeout.max(1)),
    )?;
    let otp = args
        .otp
        .map(SecretString::from)
        .or_else(nost_auth::otp_from_env);
    let set = match &mode {
        // Pre-acquired tokens: check them by refreshing, as the refresher would.
        AuthMode::PreAcquired { refresh_token, .. } => source.renew(refresh_token.clone()).await?,
        _ => source.obtain(otp).await?,
    };
    let access = set.access_token.expose_secret();
    let cl = claims(access);
    let aud = match &cl["aud"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => vec![],
    };
    let exp = cl["exp"].as_i64();
    let expires = exp
        .and_then(|e| chrono::DateTime::from_timestamp(e, 0))
        .map(|d| d.to_rfc3339());
    let mut out = json!({
        "mode": mode.kind().as_str(),
        "token_url": source.token_url(),
        "subject": cl["sub"],
        "client_id": cl.get("client_id").or(cl.get("azp")).cloned().unwrap_or(Value::Null),
        "audience": aud,
        "expires_at": expires,
        "expires_in_s": set.expires_in.map(|d| d.as_secs()),
        "rabbitmq_scopes": rabbitmq_scopes(&cl),
        "refresh_token_returned": set.refresh_token.is_some(),
        "refresh_expires_in_s": set.refresh_expires_in.map(|d| d.as_secs()),
    });
    if args.print_access_token {
        out["access_token"] = json!(access);
    }
    if args.json {
        println!("{out}");
    } else {
        println!("mode:            {}", mode.kind());
        println!("token endpoint:  {}", source.token_url());
        println!("subject:         {}", out["subject"]);
        println!("client:          {}", out["client_id"]);
        println!("audience:        {}", out["audience"]);
        println!("expires at:      {}", out["expires_at"]);
        println!("rabbitmq scopes: {}", out["rabbitmq_scopes"]);
        println!(
            "refresh token:   {}",
            if set.refresh_token.is_some() {
                "returned"
            } else {
                "not returned (renewal repeats the grant)"
            }
        );
        if !aud.iter().any(|a| a == "rabbitmq") {
            println!(
                "warning: the audience does not contain \"rabbitmq\"; a RabbitMQ OAuth2 broker with resource_server_id rabbitmq will refuse it"
            );
        }
        if args.print_access_token {
            println!("access token:    {access}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
