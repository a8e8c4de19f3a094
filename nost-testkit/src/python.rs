//! The peer: Python `nost_tools` 3.6.0 from PyPI in a virtual environment of
//! the build directory, shared by the interop suites and the benchmarks.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The version every interop test and benchmark runs against.
pub const NOST_TOOLS_VERSION: &str = "3.6.0";

/// The interpreter of a virtual environment holding `nost-tools==3.6.0`,
/// created on first use under `<target>/interop-venv` (or taken from
/// `NOST_TEST_PYTHON`). The error says what to install when it cannot be made.
pub fn nost_tools_python(target_dir: &Path) -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("NOST_TEST_PYTHON") {
        return Ok(p.into());
    }
    let root = target_dir.join("interop-venv");
    let python = root.join("bin/python");
    let marker = root.join(format!(".nost-tools-{NOST_TOOLS_VERSION}"));
    if marker.exists() {
        return Ok(python);
    }
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{cmd:?} failed (is python3-venv installed and PyPI reachable?):\n{}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&root))?;
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "-q",
        &format!("nost-tools=={NOST_TOOLS_VERSION}"),
    ]))?;
    std::fs::write(&marker, "").map_err(|e| format!("{}: {e}", marker.display()))?;
    Ok(python)
}

/// Make sure `module` imports in `python`'s environment, installing `spec`
/// with pip when it does not (e.g. `("sgp4", "sgp4==2.27")`).
pub fn ensure_package(python: &Path, module: &str, spec: &str) -> Result<(), String> {
    let imports = |py: &Path| {
        Command::new(py)
            .args(["-c", &format!("import {module}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if imports(python) {
        return Ok(());
    }
    let out = Command::new(python)
        .args(["-m", "pip", "install", "-q", spec])
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if out.status.success() && imports(python) {
        Ok(())
    } else {
        Err(format!(
            "pip install {spec} failed (is PyPI reachable?):\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
