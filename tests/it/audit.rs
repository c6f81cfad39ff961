//! Before and after an incident: `respond audit` end to end (drill, live-style against the
//! simulator, a mocked Binance for trading-permission expiry), and `--json` output that a
//! machine can read line by line.
use crate::support;

use respond::sim::Actor;
use serde_json::Value as Json;
use support::{env_refs, leaked_env, read_json, respond, sim};

fn findings(report: &Json) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["title"].as_str().unwrap().to_string())
        .collect()
}

/// Every stdout line is a journal record with the envelope fields, in sequence.
#[track_caller]
fn json_records(stdout: &str) -> Vec<Json> {
    let mut records = Vec::new();
    for (n, line) in stdout.lines().enumerate() {
        let record: Json = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line {} is not JSON ({e}): {line}", n + 1));
        for field in ["v", "seq", "time", "event", "prev"] {
            assert!(
                record.get(field).is_some(),
                "stdout line {} has no `{field}`: {line}",
                n + 1
            );
        }
        assert_eq!(record["seq"], (n + 1) as u64, "line {}", n + 1);
        records.push(record);
    }
    assert!(!records.is_empty(), "no JSON lines on stdout");
    records
}

#[tokio::test(flavor = "multi_thread")]
async fn drill_flags_withdrawals_and_the_missing_whitelist_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sim-requests.jsonl");
    let run = respond(
        dir.path(),
        &[
            "audit",
            "--drill",
            "--sim-request-log",
            log.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    run.expect_code(1);
    let incident = run.incident(dir.path());
    assert!(
        incident.to_string_lossy().ends_with("-audit-drill"),
        "{}",
        incident.display()
    );
    let report = read_json(&incident.join("report.json"));
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["exit_code"], 1);
    assert_eq!(report["playbook"], "audit");
    let titles = findings(&report);
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("Withdrawals are enabled") && t.contains("Fix: ")),
        "{titles:?}"
    );
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("No IP whitelist") && t.contains("Fix: ")),
        "{titles:?}"
    );
    // Every finding says how to fix it, in the title and in the detail.
    for f in report["findings"].as_array().unwrap() {
        assert!(
            f["detail"]["fix"].as_str().is_some_and(|s| !s.is_empty()),
            "{f}"
        );
    }
    // The human view says the same.
    run.expect_stderr("Withdrawals are enabled");
    run.expect_stderr("exit code 1");

    // Read-only: no responder key was created for it, and only GETs were sent.
    assert_eq!(report["responder_key"], Json::Null);
    let log = std::fs::read_to_string(&log).unwrap();
    let client: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"actor\":\"client\""))
        .collect();
    assert!(!client.is_empty());
    assert!(
        client.iter().all(|l| l.contains("\"method\":\"GET\"")),
        "the audit sent something that is not a read:\n{log}"
    );
    assert!(
        client
            .iter()
            .any(|l| l.contains("/sapi/v1/account/apiRestrictions")),
        "{log}"
    );

    // The audit table is evidence like any other, and the record verifies.
    let audit_csv = std::fs::read_to_string(incident.join("evidence/key-audit.csv")).unwrap();
    assert!(audit_csv.starts_with("check,"), "{audit_csv}");
    assert!(incident.join("report.html").is_file());
    support::assert_verifies(&incident);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whitelisted_read_only_key_is_clean_for_data_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/playbooks/scenarios/read-only.yaml"
    );
    let run = respond(
        dir.path(),
        &[
            "audit",
            "--drill",
            "--scenario",
            scenario,
            "--purpose",
            "data",
        ],
        &[],
    )
    .await;
    run.expect_code(0);
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    assert_eq!(report["exit_code"], 0);
    assert!(findings(&report).is_empty(), "{:?}", findings(&report));
    let step = &report["steps"][0];
    assert_eq!(step["outputs"]["problems"], 0);
    assert_eq!(step["outputs"]["ip_restricted"], true);
    assert!(
        step["summary"].as_str().unwrap().starts_with("clean"),
        "{step}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn purpose_data_flags_trading_and_rotation_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let run = respond(
        dir.path(),
        &[
            "audit",
            "--drill",
            "--purpose",
            "data",
            "--rotation",
            "365d",
        ],
        &[],
    )
    .await;
    run.expect_code(1);
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    let titles = findings(&report);
    assert!(
        titles
            .iter()
            .any(|t| t.contains("Declared for data, but it can trade")),
        "{titles:?}"
    );
    // The scenario's key is 200 days old: due under 90 days, not under 365.
    assert!(
        !titles.iter().any(|t| t.contains("rotation period")),
        "{titles:?}"
    );

    let run = respond(dir.path(), &["audit", "--drill", "--rotation", "30d"], &[]).await;
    run.expect_code(1);
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    assert!(
        findings(&report)
            .iter()
            .any(|t| t.contains("past the 30 days rotation period")),
        "{:?}",
        findings(&report)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn live_style_audit_changes_nothing_on_the_exchange() {
    let server = sim(None).await;
    let before = server.state_summary();
    let dir = tempfile::tempdir().unwrap();
    let env = leaked_env(&server);
    let run = respond(
        dir.path(),
        &["audit", "--base-url", server.url()],
        &env_refs(&env),
    )
    .await;
    run.expect_code(1);
    assert!(run
        .incident(dir.path())
        .to_string_lossy()
        .ends_with("-audit"));
    let after = server.state_summary();
    assert_eq!(after.open_orders, before.open_orders);
    assert_eq!(after.keys.len(), before.keys.len(), "no key was created");
    let sent: Vec<_> = server
        .request_log()
        .into_iter()
        .filter(|e| e.actor == Actor::Client)
        .collect();
    assert!(sent.iter().all(|e| e.method == "GET"), "{sent:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_binance_refuses_is_exit_3_not_a_finding() {
    let server = sim(None).await;
    let dir = tempfile::tempdir().unwrap();
    let run = respond(
        dir.path(),
        &["audit", "--base-url", server.url()],
        &[
            (
                "BINANCE_API_KEY",
                "NotAKeyTheSimulatorKnowsAboutNotAKeyTheSimulatorKnowsAbout123456",
            ),
            (
                "BINANCE_API_SECRET",
                "xZKiGvbtcj7bsHXDYzEzVMGPBnu3mY2lhm12FPzmV4eAk5M7ByFgDcEW7AKW3gc3",
            ),
        ],
    )
    .await;
    run.expect_code(3);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_purpose_or_rotation_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = respond(dir.path(), &["audit", "--drill", "--purpose", "hodl"], &[]).await;
    run.expect_code(2);
    run.expect_stderr("data, trading");
    let run = respond(dir.path(), &["audit", "--drill", "--rotation", "soon"], &[]).await;
    run.expect_code(2);
    run.expect_stderr("--rotation");
    assert!(
        !dir.path().join("incidents").exists(),
        "a usage error leaves no incident folder"
    );
}

/// Binance reports `tradingAuthorityExpirationTime` for unrestricted trading keys; the
/// simulator does not, so a mocked Binance stands in.
#[tokio::test(flavor = "multi_thread")]
async fn trading_permission_expiring_soon_is_a_finding() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    let now = chrono::Utc::now().timestamp_millis();
    let day = 86_400_000i64;
    Mock::given(method("GET"))
        .and(path("/api/v3/time"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "serverTime": now
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sapi/v1/account/apiRestrictions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "ipRestrict": false,
            "createTime": now - 20 * day,
            "enableReading": true,
            "enableWithdrawals": false,
            "enableInternalTransfer": false,
            "enableMargin": false,
            "enableFutures": false,
            "permitsUniversalTransfer": false,
            "enableVanillaOptions": false,
            "enableFixApiTrade": false,
            "enableFixReadOnly": false,
            "enableSpotAndMarginTrading": true,
            "enablePortfolioMarginTrading": false,
            "tradingAuthorityExpirationTime": now + 5 * day
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v3/account"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "canTrade": true, "canWithdraw": false, "canDeposit": true,
            "permissions": ["SPOT"], "balances": []
        })))
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(404))
        .expect(0)
        .mount(&server)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let run = respond(
        dir.path(),
        &["audit", "--base-url", &server.uri()],
        &[
            (
                "BINANCE_API_KEY",
                "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
            ),
            (
                "BINANCE_API_SECRET",
                "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
            ),
        ],
    )
    .await;
    run.expect_code(1);
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    let titles = findings(&report);
    assert!(
        titles.iter().any(
            |t| t.contains("trading permission expires") && t.contains("in 4 days")
                || t.contains("in 5 days")
        ),
        "{titles:?}"
    );
    assert!(
        titles.iter().any(|t| t.starts_with("No IP whitelist")),
        "{titles:?}"
    );
    assert_ne!(report["steps"][0]["outputs"]["trading_expires"], Json::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_json_mode_puts_only_records_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let run = respond(dir.path(), &["audit", "--drill", "--json"], &[]).await;
    run.expect_code(1);
    let records = json_records(&run.stdout);
    let events: Vec<&str> = records
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"run_started"));
    assert_eq!(events.last(), Some(&"run_finished"));
    assert!(events.contains(&"finding"), "{events:?}");
    assert_eq!(records.last().unwrap()["exit_code"], 1);
    // The human view went to stderr.
    run.expect_stderr("Audit the key");
}

#[tokio::test(flavor = "multi_thread")]
async fn compromised_drill_json_output_parses_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = respond(
        dir.path(),
        &["compromised", "--drill", "--yes", "--json"],
        &[],
    )
    .await;
    run.expect_code(0);
    let records = json_records(&run.stdout);
    assert!(records.len() > 50, "{} records", records.len());
    // The chain on stdout is the journal's: each `prev` is the hash of the line before.
    let lines: Vec<&str> = run.stdout.lines().collect();
    for pair in lines.windows(2) {
        let next: Json = serde_json::from_str(pair[1]).unwrap();
        assert_eq!(
            next["prev"].as_str().unwrap(),
            respond::report::journal::sha256_hex(pair[0].as_bytes()),
            "stdout line after {}",
            pair[0]
        );
    }
    let journal = std::fs::read_to_string(
        dir.path()
            .join("incidents")
            .read_dir()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
            .join("journal.jsonl"),
    )
    .unwrap();
    assert_eq!(journal, run.stdout, "stdout carries exactly the journal");
    run.expect_stderr("── Summary");
}

/// The terminal as an operator has it: stdout and stderr on a pseudo-terminal.
fn in_a_terminal(dir: &std::path::Path, args: &[&str], no_color: bool) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_respond"));
    cmd.current_dir(dir)
        .args(args)
        .env("TERM", "xterm-256color")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("BINANCE_API_KEY")
        .env_remove("BINANCE_API_SECRET");
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    let mut session =
        rexpect::session::spawn_command(cmd, Some(30_000)).expect("spawn respond in a pty");
    session.exp_eof().expect("respond ran to the end")
}

#[test]
fn no_color_and_quiet_are_honoured_in_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let coloured = in_a_terminal(dir.path(), &["audit", "--drill"], false);
    assert!(
        coloured.contains("\x1b["),
        "without NO_COLOR a terminal gets colour (else this test proves nothing):\n{coloured}"
    );
    let plain = in_a_terminal(dir.path(), &["audit", "--drill"], true);
    assert!(plain.contains("Withdrawals are enabled"), "{plain}");
    assert!(
        !plain.contains('\x1b'),
        "NO_COLOR: no escape sequence at all:\n{plain:?}"
    );
    let quiet = in_a_terminal(dir.path(), &["audit", "--drill", "--quiet"], true);
    assert!(
        quiet.contains("Withdrawals are enabled"),
        "findings stay: {quiet}"
    );
    assert!(
        !quiet.contains("Audit the key") && !quiet.contains("── Summary"),
        "--quiet drops headings and progress: {quiet}"
    );
}
