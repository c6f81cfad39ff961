//! `respond sim serve` and `respond sim validate` as an operator runs them.
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn respond() -> Command {
    Command::new(env!("CARGO_BIN_EXE_respond"))
}

#[tokio::test]
async fn serve_prints_its_url_first_within_a_second_and_stops_on_sigterm() {
    let started = Instant::now();
    let mut child = respond()
        .args(["sim", "serve", "--port", "0", "--fault", "seed=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send((line, Instant::now()));
    });
    let (line, at) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a first line");
    let elapsed = at - started;
    assert!(
        elapsed < Duration::from_secs(1),
        "first line after {elapsed:?}"
    );
    let url = line
        .trim_end()
        .strip_prefix("listening on http://127.0.0.1:")
        .map(|port| format!("http://127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let ping = http.get(format!("{url}/api/v3/ping")).send().await.unwrap();
    assert_eq!(ping.status(), 200);
    let state: serde_json::Value = http
        .get(format!("{url}/sim/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["keys"][0]["label"], "Quant Trading Bot");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
}

#[test]
fn bad_faults_are_usage_errors() {
    for (fault, expect) in [
        ("jitter=5", "unknown fault \"jitter\""),
        ("error-rate=2", "between 0 and 1"),
        ("latency", "NAME=VALUE"),
    ] {
        let out = respond()
            .args(["sim", "serve", "--port", "0", "--fault", fault])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{fault}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{fault}: {stderr}");
        assert!(out.stdout.is_empty(), "nothing listened");
    }
    let out = respond()
        .args(["sim", "serve", "--weight-window", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn validate_reports_every_problem_with_its_position() {
    let ok = respond()
        .args([
            "sim",
            "validate",
            "playbooks/scenarios/leaked-key.yaml",
            "playbooks/scenarios/read-only.yaml",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\nname: bad\nkeys:\n  - label: k\n    api_key: short\n    secret: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n    permissions: [reading, trading]\nsymbols:\n  - { market: spot, symbol: BTCUSDT, base: BTC, quote: USDT, price: \"-1\" }\n",
    )
    .unwrap();
    let out = respond()
        .args(["sim", "validate"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = bad.display().to_string();
    for expected in [
        format!("{file}:5:14: api_key must be 64 letters and digits"),
        format!("{file}:7:28: unknown permission \"trading\""),
        format!("{file}:9:69: price -1 must be greater than 0"),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in\n{stderr}"
        );
    }
    assert!(stderr.contains("3 problems found"), "{stderr}");
}
