//! The command line's run options, checked once into the engine's [`RunConfig`]: `cli.rs`
//! parses, this validates, so the engine never sees clap types or unchecked strings.
use std::time::Duration;

use crate::cli::RunOptions;
use crate::error::Error;
use crate::playbook::parse_duration;

pub use crate::engine::config::{RunConfig, Target};

/// Validate the shared run options. `inputs` are already split `NAME=VALUE` pairs.
pub fn from_options(
    opts: &RunOptions,
    inputs: Vec<(String, String)>,
    verbose: u8,
    quiet: bool,
) -> Result<RunConfig, Error> {
    let target_explicit = opts.drill || opts.base_url.is_some() || opts.testnet;
    let target = target(opts)?;
    let limits = Limits::check(opts)?;
    Ok(RunConfig {
        dry_run: opts.dry_run,
        yes: opts.yes,
        target,
        target_explicit,
        new_base_url: None,
        new_incident: false,
        report_dir: opts.report_dir.clone(),
        key_file: opts.key_file.clone(),
        responder_key_file: opts.responder_key_file.clone(),
        operator: opts.operator.clone(),
        json: opts.json,
        quiet,
        verbose,
        recv_window_ms: opts.recv_window,
        concurrency: opts.concurrency,
        weight_window: limits.weight_window,
        weight_limit: opts.weight_limit,
        request_timeout: limits.request_timeout,
        max_rate_limit_wait: limits.max_rate_limit_wait,
        inputs,
        sim_faults: opts.sim_faults.clone(),
        sim_request_log: opts.sim_request_log.clone(),
        sign: opts.sign,
        previous: None,
    })
}

/// The exchange the run goes to: `--drill`, `--base-url` (with `--testnet`: a testnet
/// there), `--testnet`, else production.
fn target(opts: &RunOptions) -> Result<Target, Error> {
    Ok(if opts.drill {
        Target::Drill {
            scenario: opts.scenario.clone(),
        }
    } else if let Some(url) = &opts.base_url {
        let url = check_base_url("--base-url", url)?;
        if opts.testnet {
            Target::TestnetAt(url)
        } else {
            Target::BaseUrl(url)
        }
    } else if opts.testnet {
        Target::Testnet
    } else {
        Target::Production
    })
}

/// The request and weight limits, checked.
struct Limits {
    weight_window: Duration,
    request_timeout: Duration,
    max_rate_limit_wait: Duration,
}

impl Limits {
    fn check(opts: &RunOptions) -> Result<Limits, Error> {
        if opts.recv_window == 0 || opts.recv_window > 60_000 {
            return Err(Error::usage(format!(
                "--recv-window {} is out of range: Binance accepts 1 to 60000 ms",
                opts.recv_window
            )));
        }
        if opts.concurrency == 0 || opts.concurrency > 1024 {
            return Err(Error::usage(format!(
                "--concurrency {} is out of range: use 1 (serial) to 1024",
                opts.concurrency
            )));
        }
        let weight_window = parse_duration(&opts.weight_window)
            .map_err(|e| Error::usage(format!("--weight-window: {e}")))?;
        if weight_window.is_zero() {
            return Err(Error::usage("--weight-window must be longer than 0s"));
        }
        let request_timeout = parse_duration(&opts.request_timeout)
            .map_err(|e| Error::usage(format!("--request-timeout: {e}")))?;
        if request_timeout < Duration::from_millis(100)
            || request_timeout > Duration::from_secs(300)
        {
            return Err(Error::usage(
                "--request-timeout must be between 100ms and 5m",
            ));
        }
        let max_rate_limit_wait = parse_duration(&opts.max_rate_limit_wait)
            .map_err(|e| Error::usage(format!("--max-rate-limit-wait: {e}")))?;
        if opts.weight_limit == Some(0) {
            return Err(Error::usage("--weight-limit must be at least 1"));
        }
        Ok(Limits {
            weight_window,
            request_timeout,
            max_rate_limit_wait,
        })
    }
}

/// A base URL given on the command line (`--base-url`, `--new-base-url`), without a
/// trailing slash.
pub fn check_base_url(flag: &str, url: &str) -> Result<String, Error> {
    let url = url.trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::usage_hint(
            format!("{flag} `{url}` is not an http:// or https:// URL"),
            "for the simulator use the URL `respond sim serve` prints, e.g. http://127.0.0.1:8080",
        ));
    }
    Ok(url)
}

/// Split `--input NAME=VALUE` values.
pub fn parse_input_pairs(raw: &[String]) -> Result<Vec<(String, String)>, Error> {
    raw.iter()
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                Ok((name.trim().to_string(), value.to_string()))
            }
            _ => Err(Error::usage_hint(
                format!("--input `{pair}` is not NAME=VALUE"),
                "for example: --input since=24h",
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::playbook::parse_since;

    #[test]
    fn since_accepts_durations_and_instants() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_since("72h", now).unwrap().to_rfc3339(),
            "2026-11-21T12:00:00+00:00"
        );
        assert_eq!(
            parse_since("2026-11-20T08:00:00Z", now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-20T08:00:00+00:00"
        );
        assert!(parse_since("2027-01-01T00:00:00Z", now)
            .unwrap_err()
            .contains("future"));
        assert!(parse_since("yesterday", now)
            .unwrap_err()
            .contains("neither"));
    }

    #[test]
    fn input_pairs() {
        let pairs = parse_input_pairs(&["since=24h".into(), "x=a=b".into()]).unwrap();
        assert_eq!(
            pairs,
            vec![("since".into(), "24h".into()), ("x".into(), "a=b".into())]
        );
        assert!(parse_input_pairs(&["nope".into()]).is_err());
    }
}
