//! The emulation stays honest: the same token requests go to the real
//! Keycloak (NOS-T realm, started by `cargo xtask integration`/`test`) and
//! to `nost_testkit::KeycloakEmulator` set up like that realm, and the
//! answers are compared: status, `error`, `error_description`, which token
//! fields come back, and the claims that matter (aud, azp, scope,
//! extra_scope, exp − iat). Differences that remain are listed in
//! [`KNOWN`] with the reason; anything else fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use nost_testkit::RealKeycloakInfo;
use nost_testkit::realm::{
    OTP_USER, PUBLIC_CLIENT, RABBITMQ_SCOPES, REALM, SERVICE_CLIENT, SERVICE_REFRESH_CLIENT, USER,
    USER_CLIENT,
};
use nost_testkit::{KeycloakEmulator, SigningKey};
use serde_json::Value;

/// Differences kept on purpose: `(case, aspect, reason)` (`*`: every case).
/// Found against Keycloak 26.4.0; everything else was made equal in the
/// emulation (status 401 for a client without service account, the bare
/// `Unsupported grant_type`, `id_token` and `openid` in `scope` when the
/// grant asks for `scope=openid`).
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "*",
        "aud",
        "the emulation puts [rabbitmq, account] in aud, as a stock realm does through its `roles` client scope; the test realm has only the audience mapper, so Keycloak sends \"rabbitmq\" alone. Both contain rabbitmq, the one thing the broker checks",
    ),
    (
        "client_credentials",
        "fields",
        "Keycloak 26 creates no user session for client_credentials without refresh tokens, so its answer has no session_state; the emulation keeps the field of older versions, which the harness and testkit suites pin; nost-auth never reads it",
    ),
    (
        "refresh_token, another client",
        "error_description",
        "Keycloak 26 says \"Invalid refresh token. Token client and authorized client don't match\", older versions (pinned by the harness and testkit suites) \"Unmatching clients\"; nost-auth classifies both as UnmatchingClients",
    ),
    (
        "refresh_token, garbage",
        "error_description",
        "Keycloak says \"Invalid refresh token\" for a token it cannot parse; the emulation answers \"Session not active\" for any unknown token (pinned by the testkit suite); nost-auth maps both to a refused refresh (invalid_grant)",
    ),
];

/// The parts of an answer that are compared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    status: u16,
    error: Option<String>,
    description: Option<String>,
    fields: BTreeSet<String>,
    claims: BTreeMap<String, String>,
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

fn words(v: &Value) -> String {
    let mut w: Vec<&str> = v.as_str().unwrap_or_default().split_whitespace().collect();
    w.sort_unstable();
    w.join(" ")
}

fn shape(status: u16, body: &Value, lifespan: i64) -> Shape {
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut claims = BTreeMap::new();
    if let Some(token) = body.get("access_token").and_then(Value::as_str) {
        let c = claims_of(token);
        let aud: BTreeSet<String> = match &c["aud"] {
            Value::String(a) => [a.clone()].into(),
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => BTreeSet::new(),
        };
        claims.insert(
            "aud has rabbitmq".into(),
            aud.contains("rabbitmq").to_string(),
        );
        claims.insert("aud".into(), aud.into_iter().collect::<Vec<_>>().join(" "));
        claims.insert("azp".into(), c["azp"].as_str().unwrap_or("-").to_owned());
        claims.insert("scope".into(), words(&c["scope"]));
        claims.insert("extra_scope".into(), words(&c["extra_scope"]));
        // Keycloak's exp and iat come from clocks read at different moments
        // (whole seconds): exp - iat was the lifespan + 1 once, on a
        // refresh. Within a second of the realm's lifespan counts as equal.
        let (exp, iat) = (c["exp"].as_i64(), c["iat"].as_i64());
        claims.insert(
            "exp - iat".into(),
            exp.zip(iat).map_or("-".into(), |(e, i)| {
                if (e - i - lifespan).abs() <= 1 {
                    "the lifespan (within 1 s)".to_owned()
                } else {
                    (e - i).to_string()
                }
            }),
        );
        claims.insert(
            "answer scope".into(),
            words(body.get("scope").unwrap_or(&Value::Null)),
        );
        // Keycloak computes expires_in as exp − now when it answers: one
        // second less when the clock ticked meanwhile (seen on a busy
        // machine), so it is compared with exp − iat within a second.
        let expires_in = body.get("expires_in").and_then(Value::as_i64);
        claims.insert(
            "expires_in within 1 s of exp - iat".into(),
            expires_in
                .zip(exp.zip(iat))
                .is_some_and(|(e, (x, i))| (x - i - e).abs() <= 1)
                .to_string(),
        );
        claims.insert(
            "refresh_expires_in is 0".into(),
            (body.get("refresh_expires_in").and_then(Value::as_i64) == Some(0)).to_string(),
        );
    }
    Shape {
        status,
        error: s("error"),
        description: s("error_description"),
        fields: body
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        claims,
    }
}

async fn post(url: &str, form: &[(String, String)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `(name, form, the case whose refresh token it adds)`.
type Case = (&'static str, Vec<(String, String)>, Option<&'static str>);

/// One side of the comparison: where to send, and the refresh tokens it
/// handed out (by case name) for the refresh cases.
struct Side {
    url: String,
    refresh: BTreeMap<&'static str, String>,
}

#[tokio::test]
async fn the_emulation_answers_like_the_real_keycloak() {
    let real = RealKeycloakInfo::from_env_or_panic();
    let r = &real.realm;
    let extra = RABBITMQ_SCOPES.join(" ");
    let emu = KeycloakEmulator::builder(SigningKey::generate("conformance").unwrap())
        .realm(REALM)
        .client(SERVICE_CLIENT, Some(&r.service_secret))
        .client_flags(SERVICE_CLIENT, false, true)
        .client(SERVICE_REFRESH_CLIENT, Some(&r.service_refresh_secret))
        .client_flags(SERVICE_REFRESH_CLIENT, false, true)
        .client(USER_CLIENT, Some(&r.user_client_secret))
        .client_flags(USER_CLIENT, true, false)
        .client(PUBLIC_CLIENT, None)
        .client_flags(PUBLIC_CLIENT, true, false)
        .user(USER, &r.user_password, None)
        .user(OTP_USER, &r.otp_user_password, None)
        .access_lifetime(u64::from(r.access_token_lifespan))
        .rotation(true)
        // The realm's default client scopes: `profile` and the RabbitMQ
        // ones (`basic` is not listed in `scope`).
        .scopes(&format!("profile {extra}"), Some(&extra))
        .start()
        .await;
    let mut sides = [
        Side {
            url: real.token_url(),
            refresh: BTreeMap::new(),
        },
        Side {
            url: emu.token_url(),
            refresh: BTreeMap::new(),
        },
    ];
    let wrong_otp = r.wrong_totp();
    // (case, form, takes refresh token of case) in order.
    let cases: Vec<Case> = vec![
        (
            "client_credentials",
            form(&[
                ("grant_type", "client_credentials"),
                ("client_id", SERVICE_CLIENT),
                ("client_secret", &r.service_secret),
            ]),
            None,
        ),
        (
            "client_credentials, refresh tokens on",
            form(&[
                ("grant_type", "client_credentials"),
                ("client_id", SERVICE_REFRESH_CLIENT),
                ("client_secret", &r.service_refresh_secret),
            ]),
            None,
        ),
        (
            "client_credentials, wrong secret",
            form(&[
                ("grant_type", "client_credentials"),
                ("client_id", SERVICE_CLIENT),
                ("client_secret", "wrong"),
            ]),
            None,
        ),
        (
            "client_credentials, unknown client",
            form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "x"),
            ]),
            None,
        ),
        (
            "client_credentials, no service account",
            form(&[
                ("grant_type", "client_credentials"),
                ("client_id", USER_CLIENT),
                ("client_secret", &r.user_client_secret),
            ]),
            None,
        ),
        (
            "password",
            form(&[
                ("grant_type", "password"),
                ("client_id", USER_CLIENT),
                ("client_secret", &r.user_client_secret),
                ("username", USER),
                ("password", &r.user_password),
                ("scope", "openid"),
            ]),
            None,
        ),
        (
            "password, wrong password",
            form(&[
                ("grant_type", "password"),
                ("client_id", USER_CLIENT),
                ("client_secret", &r.user_client_secret),
                ("username", USER),
                ("password", "wrong"),
            ]),
            None,
        ),
        (
            "password, unknown user",
            form(&[
                ("grant_type", "password"),
                ("client_id", USER_CLIENT),
                ("client_secret", &r.user_client_secret),
                ("username", "nobody"),
                ("password", "wrong"),
            ]),
            None,
        ),
        (
            "password, no direct grants",
            form(&[
                ("grant_type", "password"),
                ("client_id", SERVICE_CLIENT),
                ("client_secret", &r.service_secret),
                ("username", USER),
                ("password", &r.user_password),
            ]),
            None,
        ),
        (
            "password, OTP missing",
            form(&[
                ("grant_type", "password"),
                ("client_id", USER_CLIENT),
                ("client_secret", &r.user_client_secret),
                ("username", OTP_USER),
                ("password", &r.otp_user_password),
            ]),
            None,
        ),
        (
            "password, OTP wrong",
            form(&[
                ("grant_type", "password"),
                ("client_id", USER_CLIENT),
                ("client_secret", &r.user_client_secret),
                ("username", OTP_USER),
                ("password", &r.otp_user_password),
                ("totp", &wrong_otp),
            ]),
            None,
        ),
        (
            "password, OTP right",
            form(&[
                ("grant_type", "password"),
                ("client_id", USER_CLIENT),
                ("client_secret", &r.user_client_secret),
                ("username", OTP_USER),
                ("password", &r.otp_user_password),
                ("totp", "{TOTP}"),
            ]),
            None,
        ),
        (
            "password, public client",
            form(&[
                ("grant_type", "password"),
                ("client_id", PUBLIC_CLIENT),
                ("username", USER),
                ("password", &r.user_password),
            ]),
            None,
        ),
        (
            "refresh_token",
            form(&[
                ("grant_type", "refresh_token"),
                ("client_id", USER_CLIENT),
                ("client_secret", &r.user_client_secret),
            ]),
            Some("password"),
        ),
        (
            "refresh_token, reused after rotation",
            form(&[
                ("grant_type", "refresh_token"),
                ("client_id", USER_CLIENT),
                ("client_secret", &r.user_client_secret),
            ]),
            Some("password"),
        ),
        (
            "refresh_token, public client",
            form(&[
                ("grant_type", "refresh_token"),
                ("client_id", PUBLIC_CLIENT),
            ]),
            Some("password, public client"),
        ),
        (
            "refresh_token, another client",
            form(&[
                ("grant_type", "refresh_token"),
                ("client_id", USER_CLIENT),
                ("client_secret", &r.user_client_secret),
            ]),
            Some("refresh_token, public client"),
        ),
        (
            "refresh_token, garbage",
            form(&[
                ("grant_type", "refresh_token"),
                ("client_id", USER_CLIENT),
                ("client_secret", &r.user_client_secret),
                ("refresh_token", "garbage"),
            ]),
            None,
        ),
        (
            "no grant_type",
            form(&[
                ("client_id", USER_CLIENT),
                ("client_secret", &r.user_client_secret),
            ]),
            None,
        ),
        (
            "unsupported grant_type",
            form(&[
                ("grant_type", "urn:nost:nothing"),
                ("client_id", USER_CLIENT),
                ("client_secret", &r.user_client_secret),
            ]),
            None,
        ),
    ];
    let mut differences = Vec::new();
    let mut table = String::new();
    for (case, base, uses) in &cases {
        let mut shapes = Vec::new();
        for (i, side) in sides.iter_mut().enumerate() {
            let mut f = base.clone();
            if let Some(from) = uses {
                let token = side.refresh.get(from).cloned().unwrap_or_default();
                f.push(("refresh_token".into(), token));
            }
            if *case == "password, OTP right" {
                let code = r.totp_now();
                emu.set_user_otp(OTP_USER, Some(&code));
                for kv in &mut f {
                    if kv.1 == "{TOTP}" {
                        kv.1.clone_from(&code);
                    }
                }
            } else if i == 1 {
                // The emulation requires an OTP of this user only in the
                // OTP cases (it has no TOTP of its own).
                emu.set_user_otp(OTP_USER, case.contains("OTP").then_some("never-this"));
            }
            // Refresh tokens for client_credentials are a per-client
            // setting in Keycloak, a switch in the emulation.
            emu.set_client_credentials_refresh(*case == "client_credentials, refresh tokens on");
            let (status, body) = post(&side.url, &f).await;
            if let Some(rt) = body.get("refresh_token").and_then(Value::as_str) {
                // Rotation: a refresh answer carries the token to use next;
                // keep the first one of a case for the reuse case.
                side.refresh.entry(case).or_insert_with(|| rt.to_owned());
            }
            shapes.push(shape(status, &body, i64::from(r.access_token_lifespan)));
        }
        let (a, b) = (&shapes[0], &shapes[1]);
        table.push_str(&format!("\n{case}\n  real: {a:?}\n  emu:  {b:?}\n"));
        let mut diff = |aspect: &str, x: String, y: String| {
            if x != y {
                differences.push((case.to_string(), aspect.to_owned(), x, y));
            }
        };
        diff("status", a.status.to_string(), b.status.to_string());
        diff("error", format!("{:?}", a.error), format!("{:?}", b.error));
        diff(
            "error_description",
            format!("{:?}", a.description),
            format!("{:?}", b.description),
        );
        diff(
            "fields",
            format!("{:?}", a.fields),
            format!("{:?}", b.fields),
        );
        for k in a
            .claims
            .keys()
            .chain(b.claims.keys())
            .collect::<BTreeSet<_>>()
        {
            diff(
                k,
                a.claims.get(k).cloned().unwrap_or_default(),
                b.claims.get(k).cloned().unwrap_or_default(),
            );
        }
    }
    eprintln!("{table}");
    let unexplained: Vec<_> = differences
        .iter()
        .filter(|(case, aspect, _, _)| {
            !KNOWN
                .iter()
                .any(|(c, a, _)| (*c == case || *c == "*") && *a == aspect)
        })
        .collect();
    for (case, aspect, real, emu) in &unexplained {
        eprintln!("DIFFERENCE {case} / {aspect}: real {real} | emulation {emu}");
    }
    assert!(
        unexplained.is_empty(),
        "{} unexplained differences between Keycloak and the emulation (see above)",
        unexplained.len()
    );
}
