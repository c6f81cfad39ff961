//! The simulator's endpoints answer with Binance's paths, field names and types, and its
//! state really changes: cancelled orders are gone.
use crate::sim_support;

use respond::sim::Market;
use serde_json::Value;
use std::time::Duration;

use sim_support::{client, now_ms, sign, Sim};

fn is_decimal_string(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.parse::<rust_decimal::Decimal>().is_ok())
}

#[track_caller]
fn fields(v: &Value, names: &[&str]) {
    for n in names {
        assert!(v.get(n).is_some(), "missing {n} in {v}");
    }
}

#[tokio::test]
async fn market_data_on_all_three_families() {
    let sim = Sim::quiet().await;
    for family in ["/api/v3", "/fapi/v1", "/dapi/v1"] {
        assert_eq!(
            sim.get(&format!("{family}/ping"), "").await.ok(),
            serde_json::json!({})
        );
        let t = sim.get(&format!("{family}/time"), "").await.ok();
        assert!((t["serverTime"].as_i64().unwrap() - now_ms()).abs() < 2000);
    }

    let spot = sim.get("/api/v3/exchangeInfo", "").await.ok();
    fields(&spot, &["timezone", "serverTime", "rateLimits", "symbols"]);
    assert_eq!(spot["rateLimits"][0]["rateLimitType"], "REQUEST_WEIGHT");
    assert_eq!(spot["rateLimits"][0]["limit"], 6000);
    let xyz = spot["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["symbol"] == "XYZBTC")
        .unwrap();
    assert!(
        xyz.get("contractType").is_none(),
        "spot symbols are not contracts"
    );
    assert_eq!(xyz["baseAsset"], "XYZ");
    assert_eq!(xyz["filters"][0]["filterType"], "PRICE_FILTER");

    let fapi = sim.get("/fapi/v1/exchangeInfo", "").await.ok();
    assert_eq!(fapi["rateLimits"][0]["limit"], 2400);
    let f = &fapi["symbols"][0];
    assert_eq!(f["contractType"], "PERPETUAL");
    assert_eq!(f["marginAsset"], f["quoteAsset"]);
    let dapi = sim.get("/dapi/v1/exchangeInfo", "").await.ok();
    let d = &dapi["symbols"][0];
    assert_eq!(d["symbol"], "BTCUSD_PERP");
    assert_eq!(d["marginAsset"], "BTC");
    assert_eq!(d["contractStatus"], "TRADING");
    assert_eq!(d["contractSize"], 100);

    let one = sim.get("/api/v3/ticker/price", "symbol=BTCUSDT").await.ok();
    assert!(is_decimal_string(&one["price"]));
    let all = sim.get("/api/v3/ticker/price", "").await.ok();
    assert!(all.as_array().unwrap().len() >= 4);
    let fp = sim
        .get("/fapi/v1/ticker/price", "symbol=BTCUSDT")
        .await
        .ok();
    assert!(is_decimal_string(&fp["price"]));
    let dp = sim
        .get("/dapi/v1/ticker/price", "symbol=BTCUSD_PERP")
        .await
        .ok();
    assert_eq!(dp[0]["ps"], "BTCUSD");

    sim.get("/api/v3/ticker/price", "symbol=NOPE")
        .await
        .err(400, -1121);
}

#[tokio::test]
async fn klines_give_the_price_of_a_minute() {
    let sim = Sim::quiet().await;
    let rows = sim
        .get("/api/v3/klines", "symbol=BTCUSDT&interval=1m&limit=3")
        .await
        .ok();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let k = rows[2].as_array().unwrap();
    assert_eq!(k.len(), 12);
    assert!(k[0].is_i64() && k[6].is_i64() && k[8].is_u64());
    assert_eq!(k[6].as_i64().unwrap() - k[0].as_i64().unwrap(), 59_999);
    for i in 1..=5 {
        assert!(is_decimal_string(&k[i]), "{k:?}");
    }
    assert!(k[0].as_i64().unwrap() <= now_ms());

    // The off-market burst: the kline of the first XYZBTC trade's minute is ~4x below it.
    let trades = sim
        .signed_get("/api/v3/myTrades", "symbol=XYZBTC&fromId=0&limit=1")
        .await
        .ok();
    let t = &trades[0];
    let minute = t["time"].as_i64().unwrap() / 60_000 * 60_000;
    let k = sim
        .get(
            "/api/v3/klines",
            &format!(
                "symbol=XYZBTC&interval=1m&startTime={minute}&endTime={}",
                minute + 59_999
            ),
        )
        .await
        .ok();
    assert_eq!(k.as_array().unwrap().len(), 1);
    let close: f64 = k[0][4].as_str().unwrap().parse().unwrap();
    let price: f64 = t["price"].as_str().unwrap().parse().unwrap();
    assert!(price / close > 4.0, "trade {price} vs market {close}");

    // Hourly candles and the futures families.
    let h = sim
        .get("/api/v3/klines", "symbol=ETHUSDT&interval=1h&limit=2")
        .await
        .ok();
    assert_eq!(
        h[1][6].as_i64().unwrap() - h[1][0].as_i64().unwrap(),
        3_599_999
    );
    assert_eq!(
        sim.get("/fapi/v1/klines", "symbol=BTCUSDT&interval=1m&limit=2")
            .await
            .ok()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(sim
        .get("/dapi/v1/klines", "symbol=BTCUSD_PERP&interval=1m&limit=1")
        .await
        .ok()[0][5]
        .is_string());
    sim.get("/api/v3/klines", "symbol=BTCUSDT&interval=7m")
        .await
        .err(400, -1120);
    sim.get("/api/v3/klines", "interval=1m")
        .await
        .err(400, -1102);
}

#[tokio::test]
async fn spot_account_orders_and_cancel_all() {
    let sim = Sim::quiet().await;
    let account = sim.signed_get("/api/v3/account", "").await.ok();
    fields(
        &account,
        &[
            "canTrade",
            "canWithdraw",
            "balances",
            "permissions",
            "accountType",
        ],
    );
    assert_eq!(account["canWithdraw"], true);
    let btc = account["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == "BTC")
        .unwrap();
    assert!(is_decimal_string(&btc["free"]) && is_decimal_string(&btc["locked"]));

    let open = sim.signed_get("/api/v3/openOrders", "").await;
    assert_eq!(open.header("x-mbx-used-weight-1m").as_deref(), Some("100")); // 20 + 80
    let open = open.ok();
    assert_eq!(open.as_array().unwrap().len(), 3);
    let o = &open[0];
    fields(
        o,
        &[
            "symbol",
            "orderId",
            "clientOrderId",
            "price",
            "origQty",
            "executedQty",
            "status",
            "type",
            "side",
            "time",
            "updateTime",
        ],
    );
    assert!(o["orderId"].is_u64() && o["time"].is_i64());
    assert!(is_decimal_string(&o["price"]) && is_decimal_string(&o["origQty"]));
    assert_eq!(o["status"], "NEW");

    let one = sim
        .signed_get("/api/v3/openOrders", "symbol=BTCUSDT")
        .await
        .ok();
    assert_eq!(one.as_array().unwrap().len(), 1);
    let cancelled = sim
        .signed("DELETE", "/api/v3/openOrders", "symbol=BTCUSDT")
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.json[0]["status"], "CANCELED");
    assert_eq!(
        cancelled.json[0]["origClientOrderId"],
        one[0]["clientOrderId"]
    );
    assert_eq!(
        sim.server.state_summary().open_orders[&Market::Spot].get("BTCUSDT"),
        None
    );
    assert!(sim
        .signed_get("/api/v3/openOrders", "symbol=BTCUSDT")
        .await
        .ok()
        .as_array()
        .unwrap()
        .is_empty());
    sim.signed("DELETE", "/api/v3/openOrders", "symbol=BTCUSDT")
        .await
        .err(400, -2011);
    sim.signed("DELETE", "/api/v3/openOrders", "")
        .await
        .err(400, -1102);
    sim.signed("DELETE", "/api/v3/openOrders", "symbol=NOPE")
        .await
        .err(400, -1121);

    // The cancelled order is still in the history.
    let id = one[0]["orderId"].as_u64().unwrap();
    let got = sim
        .signed_get("/api/v3/order", &format!("symbol=BTCUSDT&orderId={id}"))
        .await
        .ok();
    assert_eq!(got["status"], "CANCELED");
    sim.signed_get("/api/v3/order", "symbol=BTCUSDT&orderId=1")
        .await
        .err(400, -2013);
    let all = sim
        .signed_get("/api/v3/allOrders", "symbol=BTCUSDT")
        .await
        .ok();
    assert!(
        all.as_array().unwrap().len() >= 4,
        "fills and the cancelled order"
    );
}

#[tokio::test]
async fn spot_order_post_get_delete() {
    let sim = Sim::quiet().await;
    let placed = sim
        .signed(
            "POST",
            "/api/v3/order",
            "symbol=ETHUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.1&price=3000",
        )
        .await
        .ok();
    assert_eq!(placed["status"], "NEW");
    assert!(placed["fills"].as_array().unwrap().is_empty());
    let id = placed["orderId"].as_u64().unwrap();
    let got = sim
        .signed_get("/api/v3/order", &format!("symbol=ETHUSDT&orderId={id}"))
        .await
        .ok();
    assert_eq!(got["price"], "3000.00000000");
    let del = sim
        .signed(
            "DELETE",
            "/api/v3/order",
            &format!("symbol=ETHUSDT&orderId={id}"),
        )
        .await
        .ok();
    assert_eq!(del["status"], "CANCELED");
    sim.signed(
        "DELETE",
        "/api/v3/order",
        &format!("symbol=ETHUSDT&orderId={id}"),
    )
    .await
    .err(400, -2011);

    let market = sim
        .signed(
            "POST",
            "/api/v3/order",
            "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.001",
        )
        .await
        .ok();
    assert_eq!(market["status"], "FILLED");
    assert_eq!(market["fills"].as_array().unwrap().len(), 1);
    sim.signed(
        "POST",
        "/api/v3/order",
        "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=1",
    )
    .await
    .err(400, -1102); // timeInForce
}

#[tokio::test]
async fn my_trades_windows_and_first_trade() {
    let sim = Sim::quiet().await;
    let all = sim
        .signed_get("/api/v3/myTrades", "symbol=BTCUSDT")
        .await
        .ok();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 3);
    let t = &all[0];
    fields(
        t,
        &[
            "symbol",
            "id",
            "orderId",
            "price",
            "qty",
            "quoteQty",
            "commission",
            "commissionAsset",
            "time",
            "isBuyer",
            "isMaker",
        ],
    );
    assert!(t["isBuyer"].is_boolean() && is_decimal_string(&t["quoteQty"]));

    let first = sim
        .signed_get("/api/v3/myTrades", "symbol=BTCUSDT&fromId=0&limit=1")
        .await
        .ok();
    assert_eq!(first[0]["id"], all[0]["id"]);

    let day = 86_400_000;
    let now = now_ms();
    sim.signed_get(
        "/api/v3/myTrades",
        &format!("symbol=BTCUSDT&startTime={}&endTime={now}", now - day - 1),
    )
    .await
    .err(400, -1127);
    // startTime alone: from then on.
    let since = sim
        .signed_get(
            "/api/v3/myTrades",
            &format!("symbol=BTCUSDT&startTime={}", now - 7 * day),
        )
        .await
        .ok();
    assert_eq!(since.as_array().unwrap().len(), 2);
    sim.signed_get(
        "/api/v3/myTrades",
        &format!("symbol=BTCUSDT&fromId=1&startTime={now}"),
    )
    .await
    .err(400, -1128);
    sim.signed_get("/api/v3/myTrades", "").await.err(400, -1102);
}

#[tokio::test]
async fn wallet_history_and_key_restrictions() {
    let sim = Sim::quiet().await;
    let r = sim
        .signed_get("/sapi/v1/account/apiRestrictions", "")
        .await
        .ok();
    fields(
        &r,
        &[
            "ipRestrict",
            "createTime",
            "enableReading",
            "enableWithdrawals",
            "enableMargin",
            "enableFutures",
            "enableSpotAndMarginTrading",
            "permitsUniversalTransfer",
        ],
    );
    assert_eq!(r["ipRestrict"], false);
    assert_eq!(r["enableWithdrawals"], true);
    let age_days = (now_ms() - r["createTime"].as_i64().unwrap()) / 86_400_000;
    assert_eq!(age_days, 200);
    assert_eq!(
        sim.signed_get("/sapi/v1/account/status", "").await.ok(),
        serde_json::json!({"data": "Normal"})
    );
    let coins = sim
        .signed_get("/sapi/v1/capital/config/getall", "")
        .await
        .ok();
    let usdt = coins
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["coin"] == "USDT")
        .unwrap();
    assert!(!usdt["networkList"].as_array().unwrap().is_empty());

    let w = sim
        .signed_get("/sapi/v1/capital/withdraw/history", "")
        .await;
    assert!(w.header("x-sapi-used-uid-weight-1m").is_some());
    let w = w.ok();
    let w = w.as_array().unwrap();
    assert_eq!(w.len(), 2);
    let theft = &w[0]; // newest first
    assert!(theft["id"].is_string() && theft["status"].is_u64());
    assert_eq!(theft["address"], "TXunknownR4nd0mAddr3ss9zQ");
    assert_eq!(theft["amount"], "4800");
    let apply = theft["applyTime"].as_str().unwrap();
    assert!(chrono::NaiveDateTime::parse_from_str(apply, "%Y-%m-%d %H:%M:%S").is_ok());
    let now = now_ms();
    let ninety_one = 91 * 86_400_000;
    sim.signed_get(
        "/sapi/v1/capital/withdraw/history",
        &format!("startTime={}&endTime={now}", now - ninety_one),
    )
    .await
    .err(400, -1127);

    let d = sim
        .signed_get("/sapi/v1/capital/deposit/hisrec", "")
        .await
        .ok();
    assert_eq!(d.as_array().unwrap().len(), 2);
    assert!(d[0]["insertTime"].is_i64() && d[0]["id"].is_string());

    sim.signed_get("/sapi/v1/asset/transfer", "")
        .await
        .err(400, -1102);
    let tr = sim
        .signed_get("/sapi/v1/asset/transfer", "type=MAIN_UMFUTURE")
        .await
        .ok();
    assert_eq!(tr["total"], 1);
    fields(
        &tr["rows"][0],
        &["asset", "amount", "type", "status", "tranId", "timestamp"],
    );
    let pay = sim.signed_get("/sapi/v1/pay/transactions", "").await.ok();
    assert_eq!(pay["code"], "000000");
    assert_eq!(pay["data"][0]["amount"], "-250");
    assert!(pay["data"][0]["payerInfo"].is_object());

    // What third-party clients call at start.
    assert!(sim
        .get("/sapi/v1/margin/allPairs", "")
        .await
        .ok()
        .is_array());
    assert_eq!(
        sim.signed_get("/sapi/v1/margin/isolated/allPairs", "")
            .await
            .ok(),
        serde_json::json!([])
    );
}

#[tokio::test]
async fn margin_orders_and_account() {
    let sim = Sim::quiet().await;
    let acct = sim.signed_get("/sapi/v1/margin/account", "").await.ok();
    fields(
        &acct,
        &[
            "marginLevel",
            "totalAssetOfBtc",
            "userAssets",
            "tradeEnabled",
        ],
    );
    let open = sim.signed_get("/sapi/v1/margin/openOrders", "").await.ok();
    assert_eq!(open.as_array().unwrap().len(), 1);
    assert_eq!(open[0]["isIsolated"], false);
    sim.signed_get("/sapi/v1/margin/openOrders", "isIsolated=TRUE")
        .await
        .err(400, -1102);
    let cancelled = sim
        .signed("DELETE", "/sapi/v1/margin/openOrders", "symbol=BTCUSDT")
        .await
        .ok();
    assert_eq!(cancelled[0]["isIsolated"], false);
    assert_eq!(sim.server.state_summary().open_on(Market::Margin), 0);
    sim.signed("DELETE", "/sapi/v1/margin/openOrders", "symbol=BTCUSDT")
        .await
        .err(400, -2011);
    let trades = sim
        .signed_get("/sapi/v1/margin/myTrades", "symbol=BTCUSDT")
        .await
        .ok();
    assert_eq!(trades.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn usdm_orders_algo_orders_trades_and_wallet() {
    let sim = Sim::quiet().await;
    let open = sim.signed_get("/fapi/v1/openOrders", "").await.ok();
    assert_eq!(
        open.as_array().unwrap().len(),
        1,
        "algo orders are not listed here"
    );
    fields(
        &open[0],
        &[
            "positionSide",
            "cumQuote",
            "origType",
            "avgPrice",
            "reduceOnly",
        ],
    );
    let algo = sim.signed_get("/fapi/v1/openAlgoOrders", "").await.ok();
    assert_eq!(algo.as_array().unwrap().len(), 1);
    assert_eq!(algo[0]["algoType"], "CONDITIONAL");
    assert_eq!(algo[0]["orderType"], "STOP_MARKET");
    assert!(algo[0]["algoId"].is_u64());

    let done = sim
        .signed("DELETE", "/fapi/v1/allOpenOrders", "symbol=BTCUSDT")
        .await
        .ok();
    assert_eq!(done["code"], 200);
    assert_eq!(sim.server.state_summary().open_on(Market::Usdm), 0);
    // allOpenOrders does not cancel conditional orders; algoOpenOrders does.
    assert_eq!(sim.server.state_summary().open_algo_orders["BTCUSDT"], 1);
    sim.signed("DELETE", "/fapi/v1/algoOpenOrders", "symbol=BTCUSDT")
        .await
        .ok();
    assert_eq!(sim.server.state_summary().total_open(), 6);
    assert!(sim
        .signed_get("/fapi/v1/openAlgoOrders", "symbol=BTCUSDT")
        .await
        .ok()
        .as_array()
        .unwrap()
        .is_empty());

    let trades = sim
        .signed_get("/fapi/v1/userTrades", "symbol=BTCUSDT")
        .await
        .ok();
    fields(
        &trades[0],
        &[
            "buyer",
            "maker",
            "realizedPnl",
            "side",
            "positionSide",
            "quoteQty",
        ],
    );
    let now = now_ms();
    sim.signed_get(
        "/fapi/v1/userTrades",
        &format!(
            "symbol=BTCUSDT&startTime={}&endTime={now}",
            now - 8 * 86_400_000
        ),
    )
    .await
    .err(400, -1127);

    for path in ["/fapi/v2/balance", "/fapi/v3/balance"] {
        let b = sim.signed_get(path, "").await.ok();
        assert_eq!(b[0]["asset"], "USDT");
        assert!(is_decimal_string(&b[0]["balance"]));
    }
    let acct = sim.signed_get("/fapi/v2/account", "").await.ok();
    fields(
        &acct,
        &["totalWalletBalance", "assets", "positions", "canTrade"],
    );
    let risk = sim.signed_get("/fapi/v2/positionRisk", "").await.ok();
    let open: Vec<&Value> = risk
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["positionAmt"] != "0")
        .collect();
    assert_eq!(open.len(), 1);
    assert!(is_decimal_string(&open[0]["unRealizedProfit"]));
    // v2 lists every symbol, in v2's fields exactly.
    assert!(risk.as_array().unwrap().len() > open.len());
    exactly(
        open[0],
        &[
            "symbol",
            "positionAmt",
            "entryPrice",
            "breakEvenPrice",
            "markPrice",
            "unRealizedProfit",
            "liquidationPrice",
            "leverage",
            "maxNotionalValue",
            "marginType",
            "isolatedMargin",
            "isAutoAddMargin",
            "positionSide",
            "notional",
            "isolatedWallet",
            "updateTime",
        ],
    );
    // v3: its own fields, and only symbols with a position or open orders.
    let v3 = sim.signed_get("/fapi/v3/positionRisk", "").await.ok();
    let v3 = v3.as_array().unwrap();
    assert!(!v3.is_empty() && v3.len() < risk.as_array().unwrap().len());
    for p in v3 {
        exactly(
            p,
            &[
                "symbol",
                "positionSide",
                "positionAmt",
                "entryPrice",
                "breakEvenPrice",
                "markPrice",
                "unRealizedProfit",
                "liquidationPrice",
                "isolatedMargin",
                "notional",
                "marginAsset",
                "isolatedWallet",
                "initialMargin",
                "maintMargin",
                "positionInitialMargin",
                "openOrderInitialMargin",
                "adl",
                "bidNotional",
                "askNotional",
                "updateTime",
            ],
        );
        assert!(p["adl"].is_u64(), "adl is a number: {p}");
        for field in [
            "initialMargin",
            "maintMargin",
            "bidNotional",
            "askNotional",
            "notional",
        ] {
            assert!(is_decimal_string(&p[field]), "{field}: {p}");
        }
        assert_eq!(p["marginAsset"], "USDT");
    }
    let btc = v3.iter().find(|p| p["symbol"] == "BTCUSDT").unwrap();
    assert_eq!(btc["positionAmt"], open[0]["positionAmt"]);
    // ccxt's fetch_positions reads the leverage brackets first.
    let brackets = sim
        .signed_get("/fapi/v1/leverageBracket", "symbol=BTCUSDT")
        .await
        .ok();
    assert_eq!(brackets["brackets"][0]["initialLeverage"], 125);
    let coin = sim.signed_get("/dapi/v2/leverageBracket", "").await.ok();
    assert!(coin[0]["brackets"][0]["qtyCap"].is_u64());
}

#[tokio::test]
async fn futures_conditional_orders_go_through_the_algo_service() {
    let sim = Sim::quiet().await;
    for (family, symbol) in [("/fapi/v1", "BTCUSDT"), ("/dapi/v1", "BTCUSD_PERP")] {
        sim.signed(
            "POST",
            &format!("{family}/order"),
            &format!("symbol={symbol}&side=SELL&type=STOP_MARKET&quantity=1&stopPrice=50000"),
        )
        .await
        .err(400, -4120);
        let placed = sim
            .signed(
                "POST",
                &format!("{family}/algoOrder"),
                &format!(
                    "algoType=CONDITIONAL&symbol={symbol}&side=BUY&type=TAKE_PROFIT&quantity=2&price=51000&triggerPrice=51500&clientAlgoId=tp1"
                ),
            )
            .await
            .ok();
        assert_eq!(placed["algoType"], "CONDITIONAL", "{family}");
        assert_eq!(placed["algoStatus"], "NEW");
        let id = placed["algoId"].as_u64().unwrap();
        let got = sim
            .signed_get(&format!("{family}/algoOrder"), "clientAlgoId=tp1")
            .await
            .ok();
        assert_eq!(got["algoId"], id);
        assert_eq!(
            got["triggerPrice"]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .unwrap(),
            51500.0
        );
        let open = sim
            .signed_get(&format!("{family}/openOrders"), &format!("symbol={symbol}"))
            .await
            .ok();
        assert!(
            open.as_array()
                .unwrap()
                .iter()
                .all(|o| o["type"] == "LIMIT"),
            "{family}/openOrders lists no conditional order: {open}"
        );
        let cancelled = sim
            .signed(
                "DELETE",
                &format!("{family}/algoOrder"),
                &format!("algoId={id}"),
            )
            .await
            .ok();
        assert_eq!(cancelled["algoId"], id);
        sim.signed(
            "DELETE",
            &format!("{family}/algoOrder"),
            &format!("algoId={id}"),
        )
        .await
        .err(400, -2011);
        sim.signed_get(&format!("{family}/algoOrder"), "algoId=1")
            .await
            .err(400, -2013);
    }
}

#[tokio::test]
async fn coinm_orders_trades_and_wallet() {
    let sim = Sim::quiet().await;
    let open = sim.signed_get("/dapi/v1/openOrders", "").await.ok();
    assert_eq!(
        open.as_array().unwrap().len(),
        1,
        "the COIN-M stop lives in the algo book"
    );
    fields(&open[0], &["cumBase", "pair", "positionSide"]);
    sim.signed("DELETE", "/dapi/v1/allOpenOrders", "symbol=BTCUSD_PERP")
        .await
        .ok();
    assert_eq!(sim.server.state_summary().open_on(Market::Coinm), 0);
    // allOpenOrders leaves the conditional order; algoOpenOrders cancels it.
    assert_eq!(
        sim.server.state_summary().open_coinm_algo_orders["BTCUSD_PERP"],
        1
    );
    let algo = sim.signed_get("/dapi/v1/openAlgoOrders", "").await.ok();
    assert_eq!(algo.as_array().unwrap().len(), 1);
    assert_eq!(algo[0]["orderType"], "STOP_MARKET");
    assert_eq!(algo[0]["symbol"], "BTCUSD_PERP");
    sim.signed("DELETE", "/dapi/v1/algoOpenOrders", "symbol=BTCUSD_PERP")
        .await
        .ok();
    assert_eq!(sim.server.state_summary().total_open(), 6);
    let trades = sim
        .signed_get("/dapi/v1/userTrades", "symbol=BTCUSD_PERP")
        .await
        .ok();
    fields(
        &trades[0],
        &["buyer", "maker", "pair", "marginAsset", "baseQty"],
    );
    let by_pair = sim.signed_get("/dapi/v1/userTrades", "pair=BTCUSD").await;
    assert_eq!(
        by_pair.header("x-mbx-used-weight-1m").as_deref(),
        Some("142")
    ); // openOrders 40 + cancel 1 + openAlgoOrders 40 + algo cancel 1 + symbol 20 + pair 40
    assert_eq!(by_pair.ok().as_array().unwrap().len(), 1);
    assert_eq!(
        sim.signed_get("/dapi/v1/balance", "").await.ok()[0]["asset"],
        "BTC"
    );
    fields(
        &sim.signed_get("/dapi/v1/account", "").await.ok(),
        &["assets", "positions", "canTrade"],
    );
    let coin_risk = sim.signed_get("/dapi/v1/positionRisk", "").await.ok();
    for p in coin_risk.as_array().unwrap() {
        exactly(
            p,
            &[
                "symbol",
                "positionAmt",
                "entryPrice",
                "breakEvenPrice",
                "markPrice",
                "unRealizedProfit",
                "liquidationPrice",
                "leverage",
                "maxQty",
                "marginType",
                "isolatedMargin",
                "isAutoAddMargin",
                "positionSide",
                "notionalValue",
                "isolatedWallet",
                "updateTime",
            ],
        );
    }
}

/// The object has exactly these fields: Binance's documented shape, nothing missing and
/// nothing of another version's.
#[track_caller]
fn exactly(v: &Value, names: &[&str]) {
    let mut have: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = names.to_vec();
    have.sort_unstable();
    want.sort_unstable();
    assert_eq!(have, want, "{v}");
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let sim = Sim::quiet().await;
    assert_eq!(sim.get("/api/v3/nothing", "").await.status, 404);
    assert_eq!(sim.get("/elsewhere", "").await.status, 404);
    assert_eq!(
        sim.send("PUT", "/api/v3/order", "", None, None)
            .await
            .status,
        405
    );
}

/// Futures income (no symbol needed) in Binance's shapes: `/fapi` with a numeric
/// `tranId`, `/dapi` with a string one; trades make COMMISSION and REALIZED_PNL rows
/// with their symbol, transfers TRANSFER rows with an empty one.
#[tokio::test]
async fn futures_income_names_the_symbols_traded() {
    let sim = Sim::quiet().await;
    let day = 86_400_000;
    let now = now_ms();
    let rows = sim
        .signed_get(
            "/fapi/v1/income",
            &format!("startTime={}&endTime={now}&limit=1000", now - 5 * day),
        )
        .await
        .ok();
    let rows = rows.as_array().unwrap();
    for r in rows {
        exactly(
            r,
            &[
                "symbol",
                "incomeType",
                "income",
                "asset",
                "info",
                "time",
                "tranId",
                "tradeId",
            ],
        );
        assert!(r["tranId"].is_u64(), "/fapi tranId is a number: {r}");
        assert!(is_decimal_string(&r["income"]) && r["tradeId"].is_string());
    }
    let kinds = |symbol: &str| -> Vec<&str> {
        rows.iter()
            .filter(|r| r["symbol"] == symbol)
            .map(|r| r["incomeType"].as_str().unwrap())
            .collect()
    };
    // BTCUSDT -4d: commission only; ETHUSDT -3d: commission and realised PnL (1.2).
    assert_eq!(kinds("BTCUSDT"), ["COMMISSION"]);
    assert_eq!(kinds("ETHUSDT"), ["COMMISSION", "REALIZED_PNL"]);
    let pnl = rows
        .iter()
        .find(|r| r["incomeType"] == "REALIZED_PNL")
        .unwrap();
    assert_eq!(pnl["income"], "1.20000000");
    assert_eq!(pnl["asset"], "USDT");
    assert!(
        rows.iter()
            .any(|r| r["incomeType"] == "COMMISSION"
                && r["income"].as_str().unwrap().starts_with('-'))
    );
    // The MAIN_UMFUTURE transfer: no symbol, no trade.
    let transfer = rows.iter().find(|r| r["incomeType"] == "TRANSFER").unwrap();
    assert_eq!(transfer["symbol"], "");
    assert_eq!(transfer["tradeId"], "");
    assert_eq!(transfer["income"], "1000.00000000");
    let times: Vec<i64> = rows.iter().map(|r| r["time"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");

    // startTime + limit: the first rows from startTime on.
    let first = sim
        .signed_get(
            "/fapi/v1/income",
            &format!("startTime={}&limit=1", now - 5 * day),
        )
        .await
        .ok();
    assert_eq!(first.as_array().unwrap().len(), 1);
    assert_eq!(first[0], rows[0]);
    // Neither time: the last 7 days only; a symbol and a type filter.
    let pnl_only = sim
        .signed_get("/fapi/v1/income", "incomeType=REALIZED_PNL")
        .await
        .ok();
    assert_eq!(pnl_only.as_array().unwrap().len(), 1);
    let btc = sim
        .signed_get("/fapi/v1/income", "symbol=BTCUSDT")
        .await
        .ok();
    assert!(btc
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["symbol"] == "BTCUSDT"));
    sim.signed_get("/fapi/v1/income", "symbol=NOPEUSDT")
        .await
        .err(400, -1121);

    let coin = sim
        .signed_get(
            "/dapi/v1/income",
            &format!("startTime={}&endTime={now}", now - 5 * day),
        )
        .await
        .ok();
    let coin = coin.as_array().unwrap();
    let perp = coin
        .iter()
        .find(|r| r["symbol"] == "BTCUSD_PERP")
        .expect("the COIN-M trade's commission");
    assert!(
        perp["tranId"].is_string(),
        "/dapi tranId is a string: {perp}"
    );
    assert_eq!(perp["incomeType"], "COMMISSION");
    // /dapi: at most 200 days between startTime and endTime.
    sim.signed_get(
        "/dapi/v1/income",
        &format!("startTime={}&endTime={now}", now - 201 * day),
    )
    .await
    .err(400, -1127);
    // A key without futures may not read it.
    let spot_only = sim.server.create_responder_key();
    sim.signed_as(&spot_only, "GET", "/fapi/v1/income", "")
        .await
        .err(401, -2015);
}

/// `listed_spot_symbols`: the rest of the exchange's listing, some delisted (BREAK), none
/// with the account's history; a symbol's `status` is what exchangeInfo says.
#[tokio::test]
async fn exchange_info_lists_every_status() {
    let sim = Sim::quiet().await;
    let info = sim.get("/api/v3/exchangeInfo", "").await.ok();
    let symbols = info["symbols"].as_array().unwrap();
    assert!(symbols.len() > 150, "{}", symbols.len());
    let status = |s: &str| -> usize { symbols.iter().filter(|x| x["status"] == s).count() };
    assert_eq!(status("BREAK"), 15);
    assert_eq!(status("TRADING") + status("BREAK"), symbols.len());
    let delisted = symbols.iter().find(|s| s["status"] == "BREAK").unwrap();
    assert_eq!(delisted["isSpotTradingAllowed"], false);
    let name = delisted["symbol"].as_str().unwrap();
    let none = sim
        .signed_get("/api/v3/myTrades", &format!("symbol={name}"))
        .await
        .ok();
    assert_eq!(
        none,
        serde_json::json!([]),
        "a listed symbol without history"
    );

    let text = respond::sim::BUILTIN_LEAKED_KEY.replacen(
        "symbols:\n",
        "symbols:\n  - { market: spot, symbol: OLDBTC, base: OLD, quote: BTC, price: \"0.001\", status: HALT }\n",
        1,
    );
    let scenario = respond::sim::Scenario::parse(&text, "t.yaml").unwrap();
    let sim = Sim::start(respond::sim::SimConfig::new(scenario)).await;
    let one = sim.get("/api/v3/exchangeInfo", "symbol=OLDBTC").await.ok();
    assert_eq!(one["symbols"][0]["status"], "HALT");
    let bad = respond::sim::BUILTIN_LEAKED_KEY.replacen(
        "symbols:\n",
        "symbols:\n  - { market: spot, symbol: OLDBTC, base: OLD, quote: BTC, price: \"0.001\", status: GONE }\n",
        1,
    );
    let err = respond::sim::Scenario::parse(&bad, "t.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t.yaml:") && err.contains("status must be one of TRADING, BREAK"),
        "{err}"
    );
}

/// One port answers HTTP/1.1 and cleartext HTTP/2 ("prior knowledge") alike: the same
/// bytes, the same weight headers, whichever the client speaks.
#[tokio::test]
async fn one_port_answers_http1_and_http2_with_the_same_bytes() {
    let mut sim = Sim::quiet().await;
    let mut answers = Vec::new();
    for (http, version) in [
        (client(), reqwest::Version::HTTP_11),
        (http2_client(), reqwest::Version::HTTP_2),
    ] {
        let query = format!("symbol=BTCUSDT&timestamp={}", now_ms());
        let signature = sign(&sim.key.secret, &query);
        let res = http
            .get(sim.url(
                "/api/v3/openOrders",
                &format!("{query}&signature={signature}"),
            ))
            .header("X-MBX-APIKEY", &sim.key.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.version(), version);
        assert_eq!(res.status(), 200);
        assert!(res.headers().contains_key("x-mbx-used-weight-1m"));
        answers.push(res.text().await.unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].contains("\"orderId\""), "{}", answers[0]);
    // A mutation over HTTP/2 is served like any other request.
    sim.http = http2_client();
    sim.signed("DELETE", "/api/v3/openOrders", "symbol=BTCUSDT")
        .await
        .ok();
    let left = sim
        .signed_get("/api/v3/openOrders", "symbol=BTCUSDT")
        .await
        .ok();
    assert_eq!(left.as_array().map(Vec::len), Some(0));
}

/// A containment burst on one HTTP/2 connection is answered in one round trip: the
/// simulator takes far more streams at once than the 260 cancels of a 200-symbol account
/// (hyper's default, 200, would hold the rest back a whole round trip).
#[tokio::test]
async fn three_hundred_requests_on_one_http2_connection_take_one_round_trip() {
    let mut config = respond::sim::SimConfig::builtin();
    config.faults.latency = Duration::from_millis(400);
    let sim = Sim::start(config).await;
    let http = http2_client();
    let url = sim.url("/api/v3/time", "");
    let started = std::time::Instant::now();
    let answers = futures_util::future::join_all((0..300).map(|_| http.get(&url).send())).await;
    let elapsed = started.elapsed();
    for res in answers {
        let res = res.unwrap();
        assert_eq!(
            (res.version(), res.status().as_u16()),
            (reqwest::Version::HTTP_2, 200)
        );
    }
    // One round trip is 400 ms; a second wave would take the burst past 800.
    assert!(elapsed < Duration::from_millis(750), "took {elapsed:?}");
}

fn http2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}
