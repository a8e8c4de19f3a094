//! RabbitMQ connections for NOS-T applications.
//!
//! The only crate that touches `lapin`: it turns configuration and tokens into
//! live connections, pushes renewed tokens with `connection.update-secret`,
//! reconnects after failures and buffers what could not be sent.
