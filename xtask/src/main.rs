//! `cargo xtask`: the project's automation (test, integration, bench).
fn main() {}
