//! Drills: the simulated exchange started in-process for one run, its scenario key as
//! the leaked key, a read-only responder key it creates, and the manual steps it
//! carries out when the operator (or the autopilot) confirms them.
use std::path::Path;
use std::sync::Arc;

use crate::config::RunConfig;
use crate::error::Error;
use crate::secret::{mask, Credentials};
use crate::sim::{Scenario, SimConfig, SimError, SimServer};

/// A running drill simulator; stops when dropped (at the end of the run).
pub struct Drill {
    pub url: String,
    pub leaked: Credentials,
    /// Created only for playbooks that may need it (see `start`).
    pub responder: Option<Credentials>,
    leaked_api_key: String,
    server: SimServer,
}

impl Drill {
    pub fn server(&self) -> &SimServer {
        &self.server
    }
}

/// Start the simulator. `with_responder`: create a read-only responder key in it too —
/// only playbooks that can lose the leaked key mid-run need one, and a read-only run
/// (`audit`) must leave the simulated account exactly as it found it.
pub async fn start(
    scenario: Option<&Path>,
    cfg: &RunConfig,
    with_responder: bool,
) -> Result<Arc<Drill>, Error> {
    let scenario = match scenario {
        Some(path) => Scenario::load(path).map_err(SimError::into_error)?,
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
    let server = SimServer::start(config)
        .await
        .map_err(SimError::into_error)?;
    let leaked = server.leaked_key();
    let responder = with_responder.then(|| {
        let key = server.create_responder_key_of(responder_kind);
        Credentials::new(key.api_key.clone(), key.secret.clone())
    });
    // `drill: { secret: wrong }`: the operator pasted a secret that is not this key's.
    let secret = if wrong_secret {
        leaked.secret.chars().rev().collect()
    } else {
        leaked.secret.clone()
    };
    Ok(Arc::new(Drill {
        url: server.url().to_string(),
        leaked: Credentials::new(leaked.api_key.clone(), secret),
        responder,
        leaked_api_key: leaked.api_key.clone(),
        server,
    }))
}

impl super::DrillControl for Drill {
    fn carry_out<'a>(
        &'a self,
        effect: &'a str,
    ) -> crate::actions::BoxFuture<'a, Result<String, String>> {
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
        serde_json::json!({
            "openOrders": open,
            "totalOpen": state.total_open(),
            "leakedKeyDeleted": state.keys.iter().any(|k| k.leaked && k.deleted),
            "otherKeysDeleted": state.keys.iter().filter(|k| !k.leaked && k.deleted).count(),
        })
    }
}
