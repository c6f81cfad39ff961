//! The simulated Binance exchange: server, state, scenarios, faults, request log.
//! Shares no code with `crate::exchange`.

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulator not built yet")]
    Unavailable,
}

impl SimError {
    pub fn exit_code(&self) -> u8 {
        crate::error::exit::USAGE
    }
}
