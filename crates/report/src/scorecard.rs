//! The drill scorecard: how fast containment came, what slipped through, how long the
//! key lived after it was "deleted", what the evidence missed, and how long each
//! prompt took — derived from the journal, comparable across drills.
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use std::collections::{BTreeMap, HashMap};

use super::journal::{Answered, Event, Record};

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

/// The scorecard of a whole journal.
pub fn score(records: &[&Record]) -> Scorecard {
    let mut scorer = Scorer::default();
    for r in records {
        scorer.add(r);
    }
    scorer.finish()
}

/// The scorecard built one record at a time, so a rendering need not hold the journal.
#[derive(Debug, Default)]
pub struct Scorer {
    card: Scorecard,
    /// The first record's time: when the run started.
    start: Option<String>,
    /// Step id → the action it runs.
    actions: HashMap<String, String>,
    /// Step id → when its prompt was shown (a manual step's start, a preview).
    asked_at: HashMap<String, String>,
    /// The operator's first "done" on a deletion step.
    deleted_at: Option<String>,
    /// The first "yes" to a deletion by API.
    api_confirmed_at: Option<String>,
}

impl Scorer {
    pub fn add(&mut self, r: &Record) {
        self.add_part(r, false);
    }

    /// A record, or a part of an evidence record's rows (`continued`: not its first).
    pub fn add_part(&mut self, r: &Record, continued: bool) {
        let start = self.start.get_or_insert_with(|| r.time.clone()).clone();
        match &r.event {
            Event::StepStarted {
                step, action, kind, ..
            } => {
                self.actions.insert(step.clone(), action.clone());
                if kind == "manual" {
                    self.asked_at.insert(step.clone(), r.time.clone());
                }
            }
            Event::Preview { step, .. } => {
                self.asked_at.insert(step.clone(), r.time.clone());
            }
            Event::Answer {
                step, answer, by, ..
            } => self.answer(&r.time, step, answer, by),
            Event::Request {
                method,
                status,
                step,
                ..
            } if method == "DELETE" && status.is_some_and(|s| s < 300) => {
                self.cancel_acknowledged(&start, &r.time, step.as_deref())
            }
            Event::Finding { title, detail, .. } if title.starts_with("Attacker still active") => {
                self.card.orders_slipped_through += detail.as_array().map(Vec::len).unwrap_or(1);
            }
            Event::Attestation { verdict, .. } if verdict == "confirmed" => {
                if let (Some(from), None) = (&self.deleted_at, self.card.seconds_deleted_to_dead) {
                    self.card.seconds_deleted_to_dead = seconds(from, &r.time);
                }
            }
            Event::StepFinished { step, outputs, .. } => self.step_finished(&r.time, step, outputs),
            Event::Evidence { table, rows, .. } => self.evidence(table, rows, continued),
            _ => {}
        }
    }

    /// An answer: how long the person took, and the answers later times count from.
    fn answer(&mut self, time: &str, step: &str, answer: &Answered, by: &str) {
        if by == "operator" {
            if let Some(since) = self.asked_at.remove(step) {
                if let Some(s) = seconds(&since, time) {
                    self.card.prompts.push(PromptTime {
                        step: step.to_string(),
                        seconds: s,
                    });
                }
            }
        }
        if *answer == Answered::Done && self.deleted_at.is_none() && step.contains("delete") {
            self.deleted_at = Some(time.to_string());
        }
        if *answer == Answered::Yes
            && self.api_confirmed_at.is_none()
            && self.action_of(step) == Some("binance.delete_subaccount_key")
        {
            self.api_confirmed_at = Some(time.to_string());
        }
    }

    /// A DELETE the exchange acknowledged: a cancel.
    fn cancel_acknowledged(&mut self, start: &str, time: &str, step: Option<&str>) {
        let at = seconds(start, time);
        if self.card.seconds_to_first_cancel.is_none() {
            self.card.seconds_to_first_cancel = at;
        }
        let in_cancel_step =
            step.and_then(|s| self.action_of(s)) == Some("binance.cancel_open_orders");
        if in_cancel_step && self.card.orders_slipped_through == 0 {
            self.card.seconds_to_containment = at;
        }
    }

    /// The end of a deletion by API or of a liveness check: the verdict on the key.
    fn step_finished(&mut self, time: &str, step: &str, outputs: &BTreeMap<String, Json>) {
        match self.actions.get(step).map(String::as_str) {
            Some("binance.delete_subaccount_key")
                if outputs.get("dead") == Some(&Json::Bool(true)) =>
            {
                if let Some(from) = &self.api_confirmed_at {
                    self.card.seconds_api_delete_to_dead = seconds(from, time);
                }
                self.card.verdict = Some("dead".into());
            }
            Some("binance.verify_revoked") => {
                if let Some(v) = outputs.get("verdict").and_then(Json::as_str) {
                    self.card.verdict = Some(v.to_string());
                    if v == "dead" && self.card.seconds_deleted_to_dead.is_none() {
                        if let Some(from) = &self.deleted_at {
                            self.card.seconds_deleted_to_dead = seconds(from, time);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Gaps in the coverage table; the drill's open orders at the end.
    fn evidence(&mut self, table: &str, rows: &[Json], continued: bool) {
        match table {
            "coverage" => {
                self.card.evidence_gaps += rows
                    .iter()
                    .filter(|r| r.get("status").and_then(Json::as_str) == Some("gap"))
                    .count();
            }
            "drill-final-state" if !continued => {
                self.card.open_orders_at_end = rows
                    .first()
                    .and_then(|r| r.get("totalOpen"))
                    .and_then(Json::as_u64);
            }
            _ => {}
        }
    }

    fn action_of(&self, step: &str) -> Option<&str> {
        self.actions.get(step).map(String::as_str)
    }

    pub fn finish(self) -> Scorecard {
        self.card
    }
}
