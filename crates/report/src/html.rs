//! `report.html`: the incident for people who open it in a browser. One self-contained
//! file — inline CSS and SVG, no script, nothing loaded from anywhere (its
//! Content-Security-Policy forbids it) — rendered from the journal by the same
//! `render_dir` as `report.md`: summary, findings, a timeline, steps, decisions, evidence.
//! Every string is escaped: exchange data (addresses, notes, client order ids) is input
//! from strangers.
mod timeline;

use std::fmt::Write;

use serde_json::Value as Json;

pub use timeline::{Mark, Marks};

use super::journal::{Severity, StepStatus};
use super::{Report, EVIDENCE_DIR};

/// Rows of each evidence table shown inline; the CSV has them all.
const INLINE_ROWS: usize = 200;
const _: () = assert!(INLINE_ROWS <= super::evidence::KEPT_ROWS);

/// Escape text for HTML element content and quoted attribute values alike.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light; --fg:#1f2937; --muted:#6b7280; --line:#e5e7eb; --bg:#ffffff; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto; padding: 24px; max-width: 1200px; }
h1 { font-size: 24px; margin: 0 0 8px; }
h2 { font-size: 19px; margin: 32px 0 10px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 20px 0 8px; }
code, .mono, td.time { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
td.time { white-space: nowrap; }
.banner { padding: 10px 14px; border-radius: 6px; margin: 8px 0; font-weight: 600; }
.banner.drill { background: #e0f2fe; border: 1px solid #7dd3fc; }
.banner.dry-run { background: #fef9c3; border: 1px solid #fde047; }
.banner.unfinished { background: #fee2e2; border: 1px solid #fca5a5; }
pre.message { white-space: pre-wrap; background: #f8fafc; border: 1px solid #e2e8f0; border-radius: 6px; padding: 10px 14px; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f9fafb; }
table.summary th { width: 160px; }
.scroll { overflow-x: auto; max-width: 100%; }
.sev { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 700; font-size: 13px; background: #e5e7eb; }
.sev.critical { background: #7f1d1d; color: #fff; } .sev.high { background: #dc2626; color: #fff; }
.sev.medium { background: #f59e0b; color: #111; } .sev.low { background: #fde68a; color: #111; }
.status-failed, .status-aborted, .status-interrupted, .status-stopped { color: #b91c1c; font-weight: 700; }
.status-pending { color: #b45309; font-weight: 700; }
.status-done { color: #15803d; }
.muted { color: var(--muted); }
ul.todo li { margin: 4px 0; }
svg.timeline { width: 100%; height: auto; display: block; background: #fcfcfd; border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; }
svg .lane { stroke: #e5e7eb; stroke-width: 1; }
svg .grid { stroke: #eef0f3; stroke-width: 1; }
svg .tick { font-size: 11px; fill: #6b7280; text-anchor: middle; }
svg .lane-label { font-size: 12px; fill: #374151; text-anchor: end; }
svg .count { font-size: 11px; font-weight: 700; fill: #111827; }
svg .response-band { fill: #fde68a; opacity: 0.45; }
svg .mark .shape { stroke: #fff; stroke-width: 1; }
svg .mark .ring { fill: none; stroke-width: 1.5; }
svg .mark.flagged .shape { stroke: #111827; stroke-width: 2.5; }
svg .trade .shape { fill: #2563eb; }
svg .withdrawal .shape { fill: #dc2626; }
svg .deposit .shape { fill: #16a34a; }
svg .transfer .shape { fill: #9333ea; }
svg .pay .shape { fill: #ea580c; }
svg .cancel .shape { stroke: #0e7490; stroke-width: 2.5; fill: none; } svg .cancel .ring { stroke: #0e7490; }
svg .operator .shape { fill: #ca8a04; } svg .operator .ring { stroke: #ca8a04; }
svg .step rect { fill: #94a3b8; } svg .step.done rect { fill: #22c55e; }
svg .step.failed rect, svg .step.aborted rect, svg .step.interrupted rect, svg .step.stopped rect { fill: #dc2626; }
svg .step.pending rect { fill: #f59e0b; } svg .step.skipped rect, svg .step.would-do rect { fill: #cbd5e1; }
.legend span { display: inline-block; margin-right: 14px; font-size: 13px; }
.legend i { display: inline-block; width: 11px; height: 11px; border-radius: 6px; margin-right: 4px; vertical-align: -1px; }
tr.flagged td { background: #fef2f2; }
details { margin: 8px 0; } summary { cursor: pointer; color: #1d4ed8; }
footer { margin-top: 32px; color: var(--muted); font-size: 13px; }
@media print { body { padding: 0; max-width: none; } details { display: block; } .scroll { overflow: visible; } }
"#;

fn status_class(status: Option<StepStatus>) -> &'static str {
    match status {
        Some(StepStatus::Ok) => "status-done",
        Some(StepStatus::Failed) => "status-failed",
        Some(StepStatus::Aborted) => "status-aborted",
        Some(StepStatus::Interrupted) => "status-interrupted",
        Some(StepStatus::Stopped) => "status-stopped",
        Some(StepStatus::Pending) => "status-pending",
        _ => "",
    }
}

fn severity_badge(severity: Severity) -> String {
    format!("<span class=\"sev {0}\">{0}</span>", esc(severity.as_str()))
}

fn cell(value: Option<&Json>) -> String {
    match value {
        Some(Json::String(s)) => esc(s),
        Some(Json::Null) | None => String::new(),
        Some(other) => esc(&other.to_string()),
    }
}

/// The whole page.
pub fn render(r: &Report, tables: &super::Tables, marks: &[Mark]) -> String {
    let mut out = String::new();
    header(&mut out, r);
    summary(&mut out, r);
    findings(&mut out, r);
    support_message(&mut out, r);
    timeline_section(&mut out, r, marks);
    steps(&mut out, r);
    decisions(&mut out, r);
    evidence(&mut out, tables);
    log(&mut out, r);
    let _ = writeln!(
        out,
        "<footer>{} requests to the exchange ({} answered with an error). Rendered from <code>journal.jsonl</code>; check it with <code>respond report verify {}</code>. Fingerprint <code>{}</code>.</footer>\n</body>\n</html>",
        r.requests,
        r.request_errors,
        esc(&r.incident),
        esc(&r.chain_head)
    );
    out
}

/// The document head, the title and the banners.
fn header(out: &mut String, r: &Report) {
    let mark = r.mode_mark();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"respond\">\n\
         <title>Incident report: {}{} — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&r.playbook),
        esc(&mark),
        esc(&r.incident)
    );
    let _ = writeln!(
        out,
        "<header>\n<h1>Incident report: {}{}</h1>\n<div class=\"muted mono\">{}</div>",
        esc(&r.playbook),
        esc(&mark),
        esc(&r.incident)
    );
    for banner in r.banners() {
        let command = banner
            .command
            .map(|c| format!(" <code>{}</code>", esc(&c)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<div class=\"banner {}\"><strong>{}</strong> — {}{command}</div>",
            banner.kind,
            esc(&banner.lead),
            esc(&banner.text)
        );
    }
    out.push_str("</header>\n");
}

/// The incident window and the response drawn as SVG, and every mark as a list.
fn timeline_section(out: &mut String, r: &Report, marks: &[Mark]) {
    let spans = timeline::spans(r);
    out.push_str("<section id=\"timeline\">\n<h2>Timeline (UTC)</h2>\n");
    if let Some(svg) = timeline::window_svg(r, marks) {
        out.push_str(
            "<p class=\"legend\"><span><i style=\"background:#2563eb\"></i>trade</span><span><i style=\"background:#dc2626\"></i>withdrawal</span><span><i style=\"background:#16a34a\"></i>deposit</span><span><i style=\"background:#9333ea\"></i>transfer</span><span><i style=\"background:#ea580c\"></i>Binance Pay</span><span><i style=\"background:#0e7490\"></i>cancellation</span><span><i style=\"background:#ca8a04\"></i>operator action</span><span class=\"muted\">A black outline marks something suspicious; hover a mark for details; a number counts marks drawn as one.</span></p>\n",
        );
        let window = r
            .inputs
            .get("since")
            .map(|s| format!(" since {}", esc(s)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<h3>The incident window{window}</h3>\n<p class=\"muted\">The shaded band is the response itself, drawn in detail below.</p>\n{svg}"
        );
    }
    if let Some(svg) = timeline::response_svg(r, marks, &spans) {
        let _ = writeln!(out, "<h3>The response, step by step</h3>\n{svg}");
    }
    if !marks.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>Every mark as a list ({})</summary>\n{}</details>",
            marks.len(),
            timeline::marks_table(marks)
        );
    }
    out.push_str("</section>\n");
}

fn summary(out: &mut String, r: &Report) {
    out.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<table class=\"summary\">\n");
    let mut row = |name: &str, value: String| {
        let _ = writeln!(out, "<tr><th>{name}</th><td>{value}</td></tr>");
    };
    row("Severity", severity_badge(r.severity));
    row(
        "Outcome",
        format!(
            "{}{}",
            esc(r.outcome.as_str()),
            r.exit_code
                .map(|c| format!(" (exit code {c})"))
                .unwrap_or_default()
        ),
    );
    if let Some(key) = &r.key {
        row("Key", format!("<code>{}</code>", esc(key)));
    }
    if let Some(key) = &r.responder_key {
        row("Responder key", format!("<code>{}</code>", esc(key)));
    }
    if let Some(since) = r.inputs.get("since") {
        row(
            "Review window",
            format!("{} → {}", esc(since), esc(&r.last_event)),
        );
    }
    row("Started", esc(&r.started));
    row("Last event", esc(&r.last_event));
    row("Target", esc(&r.target));
    row("Operator", esc(&r.operators.join(", ")));
    row("Sessions", r.sessions.to_string());
    row(
        "Journal",
        format!(
            "{} events, fingerprint <code>{}</code>",
            r.events,
            esc(&r.chain_head[..r.chain_head.len().min(16)])
        ),
    );
    out.push_str("</table>\n");
    if !r.pending.is_empty() {
        out.push_str("<h3>Still to do</h3>\n<ul class=\"todo\">\n");
        for s in &r.pending {
            let _ = writeln!(
                out,
                "<li>☐ <strong>{}</strong> (<code>{}</code>): {}</li>",
                esc(&s.title),
                esc(&s.id),
                esc(&s.summary)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

fn findings(out: &mut String, r: &Report) {
    if r.findings.is_empty() {
        return;
    }
    out.push_str("<section id=\"findings\">\n<h2>Findings</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>Time (UTC)</th><th>Severity</th><th>Finding</th><th>Step</th></tr></thead><tbody>\n");
    for f in &r.findings {
        let _ = writeln!(
            out,
            "<tr><td class=\"time\">{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            esc(&f.time),
            severity_badge(f.severity),
            esc(&f.title),
            esc(&f.step)
        );
    }
    out.push_str("</tbody></table></div>\n</section>\n");
}

fn support_message(out: &mut String, r: &Report) {
    let Some(message) = r.support_message() else {
        return;
    };
    let _ = writeln!(
        out,
        "<section id=\"support-message\">\n<h2>Message for Binance support</h2>\n<p class=\"muted\">Also in <code>{}</code>: review it, then send it from the Binance app or website.</p>\n<pre class=\"message\">{}</pre>\n</section>",
        super::SUPPORT_MESSAGE,
        esc(message.trim_end())
    );
}

fn steps(out: &mut String, r: &Report) {
    out.push_str("<section id=\"steps\">\n<h2>Steps</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>Step</th><th>Status</th><th>Result</th></tr></thead><tbody>\n");
    for s in &r.steps {
        let status = s
            .status
            .map(|st| st.as_str())
            .unwrap_or("started, not finished");
        let _ = writeln!(
            out,
            "<tr><td>{} (<code>{}</code>)</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            esc(&s.title),
            esc(&s.id),
            status_class(s.status),
            esc(status),
            esc(&s.summary)
        );
    }
    out.push_str("</tbody></table></div>\n</section>\n");
}

fn decisions(out: &mut String, r: &Report) {
    if r.decisions.is_empty() {
        return;
    }
    out.push_str("<section id=\"decisions\">\n<h2>Operator decisions</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>Time (UTC)</th><th>Step</th><th>Answer</th><th>Who</th><th>Reason</th></tr></thead><tbody>\n");
    for d in &r.decisions {
        let who = d.who_words();
        let _ = writeln!(
            out,
            "<tr><td class=\"time\">{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&d.time),
            esc(&d.step),
            esc(&d.answer),
            esc(&who),
            esc(d.reason.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody></table></div>\n</section>\n");
}

fn evidence(out: &mut String, tables: &super::Tables) {
    if tables.is_empty() {
        return;
    }
    out.push_str("<section id=\"evidence\">\n<h2>Evidence</h2>\n");
    for (name, rows) in tables {
        let _ = writeln!(
            out,
            "<h3 id=\"evidence-{0}\">{0} ({1} row{2}, <code>{3}/{0}.csv</code>)</h3>",
            esc(name),
            rows.len(),
            if rows.len() == 1 { "" } else { "s" },
            EVIDENCE_DIR
        );
        if rows.is_empty() {
            out.push_str("<p class=\"muted\">None.</p>\n");
            continue;
        }
        // Columns in order of first appearance, like the CSV.
        let columns = rows.columns();
        out.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
        for c in columns {
            let _ = write!(out, "<th>{}</th>", esc(c));
        }
        out.push_str("</tr></thead><tbody>\n");
        for row in rows.head().iter().take(INLINE_ROWS) {
            let flagged = match (row.get("flags"), row.get("knownAddress")) {
                (Some(Json::String(f)), _) if !f.is_empty() => true,
                (_, Some(Json::Bool(false))) => true,
                _ => false,
            };
            out.push_str(if flagged {
                "<tr class=\"flagged\">"
            } else {
                "<tr>"
            });
            for c in columns {
                let _ = write!(out, "<td>{}</td>", cell(row.get(c)));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody></table></div>\n");
        if rows.len() > INLINE_ROWS {
            let _ = writeln!(
                out,
                "<p class=\"muted\">… {} more rows in the CSV.</p>",
                rows.len() - INLINE_ROWS
            );
        }
    }
    out.push_str("</section>\n");
}

fn log(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "<section id=\"log\">\n<h2>Full log (UTC)</h2>\n<details><summary>{} entries</summary>\n<div class=\"scroll\"><table><tbody>",
        r.timeline.len()
    );
    for t in &r.timeline {
        let _ = writeln!(
            out,
            "<tr><td class=\"time\">{}</td><td>{}</td></tr>",
            esc(&t.time),
            esc(&t.text)
        );
    }
    out.push_str("</tbody></table></div>\n</details>\n</section>\n");
}

#[cfg(test)]
mod tests;
