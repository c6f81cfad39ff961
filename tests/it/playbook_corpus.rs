//! The corpus of broken playbooks: `tests/broken_playbooks/NAME.yaml`, each with
//! `NAME.expected` holding exactly the `FILE:LINE:COLUMN: message` lines `respond
//! validate NAME.yaml` must print, in order. One file per mistake a person makes (or a
//! hostile file tries), plus one with many problems that must all be reported at once.
//!
//! After changing a message on purpose: `RESPOND_BLESS=1 cargo test --test
//! playbook_corpus` rewrites the `.expected` files; review the diff like code.
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken_playbooks")
}

fn cases() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".yaml").map(String::from))
        .collect();
    names.sort();
    names
}

/// `respond validate ARGS` in the corpus folder: (exit code, diagnostic lines, last line).
fn validate(args: &[String]) -> (i32, Vec<String>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_respond"))
        .current_dir(corpus())
        .arg("validate")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).expect("UTF-8 on stderr");
    let mut lines: Vec<String> = stderr.lines().map(String::from).collect();
    let summary = lines.pop().unwrap_or_default();
    (out.status.code().unwrap_or(-1), lines, summary)
}

/// `FILE:LINE:COLUMN: message` with LINE and COLUMN at least 1.
fn positioned(line: &str, file: &str) -> bool {
    let Some(rest) = line.strip_prefix(&format!("{file}:")) else {
        return false;
    };
    let mut parts = rest.splitn(3, ':');
    let (Some(l), Some(c), Some(msg)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    l.parse::<usize>().is_ok_and(|l| l >= 1)
        && c.parse::<usize>().is_ok_and(|c| c >= 1)
        && msg.starts_with(' ')
        && msg.trim().len() > 3
}

#[test]
fn every_broken_playbook_gives_exactly_its_expected_errors() {
    let bless = std::env::var_os("RESPOND_BLESS").is_some();
    let names = cases();
    assert!(names.len() >= 30, "the corpus has {} cases", names.len());
    let mut failures = Vec::new();
    let mut all_lines = Vec::new();
    for name in &names {
        let file = format!("{name}.yaml");
        let (code, lines, summary) = validate(std::slice::from_ref(&file));
        let expected_path = corpus().join(format!("{name}.expected"));
        if bless {
            std::fs::write(&expected_path, lines.join("\n") + "\n").unwrap();
        }
        let expected: Vec<String> = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()))
            .lines()
            .map(String::from)
            .collect();
        if code != 2 {
            failures.push(format!("{file}: exit code {code}, expected 2"));
        }
        let n = expected.len();
        let want_summary = format!(
            "error: {n} problem{} found; nothing was run",
            if n == 1 { "" } else { "s" }
        );
        if summary != want_summary {
            failures.push(format!(
                "{file}: last line {summary:?}, expected {want_summary:?}"
            ));
        }
        if lines != expected {
            failures.push(format!(
                "{file}:\n  got:\n    {}\n  expected:\n    {}",
                lines.join("\n    "),
                expected.join("\n    ")
            ));
        }
        for line in &expected {
            if !positioned(line, &file) {
                failures.push(format!("{file}: not FILE:LINE:COLUMN: message: {line}"));
            }
        }
        all_lines.extend(expected);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // All at once: every problem in every file, in file order, one exit.
    let files: Vec<String> = names.iter().map(|n| format!("{n}.yaml")).collect();
    let (code, lines, summary) = validate(&files);
    assert_eq!(code, 2);
    assert_eq!(lines, all_lines);
    assert_eq!(
        summary,
        format!("error: {} problems found; nothing was run", all_lines.len())
    );
}

#[test]
fn every_expected_file_has_its_playbook() {
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".expected") {
            assert!(
                corpus().join(format!("{stem}.yaml")).is_file(),
                "{name} has no {stem}.yaml"
            );
        } else {
            assert!(name.ends_with(".yaml"), "stray file {name}");
        }
    }
}
