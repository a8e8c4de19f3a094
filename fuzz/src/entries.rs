//! The entry points of the fuzz targets: each takes arbitrary bytes and
//! must return without panicking. The same file is compiled into the corpus
//! replay test of the workspace (`tests/tests/fuzz_corpus.rs`), so every
//! input kept in `fuzz/corpus/<target>/` is replayed by `cargo xtask test`.

use nost_app::messages::{
    FreezeCommand, FreezeRequest, InitCommand, ModeStatus, NostMessage, ReadyStatus, ResumeCommand,
    ResumeRequest, StartCommand, StopCommand, TimeStatus, UpdateCommand, UpdateRequest,
};

/// An entry point: arbitrary bytes in, nothing out, never a panic.
pub type Entry = fn(&[u8]);

/// The targets, by name (the directory names under `fuzz/corpus/`).
pub const TARGETS: [(&str, Entry); 5] = [
    ("yaml_config", yaml_config),
    ("dotenv", dotenv),
    ("messages", messages),
    ("token_response", token_response),
    ("jwt_claims", jwt_claims),
];

/// YAML configuration loading (parse, scaling, validation, line search).
pub fn yaml_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(loaded) =
            nost_config::load_str(text, nost_config::Origin::File("fuzz.yaml".into()))
    {
        {
            // What `nost check` and the roles derive from a valid file.
            let c = &loaded.config;
            let _ = c.servers.keycloak.as_ref().map(|k| k.token_url());
            for name in c.execution.managed_applications.keys() {
                let a = c.execution.managed_application(name);
                let _ = (a.time_step.to_iso8601(), a.time_step.to_std());
            }
            if let Some(m) = &c.execution.manager {
                let _ = nost_app::TestPlan::from_config(m);
            }
        }
    }
}

/// `.env` parsing and expansion, as python-dotenv does it.
pub fn dotenv(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = nost_config::dotenv::dotenv_values(text, &|name| {
            (name.len() % 2 == 0).then(|| name.to_owned())
        });
    }
}

fn each<M: NostMessage>(data: &[u8]) {
    if let Ok(m) = M::from_json(data) {
        let _ = m.to_json();
    }
}

/// Every NOS-T message parser (the first byte picks one, the rest is the
/// body; all of them also read the whole input).
pub fn messages(data: &[u8]) {
    let parsers: [fn(&[u8]); 12] = [
        each::<InitCommand>,
        each::<StartCommand>,
        each::<StopCommand>,
        each::<UpdateCommand>,
        each::<FreezeCommand>,
        each::<ResumeCommand>,
        each::<FreezeRequest>,
        each::<ResumeRequest>,
        each::<UpdateRequest>,
        each::<ReadyStatus>,
        each::<ModeStatus>,
        each::<TimeStatus>,
    ];
    for p in parsers {
        p(data);
    }
    if let Some((first, rest)) = data.split_first() {
        parsers[usize::from(*first) % parsers.len()](rest);
    }
    // What handlers do with parsed values.
    if let Ok(r) = FreezeRequest::from_json(data) {
        let p = r.tasking_parameters;
        let _ = FreezeRequest::new(p.sim_freeze_time, p.freeze_time, p.freeze_duration, "x");
        let _ = p.freeze_duration.map(|d| d.to_std());
    }
}

/// Keycloak's token endpoint answer, for every status class and grant.
pub fn token_response(data: &[u8]) {
    for status in [200, 400, 401, 404, 500, 503] {
        for grant in ["client_credentials", "password", "refresh_token"] {
            if let Ok(set) = nost_auth::parse_token_response(status, data, grant, "client") {
                let _ = nost_auth::AccessToken::new(set.access_token, None);
            }
        }
    }
}

/// Reading a JWT's `exp` claim (tokens from Keycloak or the user).
pub fn jwt_claims(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = nost_auth::jwt_remaining(text);
        let token = nost_auth::AccessToken::from_jwt(text.to_owned().into());
        let _ = token.remaining();
    }
}
