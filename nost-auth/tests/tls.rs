//! HTTPS to Keycloak: verification always on, `tls_ca_cert` honoured as the
//! only trust anchor, and a clear error when the certificate is refused.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nost_auth::{AuthError, KeycloakIssuer, TokenIssuer};
use nost_config::{AuthMode, KeycloakConfig, SecretString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A one-answer-per-connection HTTPS server replying with a token.
async fn https_keycloak() -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture("server.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 8192];
                let _ = tls.read(&mut buf).await;
                let body = r#"{"access_token":"at-tls","expires_in":300}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn service() -> AuthMode {
    AuthMode::ServiceAccount {
        client_id: "svc".into(),
        client_secret: SecretString::from("cs"),
    }
}

fn config(port: u16, ca: Option<&str>) -> KeycloakConfig {
    KeycloakConfig {
        host: "127.0.0.1".into(),
        port: u32::from(port),
        realm: "NOS-T".into(),
        tls: Some(true),
        tls_ca_cert: ca.map(|c| fixture(c).display().to_string()),
        token_refresh_interval: 240,
    }
}

#[tokio::test]
async fn private_ca_is_refused_without_tls_ca_cert() {
    let port = https_keycloak().await;
    let source =
        KeycloakIssuer::new(&service(), &config(port, None), Duration::from_secs(5)).unwrap();
    let e = source.obtain(None).await.unwrap_err();
    assert!(matches!(e, AuthError::TlsCertificate { .. }), "{e:?}");
    assert!(
        e.to_string().contains("servers.keycloak.tls_ca_cert"),
        "{e}"
    );
    // Recognised by type: the verifier's refusal is in the source chain.
    let AuthError::TlsCertificate {
        source: Some(cause),
        ..
    } = &e
    else {
        panic!("no source: {e:?}")
    };
    assert!(
        matches!(
            cause.find::<tokio_rustls::rustls::Error>(),
            Some(tokio_rustls::rustls::Error::InvalidCertificate(_))
        ),
        "{cause:?}"
    );
}

#[tokio::test]
async fn tls_ca_cert_is_trusted() {
    let port = https_keycloak().await;
    let source = KeycloakIssuer::new(
        &service(),
        &config(port, Some("ca.pem")),
        Duration::from_secs(5),
    )
    .unwrap();
    let set = source.obtain(None).await.unwrap();
    assert_eq!(set.expires_in, Some(Duration::from_secs(300)));
}

#[tokio::test]
async fn only_the_configured_ca_is_trusted() {
    let port = https_keycloak().await;
    let source = KeycloakIssuer::new(
        &service(),
        &config(port, Some("other-ca.pem")),
        Duration::from_secs(5),
    )
    .unwrap();
    let e = source.obtain(None).await.unwrap_err();
    assert!(matches!(e, AuthError::TlsCertificate { .. }), "{e:?}");
}
