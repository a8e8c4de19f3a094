//! A Keycloak whose tokens are already expired by our clock (the emulator
//! issuing `expires_in: 0` with `exp` = now) does not make the refresher or
//! the connection logic hammer it: the requests are counted at the emulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use nost_auth::{AuthOptions, TokenManager};
use nost_config::{AuthMode, KeycloakConfig, SecretString};
use nost_testkit::{KeycloakEmulator, SigningKey};

#[tokio::test]
async fn tokens_expired_on_arrival_keep_keycloak_requests_bounded() {
    let kc = KeycloakEmulator::builder(SigningKey::generate("skew").unwrap())
        .realm("NOS-T")
        .client("svc", Some("svc-secret"))
        .access_lifetime(0)
        .start()
        .await;
    let config = KeycloakConfig {
        host: kc.host(),
        port: u32::from(kc.port()),
        realm: kc.realm(),
        tls: None,
        tls_ca_cert: None,
        token_refresh_interval: 240,
    };
    let mode = AuthMode::ServiceAccount {
        client_id: "svc".into(),
        client_secret: SecretString::from("svc-secret"),
    };
    let m = TokenManager::start(&mode, &config, AuthOptions::default())
        .await
        .unwrap();
    assert_eq!(m.access_token().remaining(), Some(Duration::ZERO));
    // Connections asking for a token with 30 s left get the current one.
    for _ in 0..20 {
        m.fresh_access_token(Duration::from_secs(30)).await.unwrap();
    }
    // Two seconds of real time: without the floor the refresher would have
    // asked every 500 ms (4 more requests) and each connect once more (20).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        kc.request_count("client_credentials"),
        1,
        "{:?}",
        kc.requests().len()
    );
    m.shut_down().await;
}
