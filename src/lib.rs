//! respond: an incident-response runbook executor for a leaked exchange API key.
//!
//! `main.rs` only turns [`run`] into an exit code; everything else lives here so tests
//! can call it.
#![forbid(unsafe_code)]

pub mod cli;
pub mod diagnostic;
pub mod error;
pub mod exchange;
pub mod secret;
pub mod sim;

use std::ffi::OsString;

use clap::Parser;

use crate::cli::{Cli, Command, SimCommand};
use crate::error::{exit, Error};

/// Parse `args`, run the command, print any error, and return the process exit code.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
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
    match cli.command {
        Command::Sim(SimCommand::Serve(args)) => sim::serve_command(&args),
        Command::Sim(SimCommand::Validate { scenarios }) => sim::validate_command(&scenarios),
        Command::Compromised(_) => Err(Error::NotAvailable {
            command: "compromised",
        }),
        Command::Run(_) => Err(Error::NotAvailable { command: "run" }),
        Command::Validate { .. } => Err(Error::NotAvailable {
            command: "validate",
        }),
        Command::Plan { .. } => Err(Error::NotAvailable { command: "plan" }),
        Command::Actions => Err(Error::NotAvailable { command: "actions" }),
        Command::Resume(_) => Err(Error::NotAvailable { command: "resume" }),
        Command::Report(_) => Err(Error::NotAvailable {
            command: "report verify",
        }),
        Command::Audit(_) => Err(Error::NotAvailable { command: "audit" }),
    }
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
