//! Test support: an OAuth2-enabled RabbitMQ node and a Keycloak emulation.
