//! A run killed with SIGKILL in the middle of cancelling orders, resumed: nothing is
//! lost, nothing is done twice, the record verifies and tells the whole story.
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use respond::sim::Actor;
use support::{env_refs, leaked_env, read_json, respond, sim};

fn symbol_of(query: &str) -> String {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("symbol="))
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_cancel_then_resume_cancels_everything_once() {
    let text = respond::sim::BUILTIN_LEAKED_KEY;
    let text = &text[..text.find("\nattacker:").unwrap() + 1];
    let server = sim(Some(text)).await;
    let dir = tempfile::tempdir().unwrap();
    let env = leaked_env(&server);

    // Serial cancels with latency, so the kill lands between them.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_respond"))
        .current_dir(dir.path())
        .args([
            "compromised",
            "--yes",
            "--concurrency",
            "1",
            "--base-url",
            server.url(),
        ])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env_remove("BINANCE_RESPONDER_API_KEY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Latency only once the run is under way, so triage and the preview are quick.
    let mut faults = server.faults();
    faults.latency = Duration::from_millis(250);
    server.set_faults(faults);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let deletes = server
            .request_log()
            .iter()
            .filter(|e| e.actor == Actor::Client && e.method == "DELETE")
            .count();
        if deletes >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no cancel reached the simulator"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().unwrap(); // SIGKILL: nothing gets recorded on the way out
    let status = child.wait().await.unwrap();
    assert!(!status.success());
    assert!(
        server.state_summary().total_open() > 0,
        "the kill landed before all cancels"
    );

    let incident = std::fs::read_dir(dir.path().join("incidents"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();

    // A new `respond compromised` of the same key notices the unfinished incident (and,
    // without a terminal, starts a new one and says how to continue the old one). It
    // runs against a second simulator so the first keeps its half-cancelled books.
    let other = sim(Some(text)).await;
    let fresh = respond(
        dir.path(),
        &["compromised", "--yes", "--base-url", other.url()],
        &env_refs(&env),
    )
    .await;
    assert!(
        fresh
            .stderr
            .contains("an unfinished incident of this key is in"),
        "{}",
        fresh.stderr
    );
    assert_ne!(fresh.incident(dir.path()), incident);
    let mut faults = server.faults();
    faults.latency = Duration::ZERO;
    server.set_faults(faults);
    let resumed = respond(
        dir.path(),
        &[
            "resume",
            incident.to_str().unwrap(),
            "--yes",
            "--base-url",
            server.url(),
        ],
        &env_refs(&env),
    )
    .await;
    assert_eq!(
        resumed.code, 5,
        "manual steps stay pending without a terminal: {}",
        resumed.stderr
    );
    assert!(
        resumed.stderr.contains("started in an earlier session"),
        "{}",
        resumed.stderr
    );
    assert_eq!(
        server.state_summary().total_open(),
        0,
        "every order is cancelled"
    );

    // No (market, symbol) was cancelled successfully twice.
    let mut acknowledged: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in server.request_log() {
        if e.actor == Actor::Client && e.method == "DELETE" && e.status == 200 {
            *acknowledged
                .entry((e.path.clone(), symbol_of(&e.query)))
                .or_default() += 1;
        }
    }
    assert!(acknowledged.values().all(|n| *n == 1), "{acknowledged:?}");

    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_respond"))
        .args(["report", "verify"])
        .arg(&incident)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let report = read_json(&incident.join("report.json"));
    assert_eq!(report["sessions"], 2);
    let timeline = report["timeline"].to_string();
    assert!(timeline.contains("interrupted by unrecorded"), "{timeline}");
    let md = std::fs::read_to_string(incident.join("report.md")).unwrap();
    assert_eq!(md.matches("# Incident report").count(), 1, "one incident");
}
