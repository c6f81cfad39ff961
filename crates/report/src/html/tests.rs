//! `report.html` from a journal written the way a run writes it: structure, escaping of
//! hostile exchange data, and that the page needs nothing from outside itself.
use std::collections::BTreeMap;

use serde_json::json;

use crate::journal::{self, Event, Journal, StepStatus};
use crate::{render_dir, REPORT_HTML};

const HOSTILE: &str = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>";

fn request_delete(step: &str, path: &str, symbol: &str) -> Event {
    Event::Request {
        step: Some(step.into()),
        method: "DELETE".into(),
        path: path.into(),
        query: format!("symbol={symbol}&recvWindow=5000&timestamp=1"),
        status: Some(200),
        code: None,
        weight: Some(1),
        elapsed_ms: 3,
        attempt: 1,
        error: None,
        sent_at: None,
    }
}

fn evidence(step: &str, table: &str, rows: Vec<serde_json::Value>) -> Event {
    Event::Evidence {
        step: step.into(),
        table: table.into(),
        rows,
    }
}

fn step_finished(step: &str, summary: &str) -> Event {
    Event::StepFinished {
        step: step.into(),
        status: StepStatus::Ok,
        summary: summary.into(),
        outputs: BTreeMap::new(),
        elapsed_ms: 10,
    }
}

/// The run's opening record: an operator name with hostile markup in it.
fn run_started(inputs: &BTreeMap<String, String>, drill: bool, dry_run: bool) -> Event {
    Event::RunStarted {
        playbook: "compromised".into(),
        origin: "built-in:compromised".into(),
        playbook_sha256: "0".into(),
        inputs: inputs.clone(),
        dry_run,
        drill,
        yes: true,
        target: "simulator".into(),
        key: Some("AbCd…wXyZ".into()),
        responder_key: None,
        operator: format!("mallory{HOSTILE}@host"),
        respond_version: "0.1.0".into(),
        signing_key: None,
        target_spec: None,
        key_fingerprint: None,
    }
}

/// A confirmed cancel step (hostile title and reason) that cancelled two orders.
fn cancel_step(ms: impl Fn(i64) -> i64) -> Vec<Event> {
    vec![
        Event::StepStarted {
            step: "cancel-orders".into(),
            action: "binance.cancel_open_orders".into(),
            title: format!("Cancel {HOSTILE}"),
            kind: "destructive".into(),
        },
        Event::Answer {
            step: "cancel-orders".into(),
            answer: crate::journal::Answered::Yes,
            reason: Some(HOSTILE.into()),
            who: "ops@host".into(),
            by: "operator".into(),
            question: None,
        },
        request_delete("cancel-orders", "/api/v3/openOrders", "XYZBTC"),
        request_delete("cancel-orders", "/fapi/v1/allOpenOrders", "BTCUSDT"),
        evidence(
            "cancel-orders",
            "cancelled-orders",
            vec![
                json!({"market": "spot", "symbol": "XYZBTC", "side": "BUY", "type": "LIMIT", "orderId": 1, "origQty": "20000", "clientOrderId": HOSTILE, "time": ms(1)}),
                json!({"market": "usdm", "symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "orderId": 2, "origQty": "0.01", "time": ms(3)}),
            ],
        ),
        step_finished("cancel-orders", "2 order(s) cancelled"),
    ]
}

/// An evidence step with a table of each kind (a hostile withdrawal address), a critical
/// finding and a warning.
fn transfers_step(ms: impl Fn(i64) -> i64, apply: &str) -> Vec<Event> {
    vec![
        Event::StepStarted {
            step: "transfers".into(),
            action: "binance.transfers".into(),
            title: "Pull withdrawals".into(),
            kind: "evidence".into(),
        },
        evidence(
            "transfers",
            "trades",
            vec![
                json!({"symbol": "XYZBTC", "market": "spot", "isBuyer": true, "qty": "90000", "price": "0.0000088", "time": ms(5), "timeUtc": "x", "flags": "off-market +319%"}),
                json!({"symbol": "BTCUSDT", "market": "spot", "isBuyer": false, "qty": "0.1", "price": "64000", "time": ms(48), "flags": ""}),
            ],
        ),
        evidence(
            "transfers",
            "withdrawals",
            vec![
                json!({"address": HOSTILE, "amount": "4800", "coin": "USDT", "network": "TRX", "applyTime": apply, "knownAddress": false, "statusText": "completed"}),
            ],
        ),
        evidence(
            "transfers",
            "deposits",
            vec![json!({"address": "0xabc", "amount": "1", "coin": "BTC", "insertTime": ms(60)})],
        ),
        evidence(
            "transfers",
            "transfers",
            vec![
                json!({"type": "MAIN_UMFUTURE", "amount": "1000", "asset": "USDT", "timestamp": ms(6)}),
            ],
        ),
        Event::Finding {
            step: "transfers".into(),
            severity: crate::journal::Severity::Critical,
            title: format!("Withdrawal to {HOSTILE}"),
            detail: json!({}),
        },
        Event::Note {
            step: Some("transfers".into()),
            level: crate::journal::NoteLevel::Warn,
            message: HOSTILE.into(),
        },
        step_finished("transfers", "1 withdrawal"),
    ]
}

/// An incident folder holding a small, complete run with evidence of every kind, some of
/// it hostile, rendered.
fn incident(drill: bool, dry_run: bool) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = BTreeMap::new();
    let now = chrono::Utc::now();
    let since = now - chrono::Duration::hours(72);
    inputs.insert(
        "since".to_string(),
        since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let journal = Journal::create(
        &dir.path().join(journal::JOURNAL_FILE),
        journal::genesis_hash("playbook", &inputs),
    )
    .unwrap();
    let ms = |hours_ago: i64| (now - chrono::Duration::hours(hours_ago)).timestamp_millis();
    let apply = (now - chrono::Duration::hours(4))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let mut events = vec![run_started(&inputs, drill, dry_run)];
    events.extend(cancel_step(ms));
    events.extend(transfers_step(ms, &apply));
    events.push(Event::RunFinished {
        outcome: crate::journal::RunOutcome::Completed,
        exit_code: 0,
        pending: vec![],
    });
    for event in events {
        journal.record(event).unwrap();
    }
    render_dir(dir.path()).unwrap();
    let html = std::fs::read_to_string(dir.path().join(REPORT_HTML)).unwrap();
    (dir, html)
}

#[test]
fn the_page_has_every_section_in_reading_order() {
    let (_dir, html) = incident(true, false);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    let order = [
        "id=\"summary\"",
        "id=\"findings\"",
        "id=\"timeline\"",
        "id=\"steps\"",
        "id=\"decisions\"",
        "id=\"evidence\"",
        "id=\"log\"",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|s| html.find(s).unwrap_or_else(|| panic!("no {s}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    // The same evidence tables as report.md.
    for table in [
        "cancelled-orders",
        "trades",
        "withdrawals",
        "deposits",
        "transfers",
    ] {
        assert!(
            html.contains(&format!("id=\"evidence-{table}\"")),
            "{table}"
        );
    }
}

#[test]
fn the_timeline_marks_every_kind_of_event() {
    let (_dir, html) = incident(true, false);
    assert!(html.contains("<svg class=\"timeline window\""));
    assert!(html.contains("<svg class=\"timeline response\""));
    for class in [
        "mark trade flagged",
        "mark trade\"",
        "mark withdrawal flagged",
        "mark deposit",
        "mark transfer",
        "mark cancel",
        "mark operator",
    ] {
        assert!(html.contains(&format!("class=\"{class}")), "no {class}");
    }
    // The response's steps are bars, coloured by how they ended.
    assert!(html.contains("class=\"step done\""));
}

#[test]
fn hostile_exchange_data_is_escaped_everywhere() {
    let (_dir, html) = incident(false, false);
    let lower = html.to_lowercase();
    assert!(!lower.contains("<script"), "a script tag got through");
    assert!(!lower.contains("<img"), "an img tag got through");
    // What is left of the attack is text on the page.
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&gt;&lt;img"));
}

#[test]
fn the_page_needs_nothing_from_outside() {
    let (_dir, html) = incident(true, true);
    let lower = html.to_lowercase();
    for forbidden in [
        "src=\"http",
        "src='http",
        "href=\"http",
        "href='http",
        "url(",
        "@import",
        "<link",
        "<script",
        "<iframe",
        "<object",
    ] {
        assert!(!lower.contains(forbidden), "found {forbidden}");
    }
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));
}

#[test]
fn drills_and_dry_runs_are_marked_like_the_markdown() {
    let (_dir, html) = incident(true, true);
    assert!(html.contains("<h1>Incident report: compromised — DRILL (autopilot), DRY RUN</h1>"));
    assert!(html.contains("class=\"banner drill\""));
    assert!(html.contains("class=\"banner dry-run\""));
    let (_dir, live) = incident(false, false);
    assert!(!live.contains("class=\"banner"));
}
