//! The workspace-level integration suites of nost-rs live in `tests/*.rs`
//! (user stories against the real brokers); their helpers are in
//! `nost-testkit`. This library holds no code, only the README's Rust
//! snippets, compiled (and the network-free ones run) as doctests.

/// The README, so that its Rust snippets are compiled as doctests
/// (`cargo test -p nost-tests --doc`).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
