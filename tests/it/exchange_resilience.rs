//! How the client behaves when Binance says no: clock skew (-1021), rate limits (429),
//! IP bans (418), server errors, timeouts, malformed bodies, rejected credentials.
use crate::exchange_common;

use std::time::{Duration, Instant};

use exchange_common::*;
use respond::exchange::{Client, ErrorKind, ExchangeError, Market, Priority, TimeWindow};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ACCOUNT: &str = r#"{"canTrade":true,"canWithdraw":false,"canDeposit":true,"permissions":["SPOT"],"balances":[]}"#;

fn ok_account() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(ACCOUNT, "application/json")
}

/// `/api/v3/account` answers `first` this many times, then the account.
async fn account_answers_after(server: &MockServer, first: ResponseTemplate, times: u64) {
    Mock::given(path("/api/v3/account"))
        .respond_with(first)
        .up_to_n_times(times)
        .mount(server)
        .await;
    Mock::given(path("/api/v3/account"))
        .respond_with(ok_account())
        .mount(server)
        .await;
}

async fn hits(server: &MockServer, p: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == p)
        .count()
}

#[tokio::test]
async fn offset_is_measured_once_and_applied_to_timestamps() {
    let server = MockServer::start().await;
    mount_time(&server, 30_000).await;
    Mock::given(path("/api/v3/account"))
        .respond_with(ok_account())
        .mount(&server)
        .await;
    let client = Client::new(config(&server)).unwrap();
    assert_eq!(client.time_offset_ms(), None);
    client.account().await.unwrap();
    client.account().await.unwrap();
    assert_eq!(
        hits(&server, "/api/v3/time").await,
        1,
        "measured once per run"
    );
    let offset = client.time_offset_ms().unwrap();
    assert!((offset - 30_000).abs() < 1_000, "{offset}");
    assert!((client.server_now() - chrono::Utc::now()).num_milliseconds() > 29_000);
    let reqs = server.received_requests().await.unwrap();
    let account = reqs
        .iter()
        .find(|r| r.url.path() == "/api/v3/account")
        .unwrap();
    let ts: i64 = param(account, "timestamp").unwrap().parse().unwrap();
    let skew = ts - chrono::Utc::now().timestamp_millis();
    assert!(
        (29_000..31_000).contains(&skew),
        "timestamp carries the offset: {skew}"
    );
    assert_eq!(param(account, "recvWindow").as_deref(), Some("5000"));
}

#[tokio::test]
async fn minus_1021_resyncs_the_clock_and_retries_once() {
    let server = MockServer::start().await;
    mount_time(&server, 0).await;
    account_answers_after(
        &server,
        error_body(
            400,
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        ),
        1,
    )
    .await;
    let (config, recorder) = recorded_config(&server);
    let client = Client::new(config).unwrap();
    client.account().await.unwrap();
    assert_eq!(
        hits(&server, "/api/v3/time").await,
        2,
        "measured, then re-measured"
    );
    assert_eq!(hits(&server, "/api/v3/account").await, 2);
    let codes: Vec<_> = recorder
        .all()
        .iter()
        .filter(|s| s.path == "/api/v3/account")
        .map(|s| (s.attempt, s.code))
        .collect();
    assert_eq!(codes, [(1, Some(-1021)), (2, None)]);

    // A second -1021 in a row is returned, not retried again.
    server.reset().await;
    mount_time(&server, 0).await;
    Mock::given(path("/api/v3/account"))
        .respond_with(error_body(
            400,
            -1021,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        ))
        .expect(2)
        .mount(&server)
        .await;
    let err = client.account().await.unwrap_err();
    assert_eq!((err.code(), err.status()), (Some(-1021), Some(400)));
}

#[tokio::test]
async fn rate_limit_429_waits_for_retry_after() {
    let server = MockServer::start().await;
    mount_time(&server, 0).await;
    account_answers_after(
        &server,
        error_body(
            429,
            -1003,
            "Too much request weight used; current limit is 6000 request weight per 1 MINUTE.",
        )
        .insert_header("Retry-After", "1"),
        1,
    )
    .await;
    let client = Client::new(config(&server)).unwrap();
    client.sync_time().await.unwrap();
    let started = Instant::now();
    client.account().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(990),
        "{:?}",
        started.elapsed()
    );
    let times: Vec<_> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/api/v3/account")
        .collect();
    assert_eq!(times.len(), 2);

    // Asked to wait longer than the policy allows: an urgent read (containment) gets it
    // back, typed. (An evidence read waits it out: `client::tests`, `faults.rs`.)
    server.reset().await;
    mount_time(&server, 0).await;
    Mock::given(path("/api/v3/account"))
        .respond_with(
            error_body(429, -1003, "Too many requests.").insert_header("Retry-After", "600"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client.account().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(600)));
}

/// Binance's 418: the IP banned until `until_ms`, retry after `seconds`.
fn banned_until(until_ms: i64, seconds: &str) -> ResponseTemplate {
    error_body(
        418,
        -1003,
        &format!("Way too many requests; IP(127.0.0.1) banned until {until_ms}. Please use the websocket for live updates to avoid bans."),
    )
    .insert_header("Retry-After", seconds)
}

#[tokio::test]
async fn ip_ban_418_stops_the_family_and_says_until_when() {
    let server = MockServer::start().await;
    let until_ms = chrono::Utc::now().timestamp_millis() + 180_000;
    Mock::given(path("/api/v3/ping"))
        .respond_with(banned_until(until_ms, "180"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/v3/time"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(path("/fapi/v1/ping"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::new(config(&server)).unwrap();
    // Urgent requests (containment's) fail at once on a ban, saying until when; an
    // evidence read would wait it out (`client::tests`, `faults.rs`).
    let err = client.ping(Market::Spot).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IpBanned);
    assert_eq!(err.banned_until().unwrap().timestamp_millis(), until_ms);
    let text = err.to_string();
    assert!(text.contains("banned") && text.contains("until"), "{text}");

    // The family is stopped: nothing more is sent to /api, not even by a clone.
    let again = client.clone().server_time(Market::Spot).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::IpBanned);
    assert_eq!(again.banned_until(), err.banned_until());
    // Other families are not.
    client.ping(Market::UsdM).await.unwrap();
}

#[tokio::test]
async fn an_evidence_read_waits_out_a_418_ban_and_is_sent_again() {
    let server = MockServer::start().await;
    let until_ms = chrono::Utc::now().timestamp_millis() + 1_500;
    Mock::given(path("/api/v3/exchangeInfo"))
        .respond_with(banned_until(until_ms, "2"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/v3/exchangeInfo"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"rateLimits": [], "symbols": []})),
        )
        .mount(&server)
        .await;
    let client = Client::new(config(&server)).unwrap();
    client.exchange_info(Market::Spot).await.unwrap();
    let sent: Vec<_> = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 2, "refused once, sent again after the ban");
    assert!(
        chrono::Utc::now().timestamp_millis() >= until_ms,
        "not before the ban ended"
    );
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_when_safe() {
    let server = MockServer::start().await;
    mount_time(&server, 0).await;
    account_answers_after(
        &server,
        ResponseTemplate::new(503).set_body_string("Service Unavailable"),
        2,
    )
    .await;
    let (mut config, recorder) = recorded_config(&server);
    config.retry.base_delay = Duration::from_millis(100);
    let client = Client::new(config).unwrap();
    client.sync_time().await.unwrap();
    let started = Instant::now();
    client.account().await.unwrap();
    // Backoff: at least half of 100 ms, then half of 200 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    let attempts: Vec<_> = recorder
        .all()
        .iter()
        .filter(|s| s.path == "/api/v3/account")
        .map(|s| (s.attempt, s.status))
        .collect();
    assert_eq!(attempts, [(1, Some(503)), (2, Some(503)), (3, Some(200))]);

    // The idempotent cancel-all is retried too.
    Mock::given(method("DELETE"))
        .and(path("/fapi/v1/allOpenOrders"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"code":200,"msg":"done"})),
        )
        .mount(&server)
        .await;
    client
        .cancel_all_open_orders(Market::UsdM, "BTCUSDT")
        .await
        .unwrap();
    assert_eq!(hits(&server, "/fapi/v1/allOpenOrders").await, 2);

    // Past the attempt limit the last error comes back, typed, with its status.
    Mock::given(path("/api/v3/exchangeInfo"))
        .respond_with(ResponseTemplate::new(500).set_body_string("<html>oops</html>"))
        .expect(4)
        .mount(&server)
        .await;
    let err = client.exchange_info(Market::Spot).await.unwrap_err();
    assert!(err.is_server_error(), "{err}");
    assert_eq!((err.status(), err.code()), (Some(500), None));
}

#[tokio::test]
async fn timeouts_are_retried_and_reported_as_unreachable() {
    let server = MockServer::start().await;
    mount_time(&server, 0).await;
    Mock::given(path("/api/v3/openOrders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!([]))
                .set_delay(Duration::from_secs(2)),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/v3/openOrders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&server)
        .await;
    let (mut config, recorder) = recorded_config(&server);
    config.timeout = Duration::from_millis(300);
    let client = Client::new(config).unwrap();
    client.sync_time().await.unwrap();
    let orders = client
        .open_orders(Market::Spot, Some("BTCUSDT"))
        .await
        .unwrap();
    assert!(orders.is_empty());
    let attempts: Vec<_> = recorder
        .all()
        .into_iter()
        .filter(|s| s.path == "/api/v3/openOrders")
        .collect();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].status, None);
    assert!(attempts[0]
        .error
        .as_deref()
        .unwrap()
        .contains("no answer within 0.3s"));
    assert_eq!(attempts[1].priority, Priority::Urgent);

    // Nobody listening at all: unreachable, after the allowed attempts.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = exchange_common::config(&server);
    config.endpoints = respond::exchange::Endpoints::single(format!("http://127.0.0.1:{port}"));
    let err = Client::new(config)
        .unwrap()
        .ping(Market::Spot)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ExchangeError::Unreachable {
                timed_out: false,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_bodies_are_decode_errors() {
    let server = MockServer::start().await;
    mount_time(&server, 0).await;
    Mock::given(path("/api/v3/openOrders"))
        .respond_with(ResponseTemplate::new(200).set_body_string("this is not json"))
        .mount(&server)
        .await;
    Mock::given(path("/api/v3/myTrades"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"unexpected": 1})),
        )
        .mount(&server)
        .await;
    Mock::given(path("/api/v3/ticker/price"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!([{"symbol":"X","price":"abc"}])),
        )
        .mount(&server)
        .await;
    let client = Client::new(config(&server)).unwrap();
    let e = client.open_orders(Market::Spot, None).await.unwrap_err();
    assert_eq!((e.kind(), e.status()), (ErrorKind::Decode, Some(200)));
    assert!(
        e.to_string()
            .starts_with("GET /api/v3/openOrders: cannot read"),
        "{e}"
    );
    let e = client
        .my_trades_window(Market::Spot, "BTCUSDT", TimeWindow::new(0, 1000))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    let e = client.ticker_prices(Market::Spot).await.unwrap_err();
    assert!(e.to_string().contains("`abc` is not a decimal"), "{e}");
    assert_eq!(
        hits(&server, "/api/v3/openOrders").await,
        1,
        "a malformed body is not retried"
    );
}

#[tokio::test]
async fn credential_rejections_are_their_own_kind() {
    let cases = [
        (401, -2008, "Invalid Api-Key ID."),
        (401, -2014, "API-key format invalid."),
        (
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action, request ip: 1.2.3.4",
        ),
        (400, -1022, "Signature for this request is not valid."),
    ];
    for (status, code, msg) in cases {
        let server = MockServer::start().await;
        mount_time(&server, 0).await;
        Mock::given(path("/api/v3/account"))
            .respond_with(error_body(status, code, msg))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/sapi/v1/account/apiRestrictions"))
            .respond_with(error_body(status, code, msg))
            .mount(&server)
            .await;
        let client = Client::new(config(&server)).unwrap();
        let err = client.account().await.unwrap_err();
        assert!(err.is_credential_rejection(), "{code}: {err}");
        assert_eq!(err.credential_code(), Some(code));
        assert_eq!((err.code(), err.status()), (Some(code), Some(status)));
        assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
        let e = err.endpoint().unwrap();
        assert_eq!(e.to_string(), "GET /api/v3/account");
        assert!(err.to_string().contains(msg));
        let sapi = client.api_restrictions().await.unwrap_err();
        assert_eq!(sapi.credential_code(), Some(code));
    }
}

#[tokio::test]
async fn nothing_to_cancel_is_success() {
    let server = MockServer::start().await;
    mount_time(&server, 0).await;
    Mock::given(method("DELETE"))
        .respond_with(error_body(400, -2011, "Unknown order sent."))
        .mount(&server)
        .await;
    let client = Client::new(config(&server)).unwrap();
    for market in Market::ALL {
        let c = client
            .cancel_all_open_orders(market, "BTCUSDT")
            .await
            .unwrap();
        assert!(c.nothing_to_cancel && c.cancelled.is_empty(), "{market}");
    }
}

#[tokio::test]
async fn sub_account_history_skips_cleanly_for_a_non_master_key() {
    let server = MockServer::start().await;
    mount_time(&server, 0).await;
    Mock::given(path("/sapi/v1/sub-account/sub/transfer/history"))
        .respond_with(error_body(
            400,
            -12022,
            "This account is not a master account.",
        ))
        .mount(&server)
        .await;
    let client = Client::new(config(&server)).unwrap();
    let err = client
        .sub_account_transfers(TimeWindow::new(0, 1000))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotApplicable, "{err}");
    assert!(err.to_string().contains("not a master account"), "{err}");
}

#[tokio::test]
async fn observer_sees_each_attempt_without_the_signature() {
    let server = MockServer::start().await;
    mount_time(&server, 0).await;
    Mock::given(path("/api/v3/openOrders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!([]))
                .insert_header("X-MBX-USED-WEIGHT", "12")
                .insert_header("X-MBX-USED-WEIGHT-1M", "13")
                .insert_header("Date", "Fri, 24 Nov 2026 03:15:02 GMT"),
        )
        .mount(&server)
        .await;
    let (config, recorder) = recorded_config(&server);
    let client = Client::new(config).unwrap();
    client
        .open_orders(Market::Spot, Some("BTCUSDT"))
        .await
        .unwrap();
    let all = recorder.all();
    assert_eq!(all.len(), 2, "the clock sync and the request");
    let s = &all[1];
    assert_eq!(s.path, "/api/v3/openOrders");
    assert!(s
        .query_without_signature
        .starts_with("symbol=BTCUSDT&recvWindow=5000&timestamp="));
    assert!(!s.query_without_signature.contains("signature"));
    assert_eq!(
        (s.status, s.code, s.used_weight),
        (Some(200), None, Some(13))
    );
    assert_eq!(s.used_weight_headers.len(), 2);
    assert_eq!(
        s.server_date.as_deref(),
        Some("Fri, 24 Nov 2026 03:15:02 GMT")
    );
    assert_eq!((s.attempt, s.priority), (1, Priority::Urgent));
    let json = serde_json::to_string(s).unwrap();
    assert!(!json.contains(KEY) && !json.contains(SECRET));
}

#[tokio::test]
async fn public_endpoints_need_no_credentials_and_signed_ones_say_so() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/ping"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.credentials = None;
    let client = Client::new(config).unwrap();
    client.ping(Market::Spot).await.unwrap();
    let err = client.account().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoCredentials);
    let received: Vec<Request> = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
}
