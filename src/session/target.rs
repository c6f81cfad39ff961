//! Which exchange an incident runs against: its name in words, as the journal records
//! it, and where a resumed incident goes on (`--new-base-url`).
use super::*;

pub(super) fn target_name(target: &Target) -> String {
    match target {
        Target::Production => "Binance production".into(),
        Target::Testnet => "Binance testnet".into(),
        Target::BaseUrl(url) => url.clone(),
        Target::TestnetAt(url) => format!("{url} (testnet: no /sapi)"),
        Target::Drill { scenario } => match scenario {
            Some(path) => format!("simulator (scenario {})", path.display()),
            None => "simulator (built-in scenario leaked-key)".into(),
        },
    }
}

/// The target as the journal records it: what `resume` goes back to.
pub(super) fn recorded_target(target: &Target) -> RecordedTarget {
    match target {
        Target::Production => RecordedTarget::Production,
        Target::Testnet => RecordedTarget::Testnet,
        Target::BaseUrl(url) => RecordedTarget::BaseUrl { url: url.clone() },
        Target::TestnetAt(url) => RecordedTarget::TestnetAt { url: url.clone() },
        Target::Drill { scenario } => RecordedTarget::Drill {
            // Absolute, so a resume from another folder finds the same scenario.
            scenario: scenario.as_ref().map(|path| {
                std::fs::canonicalize(path)
                    .or_else(|_| std::path::absolute(path))
                    .unwrap_or_else(|_| path.clone())
                    .display()
                    .to_string()
            }),
        },
    }
}

pub(super) fn target_of(recorded: &RecordedTarget) -> Target {
    match recorded {
        RecordedTarget::Production => Target::Production,
        RecordedTarget::Testnet => Target::Testnet,
        RecordedTarget::BaseUrl { url } => Target::BaseUrl(url.clone()),
        RecordedTarget::TestnetAt { url } => Target::TestnetAt(url.clone()),
        RecordedTarget::Drill { scenario } => Target::Drill {
            scenario: scenario.as_ref().map(PathBuf::from),
        },
    }
}

/// Where an incident's requests go now: the target of its latest session that recorded
/// one (a `--new-base-url` resume moves it), else the words of `run_started`, which is all
/// that journals from before `target_spec` have.
pub(super) fn incident_target(records: &[&Record]) -> Option<RecordedTarget> {
    let latest = records.iter().rev().find_map(|r| match &r.event {
        Event::RunResumed {
            target_spec: Some(spec),
            ..
        } => Some(spec.clone()),
        _ => None,
    });
    latest.or_else(|| match records.first().map(|r| &r.event) {
        Some(Event::RunStarted {
            target_spec: Some(spec),
            ..
        }) => Some(spec.clone()),
        Some(Event::RunStarted { target, .. }) => target_from_words(target),
        _ => None,
    })
}

/// The inverse of `target_name`, for journals that recorded only the words.
fn target_from_words(words: &str) -> Option<RecordedTarget> {
    match words {
        "Binance production" => Some(RecordedTarget::Production),
        "Binance testnet" => Some(RecordedTarget::Testnet),
        "simulator (built-in scenario leaked-key)" => {
            Some(RecordedTarget::Drill { scenario: None })
        }
        _ => {
            if let Some(path) = words
                .strip_prefix("simulator (scenario ")
                .and_then(|rest| rest.strip_suffix(')'))
            {
                Some(RecordedTarget::Drill {
                    scenario: Some(path.to_string()),
                })
            } else if let Some(url) = words.strip_suffix(" (testnet: no /sapi)") {
                Some(RecordedTarget::TestnetAt {
                    url: url.to_string(),
                })
            } else if words.starts_with("http://") || words.starts_with("https://") {
                Some(RecordedTarget::BaseUrl {
                    url: words.to_string(),
                })
            } else {
                None
            }
        }
    }
}

/// The target a resumed incident continues on, and the base URL it moved from when
/// `--new-base-url` moved it. The journal decides: without target flags the incident goes
/// on where it started; flags that name another target are a usage error naming both.
pub(super) fn resume_target(
    dir: &Path,
    recorded: &RecordedTarget,
    cfg: &RunConfig,
) -> Result<(Target, Option<String>), Error> {
    let was = target_name(&target_of(recorded));
    if let Some(new) = &cfg.new_base_url {
        let (RecordedTarget::BaseUrl { url } | RecordedTarget::TestnetAt { url }) = recorded else {
            return Err(Error::usage_hint(
                format!(
                    "--new-base-url moves an incident that ran against a base URL; {} ran against {was}",
                    dir.display()
                ),
                format!("resume it without --new-base-url to continue on {was}"),
            ));
        };
        if !same_host(url, new) {
            return Err(Error::usage_hint(
                format!(
                    "--new-base-url {new} is not the same server as {url}, which {} ran against",
                    dir.display()
                ),
                "only the port may differ (a simulator restarted on another port); an incident stays on the exchange it started on",
            ));
        }
        let moved = (new != url).then(|| url.clone());
        let target = match recorded {
            RecordedTarget::TestnetAt { .. } => Target::TestnetAt(new.clone()),
            _ => Target::BaseUrl(new.clone()),
        };
        return Ok((target, moved));
    }
    if !cfg.target_explicit {
        return Ok((target_of(recorded), None));
    }
    let given = recorded_target(&cfg.target);
    let same = match (&given, recorded) {
        // `--drill` alone continues the recorded scenario.
        (RecordedTarget::Drill { scenario: None }, RecordedTarget::Drill { .. }) => true,
        (given, recorded) => given == recorded,
    };
    if same {
        return Ok((target_of(recorded), None));
    }
    Err(Error::usage_hint(
        format!(
            "{} ran against {was}; this command would continue it against {}",
            dir.display(),
            target_name(&target_of(&given))
        ),
        format!(
            "an incident stays on the exchange it started on: run `respond resume {}` without --base-url, --testnet or --drill to continue on {was}; if its simulator restarted on another port, add --new-base-url URL",
            dir.display()
        ),
    ))
}

/// Same scheme, host and path: only the port may differ.
fn same_host(recorded: &str, new: &str) -> bool {
    match (reqwest::Url::parse(recorded), reqwest::Url::parse(new)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
        }
        _ => false,
    }
}
