//! The fault matrix: `respond compromised --yes --base-url` against the in-process
//! simulator while the exchange misbehaves — 5xx bursts, requests that never answer, 429
//! with Retry-After, a 418 ban, a clock that jumps ±3 s, malformed JSON, connection
//! resets, and the leaked key deleted halfway through. Each case checks that the run
//! completes or stops with a specific message and the documented exit code, that the
//! journal verifies, and that no cancel the exchange acknowledged was sent again unless
//! orders really reappeared (the simulator's own request log is the witness).
//!
//! Every case writes its row of the matrix to `$CARGO_TARGET_TMPDIR/fault-matrix/`
//! (`.ci/run` prints the table after the suite) and to stderr (`-- --nocapture`).
use crate::support;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use respond::sim::{Actor, LogEntry, Scenario, SimConfig, SimServer};
use serde_json::Value;
use support::{env_refs, leaked_env, live_args, read_json, respond, Run, Test};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The fault matrix, in the order `.ci/run` prints it: the fault, what respond must do
/// (`{detail}` is filled in by the run), and the test below that proves it.
struct Row {
    test: &'static str,
    fault: &'static str,
    outcome: &'static str,
}

const MATRIX: &[Row] = &[
    Row {
        test: "fault_5xx_burst",
        fault: "5xx burst (12 answers 500/502/503 during containment, half after taking effect)",
        outcome: "completes: reads and cancel-alls retried with backoff; 8 orders cancelled once each",
    },
    Row {
        test: "fault_requests_never_answered",
        fault: "requests never answered (5 swallowed during containment; --request-timeout 1s)",
        outcome: "completes: each timed-out read or cancel-all sent again after the timeout",
    },
    Row {
        test: "fault_exchange_never_answers",
        fault: "no request ever answered (from the start; --request-timeout 500ms)",
        outcome: "stops before anything: `exchange unreachable: no answer within 0.5s`, no incident folder",
    },
    Row {
        test: "fault_429_with_retry_after",
        fault: "429 with Retry-After: 2 (every request for 1.5 s from the start of containment)",
        outcome: "completes: {detail} request(s) answered 429, each family paused until Retry-After, then resumed",
    },
    Row {
        test: "fault_418_ip_banned",
        fault: "418 IP ban (from the start of containment — the cancels, sent once triage and the listing answered — for 60 s)",
        outcome: "cancel-orders fails: each cancel `… banned this IP … until … (HTTP 418)`, none sent again; exit 1",
    },
    Row {
        test: "fault_long_ban_during_evidence",
        fault: "418 IP ban for 3 s from the first trade pull (--max-rate-limit-wait 1s, so a long wait)",
        outcome: "completes: the evidence reads wait the ban out ({detail} answered 418), the wait announced and journaled with its pool and end time",
    },
    Row {
        test: "fault_long_throttle_during_evidence",
        fault: "429 with Retry-After for 3 s from the first trade pull (--max-rate-limit-wait 1s, so a long wait)",
        outcome: "completes: the evidence reads wait the 429 out ({detail} answered 429), the wait announced and journaled",
    },
    Row {
        test: "fault_interrupted_during_a_long_wait",
        fault: "Ctrl-C (SIGINT) while the evidence reads wait out a 60 s 418 ban (--max-rate-limit-wait 1s)",
        outcome: "stops at once: exit 130, trades interrupted, the wait journaled, the journal verifies",
    },
    Row {
        test: "fault_clock_skew_plus_3s",
        fault: "exchange clock jumps +3 s mid-run (-1021, --recv-window 2000)",
        outcome: "completes: -1021 answered, clock measured again, the rejected request re-sent once",
    },
    Row {
        test: "fault_clock_skew_minus_3s",
        fault: "exchange clock jumps -3 s mid-run (-1021, default recvWindow)",
        outcome: "completes: -1021 answered, clock measured again, the rejected request re-sent once",
    },
    Row {
        test: "fault_malformed_json",
        fault: "malformed JSON on /api/v3/openOrders (spot listing and cancel-all)",
        outcome: "completes with cancel-orders failed: `spot NOT checked … may still be open`; 4 orders on the other markets cancelled",
    },
    Row {
        test: "fault_malformed_json_withdrawal_history",
        fault: "malformed JSON on /sapi/v1/capital/withdraw/history",
        outcome: "completes with transfers failed: `withdrawal history NOT fully read — check it in the Binance app` (never \"0 withdrawals\")",
    },
    Row {
        test: "fault_connection_reset",
        fault: "connection reset (RST on every 4th request, before or after the exchange acted)",
        outcome: "completes: {detail} resets, each request sent again on a new connection",
    },
    Row {
        test: "fault_key_deleted_mid_run",
        fault: "leaked key deleted during the trades pull (no responder key)",
        outcome: "completes; containment done before; `Binance now rejects the leaked key … deleted or restricted during the run`; transfers failed (nothing readable)",
    },
    Row {
        test: "fault_key_deleted_mid_run_with_responder_key",
        fault: "leaked key deleted during the trades pull (responder key given)",
        outcome: "completes; later evidence read with the responder key, the unknown withdrawal still found",
    },
    Row {
        test: "fault_interrupted_mid_cancel_then_resumed",
        fault: "Ctrl-C (SIGINT) right after the first cancel-all was acknowledged, then `respond resume DIR` (no target flag)",
        outcome: "exit 130 with the journal intact; resume previews again, cancels only what is still open, then completes (exit 5)",
    },
    Row {
        test: "fault_second_writer_during_a_run",
        fault: "a second respond on the same incident while the first runs (`resume DIR`, then `compromised` of the same key)",
        outcome: "both refuse before doing anything, naming the holder's PID and host (exit 4); `--new-incident` starts a separate one; the first completes and `report verify` passes",
    },
];

/// The built-in scenario without its attacker: every open order is cancelled exactly
/// once unless something is wrong, so any second acknowledged cancel is a finding.
fn calm_scenario() -> String {
    let text = respond::sim::BUILTIN_LEAKED_KEY;
    let cut = text
        .find("\nattacker:")
        .expect("the built-in scenario has an attacker");
    text[..cut + 1].to_string()
}

async fn start_sim(text: &str, faults: &[&str]) -> SimServer {
    let mut config = SimConfig::new(Scenario::parse(text, "faults.yaml").unwrap());
    config.weight_window = Duration::from_secs(2);
    for f in faults {
        config.faults.apply(f).unwrap();
    }
    SimServer::start(config).await.expect("start the simulator")
}

/// The calm scenario's simulator with `faults`, a folder to run in, its URL and the
/// leaked key's environment: what every row starts from.
async fn calm_exchange(
    faults: &[&str],
) -> (SimServer, tempfile::TempDir, String, Vec<(String, String)>) {
    let server = start_sim(&calm_scenario(), faults).await;
    let url = server.url().to_string();
    let env = leaked_env(&server);
    (server, tempfile::tempdir().unwrap(), url, env)
}

/// Change the simulator's faults in place.
fn set(server: &SimServer, specs: &[&str]) {
    let mut faults = server.faults();
    for spec in specs {
        faults.apply(spec).unwrap();
    }
    server.set_faults(faults);
}

fn client_log(server: &SimServer) -> Vec<LogEntry> {
    server
        .request_log()
        .into_iter()
        .filter(|e| e.actor == Actor::Client)
        .collect()
}

/// Wait until the simulator's log satisfies `done`, polling every 2 ms; false after
/// `limit` (the run ended without getting there).
async fn wait_for(server: &SimServer, limit: Duration, done: impl Fn(&[LogEntry]) -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done(&server.request_log()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    false
}

/// Everything the run reads in its first round trip: the clock check, triage's reads and
/// the open-order listing of every market (the cancel's preview).
const FIRST_ROUND_TRIP: &[&str] = &[
    "/api/v3/time",
    "/api/v3/ticker/price",
    "/api/v3/account",
    "/sapi/v1/account/apiRestrictions",
    "/sapi/v1/margin/account",
    "/fapi/v2/balance",
    "/dapi/v1/balance",
    "/fapi/v3/positionRisk",
    "/dapi/v1/positionRisk",
    "/api/v3/openOrders",
    "/sapi/v1/margin/openOrders",
    "/fapi/v1/openOrders",
    "/fapi/v1/openAlgoOrders",
    "/dapi/v1/openOrders",
    "/dapi/v1/openAlgoOrders",
];

fn first_round_trip_answered(log: &[LogEntry]) -> bool {
    FIRST_ROUND_TRIP.iter().all(|path| answered(log, path))
}

/// From the moment containment's order listing is answered, fault `on` until `until`
/// holds (at most 20 s), then `off`.
async fn from_the_listing_until(
    server: &SimServer,
    on: &str,
    off: &str,
    until: impl Fn(&[LogEntry]) -> bool,
) {
    if wait_for(server, Duration::from_secs(20), |l| {
        answered(l, "/api/v3/openOrders")
    })
    .await
    {
        set(server, &[on]);
        wait_for(server, Duration::from_secs(20), until).await;
        set(server, &[off]);
    }
}

fn answered(log: &[LogEntry], path: &str) -> bool {
    log.iter()
        .any(|e| e.actor == Actor::Client && e.path == path && e.status != 0)
}

fn count(log: &[LogEntry], pred: impl Fn(&LogEntry) -> bool) -> usize {
    log.iter()
        .filter(|e| e.actor == Actor::Client && pred(e))
        .count()
}

fn time(e: &LogEntry) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&e.time)
        .unwrap()
        .with_timezone(&Utc)
}

/// Start a live-style run against `url` in `dir`, its output piped.
fn spawn_live(
    dir: &Path,
    url: &str,
    extra: &[&str],
    env: &[(String, String)],
) -> tokio::process::Child {
    Test::in_dir(dir)
        .args(&live_args(url, extra))
        .envs(&env_refs(env))
        .spawn()
}

/// Run `respond` while `meddle` changes the exchange under it; `meddle` is dropped when
/// the run ends.
async fn run_while(
    dir: &Path,
    args: &[&str],
    env: &[(String, String)],
    meddle: impl Future<Output = ()>,
) -> (Run, Duration) {
    let started = Instant::now();
    let env = env_refs(env);
    let run = respond(dir, args, &env);
    tokio::pin!(run);
    tokio::pin!(meddle);
    let mut meddling = true;
    let run = loop {
        tokio::select! {
            run = &mut run => break run,
            () = &mut meddle, if meddling => meddling = false,
        }
    };
    (run, started.elapsed())
}

/// The market a cancel-all path belongs to, and the attacker's order path there.
fn cancel_market(path: &str) -> Option<(&'static str, &'static str)> {
    Some(match path {
        "/api/v3/openOrders" => ("spot", "/api/v3/order"),
        "/sapi/v1/margin/openOrders" => ("margin", "/sapi/v1/margin/order"),
        "/fapi/v1/allOpenOrders" => ("usdm", "/fapi/v1/order"),
        "/fapi/v1/algoOpenOrders" => ("usdm", "/fapi/v1/algoOrder"),
        "/dapi/v1/allOpenOrders" => ("coinm", "/dapi/v1/order"),
        "/dapi/v1/algoOpenOrders" => ("coinm", "/dapi/v1/algoOrder"),
        _ => return None,
    })
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The cancel-all requests respond sent, from its journal: per (path, symbol), how many
/// answers it received as acknowledged (2xx) and how many it never received (timeout,
/// reset) — those it had every reason to send again.
fn journaled_cancels(incident: &Path) -> BTreeMap<(String, String), (usize, usize)> {
    let text = std::fs::read_to_string(incident.join("journal.jsonl")).unwrap();
    let mut out: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["event"] != "request" || v["method"] != "DELETE" {
            continue;
        }
        let query = v["query"].as_str().unwrap_or("");
        let symbol = query_param(query, "symbol").unwrap_or("").to_string();
        let entry = out
            .entry((v["path"].as_str().unwrap().to_string(), symbol))
            .or_default();
        match v["status"].as_u64() {
            Some(s) if (200..300).contains(&s) => entry.0 += 1,
            None => entry.1 += 1,
            Some(_) => {}
        }
    }
    out
}

/// No (cancel path, symbol) acknowledged twice, unless the attacker placed an order on
/// that market and symbol in between (the orders really reappeared), or respond never
/// received the first acknowledgement (the connection dropped after the exchange acted:
/// sending the idempotent cancel-all again is right). Checked on the simulator's log,
/// and on the journal (what respond knew).
#[track_caller]
fn assert_no_repeated_acknowledged_cancel(log: &[LogEntry], incident: Option<&Path>) {
    let journal = incident.map(journaled_cancels).unwrap_or_default();
    let reappeared = |path: &str, symbol: &str, range: std::ops::Range<usize>| {
        let (_, order_path) = cancel_market(path).expect("a cancel-all path");
        log[range].iter().any(|a| {
            a.actor == Actor::Attacker
                && a.path == order_path
                && query_param(&a.query, "symbol") == Some(symbol)
        })
    };
    let mut last_ack: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut excused: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, e) in log.iter().enumerate() {
        if e.actor != Actor::Client || e.method != "DELETE" || e.status != 200 {
            continue;
        }
        let symbol = query_param(&e.query, "symbol").unwrap_or("").to_string();
        let key = (e.path.clone(), symbol.clone());
        if let Some(&before) = last_ack.get(&key) {
            if !reappeared(&e.path, &symbol, before..i) {
                let lost = journal.get(&key).map_or(0, |(_, lost)| *lost);
                let used = excused.entry(key.clone()).or_default();
                *used += 1;
                assert!(
                    *used <= lost,
                    "{} {symbol} was acknowledged twice (log lines {before} and {i}) with no new order in between and no lost answer",
                    e.path
                );
            }
        }
        last_ack.insert(key, i);
    }
    for ((path, symbol), (acknowledged, _)) in &journal {
        if *acknowledged > 1 {
            assert!(
                reappeared(path, symbol, 0..log.len()),
                "respond saw {path} {symbol} acknowledged {acknowledged} times and sent it again anyway"
            );
        }
    }
}

use crate::support::step;

/// Write the test's row of the matrix where `.ci/run` collects it, and to stderr.
fn record(test: &str, detail: Option<String>, code: impl std::fmt::Display, took: Duration) {
    let (index, row) = MATRIX
        .iter()
        .enumerate()
        .find(|(_, r)| r.test == test)
        .unwrap_or_else(|| panic!("{test} is not in MATRIX"));
    let outcome = row
        .outcome
        .replace("{detail}", detail.as_deref().unwrap_or(""));
    let line = format!(
        "| {} | {outcome} | {code} | {:.1}s | `{test}` |",
        row.fault,
        took.as_secs_f64()
    );
    eprintln!("fault matrix: {line}");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fault-matrix");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{:02}-{test}.row", index + 1)),
        format!("{line}\n"),
    )
    .unwrap();
}

/// A completed incident: its record verifies, no cancel-all the exchange acknowledged
/// was sent again, no order is left open. Returns its report.
#[track_caller]
fn assert_completed(incident: &Path, server: &SimServer) -> Value {
    support::assert_verifies(incident);
    assert_no_repeated_acknowledged_cancel(&server.request_log(), Some(incident));
    assert_eq!(
        server.state_summary().total_open(),
        0,
        "every order cancelled"
    );
    let report = read_json(&incident.join("report.json"));
    assert_eq!(report["outcome"], "completed");
    report
}

/// What every completed live-style run under a transient fault must show: the same
/// containment as without the fault.
#[track_caller]
fn assert_contained(run: &Run, dir: &Path, server: &SimServer) -> Value {
    assert_eq!(
        run.code, 5,
        "completed with only the manual steps pending:\n{}",
        run.stderr
    );
    let report = assert_completed(&run.incident(dir), server);
    let cancel = step(&report, "cancel-orders");
    assert_eq!(cancel["status"], "ok", "{cancel}");
    assert_eq!(cancel["outputs"]["cancelled"], 8, "{cancel}");
    assert_eq!(cancel["outputs"]["remaining"], 0, "{cancel}");
    run.expect_stderr("cancel-orders: done — 8 order(s) cancelled; no open order left");
    report
}

// ---- the matrix ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn fault_5xx_burst() {
    // 100 ms of latency: the cancels, sent moments after the listing is answered, are
    // still on their way when the burst starts, however busy the machine is.
    let (server, dir, url, env) = calm_exchange(&["seed=5", "latency=100"]).await;
    // From the moment containment starts listing orders, every answer is a 500, 502 or
    // 503 (half of them after the request took effect) until twelve have been sent.
    let meddle = from_the_listing_until(&server, "error-rate=1", "error-rate=0", |l| {
        count(l, |e| e.status >= 500) >= 12
    });
    let (run, took) = run_while(dir.path(), &live_args(&url, &[]), &env, meddle).await;
    let failures = count(&server.request_log(), |e| e.status >= 500);
    assert!(
        failures >= 12,
        "the burst happened: {failures}\n{}",
        run.stderr
    );
    assert_contained(&run, dir.path(), &server);
    record("fault_5xx_burst", None, run.code, took);
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_requests_never_answered() {
    // 100 ms of latency, so the cancels sent right after the listing are still on their
    // way when the exchange stops answering, however busy the machine is.
    let (server, dir, url, env) = calm_exchange(&["seed=5", "latency=100"]).await;
    // Requests accepted and never answered, from the start of containment until five
    // have been swallowed; the client's own timeout (1 s here) has to fire.
    let meddle = from_the_listing_until(&server, "timeout-rate=1", "timeout-rate=0", |l| {
        count(l, |e| e.status == 0) >= 5
    });
    let (run, took) = run_while(
        dir.path(),
        &live_args(&url, &["--request-timeout", "1s"]),
        &env,
        meddle,
    )
    .await;
    assert!(count(&server.request_log(), |e| e.status == 0) >= 5);
    let report = assert_contained(&run, dir.path(), &server);
    let journal = std::fs::read_to_string(run.incident(dir.path()).join("journal.jsonl")).unwrap();
    assert!(
        journal.contains("no answer within 1.0s"),
        "timeouts are journaled"
    );
    drop(report);
    record("fault_requests_never_answered", None, run.code, took);
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_exchange_never_answers() {
    let (server, dir, url, env) = calm_exchange(&["timeout-rate=1"]).await;
    let (run, took) = run_while(
        dir.path(),
        &live_args(&url, &["--request-timeout", "500ms"]),
        &env,
        async {},
    )
    .await;
    run.expect_code(3);
    run.expect_stderr("exchange unreachable: no answer within 0.5s");
    assert!(
        !dir.path().join("incidents").exists(),
        "nothing was done, so nothing is left behind"
    );
    assert!(client_log(&server).iter().all(|e| e.method == "GET"));
    record("fault_exchange_never_answers", None, run.code, took);
}

/// A live run on a calm exchange that starts misbehaving with `faults` once the first
/// round trip (triage's reads and the listing of every book) is answered, as the cancels
/// go out. Latency holds each request 400 ms before the exchange looks at it, so the
/// faults apply to containment's first requests: the cancels.
async fn fault_as_the_cancels_go_out(
    faults: &[&str],
) -> (SimServer, tempfile::TempDir, Run, Duration) {
    let (server, dir, url, env) = calm_exchange(&["latency=400"]).await;
    let meddle = async {
        if wait_for(&server, Duration::from_secs(20), first_round_trip_answered).await {
            let mut set_now = faults.to_vec();
            set_now.push("latency=0");
            set(&server, &set_now);
        }
    };
    let (run, took) = run_while(dir.path(), &live_args(&url, &[]), &env, meddle).await;
    (server, dir, run, took)
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_429_with_retry_after() {
    let (server, dir, run, took) = fault_as_the_cancels_go_out(&["throttle=1500"]).await;
    let log = client_log(&server);
    let limited: Vec<&LogEntry> = log.iter().filter(|e| e.status == 429).collect();
    assert!(!limited.is_empty(), "the exchange said 429");
    // Retry-After was 2 s: after the requests already in flight, nothing was sent until
    // the spell was over (1.5 s after it began).
    let first = time(limited[0]);
    for e in &log {
        let at = time(e) - first;
        if at > chrono::Duration::milliseconds(500) && at < chrono::Duration::milliseconds(1400) {
            panic!("sent during the Retry-After wait: {e:?}");
        }
    }
    assert!(
        limited.len() <= 8,
        "no request repeated inside the wait: {limited:?}"
    );
    assert_contained(&run, dir.path(), &server);
    record(
        "fault_429_with_retry_after",
        Some(limited.len().to_string()),
        run.code,
        took,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_418_ip_banned() {
    let (server, dir, run, took) = fault_as_the_cancels_go_out(&["ban=60000"]).await;
    assert_eq!(
        run.code, 1,
        "the cancels were refused, so the cancel step failed: exit 1\n{}",
        run.stderr
    );
    run.expect_stderr("Binance has banned this IP on /");
    assert!(
        run.stderr.contains(" UTC (HTTP 418)")
            && run.stderr.contains("banned this IP on /api until 20"),
        "says until when: {}",
        run.stderr
    );
    run.expect_stderr("cancel-orders: failed");
    let incident = run.incident(dir.path());
    support::assert_verifies(&incident);
    let log = client_log(&server);
    assert!(
        log.iter().all(|e| e.method == "GET" || e.status == 418),
        "no cancel got through the ban"
    );
    assert_no_repeated_acknowledged_cancel(&server.request_log(), Some(&incident));
    // After a 418 the client sends nothing more to that family until the ban ends.
    let banned = count(&log, |e| e.status == 418);
    assert!(
        banned <= 8,
        "one 418 per cancel in flight (three spot symbols, margin, two books each on usdm and coinm), no retries: {banned}"
    );
    let report = read_json(&incident.join("report.json"));
    assert_eq!(report["outcome"], "failed");
    assert_eq!(step(&report, "cancel-orders")["status"], "failed");
    record("fault_418_ip_banned", None, run.code, took);
}

/// Once the trade pull (evidence, after containment) has an answer, the exchange starts
/// refusing everything for a while with `fault`.
async fn limit_during_evidence(server: &SimServer, fault: &str) {
    let trades = |l: &[LogEntry]| {
        l.iter()
            .any(|e| e.actor == Actor::Client && e.path == "/api/v3/myTrades" && e.status == 200)
    };
    if wait_for(server, Duration::from_secs(30), trades).await {
        set(server, &[fault]);
    }
}

/// The journal's notes that announce a long wait.
fn long_wait_notes(incident: &Path) -> Vec<String> {
    notes_containing(incident, "for evidence from /")
}

/// The journal's notes whose message contains `words`.
fn notes_containing(incident: &Path, words: &str) -> Vec<String> {
    let text = std::fs::read_to_string(incident.join("journal.jsonl")).unwrap();
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|v| v["event"] == "note")
        .filter_map(|v| v["message"].as_str().map(str::to_string))
        .filter(|m| m.contains(words))
        .collect()
}

async fn long_limit_during_evidence(fault: &str, status: u16, words: &str, test: &str) {
    // 150 ms of latency keeps the trade pull going when the limit starts.
    let (server, dir, url, env) = calm_exchange(&["latency=150"]).await;
    let meddle = limit_during_evidence(&server, fault);
    let args = live_args(&url, &["--max-rate-limit-wait", "1s"]);
    let (run, took) = run_while(dir.path(), &args, &env, meddle).await;
    let limited = count(&client_log(&server), |e| e.status == status);
    assert!(
        limited >= 1,
        "the exchange answered {status}\n{}",
        run.stderr
    );
    // Waited, not failed: the run completes like a calm one, with every pull done.
    let report = assert_contained(&run, dir.path(), &server);
    assert_eq!(step(&report, "trades")["status"], "ok", "{}", run.stderr);
    assert_eq!(step(&report, "transfers")["status"], "ok", "{}", run.stderr);
    // Announced: what, which pool, until when (UTC), and that the run goes on.
    run.expect_stderr("for evidence from /");
    run.expect_stderr(words);
    run.expect_stderr(" UTC");
    run.expect_stderr("the run goes on by itself");
    let notes = long_wait_notes(&run.incident(dir.path()));
    assert!(!notes.is_empty(), "the wait is journaled");
    assert!(
        notes
            .iter()
            .all(|n| n.contains(words) && n.contains(" UTC")),
        "{notes:?}"
    );
    // Its end too, with how long it lasted.
    let ends = notes_containing(&run.incident(dir.path()), "is over after");
    assert!(!ends.is_empty(), "the end of the wait is journaled");
    // Nothing was sent into the limit while waiting: after the requests already in
    // flight when the first refusal came (answered within 500 ms of it), no request to
    // that pool was refused again; the refused pull went again once the limit was over.
    let log = client_log(&server);
    let first = log.iter().find(|e| e.status == status).unwrap();
    let prefix = &first.path[..first.path[1..].find('/').unwrap() + 1];
    let in_flight = time(first) + chrono::Duration::milliseconds(500);
    let hammered: Vec<&LogEntry> = log
        .iter()
        .filter(|e| e.status == status && e.path.starts_with(prefix) && time(e) > in_flight)
        .collect();
    assert!(hammered.is_empty(), "sent into the limit: {hammered:?}");
    assert!(
        log.iter().any(|e| e.status == 200
            && e.path == first.path
            && time(e) - time(first) >= chrono::Duration::milliseconds(2500)),
        "the refused pull was sent again after the limit"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    record(test, Some(limited.to_string()), run.code, took);
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_long_ban_during_evidence() {
    long_limit_during_evidence(
        "ban=3000",
        418,
        "Binance has banned this IP on /",
        "fault_long_ban_during_evidence",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_long_throttle_during_evidence() {
    long_limit_during_evidence(
        "throttle=3000",
        429,
        "Binance answered 429",
        "fault_long_throttle_during_evidence",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_interrupted_during_a_long_wait() {
    let (server, dir, url, env) = calm_exchange(&["latency=150"]).await;
    let started = Instant::now();
    let mut child = spawn_live(dir.path(), &url, &["--max-rate-limit-wait", "1s"], &env);
    limit_during_evidence(&server, "ban=60000").await;
    let banned = wait_for(&server, Duration::from_secs(20), |l| {
        l.iter()
            .any(|e| e.actor == Actor::Client && e.status == 418)
    })
    .await;
    assert!(banned, "the evidence reads met the ban");
    // Well inside the 60 s wait.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let signalled = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().await.unwrap();
    let stopped = signalled.elapsed();
    let stderr = support::stderr_of(&mut child).await;
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stopped < Duration::from_secs(5),
        "stopped promptly: {stopped:?}"
    );
    assert!(stderr.contains("trades: interrupted"), "{stderr}");
    assert!(
        stderr.contains("for evidence from /") && stderr.contains("Binance has banned this IP"),
        "the wait was announced: {stderr}"
    );
    let incident = crate::support::first_incident(dir.path());
    support::assert_verifies(&incident);
    assert!(
        !long_wait_notes(&incident).is_empty(),
        "the wait is journaled"
    );
    assert!(
        !notes_containing(&incident, "was cut short after").is_empty(),
        "so is its end, cut short by Ctrl-C"
    );
    record(
        "fault_interrupted_during_a_long_wait",
        None,
        130,
        started.elapsed(),
    );
}

async fn clock_jump(skew: &str, extra: &[&str]) -> (Run, Duration, SimServer, tempfile::TempDir) {
    let (server, dir, url, env) = calm_exchange(&[]).await;
    // The exchange's clock jumps after respond measured it (an NTP step on either side):
    // the next signed requests fall outside recvWindow and are answered -1021.
    let meddle = async {
        // Once the cancels are answered: the clock was measured in the first round trip,
        // so everything signed after this (the re-list, the evidence) is off.
        if wait_for(&server, Duration::from_secs(20), |l| {
            l.iter()
                .any(|e| e.actor == Actor::Client && e.method == "DELETE" && e.status != 0)
        })
        .await
        {
            set(&server, &[skew]);
        }
    };
    let (run, took) = run_while(dir.path(), &live_args(&url, extra), &env, meddle).await;
    (run, took, server, dir)
}

#[track_caller]
fn assert_resynced(run: &Run, dir: &Path, server: &SimServer) {
    let log = client_log(server);
    assert!(
        log.iter().any(|e| e.code == Some(-1021)),
        "the jump was noticed"
    );
    let times = count(&log, |e| e.path.ends_with("/time"));
    assert!(times >= 2, "the clock was measured again: {times}");
    assert_contained(run, dir, server);
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_clock_skew_plus_3s() {
    // 3 s behind the exchange is inside the default 5 s recvWindow; a 2 s window is not.
    let (run, took, server, dir) = clock_jump("clock-skew=3000", &["--recv-window", "2000"]).await;
    assert_resynced(&run, dir.path(), &server);
    record("fault_clock_skew_plus_3s", None, run.code, took);
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_clock_skew_minus_3s() {
    // 3 s ahead of the exchange is past Binance's 1 s allowance whatever the window.
    let (run, took, server, dir) = clock_jump("clock-skew=-3000", &[]).await;
    assert_resynced(&run, dir.path(), &server);
    record("fault_clock_skew_minus_3s", None, run.code, took);
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_malformed_json() {
    // Spot's open-orders answers (listing and cancel-all) are cut in half.
    let (server, dir, url, env) = calm_exchange(&["malformed=/api/v3/openOrders"]).await;
    let (run, took) = run_while(dir.path(), &live_args(&url, &[]), &env, async {}).await;
    assert_eq!(
        run.code, 1,
        "a step failed: containment is incomplete\n{}",
        run.stderr
    );
    run.expect_stderr(
        "could not list open orders on spot: GET /api/v3/openOrders: cannot read Binance's answer",
    );
    assert!(
        run.stderr.contains("spot NOT checked"),
        "the summary says what is not known: {}",
        run.stderr
    );
    let incident = run.incident(dir.path());
    support::assert_verifies(&incident);
    assert_no_repeated_acknowledged_cancel(&server.request_log(), Some(&incident));
    let report = read_json(&incident.join("report.json"));
    let cancel = step(&report, "cancel-orders");
    assert_eq!(cancel["status"], "failed", "{cancel}");
    assert_eq!(cancel["outputs"]["cancelled"], 5, "{cancel}");
    assert_eq!(cancel["outputs"]["unchecked"], serde_json::json!(["spot"]));
    // The run went on to the evidence and the key deletion: the real stop.
    assert_eq!(step(&report, "transfers")["status"], "ok");
    assert_eq!(step(&report, "delete-key")["status"], "pending");
    let summary = server.state_summary();
    assert_eq!(
        summary.total_open(),
        3,
        "spot's three orders are still open"
    );
    record("fault_malformed_json", None, run.code, took);
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_malformed_json_withdrawal_history() {
    let server = start_sim(
        &calm_scenario(),
        &["malformed=/sapi/v1/capital/withdraw/history"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url().to_string();
    let env = leaked_env(&server);
    let (run, took) = run_while(dir.path(), &live_args(&url, &[]), &env, async {}).await;
    run.expect_code(1);
    run.expect_stderr("transfers: failed — withdrawal history NOT fully read");
    let incident = run.incident(dir.path());
    support::assert_verifies(&incident);
    assert_no_repeated_acknowledged_cancel(&server.request_log(), Some(&incident));
    assert_eq!(server.state_summary().total_open(), 0);
    let report = read_json(&incident.join("report.json"));
    assert_eq!(step(&report, "transfers")["status"], "failed");
    assert_eq!(step(&report, "cancel-orders")["status"], "ok");
    record(
        "fault_malformed_json_withdrawal_history",
        None,
        run.code,
        took,
    );
}

// ---- connection resets -------------------------------------------------------------

/// A TCP proxy in front of the simulator that resets (RST) every `every`-th request:
/// alternately before passing it on (nothing reached the exchange) and after the
/// exchange answered (the request took effect; the answer is lost).
async fn resetting_proxy(
    upstream: std::net::SocketAddr,
    every: usize,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let resets = Arc::new(AtomicUsize::new(0));
    let counted = resets.clone();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let requests = requests.clone();
            let resets = resets.clone();
            tokio::spawn(async move {
                if let Ok(upstream) = TcpStream::connect(upstream).await {
                    relay(client, upstream, every, requests, resets).await;
                }
            });
        }
    });
    (url, counted)
}

async fn relay(
    mut client: TcpStream,
    mut upstream: TcpStream,
    every: usize,
    requests: Arc<AtomicUsize>,
    resets: Arc<AtomicUsize>,
) {
    let reset = |client: TcpStream| {
        let _ = client.set_zero_linger();
        drop(client);
    };
    let mut from_client = vec![0u8; 64 * 1024];
    let mut from_upstream = vec![0u8; 64 * 1024];
    let swallow = AtomicBool::new(false);
    loop {
        tokio::select! {
            read = client.read(&mut from_client) => {
                let n = match read { Ok(0) | Err(_) => return, Ok(n) => n };
                // One read is one request: respond's requests are small and have no body.
                let k = requests.fetch_add(1, Ordering::SeqCst);
                if k % every == every - 1 {
                    resets.fetch_add(1, Ordering::SeqCst);
                    if (k / every).is_multiple_of(2) {
                        reset(client);
                        return;
                    }
                    swallow.store(true, Ordering::SeqCst);
                }
                if upstream.write_all(&from_client[..n]).await.is_err() {
                    return;
                }
            }
            read = upstream.read(&mut from_upstream) => {
                let n = match read { Ok(0) | Err(_) => return, Ok(n) => n };
                if swallow.load(Ordering::SeqCst) {
                    reset(client);
                    return;
                }
                if client.write_all(&from_upstream[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_connection_reset() {
    let server = start_sim(&calm_scenario(), &[]).await;
    let (url, resets) = resetting_proxy(server.addr(), 4).await;
    let dir = tempfile::tempdir().unwrap();
    let env = leaked_env(&server);
    let (run, took) = run_while(dir.path(), &live_args(&url, &[]), &env, async {}).await;
    let resets = resets.load(Ordering::SeqCst);
    assert!(resets >= 10, "connections were reset: {resets}");
    assert_contained(&run, dir.path(), &server);
    record(
        "fault_connection_reset",
        Some(resets.to_string()),
        run.code,
        took,
    );
}

// ---- the key deleted halfway through ---------------------------------------------------

/// Run with the leaked key deleted in the simulator (as if in the web UI) as soon as the
/// trade history pull has its first answer.
async fn key_deleted_mid_run(responder: bool) -> (Run, Duration, SimServer, tempfile::TempDir) {
    let server = start_sim(&calm_scenario(), &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url().to_string();
    let mut env = leaked_env(&server);
    if responder {
        let key = server.create_responder_key();
        env.push(("BINANCE_RESPONDER_API_KEY".into(), key.api_key));
        env.push(("BINANCE_RESPONDER_API_SECRET".into(), key.secret));
    }
    let leaked = server.leaked_key().api_key;
    let meddle = async {
        if wait_for(&server, Duration::from_secs(20), |l| {
            answered(l, "/api/v3/myTrades")
        })
        .await
        {
            server.delete_key(&leaked).unwrap();
        }
    };
    let (run, took) = run_while(dir.path(), &live_args(&url, &[]), &env, meddle).await;
    let incident = run.incident(dir.path());
    support::assert_verifies(&incident);
    assert_no_repeated_acknowledged_cancel(&server.request_log(), Some(&incident));
    assert_eq!(server.state_summary().total_open(), 0, "contained before");
    assert!(
        server.state_summary().keys.iter().any(|k| k.deleted),
        "the key was deleted mid-run"
    );
    assert!(
        run.stderr
            .contains("Binance now rejects the leaked key (code -20")
            && run
                .stderr
                .contains("it was deleted or restricted during the run"),
        "the operator is told once what happened: {}",
        run.stderr
    );
    (run, took, server, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_key_deleted_mid_run() {
    let (run, took, _server, dir) = key_deleted_mid_run(false).await;
    // Never "ok": what could not be read fails its step (exit 1), or is listed as failed
    // pulls and the run ends on the manual steps left to a person (exit 5).
    assert!(
        matches!(run.code, 1 | 5),
        "code {}\n{}",
        run.code,
        run.stderr
    );
    run.expect_stderr("There is no responder key");
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    assert_eq!(step(&report, "cancel-orders")["status"], "ok");
    // The transfers are read beside the trade pull: done before the deletion, or cut
    // off by it and failed.
    assert!(
        step(&report, "transfers")["status"] == "ok"
            || run.stderr.contains(
                "transfers: failed — no withdrawal, deposit or transfer history could be read"
            ),
        "{}",
        run.stderr
    );
    // The trade pull lost the key: its failed pulls are listed (or it failed).
    assert!(
        run.stderr.contains("pull(s) failed") || step(&report, "trades")["status"] == "failed",
        "{}",
        run.stderr
    );
    // Nothing reads after the deletion without a responder key: the deep scan.
    assert!(
        matches!(
            step(&report, "deep-scan")["status"].as_str(),
            Some("failed" | "skipped")
        ),
        "{}",
        run.stderr
    );
    assert_eq!(report["outcome"], "completed");
    record("fault_key_deleted_mid_run", None, run.code, took);
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_key_deleted_mid_run_with_responder_key() {
    let (run, took, _server, dir) = key_deleted_mid_run(true).await;
    assert_eq!(run.code, 5, "only manual steps pending\n{}", run.stderr);
    run.expect_stderr("Reads from here on use the responder key");
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    assert_eq!(step(&report, "transfers")["status"], "ok");
    let findings = crate::support::finding_titles(&report);
    assert!(
        findings.iter().any(|f| f.contains("TXunknown")),
        "the theft is still found, read with the responder key: {findings:?}"
    );
    record(
        "fault_key_deleted_mid_run_with_responder_key",
        None,
        run.code,
        took,
    );
}

// ---- Ctrl-C in the middle of the cancels, then resume ----------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn fault_interrupted_mid_cancel_then_resumed() {
    // Every answer takes 200 ms, so the cancel-alls are in flight for a while.
    let (server, dir, url, env) = calm_exchange(&["latency=200"]).await;
    let started = Instant::now();
    let mut child = spawn_live(dir.path(), &url, &[], &env);
    // Ctrl-C as soon as the exchange acknowledged the first cancel-all.
    let acked = wait_for(&server, Duration::from_secs(20), |l| {
        l.iter()
            .any(|e| e.actor == Actor::Client && e.method == "DELETE" && e.status == 200)
    })
    .await;
    assert!(acked, "the run reached the cancels");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().await.unwrap();
    let stderr = support::stderr_of(&mut child).await;
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("cancel-orders: interrupted"),
        "interrupted in the middle of the cancels: {stderr}"
    );
    let incident = crate::support::first_incident(dir.path());
    support::assert_verifies(&incident);

    // Resume at full speed: the step is previewed again and only what is still open
    // is cancelled; nothing acknowledged before is sent again. No target flag: the
    // incident goes on against the simulator its journal names.
    set(&server, &["latency=0"]);
    let resume = respond(
        dir.path(),
        &[
            "resume",
            "--yes",
            "--weight-window",
            "2s",
            incident.to_str().unwrap(),
        ],
        &env_refs(&env),
    )
    .await;
    let took = started.elapsed();
    resume.expect_code(5);
    resume.expect_stderr("started in an earlier session and did not finish");
    let report = assert_completed(&incident, &server);
    assert_eq!(step(&report, "cancel-orders")["status"], "ok");
    record(
        "fault_interrupted_mid_cancel_then_resumed",
        None,
        format!("130, then {}", resume.code),
        took,
    );
}

// ---- a second respond on the same incident while the first runs ------------------------

#[tokio::test(flavor = "multi_thread")]
async fn fault_second_writer_during_a_run() {
    // Every answer takes 400 ms, so the first run is still going while the others try,
    // however busy the machine is.
    let (_server, dir, url, env) = calm_exchange(&["latency=400"]).await;
    let started = Instant::now();
    let mut child = spawn_live(dir.path(), &url, &[], &env);
    let pid = child.id().unwrap();
    // The first run holds its incident once the folder exists.
    let deadline = Instant::now() + Duration::from_secs(20);
    let incident = loop {
        let found = std::fs::read_dir(dir.path().join("incidents"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("lock.json").is_file());
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "the run never took its lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let holder =
        format!("is being handled right now by another respond process: PID {pid} on host");

    // A resume of the same folder refuses before reading, repairing or sending anything.
    let second = respond(
        dir.path(),
        &["resume", "--yes", incident.to_str().unwrap()],
        &env_refs(&env),
    )
    .await;
    second.expect_code(4);
    assert!(second.stderr.contains(&holder), "{}", second.stderr);
    second.expect_stderr("nothing was done here");

    // `respond compromised` of the same key does not offer to resume a running incident,
    // and starts nothing unless a separate incident is asked for.
    let third = respond(dir.path(), &live_args(&url, &[]), &env_refs(&env)).await;
    third.expect_code(4);
    assert!(third.stderr.contains(&holder), "{}", third.stderr);
    third.expect_stderr("--new-incident");

    // Asked for explicitly, a separate incident of the same key gets its own folder.
    let separate = respond(
        dir.path(),
        &live_args(&url, &["--new-incident"]),
        &env_refs(&env),
    )
    .await;
    separate.expect_code(5);
    assert_ne!(separate.incident(dir.path()), incident);

    // Read-only commands keep working while the run holds the lock.
    let plan = respond(dir.path(), &["plan", "compromised"], &[]).await;
    plan.expect_code(0);
    let history = respond(dir.path(), &["drill-history"], &[]).await;
    assert!(
        !history.stderr.contains("being handled"),
        "{}",
        history.stderr
    );
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_respond"))
        .args(["report", "verify"])
        .arg(&incident)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stdout).into_owned()
        + &String::from_utf8_lossy(&verify.stderr);
    assert!(!said.contains("being handled"), "{said}");
    assert!(!said.contains("altered"), "{said}");

    let status = child.wait().await.unwrap();
    let took = started.elapsed();
    let stderr = support::stderr_of(&mut child).await;
    assert_eq!(status.code(), Some(5), "the first run completes: {stderr}");
    support::assert_verifies(&incident);
    let journal = std::fs::read_to_string(incident.join("journal.jsonl")).unwrap();
    assert!(
        !journal.contains("run_resumed"),
        "the second writer appended nothing"
    );
    assert!(!incident.join("lock.json").exists(), "released at the end");
    let incidents = std::fs::read_dir(dir.path().join("incidents"))
        .unwrap()
        .count();
    assert_eq!(incidents, 2, "the refused runs created no folder");
    record(
        "fault_second_writer_during_a_run",
        None,
        format!("4, 4; first {}", status.code().unwrap_or(-1)),
        took,
    );
}
