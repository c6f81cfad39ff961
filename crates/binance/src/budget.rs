//! The weight budget: one per pool, shared by every clone of a client (and by the
//! leaked and responder clients of one run, which share an IP). `/api` and `/sapi` are
//! pools of their own; `/fapi` and `/dapi` share one since the COIN-M/USDⓈ-M integration
//! (2026-06-30): one 2,400 per minute, one `X-MBX-USED-WEIGHT-1M`, one ban. Budgeting
//! them apart would spend up to twice what Binance allows.
//!
//! The limits are Binance's published ones until an `exchangeInfo` answer lists the
//! live ones (`rateLimits`), which then replace them.
//!
//! Pacing works from two sources and believes the more pessimistic one:
//! - our own spending, kept as a sliding log over the window (plus a small margin for
//!   the time a request takes to reach the server), which keeps us under the limit in
//!   any fixed or sliding window the server may use;
//! - the server's `X-MBX-USED-WEIGHT-*` / `X-SAPI-USED-*` headers, which also count
//!   what others on this IP spent: the latest figure plus what we sent since the
//!   request that carried it, until a window has passed.
//!
//! Normal requests may fill the budget only up to `limit - headroom`; the headroom is
//! for urgent ones (cancels, liveness probes). A 429 pauses the family for its
//! `Retry-After`; a 418 bans it until the given time.
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::{weights, Family, Priority};

/// Settings shared by every family's budget.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BudgetConfig {
    pub window: Duration,
    /// Overrides the IP weight limit of every family (the simulator's `--weight-limit`).
    pub limit_override: Option<u32>,
    /// Share of the limit only urgent requests may use, in percent.
    pub headroom_percent: u32,
}

/// What a reservation attempt found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reserve {
    Granted,
    /// The weight budget is spent until then (respond's own pacing).
    WaitUntil(Instant),
    /// Binance answered 429 earlier; nothing goes to the pool before then.
    Paused(Instant),
    Banned(DateTime<Utc>),
}

/// Weight figures read from one answer's headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct UsedWeight {
    /// Every `x-mbx-used-weight*` / `x-sapi-used-*` header, lowercased, with its value.
    pub headers: Vec<(String, u32)>,
}

impl UsedWeight {
    pub(crate) fn parse(headers: &reqwest::header::HeaderMap) -> UsedWeight {
        let mut found: Vec<(String, u32)> = headers
            .iter()
            .filter(|(name, _)| {
                let n = name.as_str();
                n.starts_with("x-mbx-used-weight") || n.starts_with("x-sapi-used-")
            })
            .filter_map(|(name, value)| {
                let v = value.to_str().ok()?.trim().parse().ok()?;
                Some((name.as_str().to_string(), v))
            })
            .collect();
        found.sort();
        UsedWeight { headers: found }
    }

    /// IP weight used: any interval, the largest figure (the cautious reading).
    pub(crate) fn ip(&self) -> Option<u32> {
        self.headers
            .iter()
            .filter(|(n, _)| !n.contains("uid"))
            .map(|(_, v)| *v)
            .max()
    }

    pub(crate) fn uid(&self) -> Option<u32> {
        self.headers
            .iter()
            .filter(|(n, _)| n.contains("uid"))
            .map(|(_, v)| *v)
            .max()
    }

    /// The largest figure of any kind, for the journal.
    pub(crate) fn max(&self) -> Option<u32> {
        self.headers.iter().map(|(_, v)| *v).max()
    }
}

pub(crate) struct Budgets {
    /// Indexed by family; only each pool's own slot is used (`/dapi` spends `/fapi`'s).
    families: [Mutex<FamilyState>; 4],
    window: Duration,
    /// The window as configured, without the in-flight margin (live limits are scaled
    /// to it).
    configured_window: Duration,
    limit_override: Option<u32>,
    /// Share of each limit kept for urgent requests, in percent; zero once nothing is
    /// left to contain ([`Budgets::release_headroom`]).
    headroom_percent: std::sync::atomic::AtomicU32,
}

struct FamilyState {
    ip: Pool,
    uid: Pool,
    paused_until: Option<Instant>,
    banned_until: Option<(Instant, DateTime<Utc>)>,
}

struct Pool {
    limit: u32,
    /// (sent at, weight), oldest first.
    spent: VecDeque<(Instant, u32)>,
    /// Latest server figure, as what others on this IP had spent beyond our own weight
    /// at the time: (when the request that carried it was sent, that excess). Our own
    /// part of the figure leaves the window as our own log says, not all at once a
    /// window after the report.
    reported: Option<(Instant, u32)>,
}

impl Pool {
    fn new(limit: u32) -> Pool {
        Pool {
            limit,
            spent: VecDeque::new(),
            reported: None,
        }
    }

    /// Weight believed used at `now`, after forgetting what left the window.
    fn used(&mut self, now: Instant, window: Duration) -> u32 {
        while let Some(&(at, _)) = self.spent.front() {
            if at + window <= now {
                self.spent.pop_front();
            } else {
                break;
            }
        }
        let own: u32 = self.spent.iter().map(|(_, w)| w).sum();
        match self.reported {
            Some((at, others)) if at + window > now => own + others,
            _ => own,
        }
    }

    /// When the belief can next go down: the oldest spend or the server figure expiring.
    fn next_change(&self, window: Duration) -> Option<Instant> {
        let own = self.spent.front().map(|(at, _)| *at + window);
        let server = self.reported.map(|(at, _)| at + window);
        match (own, server) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// `None` when `weight` fits now for a request that may fill up to `cap`.
    fn check(&mut self, weight: u32, cap: u32, now: Instant, window: Duration) -> Option<Instant> {
        if weight == 0 {
            return None;
        }
        let used = self.used(now, window);
        // A request heavier than the cap could never fit: let it go on an idle budget.
        if used + weight <= cap || used == 0 {
            None
        } else {
            Some(self.next_change(window).unwrap_or(now + window))
        }
    }

    /// The server said `used` in answer to a request sent at `sent_at`: what it counts
    /// beyond our own weight sent by then (and still in the window then) is others'.
    fn report(&mut self, sent_at: Instant, used: u32, window: Duration) {
        if matches!(self.reported, Some((at, _)) if at > sent_at) {
            return;
        }
        let own: u32 = self
            .spent
            .iter()
            .filter(|(sent, _)| *sent <= sent_at && *sent + window > sent_at)
            .map(|(_, w)| w)
            .sum();
        self.reported = Some((sent_at, used.saturating_sub(own)));
    }
}

impl Budgets {
    pub(crate) fn new(config: BudgetConfig) -> Budgets {
        let family = |f: Family| {
            let (ip, uid) = weights::published_limit(f);
            // A lowered limit lowers the account's UID limit in proportion (Binance's
            // /sapi: 12,000 IP to 180,000 UID), so one withdrawal-history call (18,000 UID)
            // still fits an idle budget and a second one waits instead of drawing a 429.
            let (ip, uid) = match config.limit_override {
                Some(limit) if ip > 0 => (
                    limit,
                    (u64::from(uid) * u64::from(limit) / u64::from(ip)) as u32,
                ),
                Some(limit) => (limit, uid),
                None => (ip, uid),
            };
            Mutex::new(FamilyState {
                ip: Pool::new(ip.max(1)),
                uid: Pool::new(uid.max(1)),
                paused_until: None,
                banned_until: None,
            })
        };
        // A request counted at send time reaches the server a little later; the margin
        // keeps it in our window for as long as it may sit in the server's.
        let margin = config.window / 20 + Duration::from_millis(50);
        Budgets {
            families: Family::ALL.map(family),
            window: config.window + margin,
            configured_window: config.window,
            limit_override: config.limit_override,
            headroom_percent: config.headroom_percent.min(90).into(),
        }
    }

    /// Nothing urgent is left to send (the key is dead, no cancel or probe follows):
    /// normal requests may use the whole of every limit from now on.
    pub(crate) fn release_headroom(&self) {
        self.headroom_percent
            .store(0, std::sync::atomic::Ordering::SeqCst);
    }

    fn state(&self, family: Family) -> std::sync::MutexGuard<'_, FamilyState> {
        // A panic while holding this lock cannot leave the counters inconsistent in a
        // way that matters more than stopping would; keep going with what is there.
        self.families[family.pool().index()]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cap(&self, limit: u32, priority: Priority) -> u32 {
        match priority {
            Priority::Urgent => limit,
            Priority::Normal => {
                let headroom = self
                    .headroom_percent
                    .load(std::sync::atomic::Ordering::SeqCst);
                (limit - limit * headroom / 100).max(1)
            }
        }
    }

    /// Take `ip_weight` and `uid_weight` from the family's budget now, or say when to ask
    /// again. Granted weight is counted as sent at `now`: call right before sending.
    pub(crate) fn try_reserve(
        &self,
        family: Family,
        ip_weight: u32,
        uid_weight: u32,
        priority: Priority,
        now: Instant,
    ) -> Reserve {
        let mut state = self.state(family);
        if let Some((until, until_utc)) = state.banned_until {
            if now < until {
                return Reserve::Banned(until_utc);
            }
            state.banned_until = None;
        }
        if let Some(until) = state.paused_until {
            if now < until {
                return Reserve::Paused(until);
            }
            state.paused_until = None;
        }
        let window = self.window;
        let ip_cap = self.cap(state.ip.limit, priority);
        let uid_cap = self.cap(state.uid.limit, priority);
        let waits = [
            state.ip.check(ip_weight, ip_cap, now, window),
            state.uid.check(uid_weight, uid_cap, now, window),
        ];
        if let Some(until) = waits.into_iter().flatten().max() {
            // Never spin: ask again no sooner than a millisecond from now.
            return Reserve::WaitUntil(until.max(now + Duration::from_millis(1)));
        }
        if ip_weight > 0 {
            state.ip.spent.push_back((now, ip_weight));
        }
        if uid_weight > 0 {
            state.uid.spent.push_back((now, uid_weight));
        }
        Reserve::Granted
    }

    /// IP weight a normal-priority request of `family`'s pool may still spend at `now`,
    /// and the most it may spend per window (the limit less the urgent headroom).
    pub(crate) fn room(&self, family: Family, now: Instant) -> (u32, u32) {
        let mut state = self.state(family);
        let cap = self.cap(state.ip.limit, Priority::Normal);
        let used = state.ip.used(now, self.window);
        (cap.saturating_sub(used), cap)
    }

    /// The IP weight limit per window of the pool `family` counts against.
    pub(crate) fn limit(&self, family: Family) -> u32 {
        self.state(family).ip.limit
    }

    /// Adopt the live `REQUEST_WEIGHT` limit an `exchangeInfo` answer of `family` lists,
    /// scaled to the configured window (a lowered `--weight-limit` still caps it).
    /// Returns the pool's limit now.
    pub(crate) fn learn(&self, family: Family, limits: &[crate::RateLimit]) -> u32 {
        let live = limits
            .iter()
            .filter(|l| l.rate_limit_type.eq_ignore_ascii_case("REQUEST_WEIGHT"))
            .filter_map(|l| {
                let unit: u64 = match l.interval.to_ascii_uppercase().as_str() {
                    "SECOND" => 1_000,
                    "MINUTE" => 60_000,
                    "HOUR" => 3_600_000,
                    "DAY" => 86_400_000,
                    _ => return None,
                };
                let interval = unit * u64::from(l.interval_num.max(1));
                let window = self.configured_window.as_millis() as u64;
                // Per our window; several REQUEST_WEIGHT lines: the strictest.
                Some((u64::from(l.limit) * window / interval).min(u64::from(u32::MAX)) as u32)
            })
            .min();
        let mut state = self.state(family);
        if let Some(live) = live.filter(|l| *l > 0) {
            state.ip.limit = match self.limit_override {
                Some(cap) => live.min(cap),
                None => live,
            };
        }
        state.ip.limit
    }

    /// Record the server's figures from an answer to a request sent at `sent_at`.
    pub(crate) fn observe(&self, family: Family, sent_at: Instant, used: &UsedWeight) {
        let mut state = self.state(family);
        if let Some(ip) = used.ip() {
            state.ip.report(sent_at, ip, self.window);
        }
        if let Some(uid) = used.uid() {
            state.uid.report(sent_at, uid, self.window);
        }
    }

    /// After a 429: nothing more goes to the family's pool before `until`.
    pub(crate) fn pause(&self, family: Family, until: Instant) {
        let mut state = self.state(family);
        state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
    }

    /// After a 418: requests to the family's pool fail without being sent until `until`
    /// (a ban on `/fapi` is a ban on `/dapi`, and the reverse).
    pub(crate) fn ban(&self, family: Family, until: Instant, until_utc: DateTime<Utc>) {
        let mut state = self.state(family);
        if state.banned_until.is_none_or(|(u, _)| u < until) {
            state.banned_until = Some((until, until_utc));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(limit: u32) -> Budgets {
        Budgets::new(BudgetConfig {
            window: Duration::from_secs(2),
            limit_override: Some(limit),
            headroom_percent: 20,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn released_headroom_lets_normal_requests_use_the_whole_limit() {
        let b = budgets(100);
        let now = Instant::now();
        for _ in 0..8 {
            b.try_reserve(Family::Api, 10, 0, Priority::Normal, now);
        }
        assert!(matches!(
            b.try_reserve(Family::Api, 10, 0, Priority::Normal, now),
            Reserve::WaitUntil(_)
        ));
        b.release_headroom();
        assert_eq!(b.room(Family::Api, now), (20, 100));
        for _ in 0..2 {
            assert_eq!(
                b.try_reserve(Family::Api, 10, 0, Priority::Normal, now),
                Reserve::Granted
            );
        }
        assert!(matches!(
            b.try_reserve(Family::Api, 1, 0, Priority::Normal, now),
            Reserve::WaitUntil(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn normal_requests_leave_headroom_for_urgent_ones() {
        let b = budgets(100);
        let now = Instant::now();
        for _ in 0..8 {
            assert_eq!(
                b.try_reserve(Family::Api, 10, 0, Priority::Normal, now),
                Reserve::Granted
            );
        }
        // 80 used: a normal request waits, an urgent one still goes, up to 100.
        assert!(matches!(
            b.try_reserve(Family::Api, 10, 0, Priority::Normal, now),
            Reserve::WaitUntil(_)
        ));
        assert_eq!(
            b.try_reserve(Family::Api, 20, 0, Priority::Urgent, now),
            Reserve::Granted
        );
        let Reserve::WaitUntil(at) = b.try_reserve(Family::Api, 1, 0, Priority::Urgent, now) else {
            panic!("the limit is reached")
        };
        assert!(
            at > now + Duration::from_secs(2),
            "waits for the window to pass"
        );
        // Other families are untouched.
        assert_eq!(
            b.try_reserve(Family::Fapi, 50, 0, Priority::Normal, now),
            Reserve::Granted
        );
        tokio::time::advance(Duration::from_millis(2200)).await;
        assert_eq!(
            b.try_reserve(Family::Api, 80, 0, Priority::Normal, Instant::now()),
            Reserve::Granted
        );
    }

    #[tokio::test(start_paused = true)]
    async fn server_figures_count_weight_spent_by_others() {
        let b = budgets(100);
        let sent = Instant::now();
        assert_eq!(
            b.try_reserve(Family::Api, 1, 0, Priority::Normal, sent),
            Reserve::Granted
        );
        b.observe(
            Family::Api,
            sent,
            &UsedWeight {
                headers: vec![("x-mbx-used-weight-1m".into(), 79)],
            },
        );
        // Only what was sent after the reported request adds to the server's figure.
        let later = sent + Duration::from_millis(1);
        assert_eq!(
            b.try_reserve(Family::Api, 1, 0, Priority::Normal, later),
            Reserve::Granted
        );
        assert!(matches!(
            b.try_reserve(Family::Api, 1, 0, Priority::Normal, later),
            Reserve::WaitUntil(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn our_own_weight_in_a_server_figure_leaves_the_window_when_it_does() {
        let b = budgets(100);
        let first = Instant::now();
        for _ in 0..7 {
            b.try_reserve(Family::Api, 10, 0, Priority::Normal, first);
        }
        let second = first + Duration::from_millis(1500);
        b.try_reserve(Family::Api, 5, 0, Priority::Normal, second);
        // The server counts our 75 and 5 more of someone else's.
        b.observe(
            Family::Api,
            second,
            &UsedWeight {
                headers: vec![("x-mbx-used-weight-1m".into(), 80)],
            },
        );
        assert_eq!(b.room(Family::Api, second).0, 0);
        // Once the first 70 have left the window, 70 are free again (the others' 5 and
        // our later 5 still count), not only a window after the report.
        let later = first + b.window + Duration::from_millis(1);
        assert!(later < second + b.window);
        assert_eq!(b.room(Family::Api, later).0, 70);
    }

    #[tokio::test(start_paused = true)]
    async fn pause_and_ban() {
        let b = budgets(100);
        let now = Instant::now();
        b.pause(Family::Sapi, now + Duration::from_secs(3));
        assert_eq!(
            b.try_reserve(Family::Sapi, 1, 0, Priority::Urgent, now),
            Reserve::Paused(now + Duration::from_secs(3))
        );
        let utc = Utc::now();
        b.ban(Family::Fapi, now + Duration::from_secs(60), utc);
        assert_eq!(
            b.try_reserve(Family::Fapi, 1, 0, Priority::Urgent, now),
            Reserve::Banned(utc)
        );
        assert_eq!(
            b.try_reserve(
                Family::Fapi,
                1,
                0,
                Priority::Urgent,
                now + Duration::from_secs(61)
            ),
            Reserve::Granted
        );
    }

    #[test]
    fn heavy_requests_go_on_an_idle_budget() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let b = budgets(10);
            let now = Instant::now();
            assert_eq!(
                b.try_reserve(Family::Api, 80, 0, Priority::Normal, now),
                Reserve::Granted
            );
            assert!(matches!(
                b.try_reserve(Family::Api, 1, 0, Priority::Urgent, now),
                Reserve::WaitUntil(_)
            ));
        });
    }

    #[tokio::test(start_paused = true)]
    async fn a_lowered_limit_lowers_the_uid_limit_in_proportion() {
        // 1,200 of /sapi's 12,000 IP weight: a tenth of its 180,000 UID weight.
        let b = budgets(1_200);
        let now = Instant::now();
        assert_eq!(
            b.try_reserve(Family::Sapi, 1, 18_000, Priority::Normal, now),
            Reserve::Granted,
            "one withdrawal-history call fits an idle budget"
        );
        assert!(matches!(
            b.try_reserve(Family::Sapi, 1, 3_000, Priority::Normal, now),
            Reserve::WaitUntil(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn fapi_and_dapi_spend_one_pool_and_share_a_ban() {
        let b = budgets(100);
        let now = Instant::now();
        assert_eq!(
            b.try_reserve(Family::Fapi, 60, 0, Priority::Urgent, now),
            Reserve::Granted
        );
        // 60 of 100 spent on /fapi: /dapi has 40 left, not 100.
        assert!(matches!(
            b.try_reserve(Family::Dapi, 41, 0, Priority::Urgent, now),
            Reserve::WaitUntil(_)
        ));
        assert_eq!(
            b.try_reserve(Family::Dapi, 40, 0, Priority::Urgent, now),
            Reserve::Granted
        );
        assert_eq!(
            b.try_reserve(Family::Api, 100, 0, Priority::Urgent, now),
            Reserve::Granted,
            "spot is a pool of its own"
        );
        let utc = Utc::now();
        b.ban(Family::Dapi, now + Duration::from_secs(60), utc);
        assert_eq!(
            b.try_reserve(Family::Fapi, 1, 0, Priority::Urgent, now),
            Reserve::Banned(utc)
        );
    }

    #[test]
    fn live_limits_replace_the_published_ones() {
        use crate::RateLimit;
        let b = Budgets::new(BudgetConfig {
            window: Duration::from_secs(60),
            limit_override: None,
            headroom_percent: 20,
        });
        assert_eq!(b.limit(Family::Dapi), 2_400);
        let line = |t: &str, interval: &str, num: u32, limit: u32| RateLimit {
            rate_limit_type: t.into(),
            interval: interval.into(),
            interval_num: num,
            limit,
        };
        let live = [
            line("REQUEST_WEIGHT", "MINUTE", 1, 3_000),
            line("ORDERS", "MINUTE", 1, 1_200),
        ];
        assert_eq!(b.learn(Family::Dapi, &live), 3_000);
        assert_eq!(b.limit(Family::Fapi), 3_000, "one pool");
        // A limit per 10 s, scaled to the minute.
        assert_eq!(
            b.learn(Family::Api, &[line("REQUEST_WEIGHT", "SECOND", 10, 100)]),
            600
        );
        // No REQUEST_WEIGHT line: nothing changes.
        assert_eq!(b.learn(Family::Sapi, &live[1..]), 12_000);
        // A lowered --weight-limit caps the live figure.
        let capped = Budgets::new(BudgetConfig {
            window: Duration::from_secs(60),
            limit_override: Some(1_000),
            headroom_percent: 20,
        });
        assert_eq!(capped.learn(Family::Fapi, &live), 1_000);
    }

    #[test]
    fn parses_every_weight_header() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("X-MBX-USED-WEIGHT", "12".parse().unwrap());
        h.insert("X-MBX-USED-WEIGHT-1M", "15".parse().unwrap());
        h.insert("X-SAPI-USED-UID-WEIGHT-1M", "18000".parse().unwrap());
        h.insert("X-MBX-ORDER-COUNT-10S", "3".parse().unwrap());
        let w = UsedWeight::parse(&h);
        assert_eq!(w.headers.len(), 3);
        assert_eq!(
            (w.ip(), w.uid(), w.max()),
            (Some(15), Some(18000), Some(18000))
        );
    }
}
