//! Credential loading and masking. Secrets come from the environment, a 0600 key
//! file, or a hidden prompt — never from a command-line argument — and live in types
//! that zeroize on drop and print only a mask.
//!
//! A key is HMAC (an API secret) or asymmetric: Binance also issues Ed25519 keys (its
//! recommendation for new ones) and RSA keys, whose secret is a PKCS#8 PEM private key.
//! The type is read from the PEM itself; aws-lc-rs parses and signs.
use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// How requests are signed: the key type, read from the secret itself.
#[derive(Clone)]
pub enum Signer {
    /// Hex HMAC-SHA256 keyed with the API secret.
    Hmac,
    /// Base64 Ed25519 (RFC 8032, pure) signature.
    Ed25519(Arc<aws_lc_rs::signature::Ed25519KeyPair>),
    /// Base64 RSASSA-PKCS1-v1_5 SHA-256 signature.
    Rsa(Arc<aws_lc_rs::rsa::KeyPair>),
}

impl Signer {
    /// `hmac`, `ed25519` or `rsa`.
    pub fn kind(&self) -> &'static str {
        match self {
            Signer::Hmac => "hmac",
            Signer::Ed25519(_) => "ed25519",
            Signer::Rsa(_) => "rsa",
        }
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({})", self.kind())
    }
}

/// A key and its secret (an HMAC secret, or the PEM text of a private key).
#[derive(Clone, Debug)]
pub struct Credentials {
    pub key: ApiKey,
    pub secret: ApiSecret,
    pub signer: Signer,
}

impl Credentials {
    /// An HMAC key.
    pub fn new(key: impl Into<String>, secret: impl Into<String>) -> Self {
        Credentials {
            key: ApiKey::new(key),
            secret: ApiSecret::new(secret),
            signer: Signer::Hmac,
        }
    }

    /// An Ed25519 or RSA key whose private key is `pem` (PKCS#8, `BEGIN PRIVATE KEY`; an
    /// RSA key may also be PKCS#1, `BEGIN RSA PRIVATE KEY`). Errors never quote the PEM.
    pub fn from_private_key_pem(key: impl Into<String>, pem: &str) -> Result<Self, KeyError> {
        let signer = signer_from_pem(pem)?;
        Ok(Credentials {
            key: ApiKey::new(key),
            secret: ApiSecret::new(pem.trim().to_string()),
            signer,
        })
    }

    /// The Ed25519 or RSA signature of `payload` (the query string exactly as sent, then
    /// the body), base64 and percent-encoded for the query (`+`, `/`, `=` encoded), as
    /// binance-connector's `ed25519_signature`/`rsa_signature` do. `None` for an HMAC key
    /// (the client signs those itself).
    pub fn sign_asymmetric(&self, payload: &str) -> Option<String> {
        use base64::Engine;
        let raw = match &self.signer {
            Signer::Hmac => return None,
            Signer::Ed25519(pair) => pair.sign(payload.as_bytes()).as_ref().to_vec(),
            Signer::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    payload.as_bytes(),
                    &mut sig,
                )
                .ok()?;
                sig
            }
        };
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        Some(
            b64.replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D"),
        )
    }
}

/// Why a private key could not be used. Never carries the key's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the private key is not PEM: {0}")]
    NotPem(String),
    #[error(
        "the private key is encrypted (ENCRYPTED PRIVATE KEY) and its passphrase can only be typed at a terminal: run respond in one, or decrypt it for the incident into a private file (`umask 077; openssl pkcs8 -in KEY.pem -out /dev/shm/key.pem`), point respond at that, and delete it afterwards"
    )]
    Encrypted,
    #[error("the passphrase does not open the encrypted private key (or the key is damaged)")]
    WrongPassphrase,
    #[error("the PEM holds a {0}, not a private key (expected `BEGIN PRIVATE KEY`)")]
    WrongBlock(String),
    #[error("the private key is neither an Ed25519 nor an RSA key in PKCS#8 (or it is damaged)")]
    Unsupported,
}

/// Read the key type from the PEM and parse it. An encrypted PKCS#8 key (PBES2, as
/// `openssl pkcs8 -topk8 -v2` writes) is opened with a passphrase typed at a hidden
/// prompt, which needs a terminal.
fn signer_from_pem(text: &str) -> Result<Signer, KeyError> {
    signer_from_pem_with(text, passphrase_at_terminal)
}

fn passphrase_at_terminal() -> Option<Zeroizing<String>> {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return None;
    }
    dialoguer::Password::new()
        .with_prompt("Passphrase of the encrypted private key (input hidden)")
        .interact()
        .ok()
        .map(Zeroizing::new)
}

fn signer_from_pem_with(
    text: &str,
    passphrase: impl FnOnce() -> Option<Zeroizing<String>>,
) -> Result<Signer, KeyError> {
    let pem = crate::pem::parse(text).map_err(KeyError::NotPem)?;
    match pem.label.as_str() {
        "ENCRYPTED PRIVATE KEY" => {
            let info = pkcs8::EncryptedPrivateKeyInfo::try_from(pem.der.as_slice())
                .map_err(|_| KeyError::Unsupported)?;
            let passphrase = passphrase().ok_or(KeyError::Encrypted)?;
            let plain = info
                .decrypt(passphrase.as_bytes())
                .map_err(|_| KeyError::WrongPassphrase)?;
            pkcs8_signer(plain.as_bytes())
        }
        "PRIVATE KEY" => pkcs8_signer(&pem.der),
        "RSA PRIVATE KEY" => aws_lc_rs::rsa::KeyPair::from_der(&pem.der)
            .map(|pair| Signer::Rsa(Arc::new(pair)))
            .map_err(|_| KeyError::Unsupported),
        other => Err(KeyError::WrongBlock(other.to_string())),
    }
}

/// An Ed25519 or RSA key from its PKCS#8 DER.
fn pkcs8_signer(der: &[u8]) -> Result<Signer, KeyError> {
    if let Ok(pair) = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(der) {
        return Ok(Signer::Ed25519(Arc::new(pair)));
    }
    aws_lc_rs::rsa::KeyPair::from_pkcs8(der)
        .map(|pair| Signer::Rsa(Arc::new(pair)))
        .map_err(|_| KeyError::Unsupported)
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
    /// The variable naming a PEM private key file (Ed25519 and RSA keys).
    fn private_key_file_env(self) -> &'static str {
        match self {
            Role::Leaked => "BINANCE_PRIVATE_KEY_FILE",
            Role::Responder => "BINANCE_RESPONDER_PRIVATE_KEY_FILE",
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
    #[error("{origin}: {source}")]
    Key { origin: String, source: KeyError },
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
    let pem_var = role.private_key_file_env();
    if let Some(pem_path) = std::env::var_os(pem_var).filter(|v| !v.is_empty()) {
        return match (key, secret) {
            (Some(k), None) => {
                let pem = read_private_file(Path::new(&pem_path))?;
                Credentials::from_private_key_pem(k.trim(), &pem)
                    .map(Some)
                    .map_err(|source| SecretError::Key {
                        origin: format!("{pem_var} ({})", Path::new(&pem_path).display()),
                        source,
                    })
            }
            (None, _) => Err(SecretError::HalfSet {
                var: pem_var,
                missing: key_var,
            }),
            (Some(_), Some(_)) => Err(SecretError::Format {
                path: PathBuf::from(pem_var),
                line: 0,
                message: format!(
                    "{secret_var} and {pem_var} are both set: an HMAC key has a secret, an Ed25519 or RSA key a private key file — set one"
                ),
            }),
        };
    }
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
        .with_prompt(format!(
            "API secret of the {role} key (input hidden) — for an Ed25519 or RSA key, its PEM file's full path"
        ))
        .interact()
        .map_err(err)?;
    let secret = Zeroizing::new(secret);
    // A PEM private key cannot be typed into one line: its file's path stands for it.
    let path = Path::new(secret.trim());
    if path.is_absolute() && path.is_file() {
        let pem = read_private_file(path)?;
        return Credentials::from_private_key_pem(key.trim(), &pem).map_err(|source| {
            SecretError::Key {
                origin: format!("the {role} key's PEM file"),
                source,
            }
        });
    }
    Ok(Credentials::new(key.trim(), secret.trim()))
}

/// Read a file holding a secret: refused when group or world can read it, because a
/// leaked secret is exactly what this tool responds to.
fn read_private_file(path: &Path) -> Result<Zeroizing<String>, SecretError> {
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
    Ok(Zeroizing::new(std::fs::read_to_string(path).map_err(
        |source| SecretError::Read {
            path: path.to_path_buf(),
            source,
        },
    )?))
}

/// Read a key file: `api_key: ...` and either `secret: ...` (HMAC) or, for an Ed25519 or
/// RSA key, `private_key_file: PATH` (a PEM file, itself 0600) or `private_key:` followed
/// by the PEM (on the same line and the next ones, up to `-----END ...-----`).
pub fn read_key_file(path: &Path) -> Result<Credentials, SecretError> {
    let text = read_private_file(path)?;
    let format = |line: usize, message: &str| SecretError::Format {
        path: path.to_path_buf(),
        line,
        message: message.to_string(),
    };
    let mut key = None;
    let mut secret = None;
    let mut pem: Option<Zeroizing<String>> = None;
    let mut pem_file: Option<PathBuf> = None;
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format(
                i + 1,
                "expected `api_key: ...`, `secret: ...`, `private_key_file: ...` or `private_key: ...`",
            ));
        };
        let value = Zeroizing::new(value.trim().trim_matches('"').to_string());
        match name.trim() {
            "api_key" => key = Some(value),
            "secret" => secret = Some(value),
            "private_key_file" => pem_file = Some(PathBuf::from(value.as_str())),
            "private_key" => {
                let mut block = Zeroizing::new(String::new());
                let first = value.trim_start_matches('|').trim();
                if !first.is_empty() {
                    block.push_str(first);
                    block.push('\n');
                }
                let mut ended = first.starts_with("-----END");
                while !ended {
                    let Some((_, next)) = lines.next() else {
                        return Err(format(i + 1, "`private_key:` has no `-----END ...-----` line"));
                    };
                    let next = next.trim();
                    block.push_str(next);
                    block.push('\n');
                    ended = next.starts_with("-----END");
                }
                pem = Some(block);
            }
            other => {
                return Err(format(
                    i + 1,
                    &format!("unknown field `{other}`; expected `api_key`, `secret`, `private_key_file` or `private_key`"),
                ))
            }
        }
    }
    if let Some(file) = pem_file {
        if pem.is_some() {
            return Err(format(
                0,
                "give `private_key_file:` or `private_key:`, not both",
            ));
        }
        // A relative path is relative to the key file.
        let file = match path.parent() {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file,
        };
        pem = Some(read_private_file(&file)?);
    }
    match (key, secret, pem) {
        (Some(k), None, Some(pem)) if !k.is_empty() => {
            Credentials::from_private_key_pem(k.as_str(), &pem).map_err(|source| {
                SecretError::Key {
                    origin: format!("key file {}", path.display()),
                    source,
                }
            })
        }
        (Some(_), Some(_), Some(_)) => Err(format(
            0,
            "has both `secret:` (HMAC) and a private key (Ed25519/RSA): a key has one or the other",
        )),
        (Some(k), Some(s), None) if !k.is_empty() && !s.is_empty() => {
            Ok(Credentials::new(k.as_str(), s.as_str()))
        }
        _ => Err(format(
            0,
            "needs `api_key:` and either `secret:` (HMAC key) or `private_key_file:`/`private_key:` (Ed25519 or RSA key)",
        )),
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
    fn an_encrypted_pkcs8_key_opens_with_its_passphrase_only() {
        // The built-in Ed25519 drill key, encrypted with `openssl pkcs8 -topk8 -v2
        // aes-256-cbc` (PBES2: PBKDF2 and AES-256-CBC).
        let pem = include_str!("../tests/fixtures/leaked-ed25519-encrypted.pem");
        let pass = |p: &str| {
            let p = p.to_string();
            move || Some(Zeroizing::new(p))
        };
        let signer = signer_from_pem_with(pem, pass("drill-passphrase")).unwrap();
        assert!(matches!(signer, Signer::Ed25519(_)));
        assert_eq!(
            signer_from_pem_with(pem, pass("wrong")).err(),
            Some(KeyError::WrongPassphrase)
        );
        // No terminal to ask at: said, with the way out.
        let err = signer_from_pem_with(pem, || None).err().unwrap();
        assert_eq!(err, KeyError::Encrypted);
        assert!(err.to_string().contains("openssl pkcs8"), "{err}");
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

    /// A fresh Ed25519 key pair: (private PEM, public key bytes).
    fn ed25519_pem() -> (String, Vec<u8>) {
        use aws_lc_rs::signature::KeyPair;
        use base64::Engine;
        let der = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .unwrap();
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(der.as_ref()).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        (
            format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"),
            pair.public_key().as_ref().to_vec(),
        )
    }

    fn unpercent(s: &str) -> String {
        s.replace("%2B", "+")
            .replace("%2F", "/")
            .replace("%3D", "=")
    }

    #[test]
    fn ed25519_keys_sign_base64_percent_encoded() {
        use base64::Engine;
        let (pem, public) = ed25519_pem();
        let c = Credentials::from_private_key_pem("AbCdEFGHIJKLMNOPwXyZ", &pem).unwrap();
        assert_eq!(c.signer.kind(), "ed25519");
        let payload = "symbol=BTCUSDT&recvWindow=5000&timestamp=1499827319559";
        let sig = c.sign_asymmetric(payload).unwrap();
        assert!(!sig.contains(['+', '/', '=']), "{sig}");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(unpercent(&sig))
            .unwrap();
        aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, &public)
            .verify(payload.as_bytes(), &raw)
            .unwrap();
        // Never printed, and HMAC keys sign elsewhere.
        assert!(!format!("{c:?}").contains("PRIVATE"), "{c:?}");
        assert_eq!(Credentials::new("k", "s").sign_asymmetric(payload), None);
    }

    #[test]
    fn rsa_keys_sign_pkcs1_sha256() {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::KeyPair;
        use base64::Engine;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der: aws_lc_rs::encoding::Pkcs8V1Der = pair.as_der().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----");
        let c = Credentials::from_private_key_pem("AbCdEFGHIJKLMNOPwXyZ", &pem).unwrap();
        assert_eq!(c.signer.kind(), "rsa");
        let payload = "timestamp=1";
        let raw = base64::engine::general_purpose::STANDARD
            .decode(unpercent(&c.sign_asymmetric(payload).unwrap()))
            .unwrap();
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            pair.public_key().as_ref(),
        )
        .verify(payload.as_bytes(), &raw)
        .unwrap();
    }

    #[test]
    fn pem_problems_are_named_without_the_key() {
        // Tests have no terminal to ask the passphrase at.
        let enc = include_str!("../tests/fixtures/leaked-ed25519-encrypted.pem");
        let err = Credentials::from_private_key_pem("k", enc).unwrap_err();
        assert_eq!(err, KeyError::Encrypted);
        assert!(err.to_string().contains("openssl pkcs8"));
        let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA59CmOKfhATkT25lqecnZarR4XgmzJ3R5OZYaA/vzHcA=\n-----END PUBLIC KEY-----";
        assert!(matches!(
            Credentials::from_private_key_pem("k", public),
            Err(KeyError::WrongBlock(_))
        ));
        let junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----";
        let err = Credentials::from_private_key_pem("k", junk)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("AAAA"), "{err}");
    }

    #[test]
    fn key_files_take_a_pem_inline_or_by_path() {
        use std::os::unix::fs::PermissionsExt;
        let (pem, _) = ed25519_pem();
        let dir = tempfile::tempdir().unwrap();
        let private = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            path
        };
        let inline = private(
            "inline.key",
            &format!("api_key: AbCdEFGHIJKLMNOPwXyZ\nprivate_key: {pem}"),
        );
        assert_eq!(read_key_file(&inline).unwrap().signer.kind(), "ed25519");
        let block = private(
            "block.key",
            &format!(
                "private_key: |\n{}\napi_key: AbCdEFGHIJKLMNOPwXyZ\n",
                pem.lines()
                    .map(|l| format!("  {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        );
        assert_eq!(read_key_file(&block).unwrap().signer.kind(), "ed25519");
        private("k.pem", &pem);
        let by_path = private(
            "path.key",
            "api_key: AbCdEFGHIJKLMNOPwXyZ\nprivate_key_file: k.pem\n",
        );
        assert_eq!(read_key_file(&by_path).unwrap().signer.kind(), "ed25519");
        // The PEM file is a secret too: 0600 or refused.
        std::fs::set_permissions(
            dir.path().join("k.pem"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(read_key_file(&by_path)
            .unwrap_err()
            .to_string()
            .contains("chmod 600"));
        let both = private(
            "both.key",
            &format!("api_key: AbCdEFGHIJKLMNOPwXyZ\nsecret: s3cr3t\nprivate_key: {pem}"),
        );
        assert!(read_key_file(&both).is_err());
    }
}
