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
    pub evidence: EvidenceStore,
    pub findings: Vec<FindingRecord>,
    /// Per step: the batches of symbols its scan read in full in earlier sessions
    /// (resume), as (market, symbols, trade rows).
    pub scanned: BTreeMap<String, Vec<ScannedBatch>>,
}

/// Evidence rows per table, each kept as its compact JSON text and read back as values
/// when an action asks: a week of trades is the size of its journal line here, not
/// several times that as JSON values. The text reads back to the same values.
#[derive(Clone, Debug, Default)]
pub struct EvidenceStore {
    tables: BTreeMap<String, Vec<Box<str>>>,
}

impl EvidenceStore {
    /// Add rows to `table` (a table with no rows still exists).
    pub fn extend<'a>(&mut self, table: &str, rows: impl IntoIterator<Item = &'a Json>) {
        let kept = self.tables.entry(table.to_string()).or_default();
        kept.extend(rows.into_iter().map(|r| r.to_string().into_boxed_str()));
    }

    /// The rows of `table` so far, in order (none: an empty list).
    pub fn rows(&self, table: &str) -> Vec<Json> {
        self.tables
            .get(table)
            .into_iter()
            .flatten()
            .map(|text| serde_json::from_str(text).expect("evidence rows read back"))
            .collect()
    }
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
                Event::Evidence { table, rows, .. } => state.evidence.extend(table, rows),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evidence_reads_back_as_the_rows_it_was_given() {
        let rows = vec![
            json!({"price": "64000.5", "qty": 0.1, "id": 9_007_199_254_740_993u64, "time": -1}),
            json!({"note": "a \"quoted\" \u{1F600} line\nand more", "flags": null, "x": 1e-7}),
        ];
        let mut store = EvidenceStore::default();
        store.extend("trades", &rows[..1]);
        store.extend("trades", &rows[1..]);
        store.extend("pay", &[]);
        assert_eq!(store.rows("trades"), rows);
        assert!(store.rows("pay").is_empty());
        assert!(store.rows("nothing").is_empty());
    }
}
