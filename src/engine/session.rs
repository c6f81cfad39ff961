//! One run of a playbook, end to end: resolve inputs, create the incident folder and
//! journal, set up the operator and services, walk the steps, render the report.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Engine, Interrupt, RunResult, Services};
use crate::actions::{Registry, RunShared};
use crate::config::{RunConfig, Target};
use crate::error::{exit, Error};
use crate::operator::{self, Level, NonInteractive, Operator, Terminal};
use crate::playbook::{InputType, Playbook};
use crate::report::journal::{self, Event, Journal};
use crate::report::{self, files};

/// Inputs as recorded: every declared input with its value (given, else default).
/// `since` inputs are fixed to an RFC 3339 instant so a resumed run uses the same window.
pub fn resolve_inputs(
    playbook: &Playbook,
    given: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (name, _) in given {
        if playbook.input(name).is_none() {
            let declared: Vec<&str> = playbook.inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(Error::usage_hint(
                format!("playbook `{}` has no input `{name}`", playbook.name),
                if declared.is_empty() {
                    "this playbook takes no inputs".to_string()
                } else {
                    format!("its inputs are: {}", declared.join(", "))
                },
            ));
        }
    }
    for def in &playbook.inputs {
        let value = given
            .iter()
            .rev()
            .find(|(n, _)| *n == def.name)
            .map(|(_, v)| v.clone());
        let Some(value) = value.or_else(|| def.default.clone()) else {
            if def.required {
                return Err(Error::usage_hint(
                    format!("playbook `{}` needs input `{}`", playbook.name, def.name),
                    format!("add --input {}=VALUE ({})", def.name, def.ty.as_str()),
                ));
            }
            continue;
        };
        let bad = |e: String| Error::usage(format!("input `{}`: {e}", def.name));
        let value = match def.ty {
            InputType::Since => crate::config::parse_since(&value, now)
                .map_err(bad)?
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            InputType::File => {
                if !value.is_empty() {
                    std::fs::metadata(&value)
                        .map_err(|e| bad(format!("cannot read file `{value}`: {e}")))?;
                }
                value
            }
            ty => {
                crate::playbook::load_check_input(ty, &value).map_err(bad)?;
                value
            }
        };
        out.insert(def.name.clone(), value);
    }
    Ok(out)
}

fn target_name(target: &Target) -> String {
    match target {
        Target::Production => "Binance production".into(),
        Target::Testnet => "Binance testnet".into(),
        Target::BaseUrl(url) => url.clone(),
        Target::Drill { scenario } => match scenario {
            Some(path) => format!("simulator (scenario {})", path.display()),
            None => "simulator (built-in scenario leaked-key)".into(),
        },
    }
}

/// What a finished session leaves behind.
#[derive(Debug)]
pub struct SessionResult {
    pub dir: PathBuf,
    pub result: RunResult,
}

/// The operator to use: the terminal when one is attached, else the non-interactive one.
pub fn default_operator(cfg: &RunConfig) -> Arc<dyn Operator> {
    if operator::terminal_attached() {
        Arc::new(Terminal::new(cfg.verbose, cfg.quiet))
    } else {
        Arc::new(NonInteractive::new(cfg.verbose, cfg.quiet))
    }
}

/// Run a playbook from start to end and render its report.
pub async fn run(
    playbook: &Playbook,
    registry: &Registry,
    cfg: &RunConfig,
    operator: Arc<dyn Operator>,
    interrupt: Interrupt,
) -> Result<SessionResult, Error> {
    let started_at = Utc::now();
    let inputs = resolve_inputs(playbook, &cfg.inputs, started_at)?;
    let services = Services::default();
    let key_masked: Option<String> = None;

    let mut name = format!("{}-{}", started_at.format("%Y%m%dT%H%M%SZ"), playbook.name);
    if cfg.drill() {
        name.push_str("-drill");
    }
    if cfg.dry_run {
        name.push_str("-dry-run");
    }
    let dir = files::create_incident_dir(&cfg.report_dir, &name)
        .map_err(|e| Error::io("cannot create the incident folder in", &cfg.report_dir, e))?;
    let copy = dir.join(report::PLAYBOOK_COPY);
    files::write_atomic(&copy, playbook.text.as_bytes())
        .map_err(|e| Error::io("cannot write", &copy, e))?;
    let journal_path = dir.join(journal::JOURNAL_FILE);
    let journal = Journal::create(
        &journal_path,
        journal::genesis_hash(&playbook.text, &inputs),
    )
    .map_err(|e| Error::Internal(e.to_string()))?;
    let who = operator::who(cfg.operator.as_deref());
    journal
        .record(Event::RunStarted {
            playbook: playbook.name.clone(),
            origin: playbook.origin.clone(),
            playbook_sha256: journal::sha256_hex(playbook.text.as_bytes()),
            inputs: inputs.clone(),
            dry_run: cfg.dry_run,
            drill: cfg.drill(),
            yes: cfg.yes,
            target: target_name(&cfg.target),
            key: key_masked.clone(),
            responder_key: None,
            operator: who.clone(),
            respond_version: env!("CARGO_PKG_VERSION").to_string(),
        })
        .map_err(|e| Error::Internal(e.to_string()))?;

    let mut banner = format!(
        "respond: {} — incident folder {}",
        playbook.title.as_deref().unwrap_or(&playbook.name),
        dir.display()
    );
    if cfg.drill() {
        banner.push_str("  [DRILL]");
    }
    if cfg.dry_run {
        banner.push_str("  [DRY RUN: nothing that changes state will be sent]");
    }
    operator.say(Level::Heading, &banner);

    let shared = Arc::new(RunShared {
        dry_run: cfg.dry_run,
        drill: cfg.drill(),
        autopilot: cfg.drill() && cfg.yes,
        journal: journal.clone(),
        operator: operator.clone(),
        incident_dir: dir.clone(),
        started_at,
        key_masked,
        services,
    });
    let engine = Engine::new(playbook, registry, shared, inputs, cfg.yes, who, interrupt);
    let outcome = engine.run().await;
    // Whatever happened, the report is rendered from what the journal holds.
    let rendered = report::render_dir(&dir);
    let result = outcome.map_err(|e| Error::Internal(e.to_string()))?;
    let report = rendered.map_err(|e| Error::Internal(e.to_string()))?;
    closing_summary(operator.as_ref(), &dir, &result, &report);
    Ok(SessionResult { dir, result })
}

fn closing_summary(
    operator: &dyn Operator,
    dir: &std::path::Path,
    result: &RunResult,
    report: &report::Report,
) {
    let level = match result.exit_code {
        exit::OK => Level::Success,
        _ => Level::Warn,
    };
    operator.say(Level::Heading, "\n── Summary");
    operator.say(
        level,
        &format!(
            "outcome: {} (exit code {})",
            report.outcome, result.exit_code
        ),
    );
    if !report.findings.is_empty() {
        operator.say(
            Level::Info,
            &format!(
                "severity: {}; {} finding(s)",
                report.severity,
                report.findings.len()
            ),
        );
    }
    for step in &report.pending {
        operator.say(
            Level::Warn,
            &format!("still to do: {} ({})", step.title, step.id),
        );
    }
    if report.outcome == "interrupted" {
        operator.say(
            Level::Warn,
            &format!("resume with: respond resume {}", dir.display()),
        );
    }
    operator.say(
        Level::Info,
        &format!("report: {}", dir.join(report::REPORT_MD).display()),
    );
    operator.say(
        Level::Info,
        &format!(
            "fingerprint: {}",
            &report.chain_head[..report.chain_head.len().min(16)]
        ),
    );
}
