//! FireSat end to end on the local broker (127.0.0.1:5672, guest/guest),
//! checked against an independent propagation with Python's `sgp4`
//! package (`tests/propagate.py`, in the nost_tools peer venv); in the
//! second test the ground stations are a Python nost_tools application
//! (`tests/ground.py`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use nost_app::StartOptions;
use nost_config::Credentials;
use nost_firesat::{Scenario, data};
use serde_json::{Value, json};

fn python() -> std::path::PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let py = nost_testkit::nost_tools_python(&target).unwrap_or_else(|e| panic!("{e}"));
    nost_testkit::ensure_package(&py, "sgp4", "sgp4==2.27").unwrap_or_else(|e| panic!("{e}"));
    py
}

/// Per lag: fireId → {detected: [time, sat] | null, reported: [time, sat, station] | null}.
fn independent(scenario: &Scenario, start: &str, stop: &str, step_s: i64) -> Value {
    let fires: Vec<Value> = data::fires(&scenario.fires)
        .unwrap()
        .iter()
        .map(|f| serde_json::to_value(f).unwrap())
        .collect();
    let grounds: Vec<Value> = data::grounds(&scenario.grounds)
        .unwrap()
        .iter()
        .map(|g| serde_json::to_value(g).unwrap())
        .collect();
    let input = json!({
        "tles": scenario.tles, "fires": fires, "grounds": grounds,
        "start": start, "stop": stop, "step_s": step_s,
        "field_of_regard": scenario.field_of_regard, "lags": [1, 2, 3],
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/propagate.py");
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "propagate.py failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .to_utc()
}

fn count(fires: &Value, what: &str) -> usize {
    fires
        .as_object()
        .unwrap()
        .values()
        .filter(|f| !f[what].is_null())
        .count()
}

fn prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("firesat{}x{nanos}", std::process::id())
}

const YAML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/firesat.yaml");

/// The broker port: the YAML's (the default node on 5672) unless
/// `NOST_FIRESAT_TEST_PORT` names another local node.
fn port_override() -> Option<u16> {
    std::env::var("NOST_FIRESAT_TEST_PORT")
        .ok()
        .map(|p| p.parse().expect("NOST_FIRESAT_TEST_PORT is a port number"))
}

async fn run(prefix: &str, scenario: &Scenario) -> nost_firesat::Summary {
    let mut config = nost_config::load_file(YAML).unwrap().config;
    if let Some(port) = port_override() {
        config.servers.rabbitmq.port = u32::from(port);
    }
    let options = || StartOptions {
        auth: Credentials::basic("guest", "guest").into(),
        ..Default::default()
    };
    let summary = tokio::time::timeout(
        std::time::Duration::from_secs(90),
        nost_firesat::run(&config, prefix, options, scenario),
    )
    .await
    .expect("the run finishes")
    .unwrap();
    println!("{summary}");
    summary
}

/// The run's counts and per-fire results against the independent
/// propagation of the same scenario (firesat.yaml: 12:00–14:00, 10 s steps).
fn check(summary: &nost_firesat::Summary, scenario: &Scenario) {
    let expected = independent(scenario, "2023-08-04T12:00:00Z", "2023-08-04T14:00:00Z", 10);
    // The constellation learns of a fire 1 or 2 steps (3 on a busy machine)
    // after its ignition step: the message crosses the broker while both
    // simulators step. So the counts lie between those of lags 3 and 1.
    let (early, late) = (&expected["1"], &expected["3"]);
    assert_eq!(summary.started(), 12, "every fire of the CSV starts");
    for what in ["detected", "reported"] {
        let got = match what {
            "detected" => summary.detected(),
            _ => summary.reported(),
        };
        let (lo, hi) = (count(late, what), count(early, what));
        assert!(
            lo <= got && got <= hi,
            "{what}: {got} not within [{lo}, {hi}] (independent propagation)"
        );
    }
    assert!(summary.detected() > 0 && summary.reported() > 0);
    // Where the lags agree, detection and report are exactly the
    // independent ones: same step, same satellite, same station.
    let mut compared = 0;
    for (id, rec) in &summary.fires {
        let key = id.to_string();
        let e = &early[&key];
        if e != &expected["2"][&key] || e != &late[&key] {
            continue;
        }
        compared += 1;
        match (&rec.detected, e["detected"].as_array()) {
            (None, None) => {}
            (Some((t, sat)), Some(x)) => assert_eq!(
                (*t, sat.as_str()),
                (time(&x[0]), x[1].as_str().unwrap()),
                "fire {id}"
            ),
            (got, want) => panic!("fire {id}: detected {got:?}, independent {want:?}"),
        }
        match (&rec.reported, e["reported"].as_array()) {
            (None, None) => {}
            (Some((t, sat, g)), Some(x)) => assert_eq!(
                (*t, sat.as_str(), u64::from(*g)),
                (time(&x[0]), x[1].as_str().unwrap(), x[2].as_u64().unwrap()),
                "fire {id}"
            ),
            (got, want) => panic!("fire {id}: reported {got:?}, independent {want:?}"),
        }
    }
    assert!(compared >= 8, "only {compared} fires comparable");
    assert!(summary.positions > 0, "constellation.location published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firesat_counts_match_an_independent_propagation() {
    let scenario = Scenario::default();
    let summary = run(&prefix(), &scenario).await;
    check(&summary, &scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firesat_with_python_nost_tools_ground_stations() {
    let prefix = prefix();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "USERNAME=\"guest\"\nPASSWORD=\"guest\"\n",
    )
    .unwrap();
    let yaml = dir.path().join("firesat.yaml");
    let mut text = std::fs::read_to_string(YAML).unwrap();
    if let Some(port) = port_override() {
        text = text.replace("port: 5672", &format!("port: {port}"));
    }
    std::fs::write(&yaml, text).unwrap();
    let grounds = dir.path().join("grounds.csv");
    std::fs::write(&grounds, data::GROUNDS).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ground.py");
    let mut py = Command::new(python())
        .arg(script)
        .args([
            prefix.as_str(),
            yaml.to_str().unwrap(),
            grounds.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .env("NOST_INTEROP_TIMEOUT", "90")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "ground.py exited early"
        );
        if line.trim() == "STARTED" {
            break;
        }
    }
    let scenario = Scenario {
        with_ground: false,
        ..Scenario::default()
    };
    let summary = run(&prefix, &scenario).await;
    check(&summary, &scenario);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(py.wait().unwrap().success(), "ground.py: {rest}");
    assert!(rest.contains("TERMINATED"), "{rest}");
}
