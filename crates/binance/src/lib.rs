//! Binance client: signing, server time, weight pacing, retries, typed errors and one
//! typed method per endpoint the playbooks use. Shares no code with the simulator (`respond-sim`).
//!
//! Every request goes through one function (`Client::execute` in `client.rs`): it
//! refuses mutations in a dry run, paces against the family's weight budget, signs,
//! sends, maps the answer to a typed error in `error.rs`, tells the observer, and
//! decides whether a retry is safe. The typed methods in `api/` only build parameters
//! and normalise answers.
//!
//! Long pulls (trades, orders, withdrawals, deposits, Pay) are split into the windows
//! Binance allows by [`Pull::windows`]; the `*_window` methods fetch one window each
//! (paging inside it), so a caller can run windows concurrently on clones of the
//! client and advance a progress bar per finished window. The whole-range methods
//! (`my_trades`, `withdrawals`, ...) are a serial convenience without progress.

pub(crate) mod api;
mod budget;
mod client;
mod clock;
pub mod credentials;
mod endpoints;
mod error;
mod gate;
mod model;
mod observer;
mod signing;
mod weights;
mod window;

use std::fmt;

pub use api::orders::listing_weight;
pub use client::{Client, ClientConfig, RetryPolicy};
pub use endpoints::Endpoints;
pub use error::{ErrorKind, ExchangeError, Rejection, CREDENTIAL_REJECTION_CODES};
pub use model::*;
pub use observer::{RequestObserver, RequestSummary, Wait, WaitReason};
pub use weights::{published_limit, Pull};
pub use window::TimeWindow;

/// A market whose orders and trades respond reads and cancels.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Market {
    /// Spot, `/api/v3`.
    Spot,
    /// Cross margin, `/sapi/v1/margin` (isolated margin is not covered).
    Margin,
    /// USDⓈ-M futures, `/fapi`.
    UsdM,
    /// COIN-M futures, `/dapi`.
    CoinM,
}

impl Market {
    pub const ALL: [Market; 4] = [Market::Spot, Market::Margin, Market::UsdM, Market::CoinM];

    pub fn as_str(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::Margin => "margin",
            Market::UsdM => "usdm",
            Market::CoinM => "coinm",
        }
    }
}

impl fmt::Display for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Market {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Market::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown market `{s}`; expected spot, margin, usdm or coinm"))
    }
}

/// A path family: each has its own host (in production) and its own rate limits.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// `/api/v3`: spot.
    Api,
    /// `/sapi`: wallet, margin, sub-accounts, Pay. Not on testnet.
    Sapi,
    /// `/fapi`: USDⓈ-M futures.
    Fapi,
    /// `/dapi`: COIN-M futures.
    Dapi,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::Api, Family::Sapi, Family::Fapi, Family::Dapi];

    /// The family a path belongs to, from its first segment.
    pub fn of_path(path: &str) -> Family {
        if path.starts_with("/sapi/") {
            Family::Sapi
        } else if path.starts_with("/fapi/") {
            Family::Fapi
        } else if path.starts_with("/dapi/") {
            Family::Dapi
        } else {
            Family::Api
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Api => "api",
            Family::Sapi => "sapi",
            Family::Fapi => "fapi",
            Family::Dapi => "dapi",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The weight pool this family counts against. Since the COIN-M/USDⓈ-M integration
    /// (effective 2026-06-30) `/fapi` and `/dapi` share one: one IP weight limit counted
    /// in one `X-MBX-USED-WEIGHT-1M`, one order budget, and a 418 on one bans both.
    pub fn pool(self) -> Family {
        match self {
            Family::Dapi => Family::Fapi,
            other => other,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent a request is. The weight budget keeps headroom that only urgent requests
/// may use, so a cancel never waits behind a trade-history page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Cancels, and the probes that say whether the key is alive.
    Urgent,
    /// Evidence pulls and market data.
    Normal,
}

/// The HTTP methods respond uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Delete,
    Post,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Post => "POST",
        }
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Method and path of a request, without host or query: how errors and journals name
/// what was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Endpoint {
    pub method: HttpMethod,
    pub path: &'static str,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}
