//! Time windows for history pulls. Binance bounds `endTime - startTime` per endpoint
//! (24 h for spot trades, 7 d for futures, 90 d for wallet history); a range is split
//! into windows that fit, and each window is one request (or a few pages).
use chrono::{DateTime, Utc};

/// `[start_ms, end_ms]`, both inclusive, in ms since the epoch (Binance's `startTime`
/// and `endTime`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TimeWindow {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl TimeWindow {
    pub fn new(start_ms: i64, end_ms: i64) -> TimeWindow {
        TimeWindow {
            start_ms,
            end_ms: end_ms.max(start_ms),
        }
    }

    pub fn between(start: DateTime<Utc>, end: DateTime<Utc>) -> TimeWindow {
        TimeWindow::new(start.timestamp_millis(), end.timestamp_millis())
    }

    /// `endTime - startTime` as Binance measures it.
    pub fn span_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }

    /// Consecutive windows covering this one exactly, each spanning at most
    /// `max_span_ms` (`endTime - startTime`), oldest first.
    pub fn split(self, max_span_ms: i64) -> Vec<TimeWindow> {
        let step = max_span_ms.max(1);
        let mut out = Vec::new();
        let mut start = self.start_ms;
        loop {
            let end = start.saturating_add(step - 1).min(self.end_ms);
            out.push(TimeWindow::new(start, end));
            if end >= self.end_ms {
                return out;
            }
            start = end + 1;
        }
    }

    pub fn contains(&self, time_ms: i64) -> bool {
        (self.start_ms..=self.end_ms).contains(&time_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_into_adjacent_windows_that_fit() {
        let day = 86_400_000;
        let parts = TimeWindow::new(0, 3 * day).split(day);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], TimeWindow::new(0, day - 1));
        assert_eq!(parts[3], TimeWindow::new(3 * day, 3 * day));
        for pair in parts.windows(2) {
            assert_eq!(pair[0].end_ms + 1, pair[1].start_ms);
        }
        assert!(parts.iter().all(|w| w.span_ms() < day));
        assert_eq!(
            TimeWindow::new(5, 5).split(day),
            vec![TimeWindow::new(5, 5)]
        );
    }
}
