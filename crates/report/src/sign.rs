//! The incident fingerprint and the optional Ed25519 signature over it. The signing key
//! is a long-lived operator key in the user's config directory (0600), and its public
//! half is recorded in the journal and printed in every report, so a folder re-signed
//! with a fresh key is visible.
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

pub const SIGNATURE_FILE: &str = "signature.json";
const KEY_FILE: &str = "operator-ed25519.pk8";

/// `signature.json`: the chain head it covers, by which key, and the signature.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignatureFile {
    pub chain_head: String,
    pub events: u64,
    pub public_key: String,
    pub signature: String,
    pub signed_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("cannot use the operator signing key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `$XDG_CONFIG_HOME/respond`, else `~/.config/respond`.
pub fn config_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("respond")),
        None => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config/respond")),
    }
}

/// The operator's signing key, created (0600, in a 0700 folder) on first use.
pub struct OperatorKey {
    pair: Ed25519KeyPair,
    pub path: PathBuf,
}

impl OperatorKey {
    pub fn load_or_create() -> Result<OperatorKey, SignError> {
        let dir = config_dir().ok_or_else(|| SignError::Key {
            path: PathBuf::from("~/.config/respond"),
            message: "neither XDG_CONFIG_HOME nor HOME is set".into(),
        })?;
        let path = dir.join(KEY_FILE);
        let bad = |message: String| SignError::Key {
            path: path.clone(),
            message,
        };
        if !path.exists() {
            super::files::create_private_dir(&dir).map_err(|e| bad(e.to_string()))?;
            let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| bad("key generation failed".into()))?;
            let mut file = super::files::create_private(&path).map_err(|e| bad(e.to_string()))?;
            use std::io::Write;
            file.write_all(doc.as_ref())
                .and_then(|_| file.sync_all())
                .map_err(|e| bad(e.to_string()))?;
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .map_err(|e| bad(e.to_string()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(bad(format!(
                "it is readable by other users (mode {mode:o}); run `chmod 600 {}`",
                path.display()
            )));
        }
        let bytes = zeroize::Zeroizing::new(std::fs::read(&path).map_err(|e| bad(e.to_string()))?);
        let pair = Ed25519KeyPair::from_pkcs8(&bytes)
            .map_err(|e| bad(format!("not an Ed25519 key: {e}")))?;
        Ok(OperatorKey { pair, path })
    }

    /// `ed25519:<hex>`: how the key is named in journals and reports.
    pub fn public(&self) -> String {
        format!("ed25519:{}", hex::encode(self.pair.public_key().as_ref()))
    }

    /// Sign the chain head into `signature.json` in `dir`.
    pub fn sign(
        &self,
        dir: &Path,
        chain_head: &str,
        events: u64,
    ) -> Result<SignatureFile, SignError> {
        let signature = self.pair.sign(chain_head.as_bytes());
        let file = SignatureFile {
            chain_head: chain_head.to_string(),
            events,
            public_key: self.public(),
            signature: hex::encode(signature.as_ref()),
            signed_at: super::journal::now_rfc3339(),
        };
        let path = dir.join(SIGNATURE_FILE);
        let mut bytes = serde_json::to_vec_pretty(&file).expect("signature serialises");
        bytes.push(b'\n');
        super::files::write_atomic(&path, &bytes)
            .map_err(|source| SignError::Write { path, source })?;
        Ok(file)
    }
}

/// Check a signature file's signature over its chain head.
pub fn check(file: &SignatureFile) -> Result<(), String> {
    let key = file
        .public_key
        .strip_prefix("ed25519:")
        .ok_or("the public key is not ed25519:<hex>")?;
    let key = hex::decode(key).map_err(|_| "the public key is not hex")?;
    let signature = hex::decode(&file.signature).map_err(|_| "the signature is not hex")?;
    UnparsedPublicKey::new(&ED25519, key)
        .verify(file.chain_head.as_bytes(), &signature)
        .map_err(|_| "the signature does not match the chain head it claims to cover".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_checks_and_rejects_a_forgery() {
        let home = tempfile::tempdir().unwrap();
        // Only this test touches XDG_CONFIG_HOME in this process.
        std::env::set_var("XDG_CONFIG_HOME", home.path());
        let key = OperatorKey::load_or_create().unwrap();
        let again = OperatorKey::load_or_create().unwrap();
        assert_eq!(key.public(), again.public(), "the key is long-lived");
        let incident = tempfile::tempdir().unwrap();
        let mut file = key.sign(incident.path(), "abc123", 7).unwrap();
        check(&file).unwrap();
        file.chain_head = "abc124".into();
        assert!(check(&file).is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
