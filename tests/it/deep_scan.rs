//! The deep scan (`binance.recent_trades` with `scope: all`): every spot symbol the
//! exchange lists is read, so a pair the attacker traded in and out (nothing left held or
//! open) is found without `--symbols`; futures symbols come from the income history; an
//! interrupted scan resumes without reading again what it journaled.
use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use respond::sim::Actor;
use support::{csv_rows, leaked_env, read_json, respond, resume_without_latency, sim};

/// The built-in story plus a pump-and-dump the candidates cannot see: PMP/USDT (delisted
/// since, status BREAK) bought far above the market and sold back inside the window, so
/// no PMP is held and no order is open there.
fn in_and_out_story() -> String {
    let text = respond::sim::BUILTIN_LEAKED_KEY;
    let text = text.replacen(
        "symbols:\n",
        "symbols:\n  - { market: spot, symbol: PMPUSDT, base: PMP, quote: USDT, price: \"0.031\", thin: true, status: BREAK }\n",
        1,
    );
    text.replacen(
        "trades:\n",
        "trades:\n  - { market: spot, symbol: PMPUSDT, side: BUY,  price: \"0.124\", quantity: \"40000\", time: -3h,     market_price: \"0.031\" }\n  - { market: spot, symbol: PMPUSDT, side: SELL, price: \"0.030\", quantity: \"40000\", time: -2h50m, market_price: \"0.031\" }\n",
        1,
    )
}

fn symbol_of(query: &str) -> String {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("symbol="))
        .unwrap_or("")
        .to_string()
}

fn journal(incident: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(incident.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drill_finds_a_pair_traded_in_and_out_without_symbols() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("in-and-out.yaml");
    std::fs::write(&scenario, in_and_out_story()).unwrap();
    let run = crate::support::drill(dir.path(), scenario.to_str().unwrap()).await;
    run.expect_code(0);
    let incident = run.incident(dir.path());
    support::assert_verifies(&incident);

    // The candidate pass did not look at PMPUSDT: nothing held, nothing open.
    let report = read_json(&incident.join("report.json"));
    let findings = report["findings"].as_array().unwrap();
    let pmp: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| f["title"].as_str().unwrap().contains("PMPUSDT"))
        .collect();
    assert_eq!(pmp.len(), 1, "one finding for the pair: {findings:#?}");
    assert_eq!(pmp[0]["step"], "deep-scan");
    assert_eq!(pmp[0]["severity"], "high");
    let title = pmp[0]["title"].as_str().unwrap();
    assert!(
        title.contains("far from the market price") && title.contains("never traded this symbol"),
        "off-market and first-ever: {title}"
    );

    // Both trades are evidence, the buy disowned as the attacker's.
    let rows: Vec<_> = csv_rows(&incident.join("evidence/trades.csv"))
        .into_iter()
        .filter(|r| r["symbol"] == "PMPUSDT")
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let buy = rows.iter().find(|r| r["isBuyer"] == "true").unwrap();
    assert_eq!(buy["attackerEvidence"], "far from the market price");
    assert!(buy["flags"].contains("first-ever trade in this symbol"));

    // Coverage: the candidate pass says what it left out, the deep scan covers it all.
    let coverage = csv_rows(&incident.join("evidence/coverage.csv"));
    assert!(!coverage
        .iter()
        .any(|r| r["source"] == "spot trades" && r["scope"] == "PMPUSDT"));
    let scope = coverage
        .iter()
        .find(|r| r["scope"].starts_with("all ") && r["source"] == "spot trades")
        .expect("a coverage line for the whole listing");
    // The story's spot symbols and the 150 more the built-in scenario lists.
    let n = scope["scope"]
        .trim_start_matches("all ")
        .trim_end_matches(" spot symbols")
        .parse::<usize>()
        .unwrap();
    assert!(n > 150, "{scope:?}");
    assert!(scope["detail"].contains("BREAK"), "{scope:?}");
    let md = std::fs::read_to_string(incident.join("report.md")).unwrap();
    assert!(
        md.contains(&format!("**spot trades all {n} spot symbols**")),
        "{md}"
    );

    // The journal has the finding and the scan's batches.
    let events = journal(&incident);
    assert!(events.iter().any(|e| e["event"] == "finding"
        && e["step"] == "deep-scan"
        && e["title"].as_str().unwrap().contains("PMPUSDT")));
    let batched: usize = events
        .iter()
        .filter(|e| e["event"] == "scan_batch")
        .map(|e| e["symbols"].as_array().unwrap().len())
        .sum();
    assert_eq!(batched, n, "every symbol journaled as read");

    // The drill's responder key may read futures (Binance refuses /fapi and /dapi, reads
    // included, to a key without "Enable Futures"): after the deletion the deep scan
    // reads both income histories with it, and no futures income is a gap.
    for path in ["/fapi/v1/income", "/dapi/v1/income"] {
        assert!(
            events.iter().any(|e| e["event"] == "request"
                && e["step"] == "deep-scan"
                && e["path"] == path
                && e["status"] == 200),
            "{path} read by the deep scan"
        );
    }
    assert!(
        !coverage
            .iter()
            .any(|r| r["source"].ends_with(" income") && r["status"] == "gap"),
        "{coverage:?}"
    );
}

/// A futures symbol with no open order and no position: only the income history names it.
#[tokio::test(flavor = "multi_thread")]
async fn a_futures_symbol_is_found_through_income() {
    let text = respond::sim::BUILTIN_LEAKED_KEY;
    let text = &text[..text.find("\nattacker:").unwrap() + 1];
    let text = text
        .replacen(
            "symbols:\n",
            "symbols:\n  - { market: usdm, symbol: SOLUSDT, base: SOL, quote: USDT, price: \"150\" }\n",
            1,
        )
        .replacen(
            "trades:\n",
            "trades:\n  - { market: usdm, symbol: SOLUSDT, side: BUY,  price: \"150\", quantity: \"200\", time: -6h }\n  - { market: usdm, symbol: SOLUSDT, side: SELL, price: \"96\",  quantity: \"200\", time: -5h, realized_pnl: \"-10800\", market_price: \"150\" }\n",
            1,
        );
    let server = sim(Some(&text)).await;
    let dir = tempfile::tempdir().unwrap();
    let playbook = dir.path().join("scan.yaml");
    std::fs::write(
        &playbook,
        "version: 1\nname: scan\nsteps:\n  - id: scan\n    uses: binance.recent_trades\n    with:\n      since: 24h\n      scope: all\n",
    )
    .unwrap();
    let run = crate::support::Test::in_dir(dir.path())
        .args(&[
            "run",
            playbook.to_str().unwrap(),
            "--yes",
            "--base-url",
            server.url(),
        ])
        .leaked_key(&server)
        .run()
        .await;
    run.expect_code(0);
    let incident = run.incident(dir.path());
    support::assert_verifies(&incident);

    let log = server.request_log();
    let client: Vec<_> = log.iter().filter(|e| e.actor == Actor::Client).collect();
    assert!(client.iter().any(|e| e.path == "/fapi/v1/income"));
    assert!(client.iter().any(|e| e.path == "/dapi/v1/income"));
    assert!(
        client
            .iter()
            .any(|e| e.path == "/fapi/v1/userTrades" && symbol_of(&e.query) == "SOLUSDT"),
        "SOLUSDT's trades read"
    );
    // Traded outside the window: the income does not name it, nothing asks for it.
    assert!(!client
        .iter()
        .any(|e| e.path == "/fapi/v1/userTrades" && symbol_of(&e.query) == "ETHUSDT"));

    let coverage = csv_rows(&incident.join("evidence/coverage.csv"));
    let sol = coverage
        .iter()
        .find(|r| r["source"] == "usdm trades" && r["scope"] == "SOLUSDT")
        .expect("SOLUSDT covered");
    assert_eq!(sol["status"], "read");
    assert!(sol["detail"].contains("income in the window"), "{sol:?}");
    let trades: Vec<_> = csv_rows(&incident.join("evidence/trades.csv"))
        .into_iter()
        .filter(|r| r["symbol"] == "SOLUSDT")
        .collect();
    assert_eq!(trades.len(), 2, "{trades:?}");
    let report = read_json(&incident.join("report.json"));
    assert!(report["findings"].as_array().unwrap().iter().any(|f| {
        let t = f["title"].as_str().unwrap();
        t.contains("SOLUSDT (usdm)") && t.contains("far from the market price")
    }));
}

/// SIGKILL in the middle of the deep scan, then `respond resume`: the symbols journaled
/// as read are not asked for again, the rest are, and the report covers all of them.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_deep_scan_resumes_without_reading_again() {
    let story = in_and_out_story();
    let story = &story[..story.find("\nattacker:").unwrap() + 1];
    let server = sim(Some(story)).await;
    let dir = tempfile::tempdir().unwrap();
    let playbook = dir.path().join("scan.yaml");
    std::fs::write(
        &playbook,
        "version: 1\nname: scan\nsteps:\n  - id: deep-scan\n    uses: binance.recent_trades\n    with:\n      since: 72h\n      markets: [spot]\n      scope: all\n",
    )
    .unwrap();
    let env = leaked_env(&server);
    // Serial reads with latency, so the kill lands mid-scan.
    let mut faults = server.faults();
    faults.latency = Duration::from_millis(15);
    server.set_faults(faults);
    let mut child = crate::support::Test::in_dir(dir.path())
        .args(&[
            "run",
            playbook.to_str().unwrap(),
            "--yes",
            "--concurrency",
            "1",
        ])
        .against(&server)
        .leaked_key(&server)
        .spawn_silent();
    let my_trades = |server: &respond::sim::SimServer| -> Vec<String> {
        server
            .request_log()
            .iter()
            .filter(|e| e.actor == Actor::Client && e.path == "/api/v3/myTrades")
            .map(|e| symbol_of(&e.query))
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while my_trades(&server).len() < 70 {
        assert!(
            std::time::Instant::now() < deadline,
            "the scan did not get under way"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.start_kill().unwrap();
    assert!(!child.wait().await.unwrap().success());
    let before_kill = my_trades(&server).len();

    let incident = crate::support::first_incident(dir.path());
    let journaled: BTreeSet<String> = journal(&incident)
        .iter()
        .filter(|e| e["event"] == "scan_batch")
        .flat_map(|e| e["symbols"].as_array().unwrap().clone())
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert!(
        journaled.len() >= 40,
        "batches journaled before the kill: {}",
        journaled.len()
    );
    let resumed = resume_without_latency(&server, dir.path(), &incident, &env).await;
    resumed.expect_code(0);
    assert!(
        resumed.stderr.contains(&format!(
            "{} spot symbol(s) were read in an earlier session",
            journaled.len()
        )),
        "{}",
        resumed.stderr
    );
    let after: Vec<String> = my_trades(&server)[before_kill..].to_vec();
    let again: Vec<&String> = after.iter().filter(|s| journaled.contains(*s)).collect();
    assert!(again.is_empty(), "journaled symbols read again: {again:?}");
    let remaining: BTreeSet<&String> = after.iter().collect();
    assert!(
        !remaining.is_empty(),
        "the symbols not journaled are read after the resume"
    );

    support::assert_verifies(&incident);
    let coverage = csv_rows(&incident.join("evidence/coverage.csv"));
    let all = coverage
        .iter()
        .find(|r| r["scope"].starts_with("all "))
        .expect("coverage of the listing");
    assert!(
        all["detail"].contains(&format!(
            "{} read in an earlier session of this incident",
            journaled.len()
        )),
        "{all:?}"
    );
    // The pair found before or after the kill is reported once, with both trades.
    let rows: Vec<_> = csv_rows(&incident.join("evidence/trades.csv"))
        .into_iter()
        .filter(|r| r["symbol"] == "PMPUSDT")
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let report = read_json(&incident.join("report.json"));
    assert_eq!(report["sessions"], 2);
    assert_eq!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["title"].as_str().unwrap().contains("PMPUSDT"))
            .count(),
        1
    );
}

/// An unknown scope is a playbook error with its line and column.
#[tokio::test]
async fn an_unknown_scope_is_refused_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let playbook = dir.path().join("bad.yaml");
    std::fs::write(
        &playbook,
        "version: 1\nname: bad\nsteps:\n  - id: scan\n    uses: binance.recent_trades\n    with:\n      since: 24h\n      scope: everything\n",
    )
    .unwrap();
    let run = respond(dir.path(), &["validate", playbook.to_str().unwrap()], &[]).await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(
        out.contains("bad.yaml:8:14: `binance.recent_trades` input `scope` must be one of candidates, all, not `everything`"),
        "{out}"
    );
}

/// The client reads the whole income flow of a window page by page (1,000 rows each,
/// the next page from the last row's millisecond) without losing or repeating a row.
#[tokio::test(flavor = "multi_thread")]
async fn the_client_pages_through_income() {
    let text = respond::sim::BUILTIN_LEAKED_KEY;
    let text = &text[..text.find("\nattacker:").unwrap() + 1];
    let mut trades = String::from("trades:\n");
    for i in 1..=600 {
        trades.push_str(&format!(
            "  - {{ market: usdm, symbol: ETHUSDT, side: SELL, price: \"3400\", quantity: \"0.1\", time: -{i}m, realized_pnl: \"0.5\" }}\n"
        ));
    }
    let text = text.replacen("trades:\n", &trades, 1);
    let server = sim(Some(&text)).await;
    let key = server.leaked_key();
    let mut config =
        respond::exchange::ClientConfig::new(respond::exchange::Endpoints::single(server.url()));
    config.credentials = Some(respond::secret::Credentials::new(key.api_key, key.secret));
    let client = respond::exchange::Client::new(config).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let window = respond::exchange::TimeWindow::new(now - 12 * 3_600_000, now);
    let rows = client
        .income(respond::exchange::Market::UsdM, window)
        .await
        .unwrap();
    // 600 trades: a commission and a realised PnL each; and the -6h transfer.
    assert_eq!(rows.len(), 1201);
    let ids: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.income_type.clone(), r.tran_id.clone()))
        .collect();
    assert_eq!(ids.len(), rows.len(), "no row twice");
    assert!(rows
        .iter()
        .filter(|r| r.income_type != "TRANSFER")
        .all(|r| r.symbol == "ETHUSDT"));
    let pages = server
        .request_log()
        .iter()
        .filter(|e| e.actor == Actor::Client && e.path == "/fapi/v1/income")
        .count();
    assert_eq!(pages, 2);
    // Spot has no income endpoint: refused before anything is sent.
    assert!(client
        .income(respond::exchange::Market::Spot, window)
        .await
        .is_err());
}
