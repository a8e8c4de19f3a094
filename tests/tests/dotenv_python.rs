//! `.env` files give the same values in nost-rs as in python-dotenv, which
//! nost_tools 3.6.0 uses on the same files: a differential test against the
//! python-dotenv of the peer's venv (installed with nost-tools from PyPI).
//!
//! The corpus is `tests/data/dotenv-corpus.env`: cases separated by lines
//! holding only `%%`. Each case is compared on its own, the whole file as
//! one `.env` too, and a few cases that a text file cannot hold well (CRLF,
//! lone CR, BOM, odd whitespace) are added here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use nost_testkit::python_with_nost_tools;
use serde_json::{Value, json};

const SCRIPT: &str = r#"
import json, logging, os, sys, tempfile

from dotenv import dotenv_values
class Count(logging.Handler):
    n = 0
    def emit(self, record):
        if "could not parse" in record.getMessage():
            Count.n += 1
logging.getLogger("dotenv.main").addHandler(Count())
cases = json.load(sys.stdin)
out = []
skipped = []
with tempfile.TemporaryDirectory() as d:
    for i, text in enumerate(cases):
        p = os.path.join(d, f"case{i}.env")
        with open(p, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        Count.n = 0
        out.append([[k, v] for k, v in dotenv_values(p).items()])
        skipped.append(Count.n)
from importlib.metadata import version
print(json.dumps({"version": version("python-dotenv"), "environ": dict(os.environ), "values": out, "skipped": skipped}))
"#;

fn cases() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/dotenv-corpus.env");
    let corpus = std::fs::read_to_string(path).unwrap();
    let mut cases: Vec<String> = corpus.split("\n%%\n").map(str::to_owned).collect();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    cases.push(corpus.clone());
    cases.extend(
        [
            "USERNAME=crlf\r\nPASSWORD=\"two\r\nlines\"\r\n",
            "PASSWORD=lone\rCR=1\r",
            "\u{feff}PASSWORD=bom",
            "PASSWORD=nbsp\u{a0}#c",
            "PASSWORD=x\u{1f}#unit separator",
            "PASSWORD=\u{2003}em space\u{2003}",
            "export\tPASSWORD=tab after export",
            "PASSWORD='unterminated",
            "",
            "\n\n\n",
            "PASSWORD=${NOST_DIFF_HOME}${NOST_DIFF_HOME:-d}${NOST_DIFF_EMPTY}end",
        ]
        .map(str::to_owned),
    );
    cases
}

#[test]
fn every_corpus_case_has_the_values_python_dotenv_gives() {
    let cases = cases();
    let mut child = Command::new(python_with_nost_tools())
        .args(["-c", SCRIPT])
        .env_clear()
        .env("LC_ALL", "C.UTF-8")
        .env("NOST_DIFF_HOME", "/from/process")
        .env("NOST_DIFF_EMPTY", "")
        .env("PASSWORD", "process-password")
        .env("CLIENT_ID", "process-client")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json!(cases).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python-dotenv failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py: Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = py["version"].as_str().unwrap_or("?").to_owned();
    // The environment python saw is the one nost-rs looks names up in.
    let environ: BTreeMap<String, String> = serde_json::from_value(py["environ"].clone()).unwrap();
    let lookup = |name: &str| environ.get(name).cloned();
    let expected = py["values"].as_array().unwrap();
    let skipped = py["skipped"].as_array().unwrap();
    assert_eq!(expected.len(), cases.len());
    let mut compared = 0;
    let mut mismatches = Vec::new();
    let mut with_bad_lines = 0;
    for ((text, want), skipped) in cases.iter().zip(expected).zip(skipped) {
        let ours = nost_config::dotenv::dotenv_values(text, &lookup);
        // The lines python-dotenv skips (with a warning) are the ones
        // nost-rs refuses the file for.
        let skipped = skipped.as_u64().unwrap() as usize;
        if skipped != ours.invalid_lines.len() {
            mismatches.push(format!(
                "case {text:?}: python-dotenv skips {skipped} statements, nost-rs finds {:?}",
                ours.invalid_lines
            ));
        }
        with_bad_lines += usize::from(skipped > 0);
        let got: Value = ours
            .values
            .iter()
            .map(|(k, v)| json!([k, v]))
            .collect::<Vec<_>>()
            .into();
        compared += want.as_array().map_or(0, Vec::len);
        if &got != want {
            mismatches.push(format!(
                "case {text:?}:\n  python-dotenv {want}\n  nost-rs       {got}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ from python-dotenv {version}:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
    assert!(compared >= 60, "only {compared} values compared");
    assert!(
        with_bad_lines >= 5,
        "only {with_bad_lines} cases with lines python-dotenv skips"
    );
}
