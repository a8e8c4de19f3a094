//! The token endpoint: client authentication, then the `client_credentials`,
//! `password` and `refresh_token` grants with Keycloak's error answers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use wiremock::{Request, Respond, ResponseTemplate};

use super::lock;
use super::state::{Client, State, Subject, random_uuid};

pub(super) fn error(status: u16, error: &str, description: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": error,
        "error_description": description,
    }))
}

pub(super) const BAD_CLIENT: &str = "Invalid client or Invalid client credentials";

/// The wiremock responder for the token endpoint.
pub(super) struct TokenEndpoint {
    pub(super) state: Arc<Mutex<State>>,
}

impl Respond for TokenEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let form: BTreeMap<String, String> = url::form_urlencoded::parse(&request.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let basic = basic_credentials(request);
        let mut state = lock(&self.state);
        state.requests.push(form.clone());
        handle(&mut state, &form, basic)
    }
}

/// Client id and secret from an `Authorization: Basic` header, if any.
pub(super) fn basic_credentials(request: &Request) -> Option<(String, String)> {
    let value = request.headers.get("authorization")?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(s.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

pub(super) fn handle(
    state: &mut State,
    form: &BTreeMap<String, String>,
    basic: Option<(String, String)>,
) -> ResponseTemplate {
    if state.fail_remaining > 0 {
        state.fail_remaining -= 1;
        return if state.fail_plain {
            ResponseTemplate::new(503).set_body_string("Service Unavailable")
        } else {
            error(
                503,
                "temporarily_unavailable",
                "Keycloak is temporarily unavailable (emulated outage)",
            )
        };
    }

    state.openid_asked = form
        .get("scope")
        .is_some_and(|s| s.split_whitespace().any(|w| w == "openid"));
    let Some(grant_type) = form.get("grant_type").filter(|g| !g.is_empty()) else {
        return error(400, "invalid_request", "Missing form parameter: grant_type");
    };

    // Client authentication comes first, as in Keycloak.
    let (client_id, secret) = match basic {
        Some((id, secret)) => (id, Some(secret)),
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned(),
        ),
    };
    let Some(client) = state.clients.get(&client_id).cloned().filter(|c| c.enabled) else {
        return error(401, "invalid_client", BAD_CLIENT);
    };
    if let Some(expected) = &client.secret
        && secret.as_deref() != Some(expected.as_str())
    {
        return error(401, "unauthorized_client", BAD_CLIENT);
    }

    match grant_type.as_str() {
        "client_credentials" => client_credentials(state, &client_id, &client),
        "password" => password(state, form, &client_id, &client),
        "refresh_token" => refresh(state, form, &client_id),
        _ => error(400, "unsupported_grant_type", "Unsupported grant_type"),
    }
}

pub(super) fn client_credentials(
    state: &mut State,
    client_id: &str,
    client: &Client,
) -> ResponseTemplate {
    if !client.service_account {
        return error(
            401,
            "unauthorized_client",
            "Client not enabled to retrieve service account",
        );
    }
    let username = format!("service-account-{client_id}");
    let who = Subject {
        sub: &client.service_account_sub,
        username: Some(&username),
        client_id,
    };
    let session = random_uuid();
    let with_refresh = state.client_credentials_refresh;
    state.token_response(&who, &session, with_refresh)
}

pub(super) fn password(
    state: &mut State,
    form: &BTreeMap<String, String>,
    client_id: &str,
    client: &Client,
) -> ResponseTemplate {
    if !client.direct_grants {
        return error(
            400,
            "unauthorized_client",
            "Client not allowed for direct access grants",
        );
    }
    let username = form.get("username").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let Some(user) = state.users.get(&username).cloned() else {
        return error(401, "invalid_grant", "Invalid user credentials");
    };
    if user.password != password {
        return error(401, "invalid_grant", "Invalid user credentials");
    }
    if !user.enabled {
        return error(400, "invalid_grant", "Account disabled");
    }
    if let Some(expected) = &user.otp {
        let given = form
            .get("otp")
            .filter(|v| !v.is_empty())
            .or_else(|| form.get("totp").filter(|v| !v.is_empty()));
        match given {
            Some(otp) if otp == expected => {}
            Some(_) if state.stock_otp => {
                return error(401, "invalid_grant", "Invalid user credentials");
            }
            None if state.stock_otp => {
                return error(401, "invalid_grant", "Invalid user credentials");
            }
            Some(_) => return error(401, "invalid_grant", "Invalid one-time password (OTP)"),
            None => {
                return error(
                    401,
                    "invalid_grant",
                    "Invalid user credentials: OTP required",
                );
            }
        }
    }
    if !user.fully_set_up {
        return error(400, "invalid_grant", "Account is not fully set up");
    }
    let who = Subject {
        sub: &user.sub,
        username: Some(&username),
        client_id,
    };
    let session = random_uuid();
    state.token_response(&who, &session, true)
}

pub(super) fn refresh(
    state: &mut State,
    form: &BTreeMap<String, String>,
    client_id: &str,
) -> ResponseTemplate {
    let Some(token) = form.get("refresh_token").filter(|t| !t.is_empty()) else {
        return error(
            400,
            "invalid_request",
            "Missing form parameter: refresh_token",
        );
    };
    let Some(record) = state.refresh_tokens.get(token).cloned() else {
        return error(400, "invalid_grant", "Session not active");
    };
    if state.revoked_sessions.contains(&record.session) {
        return error(400, "invalid_grant", "Session not active");
    }
    if state.ended_client_sessions.contains(&record.session) {
        return error(400, "invalid_grant", "Client session not active");
    }
    if record.issued_at < state.not_before {
        return error(400, "invalid_grant", "Stale token");
    }
    if Instant::now() >= record.expires_at {
        return error(400, "invalid_grant", "Token is not active");
    }
    if record.client_id != client_id {
        return error(400, "invalid_grant", "Unmatching clients");
    }
    if state.rotation {
        if record.used {
            return error(
                400,
                "invalid_grant",
                "Maximum allowed refresh token reuse exceeded",
            );
        }
        if let Some(r) = state.refresh_tokens.get_mut(token) {
            r.used = true;
        }
    }
    let who = Subject {
        sub: &record.sub,
        username: record.username.as_deref(),
        client_id,
    };
    state.openid_asked = state.openid_asked || record.openid;
    state.token_response(&who, &record.session, true)
}
