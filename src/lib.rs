//! respond: an incident-response runbook executor for a leaked exchange API key.
//!
//! `main.rs` only turns [`run`] into an exit code; everything else lives here so tests
//! can call it.
#![forbid(unsafe_code)]

pub mod actions;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod operator;
pub mod playbook;
pub mod report;
pub mod secret;
pub(crate) mod sim_command;

#[cfg(test)]
mod engine_tests;

/// The member crates, under the names the rest of the binary knows them by.
pub use respond_binance as exchange;
pub use respond_diagnostic as diagnostic;
pub use respond_pem as pem;
pub use respond_sim as sim;

use std::ffi::OsString;
use std::fmt::Write as _;

use clap::Parser;

use crate::actions::Registry;
use crate::cli::{Cli, Command, ReportCommand, SimCommand};
use crate::config::RunConfig;
use crate::diagnostic::Diagnostics;
use crate::engine::Interrupt;
use crate::error::{exit, Error};
use crate::playbook::Playbook;

/// Containment sends every cancel at once, one connection per request in flight (and in
/// a drill the simulator in this process holds the other end of each): let the process
/// open as many files as the system allows it, rather than the 1,024 many shells start
/// with. Best effort: where it cannot be raised, the weight budget and `--concurrency`
/// still bound the burst.
fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            let wanted = hard.min(65_536);
            if soft < wanted {
                let _ = setrlimit(Resource::RLIMIT_NOFILE, wanted, hard);
            }
        }
    }
}

/// Parse `args`, run the command, print any error, and return the process exit code.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    raise_open_file_limit();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = err.print();
            return code;
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            report_error(&err);
            err.exit_code()
        }
    }
}

fn dispatch(cli: Cli) -> Result<u8, Error> {
    let registry = crate::actions::builtin();
    match cli.command {
        Command::Validate { playbooks } => validate(&playbooks, &registry),
        Command::Plan { playbook } => {
            let playbook = Playbook::load(&playbook, &registry)?;
            print_out(&plan(&playbook, &registry));
            Ok(exit::OK)
        }
        Command::Actions => {
            print_out(&list_actions(&registry));
            Ok(exit::OK)
        }
        Command::Run(args) => {
            let playbook = Playbook::load(&args.playbook, &registry)?;
            let inputs = config::parse_input_pairs(&args.inputs)?;
            let mut cfg = RunConfig::from_options(&args.run, inputs, cli.verbose, cli.quiet)?;
            cfg.new_incident = args.new_incident;
            run_session(&playbook, &registry, &cfg)
        }
        Command::Sim(SimCommand::Serve(args)) => sim_command::serve_command(&args),
        Command::Sim(SimCommand::Validate { scenarios }) => {
            sim_command::validate_command(&scenarios)
        }
        Command::Compromised(args) => {
            let playbook = match &args.playbook {
                Some(path) => Playbook::load_file(path, &registry)?,
                None => Playbook::builtin("compromised", &registry)?,
            };
            // The flags map to the playbook's inputs of the same name.
            let mut inputs = Vec::new();
            if let Some(since) = &args.since {
                inputs.push(("since".to_string(), since.clone()));
            }
            let previous = match &args.since_incident {
                Some(dir) => Some(engine::previous::PreviousIncident::load(dir)?),
                None => None,
            };
            if let Some(previous) = &previous {
                let since = previous
                    .ended
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                inputs.push(("since".to_string(), since));
            }
            if !args.symbols.is_empty() {
                inputs.push(("symbols".to_string(), args.symbols.join(",")));
            }
            if let Some(path) = &args.known_addresses {
                inputs.push(("known_addresses".to_string(), path.display().to_string()));
            }
            let mut cfg = RunConfig::from_options(&args.run, inputs, cli.verbose, cli.quiet)?;
            cfg.previous = previous;
            cfg.new_incident = args.new_incident;
            run_session(&playbook, &registry, &cfg)
        }
        Command::Resume(args) => {
            let mut cfg = RunConfig::from_options(&args.run, Vec::new(), cli.verbose, cli.quiet)?;
            cfg.new_base_url = args
                .new_base_url
                .as_deref()
                .map(|url| config::check_base_url("--new-base-url", url))
                .transpose()?;
            let runtime = runtime()?;
            let session = runtime.block_on(async {
                let interrupt = Interrupt::install();
                let operator = engine::session::default_operator(&cfg);
                engine::session::resume(&args.dir, &registry, &cfg, operator, interrupt).await
            })?;
            finish(runtime, &session.dir);
            if !cfg.json {
                println!("{}", session.dir.display());
            }
            Ok(session.result.exit_code)
        }
        Command::Report(ReportCommand::Verify { dir, fingerprint }) => {
            verify(&dir, fingerprint.as_deref())
        }
        Command::Audit(args) => {
            let playbook = Playbook::builtin("audit", &registry)?;
            playbook::parse_duration(&args.rotation).map_err(|e| {
                Error::usage_hint(format!("--rotation: {e}"), "e.g. --rotation 90d")
            })?;
            // The flags map to the built-in audit playbook's inputs of the same name.
            let inputs = vec![
                ("purpose".to_string(), args.purpose.clone()),
                ("rotation".to_string(), args.rotation.clone()),
            ];
            let cfg = RunConfig::from_options(&args.run, inputs, cli.verbose, cli.quiet)?;
            run_session(&playbook, &registry, &cfg)
        }
        Command::DrillHistory { report_dir, json } => drill_history(&report_dir, json),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "respond", &mut buf);
            print_out(&String::from_utf8_lossy(&buf));
            Ok(exit::OK)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut buf)
                .map_err(|e| Error::Internal(format!("cannot render the man page: {e}")))?;
            print_out(&String::from_utf8_lossy(&buf));
            Ok(exit::OK)
        }
    }
}

/// Commands that talk to the network or wait for signals get a runtime; the others
/// (validate, plan, actions, --version) start without one.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))
}

fn run_session(playbook: &Playbook, registry: &Registry, cfg: &RunConfig) -> Result<u8, Error> {
    let runtime = runtime()?;
    let session = runtime.block_on(async {
        let interrupt = Interrupt::install();
        let operator = engine::session::default_operator(cfg);
        engine::session::run(playbook, registry, cfg, operator, interrupt).await
    })?;
    finish(runtime, &session.dir);
    if !cfg.json {
        println!("{}", session.dir.display());
    }
    Ok(session.result.exit_code)
}

/// After a session: stop every task first. A request still in flight when the run
/// stopped (Ctrl-C in the middle of the cancels) can journal its answer after the
/// report was rendered; the journal keeps it (nothing is lost), and the report is then
/// rendered once more from the journal, so `report verify` finds them in agreement.
fn finish(runtime: tokio::runtime::Runtime, dir: &std::path::Path) {
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    if let Err(e) = report::render_dir(dir) {
        eprintln!("warning: could not render the report again: {e}");
    }
}

fn validate(paths: &[std::path::PathBuf], registry: &Registry) -> Result<u8, Error> {
    let mut all = Diagnostics::default();
    let mut ok = Vec::new();
    for path in paths {
        match Playbook::load_file(path, registry) {
            Ok(p) => ok.push(format!("{}: ok ({} steps)", path.display(), p.steps.len())),
            Err(Error::Invalid(d)) => all.extend(d),
            Err(other) => return Err(other),
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
fn verify(dir: &std::path::Path, fingerprint: Option<&str>) -> Result<u8, Error> {
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
fn drill_history(report_dir: &std::path::Path, json: bool) -> Result<u8, Error> {
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
    print_out(&out);
    Ok(exit::OK)
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

/// Write to stdout; a closed pipe (`respond plan x | head`) is not an error.
pub fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

/// Print an error the way every command does: `error: ...` then an optional hint.
pub fn report_error(err: &Error) {
    match err {
        // Diagnostics are already one `FILE:LINE:COLUMN: message` per line.
        Error::Invalid(diags) => {
            eprintln!("{diags}");
            eprintln!(
                "error: {} problem{} found; nothing was run",
                diags.len(),
                if diags.len() == 1 { "" } else { "s" }
            );
        }
        _ => eprintln!("error: {err}"),
    }
    if let Some(hint) = err.hint() {
        eprintln!("hint: {hint}");
    }
}
