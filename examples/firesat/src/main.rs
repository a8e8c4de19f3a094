//! `cargo run -p nost-firesat --release -- [examples/firesat/firesat.yaml]`:
//! runs FireSat on the broker of the YAML and prints a summary.

use nost_app::StartOptions;
use nost_config::Credentials;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/firesat.yaml").to_owned());
    let loaded = nost_config::load_file(&path)?;
    for w in &loaded.warnings {
        eprintln!("{path}: {w}");
    }
    let config = loaded.config;
    let prefix = config.execution.general_or_default().prefix;
    let user = std::env::var("USERNAME").unwrap_or_else(|_| "guest".into());
    let password = std::env::var("PASSWORD").unwrap_or_else(|_| "guest".into());
    let options = || StartOptions {
        auth: Credentials::basic(&user, &password).into(),
        ..Default::default()
    };
    println!("FireSat on prefix {prefix} ({path})");
    let summary = nost_firesat::run(&config, &prefix, options, &Default::default()).await?;
    println!("{summary}");
    Ok(())
}
