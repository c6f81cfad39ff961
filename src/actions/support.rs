//! `support.message`: a ready-to-send message for Binance support with the incident's
//! facts (worded in `report::support`), written to the incident folder when there is
//! something to report; the operator sorts the flagged trades.
use std::sync::Arc;

use super::{Action, ActionError, ActionSpec, BoxFuture, Kind, Outcome, OutputSpec, StepContext};
use crate::operator::Level;
use crate::report::support;

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(SupportMessage)]
}

pub const SUPPORT_FILE: &str = crate::report::SUPPORT_MESSAGE;

static SPEC: ActionSpec = ActionSpec {
    name: "support.message",
    description: "Write a ready-to-send message for Binance support (times in UTC, key mask, suspicious withdrawals and trades, what was done) when there are findings",
    kind: Kind::Local,
    inputs: &[],
    outputs: &[
        OutputSpec { name: "path", description: "the message file, when one was written" },
        OutputSpec { name: "message", description: "the message itself, as written (report.md and report.html show it)" },
    ],
};

pub struct SupportMessage;

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Action for SupportMessage {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            if ctx.with_state(|s| support::findings(s).is_empty()) {
                return Ok(Outcome::ok("no findings: no support message needed"));
            }
            let disown = split_trades(ctx)?;
            let key = ctx
                .run
                .key_masked
                .clone()
                .unwrap_or_else(|| "(unknown)".into());
            let head = ctx.run.journal.head();
            let facts = support::Facts {
                key: &key,
                started_at: ctx.run.started_at,
                drill: ctx.run.drill,
                chain_head: &head,
            };
            let Some(message) = ctx.with_state(|s| support::compose(s, &facts, &disown)) else {
                return Ok(Outcome::ok("no findings: no support message needed"));
            };
            let path = ctx.run.incident_dir.join(SUPPORT_FILE);
            crate::report::files::write_atomic(&path, message.as_bytes()).map_err(|source| {
                ActionError::Io {
                    what: "cannot write",
                    path: path.clone(),
                    source,
                }
            })?;
            ctx.note(Level::Info, format!("support message written to {} — review it, then send it from the Binance app or website", path.display()))?;
            Ok(Outcome::ok(format!("written to {}", path.display()))
                .with("path", path.display().to_string())
                .with(support::MESSAGE_OUTPUT, message))
        })
    }
}

/// The flagged trades, split by respond's rule, then by the operator (each change
/// journaled): for each, whether the message disowns it.
fn split_trades(ctx: &StepContext) -> Result<Vec<bool>, ActionError> {
    let (items, ids, by_default) = ctx.with_state(|s| {
        let trades = support::flagged_trades(s);
        let ids: Vec<String> = trades
            .iter()
            .map(|t| {
                format!(
                    "trade {} ({} {})",
                    text(&t["id"]),
                    text(&t["market"]),
                    text(&t["symbol"])
                )
            })
            .collect();
        let items: Vec<String> = trades.iter().map(support::trade_line).collect();
        (items, ids, support::disowned_by_default(&trades))
    });
    let (disown, asked) = ctx.pick(
                "Tick the trades you did NOT make (space toggles, enter confirms); the others go to Binance as trades to review",
                "Flagged trades: ticked ones have evidence of the attacker and are disowned in the message.",
                &items,
                &by_default,
            );
    for (i, id) in ids.iter().enumerate() {
        if disown[i] != by_default[i] {
            let to = if disown[i] {
                support::DISOWNED
            } else {
                support::TO_REVIEW
            };
            ctx.run
                .journal
                .record(crate::report::journal::Event::Answer {
                    step: ctx.step.clone(),
                    answer: crate::report::journal::Answered::MovedTo(to.to_string()),
                    reason: None,
                    who: ctx.run.who.clone(),
                    by: "operator".into(),
                    question: Some(id.clone()),
                })?;
        }
    }
    if !items.is_empty() && !asked {
        ctx.note(
                    Level::Warn,
                    format!(
                        "flagged trades split by respond's rule, with nobody at a terminal to check it: {} disowned (evidence of the attacker), {} listed as trades to review",
                        disown.iter().filter(|d| **d).count(),
                        disown.iter().filter(|d| !**d).count()
                    ),
                )?;
    }
    Ok(disown)
}
