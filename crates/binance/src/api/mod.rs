//! One typed method per endpoint the playbooks use, as `impl Client` blocks. Methods
//! only build parameters and normalise answers; everything about the wire happens in
//! `Client::execute`.
mod account;
mod history;
mod market;
pub(crate) mod orders;
mod subaccount;

use super::weights::{Pull, Spec};
use super::{ExchangeError, Market, TimeWindow};

/// Largest page Binance serves for trades, orders, withdrawals and deposits.
const PAGE: usize = 1000;

/// A method asked of a market that has no such endpoint (for example positions on spot).
fn unsupported(what: &str, market: Market) -> ExchangeError {
    ExchangeError::InvalidRequest {
        endpoint: None,
        reason: format!("{what} is not available for the {market} market"),
    }
}

/// Refuse, before sending, a window longer than Binance accepts: it would answer -1127,
/// and a caller that gets here skipped `Pull::windows`.
fn check_window(pull: Pull, window: TimeWindow) -> Result<&'static Spec, ExchangeError> {
    let spec = pull.spec();
    match spec.max_span_ms {
        Some(max) if window.span_ms() >= max => Err(ExchangeError::InvalidRequest {
            endpoint: Some(spec.endpoint()),
            reason: format!(
                "window of {} ms is longer than the {} ms Binance accepts; split it with Pull::windows",
                window.span_ms() + 1,
                max
            ),
        }),
        _ => Ok(spec),
    }
}
