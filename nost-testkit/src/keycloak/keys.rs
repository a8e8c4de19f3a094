//! [`SigningKey`]: the RSA key the emulator signs access tokens with.

use std::fmt;
use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// An RSA private key (PKCS#8 or PKCS#1 PEM) and the key id (`kid`) put in
/// the header of the tokens it signs.
///
/// `Debug` never prints the key material.
#[derive(Clone)]
pub struct SigningKey {
    /// The private key, PEM encoded.
    pub private_pem: String,
    /// Key id written to the JWT header.
    pub kid: String,
}

impl SigningKey {
    /// Reads a PEM private key from `path` and pairs it with `kid`.
    pub fn from_pem_file(path: &Path, kid: &str) -> std::io::Result<Self> {
        Ok(Self {
            private_pem: std::fs::read_to_string(path)?,
            kid: kid.to_owned(),
        })
    }

    /// A fresh RSA-2048 key (made in-process), e.g. one the broker does not
    /// trust, for refused-token tests.
    pub fn generate(kid: &str) -> std::io::Result<Self> {
        let (private_pem, _) = crate::broker::rsa_key_pair().map_err(std::io::Error::other)?;
        Ok(Self {
            private_pem,
            kid: kid.to_owned(),
        })
    }

    pub(super) fn encoding_key(&self) -> Result<EncodingKey, jsonwebtoken::errors::Error> {
        EncodingKey::from_rsa_pem(self.private_pem.as_bytes())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("private_pem", &"<redacted>")
            .field("kid", &self.kid)
            .finish()
    }
}

pub(super) fn sign_with(key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key)
        .unwrap_or_else(|e| panic!("signing a JWT with key {kid:?} failed: {e}"))
}
