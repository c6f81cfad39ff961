//! Request-weight accounting: a rolling counter per family over the configured window,
//! and the 429-then-418 escalation Binance applies to clients that keep going.
//!
//! Instants are tokio's: the same as the system's monotonic clock when the runtime runs
//! in real time, and the test's clock under `tokio::time::pause`, so a test can let a
//! window or a ban pass without waiting for it. Nothing the simulator answers depends
//! on which: Retry-After is a duration, and a ban's end is told on the server's wall
//! clock plus the time it has left.
use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Weight used in the last `window`, as a rolling sum.
#[derive(Debug, Clone)]
pub struct RollingCounter {
    window: Duration,
    entries: VecDeque<(Instant, u32)>,
    total: u64,
}

impl RollingCounter {
    pub fn new(window: Duration) -> Self {
        RollingCounter {
            window,
            entries: VecDeque::new(),
            total: 0,
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, w)) = self.entries.front() {
            if now.saturating_duration_since(at) >= self.window {
                self.entries.pop_front();
                self.total -= u64::from(w);
            } else {
                break;
            }
        }
    }

    /// Weight used in the window ending at `now`.
    pub fn used(&mut self, now: Instant) -> u64 {
        self.expire(now);
        self.total
    }

    pub fn add(&mut self, now: Instant, weight: u32) {
        self.expire(now);
        if weight > 0 {
            self.entries.push_back((now, weight));
            self.total += u64::from(weight);
        }
    }

    /// Whether a request of `weight` fits under `limit` now. A request heavier than the
    /// whole limit still passes on an empty counter, so a lowered limit never makes an
    /// endpoint unreachable.
    pub fn fits(&mut self, now: Instant, weight: u32, limit: u32) -> bool {
        let used = self.used(now);
        used == 0 || used + u64::from(weight) <= u64::from(limit)
    }

    /// How long until a request of `weight` would fit under `limit`.
    pub fn wait_for(&mut self, now: Instant, weight: u32, limit: u32) -> Duration {
        self.expire(now);
        let mut remaining = self.total;
        for &(at, w) in &self.entries {
            if remaining + u64::from(weight) <= u64::from(limit) {
                break;
            }
            remaining -= u64::from(w);
            if remaining == 0 || remaining + u64::from(weight) <= u64::from(limit) {
                return (at + self.window).saturating_duration_since(now);
            }
        }
        Duration::ZERO
    }
}

/// Whole seconds for `Retry-After`, never 0.
pub fn retry_after_secs(d: Duration) -> u64 {
    (d.as_millis().div_ceil(1000) as u64).max(1)
}

/// How many 429 answers in a row before the next over-limit request is banned (418).
pub const STRIKES_BEFORE_BAN: u32 = 3;

/// One family's counters and ban state.
#[derive(Debug, Clone)]
pub struct FamilyLimiter {
    /// IP weight (for `/sapi`: the IP-weighted endpoints).
    pub ip: RollingCounter,
    /// `/sapi` UID weight; unused elsewhere.
    pub uid: RollingCounter,
    /// 429 answers since the last accepted request.
    pub strikes: u32,
    pub banned_until: Option<Instant>,
}

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// 429 with this Retry-After.
    TooMany(Duration),
    /// 418 until this instant.
    Banned(Instant),
}

impl FamilyLimiter {
    pub fn new(window: Duration) -> Self {
        FamilyLimiter {
            ip: RollingCounter::new(window),
            uid: RollingCounter::new(window),
            strikes: 0,
            banned_until: None,
        }
    }

    /// Decide whether a request may go ahead; `ban_for` is the ban length on escalation.
    pub fn check(
        &mut self,
        now: Instant,
        weight: u32,
        uid: bool,
        limit: u32,
        can_ban: bool,
        ban_for: Duration,
    ) -> Verdict {
        if let Some(until) = self.banned_until {
            if now < until {
                return Verdict::Banned(until);
            }
            self.banned_until = None;
            self.strikes = 0;
        }
        let counter = if uid { &mut self.uid } else { &mut self.ip };
        if counter.fits(now, weight, limit) {
            self.strikes = 0;
            return Verdict::Allowed;
        }
        if can_ban && self.strikes >= STRIKES_BEFORE_BAN {
            let until = now + ban_for;
            self.banned_until = Some(until);
            return Verdict::Banned(until);
        }
        self.strikes += 1;
        Verdict::TooMany(counter.wait_for(now, weight, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_rolls_out_of_the_window() {
        let t0 = Instant::now();
        let mut c = RollingCounter::new(Duration::from_secs(10));
        c.add(t0, 5);
        c.add(t0 + Duration::from_secs(4), 7);
        assert_eq!(c.used(t0 + Duration::from_secs(5)), 12);
        // The first entry leaves exactly one window after it arrived.
        assert_eq!(c.used(t0 + Duration::from_secs(10)), 7);
        assert_eq!(c.used(t0 + Duration::from_secs(14)), 0);
    }

    #[test]
    fn fits_and_waits() {
        let t0 = Instant::now();
        let mut c = RollingCounter::new(Duration::from_secs(10));
        c.add(t0, 6);
        c.add(t0 + Duration::from_secs(3), 3);
        let now = t0 + Duration::from_secs(5);
        assert!(c.fits(now, 1, 10));
        assert!(!c.fits(now, 2, 10));
        // The 6 leaves at t0+10s: 5 s from now.
        assert_eq!(c.wait_for(now, 2, 10), Duration::from_secs(5));
        // Needing 8 means both must leave: the 3 leaves at t0+13s.
        assert_eq!(c.wait_for(now, 8, 10), Duration::from_secs(8));
    }

    #[test]
    fn a_request_heavier_than_the_limit_passes_on_an_empty_counter() {
        let t0 = Instant::now();
        let mut c = RollingCounter::new(Duration::from_secs(1));
        assert!(c.fits(t0, 50, 10));
        c.add(t0, 50);
        assert!(!c.fits(t0, 1, 10));
    }

    #[test]
    fn escalates_from_429_to_418() {
        let t0 = Instant::now();
        let window = Duration::from_secs(10);
        let mut l = FamilyLimiter::new(window);
        l.ip.add(t0, 10);
        for _ in 0..STRIKES_BEFORE_BAN {
            assert!(matches!(
                l.check(t0, 1, false, 10, true, window * 2),
                Verdict::TooMany(_)
            ));
        }
        assert_eq!(
            l.check(t0, 1, false, 10, true, window * 2),
            Verdict::Banned(t0 + window * 2)
        );
        // Still banned after the weight has rolled off.
        assert!(matches!(
            l.check(t0 + window, 1, false, 10, true, window * 2),
            Verdict::Banned(_)
        ));
        assert_eq!(
            l.check(t0 + window * 2, 1, false, 10, true, window * 2),
            Verdict::Allowed
        );
    }

    #[test]
    fn sapi_never_bans() {
        let t0 = Instant::now();
        let mut l = FamilyLimiter::new(Duration::from_secs(10));
        l.ip.add(t0, 10);
        for _ in 0..10 {
            assert!(matches!(
                l.check(t0, 1, false, 10, false, Duration::from_secs(20)),
                Verdict::TooMany(_)
            ));
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
