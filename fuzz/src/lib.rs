//! Fuzz entry points of nost-rs; see `entries.rs`.
#![allow(missing_docs)]

pub mod entries;
