//! The workspace-level integration suites of nost-rs live in `tests/*.rs`
//! (user stories against the real brokers); their helpers are in
//! `nost-testkit`. This library holds no code.
