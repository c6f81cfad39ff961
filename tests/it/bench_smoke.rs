//! The containment benchmark's machinery (`benches/containment.rs`) on a small scenario,
//! in seconds: it runs, reads the simulator's logs, and measures what it says it does.
//! The benchmark itself is `cargo bench --bench containment`; nothing here is timed.
use std::path::Path;
use std::time::Duration;

#[allow(dead_code)]
#[path = "../../benches/containment.rs"]
pub(crate) mod containment;

use containment::{analyse, bench_playbook, containment_playbook, Account, Meter, Options};

fn line(time: &str, method: &str, path: &str, status: u16, weight: u32) -> String {
    format!(
        r#"{{"time":"{time}","actor":"client","method":"{method}","path":"{path}","query":"","status":{status},"code":null,"weight":{weight}}}"#
    )
}

#[test]
fn the_log_analysis_measures_what_it_says() {
    let log = [
        line("2026-11-24T00:00:00.050Z", "GET", "/api/v3/time", 200, 1),
        line("2026-11-24T00:00:00.101Z", "GET", "/sapi/v1/account/apiRestrictions", 200, 1),
        line("2026-11-24T00:00:00.102Z", "GET", "/api/v3/account", 200, 20),
        line("2026-11-24T00:00:00.160Z", "GET", "/api/v3/openOrders", 200, 80),
        line("2026-11-24T00:00:00.215Z", "DELETE", "/api/v3/openOrders", 200, 0),
        line("2026-11-24T00:00:00.216Z", "DELETE", "/fapi/v1/allOpenOrders", 200, 1),
        // The attacker's requests do not count.
        r#"{"time":"2026-11-24T00:00:00.300Z","actor":"attacker","method":"POST","path":"/api/v3/order","query":"","status":200,"code":null,"weight":1}"#.to_string(),
        line("2026-11-24T00:00:00.280Z", "GET", "/api/v3/openOrders", 429, 0),
        line("2026-11-24T00:00:00.290Z", "GET", "/sapi/v1/capital/withdraw/history", 200, 18000),
        line("2026-11-24T00:01:10.000Z", "GET", "/api/v3/openOrders", 418, 80),
    ]
    .join("\n");
    let s = analyse(&log, Duration::from_millis(50), Duration::from_secs(60));
    assert_eq!(s.requests, 9);
    assert_eq!(s.cancels, 2);
    // From the first request's arrival (its answer minus the latency) to the last cancel.
    assert_eq!(s.containment, Duration::from_millis(216));
    assert_eq!(s.total, Duration::from_millis(70_000));
    // time -> triage -> list -> cancel.
    assert_eq!(s.containment_round_trips, 4);
    assert_eq!((s.too_many, s.banned), (1, 1));
    // 1 + 20 + 80 + 0 + 0 in the first minute; the 18,000 is UID weight.
    assert_eq!(s.peak_weight[0], 101);
    assert_eq!(s.peak_weight[1], 1);
    assert_eq!(s.peak_uid_weight, 18_000);
}

#[test]
fn the_bench_playbook_only_shortens_the_waits() {
    let text = bench_playbook("100ms");
    assert!(text.contains("      settle: 100ms\n"));
    assert!(text.contains("      interval: 100ms\n"));
    assert!(!text.contains("interval: 2s"));
    let registry = respond::actions::builtin();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.yaml");
    std::fs::write(&path, &text).unwrap();
    let playbook = respond::playbook::Playbook::load_file(&path, &registry).unwrap();
    assert_eq!(playbook.steps.len(), 17);
}

#[test]
fn the_benchmark_runs_on_a_small_account() {
    let options = Options::smoke();
    let report = containment::run(
        &options,
        Path::new(env!("CARGO_BIN_EXE_respond")),
        &Meter::Children,
    );
    let text = report.render();
    for run in &report.runs {
        assert_eq!(run.exit, 0, "{}: {text}", run.name);
        assert!(run.stats.requests > 20, "{text}");
        assert!(run.stats.cancels > 0, "{text}");
        assert!(run.stats.containment > Duration::ZERO, "{text}");
        assert_eq!((run.stats.too_many, run.stats.banned), (0, 0), "{text}");
        assert!(run.max_rss_kb > 0, "{text}");
    }
    let serial = &report.runs[1];
    assert!(
        serial.stats.containment_round_trips > report.runs[0].stats.containment_round_trips,
        "{text}"
    );
    let lowered = &report.runs[2];
    let peak = lowered.stats.peak_weight.iter().max().unwrap();
    assert!(*peak <= u64::from(options.lowered_limit), "{text}");
    // The wide account's run: more symbols, so more cancels (one per symbol and book).
    let wide = &report.wide;
    assert_eq!(wide.exit, 0, "{text}");
    assert!(wide.stats.cancels > report.runs[0].stats.cancels, "{text}");
    assert_eq!((wide.stats.too_many, wide.stats.banned), (0, 0), "{text}");
    assert!(
        text.contains(&format!(
            "containment at {} symbols / at {} symbols",
            options.wide.symbols(),
            options.size.symbols()
        )),
        "{text}"
    );
    // Containment again on each account, containment only: every run counted, and the
    // median is one of the samples.
    assert_eq!(report.repeat_exits, vec![0; 3], "{text}");
    for (account, samples) in [Account::Benchmark, Account::Wide, Account::Tiny]
        .into_iter()
        .zip(&report.containment)
    {
        assert_eq!(samples.len(), 1 + options.containment_repeats, "{text}");
        assert!(samples.iter().all(|d| *d > Duration::ZERO), "{text}");
        assert!(samples.contains(&report.containment_of(account)), "{text}");
    }
    assert!(
        text.contains("containment-only runs (interleaved)"),
        "{text}"
    );
    assert!(text.contains("targets:"), "{text}");
}

#[test]
fn the_containment_playbook_is_triage_and_the_cancel() {
    let text = containment_playbook("100ms");
    assert!(text.contains("      settle: 100ms\n"));
    let registry = respond::actions::builtin();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("containment.yaml");
    std::fs::write(&path, &text).unwrap();
    let playbook = respond::playbook::Playbook::load_file(&path, &registry).unwrap();
    let ids: Vec<&str> = playbook.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["triage", "cancel-orders"]);
}
