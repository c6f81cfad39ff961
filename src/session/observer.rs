//! The journal's view of the exchange client: every request journaled with its step,
//! waits announced once per API family, long 429/418 waits counted down on screen.
use super::*;

/// Journals every request the exchange client makes, tagged with its step, as the
/// answer arrives. Attached to the journal once it exists (the clock is synced first).
#[derive(Default)]
pub struct JournalObserver {
    journal: std::sync::OnceLock<Journal>,
    operator: std::sync::OnceLock<Arc<dyn Operator>>,
    /// Whether the journal is attached, and the requests answered before it was (the
    /// clock check and the warm-up reads beside it), recorded when it is.
    pending: std::sync::Mutex<(bool, Vec<Event>)>,
    /// Per API family, until when the operator was last told the run is waiting, so
    /// many held-back requests make one notice, not one each.
    told_until: std::sync::Mutex<HashMap<String, std::time::Instant>>,
    /// Per API family, until when a countdown for a long wait is on screen, so the
    /// requests sitting out the same 429 or ban make one countdown.
    counting_until: std::sync::Mutex<HashMap<String, DateTime<Utc>>>,
    /// Holds a request of a step that waits for the steps before it to be journaled.
    pub sequence: Arc<crate::engine::sequence::Sequencer>,
}

impl JournalObserver {
    /// Record from now on, starting with what was answered before (call it once the
    /// session's opening record is written, so that record stays the first).
    pub(super) fn attach(&self, journal: Journal, operator: Arc<dyn Operator>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let _ = journal.record_all(std::mem::take(&mut pending.1));
        pending.0 = true;
        let _ = self.journal.set(journal);
        let _ = self.operator.set(operator);
    }
}

impl RequestObserver for JournalObserver {
    fn on_request(&self, s: &RequestSummary) {
        let mut event = Event::Request {
            step: s.tag.clone(),
            method: s.method.to_string(),
            path: s.path.to_string(),
            query: s.query_without_signature.clone(),
            status: s.status,
            code: s.code,
            weight: s.used_weight,
            elapsed_ms: s.elapsed_ms,
            attempt: s.attempt,
            error: s.error.clone(),
            sent_at: None,
        };
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if !pending.0 {
                if let Event::Request { sent_at, .. } = &mut event {
                    let sent = Utc::now() - chrono::Duration::milliseconds(s.elapsed_ms as i64);
                    *sent_at = Some(sent.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                }
                pending.1.push(event);
                return;
            }
        }
        if let Some(journal) = self.journal.get() {
            self.sequence.record_or_mark(journal, event);
        }
    }

    /// Say what the run waits for (nothing a network call does may leave the operator
    /// without feedback), once per wait and family.
    fn on_wait(&self, wait: &crate::exchange::Wait) {
        let family = format!("{:?}", wait.family).to_lowercase();
        let until = std::time::Instant::now() + wait.duration;
        {
            let mut told = self.told_until.lock().unwrap_or_else(|p| p.into_inner());
            if told
                .get(&family)
                .is_some_and(|t| *t + std::time::Duration::from_secs(1) >= until)
            {
                return;
            }
            told.insert(family.clone(), until);
        }
        let why = match wait.reason {
            WaitReason::Budget => "the request-weight budget for this window is spent (respond paces itself rather than be refused)".to_string(),
            reason => format!("{} until {}", limit_words(reason, wait.family), utc(wait.until)),
        };
        let message = format!(
            "waiting {}s before more /{family} requests ({}): {why}; the run goes on by itself",
            wait.duration.as_secs_f32().ceil(),
            wait.path
        );
        if let Some(operator) = self.operator.get() {
            operator.say(Level::Info, &message);
        }
        if let Some(journal) = self.journal.get() {
            journal.record_or_mark(Event::Note {
                step: None,
                level: crate::report::journal::NoteLevel::Info,
                message,
            });
        }
    }

    /// An evidence read sits out a 429 or a ban longer than the client's limit: say so
    /// (what, which pool, until when, in UTC), journal it, and keep a countdown on
    /// screen until the wait ends or the run is interrupted (the guard is dropped).
    fn on_long_wait(&self, wait: &crate::exchange::Wait) -> Box<dyn Send> {
        let family = format!("{:?}", wait.family).to_lowercase();
        let pool = pool_words(wait.family);
        {
            let mut counting = self
                .counting_until
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if counting
                .get(pool)
                .is_some_and(|t| *t + chrono::Duration::seconds(1) >= wait.until)
            {
                return Box::new(());
            }
            counting.insert(pool.to_string(), wait.until);
        }
        let what = limit_words(wait.reason, wait.family);
        let until = utc(wait.until);
        let message = format!(
            "waiting {} until {until} for evidence from /{family} ({}): {what}; evidence reads wait for it to end, the run goes on by itself (Ctrl-C stops it; `respond resume` finishes the incident later)",
            duration_words(wait.duration),
            wait.path
        );
        let journal = self.journal.get().cloned();
        if let Some(journal) = &journal {
            journal.record_or_mark(Event::Note {
                step: None,
                level: crate::report::journal::NoteLevel::Warn,
                message: message.clone(),
            });
        }
        let end = WaitEnd {
            journal,
            what: format!("the {} on {pool}", wait_reason_short(wait.reason)),
            started: std::time::Instant::now(),
            length: wait.duration,
        };
        let Some(operator) = self.operator.get() else {
            return Box::new(Countdown {
                ticker: None,
                progress: None,
                end,
            });
        };
        operator.say(Level::Warn, &message);
        let short = wait_reason_short(wait.reason);
        let label = move |left: std::time::Duration| {
            format!(
                "waiting for the {short} on {pool} to end at {until}: {} left",
                duration_words(left)
            )
        };
        let progress = operator.progress(&label(wait.duration), None);
        let deadline = std::time::Instant::now() + wait.duration;
        let ticker = tokio::runtime::Handle::try_current().ok().map(|rt| {
            let progress = progress.clone();
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    progress.set_message(label(left));
                    if left.is_zero() {
                        break;
                    }
                }
            })
        });
        Box::new(Countdown {
            ticker,
            progress: Some(progress),
            end,
        })
    }
}

/// A long wait's countdown on screen; gone when dropped, and its end journaled.
struct Countdown {
    ticker: Option<tokio::task::JoinHandle<()>>,
    progress: Option<operator::Progress>,
    end: WaitEnd,
}

impl Drop for Countdown {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        if let Some(progress) = &self.progress {
            progress.finish_and_clear();
        }
        self.end.record();
    }
}

/// What the journal says when a long wait is over: that it ended, after how long, or
/// that it was cut short (Ctrl-C, the step's timeout).
struct WaitEnd {
    journal: Option<Journal>,
    what: String,
    started: std::time::Instant,
    length: std::time::Duration,
}

impl WaitEnd {
    fn record(&self) {
        let Some(journal) = &self.journal else {
            return;
        };
        let waited = self.started.elapsed();
        // The client wakes a hair after the end it was given.
        let message = if waited + std::time::Duration::from_millis(500) >= self.length {
            format!(
                "the wait for {} is over after {}; evidence reads go on",
                self.what,
                duration_words(waited)
            )
        } else {
            format!(
                "the wait for {} was cut short after {} of {}",
                self.what,
                duration_words(waited),
                duration_words(self.length)
            )
        };
        journal.record_or_mark(Event::Note {
            step: None,
            level: crate::report::journal::NoteLevel::Info,
            message,
        });
    }
}

/// What holds a pool back, in words.
fn limit_words(reason: WaitReason, family: crate::exchange::Family) -> String {
    let pool = pool_words(family);
    match reason {
        WaitReason::Budget => "the request-weight budget for this window is spent".into(),
        WaitReason::RateLimited => {
            format!("Binance answered 429 (too many requests) on {pool} and asked to wait")
        }
        WaitReason::Banned => format!("Binance has banned this IP on {pool} (HTTP 418)"),
    }
}

/// The weight pool a family counts against, as the operator reads it: `/fapi` and
/// `/dapi` are one pool, and a ban on one is a ban on both.
fn pool_words(family: crate::exchange::Family) -> &'static str {
    use crate::exchange::Family;
    match family.pool() {
        Family::Api => "/api",
        Family::Sapi => "/sapi",
        Family::Fapi | Family::Dapi => "/fapi + /dapi",
    }
}

fn wait_reason_short(reason: WaitReason) -> &'static str {
    match reason {
        WaitReason::Budget => "weight budget",
        WaitReason::RateLimited => "429 rate limit",
        WaitReason::Banned => "418 IP ban",
    }
}

fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `1h 02m 03s`, `2m 05s`, `7s`.
fn duration_words(d: std::time::Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_millis() > 0);
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, s) => format!("{h}h {m:02}m {s:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Family;

    #[test]
    fn long_waits_read_as_a_pool_and_a_countdown() {
        let d = std::time::Duration::from_millis;
        assert_eq!(duration_words(d(2_100)), "3s");
        assert_eq!(duration_words(d(125_000)), "2m 05s");
        assert_eq!(duration_words(d(3_723_000)), "1h 02m 03s");
        assert_eq!(pool_words(Family::Dapi), pool_words(Family::Fapi));
        assert_eq!(
            limit_words(WaitReason::Banned, Family::Dapi),
            "Binance has banned this IP on /fapi + /dapi (HTTP 418)"
        );
    }
}
