//! Faults a drill or test can inject: latency, 5xx answers, swallowed requests, a skewed
//! server clock, broken JSON on one path, a lowered weight limit, a spell of 429s or an
//! IP ban, and the seed that makes every random draw repeatable.
use std::time::Duration;

use serde::Serialize;

/// The fault settings in force. Set from `--fault NAME=VALUE`, in-process, or through
/// `POST /sim/faults?NAME=VALUE`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Faults {
    /// The round trip of every Binance request: half on the way in, before the exchange
    /// acts on it, half on the way back.
    #[serde(serialize_with = "as_millis")]
    pub latency: Duration,
    /// Share of Binance requests answered with a 5xx (0.0–1.0).
    pub error_rate: f64,
    /// Share of Binance requests accepted and never answered (0.0–1.0).
    pub timeout_rate: f64,
    /// How far the server clock runs off the real one (negative: behind).
    pub clock_skew_ms: i64,
    /// Paths whose answers are broken JSON.
    pub malformed: Vec<String>,
    /// Paths answered 503 (-1001) every time, before anything takes effect.
    pub failing: Vec<String>,
    /// Request-weight limit for every family (None: Binance's published limits).
    pub weight_limit: Option<u32>,
    /// Seed for every random draw (None: a random seed).
    pub seed: Option<u64>,
    /// Until this wall-clock time (ms since the epoch) every Binance request is answered
    /// 429 with a `Retry-After` (`throttle=MS`: for MS from when it is set). Models the
    /// IP's weight being used up by someone else; no strike is counted.
    pub throttle_until_ms: Option<i64>,
    /// Until this wall-clock time every Binance request is answered 418, the IP ban
    /// (`ban=MS`: for MS from when it is set).
    pub ban_until_ms: Option<i64>,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// The fault names `apply` accepts, for messages.
pub const FAULT_NAMES: &str = "latency=MS, error-rate=P, timeout-rate=P, clock-skew=MS, \
     malformed=PATH, failing=PATH, weight-limit=N, throttle=MS, ban=MS, seed=N";

impl Faults {
    /// Apply one `NAME=VALUE` spec; the message says what was wrong.
    pub fn apply(&mut self, spec: &str) -> Result<(), String> {
        let Some((name, value)) = spec.split_once('=') else {
            return Err(format!(
                "fault {spec:?} is not NAME=VALUE (known faults: {FAULT_NAMES})"
            ));
        };
        self.set(name.trim(), value.trim())
    }

    /// Set one named fault.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let bad = |what: &str| format!("fault {name}={value:?}: {what}");
        match name {
            "latency" => {
                let ms: u64 = value
                    .parse()
                    .map_err(|_| bad("expected milliseconds, e.g. latency=250"))?;
                if ms > 600_000 {
                    return Err(bad("at most 600000 ms"));
                }
                self.latency = Duration::from_millis(ms);
            }
            "error-rate" => self.error_rate = parse_rate(value).map_err(|e| bad(&e))?,
            "timeout-rate" => self.timeout_rate = parse_rate(value).map_err(|e| bad(&e))?,
            "clock-skew" => {
                self.clock_skew_ms = value
                    .parse()
                    .map_err(|_| bad("expected milliseconds, e.g. clock-skew=-2500"))?;
            }
            "malformed" => {
                if !value.starts_with('/') {
                    return Err(bad("expected a path such as /api/v3/account"));
                }
                self.malformed.push(value.to_string());
            }
            "failing" => {
                if !value.starts_with('/') {
                    return Err(bad(
                        "expected a path such as /sapi/v1/account/apiRestrictions",
                    ));
                }
                self.failing.push(value.to_string());
            }
            "weight-limit" => {
                let n: u32 = value
                    .parse()
                    .map_err(|_| bad("expected a whole number, e.g. weight-limit=100"))?;
                self.set_weight_limit(n)?;
            }
            "throttle" | "ban" => {
                let ms: i64 = value
                    .parse()
                    .map_err(|_| bad("expected milliseconds from now, e.g. ban=5000"))?;
                if !(0..=3_600_000).contains(&ms) {
                    return Err(bad("between 0 and 3600000 ms (0 lifts it)"));
                }
                let until = (ms > 0).then(|| super::types::system_now_ms() + ms);
                if name == "ban" {
                    self.ban_until_ms = until;
                } else {
                    self.throttle_until_ms = until;
                }
            }
            "seed" => {
                self.seed = Some(
                    value
                        .parse()
                        .map_err(|_| bad("expected a whole number, e.g. seed=42"))?,
                );
            }
            _ => {
                return Err(format!(
                    "unknown fault {name:?} (known faults: {FAULT_NAMES})"
                ))
            }
        }
        Ok(())
    }

    pub fn set_weight_limit(&mut self, n: u32) -> Result<(), String> {
        if n == 0 {
            return Err("weight-limit must be at least 1".into());
        }
        self.weight_limit = Some(n);
        Ok(())
    }
}

fn parse_rate(value: &str) -> Result<f64, String> {
    let p: f64 = value
        .parse()
        .map_err(|_| "expected a share between 0 and 1, e.g. 0.1".to_string())?;
    if !(0.0..=1.0).contains(&p) {
        return Err("expected a share between 0 and 1, e.g. 0.1".into());
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_fault() {
        let mut f = Faults::default();
        for spec in [
            "latency=20",
            "error-rate=0.1",
            "timeout-rate=0.05",
            "clock-skew=-1500",
            "malformed=/api/v3/account",
            "weight-limit=50",
            "throttle=1500",
            "ban=2000",
            "seed=7",
        ] {
            f.apply(spec).unwrap();
        }
        assert_eq!(f.latency, Duration::from_millis(20));
        assert_eq!(f.error_rate, 0.1);
        assert_eq!(f.timeout_rate, 0.05);
        assert_eq!(f.clock_skew_ms, -1500);
        assert_eq!(f.malformed, vec!["/api/v3/account".to_string()]);
        assert_eq!(f.weight_limit, Some(50));
        assert_eq!(f.seed, Some(7));
        let now = crate::types::system_now_ms();
        let throttle = f.throttle_until_ms.unwrap() - now;
        let ban = f.ban_until_ms.unwrap() - now;
        assert!((1000..=1500).contains(&throttle), "{throttle}");
        assert!((1500..=2000).contains(&ban), "{ban}");
        f.apply("ban=0").unwrap();
        assert_eq!(f.ban_until_ms, None);
    }

    #[test]
    fn rejects_unknown_names_and_bad_values() {
        let mut f = Faults::default();
        assert!(f.apply("jitter=5").unwrap_err().contains("unknown fault"));
        assert!(f.apply("error-rate=1.5").is_err());
        assert!(f.apply("latency=soon").is_err());
        assert!(f.apply("latency").unwrap_err().contains("NAME=VALUE"));
        assert!(f.apply("malformed=api").is_err());
        assert!(f.apply("weight-limit=0").is_err());
        assert!(f.apply("ban=-5").is_err());
        assert!(f.apply("throttle=soon").is_err());
    }
}
