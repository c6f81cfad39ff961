//! Property tests for everything respond reads from a file a person wrote: the playbook
//! loader, the scenario loader, and the `${{ }}` template and `when:` parser. On any input
//! they must not panic (or overflow the stack), and every problem they report must carry
//! a position inside the text. The same three entry points are fuzzed by `fuzz/` (nightly;
//! see CONTRIBUTING.md); these run everywhere, in CI.
use proptest::prelude::*;

use respond::diagnostic::Diagnostics;
use respond::playbook::expr::{parse_condition, Reference, Template, Val};
use respond::playbook::Playbook;
use respond::sim::Scenario;

const PLAYBOOKS: [&str; 2] = [
    include_str!("../../playbooks/compromised.yaml"),
    include_str!("../../playbooks/example.yaml"),
];
const SCENARIOS: [&str; 2] = [
    include_str!("../../playbooks/scenarios/leaked-key.yaml"),
    include_str!("../../playbooks/scenarios/read-only.yaml"),
];

/// Pieces that make YAML and playbooks interesting: structure, the schema's own words,
/// templates, and the characters parsers trip on.
const PIECES: &[&str] = &[
    "\n",
    "\n  ",
    "\n    ",
    "\n  - ",
    ": ",
    "- ",
    "  ",
    "\t",
    "#",
    "'",
    "\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "!!str ",
    "|\n  ",
    ">-\n  ",
    "---\n",
    "...\n",
    "~",
    "null",
    "true",
    "0",
    "-1",
    "1e999",
    "99999999999999999999",
    "version",
    "name",
    "steps",
    "inputs",
    "id",
    "uses",
    "with",
    "when",
    "retry",
    "attempts",
    "delay",
    "timeout",
    "on_failure",
    "as",
    "title",
    "manual",
    "binance.cancel_open_orders",
    "report.write",
    "${{",
    "}}",
    "${{ inputs.since }}",
    "${{ steps.a.outputs.x }}",
    "${{ key.masked }}",
    "steps.triage.confirmed",
    "&&",
    "||",
    "!",
    "==",
    "(",
    ")",
    "72h",
    "90s",
    "31m",
    "é",
    "…",
    "\u{0}",
    "\u{feff}",
    "\r\n",
    "\u{2028}",
];

/// A valid document with a handful of edits: insertions of pieces, deletions, and
/// duplicated lines. Most inputs stay close to the schema, so they reach past the YAML
/// parser into validation.
fn mutated(bases: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        0..bases.len(),
        prop::collection::vec(
            (
                0u8..20,
                any::<prop::sample::Index>(),
                prop::sample::select(PIECES),
                0usize..40,
            ),
            1..5,
        ),
    )
        .prop_map(move |(base, edits)| {
            let mut text: Vec<char> = bases[base].chars().collect();
            for (kind, at, piece, len) in edits {
                let at = at.index(text.len() + 1);
                match kind {
                    // Insert a piece (half the edits), delete a stretch, duplicate a line.
                    0..=9 => {
                        text.splice(at..at, piece.chars());
                    }
                    10..=16 => {
                        let end = (at + len).min(text.len());
                        text.drain(at..end);
                    }
                    _ => {
                        let s: String = text.iter().collect();
                        let lines: Vec<&str> = s.lines().collect();
                        if !lines.is_empty() {
                            let i = at % lines.len();
                            let mut out = lines.clone();
                            out.insert(i, lines[i]);
                            text = out.join("\n").chars().collect();
                        }
                    }
                }
            }
            text.into_iter().collect()
        })
}

/// Documents built from pieces alone.
fn pieces() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..60).prop_map(|p| p.concat())
}

/// Every diagnostic names the file and a line and column inside the text.
fn assert_positioned(diags: &Diagnostics, file: &str, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(!diags.is_empty(), "an error with no diagnostic");
    // Lines as YAML counts them: \n, \r\n and a lone \r end a line.
    let lines = text.split('\n').count() + text.matches('\r').count() + 1;
    for d in &diags.0 {
        prop_assert_eq!(&d.file, file);
        prop_assert!(d.line >= 1, "no position: {}", d);
        prop_assert!(
            d.line <= lines,
            "line past the end ({} lines): {}",
            lines,
            d
        );
        prop_assert!(d.column >= 1, "no column: {}", d);
        prop_assert!(!d.message.trim().is_empty(), "no message: {}", d);
    }
    Ok(())
}

fn check_playbook(text: &str) -> Result<(), TestCaseError> {
    let registry = respond::actions::builtin();
    if let Err(diags) = Playbook::parse(text, "p.yaml", &registry) {
        assert_positioned(&diags, "p.yaml", text)?;
    }
    Ok(())
}

fn check_scenario(text: &str) -> Result<(), TestCaseError> {
    if let Err(diags) = Scenario::parse(text, "s.yaml") {
        assert_positioned(&diags, "s.yaml", text)?;
    }
    Ok(())
}

/// Whatever a reference resolves to at run time.
fn lookup(r: &Reference) -> Val {
    match r {
        Reference::Input(_) => Val::Str("72h".into()),
        Reference::KeyMasked => Val::Str("AbCd…wXyZ".into()),
        Reference::StepOutput { .. } => Val::Null,
        Reference::StepConfirmed(_) => Val::Bool(true),
    }
}

fn check_expression(text: &str) -> Result<(), TestCaseError> {
    let chars = text.chars().count();
    match parse_condition(text) {
        Ok(expr) => {
            let _ = expr.eval(&lookup).truthy();
        }
        Err(e) => {
            prop_assert!(e.offset <= chars, "offset {} past {chars}", e.offset);
            prop_assert!(!e.message.is_empty());
        }
    }
    match Template::parse(text) {
        Ok(t) => {
            let _ = t.render(&lookup);
        }
        Err(errors) => {
            prop_assert!(!errors.is_empty());
            for e in errors {
                prop_assert!(e.offset <= chars, "offset {} past {chars}", e.offset);
            }
        }
    }
    Ok(())
}

/// Expression text from the language's own tokens, in any order and nesting.
fn expression() -> impl Strategy<Value = String> {
    const TOKENS: &[&str] = &[
        "(",
        ")",
        "!",
        "&&",
        "||",
        "==",
        "!=",
        ">",
        "<",
        ">=",
        "<=",
        "true",
        "false",
        "null",
        "1",
        "2.5",
        "-3",
        "1e5",
        "'a'",
        "\"b\"",
        "'",
        "\"",
        "inputs.since",
        "inputs",
        "steps.a.outputs.x",
        "steps.a.confirmed",
        "steps..x",
        "key.masked",
        "key",
        "${{",
        "}}",
        "$",
        "{",
        "}",
        "=",
        "&",
        "|",
        "é",
        "…",
        "\\",
        "\u{0}",
    ];
    (
        prop::collection::vec(prop::sample::select(TOKENS), 0..40),
        prop::collection::vec(any::<bool>(), 40),
        any::<bool>(),
    )
        .prop_map(|(tokens, spaces, wrap)| {
            let mut out = String::new();
            for (t, sp) in tokens.iter().zip(spaces) {
                out.push_str(t);
                if sp {
                    out.push(' ');
                }
            }
            if wrap {
                format!("${{{{ {out} }}}}")
            } else {
                out
            }
        })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

proptest! {
    // 400 cases each in CI (under a second); PROPTEST_CASES=100000 for a long hunt.
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn playbook_loader_survives_edited_playbooks(text in mutated(&PLAYBOOKS)) {
        check_playbook(&text)?;
    }

    #[test]
    fn playbook_loader_survives_any_text(text in prop_oneof![any::<String>(), pieces()]) {
        check_playbook(&text)?;
    }

    #[test]
    fn scenario_loader_survives_edited_scenarios(text in mutated(&SCENARIOS)) {
        check_scenario(&text)?;
    }

    #[test]
    fn scenario_loader_survives_any_text(text in prop_oneof![any::<String>(), pieces()]) {
        check_scenario(&text)?;
    }

    #[test]
    fn expressions_and_templates_survive_any_text(
        text in prop_oneof![expression(), any::<String>()]
    ) {
        check_expression(&text)?;
    }

    #[test]
    fn when_conditions_in_a_playbook_are_positioned(cond in expression()) {
        let text = format!(
            "version: 1\nname: t\nsteps:\n  - id: a\n    uses: manual\n    with: {{ instructions: hi }}\n  - id: b\n    uses: manual\n    with: {{ instructions: \"${{{{ steps.a.confirmed }}}}\" }}\n    when: {}\n",
            serde_json::to_string(&cond).unwrap()
        );
        check_playbook(&text)?;
    }
}

/// Nesting that once overflowed the stack: the parser is recursive descent.
#[test]
fn deeply_nested_conditions_are_an_error_not_a_crash() {
    for depth in [33, 1_000, 100_000] {
        for (open, close) in [("(", ")"), ("!", "")] {
            let text = format!(
                "${{{{ {}true{} }}}}",
                open.repeat(depth),
                close.repeat(depth)
            );
            let err = parse_condition(&text).unwrap_err();
            assert!(
                err.message.contains("nested too deeply") || err.message.contains("too long"),
                "{depth} {open}: {}",
                err.message
            );
        }
    }
    let chain = vec!["true"; 100_000].join(" && ");
    assert!(parse_condition(&chain)
        .unwrap_err()
        .message
        .contains("too long"));
    // Within the bounds, nesting works.
    assert!(parse_condition(&format!("{}true{}", "(".repeat(30), ")".repeat(30))).is_ok());
    assert!(parse_condition(&format!("{}true", "!".repeat(30))).is_ok());
}

#[test]
fn deeply_nested_yaml_is_an_error_not_a_crash() {
    let registry = respond::actions::builtin();
    for (open, close) in [("[", "]"), ("{a: ", "}"), ("- ", "")] {
        let text = format!(
            "version: 1\nname: t\nsteps: {}x{}\n",
            open.repeat(100_000),
            close.repeat(100_000)
        );
        let diags = Playbook::parse(&text, "p.yaml", &registry).unwrap_err();
        assert!(diags.0.iter().all(|d| d.line >= 1), "{diags}");
        let diags = Scenario::parse(&text, "s.yaml").unwrap_err();
        assert!(diags.0.iter().all(|d| d.line >= 1), "{diags}");
    }
}

/// A quantity the simulator then multiplied by a price made its account handler panic
/// ("Multiplication overflowed") and the drill stop at triage.
#[test]
fn amounts_too_large_for_the_simulator_are_refused_with_a_position() {
    let text = SCENARIOS[0].replace(
        "quantity: \"0.05\"",
        "quantity: \"99999999999999999999999999\"",
    );
    let diags = Scenario::parse(&text, "s.yaml").unwrap_err();
    let d = &diags.0[0];
    assert!(d.line > 1, "{d}");
    assert!(
        d.message
            .contains("quantity 99999999999999999999999999 is too large"),
        "{d}"
    );
}
