//! Every way a request can fail, and the one place that turns what came back over the
//! wire (status, `{"code","msg"}` body, malformed body, transport failure) into a typed
//! [`ExchangeError`]. Messages name the endpoint (method and path, never the query)
//! and never contain the secret, a signature or the full API key.
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Endpoint, Family};

/// Binance codes that mean "this key, as presented, is not accepted": -2008 invalid API
/// key id, -2014 bad key format, -2015 invalid key/IP/permissions, -1022 bad signature.
pub const CREDENTIAL_REJECTION_CODES: [i64; 4] = [-2008, -2014, -2015, -1022];

/// Every way a request to the exchange can fail.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The key or signature was rejected. `verify_revoked` wants exactly this.
    #[error(
        "{endpoint}: Binance rejected the credentials (HTTP {status}, code {code}: {message})"
    )]
    CredentialsRejected {
        endpoint: Endpoint,
        status: u16,
        code: i64,
        message: String,
        /// What the code means, for callers that decide on it.
        reason: Rejection,
    },

    /// Any other error answer.
    #[error("{endpoint}: Binance answered HTTP {status}{}: {message}", code_suffix(*code))]
    Api {
        endpoint: Endpoint,
        status: u16,
        code: Option<i64>,
        message: String,
    },

    /// HTTP 429: over a rate limit. Binance bans IPs that keep going (418).
    #[error("{endpoint}: rate limited by Binance (HTTP {status}){}", retry_suffix(*retry_after))]
    RateLimited {
        endpoint: Endpoint,
        status: u16,
        code: Option<i64>,
        message: String,
        retry_after: Option<Duration>,
    },

    /// HTTP 418: this IP is banned for the family; nothing more is sent there until then.
    #[error("{endpoint}: Binance has banned this IP on /{family} until {} (HTTP 418); no request is sent there before then", until.format("%Y-%m-%d %H:%M:%S UTC"))]
    IpBanned {
        endpoint: Endpoint,
        family: Family,
        code: Option<i64>,
        message: String,
        until: DateTime<Utc>,
    },

    /// No answer: connection failed or the request timed out.
    #[error("{endpoint}: exchange unreachable: {reason}{}", if *outcome_unknown { " (a mutating request may or may not have been applied: re-read state)" } else { "" })]
    Unreachable {
        endpoint: Endpoint,
        reason: String,
        timed_out: bool,
        outcome_unknown: bool,
    },

    /// A dry-run client refuses every non-GET request before sending anything.
    #[error("{endpoint}: refused in a dry run; nothing was sent")]
    DryRunRefused { endpoint: Endpoint },

    /// The answer could not be read as what the endpoint documents.
    #[error("{endpoint}: cannot read Binance's answer (HTTP {status}): {reason}")]
    Decode {
        endpoint: Endpoint,
        status: u16,
        reason: String,
    },

    /// Binance's testnets have no `/sapi`; nothing was sent.
    #[error("{endpoint}: not available on testnet (testnet has no /sapi); skipped, nothing sent")]
    NotOnTestnet { endpoint: Endpoint },

    /// The request makes no sense for this account (for example sub-account history with
    /// a key that is not a master account's). A clean skip, not a failure.
    #[error("{endpoint}: not applicable: {reason}")]
    NotApplicable { endpoint: Endpoint, reason: String },

    /// A signed request on a client built without credentials.
    #[error("{endpoint}: needs an API key and secret, and none were given")]
    NoCredentials { endpoint: Endpoint },

    /// A request respond itself got wrong (for example a window longer than Binance
    /// accepts); caught before sending.
    #[error("{}{reason}", endpoint.map(|e| format!("{e}: ")).unwrap_or_default())]
    InvalidRequest {
        endpoint: Option<Endpoint>,
        reason: String,
    },

    /// The client could not be built.
    #[error("exchange client: {0}")]
    Config(String),
}

fn code_suffix(code: Option<i64>) -> String {
    code.map(|c| format!(", code {c}")).unwrap_or_default()
}

fn retry_suffix(retry_after: Option<Duration>) -> String {
    retry_after
        .map(|d| format!("; retry after {}s", d.as_secs()))
        .unwrap_or_default()
}

/// What a credential rejection means. -2015 is per endpoint, not per key (see
/// binance-api.md, "-2015 is per endpoint"): on its own it never proves a key dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// -2015: "Invalid API-key, IP, or permissions for action" — this endpoint refuses
    /// this key from this address: an IP outside the whitelist, a permission the key
    /// lacks (futures, trading), a temporary ban, or a deleted key on `/api/v3`.
    Refused,
    /// -2014: the key's format is invalid.
    BadKeyFormat,
    /// -2008: "Invalid Api-Key ID": Binance does not know the key (deleted, a typo, or a
    /// testnet key on production).
    NotFound,
    /// -1022: the signature is not valid — the secret is wrong; says nothing about the key.
    BadSignature,
}

impl Rejection {
    /// Binance's code for it, for the words and the journal.
    pub fn code(self) -> i64 {
        match self {
            Rejection::Refused => -2015,
            Rejection::BadKeyFormat => -2014,
            Rejection::NotFound => -2008,
            Rejection::BadSignature => -1022,
        }
    }

    /// Whether it says something about the key itself (gone, or refused here), as
    /// opposed to the secret: only a liveness probe tells which.
    pub fn about_the_key(self) -> bool {
        !matches!(self, Rejection::BadSignature)
    }

    fn from_code(code: i64) -> Option<Rejection> {
        match code {
            -2015 => Some(Rejection::Refused),
            -2014 => Some(Rejection::BadKeyFormat),
            -2008 => Some(Rejection::NotFound),
            -1022 => Some(Rejection::BadSignature),
            _ => None,
        }
    }
}

/// The kind of an [`ExchangeError`], for callers that branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    CredentialsRejected,
    Api,
    RateLimited,
    IpBanned,
    Unreachable,
    DryRunRefused,
    Decode,
    NotOnTestnet,
    NotApplicable,
    NoCredentials,
    InvalidRequest,
    Config,
}

impl ExchangeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ExchangeError::CredentialsRejected { .. } => ErrorKind::CredentialsRejected,
            ExchangeError::Api { .. } => ErrorKind::Api,
            ExchangeError::RateLimited { .. } => ErrorKind::RateLimited,
            ExchangeError::IpBanned { .. } => ErrorKind::IpBanned,
            ExchangeError::Unreachable { .. } => ErrorKind::Unreachable,
            ExchangeError::DryRunRefused { .. } => ErrorKind::DryRunRefused,
            ExchangeError::Decode { .. } => ErrorKind::Decode,
            ExchangeError::NotOnTestnet { .. } => ErrorKind::NotOnTestnet,
            ExchangeError::NotApplicable { .. } => ErrorKind::NotApplicable,
            ExchangeError::NoCredentials { .. } => ErrorKind::NoCredentials,
            ExchangeError::InvalidRequest { .. } => ErrorKind::InvalidRequest,
            ExchangeError::Config(_) => ErrorKind::Config,
        }
    }

    /// -2008, -2014, -2015 or -1022: the key or its signature was rejected.
    pub fn is_credential_rejection(&self) -> bool {
        matches!(self, ExchangeError::CredentialsRejected { .. })
    }

    /// Binance's error code, when the answer carried one.
    pub fn code(&self) -> Option<i64> {
        match self {
            ExchangeError::CredentialsRejected { code, .. } => Some(*code),
            ExchangeError::Api { code, .. }
            | ExchangeError::RateLimited { code, .. }
            | ExchangeError::IpBanned { code, .. } => *code,
            _ => None,
        }
    }

    /// -1121: the exchange does not list the symbol (delisted, or never was).
    pub fn is_unknown_symbol(&self) -> bool {
        self.code() == Some(-1121)
    }

    /// Why the credentials were rejected, if that is what this is.
    pub fn rejection(&self) -> Option<Rejection> {
        match self {
            ExchangeError::CredentialsRejected { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// Binance answered, but not with anything about the key: a 5xx, a rate limit, a
    /// WAF/geo block (403, 451), an answer that cannot be read. The request may work
    /// later; it proves nothing about the key.
    pub fn is_unhelpful_answer(&self) -> bool {
        matches!(
            self,
            ExchangeError::Api { .. }
                | ExchangeError::RateLimited { .. }
                | ExchangeError::Decode { .. }
        )
    }

    /// The credential-rejection code (-2008, -2014, -2015, -1022), if that is what this is.
    pub fn credential_code(&self) -> Option<i64> {
        match self {
            ExchangeError::CredentialsRejected { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ExchangeError::CredentialsRejected { status, .. }
            | ExchangeError::Api { status, .. }
            | ExchangeError::RateLimited { status, .. }
            | ExchangeError::Decode { status, .. } => Some(*status),
            ExchangeError::IpBanned { .. } => Some(418),
            _ => None,
        }
    }

    /// Binance's message, when the answer carried one.
    pub fn message(&self) -> Option<&str> {
        match self {
            ExchangeError::CredentialsRejected { message, .. }
            | ExchangeError::Api { message, .. }
            | ExchangeError::RateLimited { message, .. }
            | ExchangeError::IpBanned { message, .. } => Some(message),
            _ => None,
        }
    }

    pub fn endpoint(&self) -> Option<Endpoint> {
        match self {
            ExchangeError::CredentialsRejected { endpoint, .. }
            | ExchangeError::Api { endpoint, .. }
            | ExchangeError::RateLimited { endpoint, .. }
            | ExchangeError::IpBanned { endpoint, .. }
            | ExchangeError::Unreachable { endpoint, .. }
            | ExchangeError::DryRunRefused { endpoint }
            | ExchangeError::Decode { endpoint, .. }
            | ExchangeError::NotOnTestnet { endpoint }
            | ExchangeError::NotApplicable { endpoint, .. }
            | ExchangeError::NoCredentials { endpoint } => Some(*endpoint),
            ExchangeError::InvalidRequest { endpoint, .. } => *endpoint,
            ExchangeError::Config(_) => None,
        }
    }

    /// Until when the IP is banned (418).
    pub fn banned_until(&self) -> Option<DateTime<Utc>> {
        match self {
            ExchangeError::IpBanned { until, .. } => Some(*until),
            _ => None,
        }
    }

    /// How long Binance asked to wait (429).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ExchangeError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A 5xx answer: the server failed; a mutation's outcome is unknown.
    pub fn is_server_error(&self) -> bool {
        matches!(self, ExchangeError::Api { status, .. } if *status >= 500)
    }
}

/// Replaces key material in any text that is about to become part of an error. Binance
/// never echoes a key or secret, but a misbehaving proxy or server might; this is the
/// last line of defence, applied to every message and body excerpt.
pub(crate) struct Redactor<'a> {
    pub key: Option<&'a str>,
    pub secret: Option<&'a str>,
    pub signature: Option<&'a str>,
}

impl Redactor<'_> {
    #[cfg(test)]
    pub(crate) const NONE: Redactor<'static> = Redactor {
        key: None,
        secret: None,
        signature: None,
    };

    pub(crate) fn clean(&self, text: &str) -> String {
        let mut out = text.to_string();
        if let Some(secret) = self.secret.filter(|s| !s.is_empty()) {
            out = out.replace(secret, "[REDACTED]");
        }
        if let Some(key) = self.key.filter(|k| !k.is_empty()) {
            out = out.replace(key, &crate::credentials::mask(key));
        }
        if let Some(sig) = self.signature.filter(|s| !s.is_empty()) {
            out = out.replace(sig, "[signature]");
        }
        out
    }
}

/// What came back for one attempt, as far as error mapping needs it.
pub(crate) struct Answer<'a> {
    pub endpoint: Endpoint,
    pub family: Family,
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: &'a [u8],
    /// Server time now, for turning a ban's `Retry-After` into a date.
    pub server_now: DateTime<Utc>,
}

/// The fields of an answer's body that say whether it is an error: `code`, `msg` and
/// `message` of a JSON object (the last of a repeated key), each as whatever JSON it
/// holds. Everything else is checked for syntax and skipped, so a 2xx page of a
/// thousand trades is not built as a `Value` tree (many times its size) only to find it
/// has no `code`. A body that is not a JSON object has none of them.
#[derive(Default)]
struct ErrorFields {
    code: Option<serde_json::Value>,
    msg: Option<serde_json::Value>,
    message: Option<serde_json::Value>,
}

impl<'de> serde::Deserialize<'de> for ErrorFields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = ErrorFields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ErrorFields, A::Error> {
                let mut out = ErrorFields::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "code" => &mut out.code,
                        "msg" => &mut out.msg,
                        "message" => &mut out.message,
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(map.next_value()?);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// The one function that maps an answer to an error. `Ok` means a 2xx whose body is
/// not a Binance error object (`code` absent, 0 or 200 — futures cancel-all answers
/// `{"code":200,...}` on success).
pub(crate) fn check_answer(
    answer: &Answer<'_>,
    redact: &Redactor<'_>,
) -> Result<(), ExchangeError> {
    let endpoint = answer.endpoint;
    let status = answer.status;
    let fields = serde_json::from_slice::<ErrorFields>(answer.body).unwrap_or_default();
    let code = fields.code.as_ref().and_then(|c| c.as_i64());
    let msg = fields
        .msg
        .as_ref()
        .or(fields.message.as_ref())
        .and_then(|m| m.as_str());
    let success = (200..300).contains(&status);
    if success && !matches!(code, Some(c) if c < 0) {
        return Ok(());
    }
    let message = redact.clean(&match msg {
        Some(m) => m.to_string(),
        None if answer.body.is_empty() => "(empty body)".to_string(),
        None => format!("(no Binance error body) {}", excerpt(answer.body)),
    });
    if status == 418 {
        let until = banned_until(&message)
            .or_else(|| {
                answer
                    .retry_after
                    .map(|d| answer.server_now + chrono::Duration::from_std(d).unwrap_or_default())
            })
            // Binance's shortest ban is two minutes.
            .unwrap_or(answer.server_now + chrono::Duration::minutes(2));
        return Err(ExchangeError::IpBanned {
            endpoint,
            family: answer.family,
            code,
            message,
            until,
        });
    }
    if status == 429 || code == Some(-1003) {
        return Err(ExchangeError::RateLimited {
            endpoint,
            status,
            code,
            message,
            retry_after: answer.retry_after,
        });
    }
    match code.and_then(|c| Rejection::from_code(c).map(|r| (c, r))) {
        Some((code, reason)) => Err(ExchangeError::CredentialsRejected {
            endpoint,
            status,
            code,
            message,
            reason,
        }),
        _ => Err(ExchangeError::Api {
            endpoint,
            status,
            code,
            message,
        }),
    }
}

/// Decode a 2xx body into the endpoint's wire type.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    endpoint: Endpoint,
    status: u16,
    body: &[u8],
    redact: &Redactor<'_>,
) -> Result<T, ExchangeError> {
    serde_json::from_slice(body).map_err(|e| ExchangeError::Decode {
        endpoint,
        status,
        reason: redact.clean(&format!("{e}; body starts: {}", excerpt(body))),
    })
}

/// A transport failure (no HTTP answer). reqwest's own text names the URL, query and
/// signature included, so it is rebuilt here from the error kind and its causes only.
pub(crate) fn from_transport(
    endpoint: Endpoint,
    err: &reqwest::Error,
    timeout: Duration,
    repeatable: bool,
    redact: &Redactor<'_>,
) -> ExchangeError {
    let timed_out = err.is_timeout();
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let detail = causes.last().cloned().unwrap_or_default();
    let reason = if timed_out {
        format!("no answer within {:.1}s", timeout.as_secs_f64())
    } else if err.is_connect() {
        format!("cannot connect: {detail}")
    } else {
        format!("request failed: {detail}")
    };
    ExchangeError::Unreachable {
        endpoint,
        reason: redact.clean(&reason),
        timed_out,
        // A connection that never opened sent nothing; anything else may have arrived.
        outcome_unknown: !repeatable && !err.is_connect(),
    }
}

/// `... banned until 1659146400000 ...` in a 418 message (ms since the epoch).
fn banned_until(message: &str) -> Option<DateTime<Utc>> {
    let rest = &message[message.find("until")? + "until".len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    DateTime::from_timestamp_millis(digits.parse().ok()?)
}

/// The start of a body, on one line, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut: String = one_line.chars().take(160).collect();
    if one_line.chars().count() > 160 {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HttpMethod;

    fn answer(status: u16, body: &str) -> Result<(), ExchangeError> {
        let a = Answer {
            endpoint: Endpoint {
                method: HttpMethod::Get,
                path: "/api/v3/account",
            },
            family: Family::Api,
            status,
            retry_after: Some(Duration::from_secs(120)),
            body: body.as_bytes(),
            server_now: DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
        };
        check_answer(&a, &Redactor::NONE)
    }

    #[test]
    fn maps_codes_and_statuses() {
        assert!(answer(200, r#"{"code":200,"msg":"done"}"#).is_ok());
        assert!(answer(200, "[]").is_ok());
        let e = answer(
            401,
            r#"{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}"#,
        )
        .unwrap_err();
        assert!(e.is_credential_rejection());
        assert_eq!((e.code(), e.status()), (Some(-2015), Some(401)));
        assert_eq!(e.rejection(), Some(Rejection::Refused));
        for (code, reason) in [
            (-2008, Rejection::NotFound),
            (-2014, Rejection::BadKeyFormat),
            (-1022, Rejection::BadSignature),
        ] {
            let e = answer(401, &format!(r#"{{"code":{code},"msg":"x"}}"#)).unwrap_err();
            assert_eq!(e.rejection(), Some(reason));
        }
        assert_eq!(
            e.to_string(),
            "GET /api/v3/account: Binance rejected the credentials (HTTP 401, code -2015: Invalid API-key, IP, or permissions for action.)"
        );
        let e = answer(400, r#"{"code":-1121,"msg":"Invalid symbol."}"#).unwrap_err();
        assert_eq!((e.kind(), e.code()), (ErrorKind::Api, Some(-1121)));
        let e = answer(200, r#"{"code":-1021,"msg":"late"}"#).unwrap_err();
        assert_eq!((e.code(), e.status()), (Some(-1021), Some(200)));
        let e = answer(403, "<html>WAF</html>").unwrap_err();
        assert_eq!((e.kind(), e.code()), (ErrorKind::Api, None));
        assert!(e.to_string().contains("<html>WAF</html>"), "{e}");
        let e = answer(429, r#"{"code":-1003,"msg":"Too many requests"}"#).unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
    }

    #[test]
    fn reads_the_error_fields_as_a_whole_json_value_would() {
        // A page of trades has no error fields, however long.
        let page = format!(
            "[{}]",
            vec![r#"{"id":1,"price":"1.0","isBuyer":true,"code":-1}"#; 1_000].join(",")
        );
        assert!(answer(200, &page).is_ok());
        // Other keys of any shape are skipped; `code` and `msg` are found among them.
        let e = answer(
            400,
            r#"{"data":{"code":-9,"msg":"inner"},"list":[1,[2],{"a":null}],"code":-1121,"msg":"Invalid symbol."}"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), Some(-1121));
        assert!(
            e.to_string().ends_with("code -1121: Invalid symbol."),
            "{e}"
        );
        // `message` stands in for a missing `msg`, not for one that is not text.
        let e = answer(400, r#"{"code":-1100,"message":"from message"}"#).unwrap_err();
        assert!(e.to_string().contains("from message"), "{e}");
        let e = answer(400, r#"{"code":-1100,"msg":7,"message":"from message"}"#).unwrap_err();
        assert!(e.to_string().contains("(no Binance error body)"), "{e}");
        // The last of a repeated key counts; a code that is no integer is no code.
        let e = answer(400, r#"{"code":-1,"code":-1013,"msg":"x"}"#).unwrap_err();
        assert_eq!(e.code(), Some(-1013));
        assert!(answer(200, r#"{"code":"-1013","msg":"x"}"#).is_ok());
        assert!(answer(200, r#"{"code":-1013.5,"msg":"x"}"#).is_ok());
        // Broken JSON (trailing garbage included) has no fields at all.
        let e = answer(400, r#"{"code":-1121,"msg":"x"} trailing"#).unwrap_err();
        assert_eq!(e.code(), None);
        let e = answer(400, r#"{"code":-1121,"msg":"x","rest":[1,}"#).unwrap_err();
        assert_eq!(e.code(), None);
        assert!(answer(200, r#"{"code":-1121,"msg":"x""#).is_ok());
    }

    #[test]
    fn ban_until_comes_from_the_message_or_retry_after() {
        let e = answer(418, r#"{"code":-1003,"msg":"Way too many requests; IP banned until 1700000600000. Please use websocket."}"#)
            .unwrap_err();
        assert_eq!(
            e.banned_until().unwrap().timestamp_millis(),
            1_700_000_600_000
        );
        let e = answer(418, "").unwrap_err();
        assert_eq!(
            e.banned_until().unwrap().timestamp_millis(),
            1_700_000_120_000
        );
        assert!(
            e.to_string().contains("until 2023-11-14 22:15:20 UTC"),
            "{e}"
        );
    }

    #[test]
    fn redacts_key_material_from_messages() {
        let r = Redactor {
            key: Some("AbCdEFGHIJKLMNOPwXyZ"),
            secret: Some("s3cr3t"),
            signature: Some("deadbeef"),
        };
        assert_eq!(
            r.clean("key AbCdEFGHIJKLMNOPwXyZ secret s3cr3t sig deadbeef"),
            "key AbCd…wXyZ secret [REDACTED] sig [signature]"
        );
    }
}
