//! PEM text (RFC 7468) to DER bytes: the label of the first block and the base64 between
//! its lines. Format only — no cryptography here; keys are parsed by aws-lc-rs. Shared
//! by credential loading (`secret.rs`) and the simulator's scenario keys, which is a file
//! format, not a reading of Binance's API.
use base64::Engine;
use zeroize::Zeroizing;

/// One PEM block. The DER bytes may be a private key: zeroized on drop.
pub struct Pem {
    /// `PRIVATE KEY`, `PUBLIC KEY`, `ENCRYPTED PRIVATE KEY`, ...
    pub label: String,
    pub der: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pem({}, {} bytes)", self.label, self.der.len())
    }
}

/// Whether `text` looks like PEM at all (a `-----BEGIN ` line).
pub fn looks_like_pem(text: &str) -> bool {
    text.contains("-----BEGIN ")
}

/// The first PEM block of `text`. Errors never quote the text (it may be a private key).
pub fn parse(text: &str) -> Result<Pem, String> {
    let mut lines = text.lines().map(str::trim);
    let label = loop {
        match lines.next() {
            None => return Err("no `-----BEGIN ...-----` line".into()),
            Some(l) => {
                if let Some(rest) = l.strip_prefix("-----BEGIN ") {
                    break rest
                        .strip_suffix("-----")
                        .ok_or("a malformed `-----BEGIN` line")?
                        .to_string();
                }
            }
        }
    };
    let end = format!("-----END {label}-----");
    let mut body = Zeroizing::new(String::new());
    let mut ended = false;
    for line in lines {
        if line == end {
            ended = true;
            break;
        }
        if line.contains(':') {
            // RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`): OpenSSL's legacy encryption.
            return Err(format!(
                "the {label} block has headers ({}): legacy encrypted PEM is not supported",
                line.split(':').next().unwrap_or_default()
            ));
        }
        body.push_str(line);
    }
    if !ended {
        return Err(format!("no `{end}` line"));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|_| format!("the {label} block is not valid base64"))?;
    Ok(Pem {
        label,
        der: Zeroizing::new(der),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_block() {
        let text = "junk\n-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA59CmOKfhATkT25lqecnZarR4XgmzJ3R5OZYaA/vzHcA=\n-----END PUBLIC KEY-----\n";
        let pem = parse(text).unwrap();
        assert_eq!(pem.label, "PUBLIC KEY");
        assert_eq!(pem.der.len(), 44);
        assert!(parse("-----BEGIN X-----\nAAAA\n").is_err());
        assert!(parse("-----BEGIN X-----\n!!!!\n-----END X-----").is_err());
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----";
        assert!(parse(legacy).unwrap_err().contains("Proc-Type"));
    }
}
