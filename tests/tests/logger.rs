//! The LoggerApplication on the local broker: every message published by an
//! independent (raw lapin) publisher is one CSV row, read back by a CSV
//! parser with its body byte for byte; and a file written by nost-rs reads
//! like one written by Python nost_tools 3.6.0's LoggerApplication.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use nost_app::{LoggerApplication, StartOptions};
use nost_config::{Config, Credentials, Origin};
use nost_testkit::{interop_scripts, python_with_nost_tools, unique};

/// Payloads a naive CSV writer breaks (nost_tools writes them unquoted).
fn nasty() -> Vec<String> {
    vec![
        r#"{"name":"fire","properties":{"ready":true}}"#.into(),
        r#"{"a":"x,y","b":"say \"hi\""}"#.into(),
        "line one\nline two".into(),
        "crlf\r\nend".into(),
        "\"".into(),
        ",,,".into(),
        "".into(),
        "  spaced  ".into(),
        "🔥 façade ünïcode".into(),
        "trailing newline\n".into(),
        format!("{{\"big\":\"{}\"}}", "ab,\"cd\"\n".repeat(1000)),
    ]
}

fn config(dir: &Path, body: &str) -> Config {
    let yaml = format!(
        "servers:\n  rabbitmq:\n    host: \"127.0.0.1\"\n    port: 5672\nexecution:\n  logger_application:\n    set_offset: False\n    log_dir: \"{}\"\n{body}",
        dir.display()
    );
    std::fs::write(dir.join("nost.yaml"), &yaml).unwrap();
    std::fs::write(dir.join(".env"), "USERNAME=\"guest\"\nPASSWORD=\"guest\"\n").unwrap();
    nost_config::load_str(&yaml, Origin::File(dir.join("nost.yaml")))
        .unwrap()
        .config
}

fn options() -> StartOptions {
    StartOptions {
        auth: Credentials::basic("guest", "guest").into(),
        ..Default::default()
    }
}

async fn publisher(prefix: &str) -> (Connection, lapin::Channel) {
    let conn = Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.exchange_declare(
        prefix.into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    (conn, ch)
}

async fn publish_to(ch: &lapin::Channel, exchange: &str, key: &str, body: &str) {
    let confirm = ch
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack(), "broker did not confirm {key}");
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (timestamp, topic, payload) of every row, by the `csv` crate.
fn read_rows(path: &Path) -> (Vec<String>, Vec<(String, String, String)>) {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .unwrap();
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            assert_eq!(rec.len(), 3, "{rec:?}");
            (rec[0].to_owned(), rec[1].to_owned(), rec[2].to_owned())
        })
        .collect();
    (header, rows)
}

fn is_python_timestamp(t: &str) -> bool {
    chrono::DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f%:z").is_ok()
        && t.ends_with("+00:00")
        && (t.len() == "2024-01-01 12:00:00+00:00".len()
            || t.len() == "2024-01-01 12:00:00.123456+00:00".len())
}

fn is_python_file_name(p: &Path) -> bool {
    let name = p.file_name().unwrap().to_string_lossy().into_owned();
    let Some(stem) = name.strip_suffix("+00-00.log") else {
        return false;
    };
    let text = stem.replacen('T', " ", 1);
    let (date, time) = text.split_once(' ').unwrap_or(("", ""));
    chrono::NaiveDateTime::parse_from_str(
        &format!("{date} {}", time.replace('-', ":")),
        "%Y-%m-%d %H:%M:%S%.f",
    )
    .is_ok()
}

#[tokio::test]
async fn every_message_is_one_csv_row_with_its_body_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("logcsv");
    let cfg = config(dir.path(), "");
    let logger = LoggerApplication::start_up("logger", &prefix, &cfg, options())
        .await
        .unwrap();
    assert_eq!(logger.binding_key(), format!("{prefix}.*.#"));
    assert!(is_python_file_name(&logger.file()), "{:?}", logger.file());

    let (conn, ch) = publisher(&prefix).await;
    let mut sent: Vec<(String, String)> = Vec::new();
    for (i, p) in nasty().into_iter().enumerate() {
        sent.push((format!("{prefix}.rawpub.nasty.{i}"), p));
    }
    for i in 0..300 {
        sent.push((
            format!("{prefix}.rawpub.status.time"),
            format!(r#"{{"name":"rawpub","properties":{{"i":{i},"note":"a,b \"c\""}}}}"#),
        ));
    }
    for (key, body) in &sent {
        publish_to(&ch, &prefix, key, body).await;
    }
    let n = sent.len() as u64;
    until("every row", || logger.rows() >= n).await;
    let file = logger.file();
    logger.shut_down().await;
    conn.close(200, "bye".into()).await.unwrap();

    let (header, rows) = read_rows(&file);
    assert_eq!(header, ["Timestamp", "Topic", "Payload"]);
    let got: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r.1.starts_with(&format!("{prefix}.rawpub.")))
        .map(|r| (r.1.clone(), r.2.clone()))
        .collect();
    assert_eq!(got.len(), sent.len(), "rows for the published messages");
    assert_eq!(got, sent, "topics and bodies byte for byte, in order");
    for r in &rows {
        assert!(is_python_timestamp(&r.0), "timestamp {:?}", r.0);
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("Timestamp,Topic,Payload\n"));
}

#[tokio::test]
async fn a_topic_filter_applies_and_the_mqtt_plus_still_matches_every_app() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("logplus");
    // nost_tools' default log_app `+` matches nothing in AMQP; nost-rs reads it as `*`.
    let loaded = nost_config::load_str(
        &format!(
            "servers:\n  rabbitmq:\n    host: \"127.0.0.1\"\nexecution:\n  logger_application:\n    set_offset: False\n    log_app: \"+\"\n    log_topic: \"status.#\"\n    log_dir: \"{}\"\n",
            dir.path().display()
        ),
        Origin::Program,
    )
    .unwrap();
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.path == "execution.logger_application.log_app")
    );
    let logger = LoggerApplication::start_up("logger", &prefix, &loaded.config, options())
        .await
        .unwrap();
    assert_eq!(logger.binding_key(), format!("{prefix}.*.status.#"));
    let (conn, ch) = publisher(&prefix).await;
    publish_to(&ch, &prefix, &format!("{prefix}.a.other"), "no").await;
    publish_to(&ch, &prefix, &format!("{prefix}.a.status.ready"), "yes-a").await;
    publish_to(&ch, &prefix, &format!("{prefix}.b.status.time"), "yes-b").await;
    until("both status rows", || logger.rows() >= 2).await;
    let file = logger.file();
    logger.shut_down().await;
    conn.close(200, "bye".into()).await.unwrap();
    let (_, rows) = read_rows(&file);
    let payloads: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(payloads, ["yes-a", "yes-b"]);
}

#[tokio::test]
async fn a_bad_logger_section_names_the_field() {
    let err = nost_config::load_str(
        "servers:\n  rabbitmq: {}\nexecution:\n  logger_application:\n    log_topic: \"a..b\"\n",
        Origin::Program,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("execution.logger_application.log_topic"),
        "{err}"
    );
}

fn python_reads(files: &[&Path]) -> Vec<serde_json::Value> {
    let out = Command::new(python_with_nost_tools())
        .arg(interop_scripts().join("read_csv.py"))
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn our_file_reads_like_the_one_python_nost_tools_writes() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("loginterop");
    let cfg = config(dir.path(), "");
    let py_dir = dir.path().join("python");
    let mut py = Command::new(python_with_nost_tools())
        .arg(interop_scripts().join("logger.py"))
        .args([prefix.as_str()])
        .arg(dir.path().join("nost.yaml"))
        .arg(&py_dir)
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let py_file = PathBuf::from(
        line.trim()
            .strip_prefix("STARTED ")
            .unwrap_or_else(|| panic!("python logger: {line:?}")),
    );
    let py_file = if py_file.is_absolute() {
        py_file
    } else {
        dir.path().join(py_file)
    };
    let logger = LoggerApplication::start_up("logger", &prefix, &cfg, options())
        .await
        .unwrap();

    let (conn, ch) = publisher(&prefix).await;
    // Lines nost_tools writes as valid CSV: payloads without `,`, CR, LF
    // (JSON with one key, plain text).
    let simple: Vec<String> = (0..20)
        .map(|i| format!("{{\"i\":{i}}}"))
        .chain([
            "plain text".to_owned(),
            "{\"x\":\"y\"}".to_owned(),
            "42".to_owned(),
        ])
        .collect();
    let mut sent: Vec<(String, String)> = Vec::new();
    for (i, p) in simple.iter().enumerate() {
        sent.push((format!("{prefix}.rawpub.simple.{i}"), p.clone()));
    }
    for (i, p) in nasty().into_iter().enumerate() {
        sent.push((format!("{prefix}.rawpub.nasty.{i}"), p));
    }
    let end = format!("{prefix}.rawpub.end");
    sent.push((end.clone(), "END".into()));
    for (k, b) in &sent {
        publish_to(&ch, &prefix, k, b).await;
    }
    until("the last row in both files", || {
        std::fs::read_to_string(&py_file).is_ok_and(|t| t.contains(&format!(",{end},END")))
            && logger.rows() >= sent.len() as u64
    })
    .await;
    writeln!(py.stdin.as_mut().unwrap(), "stop").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "DONE");
    assert!(py.wait().unwrap().success());
    let ours = logger.file();
    logger.shut_down().await;
    conn.close(200, "bye".into()).await.unwrap();

    assert!(is_python_file_name(&py_file), "{py_file:?}");
    assert!(is_python_file_name(&ours), "{ours:?}");
    let parsed = python_reads(&[&ours, &py_file]);
    let rows = |v: &serde_json::Value| -> Vec<Vec<String>> {
        serde_json::from_value(v["rows"].clone()).unwrap()
    };
    let (our_rows, py_rows) = (rows(&parsed[0]), rows(&parsed[1]));
    assert_eq!(our_rows[0], ["Timestamp", "Topic", "Payload"]);
    assert_eq!(py_rows[0], our_rows[0], "same header");
    assert_eq!(
        parsed[0]["timestamps_parse"], true,
        "Python parses our timestamps"
    );

    // Python's csv module reads every message of our file back exactly.
    let ours_sent: Vec<(String, String)> = our_rows[1..]
        .iter()
        .filter(|r| r[1].starts_with(&format!("{prefix}.rawpub.")))
        .map(|r| (r[1].clone(), r[2].clone()))
        .collect();
    assert_eq!(ours_sent, sent);

    // Where nost_tools' unquoted line is valid CSV, both files read alike:
    // same topic, payload and timestamp format.
    let raw_ours = std::fs::read_to_string(&ours).unwrap();
    let raw_py = std::fs::read_to_string(&py_file).unwrap();
    for (i, p) in simple.iter().enumerate() {
        let topic = format!("{prefix}.rawpub.simple.{i}");
        let find = |rows: &[Vec<String>]| {
            rows.iter()
                .find(|r| r.len() == 3 && r[1] == topic)
                .cloned()
                .unwrap_or_else(|| panic!("no row for {topic}"))
        };
        let (a, b) = (find(&our_rows), find(&py_rows));
        assert_eq!((&a[1], &a[2]), (&b[1], &b[2]));
        assert_eq!(&a[2], p);
        assert!(
            is_python_timestamp(&a[0]) && is_python_timestamp(&b[0]),
            "{a:?} {b:?}"
        );
        // Without a quote either, the line is byte for byte nost_tools' one
        // (a field with `"` is quoted, as CSV writers do).
        if !p.contains('"') {
            let tail = format!(",{topic},{p}\n");
            assert!(raw_ours.contains(&tail), "ours: {tail}");
            assert!(raw_py.contains(&tail), "python: {tail}");
        }
    }
    // And where it is not (commas, quotes, newlines), nost_tools' file does
    // not give the payloads back, ours does (checked above).
    let py_sent: Vec<(String, String)> = py_rows[1..]
        .iter()
        .filter(|r| r.len() == 3 && r[1].contains(".rawpub.nasty."))
        .map(|r| (r[1].clone(), r[2].clone()))
        .collect();
    let nasty_sent: Vec<(String, String)> = sent
        .iter()
        .filter(|(k, _)| k.contains(".rawpub.nasty."))
        .cloned()
        .collect();
    assert_ne!(
        py_sent, nasty_sent,
        "nost_tools' unquoted rows do not round-trip"
    );
}
