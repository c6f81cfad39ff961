//! No secret in anything respond writes. Drills and live-style runs (`--base-url` to the
//! in-process simulator, credentials from the environment or a key file) with known keys;
//! every byte of stdout, stderr, every file in the incident folder and the simulator's
//! request log file is scanned for the secrets, for the full API keys (shown only as
//! `AbCd…wXyZ`) and for signatures. Key files readable by others are refused.
use crate::support;

use std::path::{Path, PathBuf};

use respond::sim::{Scenario, SimConfig, SimServer};
use support::{respond, Run};

// Made-up keys in Binance's format (64 letters and digits), mixed case so that no part of
// them can turn up by chance inside a lowercase hex hash.
const LEAKED_KEY: &str = "KEYaQ7mZ2pLx9WvT4nR8sYb3Jc6Hd1Fg5Ke0Mu2Oi7Pq9Rs4Tv8Wx3Yz6AbCdEf1";
const LEAKED_SECRET: &str = "SECrT5uV8wX1yZ4aB7cD0eF3gH6iJ9kL2mN5oP8qR1sT4uV7wX0yZ3aB6cD9eF2g";
const RESPONDER_KEY: &str = "RSPkY2bN5mQ8rT1vW4xZ7aC0dF3gJ6kM9pS2uV5yB8eH1iL4nO7qR0tU3wX6zA9c";
const RESPONDER_SECRET: &str = "RSPsE4cR7eT0zQ3wE6rT9yU2iO5pA8sD1fG4hJ7kL0zX3cV6bN9mQ2wE5rT8yU1i";

/// The built-in scenario with the leaked key replaced by ours.
fn scenario_text() -> String {
    let text = respond::sim::BUILTIN_LEAKED_KEY;
    let original = Scenario::builtin_leaked_key();
    let leaked = &original.keys[0];
    let text = text
        .replace(&leaked.api_key, LEAKED_KEY)
        .replace(&leaked.secret, LEAKED_SECRET);
    assert!(
        text.contains(LEAKED_SECRET),
        "the scenario carries our secret"
    );
    text
}

async fn sim_with_log(log: &Path) -> SimServer {
    // Without the listed spot symbols: three full runs inside a minute would otherwise
    // wait for the weight budget their deep scans spend.
    let text = scenario_text().replace("listed_spot_symbols: 150\n", "");
    let mut config = SimConfig::new(Scenario::parse(&text, "secrets.yaml").unwrap());
    config.request_log = Some(log.to_path_buf());
    SimServer::start(config).await.unwrap()
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Windows of `len` characters of `value`.
fn windows(value: &str, len: usize) -> impl Iterator<Item = &str> {
    (0..=value.len() - len).map(move |i| &value[i..i + len])
}

fn masked(key: &str) -> String {
    format!("{}…{}", &key[..4], &key[key.len() - 4..])
}

/// Everything a run wrote: (where, bytes).
fn written(run: &Run, dirs: &[&Path]) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![
        ("stdout".to_string(), run.stdout.clone().into_bytes()),
        ("stderr".to_string(), run.stderr.clone().into_bytes()),
    ];
    for dir in dirs {
        for f in files(dir) {
            out.push((f.display().to_string(), std::fs::read(&f).unwrap()));
        }
    }
    out
}

/// No secret and no 16-character piece of one; no full API key and no 6-character piece
/// of one (the mask shows 4 and 4); no signature parameter.
#[track_caller]
fn assert_clean(outputs: &[(String, Vec<u8>)], secrets: &[&str], keys: &[&str]) {
    for (place, bytes) in outputs {
        let text = String::from_utf8_lossy(bytes);
        for secret in secrets {
            for piece in windows(secret, 16) {
                assert!(
                    !text.contains(piece),
                    "{place} holds part of a secret ({piece})"
                );
            }
        }
        for key in keys {
            for piece in windows(key, 6) {
                assert!(
                    !text.contains(piece),
                    "{place} holds part of an API key beyond its mask ({piece})"
                );
            }
        }
        assert!(
            !text.contains("signature="),
            "{place} holds a request signature"
        );
    }
}

#[track_caller]
fn assert_masked_key_shown(outputs: &[(String, Vec<u8>)], key: &str) {
    let mask = masked(key);
    for place in ["stderr", "report.md", "report.json", "journal.jsonl"] {
        let (_, bytes) = outputs
            .iter()
            .find(|(p, _)| p.ends_with(place))
            .unwrap_or_else(|| panic!("no {place} written"));
        assert!(
            String::from_utf8_lossy(bytes).contains(&mask),
            "{place} names the key as {mask}"
        );
    }
}

/// A verbose live run with the key file `key_file` (private) completes to its manual
/// steps, and neither it nor the simulator's log in `log_dir` shows `secrets` or more
/// of `api_key` than its mask, which the run does show.
async fn key_file_run_keeps_secrets(
    cwd: &Path,
    url: &str,
    key_file: &Path,
    log_dir: &Path,
    secrets: &[&str],
    api_key: &str,
) {
    let run = with_key_file(cwd, &["--yes", "-vv"], url, key_file.to_str().unwrap()).await;
    run.expect_code(5);
    let outputs = written(&run, &[&cwd.join("incidents"), log_dir]);
    assert_clean(&outputs, secrets, &[api_key]);
    assert_masked_key_shown(&outputs, api_key);
}

/// `respond compromised FLAGS --base-url URL --key-file KEY_FILE` in `cwd`.
async fn with_key_file(cwd: &Path, flags: &[&str], url: &str, key_file: &str) -> Run {
    let mut args = vec!["compromised"];
    args.extend(flags);
    args.extend(["--base-url", url, "--key-file", key_file]);
    respond(cwd, &args, &[]).await
}

/// The arguments of an unattended drill of `scenario` whose simulator logs its requests
/// to `log_file`, then `extra`.
fn logged_drill<'a>(scenario: &'a str, log_file: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "compromised",
        "--drill",
        "--yes",
        "--scenario",
        scenario,
        "--sim-request-log",
        log_file,
    ];
    args.extend_from_slice(extra);
    args
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drill_writes_no_secret_and_only_the_masked_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scenario.yaml"), scenario_text()).unwrap();
    let log = dir.path().join("sim-log");
    std::fs::create_dir(&log).unwrap();
    for extra in [&["-vv"][..], &["--json"][..]] {
        let args = logged_drill("scenario.yaml", "sim-log/requests.jsonl", extra);
        // Credentials in the environment are ignored by a drill; they must not leak either.
        let env = [
            ("BINANCE_API_KEY", RESPONDER_KEY),
            ("BINANCE_API_SECRET", RESPONDER_SECRET),
        ];
        let run = respond(dir.path(), &args, &env).await;
        run.expect_code(0);
        let outputs = written(&run, &[&dir.path().join("incidents"), &log]);
        assert!(outputs.len() > 10, "the incident folder was written");
        assert!(
            outputs.iter().any(|(p, _)| p.ends_with("requests.jsonl")),
            "the simulator's log was written"
        );
        assert_clean(
            &outputs,
            &[LEAKED_SECRET, RESPONDER_SECRET],
            &[LEAKED_KEY, RESPONDER_KEY],
        );
        if extra == ["-vv"] {
            assert_masked_key_shown(&outputs, LEAKED_KEY);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_style_run_writes_no_secret_and_only_the_masked_key() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("sim-log");
    std::fs::create_dir(&log_dir).unwrap();
    let server = sim_with_log(&log_dir.join("requests.jsonl")).await;
    let responder = server.create_responder_key();
    let env = [
        ("BINANCE_API_KEY", LEAKED_KEY),
        ("BINANCE_API_SECRET", LEAKED_SECRET),
        ("BINANCE_RESPONDER_API_KEY", responder.api_key.as_str()),
        ("BINANCE_RESPONDER_API_SECRET", responder.secret.as_str()),
    ];
    for extra in [&["-vv"][..], &["--json"][..], &["--dry-run", "-v"][..]] {
        let mut args = vec!["compromised", "--yes", "--base-url", server.url()];
        args.extend_from_slice(extra);
        let run = respond(dir.path(), &args, &env).await;
        assert_eq!(run.code, 5, "{args:?}: {}", run.stderr);
        let outputs = written(&run, &[&dir.path().join("incidents"), &log_dir]);
        assert_clean(
            &outputs,
            &[LEAKED_SECRET, &responder.secret],
            &[LEAKED_KEY, &responder.api_key],
        );
        if extra == ["-vv"] {
            assert_masked_key_shown(&outputs, LEAKED_KEY);
        }
    }
    // And the record checked afterwards.
    for incident in std::fs::read_dir(dir.path().join("incidents")).unwrap() {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_respond"))
            .args(["report", "verify"])
            .arg(incident.unwrap().path())
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains(LEAKED_SECRET) && !text.contains(LEAKED_KEY));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_credentials_are_reported_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("sim-log");
    std::fs::create_dir(&log_dir).unwrap();
    let server = sim_with_log(&log_dir.join("requests.jsonl")).await;
    // The right key with a wrong secret (-1022), then a key Binance does not know (-2015).
    let wrong_secret = "WRoNgS3cR3tW1thUpP3rCaS3AnDD1g1tS0N0H3xHaShC4nC0nTa1nP4rT0f1t0k";
    for (key, secret) in [(LEAKED_KEY, wrong_secret), (RESPONDER_KEY, LEAKED_SECRET)] {
        let env = [("BINANCE_API_KEY", key), ("BINANCE_API_SECRET", secret)];
        let run = respond(
            dir.path(),
            &["compromised", "--yes", "-vv", "--base-url", server.url()],
            &env,
        )
        .await;
        if secret == wrong_secret {
            // A wrong secret says nothing about the key: nothing is skipped as if it were
            // dead; the run stops at triage (credentials rejected, nothing done: exit 3).
            run.expect_code(3);
            assert!(
                run.stderr.contains(&format!(
                    "the secret given does not belong to key {}",
                    masked(LEAKED_KEY)
                )),
                "{}",
                run.stderr
            );
            run.expect_stderr("may still be LIVE");
        } else {
            run.expect_stderr("already rejected at triage");
        }
        let outputs = written(&run, &[&dir.path().join("incidents"), &log_dir]);
        assert_clean(
            &outputs,
            &[wrong_secret, LEAKED_SECRET],
            &[LEAKED_KEY, RESPONDER_KEY],
        );
    }
}

fn key_file(dir: &Path, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("leaked-{mode:o}.key"));
    std::fs::write(
        &path,
        format!("api_key: {LEAKED_KEY}\nsecret: {LEAKED_SECRET}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_file_others_can_read_is_refused_with_chmod_600() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("sim-log");
    std::fs::create_dir(&log_dir).unwrap();
    let server = sim_with_log(&log_dir.join("requests.jsonl")).await;
    for mode in [0o644, 0o640, 0o604, 0o660] {
        let path = key_file(dir.path(), mode);
        let run = with_key_file(dir.path(), &["--yes"], server.url(), path.to_str().unwrap()).await;
        assert_eq!(run.code, 2, "mode {mode:o}: {}", run.stderr);
        assert!(
            run.stderr.contains("chmod 600"),
            "mode {mode:o}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(&format!("{mode:o}")),
            "names the mode: {}",
            run.stderr
        );
        assert!(!dir.path().join("incidents").exists(), "nothing started");
        assert_clean(&written(&run, &[]), &[LEAKED_SECRET], &[LEAKED_KEY]);
    }
    assert!(
        server.request_log().is_empty(),
        "nothing was sent with a refused key file"
    );

    // The same file, private, works; and its contents never show.
    let path = key_file(dir.path(), 0o600);
    key_file_run_keeps_secrets(
        dir.path(),
        server.url(),
        &path,
        &log_dir,
        &[LEAKED_SECRET],
        LEAKED_KEY,
    )
    .await;
}

/// The base64 body of a PEM block: what must never be written anywhere.
fn pem_body(pem: &str) -> String {
    pem.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn ed25519_and_rsa_private_keys_are_never_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ed_path = root.join("playbooks/scenarios/leaked-ed25519.yaml");
    let rsa_path = root.join("playbooks/scenarios/leaked-rsa.yaml");
    let ed = Scenario::load(&ed_path).unwrap().keys[0].clone();
    let rsa = Scenario::load(&rsa_path).unwrap().keys[0].clone();
    let ed_pem = ed.private_key.clone().unwrap();
    let rsa_pem = rsa.private_key.clone().unwrap();
    let bodies = [pem_body(&ed_pem), pem_body(&rsa_pem)];
    let secrets: Vec<&str> = bodies.iter().map(String::as_str).collect();

    // A drill with the Ed25519 scenario: its private key reaches respond like a secret.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sim-log");
    std::fs::create_dir(&log).unwrap();
    for extra in [&["-vv"][..], &["--json"][..]] {
        let log_file = log.join(format!("requests{}.jsonl", extra[0]));
        let args = logged_drill(ed_path.to_str().unwrap(), log_file.to_str().unwrap(), extra);
        let run = respond(dir.path(), &args, &[]).await;
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        let outputs = written(&run, &[&dir.path().join("incidents"), &log]);
        assert_clean(&outputs, &secrets, &[&ed.api_key]);
        if extra == ["-vv"] {
            assert_masked_key_shown(&outputs, &ed.api_key);
        }
    }

    // Live-style, the RSA PEM inline in a 0600 key file.
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("sim-log");
    std::fs::create_dir(&log_dir).unwrap();
    let mut scenario = Scenario::load(&rsa_path).unwrap();
    scenario.attacker = None;
    let mut config = SimConfig::new(scenario);
    config.request_log = Some(log_dir.join("requests.jsonl"));
    let server = SimServer::start(config).await.unwrap();
    let key_file = {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.path().join("rsa.key");
        std::fs::write(
            &path,
            format!(
                "api_key: {}\nprivate_key: {}\n",
                rsa.api_key,
                rsa_pem.trim()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    key_file_run_keeps_secrets(
        dir.path(),
        server.url(),
        &key_file,
        &log_dir,
        &secrets,
        &rsa.api_key,
    )
    .await;

    // The same key file readable by the group is refused before anything is sent.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let before = server.request_log().len();
    let run = with_key_file(
        dir.path(),
        &["--yes"],
        server.url(),
        key_file.to_str().unwrap(),
    )
    .await;
    run.expect_code(2);
    run.expect_stderr("chmod 600");
    assert_eq!(server.request_log().len(), before);
    assert_clean(&written(&run, &[]), &secrets, &[&rsa.api_key]);
}
