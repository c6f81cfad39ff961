//! Binance client: signing, server time, weight pacing, retries, typed errors and one
//! typed method per endpoint the playbooks use. Shares no code with `crate::sim`.

/// Every way a request to the exchange can fail.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("exchange client not built yet")]
    Unavailable,
}
