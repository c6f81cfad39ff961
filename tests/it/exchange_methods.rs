//! Every typed method against a loopback mock that checks each request the way Binance
//! would (signature recomputed over the query as received, key header, parameter
//! layout) and answers with documented shapes; then the normalised results.
use crate::exchange_common;

use std::sync::{Arc, Mutex};

use exchange_common::*;
use respond::exchange::{Client, ErrorKind, Market, Pull, TimeWindow};
use rust_decimal::Decimal;
use serde_json::json;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const PUBLIC: &[&str] = &[
    "/ping",
    "/time",
    "/exchangeInfo",
    "/ticker/price",
    "/klines",
];

/// Answers like Binance for the paths below; notes any request it would reject.
struct FakeBinance {
    problems: Arc<Mutex<Vec<String>>>,
}

fn body_for(method: &str, path: &str) -> serde_json::Value {
    let spot_order = json!({"symbol":"BTCUSDT","orderId":11,"clientOrderId":"abc","price":"0.10","origQty":"2.5","executedQty":"0","status":"NEW","type":"LIMIT","side":"SELL","time":1700000000000u64,"updateTime":1700000000001u64});
    let futures_order = json!({"symbol":"BTCUSDT","orderId":22,"clientOrderId":"f1","price":"30000","origQty":"0.01","executedQty":"0","cumQuote":"0","status":"NEW","type":"LIMIT","side":"BUY","positionSide":"BOTH","stopPrice":"0","time":1700000000000u64,"updateTime":1700000000000u64});
    match (method, path) {
        (_, "/api/v3/time") | (_, "/fapi/v1/time") | (_, "/dapi/v1/time") => {
            json!({"serverTime": chrono::Utc::now().timestamp_millis()})
        }
        (_, p) if p.ends_with("/ping") => json!({}),
        (_, "/api/v3/exchangeInfo") => json!({"timezone":"UTC","serverTime":1700000000000u64,
            "rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000}],
            "symbols":[{"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT"}]}),
        (_, "/fapi/v1/exchangeInfo") => {
            json!({"rateLimits":[],"symbols":[{"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","contractType":"PERPETUAL","marginAsset":"USDT"}]})
        }
        (_, "/dapi/v1/exchangeInfo") => {
            json!({"rateLimits":[],"symbols":[{"symbol":"BTCUSD_PERP","pair":"BTCUSD","contractStatus":"TRADING","baseAsset":"BTC","quoteAsset":"USD","contractType":"PERPETUAL","marginAsset":"BTC","contractSize":100}]})
        }
        (_, "/api/v3/ticker/price") => {
            json!([{"symbol":"BTCUSDT","price":"30000.01"},{"symbol":"XYZBTC","price":"0.00000123"}])
        }
        (_, "/api/v3/klines") => json!([[
            1700000040000u64,
            "1.0",
            "1.5",
            "0.9",
            "1.2",
            "100.5",
            1700000099999u64,
            "120.6",
            10,
            "50",
            "60",
            "0"
        ]]),
        (_, "/api/v3/account") => {
            json!({"makerCommission":10,"canTrade":true,"canWithdraw":true,"canDeposit":true,"accountType":"SPOT","permissions":["SPOT","MARGIN"],"balances":[{"asset":"BTC","free":"0.5","locked":"0.1"}],"uid":123})
        }
        (_, "/sapi/v1/account/apiRestrictions") => {
            json!({"ipRestrict":false,"createTime":1623840271000u64,"enableReading":true,"enableWithdrawals":true,"enableInternalTransfer":true,"enableMargin":false,"enableFutures":true,"permitsUniversalTransfer":true,"enableVanillaOptions":false,"enableFixApiTrade":false,"enableFixReadOnly":true,"enableSpotAndMarginTrading":true,"enablePortfolioMarginTrading":false,"tradingAuthorityExpirationTime":1800000000000u64,"enableSomethingNew":true})
        }
        (_, "/sapi/v1/account/status") => json!({"data":"Normal"}),
        (_, "/sapi/v1/margin/account") => {
            json!({"borrowEnabled":true,"marginLevel":"11.6","totalAssetOfBtc":"6.8","totalLiabilityOfBtc":"0.5","totalNetAssetOfBtc":"6.3","tradeEnabled":true,"transferEnabled":true,"userAssets":[{"asset":"BTC","borrowed":"0.5","free":"1","interest":"0.001","locked":"0","netAsset":"0.499"},{"asset":"ETH","borrowed":"0","free":"1","interest":"0","locked":"0","netAsset":"1"}]})
        }
        (_, "/fapi/v2/balance") => {
            json!([{"accountAlias":"x","asset":"USDT","balance":"100.5","crossWalletBalance":"100.5","crossUnPnl":"0","availableBalance":"90","maxWithdrawAmount":"90","marginAvailable":true,"updateTime":1700000000000u64}])
        }
        (_, "/dapi/v1/balance") => {
            json!([{"accountAlias":"x","asset":"BTC","balance":"0.1","withdrawAvailable":"0.1","crossWalletBalance":"0.1","crossUnPnl":"0","availableBalance":"0.1","updateTime":0}])
        }
        // v3's documented shape: no leverage or marginType.
        (_, "/fapi/v3/positionRisk") => {
            json!([{"symbol":"BTCUSDT","positionSide":"BOTH","positionAmt":"-0.5","entryPrice":"30000","breakEvenPrice":"30010","markPrice":"31000","unRealizedProfit":"-500","liquidationPrice":"40000","isolatedMargin":"0","notional":"-15500","marginAsset":"USDT","isolatedWallet":"0","initialMargin":"775","maintMargin":"62","positionInitialMargin":"775","openOrderInitialMargin":"0","adl":2,"bidNotional":"0","askNotional":"0","updateTime":1700000000000u64}])
        }
        (_, "/dapi/v1/positionRisk") => {
            json!([{"symbol":"BTCUSD_PERP","positionAmt":"-5","entryPrice":"30000","breakEvenPrice":"30000","markPrice":"31000","unRealizedProfit":"-0.00005376","liquidationPrice":"0","leverage":"20","maxQty":"1000","marginType":"cross","isolatedMargin":"0","isAutoAddMargin":"false","positionSide":"BOTH","notionalValue":"-0.01612903","isolatedWallet":"0","updateTime":1700000000000u64}])
        }
        ("GET", "/api/v3/openOrders") | ("GET", "/sapi/v1/margin/openOrders") => {
            json!([spot_order])
        }
        ("GET", "/fapi/v1/openOrders") | ("GET", "/dapi/v1/openOrders") => json!([futures_order]),
        ("GET", "/dapi/v1/openAlgoOrders") => {
            json!([{"algoId":3100042,"clientAlgoId":"cm1","algoType":"CONDITIONAL","orderType":"TAKE_PROFIT","symbol":"BTCUSD_PERP","side":"BUY","positionSide":"BOTH","timeInForce":"GTC","quantity":"3","algoStatus":"NEW","triggerPrice":"52000","price":"51900","createTime":1700000000000u64,"updateTime":1700000000000u64}])
        }
        ("GET", "/fapi/v1/openAlgoOrders") => {
            json!([{"algoId":2146760,"clientAlgoId":"6B2I","algoType":"CONDITIONAL","orderType":"STOP_MARKET","symbol":"BTCUSDT","side":"SELL","positionSide":"BOTH","timeInForce":"GTC","quantity":"0.01","algoStatus":"NEW","triggerPrice":"25000","price":"0","createTime":1700000000000u64,"updateTime":1700000000000u64}])
        }
        ("DELETE", "/api/v3/openOrders") | ("DELETE", "/sapi/v1/margin/openOrders") => json!([
            {"symbol":"BTCUSDT","origClientOrderId":"abc","orderId":11,"orderListId":-1,"clientOrderId":"cancel1","transactTime":1700000000500u64,"price":"0.10","origQty":"2.5","executedQty":"0","status":"CANCELED","timeInForce":"GTC","type":"LIMIT","side":"SELL"},
            {"orderListId":5,"contingencyType":"OCO","listStatusType":"ALL_DONE","symbol":"BTCUSDT","orders":[{"symbol":"BTCUSDT","orderId":12,"clientOrderId":"l1"}],
             "orderReports":[{"symbol":"BTCUSDT","origClientOrderId":"l1","orderId":12,"orderListId":5,"clientOrderId":"c2","transactTime":1700000000500u64,"price":"1","origQty":"1","executedQty":"0","status":"CANCELED","type":"STOP_LOSS_LIMIT","side":"SELL","stopPrice":"0.9"}]}]),
        ("DELETE", _) => {
            json!({"code":200,"msg":"The operation of cancel all open order is done."})
        }
        (_, "/api/v3/allOrders") => json!([spot_order]),
        (_, "/api/v3/myTrades") => {
            json!([{"symbol":"BTCUSDT","id":28457,"orderId":100234,"orderListId":-1,"price":"4.00000100","qty":"12.00000000","quoteQty":"48.000012","commission":"10.10000000","commissionAsset":"BNB","time":1700000000000u64,"isBuyer":true,"isMaker":false,"isBestMatch":true}])
        }
        (_, "/fapi/v1/userTrades") => {
            json!([{"buyer":false,"commission":"-0.07819010","commissionAsset":"USDT","id":698759,"maker":true,"orderId":25851813,"price":"7819.01","qty":"0.002","quoteQty":"15.63802","realizedPnl":"-0.91539999","side":"SELL","positionSide":"SHORT","symbol":"BTCUSDT","time":1700000000000u64}])
        }
        (_, "/sapi/v1/capital/withdraw/history") => {
            json!([{"id":"b6ae22b3aa844210a7041aee7589627c","amount":"8.91000000","transactionFee":"0.004","coin":"USDT","status":6,"address":"0x94df8b352de7f46f64b01d3666bf6e936e44ce60","txId":"0xb5ef8c13b968a406cc62a93a8bd80f9e9a906ef1b3fcf20a2e48573c17659268","applyTime":"2019-10-12 11:12:02","network":"ETH","transferType":0,"withdrawOrderId":"WITHDRAWtest123","info":"The address is not valid.","confirmNo":3,"walletType":1,"txKey":"","completeTime":"2023-03-23 16:52:41"}])
        }
        (_, "/sapi/v1/capital/deposit/hisrec") => {
            json!([{"id":"769800519366885376","amount":"0.001","coin":"BNB","network":"BNB","status":1,"address":"bnb136ns6lfw4zs5hg4n85vdthaad7hq5m4gtkgf23","addressTag":"101764890","txId":"98A3EA560C6B3336D348B6C83F0F95ECE4F1F5919E94BD006E5BF3BF264FACFC","insertTime":1661493146000u64,"transferType":0,"confirmTimes":"1/1","unlockConfirm":0,"walletType":0}])
        }
        (_, "/sapi/v1/asset/transfer") => {
            json!({"total":1,"rows":[{"asset":"USDT","amount":"1","type":"MAIN_UMFUTURE","status":"CONFIRMED","tranId":11415955596u64,"timestamp":1544433328000u64}]})
        }
        (_, "/sapi/v1/pay/transactions") => {
            json!({"code":"000000","message":"success","data":[{"orderType":"C2C","transactionId":"M_P_71505104267788288","transactionTime":1610090460133u64,"amount":"23.72469206","currency":"BNB","walletType":1,"fundsDetail":[{"currency":"USDT","amount":"1.2"}],"payerInfo":{"name":"someone","type":"USER","binanceId":"1"},"receiverInfo":{"name":"other","type":"USER","binanceId":"2"}}],"success":true})
        }
        (_, "/sapi/v1/sub-account/sub/transfer/history") => {
            json!([{"from":"aaa@test.com","to":"bbb@test.com","asset":"BTC","qty":"10","status":"SUCCESS","tranId":6489943656u64,"time":1544433328000u64}])
        }
        _ => json!({"code":-1,"msg":"unexpected path in test"}),
    }
}

impl Respond for FakeBinance {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let path = req.url.path().to_string();
        let public = PUBLIC.iter().any(|p| path.ends_with(p));
        if public {
            if req.headers.contains_key("x-mbx-apikey") || raw_query(req).contains("signature") {
                self.problems
                    .lock()
                    .unwrap()
                    .push(format!("{path}: public request carried credentials"));
            }
        } else if let Err(e) = verify_signed(req) {
            self.problems.lock().unwrap().push(format!("{path}: {e}"));
            return error_body(400, -1022, "Signature for this request is not valid.");
        }
        ResponseTemplate::new(200)
            .insert_header("X-MBX-USED-WEIGHT-1M", "7")
            .set_body_json(body_for(req.method.as_str(), &path))
    }
}

async fn setup() -> (MockServer, Client, Arc<Mutex<Vec<String>>>) {
    let server = MockServer::start().await;
    let problems = Arc::new(Mutex::new(Vec::new()));
    Mock::given(wiremock::matchers::any())
        .respond_with(FakeBinance {
            problems: problems.clone(),
        })
        .mount(&server)
        .await;
    let client = Client::new(config(&server)).unwrap();
    (server, client, problems)
}

/// (method, path, parameter names in order) of every request after the clock sync.
async fn requests(server: &MockServer) -> Vec<(String, String, Vec<String>)> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() != "/api/v3/time")
        .map(|r| {
            (
                r.method.to_string(),
                r.url.path().to_string(),
                param_names(r),
            )
        })
        .collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const SIGNED: [&str; 3] = ["recvWindow", "timestamp", "signature"];

fn signed(list: &[&str]) -> Vec<String> {
    let mut v = names(list);
    v.extend(names(&SIGNED));
    v
}

#[tokio::test]
async fn market_data_is_public_and_normalised() {
    let (server, client, problems) = setup().await;
    client.ping(Market::Spot).await.unwrap();
    client.ping(Market::CoinM).await.unwrap();
    let t = client.server_time(Market::UsdM).await.unwrap();
    assert!((chrono::Utc::now() - t).num_seconds().abs() < 5);
    let spot = client.exchange_info(Market::Spot).await.unwrap();
    assert_eq!(spot.symbols[0].base_asset, "BTC");
    assert_eq!(spot.rate_limits[0].limit, 6000);
    let usdm = client.exchange_info(Market::UsdM).await.unwrap();
    assert_eq!(usdm.symbols[0].contract_type.as_deref(), Some("PERPETUAL"));
    let coinm = client.exchange_info(Market::CoinM).await.unwrap();
    assert_eq!(
        coinm.symbols[0].status, "TRADING",
        "contractStatus read as status"
    );
    let prices = client.ticker_prices(Market::Spot).await.unwrap();
    assert_eq!(prices[1].price, "0.00000123".parse::<Decimal>().unwrap());
    let k = client
        .kline_minute(Market::Spot, "XYZBTC", 1_700_000_075_123)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (k.open_time, k.high),
        (1_700_000_040_000, "1.5".parse().unwrap())
    );

    let reqs = requests(&server).await;
    assert_eq!(reqs[0], ("GET".into(), "/api/v3/ping".into(), vec![]));
    assert_eq!(reqs[1].1, "/dapi/v1/ping");
    assert_eq!(reqs[2].1, "/fapi/v1/time");
    let kline = reqs.iter().find(|r| r.1 == "/api/v3/klines").unwrap();
    assert_eq!(
        kline.2,
        names(&["symbol", "interval", "startTime", "endTime", "limit"])
    );
    let kreq = &server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path() == "/api/v3/klines")
        .unwrap();
    assert_eq!(param(kreq, "startTime").as_deref(), Some("1700000040000"));
    assert_eq!(param(kreq, "endTime").as_deref(), Some("1700000099999"));
    assert!(
        problems.lock().unwrap().is_empty(),
        "{:?}",
        problems.lock().unwrap()
    );
}

#[tokio::test]
async fn account_reads_are_signed_and_complete() {
    let (server, client, problems) = setup().await;
    let account = client.account().await.unwrap();
    assert!(account.can_trade && account.can_withdraw);
    assert_eq!(account.permissions, vec!["SPOT", "MARGIN"]);
    assert_eq!(account.balances[0].locked, "0.1".parse().unwrap());
    let r = client.api_restrictions().await.unwrap();
    assert!(r.enable_withdrawals && !r.ip_restrict);
    assert_eq!(r.create_time, Some(1_623_840_271_000));
    assert_eq!(r.trading_authority_expiration_time, Some(1_800_000_000_000));
    assert_eq!(r.other.get("enableSomethingNew"), Some(&json!(true)));
    assert_eq!(client.account_status().await.unwrap(), "Normal");
    let margin = client.margin_account().await.unwrap();
    assert_eq!(
        margin
            .borrowed()
            .map(|a| a.asset.as_str())
            .collect::<Vec<_>>(),
        ["BTC"]
    );
    let fb = client.futures_balances(Market::UsdM).await.unwrap();
    assert_eq!(
        (fb[0].market, fb[0].balance),
        (Market::UsdM, "100.5".parse().unwrap())
    );
    let cb = client.futures_balances(Market::CoinM).await.unwrap();
    assert_eq!(cb[0].market, Market::CoinM);
    let pos = client.position_risk(Market::UsdM).await.unwrap();
    assert!(pos[0].is_open());
    assert_eq!(pos[0].un_realized_profit, Some("-500".parse().unwrap()));
    assert_eq!(pos[0].notional, Some("-15500".parse().unwrap()));
    assert_eq!(pos[0].leverage, None, "v3 has no leverage");
    let coin = client.position_risk(Market::CoinM).await.unwrap();
    assert_eq!(coin[0].market, Market::CoinM);
    assert_eq!(coin[0].position_amt, "-5".parse().unwrap());
    assert_eq!(coin[0].notional_value, Some("-0.01612903".parse().unwrap()));
    let err = client.position_risk(Market::Spot).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);

    let paths: Vec<_> = requests(&server).await;
    let expected = [
        "/api/v3/account",
        "/sapi/v1/account/apiRestrictions",
        "/sapi/v1/account/status",
        "/sapi/v1/margin/account",
        "/fapi/v2/balance",
        "/dapi/v1/balance",
        "/fapi/v3/positionRisk",
        "/dapi/v1/positionRisk",
    ];
    assert_eq!(
        paths.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        expected
    );
    for r in &paths {
        assert_eq!(r.2, signed(&[]), "{}", r.1);
    }
    assert!(
        problems.lock().unwrap().is_empty(),
        "{:?}",
        problems.lock().unwrap()
    );
}

#[tokio::test]
async fn open_orders_and_cancel_all_per_market() {
    let (server, client, problems) = setup().await;
    let spot = client
        .open_orders(Market::Spot, Some("BTCUSDT"))
        .await
        .unwrap();
    assert_eq!(spot[0].order_id, 11);
    assert_eq!(spot[0].orig_qty, "2.5".parse().unwrap());
    assert!(!spot[0].is_algo);
    client.open_orders(Market::Margin, None).await.unwrap();
    let usdm = client.open_orders(Market::UsdM, None).await.unwrap();
    assert_eq!(usdm.len(), 2, "regular and algo orders");
    let algo = usdm.iter().find(|o| o.is_algo).unwrap();
    assert_eq!(
        (algo.order_id, algo.order_type.as_str()),
        (2_146_760, "STOP_MARKET")
    );
    assert_eq!(algo.stop_price, Some("25000".parse().unwrap()));
    assert_eq!(usdm.iter().find(|o| !o.is_algo).unwrap().stop_price, None);
    let coinm = client
        .open_orders(Market::CoinM, Some("BTCUSD_PERP"))
        .await
        .unwrap();
    assert_eq!(coinm.len(), 2, "COIN-M regular and algo orders");
    let algo = coinm.iter().find(|o| o.is_algo).unwrap();
    assert_eq!(
        (algo.market, algo.order_id, algo.order_type.as_str()),
        (Market::CoinM, 3_100_042, "TAKE_PROFIT")
    );
    assert_eq!(algo.stop_price, Some("52000".parse().unwrap()));

    let c = client
        .cancel_all_open_orders(Market::Spot, "BTCUSDT")
        .await
        .unwrap();
    assert_eq!(
        c.cancelled
            .iter()
            .map(|o| (o.order_id, o.client_order_id.as_str()))
            .collect::<Vec<_>>(),
        [(11, "abc"), (12, "l1")],
        "orders and the orders of an order list, with their original client ids"
    );
    assert_eq!(c.cancelled[0].time, 1_700_000_000_500);
    assert!(!c.nothing_to_cancel);
    client
        .cancel_all_open_orders(Market::Margin, "BTCUSDT")
        .await
        .unwrap();
    let f = client
        .cancel_all_open_orders(Market::UsdM, "BTCUSDT")
        .await
        .unwrap();
    assert!(f.cancelled.is_empty() && !f.nothing_to_cancel);
    client
        .cancel_all_open_orders(Market::CoinM, "BTCUSD_PERP")
        .await
        .unwrap();

    let mut reqs = requests(&server).await;
    // The two futures requests of each call run concurrently: compare as sets.
    reqs.sort();
    let mut expected = vec![
        ("GET", "/api/v3/openOrders", signed(&["symbol"])),
        ("GET", "/sapi/v1/margin/openOrders", signed(&[])),
        ("GET", "/fapi/v1/openOrders", signed(&[])),
        ("GET", "/fapi/v1/openAlgoOrders", signed(&[])),
        ("GET", "/dapi/v1/openOrders", signed(&["symbol"])),
        ("GET", "/dapi/v1/openAlgoOrders", signed(&["symbol"])),
        ("DELETE", "/api/v3/openOrders", signed(&["symbol"])),
        ("DELETE", "/sapi/v1/margin/openOrders", signed(&["symbol"])),
        ("DELETE", "/fapi/v1/allOpenOrders", signed(&["symbol"])),
        ("DELETE", "/fapi/v1/algoOpenOrders", signed(&["symbol"])),
        ("DELETE", "/dapi/v1/allOpenOrders", signed(&["symbol"])),
        ("DELETE", "/dapi/v1/algoOpenOrders", signed(&["symbol"])),
    ]
    .into_iter()
    .map(|(m, p, n)| (m.to_string(), p.to_string(), n))
    .collect::<Vec<_>>();
    expected.sort();
    assert_eq!(reqs, expected);
    assert!(
        problems.lock().unwrap().is_empty(),
        "{:?}",
        problems.lock().unwrap()
    );
}

#[tokio::test]
async fn history_pulls_use_allowed_windows_and_normalise() {
    let (server, client, problems) = setup().await;
    let day = 86_400_000;
    let window = TimeWindow::new(1_699_990_000_000, 1_699_990_000_000 + 3 * day);
    let windows = Pull::Trades(Market::Spot).windows(window);
    assert_eq!(windows.len(), 4);
    let trades = client
        .my_trades_window(Market::Spot, "BTCUSDT", windows[0])
        .await
        .unwrap();
    assert_eq!(trades.len(), 1);
    assert!(trades[0].is_buyer && !trades[0].is_maker);
    assert_eq!(trades[0].quote_qty, Some("48.000012".parse().unwrap()));
    let too_long = client
        .my_trades_window(Market::Spot, "BTCUSDT", window)
        .await
        .unwrap_err();
    assert_eq!(too_long.kind(), ErrorKind::InvalidRequest);
    let futures = client
        .my_trades(Market::UsdM, "BTCUSDT", window)
        .await
        .unwrap();
    assert_eq!(futures.len(), 1, "one 7-day window");
    assert!(
        !futures[0].is_buyer && futures[0].is_maker,
        "buyer/maker normalised"
    );
    assert_eq!(
        futures[0].realized_pnl,
        Some("-0.91539999".parse().unwrap())
    );
    let first = client
        .first_trade(Market::Spot, "BTCUSDT")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.id, 28457);
    client
        .order_history_window(Market::Spot, "BTCUSDT", windows[1])
        .await
        .unwrap();

    let w = client.withdrawals(window).await.unwrap();
    assert_eq!((w[0].status, w[0].amount), (6, "8.91".parse().unwrap()));
    let d = client.deposits_window(window).await.unwrap();
    assert_eq!(d[0].insert_time, 1_661_493_146_000);
    let t = client
        .universal_transfers("MAIN_UMFUTURE", window)
        .await
        .unwrap();
    assert_eq!(t[0].transfer_type, "MAIN_UMFUTURE");
    let p = client.pay_transactions_window(window).await.unwrap();
    assert_eq!(p[0].payer_info["name"], "someone");
    let s = client.sub_account_transfers(window).await.unwrap();
    assert_eq!(s[0].qty, "10".parse().unwrap());

    let reqs = requests(&server).await;
    let by_path = |p: &str| {
        reqs.iter()
            .filter(|r| r.1 == p)
            .map(|r| r.2.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        by_path("/api/v3/myTrades"),
        vec![
            signed(&["symbol", "startTime", "endTime", "limit"]),
            signed(&["symbol", "fromId", "limit"]),
        ]
    );
    assert_eq!(
        by_path("/fapi/v1/userTrades"),
        vec![signed(&["symbol", "startTime", "endTime", "limit"])]
    );
    assert_eq!(
        by_path("/api/v3/allOrders"),
        vec![signed(&["symbol", "startTime", "endTime", "limit"])]
    );
    assert_eq!(
        by_path("/sapi/v1/capital/withdraw/history"),
        vec![signed(&["startTime", "endTime", "offset", "limit"])]
    );
    assert_eq!(
        by_path("/sapi/v1/capital/deposit/hisrec"),
        vec![signed(&["startTime", "endTime", "offset", "limit"])]
    );
    assert_eq!(
        by_path("/sapi/v1/asset/transfer"),
        vec![signed(&["type", "startTime", "endTime", "current", "size"])]
    );
    assert_eq!(
        by_path("/sapi/v1/pay/transactions"),
        vec![signed(&["startTime", "endTime", "limit"])]
    );
    assert_eq!(
        by_path("/sapi/v1/sub-account/sub/transfer/history"),
        vec![signed(&["startTime", "endTime", "page", "limit"])]
    );
    let all = server.received_requests().await.unwrap();
    let first_trade = all
        .iter()
        .find(|r| raw_query(r).starts_with("symbol=BTCUSDT&fromId=0&limit=1&"))
        .unwrap();
    assert_eq!(first_trade.url.path(), "/api/v3/myTrades");
    assert!(
        problems.lock().unwrap().is_empty(),
        "{:?}",
        problems.lock().unwrap()
    );
}

/// Testnet has no /sapi: those methods fail typed, and nothing is sent.
#[tokio::test]
async fn sapi_on_testnet_is_refused_without_sending() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.endpoints.sapi = None;
    let client = Client::new(config).unwrap();
    let window = TimeWindow::new(0, 1000);
    let errors = [
        client.api_restrictions().await.unwrap_err(),
        client.account_status().await.unwrap_err(),
        client.margin_account().await.unwrap_err(),
        client.withdrawals_window(window).await.unwrap_err(),
        client.deposits_window(window).await.unwrap_err(),
        client.pay_transactions_window(window).await.unwrap_err(),
        client.sub_account_transfers(window).await.unwrap_err(),
        client.open_orders(Market::Margin, None).await.unwrap_err(),
    ];
    for e in errors {
        assert_eq!(e.kind(), ErrorKind::NotOnTestnet, "{e}");
    }
    assert!(respond::exchange::Endpoints::testnet().sapi.is_none());
}

/// Action code spawns these on many tasks: every method's future must be `Send`, and
/// the client `Send + Sync + Clone`.
#[test]
fn futures_are_send_and_the_client_is_shareable() {
    fn send<T: Send>(_: T) {}
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Client>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let client = Client::new(respond::exchange::ClientConfig::new(
        respond::exchange::Endpoints::single("http://127.0.0.1:9"),
    ))
    .unwrap();
    let w = TimeWindow::new(0, 1);
    let m = Market::UsdM;
    send(client.ping(m));
    send(client.server_time(m));
    send(client.sync_time());
    send(client.exchange_info(m));
    send(client.ticker_prices(m));
    send(client.kline_minute(m, "X", 0));
    send(client.account());
    send(client.api_restrictions());
    send(client.account_status());
    send(client.margin_account());
    send(client.futures_balances(m));
    send(client.position_risk(m));
    send(client.open_orders(m, None));
    send(client.open_algo_orders(m, None));
    send(client.cancel_all_open_orders(m, "X"));
    send(client.order_history_window(m, "X", w));
    send(client.order_history(m, "X", w));
    send(client.my_trades_window(m, "X", w));
    send(client.my_trades(m, "X", w));
    send(client.first_trade(m, "X"));
    send(client.withdrawals_window(w));
    send(client.withdrawals(w));
    send(client.deposits_window(w));
    send(client.deposits(w));
    send(client.universal_transfers("MAIN_UMFUTURE", w));
    send(client.pay_transactions_window(w));
    send(client.pay_transactions(w));
    send(client.sub_account_transfers(w));
}

/// A full page (1000) is followed by `fromId` pages until past the window's end;
/// trades after the end are dropped.
#[tokio::test]
async fn trade_pages_are_followed_to_the_end_of_the_window() {
    use wiremock::matchers::{path, query_param, query_param_is_missing};
    let server = MockServer::start().await;
    mount_time(&server, 0).await;
    let trade = |id: i64, time: i64| {
        json!({"symbol":"BTCUSDT","id":id,"orderId":1,"price":"1","qty":"1","quoteQty":"1",
               "commission":"0","commissionAsset":"BNB","time":time,"isBuyer":false,"isMaker":true})
    };
    let first: Vec<_> = (1..=1000).map(|id| trade(id, 10_000 + id)).collect();
    Mock::given(path("/api/v3/myTrades"))
        .and(query_param_is_missing("fromId"))
        .respond_with(ResponseTemplate::new(200).set_body_json(first))
        .expect(1)
        .mount(&server)
        .await;
    let second = vec![
        trade(1001, 19_000),
        trade(1002, 20_000),
        trade(1003, 20_001),
    ];
    Mock::given(path("/api/v3/myTrades"))
        .and(query_param("fromId", "1001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(second))
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::new(config(&server)).unwrap();
    let trades = client
        .my_trades_window(Market::Spot, "BTCUSDT", TimeWindow::new(10_000, 20_000))
        .await
        .unwrap();
    assert_eq!(
        trades.len(),
        1002,
        "the trade after the window's end is dropped"
    );
    assert_eq!(trades.last().unwrap().id, 1002);
    assert!(trades
        .iter()
        .all(|t| t.is_maker && t.market == Market::Spot));
}
