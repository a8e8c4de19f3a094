//! The node's key material, made in-process: the RSA signing key pair it
//! trusts (the `rsa` crate) and a TLS CA with a server certificate (rcgen).

use std::path::Path;

use super::BrokerError;

/// A fresh RSA-2048 key pair, made in-process: the private key as PKCS#8
/// PEM and the public key as SPKI PEM (what `auth_oauth2.signing_keys`
/// reads).
pub fn rsa_key_pair() -> Result<(String, String), BrokerError> {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let failed = |detail: String| BrokerError::Command {
        command: "RSA-2048 key generation (rsa crate)".into(),
        detail,
    };
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .map_err(|e| failed(e.to_string()))?;
    let private_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| failed(e.to_string()))?;
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| failed(e.to_string()))?;
    Ok((private_pem.to_string(), public_pem))
}

/// [`rsa_key_pair`] written to files: private PKCS#8 PEM at `private`,
/// public SPKI PEM at `public`.
pub fn make_rsa_key(private: &Path, public: &Path) -> Result<(), BrokerError> {
    let (private_pem, public_pem) = rsa_key_pair()?;
    std::fs::write(private, private_pem)?;
    std::fs::write(public, public_pem)?;
    Ok(())
}

/// A CA (`ca.pem`) and a server certificate it signed (`server.pem`,
/// `server.key`; SAN localhost, 127.0.0.1, ::1) in `dir`, made with rcgen
/// (ECDSA P-256).
pub(super) fn make_tls(dir: &Path) -> Result<(), BrokerError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let tls = |e: rcgen::Error| BrokerError::Command {
        command: "rcgen".into(),
        detail: e.to_string(),
    };
    let ca_key = KeyPair::generate().map_err(tls)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "nost-test-ca");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(tls)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().map_err(tls)?;
    let mut server = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(tls)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.is_ca = IsCa::ExplicitNoCa;
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    let server_cert = server.signed_by(&key, &issuer).map_err(tls)?;

    std::fs::write(dir.join("ca.pem"), ca_cert.pem())?;
    std::fs::write(dir.join("server.pem"), server_cert.pem())?;
    std::fs::write(dir.join("server.key"), key.serialize_pem())?;
    Ok(())
}
