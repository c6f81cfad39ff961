//! Pacing: the client stays under the weight limit instead of discovering it by a 429,
//! and urgent requests do not wait behind evidence pulls.
use crate::exchange_common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exchange_common::*;
use respond::exchange::{Client, Market};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Counts weight per fixed window like Binance and answers 429 past `limit`.
struct Limiter {
    limit: u32,
    window: Duration,
    state: Mutex<(Instant, u32)>,
    served: AtomicU32,
    rejected: AtomicU32,
}

impl Respond for Limiter {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let weight = match req.url.path() {
            "/api/v3/klines" => 2,
            _ => 1,
        };
        let mut state = self.state.lock().unwrap();
        let now = Instant::now();
        // Fixed windows aligned to the limiter's start, as Binance aligns to the minute.
        let elapsed = now.duration_since(state.0);
        if elapsed >= self.window {
            let windows = elapsed.as_nanos() / self.window.as_nanos();
            state.0 += self.window * windows as u32;
            state.1 = 0;
        }
        if state.1 + weight > self.limit {
            self.rejected.fetch_add(1, Ordering::SeqCst);
            return error_body(429, -1003, "Too much request weight used.")
                .insert_header("Retry-After", "1")
                .insert_header("X-MBX-USED-WEIGHT-1M", state.1.to_string().as_str());
        }
        state.1 += weight;
        self.served.fetch_add(1, Ordering::SeqCst);
        let body = if req.url.path() == "/api/v3/ping" {
            serde_json::json!({})
        } else {
            serde_json::json!([])
        };
        ResponseTemplate::new(200)
            .insert_header("X-MBX-USED-WEIGHT-1M", state.1.to_string().as_str())
            .set_body_json(body)
    }
}

async fn limited_server(limit: u32, window: Duration) -> (MockServer, Arc<Limiter>) {
    let server = MockServer::start().await;
    let limiter = Arc::new(Limiter {
        limit,
        window,
        state: Mutex::new((Instant::now(), 0)),
        served: AtomicU32::new(0),
        rejected: AtomicU32::new(0),
    });
    struct Shared(Arc<Limiter>);
    impl Respond for Shared {
        fn respond(&self, req: &Request) -> ResponseTemplate {
            self.0.respond(req)
        }
    }
    Mock::given(wiremock::matchers::any())
        .respond_with(Shared(limiter.clone()))
        .mount(&server)
        .await;
    (server, limiter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_requests_never_hit_the_limit() {
    let window = Duration::from_secs(1);
    let limit = 300;
    let (server, limiter) = limited_server(limit, window).await;
    let mut config = config(&server);
    config.weight_limit = Some(limit);
    config.weight_window = window;
    config.concurrency = 16;
    let client = Client::new(config).unwrap();

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..500 {
        let client = client.clone();
        tasks.spawn(async move {
            if i % 5 == 0 {
                client.ping(Market::Spot).await // urgent, weight 1
            } else {
                // normal, weight 2
                client
                    .kline_minute(Market::Spot, "BTCUSDT", 1_700_000_000_000)
                    .await
                    .map(|_| ())
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    let elapsed = started.elapsed();
    assert_eq!(
        limiter.rejected.load(Ordering::SeqCst),
        0,
        "no 429 reached the server"
    );
    assert_eq!(limiter.served.load(Ordering::SeqCst), 500);
    // 900 weight at 300 per second cannot take less than two full windows.
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
}

#[tokio::test]
async fn urgent_requests_use_the_headroom_while_normal_ones_wait() {
    let window = Duration::from_secs(2);
    let (server, limiter) = limited_server(100, window).await;
    let mut config = config(&server);
    config.weight_limit = Some(100);
    config.weight_window = window;
    config.concurrency = 1;
    let client = Client::new(config).unwrap();
    // 40 klines of weight 2 fill the 80% normal requests may use.
    for _ in 0..40 {
        client
            .kline_minute(Market::Spot, "BTCUSDT", 0)
            .await
            .unwrap();
    }
    let waiting = tokio::spawn({
        let client = client.clone();
        async move {
            let t = Instant::now();
            client
                .kline_minute(Market::Spot, "BTCUSDT", 0)
                .await
                .unwrap();
            t.elapsed()
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Instant::now();
    for _ in 0..10 {
        client.ping(Market::Spot).await.unwrap();
    }
    let urgent = t.elapsed();
    assert!(
        urgent < Duration::from_millis(500),
        "urgent requests waited {urgent:?}"
    );
    assert!(
        !waiting.is_finished(),
        "the normal request is still held back"
    );
    let normal = waiting.await.unwrap();
    assert!(normal >= Duration::from_millis(1500), "{normal:?}");
    assert_eq!(limiter.rejected.load(Ordering::SeqCst), 0);
}
