//! FireSat end to end on the local broker (127.0.0.1:5672, guest/guest),
//! checked against an independent propagation with Python's `sgp4`
//! package (`tests/propagate.py`, in the nost_tools peer venv).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use nost_app::StartOptions;
use nost_config::Credentials;
use nost_firesat::{Scenario, data};
use serde_json::{Value, json};

fn python() -> std::path::PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let py = nost_testkit::python::nost_tools_python(&target).unwrap_or_else(|e| panic!("{e}"));
    nost_testkit::python::ensure_package(&py, "sgp4", "sgp4==2.27")
        .unwrap_or_else(|e| panic!("{e}"));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firesat_counts_match_an_independent_propagation() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/firesat.yaml");
    let config = nost_config::load_file(path).unwrap().config;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let prefix = format!("firesat{}x{nanos}", std::process::id());
    let scenario = Scenario::default();
    let options = || StartOptions {
        credentials: Some(Credentials::basic("guest", "guest")),
        ..Default::default()
    };
    let summary = tokio::time::timeout(
        std::time::Duration::from_secs(90),
        nost_firesat::run(&config, &prefix, options, &scenario),
    )
    .await
    .expect("the run finishes")
    .unwrap();
    println!("{summary}");

    let expected = independent(
        &scenario,
        "2023-08-04T12:00:00Z",
        "2023-08-04T14:00:00Z",
        10,
    );
    // The constellation learns of a fire 1 or 2 steps after its ignition
    // step (the message crosses the broker while both simulators step), so
    // the counts lie between those of lag 2 and lag 1.
    let (early, late) = (&expected["1"], &expected["2"]);
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
    // Where both lags agree, detection and report are exactly the
    // independent ones: same step, same satellite, same station.
    let mut compared = 0;
    for (id, rec) in &summary.fires {
        let (e, l) = (&early[id.to_string()], &late[id.to_string()]);
        if e != l {
            continue;
        }
        compared += 1;
        match (&rec.detected, e["detected"].as_array()) {
            (None, None) => {}
            (Some((t, sat)), Some(x)) => {
                assert_eq!(
                    (*t, sat.as_str()),
                    (time(&x[0]), x[1].as_str().unwrap()),
                    "fire {id}"
                )
            }
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
