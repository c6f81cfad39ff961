//! What an action declares about itself: name, description, typed inputs, outputs, and
//! whether it is destructive. The playbook loader validates `with:` against this, the
//! engine decides confirmations from it, and `respond actions` prints it.
use std::time::Duration;

/// The type of one `with:` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    /// Free text; may contain `${{ }}` templates.
    Text,
    /// A duration such as `30s`, `72h`.
    Duration {
        max: Option<Duration>,
    },
    /// A duration back from now (`72h`) or an RFC 3339 instant.
    Since,
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// A list of words from a fixed set (or a comma-separated string of them).
    Choices(&'static [&'static str]),
    /// A list of free strings (or a comma-separated string).
    List,
}

impl ArgType {
    pub fn describe(&self) -> String {
        match self {
            ArgType::Text => "text".into(),
            ArgType::Duration { .. } => "duration".into(),
            ArgType::Since => "since (duration or RFC 3339)".into(),
            ArgType::Bool => "bool".into(),
            ArgType::Int { min, max } => format!("integer {min}..={max}"),
            ArgType::Choice(options) => format!("one of {}", options.join("|")),
            ArgType::Choices(options) => format!("list of {}", options.join("|")),
            ArgType::List => "list".into(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct InputSpec {
    pub name: &'static str,
    pub ty: ArgType,
    pub required: bool,
    /// Default as it would be written in YAML (`None`: no default).
    pub default: Option<&'static str>,
    pub description: &'static str,
}

#[derive(Clone, Copy, Debug)]
pub struct OutputSpec {
    pub name: &'static str,
    pub description: &'static str,
}

/// What sort of step an action makes; decides the default `on_failure` and how the
/// engine treats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Changes state on the exchange; previewed and confirmed first.
    Destructive,
    /// A fact only a person can attest (done / skip / abort).
    Manual,
    /// Proves something (e.g. that a key is dead); failing it stops the run by default.
    Verify,
    /// Reads evidence; failing it lets the run continue by default.
    Evidence,
    /// Writes local files (report, support message).
    Local,
}

#[derive(Clone, Copy, Debug)]
pub struct ActionSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub kind: Kind,
    pub inputs: &'static [InputSpec],
    pub outputs: &'static [OutputSpec],
}

impl ActionSpec {
    pub fn destructive(&self) -> bool {
        self.kind == Kind::Destructive
    }

    pub fn manual(&self) -> bool {
        self.kind == Kind::Manual
    }

    /// Abort for destructive, manual and verify steps; continue for evidence and local.
    pub fn default_continue_on_failure(&self) -> bool {
        matches!(self.kind, Kind::Evidence | Kind::Local)
    }

    pub fn input(&self, name: &str) -> Option<&InputSpec> {
        self.inputs.iter().find(|i| i.name == name)
    }

    pub fn has_output(&self, name: &str) -> bool {
        self.outputs.iter().any(|o| o.name == name)
    }
}
