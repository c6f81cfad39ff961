//! respond: an incident-response runbook executor for a leaked exchange API key.
//!
//! `main.rs` only turns [`run`] into an exit code; everything else lives here so tests
//! can call it.
#![forbid(unsafe_code)]

pub mod actions;
pub mod cli;
pub mod config;
pub mod error;
mod memory;
pub(crate) mod offline;
pub mod operator;
pub mod secret;
pub mod session;
pub(crate) mod sim_command;

#[cfg(test)]
mod engine_tests;

/// The member crates, under the names the rest of the binary knows them by.
pub use respond_binance as exchange;
pub use respond_diagnostic as diagnostic;
pub use respond_engine as engine;
pub use respond_pem as pem;
pub use respond_playbook as playbook;
pub use respond_report as report;
pub use respond_sim as sim;

use std::ffi::OsString;

use clap::Parser;

use crate::actions::Registry;
use crate::cli::{Cli, Command, ReportCommand, SimCommand};
use crate::config::RunConfig;
use crate::engine::Interrupt;
use crate::error::{exit, Error};
use crate::playbook::Playbook;

/// Containment sends every cancel at once, one connection per request in flight where
/// the exchange speaks only HTTP/1.1 (evidence reads always take a connection each; in a
/// drill the simulator in this process holds the other end of each): let the process
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

/// Descriptors the table is grown to before any thread starts: a burst at the highest
/// `--concurrency` (1,024), both ends of each connection in a drill, and the files.
#[cfg(unix)]
const DESCRIPTOR_TABLE: u64 = 4096;

/// Grow the process's descriptor table now, while it has one thread. Linux doubles the
/// table when a new descriptor does not fit, and while other threads share it, each
/// doubling waits for an RCU grace period (8–16 ms here), during which every thread
/// that opens a socket waits too: a burst of 260 cancels in a drill crossed three of
/// them (256, 512 and 1,024 descriptors) and stalled 30–45 ms. One descriptor numbered
/// near the top, closed at once, leaves the table at full size (tables never shrink).
/// Best effort, like [`raise_open_file_limit`], whose limit it stays under.
fn grow_descriptor_table() {
    #[cfg(unix)]
    {
        use nix::sys::resource::{getrlimit, Resource};
        let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) else {
            return;
        };
        let top = DESCRIPTOR_TABLE.min(soft).saturating_sub(1);
        let Ok(top) = rustix::fd::RawFd::try_from(top) else {
            return;
        };
        // Dropped at once: only the table's size stays.
        let _ = rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), top);
    }
}

/// Parse `args`, run the command, print any error, and return the process exit code.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    raise_open_file_limit();
    grow_descriptor_table();
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
        Command::Validate { playbooks } => offline::validate(&playbooks, &registry),
        Command::Plan { playbook } => {
            let playbook = Playbook::load(&playbook, &registry)?;
            print_out(&offline::plan(&playbook, &registry));
            Ok(exit::OK)
        }
        Command::Actions => {
            print_out(&offline::list_actions(&registry));
            Ok(exit::OK)
        }
        Command::Run(args) => {
            let playbook = Playbook::load(&args.playbook, &registry)?;
            let inputs = config::parse_input_pairs(&args.inputs)?;
            let mut cfg = config::from_options(&args.run, inputs, cli.verbose, cli.quiet)?;
            cfg.new_incident = args.new_incident;
            run_session(&playbook, &registry, &cfg)
        }
        Command::Sim(SimCommand::Serve(args)) => sim_command::serve_command(&args),
        Command::Sim(SimCommand::Validate { scenarios }) => {
            sim_command::validate_command(&scenarios)
        }
        Command::Compromised(args) => compromised(&args, &registry, cli.verbose, cli.quiet),
        Command::Resume(args) => resume(&args, &registry, cli.verbose, cli.quiet),
        Command::Report(ReportCommand::Verify { dir, fingerprint }) => {
            offline::verify(&dir, fingerprint.as_deref())
        }
        Command::Audit(args) => audit(&args, &registry, cli.verbose, cli.quiet),
        Command::DrillHistory { report_dir, json } => {
            print_out(&offline::drill_history(&report_dir, json)?);
            Ok(exit::OK)
        }
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

/// `respond compromised`: the built-in playbook (or `--playbook`), its flags mapped to
/// the playbook's inputs of the same name.
fn compromised(
    args: &cli::CompromisedArgs,
    registry: &Registry,
    verbose: u8,
    quiet: bool,
) -> Result<u8, Error> {
    let playbook = match &args.playbook {
        Some(path) => Playbook::load_file(path, registry)?,
        None => Playbook::builtin("compromised", registry)?,
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
    let mut cfg = config::from_options(&args.run, inputs, verbose, quiet)?;
    cfg.previous = previous;
    cfg.new_incident = args.new_incident;
    run_session(&playbook, registry, &cfg)
}

/// `respond resume DIR`: the incident goes on in its own folder.
fn resume(
    args: &cli::ResumeArgs,
    registry: &Registry,
    verbose: u8,
    quiet: bool,
) -> Result<u8, Error> {
    let mut cfg = config::from_options(&args.run, Vec::new(), verbose, quiet)?;
    cfg.new_base_url = args
        .new_base_url
        .as_deref()
        .map(|url| config::check_base_url("--new-base-url", url))
        .transpose()?;
    let runtime = runtime()?;
    let session = runtime.block_on(async {
        let interrupt = Interrupt::install();
        let operator = session::default_operator(&cfg);
        session::resume(&args.dir, registry, &cfg, operator, interrupt).await
    })?;
    finish(runtime, &session.dir);
    if !cfg.json {
        println!("{}", session.dir.display());
    }
    Ok(session.result.exit_code)
}

/// `respond audit`: the built-in audit playbook, its flags mapped to its inputs of the
/// same name.
fn audit(
    args: &cli::AuditArgs,
    registry: &Registry,
    verbose: u8,
    quiet: bool,
) -> Result<u8, Error> {
    let playbook = Playbook::builtin("audit", registry)?;
    playbook::parse_duration(&args.rotation)
        .map_err(|e| Error::usage_hint(format!("--rotation: {e}"), "e.g. --rotation 90d"))?;
    // The flags map to the built-in audit playbook's inputs of the same name.
    let inputs = vec![
        ("purpose".to_string(), args.purpose.clone()),
        ("rotation".to_string(), args.rotation.clone()),
    ];
    let cfg = config::from_options(&args.run, inputs, verbose, quiet)?;
    run_session(&playbook, registry, &cfg)
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
        let operator = session::default_operator(cfg);
        session::run(playbook, registry, cfg, operator, interrupt).await
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
/// rendered once more from the journal, so `report verify` finds them in agreement
/// (only then: an unchanged journal is not rendered twice).
fn finish(runtime: tokio::runtime::Runtime, dir: &std::path::Path) {
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    if let Err(e) = report::render_dir_if_changed(dir) {
        eprintln!("warning: could not render the report again: {e}");
    }
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

#[cfg(all(test, target_os = "linux"))]
mod descriptor_tests {
    /// The `FDSize:` line of /proc/self/status: how many descriptors the table holds.
    fn table_size() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("FDSize:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("an FDSize line")
    }

    #[test]
    fn the_descriptor_table_is_grown_before_the_first_burst() {
        use nix::sys::resource::{getrlimit, Resource};
        super::raise_open_file_limit();
        super::grow_descriptor_table();
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let wanted = super::DESCRIPTOR_TABLE.min(soft);
        assert!(
            table_size() >= wanted,
            "table {} < {wanted} descriptors",
            table_size()
        );
        // Nothing stays open at the top: only the table's size is kept.
        let top = format!("/proc/self/fd/{}", wanted - 1);
        assert!(!std::path::Path::new(&top).exists(), "{top} is open");
    }
}
