//! No secret value appears in Debug output of a loaded configuration or in any error.
#![allow(clippy::unwrap_used)]

use nost_config::{AuthMode, Credentials, EnvFile, Origin, SecretString, Tokens, load_str};

const SECRETS: [&str; 4] = ["pw-SECRET-1", "cs-SECRET-2", "at-SECRET-3", "rt-SECRET-4"];

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows a secret: {text}");
    }
}

#[test]
fn debug_of_credentials_modes_and_config_shows_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(".env");
    std::fs::write(
        &p,
        format!(
            "USERNAME=user\nPASSWORD={}\nCLIENT_ID=client\nCLIENT_SECRET_KEY={}\n",
            SECRETS[0], SECRETS[1]
        ),
    )
    .unwrap();
    let creds = Credentials::from_env(&EnvFile::Path(p)).unwrap();
    assert_clean("Credentials", &format!("{creds:?}"));

    let loaded = load_str(
        "servers:\n  rabbitmq:\n    keycloak_authentication: true\n  keycloak:\n    realm: r\nexecution: {}\n",
        Origin::Program,
    )
    .unwrap();
    assert_clean("LoadedConfig", &format!("{loaded:?}"));

    let user = AuthMode::detect(true, &creds, &Tokens::default()).unwrap();
    assert_clean("AuthMode", &format!("{user:?}"));

    let tokens = Tokens::pair(SECRETS[2], SECRETS[3]);
    assert_clean("Tokens", &format!("{tokens:?}"));
    let pre = AuthMode::detect(true, &creds, &tokens).unwrap();
    assert_clean("AuthMode::PreAcquired", &format!("{pre:?}"));
}

#[test]
fn errors_show_no_secret() {
    // Every refusal, with secrets present in the inputs.
    let full = Credentials {
        username: Some("user".into()),
        password: Some(SecretString::from(SECRETS[0])),
        client_id: None,
        client_secret: Some(SecretString::from(SECRETS[1])),
        ..Default::default()
    };
    let access_only = Tokens {
        access_token: Some(SecretString::from(SECRETS[2])),
        refresh_token: None,
    };
    for (kc, tokens) in [
        (false, Tokens::pair(SECRETS[2], SECRETS[3])),
        (true, access_only),
        (true, Tokens::default()),
        (true, Tokens::pair(SECRETS[2], SECRETS[3])),
    ] {
        let err = AuthMode::detect(kc, &full, &tokens).unwrap_err();
        assert_clean("ModeError Display", &err.to_string());
        assert_clean("ModeError Debug", &format!("{err:?}"));
    }

    // .env parse errors never quote the offending line.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(".env");
    std::fs::write(&p, format!("PASSWORD=\"{}\n", SECRETS[0])).unwrap();
    let err = Credentials::from_env(&EnvFile::Path(p)).unwrap_err();
    assert_clean("env error", &err.to_string());
    assert_clean("env error Debug", &format!("{err:?}"));
}
