//! Tests of the Keycloak emulation: grants, errors and switches, seen
//! through plain HTTP requests like a real client makes them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nost_testkit::{KeycloakEmulator, SigningKey};
use serde_json::Value;

/// A fresh RSA-2048 key, made in-process.
fn gen_key(kid: &str) -> SigningKey {
    SigningKey::generate(kid).unwrap()
}

async fn emulator() -> KeycloakEmulator {
    let kc = KeycloakEmulator::start("nost", gen_key("key-1")).await;
    kc.add_client("svc", Some("s3cret"));
    kc.add_client("frontend", None);
    kc.add_user("alice", "pw");
    kc
}

/// POSTs a form; returns status and JSON body (`Value::Null` if not JSON).
async fn post(kc: &KeycloakEmulator, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(kc.token_url())
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

fn assert_error(answer: &(u16, Value), error: &str, description: &str) {
    let (status, body) = answer;
    assert!(*status >= 400, "expected an error, got {status} {body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_description"], description, "{body}");
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// (header, claims, signature) of a JWT.
fn decode_jwt(token: &str) -> (Value, Value, String) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    (
        decode_part(parts[0]),
        decode_part(parts[1]),
        parts[2].to_owned(),
    )
}

fn cc<'a>() -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", "svc"),
        ("client_secret", "s3cret"),
    ]
}

fn pw<'a>(client: &'a str, user: &'a str, pass: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        ("grant_type", "password"),
        ("client_id", client),
        ("username", user),
        ("password", pass),
    ];
    if client == "svc" {
        f.push(("client_secret", "s3cret"));
    }
    f
}

fn rt<'a>(client: &'a str, token: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        ("grant_type", "refresh_token"),
        ("client_id", client),
        ("refresh_token", token),
    ];
    if client == "svc" {
        f.push(("client_secret", "s3cret"));
    }
    f
}

#[tokio::test]
async fn urls_and_addresses() {
    let kc = emulator().await;
    assert_eq!(kc.host(), "127.0.0.1");
    assert_eq!(kc.realm(), "nost");
    assert_eq!(
        kc.token_url(),
        format!(
            "http://127.0.0.1:{}/realms/nost/protocol/openid-connect/token",
            kc.port()
        )
    );
    let key = gen_key("k");
    let debug = format!("{key:?}");
    assert!(!debug.contains("PRIVATE"), "{debug}");
    assert!(debug.contains("redacted"));
}

#[tokio::test]
async fn client_credentials_without_and_with_refresh_token() {
    let kc = emulator().await;
    let (status, body) = post(&kc, &cc()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["not-before-policy"], 0);
    assert!(body["session_state"].is_string());
    assert_eq!(
        body["scope"],
        "openid profile rabbitmq.read:*/*/* rabbitmq.write:*/*/* rabbitmq.configure:*/*/*"
    );

    kc.set_client_credentials_refresh(true);
    let (status, body) = post(&kc, &cc()).await;
    assert_eq!(status, 200);
    assert_eq!(body["refresh_expires_in"], 1800);
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = post(&kc, &rt("svc", &refresh)).await;
    assert_eq!(status, 200, "{body}");
    let (_, claims, _) = decode_jwt(body["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], "svc");
    assert_eq!(claims["preferred_username"], "service-account-svc");
    assert_eq!(kc.request_count("client_credentials"), 2);
    assert_eq!(kc.request_count("refresh_token"), 1);
}

#[tokio::test]
async fn client_errors() {
    let kc = emulator().await;
    let mut wrong = cc();
    wrong[2] = ("client_secret", "nope");
    let answer = post(&kc, &wrong).await;
    assert_eq!(answer.0, 401);
    assert_error(
        &answer,
        "unauthorized_client",
        "Invalid client or Invalid client credentials",
    );
    let answer = post(&kc, &cc()[..2]).await;
    assert_error(
        &answer,
        "unauthorized_client",
        "Invalid client or Invalid client credentials",
    );
    let answer = post(
        &kc,
        &[("grant_type", "client_credentials"), ("client_id", "ghost")],
    )
    .await;
    assert_eq!(answer.0, 401);
    assert_error(
        &answer,
        "invalid_client",
        "Invalid client or Invalid client credentials",
    );

    kc.set_client_flags("svc", false, false);
    assert_error(
        &post(&kc, &cc()).await,
        "unauthorized_client",
        "Client not enabled to retrieve service account",
    );
    assert_error(
        &post(&kc, &pw("svc", "alice", "pw")).await,
        "unauthorized_client",
        "Client not allowed for direct access grants",
    );

    let mut odd = cc();
    odd[0] = ("grant_type", "urn:ietf:params:oauth:grant-type:device_code");
    kc.set_client_flags("svc", true, true);
    let answer = post(&kc, &odd).await;
    assert_eq!(answer.1["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn http_basic_client_authentication() {
    let kc = emulator().await;
    let resp = reqwest::Client::new()
        .post(kc.token_url())
        .basic_auth("svc", Some("s3cret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn password_grant_and_user_states() {
    let kc = emulator().await;
    let (status, body) = post(&kc, &pw("svc", "alice", "pw")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string());
    let (_, claims, _) = decode_jwt(body["access_token"].as_str().unwrap());
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["client_id"], "svc");

    let answer = post(&kc, &pw("svc", "alice", "bad")).await;
    assert_eq!(answer.0, 401);
    assert_error(&answer, "invalid_grant", "Invalid user credentials");
    let answer = post(&kc, &pw("svc", "bob", "pw")).await;
    assert_error(&answer, "invalid_grant", "Invalid user credentials");

    kc.set_user_state("alice", false, true);
    let answer = post(&kc, &pw("svc", "alice", "pw")).await;
    assert_eq!(answer.0, 400);
    assert_error(&answer, "invalid_grant", "Account disabled");
    kc.set_user_state("alice", true, false);
    assert_error(
        &post(&kc, &pw("svc", "alice", "pw")).await,
        "invalid_grant",
        "Account is not fully set up",
    );
    kc.set_user_state("alice", true, true);
    assert_eq!(post(&kc, &pw("svc", "alice", "pw")).await.0, 200);
}

#[tokio::test]
async fn password_grant_with_otp_stock_and_custom() {
    let kc = emulator().await;
    kc.set_user_otp("alice", Some("123456"));

    // Stock realm: missing and wrong OTP look like a wrong password.
    let base = pw("svc", "alice", "pw");
    assert_error(
        &post(&kc, &base).await,
        "invalid_grant",
        "Invalid user credentials",
    );
    let mut wrong = base.clone();
    wrong.push(("totp", "000000"));
    assert_error(
        &post(&kc, &wrong).await,
        "invalid_grant",
        "Invalid user credentials",
    );
    let mut good_totp = base.clone();
    good_totp.push(("totp", "123456"));
    assert_eq!(post(&kc, &good_totp).await.0, 200);
    let mut good_otp = base.clone();
    good_otp.push(("otp", "123456"));
    assert_eq!(post(&kc, &good_otp).await.0, 200);
    // `otp` wins over `totp`.
    let mut both = base.clone();
    both.push(("otp", "123456"));
    both.push(("totp", "000000"));
    assert_eq!(post(&kc, &both).await.0, 200);

    // Customised direct-grant flow says what is wrong.
    kc.set_otp_style(false);
    assert_error(
        &post(&kc, &base).await,
        "invalid_grant",
        "Invalid user credentials: OTP required",
    );
    assert_error(
        &post(&kc, &wrong).await,
        "invalid_grant",
        "Invalid one-time password (OTP)",
    );
    assert_eq!(post(&kc, &good_totp).await.0, 200);

    kc.set_user_otp("alice", None);
    assert_eq!(post(&kc, &base).await.0, 200);
    assert_eq!(kc.request_count("password"), 9);
    let last = kc.requests().pop().unwrap();
    assert_eq!(last.get("username").map(String::as_str), Some("alice"));
}

#[tokio::test]
async fn refresh_with_and_without_rotation() {
    let kc = emulator().await;
    let (_, body) = post(&kc, &pw("svc", "alice", "pw")).await;
    let first = body["refresh_token"].as_str().unwrap().to_owned();
    let session = body["session_state"].clone();

    // Without rotation a refresh token may be reused.
    for _ in 0..2 {
        let (status, body) = post(&kc, &rt("svc", &first)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["session_state"], session);
        assert!(body["refresh_token"].is_string());
    }

    kc.set_rotation(true);
    let (status, body) = post(&kc, &rt("svc", &first)).await;
    assert_eq!(status, 200, "{body}");
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert_error(
        &post(&kc, &rt("svc", &first)).await,
        "invalid_grant",
        "Maximum allowed refresh token reuse exceeded",
    );
    let (status, body) = post(&kc, &rt("svc", &second)).await;
    assert_eq!(status, 200, "{body}");
    assert_error(
        &post(&kc, &rt("svc", &second)).await,
        "invalid_grant",
        "Maximum allowed refresh token reuse exceeded",
    );
}

#[tokio::test]
async fn refresh_errors_revoked_expired_unmatching() {
    let kc = emulator().await;
    let (_, body) = post(&kc, &pw("svc", "alice", "pw")).await;
    let token = body["refresh_token"].as_str().unwrap().to_owned();

    assert_error(
        &post(&kc, &rt("frontend", &token)).await,
        "invalid_grant",
        "Unmatching clients",
    );
    assert_error(
        &post(&kc, &rt("svc", "not-a-token")).await,
        "invalid_grant",
        "Session not active",
    );

    kc.revoke_sessions();
    assert_error(
        &post(&kc, &rt("svc", &token)).await,
        "invalid_grant",
        "Session not active",
    );
    // A new login works after the revocation.
    let (_, body) = post(&kc, &pw("svc", "alice", "pw")).await;
    let fresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(post(&kc, &rt("svc", &fresh)).await.0, 200);

    kc.set_refresh_lifetime(1);
    let (_, body) = post(&kc, &pw("svc", "alice", "pw")).await;
    assert_eq!(body["refresh_expires_in"], 1);
    let short = body["refresh_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_error(
        &post(&kc, &rt("svc", &short)).await,
        "invalid_grant",
        "Token is not active",
    );
}

#[tokio::test]
async fn public_client_login_and_refresh() {
    let kc = emulator().await;
    let (status, body) = post(&kc, &pw("frontend", "alice", "pw")).await;
    assert_eq!(status, 200, "{body}");
    let token = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = post(&kc, &rt("frontend", &token)).await;
    assert_eq!(status, 200, "{body}");
    let (_, claims, _) = decode_jwt(body["access_token"].as_str().unwrap());
    assert_eq!(claims["azp"], "frontend");
    assert_eq!(claims["preferred_username"], "alice");

    // A session handed over by a frontend refreshes the same way.
    let (access, refresh) = kc.issue_session("alice", "frontend");
    let (_, claims, _) = decode_jwt(&access);
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(post(&kc, &rt("frontend", &refresh)).await.0, 200);
}

#[tokio::test]
async fn outage_then_recovery() {
    let kc = emulator().await;
    kc.fail_next(2);
    let answer = post(&kc, &cc()).await;
    assert_eq!(answer.0, 503);
    assert_eq!(answer.1["error"], "temporarily_unavailable");
    assert_eq!(post(&kc, &cc()).await.0, 503);
    assert_eq!(post(&kc, &cc()).await.0, 200);
    assert_eq!(kc.request_count("client_credentials"), 3);

    kc.fail_next_plain(1);
    let answer = post(&kc, &cc()).await;
    assert_eq!(answer, (503, Value::Null));
    assert_eq!(post(&kc, &cc()).await.0, 200);
    assert_eq!(kc.requests().len(), 5);
}

#[tokio::test]
async fn access_token_claims_and_header() {
    let kc = emulator().await;
    kc.set_access_lifetime(120);
    kc.set_scopes(
        "openid rabbitmq.read:*/sos*/sos*",
        Some("rabbitmq.write:*/sos*/sos*"),
    );
    let (status, body) = post(&kc, &cc()).await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 120);
    assert_eq!(body["scope"], "openid rabbitmq.read:*/sos*/sos*");
    let (header, claims, _) = decode_jwt(body["access_token"].as_str().unwrap());
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], "key-1");
    assert_eq!(
        claims["iss"],
        format!("http://127.0.0.1:{}/realms/nost", kc.port())
    );
    assert_eq!(claims["aud"], serde_json::json!(["rabbitmq", "account"]));
    assert_eq!(claims["azp"], "svc");
    assert_eq!(claims["client_id"], "svc");
    assert_eq!(claims["scope"], "openid rabbitmq.read:*/sos*/sos*");
    assert_eq!(claims["extra_scope"], "rabbitmq.write:*/sos*/sos*");
    assert!(claims["jti"].is_string());
    assert!(claims["sub"].is_string());
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 120);

    let expired = kc.mint_access_token("someone", "app", -60);
    let (header, claims, _) = decode_jwt(&expired);
    assert_eq!(header["kid"], "key-1");
    assert_eq!(claims["sub"], "someone");
    assert_eq!(claims["client_id"], "app");
    assert!(claims["exp"].as_i64().unwrap() < claims["iat"].as_i64().unwrap());
    assert!(claims.get("preferred_username").is_none());
}

#[tokio::test]
async fn mint_with_other_key_signs_differently() {
    let kc = emulator().await;
    let other = gen_key("rogue");
    let ours = kc.mint_access_token("x", "app", 300);
    let theirs = kc.mint_with_key(&other, "x", "app");
    let (h1, c1, s1) = decode_jwt(&ours);
    let (h2, c2, s2) = decode_jwt(&theirs);
    assert_eq!(h1["kid"], "key-1");
    assert_eq!(h2["kid"], "rogue");
    assert_eq!(c1["sub"], c2["sub"]);
    assert_ne!(s1, s2);
    // RSA-2048 signature: 256 bytes.
    assert_eq!(URL_SAFE_NO_PAD.decode(&s1).unwrap().len(), 256);
    assert_eq!(URL_SAFE_NO_PAD.decode(&s2).unwrap().len(), 256);
}

/// The signature verifies with the public half of the key (checked by
/// ring, an RSA implementation independent of the signer's), and fails with
/// another key.
#[tokio::test]
async fn signature_verifies_with_the_public_key() {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    let (private_pem, public_pem) = nost_testkit::rsa_key_pair().unwrap();
    let public = rsa::RsaPublicKey::from_public_key_pem(&public_pem)
        .unwrap()
        .to_pkcs1_der()
        .unwrap();
    let kc = KeycloakEmulator::start(
        "nost",
        SigningKey {
            private_pem,
            kid: "k1".into(),
        },
    )
    .await;
    let verify = |token: &str| {
        let (input, sig) = token.rsplit_once('.').unwrap();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            public.as_bytes(),
        )
        .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
        .is_ok()
    };
    assert!(verify(&kc.mint_access_token("x", "app", 60)));
    assert!(!verify(&kc.mint_with_key(&gen_key("rogue"), "x", "app")));
}
