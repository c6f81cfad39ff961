//! Playbooks: the model, loading from YAML with every problem reported at once as
//! `FILE:LINE:COLUMN: message`, and the built-in playbooks compiled into the binary.
pub mod expr;
mod load;
pub mod node;
pub mod spec;

use std::path::Path;
use std::time::Duration;

pub use load::{check_input_value as load_check_input, parse_duration, parse_since};

use expr::{Expr, Template};
use node::Pos;
use respond_diagnostic::{Diagnostic, Diagnostics};
use spec::ActionSpec;

/// Which key a step acts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The key that may have leaked: used fast for triage, cancel and evidence, and to
    /// prove revocation.
    Leaked,
    /// An optional separate read-only key, so evidence can still be pulled after the
    /// leaked key is deleted.
    Responder,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leaked => "leaked",
            Role::Responder => "responder",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a playbook could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// Every problem found, sorted by position (an unreadable file is one at 0:0).
    Invalid(Diagnostics),
    /// No such file, and no built-in playbook of that name.
    NotFound { reference: String },
    /// A built-in name that does not exist: a mistake of the caller, not of the operator.
    NoBuiltin(String),
}

/// The actions a playbook may name, as the loader checks `uses:` and `with:` against
/// them. The binary's action registry is one; the playbook knows no action's code.
pub trait Catalog {
    fn spec(&self, name: &str) -> Option<&'static ActionSpec>;
    fn names(&self) -> Vec<&'static str>;
}

/// Built-in playbooks, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "compromised",
        include_str!("../../../playbooks/compromised.yaml"),
    ),
    ("example", include_str!("../../../playbooks/example.yaml")),
    ("audit", include_str!("../../../playbooks/audit.yaml")),
];

#[derive(Clone, Debug)]
pub struct Playbook {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub inputs: Vec<InputDef>,
    pub steps: Vec<Step>,
    /// The text as loaded; copied into the incident folder and hashed into the journal.
    pub text: String,
    /// Where it came from: a path, or `built-in:NAME`.
    pub origin: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputType {
    Duration,
    Since,
    String,
    List,
    File,
    Bool,
}

impl InputType {
    pub const NAMES: &'static [&'static str] =
        &["duration", "since", "string", "list", "file", "bool"];

    pub fn parse(name: &str) -> Option<InputType> {
        Some(match name {
            "duration" => InputType::Duration,
            "since" => InputType::Since,
            "string" => InputType::String,
            "list" => InputType::List,
            "file" => InputType::File,
            "bool" => InputType::Bool,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InputType::Duration => "duration",
            InputType::Since => "since",
            InputType::String => "string",
            InputType::List => "list",
            InputType::File => "file",
            InputType::Bool => "bool",
        }
    }
}

#[derive(Clone, Debug)]
pub struct InputDef {
    pub name: String,
    pub ty: InputType,
    pub default: Option<String>,
    pub required: bool,
    pub description: Option<String>,
    pub pos: Pos,
}

/// A `with:` argument value, typed by the action's input spec.
#[derive(Clone, Debug, PartialEq)]
pub enum ArgValue {
    Text(Template),
    List(Vec<Template>),
    Bool(bool),
    Int(i64),
    Duration(Duration),
}

#[derive(Clone, Debug)]
pub struct Arg {
    pub name: String,
    pub value: ArgValue,
    pub pos: Pos,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 1,
            delay: Duration::ZERO,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    Continue,
    Abort,
}

#[derive(Clone, Debug)]
pub struct Step {
    pub id: String,
    pub title: Option<String>,
    pub uses: String,
    pub args: Vec<Arg>,
    pub when: Option<Expr>,
    /// The `when:` text as written, for the journal and `plan`.
    pub when_text: Option<String>,
    pub when_pos: Pos,
    pub retry: Retry,
    pub timeout: Option<Duration>,
    pub on_failure: Option<OnFailure>,
    pub role: Role,
    pub pos: Pos,
}

impl Step {
    pub fn display_title(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.id)
    }

    pub fn arg(&self, name: &str) -> Option<&ArgValue> {
        self.args.iter().find(|a| a.name == name).map(|a| &a.value)
    }
}

impl Playbook {
    /// Load from a file path, or a built-in name when no such file exists.
    pub fn load(reference: &str, registry: &dyn Catalog) -> Result<Playbook, LoadError> {
        let path = Path::new(reference);
        if path.exists() {
            return Playbook::load_file(path, registry);
        }
        if let Some((name, text)) = BUILTIN.iter().find(|(name, _)| *name == reference) {
            return Playbook::parse(text, &format!("built-in:{name}"), registry)
                .map_err(LoadError::Invalid);
        }
        Err(LoadError::NotFound {
            reference: reference.to_string(),
        })
    }

    pub fn load_file(path: &Path, registry: &dyn Catalog) -> Result<Playbook, LoadError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            LoadError::Invalid(Diagnostics(vec![Diagnostic::new(
                &display,
                0,
                0,
                format!("cannot read playbook: {e}"),
            )]))
        })?;
        Playbook::parse(&text, &display, registry).map_err(LoadError::Invalid)
    }

    pub fn builtin(name: &str, registry: &dyn Catalog) -> Result<Playbook, LoadError> {
        let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name) else {
            return Err(LoadError::NoBuiltin(name.to_string()));
        };
        Playbook::parse(text, &format!("built-in:{name}"), registry).map_err(LoadError::Invalid)
    }

    /// Parse and validate; every problem found is returned, sorted by position.
    pub fn parse(text: &str, file: &str, registry: &dyn Catalog) -> Result<Playbook, Diagnostics> {
        load::parse(text, file, registry)
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    pub fn input(&self, name: &str) -> Option<&InputDef> {
        self.inputs.iter().find(|i| i.name == name)
    }
}
