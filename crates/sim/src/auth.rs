//! Binance's checks on a signed request, in Binance's terms: the signature over the query
//! string exactly as received (minus `signature=`) followed by the form body — hex
//! HMAC-SHA256 keyed with the secret, or for an Ed25519 or RSA key a base64 signature
//! (percent-encoded in the query) checked with the registered public key — and
//! `timestamp` within `recvWindow` of the server clock.
use std::sync::Arc;

use aws_lc_rs::signature::{ParsedPublicKey, ED25519, RSA_PKCS1_2048_8192_SHA256};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use rust_decimal::Decimal;
use sha2::Sha256;

use super::params::Params;
use super::types::ApiError;

/// The signed payload and the signature that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// Query string then body, each exactly as received minus the `signature` pair.
    pub payload: String,
    pub signature: Option<String>,
}

/// Split the `signature` pair out of the raw query and body without touching anything
/// else: clients order and encode parameters their own way, and the HMAC covers their bytes.
pub fn split_signature(raw_query: &str, body: &str) -> Signed {
    let mut signature = None;
    let mut strip = |raw: &str| -> String {
        let mut kept = Vec::new();
        for piece in raw.split('&') {
            match piece.strip_prefix("signature=") {
                Some(sig) if signature.is_none() => signature = Some(sig.to_string()),
                _ => kept.push(piece),
            }
        }
        kept.join("&")
    };
    let query = strip(raw_query);
    let body = strip(body);
    Signed {
        payload: format!("{query}{body}"),
        signature,
    }
}

/// Hex HMAC-SHA256 of `payload` keyed with `secret`.
#[cfg(test)]
pub fn sign(secret: &str, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` (hex, either case, possibly percent-encoded by the client) signs
/// `payload` under `secret`. The comparison is constant-time.
pub fn verify(secret: &str, payload: &str, signature: &str) -> bool {
    let Ok(raw) = hex::decode(signature.trim().to_ascii_lowercase()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(payload.as_bytes());
    mac.verify_slice(&raw).is_ok()
}

/// How a key's signatures are checked.
#[derive(Clone)]
pub enum Verifier {
    /// Hex HMAC-SHA256 keyed with the key's secret.
    Hmac,
    /// The public key registered with Binance (Ed25519 or RSA).
    PublicKey(Arc<ParsedPublicKey>, &'static str),
}

impl Verifier {
    /// `hmac`, `ed25519` or `rsa`.
    pub fn kind(&self) -> &'static str {
        match self {
            Verifier::Hmac => "hmac",
            Verifier::PublicKey(_, kind) => kind,
        }
    }

    /// The verifier for a PEM public key (`BEGIN PUBLIC KEY`, X.509 SubjectPublicKeyInfo):
    /// Ed25519 or RSA, read from the key itself.
    pub fn from_public_key_pem(pem: &str) -> Result<Verifier, String> {
        let block = respond_pem::parse(pem)?;
        if block.label != "PUBLIC KEY" {
            return Err(format!(
                "expected a `BEGIN PUBLIC KEY` block, found `{}`",
                block.label
            ));
        }
        if let Ok(key) = ParsedPublicKey::new(&ED25519, &block.der[..]) {
            return Ok(Verifier::PublicKey(Arc::new(key), "ed25519"));
        }
        ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &block.der[..])
            .map(|key| Verifier::PublicKey(Arc::new(key), "rsa"))
            .map_err(|_| "neither an Ed25519 nor an RSA (2048 bits or more) public key".into())
    }

    /// Whether `signature` signs `payload` for this key; `secret` is the HMAC secret.
    pub fn verify(&self, secret: &str, payload: &str, signature: &str) -> bool {
        match self {
            Verifier::Hmac => verify(secret, payload, signature),
            Verifier::PublicKey(key, _) => {
                let Some(b64) = percent_decode(signature.trim()) else {
                    return false;
                };
                let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64) else {
                    return false;
                };
                key.verify_sig(payload.as_bytes(), &raw).is_ok()
            }
        }
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verifier({})", self.kind())
    }
}

/// `%XX` sequences decoded (a `+` stays a `+`: base64 uses it); `None` when malformed.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The largest recvWindow Binance accepts, in ms.
pub const MAX_RECV_WINDOW_MS: i64 = 60_000;
const DEFAULT_RECV_WINDOW_MS: i64 = 5000;
/// How far ahead of the server clock a timestamp may be, in ms.
const MAX_AHEAD_MS: i64 = 1000;

/// Check `timestamp` (ms or µs) against the server clock and `recvWindow` (ms, up to three
/// decimals, at most 60000).
pub fn check_timestamp(params: &Params, server_now_ms: i64) -> Result<(), ApiError> {
    let raw = params
        .get("timestamp")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::missing("timestamp"))?;
    let ts: i64 = raw.parse().map_err(|_| ApiError::illegal("timestamp"))?;
    // 13 digits are milliseconds until the year 2286; 16 digits are microseconds.
    let ts_us = if ts >= 100_000_000_000_000 {
        ts
    } else {
        ts.saturating_mul(1000)
    };
    let window_us = match params.get("recvWindow").filter(|s| !s.is_empty()) {
        None => DEFAULT_RECV_WINDOW_MS * 1000,
        Some(rw) => {
            let d: Decimal = rw.parse().map_err(|_| ApiError::illegal("recvWindow"))?;
            if d.is_sign_negative() || d.scale() > 3 {
                return Err(ApiError::illegal("recvWindow"));
            }
            if d > Decimal::from(MAX_RECV_WINDOW_MS) {
                return Err(ApiError::bad_request(
                    -1131,
                    "recvWindow must be less than 60000",
                ));
            }
            let us = d * Decimal::from(1000);
            i64::try_from(us.trunc()).map_err(|_| ApiError::illegal("recvWindow"))?
        }
    };
    let now_us = server_now_ms * 1000;
    if ts_us - now_us > MAX_AHEAD_MS * 1000 {
        return Err(ApiError::bad_request(
            -1021,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        ));
    }
    if now_us - ts_us > window_us {
        return Err(ApiError::bad_request(
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        ));
    }
    Ok(())
}

/// Binance API keys and secrets are 64 letters and digits.
pub fn well_formed_key(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
    const PAYLOAD: &str = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
    const SIGNATURE: &str = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71";

    #[test]
    fn binance_worked_example() {
        assert_eq!(sign(SECRET, PAYLOAD), SIGNATURE);
        assert!(verify(SECRET, PAYLOAD, SIGNATURE));
        assert!(verify(SECRET, PAYLOAD, &SIGNATURE.to_uppercase()));
        assert!(!verify(SECRET, PAYLOAD, &SIGNATURE.replace('c', "d")));
        assert!(!verify(SECRET, PAYLOAD, "not hex"));
    }

    #[test]
    fn signature_is_split_from_query_and_body() {
        let s = split_signature("symbol=LTCBTC&signature=abc&timestamp=1", "");
        assert_eq!(s.payload, "symbol=LTCBTC&timestamp=1");
        assert_eq!(s.signature.as_deref(), Some("abc"));

        let s = split_signature(
            "symbol=LTCBTC&side=BUY",
            "quantity=1&timestamp=2&signature=ff",
        );
        assert_eq!(s.payload, "symbol=LTCBTC&side=BUYquantity=1&timestamp=2");
        assert_eq!(s.signature.as_deref(), Some("ff"));

        let s = split_signature("signature=first&a=1", "");
        assert_eq!(s.payload, "a=1");
    }

    fn params(q: &str) -> Params {
        Params::parse(q, "")
    }

    #[test]
    fn timestamps_in_ms_and_us_and_fractional_windows() {
        let now = 1_700_000_000_000;
        assert!(check_timestamp(&params(&format!("timestamp={now}")), now).is_ok());
        let us = now * 1000 - 4_000_000;
        assert!(check_timestamp(&params(&format!("timestamp={us}")), now).is_ok());
        let old = now - 5500;
        assert!(check_timestamp(&params(&format!("timestamp={old}")), now).is_err());
        assert!(
            check_timestamp(&params(&format!("timestamp={old}&recvWindow=5500.5")), now).is_ok()
        );
        let ahead = now + 1001;
        assert_eq!(
            check_timestamp(&params(&format!("timestamp={ahead}")), now)
                .unwrap_err()
                .code,
            -1021
        );
        assert!(check_timestamp(&params(&format!("timestamp={}", now + 1000)), now).is_ok());
        assert_eq!(
            check_timestamp(&params(&format!("timestamp={now}&recvWindow=60001")), now)
                .unwrap_err()
                .code,
            -1131
        );
        assert_eq!(
            check_timestamp(&params("recvWindow=5000"), now)
                .unwrap_err()
                .code,
            -1102
        );
    }

    /// An Ed25519 key pair as Binance's user would make it: (private key, public PEM).
    fn ed25519() -> (aws_lc_rs::signature::Ed25519KeyPair, String) {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::KeyPair;
        let der = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .unwrap();
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(der.as_ref()).unwrap();
        let spki = pair.public_key().as_der().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(spki.as_ref());
        (
            pair,
            format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n"),
        )
    }

    #[test]
    fn ed25519_signatures_verify_with_the_registered_public_key() {
        let (pair, public) = ed25519();
        let (other, _) = ed25519();
        let v = Verifier::from_public_key_pem(&public).unwrap();
        assert_eq!(v.kind(), "ed25519");
        let b64 = |sig: &[u8]| base64::engine::general_purpose::STANDARD.encode(sig);
        let good = b64(pair.sign(PAYLOAD.as_bytes()).as_ref());
        let encoded = good
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        assert!(v.verify("", PAYLOAD, &encoded));
        // Lowercase percent escapes are the same bytes.
        assert!(v.verify(
            "",
            PAYLOAD,
            &encoded
                .replace("%2B", "%2b")
                .replace("%2F", "%2f")
                .replace("%3D", "%3d")
        ));
        // Another private key, or another payload: -1022.
        let wrong = b64(other.sign(PAYLOAD.as_bytes()).as_ref()).replace('=', "%3D");
        assert!(!v.verify("", PAYLOAD, &wrong));
        assert!(!v.verify("", "timestamp=1", &encoded));
        assert!(!v.verify("", PAYLOAD, "%zz"));
        // An HMAC signature means nothing to a public key.
        assert!(!v.verify(SECRET, PAYLOAD, SIGNATURE));
        assert!(Verifier::from_public_key_pem(
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
        )
        .is_err());
    }
}
