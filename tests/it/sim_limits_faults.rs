//! Request weight (headers, 429, 418), faults, the request log, the attacker, the drill's
//! key deletion and the control API.
use crate::sim_support;

use std::time::{Duration, Instant};

use respond::sim::{Actor, Faults, Scenario, SimConfig};
use sim_support::{now_ms, Sim};

fn with_faults(specs: &[&str]) -> SimConfig {
    let mut scenario = Scenario::builtin_leaked_key();
    scenario.attacker = None;
    let mut config = SimConfig::new(scenario);
    for s in specs {
        config.faults.apply(s).unwrap();
    }
    config
}

#[tokio::test]
async fn weight_headers_on_every_answer() {
    let sim = Sim::quiet().await;
    let r = sim.get("/api/v3/exchangeInfo", "").await;
    assert_eq!(r.header("x-mbx-used-weight").as_deref(), Some("20"));
    assert_eq!(r.header("x-mbx-used-weight-1m").as_deref(), Some("20"));
    // Errors carry them too, and failed requests weigh what they weigh.
    let r = sim.get("/api/v3/ticker/price", "symbol=NOPE").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("x-mbx-used-weight-1m").as_deref(), Some("22"));
    let r = sim.signed_get("/sapi/v1/capital/deposit/hisrec", "").await;
    assert_eq!(r.header("x-sapi-used-ip-weight-1m").as_deref(), Some("1"));
    assert_eq!(r.header("x-sapi-used-uid-weight-1m").as_deref(), Some("0"));
    assert_eq!(r.header("x-mbx-used-weight-1m").as_deref(), Some("1"));
    // Spot, /sapi and futures count separately; /fapi and /dapi share one pool.
    let r = sim.get("/fapi/v1/time", "").await;
    assert_eq!(r.header("x-mbx-used-weight-1m").as_deref(), Some("1"));
    let r = sim.get("/dapi/v1/time", "").await;
    assert_eq!(r.header("x-mbx-used-weight-1m").as_deref(), Some("2"));
    let r = sim.get("/fapi/v1/ping", "").await;
    assert_eq!(r.header("x-mbx-used-weight-1m").as_deref(), Some("3"));
    // A successful spot cancel-all weighs 0, a failed one 1.
    let r = sim
        .signed("DELETE", "/api/v3/openOrders", "symbol=BTCUSDT")
        .await;
    assert_eq!(r.header("x-mbx-used-weight-1m").as_deref(), Some("22"));
    let r = sim
        .signed("DELETE", "/api/v3/openOrders", "symbol=BTCUSDT")
        .await;
    assert_eq!(r.header("x-mbx-used-weight-1m").as_deref(), Some("23"));
}

// Paused time: the ban and the weight window pass by advancing the limiter's clock.
#[tokio::test(start_paused = true)]
async fn too_many_requests_then_banned_then_free_again() {
    let mut config = with_faults(&["weight-limit=30"]);
    config.weight_window = Duration::from_secs(2);
    let sim = Sim::start(config).await;
    let info = sim.get("/api/v3/exchangeInfo", "").await.ok();
    assert_eq!(info["rateLimits"][0]["limit"], 30);
    assert_eq!(info["rateLimits"][0]["interval"], "SECOND");
    let r = sim.get("/api/v3/exchangeInfo", "").await;
    r.err(429, -1003);
    assert_eq!(r.header("retry-after").as_deref(), Some("2"));
    assert_eq!(r.header("x-mbx-used-weight-1m").as_deref(), Some("20"));
    sim.get("/api/v3/exchangeInfo", "").await.err(429, -1003);
    sim.get("/api/v3/exchangeInfo", "").await.err(429, -1003);
    // Still going after three 429s: banned, for every request on the family.
    let r = sim.get("/api/v3/exchangeInfo", "").await;
    r.err(418, -1003);
    assert!(r.json["msg"].as_str().unwrap().contains("banned until"));
    assert_eq!(r.header("retry-after").as_deref(), Some("4"));
    sim.get("/api/v3/time", "").await.err(418, -1003);
    // Other families are not affected; /sapi only ever answers 429.
    sim.get("/fapi/v1/exchangeInfo", "").await.ok();
    for _ in 0..30 {
        sim.signed_get("/sapi/v1/account/status", "").await;
    }
    for _ in 0..5 {
        sim.signed_get("/sapi/v1/account/status", "")
            .await
            .err(429, -1003);
    }
    // The ban lasts two windows, then the counter has rolled.
    tokio::time::advance(Duration::from_millis(3999)).await;
    sim.get("/api/v3/time", "").await.err(418, -1003);
    tokio::time::advance(Duration::from_millis(1)).await;
    sim.get("/api/v3/exchangeInfo", "").await.ok();
}

#[tokio::test]
async fn fapi_and_dapi_share_one_limit_and_one_ban() {
    let mut config = with_faults(&["weight-limit=3"]);
    config.weight_window = Duration::from_secs(2);
    let sim = Sim::start(config).await;
    for path in ["/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"] {
        let info = sim.get(path, "").await.ok();
        assert_eq!(info["rateLimits"][0]["rateLimitType"], "REQUEST_WEIGHT");
        assert_eq!(
            info["rateLimits"][0]["limit"], 3,
            "{path}: the pool's limit"
        );
    }
    sim.get("/fapi/v1/time", "").await.ok();
    // 3 of 3 used, two of them on /fapi: /dapi is refused too.
    sim.get("/dapi/v1/time", "").await.err(429, -1003);
    sim.get("/fapi/v1/time", "").await.err(429, -1003);
    sim.get("/dapi/v1/time", "").await.err(429, -1003);
    // Going on past three 429s bans the IP on both families.
    sim.get("/fapi/v1/time", "").await.err(418, -1003);
    sim.get("/dapi/v1/ping", "").await.err(418, -1003);
    // Spot is its own pool.
    sim.get("/api/v3/time", "").await.ok();
}

#[tokio::test]
async fn latency_fault() {
    let sim = Sim::start(with_faults(&["latency=150"])).await;
    let t = Instant::now();
    sim.get("/api/v3/ping", "").await.ok();
    assert!(t.elapsed() >= Duration::from_millis(150));
    // A round trip over a symmetric link: the exchange reads its clock (and acts) when
    // the request reaches it, half-way, and the answer takes the other half back.
    let sent = now_ms();
    let stamped = sim.get("/api/v3/time", "").await.ok()["serverTime"]
        .as_i64()
        .unwrap();
    let back = now_ms();
    assert!(back - sent >= 150, "a whole round trip: {}", back - sent);
    assert!(
        stamped - sent >= 75,
        "acted on before it arrived: {}",
        stamped - sent
    );
    assert!(
        back - stamped >= 74,
        "answered before it got back: {}",
        back - stamped
    );
    // The control API is not slowed down.
    let t = Instant::now();
    sim.get("/sim/state", "").await.ok();
    assert!(t.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn error_rate_is_5xx_and_repeatable_with_a_seed() {
    let sim = Sim::start(with_faults(&["error-rate=1"])).await;
    for _ in 0..5 {
        let r = sim.get("/api/v3/time", "").await;
        assert!(matches!(r.status, 500 | 502 | 503), "{}", r.status);
    }
    let mut runs = Vec::new();
    for _ in 0..2 {
        let sim = Sim::start(with_faults(&["error-rate=0.5", "seed=42"])).await;
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(sim.get("/api/v3/ping", "").await.status);
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].contains(&200) && runs[0].iter().any(|s| *s >= 500));
}

#[tokio::test]
async fn timeout_rate_accepts_and_never_answers() {
    let sim = Sim::start(with_faults(&["timeout-rate=1"])).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = http
        .get(sim.url("/api/v3/ping", ""))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let log = sim.server.request_log();
    assert_eq!(log.last().unwrap().status, 0);
    // Shutdown is not held up by the swallowed request.
    let t = Instant::now();
    sim.server.shutdown().await;
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn clock_skew_moves_the_server_clock() {
    let sim = Sim::start(with_faults(&["clock-skew=-3000"])).await;
    let t = sim.get("/api/v3/time", "").await.ok()["serverTime"]
        .as_i64()
        .unwrap();
    let behind = now_ms() - t;
    assert!((2500..4000).contains(&behind), "{behind}");
    // A client on the real clock is now more than 1 s ahead of the server.
    sim.signed_get("/api/v3/account", "").await.err(400, -1021);
    let synced = format!("timestamp={}", now_ms() - 3000);
    sim.signed_exact("GET", "/api/v3/account", &synced)
        .await
        .ok();
}

#[tokio::test]
async fn malformed_answers_on_one_path() {
    let sim = Sim::start(with_faults(&["malformed=/api/v3/account"])).await;
    let r = sim.signed_get("/api/v3/account", "").await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<serde_json::Value>(&r.text).is_err());
    sim.get("/api/v3/time", "").await.ok();
}

#[tokio::test]
async fn faults_change_mid_run_through_the_control_api() {
    let sim = Sim::quiet().await;
    sim.get("/api/v3/time", "").await.ok();
    let set = sim
        .send("POST", "/sim/faults", "error-rate=1&seed=3", None, None)
        .await
        .ok();
    assert_eq!(set["error_rate"], 1.0);
    assert!(sim.get("/api/v3/time", "").await.status >= 500);
    let bad = sim
        .send("POST", "/sim/faults", "jitter=1", None, None)
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.json["error"]
        .as_str()
        .unwrap()
        .contains("unknown fault"));
    sim.send("DELETE", "/sim/faults", "", None, None).await.ok();
    sim.get("/api/v3/time", "").await.ok();
    // And in-process.
    let mut f = Faults::default();
    f.set_weight_limit(1).unwrap();
    sim.server.set_faults(f);
    sim.get("/fapi/v1/exchangeInfo", "").await.ok();
    sim.get("/fapi/v1/exchangeInfo", "").await.err(429, -1003);
}

#[tokio::test]
async fn request_log_fields_in_memory_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    let mut config = with_faults(&[]);
    config.request_log = Some(path.clone());
    let sim = Sim::start(config).await;
    sim.signed_get("/api/v3/openOrders", "symbol=BTCUSDT")
        .await
        .ok();
    sim.signed_get("/api/v3/account", "").await; // ok
    sim.get("/api/v3/ticker/price", "symbol=NOPE").await;
    sim.get("/sim/state", "").await.ok();

    let log = sim.server.request_log();
    assert_eq!(log.len(), 4);
    let first = &log[0];
    assert_eq!(first.actor, Actor::Client);
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("GET", "/api/v3/openOrders")
    );
    assert!(first.query.starts_with("symbol=BTCUSDT&timestamp="));
    assert!(!first.query.contains("signature"));
    assert_eq!((first.status, first.code, first.weight), (200, None, 6));
    let time = chrono::DateTime::parse_from_rfc3339(&first.time).unwrap();
    assert!(
        first.time.ends_with('Z') && first.time.len() == 24,
        "{}",
        first.time
    );
    assert!((time.timestamp_millis() - now_ms()).abs() < 5000);
    assert_eq!((log[2].status, log[2].code), (400, Some(-1121)));
    assert_eq!(log[3].actor, Actor::Control);

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for key in [
        "time", "actor", "method", "path", "query", "status", "code", "weight",
    ] {
        assert!(lines[0].get(key).is_some(), "{key} missing");
    }
    assert_eq!(lines[2]["code"], -1121);
    assert_eq!(lines[0]["code"], serde_json::Value::Null);
    let via_api = sim.get("/sim/requests", "actor=client").await.ok();
    assert_eq!(via_api.as_array().unwrap().len(), 3);
}

const ATTACKER_SCENARIO: &str = r#"
version: 1
name: fast-attacker
keys:
  - label: Leaked Bot
    api_key: 0lR8acRYSi4MDF8kWCBX1KpeZUaLJ4d8jOCs4bWYTI6wLqeeHq1PkCJVuoYqLRqr
    secret: xZKiGvbtcj7bsHXDYzEzVMGPBnu3mY2lhm12FPzmV4eAk5M7ByFgDcEW7AKW3gc3
    permissions: [reading, spot]
  - label: Ops
    api_key: FnJxFkQjVDZRucq2zyw8GOuLfafi1JrpRWBJG9encC4davDsREymZzoU8nDX7rnx
    secret: 5xrbw0aRFvKyQQbV4iOmSpnXJzjdO9KnUcOwcOBExM3tnY4WftHKrmUeUKjuZSib
    permissions: [reading, spot]
symbols:
  - { market: spot, symbol: XYZBTC, base: XYZ, quote: BTC, price: "0.0000021" }
drill: { deletion: wrong-key }
attacker:
  key: Leaked Bot
  every: 150ms
  order: { market: spot, symbol: XYZBTC, side: BUY, type: LIMIT, price: "0.0000095", quantity: "10000" }
"#;

fn open_xyz(sim: &Sim) -> usize {
    sim.server
        .state_summary()
        .open_on(respond::sim::Market::Spot)
}

// Paused time: the attacker's ticks come as the test's sleeps advance the clock, not
// after real waits.
#[tokio::test(start_paused = true)]
async fn attacker_orders_reappear_until_the_key_is_deleted() {
    let scenario = Scenario::parse(ATTACKER_SCENARIO, "attacker.yaml").unwrap();
    let sim = Sim::start(SimConfig::new(scenario)).await;
    assert_eq!(sim.key.label, "Leaked Bot");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(open_xyz(&sim) >= 2);
    sim.signed("DELETE", "/api/v3/openOrders", "symbol=XYZBTC")
        .await
        .ok();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(open_xyz(&sim) >= 1, "the attacker placed new orders");
    let attacker_lines: Vec<_> = sim
        .server
        .request_log()
        .into_iter()
        .filter(|e| e.actor == Actor::Attacker)
        .collect();
    assert!(attacker_lines.len() >= 3);
    assert_eq!(attacker_lines[0].path, "/api/v3/order");
    assert_eq!(attacker_lines[0].method, "POST");

    // The drill's deletion under `wrong-key` removes the other key: the attacker goes on.
    let deleted = sim.server.drill_delete_key("Leaked Bot").unwrap();
    assert!(deleted.wrong_key);
    assert_eq!(deleted.label, "Ops");
    sim.signed_get("/api/v3/account", "").await.ok();

    // Really deleting it stops the attacker; orders already placed stay until cancelled.
    sim.server.delete_key("Leaked Bot").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = open_xyz(&sim);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(open_xyz(&sim), before, "no new orders after deletion");
}

#[tokio::test]
async fn control_api_deletes_keys_and_creates_responders() {
    let sim = Sim::quiet().await;
    let state = sim.get("/sim/state", "").await.ok();
    assert_eq!(state["open_orders"]["spot"]["BTCUSDT"], 1);
    assert_eq!(state["open_algo_orders"]["BTCUSDT"], 1);
    assert_eq!(state["keys"][0]["leaked"], true);
    assert_eq!(state["keys"][0]["deleted"], false);

    let created = sim
        .send("POST", "/sim/keys/responder", "", None, None)
        .await
        .ok();
    let responder = respond::sim::KeyPair {
        label: created["label"].as_str().unwrap().into(),
        api_key: created["api_key"].as_str().unwrap().into(),
        secret: created["secret"].as_str().unwrap().into(),
    };
    sim.signed_as(&responder, "GET", "/api/v3/account", "")
        .await
        .ok();
    let log = sim.get("/sim/requests", "").await.text;
    assert!(!log.contains(&responder.secret));

    let deleted = sim
        .send(
            "POST",
            "/sim/keys/delete",
            "key=Quant%20Trading%20Bot&drill=true",
            None,
            None,
        )
        .await
        .ok();
    assert_eq!(deleted["label"], "Quant Trading Bot");
    assert_eq!(deleted["wrong_key"], false);
    sim.signed_get("/api/v3/account", "").await.err(401, -2015);
    // The responder key still reads after the leaked key is gone.
    sim.signed_as(&responder, "GET", "/sapi/v1/capital/withdraw/history", "")
        .await
        .ok();
    let missing = sim
        .send("POST", "/sim/keys/delete", "key=nobody", None, None)
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(sim.get("/sim/nothing", "").await.status, 404);
}

#[tokio::test]
async fn a_5xx_says_nothing_about_whether_an_order_was_placed() {
    let sim = Sim::start(with_faults(&["error-rate=1", "seed=11"])).await;
    let before = sim
        .server
        .state_summary()
        .open_on(respond::sim::Market::Spot);
    for _ in 0..10 {
        let r = sim
            .signed(
                "POST",
                "/api/v3/order",
                "symbol=ETHUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.1&price=3000",
            )
            .await;
        assert!(r.status >= 500);
    }
    let placed = sim
        .server
        .state_summary()
        .open_on(respond::sim::Market::Spot)
        - before;
    assert!(
        (1..10).contains(&placed),
        "some but not all took effect: {placed}"
    );
}
