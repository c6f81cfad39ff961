//! A run killed with SIGKILL in the middle of cancelling orders, resumed: nothing is
//! lost, nothing is done twice, the record verifies and tells the whole story.
use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use respond::sim::Actor;
use support::{env_refs, leaked_env, read_json, respond, resume_without_latency, sim};

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
    let mut child = crate::support::Test::in_dir(dir.path())
        .args(&["compromised", "--yes", "--concurrency", "1"])
        .against(&server)
        .leaked_key(&server)
        .spawn_silent();
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

    let incident = crate::support::first_incident(dir.path());

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
        fresh.stderr.contains(&format!(
            "an unfinished incident of this key is in incidents/{}, against {}, not {}",
            incident.file_name().unwrap().to_str().unwrap(),
            server.url(),
            other.url()
        )),
        "the old incident is named with its own exchange, and not resumed here: {}",
        fresh.stderr
    );
    assert_ne!(fresh.incident(dir.path()), incident);
    // No target flag: the incident goes on against the simulator its journal names,
    // not production.
    let resumed = resume_without_latency(&server, dir.path(), &incident, &env).await;
    assert_eq!(
        resumed.code, 5,
        "manual steps stay pending without a terminal: {}",
        resumed.stderr
    );
    resumed.expect_stderr("started in an earlier session");
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

    support::assert_verifies(&incident);
    let report = read_json(&incident.join("report.json"));
    assert_eq!(report["sessions"], 2);
    let timeline = report["timeline"].to_string();
    assert!(timeline.contains("interrupted by unrecorded"), "{timeline}");
    let md = std::fs::read_to_string(incident.join("report.md")).unwrap();
    assert_eq!(md.matches("# Incident report").count(), 1, "one incident");
}

/// A finished incident against one simulator, for the target and key checks.
async fn incident_on(
    server: &respond::sim::SimServer,
    cwd: &std::path::Path,
) -> std::path::PathBuf {
    let env = leaked_env(server);
    let run = respond(
        cwd,
        &["compromised", "--yes", "--base-url", server.url()],
        &env_refs(&env),
    )
    .await;
    run.expect_code(5);
    run.incident(cwd)
}

fn journal_text(incident: &std::path::Path) -> String {
    std::fs::read_to_string(incident.join("journal.jsonl")).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_refuses_another_target_and_names_both() {
    let server = sim(None).await;
    let dir = tempfile::tempdir().unwrap();
    let incident = incident_on(&server, dir.path()).await;
    let journal = journal_text(&incident);
    assert!(
        journal.contains(&format!(
            r#""target_spec":{{"kind":"base_url","url":"{}"}}"#,
            server.url()
        )),
        "{journal}"
    );
    let env = leaked_env(&server);
    let path = incident.to_str().unwrap();

    for (flags, named) in [
        (vec!["--testnet"], "Binance testnet"),
        (
            vec!["--base-url", "http://127.0.0.1:9"],
            "http://127.0.0.1:9",
        ),
        (vec!["--drill"], "simulator (built-in scenario leaked-key)"),
    ] {
        let mut args = vec!["resume", path, "--yes"];
        args.extend(flags.iter());
        let run = respond(dir.path(), &args, &env_refs(&env)).await;
        assert_eq!(run.code, 2, "{flags:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "ran against {}; this command would continue it against {named}",
                server.url()
            )),
            "{flags:?}: both targets named: {}",
            run.stderr
        );
        run.expect_stderr("--new-base-url");
    }
    // Another host is not "the simulator restarted on another port".
    let port = server.url().rsplit(':').next().unwrap();
    let run = respond(
        dir.path(),
        &[
            "resume",
            path,
            "--yes",
            "--new-base-url",
            &format!("http://localhost:{port}"),
        ],
        &env_refs(&env),
    )
    .await;
    run.expect_code(2);
    run.expect_stderr("is not the same server as");
    // Nothing was appended by a refused resume.
    assert_eq!(journal_text(&incident), journal);
    assert!(!journal.contains("run_resumed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_refuses_another_key_even_with_the_same_mask() {
    let server = sim(None).await;
    let dir = tempfile::tempdir().unwrap();
    let incident = incident_on(&server, dir.path()).await;
    let journal = journal_text(&incident);
    let key = server.leaked_key();
    // Same first and last four characters, one different in the middle.
    let mut twin: Vec<char> = key.api_key.chars().collect();
    let mid = twin.len() / 2;
    twin[mid] = if twin[mid] == 'x' { 'y' } else { 'x' };
    let twin: String = twin.into_iter().collect();
    let run = respond(
        dir.path(),
        &["resume", incident.to_str().unwrap(), "--yes"],
        &[
            ("BINANCE_API_KEY", &twin),
            ("BINANCE_API_SECRET", &key.secret),
        ],
    )
    .await;
    run.expect_code(2);
    run.expect_stderr("another key that also masks as");
    assert!(
        !run.stderr.contains(&twin),
        "the key itself is never printed"
    );
    assert!(
        server
            .request_log()
            .iter()
            .filter(|e| e.actor == Actor::Client)
            .all(|e| !e.query.contains("resume")),
        "sanity"
    );
    assert_eq!(journal_text(&incident), journal, "nothing appended");
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_moves_to_a_restarted_simulator_only_when_told_and_records_it() {
    let first = sim(None).await;
    let dir = tempfile::tempdir().unwrap();
    let incident = incident_on(&first, dir.path()).await;
    let env = leaked_env(&first);
    // The simulator "restarts" on another port (same scenario, same keys).
    let second = sim(None).await;
    let before = second.request_log().len();
    let run = respond(
        dir.path(),
        &[
            "resume",
            incident.to_str().unwrap(),
            "--yes",
            "--new-base-url",
            second.url(),
        ],
        &env_refs(&env),
    )
    .await;
    run.expect_code(5);
    assert!(
        run.stderr
            .contains(&format!("this incident ran against {}", first.url())),
        "{}",
        run.stderr
    );
    assert!(
        second.request_log().len() > before,
        "the resume went to the new port"
    );
    let journal = journal_text(&incident);
    assert!(
        journal.contains(&format!(r#""moved_from":"{}""#, first.url())),
        "{journal}"
    );
    // From then on the incident's target is the new port: a plain resume goes there.
    let again = respond(
        dir.path(),
        &["resume", incident.to_str().unwrap(), "--yes"],
        &env_refs(&env),
    )
    .await;
    again.expect_code(5);
    support::assert_verifies(&incident);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drill_resumes_on_its_own_scenario_without_flags_from_another_folder() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("my-scenario.yaml");
    std::fs::write(&scenario, respond::sim::BUILTIN_LEAKED_KEY).unwrap();
    let run = crate::support::drill(dir.path(), "my-scenario.yaml").await;
    run.expect_code(0);
    let incident = run.incident(dir.path());
    let elsewhere = tempfile::tempdir().unwrap();
    let resumed = respond(
        elsewhere.path(),
        &["resume", incident.to_str().unwrap(), "--yes"],
        &[],
    )
    .await;
    resumed.expect_code(0);
    let journal = journal_text(&incident);
    let recorded = std::fs::canonicalize(&scenario).unwrap();
    assert!(
        journal.contains(&format!(
            r#""target_spec":{{"kind":"drill","scenario":"{}"}}"#,
            recorded.display()
        )),
        "{journal}"
    );
    assert_eq!(journal.matches(r#""event":"run_resumed""#).count(), 1);
    // Another scenario is another target.
    let refused = respond(
        elsewhere.path(),
        &[
            "resume",
            incident.to_str().unwrap(),
            "--yes",
            "--drill",
            "--scenario",
            scenario.to_str().unwrap().replace("my-", "").as_str(),
        ],
        &[],
    )
    .await;
    refused.expect_code(2);
    refused.expect_stderr("ran against simulator (scenario");
}

/// A run holds its folder a moment before its journal exists. A resume in that moment
/// is told the incident is busy (exit 4), not that the folder is wrong.
#[tokio::test(flavor = "multi_thread")]
async fn resume_of_a_folder_held_before_its_journal_exists_is_busy() {
    use respond::report::lock::{Holder, IncidentLock};
    let dir = tempfile::tempdir().unwrap();
    let incident = dir.path().join("incidents/20261129T000000Z-compromised");
    std::fs::create_dir_all(&incident).unwrap();
    let held = IncidentLock::acquire(&incident, &Holder::me("alice@desk", "compromised")).unwrap();

    let out = respond(
        dir.path(),
        &["resume", "--yes", incident.to_str().unwrap()],
        &[],
    )
    .await;
    out.expect_code(4);
    assert!(
        out.stderr.contains("alice@desk") || out.stderr.contains("PID"),
        "{}",
        out.stderr
    );

    // Once nobody holds it, the same folder is plainly not an incident.
    drop(held);
    let out = respond(
        dir.path(),
        &["resume", "--yes", incident.to_str().unwrap()],
        &[],
    )
    .await;
    out.expect_code(2);
    out.expect_stderr("not an incident folder");
}
