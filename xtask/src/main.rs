//! `cargo xtask`: the project's automation (test, integration, bench).

use std::process::{Command, ExitCode};

fn cargo(args: &[&str]) -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    Command::new(cargo)
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let steps: Vec<(&str, Vec<&str>)> = match args.first().map(String::as_str) {
        Some("test") => vec![
            ("fmt", vec!["fmt", "--all", "--", "--check"]),
            (
                "clippy",
                vec![
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ],
            ),
            ("tests", vec!["test", "--workspace"]),
        ],
        Some("integration") => vec![("integration", vec!["test", "-p", "nost-tests"])],
        _ => {
            eprintln!("usage: cargo xtask <test|integration>");
            return ExitCode::from(2);
        }
    };
    for (name, a) in steps {
        if !cargo(&a) {
            eprintln!("xtask: {name} failed");
            return ExitCode::FAILURE;
        }
        eprintln!("xtask: {name} ok");
    }
    ExitCode::SUCCESS
}
