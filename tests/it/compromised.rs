//! `respond compromised` end to end against the simulator: drill, live-style with
//! --base-url, dry run, and an attacker who keeps placing orders.
use crate::support;

use respond::sim::Actor;
use support::{
    compromised_yes, csv_rows, env_refs, leaked_env, live_args, read_json, respond, sim,
    MANUAL_STEPS,
};

/// The built-in scenario without its attacker, for tests that count orders exactly.
fn without_attacker() -> String {
    let text = respond::sim::BUILTIN_LEAKED_KEY;
    let cut = text
        .find("\nattacker:")
        .expect("the built-in scenario has an attacker");
    text[..cut + 1].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn drill_autopilot_contains_everything_and_reports_the_findings() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let log = dir.path().join("sim-requests.jsonl");
    let run =
        crate::support::drill_with(dir.path(), &["--sim-request-log", log.to_str().unwrap()]).await;
    run.expect_code(0);
    assert!(
        started.elapsed().as_secs() < 20,
        "a drill takes seconds, took {:?}",
        started.elapsed()
    );
    let incident = run.incident(dir.path());
    assert!(incident.to_string_lossy().ends_with("-compromised-drill"));

    let report = read_json(&incident.join("report.json"));
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["severity"], "critical");
    let steps = report["steps"].as_array().unwrap();
    let step = |id: &str| {
        steps
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no step {id}"))
    };
    assert_eq!(step("cancel-orders")["outputs"]["remaining"], 0);
    assert_eq!(step("verify-revoked")["outputs"]["verdict"], "dead");
    // The simulator's own final state (not respond's listing): every book empty, the
    // USDⓈ-M and COIN-M conditional (algo) books included.
    let final_state =
        std::fs::read_to_string(incident.join("evidence/drill-final-state.csv")).unwrap();
    assert!(
        final_state.contains(r#""{""coinm"":0,""usdm"":0}""#),
        "algo books empty: {final_state}"
    );
    assert!(
        final_state.trim_end().ends_with(",0"),
        "totalOpen 0: {final_state}"
    );
    assert_eq!(report["scorecard"]["open_orders_at_end"], 0);
    let findings = crate::support::finding_titles(&report);
    assert!(
        findings
            .iter()
            .any(|f| f.contains("Withdrawal of 4800 USDT to TXunknown")),
        "{findings:?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.contains("XYZBTC") && f.contains("far from the market price")),
        "{findings:?}"
    );

    let md = std::fs::read_to_string(incident.join("report.md")).unwrap();
    assert!(md.contains("DRILL (autopilot)"));
    assert!(md.contains("TXunknown"));

    // The evidence matches the scenario: eight open orders on four markets (two of them
    // conditional orders in the USDⓈ-M and COIN-M algo books), one withdrawal.
    let cancelled = csv_rows(&incident.join("evidence/cancelled-orders.csv"));
    assert_eq!(cancelled.len(), 8);
    assert!(
        cancelled
            .iter()
            .any(|r| r["market"] == "coinm" && r["type"] == "STOP_MARKET"),
        "the attacker's COIN-M stop is cancelled: {cancelled:?}"
    );
    let markets: std::collections::BTreeSet<_> =
        cancelled.iter().map(|r| r["market"].clone()).collect();
    assert_eq!(
        markets.into_iter().collect::<Vec<_>>(),
        ["coinm", "margin", "spot", "usdm"]
    );
    let withdrawals = csv_rows(&incident.join("evidence/withdrawals.csv"));
    assert_eq!(withdrawals.len(), 1);
    assert_eq!(withdrawals[0]["address"], "TXunknownR4nd0mAddr3ss9zQ");
    assert_eq!(withdrawals[0]["amount"], "4800");
    let trades = csv_rows(&incident.join("evidence/trades.csv"));
    assert_eq!(
        trades
            .iter()
            .filter(|t| t["symbol"] == "XYZBTC" && t["flags"].contains("off-market"))
            .count(),
        4
    );
    // The message for support is in the reports too, as the run wrote it, from the
    // journal: the same text in report.md and report.html.
    let message = std::fs::read_to_string(incident.join("support-message.txt")).unwrap();
    let md = std::fs::read_to_string(incident.join("report.md")).unwrap();
    assert!(md.contains("## Message for Binance support"), "{md}");
    assert!(md.contains(message.trim_end()), "{md}");
    let html = std::fs::read_to_string(incident.join("report.html")).unwrap();
    assert!(html.contains("<h2>Message for Binance support</h2>"));
    assert!(html.contains("Hello Binance Support,"));

    // The support pack: message, evidence, fingerprint, and a manifest that checks out.
    let pack = incident.join("support-pack");
    let manifest = std::fs::read_to_string(pack.join("MANIFEST.sha256")).unwrap();
    assert!(manifest.lines().count() >= 5, "{manifest}");
    for line in manifest.lines() {
        let (hash, name) = line.split_once("  ").unwrap();
        let bytes = std::fs::read(pack.join(name)).unwrap();
        use sha2::Digest;
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), hash, "{name}");
    }
    assert!(manifest.contains("withdrawals.csv") && manifest.contains("FINGERPRINT"));
    assert!(std::fs::read_to_string(pack.join("FINGERPRINT"))
        .unwrap()
        .starts_with(
            &read_json(&incident.join("report.json"))["chain_head"]
                .as_str()
                .unwrap()[..16]
        ));

    // The simulator's own log: every cancel was sent once per (market, symbol) and the
    // key was probed dead.
    let log = std::fs::read_to_string(&log).unwrap();
    let deletes = log
        .lines()
        .filter(|l| l.contains("\"method\":\"DELETE\"") && l.contains("\"actor\":\"client\""))
        .count();
    assert_eq!(
        deletes, 8,
        "spot 3 symbols, margin 1, usdm regular + algo, coinm regular + algo:\n{log}"
    );

    support::assert_verifies(&incident);
}

#[tokio::test(flavor = "multi_thread")]
async fn live_run_without_a_terminal_cancels_everything_and_leaves_manual_steps_pending() {
    let server = sim(Some(&without_attacker())).await;
    let sim_state = || async {
        reqwest::get(format!("{}/sim/state", server.url()))
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let before = sim_state().await;
    assert_eq!(before["open_coinm_algo_orders"]["BTCUSD_PERP"], 1);
    assert_eq!(before["open_algo_orders"]["BTCUSDT"], 1);
    let dir = tempfile::tempdir().unwrap();
    let run = compromised_yes(dir.path(), &server).await;
    assert_eq!(run.code, 5, "manual steps pending: {}", run.stderr);
    // The simulator's own account, not respond's report: every book is empty, the
    // COIN-M and USDⓈ-M conditional (algo) books included.
    let after = sim_state().await;
    for book in ["open_algo_orders", "open_coinm_algo_orders"] {
        assert_eq!(after[book], serde_json::json!({}), "{book}: {after}");
    }
    for (market, symbols) in after["open_orders"].as_object().unwrap() {
        assert_eq!(symbols, &serde_json::json!({}), "{market}: {after}");
    }
    assert_eq!(
        server.state_summary().total_open(),
        0,
        "zero open orders on every market"
    );
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    let pending = crate::support::pending(&report);
    assert_eq!(pending, MANUAL_STEPS);
    assert!(
        !server.state_summary().keys.iter().any(|k| k.deleted),
        "nobody deleted a key"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_terminal_or_yes_nothing_destructive_happens() {
    let server = sim(Some(&without_attacker())).await;
    let before = server.state_summary().total_open();
    let dir = tempfile::tempdir().unwrap();
    let env = leaked_env(&server);
    let run = respond(
        dir.path(),
        &["compromised", "--base-url", server.url()],
        &env_refs(&env),
    )
    .await;
    run.expect_code(4);
    run.expect_stderr("--yes");
    assert_eq!(server.state_summary().total_open(), before);
    assert!(
        server.request_log().iter().all(|e| e.method == "GET"),
        "nothing but reads"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_finds_the_same_and_sends_nothing_that_mutates() {
    let server = sim(Some(&without_attacker())).await;
    let before = server.state_summary();
    let dir = tempfile::tempdir().unwrap();
    let run = crate::support::Test::in_dir(dir.path())
        .args(&[
            "compromised",
            "--dry-run",
            "--yes",
            "--base-url",
            server.url(),
        ])
        .leaked_key(&server)
        .run()
        .await;
    run.expect_code(5);
    let incident = run.incident(dir.path());
    assert!(incident.to_string_lossy().ends_with("-compromised-dry-run"));
    let mutating: Vec<_> = server
        .request_log()
        .into_iter()
        .filter(|e| e.actor == Actor::Client && e.method != "GET")
        .collect();
    assert!(mutating.is_empty(), "a dry run sent {mutating:?}");
    assert_eq!(
        server.state_summary().open_orders,
        before.open_orders,
        "open orders untouched"
    );
    let report = read_json(&incident.join("report.json"));
    let cancel = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "cancel-orders")
        .unwrap();
    assert_eq!(cancel["status"], "would_do");
    assert!(
        cancel["summary"]
            .as_str()
            .unwrap()
            .contains("8 open orders"),
        "{cancel}"
    );
    let findings = crate::support::finding_titles(&report);
    assert!(findings.iter().any(|f| f.contains("TXunknown")));
    assert!(findings.iter().any(|f| f.contains("XYZBTC")));
    assert!(std::fs::read_to_string(incident.join("report.md"))
        .unwrap()
        .contains("DRY RUN"));
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_that_reappear_are_called_out() {
    let text = respond::sim::BUILTIN_LEAKED_KEY.replace("every: 5s", "every: 150ms");
    let server = sim(Some(&text)).await;
    let dir = tempfile::tempdir().unwrap();
    let run = compromised_yes(dir.path(), &server).await;
    run.expect_stderr("NEW open order(s) appeared after cancelling");
    run.expect_stderr("deleting the key is the real stop");
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    let findings = crate::support::finding_titles(&report);
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("Attacker still active")),
        "{findings:?}"
    );
    assert!(server
        .request_log()
        .iter()
        .any(|e| e.actor == Actor::Attacker));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wrong_key_deleted_in_a_drill_is_caught() {
    let text = respond::sim::BUILTIN_LEAKED_KEY.replace(
        "drill: { deletion: correct }",
        "drill: { deletion: wrong-key }",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wrong.yaml"), text).unwrap();
    let playbook = respond::playbook::BUILTIN
        .iter()
        .find(|(n, _)| *n == "compromised")
        .unwrap()
        .1
        .replace("wait: 60s", "wait: 3s");
    std::fs::write(dir.path().join("quick.yaml"), playbook).unwrap();
    let run = crate::support::drill_with(
        dir.path(),
        &["--scenario", "wrong.yaml", "--playbook", "quick.yaml"],
    )
    .await;
    run.expect_code(1);
    run.expect_stderr("NOT the leaked key");
    // The autopilot's "done" is checked at once and contradicted by Binance.
    run.expect_stderr("it is NOT deleted");
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    assert_eq!(report["outcome"], "failed");
    assert_eq!(report["attestations"][0]["verdict"], "contradicted");
    assert!(report["attestations"][0]["evidence"]
        .as_str()
        .unwrap()
        .contains("/api/v3/account accepted it"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_exchange_is_exit_3_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let env = [
        ("BINANCE_API_KEY", "AbCdEFGHIJKLMNOPQRSTUVWXYZ012345"),
        ("BINANCE_API_SECRET", "s3cr3t-s3cr3t-s3cr3t"),
    ];
    let run = respond(
        dir.path(),
        &["compromised", "--yes", "--base-url", &url],
        &env,
    )
    .await;
    run.expect_code(3);
    assert!(!dir.path().join("incidents").exists());
    assert!(!run.stderr.contains("s3cr3t"));
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_credentials_are_a_usage_error_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let run = respond(
        dir.path(),
        &["compromised", "--base-url", "http://127.0.0.1:9"],
        &[],
    )
    .await;
    run.expect_code(2);
    run.expect_stderr("BINANCE_API_KEY");
    run.expect_stderr("--drill");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clock_4s_off_is_measured_and_every_event_carries_both_clocks() {
    let dir = tempfile::tempdir().unwrap();
    let run = crate::support::drill_with(dir.path(), &["--sim-fault", "clock-skew=4000"]).await;
    assert_eq!(run.code, 0, "signed requests still work: {}", run.stderr);
    let incident = run.incident(dir.path());
    let journal = std::fs::read_to_string(incident.join("journal.jsonl")).unwrap();
    for line in journal.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let offset = record["offset_ms"]
            .as_i64()
            .unwrap_or_else(|| panic!("no offset: {line}"));
        assert!((3_500..=4_500).contains(&offset), "{offset}");
        let local = chrono::DateTime::parse_from_rfc3339(record["time"].as_str().unwrap()).unwrap();
        let server =
            chrono::DateTime::parse_from_rfc3339(record["server_time"].as_str().unwrap()).unwrap();
        assert_eq!((server - local).num_milliseconds(), offset);
    }
    let md = std::fs::read_to_string(incident.join("report.md")).unwrap();
    assert!(md.contains("Timeline (UTC, Binance's clock)"), "{md}");
    assert!(md.contains("ms behind it"), "{md}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attacker_placing_orders_fast_ends_with_zero_open_orders_after_the_key_dies() {
    let text = respond::sim::BUILTIN_LEAKED_KEY.replace("every: 5s", "every: 300ms");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("busy.yaml"), text).unwrap();
    let run = crate::support::drill(dir.path(), "busy.yaml").await;
    run.expect_code(0);
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    let card = &report["scorecard"];
    assert_eq!(card["open_orders_at_end"], 0, "{card}");
    assert_eq!(card["verdict"], "dead");
    assert!(
        card["orders_slipped_through"].as_u64().unwrap() > 0,
        "the attacker was noticed: {card}"
    );
    let findings = report["findings"].to_string();
    assert!(findings.contains("Attacker still active"), "{findings}");

    let history = std::process::Command::new(env!("CARGO_BIN_EXE_respond"))
        .current_dir(dir.path())
        .args(["drill-history", "--json"])
        .output()
        .unwrap();
    let line = String::from_utf8(history.stdout).unwrap();
    let entry: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(entry["scorecard"]["verdict"], "dead");
}

#[tokio::test(flavor = "multi_thread")]
async fn since_incident_exits_6_on_new_activity_and_5_when_quiet() {
    // Quiet account: the second look finds nothing new (manual steps stay pending: 5).
    // Without the listed spot symbols: two deep scans of them inside one minute would
    // spend more than the minute's weight budget, and the second run would wait for it.
    let quiet = sim(Some(
        &without_attacker().replace("listed_spot_symbols: 150\n", ""),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let env = leaked_env(&quiet);
    let first = respond(
        dir.path(),
        &["compromised", "--yes", "--base-url", quiet.url()],
        &env_refs(&env),
    )
    .await;
    let previous = first.incident(dir.path());
    let prev = previous.to_str().unwrap();
    let again = respond(
        dir.path(),
        &[
            "compromised",
            "--yes",
            "--base-url",
            quiet.url(),
            "--since-incident",
            prev,
        ],
        &env_refs(&env),
    )
    .await;
    again.expect_code(5);
    again.expect_stderr("nothing new since the previous incident");

    // Someone still trading: the second look sees orders the first never saw: 6.
    // Two runs of five cancel rounds each list both futures books on both markets a dozen
    // times: more than /fapi and /dapi's one shared pool holds in a minute. A 2 s window
    // on both sides keeps the test from waiting for the minute to pass.
    let text = respond::sim::BUILTIN_LEAKED_KEY.replace("every: 5s", "every: 200ms");
    let mut config =
        respond::sim::SimConfig::new(respond::sim::Scenario::parse(&text, "busy.yaml").unwrap());
    config.weight_window = std::time::Duration::from_secs(2);
    let busy = respond::sim::SimServer::start(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = leaked_env(&busy);
    let first = respond(dir.path(), &live_args(busy.url(), &[]), &env_refs(&env)).await;
    let previous = first.incident(dir.path());
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let again = respond(
        dir.path(),
        &live_args(
            busy.url(),
            &["--since-incident", previous.to_str().unwrap()],
        ),
        &env_refs(&env),
    )
    .await;
    again.expect_code(6);
    again.expect_stderr("New activity after the previous incident");
    let report = read_json(&again.incident(dir.path()).join("report.json"));
    assert!(report["findings"]
        .to_string()
        .contains("open order(s) placed after the previous incident"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_blast_radius_at_triage_can_steer_a_playbook() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("escalate.yaml"),
        "version: 1\nname: escalate\nsteps:\n  - id: triage\n    uses: binance.key_permissions\n  - id: big\n    uses: manual\n    when: ${{ steps.triage.outputs.reachable_value > 100000 && steps.triage.outputs.can_withdraw }}\n    with: { instructions: 'Call the security lead: ${{ steps.triage.outputs.reachable_value }} USDT reachable.' }\n  - id: small\n    uses: manual\n    when: ${{ steps.triage.outputs.reachable_value < 100000 }}\n    with: { instructions: small }\n",
    )
    .unwrap();
    let run = respond(
        dir.path(),
        &["run", "escalate.yaml", "--drill", "--yes"],
        &[],
    )
    .await;
    run.expect_code(0);
    run.expect_stderr("reachable value: ≈ ");
    run.expect_stderr("can be withdrawn right now");
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    let steps = report["steps"].as_array().unwrap();
    let status = |id: &str| steps.iter().find(|s| s["id"] == id).unwrap()["status"].clone();
    assert_eq!(status("big"), "ok");
    assert_eq!(status("small"), "skipped");
    let value: f64 = steps[0]["outputs"]["reachable_value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        value > 100_000.0,
        "spot, margin and futures wallets are all counted: {value}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_already_dead_at_triage_is_a_finding_and_evidence_comes_from_the_responder_key() {
    let server = sim(Some(&without_attacker())).await;
    let leaked = server.leaked_key();
    server.delete_key(&leaked.api_key).unwrap();
    let responder = server.create_responder_key();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("BINANCE_API_KEY", leaked.api_key.as_str()),
        ("BINANCE_API_SECRET", leaked.secret.as_str()),
        ("BINANCE_RESPONDER_API_KEY", responder.api_key.as_str()),
        ("BINANCE_RESPONDER_API_SECRET", responder.secret.as_str()),
    ];
    let run = respond(
        dir.path(),
        &["compromised", "--yes", "--base-url", server.url()],
        &env,
    )
    .await;
    assert_eq!(
        run.code, 5,
        "a dead key is a finding, not exit 3: {}",
        run.stderr
    );
    run.expect_stderr("already rejected");
    run.expect_stderr("the dead key cannot cancel them");
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    let steps = report["steps"].as_array().unwrap();
    let status = |id: &str| steps.iter().find(|s| s["id"] == id).unwrap()["status"].clone();
    assert_eq!(status("cancel-orders"), "skipped");
    assert_eq!(status("trades"), "ok", "read with the responder key");
    assert_eq!(status("transfers"), "ok");
    assert!(report["findings"].to_string().contains("TXunknown"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_for_request_weight_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    let run = crate::support::drill_with(
        dir.path(),
        &[
            // Low enough that the drill's reads cannot all fit in one window, whatever
            // the timing: the run must wait at least once.
            "--weight-limit",
            "300",
            "--weight-window",
            "2s",
        ],
    )
    .await;
    run.expect_code(0);
    assert!(
        run.stderr.contains("waiting ") && run.stderr.contains("request-weight budget"),
        "{}",
        run.stderr
    );
    let journal = std::fs::read_to_string(run.incident(dir.path()).join("journal.jsonl")).unwrap();
    assert!(
        journal.contains("request-weight budget"),
        "the wait is journaled too"
    );
}

/// Containment in two round trips: the listing goes out with the clock check and
/// triage's reads, and the cancels follow as soon as triage has answered — never before.
#[tokio::test(flavor = "multi_thread")]
async fn with_yes_the_cancels_follow_triage_and_the_listing_in_one_round_trip() {
    let server = sim(Some(&without_attacker())).await;
    let mut faults = server.faults();
    faults.latency = std::time::Duration::from_millis(300);
    server.set_faults(faults);
    let dir = tempfile::tempdir().unwrap();
    let run = compromised_yes(dir.path(), &server).await;
    run.expect_code(5);
    let log: Vec<_> = server
        .request_log()
        .into_iter()
        .filter(|e| e.actor == Actor::Client)
        .collect();
    let at = |e: &respond::sim::LogEntry| {
        chrono::DateTime::parse_from_rfc3339(&e.time)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let first_answer = log.iter().map(at).min().unwrap();
    let first_delete = log
        .iter()
        .filter(|e| e.method == "DELETE")
        .map(at)
        .min()
        .expect("cancels");
    let triage_answered = log
        .iter()
        .find(|e| e.path == "/sapi/v1/account/apiRestrictions")
        .map(at)
        .unwrap();
    // Every read answered before the first cancel was in the first round trip (sent
    // together, so answered well within one 300 ms latency of each other): the clock
    // check, triage's reads and the listing of every book, the algo books included.
    let before: Vec<_> = log.iter().filter(|e| at(e) < first_delete).collect();
    for e in &before {
        assert!(
            at(e) - first_answer < chrono::Duration::milliseconds(250),
            "a read in a later round trip, before the cancels: {e:?}"
        );
    }
    for path in [
        "/api/v3/time",
        "/api/v3/openOrders",
        "/fapi/v1/openAlgoOrders",
        "/dapi/v1/openAlgoOrders",
    ] {
        assert!(
            before.iter().any(|e| e.path == path),
            "{path} in the first round trip"
        );
    }
    // Nothing destructive before triage answered: each cancel was sent after it, so it
    // was answered at least one latency later.
    assert!(
        first_delete - triage_answered >= chrono::Duration::milliseconds(300),
        "a cancel sent before triage answered"
    );
    // The listing is journaled as the cancel step's (with `sent_at` when it was answered
    // before the journal existed).
    let journal = std::fs::read_to_string(run.incident(dir.path()).join("journal.jsonl")).unwrap();
    let listing = journal
        .lines()
        .find(|l| l.contains(r#""path":"/api/v3/openOrders""#) && l.contains(r#""method":"GET""#))
        .unwrap();
    assert!(listing.contains(r#""step":"cancel-orders""#), "{listing}");
}
