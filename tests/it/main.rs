//! respond's integration tests: one test binary (one link, not one per file). Each
//! module runs the real `respond` binary, or the client, against the simulator on an
//! ephemeral 127.0.0.1 port; nothing reaches a real exchange.
//!
//! `cargo test --test it MODULE::` runs one module, e.g. `cargo test --test it faults::`.

mod exchange_common;
mod sim_support;
mod support;

mod asymmetric_keys;
mod audit;
mod bad_input;
mod bench_smoke;
mod cli;
mod compromised;
mod deep_scan;
mod evidence;
mod exchange_methods;
mod exchange_pacing;
mod exchange_resilience;
mod exchange_safety;
mod exchange_subaccounts;
mod faults;
mod fingerprint;
mod html_report;
mod key_kinds;
mod playbook_corpus;
mod pty;
mod resume;
mod secrets;
mod sim_auth;
mod sim_cli;
mod sim_endpoints;
mod sim_limits_faults;
mod sim_subaccounts;
mod subaccount;
mod weight_pool;
