//! API credentials as the client holds them: the key (shown only masked), the secret
//! (never shown), and how requests are signed. Where they come from (environment, key
//! file, prompt) is the caller's business.
//!
//! A key is HMAC (an API secret) or asymmetric: Binance also issues Ed25519 keys (its
//! recommendation for new ones) and RSA keys, whose secret is a PKCS#8 PEM private key.
//! The type is read from the PEM itself; aws-lc-rs parses and signs.
use std::fmt;
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
        // From the operating system's source: the crypto library's own generator would
        // first gather jitter entropy, some 70 ms of CPU before the run's first request.
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).expect("the system's random source works");
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
    ///
    /// An encrypted key needs [`Credentials::from_private_key_pem_with`].
    pub fn from_private_key_pem(key: impl Into<String>, pem: &str) -> Result<Self, KeyError> {
        Self::from_private_key_pem_with(key, pem, || None)
    }

    /// As [`Credentials::from_private_key_pem`], asking `passphrase` for the passphrase
    /// of an encrypted key.
    pub fn from_private_key_pem_with(
        key: impl Into<String>,
        pem: &str,
        passphrase: impl FnOnce() -> Option<Zeroizing<String>>,
    ) -> Result<Self, KeyError> {
        let signer = signer_from_pem_with(pem, passphrase)?;
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
/// `openssl pkcs8 -topk8 -v2` writes) is opened with the passphrase `passphrase` gives;
/// `None` from it is [`KeyError::Encrypted`].
pub fn signer_from_pem_with(
    text: &str,
    passphrase: impl FnOnce() -> Option<Zeroizing<String>>,
) -> Result<Signer, KeyError> {
    let pem = respond_pem::parse(text).map_err(KeyError::NotPem)?;
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
