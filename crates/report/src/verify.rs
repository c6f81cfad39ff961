//! `respond report verify`: re-walk the journal's hash chain and check that
//! `report.json` is what the journal renders to. Names the first line that does not
//! match and why; a torn last line (a crash mid-write) is not tampering.
use std::path::Path;

use super::journal::{self, genesis_hash, sha256_hex, Event, ReadJournal, Record};
use super::{Report, PLAYBOOK_COPY, REPORT_JSON};

/// The verdict.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        events: u64,
        first: String,
        last: String,
        head: String,
        /// Things worth saying that are not tampering (a torn last line, no report yet).
        notes: Vec<String>,
    },
    Altered {
        /// 1-based line of the journal (0: not about one line).
        line: usize,
        reason: String,
    },
}

pub fn verify_dir(dir: &Path) -> Result<Verdict, String> {
    verify_dir_with(dir, None)
}

/// Also check a fingerprint taken earlier, and `signature.json` when there is one.
pub fn verify_dir_with(dir: &Path, fingerprint: Option<&str>) -> Result<Verdict, String> {
    let path = dir.join(journal::JOURNAL_FILE);
    let read = journal::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let playbook = std::fs::read_to_string(dir.join(PLAYBOOK_COPY)).ok();
    let report_json = std::fs::read_to_string(dir.join(REPORT_JSON)).ok();
    let incident = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("incident");
    let verdict = verify(&read, playbook.as_deref(), report_json.as_deref(), incident);
    let Verdict::Intact {
        events,
        first,
        last,
        head,
        mut notes,
    } = verdict
    else {
        return Ok(verdict);
    };
    let hashes: Vec<String> = read
        .lines
        .iter()
        .map(|l| sha256_hex(l.text.as_bytes()))
        .collect();
    if let Some(given) = fingerprint {
        if let Some(altered) = check_fingerprint(&hashes, given, &mut notes)? {
            return Ok(altered);
        }
    }
    if let Some(altered) = check_signature(dir, &read, &hashes, &mut notes) {
        return Ok(altered);
    }
    Ok(Verdict::Intact {
        events,
        first,
        last,
        head,
        notes,
    })
}

/// A fingerprint taken earlier must be the hash of one of the lines: the last, or an
/// earlier one when a resumed run added events since.
fn check_fingerprint(
    hashes: &[String],
    given: &str,
    notes: &mut Vec<String>,
) -> Result<Option<Verdict>, String> {
    let given = given.trim().to_ascii_lowercase();
    if given.len() < 8 || !given.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "--fingerprint `{given}` is not a fingerprint: give at least 8 hex digits"
        ));
    }
    match hashes.iter().position(|h| h.starts_with(&given)) {
        Some(i) if i + 1 == hashes.len() => notes.push("the fingerprint matches the record as it stands".into()),
        Some(i) => notes.push(format!(
            "the fingerprint matches the record as of event {}; {} event(s) were added since (a resumed run)",
            i + 1,
            hashes.len() - i - 1
        )),
        None => {
            return Ok(Some(Verdict::Altered {
                line: 0,
                reason: format!(
                    "the fingerprint {given} is not in this record: the folder was rewritten after the fingerprint was taken, or it belongs to another incident"
                ),
            }))
        }
    }
    Ok(None)
}

/// `signature.json`, when there is one: valid, over a chain head of this journal, and by
/// the key the journal named for signing up to that point.
fn check_signature(
    dir: &Path,
    read: &ReadJournal,
    hashes: &[String],
    notes: &mut Vec<String>,
) -> Option<Verdict> {
    let text = std::fs::read_to_string(dir.join(super::sign::SIGNATURE_FILE)).ok()?;
    let altered = |reason: String| Some(Verdict::Altered { line: 0, reason });
    let file: super::sign::SignatureFile = match serde_json::from_str(&text) {
        Ok(f) => f,
        Err(e) => return altered(format!("signature.json is not valid: {e}")),
    };
    if let Err(why) = super::sign::check(&file) {
        return altered(format!("signature.json: {why}"));
    }
    let Some(index) = hashes.iter().position(|h| *h == file.chain_head) else {
        return altered("signature.json signs a chain head that is not in this journal".into());
    };
    // The key the journal itself named for signing, up to the signed point.
    let named = read
        .records()
        .take(index + 1)
        .fold(None, |named, r| match &r.event {
            Event::RunStarted { signing_key, .. } | Event::RunResumed { signing_key, .. } => {
                signing_key.clone().or(named)
            }
            _ => named,
        });
    if named.as_deref() != Some(file.public_key.as_str()) {
        return altered(format!(
            "signature.json is signed by {} but the journal names {} as the signing key: the folder was re-signed with another key",
            file.public_key,
            named.unwrap_or_else(|| "no key".into())
        ));
    }
    notes.push(format!(
        "signed by {} over the first {} event(s)",
        file.public_key,
        index + 1
    ));
    None
}

pub fn verify(
    read: &ReadJournal,
    playbook: Option<&str>,
    report_json: Option<&str>,
    incident: &str,
) -> Verdict {
    let mut notes = Vec::new();
    if read.lines.is_empty() {
        return Verdict::Altered {
            line: 1,
            reason: "the journal is empty".into(),
        };
    }
    let records = match parsed(read) {
        Ok(records) => records,
        Err(altered) => return altered,
    };
    if let Some(altered) = check_chain(read, &records) {
        return altered;
    }
    if let Some(altered) = check_anchor(&records, playbook) {
        return altered;
    }
    if let Some((line, reason)) = check_verdicts(read, &records) {
        return Verdict::Altered { line, reason };
    }
    if let Some(tail) = &read.torn_tail {
        notes.push(format!(
            "the last line ({} bytes) was torn by a crash mid-write; it is not part of the record and not tampering",
            tail.len()
        ));
    }
    if let Some(altered) = check_report(read, &records, report_json, incident, &mut notes) {
        return altered;
    }
    Verdict::Intact {
        events: records.len() as u64,
        first: records[0].time.clone(),
        last: records[records.len() - 1].time.clone(),
        head: sha256_hex(read.lines[read.lines.len() - 1].text.as_bytes()),
        notes,
    }
}

/// Every line a record; the first that is not is named.
fn parsed(read: &ReadJournal) -> Result<Vec<&Record>, Verdict> {
    read.lines
        .iter()
        .map(|line| {
            line.record.as_ref().map_err(|e| Verdict::Altered {
                line: line.number,
                reason: format!(
                    "line {} is not a journal record (edited or cut short): {e}",
                    line.number
                ),
            })
        })
        .collect()
}

/// Sequence numbers and links, line by line: the first break is named.
fn check_chain(read: &ReadJournal, records: &[&Record]) -> Option<Verdict> {
    for (i, r) in records.iter().enumerate() {
        let number = i + 1;
        let expected = number as u64;
        if r.seq != expected {
            return Some(Verdict::Altered {
                line: number,
                reason: sequence_break(records, i),
            });
        }
        if i > 0 && r.prev != sha256_hex(read.lines[i - 1].text.as_bytes()) {
            return Some(Verdict::Altered {
                line: i,
                reason: format!(
                    "line {i} was edited: its hash does not match what line {number} recorded"
                ),
            });
        }
    }
    None
}

/// Why line `i + 1` does not carry the sequence number `i + 1`.
fn sequence_break(records: &[&Record], i: usize) -> String {
    let number = i + 1;
    let expected = number as u64;
    let r = records[i];
    let moved =
        records.iter().any(|o| o.seq == expected) || records[..i].iter().any(|o| o.seq == r.seq);
    if moved {
        format!("line {number} has sequence number {} where {expected} was expected: lines were reordered or duplicated", r.seq)
    } else if r.seq > expected {
        format!(
            "line {number} has sequence number {} where {expected} was expected: {} line(s) before it were removed",
            r.seq,
            r.seq - expected
        )
    } else {
        format!("line {number} has sequence number {} where {expected} was expected: lines were reordered or duplicated", r.seq)
    }
}

/// The anchor: the playbook as run and the inputs.
fn check_anchor(records: &[&Record], playbook: Option<&str>) -> Option<Verdict> {
    let Event::RunStarted {
        inputs,
        playbook_sha256,
        ..
    } = &records[0].event
    else {
        return Some(Verdict::Altered {
            line: 1,
            reason: "line 1 is not the run_started record".into(),
        });
    };
    let Some(text) = playbook else {
        return Some(Verdict::Altered {
            line: 0,
            reason: format!("{PLAYBOOK_COPY} is missing from the incident folder"),
        });
    };
    if sha256_hex(text.as_bytes()) != *playbook_sha256 {
        return Some(Verdict::Altered {
            line: 1,
            reason: format!("{PLAYBOOK_COPY} is not the playbook that was run (its SHA-256 differs from line 1)"),
        });
    }
    if genesis_hash(text, inputs) != records[0].prev {
        return Some(Verdict::Altered {
            line: 1,
            reason:
                "line 1 was edited: it no longer matches the playbook and inputs it was anchored to"
                    .into(),
        });
    }
    None
}

/// `report.json` must be what the journal renders to.
fn check_report(
    read: &ReadJournal,
    records: &[&Record],
    report_json: Option<&str>,
    incident: &str,
    notes: &mut Vec<String>,
) -> Option<Verdict> {
    let expected = Report::from_journal(read, incident);
    let altered = |line: usize, reason: String| Some(Verdict::Altered { line, reason });
    match (report_json, expected) {
        (None, _) => {
            if records
                .iter()
                .any(|r| matches!(r.event, Event::RunFinished { .. }))
            {
                return altered(
                    0,
                    format!("{REPORT_JSON} is missing although the run finished"),
                );
            }
            notes.push(
                "no report.json yet: the run did not finish (resume it to render the report)"
                    .into(),
            );
            None
        }
        (Some(text), Some(expected)) => {
            let actual: serde_json::Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(e) => return altered(0, format!("{REPORT_JSON} is not valid JSON: {e}")),
            };
            let expected = serde_json::to_value(&expected).expect("report serialises");
            let field = first_difference(&expected, &actual, "")?;
            altered(0, report_difference(&actual, &field, records.len()))
        }
        (Some(_), None) => altered(1, "the journal has no run_started record".into()),
    }
}

/// Why `report.json` differs from the journal's rendering at `field`.
fn report_difference(actual: &serde_json::Value, field: &str, records: usize) -> String {
    let covered = actual.get("events").and_then(|v| v.as_u64());
    match covered {
        Some(n) if n > records as u64 => format!(
            "{REPORT_JSON} covers {n} events but the journal holds {records}: the journal was truncated"
        ),
        _ if field == "chain_head" => format!(
            "the last journal line (line {records}) was edited, or {REPORT_JSON} was: the report recorded a different chain head"
        ),
        _ => format!("{REPORT_JSON} does not match the journal (first difference at `{field}`)"),
    }
}

/// Every `verify_revoked` verdict must follow from the probe answers journaled before
/// it: each round's verdict from its answers, and the final one from the last rounds.
fn check_verdicts(read: &ReadJournal, records: &[&Record]) -> Option<(usize, String)> {
    use crate::verdict::{verdict_of, Probe, Seen};
    let mut actions: std::collections::HashMap<&str, &str> = Default::default();
    // What triage saw, then what each step's own earlier rounds saw (as the step did).
    let mut triage = Seen::default();
    let mut seen: std::collections::HashMap<&str, Seen> = Default::default();
    let mut rounds: std::collections::HashMap<&str, Vec<String>> = Default::default();
    for (i, r) in records.iter().enumerate() {
        let line = read.lines[i].number;
        match &r.event {
            Event::StepStarted { step, action, .. } => {
                actions.insert(step, action);
                rounds.remove(step.as_str());
                seen.remove(step.as_str());
            }
            Event::StepFinished { step, outputs, .. }
                if actions.get(step.as_str()) == Some(&"binance.key_permissions") =>
            {
                triage = Seen::from_triage(Some(outputs));
            }
            Event::Probe {
                step,
                round,
                answers,
                verdict,
            } => {
                let answers: Vec<(&str, Probe)> = answers
                    .iter()
                    .map(|a| (a.path.as_str(), Probe::from_class(&a.class, a.code)))
                    .collect();
                let step_seen = seen.entry(step).or_insert_with(|| triage.clone());
                let derived = verdict_of(&answers, step_seen).as_str();
                // verify_revoked's rounds (1, 2, ...) build on each other; a manual
                // step's check (round 0) stands alone.
                if *round > 0 {
                    for (path, p) in &answers {
                        step_seen.note(path, p);
                    }
                }
                if derived != verdict {
                    return Some((line, format!("line {line}: probe round {round} of `{step}` says `{verdict}`, but its answers make it `{derived}`")));
                }
                if *round > 0 {
                    rounds.entry(step).or_default().push(verdict.clone());
                }
            }
            Event::StepFinished { step, outputs, .. }
                if actions.get(step.as_str()) == Some(&"binance.verify_revoked") =>
            {
                let Some(verdict) = outputs.get("verdict").and_then(|v| v.as_str()) else {
                    continue;
                };
                let needed = outputs.get("needed").and_then(|v| v.as_u64()).unwrap_or(1) as usize;
                let seen = rounds.get(step.as_str()).cloned().unwrap_or_default();
                let last = &seen[seen.len().saturating_sub(needed)..];
                let follows = !last.is_empty()
                    && last.iter().all(|v| v == verdict)
                    && (verdict == "alive" || verdict == "unknown" || last.len() >= needed);
                if !follows {
                    return Some((
                        line,
                        format!("line {line}: `{step}` concluded `{verdict}`, which its journaled probes ({}) do not support", if seen.is_empty() { "none".to_string() } else { seen.join(", ") }),
                    ));
                }
            }
            _ => {}
        }
    }
    None
}

/// The path of the first place two JSON values differ.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match y.get(k) {
                    None => return Some(p),
                    Some(w) => {
                        if let Some(d) = first_difference(v, w, &p) {
                            return Some(d);
                        }
                    }
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{path}.{k}"))
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                if let Some(d) = first_difference(v, w, &format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| format!("{path} (length {} vs {})", x.len(), y.len()))
        }
        _ => (a != b).then(|| path.to_string()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::journal::{Journal, JOURNAL_FILE};

    /// A playbook copy and a journal anchored to it, with its run_started record.
    pub(crate) fn start_journal(dir: &Path) -> Journal {
        let playbook = "version: 1\nname: t\nsteps: []\n";
        std::fs::write(dir.join(PLAYBOOK_COPY), playbook).unwrap();
        let inputs = BTreeMap::from([("since".to_string(), "2026-11-21T00:00:00Z".to_string())]);
        let journal =
            Journal::create(&dir.join(JOURNAL_FILE), genesis_hash(playbook, &inputs)).unwrap();
        journal
            .record(Event::RunStarted {
                playbook: "t".into(),
                origin: "t.yaml".into(),
                playbook_sha256: sha256_hex(playbook.as_bytes()),
                inputs,
                dry_run: false,
                drill: true,
                yes: true,
                target: "simulator".into(),
                key: Some("AbCd…wXyZ".into()),
                responder_key: None,
                operator: "tester".into(),
                respond_version: "0".into(),
                signing_key: None,
                target_spec: None,
                key_fingerprint: None,
            })
            .unwrap();
        journal
    }

    /// An incident folder with a finished run of `n` notes, rendered.
    /// Close the journal with a completed run and render the folder's reports.
    fn finish(journal: &Journal, dir: &Path) {
        journal
            .record(Event::RunFinished {
                outcome: crate::journal::RunOutcome::Completed,
                exit_code: 0,
                pending: vec![],
            })
            .unwrap();
        crate::render_dir(dir).unwrap();
    }

    fn incident(n: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let journal = start_journal(dir.path());
        for i in 0..n {
            journal
                .record(Event::Note {
                    step: None,
                    level: crate::journal::NoteLevel::Info,
                    message: format!("note {i}"),
                })
                .unwrap();
        }
        finish(&journal, dir.path());
        dir
    }

    fn lines(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join(JOURNAL_FILE))
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn write_lines(dir: &Path, lines: &[String]) {
        std::fs::write(dir.join(JOURNAL_FILE), lines.join("\n") + "\n").unwrap();
    }

    fn altered(dir: &Path) -> (usize, String) {
        match verify_dir(dir).unwrap() {
            Verdict::Altered { line, reason } => (line, reason),
            other => panic!("expected altered, got {other:?}"),
        }
    }

    #[test]
    fn an_untouched_incident_is_intact() {
        let dir = incident(3);
        match verify_dir(dir.path()).unwrap() {
            Verdict::Intact { events, notes, .. } => {
                assert_eq!(events, 5);
                assert!(notes.is_empty(), "{notes:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_edited_line_is_named() {
        let dir = incident(3);
        let mut l = lines(dir.path());
        l[2] = l[2].replace("note 1", "note X");
        write_lines(dir.path(), &l);
        let (line, reason) = altered(dir.path());
        assert_eq!(line, 3);
        assert!(reason.contains("edited"), "{reason}");
    }

    #[test]
    fn an_edited_last_line_shows_in_the_report_check() {
        let dir = incident(3);
        let mut l = lines(dir.path());
        let last = l.len() - 1;
        l[last] = l[last].replace("\"exit_code\":0", "\"exit_code\":1");
        write_lines(dir.path(), &l);
        let (_, reason) = altered(dir.path());
        assert!(reason.contains("report.json"), "{reason}");
    }

    #[test]
    fn a_removed_line_is_named() {
        let dir = incident(3);
        let mut l = lines(dir.path());
        l.remove(2);
        write_lines(dir.path(), &l);
        let (line, reason) = altered(dir.path());
        assert_eq!(line, 3);
        assert!(reason.contains("removed"), "{reason}");
    }

    #[test]
    fn reordered_lines_are_named() {
        let dir = incident(3);
        let mut l = lines(dir.path());
        l.swap(2, 3);
        write_lines(dir.path(), &l);
        let (line, reason) = altered(dir.path());
        assert_eq!(line, 3);
        assert!(reason.contains("reordered"), "{reason}");
    }

    #[test]
    fn a_line_cut_in_the_middle_is_named() {
        let dir = incident(3);
        let mut l = lines(dir.path());
        l[2].truncate(40);
        write_lines(dir.path(), &l);
        let (line, reason) = altered(dir.path());
        assert_eq!(line, 3);
        assert!(reason.contains("cut short"), "{reason}");
    }

    #[test]
    fn a_truncated_end_disagrees_with_the_report() {
        let dir = incident(3);
        let l = lines(dir.path());
        write_lines(dir.path(), &l[..3]);
        let (_, reason) = altered(dir.path());
        assert!(reason.contains("truncated"), "{reason}");
    }

    #[test]
    fn a_changed_playbook_copy_breaks_the_anchor() {
        let dir = incident(1);
        std::fs::write(
            dir.path().join(PLAYBOOK_COPY),
            "version: 1\nname: other\nsteps: []\n",
        )
        .unwrap();
        let (line, reason) = altered(dir.path());
        assert_eq!(line, 1);
        assert!(reason.contains("playbook"), "{reason}");
    }

    /// A rewritten journal whose chain was recomputed still has to make sense: the
    /// verdict must follow from the probes.
    fn incident_with_probes(codes: &[(&str, Option<i64>)], verdict: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let journal = start_journal(dir.path());
        let step = |id: &str, action: &str| Event::StepStarted {
            step: id.into(),
            action: action.into(),
            title: id.into(),
            kind: "verify".into(),
        };
        journal
            .record(step("triage", "binance.key_permissions"))
            .unwrap();
        journal
            .record(Event::StepFinished {
                step: "triage".into(),
                status: crate::journal::StepStatus::Ok,
                summary: "live".into(),
                outputs: BTreeMap::from([("live".to_string(), serde_json::json!(true))]),
                elapsed_ms: 1,
            })
            .unwrap();
        journal
            .record(step("verify", "binance.verify_revoked"))
            .unwrap();
        for round in 1..=3 {
            let answers = codes
                .iter()
                .map(|(class, code)| crate::journal::ProbeAnswer {
                    path: "/api/v3/account".into(),
                    code: *code,
                    class: class.to_string(),
                })
                .collect();
            let probes: Vec<_> = codes
                .iter()
                .map(|(c, code)| crate::verdict::Probe::from_class(c, *code))
                .collect();
            let v = crate::verdict::round_verdict(&probes, true)
                .as_str()
                .to_string();
            journal
                .record(Event::Probe {
                    step: "verify".into(),
                    round,
                    answers,
                    verdict: v,
                })
                .unwrap();
        }
        journal
            .record(Event::StepFinished {
                step: "verify".into(),
                status: crate::journal::StepStatus::Ok,
                summary: verdict.into(),
                outputs: BTreeMap::from([
                    ("verdict".to_string(), serde_json::json!(verdict)),
                    ("needed".to_string(), serde_json::json!(3)),
                ]),
                elapsed_ms: 1,
            })
            .unwrap();
        finish(&journal, dir.path());
        dir
    }

    #[test]
    fn a_verdict_that_follows_from_its_probes_verifies() {
        let dir = incident_with_probes(
            &[("refused", Some(-2015)), ("not_found", Some(-2008))],
            "dead",
        );
        assert!(matches!(
            verify_dir(dir.path()).unwrap(),
            Verdict::Intact { .. }
        ));
    }

    #[test]
    fn a_verdict_its_probes_do_not_support_is_named() {
        // -2015 alone is ambiguous: "dead" does not follow.
        let dir = incident_with_probes(
            &[("refused", Some(-2015)), ("refused", Some(-2015))],
            "dead",
        );
        let (_, reason) = altered(dir.path());
        assert!(reason.contains("do not support"), "{reason}");
    }

    #[test]
    fn a_torn_last_line_is_not_tampering() {
        let dir = incident(2);
        // A crash mid-write: the run never finished, so no report was rendered.
        std::fs::remove_file(dir.path().join(REPORT_JSON)).unwrap();
        let l = lines(dir.path());
        let mut text = l[..l.len() - 1].join("\n") + "\n";
        text.push_str(&l[l.len() - 1][..25]);
        std::fs::write(dir.path().join(JOURNAL_FILE), text).unwrap();
        match verify_dir(dir.path()).unwrap() {
            Verdict::Intact { notes, events, .. } => {
                assert_eq!(events, 3);
                assert!(notes.iter().any(|n| n.contains("torn")), "{notes:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}
