//! `/fapi` and `/dapi` share one request-weight pool (since 2026-06-30): a run at a low
//! shared limit, where a client budgeting each family as its own would overspend, is
//! paced under it and never refused.
use crate::bench_smoke::containment::peak;
use crate::support;

use std::time::Duration;

use respond::sim::{Actor, Scenario, SimConfig, SimServer};
use support::{env_refs, leaked_env, live_args, read_json, respond};

/// Low enough that one listing of both books on both futures markets, sent at once
/// (USDⓈ-M 40 + 40, COIN-M 40 + 40), does not fit one window, while each family's half
/// does: two separate budgets of this size send all four together and draw a 429
/// before any `X-MBX-USED-WEIGHT-1M` could warn them.
const LIMIT: u32 = 120;
const WINDOW: Duration = Duration::from_secs(2);

async fn start_sim() -> SimServer {
    let text = respond::sim::BUILTIN_LEAKED_KEY;
    let cut = text
        .find("\nattacker:")
        .expect("the scenario has an attacker");
    // Without the listed spot symbols: this is about the futures pool, and a deep scan of
    // them at this limit would take a minute.
    let text = text[..cut + 1].replace("listed_spot_symbols: 150\n", "");
    let mut config = SimConfig::new(Scenario::parse(&text, "pool.yaml").unwrap());
    config.weight_window = WINDOW;
    config
        .faults
        .apply(&format!("weight-limit={LIMIT}"))
        .unwrap();
    SimServer::start(config).await.expect("start the simulator")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_low_shared_futures_limit_is_never_exceeded() {
    let server = start_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let env = leaked_env(&server);
    let limit = LIMIT.to_string();
    let run = respond(
        dir.path(),
        &live_args(server.url(), &["--weight-limit", &limit]),
        &env_refs(&env),
    )
    .await;
    assert_eq!(run.code, 5, "manual steps pending: {}", run.stderr);
    assert_eq!(
        server.state_summary().total_open(),
        0,
        "everything cancelled"
    );
    let report = read_json(&run.incident(dir.path()).join("report.json"));
    assert_eq!(report["outcome"], "completed", "{}", run.stderr);

    let log: Vec<_> = server
        .request_log()
        .into_iter()
        .filter(|e| e.actor == Actor::Client)
        .collect();
    let refused: Vec<_> = log
        .iter()
        .filter(|e| e.status == 429 || e.status == 418)
        .collect();
    assert!(refused.is_empty(), "never refused: {refused:?}");
    let mut futures: Vec<(i64, u64)> = log
        .iter()
        .filter(|e| e.path.starts_with("/fapi/") || e.path.starts_with("/dapi/"))
        .map(|e| {
            let t = chrono::DateTime::parse_from_rfc3339(&e.time).unwrap();
            (t.timestamp_millis(), u64::from(e.weight))
        })
        .collect();
    futures.sort();
    let total: u64 = futures.iter().map(|(_, w)| w).sum();
    let weight_of = |prefix: &str| -> u64 {
        log.iter()
            .filter(|e| e.path.starts_with(prefix))
            .map(|e| u64::from(e.weight))
            .sum()
    };
    // The run needed more than the pool holds, each family more than half of it:
    // budgeted apart, both could have spent up to the limit in the same window.
    assert!(total > u64::from(LIMIT), "futures weight {total}");
    assert!(weight_of("/fapi/") > u64::from(LIMIT) / 2);
    assert!(weight_of("/dapi/") > u64::from(LIMIT) / 2);
    let peak = peak(&futures, WINDOW);
    assert!(
        peak <= u64::from(LIMIT),
        "/fapi + /dapi peaked at {peak} in a window, over the shared {LIMIT}"
    );
}
