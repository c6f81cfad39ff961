//! The incident record: the journal (source of truth) and everything rendered from it —
//! `report.md` for people, `report.json` for machines, `report.html` for a browser,
//! `evidence/*.csv`. One renderer, used whenever a run stops and by the `report.write`
//! action.
mod builder;
pub mod evidence;
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

pub use builder::ReportBuilder;
pub use evidence::Tables;
use journal::{Event, ReadJournal, RunOutcome, Severity, StepStatus};

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

impl DecisionReport {
    /// Who answered, with what answered for them when it was not the operator.
    pub fn who_words(&self) -> String {
        if self.by == "operator" {
            self.who.clone()
        } else {
            format!("{} ({})", self.who, self.by)
        }
    }
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

    /// The report of a journal read whole (`report verify`); a rendering streams the
    /// journal into [`ReportBuilder`] instead.
    pub fn from_journal(read: &ReadJournal, incident: &str) -> Option<Report> {
        let mut builder = ReportBuilder::new(incident);
        for record in read.records() {
            builder.add(record);
        }
        builder.finish(read.lines.last().map(|l| l.text.as_str()))
    }
}

/// Everything the renderings take from the journal, gathered in one pass over it.
struct Gathered {
    report: Report,
    tables: Tables,
    marks: Vec<html::Mark>,
}

/// Read the journal one line at a time, handing each record to the report, the evidence
/// tables and the timeline's marks, and keeping only the last line's text (the chain
/// head): the journal is never held whole, as text or as records.
fn gather(journal_path: &Path, incident: &str) -> Result<Gathered, ReportError> {
    use std::io::BufRead;
    let read_error = |source| ReportError::Read {
        path: journal_path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(journal_path).map_err(read_error)?;
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, file);
    let mut builder = ReportBuilder::new(incident);
    let mut tables = Tables::new();
    let mut marks = html::Marks::default();
    let mut line = Vec::new();
    let mut last = Vec::new();
    let mut any_line = false;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(read_error)? == 0 {
            break;
        }
        if line.pop() != Some(b'\n') {
            // Torn by a crash mid-write: not part of the record.
            break;
        }
        std::mem::swap(&mut line, &mut last);
        any_line = true;
        let text = String::from_utf8_lossy(&last);
        // Not a record: `report verify` names it; the rendering goes on without it.
        let _ = journal::parse_in_parts(&text, |record, continued| {
            builder.add_part(record, continued);
            if let Event::Evidence { table, rows, .. } = &record.event {
                evidence::add(&mut tables, table, rows);
            }
            marks.add(record);
        });
    }
    let last = any_line.then(|| String::from_utf8_lossy(&last).into_owned());
    let report = builder
        .finish(last.as_deref())
        .ok_or_else(|| ReportError::NotAJournal {
            path: journal_path.display().to_string(),
        })?;
    Ok(Gathered {
        report,
        tables,
        marks: marks.finish(),
    })
}

/// Render every report file of an incident folder from its journal.
pub fn render_dir(dir: &Path) -> Result<Report, ReportError> {
    let journal_path = dir.join(journal::JOURNAL_FILE);
    let incident = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("incident")
        .to_string();
    let Gathered {
        report,
        tables,
        marks,
    } = gather(&journal_path, &incident)?;
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        files::write_atomic(&path, bytes).map_err(|source| ReportError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    if !tables.is_empty() {
        let evidence = dir.join(EVIDENCE_DIR);
        files::create_private_dir(&evidence).map_err(|source| ReportError::Write {
            path: evidence.display().to_string(),
            source,
        })?;
        for (table, rows) in &tables {
            write(
                &format!("{EVIDENCE_DIR}/{table}.csv"),
                rows.csv().as_bytes(),
            )?;
        }
    }
    write(REPORT_MD, markdown::render(&report, &tables).as_bytes())?;
    write(
        REPORT_HTML,
        html::render(&report, &tables, &marks).as_bytes(),
    )?;
    drop(marks);
    support_pack(dir, &report, &tables)?;
    // Last: a report.json with the journal's chain head says every file above is
    // rendered from that journal (see `render_dir_if_changed`).
    let mut json = serde_json::to_vec_pretty(&report).expect("report serialises");
    json.push(b'\n');
    write(REPORT_JSON, &json)?;
    Ok(report)
}

/// Render the incident folder again unless its `report.json` already covers the
/// journal as it stands (the same chain head): after a run, the report is rendered
/// once more only when something was journaled after it. `Ok(false)`: it was current.
pub fn render_dir_if_changed(dir: &Path) -> Result<bool, ReportError> {
    #[derive(Deserialize)]
    struct Rendered {
        chain_head: String,
    }
    let rendered = std::fs::read(dir.join(REPORT_JSON))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Rendered>(&bytes).ok());
    let journal_path = dir.join(journal::JOURNAL_FILE);
    let head = journal::chain_head(&journal_path).map_err(|source| ReportError::Read {
        path: journal_path.display().to_string(),
        source,
    })?;
    if rendered.is_some_and(|r| Some(r.chain_head) == head) {
        return Ok(false);
    }
    render_dir(dir).map(|_| true)
}

pub const SUPPORT_PACK_DIR: &str = "support-pack";
pub const SUPPORT_MESSAGE: &str = "support-message.txt";

/// The folder to hand to Binance support: the message, the evidence CSVs, the
/// fingerprint and a SHA-256 manifest of it all. Built whenever there is a support
/// message; holds nothing the report does not (no key, no secret).
fn support_pack(dir: &Path, report: &Report, tables: &Tables) -> Result<(), ReportError> {
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
    let mut manifest = String::new();
    // One file at a time: written, hashed into the manifest, then dropped.
    let mut put = |name: &str, bytes: &[u8]| {
        let path = pack.join(name);
        files::write_atomic(&path, bytes).map_err(|e| wrap(&path, e))?;
        manifest.push_str(&format!("{}  {name}\n", journal::sha256_hex(bytes)));
        Ok::<(), ReportError>(())
    };
    put(SUPPORT_MESSAGE, &text)?;
    for (table, rows) in tables {
        // The coverage table is for reviewers; support gets the money and the orders.
        if matches!(
            table.as_str(),
            "coverage" | "key-permissions" | "drill-final-state"
        ) {
            continue;
        }
        put(&format!("{table}.csv"), rows.csv().as_bytes())?;
    }
    put(
        "FINGERPRINT",
        format!(
            "{}\nSHA-256 head of the incident journal ({} events) when this pack was made. Check it with: respond report verify <incident folder> --fingerprint {}\n",
            report.chain_head,
            report.events,
            &report.chain_head[..report.chain_head.len().min(16)]
        )
        .as_bytes(),
    )?;
    let path = pack.join("MANIFEST.sha256");
    files::write_atomic(&path, manifest.as_bytes()).map_err(|e| wrap(&path, e))
}

/// Rows of JSON objects as CSV; columns in order of first appearance.
pub fn csv<J: std::borrow::Borrow<Json>>(rows: &[J]) -> String {
    let mut csv = evidence::Csv::default();
    for row in rows {
        csv.push(row.borrow());
    }
    csv.render()
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

    /// A journal of a finished drill with `batches` evidence records of `per` trades each.
    fn journal_with_trades(dir: &Path, batches: usize, per: usize) -> Vec<Json> {
        let journal = crate::verify::tests::start_journal(dir);
        let mut all = Vec::new();
        for b in 0..batches {
            let rows: Vec<Json> = (0..per)
                .map(|i| {
                    let n = b * per + i;
                    let mut row = json!({"market": "spot", "symbol": "BTCUSDT", "id": n,
                        "qty": "1", "price": "64000", "time": 1_795_000_000_000u64 + n as u64});
                    // A column that first appears late: earlier rows get it empty.
                    if n == per + 1 {
                        row["flags"] = json!("off-market");
                    }
                    row
                })
                .collect();
            all.extend(rows.iter().cloned());
            journal
                .record(Event::Evidence {
                    step: "trades".into(),
                    table: "trades".into(),
                    rows,
                })
                .unwrap();
        }
        journal
            .record(Event::Evidence {
                step: "end".into(),
                table: "drill-final-state".into(),
                rows: vec![json!({"totalOpen": 3})],
            })
            .unwrap();
        journal
            .record(Event::RunFinished {
                outcome: RunOutcome::Completed,
                exit_code: 0,
                pending: vec![],
            })
            .unwrap();
        all
    }

    #[test]
    fn a_report_is_rendered_again_only_when_the_journal_grew() {
        let dir = tempfile::tempdir().unwrap();
        journal_with_trades(dir.path(), 1, 3);
        // Nothing rendered yet, then current, then behind a journal that grew.
        assert!(render_dir_if_changed(dir.path()).unwrap());
        assert!(!render_dir_if_changed(dir.path()).unwrap());
        let read = journal::read(&dir.path().join(journal::JOURNAL_FILE)).unwrap();
        let last = read.lines.last().unwrap();
        let journal = journal::Journal::append_to(
            &dir.path().join(journal::JOURNAL_FILE),
            read.records().count() as u64,
            &last.text,
        )
        .unwrap();
        journal
            .record(Event::Note {
                step: None,
                level: crate::journal::NoteLevel::Warn,
                message: "an answer that came in late".into(),
            })
            .unwrap();
        assert!(render_dir_if_changed(dir.path()).unwrap());
        let md = std::fs::read_to_string(dir.path().join(REPORT_MD)).unwrap();
        assert!(md.contains("an answer that came in late"), "{md}");
    }

    #[test]
    fn rendering_streams_the_journal_and_keeps_only_the_rows_it_shows() {
        let dir = tempfile::tempdir().unwrap();
        // More rows on one line than are parsed at once.
        let rows = journal_with_trades(dir.path(), 2, journal::ROWS_AT_ONCE + 44);
        let total = rows.len();
        let report = render_dir(dir.path()).unwrap();
        // The same report as from the journal read whole.
        let read = journal::read(&dir.path().join(journal::JOURNAL_FILE)).unwrap();
        let incident = dir.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(
            Some(&report),
            Report::from_journal(&read, incident).as_ref()
        );
        assert_eq!(report.evidence_rows["trades"], total);
        assert_eq!(report.scorecard.open_orders_at_end, Some(3));
        // Every row in the CSV, columns in order of first appearance.
        let text = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(text("evidence/trades.csv"), csv(&rows));
        // Only the first rows inline; the renderers were given no more than that.
        let more = |shown: usize| format!("… {} more rows in the CSV.", total - shown);
        assert!(text(REPORT_MD).contains(&more(20)));
        assert!(text(REPORT_HTML).contains(&more(200)));
        let mut tables = Tables::new();
        for chunk in rows.chunks(150) {
            evidence::add(&mut tables, "trades", chunk);
        }
        assert_eq!(tables["trades"].len(), total);
        assert_eq!(tables["trades"].head().len(), evidence::KEPT_ROWS);
    }
}
