//! Drills: the simulated exchange started in-process for one run, its scenario key as
//! the leaked key, a responder key it creates (reading, futures included), and the manual steps it
//! carries out when the operator (or the autopilot) confirms them.
use std::path::Path;
use std::sync::Arc;

use crate::engine::config::RunConfig;
use crate::error::Error;
use crate::secret::{mask, Credentials};
use crate::sim::{Scenario, SimConfig, SimServer};

/// A running drill simulator; stops when dropped (at the end of the run).
pub struct Drill {
    pub url: String,
    pub leaked: Credentials,
    /// Created only for playbooks that may need it (see `start`).
    pub responder: Option<Credentials>,
    leaked_api_key: String,
    server: SimServer,
}

/// Start the simulator. `with_responder`: create a responder key in it too (reading, and
/// futures so that it may read them: [`crate::sim::ResponderKind::for_drill`]) —
/// only playbooks that can lose the leaked key mid-run need one, and a read-only run
/// (`audit`) must leave the simulated account exactly as it found it.
pub async fn start(
    scenario: Option<&Path>,
    cfg: &RunConfig,
    with_responder: bool,
) -> Result<Arc<Drill>, Error> {
    let scenario = match scenario {
        Some(path) => Scenario::load(path).map_err(crate::sim_command::into_error)?,
        None => Scenario::builtin_leaked_key(),
    };
    let wrong_secret = scenario.drill_wrong_secret;
    let responder_kind = crate::sim::ResponderKind::for_drill(&scenario);
    let mut config = SimConfig::new(scenario);
    config.weight_window = cfg.weight_window;
    for fault in &cfg.sim_faults {
        config
            .faults
            .apply(fault)
            .map_err(|e| Error::usage(format!("--sim-fault: {e}")))?;
    }
    config.request_log = cfg.sim_request_log.clone();
    let server = SimServer::start_apart(config)
        .await
        .map_err(crate::sim_command::into_error)?;
    let leaked = server.leaked_key();
    let responder = with_responder.then(|| {
        let key = server.create_responder_key_of(responder_kind);
        Credentials::new(key.api_key.clone(), key.secret.clone())
    });
    // An Ed25519 or RSA scenario key reaches respond as its private key, the way an
    // HMAC key's secret does.
    let leaked_credentials = match server.leaked_private_key().map(zeroize::Zeroizing::new) {
        Some(pem) => Credentials::from_private_key_pem(leaked.api_key.clone(), &pem).map_err(|e| {
            Error::usage(format!(
                "the scenario's leaked key {}: private_key: {e}",
                leaked.masked()
            ))
        })?,
        None if leaked.secret.is_empty() => {
            return Err(Error::usage(format!(
                "the scenario's leaked key {} has a public_key but no private_key: a drill needs the private key to act as it",
                leaked.masked()
            )))
        }
        // `drill: { secret: wrong }`: the operator pasted a secret that is not this key's.
        None if wrong_secret => Credentials::new(
            leaked.api_key.clone(),
            leaked.secret.chars().rev().collect::<String>(),
        ),
        None => Credentials::new(leaked.api_key.clone(), leaked.secret.clone()),
    };
    Ok(Arc::new(Drill {
        url: server.url().to_string(),
        leaked: leaked_credentials,
        responder,
        leaked_api_key: leaked.api_key.clone(),
        server,
    }))
}

impl crate::engine::DrillControl for Drill {
    fn carry_out<'a>(
        &'a self,
        effect: &'a str,
    ) -> crate::engine::step::BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            match effect {
                "delete-leaked-key" => {
                    let deleted = self
                        .server
                        .drill_delete_key(&self.leaked_api_key)
                        .map_err(|e| e.to_string())?;
                    if deleted.wrong_key {
                        // The scenario's classic mistake: verify_revoked must catch it.
                        Ok(format!(
                            "deleted key \"{}\" ({}) — which is NOT the leaked key",
                            deleted.label,
                            mask(&deleted.api_key)
                        ))
                    } else {
                        Ok(format!(
                            "deleted key \"{}\" ({})",
                            deleted.label,
                            mask(&deleted.api_key)
                        ))
                    }
                }
                other => Err(format!(
                    "the simulator does not know the drill effect `{other}`"
                )),
            }
        })
    }

    fn final_state(&self) -> serde_json::Value {
        let state = self.server.state_summary();
        let open: serde_json::Map<String, serde_json::Value> = state
            .open_orders
            .iter()
            .map(|(market, symbols)| {
                (
                    market.to_string(),
                    serde_json::json!(symbols.values().sum::<usize>()),
                )
            })
            .collect();
        // The futures conditional (algo) books, counted apart: `openOrders` does not
        // hold them on Binance either.
        let algo = |book: &std::collections::BTreeMap<String, usize>| book.values().sum::<usize>();
        serde_json::json!({
            "openOrders": open,
            "openAlgoOrders": {
                "usdm": algo(&state.open_algo_orders),
                "coinm": algo(&state.open_coinm_algo_orders),
            },
            "totalOpen": state.total_open(),
            "leakedKeyDeleted": state.keys.iter().any(|k| k.leaked && k.deleted),
            "otherKeysDeleted": state.keys.iter().filter(|k| !k.leaked && k.deleted).count(),
        })
    }
}
