//! The top-level error type and the one place that decides exit codes.
use std::path::PathBuf;

use crate::diagnostic::Diagnostics;

/// Exit codes, documented in the README and `respond --help`.
pub use crate::engine::exit;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad command line or option value.
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },

    /// One or more problems in a playbook or scenario file, each with its position.
    #[error("{0}")]
    Invalid(Diagnostics),

    #[error("`{command}` is not available yet in this version of respond")]
    NotAvailable { command: &'static str },

    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),

    #[error(transparent)]
    Exchange(#[from] crate::exchange::ExchangeError),

    #[error(transparent)]
    Sim(#[from] crate::sim::SimError),

    /// The incident's journal could not be written or read.
    #[error(transparent)]
    Journal(#[from] crate::report::journal::JournalError),

    /// The report could not be rendered from the journal.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),

    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// `resume` found the incident record altered and will not build on it.
    #[error("{} was altered ({}{reason}); refusing to resume on top of it", dir.display(), if *line > 0 { format!("journal line {line}: ") } else { String::new() })]
    Tampered {
        dir: PathBuf,
        line: usize,
        reason: String,
    },

    /// Another respond process holds this incident (its lock): nothing was done.
    #[error("{} is being handled right now by another respond process: {}", dir.display(), holder.as_ref().map(|h| h.describe()).unwrap_or_else(|| "it has not said who yet".into()))]
    Busy {
        dir: PathBuf,
        holder: Option<Box<crate::report::lock::Holder>>,
        /// Whether starting a separate incident (`--new-incident`) is the way out.
        new_incident_hint: bool,
    },

    /// Something that is not the operator's fault and not the exchange's.
    #[error("{0}")]
    Internal(String),
}

impl From<crate::playbook::LoadError> for Error {
    fn from(err: crate::playbook::LoadError) -> Self {
        use crate::playbook::LoadError;
        match err {
            LoadError::Invalid(diagnostics) => Error::Invalid(diagnostics),
            LoadError::NotFound { reference } => Error::usage_hint(
                format!("no playbook file `{reference}` and no built-in playbook of that name"),
                format!(
                    "give a path to a YAML file, or one of: {}",
                    crate::playbook::BUILTIN
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            LoadError::NoBuiltin(name) => Error::Internal(format!("no built-in playbook `{name}`")),
        }
    }
}

impl From<crate::engine::previous::PreviousError> for Error {
    fn from(err: crate::engine::previous::PreviousError) -> Self {
        use crate::engine::previous::PreviousError;
        use crate::report::journal::JOURNAL_FILE;
        match err {
            PreviousError::NotAnIncident { dir } => Error::usage_hint(
                format!(
                    "--since-incident {}: not an incident folder (no {JOURNAL_FILE})",
                    dir.display()
                ),
                "give the folder an earlier `respond compromised` printed",
            ),
            PreviousError::Tampered { dir, line, reason } => Error::Tampered { dir, line, reason },
            PreviousError::Unreadable { path, source } => Error::io("cannot read", path, source),
            PreviousError::Empty { dir } => {
                Error::usage(format!("{} has an empty journal", dir.display()))
            }
            PreviousError::Broken(message) => Error::Internal(message),
        }
    }
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: None,
        }
    }

    pub fn usage_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage { .. } | Error::Invalid(_) | Error::NotAvailable { .. } => exit::USAGE,
            Error::Secret(_) => exit::USAGE,
            Error::Exchange(_) => exit::EXCHANGE,
            Error::Sim(e) => sim_exit_code(e),
            Error::Busy { .. } => exit::ABORTED,
            Error::Io { .. }
            | Error::Internal(_)
            | Error::Tampered { .. }
            | Error::Journal(_)
            | Error::Report(_) => exit::FAILED,
        }
    }

    /// What the operator can do about it, when there is something.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } => hint.clone(),
            Error::NotAvailable { .. } => {
                Some("run `respond --help` to see what this version can do".into())
            }
            Error::Busy {
                dir,
                new_incident_hint,
                ..
            } => {
                let dir = dir.display();
                let mut hint = format!("nothing was done here. Follow that run where it is (its report is {dir}/report.md once it stops; `respond report verify {dir}` reads it safely meanwhile); if it has stopped, `respond resume {dir}` continues it");
                if *new_incident_hint {
                    hint.push_str(
                        "; to start a separate incident of this key anyway, add --new-incident",
                    );
                }
                Some(hint)
            }
            _ => None,
        }
    }
}

use crate::sim::SimError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The exit code for a simulator problem: the operator's input (2) or the machine (1).
fn sim_exit_code(err: &SimError) -> u8 {
    match err {
        SimError::Usage(_) | SimError::Invalid(_) | SimError::ReadScenario { .. } => exit::USAGE,
        SimError::UnknownKey(_) => exit::USAGE,
        SimError::Bind { .. } | SimError::RequestLog { .. } | SimError::Runtime(_) => exit::FAILED,
    }
}
