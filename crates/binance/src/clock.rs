//! Server-time offset: Binance rejects a signed request whose timestamp is more than
//! 1 s ahead of its clock or older than `recvWindow`, so timestamps are local time plus
//! the offset measured with `GET /api/v3/time` — once per run, and again after -1021.
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use chrono::{DateTime, Utc};

pub(crate) struct Clock {
    offset_ms: AtomicI64,
    measured: AtomicBool,
    /// Held while measuring.
    pub(crate) measuring: tokio::sync::Mutex<()>,
    /// Bumped when a measurement starts: a -1021 answered after a measurement started
    /// may have been signed with it; one answered before needs a new one.
    pub(crate) started: AtomicU64,
    /// Sign with this machine's clock while the first measurement is under way, rather
    /// than wait for it (a -1021 still resyncs and retries once).
    pub(crate) local_until_measured: AtomicBool,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            offset_ms: AtomicI64::new(0),
            measured: AtomicBool::new(false),
            measuring: tokio::sync::Mutex::new(()),
            started: AtomicU64::new(0),
            local_until_measured: AtomicBool::new(false),
        }
    }

    pub(crate) fn offset_ms(&self) -> Option<i64> {
        self.measured
            .load(Ordering::Acquire)
            .then(|| self.offset_ms.load(Ordering::Acquire))
    }

    /// Record a measurement: the server said `server_ms` for a request sent at local
    /// `sent_ms` and answered at local `received_ms`.
    pub(crate) fn record(&self, server_ms: i64, sent_ms: i64, received_ms: i64) -> i64 {
        let midpoint = sent_ms + (received_ms - sent_ms) / 2;
        let offset = server_ms - midpoint;
        self.offset_ms.store(offset, Ordering::Release);
        self.measured.store(true, Ordering::Release);
        offset
    }

    /// Local now plus the offset (zero until measured).
    pub(crate) fn server_now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_is_taken_at_the_midpoint() {
        let c = Clock::new();
        assert_eq!(c.offset_ms(), None);
        assert_eq!(c.record(10_000, 1_000, 1_200), 8_900);
        assert_eq!(c.offset_ms(), Some(8_900));
    }
}
