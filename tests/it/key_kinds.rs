//! What respond concludes for each kind of key people really leak: one drill per built-in
//! scenario (the README's table "What respond concludes for each kind of key"), live runs
//! against the simulator for an IP-whitelisted key seen from outside its whitelist and a
//! spot-only key, triage answers that say nothing about the key, and a testnet run.
use crate::support;

use std::path::{Path, PathBuf};

use respond::sim::{Scenario, SimConfig, SimServer};
use serde_json::Value;
use support::{csv_rows, env_refs, read_json, respond, Run};

fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("playbooks/scenarios")
        .join(format!("{name}.yaml"))
}

fn scenario_text(name: &str) -> String {
    std::fs::read_to_string(scenario_path(name)).unwrap()
}

/// A scenario without its attacker, for runs that count orders exactly.
fn quiet(name: &str) -> Scenario {
    let mut s = Scenario::parse(&scenario_text(name), "s.yaml").unwrap_or_else(|d| panic!("{d}"));
    s.attacker = None;
    s
}

/// `respond compromised --drill --yes --scenario NAME`: the run and its report.
async fn drill(name: &str) -> (Run, Value, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario_path(name);
    let run = crate::support::drill(dir.path(), path.to_str().unwrap()).await;
    let incident = run.incident(dir.path());
    let report = read_json(&incident.join("report.json"));
    (run, report, incident, dir)
}

use crate::support::step;

fn markets(incident: &Path, table: &str) -> Vec<String> {
    let mut m: Vec<String> = csv_rows(&incident.join("evidence").join(table))
        .into_iter()
        .map(|r| r["market"].clone())
        .collect();
    m.sort();
    m.dedup();
    m
}

fn md(incident: &Path) -> String {
    std::fs::read_to_string(incident.join("report.md")).unwrap()
}

// ---- one drill per kind of key ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn all_permissions_key_is_live_contained_and_proven_dead() {
    let (run, report, incident, _dir) = drill("leaked-key").await;
    run.expect_code(0);
    run.expect_stderr("is LIVE — severity CRITICAL");
    assert_eq!(step(&report, "triage")["outputs"]["live"], true);
    assert_eq!(step(&report, "cancel-orders")["status"], "ok");
    assert_eq!(step(&report, "cancel-orders")["outputs"]["remaining"], 0);
    assert_eq!(
        markets(&incident, "cancelled-orders.csv"),
        ["coinm", "margin", "spot", "usdm"]
    );
    assert_eq!(
        step(&report, "verify-revoked")["outputs"]["verdict"],
        "dead"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ip_whitelisted_key_refused_from_here_is_not_called_dead() {
    let (run, report, incident, _dir) = drill("ip-whitelisted").await;
    assert_eq!(run.code, 1, "the cancel could not be done: {}", run.stderr);
    assert!(
        !run.stderr.contains("already rejected"),
        "the worst lie: {}",
        run.stderr
    );
    run.expect_stderr("refused from this machine, NOT proven dead");
    let triage = &step(&report, "triage")["outputs"];
    assert_eq!(
        (triage["live"].clone(), triage["refused"].clone()),
        (false.into(), true.into())
    );
    let cancel = step(&report, "cancel-orders");
    assert_eq!(
        cancel["status"], "failed",
        "a failed step, never a silent skip"
    );
    let summary = cancel["summary"].as_str().unwrap();
    for words in [
        "NOT cancelled",
        "run respond from the whitelisted host",
        "Cancel All in the Binance app",
    ] {
        assert!(summary.contains(words), "{words:?} in {summary}");
    }
    // The deletion step ran, and -2008 where triage saw -2015 proves the deletion.
    assert_eq!(step(&report, "delete-key")["status"], "ok");
    assert_eq!(
        step(&report, "verify-revoked")["outputs"]["verdict"],
        "dead"
    );
    let md = md(&incident);
    assert!(md.contains("NOT proven dead"), "{md}");
    assert!(md.contains("run respond from the whitelisted host"), "{md}");
    // `report verify` re-derives "dead" from the journaled probes and triage's answers.
    support::assert_verifies(&incident);
}

#[tokio::test(flavor = "multi_thread")]
async fn spot_only_key_cancels_spot_and_margin_and_leaves_futures_alone() {
    let (run, report, incident, _dir) = drill("spot-only").await;
    run.expect_code(0);
    assert!(!run.stderr.contains("NOT checked"), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "usdm: futures not enabled on this key: it cannot have placed or read orders there"
        ),
        "{}",
        run.stderr
    );
    let cancel = step(&report, "cancel-orders");
    assert_eq!(cancel["status"], "ok");
    assert_eq!(
        cancel["outputs"]["not_enabled"],
        serde_json::json!(["usdm", "coinm"])
    );
    assert_eq!(cancel["outputs"]["unchecked"], serde_json::json!([]));
    assert_eq!(
        markets(&incident, "cancelled-orders.csv"),
        ["margin", "spot"]
    );
    assert_eq!(step(&report, "balances")["status"], "ok");
    // The futures positions of the account were not seen: not "0 open positions" alone.
    assert!(
        step(&report, "balances")["summary"]
            .as_str()
            .unwrap()
            .contains("USDⓈ-M and COIN-M positions not read with this key"),
        "{}",
        step(&report, "balances")
    );
    assert_eq!(
        step(&report, "verify-revoked")["outputs"]["verdict"],
        "dead"
    );
    let md = md(&incident);
    assert!(md.contains("Not enabled on this key"), "{md}");
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_key_has_nothing_to_cancel() {
    let (run, report, _incident, _dir) = drill("read-only").await;
    run.expect_code(0);
    assert_eq!(step(&report, "triage")["outputs"]["severity"], "low");
    let cancel = step(&report, "cancel-orders");
    assert_eq!(cancel["status"], "ok");
    assert!(
        cancel["summary"]
            .as_str()
            .unwrap()
            .contains("nothing it can have placed, nothing to cancel"),
        "{cancel}"
    );
    assert_eq!(
        step(&report, "verify-revoked")["outputs"]["verdict"],
        "dead"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn futures_only_key_cancels_futures_and_leaves_spot_alone() {
    let (run, report, incident, _dir) = drill("futures-only").await;
    run.expect_code(0);
    assert!(
        run.stderr.contains(
            "spot: spot & margin trading not enabled on this key: it cannot have placed orders there"
        ),
        "{}",
        run.stderr
    );
    let cancel = step(&report, "cancel-orders");
    assert_eq!(
        cancel["outputs"]["not_enabled"],
        serde_json::json!(["spot", "margin"])
    );
    assert_eq!(cancel["outputs"]["cancelled"], 3, "{cancel}");
    assert_eq!(
        markets(&incident, "cancelled-orders.csv"),
        ["coinm", "usdm"]
    );
    assert_eq!(
        step(&report, "verify-revoked")["outputs"]["verdict"],
        "dead"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_secret_says_nothing_about_the_key() {
    let (run, report, incident, _dir) = drill("wrong-secret").await;
    assert_eq!(
        run.code, 3,
        "credentials rejected before anything was done: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("(-1022)") && run.stderr.contains("may still be LIVE"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("already rejected"), "{}", run.stderr);
    assert_eq!(step(&report, "triage")["status"], "failed");
    assert!(md(&incident).contains("may still be LIVE"));
}

// ---- live runs against `respond sim serve` ------------------------------------------------

async fn start(config: SimConfig) -> SimServer {
    SimServer::start(config).await.expect("start the simulator")
}

fn env_for(server: &SimServer, responder: bool) -> Vec<(String, String)> {
    let key = server.leaked_key();
    let mut env = vec![
        ("BINANCE_API_KEY".into(), key.api_key),
        ("BINANCE_API_SECRET".into(), key.secret),
    ];
    if responder {
        let r = server.create_responder_key();
        env.push(("BINANCE_RESPONDER_API_KEY".into(), r.api_key));
        env.push(("BINANCE_RESPONDER_API_SECRET".into(), r.secret));
    }
    env
}

async fn live(
    server: &SimServer,
    env: &[(String, String)],
    extra: &[&str],
) -> (Run, Value, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["compromised", "--yes", "--base-url", server.url()];
    args.extend_from_slice(extra);
    let run = respond(dir.path(), &args, &env_refs(env)).await;
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    (run, report, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn live_ip_whitelisted_key_from_outside_its_whitelist() {
    // As `respond sim serve --scenario ip-whitelisted.yaml --client-ip 192.0.2.99`.
    let mut config = SimConfig::new(quiet("ip-whitelisted"));
    config.client_ip = Some("192.0.2.99".parse().unwrap());
    let server = start(config).await;
    let env = env_for(&server, true);
    let (run, report, _dir) = live(&server, &env, &[]).await;
    run.expect_code(1);
    run.expect_stderr("refused from this machine, NOT proven dead");
    let cancel = step(&report, "cancel-orders");
    assert_eq!(cancel["status"], "failed");
    let summary = cancel["summary"].as_str().unwrap();
    assert!(
        summary.contains("2 open orders on 2 symbols in 1 market NOT cancelled")
            && summary.contains("usdm")
            && summary.contains("run respond from the whitelisted host")
            && summary.contains("Cancel All"),
        "{summary}"
    );
    assert_eq!(
        server.state_summary().total_open(),
        3,
        "nothing could be cancelled"
    );
    // No manual step skipped: the deletion is pending for a person.
    let pending = crate::support::pending(&report);
    assert!(pending.contains(&"delete-key"), "{pending:?}");
    assert_eq!(
        step(&report, "trades")["status"],
        "ok",
        "read with the responder key"
    );
    assert!(
        !server
            .request_log()
            .iter()
            .any(|e| e.method == "DELETE" && e.status == 200),
        "nothing was cancelled"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn live_spot_only_key() {
    let server = start(SimConfig::new(quiet("spot-only"))).await;
    let env = env_for(&server, false);
    let (run, report, _dir) = live(&server, &env, &[]).await;
    assert_eq!(run.code, 5, "only manual steps pending: {}", run.stderr);
    assert!(!run.stderr.contains("NOT checked"), "{}", run.stderr);
    run.expect_stderr("futures not enabled on this key");
    let open = server.state_summary();
    assert_eq!(open.open_on(respond::sim::Market::Spot), 0);
    assert_eq!(open.open_on(respond::sim::Market::Margin), 0);
    assert_eq!(
        open.total_open(),
        2,
        "the futures desk's orders are not the leaked key's"
    );
    for id in ["cancel-orders", "balances", "trades", "transfers"] {
        assert_eq!(step(&report, id)["status"], "ok", "{id}");
    }
    let pending = crate::support::pending(&report);
    assert_eq!(pending, crate::support::MANUAL_STEPS);
}

// ---- triage answers that say nothing about the key -----------------------------------

async fn unreadable_permissions(fault: &str) {
    let mut config = SimConfig::new(quiet("leaked-key"));
    config.faults.apply(fault).unwrap();
    let server = start(config).await;
    let env = env_for(&server, false);
    let (run, report, _dir) = live(&server, &env, &[]).await;
    assert_eq!(run.code, 1, "triage is incomplete: {}", run.stderr);
    assert!(
        run.stderr
            .contains("Triage could not read the key's permissions")
            && run.stderr.contains("treated as LIVE"),
        "{}",
        run.stderr
    );
    assert_eq!(step(&report, "triage")["status"], "failed");
    assert_eq!(step(&report, "cancel-orders")["status"], "ok");
    assert_eq!(server.state_summary().total_open(), 0, "contained anyway");
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_at_triage_still_leads_to_the_cancel() {
    unreadable_permissions("malformed=/sapi/v1/account/apiRestrictions").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_5xx_at_triage_still_leads_to_the_cancel() {
    unreadable_permissions("failing=/sapi/v1/account/apiRestrictions").await;
}

// ---- testnet -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_testnet_run_notes_what_testnets_do_not_serve() {
    // As `respond sim serve --testnet` and `respond compromised --testnet --base-url URL`.
    let mut config = SimConfig::new(quiet("leaked-key"));
    config.testnet = true;
    let server = start(config).await;
    let env = env_for(&server, false);
    let (run, report, _dir) = live(&server, &env, &["--testnet"]).await;
    assert_eq!(run.code, 5, "everything available was done: {}", run.stderr);
    run.expect_stderr("not available on testnet");
    for s in report["steps"].as_array().unwrap() {
        assert_ne!(s["status"], "failed", "{s}");
    }
    assert!(
        !server
            .request_log()
            .iter()
            .any(|e| e.path.starts_with("/sapi")),
        "nothing was sent to /sapi"
    );
    assert_eq!(
        server.state_summary().open_on(respond::sim::Market::Spot),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn options_and_portfolio_margin_permissions_count_in_severity_and_coverage() {
    let text = scenario_text("spot-only").replace(
        "permissions: [reading, spot]",
        "permissions: [reading, options, portfolio_margin]\n    ip_whitelist: [127.0.0.1]",
    );
    let scenario = Scenario::parse(&text, "s.yaml").unwrap_or_else(|d| panic!("{d}"));
    let server = start(SimConfig::new(scenario)).await;
    let env = env_for(&server, false);
    let (run, report, dir) = live(&server, &env, &[]).await;
    run.expect_code(5);
    assert_eq!(step(&report, "triage")["outputs"]["severity"], "high");
    assert_eq!(step(&report, "triage")["outputs"]["can_options"], true);
    run.expect_stderr("options trading is enabled on this key");
    let md = md(&run.incident(dir.path()));
    assert!(md.contains("options (/eapi) orders and positions"), "{md}");
    assert!(
        md.contains("portfolio margin (/papi) orders and positions"),
        "{md}"
    );
    assert_eq!(
        server.state_summary().total_open(),
        5,
        "it cannot trade spot or futures"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_permissions_a_futures_refusal_says_futures_are_not_enabled() {
    // Triage cannot read apiRestrictions, so "not enabled" comes from the -2015 that
    // /fapi and /dapi answer a spot-only key while /api answers it.
    let mut config = SimConfig::new(quiet("spot-only"));
    config
        .faults
        .apply("failing=/sapi/v1/account/apiRestrictions")
        .unwrap();
    let server = start(config).await;
    let env = env_for(&server, false);
    let (run, report, _dir) = live(&server, &env, &[]).await;
    assert_eq!(run.code, 1, "triage is incomplete: {}", run.stderr);
    assert!(!run.stderr.contains("NOT checked"), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "usdm: futures not enabled on this key: it cannot have placed or read orders there (Binance refused it: -2015)"
        ),
        "{}",
        run.stderr
    );
    let cancel = step(&report, "cancel-orders");
    assert_eq!(cancel["status"], "ok", "{cancel}");
    assert_eq!(
        cancel["outputs"]["not_enabled"],
        serde_json::json!(["usdm", "coinm"])
    );
    assert_eq!(step(&report, "balances")["status"], "ok");
    assert_eq!(
        server.state_summary().total_open(),
        2,
        "the futures desk's orders stay"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whitelisted_key_still_refused_after_the_deletion_is_not_proven_deleted() {
    // The classic mistake (another key deleted) on a key refused from here from the
    // start: -2015 after "done" is what Binance said before, so it proves nothing.
    let dir = tempfile::tempdir().unwrap();
    let text = scenario_text("ip-whitelisted").replace(
        "\nsymbols:",
        "  - label: Dashboard\n    api_key: 3N8FeKjFTrKCb0Tz8BbwTKx8EqwtHmcOJEZqgygcmtbaLGsH7Zwqhc9jXmaoq3Gq\n    secret: lpnMR6vsUW5xcJ6MV8YWkGP1mxFyp9yIJX6uF68NcpP7BEXvfqZgimdS7jnqFCiI\n    permissions: [reading]\n\ndrill: { deletion: wrong-key }\n\nsymbols:",
    );
    let scenario = dir.path().join("wrong-key.yaml");
    std::fs::write(&scenario, text).unwrap();
    let playbook = dir.path().join("check.yaml");
    std::fs::write(
        &playbook,
        "version: 1\nname: check\nsteps:\n  - id: triage\n    uses: binance.key_permissions\n  - id: delete-key\n    uses: manual\n    with:\n      drill: delete-leaked-key\n      check: key-deleted\n      instructions: Delete the key.\n  - id: verify-revoked\n    uses: binance.verify_revoked\n    when: ${{ steps.delete-key.confirmed }}\n    with: { probes: 2, interval: 1s, wait: 3s }\n",
    )
    .unwrap();
    let run = respond(
        dir.path(),
        &[
            "run",
            playbook.to_str().unwrap(),
            "--drill",
            "--yes",
            "--scenario",
            scenario.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("only -2008 proves the deletion"),
        "the check after \"done\" proves nothing: {}",
        run.stderr
    );
    run.expect_stderr("is NOT proven deleted");
    let incident = run.incident(dir.path());
    let report = read_json(&incident.join("report.json"));
    assert_eq!(step(&report, "verify-revoked")["status"], "failed");
    let verify = respond(
        dir.path(),
        &["report", "verify", incident.to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
}
