//! The `/sim/` control API, kept apart from every Binance path: state dump, request log,
//! key deletion (with the drill's wrong-key semantics), responder keys, and faults.
//! Nothing here ever returns a scenario key's secret; only a responder key's own creation
//! answer carries its secret.
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::log::Actor;
use super::server::Shared;
use super::state::ResponderKind;

const ROUTES: [&str; 7] = [
    "GET /sim/state",
    "GET /sim/requests[?actor=client|attacker|control]",
    "POST /sim/keys/delete?key=LABEL_OR_API_KEY[&drill=true]",
    "POST /sim/keys/responder",
    "GET /sim/faults",
    "POST /sim/faults?NAME=VALUE[&NAME=VALUE...]",
    "DELETE /sim/faults",
];

fn error(status: StatusCode, message: impl Into<String>) -> (StatusCode, Value) {
    (status, json!({ "error": message.into() }))
}

pub(super) fn handle(
    shared: &Shared,
    method: &Method,
    path: &str,
    raw_query: &str,
) -> (StatusCode, Value) {
    let query: Vec<(String, String)> = form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match (method.as_str(), path.trim_end_matches('/')) {
        ("GET", "/sim/state") => {
            let summary = shared.state().summary();
            let mut v = serde_json::to_value(&summary).expect("summary serialises");
            v["server_time"] = json!(shared.now_ms());
            (StatusCode::OK, v)
        }
        ("GET", "/sim/requests") => requests(shared, get("actor")),
        ("POST", "/sim/keys/delete") => {
            let Some(key) = get("key").filter(|k| !k.is_empty()) else {
                return error(StatusCode::BAD_REQUEST, "missing ?key=LABEL_OR_API_KEY");
            };
            let as_drill = get("drill").is_some_and(|d| d == "true" || d == "1");
            match shared.state().delete_key(key, as_drill) {
                Ok(deleted) => (StatusCode::OK, json!(deleted)),
                Err(e) => error(StatusCode::NOT_FOUND, e.to_string()),
            }
        }
        ("POST", "/sim/keys/responder") => responder(shared, get("kind")),
        ("GET", "/sim/faults") => (StatusCode::OK, json!(shared.faults())),
        ("POST", "/sim/faults") => {
            let mut faults = shared.faults();
            for (name, value) in &query {
                if let Err(e) = faults.set(name, value) {
                    return error(StatusCode::BAD_REQUEST, e);
                }
            }
            shared.set_faults(faults.clone());
            (StatusCode::OK, json!(faults))
        }
        ("DELETE", "/sim/faults") => {
            shared.set_faults(shared.initial_faults.clone());
            (StatusCode::OK, json!(shared.initial_faults))
        }
        _ => (
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no control route {method} {path}"), "routes": ROUTES }),
        ),
    }
}

/// `GET /sim/requests[?actor=client|attacker|control]`: the request log.
fn requests(shared: &Shared, actor: Option<&str>) -> (StatusCode, Value) {
    let actor = match actor {
        None => None,
        Some("client") => Some(Actor::Client),
        Some("attacker") => Some(Actor::Attacker),
        Some("control") => Some(Actor::Control),
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown actor {other:?} (client, attacker or control)"),
            )
        }
    };
    let entries: Vec<_> = shared
        .log
        .snapshot()
        .into_iter()
        .filter(|e| actor.is_none_or(|a| e.actor == a))
        .collect();
    (StatusCode::OK, json!(entries))
}

/// `POST /sim/keys/responder?kind=...`: a responder key for a drill.
fn responder(shared: &Shared, kind: Option<&str>) -> (StatusCode, Value) {
    let seed = shared.new_seed();
    let now = shared.now_ms();
    let (kind, permissions) = match kind.unwrap_or("read-only") {
        "read-only" => (ResponderKind::ReadOnly, json!(["reading"])),
        "master" => (ResponderKind::MasterTrading, json!(["reading", "spot"])),
        "same-account" => (ResponderKind::SameAccountReadOnly, json!(["reading"])),
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown kind {other:?} (read-only, master or same-account)"),
            )
        }
    };
    let pair = shared.state().create_responder_on(seed, now, kind);
    (
        StatusCode::OK,
        json!({
            "label": pair.label,
            "api_key": pair.api_key,
            "secret": pair.secret,
            "permissions": permissions,
        }),
    )
}
