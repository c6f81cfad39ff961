//! Safety properties: a dry run sends nothing that mutates, and no secret, signature or
//! full API key appears in any Debug output, error string or request summary.
use crate::exchange_common;

use exchange_common::*;
use respond::exchange::{Client, ErrorKind, Market};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn dry_run_refuses_every_mutation_and_sends_nothing() {
    let server = MockServer::start().await;
    mount_time(&server, 0).await;
    Mock::given(method("GET"))
        .and(path("/api/v3/openOrders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&server)
        .await;
    for m in ["DELETE", "POST", "PUT"] {
        Mock::given(method(m))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
            .expect(0)
            .named(format!("any {m}"))
            .mount(&server)
            .await;
    }
    let recorder = Recorder::new();
    let mut config = config(&server);
    config.dry_run = true;
    config.observer = Some(recorder.clone());
    let client = Client::new(config).unwrap();
    assert!(client.is_dry_run());

    // Reads still work in a dry run: the preview needs them.
    client.open_orders(Market::Spot, None).await.unwrap();
    for market in Market::ALL {
        let err = client
            .clone()
            .cancel_all_open_orders(market, "BTCUSDT")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DryRunRefused, "{market}: {err}");
        assert!(err.to_string().contains("nothing was sent"), "{err}");
        assert_eq!(err.endpoint().unwrap().method.as_str(), "DELETE");
    }
    // Deleting a sub-account's key with the master key: refused the same way.
    let err = client
        .delete_sub_account_api_key("sub@example.com", &"K".repeat(64))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DryRunRefused, "{err}");
    assert_eq!(
        err.endpoint().unwrap().path,
        "/sapi/v1/sub-account/subAccountApi"
    );
    server.verify().await;
    let mutating = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() != "GET")
        .count();
    assert_eq!(mutating, 0);
    assert!(recorder.all().iter().all(|s| s.method.as_str() == "GET"));
}

/// Every text the client can produce about a request, for a key and secret, plus every
/// signature the server received.
#[tokio::test]
async fn no_secret_signature_or_full_key_in_any_output() {
    let server = MockServer::start().await;
    mount_time(&server, 0).await;
    // A hostile or broken server that echoes everything back.
    let echo = format!("key {KEY} secret {SECRET}");
    Mock::given(path("/api/v3/account"))
        .respond_with(move |req: &wiremock::Request| {
            error_body(401, -2015, &format!("{echo} query {}", raw_query(req)))
        })
        .mount(&server)
        .await;
    Mock::given(path("/api/v3/openOrders"))
        .respond_with(move |req: &wiremock::Request| {
            ResponseTemplate::new(200)
                .set_body_string(format!("garbage {KEY} {SECRET} {}", raw_query(req)))
        })
        .mount(&server)
        .await;
    Mock::given(path("/sapi/v1/account/status"))
        .respond_with(
            ResponseTemplate::new(503).set_body_string(format!("<html>{KEY}/{SECRET}</html>")),
        )
        .mount(&server)
        .await;
    let recorder = Recorder::new();
    let mut config = config(&server);
    config.observer = Some(recorder.clone());
    let mut outputs = vec![format!("{config:?}")];
    let client = Client::new(config.clone()).unwrap();
    outputs.push(format!("{client:?}"));
    outputs.push(format!("{:?}", credentials()));

    let errors = [
        client.account().await.unwrap_err(),
        client.open_orders(Market::Spot, None).await.unwrap_err(),
        client.account_status().await.unwrap_err(),
    ];
    assert!(errors[0].is_credential_rejection());
    assert_eq!(errors[1].kind(), ErrorKind::Decode);
    assert!(errors[2].is_server_error());
    // Unreachable: reqwest's own message would name the URL with the signature.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    config.endpoints = respond::exchange::Endpoints::single(format!("http://127.0.0.1:{port}"));
    config.retry.max_attempts = 1;
    let offline = Client::new(config).unwrap();
    // The clock sync happens first and fails unreachable; so does a signed call.
    let unreachable = offline.account().await.unwrap_err();
    assert_eq!(unreachable.kind(), ErrorKind::Unreachable);
    let mut dry = exchange_common::config(&server);
    dry.dry_run = true;
    let refused = Client::new(dry)
        .unwrap()
        .cancel_all_open_orders(Market::Spot, "BTCUSDT")
        .await
        .unwrap_err();
    for e in errors.iter().chain([&unreachable, &refused]) {
        outputs.push(e.to_string());
        outputs.push(format!("{e:?}"));
    }
    for summary in recorder.all() {
        outputs.push(format!("{summary:?}"));
        outputs.push(serde_json::to_string(&summary).unwrap());
    }

    let signatures: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| param(r, "signature"))
        .collect();
    assert!(!signatures.is_empty());
    for text in &outputs {
        assert!(!text.contains(SECRET), "secret in: {text}");
        assert!(!text.contains(KEY), "full key in: {text}");
        for sig in &signatures {
            assert!(!text.contains(sig.as_str()), "signature in: {text}");
        }
    }
    // The key is still recognisable by its mask.
    assert!(errors[0].to_string().contains("vmPU…Eh8A"), "{}", errors[0]);
}
