//! YAML text → validated [`Playbook`], collecting every problem with its position.
use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::expr::{self, Reference, Template};
use super::node::{Key, Node, Pos, Value};
use super::spec::{ArgType, InputSpec};
use super::Catalog;
use super::{Arg, ArgValue, InputDef, InputType, OnFailure, Playbook, Retry, Step};
use crate::Role;
use respond_diagnostic::{Diagnostic, Diagnostics};

const MAX_RETRY_ATTEMPTS: i64 = 20;
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
const MAX_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Parse a duration like `90s`, `72h`, `5m`, `2d`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration".into());
    }
    humantime::parse_duration(trimmed)
        .map_err(|_| format!("`{trimmed}` is not a duration (examples: 90s, 5m, 72h, 7d)"))
}

/// `since` values: a duration back from `now` (`72h`) or an RFC 3339 instant.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        let instant = instant.with_timezone(&Utc);
        if instant > now {
            return Err(format!("`{text}` is in the future"));
        }
        return Ok(instant);
    }
    let duration = parse_duration(text).map_err(|_| {
        format!(
            "`{text}` is neither a duration (72h, 7d) nor an RFC 3339 time (2026-11-20T08:00:00Z)"
        )
    })?;
    let back = chrono::Duration::from_std(duration).map_err(|_| format!("`{text}` is too long"))?;
    now.checked_sub_signed(back)
        .ok_or_else(|| format!("`{text}` is too long"))
}

struct Ctx<'a> {
    file: &'a str,
    lines: Vec<&'a str>,
    diags: Diagnostics,
}

impl Ctx<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::new(self.file, pos.line, pos.column, message));
    }

    /// Check a mapping's keys against the allowed ones; returns the entries by name.
    /// The position of character `offset` inside a scalar that starts at `pos`, stepping
    /// over an opening quote.
    fn inside(&self, pos: Pos, offset: usize) -> Pos {
        let quoted = self
            .lines
            .get(pos.line.wrapping_sub(1))
            .and_then(|line| line.chars().nth(pos.column.wrapping_sub(1)))
            .is_some_and(|c| c == '"' || c == '\'');
        pos.shifted(offset + usize::from(quoted))
    }

    fn fields<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
    ) -> Option<HashMap<&'n str, (&'n Key, &'n Node)>> {
        let Value::Map(entries) = &node.value else {
            self.error(
                node.pos,
                format!("{what} must be a mapping, found {}", node.kind()),
            );
            return None;
        };
        let mut out = HashMap::new();
        for (key, value) in entries {
            if allowed.contains(&key.name.as_str()) {
                out.insert(key.name.as_str(), (key, value));
            } else if what == "a step" && FORBIDDEN_STEP_FIELDS.contains(&key.name.as_str()) {
                // Reported with its own message by parse_step.
            } else {
                let hint = closest(&key.name, allowed)
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_else(|| format!(" (allowed: {})", allowed.join(", ")));
                self.error(
                    key.pos,
                    format!("unknown field `{}` in {what}{hint}", key.name),
                );
            }
        }
        Some(out)
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => node.as_scalar_text(),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a string, found {}", node.kind()),
                );
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = self.string(node, what)?;
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(node.pos, format!("{what}: {e}"));
                None
            }
        }
    }
}

/// Suggest the allowed name closest to a misspelt one.
fn closest<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(name, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

pub(super) fn parse(
    text: &str,
    file: &str,
    registry: &dyn Catalog,
) -> Result<Playbook, Diagnostics> {
    let mut cx = Ctx {
        file,
        lines: text.lines().collect(),
        diags: Diagnostics::default(),
    };
    let root = match Node::parse(text) {
        Ok(root) => root,
        Err((pos, message)) => {
            cx.error(pos, message);
            return Err(cx.diags);
        }
    };
    if root.value == Value::Null {
        cx.error(
            Pos::new(1, 1),
            "the playbook is empty; it needs `version: 1`, `name:` and `steps:`",
        );
        return Err(cx.diags);
    }
    let Some(fields) = cx.fields(
        &root,
        "the playbook",
        &["version", "name", "title", "description", "inputs", "steps"],
    ) else {
        return Err(cx.diags);
    };

    check_version(&mut cx, fields.get("version").map(|(_, v)| *v), root.pos);
    let name = playbook_name(&mut cx, fields.get("name").map(|(_, n)| *n), root.pos);
    let title = fields
        .get("title")
        .and_then(|(_, n)| cx.string(n, "`title`"));
    let description = fields
        .get("description")
        .and_then(|(_, n)| cx.string(n, "`description`"));

    let inputs = fields
        .get("inputs")
        .map(|(_, n)| parse_inputs(&mut cx, n))
        .unwrap_or_default();
    let steps = parse_steps(
        &mut cx,
        fields.get("steps").map(|(_, n)| *n),
        root.pos,
        registry,
    );

    check_ids_and_references(&mut cx, &inputs, &steps, registry);

    if cx.diags.is_empty() {
        Ok(Playbook {
            name,
            title,
            description,
            inputs,
            steps,
            text: text.to_string(),
            origin: file.to_string(),
        })
    } else {
        cx.diags.sort();
        Err(cx.diags)
    }
}

/// `version: 1`, the number.
fn check_version(cx: &mut Ctx, version: Option<&Node>, root: Pos) {
    match version {
        None => cx.error(root, "missing `version: 1`"),
        Some(v) if matches!(&v.value, Value::Str(s) if s.trim() == "1") => cx.error(
            v.pos,
            "`version` must be the number 1, not the string \"1\": write `version: 1` without quotes",
        ),
        Some(v) if v.value != Value::Int(1) => cx.error(
            v.pos,
            format!(
                "unsupported version {}; this respond reads `version: 1`",
                v.as_scalar_text().unwrap_or_default()
            ),
        ),
        Some(_) => {}
    }
}

/// The playbook's `name:`, an id.
fn playbook_name(cx: &mut Ctx, name: Option<&Node>, root: Pos) -> String {
    match name {
        None => {
            cx.error(
                root,
                "missing `name:` (lowercase letters, digits and dashes)",
            );
            String::new()
        }
        Some(n) => {
            let name = cx.string(n, "`name`").unwrap_or_default();
            if !name.is_empty() && !valid_id(&name) {
                cx.error(
                    n.pos,
                    format!("name `{name}` must be lowercase letters, digits, `-` or `_`"),
                );
            }
            name
        }
    }
}

/// `steps:`, a non-empty list; the steps that parse.
fn parse_steps(cx: &mut Ctx, node: Option<&Node>, root: Pos, registry: &dyn Catalog) -> Vec<Step> {
    let mut steps = Vec::new();
    match node {
        None => cx.error(root, "missing `steps:` (a list of steps)"),
        Some(node) => match &node.value {
            Value::Seq(items) if items.is_empty() => cx.error(node.pos, "`steps` is empty"),
            Value::Seq(items) => {
                for item in items {
                    if let Some(step) = parse_step(cx, item, registry) {
                        steps.push(step);
                    }
                }
            }
            _ => cx.error(
                node.pos,
                format!("`steps` must be a list, found {}", node.kind()),
            ),
        },
    }
    steps
}

fn parse_inputs(cx: &mut Ctx, node: &Node) -> Vec<InputDef> {
    let Value::Map(entries) = &node.value else {
        cx.error(
            node.pos,
            format!(
                "`inputs` must be a mapping of name to definition, found {}",
                node.kind()
            ),
        );
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|(key, def)| parse_input(cx, key, def))
        .collect()
}

/// One input's definition: its type, default, whether it is required.
fn parse_input(cx: &mut Ctx, key: &Key, def: &Node) -> Option<InputDef> {
    if !valid_id(&key.name) {
        cx.error(
            key.pos,
            format!(
                "input name `{}` must be lowercase letters, digits, `-` or `_`",
                key.name
            ),
        );
    }
    let f = cx.fields(
        def,
        &format!("input `{}`", key.name),
        &["type", "default", "required", "description"],
    )?;
    let ty = input_type(cx, key, def, f.get("type").map(|(_, t)| *t))?;
    let default = f.get("default").and_then(|(_, d)| {
        let text = match (&d.value, ty) {
            (Value::Seq(items), InputType::List) => {
                let parts: Vec<String> = items
                    .iter()
                    .filter_map(|i| cx.string(i, "a list item"))
                    .collect();
                Some(parts.join(","))
            }
            _ => cx.string(d, "`default`"),
        }?;
        if let Err(e) = check_input_value(ty, &text) {
            cx.error(d.pos, format!("default of input `{}`: {e}", key.name));
        }
        Some(text)
    });
    let required = match f.get("required") {
        Some((
            _,
            Node {
                value: Value::Bool(b),
                ..
            },
        )) => *b,
        Some((_, other)) => {
            cx.error(other.pos, "`required` must be true or false");
            false
        }
        None => false,
    };
    let description = f
        .get("description")
        .and_then(|(_, d)| cx.string(d, "`description`"));
    Some(InputDef {
        name: key.name.clone(),
        ty,
        default,
        required,
        description,
        pos: key.pos,
    })
}

/// An input's `type:`, one of the types inputs have.
fn input_type(cx: &mut Ctx, key: &Key, def: &Node, ty: Option<&Node>) -> Option<InputType> {
    let Some(t) = ty else {
        cx.error(
            def.pos,
            format!(
                "input `{}` needs a `type` ({})",
                key.name,
                InputType::NAMES.join(", ")
            ),
        );
        return None;
    };
    let text = cx.string(t, "`type`").unwrap_or_default();
    let ty = InputType::parse(&text);
    if ty.is_none() {
        cx.error(
            t.pos,
            format!(
                "unknown input type `{text}` (use one of: {})",
                InputType::NAMES.join(", ")
            ),
        );
    }
    ty
}

/// Check a value given for an input of type `ty` (file inputs are checked when read).
pub fn check_input_value(ty: InputType, text: &str) -> Result<(), String> {
    match ty {
        InputType::Duration => parse_duration(text).map(|_| ()),
        InputType::Since => parse_since(text, chrono::Utc::now()).map(|_| ()),
        InputType::Bool => match text {
            "true" | "false" => Ok(()),
            _ => Err(format!("`{text}` is not true or false")),
        },
        InputType::String | InputType::List | InputType::File => Ok(()),
    }
}

const FORBIDDEN_STEP_FIELDS: &[&str] = &["destructive", "safe", "confirm", "dangerous"];
const STEP_FIELDS: &[&str] = &[
    "id",
    "title",
    "uses",
    "with",
    "when",
    "retry",
    "timeout",
    "on_failure",
    "as",
];

fn parse_step(cx: &mut Ctx, node: &Node, registry: &dyn Catalog) -> Option<Step> {
    // A playbook cannot declare a destructive action safe; say so specifically.
    if let Value::Map(entries) = &node.value {
        for (key, _) in entries {
            if FORBIDDEN_STEP_FIELDS.contains(&key.name.as_str()) {
                cx.error(
                    key.pos,
                    format!(
                        "`{}` cannot be set by a playbook: whether a step is destructive is decided by its action (see `respond actions`)",
                        key.name
                    ),
                );
            }
        }
    }
    let f = cx.fields(node, "a step", STEP_FIELDS)?;
    let id = step_id(cx, f.get("id").map(|(_, n)| *n), node.pos);
    let title = f.get("title").and_then(|(_, n)| cx.string(n, "`title`"));
    let spec = step_action(cx, f.get("uses").map(|(_, n)| *n), &id, node.pos, registry);

    let mut args = Vec::new();
    if let Some(spec) = spec {
        let given = f.get("with").map(|(_, n)| *n);
        args = parse_args(cx, spec.name, spec.inputs, given, node.pos);
    } else if let Some((_, with)) = f.get("with") {
        if !matches!(with.value, Value::Map(_)) {
            cx.error(
                with.pos,
                format!("`with` must be a mapping, found {}", with.kind()),
            );
        }
    }

    let when_pos = f.get("when").map(|(_, n)| n.pos).unwrap_or(node.pos);
    let (when, when_text) = match f.get("when") {
        None => (None, None),
        Some((_, n)) => parse_when(cx, n),
    };
    let retry = match f.get("retry") {
        None => Retry::default(),
        Some((_, n)) => parse_retry(cx, n),
    };
    let timeout = f.get("timeout").and_then(|(_, n)| parse_timeout(cx, n));
    let on_failure = f
        .get("on_failure")
        .and_then(|(_, n)| parse_on_failure(cx, n));
    let role = match f.get("as") {
        None => Role::Leaked,
        Some((_, n)) => parse_role(cx, n),
    };

    Some(Step {
        id: id?,
        title,
        uses: spec.map(|s| s.name.to_string()).unwrap_or_default(),
        args,
        when,
        when_text,
        when_pos,
        retry,
        timeout,
        on_failure,
        role,
        pos: node.pos,
    })
}

/// The step's `id:`, when it has one that is a string.
fn step_id(cx: &mut Ctx, id: Option<&Node>, step: Pos) -> Option<String> {
    match id {
        None => {
            cx.error(step, "step is missing `id:`");
            None
        }
        Some(n) => {
            let id = cx.string(n, "`id`")?;
            if !valid_id(&id) {
                cx.error(
                    n.pos,
                    format!("step id `{id}` must be lowercase letters, digits, `-` or `_`"),
                );
            }
            Some(id)
        }
    }
}

/// The action the step `uses:`, when the registry knows it.
fn step_action(
    cx: &mut Ctx,
    uses: Option<&Node>,
    id: &Option<String>,
    step: Pos,
    registry: &dyn Catalog,
) -> Option<&'static super::spec::ActionSpec> {
    match uses {
        None => {
            cx.error(
                step,
                format!(
                    "step `{}` is missing `uses:` (an action; see `respond actions`)",
                    id.as_deref().unwrap_or("?")
                ),
            );
            None
        }
        Some(n) => {
            let name = cx.string(n, "`uses`").unwrap_or_default();
            match registry.spec(&name) {
                Some(spec) => Some(spec),
                None => {
                    let names = registry.names();
                    let hint = closest(&name, &names)
                        .map(|c| format!("; did you mean `{c}`?"))
                        .unwrap_or_else(|| " (run `respond actions` for the list)".into());
                    cx.error(n.pos, format!("unknown action `{name}`{hint}"));
                    None
                }
            }
        }
    }
}

/// A `when:` condition, parsed, and its text as written.
fn parse_when(cx: &mut Ctx, n: &Node) -> (Option<expr::Expr>, Option<String>) {
    let text = match &n.value {
        Value::Bool(b) => Some(b.to_string()),
        _ => cx.string(n, "`when`"),
    };
    match text {
        None => (None, None),
        Some(text) => match expr::parse_condition(&text) {
            Ok(e) => (Some(e), Some(text)),
            Err(e) => {
                let at = cx.inside(n.pos, e.offset);
                cx.error(at, format!("bad `when:` expression: {}", e.message));
                (None, Some(text))
            }
        },
    }
}

fn parse_timeout(cx: &mut Ctx, n: &Node) -> Option<Duration> {
    let d = cx.duration(n, "`timeout`")?;
    if d.is_zero() || d > MAX_TIMEOUT {
        cx.error(
            n.pos,
            format!(
                "`timeout` must be more than 0 and at most 30m, got {}",
                humantime::format_duration(d)
            ),
        );
    }
    Some(d)
}

fn parse_on_failure(cx: &mut Ctx, n: &Node) -> Option<OnFailure> {
    let text = cx.string(n, "`on_failure`")?;
    match text.as_str() {
        "continue" => Some(OnFailure::Continue),
        "abort" => Some(OnFailure::Abort),
        other => {
            cx.error(
                n.pos,
                format!("`on_failure` must be `continue` or `abort`, not `{other}`"),
            );
            None
        }
    }
}

/// `as:`, the key the step acts as.
fn parse_role(cx: &mut Ctx, n: &Node) -> Role {
    match cx.string(n, "`as`").as_deref() {
        Some("leaked") => Role::Leaked,
        Some("responder") => Role::Responder,
        Some(other) => {
            cx.error(
                n.pos,
                format!("`as` must be `leaked` or `responder`, not `{other}`"),
            );
            Role::Leaked
        }
        None => Role::Leaked,
    }
}

fn parse_retry(cx: &mut Ctx, node: &Node) -> Retry {
    let mut retry = Retry {
        attempts: 3,
        delay: Duration::from_secs(1),
    };
    let Some(f) = cx.fields(node, "`retry`", &["attempts", "delay"]) else {
        return retry;
    };
    if let Some((_, n)) = f.get("attempts") {
        match n.value {
            Value::Int(a) if (1..=MAX_RETRY_ATTEMPTS).contains(&a) => retry.attempts = a as u32,
            Value::Int(a) => cx.error(
                n.pos,
                format!("`retry.attempts` must be 1 to {MAX_RETRY_ATTEMPTS}, got {a}"),
            ),
            _ => cx.error(
                n.pos,
                format!("`retry.attempts` must be a number, found {}", n.kind()),
            ),
        }
    }
    if let Some((_, n)) = f.get("delay") {
        if let Some(d) = cx.duration(n, "`retry.delay`") {
            if d > MAX_RETRY_DELAY {
                cx.error(
                    n.pos,
                    format!(
                        "`retry.delay` must be at most 60s, got {}",
                        humantime::format_duration(d)
                    ),
                );
            } else {
                retry.delay = d;
            }
        }
    }
    retry
}

fn parse_args(
    cx: &mut Ctx,
    action: &str,
    specs: &[InputSpec],
    given: Option<&Node>,
    step_pos: Pos,
) -> Vec<Arg> {
    let mut out = Vec::new();
    let entries: &[(Key, Node)] = match given.map(|n| &n.value) {
        None | Some(Value::Null) => &[],
        Some(Value::Map(entries)) => entries,
        Some(_) => {
            let n = given.expect("checked above");
            cx.error(
                n.pos,
                format!("`with` must be a mapping, found {}", n.kind()),
            );
            return out;
        }
    };
    for (key, value) in entries {
        let Some(spec) = specs.iter().find(|s| s.name == key.name) else {
            let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
            let hint = if names.is_empty() {
                " (it takes no inputs)".to_string()
            } else {
                closest(&key.name, &names)
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_else(|| format!(" (inputs: {})", names.join(", ")))
            };
            cx.error(
                key.pos,
                format!("`{action}` has no input `{}`{hint}", key.name),
            );
            continue;
        };
        if let Some(v) = parse_arg(cx, action, spec, value) {
            out.push(Arg {
                name: key.name.clone(),
                value: v,
                pos: value.pos,
            });
        }
    }
    for spec in specs.iter().filter(|s| s.required && s.default.is_none()) {
        if !entries.iter().any(|(k, _)| k.name == spec.name) {
            let pos = given.map(|n| n.pos).unwrap_or(step_pos);
            cx.error(
                pos,
                format!(
                    "`{action}` needs input `{}` ({})",
                    spec.name, spec.description
                ),
            );
        }
    }
    out
}

fn template(cx: &mut Ctx, text: &str, pos: Pos) -> Option<Template> {
    match Template::parse(text) {
        Ok(t) => Some(t),
        Err(errors) => {
            for e in errors {
                let at = cx.inside(pos, e.offset);
                cx.error(at, format!("bad `${{{{ }}}}` expression: {}", e.message));
            }
            None
        }
    }
}

fn parse_arg(cx: &mut Ctx, action: &str, spec: &InputSpec, node: &Node) -> Option<ArgValue> {
    let what = format!("`{action}` input `{}`", spec.name);
    match spec.ty {
        ArgType::Text | ArgType::Since => {
            let text = cx.string(node, &what)?;
            let t = template(cx, &text, node.pos)?;
            if spec.ty == ArgType::Since && t.is_literal() {
                if let Err(e) = parse_since(&text, chrono::Utc::now()) {
                    cx.error(node.pos, format!("{what}: {e}"));
                }
            }
            Some(ArgValue::Text(t))
        }
        ArgType::Duration { max } => {
            let d = cx.duration(node, &what)?;
            if let Some(max) = max {
                if d > max {
                    cx.error(
                        node.pos,
                        format!("{what} must be at most {}", humantime::format_duration(max)),
                    );
                }
            }
            Some(ArgValue::Duration(d))
        }
        ArgType::Bool => match node.value {
            Value::Bool(b) => Some(ArgValue::Bool(b)),
            _ => {
                cx.error(
                    node.pos,
                    format!("{what} must be true or false, found {}", node.kind()),
                );
                None
            }
        },
        ArgType::Int { min, max } => match node.value {
            Value::Int(i) if (min..=max).contains(&i) => Some(ArgValue::Int(i)),
            Value::Int(i) => {
                cx.error(node.pos, format!("{what} must be {min} to {max}, got {i}"));
                None
            }
            _ => {
                cx.error(
                    node.pos,
                    format!("{what} must be a number, found {}", node.kind()),
                );
                None
            }
        },
        ArgType::Choice(options) => {
            let text = cx.string(node, &what)?;
            if !options.contains(&text.as_str()) {
                cx.error(
                    node.pos,
                    format!("{what} must be one of {}, not `{text}`", options.join(", ")),
                );
                return None;
            }
            Some(ArgValue::Text(Template::literal(&text)))
        }
        ArgType::Choices(_) | ArgType::List => parse_list_arg(cx, &what, spec.ty, node),
    }
}

/// A list input (or a choice of several): a YAML list or a comma-separated string,
/// each item a template.
fn parse_list_arg(cx: &mut Ctx, what: &str, ty: ArgType, node: &Node) -> Option<ArgValue> {
    let items: Vec<(String, Pos)> = match &node.value {
        Value::Seq(items) => items
            .iter()
            .filter_map(|i| {
                cx.string(i, &format!("an item of {what}"))
                    .map(|s| (s, i.pos))
            })
            .collect(),
        Value::Str(s) => s
            .split(',')
            .map(|p| (p.trim().to_string(), node.pos))
            .filter(|(p, _)| !p.is_empty())
            .collect(),
        _ => {
            cx.error(
                node.pos,
                format!("{what} must be a list, found {}", node.kind()),
            );
            return None;
        }
    };
    let mut out = Vec::new();
    for (text, pos) in items {
        if let ArgType::Choices(options) = ty {
            if !options.contains(&text.as_str()) {
                cx.error(
                    pos,
                    format!("{what}: `{text}` is not one of {}", options.join(", ")),
                );
                continue;
            }
        }
        if let Some(t) = template(cx, &text, pos) {
            out.push(t);
        }
    }
    Some(ArgValue::List(out))
}

fn check_ids_and_references(
    cx: &mut Ctx,
    inputs: &[InputDef],
    steps: &[Step],
    registry: &dyn Catalog,
) {
    let mut seen: HashMap<&str, (usize, Pos)> = HashMap::new();
    for (index, step) in steps.iter().enumerate() {
        if let Some((_, first)) = seen.get(step.id.as_str()) {
            cx.error(
                step.pos,
                format!(
                    "duplicate step id `{}` (first used at line {})",
                    step.id, first.line
                ),
            );
        } else {
            seen.insert(&step.id, (index, step.pos));
        }
    }
    for (index, step) in steps.iter().enumerate() {
        let mut refs: Vec<(Reference, Pos)> = Vec::new();
        for arg in &step.args {
            let templates: Vec<&Template> = match &arg.value {
                ArgValue::Text(t) => vec![t],
                ArgValue::List(ts) => ts.iter().collect(),
                _ => vec![],
            };
            for t in templates {
                refs.extend(
                    t.references()
                        .into_iter()
                        .map(|(r, off)| (r.clone(), cx.inside(arg.pos, off))),
                );
            }
        }
        if let Some(when) = &step.when {
            // Positions inside a condition point at the `when:` value.
            let pos = step.when_pos;
            refs.extend(when.references().into_iter().map(|r| (r.clone(), pos)));
        }
        for (reference, pos) in refs {
            check_reference(
                cx, &reference, pos, index, step, steps, &seen, inputs, registry,
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check_reference(
    cx: &mut Ctx,
    reference: &Reference,
    pos: Pos,
    index: usize,
    step: &Step,
    steps: &[Step],
    seen: &HashMap<&str, (usize, Pos)>,
    inputs: &[InputDef],
    registry: &dyn Catalog,
) {
    let step_ref = |cx: &mut Ctx, id: &str| earlier_step(cx, id, pos, index, step, seen);
    match reference {
        Reference::KeyMasked => {}
        Reference::Input(name) => {
            if !inputs.iter().any(|i| &i.name == name) {
                let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
                let hint = closest(name, &names)
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                cx.error(
                    pos,
                    format!("`inputs.{name}` is not declared in `inputs:`{hint}"),
                );
            }
        }
        Reference::StepConfirmed(id) => {
            step_ref(cx, id);
        }
        Reference::StepOutput { step: id, name } => {
            if let Some(other) = step_ref(cx, id) {
                check_output(cx, pos, id, &steps[other].uses, name, registry);
            }
        }
    }
}

/// The index of the step `id` a reference names, when it is an earlier one.
fn earlier_step(
    cx: &mut Ctx,
    id: &str,
    pos: Pos,
    index: usize,
    step: &Step,
    seen: &HashMap<&str, (usize, Pos)>,
) -> Option<usize> {
    match seen.get(id) {
        None => {
            cx.error(
                pos,
                format!(
                    "step `{}` refers to step `{id}`, which does not exist",
                    step.id
                ),
            );
            None
        }
        Some((other, _)) if *other >= index => {
            let what = if *other == index {
                "itself"
            } else {
                "a step that comes later"
            };
            cx.error(
                pos,
                format!(
                    "step `{}` refers to `{id}`, {what}; only earlier steps can be used",
                    step.id
                ),
            );
            None
        }
        Some((other, _)) => Some(*other),
    }
}

/// `steps.ID.outputs.NAME`: the action of step ID declares output NAME.
fn check_output(
    cx: &mut Ctx,
    pos: Pos,
    id: &str,
    action: &str,
    name: &str,
    registry: &dyn Catalog,
) {
    if let Some(spec) = registry.spec(action) {
        if !spec.has_output(name) {
            let outs: Vec<&str> = spec.outputs.iter().map(|o| o.name).collect();
            let list = if outs.is_empty() {
                "none".to_string()
            } else {
                outs.join(", ")
            };
            cx.error(
                pos,
                format!("step `{id}` ({action}) has no output `{name}` (outputs: {list})"),
            );
        }
    }
}
