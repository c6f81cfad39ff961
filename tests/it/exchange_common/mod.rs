//! Shared helpers for the exchange client's wiremock tests (loopback only).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use respond::exchange::{ClientConfig, Endpoints, RequestObserver, RequestSummary, RetryPolicy};
use respond::secret::Credentials;
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// Binance's documentation example key and secret: never a real account's.
pub const KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
pub const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

pub fn credentials() -> Credentials {
    Credentials::new(KEY, SECRET)
}

/// A config aimed at the mock, with short retry delays so tests stay fast.
pub fn config(server: &MockServer) -> ClientConfig {
    let mut config = ClientConfig::new(Endpoints::single(server.uri()));
    config.credentials = Some(credentials());
    config.timeout = Duration::from_secs(3);
    config.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_rate_limit_wait: Duration::from_secs(5),
    };
    config
}

/// Answers `GET /api/v3/time` with local time plus `offset_ms`.
pub async fn mount_time(server: &MockServer, offset_ms: i64) {
    Mock::given(method("GET"))
        .and(path("/api/v3/time"))
        .respond_with(move |_: &Request| {
            let now = chrono::Utc::now().timestamp_millis() + offset_ms;
            ResponseTemplate::new(200).set_body_json(serde_json::json!({ "serverTime": now }))
        })
        .mount(server)
        .await;
}

/// The raw query as received (still percent-encoded), or "".
pub fn raw_query(req: &Request) -> String {
    req.url.query().unwrap_or_default().to_string()
}

/// Parameter names in the order they were sent.
pub fn param_names(req: &Request) -> Vec<String> {
    raw_query(req)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split('=').next().unwrap_or_default().to_string())
        .collect()
}

pub fn param(req: &Request, name: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Check a signed request the way Binance does: HMAC-SHA256 with the secret over the
/// query exactly as received minus `&signature=...`, and the key in `X-MBX-APIKEY`.
pub fn verify_signed(req: &Request) -> Result<(), String> {
    let query = raw_query(req);
    let (payload, signature) = query
        .rsplit_once("&signature=")
        .ok_or_else(|| format!("no signature last in `{query}`"))?;
    if signature.contains('&') {
        return Err("signature is not the last parameter".into());
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    mac.update(&req.body);
    let expected = hex::encode(mac.finalize().into_bytes());
    if !expected.eq_ignore_ascii_case(signature) {
        return Err(format!("bad signature over `{payload}`"));
    }
    let key = req
        .headers
        .get("x-mbx-apikey")
        .and_then(|v| v.to_str().ok())
        .ok_or("no X-MBX-APIKEY header")?;
    if key != KEY {
        return Err("wrong X-MBX-APIKEY".into());
    }
    let names = param_names(req);
    let n = names.len();
    if n < 3 || names[n - 3] != "recvWindow" || names[n - 2] != "timestamp" {
        return Err(format!(
            "recvWindow, timestamp, signature must come last: {names:?}"
        ));
    }
    Ok(())
}

/// Collects every summary the client reports.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<RequestSummary>>);

impl RequestObserver for Recorder {
    fn on_request(&self, summary: &RequestSummary) {
        self.0.lock().unwrap().push(summary.clone());
    }
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }
    pub fn all(&self) -> Vec<RequestSummary> {
        self.0.lock().unwrap().clone()
    }
}

/// The test client's configuration with a [`Recorder`] as its observer.
pub fn recorded_config(server: &MockServer) -> (ClientConfig, Arc<Recorder>) {
    let recorder = Recorder::new();
    let mut config = config(server);
    config.observer = Some(recorder.clone());
    (config, recorder)
}

/// A Binance error body.
pub fn error_body(status: u16, code: i64, msg: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(serde_json::json!({ "code": code, "msg": msg }))
}
