//! Step actions: one file per family, each implementing the engine's `Action` trait
//! (`crate::engine::step`). Actions never decide about safety: the engine previews,
//! confirms and applies dry-run; the HTTP client they are handed refuses mutations in a
//! dry run.
pub mod audit;
pub mod balances;
pub mod local;
pub mod orders;
pub mod revoke;
pub mod subaccount;
pub mod support;
pub mod trade_scan;
pub mod trades;
pub mod transfers;
pub mod triage;
pub mod util;

pub use crate::engine::step::*;

/// Every built-in action.
pub fn builtin() -> Registry {
    Registry::new(
        local::all()
            .into_iter()
            .chain(triage::all())
            .chain(orders::all())
            .chain(balances::all())
            .chain(trades::all())
            .chain(transfers::all())
            .chain(revoke::all())
            .chain(subaccount::all())
            .chain(support::all())
            .chain(audit::all())
            .collect(),
    )
}
