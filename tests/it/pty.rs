//! The real terminal UI, driven through a pseudo-terminal: what the screen shows and
//! how answers at the prompts end up in the incident record.
use std::process::Command;
use std::time::Duration;

use nix::sys::wait::WaitStatus;
use rexpect::session::{spawn_command, PtySession};

const DOWN: &str = "\x1b[B";

fn spawn(dir: &std::path::Path, args: &[&str]) -> PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_respond"));
    cmd.current_dir(dir)
        .args(args)
        .env("TERM", "xterm-256color")
        .env("NO_COLOR", "1")
        .env_remove("BINANCE_API_KEY")
        .env_remove("BINANCE_API_SECRET");
    spawn_command(cmd, Some(30_000)).expect("spawn respond in a pty")
}

/// rexpect reads the terminal byte by byte as if each byte were a character; the screen
/// is UTF-8 (`…`, `—`). Wait for `needle` as the screen would show it, and return what
/// came before it, decoded.
fn expect(session: &mut PtySession, needle: &str) -> Result<String, rexpect::error::Error> {
    let raw: String = needle.bytes().map(char::from).collect();
    let before = session.exp_string(&raw)?;
    Ok(decode(&before))
}

/// Wait for a hidden prompt, then type `text` once the prompt has turned the terminal's
/// echo off, and return what came before the prompt. Typed between the prompt's text and
/// that switch, the line would show, and the switch (which flushes pending input, as a
/// password prompt should) would discard it: the prompt would then wait for ever.
fn type_hidden(session: &mut PtySession, prompt: &str, text: &str) -> String {
    use nix::sys::termios::{tcgetattr, LocalFlags};
    let before = expect(session, prompt).unwrap();
    let pty = session.process().get_file_handle().unwrap();
    for _ in 0..1000 {
        let echo = tcgetattr(&pty)
            .unwrap()
            .local_flags
            .contains(LocalFlags::ECHO);
        if !echo {
            session.send_line(text).unwrap();
            return before;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{prompt:?}: echo still on after 10 s");
}

/// Type the leaked key and its secret (or private key file) at their hidden prompts;
/// returns what the screen showed before each.
fn type_credentials(session: &mut PtySession, api_key: &str, secret: &str) -> String {
    type_hidden(session, "API key of the leaked key (input hidden)", api_key)
        + &type_hidden(
            session,
            "API secret of the leaked key (input hidden)",
            secret,
        )
}

/// The text rexpect returned, as the UTF-8 the program wrote.
fn decode(raw: &str) -> String {
    let bytes: Vec<u8> = raw.chars().map(|c| c as u32 as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn exit_code(session: &mut PtySession) -> i32 {
    for _ in 0..300 {
        match session.process().status() {
            Some(WaitStatus::Exited(_, code)) => return code,
            Some(WaitStatus::Signaled(_, sig, _)) => panic!("killed by {sig:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    panic!("respond did not exit within 30 s");
}

fn only_incident(dir: &std::path::Path) -> std::path::PathBuf {
    let mut entries: Vec<_> = std::fs::read_dir(dir.join("incidents"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.pop().unwrap()
}

#[test]
fn manual_steps_wait_for_done_and_record_a_skip_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spawn(dir.path(), &["run", "example"]);
    expect(&mut s, "Identify the key").unwrap();
    expect(&mut s, "Find the key that may have leaked").unwrap();
    expect(&mut s, "is it done?").unwrap();
    s.send_line("").unwrap(); // first choice: done
    expect(&mut s, "Tell the team").unwrap();
    expect(&mut s, "is it done?").unwrap();
    s.send(DOWN).unwrap();
    s.send_line("").unwrap(); // second choice: skip
    expect(&mut s, "Reason for skipping").unwrap();
    s.send_line("channel is down").unwrap();
    expect(&mut s, "still to do: Tell the team").unwrap();
    assert_eq!(exit_code(&mut s), 5);
    let incident = only_incident(dir.path());
    let md = std::fs::read_to_string(incident.join("report.md")).unwrap();
    assert!(md.contains("channel is down"), "{md}");
    assert!(md.contains("| `find-the-key` | done |"), "{md}");
}

#[test]
fn abort_at_a_manual_step_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spawn(dir.path(), &["run", "example"]);
    expect(&mut s, "is it done?").unwrap();
    s.send(DOWN).unwrap();
    s.send(DOWN).unwrap();
    s.send_line("").unwrap(); // third choice: abort
    expect(&mut s, "outcome: aborted").unwrap();
    assert_eq!(exit_code(&mut s), 4);
    let incident = only_incident(dir.path());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(incident.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json["outcome"], "aborted");
    assert_eq!(
        json["steps"].as_array().unwrap().len(),
        1,
        "nothing after the abort started"
    );
}

// ---- interactive drills: the destructive prompt, manual steps, Ctrl-C, resume ---------

/// At the password step, the third choice: abort (enough for the test at hand).
fn abort_at_the_password_step(s: &mut PtySession) {
    expect(s, "Change the account password and check 2FA — is it done?").unwrap();
    s.send(DOWN).unwrap();
    s.send(DOWN).unwrap();
    s.send_line("").unwrap();
}

/// `respond compromised --drill` on the calm scenario, stopped at the destructive
/// prompt.
fn calm_drill_at_the_cancel(dir: &std::path::Path) -> PtySession {
    let scenario = calm_scenario(dir);
    let mut s = spawn(dir, &["compromised", "--drill", "--scenario", &scenario]);
    expect(&mut s, "Cancel every open order?").unwrap();
    s
}

/// The built-in scenario without its attacker, so no "cancel again?" question appears
/// at a moment that depends on timing.
fn calm_scenario(dir: &std::path::Path) -> String {
    let text = respond::sim::BUILTIN_LEAKED_KEY;
    let cut = text.find("\nattacker:").expect("an attacker to remove");
    let path = dir.join("calm.yaml");
    std::fs::write(&path, &text[..cut + 1]).unwrap();
    path.to_str().unwrap().to_string()
}

/// The key signed (triage read the account with it); the operator aborts at the cancel
/// and the run exits 4.
fn signed_then_aborted(s: &mut PtySession) {
    expect(s, "is LIVE").unwrap();
    expect(s, "Cancel every open order?").unwrap();
    s.send(DOWN).unwrap();
    s.send(DOWN).unwrap();
    s.send_line("").unwrap(); // abort
    s.exp_eof().unwrap();
    assert_eq!(exit_code(s), 4);
}

/// The run in `s` exits with `code`, leaving one incident in `dir` whose record
/// verifies: that incident and its report.
fn ended(
    s: &mut PtySession,
    dir: &std::path::Path,
    code: i32,
) -> (std::path::PathBuf, serde_json::Value) {
    assert_eq!(exit_code(s), code);
    let incident = only_incident(dir);
    assert_verifies(&incident);
    let r = report(&incident);
    (incident, r)
}

fn report(incident: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(incident.join("report.json")).unwrap()).unwrap()
}

fn step_status(report: &serde_json::Value, id: &str) -> String {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .map(|s| s["status"].as_str().unwrap().to_string())
        .unwrap_or_else(|| "not started".into())
}

use crate::support::assert_verifies;

#[test]
fn drill_yes_at_the_destructive_prompt_cancels_and_done_deletes_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = calm_scenario(dir.path());
    let mut s = spawn(
        dir.path(),
        &["compromised", "--drill", "--scenario", &scenario],
    );
    expect(&mut s, "[DRILL]").unwrap();
    expect(&mut s, "Key 0lR8…LRqr is LIVE").unwrap();
    // The preview: what would be cancelled, before the question.
    expect(
        &mut s,
        "8 open orders on 6 symbols in 4 markets would be cancelled",
    )
    .unwrap();
    expect(&mut s, "XYZBTC").unwrap();
    expect(&mut s, "Cancel every open order?").unwrap();
    expect(&mut s, "yes, do it now").unwrap();
    s.send_line("").unwrap(); // first choice: yes
    expect(
        &mut s,
        "cancel-orders: done — 8 order(s) cancelled; no open order left",
    )
    .unwrap();
    expect(&mut s, "Delete the key in API Management — is it done?").unwrap();
    s.send_line("").unwrap(); // done: the simulator deletes the key
    expect(&mut s, "drill: the simulator carried this out: deleted key").unwrap();
    expect(&mut s, "0lR8…LRqr is dead").unwrap();
    abort_at_the_password_step(&mut s);
    expect(&mut s, "outcome: aborted (exit code 4)").unwrap();
    let (incident, r) = ended(&mut s, dir.path(), 4);
    assert_eq!(step_status(&r, "cancel-orders"), "ok");
    assert_eq!(step_status(&r, "delete-key"), "ok");
    assert_eq!(step_status(&r, "verify-revoked"), "ok");
    assert_eq!(step_status(&r, "change-password"), "aborted");
    let journal = std::fs::read_to_string(incident.join("journal.jsonl")).unwrap();
    assert!(
        journal.contains(r#""step":"cancel-orders","answer":"yes""#)
            && journal.contains(r#""by":"operator""#),
        "the operator's yes is in the record"
    );
}

#[test]
fn drill_skip_with_a_reason_at_the_destructive_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = calm_drill_at_the_cancel(dir.path());
    s.send(DOWN).unwrap();
    s.send_line("").unwrap(); // second choice: skip
    expect(&mut s, "Reason for skipping").unwrap();
    s.send_line("the desk is flattening these by hand").unwrap();
    expect(
        &mut s,
        "cancel-orders: skipped — skipped by the operator: the desk is flattening these by hand",
    )
    .unwrap();
    // The run goes on to the evidence, then the manual deletion.
    expect(&mut s, "Pull recent trades").unwrap();
    expect(&mut s, "Delete the key in API Management — is it done?").unwrap();
    s.send(DOWN).unwrap();
    s.send(DOWN).unwrap();
    s.send_line("").unwrap(); // abort
    expect(&mut s, "outcome: aborted").unwrap();
    let (incident, r) = ended(&mut s, dir.path(), 4);
    assert_eq!(step_status(&r, "cancel-orders"), "skipped");
    let md = std::fs::read_to_string(incident.join("report.md")).unwrap();
    assert!(md.contains("the desk is flattening these by hand"), "{md}");
    let cancelled =
        std::fs::read_to_string(incident.join("evidence/cancelled-orders.csv")).unwrap_or_default();
    assert!(
        cancelled.lines().count() <= 1,
        "nothing cancelled: {cancelled}"
    );
}

#[test]
fn drill_abort_at_the_destructive_prompt_does_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = calm_drill_at_the_cancel(dir.path());
    s.send(DOWN).unwrap();
    s.send(DOWN).unwrap();
    s.send_line("").unwrap(); // third choice: abort
    expect(
        &mut s,
        "cancel-orders: aborted — aborted by the operator; nothing was done",
    )
    .unwrap();
    expect(&mut s, "outcome: aborted (exit code 4)").unwrap();
    let (_, r) = ended(&mut s, dir.path(), 4);
    assert_eq!(r["outcome"], "aborted");
    assert_eq!(step_status(&r, "cancel-orders"), "aborted");
    assert_eq!(step_status(&r, "balances"), "not started");
}

#[test]
fn ctrl_c_during_a_slow_pull_exits_130_and_resume_finishes_the_incident() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = calm_scenario(dir.path());
    // Every answer from the simulator takes 300 ms, so the pulls take seconds.
    let mut s = spawn(
        dir.path(),
        &[
            "compromised",
            "--drill",
            "--yes",
            "--scenario",
            &scenario,
            "--sim-fault",
            "latency=300",
        ],
    );
    expect(&mut s, "cancel-orders: done — 8 order(s) cancelled").unwrap();
    expect(&mut s, "Pull recent trades").unwrap();
    expect(&mut s, "examining").unwrap();
    s.send_control('c').unwrap();
    expect(&mut s, "trades: interrupted — interrupted by SIGINT").unwrap();
    expect(&mut s, "outcome: interrupted (exit code 130)").unwrap();
    expect(&mut s, "resume with: respond resume --drill ").unwrap();
    let (incident, r) = ended(&mut s, dir.path(), 130);
    assert_eq!(r["outcome"], "interrupted");
    assert_eq!(step_status(&r, "cancel-orders"), "ok");
    assert_eq!(step_status(&r, "trades"), "interrupted");
    let md = std::fs::read_to_string(incident.join("report.md")).unwrap();
    assert!(md.contains("respond resume --drill"), "{md}");

    // Resume in the same folder: finished steps are not run again, the rest is.
    let mut s = spawn(
        dir.path(),
        &["resume", "--drill", "--yes", incident.to_str().unwrap()],
    );
    expect(&mut s, "incident resumed in").unwrap();
    expect(&mut s, "Pull recent trades").unwrap();
    expect(&mut s, "0lR8…LRqr is dead").unwrap();
    expect(&mut s, "outcome: completed (exit code 0)").unwrap();
    assert_eq!(exit_code(&mut s), 0);
    assert_eq!(only_incident(dir.path()), incident, "the same folder");
    assert_verifies(&incident);
    let r = report(&incident);
    assert_eq!(r["outcome"], "completed");
    for id in [
        "cancel-orders",
        "trades",
        "transfers",
        "verify-revoked",
        "report",
    ] {
        assert_eq!(step_status(&r, id), "ok", "{id}");
    }
    let journal = std::fs::read_to_string(incident.join("journal.jsonl")).unwrap();
    let cancels = journal
        .lines()
        .filter(|l| l.contains(r#""event":"step_started""#) && l.contains("cancel-orders"))
        .count();
    assert_eq!(cancels, 1, "cancel-orders ran once across both sessions");
    assert!(journal.contains(r#""event":"run_resumed""#));
}

#[test]
fn a_long_ban_during_the_pulls_counts_down_on_screen_and_ctrl_c_stops_it() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(calm_scenario(dir.path())).unwrap();
    let mut config =
        respond::sim::SimConfig::new(respond::sim::Scenario::parse(&text, "calm.yaml").unwrap());
    config.weight_window = Duration::from_secs(2);
    config.faults.apply("latency=150").unwrap();
    let server = runtime
        .block_on(respond::sim::SimServer::start(config))
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_respond"));
    cmd.current_dir(dir.path())
        .args(crate::support::live_args(
            server.url(),
            &["--max-rate-limit-wait", "1s"],
        ))
        .envs(crate::support::leaked_env(&server))
        .env("TERM", "xterm-256color")
        .env("NO_COLOR", "1");
    let mut s = spawn_command(cmd, Some(30_000)).expect("spawn respond in a pty");
    // Once the trade pull has an answer, Binance bans this IP for a minute.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                let pulled = server.request_log().iter().any(|e| {
                    e.actor == respond::sim::Actor::Client
                        && e.path == "/api/v3/myTrades"
                        && e.status == 200
                });
                if pulled {
                    let mut faults = server.faults();
                    faults.apply("ban=60000").unwrap();
                    server.set_faults(faults);
                    return;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        expect(&mut s, "Pull recent trades").unwrap();
    });
    expect(&mut s, "Binance has banned this IP on /").unwrap();
    // The countdown: what, which pool, until when, and the time left, ticking.
    expect(&mut s, "waiting for the 418 IP ban on /").unwrap();
    let shown = expect(&mut s, " UTC: ").unwrap();
    assert!(shown.contains("to end at 20"), "{shown}");
    let first = expect(&mut s, "s left").unwrap();
    // The spinner redraws the line several times a second; the time left changes each
    // second.
    let moved = (0..100).any(|_| {
        expect(&mut s, " UTC: ").unwrap();
        expect(&mut s, "s left").unwrap() != first
    });
    assert!(moved, "the countdown moves from {first}");
    s.send_control('c').unwrap();
    expect(&mut s, "trades: interrupted — interrupted by SIGINT").unwrap();
    expect(&mut s, "outcome: interrupted (exit code 130)").unwrap();
    let (_, r) = ended(&mut s, dir.path(), 130);
    assert_eq!(step_status(&r, "trades"), "interrupted");
}

// ---- credentials at a hidden prompt ------------------------------------------------

/// `spawn`, with the terminal's own echo turned back on (rexpect turns it off), so that
/// anything a prompt does not hide would show on the screen.
fn spawn_with_echo(dir: &std::path::Path, args: &[&str]) -> PtySession {
    let mut cmd = Command::new("sh");
    cmd.current_dir(dir)
        .arg("-c")
        .arg(r#"stty echo; exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_respond"))
        .args(args)
        .env("TERM", "xterm-256color")
        .env("NO_COLOR", "1")
        .env_remove("BINANCE_API_KEY")
        .env_remove("BINANCE_API_SECRET")
        .env_remove("BINANCE_RESPONDER_API_KEY")
        .env_remove("BINANCE_RESPONDER_API_SECRET");
    spawn_command(cmd, Some(30_000)).expect("spawn respond in a pty")
}

#[test]
fn credentials_typed_at_the_hidden_prompt_are_not_echoed() {
    // The control: with echo on, what is typed at a plain `read` shows on the screen.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "stty echo; echo echo-is-on; read line; echo got-it"]);
    let mut control = spawn_command(cmd, Some(10_000)).unwrap();
    // Type only once echo is back on, or the control races `stty`.
    expect(&mut control, "echo-is-on").unwrap();
    control.send_line("typed-in-plain-sight").unwrap();
    let shown = expect(&mut control, "got-it").unwrap();
    assert!(shown.contains("typed-in-plain-sight"), "{shown:?}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(respond::sim::SimServer::start(
            respond::sim::SimConfig::builtin(),
        ))
        .unwrap();
    let key = server.leaked_key();
    let dir = tempfile::tempdir().unwrap();
    let mut s = spawn_with_echo(dir.path(), &["compromised", "--base-url", server.url()]);
    let mut screen = String::new();
    screen += &type_credentials(&mut s, &key.api_key, &key.secret);
    // The typed key worked: triage read the account with it.
    screen += &expect(&mut s, "is LIVE").unwrap();
    screen += &expect(&mut s, "Cancel every open order?").unwrap();
    s.send(DOWN).unwrap();
    s.send(DOWN).unwrap();
    s.send_line("").unwrap(); // abort
    screen += &decode(&s.exp_eof().unwrap());
    assert!(
        screen.contains("(input hidden): [hidden]"),
        "the prompt confirms input without showing it:\n{screen}"
    );
    for (what, value) in [("secret", &key.secret), ("API key", &key.api_key)] {
        for piece in [&value[..8], &value[28..36], &value[56..]] {
            assert!(
                !screen.contains(piece),
                "the {what} was echoed ({piece}):\n{screen}"
            );
        }
    }
    assert!(
        screen.contains("Key 0lR8…LRqr "),
        "the key is named by its mask: {screen}"
    );
    assert_eq!(exit_code(&mut s), 4);
    let incident = only_incident(dir.path());
    let journal = std::fs::read_to_string(incident.join("journal.jsonl")).unwrap();
    assert!(!journal.contains(&key.secret) && !journal.contains(&key.api_key));
    drop(server);
}

#[test]
fn the_operator_moves_a_trade_out_of_the_disowned_list_and_the_journal_records_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("evidence.yaml"),
        "version: 1\nname: evidence\nsteps:\n  - id: triage\n    uses: binance.key_permissions\n  - id: trades\n    uses: binance.recent_trades\n    with: { since: 72h }\n  - id: support-message\n    uses: support.message\n",
    )
    .unwrap();
    let mut s = spawn(dir.path(), &["run", "evidence.yaml", "--drill"]);
    expect(&mut s, "Tick the trades you did NOT make").unwrap();
    // The cursor starts on the first trade, ticked (off-market XYZBTC): untick it.
    s.send(" ").unwrap();
    s.send_line("").unwrap();
    expect(&mut s, "support message written to").unwrap();
    assert_eq!(exit_code(&mut s), 0);
    let incident = only_incident(dir.path());
    let journal = std::fs::read_to_string(incident.join("journal.jsonl")).unwrap();
    let moved: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains(r#""answer":"moved to Trades to review""#))
        .collect();
    assert_eq!(moved.len(), 1, "{journal}");
    assert!(moved[0].contains(r#""by":"operator""#), "{}", moved[0]);
    assert!(moved[0].contains("spot XYZBTC"), "{}", moved[0]);
    let message = std::fs::read_to_string(incident.join("support-message.txt")).unwrap();
    assert!(message.contains("Trades I did not make (3):"), "{message}");
    let review = message.split_once("Trades to review").unwrap().1;
    assert!(review.contains("spot XYZBTC"), "{message}");
}

/// The simulator's request log of a drill, as (time, method, path) of respond's requests.
fn client_requests(log: &std::path::Path) -> Vec<(chrono::DateTime<chrono::Utc>, String, String)> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["actor"] == "client")
        .map(|r| {
            (
                r["time"].as_str().unwrap().parse().unwrap(),
                r["method"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn in_a_terminal_nothing_is_cancelled_before_the_operator_says_yes() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = calm_scenario(dir.path());
    let log = dir.path().join("requests.jsonl");
    let mut s = spawn(
        dir.path(),
        &[
            "compromised",
            "--drill",
            "--scenario",
            &scenario,
            "--sim-request-log",
            log.to_str().unwrap(),
        ],
    );
    expect(&mut s, "Cancel every open order?").unwrap();
    expect(&mut s, "yes, do it now").unwrap();
    // The operator reads the preview for a while before answering.
    std::thread::sleep(Duration::from_millis(1500));
    let answered = chrono::Utc::now();
    s.send_line("").unwrap(); // yes
    expect(&mut s, "cancel-orders: done — 8 order(s) cancelled").unwrap();
    expect(&mut s, "Delete the key in API Management — is it done?").unwrap();
    s.send(DOWN).unwrap();
    s.send(DOWN).unwrap();
    s.send_line("").unwrap(); // abort
    assert_eq!(exit_code(&mut s), 4);

    let requests = client_requests(&log);
    let deletes: Vec<_> = requests.iter().filter(|(_, m, _)| m == "DELETE").collect();
    assert!(!deletes.is_empty());
    assert!(
        deletes.iter().all(|(at, _, _)| *at > answered),
        "a cancel before the yes: {deletes:?} (yes at {answered})"
    );
    // The listing went out with the run's first request, long before the question.
    let listed = requests
        .iter()
        .find(|(_, m, p)| m == "GET" && p == "/api/v3/openOrders")
        .expect("listed");
    assert!(
        listed.0 < answered - chrono::Duration::milliseconds(1000),
        "{listed:?}"
    );
    // The listing was older than `settle` (1 s) when the operator answered: listed
    // again, once, before the cancel.
    let first_delete = deletes.iter().map(|(at, _, _)| *at).min().unwrap();
    assert!(
        requests.iter().any(|(at, m, p)| m == "GET"
            && p == "/api/v3/openOrders"
            && *at > answered
            && *at <= first_delete),
        "listed again between the yes and the cancels: {requests:?}"
    );
}

/// The Ed25519 scenario without its attacker, served on a runtime of its own; its
/// leaked key.
fn ed25519_sim() -> (
    respond::sim::scenario::ScenarioKey,
    tokio::runtime::Runtime,
    respond::sim::SimServer,
) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scenario =
        respond::sim::Scenario::load(&root.join("playbooks/scenarios/leaked-ed25519.yaml"))
            .unwrap();
    scenario.attacker = None;
    let key = scenario.keys[0].clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(respond::sim::SimServer::start(
            respond::sim::SimConfig::new(scenario),
        ))
        .unwrap();
    (key, runtime, server)
}

#[test]
fn an_ed25519_key_is_given_at_the_prompt_by_its_pem_file() {
    let (key, _runtime, server) = ed25519_sim();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("leaked.pem");
    std::fs::write(&pem, key.private_key.as_deref().unwrap()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut s = spawn_with_echo(dir.path(), &["compromised", "--base-url", server.url()]);
    type_credentials(&mut s, &key.api_key, pem.to_str().unwrap());
    signed_then_aborted(&mut s);
}

/// At a terminal, the step that deletes keys created in the review window is confirmed
/// like any destructive step, and then each key gets its own question (default no).
#[test]
fn drill_each_flagged_sub_account_key_gets_its_own_question() {
    let dir = tempfile::tempdir().unwrap();
    let text = respond::sim::BUILTIN_SUBACCOUNT_LEAK;
    let cut = text.find("\nattacker:").expect("an attacker to remove");
    let path = dir.path().join("calm-sub.yaml");
    std::fs::write(&path, &text[..cut + 1]).unwrap();
    let mut s = spawn(
        dir.path(),
        &[
            "compromised",
            "--drill",
            "--scenario",
            path.to_str().unwrap(),
        ],
    );
    expect(&mut s, "Cancel every open order?").unwrap();
    s.send_line("").unwrap(); // yes
    expect(&mut s, "belongs to sub-account m***@desk.example").unwrap();
    expect(
        &mut s,
        "Delete the leaked sub-account key with the master key?",
    )
    .unwrap();
    s.send_line("").unwrap(); // yes
    expect(&mut s, "No manual deletion needed").unwrap();
    expect(&mut s, "RP10…BQq7").unwrap();
    expect(
        &mut s,
        "Delete keys on the sub-account created in the review window?",
    )
    .unwrap();
    s.send_line("").unwrap(); // yes to the step...
    expect(&mut s, "Delete key RP10…BQq7").unwrap();
    expect(&mut s, "(y/n)").unwrap();
    s.send_line("").unwrap(); // ...and the default, no, to this key
    expect(&mut s, "kept RP10…BQq7").unwrap();
    abort_at_the_password_step(&mut s);
    let (incident, r) = ended(&mut s, dir.path(), 4);
    assert_eq!(step_status(&r, "delete-subaccount-key"), "ok");
    assert_eq!(step_status(&r, "delete-key"), "skipped");
    assert_eq!(step_status(&r, "delete-unknown-keys"), "ok");
    let journal = std::fs::read_to_string(incident.join("journal.jsonl")).unwrap();
    assert!(
        journal.contains(r#""step":"delete-unknown-keys","answer":"no""#),
        "the operator's no to that key is in the record"
    );
}

#[test]
fn an_encrypted_ed25519_key_opens_with_its_passphrase_at_the_prompt() {
    let (key, _runtime, server) = ed25519_sim();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("leaked.pem");
    // The same key, encrypted (`openssl pkcs8 -topk8 -v2 aes-256-cbc`).
    std::fs::write(
        &pem,
        include_str!("../fixtures/leaked-ed25519-encrypted.pem"),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut s = spawn_with_echo(dir.path(), &["compromised", "--base-url", server.url()]);
    type_credentials(&mut s, &key.api_key, pem.to_str().unwrap());
    type_hidden(
        &mut s,
        "Passphrase of the encrypted private key (input hidden)",
        "drill-passphrase",
    );
    signed_then_aborted(&mut s);
}
