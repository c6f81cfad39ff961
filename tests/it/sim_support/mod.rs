//! Shared helpers for the simulator's integration tests: raw HTTP with our own HMAC
//! signing (never `respond::exchange`), so the tests check the simulator against Binance's
//! rules rather than against our client.
#![allow(dead_code)]

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::HeaderMap;
use respond::sim::{KeyPair, Scenario, SimConfig, SimServer};
use serde_json::Value;
use sha2::Sha256;

pub fn sign(secret: &str, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn code(&self) -> Option<i64> {
        self.json.get("code").and_then(Value::as_i64)
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.status, 200, "{}", self.text);
        self.json
    }
    #[track_caller]
    pub fn err(&self, status: u16, code: i64) {
        assert_eq!(
            (self.status, self.code()),
            (status, Some(code)),
            "{}",
            self.text
        );
    }
}

pub struct Sim {
    pub server: SimServer,
    pub http: reqwest::Client,
    pub key: KeyPair,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

impl Sim {
    pub async fn start(config: SimConfig) -> Sim {
        let server = SimServer::start(config).await.expect("simulator starts");
        let key = server.leaked_key();
        Sim {
            server,
            http: client(),
            key,
        }
    }

    pub async fn builtin() -> Sim {
        Sim::start(SimConfig::builtin()).await
    }

    /// The built-in scenario without its attacker, so order counts stay put.
    pub async fn quiet() -> Sim {
        let mut scenario = Scenario::builtin_leaked_key();
        scenario.attacker = None;
        Sim::start(SimConfig::new(scenario)).await
    }

    pub fn url(&self, path: &str, query: &str) -> String {
        if query.is_empty() {
            format!("{}{path}", self.server.url())
        } else {
            format!("{}{path}?{query}", self.server.url())
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        query: &str,
        api_key: Option<&str>,
        body: Option<String>,
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, self.url(path, query));
        if let Some(k) = api_key {
            req = req.header("X-MBX-APIKEY", k);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(b);
        }
        let res = req.send().await.expect("request answered");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn get(&self, path: &str, query: &str) -> Resp {
        self.send("GET", path, query, None, None).await
    }

    /// Sign `query` + `&timestamp=now` with `key` and send it in the query string.
    pub async fn signed_as(&self, key: &KeyPair, method: &str, path: &str, query: &str) -> Resp {
        let mut q = query.to_string();
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str(&format!("timestamp={}", now_ms()));
        let sig = sign(&key.secret, &q);
        let q = format!("{q}&signature={sig}");
        self.send(method, path, &q, Some(&key.api_key), None).await
    }

    pub async fn signed(&self, method: &str, path: &str, query: &str) -> Resp {
        let key = self.key.clone();
        self.signed_as(&key, method, path, query).await
    }

    /// A signed GET with the test's key.
    pub async fn signed_get(&self, path: &str, query: &str) -> Resp {
        self.signed("GET", path, query).await
    }

    /// Sign an exact payload (the caller sets timestamp and any order of parameters).
    pub async fn signed_exact(&self, method: &str, path: &str, payload: &str) -> Resp {
        let sig = sign(&self.key.secret, payload);
        self.send(
            method,
            path,
            &format!("{payload}&signature={sig}"),
            Some(&self.key.api_key),
            None,
        )
        .await
    }
}

/// A key pair that is not in any scenario.
pub fn stranger() -> KeyPair {
    KeyPair {
        label: "stranger".into(),
        api_key: "Z".repeat(64),
        secret: "Y".repeat(64),
    }
}
