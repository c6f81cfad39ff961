//! One liveness probe round of the leaked key (the spot account and the key's
//! permissions, at once) and what this run saw of the key before it. Used by
//! `binance.verify_revoked` and by the engine when a read is refused mid-run.
use crate::exchange::{Client, ExchangeError, Rejection};
use crate::report::verdict::{Probe, Seen};

use super::step::StepContext;

pub fn classify(result: &Result<(), ExchangeError>) -> Probe {
    let Err(e) = result else {
        return Probe::Accepted;
    };
    match e.rejection() {
        Some(Rejection::NotFound) => Probe::NotFound,
        Some(r @ (Rejection::Refused | Rejection::BadKeyFormat)) => Probe::Refused(r.code()),
        _ => match e.code() {
            Some(c) => Probe::Inconclusive(format!("code {c}")),
            None => Probe::Inconclusive(e.to_string()),
        },
    }
}

/// One round: the spot account (/api) and the key's permissions (/sapi), at once; each
/// answer with the path it came from.
pub async fn probe_round(client: &Client) -> Vec<(&'static str, Probe)> {
    let (api, sapi) = tokio::join!(client.account(), client.api_restrictions());
    let mut out = vec![("/api/v3/account", classify(&api.map(|_| ())))];
    match sapi {
        // Testnets have no /sapi: one family is all there is.
        Err(ExchangeError::NotOnTestnet { .. }) => {}
        other => out.push((
            "/sapi/v1/account/apiRestrictions",
            classify(&other.map(|_| ())),
        )),
    }
    out
}

/// Journal one round: the answers with their classes, and the round's verdict.
/// What triage saw of the key, per endpoint.
pub fn seen_at_triage(ctx: &StepContext) -> Seen {
    let outputs = ctx
        .run
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .outputs_by_action
        .get("binance.key_permissions")
        .cloned();
    Seen::from_triage(outputs.as_ref())
}
