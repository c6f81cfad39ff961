//! The real binary: validation, plan, actions, and a run that needs no exchange.
use std::os::unix::fs::PermissionsExt;

use crate::support::{Run, Test};

fn respond(dir: &std::path::Path, args: &[&str]) -> Run {
    Test::in_dir(dir).args(args).run_sync()
}

const FIVE_MISTAKES: &str = "\
version: 1
name: five
steps:
  - id: one
    uses: binance.nothing
  - id: one
    uses: manual
    with: { instructions: 'see ${{ inputs.missing }}' }
  - id: three
    uses: manual
    with: { instructions: x }
    retry: { attempts: 0 }
    timeout: soon
";

#[test]
fn validate_reports_every_problem_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("five.yaml"), FIVE_MISTAKES).unwrap();
    let out = respond(dir.path(), &["validate", "five.yaml"]);
    out.expect_code(2);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("five.yaml:"))
        .collect();
    assert_eq!(
        lines,
        vec![
            "five.yaml:5:11: unknown action `binance.nothing` (run `respond actions` for the list)",
            "five.yaml:6:5: duplicate step id `one` (first used at line 4)",
            "five.yaml:8:32: `inputs.missing` is not declared in `inputs:`",
            "five.yaml:12:24: `retry.attempts` must be 1 to 20, got 0",
            "five.yaml:13:14: `timeout`: `soon` is not a duration (examples: 90s, 5m, 72h, 7d)",
        ],
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("5 problems found; nothing was run"));
}

#[test]
fn validate_accepts_a_good_playbook_and_reads_several_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.yaml"),
        "version: 1\nname: good\nsteps:\n  - id: a\n    uses: manual\n    with: { instructions: x }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "version: 2\nname: bad\nsteps: []\n",
    )
    .unwrap();
    let out = respond(dir.path(), &["validate", "good.yaml"]);
    out.expect_code(0);
    assert!(out.stdout.contains("good.yaml: ok (1 steps)"));
    let out = respond(
        dir.path(),
        &["validate", "good.yaml", "bad.yaml", "missing.yaml"],
    );
    assert_eq!(out.code, 2);
    out.expect_stderr("bad.yaml:1:10: unsupported version 2");
    out.expect_stderr("bad.yaml:3:8: `steps` is empty");
    out.expect_stderr("missing.yaml: cannot read playbook");
}

#[test]
fn yaml_syntax_errors_carry_a_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "version: 1\nname: [oops\nsteps:\n",
    )
    .unwrap();
    let out = respond(dir.path(), &["validate", "broken.yaml"]);
    assert_eq!(out.code, 2);
    let first = out.stderr.lines().next().unwrap();
    assert!(first.starts_with("broken.yaml:"), "{first}");
    let parts: Vec<&str> = first.splitn(4, ':').collect();
    assert!(
        parts[1].parse::<usize>().unwrap() >= 2 && parts[2].parse::<usize>().is_ok(),
        "{first}"
    );
}

#[test]
fn plan_marks_manual_steps_and_actions_lists_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let out = respond(dir.path(), &["plan", "example"]);
    out.expect_code(0);
    assert!(out.stdout.contains("find-the-key"));
    assert!(out.stdout.contains("MANUAL"));
    let out = respond(dir.path(), &["actions"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("manual  [manual]"));
    assert!(out.stdout.contains("with instructions: text, required"));
    // Evidence that depends on nothing each other does is read at once.
    let out = respond(dir.path(), &["plan", "compromised"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("uses binance.transfers\n       reads at the same time as `trades`"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("reads at the same time as `key-owner`"));
    assert!(!out
        .stdout
        .contains("reads at the same time as `cancel-orders`"));
    let out = respond(dir.path(), &["plan", "no-such-playbook"]);
    assert_eq!(out.code, 2);
    out.expect_stderr("no built-in playbook");
    out.expect_stderr("hint:");
}

#[test]
fn run_without_a_terminal_leaves_manual_steps_pending() {
    let dir = tempfile::tempdir().unwrap();
    let out = respond(dir.path(), &["run", "example", "--report-dir", "out"]);
    out.expect_code(5);
    let incident = dir.path().join(out.stdout.trim());
    assert!(
        incident.starts_with(dir.path().join("out")),
        "{}",
        out.stdout
    );
    let mode = std::fs::metadata(&incident).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    for file in ["journal.jsonl", "report.md", "report.json", "playbook.yaml"] {
        let mode = std::fs::metadata(incident.join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let md = std::fs::read_to_string(incident.join("report.md")).unwrap();
    assert!(md.contains("### Still to do"), "{md}");
    out.expect_stderr("needs a person");

    // A second run never reuses the folder.
    let again = respond(dir.path(), &["run", "example", "--report-dir", "out"]);
    assert_ne!(again.stdout, out.stdout);
}

#[test]
fn bad_inputs_and_options_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = respond(dir.path(), &["run", "example", "--input", "nope=1"]);
    assert_eq!(out.code, 2);
    out.expect_stderr("has no input `nope`");
    out.expect_stderr("its inputs are: since");
    let out = respond(
        dir.path(),
        &["run", "example", "--input", "since=yesterday"],
    );
    assert_eq!(out.code, 2);
    out.expect_stderr("input `since`");
    let out = respond(dir.path(), &["run", "example", "--recv-window", "90000"]);
    assert_eq!(out.code, 2);
    out.expect_stderr("1 to 60000");
    let out = respond(
        dir.path(),
        &[
            "run",
            "example",
            "--drill",
            "--base-url",
            "http://127.0.0.1:1",
        ],
    );
    assert_eq!(out.code, 2);
    let out = respond(dir.path(), &["frobnicate"]);
    assert_eq!(out.code, 2);
    assert!(
        !dir.path().join("incidents").exists(),
        "usage errors create nothing"
    );
}

/// A playbook or earlier incident that cannot be used is a usage error naming what was
/// given and what to give instead, and nothing is created or sent.
#[test]
fn a_missing_playbook_or_earlier_incident_says_what_to_give_instead() {
    let dir = tempfile::tempdir().unwrap();
    let out = respond(dir.path(), &["run", "no-such-playbook.yaml"]);
    out.expect_code(2);
    out.expect_stderr(
        "no playbook file `no-such-playbook.yaml` and no built-in playbook of that name",
    );
    out.expect_stderr("give a path to a YAML file, or one of: compromised, example, audit");

    let unreadable = dir.path().join("dir.yaml");
    std::fs::create_dir(&unreadable).unwrap();
    let out = respond(dir.path(), &["validate", unreadable.to_str().unwrap()]);
    out.expect_code(2);
    out.expect_stderr("cannot read playbook");

    let not_an_incident = dir.path().join("somewhere");
    std::fs::create_dir(&not_an_incident).unwrap();
    let out = respond(
        dir.path(),
        &[
            "compromised",
            "--drill",
            "--yes",
            "--since-incident",
            not_an_incident.to_str().unwrap(),
        ],
    );
    out.expect_code(2);
    out.expect_stderr(&format!(
        "--since-incident {}: not an incident folder (no journal.jsonl)",
        not_an_incident.display()
    ));
    out.expect_stderr("give the folder an earlier `respond compromised` printed");
    assert!(
        !dir.path().join("incidents").exists(),
        "usage errors create nothing"
    );
}

#[test]
fn help_and_version_exit_zero_and_document_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = respond(dir.path(), &["--help"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("Exit codes:"));
    assert!(out.stdout.contains("130"));
    let out = respond(dir.path(), &["--version"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("respond "));
}

#[test]
fn completions_and_man_page_are_generated_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = respond(dir.path(), &["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(out.stdout.contains("compromised"), "{shell}");
    }
    let out = respond(dir.path(), &["man"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains(".TH respond 1"));
    let out = respond(dir.path(), &["completions", "tcsh"]);
    assert_eq!(out.code, 2);
}
