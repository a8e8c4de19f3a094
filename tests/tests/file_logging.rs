//! File logging from the YAML logging fields, applied by `start_up` itself
//! (not only by the `nost` command), on the local broker: the file is where
//! the role's section says, several applications of one process each get
//! theirs, shutdown closes it, and `StartOptions::skip_file_logging` writes
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use nost_app::{Application, ManagedApplication, StartOptions};
use nost_config::{Config, Credentials, Origin};
use nost_testkit::unique;

fn options() -> StartOptions {
    StartOptions {
        auth: Credentials::basic("guest", "guest").into(),
        set_offset: Some(false),
        ..Default::default()
    }
}

fn config(dir: &Path, app: &str, managed: &str) -> Config {
    let logs = dir.join("logs");
    let yaml = format!(
        "servers:\n  rabbitmq:\n    host: \"127.0.0.1\"\nexecution:\n  applications:\n    {app}:\n      set_offset: False\n      enable_file_logging: True\n      log_dir: \"{logs}\"\n      log_filename: \"{app}.log\"\n      log_level: INFO\n  managed_applications:\n    {managed}:\n      set_offset: False\n      enable_file_logging: True\n      log_dir: \"{logs}\"\n      log_level: DEBUG\n",
        logs = logs.display()
    );
    nost_config::load_str(&yaml, Origin::Program)
        .unwrap()
        .config
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[tokio::test]
async fn start_up_writes_the_log_file_of_each_roles_section() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("filelog");
    let (app_name, managed_name) = ("filer", "mfiler");
    let cfg = config(dir.path(), app_name, managed_name);
    let app = Application::start_up(app_name, &prefix, &cfg, options())
        .await
        .unwrap();
    let file = dir.path().join("logs").join(format!("{app_name}.log"));
    until("the application's start in its file", || {
        read(&file).contains("application started")
    })
    .await;
    let text = read(&file);
    assert!(
        text.contains(&format!(
            "[INFO] nost_app: application started app={app_name}"
        )),
        "Python's default layout: {text}"
    );

    // A second application in the same process gets its own file (named
    // `<APP>_<YYYYmmdd_HHMMSS>.log` as nost_tools does), at its own level.
    let managed = ManagedApplication::start_up(managed_name, &prefix, &cfg, options())
        .await
        .unwrap();
    let own = || {
        std::fs::read_dir(dir.path().join("logs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("{managed_name}_"))
            })
    };
    until("the managed application's file", || {
        own().is_some_and(|p| read(&p).contains(&format!("application started app={managed_name}")))
    })
    .await;
    managed.app().shut_down().await;

    app.shut_down().await;
    until("the shutdown line", || {
        read(&file).contains("application shut down")
    })
    .await;
    // Closed at shutdown: later lines go nowhere.
    tracing::warn!(target: "nost_app", "a line after the shutdown of {app_name}");
    assert!(!read(&file).contains("a line after the shutdown"));
}

#[tokio::test]
async fn skip_file_logging_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("nofilelog");
    let cfg = config(dir.path(), "quiet", "mquiet");
    let app = Application::start_up(
        "quiet",
        &prefix,
        &cfg,
        StartOptions {
            skip_file_logging: true,
            ..options()
        },
    )
    .await
    .unwrap();
    app.send_message("status.x", "{}").await.unwrap();
    app.flush(Duration::from_secs(10)).await.unwrap();
    app.shut_down().await;
    assert!(
        !dir.path().join("logs").exists(),
        "no log directory or file for an opted-out start-up"
    );
}
