//! The containment benchmark: how fast `respond compromised` stops a leaked key's orders
//! on a big account, against the simulator with a 50 ms round trip per request.
//!
//! `cargo bench --bench containment` generates a large scenario (40 spot, 6 margin,
//! 10 USDⓈ-M and 5 COIN-M symbols with 305 open orders, 7 days of trades, 60 transfers),
//! runs the drill autopilot on it several ways — as shipped, serial (`--concurrency 1`,
//! the same code), with the weight limit lowered to 1,200/min, and with the built-in
//! playbook's waits unshortened — and prints, from the simulator's request log of each
//! run: time to containment, total time, requests, peak weight per minute, 429/418
//! answers; the ratios to the serial run; the floor; peak memory; and startup times.
//! Every figure that is judged is a ratio to something measured in the same run, or a
//! count. It exits 1 when a target is missed.
//!
//! A last run takes a wide account (200 symbols over the four markets, 1,200 open
//! orders: [`Size::wide`]) as shipped, to show that containment does not grow with the
//! number of symbols: its cancels (one per symbol and book) still go out in one round
//! trip; a 5-symbol account of the same make ([`tiny`]) is what it is compared with.
//! Then the deep scan on an account listing 2,000 spot symbols, in a 6 s weight window
//! (Binance's limits per window: a shorter one makes the run shorter, not cheaper).
//! Last, containment alone (the playbook cut after its cancel step) six more times on
//! each of the benchmark, wide and 5-symbol accounts, interleaved: a single run moves by
//! several milliseconds on a 2-core machine, so containment is judged on each account's
//! median of seven.
//!
//! Each run's total is set against its weight floor: for each pool (`/api`, `/sapi`,
//! futures = `/fapi` + `/dapi`, the `/sapi` UID limit), the weight the run spent over the
//! pool's limit per window, the largest; the deep scan's own span against the floor of
//! the weight spent inside it. Runs bound by weight (a floor over one window) are judged.
//!
//! Options (after `--`): `--smoke` (a small scenario, 5 ms latency, a 1 s weight window:
//! checks the machinery in seconds), `--keep DIR` (keep the scenario, playbook, request
//! logs and incident folders there), `--latency MS`.
//!
//! The runs use a copy of the built-in playbook with two waits shortened — the
//! cancel step's `settle` re-list (1 s → 100 ms) and `verify-revoked`'s pause between
//! probes (2 s → 100 ms) — so that the shipped/serial ratio compares request work, not
//! fixed sleeps that are the same in both; the last run keeps them, to show what they
//! cost. Neither is on the way to containment.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::DateTime;
use respond::sim::scenario::generate::{generate, Size};
use respond::sim::{Actor, LogEntry};

/// The built-in playbook, as compiled into respond.
const BUILTIN_PLAYBOOK: &str = include_str!("../playbooks/compromised.yaml");

/// Dependent round trips to containment, whatever the concurrency: the open-order
/// listing (which needs nothing earlier, so it goes out with the clock check and
/// triage's reads), then the cancels. Nothing else depends on anything.
const FLOOR_ROUND_TRIPS: u32 = 2;

/// `/sapi` endpoints counted against the account's UID limit, not the IP's.
const UID_PATHS: [&str; 2] = [
    "/sapi/v1/capital/withdraw/history",
    "/sapi/v1/pay/transactions",
];

/// The accounts containment is measured on, in [`Report::containment`]'s order.
#[derive(Clone, Copy, Debug)]
pub enum Account {
    /// The benchmark's own account (`Options::size`).
    Benchmark = 0,
    /// The 200-symbol account.
    Wide = 1,
    /// The 5-symbol account.
    Tiny = 2,
}

/// Exit codes, counted: `6 x 0`, or `5 x 0, 1 x 3`.
fn summarise_exits(exits: &[i32]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for e in exits {
        *counts.entry(*e).or_insert(0) += 1;
    }
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(e, n)| format!("{n} x {e}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a benchmark is set up.
#[derive(Clone, Debug)]
pub struct Options {
    pub size: Size,
    /// The wide account of the last run, and its `--since` (its trades span a day).
    pub wide: Size,
    /// A 5-symbol account, as shipped: what containment at 200 symbols is compared with.
    pub tiny: Size,
    /// The deep scan's account: this account plus `deep_listed` more listed spot symbols.
    pub deep: Size,
    pub deep_listed: usize,
    /// The deep scan's run uses this window (Binance's limits per window, so a shorter
    /// one makes the run shorter; the ratio to the floor is what is judged).
    pub deep_window: Duration,
    pub latency_ms: u64,
    /// The rate-limit window of the simulator and the client (Binance: one minute).
    pub weight_window: Duration,
    /// The lowered limit of the third run, per window and pool: `/fapi` and `/dapi` share
    /// one, as on Binance since 2026-06-30 (the simulator and the client both pool them).
    pub lowered_limit: u32,
    /// Also run the built-in playbook unshortened.
    pub builtin_run: bool,
    /// Startup timing samples per command (0: skip).
    pub startup_samples: usize,
    /// Containment-only runs per account (benchmark, wide, 5-symbol), interleaved, after
    /// the full runs: containment is judged on the median of these and the full run.
    pub containment_repeats: usize,
    pub keep: Option<PathBuf>,
    /// Judge the targets (they are set for the full scenario, not the smoke one).
    pub judged: bool,
}

impl Options {
    pub fn full() -> Options {
        Options {
            size: Size::large(),
            wide: Size::wide(),
            tiny: tiny(),
            deep: tiny(),
            deep_listed: 1_998,
            deep_window: Duration::from_secs(6),
            latency_ms: 50,
            weight_window: Duration::from_secs(60),
            lowered_limit: 1_200,
            builtin_run: true,
            startup_samples: 20,
            containment_repeats: 6,
            keep: None,
            judged: true,
        }
    }

    /// Seconds instead of minutes: a small account, 5 ms latency, and a 1 s window with
    /// a limit the small account's run still has to be paced under.
    pub fn smoke() -> Options {
        Options {
            size: Size::small(),
            wide: Size {
                spot_symbols: 8,
                margin_symbols: 2,
                usdm_symbols: 4,
                coinm_symbols: 2,
                ..Size::small()
            },
            tiny: tiny(),
            deep: tiny(),
            deep_listed: 98,
            deep_window: Duration::from_secs(1),
            latency_ms: 5,
            weight_window: Duration::from_secs(1),
            lowered_limit: 200,
            builtin_run: false,
            startup_samples: 3,
            containment_repeats: 1,
            keep: None,
            judged: false,
        }
    }
}

/// The 5-symbol account (2 spot, 1 margin, 1 USDⓈ-M, 1 COIN-M), otherwise the wide
/// account's make: containment on it is what containment at 200 symbols is compared
/// with.
pub fn tiny() -> Size {
    Size {
        spot_symbols: 2,
        margin_symbols: 1,
        usdm_symbols: 1,
        coinm_symbols: 1,
        ..Size::wide()
    }
}

/// Binance's IP weight limit per window of each pool (api, sapi, futures), and the
/// `/sapi` UID limit, at `lowered` if given (the UID limit lowered in proportion, as the
/// client does).
pub fn limits(lowered: Option<u32>) -> ([u64; 3], u64) {
    match lowered {
        None => ([6_000, 12_000, 2_400], 180_000),
        Some(l) => {
            let l = u64::from(l);
            ([l, l, l], 180_000 * l / 12_000)
        }
    }
}

/// The weight floor of `weight` (per pool) and `uid` (the UID pool): for each pool, the
/// weight needed over the pool's limit per window; the largest wins.
pub fn weight_floor(
    weight: [u64; 3],
    uid: u64,
    lowered: Option<u32>,
    window: Duration,
) -> Duration {
    let (ip, uid_limit) = limits(lowered);
    let windows = (0..3)
        .map(|i| weight[i] as f64 / ip[i] as f64)
        .chain(std::iter::once(uid as f64 / uid_limit as f64))
        .fold(0.0, f64::max);
    window.mul_f64(windows)
}

/// How peak memory of a run is measured.
#[derive(Clone, Debug)]
pub enum Meter {
    /// Through this program started again as a go-between (`__measure`), whose only
    /// child is the run: `getrusage(RUSAGE_CHILDREN)` there is that run's alone.
    GoBetween(PathBuf),
    /// `getrusage(RUSAGE_CHILDREN)` of this process: the largest child so far.
    Children,
}

/// One run of respond, as the simulator logged it.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub name: String,
    pub exit: i32,
    pub wall: Duration,
    pub max_rss_kb: u64,
    pub stats: LogStats,
    pub dir: PathBuf,
    /// The run's `--weight-limit`, if lowered, and its weight window.
    pub lowered: Option<u32>,
    pub window: Duration,
}

impl RunResult {
    /// The run's weight floor: what its weight needs at its limits.
    pub fn floor(&self) -> Duration {
        weight_floor(
            self.stats.weight,
            self.stats.uid_weight,
            self.lowered,
            self.window,
        )
    }

    /// Total time over the weight floor.
    pub fn floor_ratio(&self) -> f64 {
        self.stats.total.as_secs_f64() / self.floor().as_secs_f64().max(1e-9)
    }

    /// Bound by weight, not by round trips: some pool needs more than one window's
    /// limit, so no run can take less than a window whatever its concurrency.
    pub fn weight_bound(&self) -> bool {
        self.floor() > self.window
    }
}

/// The deep scan of a run, measured from its journal (when the step started and ended)
/// and the simulator's log (what was spent meanwhile).
#[derive(Clone, Debug, Default)]
pub struct DeepScan {
    pub symbols: usize,
    pub span: Duration,
    pub floor: Duration,
    pub weight: [u64; 3],
    pub requests: usize,
}

impl DeepScan {
    pub fn ratio(&self) -> f64 {
        self.span.as_secs_f64() / self.floor.as_secs_f64().max(1e-9)
    }
}

/// The `deep-scan` step of the run in `dir`: its span in the journal, and the weight the
/// simulator logged inside that span.
pub fn deep_scan_of(run: &RunResult, symbols: usize) -> DeepScan {
    let incidents = run.dir.join("incidents");
    let journal = std::fs::read_dir(&incidents)
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.path().join("journal.jsonl"))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let (mut from, mut to) = (None, None);
    for line in journal.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("journal line");
        if v["step"] != "deep-scan" {
            continue;
        }
        match v["event"].as_str() {
            Some("step_started") => from = v["time"].as_str().map(millis),
            Some("step_finished") => to = v["time"].as_str().map(millis),
            _ => {}
        }
    }
    let (Some(from), Some(to)) = (from, to) else {
        return DeepScan::default();
    };
    let log = std::fs::read_to_string(run.dir.join("requests.jsonl")).unwrap_or_default();
    let mut scan = DeepScan {
        symbols,
        span: Duration::from_millis((to - from).max(0) as u64),
        ..DeepScan::default()
    };
    let mut uid = 0;
    for e in log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<LogEntry>(l).expect("request log line"))
        .filter(|e| e.actor == Actor::Client)
    {
        let t = millis(&e.time);
        if t < from || t > to {
            continue;
        }
        scan.requests += 1;
        if UID_PATHS.contains(&e.path.as_str()) {
            uid += u64::from(e.weight);
        } else {
            scan.weight[pool(&e.path)] += u64::from(e.weight);
        }
    }
    scan.floor = weight_floor(scan.weight, uid, run.lowered, run.window);
    scan
}

/// What a request log says about one run (client requests only).
#[derive(Clone, Debug, Default)]
pub struct LogStats {
    pub requests: usize,
    /// First request (its answer minus the latency) to the last cancel's answer.
    pub containment: Duration,
    /// First request to the last answer.
    pub total: Duration,
    /// Dependent round trips up to the last cancel, as the log shows them: a request
    /// depends on every answer sent before it reached the simulator.
    pub containment_round_trips: u32,
    /// First request to the last answer of the first round trip (triage's reads and the
    /// listing): when the cancel's preview could be shown.
    pub preview: Duration,
    /// Peak IP weight in any window, per pool: api, sapi, and futures (`/fapi` and
    /// `/dapi` together: one pool since the COIN-M/USDⓈ-M integration of 2026-06-30).
    pub peak_weight: [u64; 3],
    /// Peak `/sapi` UID weight in any window.
    pub peak_uid_weight: u64,
    pub too_many: usize,
    pub banned: usize,
    pub cancels: usize,
    /// IP weight the run spent, per pool (api, sapi, futures), and `/sapi` UID weight.
    pub weight: [u64; 3],
    pub uid_weight: u64,
}

/// The weight pool a path counts against: 0 spot, 1 `/sapi`, 2 futures (`/fapi` and
/// `/dapi` share one).
fn pool(path: &str) -> usize {
    if path.starts_with("/sapi/") {
        1
    } else if path.starts_with("/fapi/") || path.starts_with("/dapi/") {
        2
    } else {
        0
    }
}

fn millis(time: &str) -> i64 {
    DateTime::parse_from_rfc3339(time)
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|e| panic!("request log time {time:?}: {e}"))
}

/// Peak of `weights` summed over any span shorter than `window`; `points` sorted.
pub fn peak(points: &[(i64, u64)], window: Duration) -> u64 {
    let window = window.as_millis() as i64;
    let (mut sum, mut best, mut first) = (0u64, 0u64, 0usize);
    for &(t, w) in points {
        sum += w;
        while points[first].0 <= t - window {
            sum -= points[first].1;
            first += 1;
        }
        best = best.max(sum);
    }
    best
}

/// Read a simulator request log (JSON lines) and measure it.
pub fn analyse(log: &str, latency: Duration, window: Duration) -> LogStats {
    let mut entries: Vec<(i64, LogEntry)> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<LogEntry>(l).expect("request log line"))
        .filter(|e| e.actor == Actor::Client)
        .map(|e| (millis(&e.time), e))
        .collect();
    entries.sort_by_key(|(t, _)| *t);
    let mut stats = LogStats {
        requests: entries.len(),
        ..LogStats::default()
    };
    let Some(&(first, _)) = entries.first() else {
        return stats;
    };
    let latency_ms = latency.as_millis() as i64;
    let start = first - latency_ms;
    let last = entries.last().map(|(t, _)| *t).unwrap_or(first);
    stats.total = Duration::from_millis((last - start).max(0) as u64);

    // Round-trip depth: 1 + the deepest answer sent before this request arrived.
    let mut depth = vec![0u32; entries.len()];
    let mut deepest_before = vec![0u32; entries.len() + 1];
    for i in 0..entries.len() {
        let arrived = entries[i].0 - latency_ms;
        let answered_before = entries.partition_point(|(t, _)| *t <= arrived).min(i);
        depth[i] = 1 + deepest_before[answered_before];
        deepest_before[i + 1] = deepest_before[i].max(depth[i]);
    }
    let first_cancel = entries.iter().position(|(_, e)| e.method == "DELETE");
    if let Some(first_cancel) = first_cancel {
        let ready = entries[..first_cancel]
            .iter()
            .zip(&depth)
            .filter(|(_, d)| **d == 1)
            .map(|((t, _), _)| *t)
            .max()
            .unwrap_or(first);
        stats.preview = Duration::from_millis((ready - start).max(0) as u64);
    }
    let mut by_pool: [Vec<(i64, u64)>; 3] = Default::default();
    let mut uid = Vec::new();
    for (i, (t, e)) in entries.iter().enumerate() {
        if e.method == "DELETE" {
            stats.cancels += 1;
            stats.containment = Duration::from_millis((t - start).max(0) as u64);
            stats.containment_round_trips = depth[i];
        }
        match e.status {
            429 => stats.too_many += 1,
            418 => stats.banned += 1,
            _ => {}
        }
        if UID_PATHS.contains(&e.path.as_str()) {
            uid.push((*t, u64::from(e.weight)));
            stats.uid_weight += u64::from(e.weight);
        } else {
            by_pool[pool(&e.path)].push((*t, u64::from(e.weight)));
            stats.weight[pool(&e.path)] += u64::from(e.weight);
        }
    }
    for (f, points) in by_pool.iter().enumerate() {
        stats.peak_weight[f] = peak(points, window);
    }
    stats.peak_uid_weight = peak(&uid, window);
    stats
}

/// The built-in playbook with `settle` and the probe interval shortened. Panics if the
/// built-in playbook no longer has the lines this edits: the benchmark must then be
/// updated rather than measure something else silently.
pub fn bench_playbook(wait: &str) -> String {
    let markets = "      markets: [spot, margin, usdm, coinm]\n";
    let interval = "      interval: 1s\n";
    assert_eq!(
        BUILTIN_PLAYBOOK.matches(markets).count(),
        1,
        "cancel-orders markets line"
    );
    assert_eq!(
        BUILTIN_PLAYBOOK.matches(interval).count(),
        1,
        "verify-revoked interval line"
    );
    BUILTIN_PLAYBOOK
        .replace(markets, &format!("{markets}      settle: {wait}\n"))
        .replace(interval, &format!("      interval: {wait}\n"))
        .replace("name: compromised\n", "name: compromised-bench\n")
}

/// [`bench_playbook`] up to and including its cancel step: triage and containment,
/// nothing after. Containment runs the same way in it (only those two steps read ahead
/// of their turn), and a run of it takes a second instead of a minute.
pub fn containment_playbook(wait: &str) -> String {
    let text = bench_playbook(wait);
    let cancel = text
        .find("\n  - id: cancel-orders\n")
        .expect("the built-in playbook's cancel step");
    let next = text[cancel + 1..]
        .find("\n  - id: ")
        .map(|i| cancel + 1 + i)
        .expect("a step after the cancel");
    format!("{}\n", &text[..next])
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Run `program args` with output to files in `dir`; returns (exit code, wall time,
/// peak RSS in KiB).
fn run_measured(
    meter: &Meter,
    program: &Path,
    args: &[String],
    dir: &Path,
) -> (i32, Duration, u64) {
    let stdout = std::fs::File::create(dir.join("stdout.txt")).expect("stdout file");
    let stderr = std::fs::File::create(dir.join("stderr.txt")).expect("stderr file");
    match meter {
        Meter::GoBetween(me) => {
            let out = Command::new(me)
                .arg("__measure")
                .arg(program)
                .args(args)
                .current_dir(dir)
                .stdin(Stdio::null())
                .stderr(stderr)
                .stdout(Stdio::piped())
                .output()
                .expect("start the measuring go-between");
            std::fs::write(dir.join("stdout.txt"), &out.stdout).expect("stdout file");
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text
                .lines()
                .rev()
                .find(|l| l.starts_with("measured "))
                .unwrap_or_else(|| panic!("no measurement from the go-between: {text}"));
            let field = |name: &str| -> u64 {
                line.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no {name} in {line:?}"))
            };
            (
                field("exit") as i32,
                Duration::from_micros(field("wall_us")),
                field("maxrss_kb"),
            )
        }
        Meter::Children => {
            let started = Instant::now();
            let status = Command::new(program)
                .args(args)
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                .status()
                .expect("start respond");
            let wall = started.elapsed();
            (status.code().unwrap_or(-1), wall, children_max_rss_kb())
        }
    }
}

fn children_max_rss_kb() -> u64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss().max(0) as u64)
        .unwrap_or(0)
}

/// The go-between: run the command given, pass its output through, and report its
/// exit code, wall time and peak RSS on a last stdout line.
fn measure_child(args: &[String]) -> i32 {
    let started = Instant::now();
    let status = Command::new(&args[0])
        .args(&args[1..])
        .status()
        .expect("start the measured command");
    let wall = started.elapsed();
    println!(
        "measured exit={} wall_us={} maxrss_kb={}",
        status.code().unwrap_or(-1),
        wall.as_micros(),
        children_max_rss_kb()
    );
    0
}

/// Everything one benchmark measured.
pub struct Report {
    pub scenario: String,
    pub runs: Vec<RunResult>,
    /// The wide account (as shipped) and its description.
    pub wide: RunResult,
    pub wide_scenario: String,
    /// The 5-symbol account, as shipped.
    pub tiny: RunResult,
    /// The deep scan's account (as shipped, in its own window), and its scan.
    pub deep: RunResult,
    pub deep_scan: DeepScan,
    pub deep_scenario: String,
    pub startup: Vec<(String, Vec<Duration>)>,
    /// Containment on the benchmark, wide and 5-symbol accounts: the full run's, then
    /// each containment-only run's.
    pub containment: [Vec<Duration>; 3],
    /// The exit codes of the containment-only runs.
    pub repeat_exits: Vec<i32>,
    pub command: String,
    pub options: Options,
}

/// Run the whole benchmark with `respond` at `bin`.
pub fn run(options: &Options, bin: &Path, meter: &Meter) -> Report {
    let temp = tempfile::Builder::new()
        .prefix("respond-bench-")
        .tempdir()
        .expect("temporary folder");
    let root = options
        .keep
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&root).expect("benchmark folder");
    let scenario_path = root.join("scenario.yaml");
    let playbook_path = root.join("compromised-bench.yaml");
    let scenario_text = generate(&options.size);
    write(&scenario_path, &scenario_text);
    write(&playbook_path, &bench_playbook("100ms"));
    let scenario = respond::sim::Scenario::parse(&scenario_text, "scenario.yaml")
        .unwrap_or_else(|d| panic!("generated scenario is invalid:\n{d}"));

    let wide_dir = root.join("wide");
    std::fs::create_dir_all(&wide_dir).expect("wide account folder");
    let wide_path = wide_dir.join("scenario.yaml");
    let wide_text = generate(&options.wide);
    write(&wide_path, &wide_text);
    let wide_scenario = respond::sim::Scenario::parse(&wide_text, "scenario.yaml")
        .unwrap_or_else(|d| panic!("generated wide scenario is invalid:\n{d}"));

    let tiny_dir = root.join("tiny");
    std::fs::create_dir_all(&tiny_dir).expect("5-symbol account folder");
    let tiny_path = tiny_dir.join("scenario.yaml");
    write(&tiny_path, &generate(&options.tiny));
    let deep_dir = root.join("deep");
    std::fs::create_dir_all(&deep_dir).expect("deep scan account folder");
    let deep_path = deep_dir.join("scenario.yaml");
    let deep_text = format!(
        "{}\nlisted_spot_symbols: {}\n",
        generate(&options.deep).trim_end(),
        options.deep_listed
    );
    write(&deep_path, &deep_text);
    let deep_scenario = respond::sim::Scenario::parse(&deep_text, "scenario.yaml")
        .unwrap_or_else(|d| panic!("generated deep scan scenario is invalid:\n{d}"));

    let window = format!("{}ms", options.weight_window.as_millis());
    let common_with = |scenario: &Path, since: &str, log: &Path, builtin: bool| -> Vec<String> {
        let mut a: Vec<String> = vec![
            "-q".into(),
            "compromised".into(),
            "--drill".into(),
            "--yes".into(),
            "--scenario".into(),
            scenario.display().to_string(),
            "--since".into(),
            since.into(),
            "--sim-fault".into(),
            format!("latency={}", options.latency_ms),
            "--sim-request-log".into(),
            log.display().to_string(),
            "--report-dir".into(),
            "incidents".into(),
        ];
        if options.weight_window != Duration::from_secs(60) {
            a.push("--weight-window".into());
            a.push(window.clone());
        }
        if !builtin {
            a.push("--playbook".into());
            a.push(playbook_path.display().to_string());
        }
        a
    };
    let common = |log: &Path, builtin: bool| common_with(&scenario_path, "7d", log, builtin);
    let lowered = options.lowered_limit.to_string();
    let mut plans: Vec<(&str, Vec<String>, bool)> = vec![
        ("shipped", vec![], false),
        (
            "serial (--concurrency 1)",
            vec!["--concurrency".into(), "1".into()],
            false,
        ),
        (
            "weight limit lowered",
            vec![
                "--weight-limit".into(),
                lowered.clone(),
                "--sim-fault".into(),
                format!("weight-limit={lowered}"),
            ],
            false,
        ),
    ];
    if options.builtin_run {
        plans.push(("built-in playbook, waits as shipped", vec![], true));
    }
    let mut runs = Vec::new();
    let mut command = String::new();
    for (i, (name, extra, builtin)) in plans.into_iter().enumerate() {
        let dir = root.join(format!("run{}", i + 1));
        std::fs::create_dir_all(&dir).expect("run folder");
        let log = dir.join("requests.jsonl");
        let mut args = common(&log, builtin);
        args.extend(extra);
        if i == 0 {
            command = format!("respond {}", args.join(" "));
        }
        let lowered = (i == 2).then_some(options.lowered_limit);
        runs.push(measured_run(options, meter, bin, name, &args, dir, lowered));
    }
    // The wide account, as shipped; its trades span one day.
    let wide = {
        let dir = wide_dir.join("run");
        std::fs::create_dir_all(&dir).expect("run folder");
        let args = common_with(&wide_path, "1d", &dir.join("requests.jsonl"), false);
        let name = format!("shipped, {} symbols", options.wide.symbols());
        measured_run(options, meter, bin, &name, &args, dir, None)
    };
    // The 5-symbol account, made like the wide one.
    let tiny = {
        let dir = tiny_dir.join("run");
        std::fs::create_dir_all(&dir).expect("run folder");
        let args = common_with(&tiny_path, "1d", &dir.join("requests.jsonl"), false);
        let name = format!("shipped, {} symbols", options.tiny.symbols());
        measured_run(options, meter, bin, &name, &args, dir, None)
    };
    // The deep scan's account, in its own (shorter) window; its trades span 20 h, so
    // each symbol is one `myTrades` call.
    let deep_symbols = options.deep.spot_symbols + options.deep_listed;
    let deep = {
        let dir = deep_dir.join("run");
        std::fs::create_dir_all(&dir).expect("run folder");
        let mut args = common_with(&deep_path, "20h", &dir.join("requests.jsonl"), false);
        if let Some(i) = args.iter().position(|a| a == "--weight-window") {
            args.drain(i..i + 2);
        }
        args.push("--weight-window".into());
        args.push(format!("{}ms", options.deep_window.as_millis()));
        let name = format!("deep scan, {deep_symbols} spot symbols");
        let mut deep_options = options.clone();
        deep_options.weight_window = options.deep_window;
        measured_run(&deep_options, meter, bin, &name, &args, dir, None)
    };
    let deep_scan = deep_scan_of(&deep, deep_symbols);

    let (containment, repeat_exits) = containment_repeats(
        options,
        meter,
        bin,
        &root,
        [
            (&scenario_path, "7d", &runs[0]),
            (&wide_path, "1d", &wide),
            (&tiny_path, "1d", &tiny),
        ],
        &|scenario: &Path, since: &str, log: &Path| common_with(scenario, since, log, false),
    );

    let mut startup = Vec::new();
    for args in [vec!["--version"], vec!["plan", "compromised"]] {
        let mut samples = Vec::new();
        for _ in 0..options.startup_samples {
            let started = Instant::now();
            let out = Command::new(bin)
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .expect("start respond");
            samples.push(started.elapsed());
            assert!(out.status.success(), "respond {} failed", args.join(" "));
        }
        samples.sort();
        startup.push((format!("respond {}", args.join(" ")), samples));
    }

    drop(temp);
    Report {
        scenario: describe(&scenario, &options.size),
        runs,
        wide,
        wide_scenario: describe(&wide_scenario, &options.wide),
        tiny,
        deep,
        deep_scan,
        deep_scenario: describe(&deep_scenario, &options.deep),
        startup,
        containment,
        repeat_exits,
        command,
        options: options.clone(),
    }
}

/// Containment again on each account (its scenario, `--since`, and full run), with the
/// playbook cut after its cancel step, `options.containment_repeats` times, interleaved
/// so that drift on the machine touches every account alike. Returns each account's
/// containment samples (the full run's first) and every repeat's exit code. `args`
/// gives a run's arguments for a scenario, `--since` and request log.
fn containment_repeats(
    options: &Options,
    meter: &Meter,
    bin: &Path,
    root: &Path,
    accounts: [(&PathBuf, &str, &RunResult); 3],
    args: &dyn Fn(&Path, &str, &Path) -> Vec<String>,
) -> ([Vec<Duration>; 3], Vec<i32>) {
    let playbook = root.join("containment.yaml");
    write(&playbook, &containment_playbook("100ms"));
    let mut containment = accounts.map(|(_, _, full)| vec![full.stats.containment]);
    let mut exits = Vec::new();
    for i in 0..options.containment_repeats {
        for (k, (scenario, since, full)) in accounts.iter().enumerate() {
            let dir = root.join("containment-only").join(format!("{k}-{i}"));
            std::fs::create_dir_all(&dir).expect("run folder");
            let mut args = args(scenario, since, &dir.join("requests.jsonl"));
            let at = args
                .iter()
                .position(|a| a == "--playbook")
                .expect("--playbook")
                + 1;
            args[at] = playbook.display().to_string();
            let name = format!("{}, containment only", full.name);
            let run = measured_run(options, meter, bin, &name, &args, dir, None);
            if run.exit == 0 {
                containment[k].push(run.stats.containment);
            }
            exits.push(run.exit);
        }
    }
    (containment, exits)
}

/// Run respond with `args` in `dir` and measure it from the simulator's request log.
fn measured_run(
    options: &Options,
    meter: &Meter,
    bin: &Path,
    name: &str,
    args: &[String],
    dir: PathBuf,
    lowered: Option<u32>,
) -> RunResult {
    let (exit, wall, max_rss_kb) = run_measured(meter, bin, args, &dir);
    let text = std::fs::read_to_string(dir.join("requests.jsonl")).unwrap_or_default();
    let stats = analyse(
        &text,
        Duration::from_millis(options.latency_ms),
        options.weight_window,
    );
    if exit != 0 {
        let err = std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default();
        eprintln!("run `{name}` exited {exit}; its stderr:\n{err}");
    }
    RunResult {
        name: name.to_string(),
        exit,
        wall,
        max_rss_kb,
        stats,
        dir,
        lowered,
        window: options.weight_window,
    }
}

/// One line about a generated account.
fn describe(scenario: &respond::sim::Scenario, size: &Size) -> String {
    let open_orders = scenario.open_orders.len();
    let count = |m: respond::sim::Market| scenario.symbols.iter().filter(|s| s.market == m).count();
    use respond::sim::Market as M;
    format!(
        "{} spot, {} margin, {} USDⓈ-M, {} COIN-M symbols; {open_orders} open orders; {} trades ({} days); {} transfers, {} withdrawals, {} deposits, {} Pay",
        count(M::Spot),
        count(M::Margin),
        count(M::Usdm),
        count(M::Coinm),
        scenario.trades.len(),
        size.trade_days,
        scenario.transfers.len(),
        scenario.withdrawals.len(),
        scenario.deposits.len(),
        scenario.pay.len(),
    )
}

/// One line about an account's make, before it is generated.
fn describe_size(size: &Size) -> String {
    format!(
        "{} spot, {} margin, {} USDⓈ-M, {} COIN-M symbols; {} open orders",
        size.spot_symbols,
        size.margin_symbols,
        size.usdm_symbols,
        size.coinm_symbols,
        size.open_orders()
    )
}

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.3} s", d.as_secs_f64())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A judged target: its description, whether it was met, and the evidence.
pub struct Target {
    pub what: String,
    pub met: bool,
    pub detail: String,
}

impl Report {
    fn run(&self, i: usize) -> &RunResult {
        &self.runs[i]
    }

    pub fn floor(&self) -> Duration {
        Duration::from_millis(u64::from(FLOOR_ROUND_TRIPS) * self.options.latency_ms)
    }

    /// Every run: the benchmark account's, then the wide account's.
    fn all_runs(&self) -> impl Iterator<Item = &RunResult> {
        self.runs.iter().chain([&self.wide, &self.tiny, &self.deep])
    }

    /// Containment on `account`: the median of its full run and its containment-only
    /// runs (a single run moves by several milliseconds on a 2-core machine).
    pub fn containment_of(&self, account: Account) -> Duration {
        let mut samples = self.containment[account as usize].clone();
        samples.sort();
        samples[samples.len() / 2]
    }

    /// Containment on the wide account over containment on the 5-symbol account.
    pub fn wide_to_tiny(&self) -> f64 {
        self.containment_of(Account::Wide).as_secs_f64()
            / self.containment_of(Account::Tiny).as_secs_f64().max(1e-9)
    }

    /// The weight-floor targets: each weight-bound run within 1.2 x its floor, the
    /// lowered run (at the simulator's latency) under 1.3 x, the deep scan within 1.1 x.
    fn floor_targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        for run in self.all_runs().filter(|r| r.weight_bound()) {
            out.push(Target {
                what: format!("`{}` within 1.2 x its weight floor", run.name),
                met: run.floor_ratio() <= 1.2,
                detail: format!(
                    "{} / {} = {:.3}",
                    secs(run.stats.total),
                    secs(run.floor()),
                    run.floor_ratio()
                ),
            });
        }
        let limited = self.run(2);
        out.push(Target {
            what: format!(
                "lowered limit, {} ms latency: under 1.3 x its weight floor",
                self.options.latency_ms
            ),
            met: limited.floor_ratio() < 1.3,
            detail: format!(
                "{} / {} = {:.3}",
                secs(limited.stats.total),
                secs(limited.floor()),
                limited.floor_ratio()
            ),
        });
        let scan = &self.deep_scan;
        out.push(Target {
            what: format!(
                "deep scan of {} spot symbols within 1.1 x its weight floor",
                scan.symbols
            ),
            met: scan.requests > 0 && scan.ratio() <= 1.1,
            detail: format!(
                "{} / {} = {:.3} ({} requests, weight {}/{}/{})",
                secs(scan.span),
                secs(scan.floor),
                scan.ratio(),
                scan.requests,
                scan.weight[0],
                scan.weight[1],
                scan.weight[2]
            ),
        });
        out
    }

    /// Containment on the wide account over containment on the benchmark account.
    pub fn wide_ratio(&self) -> f64 {
        self.containment_of(Account::Wide).as_secs_f64()
            / self
                .containment_of(Account::Benchmark)
                .as_secs_f64()
                .max(1e-9)
    }

    pub fn targets(&self) -> Vec<Target> {
        let (shipped, serial) = (self.run(0), self.run(1));
        let floor = self.floor();
        let mut out = Vec::new();
        for (account, size, run) in [
            (Account::Benchmark, &self.options.size, shipped),
            (Account::Wide, &self.options.wide, &self.wide),
        ] {
            let c = self.containment_of(account);
            out.push(Target {
                what: format!(
                    "containment within 1.2 x floor ({}), {} symbols (median)",
                    ms(floor.mul_f64(1.2)),
                    size.symbols()
                ),
                met: c <= floor.mul_f64(1.2),
                detail: format!(
                    "{} = {:.2} x floor ({} cancels)",
                    ms(c),
                    c.as_secs_f64() / floor.as_secs_f64(),
                    run.stats.cancels
                ),
            });
        }
        let ratio = self.wide_to_tiny();
        out.push(Target {
            what: format!(
                "containment at {} symbols / at {} symbols at most 1.2 (medians)",
                self.options.wide.symbols(),
                self.options.tiny.symbols()
            ),
            met: ratio <= 1.2,
            detail: format!(
                "{} / {} = {ratio:.3}",
                ms(self.containment_of(Account::Wide)),
                ms(self.containment_of(Account::Tiny))
            ),
        });
        let ratio = shipped.stats.total.as_secs_f64() / serial.stats.total.as_secs_f64();
        out.push(Target {
            what: "total time at most 0.1 x serial".into(),
            met: ratio <= 0.1,
            detail: format!(
                "{} / {} = {ratio:.3}",
                secs(shipped.stats.total),
                secs(serial.stats.total)
            ),
        });
        let (too_many, banned): (usize, usize) = self
            .all_runs()
            .map(|r| (r.stats.too_many, r.stats.banned))
            .fold((0, 0), |(a, b), (x, y)| (a + x, b + y));
        out.push(Target {
            what: "zero 429 and zero 418 in every run".into(),
            met: too_many == 0 && banned == 0,
            detail: format!("{too_many} x 429, {banned} x 418"),
        });
        let limited = self.run(2);
        let limit = u64::from(self.options.lowered_limit);
        let peak = limited.stats.peak_weight.iter().copied().max().unwrap_or(0);
        out.push(Target {
            what: format!(
                "lowered limit: paced under {limit} per window and pool (/fapi + /dapi one pool), never rejected"
            ),
            met: peak <= limit && limited.stats.too_many == 0 && limited.stats.banned == 0,
            detail: format!(
                "peak {peak} per window; {} vs {} as shipped",
                secs(limited.stats.total),
                secs(shipped.stats.total)
            ),
        });
        out.extend(self.floor_targets());
        // Every run, the 2,000-symbol deep scan included: the largest is judged.
        let largest = self
            .all_runs()
            .max_by_key(|r| r.max_rss_kb)
            .expect("at least one run");
        let rss = largest.max_rss_kb;
        out.push(Target {
            what: "peak memory at most 30 MB in every run (respond with its in-process simulator)"
                .into(),
            met: rss <= 30 * 1024,
            detail: format!(
                "{:.1} MB, `{}` (the largest); {:.1} MB as shipped on {} symbols",
                rss as f64 / 1024.0,
                largest.name,
                self.run(0).max_rss_kb as f64 / 1024.0,
                self.options.size.symbols(),
            ),
        });
        for (name, samples) in &self.startup {
            if samples.is_empty() {
                continue;
            }
            let median = samples[samples.len() / 2];
            let max = samples[samples.len() - 1];
            out.push(Target {
                what: format!("`{name}` well under 50 ms"),
                met: median <= Duration::from_millis(25),
                detail: format!(
                    "median {}, max {} of {}",
                    ms(median),
                    ms(max),
                    samples.len()
                ),
            });
        }
        let full: Vec<i32> = self.all_runs().map(|r| r.exit).collect();
        out.push(Target {
            what: "every run completed (exit 0)".into(),
            met: full.iter().chain(&self.repeat_exits).all(|&e| e == 0),
            detail: format!(
                "{}; containment-only runs: {}",
                full.iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                summarise_exits(&self.repeat_exits)
            ),
        });
        out
    }

    /// Each account's containment samples and their median.
    fn render_containment(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "containment, median of each account's full run and {} containment-only runs (interleaved):",
            self.options.containment_repeats
        );
        for (account, size) in [
            (Account::Benchmark, &self.options.size),
            (Account::Wide, &self.options.wide),
            (Account::Tiny, &self.options.tiny),
        ] {
            let samples = &self.containment[account as usize];
            let _ = writeln!(
                o,
                "  {:>3} symbols: median {} of {}",
                size.symbols(),
                ms(self.containment_of(account)),
                samples
                    .iter()
                    .map(|d| ms(*d))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }

    pub fn render(&self) -> String {
        let mut o = String::new();
        let opts = &self.options;
        let _ = writeln!(o, "respond containment benchmark");
        let _ = writeln!(o, "scenario:  {}", self.scenario);
        let _ = writeln!(
            o,
            "wide:      {} (last run: as shipped, --since 1d)",
            self.wide_scenario
        );
        let _ = writeln!(
            o,
            "tiny:      {} (as shipped, --since 1d)",
            describe_size(&opts.tiny)
        );
        let _ = writeln!(
            o,
            "deep scan: {} (as shipped, --since 20h, weight window {} s)",
            self.deep_scenario,
            opts.deep_window.as_secs_f64()
        );
        let _ = writeln!(
            o,
            "simulator: in-process drill, {} ms round trip per request (the exchange acts half-way), weight window {} s",
            opts.latency_ms,
            opts.weight_window.as_secs_f64()
        );
        let _ = writeln!(
            o,
            "playbook:  built-in `compromised` with settle 1s -> 100ms and the probe interval 1s -> 100ms (last run: unchanged)"
        );
        let _ = writeln!(o, "command:   {}", self.command);
        let _ = writeln!(
            o,
            "           serial adds --concurrency 1; lowered adds --weight-limit {0} --sim-fault weight-limit={0} (per pool; /fapi + /dapi share one)",
            opts.lowered_limit
        );
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "{:<36} {:>12} {:>4} {:>9} {:>6} {:>30} {:>4} {:>4} {:>8} {:>9}",
            "run",
            "containment",
            "RTs",
            "total",
            "reqs",
            "peak weight/window api/sapi/futures/uid",
            "429",
            "418",
            "peak RSS",
            "wall"
        );
        for r in self.all_runs() {
            let s = &r.stats;
            let _ = writeln!(
                o,
                "{:<36} {:>12} {:>4} {:>9} {:>6} {:>30} {:>4} {:>4} {:>8} {:>9}",
                r.name,
                ms(s.containment),
                s.containment_round_trips,
                secs(s.total),
                s.requests,
                format!(
                    "{}/{}/{}/{}",
                    s.peak_weight[0], s.peak_weight[1], s.peak_weight[2], s.peak_uid_weight
                ),
                s.too_many,
                s.banned,
                format!("{:.1} MB", r.max_rss_kb as f64 / 1024.0),
                secs(r.wall),
            );
        }
        let (shipped, serial) = (self.run(0), self.run(1));
        let _ = writeln!(o);
        self.render_containment(&mut o);
        let _ = writeln!(
            o,
            "containment at {} symbols / at {} symbols: {} / {} = {:.3} ({} vs {} cancels)",
            opts.wide.symbols(),
            opts.tiny.symbols(),
            ms(self.containment_of(Account::Wide)),
            ms(self.containment_of(Account::Tiny)),
            self.wide_to_tiny(),
            self.wide.stats.cancels,
            self.tiny.stats.cancels
        );
        let _ = writeln!(
            o,
            "containment at {} symbols / at {} symbols: {} / {} = {:.3} ({} vs {} cancels)",
            opts.wide.symbols(),
            opts.size.symbols(),
            ms(self.containment_of(Account::Wide)),
            ms(self.containment_of(Account::Benchmark)),
            self.wide_ratio(),
            self.wide.stats.cancels,
            shipped.stats.cancels
        );
        let _ = writeln!(
            o,
            "shipped / serial: containment {:.3}, total {:.3}",
            shipped.stats.containment.as_secs_f64() / serial.stats.containment.as_secs_f64(),
            shipped.stats.total.as_secs_f64() / serial.stats.total.as_secs_f64()
        );
        let _ = writeln!(
            o,
            "floor: {FLOOR_ROUND_TRIPS} dependent round trips (open orders, listed beside the clock check and triage -> cancel) x {} ms = {}",
            opts.latency_ms,
            ms(self.floor())
        );
        let _ = writeln!(
            o,
            "preview: the shipped run could show the cancel's preview {} after its first request",
            ms(shipped.stats.preview)
        );
        let _ = writeln!(
            o,
            "       containment ends at the last cancel's answer: the shipped run took {} round trips to get there (RTs column)",
            shipped.stats.containment_round_trips
        );
        let _ = writeln!(
            o,
            "weight floor (per pool: weight spent / limit per window x window; the largest; api/sapi/futures/uid weight):"
        );
        for r in self.all_runs() {
            let s = &r.stats;
            let _ = writeln!(
                o,
                "  {:<36} {:>9} / floor {:>9} = {:.3}{}  ({}/{}/{}/{})",
                r.name,
                secs(s.total),
                secs(r.floor()),
                r.floor_ratio(),
                if r.weight_bound() {
                    ""
                } else {
                    " (bound by round trips, not weight)"
                },
                s.weight[0],
                s.weight[1],
                s.weight[2],
                s.uid_weight
            );
        }
        let scan = &self.deep_scan;
        let _ = writeln!(
            o,
            "  {:<36} {:>9} / floor {:>9} = {:.3}  (the deep-scan step alone: {}/{}/{})",
            format!("deep scan of {} spot symbols", scan.symbols),
            secs(scan.span),
            secs(scan.floor),
            scan.ratio(),
            scan.weight[0],
            scan.weight[1],
            scan.weight[2]
        );
        if let Some(builtin) = self.runs.get(3) {
            let _ = writeln!(
                o,
                "waits: the built-in playbook's settle re-list (1 s) and 2 pauses between 3 probes (1 s each) add {} to the total ({} vs {}); containment is unaffected ({} vs {})",
                secs(builtin.stats.total.saturating_sub(shipped.stats.total)),
                secs(builtin.stats.total),
                secs(shipped.stats.total),
                ms(builtin.stats.containment),
                ms(shipped.stats.containment)
            );
        }
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "targets:{}",
            if opts.judged {
                ""
            } else {
                " (smoke run: shown, not judged; they are set for the full scenario)"
            }
        );
        for t in self.targets() {
            let verdict = match (opts.judged, t.met) {
                (false, _) => "----",
                (true, true) => "PASS",
                (true, false) => "FAIL",
            };
            let _ = writeln!(o, "  [{verdict}] {}: {}", t.what, t.detail);
        }
        if let Some(dir) = &opts.keep {
            let _ = writeln!(o, "\nkept in {}", dir.display());
        }
        o
    }
}

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__measure") {
        std::process::exit(measure_child(&args[1..]));
    }
    let mut options = Options::full();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--smoke" => {
                let keep = options.keep.take();
                options = Options::smoke();
                options.keep = keep;
            }
            "--keep" => options.keep = it.next().map(PathBuf::from),
            "--latency" => {
                options.latency_ms = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--latency MS")
            }
            // `cargo bench` passes --bench; filters do not apply to a single benchmark.
            _ => {}
        }
    }
    let me = std::env::current_exe().expect("the benchmark's own path");
    let report = run(
        &options,
        Path::new(env!("CARGO_BIN_EXE_respond")),
        &Meter::GoBetween(me),
    );
    print!("{}", report.render());
    if options.judged && report.targets().iter().any(|t| !t.met) {
        std::process::exit(1);
    }
}
