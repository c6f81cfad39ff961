//! Base URLs per path family: production, testnet, or one server for all (the
//! simulator serves `/api`, `/sapi`, `/fapi` and `/dapi` on one port).
use super::Family;

/// Where each family is served. `sapi: None` means the server has no `/sapi` (Binance's
/// testnets): such requests fail with `NotOnTestnet` without being sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub api: String,
    pub sapi: Option<String>,
    pub fapi: String,
    pub dapi: String,
}

impl Endpoints {
    pub fn production() -> Endpoints {
        Endpoints {
            api: "https://api.binance.com".into(),
            sapi: Some("https://api.binance.com".into()),
            fapi: "https://fapi.binance.com".into(),
            dapi: "https://dapi.binance.com".into(),
        }
    }

    /// Spot testnet and futures testnet (separate sites with separate keys); no `/sapi`.
    pub fn testnet() -> Endpoints {
        Endpoints {
            api: "https://testnet.binance.vision".into(),
            sapi: None,
            fapi: "https://testnet.binancefuture.com".into(),
            dapi: "https://testnet.binancefuture.com".into(),
        }
    }

    /// Every family on one server (`--base-url`, the simulator, tests).
    pub fn single(base_url: impl Into<String>) -> Endpoints {
        let url = base_url.into().trim_end_matches('/').to_string();
        Endpoints {
            api: url.clone(),
            sapi: Some(url.clone()),
            fapi: url.clone(),
            dapi: url,
        }
    }

    pub fn base(&self, family: Family) -> Option<&str> {
        match family {
            Family::Api => Some(&self.api),
            Family::Sapi => self.sapi.as_deref(),
            Family::Fapi => Some(&self.fapi),
            Family::Dapi => Some(&self.dapi),
        }
    }

    /// Whether `/sapi` exists here (it does not on Binance's testnets).
    pub fn has_sapi(&self) -> bool {
        self.sapi.is_some()
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &str> {
        [
            Some(self.api.as_str()),
            self.sapi.as_deref(),
            Some(&self.fapi),
            Some(&self.dapi),
        ]
        .into_iter()
        .flatten()
    }
}
