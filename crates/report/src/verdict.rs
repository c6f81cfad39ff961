//! What the answers of a liveness probe round mean: alive, dead, rejected or unknown.
//! Pure, so `report verify` re-derives every journaled verdict with the same rules the
//! run used.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Dead,
    Rejected,
    Unknown,
    Alive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Dead => "dead",
            Verdict::Rejected => "rejected",
            Verdict::Unknown => "unknown",
            Verdict::Alive => "alive",
        }
    }
}

/// What one probe's answer says about the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    Accepted,
    /// -2008: Binance says the key does not exist.
    NotFound,
    /// -2015/-2014: refused — deleted, not whitelisted, permission removed, or banned.
    Refused(i64),
    /// Proves nothing: -1022 (wrong secret), -1021, 429/418, timeouts, 5xx.
    Inconclusive(String),
}

/// What this run has seen of the key on each liveness endpoint before a probe: -2008 is
/// proof of deletion only from an endpoint that answered the same key otherwise earlier
/// (accepted it, or refused it with -2015 — the whitelisted key probed from outside its
/// whitelist). A typo or a testnet key gets -2008 from the start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Journals from before triage recorded `answered`: triage saw the key live, which
    /// counts for every endpoint.
    every_endpoint: bool,
    paths: std::collections::BTreeSet<String>,
}

impl Seen {
    /// From triage's outputs (`answered`, or `live` in older journals).
    pub fn from_triage(
        outputs: Option<&std::collections::BTreeMap<String, serde_json::Value>>,
    ) -> Seen {
        let mut seen = Seen::default();
        let Some(outputs) = outputs else {
            return seen;
        };
        match outputs.get("answered").and_then(|a| a.as_object()) {
            Some(answered) => {
                for (path, class) in answered {
                    if matches!(class.as_str(), Some("accepted" | "refused")) {
                        seen.paths.insert(path.clone());
                    }
                }
            }
            None => {
                seen.every_endpoint = outputs.get("live") == Some(&serde_json::Value::Bool(true))
            }
        }
        seen
    }

    /// Remember how `path` answered in a probe round.
    pub fn note(&mut self, path: &str, probe: &Probe) {
        if matches!(probe, Probe::Accepted | Probe::Refused(_)) {
            self.paths.insert(path.to_string());
        }
    }

    pub fn answered_otherwise(&self, path: &str) -> bool {
        self.every_endpoint || self.paths.contains(path)
    }
}

/// The verdict of one round of answers, each with the endpoint it came from.
pub fn verdict_of(answers: &[(&str, Probe)], seen: &Seen) -> Verdict {
    let probes: Vec<Probe> = answers.iter().map(|(_, p)| p.clone()).collect();
    let proven = answers
        .iter()
        .any(|(path, p)| *p == Probe::NotFound && seen.answered_otherwise(path));
    round_verdict(&probes, proven)
}

/// The verdict of one round. -2008 is proof of deletion only for a key this run saw
/// (see [`Seen`]; a typo or a testnet key gets it too).
pub fn round_verdict(probes: &[Probe], seen_live: bool) -> Verdict {
    if probes.contains(&Probe::Accepted) {
        return Verdict::Alive;
    }
    if seen_live && probes.contains(&Probe::NotFound) {
        return Verdict::Dead;
    }
    if !probes.is_empty()
        && probes
            .iter()
            .all(|p| matches!(p, Probe::NotFound | Probe::Refused(_)))
    {
        return Verdict::Rejected;
    }
    Verdict::Unknown
}

impl Probe {
    pub fn class(&self) -> &'static str {
        match self {
            Probe::Accepted => "accepted",
            Probe::NotFound => "not_found",
            Probe::Refused(_) => "refused",
            Probe::Inconclusive(_) => "inconclusive",
        }
    }

    pub fn code(&self) -> Option<i64> {
        match self {
            Probe::NotFound => Some(-2008),
            Probe::Refused(c) => Some(*c),
            Probe::Inconclusive(why) => why.strip_prefix("code ").and_then(|c| c.parse().ok()),
            Probe::Accepted => None,
        }
    }

    /// Rebuild from a journaled answer (for `report verify`).
    pub fn from_class(class: &str, code: Option<i64>) -> Probe {
        match class {
            "accepted" => Probe::Accepted,
            "not_found" => Probe::NotFound,
            "refused" => Probe::Refused(code.unwrap_or(-2015)),
            _ => Probe::Inconclusive(code.map(|c| format!("code {c}")).unwrap_or_default()),
        }
    }
}
