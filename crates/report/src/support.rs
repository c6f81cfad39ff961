//! The message for Binance support: the incident's facts (times in UTC, the key's mask,
//! withdrawals and trades the owner did not make, open positions, what was done), worded
//! here from what the journal says so far. `support.message` writes it to the incident
//! folder and journals it; `report.md` and `report.html` show the journaled text.
use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::journal::Severity;
use super::state::{FindingRecord, RunState};

/// Where the message stands in the step's outputs (and so in the journal).
pub const MESSAGE_OUTPUT: &str = "message";

/// What the message says about the run itself.
pub struct Facts<'a> {
    /// The leaked key's mask.
    pub key: &'a str,
    pub started_at: DateTime<Utc>,
    pub drill: bool,
    /// The journal's chain head when the message is written.
    pub chain_head: &'a str,
}

fn text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// Findings worth telling support about: medium and worse.
pub fn findings(state: &RunState) -> Vec<&FindingRecord> {
    state
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Medium)
        .collect()
}

/// The flagged trades, in the order the message lists them.
pub fn flagged_trades(state: &RunState) -> Vec<Json> {
    state
        .evidence
        .rows("trades")
        .into_iter()
        .filter(|t| t["flags"].as_str().is_some_and(|f| !f.is_empty()))
        .collect()
}

/// Which flagged trades respond disowns on its own: only those with evidence of the
/// attacker; the rest may be the owner's own, and saying otherwise to Binance hurts the
/// case.
pub fn disowned_by_default(trades: &[Json]) -> Vec<bool> {
    trades
        .iter()
        .map(|t| t["attackerEvidence"].as_str().is_some())
        .collect()
}

/// One flagged trade in a line: when, what, ids, and why it was flagged.
pub fn trade_line(t: &Json) -> String {
    let side = match (&t["isBuyer"], &t["buyer"], text(&t["side"]).as_str()) {
        (Json::Bool(true), _, _) | (_, Json::Bool(true), _) => "BUY",
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

/// The headings the flagged trades are split under.
pub const DISOWNED: &str = "Trades I did not make";
pub const TO_REVIEW: &str = "Trades to review";

/// The message, or `None` when there is nothing to tell support (no finding of medium
/// or worse). `disown[i]` says whether the i-th of [`flagged_trades`] is disowned.
pub fn compose(state: &RunState, facts: &Facts<'_>, disown: &[bool]) -> Option<String> {
    let findings = findings(state);
    if findings.is_empty() {
        return None;
    }
    let key = facts.key;
    let mut m = String::new();
    let _ = writeln!(
        m,
        "Subject: Compromised API key {key} — please review and freeze suspicious activity\n"
    );
    let _ = writeln!(m, "Hello Binance Support,\n");
    let _ = writeln!(
        m,
        "An API key on my account ({key}) was exposed and used by someone else. I have started an incident response at {} UTC. All times below are UTC.\n",
        facts.started_at.format("%Y-%m-%d %H:%M:%S")
    );
    withdrawals(&mut m, state);
    trades(&mut m, state, disown);
    positions(&mut m, state);
    let _ = writeln!(m, "What was found:");
    for f in &findings {
        let _ = writeln!(m, "- [{}] {}", f.severity, f.title);
    }
    let _ = writeln!(m);
    let _ = writeln!(m, "What I have done:");
    let output = |action: &str, name: &str| {
        state
            .outputs_by_action
            .get(action)
            .and_then(|o| o.get(name))
    };
    if let Some(n) = output("binance.cancel_open_orders", "cancelled") {
        let _ = writeln!(m, "- cancelled {} open order(s) with the key", text(n));
    }
    if let Some(v) = output("binance.verify_revoked", "verdict") {
        let _ = writeln!(
            m,
            "- deleted the key; respond's check of the key afterwards: {}",
            text(v)
        );
    }
    let _ = writeln!(m, "\nPlease review the activity above, freeze or trace the withdrawals if possible, and tell me what else you need from me.");
    let _ = writeln!(
        m,
        "\nIncident record fingerprint (SHA-256 chain head at writing): {}",
        facts.chain_head
    );
    if facts.drill {
        m.insert_str(0, "[DRILL — not a real incident; do not send]\n\n");
    }
    Some(m)
}

fn withdrawals(m: &mut String, state: &RunState) {
    let unknown: Vec<Json> = state
        .evidence
        .rows("withdrawals")
        .into_iter()
        .filter(|w| w["knownAddress"] == Json::Bool(false))
        .collect();
    if unknown.is_empty() {
        return;
    }
    let _ = writeln!(m, "Withdrawals I did not make:");
    for w in &unknown {
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

fn trades(m: &mut String, state: &RunState, disown: &[bool]) {
    let flagged = flagged_trades(state);
    let (mine, review): (Vec<_>, Vec<_>) = flagged
        .iter()
        .zip(disown)
        .partition(|(_, disowned)| **disowned);
    let review_heading = format!(
        "{TO_REVIEW} (flagged by my incident tooling; they may be my own, and I am checking them)"
    );
    for (heading, list) in [(DISOWNED, mine), (review_heading.as_str(), review)] {
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
}

fn positions(m: &mut String, state: &RunState) {
    let positions = state.evidence.rows("positions");
    if positions.is_empty() {
        return;
    }
    let _ = writeln!(
        m,
        "Open futures positions on the account when I wrote this ({}):",
        positions.len()
    );
    for p in positions {
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
