//! `support.message`: a ready-to-send message for Binance support with the incident's
//! facts, written to the incident folder when there is something to report.
use std::fmt::Write;
use std::sync::Arc;

use super::{Action, ActionError, ActionSpec, BoxFuture, Kind, Outcome, OutputSpec, StepContext};
use crate::operator::Level;
use crate::report::journal::Severity;

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(SupportMessage)]
}

pub const SUPPORT_FILE: &str = crate::report::SUPPORT_MESSAGE;

static SPEC: ActionSpec = ActionSpec {
    name: "support.message",
    description: "Write a ready-to-send message for Binance support (times in UTC, key mask, suspicious withdrawals and trades, what was done) when there are findings",
    kind: Kind::Local,
    inputs: &[],
    outputs: &[OutputSpec { name: "path", description: "the message file, when one was written" }],
};

pub struct SupportMessage;

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One flagged trade in a line: when, what, ids, and why it was flagged.
fn trade_line(t: &serde_json::Value) -> String {
    let side = match (&t["isBuyer"], &t["buyer"], text(&t["side"]).as_str()) {
        (serde_json::Value::Bool(true), _, _) | (_, serde_json::Value::Bool(true), _) => "BUY",
        (_, _, "BUY") => "BUY",
        _ => "SELL",
    };
    let mut why = text(&t["flags"]);
    if let Some(e) = t["attackerEvidence"].as_str() {
        why = format!("{why}; {e}");
    }
    format!(
        "{} {} {} {} {} @ {} (trade id {}, order id {}) — {why}",
        text(&t["timeUtc"]),
        text(&t["market"]),
        text(&t["symbol"]),
        side,
        text(&t["qty"]),
        text(&t["price"]),
        text(&t["id"]),
        text(&t["orderId"]),
    )
}

impl Action for SupportMessage {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let findings: Vec<_> = ctx
                .findings()
                .into_iter()
                .filter(|f| f.severity >= Severity::Medium)
                .collect();
            if findings.is_empty() {
                return Ok(Outcome::ok("no findings: no support message needed"));
            }
            let key = ctx
                .run
                .key_masked
                .clone()
                .unwrap_or_else(|| "(unknown)".into());
            let mut m = String::new();
            let _ = writeln!(m, "Subject: Compromised API key {key} — please review and freeze suspicious activity\n");
            let _ = writeln!(m, "Hello Binance Support,\n");
            let _ = writeln!(
                m,
                "An API key on my account ({key}) was exposed and used by someone else. I have started an incident response at {} UTC. All times below are UTC.\n",
                ctx.run.started_at.format("%Y-%m-%d %H:%M:%S")
            );
            let withdrawals: Vec<_> = ctx
                .earlier_evidence("withdrawals")
                .into_iter()
                .filter(|w| w["knownAddress"] == serde_json::Value::Bool(false))
                .collect();
            if !withdrawals.is_empty() {
                let _ = writeln!(m, "Withdrawals I did not make:");
                for w in &withdrawals {
                    let _ = writeln!(
                        m,
                        "- {} {} {} via {} to {} (withdrawal id {}, tx id {}, status {})",
                        text(&w["applyTime"]),
                        text(&w["amount"]),
                        text(&w["coin"]),
                        text(&w["network"]),
                        text(&w["address"]),
                        text(&w["id"]),
                        text(&w["txId"]),
                        text(&w["statusText"]),
                    );
                }
                let _ = writeln!(m);
            }
            let trades: Vec<_> = ctx
                .earlier_evidence("trades")
                .into_iter()
                .filter(|t| t["flags"].as_str().is_some_and(|f| !f.is_empty()))
                .collect();
            // Only trades with evidence of the attacker are disowned; the rest may be the
            // owner's own, and saying otherwise to Binance hurts the case.
            let by_default: Vec<bool> = trades
                .iter()
                .map(|t| t["attackerEvidence"].as_str().is_some())
                .collect();
            let items: Vec<String> = trades.iter().map(trade_line).collect();
            let (disown, asked) = ctx.pick(
                "Tick the trades you did NOT make (space toggles, enter confirms); the others go to Binance as trades to review",
                "Flagged trades: ticked ones have evidence of the attacker and are disowned in the message.",
                &items,
                &by_default,
            );
            for (i, t) in trades.iter().enumerate() {
                if disown[i] != by_default[i] {
                    let to = if disown[i] {
                        "Trades I did not make"
                    } else {
                        "Trades to review"
                    };
                    ctx.run
                        .journal
                        .record(crate::report::journal::Event::Answer {
                            step: ctx.step.clone(),
                            answer: format!("moved to {to}"),
                            reason: None,
                            who: ctx.run.who.clone(),
                            by: "operator".into(),
                            question: Some(format!(
                                "trade {} ({} {})",
                                text(&t["id"]),
                                text(&t["market"]),
                                text(&t["symbol"])
                            )),
                        })?;
                }
            }
            if !trades.is_empty() && !asked {
                ctx.note(
                    Level::Warn,
                    format!(
                        "flagged trades split by respond's rule, with nobody at a terminal to check it: {} disowned (evidence of the attacker), {} listed as trades to review",
                        disown.iter().filter(|d| **d).count(),
                        disown.iter().filter(|d| !**d).count()
                    ),
                )?;
            }
            let (mine, review): (Vec<_>, Vec<_>) =
                trades.iter().zip(&disown).partition(|(_, d)| **d);
            for (heading, list) in [
                ("Trades I did not make", mine),
                (
                    "Trades to review (flagged by my incident tooling; they may be my own, and I am checking them)",
                    review,
                ),
            ] {
                if list.is_empty() {
                    continue;
                }
                let _ = writeln!(m, "{heading} ({}):", list.len());
                for (t, _) in list.iter().take(50) {
                    let _ = writeln!(m, "- {}", trade_line(t));
                }
                if list.len() > 50 {
                    let _ = writeln!(m, "- … {} more in the attached trades.csv", list.len() - 50);
                }
                let _ = writeln!(m);
            }
            let positions = ctx.earlier_evidence("positions");
            if !positions.is_empty() {
                let _ = writeln!(
                    m,
                    "Open futures positions on the account when I wrote this ({}):",
                    positions.len()
                );
                for p in &positions {
                    let notional = match text(&p["market"]).as_str() {
                        "coinm" => format!(
                            "{} contracts, notional {} in the coin",
                            text(&p["positionAmt"]),
                            text(&p["notionalValue"])
                        ),
                        _ => format!(
                            "{} (notional {})",
                            text(&p["positionAmt"]),
                            text(&p["notional"])
                        ),
                    };
                    let _ = writeln!(
                        m,
                        "- {} {} {notional}, entry {}, unrealised PnL {}",
                        text(&p["market"]),
                        text(&p["symbol"]),
                        text(&p["entryPrice"]),
                        text(&p["unRealizedProfit"]),
                    );
                }
                let _ = writeln!(m);
            }
            let _ = writeln!(m, "What was found:");
            for f in &findings {
                let _ = writeln!(m, "- [{}] {}", f.severity, f.title);
            }
            let _ = writeln!(m);
            let _ = writeln!(m, "What I have done:");
            if let Some(n) = ctx.earlier_output("binance.cancel_open_orders", "cancelled") {
                let _ = writeln!(m, "- cancelled {} open order(s) with the key", text(&n));
            }
            if let Some(v) = ctx.earlier_output("binance.verify_revoked", "verdict") {
                let _ = writeln!(
                    m,
                    "- deleted the key; respond's check of the key afterwards: {}",
                    text(&v)
                );
            }
            let _ = writeln!(m, "\nPlease review the activity above, freeze or trace the withdrawals if possible, and tell me what else you need from me.");
            let _ = writeln!(
                m,
                "\nIncident record fingerprint (SHA-256 chain head at writing): {}",
                ctx.run.journal.head()
            );
            if ctx.run.drill {
                m.insert_str(0, "[DRILL — not a real incident; do not send]\n\n");
            }
            let path = ctx.run.incident_dir.join(SUPPORT_FILE);
            crate::report::files::write_atomic(&path, m.as_bytes()).map_err(|source| {
                ActionError::Io {
                    what: "cannot write",
                    path: path.clone(),
                    source,
                }
            })?;
            ctx.note(Level::Info, format!("support message written to {} — review it, then send it from the Binance app or website", path.display()))?;
            Ok(Outcome::ok(format!("written to {}", path.display()))
                .with("path", path.display().to_string()))
        })
    }
}
