//! Credential loading and masking. Secrets come from the environment, a 0600 key
//! file, or a hidden prompt — never from a command-line argument — and live in types
//! that zeroize on drop and print only a mask.
//!
//! The credential types themselves (masking, signing) are the client's:
//! `respond_binance::credentials`, re-exported here.
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

pub use respond_binance::credentials::*;

/// The passphrase of an encrypted private key, typed at a hidden prompt when the run's
/// policy lets a person be asked (`person`); `None` otherwise.
fn passphrase(person: bool) -> impl FnOnce() -> Option<Zeroizing<String>> {
    move || person.then(passphrase_at_terminal).flatten()
}

fn passphrase_at_terminal() -> Option<Zeroizing<String>> {
    dialoguer::Password::new()
        .with_prompt("Passphrase of the encrypted private key (input hidden)")
        .interact()
        .ok()
        .map(Zeroizing::new)
}

pub use crate::playbook::Role;

/// The variables holding `role`'s API key and HMAC secret.
fn env_names(role: Role) -> (&'static str, &'static str) {
    match role {
        Role::Leaked => ("BINANCE_API_KEY", "BINANCE_API_SECRET"),
        Role::Responder => ("BINANCE_RESPONDER_API_KEY", "BINANCE_RESPONDER_API_SECRET"),
    }
}

/// The variable naming `role`'s PEM private key file (Ed25519 and RSA keys).
fn private_key_file_env(role: Role) -> &'static str {
    match role {
        Role::Leaked => "BINANCE_PRIVATE_KEY_FILE",
        Role::Responder => "BINANCE_RESPONDER_PRIVATE_KEY_FILE",
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
/// a hidden prompt. `person`: the run's policy lets a person be asked (the passphrase of
/// an encrypted key, and with `prompt_for_key` the key and secret themselves).
pub fn load(
    role: Role,
    key_file: Option<&Path>,
    prompt_for_key: bool,
    person: bool,
) -> Result<Option<Credentials>, SecretError> {
    if let Some(path) = key_file {
        return read_key_file(path, person).map(Some);
    }
    let (key_var, secret_var) = env_names(role);
    let key = std::env::var(key_var)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Zeroizing::new);
    let secret = std::env::var(secret_var)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Zeroizing::new);
    let pem_var = private_key_file_env(role);
    if let Some(pem_path) = std::env::var_os(pem_var).filter(|v| !v.is_empty()) {
        return match (key, secret) {
            (Some(k), None) => {
                let pem = read_private_file(Path::new(&pem_path))?;
                Credentials::from_private_key_pem_with(k.trim(), &pem, passphrase(person))
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
        (None, None) if prompt_for_key && person => prompt(role).map(Some),
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
        return Credentials::from_private_key_pem_with(key.trim(), &pem, passphrase(true)).map_err(
            |source| SecretError::Key {
                origin: format!("the {role} key's PEM file"),
                source,
            },
        );
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
pub fn read_key_file(path: &Path, person: bool) -> Result<Credentials, SecretError> {
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
                let Some(block) = pem_block(&value, &mut lines) else {
                    return Err(format(i + 1, "`private_key:` has no `-----END ...-----` line"));
                };
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
    credentials(path, key, secret, pem, person)
}

/// `private_key:`'s PEM block: the rest of its line (after an optional `|`) and the
/// next lines up to `-----END ...-----`; None when that line never comes.
fn pem_block<'a>(
    value: &str,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Option<Zeroizing<String>> {
    let mut block = Zeroizing::new(String::new());
    let first = value.trim_start_matches('|').trim();
    if !first.is_empty() {
        block.push_str(first);
        block.push('\n');
    }
    let mut ended = first.starts_with("-----END");
    while !ended {
        let (_, next) = lines.next()?;
        let next = next.trim();
        block.push_str(next);
        block.push('\n');
        ended = next.starts_with("-----END");
    }
    Some(block)
}

/// The credentials a key file's fields make: an HMAC key and secret, or a key and its
/// private key.
fn credentials(
    path: &Path,
    key: Option<Zeroizing<String>>,
    secret: Option<Zeroizing<String>>,
    pem: Option<Zeroizing<String>>,
    person: bool,
) -> Result<Credentials, SecretError> {
    let format = |line: usize, message: &str| SecretError::Format {
        path: path.to_path_buf(),
        line,
        message: message.to_string(),
    };
    match (key, secret, pem) {
        (Some(k), None, Some(pem)) if !k.is_empty() => {
            Credentials::from_private_key_pem_with(k.as_str(), &pem, passphrase(person)).map_err(|source| {
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
        let err = read_key_file(&path, false).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = read_key_file(&path, false).unwrap();
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
        let err = read_key_file(&path, false).unwrap_err().to_string();
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
        assert_eq!(
            read_key_file(&inline, false).unwrap().signer.kind(),
            "ed25519"
        );
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
        assert_eq!(
            read_key_file(&block, false).unwrap().signer.kind(),
            "ed25519"
        );
        private("k.pem", &pem);
        let by_path = private(
            "path.key",
            "api_key: AbCdEFGHIJKLMNOPwXyZ\nprivate_key_file: k.pem\n",
        );
        assert_eq!(
            read_key_file(&by_path, false).unwrap().signer.kind(),
            "ed25519"
        );
        // The PEM file is a secret too: 0600 or refused.
        std::fs::set_permissions(
            dir.path().join("k.pem"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(read_key_file(&by_path, false)
            .unwrap_err()
            .to_string()
            .contains("chmod 600"));
        let both = private(
            "both.key",
            &format!("api_key: AbCdEFGHIJKLMNOPwXyZ\nsecret: s3cr3t\nprivate_key: {pem}"),
        );
        assert!(read_key_file(&both, false).is_err());
    }
}
