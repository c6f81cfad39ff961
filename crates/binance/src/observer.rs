//! What the journal sees of each request: one summary per answered or failed attempt,
//! delivered as it happens so concurrent answers are journaled as they arrive.
use super::{Family, HttpMethod, Priority};

/// Told about every attempt. Called from whichever task made the request; keep it quick
/// (append to a channel or a file), it runs before the caller sees the answer.
pub trait RequestObserver: Send + Sync {
    fn on_request(&self, summary: &RequestSummary);

    /// A request is held back before it is sent: the family's weight budget is spent,
    /// or Binance asked to wait (429). Called only for waits long enough to notice, so
    /// the operator can be told what the run is waiting for.
    fn on_wait(&self, _wait: &Wait) {}

    /// A wait longer than `RetryPolicy::max_rate_limit_wait` that an evidence read sits
    /// out (a long 429 pause, or a 418 ban) instead of failing. The returned guard is
    /// dropped when the wait ends, or when the caller gives up on the request (Ctrl-C
    /// drops the future): keep a countdown on screen for as long as it lives.
    fn on_long_wait(&self, wait: &Wait) -> Box<dyn Send> {
        self.on_wait(wait);
        Box::new(())
    }
}

/// Why a request is held back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// respond's own pacing: the weight budget of the window is spent.
    Budget,
    /// Binance answered 429 and asked to wait (`Retry-After`).
    RateLimited,
    /// Binance answered 418: this IP is banned on the family's pool until a given time.
    Banned,
}

/// A wait before sending, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wait {
    pub family: Family,
    pub path: &'static str,
    pub duration: std::time::Duration,
    pub priority: Priority,
    /// Why it waits.
    pub reason: WaitReason,
    /// When the wait ends, on the exchange's clock (UTC).
    pub until: chrono::DateTime<chrono::Utc>,
}

/// One attempt. Holds no key material: the key travels in a header, and the signature
/// is removed from the query.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RequestSummary {
    pub method: HttpMethod,
    pub path: &'static str,
    /// The query as sent, without `signature`.
    pub query_without_signature: String,
    pub family: Family,
    /// HTTP status, or `None` when no answer came (timeout, connection failure).
    pub status: Option<u16>,
    /// Binance's error code, when the answer carried one.
    pub code: Option<i64>,
    /// The largest `X-MBX-USED-WEIGHT-*` / `X-SAPI-USED-*` figure in the answer.
    pub used_weight: Option<u32>,
    /// Every weight header in the answer (lowercased name, value).
    pub used_weight_headers: Vec<(String, u32)>,
    pub elapsed_ms: u64,
    /// 1 for the first attempt of a call.
    pub attempt: u32,
    pub priority: Priority,
    /// The answer's `Date` header: the server's clock, for the journal.
    pub server_date: Option<String>,
    /// What went wrong, in words without secrets, when the attempt failed.
    pub error: Option<String>,
    /// The tag of the client that made the request (see `Client::tagged`).
    pub tag: Option<String>,
}
