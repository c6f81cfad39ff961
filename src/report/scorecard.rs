//! The drill scorecard: how fast containment came, what slipped through, how long the
//! key lived after it was "deleted", what the evidence missed, and how long each
//! prompt took — derived from the journal, comparable across drills.
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::journal::{Event, Record};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PromptTime {
    pub step: String,
    pub seconds: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Scorecard {
    /// Run start to the first cancel Binance acknowledged.
    pub seconds_to_first_cancel: Option<f64>,
    /// Run start to the last acknowledged cancel of the cancel step (containment).
    pub seconds_to_containment: Option<f64>,
    /// Orders placed after the first cancel (each reappearance).
    pub orders_slipped_through: usize,
    /// Open orders left on the simulator when the drill ended.
    pub open_orders_at_end: Option<u64>,
    /// From the operator's "deleted" to the first proof that the key is dead.
    pub seconds_deleted_to_dead: Option<f64>,
    /// Deletion by API (a sub-account's key, with the master key): from the operator's
    /// (or `--yes`'s) confirm to the probes proving the key dead.
    #[serde(default)]
    pub seconds_api_delete_to_dead: Option<f64>,
    /// The final liveness verdict.
    pub verdict: Option<String>,
    /// Sources asked for and not read.
    pub evidence_gaps: usize,
    /// Time the operator spent at each prompt (answers given by a person only).
    pub prompts: Vec<PromptTime>,
}

fn seconds(from: &str, to: &str) -> Option<f64> {
    let from = DateTime::parse_from_rfc3339(from).ok()?;
    let to = DateTime::parse_from_rfc3339(to).ok()?;
    Some(((to - from).num_milliseconds() as f64 / 1000.0).max(0.0))
}

pub fn score(records: &[&Record]) -> Scorecard {
    let mut card = Scorecard::default();
    let Some(start) = records.first().map(|r| r.time.clone()) else {
        return card;
    };
    let mut actions: std::collections::HashMap<&str, &str> = Default::default();
    let mut asked_at: std::collections::HashMap<&str, &str> = Default::default();
    let mut deleted_at: Option<&str> = None;
    let mut api_confirmed_at: Option<&str> = None;
    for r in records {
        match &r.event {
            Event::StepStarted {
                step, action, kind, ..
            } => {
                actions.insert(step, action);
                if kind == "manual" {
                    asked_at.insert(step, &r.time);
                }
            }
            Event::Preview { step, .. } => {
                asked_at.insert(step, &r.time);
            }
            Event::Answer {
                step, answer, by, ..
            } => {
                if by == "operator" {
                    if let Some(since) = asked_at.remove(step.as_str()) {
                        if let Some(s) = seconds(since, &r.time) {
                            card.prompts.push(PromptTime {
                                step: step.clone(),
                                seconds: s,
                            });
                        }
                    }
                }
                if answer == "done" && deleted_at.is_none() && step.contains("delete") {
                    deleted_at = Some(&r.time);
                }
                if answer == "yes"
                    && api_confirmed_at.is_none()
                    && actions.get(step.as_str()) == Some(&"binance.delete_subaccount_key")
                {
                    api_confirmed_at = Some(&r.time);
                }
            }
            Event::Request {
                method,
                status,
                step,
                ..
            } if method == "DELETE" && status.is_some_and(|s| s < 300) => {
                let at = seconds(&start, &r.time);
                if card.seconds_to_first_cancel.is_none() {
                    card.seconds_to_first_cancel = at;
                }
                let in_cancel_step = step.as_deref().and_then(|s| actions.get(s))
                    == Some(&"binance.cancel_open_orders");
                if in_cancel_step && card.orders_slipped_through == 0 {
                    card.seconds_to_containment = at;
                }
            }
            Event::Finding { title, detail, .. } if title.starts_with("Attacker still active") => {
                card.orders_slipped_through += detail.as_array().map(Vec::len).unwrap_or(1);
            }
            Event::Attestation { verdict, .. } if verdict == "confirmed" => {
                if let (Some(from), None) = (deleted_at, card.seconds_deleted_to_dead) {
                    card.seconds_deleted_to_dead = seconds(from, &r.time);
                }
            }
            Event::StepFinished { step, outputs, .. }
                if actions.get(step.as_str()) == Some(&"binance.delete_subaccount_key")
                    && outputs.get("dead") == Some(&Json::Bool(true)) =>
            {
                if let Some(from) = api_confirmed_at {
                    card.seconds_api_delete_to_dead = seconds(from, &r.time);
                }
                card.verdict = Some("dead".into());
            }
            Event::StepFinished { step, outputs, .. }
                if actions.get(step.as_str()) == Some(&"binance.verify_revoked") =>
            {
                if let Some(v) = outputs.get("verdict").and_then(Json::as_str) {
                    card.verdict = Some(v.to_string());
                    if v == "dead" && card.seconds_deleted_to_dead.is_none() {
                        if let Some(from) = deleted_at {
                            card.seconds_deleted_to_dead = seconds(from, &r.time);
                        }
                    }
                }
            }
            Event::Evidence { table, rows, .. } if table == "coverage" => {
                card.evidence_gaps += rows
                    .iter()
                    .filter(|r| r.get("status").and_then(Json::as_str) == Some("gap"))
                    .count();
            }
            Event::Evidence { table, rows, .. } if table == "drill-final-state" => {
                card.open_orders_at_end = rows
                    .first()
                    .and_then(|r| r.get("totalOpen"))
                    .and_then(Json::as_u64);
            }
            _ => {}
        }
    }
    card
}
