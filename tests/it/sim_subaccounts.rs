//! The simulator's sub-account endpoints answer like Binance's for a master key, and
//! refuse what Binance refuses: a key that is not a master account's (-1002), key
//! management on an asset-management sub-account, an unknown sub-account, a key that is
//! not (or no longer) on the sub-account, and a master key without trading permission.
use crate::sim_support;

use respond::sim::{ResponderKind, Scenario, SimConfig};
use sim_support::Sim;

const SUB: &str = "mm-bot%40desk.example";
const LEAKED: &str = "xEEsAoCaA2QTqpOoast0vQj8VMtbYo9Mqb5jZMQObDDMOTsoYtxqAYfwFBHPl8Ks";

async fn sim() -> Sim {
    let mut scenario = Scenario::load(std::path::Path::new("subaccount-leak.yaml")).unwrap();
    scenario.attacker = None;
    Sim::start(SimConfig::new(scenario)).await
}

#[tokio::test]
async fn a_master_key_lists_sub_accounts_and_their_keys_and_deletes_one() {
    let sim = sim().await;
    let master = sim
        .server
        .create_responder_key_of(ResponderKind::MasterTrading);
    let list = sim
        .signed_as(&master, "GET", "/sapi/v1/sub-account/list", "")
        .await
        .ok();
    let emails: Vec<&str> = list["subAccounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [
            "mm-bot@desk.example",
            "arb-bot@desk.example",
            "fund-custody@desk.example"
        ]
    );
    assert_eq!(list["subAccounts"][2]["isAssetManagementSubAccount"], true);

    let keys = sim
        .signed_as(
            &master,
            "GET",
            "/sapi/v1/sub-account/subAccountApi",
            &format!("email={SUB}"),
        )
        .await;
    assert_eq!(
        keys.header("x-sapi-used-uid-weight-1m").as_deref(),
        Some("3000")
    );
    let keys = keys.ok();
    let list = keys["list"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{keys}");
    assert_eq!(list[0]["apiKey"], LEAKED);
    assert_eq!(list[2]["status"], 2);
    assert_eq!(list[2]["ipList"][0], "203.0.113.20");
    assert!(list[0]["createTime"].as_i64().unwrap() > 0);

    let deleted = sim
        .signed_as(
            &master,
            "DELETE",
            "/sapi/v1/sub-account/subAccountApi",
            &format!("email={SUB}&subAccountApiKey={LEAKED}"),
        )
        .await
        .ok();
    assert_eq!(deleted, serde_json::json!({}));
    let state = sim.server.state_summary();
    let leaked = state.keys.iter().find(|k| k.leaked).unwrap();
    assert!(leaked.deleted);
    // The deleted key is gone from Binance's answers: -2008 on /sapi.
    sim.signed_get("/sapi/v1/account/apiRestrictions", "")
        .await
        .err(401, -2008);
    // Deleting it again: the key does not exist any more.
    sim.signed_as(
        &master,
        "DELETE",
        "/sapi/v1/sub-account/subAccountApi",
        &format!("email={SUB}&subAccountApiKey={LEAKED}"),
    )
    .await
    .err(400, -2008);
}

#[tokio::test]
async fn every_refusal() {
    let sim = sim().await;
    let master = sim
        .server
        .create_responder_key_of(ResponderKind::MasterTrading);
    // Not a master account's key: the leaked sub-account key itself, and a read-only key
    // on the sub-account.
    sim.signed_get("/sapi/v1/sub-account/list", "")
        .await
        .err(401, -1002);
    let same = sim
        .server
        .create_responder_key_of(ResponderKind::SameAccountReadOnly);
    sim.signed_as(
        &same,
        "GET",
        "/sapi/v1/sub-account/subAccountApi",
        &format!("email={SUB}"),
    )
    .await
    .err(401, -1002);
    sim.signed_as(
        &same,
        "GET",
        "/sapi/v1/sub-account/sub/transfer/history",
        "",
    )
    .await
    .err(401, -1002);
    // Asset-management sub-accounts: no key management.
    sim.signed_as(
        &master,
        "GET",
        "/sapi/v1/sub-account/subAccountApi",
        "email=fund-custody%40desk.example",
    )
    .await
    .err(400, -9000);
    // Unknown sub-account; a key on another sub-account; no email at all.
    sim.signed_as(
        &master,
        "GET",
        "/sapi/v1/sub-account/subAccountApi",
        "email=nobody%40x.example",
    )
    .await
    .err(400, -1102);
    sim.signed_as(
        &master,
        "DELETE",
        "/sapi/v1/sub-account/subAccountApi",
        &format!("email=arb-bot%40desk.example&subAccountApiKey={LEAKED}"),
    )
    .await
    .err(400, -2008);
    sim.signed_as(&master, "GET", "/sapi/v1/sub-account/subAccountApi", "")
        .await
        .err(400, -1102);
    // A read-only master key may list but not delete (the DELETE is TRADE).
    let read_only = sim.server.create_responder_key_of(ResponderKind::ReadOnly);
    sim.signed_as(
        &read_only,
        "GET",
        "/sapi/v1/sub-account/subAccountApi",
        &format!("email={SUB}"),
    )
    .await
    .ok();
    sim.signed_as(
        &read_only,
        "DELETE",
        "/sapi/v1/sub-account/subAccountApi",
        &format!("email={SUB}&subAccountApiKey={LEAKED}"),
    )
    .await
    .err(401, -2015);
    assert!(!sim.server.state_summary().keys.iter().any(|k| k.deleted));
    // Master-side transfer histories, in their shapes.
    let h = sim
        .signed_as(&master, "GET", "/sapi/v1/sub-account/universalTransfer", "")
        .await
        .ok();
    assert_eq!(h["totalCount"], 1);
    assert_eq!(h["result"][0]["fromEmail"], "mm-bot@desk.example");
    assert_eq!(h["result"][0]["amount"], "2.00000000");
    let spot = sim
        .signed_as(
            &master,
            "GET",
            "/sapi/v1/sub-account/sub/transfer/history",
            "",
        )
        .await
        .ok();
    assert_eq!(spot[0]["to"], "mm-bot@desk.example");
    sim.signed_as(
        &master,
        "GET",
        "/sapi/v1/sub-account/futures/internalTransfer",
        &format!("email={SUB}"),
    )
    .await
    .err(400, -1102);
    let f = sim
        .signed_as(
            &master,
            "GET",
            "/sapi/v1/sub-account/futures/internalTransfer",
            &format!("email={SUB}&futuresType=1"),
        )
        .await
        .ok();
    assert_eq!(f["futuresType"], 1);
    assert_eq!(f["transfers"][0]["qty"], "1500.00000000");
}

#[tokio::test]
async fn the_control_api_makes_a_master_responder_key() {
    let sim = sim().await;
    let made = sim
        .send("POST", "/sim/keys/responder", "kind=master", None, None)
        .await
        .ok();
    assert_eq!(made["permissions"], serde_json::json!(["reading", "spot"]));
    let master = respond::sim::KeyPair {
        label: made["label"].as_str().unwrap().into(),
        api_key: made["api_key"].as_str().unwrap().into(),
        secret: made["secret"].as_str().unwrap().into(),
    };
    sim.signed_as(&master, "GET", "/sapi/v1/sub-account/list", "")
        .await
        .ok();
    let bad = sim
        .send("POST", "/sim/keys/responder", "kind=root", None, None)
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
}
