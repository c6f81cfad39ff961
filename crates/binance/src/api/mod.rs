//! One typed method per endpoint the playbooks use, as `impl Client` blocks. Methods
//! only build parameters and normalise answers; everything about the wire happens in
//! `Client::execute`.
mod account;
mod history;
mod market;
pub(crate) mod orders;
mod subaccount;

use serde::de::DeserializeOwned;

use super::signing::Params;
use super::weights::{Pull, Spec};
use super::{Client, ExchangeError, Market, TimeWindow};

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

impl Client {
    /// The pages of one paged read, in order, until a short one (fewer than `limit`
    /// rows) or `max_pages` of them: `params(page, got)` is the request for page `page`
    /// (from 1) once `got` rows have come, so one pager serves reads paged by number and
    /// by offset; `rows` turns each answer (or its error) into the page's rows.
    pub(crate) async fn pages<P: DeserializeOwned, T>(
        &self,
        spec: &'static Spec,
        limit: usize,
        max_pages: usize,
        params: impl Fn(usize, usize) -> Params,
        rows: impl Fn(Result<P, ExchangeError>) -> Result<Vec<T>, ExchangeError>,
    ) -> Result<Vec<T>, ExchangeError> {
        let mut out = Vec::new();
        for page in 1..=max_pages {
            let got = rows(self.execute(spec, params(page, out.len())).await)?;
            let full = got.len() >= limit;
            out.extend(got);
            if !full {
                break;
            }
        }
        Ok(out)
    }
}
