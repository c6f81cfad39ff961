//! What the journal says so far: the outputs, evidence and findings of the steps, as
//! actions read them during a run and as a resumed run rebuilds them. Everything here
//! is derived from journal events.
use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::journal::{Event, Severity};

/// Outputs, evidence and findings of the steps so far (rebuilt from the journal on
/// resume), so an action can use what an earlier action found without knowing the
/// playbook's step ids.
#[derive(Clone, Debug, Default)]
pub struct RunState {
    pub outputs_by_action: std::collections::HashMap<String, BTreeMap<String, Json>>,
    pub evidence: BTreeMap<String, Vec<Json>>,
    pub findings: Vec<FindingRecord>,
    /// Per step: the batches of symbols its scan read in full in earlier sessions
    /// (resume), as (market, symbols, trade rows).
    pub scanned: BTreeMap<String, Vec<ScannedBatch>>,
}

/// Symbols of one market a scan read in full, and the trades it found in them.
#[derive(Clone, Debug)]
pub struct ScannedBatch {
    pub market: String,
    pub symbols: Vec<String>,
    pub trades: Vec<Json>,
    /// First trade ever per symbol, where the scan learnt it.
    pub first: BTreeMap<String, Json>,
}

#[derive(Clone, Debug)]
pub struct FindingRecord {
    pub severity: Severity,
    pub title: String,
    pub detail: Json,
}

impl RunState {
    /// Rebuild from journal records (resume).
    pub fn from_records(records: &[&super::journal::Record]) -> RunState {
        let mut state = RunState::default();
        let mut actions: std::collections::HashMap<String, String> = Default::default();
        for r in records {
            match &r.event {
                Event::StepStarted { step, action, .. } => {
                    actions.insert(step.clone(), action.clone());
                }
                Event::StepFinished { step, outputs, .. } => {
                    if let Some(action) = actions.get(step) {
                        state
                            .outputs_by_action
                            .insert(action.clone(), outputs.clone());
                    }
                }
                Event::Evidence { table, rows, .. } => {
                    state
                        .evidence
                        .entry(table.clone())
                        .or_default()
                        .extend(rows.iter().cloned());
                }
                Event::Finding {
                    severity,
                    title,
                    detail,
                    ..
                } => state.findings.push(FindingRecord {
                    severity: *severity,
                    title: title.clone(),
                    detail: detail.clone(),
                }),
                Event::ScanBatch {
                    step,
                    market,
                    symbols,
                    trades,
                    first,
                } => state
                    .scanned
                    .entry(step.clone())
                    .or_default()
                    .push(ScannedBatch {
                        market: market.clone(),
                        symbols: symbols.clone(),
                        trades: trades.clone(),
                        first: first.clone(),
                    }),
                _ => {}
            }
        }
        state
    }
}
