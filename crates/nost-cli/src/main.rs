//! The `nost` command.
fn main() {}
