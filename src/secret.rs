//! Credential loading and masking. Secrets come from the environment, a 0600 key
//! file, or a hidden prompt — never from a command-line argument — and live in types
//! that zeroize on drop and print only a mask.
use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// An API key. Not a secret in Binance's model, but it identifies the account, so it is
/// shown only masked (`AbCd…wXyZ`) and zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(Zeroizing<String>);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(Zeroizing::new(key.into()))
    }
    /// The full key, for the `X-MBX-APIKEY` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// `AbCd…wXyZ`: enough to tell keys apart, not enough to use one.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }

    /// A keyed hash of the key with a fresh random salt, `hmac-sha256:<salt>:<digest>`:
    /// a journal can name the key exactly without holding it.
    pub fn fingerprint(&self) -> String {
        let mut salt = [0u8; 16];
        aws_lc_rs::rand::fill(&mut salt).expect("the system's random source works");
        self.fingerprint_with(&salt)
    }

    fn fingerprint_with(&self, salt: &[u8]) -> String {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(salt).expect("HMAC takes any key");
        mac.update(self.0.as_bytes());
        format!(
            "{FINGERPRINT_SCHEME}:{}:{}",
            hex::encode(salt),
            hex::encode(mac.finalize().into_bytes())
        )
    }

    /// Whether a fingerprint recorded earlier is of this key; `None` when the recorded
    /// text is not a fingerprint this version can check.
    pub fn matches_fingerprint(&self, recorded: &str) -> Option<bool> {
        let mut parts = recorded.split(':');
        let (Some(FINGERPRINT_SCHEME), Some(salt), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let salt = hex::decode(salt).ok()?;
        Some(self.fingerprint_with(&salt) == recorded)
    }
}

const FINGERPRINT_SCHEME: &str = "hmac-sha256";

/// Mask any key-like string: the first and last four characters around an ellipsis,
/// or only stars when it is too short for that to hide anything.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 12 {
        return "****".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.masked())
    }
}

/// An API secret. Never printed in any form.
#[derive(Clone)]
pub struct ApiSecret(SecretString);

impl ApiSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        ApiSecret(SecretString::from(secret.into()))
    }
    /// The secret bytes, for the HMAC key only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ApiSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiSecret([REDACTED])")
    }
}

impl fmt::Display for ApiSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// A key and its secret.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub key: ApiKey,
    pub secret: ApiSecret,
}

impl Credentials {
    pub fn new(key: impl Into<String>, secret: impl Into<String>) -> Self {
        Credentials {
            key: ApiKey::new(key),
            secret: ApiSecret::new(secret),
        }
    }
}

/// Which key a step acts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The key that may have leaked: used fast for triage, cancel and evidence, and to
    /// prove revocation.
    Leaked,
    /// An optional separate read-only key, so evidence can still be pulled after the
    /// leaked key is deleted.
    Responder,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leaked => "leaked",
            Role::Responder => "responder",
        }
    }
    fn env_names(self) -> (&'static str, &'static str) {
        match self {
            Role::Leaked => ("BINANCE_API_KEY", "BINANCE_API_SECRET"),
            Role::Responder => ("BINANCE_RESPONDER_API_KEY", "BINANCE_RESPONDER_API_SECRET"),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}` and try again"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("key file {path}:{line}: {message}")]
    Format {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{var} is set but {missing} is not; set both or neither")]
    HalfSet {
        var: &'static str,
        missing: &'static str,
    },
    #[error("cannot read the {role} key at the prompt: {message}")]
    Prompt { role: Role, message: String },
}

/// Where credentials for a role may come from, in order: the key file, the environment,
/// a hidden prompt (only when allowed and a terminal is attached).
pub fn load(
    role: Role,
    key_file: Option<&Path>,
    allow_prompt: bool,
) -> Result<Option<Credentials>, SecretError> {
    if let Some(path) = key_file {
        return read_key_file(path).map(Some);
    }
    let (key_var, secret_var) = role.env_names();
    let key = std::env::var(key_var)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Zeroizing::new);
    let secret = std::env::var(secret_var)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Zeroizing::new);
    match (key, secret) {
        (Some(k), Some(s)) => Ok(Some(Credentials::new(k.trim(), s.trim()))),
        (Some(_), None) => Err(SecretError::HalfSet {
            var: key_var,
            missing: secret_var,
        }),
        (None, Some(_)) => Err(SecretError::HalfSet {
            var: secret_var,
            missing: key_var,
        }),
        (None, None)
            if allow_prompt
                && std::io::stdin().is_terminal()
                && std::io::stderr().is_terminal() =>
        {
            prompt(role).map(Some)
        }
        (None, None) => Ok(None),
    }
}

fn prompt(role: Role) -> Result<Credentials, SecretError> {
    let err = |e: dialoguer::Error| SecretError::Prompt {
        role,
        message: e.to_string(),
    };
    let key = dialoguer::Password::new()
        .with_prompt(format!("API key of the {role} key (input hidden)"))
        .interact()
        .map_err(err)?;
    let key = Zeroizing::new(key);
    let secret = dialoguer::Password::new()
        .with_prompt(format!("API secret of the {role} key (input hidden)"))
        .interact()
        .map_err(err)?;
    let secret = Zeroizing::new(secret);
    Ok(Credentials::new(key.trim(), secret.trim()))
}

/// Read a key file: two lines, `api_key: ...` and `secret: ...`. Refused when group or
/// world can read it, because a leaked secret is exactly what this tool responds to.
pub fn read_key_file(path: &Path) -> Result<Credentials, SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| SecretError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| SecretError::Read {
                path: path.to_path_buf(),
                source,
            })?,
        );
    let mut key = None;
    let mut secret = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(SecretError::Format {
                path: path.to_path_buf(),
                line: i + 1,
                message: "expected `api_key: ...` or `secret: ...`".into(),
            });
        };
        let value = value.trim().trim_matches('"').to_string();
        match name.trim() {
            "api_key" => key = Some(Zeroizing::new(value)),
            "secret" => secret = Some(Zeroizing::new(value)),
            other => {
                return Err(SecretError::Format {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: format!("unknown field `{other}`; expected `api_key` or `secret`"),
                })
            }
        }
    }
    match (key, secret) {
        (Some(k), Some(s)) if !k.is_empty() && !s.is_empty() => {
            Ok(Credentials::new(k.as_str(), s.as_str()))
        }
        _ => Err(SecretError::Format {
            path: path.to_path_buf(),
            line: 0,
            message: "needs both `api_key:` and `secret:` lines".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keys() {
        let k = ApiKey::new("AbCdEFGHIJKLMNOPwXyZ");
        assert_eq!(k.masked(), "AbCd…wXyZ");
        assert_eq!(format!("{k}"), "AbCd…wXyZ");
        assert_eq!(format!("{k:?}"), "ApiKey(AbCd…wXyZ)");
        assert_eq!(mask("short"), "****");
    }

    #[test]
    fn fingerprints_name_a_key_without_holding_it() {
        let k = ApiKey::new("AbCdEFGHIJKLMNOPwXyZ");
        let fp = k.fingerprint();
        assert!(fp.starts_with("hmac-sha256:"), "{fp}");
        assert!(!fp.contains("EFGHIJKLMNOP"), "{fp}");
        assert_ne!(fp, k.fingerprint(), "a fresh salt each time");
        assert_eq!(k.matches_fingerprint(&fp), Some(true));
        // Same mask, different key.
        let other = ApiKey::new("AbCdEFGHIJKLMNOqwXyZ");
        assert_eq!(other.masked(), k.masked());
        assert_eq!(other.matches_fingerprint(&fp), Some(false));
        assert_eq!(k.matches_fingerprint("sha1:00:00"), None);
        assert_eq!(k.matches_fingerprint("hmac-sha256:zz:00"), None);
    }

    #[test]
    fn secret_never_prints() {
        let c = Credentials::new("AbCdEFGHIJKLMNOPwXyZ", "topsecretvalue123");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("topsecretvalue123"), "{dbg}");
        assert!(!dbg.contains("AbCdEFGHIJKLMNOPwXyZ"), "{dbg}");
        assert_eq!(format!("{}", c.secret), "[REDACTED]");
    }

    #[test]
    fn key_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(
            &path,
            "api_key: AbCdEFGHIJKLMNOPwXyZ\nsecret: s3cr3t-s3cr3t\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_key_file(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = read_key_file(&path).unwrap();
        assert_eq!(c.key.expose(), "AbCdEFGHIJKLMNOPwXyZ");
        assert_eq!(c.secret.expose(), "s3cr3t-s3cr3t");
    }

    #[test]
    fn key_file_format_errors_name_the_line() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "api_key: abc\npassword: nope\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = read_key_file(&path).unwrap_err().to_string();
        assert!(err.contains(":2:"), "{err}");
        assert!(!err.contains("nope"), "{err}");
    }
}
