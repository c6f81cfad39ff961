//! A leaked sub-account key, with the master account's key as the responder key: found on
//! its sub-account, deleted by API after a confirm and proven dead, the attacker's extra
//! key flagged and deleted after its own confirm; the manual fallback (with its reason)
//! when the responder key is not a master's; and nothing deleted without a terminal and
//! without `--yes`.
use crate::support;

use std::path::{Path, PathBuf};

use respond::sim::{ResponderKind, Scenario, SimConfig, SimServer};
use serde_json::Value;
use support::{csv_rows, read_json, respond, Run};

const LEAKED: &str = "xEEsAoCaA2QTqpOoast0vQj8VMtbYo9Mqb5jZMQObDDMOTsoYtxqAYfwFBHPl8Ks";
const EXTRA: &str = "RP10eougTfIhpazOc61hVRd82Wzj5OSqplLapHp6hgPjryAczD4UDDqcdbTmBQq7";

fn scenario_text() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/scenarios/subaccount-leak.yaml"),
    )
    .unwrap()
}

use crate::support::step;

async fn drill(scenario: Option<&Path>) -> (Run, Value, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario.map_or("subaccount-leak.yaml".to_string(), |p| {
        p.display().to_string()
    });
    let run = crate::support::drill(dir.path(), &path).await;
    let incident = run.incident(dir.path());
    let report = read_json(&incident.join("report.json"));
    (run, report, incident, dir)
}

/// Every file of the incident folder, for "no full key anywhere" checks.
fn all_text(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.push_str(&all_text(&p));
        } else if let Ok(t) = std::fs::read_to_string(&p) {
            out.push_str(&t);
        }
    }
    out
}

#[tokio::test]
async fn a_master_responder_key_deletes_the_leaked_sub_account_key_and_the_attackers_key() {
    let (run, report, incident, _dir) = drill(None).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let owner = &step(&report, "key-owner")["outputs"];
    assert_eq!(owner["on_sub_account"], true);
    assert_eq!(owner["owner"], "m***@desk.example");
    assert_eq!(owner["ip_restriction"], "none");
    assert_eq!(owner["flagged"], 1);
    assert!(owner["created"].as_str().unwrap().ends_with('Z'));

    let api = &step(&report, "delete-subaccount-key");
    assert_eq!(api["status"], "ok", "{api}");
    assert_eq!(api["outputs"]["dead"], true);
    assert_eq!(api["outputs"]["verdict"], "dead");
    // No manual deletion, and no second proof: the API step proved it.
    assert_eq!(step(&report, "delete-key")["status"], "skipped");
    assert_eq!(step(&report, "verify-revoked")["status"], "skipped");
    let extra = &step(&report, "delete-unknown-keys");
    assert_eq!(extra["status"], "ok", "{extra}");
    assert_eq!(extra["outputs"]["deleted"], "RP10…BQq7");

    // Both keys gone in the simulator's state; the desk's monitoring key left alone.
    let state = csv_rows(&incident.join("evidence/drill-final-state.csv"));
    assert_eq!(state[0]["leakedKeyDeleted"], "true");
    assert_eq!(state[0]["otherKeysDeleted"], "1");

    // The sub-account's money movements, read with the master key: four sources read.
    assert_eq!(step(&report, "subaccount-transfers")["status"], "ok");
    let read: Vec<String> = csv_rows(&incident.join("evidence/coverage.csv"))
        .into_iter()
        .filter(|r| {
            (r["source"].starts_with("sub-account ") && r["source"] != "sub-account transfers")
                || r["source"].starts_with("master/sub")
        })
        .map(|r| format!("{} {}", r["source"], r["status"]))
        .collect();
    assert_eq!(read.len(), 4, "{read:?}");
    assert!(read.iter().all(|r| r.ends_with(" read")), "{read:?}");
    let moved = csv_rows(&incident.join("evidence/subaccount-transfers.csv"));
    let moved: Vec<String> = moved
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["source"],
                r["asset"],
                r["fromEmail"].clone() + &r["from"]
            )
        })
        .collect();
    assert_eq!(
        moved,
        [
            "sub-account universal transfers ETH m***@desk.example",
            "sub-account USDⓈ-M internal transfers USDT m***@desk.example"
        ],
        "the funding 10 days ago is outside the window"
    );
    assert!(run
        .stderr
        .contains("2 transfer(s) moved money out of sub-account m***@desk.example"));

    let keys = csv_rows(&incident.join("evidence/api-keys.csv"));
    assert_eq!(keys.len(), 3);
    let flagged: Vec<&str> = keys
        .iter()
        .filter(|k| k["flagged"] == "true")
        .map(|k| k["apiName"].as_str())
        .collect();
    assert_eq!(flagged, ["api-sync"]);
    assert_eq!(keys[2]["ipRestriction"], "203.0.113.20");

    // Each deletion had its own confirm (the autopilot's yes), before its DELETE.
    let journal = std::fs::read_to_string(incident.join("journal.jsonl")).unwrap();
    let answers = journal
        .lines()
        .filter(|l| {
            l.contains("\"event\":\"answer\"") && l.contains("delete-") && l.contains("\"yes\"")
        })
        .count();
    assert_eq!(answers, 2, "one yes per destructive deletion step");
    assert!(report["scorecard"]["seconds_api_delete_to_dead"].is_number());
    let md = std::fs::read_to_string(incident.join("report.md")).unwrap();
    assert!(md.contains("Deletion by API: from confirm to proven dead"));
    assert!(md.contains("api-sync"));

    // Keys and the sub-account's email are masked everywhere.
    let text = format!("{}{}{}", run.stdout, run.stderr, all_text(&incident));
    for full in [
        LEAKED,
        EXTRA,
        "mm-bot@desk.example",
        "mm-bot%40desk.example",
    ] {
        assert!(!text.contains(full), "{full} appears in the output");
    }
}

#[tokio::test]
async fn without_a_master_responder_key_the_deletion_stays_manual_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub.yaml");
    std::fs::write(
        &path,
        format!(
            "{}\ndrill: {{ responder: same-account }}\n",
            scenario_text()
        ),
    )
    .unwrap();
    let (run, report, _incident, _d) = drill(Some(&path)).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let owner = &step(&report, "key-owner")["outputs"];
    assert_eq!(owner["on_sub_account"], false);
    assert!(
        owner["reason"]
            .as_str()
            .unwrap()
            .contains("not a master account's key"),
        "{owner}"
    );
    assert!(run
        .stderr
        .contains("Deleting the key by API is not possible"));
    assert_eq!(step(&report, "delete-subaccount-key")["status"], "skipped");
    assert_eq!(step(&report, "delete-unknown-keys")["status"], "skipped");
    assert_eq!(step(&report, "subaccount-transfers")["status"], "skipped");
    // The manual step's instructions carry the reason.
    assert!(
        run.stderr.contains(
            "(respond cannot delete it by API: the responder key is not a master account's key"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(step(&report, "delete-key")["status"], "ok");
    assert_eq!(
        step(&report, "verify-revoked")["outputs"]["verdict"],
        "dead"
    );
}

/// The scenario with nothing to cancel, so the first destructive step a run reaches is
/// the deletion by API.
async fn quiet_sim() -> SimServer {
    let text = scenario_text();
    let mut s = Scenario::parse(&text, "s.yaml").unwrap_or_else(|d| panic!("{d}"));
    s.attacker = None;
    s.open_orders.clear();
    SimServer::start(SimConfig::new(s)).await.unwrap()
}

#[tokio::test]
async fn a_live_run_without_a_terminal_and_without_yes_deletes_nothing() {
    let sim = quiet_sim().await;
    let leaked = sim.leaked_key();
    let master = sim.create_responder_key_of(ResponderKind::MasterTrading);
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("BINANCE_API_KEY", leaked.api_key.as_str()),
        ("BINANCE_API_SECRET", leaked.secret.as_str()),
        ("BINANCE_RESPONDER_API_KEY", master.api_key.as_str()),
        ("BINANCE_RESPONDER_API_SECRET", master.secret.as_str()),
    ];
    let run = respond(dir.path(), &["compromised", "--base-url", sim.url()], &env).await;
    assert_eq!(run.code, 4, "{}\n{}", run.stdout, run.stderr);
    assert!(sim.state_summary().keys.iter().all(|k| !k.deleted));
    assert!(!sim
        .request_log()
        .iter()
        .any(|l| l.method == "DELETE" && l.path.contains("sub-account")));

    // The same with --dry-run --yes: previewed, refused below the action (nothing sent).
    let run = respond(
        dir.path(),
        &["compromised", "--dry-run", "--yes", "--base-url", sim.url()],
        &env,
    )
    .await;
    run.expect_stderr("delete the leaked key xEEs…l8Ks");
    assert!(sim.state_summary().keys.iter().all(|k| !k.deleted));
    assert!(!sim
        .request_log()
        .iter()
        .any(|l| l.method == "DELETE" && l.path.contains("sub-account")));
}

/// `respond compromised --yes` against `sim` with its leaked key, and a responder key
/// of `kind` on the master account.
async fn yes_with_master(
    sim: &respond::sim::SimServer,
    kind: ResponderKind,
    cwd: &std::path::Path,
) -> Run {
    let leaked = sim.leaked_key();
    let master = sim.create_responder_key_of(kind);
    let env = [
        ("BINANCE_API_KEY", leaked.api_key.as_str()),
        ("BINANCE_API_SECRET", leaked.secret.as_str()),
        ("BINANCE_RESPONDER_API_KEY", master.api_key.as_str()),
        ("BINANCE_RESPONDER_API_SECRET", master.secret.as_str()),
    ];
    respond(
        cwd,
        &["compromised", "--yes", "--base-url", sim.url()],
        &env,
    )
    .await
}

#[tokio::test]
async fn live_with_yes_deletes_by_api_and_the_manual_step_is_not_needed() {
    let sim = quiet_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let run = yes_with_master(&sim, ResponderKind::MasterTrading, dir.path()).await;
    // The password, unknown-keys and new-key steps still need a person: pending (5).
    assert_eq!(run.code, 5, "{}\n{}", run.stdout, run.stderr);
    let state = sim.state_summary();
    let gone: Vec<&str> = state
        .keys
        .iter()
        .filter(|k| k.deleted)
        .map(|k| k.label.as_str())
        .collect();
    assert_eq!(gone, ["MM Bot", "api-sync"]);
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    assert_eq!(step(&report, "delete-key")["status"], "skipped");
}

#[tokio::test]
async fn a_master_key_without_trading_permission_falls_back_to_the_manual_step() {
    let sim = quiet_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let run = yes_with_master(&sim, ResponderKind::ReadOnly, dir.path()).await;
    // The DELETE is refused (-2015): that step failed (exit 1) and the manual deletion
    // is still asked for; nothing was deleted.
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    assert_eq!(
        step(&report, "key-owner")["outputs"]["on_sub_account"],
        true
    );
    assert_eq!(step(&report, "delete-subaccount-key")["status"], "failed");
    assert_ne!(step(&report, "delete-key")["status"], "skipped");
    assert!(sim.state_summary().keys.iter().all(|k| !k.deleted));
}

#[tokio::test]
async fn a_key_on_an_asset_management_sub_account_stays_manual_and_says_why() {
    let text = scenario_text().replacen(
        "account: mm-bot@desk.example",
        "account: fund-custody@desk.example",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custody.yaml");
    std::fs::write(&path, text).unwrap();
    let (run, report, _incident, _d) = drill(Some(&path)).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let reason = step(&report, "key-owner")["outputs"]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("f***@desk.example (an asset-management sub-account"),
        "{reason}"
    );
    assert_eq!(step(&report, "delete-subaccount-key")["status"], "skipped");
    assert_eq!(step(&report, "delete-key")["status"], "ok");
    assert_eq!(
        step(&report, "verify-revoked")["outputs"]["verdict"],
        "dead"
    );
}

#[tokio::test]
async fn a_master_account_leak_names_the_sub_accounts_checked() {
    // The leaked key moved to the master account itself.
    let text = scenario_text().replacen("    account: mm-bot@desk.example\n", "", 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.yaml");
    std::fs::write(&path, text).unwrap();
    let (run, report, _incident, _d) = drill(Some(&path)).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let owner = &step(&report, "key-owner")["outputs"];
    assert_eq!(owner["on_sub_account"], false);
    assert_eq!(owner["checked"], "m***@desk.example, a***@desk.example");
    assert!(run
        .stderr
        .contains("Keys checked on sub-account(s): m***@desk.example, a***@desk.example"));
    assert_eq!(step(&report, "check-unknown-keys")["status"], "ok");
}
