//! `.env` discovery and precedence, as python-dotenv does it for nost_tools.
#![allow(clippy::unwrap_used)]

use nost_config::{Credentials, EnvFile, ExposeSecret, VarSource, find_dotenv};

#[test]
fn dotenv_is_found_walking_up_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("a/b/c");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(dir.path().join("a/.env"), "USERNAME=x\n").unwrap();
    assert_eq!(find_dotenv(&deep), Some(dir.path().join("a/.env")));
    // A directory named .env is not a file and is skipped.
    std::fs::create_dir_all(deep.join(".env")).unwrap();
    assert_eq!(find_dotenv(&deep), Some(dir.path().join("a/.env")));
}

#[test]
fn an_explicit_file_is_read_with_quotes_export_and_comments() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("custom.env");
    std::fs::write(
        &p,
        "# comment\nexport CLIENT_ID=\"nost_monitor\"\nCLIENT_SECRET_KEY='s3cr3t'\nUSERNAME=\n",
    )
    .unwrap();
    let c = Credentials::from_env(&EnvFile::Path(p.clone())).unwrap();
    assert_eq!(c.client_id.as_deref(), Some("nost_monitor"));
    assert_eq!(c.client_secret.as_ref().unwrap().expose_secret(), "s3cr3t");
    assert_eq!(
        c.username.as_deref(),
        Some(""),
        "set but empty counts as present"
    );
    assert_eq!(c.sources["CLIENT_ID"], VarSource::DotEnv(p.clone()));
    assert_eq!(c.env_file.as_deref(), Some(p.as_path()));
}

#[test]
fn a_missing_explicit_file_is_an_error_naming_it() {
    let err = Credentials::from_env(&EnvFile::Path("/no/such/.env".into())).unwrap_err();
    assert!(err.to_string().contains("/no/such/.env"), "{err}");
}

#[test]
fn a_broken_line_is_reported_by_number_without_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(".env");
    std::fs::write(
        &p,
        "USERNAME=u\nPASSWORD=\"hunter2-unterminated\nCLIENT_ID=c\n",
    )
    .unwrap();
    let err = Credentials::from_env(&EnvFile::Path(p)).unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains("hunter2"), "secret leaked: {msg}");
    assert!(msg.contains(".env"), "{msg}");
}
