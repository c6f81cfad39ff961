//! Shared helpers for tests that run the real `respond` binary against the simulator
//! started in this test process on an ephemeral 127.0.0.1 port.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use respond::sim::{Scenario, SimConfig, SimServer};

/// The outcome of one run of the binary, with what is needed to explain a failure.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The command line as run (credentials are in the environment, never here).
    pub command: String,
    pub cwd: PathBuf,
    /// The temporary folder of a [`Test::new`] run, kept as long as its outcome.
    _dir: Option<tempfile::TempDir>,
}

impl Run {
    /// The incident folder the run printed on stdout.
    #[track_caller]
    pub fn incident(&self, cwd: &Path) -> PathBuf {
        let line = self
            .stdout
            .lines()
            .last()
            .unwrap_or_else(|| panic!("no incident folder printed\n{}", self.dump()));
        cwd.join(line.trim())
    }

    /// The incident folder, relative to the folder the run ran in.
    #[track_caller]
    pub fn incident_dir(&self) -> PathBuf {
        self.incident(&self.cwd)
    }

    /// Fail with the whole story unless the run exited with `expected`.
    #[track_caller]
    pub fn expect_code(&self, expected: i32) -> &Run {
        if self.code != expected {
            panic!(
                "expected exit {expected}, got {}\n{}",
                self.code,
                self.dump()
            );
        }
        self
    }

    /// Fail with the whole story unless stderr says `text`.
    #[track_caller]
    pub fn expect_stderr(&self, text: &str) -> &Run {
        if !self.stderr.contains(text) {
            panic!("stderr does not say {text:?}\n{}", self.dump());
        }
        self
    }

    /// `respond report verify` passes on the incident this run printed.
    #[track_caller]
    pub fn verify_report(&self) -> &Run {
        assert_verifies(&self.incident_dir());
        self
    }

    /// The command, its exit code, stdout, stderr, and the files of every incident
    /// folder under the folder it ran in with the journal's last lines.
    pub fn dump(&self) -> String {
        let mut out = format!(
            "--- command (in {}): {}\n--- exit: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.cwd.display(),
            self.command,
            self.code,
            self.stdout,
            self.stderr
        );
        let incidents = self.cwd.join("incidents");
        for incident in std::fs::read_dir(&incidents)
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = incident.path();
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .into_iter()
                .flatten()
                .flatten()
                .map(|f| f.file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            out += &format!("\n--- {}: {}", path.display(), files.join(" "));
            if let Ok(journal) = std::fs::read_to_string(path.join("journal.jsonl")) {
                let lines: Vec<&str> = journal.lines().collect();
                let tail = &lines[lines.len().saturating_sub(5)..];
                out += &format!("\n--- last journal lines:\n{}", tail.join("\n"));
            }
        }
        out
    }
}

/// One run of the real binary, built up like a command line: the environment is
/// cleared (no credentials or settings leak in from the machine running the tests),
/// stdin is not a terminal, and colour is off.
///
/// ```ignore
/// let sim = support::sim(None).await;
/// Test::new().against(&sim).leaked_key(&sim).args(&["compromised", "--yes"])
///     .run().await.expect_code(5).verify_report();
/// ```
pub struct Test {
    cwd: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Test {
    /// In a fresh temporary folder, kept until the [`Test`] is dropped: use
    /// [`Test::in_dir`] with a folder of your own to look at files after the run.
    pub fn new() -> Test {
        let dir = tempfile::tempdir().expect("a temporary folder");
        Test {
            cwd: dir.path().to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            _dir: Some(dir),
        }
    }

    /// In `cwd`, which the caller keeps.
    pub fn in_dir(cwd: &Path) -> Test {
        Test {
            cwd: cwd.to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            _dir: None,
        }
    }

    pub fn args(mut self, args: &[&str]) -> Test {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Test {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn envs(mut self, env: &[(&str, &str)]) -> Test {
        for (k, v) in env {
            self.env.push((k.to_string(), v.to_string()));
        }
        self
    }

    /// The simulator's leaked key as `BINANCE_API_KEY`/`BINANCE_API_SECRET`.
    pub fn leaked_key(mut self, sim: &SimServer) -> Test {
        self.env.extend(leaked_env(sim));
        self
    }

    /// `--base-url` of the simulator (after the arguments given so far).
    pub fn against(mut self, sim: &SimServer) -> Test {
        self.args.push("--base-url".into());
        self.args.push(sim.url().to_string());
        self
    }

    fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_respond"));
        cmd.current_dir(&self.cwd)
            .args(&self.args)
            .env_clear()
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null());
        // The runtime's and the tools' own settings, never respond's.
        for name in ["PATH", "RUST_BACKTRACE", "LLVM_PROFILE_FILE"] {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn outcome(self, out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            command: format!("respond {}", self.args.join(" ")),
            cwd: self.cwd,
            _dir: self._dir,
        }
    }

    pub async fn run(self) -> Run {
        let out = tokio::process::Command::from(self.command())
            .output()
            .await
            .expect("run respond");
        self.outcome(out)
    }

    /// Start the run in the background (stdout and stderr piped), for a test that acts on
    /// it while it runs: a signal, a second process. Read its stderr with [`stderr_of`].
    pub fn spawn(self) -> tokio::process::Child {
        let mut cmd = tokio::process::Command::from(self.command());
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start respond")
    }

    /// Start the run in the background with its output discarded, for a test that
    /// watches the simulator and kills the run.
    pub fn spawn_silent(self) -> tokio::process::Child {
        let mut cmd = tokio::process::Command::from(self.command());
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start respond")
    }

    /// [`Test::run`] for tests without a runtime.
    pub fn run_sync(self) -> Run {
        let out = self.command().output().expect("run respond");
        self.outcome(out)
    }
}

/// Everything a [`Test::spawn`]ed run wrote to stderr, once it has ended.
pub async fn stderr_of(child: &mut tokio::process::Child) -> String {
    let mut stderr = String::new();
    if let Some(pipe) = child.stderr.as_mut() {
        let _ = tokio::io::AsyncReadExt::read_to_string(pipe, &mut stderr).await;
    }
    stderr
}

/// Run `respond` with `args` in `cwd`, without a terminal, with only the given variables
/// in its environment.
pub async fn respond(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    Test::in_dir(cwd).args(args).envs(env).run().await
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

/// The built-in playbook's manual steps, in order: what an unattended run leaves pending.
pub const MANUAL_STEPS: [&str; 4] = [
    "delete-key",
    "change-password",
    "check-unknown-keys",
    "new-key",
];

/// `respond compromised --yes` in `cwd` against `sim`, with its leaked key.
pub async fn compromised_yes(cwd: &Path, sim: &SimServer) -> Run {
    Test::in_dir(cwd)
        .args(&["compromised", "--yes"])
        .against(sim)
        .leaked_key(sim)
        .run()
        .await
}

/// The exchange answers at once again; then `respond resume INCIDENT --yes` in `cwd`.
pub async fn resume_without_latency(
    sim: &SimServer,
    cwd: &Path,
    incident: &Path,
    env: &[(String, String)],
) -> Run {
    let mut faults = sim.faults();
    faults.latency = std::time::Duration::ZERO;
    sim.set_faults(faults);
    respond(
        cwd,
        &["resume", incident.to_str().unwrap(), "--yes"],
        &env_refs(env),
    )
    .await
}

/// The common arguments of a live-style run against `url` (`compromised --yes`, a 2 s
/// weight window), then `extra`.
pub fn live_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "compromised",
        "--yes",
        "--base-url",
        url,
        "--weight-window",
        "2s",
    ];
    args.extend_from_slice(extra);
    args
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

/// `respond compromised --drill --yes --scenario SCENARIO` in `cwd`.
pub async fn drill(cwd: &Path, scenario: &str) -> Run {
    drill_with(cwd, &["--scenario", scenario]).await
}

/// `respond compromised --drill --yes ARGS` in `cwd`.
pub async fn drill_with(cwd: &Path, args: &[&str]) -> Run {
    let all: Vec<&str> = ["compromised", "--drill", "--yes"]
        .iter()
        .chain(args)
        .copied()
        .collect();
    respond(cwd, &all, &[]).await
}

/// The titles of a `report.json`'s findings.
pub fn finding_titles(report: &serde_json::Value) -> Vec<&str> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["title"].as_str().unwrap())
        .collect()
}

/// Step `id` of a `report.json`.
#[track_caller]
pub fn step<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in the report"))
}

/// The ids of a `report.json`'s steps still waiting for a person.
pub fn pending(report: &serde_json::Value) -> Vec<&str> {
    report["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

/// The first incident folder under `cwd/incidents`.
pub fn first_incident(cwd: &Path) -> PathBuf {
    std::fs::read_dir(cwd.join("incidents"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}
