//! The simulator rejects what Binance rejects, with Binance's codes and statuses: bad
//! signatures, unknown and deleted keys, missing permissions, IP whitelists, stale or
//! early timestamps. Signing follows Binance's rules, not any one client's habits.
use crate::sim_support;

use respond::sim::{KeyPair, Scenario, SimConfig};
use sim_support::{now_ms, sign, stranger, Sim};

/// `GET /api/v3/openOrders` with `payload` and the signature `sig`, whatever it signs.
async fn open_orders_signed(sim: &Sim, payload: &str, sig: &str) -> sim_support::Resp {
    sim.send(
        "GET",
        "/api/v3/openOrders",
        &format!("{payload}&signature={sig}"),
        Some(&sim.key.api_key),
        None,
    )
    .await
}

#[tokio::test]
async fn signature_over_the_query_exactly_as_sent() {
    let sim = Sim::quiet().await;
    let ts = now_ms();
    // Any parameter order works, because the HMAC covers the bytes as received.
    sim.signed_exact(
        "GET",
        "/api/v3/openOrders",
        &format!("timestamp={ts}&symbol=BTCUSDT&recvWindow=10000"),
    )
    .await
    .ok();
    sim.signed_exact(
        "GET",
        "/api/v3/openOrders",
        &format!("recvWindow=10000&symbol=BTCUSDT&timestamp={ts}"),
    )
    .await
    .ok();
    // Percent-encoding is part of what is signed.
    sim.signed_exact(
        "GET",
        "/api/v3/myTrades",
        &format!("symbol=BTC%55SDT&timestamp={ts}"),
    )
    .await
    .ok();

    // Upper-case hex is accepted.
    let payload = format!("symbol=BTCUSDT&timestamp={}", now_ms());
    let sig = sign(&sim.key.secret, &payload).to_uppercase();
    open_orders_signed(&sim, &payload, &sig).await.ok();

    // Signed over something else: -1022, HTTP 400.
    let sig = sign(&sim.key.secret, &format!("{payload}&x=1"));
    open_orders_signed(&sim, &payload, &sig)
        .await
        .err(400, -1022);
    // With the wrong secret.
    let wrong = KeyPair {
        secret: "x".repeat(64),
        ..sim.key.clone()
    };
    sim.signed_as(&wrong, "GET", "/sapi/v1/account/apiRestrictions", "")
        .await
        .err(400, -1022);
}

#[tokio::test]
async fn query_and_form_body_are_signed_together() {
    let sim = Sim::quiet().await;
    let query = "symbol=ETHUSDT&side=BUY";
    let body = format!(
        "type=LIMIT&timeInForce=GTC&quantity=0.2&price=3000&timestamp={}",
        now_ms()
    );
    let sig = sign(&sim.key.secret, &format!("{query}{body}"));
    let placed = sim
        .send(
            "POST",
            "/api/v3/order",
            query,
            Some(&sim.key.api_key),
            Some(format!("{body}&signature={sig}")),
        )
        .await
        .ok();
    assert_eq!(placed["status"], "NEW");
}

#[tokio::test]
async fn unknown_and_deleted_keys() {
    let sim = Sim::quiet().await;
    let nobody = stranger();
    let api = sim.signed_as(&nobody, "GET", "/api/v3/account", "").await;
    api.err(401, -2015);
    assert_eq!(
        api.json["msg"],
        "Invalid API-key, IP, or permissions for action."
    );
    sim.signed_as(&nobody, "GET", "/sapi/v1/account/apiRestrictions", "")
        .await
        .err(401, -2008);
    sim.signed_as(&nobody, "GET", "/fapi/v2/balance", "")
        .await
        .err(401, -2008);
    sim.signed_as(&nobody, "GET", "/dapi/v1/balance", "")
        .await
        .err(401, -2008);
    sim.send(
        "GET",
        "/api/v3/account",
        &format!("timestamp={}", now_ms()),
        None,
        None,
    )
    .await
    .err(401, -2014);
    sim.send("GET", "/api/v3/account", "", Some("short"), None)
        .await
        .err(401, -2014);

    // The key works, then is deleted and stops working everywhere.
    sim.signed_get("/api/v3/account", "").await.ok();
    let deleted = sim.server.delete_key(&sim.key.label).unwrap();
    assert!(!deleted.wrong_key);
    sim.signed_get("/api/v3/account", "").await.err(401, -2015);
    sim.signed_get("/sapi/v1/account/apiRestrictions", "")
        .await
        .err(401, -2008);
    sim.signed("DELETE", "/fapi/v1/allOpenOrders", "symbol=BTCUSDT")
        .await
        .err(401, -2008);
    // Public endpoints do not care.
    sim.get("/api/v3/ping", "").await.ok();
}

#[tokio::test]
async fn read_only_keys_cannot_trade_or_cancel() {
    let sim = Sim::start(SimConfig::new(Scenario::builtin_read_only())).await;
    assert_eq!(sim.key.label, "Reporting (read-only)");
    sim.signed_get("/api/v3/openOrders", "").await.ok();
    let r = sim
        .signed("DELETE", "/api/v3/openOrders", "symbol=ETHUSDT")
        .await;
    r.err(401, -2015);
    sim.signed(
        "POST",
        "/api/v3/order",
        "symbol=ETHUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=100",
    )
    .await
    .err(401, -2015);
    assert_eq!(
        sim.server.state_summary().total_open(),
        1,
        "nothing was cancelled"
    );

    // A responder key made for a drill reads but cannot cancel either.
    let quiet = Sim::quiet().await;
    let responder = quiet.server.create_responder_key();
    quiet
        .signed_as(&responder, "GET", "/api/v3/myTrades", "symbol=XYZBTC")
        .await
        .ok();
    let r = quiet
        .signed_as(
            &responder,
            "DELETE",
            "/fapi/v1/allOpenOrders",
            "symbol=BTCUSDT",
        )
        .await;
    r.err(401, -2015);
    assert!(r.json["msg"]
        .as_str()
        .unwrap()
        .ends_with("request ip: 127.0.0.1"));
    assert_eq!(quiet.server.state_summary().total_open(), 8);
}

#[tokio::test]
async fn ip_whitelist_is_enforced() {
    let sim = Sim::quiet().await;
    let summary = sim.server.state_summary();
    let dashboard = summary
        .keys
        .iter()
        .find(|k| k.label == "Portfolio Dashboard")
        .unwrap();
    assert_eq!(dashboard.ip_whitelist, vec!["203.0.113.10".to_string()]);
    let scenario = Scenario::builtin_leaked_key();
    let k = &scenario.keys[1];
    let key = KeyPair {
        label: k.label.clone(),
        api_key: k.api_key.clone(),
        secret: k.secret.clone(),
    };
    sim.signed_as(&key, "GET", "/api/v3/account", "")
        .await
        .err(401, -2015);
    sim.signed_as(&key, "GET", "/sapi/v1/account/apiRestrictions", "")
        .await
        .err(401, -2015);

    // The read-only scenario whitelists 127.0.0.1: allowed from here.
    let ro = Sim::start(SimConfig::new(Scenario::builtin_read_only())).await;
    let r = ro
        .signed_get("/sapi/v1/account/apiRestrictions", "")
        .await
        .ok();
    assert_eq!(r["ipRestrict"], true);
}

#[tokio::test]
async fn timestamps_and_recv_window() {
    let sim = Sim::quiet().await;
    let path = "/api/v3/openOrders";
    let now = now_ms();
    sim.signed_exact("GET", path, &format!("timestamp={}", now - 6000))
        .await
        .err(400, -1021);
    sim.signed_exact(
        "GET",
        path,
        &format!("timestamp={}&recvWindow=10000", now - 6000),
    )
    .await
    .ok();
    sim.signed_exact("GET", path, &format!("timestamp={}", now + 1500))
        .await
        .err(400, -1021);
    sim.signed_exact("GET", path, &format!("timestamp={}", now + 500))
        .await
        .ok();
    // Microseconds and fractional recvWindow are accepted.
    sim.signed_exact("GET", path, &format!("timestamp={}", now_ms() * 1000))
        .await
        .ok();
    sim.signed_exact(
        "GET",
        path,
        &format!("timestamp={}&recvWindow=5000.25", now_ms()),
    )
    .await
    .ok();
    sim.signed_exact(
        "GET",
        path,
        &format!("timestamp={}&recvWindow=60001", now_ms()),
    )
    .await
    .err(400, -1131);
    sim.signed_exact("GET", path, "recvWindow=5000")
        .await
        .err(400, -1102);
    sim.send(
        "GET",
        path,
        &format!("timestamp={}", now_ms()),
        Some(&sim.key.api_key),
        None,
    )
    .await
    .err(400, -1102);
}

#[tokio::test]
async fn secrets_never_leave_the_simulator() {
    let sim = Sim::builtin().await;
    sim.signed_get("/api/v3/account", "").await.ok();
    sim.signed_get("/api/v3/account", "omitZeroBalances=true&x=y")
        .await
        .ok();
    let state = sim.get("/sim/state", "").await;
    let log = sim.get("/sim/requests", "").await;
    let faults = sim.get("/sim/faults", "").await;
    let scenario = Scenario::builtin_leaked_key();
    for k in &scenario.keys {
        for text in [&state.text, &log.text, &faults.text] {
            assert!(!text.contains(&k.secret), "secret of {} leaked", k.label);
        }
    }
    for entry in sim.server.request_log() {
        assert!(!entry.query.contains("signature="), "{entry:?}");
    }
}

/// A scenario with one key of the given permissions (and whitelist), plus open orders on
/// every market, so refusals can be told from empty answers.
fn one_key(permissions: &str, whitelist: &str, client_ip: &str) -> Scenario {
    let text = format!(
        "version: 1\nname: t\n{client_ip}keys:\n  - label: bot\n    api_key: {}\n    secret: {}\n    permissions: [{permissions}]\n    ip_whitelist: [{whitelist}]\nsymbols:\n  - {{ market: spot, symbol: BTCUSDT, base: BTC, quote: USDT, price: \"64000\" }}\n  - {{ market: margin, symbol: BTCUSDT, base: BTC, quote: USDT, price: \"64000\" }}\n  - {{ market: usdm, symbol: BTCUSDT, base: BTC, quote: USDT, price: \"64000\" }}\n  - {{ market: coinm, symbol: BTCUSD_PERP, base: BTC, quote: USD, price: \"64000\" }}\nbalances:\n  spot: {{ USDT: \"1000\" }}\n  margin: {{ USDT: \"1000\" }}\n",
        "K".repeat(64),
        "S".repeat(64)
    );
    Scenario::parse(&text, "t.yaml").unwrap_or_else(|d| panic!("{d}"))
}

#[tokio::test]
async fn futures_endpoints_reads_included_need_futures() {
    let sim = Sim::start(SimConfig::new(one_key("reading, spot", "", ""))).await;
    for path in [
        "/fapi/v1/openOrders",
        "/fapi/v2/balance",
        "/fapi/v1/openAlgoOrders",
        "/dapi/v1/openOrders",
        "/dapi/v1/balance",
    ] {
        let r = sim.signed_get(path, "").await;
        r.err(401, -2015);
        assert!(
            r.text.contains("request ip: 127.0.0.1"),
            "{path}: {}",
            r.text
        );
    }
    // Spot and cross margin are one switch on Binance: a spot trading key cancels both.
    sim.signed_get("/api/v3/openOrders", "").await.ok();
    sim.signed_get("/sapi/v1/margin/openOrders", "").await.ok();
    sim.signed("DELETE", "/sapi/v1/margin/openOrders", "symbol=BTCUSDT")
        .await
        .err(400, -2011);
    let r = sim
        .signed_get("/sapi/v1/account/apiRestrictions", "")
        .await
        .ok();
    assert_eq!(
        (
            r["enableFutures"].clone(),
            r["enableSpotAndMarginTrading"].clone()
        ),
        (false.into(), true.into())
    );

    // A margin-loan key without spot trading cannot place or cancel margin orders.
    let loans = Sim::start(SimConfig::new(one_key("reading, margin", "", ""))).await;
    loans
        .signed("DELETE", "/sapi/v1/margin/openOrders", "symbol=BTCUSDT")
        .await
        .err(401, -2015);

    // A futures key reads futures; options and portfolio margin show in apiRestrictions.
    let fut = Sim::start(SimConfig::new(one_key(
        "reading, futures, options, portfolio_margin",
        "",
        "",
    )))
    .await;
    fut.signed_get("/fapi/v1/openOrders", "").await.ok();
    fut.signed_get("/dapi/v1/openOrders", "").await.ok();
    let r = fut
        .signed_get("/sapi/v1/account/apiRestrictions", "")
        .await
        .ok();
    assert_eq!(r["enableVanillaOptions"], true);
    assert_eq!(r["enablePortfolioMarginTrading"], true);
}

#[tokio::test]
async fn the_callers_address_is_settable_and_a_deletion_shows_from_outside_the_whitelist() {
    // The scenario's client_ip puts every outside caller at 192.0.2.50.
    let sim = Sim::start(SimConfig::new(one_key(
        "reading, spot, futures",
        "198.51.100.7",
        "client_ip: 192.0.2.50\n",
    )))
    .await;
    sim.signed_get("/api/v3/account", "").await.err(401, -2015);
    sim.signed_get("/sapi/v1/account/apiRestrictions", "")
        .await
        .err(401, -2015);
    let r = sim.signed_get("/fapi/v1/openOrders", "").await;
    r.err(401, -2015);
    assert!(r.text.ends_with("request ip: 192.0.2.50\"}"), "{}", r.text);
    // The whitelist binds every key, a responder key's included.
    let responder = sim.server.create_responder_key();
    sim.signed_as(&responder, "GET", "/api/v3/account", "")
        .await
        .ok();

    // Deleted: /api still says -2015, /sapi and futures now say the key does not exist.
    sim.server.delete_key("bot").unwrap();
    sim.signed_get("/api/v3/account", "").await.err(401, -2015);
    sim.signed_get("/sapi/v1/account/apiRestrictions", "")
        .await
        .err(401, -2008);
    sim.signed_get("/fapi/v1/openOrders", "")
        .await
        .err(401, -2008);

    // SimConfig.client_ip overrides the scenario (`sim serve --client-ip`).
    let mut config = SimConfig::new(one_key("reading", "198.51.100.7", ""));
    config.client_ip = Some("198.51.100.7".parse().unwrap());
    let inside = Sim::start(config).await;
    inside
        .signed_get("/sapi/v1/account/apiRestrictions", "")
        .await
        .ok();
}

#[tokio::test]
async fn a_testnet_simulator_serves_no_sapi() {
    let mut config = SimConfig::new(one_key("reading, spot", "", ""));
    config.testnet = true;
    let sim = Sim::start(config).await;
    let r = sim.signed_get("/sapi/v1/account/apiRestrictions", "").await;
    assert_eq!(r.status, 404, "{}", r.text);
    sim.signed_get("/api/v3/account", "").await.ok();
}
