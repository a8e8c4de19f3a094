//! [`OAuthBrokerInfo`]: what another process needs to reach and control a
//! running node (ports, directory, Erlang name), and `rabbitmqctl` for it.

use std::path::PathBuf;
use std::process::Command;

use super::{BIN, BrokerError, ENV_PREFIX, KID};
use crate::keycloak::SigningKey;

/// How to reach and control a running test node (also from another process).
#[derive(Debug, Clone)]
pub struct OAuthBrokerInfo {
    /// Plain AMQP port on 127.0.0.1.
    pub amqp_port: u16,
    /// AMQPS port on 127.0.0.1 (certificate for localhost/127.0.0.1/::1).
    pub amqps_port: u16,
    /// The node's directory (keys/, tls/, log/ …).
    pub dir: PathBuf,
    /// Erlang node name.
    pub node: String,
    /// Erlang distribution port.
    pub dist_port: u16,
    /// The `kid` the node knows the signing key by ([`KID`]).
    pub kid: String,
}

impl OAuthBrokerInfo {
    /// The private signing key (PKCS#8 PEM) the node trusts, `kid` [`KID`].
    pub fn signing_key_path(&self) -> PathBuf {
        self.dir.join("keys/rsa.pem")
    }

    /// The CA that signed the node's TLS certificate.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }

    /// The key the node trusts, ready for a [`KeycloakEmulator`](crate::KeycloakEmulator).
    pub fn signing_key(&self) -> Result<SigningKey, BrokerError> {
        Ok(SigningKey::from_pem_file(
            &self.signing_key_path(),
            &self.kid,
        )?)
    }

    /// `amqp://127.0.0.1:PORT` (no credentials: the token is the password).
    pub fn amqp_url(&self) -> String {
        format!("amqp://127.0.0.1:{}", self.amqp_port)
    }

    /// Environment variables that describe this node to test processes.
    pub fn to_env(&self) -> Vec<(String, String)> {
        vec![
            (format!("{ENV_PREFIX}AMQP_PORT"), self.amqp_port.to_string()),
            (
                format!("{ENV_PREFIX}AMQPS_PORT"),
                self.amqps_port.to_string(),
            ),
            (format!("{ENV_PREFIX}DIR"), self.dir.display().to_string()),
            (format!("{ENV_PREFIX}NODE"), self.node.clone()),
            (format!("{ENV_PREFIX}DIST_PORT"), self.dist_port.to_string()),
            (format!("{ENV_PREFIX}KID"), self.kid.clone()),
            (
                format!("{ENV_PREFIX}CA_CERT"),
                self.ca_cert_path().display().to_string(),
            ),
            (
                format!("{ENV_PREFIX}SIGNING_KEY"),
                self.signing_key_path().display().to_string(),
            ),
        ]
    }

    /// The node described by [`to_env`](Self::to_env) variables, if set.
    pub fn from_env() -> Option<Self> {
        let var = |k: &str| std::env::var(format!("{ENV_PREFIX}{k}")).ok();
        Some(OAuthBrokerInfo {
            amqp_port: var("AMQP_PORT")?.parse().ok()?,
            amqps_port: var("AMQPS_PORT")?.parse().ok()?,
            dir: var("DIR")?.into(),
            node: var("NODE")?,
            dist_port: var("DIST_PORT")?.parse().ok()?,
            kid: var("KID").unwrap_or_else(|| KID.to_owned()),
        })
    }

    /// The node started by `cargo xtask integration`/`test`, or a panic
    /// saying how to run the suite.
    pub fn from_env_or_panic() -> Self {
        Self::from_env().unwrap_or_else(|| {
            panic!(
                "no OAuth2 RabbitMQ node: run this suite with `cargo xtask integration` (or `cargo xtask test`), which starts one and sets {ENV_PREFIX}*"
            )
        })
    }

    /// The environment `rabbitmq-server` and `rabbitmqctl` run with for
    /// this node (HOME, RABBITMQ_*, ERL_CRASH_DUMP).
    pub fn node_env(&self) -> Vec<(String, String)> {
        let d = |p: &str| self.dir.join(p).display().to_string();
        vec![
            ("HOME".into(), d("home")),
            ("RABBITMQ_NODENAME".into(), self.node.clone()),
            ("RABBITMQ_NODE_IP_ADDRESS".into(), "127.0.0.1".into()),
            ("RABBITMQ_NODE_PORT".into(), self.amqp_port.to_string()),
            ("RABBITMQ_DIST_PORT".into(), self.dist_port.to_string()),
            ("RABBITMQ_CONFIG_FILE".into(), d("etc/rabbitmq.conf")),
            ("RABBITMQ_CONFIG_FILES".into(), d("etc/conf.d/*.conf")),
            (
                "RABBITMQ_ADVANCED_CONFIG_FILE".into(),
                d("etc/advanced.config"),
            ),
            (
                "RABBITMQ_ENABLED_PLUGINS_FILE".into(),
                d("etc/enabled_plugins"),
            ),
            ("RABBITMQ_MNESIA_BASE".into(), d("data")),
            ("RABBITMQ_LOG_BASE".into(), d("log")),
            ("RABBITMQ_PID_FILE".into(), d("data/node.pid")),
            ("RABBITMQ_CONF_ENV_FILE".into(), d("etc/rabbitmq-env.conf")),
            (
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS".into(),
                "-kernel inet_dist_use_interface {127,0,0,1}".into(),
            ),
            ("ERL_CRASH_DUMP".into(), d("log/erl_crash.dump")),
        ]
    }

    /// Run `rabbitmqctl -n NODE ARGS…` against this node.
    pub fn rabbitmqctl(&self, args: &[&str]) -> Result<String, BrokerError> {
        let out = Command::new(format!("{BIN}/rabbitmqctl"))
            .arg("-n")
            .arg(&self.node)
            .args(args)
            .envs(self.node_env())
            .output()?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(BrokerError::Command {
                command: format!("rabbitmqctl {}", args.join(" ")),
                detail: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Close every client connection of the node (a forced drop).
    pub fn close_all_connections(&self, reason: &str) -> Result<usize, BrokerError> {
        let out = self.rabbitmqctl(&["list_connections", "-q", "--no-table-headers", "pid"])?;
        let pids: Vec<&str> = out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        for pid in &pids {
            self.rabbitmqctl(&["close_connection", pid, reason])?;
        }
        Ok(pids.len())
    }
}
