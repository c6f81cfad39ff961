//! The commands that need no exchange and no runtime: `validate`, `plan`, `actions`,
//! `report verify` and `drill-history`, each reading playbooks or incident folders and
//! printing what it finds.
use std::fmt::Write as _;

use crate::actions::Registry;
use crate::diagnostic::Diagnostics;
use crate::error::{exit, Error};
use crate::playbook::{LoadError, Playbook};
use crate::{actions, engine, report, secret};

pub(crate) fn validate(paths: &[std::path::PathBuf], registry: &Registry) -> Result<u8, Error> {
    let mut all = Diagnostics::default();
    let mut ok = Vec::new();
    for path in paths {
        match Playbook::load_file(path, registry) {
            Ok(p) => ok.push(format!("{}: ok ({} steps)", path.display(), p.steps.len())),
            Err(LoadError::Invalid(d)) => all.extend(d),
            Err(other) => return Err(other.into()),
        }
    }
    for line in ok {
        println!("{line}");
    }
    if all.is_empty() {
        Ok(exit::OK)
    } else {
        Err(Error::Invalid(all))
    }
}

/// `respond report verify DIR`: 0 when intact, 1 naming the first line that is not.
pub(crate) fn verify(dir: &std::path::Path, fingerprint: Option<&str>) -> Result<u8, Error> {
    if !dir.join(report::journal::JOURNAL_FILE).is_file() {
        return Err(Error::usage_hint(
            format!(
                "{} is not an incident folder: it has no {}",
                dir.display(),
                report::journal::JOURNAL_FILE
            ),
            "give the folder a run printed, e.g. incidents/20261124T031502Z-compromised",
        ));
    }
    match report::verify::verify_dir_with(dir, fingerprint).map_err(Error::usage)? {
        report::verify::Verdict::Intact {
            events,
            first,
            last,
            head,
            notes,
        } => {
            println!("intact: {events} events, first {first}, last {last}");
            println!("fingerprint: {head}");
            for note in notes {
                println!("note: {note}");
            }
            Ok(exit::OK)
        }
        report::verify::Verdict::Altered { line, reason } => {
            let at = if line > 0 {
                format!("journal line {line}: ")
            } else {
                String::new()
            };
            println!("altered: {at}{reason}");
            Ok(exit::FAILED)
        }
    }
}

/// `respond drill-history`: every drill's scorecard, oldest first.
pub(crate) fn drill_history(report_dir: &std::path::Path, json: bool) -> Result<String, Error> {
    let entries =
        std::fs::read_dir(report_dir).map_err(|e| Error::io("cannot read", report_dir, e))?;
    let mut dirs: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("-drill"))
        })
        .collect();
    dirs.sort();
    let mut out = String::new();
    let secs = |v: Option<f64>| v.map(|s| format!("{s:.3}")).unwrap_or_else(|| "-".into());
    if !json {
        let _ = writeln!(
            out,
            "{:<44} {:>8} {:>8} {:>8} {:>6} {:>9} {:<9} {:>5}",
            "drill", "cancel1", "contain", "slipped", "open", "del→dead", "verdict", "gaps"
        );
    }
    for dir in dirs {
        let Ok(text) = std::fs::read_to_string(dir.join(report::REPORT_JSON)) else {
            continue;
        };
        let Ok(r) = serde_json::from_str::<report::Report>(&text) else {
            continue;
        };
        let c = &r.scorecard;
        if json {
            let line = serde_json::json!({ "incident": r.incident, "started": r.started, "outcome": r.outcome, "scorecard": c });
            let _ = writeln!(out, "{line}");
        } else {
            let _ = writeln!(
                out,
                "{:<44} {:>8} {:>8} {:>8} {:>6} {:>9} {:<9} {:>5}",
                r.incident,
                secs(c.seconds_to_first_cancel),
                secs(c.seconds_to_containment),
                c.orders_slipped_through,
                c.open_orders_at_end
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".into()),
                secs(c.seconds_deleted_to_dead),
                c.verdict.as_deref().unwrap_or("-"),
                c.evidence_gaps
            );
        }
    }
    Ok(out)
}

/// `respond plan`: the steps in order, marking destructive and manual ones.
pub fn plan(playbook: &Playbook, registry: &Registry) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — {}",
        playbook.name,
        playbook.title.as_deref().unwrap_or("")
    );
    if !playbook.inputs.is_empty() {
        let _ = writeln!(out, "\ninputs:");
        for i in &playbook.inputs {
            let default = i
                .default
                .as_deref()
                .map(|d| format!(" (default {d})"))
                .unwrap_or_default();
            let _ = writeln!(out, "  {} : {}{default}", i.name, i.ty.as_str());
        }
    }
    let _ = writeln!(out, "\nsteps:");
    // Steps that read at the same time: each names the first of its phase.
    let mut beside = std::collections::HashMap::new();
    for phase in engine::overlap::phases(playbook, registry) {
        for n in phase.clone().skip(1) {
            beside.insert(n, &playbook.steps[phase.start].id);
        }
    }
    for (n, step) in playbook.steps.iter().enumerate() {
        let spec = registry.spec(&step.uses).expect("validated");
        let mark = match spec.kind {
            actions::Kind::Destructive => "DESTRUCTIVE — previewed, then asks yes/skip/abort",
            actions::Kind::Manual => "MANUAL — a person does it, then done/skip/abort",
            actions::Kind::Verify => "verify",
            actions::Kind::Evidence => "read-only",
            actions::Kind::Local => "local",
        };
        let _ = writeln!(
            out,
            "{:>3}. {:<22} {}  [{}]",
            n + 1,
            step.id,
            step.display_title(),
            mark
        );
        let _ = writeln!(
            out,
            "       uses {}{}",
            step.uses,
            if step.role == secret::Role::Responder {
                " as responder"
            } else {
                ""
            }
        );
        if let Some(when) = &step.when_text {
            let _ = writeln!(out, "       when {}", when.trim());
        }
        if let Some(first) = beside.get(&n) {
            let _ = writeln!(
                out,
                "       reads at the same time as `{first}` and the steps between"
            );
        }
    }
    out
}

/// `respond actions`: every action with its inputs, outputs and kind.
pub fn list_actions(registry: &Registry) -> String {
    let mut out = String::new();
    for spec in registry.specs() {
        let kind = engine::kind_name(spec.kind);
        let _ = writeln!(
            out,
            "{}  [{kind}{}]",
            spec.name,
            if spec.destructive() {
                ", asks first"
            } else {
                ""
            }
        );
        let _ = writeln!(out, "    {}", spec.description);
        for input in spec.inputs {
            let req = if input.required { ", required" } else { "" };
            let default = input
                .default
                .map(|d| format!(", default {d}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    with {}: {}{req}{default} — {}",
                input.name,
                input.ty.describe(),
                input.description
            );
        }
        for output in spec.outputs {
            let _ = writeln!(out, "    output {} — {}", output.name, output.description);
        }
        let _ = writeln!(out);
    }
    out
}
