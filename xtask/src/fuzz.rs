//! `cargo xtask fuzz [SECONDS]`: run every cargo-fuzz target of `fuzz/` for
//! SECONDS each (default 60) on the nightly toolchain, seeded from the kept
//! corpus `fuzz/corpus/<target>/`; the inputs it finds go to
//! `fuzz/target/corpus-work/<target>/`. Inputs worth keeping (and every
//! crash, copied from `fuzz/artifacts/` once fixed) go into the kept corpus,
//! which `tests/tests/fuzz_corpus.rs` replays in `cargo xtask test`.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// The targets of `fuzz/Cargo.toml`.
pub const TARGETS: [&str; 5] = [
    "yaml_config",
    "dotenv",
    "messages",
    "token_response",
    "jwt_claims",
];

/// Run each target for `seconds`; a crash stops with its artifact named.
pub fn run(seconds: u64) -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let has_fuzz = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_fuzz {
        eprintln!(
            "xtask fuzz: needs cargo-fuzz on the nightly toolchain: `rustup toolchain install nightly` and `cargo install cargo-fuzz`"
        );
        return ExitCode::FAILURE;
    }
    let mut failed = Vec::new();
    for target in TARGETS {
        eprintln!("xtask fuzz: {target} for {seconds} s");
        // New inputs go to the first directory (build output, not the
        // repository); the kept corpus is read as seeds.
        let work = format!("target/corpus-work/{target}");
        if let Err(e) = std::fs::create_dir_all(root.join("fuzz").join(&work)) {
            eprintln!("xtask fuzz: cannot create fuzz/{work}: {e}");
            return ExitCode::FAILURE;
        }
        let status = Command::new("cargo")
            .current_dir(root.join("fuzz"))
            .args(["+nightly", "fuzz", "run", target, &work])
            .arg(format!("corpus/{target}"))
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-max_len=65536",
                "-timeout=10",
            ])
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                eprintln!(
                    "xtask fuzz: {target} FAILED ({s}); the input is in fuzz/artifacts/{target}/"
                );
                failed.push(target);
            }
            Err(e) => {
                eprintln!("xtask fuzz: cannot run cargo fuzz: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if failed.is_empty() {
        eprintln!(
            "xtask fuzz: all {} targets ran {seconds} s without a crash",
            TARGETS.len()
        );
        ExitCode::SUCCESS
    } else {
        eprintln!("xtask fuzz: crashes in {failed:?}");
        ExitCode::FAILURE
    }
}
