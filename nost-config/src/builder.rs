//! Building a configuration in code, with the same validation as a file.

use crate::error::{ConfigError, Origin};
use crate::load::check;
use crate::schema::{
    ApplicationConfig, Config, Execution, GeneralConfig, KeycloakConfig, ManagedApplicationConfig,
    ManagerConfig, RabbitMqConfig, Servers,
};

/// Builds a [`Config`] without a YAML file.
///
/// Starts from the schema defaults; [`ConfigBuilder::build`] validates like
/// the loader and refuses what is invalid (never a silent fall-back to
/// defaults, as `nost_tools` does).
///
/// ```
/// let config = nost_config::Config::builder()
///     .rabbitmq(|r| {
///         r.host = "broker.example".into();
///         r.port = 5671;
///         r.tls = true;
///     })
///     .build()
///     .expect("valid");
/// assert_eq!(config.servers.rabbitmq.port, 5671);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConfigBuilder {
    config: Config,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            servers: Servers {
                rabbitmq: RabbitMqConfig::default(),
                keycloak: None,
            },
            channels: Default::default(),
            execution: Execution::default(),
        }
    }
}

impl Config {
    /// Start building a configuration in code.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// Check a configuration built or changed in code (the loader already
    /// does this for files).
    pub fn validate_all(&self) -> Result<(), ConfigError> {
        let errors = check(self);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                origin: Origin::Program,
                errors,
            })
        }
    }
}

impl ConfigBuilder {
    /// Change `servers.rabbitmq`.
    pub fn rabbitmq(mut self, f: impl FnOnce(&mut RabbitMqConfig)) -> Self {
        f(&mut self.config.servers.rabbitmq);
        self
    }

    /// Add or change `servers.keycloak` and switch `keycloak_authentication` on.
    pub fn keycloak(mut self, f: impl FnOnce(&mut KeycloakConfig)) -> Self {
        let kc = self
            .config
            .servers
            .keycloak
            .get_or_insert_with(Default::default);
        f(kc);
        self.config.servers.rabbitmq.keycloak_authentication = true;
        self
    }

    /// Add or change `execution.general`.
    pub fn general(mut self, f: impl FnOnce(&mut GeneralConfig)) -> Self {
        f(self
            .config
            .execution
            .general
            .get_or_insert_with(Default::default));
        self
    }

    /// Add or change `execution.manager`.
    pub fn manager(mut self, f: impl FnOnce(&mut ManagerConfig)) -> Self {
        f(self
            .config
            .execution
            .manager
            .get_or_insert_with(Default::default));
        self
    }

    /// Add or change `execution.managed_applications.<name>`.
    pub fn managed_application(
        mut self,
        name: impl Into<String>,
        f: impl FnOnce(&mut ManagedApplicationConfig),
    ) -> Self {
        f(self
            .config
            .execution
            .managed_applications
            .entry(name.into())
            .or_default());
        self
    }

    /// Add or change `execution.applications.<name>`.
    pub fn application(
        mut self,
        name: impl Into<String>,
        f: impl FnOnce(&mut ApplicationConfig),
    ) -> Self {
        f(self
            .config
            .execution
            .applications
            .entry(name.into())
            .or_default());
        self
    }

    /// Validate and return the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        self.config.validate_all()?;
        Ok(self.config)
    }
}
