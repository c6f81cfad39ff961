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
    s.exp_string("Identify the key").unwrap();
    s.exp_string("Find the key that may have leaked").unwrap();
    s.exp_string("is it done?").unwrap();
    s.send_line("").unwrap(); // first choice: done
    s.exp_string("Tell the team").unwrap();
    s.exp_string("is it done?").unwrap();
    s.send(DOWN).unwrap();
    s.send_line("").unwrap(); // second choice: skip
    s.exp_string("Reason for skipping").unwrap();
    s.send_line("channel is down").unwrap();
    s.exp_string("still to do: Tell the team").unwrap();
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
    s.exp_string("is it done?").unwrap();
    s.send(DOWN).unwrap();
    s.send(DOWN).unwrap();
    s.send_line("").unwrap(); // third choice: abort
    s.exp_string("outcome: aborted").unwrap();
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
