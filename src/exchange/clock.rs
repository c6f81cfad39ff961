//! Server-time offset: Binance rejects a signed request whose timestamp is more than
//! 1 s ahead of its clock or older than `recvWindow`, so timestamps are local time plus
//! the offset measured with `GET /api/v3/time` — once per run, and again after -1021.
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use chrono::{DateTime, Utc};

pub(crate) struct Clock {
    offset_ms: AtomicI64,
    measured: AtomicBool,
    /// Bumped on every measurement, so that many requests failing with -1021 at once
    /// re-measure once, not once each.
    generation: AtomicU64,
    /// Held while measuring.
    pub(crate) measuring: tokio::sync::Mutex<()>,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            offset_ms: AtomicI64::new(0),
            measured: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            measuring: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn offset_ms(&self) -> Option<i64> {
        self.measured
            .load(Ordering::Acquire)
            .then(|| self.offset_ms.load(Ordering::Acquire))
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Record a measurement: the server said `server_ms` for a request sent at local
    /// `sent_ms` and answered at local `received_ms`.
    pub(crate) fn record(&self, server_ms: i64, sent_ms: i64, received_ms: i64) -> i64 {
        let midpoint = sent_ms + (received_ms - sent_ms) / 2;
        let offset = server_ms - midpoint;
        self.offset_ms.store(offset, Ordering::Release);
        self.measured.store(true, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
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
        assert_eq!(c.generation(), 1);
    }
}
