//! `report.md`: the incident for people — summary first, then decisions, findings,
//! evidence and the full timeline.
use std::fmt::Write;

use serde_json::Value as Json;

use super::journal::StepStatus;
use super::Report;

/// Rows of each evidence table shown inline; the CSV has them all.
const INLINE_ROWS: usize = 20;
const _: () = assert!(INLINE_ROWS <= super::evidence::KEPT_ROWS);

fn esc(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(r: &Report, tables: &super::Tables) -> String {
    let mut out = String::new();
    let mark = r.mode_mark();
    let _ = writeln!(out, "# Incident report: {}{mark}\n", r.playbook);
    for banner in r.banners() {
        let command = banner
            .command
            .map(|c| format!(" `{c}`"))
            .unwrap_or_default();
        let _ = writeln!(out, "> **{}** — {}{command}\n", banner.lead, banner.text);
    }
    summary(&mut out, r);
    scorecard(&mut out, r);
    findings(&mut out, r);
    support_message(&mut out, r);
    decisions(&mut out, r);
    coverage(&mut out, tables);
    evidence(&mut out, tables);
    timeline(&mut out, r);
    out
}

/// Severity, outcome, key, times, pending and the steps.
fn summary(out: &mut String, r: &Report) {
    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| Severity | **{}** |", r.severity);
    let _ = writeln!(
        out,
        "| Outcome | {}{} |",
        r.outcome,
        r.exit_code
            .map(|c| format!(" (exit code {c})"))
            .unwrap_or_default()
    );
    if let Some(key) = &r.key {
        let _ = writeln!(out, "| Key | `{key}` |");
    }
    if let Some(key) = &r.responder_key {
        let _ = writeln!(out, "| Responder key | `{key}` |");
    }
    if let Some(since) = r.inputs.get("since") {
        let _ = writeln!(out, "| Review window | {since} → {} |", r.last_event);
    }
    let _ = writeln!(out, "| Started | {} |", r.started);
    let _ = writeln!(out, "| Last event | {} |", r.last_event);
    let _ = writeln!(out, "| Target | {} |", esc(&r.target));
    let _ = writeln!(out, "| Operator | {} |", esc(&r.operators.join(", ")));
    let _ = writeln!(out, "| Sessions | {} |", r.sessions);
    let _ = writeln!(
        out,
        "| Journal | {} events, fingerprint `{}` |",
        r.events,
        short(&r.chain_head)
    );
    let _ = writeln!(out);

    if !r.pending.is_empty() {
        let _ = writeln!(out, "### Still to do\n");
        for s in &r.pending {
            let _ = writeln!(
                out,
                "- [ ] **{}** (`{}`): {}",
                esc(&s.title),
                s.id,
                esc(&s.summary)
            );
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "### Steps\n");
    let _ = writeln!(out, "| Step | Status | Result |\n|---|---|---|");
    for s in &r.steps {
        let status = s
            .status
            .map(|st| st.as_str())
            .unwrap_or("started, not finished");
        let status = match s.status {
            Some(StepStatus::Failed)
            | Some(StepStatus::Aborted)
            | Some(StepStatus::Interrupted) => format!("**{status}**"),
            _ => status.to_string(),
        };
        let _ = writeln!(
            out,
            "| {} (`{}`) | {status} | {} |",
            esc(&s.title),
            s.id,
            esc(&s.summary)
        );
    }
    let _ = writeln!(out);
}

/// A drill's scorecard.
fn scorecard(out: &mut String, r: &Report) {
    if r.drill {
        let c = &r.scorecard;
        let secs = |v: Option<f64>| v.map(|s| format!("{s:.3} s")).unwrap_or_else(|| "—".into());
        let _ = writeln!(out, "## Drill scorecard\n");
        let _ = writeln!(out, "| | |\n|---|---|");
        let _ = writeln!(
            out,
            "| Time to first cancel | {} |",
            secs(c.seconds_to_first_cancel)
        );
        let _ = writeln!(
            out,
            "| Time to containment (last cancel acknowledged) | {} |",
            secs(c.seconds_to_containment)
        );
        let _ = writeln!(
            out,
            "| Orders that slipped through after the cancel | {} |",
            c.orders_slipped_through
        );
        if let Some(open) = c.open_orders_at_end {
            let _ = writeln!(out, "| Open orders when the drill ended | {open} |");
        }
        let _ = writeln!(
            out,
            "| From \"deleted\" to proven dead | {} |",
            secs(c.seconds_deleted_to_dead)
        );
        if c.seconds_api_delete_to_dead.is_some() {
            let _ = writeln!(
                out,
                "| Deletion by API: from confirm to proven dead | {} |",
                secs(c.seconds_api_delete_to_dead)
            );
        }
        let _ = writeln!(
            out,
            "| Final verdict on the key | {} |",
            c.verdict.as_deref().unwrap_or("—")
        );
        let _ = writeln!(out, "| Evidence gaps | {} |", c.evidence_gaps);
        for p in &c.prompts {
            let _ = writeln!(
                out,
                "| Time at the `{}` prompt | {:.3} s |",
                p.step, p.seconds
            );
        }
        let _ = writeln!(out, "\nThe same numbers are `scorecard` in report.json; `respond drill-history` compares drills.\n");
    }
}

/// Findings, worst first as they were found.
fn findings(out: &mut String, r: &Report) {
    if !r.findings.is_empty() {
        let _ = writeln!(out, "## Findings\n");
        let _ = writeln!(
            out,
            "| Time (UTC) | Severity | Finding | Step |\n|---|---|---|---|"
        );
        for f in &r.findings {
            let _ = writeln!(
                out,
                "| {} | {} | {} | `{}` |",
                f.time,
                f.severity,
                esc(&f.title),
                f.step
            );
        }
        let _ = writeln!(out);
    }
}

/// The message for Binance support, as the run wrote it.
fn support_message(out: &mut String, r: &Report) {
    if let Some(message) = r.support_message() {
        let _ = writeln!(out, "## Message for Binance support\n");
        let _ = writeln!(
            out,
            "Also in `{}`: review it, then send it from the Binance app or website.\n",
            super::SUPPORT_MESSAGE
        );
        let _ = writeln!(out, "```text\n{}\n```\n", message.trim_end());
    }
}

/// Who decided what.
fn decisions(out: &mut String, r: &Report) {
    if !r.decisions.is_empty() {
        let _ = writeln!(out, "## Operator decisions\n");
        let _ = writeln!(
            out,
            "| Time (UTC) | Step | Answer | Who | Reason |\n|---|---|---|---|---|"
        );
        for d in &r.decisions {
            let who = d.who_words();
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} |",
                d.time,
                d.step,
                d.answer,
                esc(&who),
                esc(d.reason.as_deref().unwrap_or(""))
            );
        }
        let _ = writeln!(out);
    }
}

/// A coverage row's field as text.
fn cell(r: &Json, k: &str) -> String {
    r.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string()
}

/// The coverage rows whose status is `status`.
fn with_status<'a>(rows: &'a [Json], status: &str) -> Vec<&'a Json> {
    rows.iter()
        .filter(|r| cell(r, "status") == status)
        .collect()
}

/// What was read and what was not.
fn coverage(out: &mut String, tables: &super::Tables) {
    let Some(table) = tables.get("coverage") else {
        return;
    };
    let rows = table.head();
    let read = with_status(rows, "read");
    let gaps = with_status(rows, "gap");
    let not = with_status(rows, "not examined");
    let _ = writeln!(out, "## Coverage: what was and was not examined\n");
    let _ = writeln!(
        out,
        "{} source(s) read in full, {} gap(s), {} area(s) not examined. The full list is `evidence/coverage.csv`.\n",
        read.len(),
        gaps.len(),
        not.len()
    );
    // Full scans (a deep trade scan's "all N spot symbols") are worth a line each.
    let full: Vec<&Json> = read
        .into_iter()
        .filter(|r| cell(r, "scope").starts_with("all "))
        .collect();
    scanned_in_full(out, &full);
    coverage_gaps(out, &gaps);
    not_enabled(out, &with_status(rows, "not enabled"));
    if !not.is_empty() {
        let _ = writeln!(out, "Not examined:\n");
        for n in &not {
            let _ = writeln!(out, "- {}: {}", cell(n, "source"), esc(&cell(n, "detail")));
        }
        let _ = writeln!(out);
    }
}

fn scanned_in_full(out: &mut String, full: &[&Json]) {
    if full.is_empty() {
        return;
    }
    let _ = writeln!(out, "Scanned in full:\n");
    for f in full {
        let _ = writeln!(
            out,
            "- **{} {}** {} → {}: {}",
            cell(f, "source"),
            cell(f, "scope"),
            cell(f, "from"),
            cell(f, "to"),
            esc(&cell(f, "detail"))
        );
    }
    let _ = writeln!(out);
}

fn coverage_gaps(out: &mut String, gaps: &[&Json]) {
    if gaps.is_empty() {
        return;
    }
    let _ = writeln!(out, "Gaps (asked for, not read):\n");
    for g in gaps {
        let scope = cell(g, "scope");
        let window = match (cell(g, "from").as_str(), cell(g, "to").as_str()) {
            ("", _) => String::new(),
            (from, to) => format!(" {from} → {to}"),
        };
        let _ = writeln!(
            out,
            "- **{}{}**{window}: {}",
            cell(g, "source"),
            if scope.is_empty() {
                String::new()
            } else {
                format!(" {scope}")
            },
            esc(&cell(g, "detail"))
        );
    }
    let _ = writeln!(out);
}

fn not_enabled(out: &mut String, off: &[&Json]) {
    if off.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "Not enabled on this key (nothing it can have done there; not a gap):\n"
    );
    for n in off {
        let _ = writeln!(
            out,
            "- {} {}: {}",
            cell(n, "source"),
            cell(n, "scope"),
            esc(&cell(n, "detail"))
        );
    }
    let _ = writeln!(out);
}

/// The evidence tables, the first rows of each inline.
fn evidence(out: &mut String, tables: &super::Tables) {
    let shown: Vec<(&String, &super::evidence::Table)> = tables
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "coverage" | "key-permissions"))
        .collect();
    if !shown.is_empty() {
        let _ = writeln!(out, "## Evidence\n");
        for (name, rows) in shown {
            let _ = writeln!(
                out,
                "### {name} ({} rows, `evidence/{name}.csv`)\n",
                rows.len()
            );
            if rows.is_empty() {
                let _ = writeln!(out, "None.\n");
                continue;
            }
            let columns: Vec<String> = match &rows.head()[0] {
                Json::Object(m) => m.keys().cloned().collect(),
                _ => vec![],
            };
            let _ = writeln!(out, "| {} |", columns.join(" | "));
            let _ = writeln!(out, "|{}|", vec!["---"; columns.len()].join("|"));
            for row in rows.head().iter().take(INLINE_ROWS) {
                let cells: Vec<String> = columns
                    .iter()
                    .map(|c| match row.get(c) {
                        Some(Json::String(s)) => esc(s),
                        Some(Json::Null) | None => String::new(),
                        Some(other) => esc(&other.to_string()),
                    })
                    .collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
            if rows.len() > INLINE_ROWS {
                let _ = writeln!(
                    out,
                    "\n… {} more rows in the CSV.",
                    rows.len() - INLINE_ROWS
                );
            }
            let _ = writeln!(out);
        }
    }
}

/// The timeline and the closing line.
fn timeline(out: &mut String, r: &Report) {
    match r.clock_offset_ms {
        Some(offset) => {
            let _ = writeln!(out, "## Timeline (UTC, Binance's clock)\n");
            let _ = writeln!(
                out,
                "Times are the exchange's clock, to line up with Binance's own records; this machine's clock was {} ms {} it.\n",
                offset.abs(),
                if offset > 0 { "behind" } else { "ahead of" }
            );
        }
        None => {
            let _ = writeln!(out, "## Timeline (UTC)\n");
        }
    }
    for t in &r.timeline {
        let time = t.server_time.as_deref().unwrap_or(&t.time);
        let _ = writeln!(out, "- `{time}` {}", esc(&t.text));
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "---\n{} requests to the exchange ({} answered with an error). Rendered from `journal.jsonl`; check it with `respond report verify {}`.",
        r.requests, r.request_errors, r.incident
    );
}

/// The first 16 hex digits: enough to compare by eye or paste into chat.
pub fn short(hash: &str) -> &str {
    &hash[..hash.len().min(16)]
}
