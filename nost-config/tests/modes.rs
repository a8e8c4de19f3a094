//! Every presence combination of USERNAME, PASSWORD, CLIENT_ID and
//! CLIENT_SECRET_KEY, with Keycloak on and off, with and without tokens.
#![allow(clippy::unwrap_used)]

use nost_config::{
    AuthMode, Credentials, ModeErrorKind, ModeKind, SecretString, Tokens, VALID_MODES,
};

const U: u8 = 1;
const P: u8 = 2;
const I: u8 = 4;
const S: u8 = 8;

fn creds(bits: u8) -> Credentials {
    Credentials {
        username: (bits & U != 0).then(|| "user".to_owned()),
        password: (bits & P != 0).then(|| SecretString::from("pw")),
        client_id: (bits & I != 0).then(|| "client".to_owned()),
        client_secret: (bits & S != 0).then(|| SecretString::from("sec")),
        ..Default::default()
    }
}

#[derive(Debug, Clone, Copy)]
enum Tok {
    None,
    Both,
    AccessOnly,
    RefreshOnly,
}

fn tokens(t: Tok) -> Tokens {
    let a = || Some(SecretString::from("a.b.c"));
    let r = || Some(SecretString::from("refresh"));
    match t {
        Tok::None => Tokens::default(),
        Tok::Both => Tokens {
            access_token: a(),
            refresh_token: r(),
        },
        Tok::AccessOnly => Tokens {
            access_token: a(),
            refresh_token: None,
        },
        Tok::RefreshOnly => Tokens {
            access_token: None,
            refresh_token: r(),
        },
    }
}

type Expect = Result<ModeKind, (ModeErrorKind, &'static [&'static str])>;

use ModeErrorKind as K;
use ModeKind as M;

/// The decision table, written out case by case: (keycloak, bits, expected)
/// for the runs without tokens.
const WITHOUT_TOKENS: &[(bool, u8, Expect)] = &[
    // keycloak_authentication: false -> only USERNAME+PASSWORD matter.
    (
        false,
        0,
        Err((K::BasicNeedsUsernamePassword, &["USERNAME", "PASSWORD"])),
    ),
    (
        false,
        U,
        Err((K::BasicNeedsUsernamePassword, &["PASSWORD"])),
    ),
    (
        false,
        P,
        Err((K::BasicNeedsUsernamePassword, &["USERNAME"])),
    ),
    (false, U | P, Ok(M::Basic)),
    (
        false,
        I,
        Err((K::BasicNeedsUsernamePassword, &["USERNAME", "PASSWORD"])),
    ),
    (
        false,
        U | I,
        Err((K::BasicNeedsUsernamePassword, &["PASSWORD"])),
    ),
    (
        false,
        P | I,
        Err((K::BasicNeedsUsernamePassword, &["USERNAME"])),
    ),
    (false, U | P | I, Ok(M::Basic)),
    (
        false,
        S,
        Err((K::BasicNeedsUsernamePassword, &["USERNAME", "PASSWORD"])),
    ),
    (
        false,
        U | S,
        Err((K::BasicNeedsUsernamePassword, &["PASSWORD"])),
    ),
    (
        false,
        P | S,
        Err((K::BasicNeedsUsernamePassword, &["USERNAME"])),
    ),
    (false, U | P | S, Ok(M::Basic)),
    (
        false,
        I | S,
        Err((K::BasicNeedsUsernamePassword, &["USERNAME", "PASSWORD"])),
    ),
    (
        false,
        U | I | S,
        Err((K::BasicNeedsUsernamePassword, &["PASSWORD"])),
    ),
    (
        false,
        P | I | S,
        Err((K::BasicNeedsUsernamePassword, &["USERNAME"])),
    ),
    (false, U | P | I | S, Ok(M::Basic)),
    // keycloak_authentication: true.
    (
        true,
        0,
        Err((
            K::NoCredentials,
            &["USERNAME", "PASSWORD", "CLIENT_ID", "CLIENT_SECRET_KEY"],
        )),
    ),
    (true, U, Err((K::UsernamePasswordTogether, &["PASSWORD"]))),
    (true, P, Err((K::UsernamePasswordTogether, &["USERNAME"]))),
    (
        true,
        U | P,
        Err((
            K::UserAccountNeedsClient,
            &["CLIENT_ID", "CLIENT_SECRET_KEY"],
        )),
    ),
    (
        true,
        I,
        Err((K::ClientIdWithoutSecret, &["CLIENT_SECRET_KEY"])),
    ),
    (
        true,
        U | I,
        Err((K::UsernamePasswordTogether, &["PASSWORD"])),
    ),
    (
        true,
        P | I,
        Err((K::UsernamePasswordTogether, &["USERNAME"])),
    ),
    (
        true,
        U | P | I,
        Err((K::UserAccountNeedsClient, &["CLIENT_SECRET_KEY"])),
    ),
    (true, S, Err((K::ClientSecretWithoutId, &["CLIENT_ID"]))),
    (
        true,
        U | S,
        Err((K::UsernamePasswordTogether, &["PASSWORD"])),
    ),
    (
        true,
        P | S,
        Err((K::UsernamePasswordTogether, &["USERNAME"])),
    ),
    (
        true,
        U | P | S,
        Err((K::UserAccountNeedsClient, &["CLIENT_ID"])),
    ),
    (true, I | S, Ok(M::ServiceAccount)),
    (
        true,
        U | I | S,
        Err((K::UsernamePasswordTogether, &["PASSWORD"])),
    ),
    (
        true,
        P | I | S,
        Err((K::UsernamePasswordTogether, &["USERNAME"])),
    ),
    (true, U | P | I | S, Ok(M::UserAccount)),
];

fn check(kc: bool, bits: u8, tok: Tok, expected: &Expect) {
    let got = AuthMode::detect(kc, &creds(bits), &tokens(tok));
    let case = format!("keycloak={kc} vars={bits:04b} tokens={tok:?}");
    match (expected, got) {
        (Ok(kind), Ok(mode)) => assert_eq!(mode.kind(), *kind, "{case}"),
        (Err((kind, names)), Err(e)) => {
            assert_eq!(e.kind, *kind, "{case}: {e}");
            let msg = e.to_string();
            for n in *names {
                assert!(msg.contains(n), "{case}: message does not name {n}: {msg}");
            }
            let named: Vec<&str> = e.missing.iter().chain(&e.extra).copied().collect();
            assert_eq!(named, *names, "{case}");
            assert!(
                msg.contains(VALID_MODES),
                "{case}: the valid modes are listed"
            );
        }
        (exp, got) => panic!("{case}: expected {exp:?}, got {got:?}"),
    }
}

#[test]
fn all_sixteen_combinations_without_tokens() {
    assert_eq!(WITHOUT_TOKENS.len(), 32);
    for (kc, bits, expected) in WITHOUT_TOKENS {
        check(*kc, *bits, Tok::None, expected);
    }
}

#[test]
fn all_sixteen_combinations_with_tokens() {
    for bits in 0..16u8 {
        // Keycloak off: tokens cannot be used, whatever the variables.
        check(
            false,
            bits,
            Tok::Both,
            &Err((K::TokensWithoutKeycloak, &["access_token", "refresh_token"])),
        );
        check(
            false,
            bits,
            Tok::AccessOnly,
            &Err((K::TokensWithoutKeycloak, &["access_token"])),
        );
        check(
            false,
            bits,
            Tok::RefreshOnly,
            &Err((K::TokensWithoutKeycloak, &["refresh_token"])),
        );
        // Keycloak on: both tokens need only CLIENT_ID (public clients have no secret);
        // USERNAME/PASSWORD are not used in this mode.
        let both: Expect = if bits & I != 0 {
            Ok(M::PreAcquired)
        } else {
            Err((K::PreAcquiredNeedsClientId, &["CLIENT_ID"]))
        };
        check(true, bits, Tok::Both, &both);
        check(
            true,
            bits,
            Tok::AccessOnly,
            &Err((K::AccessTokenWithoutRefreshToken, &["refresh_token"])),
        );
        check(
            true,
            bits,
            Tok::RefreshOnly,
            &Err((K::RefreshTokenWithoutAccessToken, &["access_token"])),
        );
    }
}

#[test]
fn a_public_client_keeps_no_secret_and_a_confidential_one_keeps_it() {
    let public = AuthMode::detect(true, &creds(I), &tokens(Tok::Both)).unwrap();
    assert!(matches!(
        public,
        AuthMode::PreAcquired {
            client_secret: None,
            ..
        }
    ));
    let confidential = AuthMode::detect(true, &creds(I | S), &tokens(Tok::Both)).unwrap();
    assert!(matches!(
        confidential,
        AuthMode::PreAcquired {
            client_secret: Some(_),
            ..
        }
    ));
}

#[test]
fn mode_names_for_tools() {
    assert_eq!(M::Basic.as_str(), "basic");
    assert_eq!(M::ServiceAccount.as_str(), "service_account");
    assert_eq!(M::UserAccount.as_str(), "user_account");
    assert_eq!(M::PreAcquired.as_str(), "pre_acquired");
}
