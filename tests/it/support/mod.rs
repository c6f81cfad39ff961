//! Shared helpers for tests that run the real `respond` binary against the simulator
//! started in this test process on an ephemeral 127.0.0.1 port.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use respond::sim::{Scenario, SimConfig, SimServer};

/// The outcome of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The incident folder the run printed on stdout.
    #[track_caller]
    pub fn incident(&self, cwd: &Path) -> PathBuf {
        let line = self
            .stdout
            .lines()
            .last()
            .unwrap_or_else(|| panic!("no incident folder printed\n{}", self.stderr));
        cwd.join(line.trim())
    }
}

/// Run `respond` with `args` in `cwd`, without a terminal, with only the given variables
/// as credentials.
pub async fn respond(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_respond"));
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("BINANCE_API_KEY")
        .env_remove("BINANCE_API_SECRET")
        .env_remove("BINANCE_RESPONDER_API_KEY")
        .env_remove("BINANCE_RESPONDER_API_SECRET")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("run respond");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The simulator with a scenario (the built-in one, optionally edited).
pub async fn sim(scenario_text: Option<&str>) -> SimServer {
    let scenario = match scenario_text {
        Some(text) => Scenario::parse(text, "test.yaml").unwrap_or_else(|d| panic!("{d}")),
        None => Scenario::builtin_leaked_key(),
    };
    SimServer::start(SimConfig::new(scenario))
        .await
        .expect("start the simulator")
}

/// The leaked key's credentials as environment variables.
pub fn leaked_env(sim: &SimServer) -> Vec<(String, String)> {
    let key = sim.leaked_key();
    vec![
        ("BINANCE_API_KEY".into(), key.api_key),
        ("BINANCE_API_SECRET".into(), key.secret),
    ]
}

pub fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// Rows of a CSV file as maps from column to cell (RFC 4180 quoting: a quoted cell may
/// hold commas and doubled quotes; the test data has no line breaks inside cells).
pub fn csv_rows(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header = csv_cells(lines.next().unwrap_or(""));
    lines
        .filter(|l| !l.is_empty())
        .map(|l| header.iter().cloned().zip(csv_cells(l)).collect())
        .collect()
}

fn csv_cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cells.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(String::new()),
            (c, _) => cells.last_mut().unwrap().push(c),
        }
    }
    cells
}

/// `respond report verify DIR` passes: the journal's chain is intact and the report
/// matches it.
#[track_caller]
pub fn assert_verifies(incident: &Path) {
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_respond"))
        .args(["report", "verify"])
        .arg(incident)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "report verify {}: {}{}",
        incident.display(),
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
