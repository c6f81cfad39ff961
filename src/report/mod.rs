//! The incident record: the journal (source of truth) and everything rendered from it —
//! `report.md` for people, `report.json` for machines, `report.html` for a browser,
//! `evidence/*.csv`. One renderer, used whenever a run stops and by the `report.write`
//! action.
pub mod files;
mod html;
pub mod journal;
pub mod lock;
mod markdown;
pub mod scorecard;
pub mod sign;
pub mod state;
pub mod support;
pub mod verdict;
pub mod verify;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use journal::{Event, ReadJournal, Record, RunOutcome, Severity, StepStatus};

pub const REPORT_MD: &str = "report.md";
pub const REPORT_HTML: &str = "report.html";
pub const REPORT_JSON: &str = "report.json";
pub const PLAYBOOK_COPY: &str = "playbook.yaml";
pub const EVIDENCE_DIR: &str = "evidence";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} has no run_started record: not an incident journal")]
    NotAJournal { path: String },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StepReport {
    pub id: String,
    pub title: String,
    pub action: String,
    pub kind: String,
    pub status: Option<StepStatus>,
    pub summary: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    #[serde(default)]
    pub outputs: BTreeMap<String, Json>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DecisionReport {
    pub time: String,
    pub step: String,
    pub answer: String,
    pub reason: Option<String>,
    pub who: String,
    pub by: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FindingReport {
    pub time: String,
    pub step: String,
    pub severity: Severity,
    pub title: String,
    pub detail: Json,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AttestationReport {
    pub time: String,
    pub step: String,
    pub verdict: String,
    pub evidence: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TimelineEntry {
    /// This machine's clock.
    pub time: String,
    /// The exchange's clock at the same moment, when the offset was known.
    #[serde(default)]
    pub server_time: Option<String>,
    pub text: String,
}

/// Everything the report says, derived from the journal alone.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub incident: String,
    pub playbook: String,
    pub origin: String,
    pub dry_run: bool,
    pub drill: bool,
    pub autopilot: bool,
    pub target: String,
    pub key: Option<String>,
    pub responder_key: Option<String>,
    pub operators: Vec<String>,
    pub inputs: BTreeMap<String, String>,
    pub started: String,
    pub last_event: String,
    pub sessions: usize,
    /// completed, aborted, stopped, failed, interrupted — or `unfinished` when the
    /// journal ends without a run_finished (a crash).
    pub outcome: RunOutcome,
    pub exit_code: Option<u8>,
    pub severity: Severity,
    pub steps: Vec<StepReport>,
    pub pending: Vec<StepReport>,
    pub decisions: Vec<DecisionReport>,
    /// Checks of what operators attested, with what the exchange said.
    pub attestations: Vec<AttestationReport>,
    pub findings: Vec<FindingReport>,
    pub notes: Vec<TimelineEntry>,
    pub evidence_rows: BTreeMap<String, usize>,
    pub requests: usize,
    pub request_errors: usize,
    pub timeline: Vec<TimelineEntry>,
    /// The exchange's clock minus this machine's, as last measured (ms).
    pub clock_offset_ms: Option<i64>,
    /// The operator key that signs this incident's fingerprint (`ed25519:<hex>`).
    pub signing_key: Option<String>,
    /// How the response went, in numbers comparable across drills.
    pub scorecard: scorecard::Scorecard,
    /// Number of journal records and the hash of the last line (the fingerprint).
    pub events: u64,
    pub chain_head: String,
}

/// A notice at the top of every rendering of a report: what kind of run this was, or
/// that it did not finish. Worded once, here; `report.md` and `report.html` only style it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Banner {
    /// `drill`, `dry-run` or `unfinished` (the HTML class).
    pub kind: &'static str,
    /// The first words, emphasised: `DRILL`, `DRY RUN`, `Interrupted`, ...
    pub lead: String,
    pub text: String,
    /// A command to run, shown as code after the text.
    pub command: Option<String>,
}

impl Report {
    /// The command that continues this incident: `resume` insists on the mode the run
    /// started in, so a dry run's carries `--dry-run`.
    pub fn resume_command(&self) -> String {
        self.resume_command_in(&self.incident)
    }

    /// [`Report::resume_command`] for the incident folder at `dir`.
    pub fn resume_command_in(&self, dir: &str) -> String {
        let mut command = String::from("respond resume");
        if self.drill {
            command.push_str(" --drill");
        }
        if self.dry_run {
            command.push_str(" --dry-run");
        }
        format!("{command} {dir}")
    }

    /// The message for Binance support, as the run wrote it and journaled it.
    pub fn support_message(&self) -> Option<&str> {
        self.steps
            .iter()
            .filter(|s| s.action == "support.message")
            .find_map(|s| s.outputs.get(support::MESSAGE_OUTPUT)?.as_str())
    }

    /// The banners of this report, in order.
    pub fn banners(&self) -> Vec<Banner> {
        let mut banners = Vec::new();
        if self.drill {
            banners.push(Banner {
                kind: "drill",
                lead: if self.autopilot {
                    "DRILL (autopilot)"
                } else {
                    "DRILL"
                }
                .into(),
                text:
                    "this was a drill against the simulated exchange. No real account was touched."
                        .into(),
                command: None,
            });
        }
        if self.dry_run {
            banners.push(Banner {
                kind: "dry-run",
                lead: "DRY RUN".into(),
                text: "everything was read, nothing that changes state was sent.".into(),
                command: None,
            });
        }
        if self.outcome.resumable() {
            banners.push(Banner {
                kind: "unfinished",
                lead: if self.outcome == RunOutcome::Interrupted {
                    "Interrupted"
                } else {
                    "Unfinished (the run stopped without closing its record)"
                }
                .into(),
                text: "resume with:".into(),
                command: Some(self.resume_command()),
            });
        }
        banners
    }

    /// ` — DRILL (autopilot), DRY RUN` for titles; empty for a live run.
    pub fn mode_mark(&self) -> String {
        let mut marks = Vec::new();
        if self.drill {
            marks.push(if self.autopilot {
                "DRILL (autopilot)"
            } else {
                "DRILL"
            });
        }
        if self.dry_run {
            marks.push("DRY RUN");
        }
        if marks.is_empty() {
            String::new()
        } else {
            format!(" — {}", marks.join(", "))
        }
    }

    pub fn from_journal(read: &ReadJournal, incident: &str) -> Option<Report> {
        let records: Vec<&Record> = read.records().collect();
        let first = records.iter().find_map(|r| match &r.event {
            Event::RunStarted { .. } => Some(*r),
            _ => None,
        })?;
        let Event::RunStarted {
            playbook,
            origin,
            inputs,
            dry_run,
            drill,
            yes,
            target,
            key,
            responder_key,
            operator,
            ..
        } = &first.event
        else {
            unreachable!()
        };
        let mut report = Report {
            incident: incident.to_string(),
            playbook: playbook.clone(),
            origin: origin.clone(),
            dry_run: *dry_run,
            drill: *drill,
            autopilot: *drill && *yes,
            target: target.clone(),
            key: key.clone(),
            responder_key: responder_key.clone(),
            operators: vec![operator.clone()],
            inputs: inputs.clone(),
            started: first.time.clone(),
            last_event: String::new(),
            sessions: 0,
            outcome: RunOutcome::Unfinished,
            exit_code: None,
            severity: Severity::None,
            steps: Vec::new(),
            pending: Vec::new(),
            decisions: Vec::new(),
            attestations: Vec::new(),
            findings: Vec::new(),
            notes: Vec::new(),
            evidence_rows: BTreeMap::new(),
            requests: 0,
            request_errors: 0,
            timeline: Vec::new(),
            clock_offset_ms: None,
            signing_key: None,
            scorecard: scorecard::score(&records),
            events: 0,
            chain_head: String::new(),
        };
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for r in &records {
            report.events = r.seq;
            report.last_event = r.time.clone();
            let tl = |text: String| TimelineEntry {
                time: r.time.clone(),
                server_time: r.server_time.clone(),
                text,
            };
            if let Some(offset) = r.offset_ms {
                report.clock_offset_ms = Some(offset);
            }
            match &r.event {
                Event::RunStarted {
                    operator,
                    signing_key,
                    ..
                } => {
                    if signing_key.is_some() {
                        report.signing_key = signing_key.clone();
                    }
                    report.sessions += 1;
                    if !report.operators.contains(operator) {
                        report.operators.push(operator.clone());
                    }
                    report
                        .timeline
                        .push(tl(format!("run started by {operator}")));
                }
                Event::RunResumed {
                    operator,
                    signing_key,
                    ..
                } => {
                    if signing_key.is_some() {
                        report.signing_key = signing_key.clone();
                    }
                    report.sessions += 1;
                    report.outcome = RunOutcome::Unfinished;
                    report.exit_code = None;
                    if !report.operators.contains(operator) {
                        report.operators.push(operator.clone());
                    }
                    report
                        .timeline
                        .push(tl(format!("run resumed by {operator}")));
                }
                Event::StepStarted {
                    step,
                    action,
                    title,
                    kind,
                } => {
                    let entry = StepReport {
                        id: step.clone(),
                        title: title.clone(),
                        action: action.clone(),
                        kind: kind.clone(),
                        status: None,
                        summary: "started, not finished".into(),
                        started: Some(r.time.clone()),
                        finished: None,
                        outputs: BTreeMap::new(),
                    };
                    match index.get(step) {
                        Some(i) => report.steps[*i] = entry,
                        None => {
                            index.insert(step.clone(), report.steps.len());
                            report.steps.push(entry);
                        }
                    }
                    report
                        .timeline
                        .push(tl(format!("step `{step}` started: {title}")));
                }
                Event::StepSkipped { step, reason } => {
                    let entry = StepReport {
                        id: step.clone(),
                        title: step.clone(),
                        action: String::new(),
                        kind: String::new(),
                        status: Some(StepStatus::Skipped),
                        summary: reason.clone(),
                        started: None,
                        finished: Some(r.time.clone()),
                        outputs: BTreeMap::new(),
                    };
                    match index.get(step) {
                        Some(i) => report.steps[*i] = entry,
                        None => {
                            index.insert(step.clone(), report.steps.len());
                            report.steps.push(entry);
                        }
                    }
                }
                Event::Preview { step, summary, .. } => {
                    report
                        .timeline
                        .push(tl(format!("`{step}` preview: {summary}")));
                }
                Event::Answer {
                    step,
                    answer,
                    reason,
                    who,
                    by,
                    ..
                } => {
                    report.decisions.push(DecisionReport {
                        time: r.time.clone(),
                        step: step.clone(),
                        answer: answer.clone(),
                        reason: reason.clone(),
                        who: who.clone(),
                        by: by.clone(),
                    });
                    let why = reason
                        .as_ref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default();
                    report
                        .timeline
                        .push(tl(format!("`{step}`: {answer} — {who}{why}")));
                }
                Event::Request { status, error, .. } => {
                    report.requests += 1;
                    if error.is_some() || status.is_some_and(|s| s >= 400) {
                        report.request_errors += 1;
                    }
                }
                Event::Note {
                    step,
                    level,
                    message,
                } => {
                    let prefix = step
                        .as_ref()
                        .map(|s| format!("`{s}`: "))
                        .unwrap_or_default();
                    report.notes.push(tl(format!("{prefix}{message}")));
                    if level != "info" {
                        report.timeline.push(tl(format!("{prefix}{message}")));
                    }
                }
                Event::Finding {
                    step,
                    severity,
                    title,
                    detail,
                } => {
                    report.severity = report.severity.max(*severity);
                    report.findings.push(FindingReport {
                        time: r.time.clone(),
                        step: step.clone(),
                        severity: *severity,
                        title: title.clone(),
                        detail: detail.clone(),
                    });
                    report
                        .timeline
                        .push(tl(format!("finding ({severity}): {title}")));
                }
                Event::Evidence { table, rows, .. } => {
                    *report.evidence_rows.entry(table.clone()).or_default() += rows.len();
                }
                Event::StepError {
                    step,
                    attempt,
                    message,
                    ..
                } => {
                    report
                        .timeline
                        .push(tl(format!("`{step}` attempt {attempt} failed: {message}")));
                }
                Event::StepFinished {
                    step,
                    status,
                    summary,
                    outputs,
                    ..
                } => {
                    if !index.contains_key(step) {
                        // Finished without starting: stopped before it began.
                        index.insert(step.clone(), report.steps.len());
                        report.steps.push(StepReport {
                            id: step.clone(),
                            title: step.clone(),
                            action: String::new(),
                            kind: String::new(),
                            status: None,
                            summary: String::new(),
                            started: None,
                            finished: None,
                            outputs: BTreeMap::new(),
                        });
                    }
                    if let Some(i) = index.get(step) {
                        let s = &mut report.steps[*i];
                        s.status = Some(*status);
                        s.summary = summary.clone();
                        s.finished = Some(r.time.clone());
                        s.outputs = outputs.clone();
                    }
                    report.timeline.push(tl(format!(
                        "step `{step}`: {} — {summary}",
                        status.as_str()
                    )));
                }
                Event::Attestation {
                    step,
                    verdict,
                    evidence,
                } => {
                    report.attestations.push(AttestationReport {
                        time: r.time.clone(),
                        step: step.clone(),
                        verdict: verdict.clone(),
                        evidence: evidence.clone(),
                    });
                    report.timeline.push(tl(format!(
                        "`{step}` check of the operator's \"done\": {verdict} — {evidence}"
                    )));
                }
                Event::Probe {
                    step,
                    round,
                    answers,
                    verdict,
                } => {
                    let codes: Vec<String> = answers
                        .iter()
                        .map(|a| {
                            format!(
                                "{} {}",
                                a.path,
                                a.code
                                    .map(|c| c.to_string())
                                    .unwrap_or_else(|| a.class.clone())
                            )
                        })
                        .collect();
                    report.timeline.push(tl(format!(
                        "`{step}` probe {round}: {verdict} ({})",
                        codes.join(", ")
                    )));
                }
                // Progress of a long scan: its findings and evidence come when it ends.
                Event::ScanBatch { .. } => {}
                Event::Interrupted { signal, step } => {
                    let at = step
                        .as_ref()
                        .map(|s| format!(" during `{s}`"))
                        .unwrap_or_default();
                    report
                        .timeline
                        .push(tl(format!("interrupted by {signal}{at}")));
                }
                Event::RunFinished {
                    outcome, exit_code, ..
                } => {
                    report.outcome = *outcome;
                    report.exit_code = Some(*exit_code);
                    report
                        .timeline
                        .push(tl(format!("run ended: {outcome} (exit code {exit_code})")));
                }
            }
        }
        report.pending = report
            .steps
            .iter()
            .filter(|s| s.status == Some(StepStatus::Pending))
            .cloned()
            .collect();
        report.chain_head = read
            .lines
            .last()
            .map(|l| journal::sha256_hex(l.text.as_bytes()))
            .unwrap_or_default();
        Some(report)
    }
}

/// Collect evidence rows per table, in journal order, borrowed from the journal: the rows are
/// moved, not copied (a week of trades is megabytes of JSON values).
pub fn evidence_tables(read: &ReadJournal) -> Tables<'_> {
    let mut tables: Tables<'_> = BTreeMap::new();
    for record in read.records() {
        if let Event::Evidence { table, rows, .. } = &record.event {
            tables.entry(table.clone()).or_default().extend(rows.iter());
        }
    }
    tables
}

/// Evidence rows per table, borrowed from the journal as read (no copies: a long pull
/// can hold many thousands of rows).
pub type Tables<'a> = BTreeMap<String, Vec<&'a Json>>;

/// Render every report file of an incident folder from its journal.
pub fn render_dir(dir: &Path) -> Result<Report, ReportError> {
    let journal_path = dir.join(journal::JOURNAL_FILE);
    // Rendering needs the parsed records and only the last line's text (the chain
    // head): read one line at a time, never the whole file at once.
    let read = journal::read_records(&journal_path).map_err(|source| ReportError::Read {
        path: journal_path.display().to_string(),
        source,
    })?;
    let incident = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("incident")
        .to_string();
    let report =
        Report::from_journal(&read, &incident).ok_or_else(|| ReportError::NotAJournal {
            path: journal_path.display().to_string(),
        })?;
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        files::write_atomic(&path, bytes).map_err(|source| ReportError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    let tables = evidence_tables(&read);
    if !tables.is_empty() {
        let evidence = dir.join(EVIDENCE_DIR);
        files::create_private_dir(&evidence).map_err(|source| ReportError::Write {
            path: evidence.display().to_string(),
            source,
        })?;
        for (table, rows) in &tables {
            write(&format!("{EVIDENCE_DIR}/{table}.csv"), csv(rows).as_bytes())?;
        }
    }
    let mut json = serde_json::to_vec_pretty(&report).expect("report serialises");
    json.push(b'\n');
    write(REPORT_JSON, &json)?;
    write(REPORT_MD, markdown::render(&report, &tables).as_bytes())?;
    let records: Vec<&Record> = read.records().collect();
    write(
        REPORT_HTML,
        html::render(&report, &tables, &records).as_bytes(),
    )?;
    support_pack(dir, &report, &tables)?;
    Ok(report)
}

pub const SUPPORT_PACK_DIR: &str = "support-pack";
pub const SUPPORT_MESSAGE: &str = "support-message.txt";

/// The folder to hand to Binance support: the message, the evidence CSVs, the
/// fingerprint and a SHA-256 manifest of it all. Built whenever there is a support
/// message; holds nothing the report does not (no key, no secret).
fn support_pack(dir: &Path, report: &Report, tables: &Tables<'_>) -> Result<(), ReportError> {
    let message = dir.join(SUPPORT_MESSAGE);
    let Ok(text) = std::fs::read(&message) else {
        return Ok(());
    };
    let pack = dir.join(SUPPORT_PACK_DIR);
    let wrap = |path: &Path, source: std::io::Error| ReportError::Write {
        path: path.display().to_string(),
        source,
    };
    files::create_private_dir(&pack).map_err(|e| wrap(&pack, e))?;
    let mut entries: Vec<(String, Vec<u8>)> = vec![(SUPPORT_MESSAGE.to_string(), text)];
    for (table, rows) in tables {
        // The coverage table is for reviewers; support gets the money and the orders.
        if matches!(
            table.as_str(),
            "coverage" | "key-permissions" | "drill-final-state"
        ) {
            continue;
        }
        entries.push((format!("{table}.csv"), csv(rows).into_bytes()));
    }
    entries.push((
        "FINGERPRINT".to_string(),
        format!(
            "{}\nSHA-256 head of the incident journal ({} events) when this pack was made. Check it with: respond report verify <incident folder> --fingerprint {}\n",
            report.chain_head,
            report.events,
            &report.chain_head[..report.chain_head.len().min(16)]
        )
        .into_bytes(),
    ));
    let mut manifest = String::new();
    for (name, bytes) in &entries {
        let path = pack.join(name);
        files::write_atomic(&path, bytes).map_err(|e| wrap(&path, e))?;
        manifest.push_str(&format!("{}  {name}\n", journal::sha256_hex(bytes)));
    }
    let path = pack.join("MANIFEST.sha256");
    files::write_atomic(&path, manifest.as_bytes()).map_err(|e| wrap(&path, e))
}

/// Rows of JSON objects as CSV; columns in order of first appearance.
pub fn csv<J: std::borrow::Borrow<Json>>(rows: &[J]) -> String {
    let mut columns: Vec<String> = Vec::new();
    for row in rows.iter().map(|r| r.borrow()) {
        if let Json::Object(map) = row {
            for k in map.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    let mut out = String::new();
    out.push_str(
        &columns
            .iter()
            .map(|c| csv_field(c))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push('\n');
    for row in rows.iter().map(|r| r.borrow()) {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match row.get(c) {
                None | Some(Json::Null) => String::new(),
                Some(Json::String(s)) => csv_field(s),
                Some(other) => csv_field(&other.to_string()),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn csv_field(s: &str) -> String {
    // A leading = + - @ would be a formula in a spreadsheet: neutralise it.
    let s = if s.starts_with(['=', '+', '@']) || (s.starts_with('-') && s.parse::<f64>().is_err()) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_quotes_and_neutralises_formulas() {
        let rows = vec![
            json!({"a": "x,y", "b": 1}),
            json!({"b": "=SUM(A1)", "c": "-5"}),
        ];
        assert_eq!(csv(&rows), "a,b,c\n\"x,y\",1,\n,'=SUM(A1),-5\n");
    }
}
