//! Keycloak token flows for NOS-T and a background refresher that keeps a
//! session alive for as long as a run lasts.
//!
//! This crate owns every token. It does not open AMQP connections; it hands
//! each new access token to whoever holds one (see `nost-amqp`).
