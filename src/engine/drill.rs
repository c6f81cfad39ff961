//! Drills: the simulated exchange started in-process for one run, its key as the leaked
//! key, a read-only responder key it creates, and the manual steps it carries out.
use std::path::Path;
use std::sync::Arc;

use crate::config::RunConfig;
use crate::error::Error;
use crate::secret::Credentials;

/// A running drill simulator.
pub struct Drill {
    pub url: String,
    pub leaked: Credentials,
    pub responder: Credentials,
}

pub async fn start(_scenario: Option<&Path>, _cfg: &RunConfig) -> Result<Arc<Drill>, Error> {
    Err(Error::NotAvailable { command: "--drill" })
}

impl super::DrillControl for Drill {
    fn carry_out<'a>(
        &'a self,
        effect: &'a str,
    ) -> crate::actions::BoxFuture<'a, Result<String, String>> {
        Box::pin(async move { Err(format!("drill effect `{effect}` is not available")) })
    }
}
