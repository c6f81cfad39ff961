//! `binance.verify_revoked`: prove the leaked key is dead by probing it on two API
//! families until Binance's answers settle, and say exactly what was seen: -2008 (the
//! key does not exist) is proof only for a key this run saw live; -2015 alone is
//! ambiguous; timeouts and rate limits prove nothing.
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    Action, ActionError, ActionSpec, ArgType, BoxFuture, InputSpec, Kind, Outcome, OutputSpec,
    StepContext,
};
use crate::operator::Level;
use crate::report::journal::Severity;
use crate::secret::Role;

pub use crate::engine::liveness::{classify, probe_round, seen_at_triage};
pub use crate::report::verdict::{round_verdict, verdict_of, Probe, Seen, Verdict};

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(VerifyRevoked)]
}

static SPEC: ActionSpec = ActionSpec {
    name: "binance.verify_revoked",
    description: "Probe the leaked key on /api and /sapi until Binance's answers settle: dead (-2008), rejected (-2015/-2014, ambiguous), unknown, or still alive (a failure)",
    kind: Kind::Verify,
    inputs: &[
        InputSpec { name: "probes", ty: ArgType::Int { min: 1, max: 20 }, required: false, default: Some("3"), description: "consecutive rounds that must agree" },
        InputSpec { name: "interval", ty: ArgType::Duration { max: Some(Duration::from_secs(60)) }, required: false, default: Some("2s"), description: "pause between rounds" },
        InputSpec { name: "wait", ty: ArgType::Duration { max: Some(Duration::from_secs(1800)) }, required: false, default: Some("60s"), description: "how long to keep probing a key that is still accepted" },
    ],
    outputs: &[
        OutputSpec { name: "verdict", description: "dead, rejected, unknown or alive" },
        OutputSpec { name: "codes", description: "Binance codes seen in the last round, comma-separated" },
        OutputSpec { name: "rounds", description: "probe rounds made" },
        OutputSpec { name: "needed", description: "consecutive agreeing rounds the verdict needed" },
    ],
};

pub struct VerifyRevoked;

fn codes(probes: &[Probe]) -> String {
    probes
        .iter()
        .map(|p| match p {
            Probe::Accepted => "accepted".to_string(),
            Probe::NotFound => "-2008".to_string(),
            Probe::Refused(c) => c.to_string(),
            Probe::Inconclusive(why) => why.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn record_round(
    ctx: &StepContext,
    round: u32,
    answers: &[(&'static str, Probe)],
    verdict: Verdict,
) -> Result<(), ActionError> {
    ctx.run
        .journal
        .record(crate::report::journal::Event::Probe {
            step: ctx.step.clone(),
            round,
            answers: answers
                .iter()
                .map(|(path, p)| crate::report::journal::ProbeAnswer {
                    path: path.to_string(),
                    code: p.code(),
                    class: p.class().into(),
                })
                .collect(),
            verdict: verdict.as_str().into(),
        })?;
    Ok(())
}

impl Action for VerifyRevoked {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let client = ctx.client(Role::Leaked)?;
            let needed = ctx.args.int("probes").unwrap_or(3).max(1) as usize;
            let interval = ctx
                .args
                .duration("interval")
                .unwrap_or(Duration::from_secs(2));
            let wait = ctx.args.duration("wait").unwrap_or(Duration::from_secs(60));
            let mut seen = seen_at_triage(ctx);
            // Refused from here at triage (an IP whitelist): a refusal now is what Binance
            // said before the deletion too, so it settles nothing; only -2008 does.
            let refused_before = ctx.earlier_output("binance.key_permissions", "refused")
                == Some(serde_json::Value::Bool(true));
            let settles =
                |v: Verdict| v != Verdict::Alive && !(refused_before && v == Verdict::Rejected);
            let key = client.key_masked().unwrap_or_default();
            let started = Instant::now();
            // This can take up to `wait`: say what is being waited for, terminal or not.
            ctx.note(
                Level::Info,
                format!(
                    "Waiting for Binance to refuse {key}: probing every {} until {needed} round(s) in a row agree, for at most {}",
                    humantime::format_duration(interval),
                    humantime::format_duration(wait)
                ),
            )?;
            let bar = ctx.run.operator.progress(&format!("probing {key}"), None);
            let mut streak: Option<(Verdict, usize)> = None;
            let mut rounds = 0usize;
            let (verdict, last) = loop {
                rounds += 1;
                let answers = probe_round(&client).await;
                let probes: Vec<Probe> = answers.iter().map(|(_, p)| p.clone()).collect();
                let verdict = verdict_of(&answers, &seen);
                for (path, p) in &answers {
                    seen.note(path, p);
                }
                record_round(ctx, rounds as u32, &answers, verdict)?;
                let message = format!("probe {rounds}: {} ({})", verdict.as_str(), codes(&probes));
                ctx.note(Level::Detail, message)?;
                streak = match streak {
                    Some((v, n)) if v == verdict => Some((v, n + 1)),
                    _ => Some((verdict, 1)),
                };
                let (_, n) = streak.expect("just set");
                if settles(verdict) && n >= needed {
                    break (verdict, probes);
                }
                let left = wait.saturating_sub(started.elapsed());
                if left.is_zero() {
                    break (verdict, probes);
                }
                bar.set_message(waiting_words(&key, verdict, (n, needed), interval, left));
                tokio::time::sleep(interval.min(left)).await;
            };
            bar.finish_and_clear();
            conclude(
                ctx,
                &key,
                Ending {
                    verdict,
                    codes_seen: codes(&last),
                    elapsed: started.elapsed().as_secs(),
                    rounds,
                    needed,
                    refused_before,
                },
            )
        })
    }
}

/// The progress line between two rounds: a live key is said loudly.
fn waiting_words(
    key: &str,
    verdict: Verdict,
    (n, needed): (usize, usize),
    interval: Duration,
    left: Duration,
) -> String {
    match verdict {
        Verdict::Alive => format!(
            "{key} is STILL ACCEPTED by Binance — probing again in {}s ({}s left)",
            interval.as_secs_f32().ceil(),
            left.as_secs()
        ),
        v => format!(
            "{key}: {} {n}/{needed} — next probe in {}s",
            v.as_str(),
            interval.as_secs_f32().ceil()
        ),
    }
}

/// How the probing ended.
struct Ending {
    verdict: Verdict,
    /// The last round's answers, as codes.
    codes_seen: String,
    /// Seconds of probing.
    elapsed: u64,
    rounds: usize,
    /// Rounds in a row that had to agree.
    needed: usize,
    /// Triage was refused from this machine: a refusal now proves nothing.
    refused_before: bool,
}

/// The step's outcome from the final verdict: dead is proven only by -2008; live,
/// unknown and (after a refusal at triage) refused are failures.
fn conclude(ctx: &StepContext, key: &str, end: Ending) -> Result<Outcome, ActionError> {
    let Ending {
        verdict,
        codes_seen,
        elapsed,
        rounds,
        needed,
        refused_before,
    } = end;
    let outcome = |summary: String| {
        Outcome::ok(summary)
            .with("verdict", verdict.as_str())
            .with("codes", codes_seen.clone())
            .with("rounds", rounds as u64)
            .with("needed", needed as u64)
    };
    match verdict {
                Verdict::Dead => {
                    ctx.note(Level::Success, format!("{key} is dead: Binance says the key does not exist (-2008), {needed} round(s) in a row over {elapsed}s"))?;
                    Ok(outcome(format!("dead: key not found (-2008) on {needed} consecutive round(s); codes {codes_seen}")))
                }
                Verdict::Rejected if refused_before => Err(ActionError::Failed(format!(
                    "{key} is NOT proven deleted: after {elapsed}s Binance still refuses it from this machine exactly as before the deletion ({codes_seen}). Only -2008 (the key does not exist) proves it from outside the key's IP whitelist. Check in API Management that the key is gone, then run `respond resume` on this incident."
                ))),
                Verdict::Rejected => {
                    let message = format!(
                        "{key} is refused by Binance ({codes_seen}) but not proven deleted: -2015/-2014 also mean an IP not on the whitelist, a removed permission, or a temporary ban. Check in API Management that the key is gone."
                    );
                    ctx.note(Level::Warn, message.clone())?;
                    ctx.finding(Severity::Medium, "The key is refused but its deletion is not proven (-2015/-2014 are ambiguous)", json!({"codes": codes_seen}))?;
                    Ok(outcome(format!("rejected ({codes_seen}): deleted, or refused from this host — not proof of deletion")))
                }
                Verdict::Unknown => Err(ActionError::Failed(format!(
                    "could not tell whether {key} is dead after {rounds} round(s): {codes_seen}. Timeouts, rate limits and a wrong secret (-1022) prove nothing; check API Management by hand."
                ))),
                Verdict::Alive => {
                    ctx.finding(Severity::Critical, format!("{key} is still live {elapsed}s after it was reported deleted"), json!({"rounds": rounds}))?;
                    Err(ActionError::Failed(format!(
                        "{key} is STILL LIVE after {elapsed}s of probing: it was not deleted, or a different key was. Open Profile > API Management, delete the key ending in its last four characters, then run `respond resume` on this incident."
                    )))
                }
            }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_2008_proves_a_deletion_only_where_the_key_answered_otherwise_before() {
        use Probe::*;
        const API: &str = "/api/v3/account";
        const SAPI: &str = "/sapi/v1/account/apiRestrictions";
        let triage = |answered: serde_json::Value| {
            let mut o = std::collections::BTreeMap::new();
            o.insert("answered".to_string(), answered);
            Seen::from_triage(Some(&o))
        };
        // Whitelisted key probed from outside: -2015 at triage, -2008 after deletion.
        let outside = triage(serde_json::json!({API: "refused", SAPI: "refused"}));
        let deleted = [(API, Refused(-2015)), (SAPI, NotFound)];
        assert_eq!(verdict_of(&deleted, &outside), Verdict::Dead);
        // -2008 from the start (a typo, a testnet key): nothing proven.
        let never = triage(serde_json::json!({API: "refused", SAPI: "not_found"}));
        assert_eq!(verdict_of(&deleted, &never), Verdict::Rejected);
        // A 5xx at triage on /sapi proves nothing; a -2015 in an earlier round does.
        let mut flaky = triage(serde_json::json!({API: "accepted", SAPI: "inconclusive"}));
        assert_eq!(verdict_of(&deleted, &flaky), Verdict::Rejected);
        flaky.note(SAPI, &Refused(-2015));
        assert_eq!(verdict_of(&deleted, &flaky), Verdict::Dead);
        // Older journals: triage's `live` counts for every endpoint.
        let mut o = std::collections::BTreeMap::new();
        o.insert("live".to_string(), serde_json::Value::Bool(true));
        assert_eq!(
            verdict_of(&deleted, &Seen::from_triage(Some(&o))),
            Verdict::Dead
        );
    }

    #[test]
    fn verdicts_follow_binance_codes() {
        use Probe::*;
        assert_eq!(round_verdict(&[Accepted, NotFound], true), Verdict::Alive);
        assert_eq!(
            round_verdict(&[Refused(-2015), NotFound], true),
            Verdict::Dead
        );
        assert_eq!(
            round_verdict(&[Refused(-2015), NotFound], false),
            Verdict::Rejected,
            "-2008 proves deletion only for a key seen live"
        );
        assert_eq!(
            round_verdict(&[Refused(-2015), Refused(-2015)], true),
            Verdict::Rejected
        );
        assert_eq!(
            round_verdict(&[Refused(-2015), Inconclusive("timeout".into())], true),
            Verdict::Unknown
        );
        assert_eq!(
            round_verdict(&[Inconclusive("code -1022".into())], true),
            Verdict::Unknown
        );
    }
}
