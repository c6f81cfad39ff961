//! `report.md`: the incident for people — summary first, then decisions, findings,
//! evidence and the full timeline.
use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value as Json;

use super::journal::StepStatus;
use super::Report;

/// Rows of each evidence table shown inline; the CSV has them all.
const INLINE_ROWS: usize = 20;

fn esc(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(r: &Report, tables: &BTreeMap<String, Vec<Json>>) -> String {
    let mut out = String::new();
    let mut marks = Vec::new();
    if r.drill {
        marks.push(if r.autopilot {
            "DRILL (autopilot)"
        } else {
            "DRILL"
        });
    }
    if r.dry_run {
        marks.push("DRY RUN");
    }
    let mark = if marks.is_empty() {
        String::new()
    } else {
        format!(" — {}", marks.join(", "))
    };
    let _ = writeln!(out, "# Incident report: {}{mark}\n", r.playbook);
    if r.drill {
        let _ = writeln!(
            out,
            "> This was a drill against the simulated exchange. No real account was touched.\n"
        );
    }
    if r.dry_run {
        let _ = writeln!(
            out,
            "> This was a dry run: everything was read, nothing that changes state was sent.\n"
        );
    }
    if r.outcome == "interrupted" || r.outcome == "unfinished" {
        let _ = writeln!(
            out,
            "> **{}** — resume with: `respond resume{}{} {}`\n",
            if r.outcome == "interrupted" {
                "Interrupted"
            } else {
                "Unfinished (the run stopped without closing its record)"
            },
            if r.drill { " --drill" } else { "" },
            if r.dry_run { " --dry-run" } else { "" },
            r.incident
        );
    }

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

    if !r.decisions.is_empty() {
        let _ = writeln!(out, "## Operator decisions\n");
        let _ = writeln!(
            out,
            "| Time (UTC) | Step | Answer | Who | Reason |\n|---|---|---|---|---|"
        );
        for d in &r.decisions {
            let who = if d.by == "operator" {
                d.who.clone()
            } else {
                format!("{} ({})", d.who, d.by)
            };
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

    if !tables.is_empty() {
        let _ = writeln!(out, "## Evidence\n");
        for (name, rows) in tables {
            let _ = writeln!(
                out,
                "### {name} ({} rows, `evidence/{name}.csv`)\n",
                rows.len()
            );
            if rows.is_empty() {
                let _ = writeln!(out, "None.\n");
                continue;
            }
            let columns: Vec<String> = match &rows[0] {
                Json::Object(m) => m.keys().cloned().collect(),
                _ => vec![],
            };
            let _ = writeln!(out, "| {} |", columns.join(" | "));
            let _ = writeln!(out, "|{}|", vec!["---"; columns.len()].join("|"));
            for row in rows.iter().take(INLINE_ROWS) {
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

    let _ = writeln!(out, "## Timeline (UTC)\n");
    for t in &r.timeline {
        let _ = writeln!(out, "- `{}` {}", t.time, esc(&t.text));
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "---\n{} requests to the exchange ({} answered with an error). Rendered from `journal.jsonl`; check it with `respond report verify {}`.",
        r.requests, r.request_errors, r.incident
    );
    out
}

/// The first 16 hex digits: enough to compare by eye or paste into chat.
pub fn short(hash: &str) -> &str {
    &hash[..hash.len().min(16)]
}
