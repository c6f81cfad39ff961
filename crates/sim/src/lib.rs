//! The simulated Binance exchange: one loopback HTTP server that answers the `/api/v3`,
//! `/sapi`, `/fapi` and `/dapi` paths respond (and third-party clients) use, with real
//! HMAC checks, request-weight accounting, state that changes, faults, and a request log.
//!
//! Shares no code with the Binance client (`respond-binance`): the simulator answers from its own reading of
//! Binance's documentation, so a mistake in the client cannot hide behind the same mistake
//! here.
//!
//! Layout: [`scenario`] loads and validates the YAML story, [`state`] holds what the story
//! becomes at run time, [`endpoints`] is the one table of paths, weights and permissions,
//! [`server`] runs the request pipeline (faults, weight, auth, handler, log) and the
//! `/sim/` control API.

mod attacker;
mod auth;
mod control;
mod endpoints;
mod faults;
mod handlers;
mod log;
mod market;
mod params;
mod rate_limit;
pub mod scenario;
mod server;
mod state;
mod types;

pub use faults::Faults;
pub use log::{Actor, LogEntry};
pub use rate_limit::RollingCounter;
pub use scenario::{Scenario, BUILTIN_LEAKED_KEY, BUILTIN_READ_ONLY, BUILTIN_SUBACCOUNT_LEAK};
pub use server::{ShutdownHandle, SimConfig, SimServer};
pub use state::{DeletedKey, KeyPair, KeySummary, ResponderKind, StateSummary};
pub use types::{Family, Market};

use respond_diagnostic::Diagnostics;

/// Everything that can stop the simulator from starting or from doing what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A bad option value (fault spec, window, port).
    #[error("{0}")]
    Usage(String),

    /// The scenario file has problems, each with its position.
    #[error("invalid scenario:\n{0}")]
    Invalid(Diagnostics),

    #[error("cannot read scenario {path}: {source}")]
    ReadScenario {
        path: String,
        source: std::io::Error,
    },

    #[error("cannot bind 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },

    #[error("cannot open request log {path}: {source}")]
    RequestLog {
        path: String,
        source: std::io::Error,
    },

    /// A key named in a control call does not exist.
    #[error("no key with label or api key {0:?}")]
    UnknownKey(String),

    #[error("{0}")]
    Runtime(String),
}
