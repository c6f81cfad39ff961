//! The client's sub-account methods against loopback mocks: the key list read whatever
//! its undocumented wrapper (`list`, `rows`, a bare array) and whether Binance shows keys
//! in full or masked; every refusal a non-master key gets becomes NotApplicable with
//! Binance's words; the DELETE names the key to Binance and masks it in request lines.
use crate::exchange_common;

use exchange_common::*;
use respond::exchange::{Client, ErrorKind};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PATH: &str = "/sapi/v1/sub-account/subAccountApi";

async fn server_answering(m: &str, p: &str, answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    mount_time(&server, 0).await;
    Mock::given(method(m))
        .and(path(p))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn key_lists_in_any_wrapper_full_or_masked() {
    let full = json!({"apiName":"bot","apiKey":KEY,"canTrade":true,"status":2,"ipList":["1.2.3.4"],"createTime":1700000000000u64});
    let masked = json!({"apiName":"other","apiKey":"abcd****wxyz","canTrade":"false","status":"1","createTime":"1700000001000"});
    for body in [
        json!({ "list": [full.clone(), masked.clone()] }),
        json!({ "rows": [full.clone(), masked.clone()] }),
        json!([full.clone(), masked.clone()]),
    ] {
        let server =
            server_answering("GET", PATH, ResponseTemplate::new(200).set_body_json(body)).await;
        let client = Client::new(config(&server)).unwrap();
        let keys = client.sub_account_api_keys("a@b.example").await.unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys[0].is_full() && client.signs_with(&keys[0].api_key));
        assert_eq!(keys[0].ip_restriction(), "1.2.3.4");
        assert_eq!(keys[0].permissions(), ["reading", "spot & margin trading"]);
        assert!(!keys[1].is_full());
        assert_eq!(keys[1].masked(), "abcd****wxyz");
        assert_eq!(keys[1].create_time, Some(1_700_000_001_000));
        assert!(!format!("{keys:?}").contains(KEY), "Debug masks the key");
    }
}

#[tokio::test]
async fn every_refusal_of_a_non_master_key_is_not_applicable() {
    for answer in [
        error_body(
            401,
            -1002,
            "You are not authorized to execute this request.",
        ),
        error_body(400, -9000, "Unsupported operation"),
        ResponseTemplate::new(200).set_body_json(
            json!({"success": false, "msg": "Sub-account function is not enabled."}),
        ),
    ] {
        let server = server_answering("GET", "/sapi/v1/sub-account/list", answer).await;
        let client = Client::new(config(&server)).unwrap();
        let err = client.sub_accounts().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotApplicable, "{err}");
        assert!(
            err.to_string().contains("not a master account's key"),
            "{err}"
        );
    }
    // A rejected key stays a credential rejection, not "not a master".
    let server = server_answering(
        "GET",
        "/sapi/v1/sub-account/list",
        error_body(
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        ),
    )
    .await;
    let err = Client::new(config(&server))
        .unwrap()
        .sub_accounts()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CredentialsRejected, "{err}");
}

#[tokio::test]
async fn the_delete_names_the_key_and_request_lines_mask_it() {
    let server = server_answering(
        "DELETE",
        PATH,
        ResponseTemplate::new(200).set_body_json(json!({})),
    )
    .await;
    let recorder = Recorder::new();
    let mut config = config(&server);
    config.observer = Some(recorder.clone());
    let client = Client::new(config).unwrap();
    let target = "Q".repeat(64);
    client
        .delete_sub_account_api_key("mm-bot@desk.example", &target)
        .await
        .unwrap();
    let sent = server.received_requests().await.unwrap();
    let delete = sent.iter().find(|r| r.method.as_str() == "DELETE").unwrap();
    assert_eq!(
        param(delete, "subAccountApiKey").as_deref(),
        Some(target.as_str())
    );
    assert_eq!(
        param(delete, "email").as_deref(),
        Some("mm-bot@desk.example")
    );
    verify_signed(delete).unwrap();
    let line = recorder
        .all()
        .into_iter()
        .find(|s| s.method.as_str() == "DELETE")
        .unwrap()
        .query_without_signature;
    assert!(line.contains("subAccountApiKey=QQQQ…QQQQ"), "{line}");
    assert!(line.contains("email=m***%40desk.example"), "{line}");
    assert!(!line.contains(&target));
}
