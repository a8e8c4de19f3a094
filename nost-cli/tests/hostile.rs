//! Absurd values given to the `nost` command are errors, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn nost() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nost"));
    c.env_remove("USERNAME")
        .env_remove("PASSWORD")
        .env_remove("CLIENT_ID")
        .env_remove("CLIENT_SECRET_KEY")
        .env_remove("NOST_OTP");
    c
}

fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_names_an_out_of_range_time_step_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("managed.yaml");
    std::fs::write(
        &yaml,
        "servers:\n  rabbitmq:\n    host: localhost\nexecution:\n  managed_applications:\n    app:\n      time_step: 10000000000000000\n",
    )
    .unwrap();
    std::fs::write(dir.path().join(".env"), "USERNAME=u\nPASSWORD=p\n").unwrap();
    let (code, err) = run(nost()
        .current_dir(dir.path())
        .args(["check", "--config"])
        .arg(&yaml));
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("managed.yaml") && err.contains("line 7") && err.contains("time_step"),
        "{err}"
    );
}

#[test]
fn absurd_numbers_on_the_command_line_are_refused_by_the_argument_parser() {
    for args in [
        &["demo", "--time-scale=NaN"][..],
        &["demo", "--time-scale=-1"],
        &["demo", "--time-scale=inf"],
        &["demo", "--time-scale=0"],
        &["demo", "--minutes=9223372036854775807"],
        &["demo", "--minutes=-5"],
        &["listen", "--prefix", "p", "--timeout=1e300"],
        &["listen", "--prefix", "p", "--timeout=NaN"],
        &["listen", "--prefix", "p", "--timeout=-1"],
    ] {
        let (code, err) = run(nost().args(args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        let flag = args[args.len() - 1].split('=').next().unwrap();
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}
