//! Many applications in one process sharing one service-account credential
//! (one [`SharedTokens`](nost_app::SharedTokens)): token requests per
//! renewal cycle and resident memory, measured in a child process.

use std::time::Duration;

use anyhow::{Result, ensure};
use nost_testkit::KeycloakEmulator;
use nost_testkit::OAuthBrokerInfo;
use serde::Serialize;

use crate::ctx::Ctx;
use crate::proc::{Proc, numbers};
use crate::renewal::{CLIENT, SECRET, oauth_config};

#[derive(Debug, Clone, Serialize)]
pub struct ManyResult {
    pub applications: usize,
    pub renewals: usize,
    pub token_requests: usize,
    pub token_requests_per_renewal: f64,
    /// update-secrets seen by all connections together, per renewal.
    pub connections_updated_per_renewal: f64,
    pub disconnects: usize,
    pub rss_before_apps_mib: f64,
    pub rss_mib: f64,
    pub rss_per_app_kib: f64,
}

pub async fn run(
    ctx: &Ctx,
    node: &OAuthBrokerInfo,
    kc: &KeycloakEmulator,
    apps: usize,
    renewals: usize,
) -> Result<ManyResult> {
    // Over 30 s: a connection made with less left renews first.
    kc.set_access_lifetime(300);
    // The renewal suite's configuration, as a user would write it.
    let mut config = oauth_config(node, kc, 1)?;
    config.servers.rabbitmq.connection_timeout = 60;
    let dir = ctx.dir.path();
    let yaml = dir.join("many.yaml");
    std::fs::write(&yaml, serde_norway::to_string(&config)?)?;
    let env = dir.join("many.env");
    std::fs::write(
        &env,
        format!("CLIENT_ID=\"{CLIENT}\"\nCLIENT_SECRET_KEY=\"{SECRET}\"\n"),
    )?;
    let mut cmd = ctx.rust_child("many", &crate::unique("many"), Some((&yaml, &env)));
    cmd.args(["--apps", &apps.to_string()])
        .args(["--renewals", &renewals.to_string()]);
    let mut child = Proc::spawn("many applications", cmd)?;
    let ready = numbers(&child.expect("ready", Duration::from_secs(300)).await?);
    child.expect("mark", Duration::from_secs(60)).await?;
    kc.clear_requests();
    child.send("go").await?;
    child.expect("renewed", Duration::from_secs(120)).await?;
    let token_requests = kc.requests().len();
    let done = numbers(&child.expect("done", Duration::from_secs(30)).await?);
    child.finish(Duration::from_secs(60)).await;
    ensure!(
        ready.len() == 2 && done.len() == 4,
        "unexpected report from the child"
    );
    let seen = done[0] as usize;
    Ok(ManyResult {
        applications: apps,
        renewals: seen,
        token_requests,
        token_requests_per_renewal: token_requests as f64 / seen as f64,
        connections_updated_per_renewal: done[1] / seen as f64,
        disconnects: done[2] as usize,
        rss_before_apps_mib: ready[0] / 1024.0,
        rss_mib: done[3] / 1024.0,
        rss_per_app_kib: (done[3] - ready[0]) / apps as f64,
    })
}
