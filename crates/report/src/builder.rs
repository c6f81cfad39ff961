//! [`Report`] built one journal record at a time: a rendering reads the journal line by
//! line and hands each record here, so the journal is never held whole.
use std::collections::BTreeMap;

use super::journal::{Event, ProbeAnswer, Record, RunOutcome, Severity, StepStatus};
use super::{
    scorecard, AttestationReport, DecisionReport, FindingReport, Report, StepReport, TimelineEntry,
};

/// What the report says so far.
pub struct ReportBuilder {
    report: Report,
    /// The first `run_started` was seen (the run's settings come from it).
    started: bool,
    /// Step id → its place in `report.steps`.
    index: BTreeMap<String, usize>,
    scorer: scorecard::Scorer,
}

impl ReportBuilder {
    pub fn new(incident: &str) -> ReportBuilder {
        ReportBuilder {
            report: Report {
                incident: incident.to_string(),
                playbook: String::new(),
                origin: String::new(),
                dry_run: false,
                drill: false,
                autopilot: false,
                target: String::new(),
                key: None,
                responder_key: None,
                operators: Vec::new(),
                inputs: BTreeMap::new(),
                started: String::new(),
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
                scorecard: scorecard::Scorecard::default(),
                events: 0,
                chain_head: String::new(),
            },
            started: false,
            index: BTreeMap::new(),
            scorer: scorecard::Scorer::default(),
        }
    }

    /// Take the next record of the journal, in order.
    pub fn add(&mut self, r: &Record) {
        self.add_part(r, false);
    }

    /// The next record, or the next part of an evidence record's rows (`continued`: not
    /// its first part; see [`super::journal::parse_in_parts`]).
    pub fn add_part(&mut self, r: &Record, continued: bool) {
        self.scorer.add_part(r, continued);
        if !self.started {
            self.run_settings(r);
        }
        self.report.events = r.seq;
        self.report.last_event = r.time.clone();
        if let Some(offset) = r.offset_ms {
            self.report.clock_offset_ms = Some(offset);
        }
        self.event(r);
    }

    /// The report, given the text of the journal's last complete line (the chain head);
    /// `None` when the journal had no `run_started` record.
    pub fn finish(mut self, last_line: Option<&str>) -> Option<Report> {
        if !self.started {
            return None;
        }
        self.report.scorecard = self.scorer.finish();
        self.report.pending = self
            .report
            .steps
            .iter()
            .filter(|s| s.status == Some(StepStatus::Pending))
            .cloned()
            .collect();
        self.report.chain_head = last_line
            .map(|l| super::journal::sha256_hex(l.as_bytes()))
            .unwrap_or_default();
        Some(self.report)
    }

    /// The run's settings, from its first `run_started` record.
    fn run_settings(&mut self, first: &Record) {
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
            return;
        };
        self.started = true;
        let r = &mut self.report;
        r.playbook = playbook.clone();
        r.origin = origin.clone();
        r.dry_run = *dry_run;
        r.drill = *drill;
        r.autopilot = *drill && *yes;
        r.target = target.clone();
        r.key = key.clone();
        r.responder_key = responder_key.clone();
        r.inputs = inputs.clone();
        r.started = first.time.clone();
        // The first operator leads, before any named by records ahead of this one.
        r.operators.retain(|o| o != operator);
        r.operators.insert(0, operator.clone());
    }

    fn timeline(&mut self, r: &Record, text: String) {
        self.report.timeline.push(entry(r, text));
    }

    fn event(&mut self, r: &Record) {
        self.apply(r);
        if let Some(text) = timeline_text(&r.event) {
            self.timeline(r, text);
        }
    }

    /// What the record changes in the report, besides its line in the timeline.
    fn apply(&mut self, r: &Record) {
        match &r.event {
            Event::RunStarted {
                operator,
                signing_key,
                ..
            } => self.session(operator, signing_key.as_ref()),
            Event::RunResumed {
                operator,
                signing_key,
                ..
            } => {
                self.session(operator, signing_key.as_ref());
                self.report.outcome = RunOutcome::Unfinished;
                self.report.exit_code = None;
            }
            Event::StepStarted {
                step,
                action,
                title,
                kind,
            } => self.step_started(r, step, action, title, kind),
            Event::StepSkipped { step, reason } => self.step_skipped(r, step, reason),
            Event::Answer {
                step,
                answer,
                reason,
                who,
                by,
                ..
            } => self.answer(r, step, answer, reason.as_deref(), who, by),
            Event::Request { status, error, .. } => {
                self.report.requests += 1;
                if error.is_some() || status.is_some_and(|s| s >= 400) {
                    self.report.request_errors += 1;
                }
            }
            Event::Note { step, message, .. } => self.note(r, step.as_deref(), message),
            Event::Finding {
                step,
                severity,
                title,
                detail,
            } => self.finding(r, step, *severity, title, detail),
            Event::Evidence { table, rows, .. } => {
                *self.report.evidence_rows.entry(table.clone()).or_default() += rows.len();
            }
            Event::StepFinished {
                step,
                status,
                summary,
                outputs,
                ..
            } => self.step_finished(r, step, *status, summary, outputs),
            Event::Attestation { .. } => self.attestation(r),
            Event::RunFinished {
                outcome, exit_code, ..
            } => {
                self.report.outcome = *outcome;
                self.report.exit_code = Some(*exit_code);
            }
            Event::Preview { .. }
            | Event::StepError { .. }
            | Event::Probe { .. }
            | Event::ScanBatch { .. }
            | Event::Interrupted { .. } => {}
        }
    }

    fn note(&mut self, r: &Record, step: Option<&str>, message: &str) {
        let prefix = step.map(|s| format!("`{s}`: ")).unwrap_or_default();
        self.report
            .notes
            .push(entry(r, format!("{prefix}{message}")));
    }

    fn attestation(&mut self, r: &Record) {
        if let Event::Attestation {
            step,
            verdict,
            evidence,
        } = &r.event
        {
            self.report.attestations.push(AttestationReport {
                time: r.time.clone(),
                step: step.clone(),
                verdict: verdict.clone(),
                evidence: evidence.clone(),
            });
        }
    }

    fn finding(
        &mut self,
        r: &Record,
        step: &str,
        severity: Severity,
        title: &str,
        detail: &serde_json::Value,
    ) {
        self.report.severity = self.report.severity.max(severity);
        self.report.findings.push(FindingReport {
            time: r.time.clone(),
            step: step.to_string(),
            severity,
            title: title.to_string(),
            detail: detail.clone(),
        });
    }

    /// A session began (started or resumed): who ran it and the key that signs.
    fn session(&mut self, operator: &str, signing_key: Option<&String>) {
        if signing_key.is_some() {
            self.report.signing_key = signing_key.cloned();
        }
        self.report.sessions += 1;
        if !self.report.operators.iter().any(|o| o == operator) {
            self.report.operators.push(operator.to_string());
        }
    }

    /// Put a step's entry in place: a step run again replaces its earlier entry.
    fn set_step(&mut self, entry: StepReport) {
        match self.index.get(&entry.id) {
            Some(i) => self.report.steps[*i] = entry,
            None => {
                self.index.insert(entry.id.clone(), self.report.steps.len());
                self.report.steps.push(entry);
            }
        }
    }

    fn step_started(&mut self, r: &Record, step: &str, action: &str, title: &str, kind: &str) {
        self.set_step(StepReport {
            id: step.to_string(),
            title: title.to_string(),
            action: action.to_string(),
            kind: kind.to_string(),
            status: None,
            summary: "started, not finished".into(),
            started: Some(r.time.clone()),
            finished: None,
            outputs: BTreeMap::new(),
        });
    }

    fn step_skipped(&mut self, r: &Record, step: &str, reason: &str) {
        self.set_step(StepReport {
            id: step.to_string(),
            title: step.to_string(),
            action: String::new(),
            kind: String::new(),
            status: Some(StepStatus::Skipped),
            summary: reason.to_string(),
            started: None,
            finished: Some(r.time.clone()),
            outputs: BTreeMap::new(),
        });
    }

    fn step_finished(
        &mut self,
        r: &Record,
        step: &str,
        status: StepStatus,
        summary: &str,
        outputs: &BTreeMap<String, serde_json::Value>,
    ) {
        if !self.index.contains_key(step) {
            // Finished without starting: stopped before it began.
            self.set_step(StepReport {
                id: step.to_string(),
                title: step.to_string(),
                action: String::new(),
                kind: String::new(),
                status: None,
                summary: String::new(),
                started: None,
                finished: None,
                outputs: BTreeMap::new(),
            });
        }
        if let Some(i) = self.index.get(step) {
            let s = &mut self.report.steps[*i];
            s.status = Some(status);
            s.summary = summary.to_string();
            s.finished = Some(r.time.clone());
            s.outputs = outputs.clone();
        }
    }

    fn answer(
        &mut self,
        r: &Record,
        step: &str,
        answer: &crate::journal::Answered,
        reason: Option<&str>,
        who: &str,
        by: &str,
    ) {
        self.report.decisions.push(DecisionReport {
            time: r.time.clone(),
            step: step.to_string(),
            answer: answer.to_string(),
            reason: reason.map(str::to_string),
            who: who.to_string(),
            by: by.to_string(),
        });
    }
}

/// The record's line in the timeline, if it has one.
fn timeline_text(event: &Event) -> Option<String> {
    Some(match event {
        Event::RunStarted { operator, .. } => format!("run started by {operator}"),
        Event::RunResumed { operator, .. } => format!("run resumed by {operator}"),
        Event::StepStarted { step, title, .. } => format!("step `{step}` started: {title}"),
        Event::Preview { step, summary, .. } => format!("`{step}` preview: {summary}"),
        Event::Answer {
            step,
            answer,
            reason,
            who,
            ..
        } => {
            let why = reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            format!("`{step}`: {answer} — {who}{why}")
        }
        Event::Note {
            step,
            level,
            message,
        } if *level != crate::journal::NoteLevel::Info => {
            let prefix = step
                .as_ref()
                .map(|s| format!("`{s}`: "))
                .unwrap_or_default();
            format!("{prefix}{message}")
        }
        Event::Finding {
            severity, title, ..
        } => format!("finding ({severity}): {title}"),
        Event::StepError {
            step,
            attempt,
            message,
            ..
        } => format!("`{step}` attempt {attempt} failed: {message}"),
        Event::StepFinished {
            step,
            status,
            summary,
            ..
        } => format!("step `{step}`: {} — {summary}", status.as_str()),
        Event::Attestation {
            step,
            verdict,
            evidence,
        } => format!("`{step}` check of the operator's \"done\": {verdict} — {evidence}"),
        Event::Probe {
            step,
            round,
            answers,
            verdict,
        } => format!(
            "`{step}` probe {round}: {verdict} ({})",
            probe_codes(answers)
        ),
        Event::Interrupted { signal, step } => {
            let at = step
                .as_ref()
                .map(|s| format!(" during `{s}`"))
                .unwrap_or_default();
            format!("interrupted by {signal}{at}")
        }
        Event::RunFinished {
            outcome, exit_code, ..
        } => format!("run ended: {outcome} (exit code {exit_code})"),
        // Progress of a long scan: its findings and evidence come when it ends.
        Event::ScanBatch { .. } => return None,
        Event::Note { .. } | Event::Request { .. } | Event::Evidence { .. } => return None,
        Event::StepSkipped { .. } => return None,
    })
}

fn entry(r: &Record, text: String) -> TimelineEntry {
    TimelineEntry {
        time: r.time.clone(),
        server_time: r.server_time.clone(),
        text,
    }
}

/// Each probe's path and answer: its code, or its class when there was none.
fn probe_codes(answers: &[ProbeAnswer]) -> String {
    answers
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
        .collect::<Vec<_>>()
        .join(", ")
}
