//! The one table of every Binance endpoint the simulator serves: method, path, security
//! (public, or signed and needing a permission), request weight, and handler. Weights
//! follow Binance's documentation as of 2026; update them here and nowhere else.
use axum::http::Method;

use super::handlers::{futures, spot, subaccount, wallet, Handler};
use super::params::Params;
use super::state::State;
use super::types::Market;

/// What a key must be allowed to do for a signed endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// USER_DATA: reading.
    Read,
    /// TRADE on a market.
    Trade(Market),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No key needed (market data).
    Public,
    /// `X-MBX-APIKEY`, `timestamp` and `signature` needed.
    Signed(Need),
}

/// How much an endpoint weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    Fixed(u32),
    /// One weight with `symbol`, another without.
    BySymbol {
        with: u32,
        without: u32,
    },
    /// Spot `myTrades`: 5 with `orderId`, else 20.
    MyTrades,
    /// Futures klines: by `limit` (1–99: 1, 100–499: 2, 500–1000: 5, more: 10).
    FuturesKlines,
    /// Spot cancel-all: 0 when something was cancelled, 1 otherwise (since 2026-04-02).
    CancelAll,
    /// Margin openOrders without a symbol: the number of margin symbols.
    MarginOpenOrders,
    /// COIN-M userTrades: 20 with `symbol`, 40 with `pair`.
    DapiTrades,
}

impl Weight {
    /// The most this request can weigh (checked against the limit before it runs).
    pub fn upfront(self, params: &Params, state: &State) -> u32 {
        match self {
            Weight::Fixed(n) => n,
            Weight::BySymbol { with, without } => {
                if params.has("symbol") {
                    with
                } else {
                    without
                }
            }
            Weight::MyTrades => {
                if params.has("orderId") {
                    5
                } else {
                    20
                }
            }
            Weight::FuturesKlines => match params.u64("limit").ok().flatten().unwrap_or(500) {
                0..=99 => 1,
                100..=499 => 2,
                500..=1000 => 5,
                _ => 10,
            },
            Weight::CancelAll => 1,
            Weight::MarginOpenOrders => {
                if params.has("symbol") {
                    10
                } else {
                    // Binance counts one per trading symbol; never less than with one.
                    (state.symbols_of(Market::Margin).count() as u32).max(10)
                }
            }
            Weight::DapiTrades => {
                if params.has("pair") && !params.has("symbol") {
                    40
                } else {
                    20
                }
            }
        }
    }

    /// What the request weighed once answered.
    pub fn charged(self, params: &Params, state: &State, succeeded: bool) -> u32 {
        match self {
            Weight::CancelAll if succeeded => 0,
            other => other.upfront(params, state),
        }
    }
}

pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub security: Security,
    pub weight: Weight,
    /// `/sapi` endpoints counted against the UID limit instead of the IP limit.
    pub uid: bool,
    pub handler: Handler,
}

const fn ep(
    method: Method,
    path: &'static str,
    security: Security,
    weight: Weight,
    handler: Handler,
) -> Endpoint {
    Endpoint {
        method,
        path,
        security,
        weight,
        uid: false,
        handler,
    }
}

const fn uid(mut e: Endpoint) -> Endpoint {
    e.uid = true;
    e
}

use Method as M;
use Need::{Read, Trade};
use Security::{Public, Signed};
use Weight::{BySymbol, Fixed};

const READ: Security = Signed(Read);

/// Every endpoint, grouped by family.
#[rustfmt::skip]
pub static ENDPOINTS: &[Endpoint] = &[
    // ---- /api/v3 (spot) ----
    ep(M::GET, "/api/v3/ping", Public, Fixed(1), spot::ping),
    ep(M::GET, "/api/v3/time", Public, Fixed(1), spot::time),
    ep(M::GET, "/api/v3/exchangeInfo", Public, Fixed(20), spot::exchange_info),
    ep(M::GET, "/api/v3/ticker/price", Public, BySymbol { with: 2, without: 4}, spot::ticker_price),
    ep(M::GET, "/api/v3/klines", Public, Fixed(2), spot::klines),
    ep(M::GET, "/api/v3/account", READ, Fixed(20), spot::account),
    ep(M::GET, "/api/v3/openOrders", READ, BySymbol { with: 6, without: 80}, spot::open_orders),
    ep(M::DELETE, "/api/v3/openOrders", Signed(Trade(Market::Spot)), Weight::CancelAll, spot::cancel_all),
    ep(M::GET, "/api/v3/order", READ, Fixed(4), spot::get_order),
    ep(M::POST, "/api/v3/order", Signed(Trade(Market::Spot)), Fixed(1), spot::new_order),
    ep(M::DELETE, "/api/v3/order", Signed(Trade(Market::Spot)), Fixed(1), spot::cancel_order),
    ep(M::GET, "/api/v3/allOrders", READ, Fixed(20), spot::all_orders),
    ep(M::GET, "/api/v3/myTrades", READ, Weight::MyTrades, spot::my_trades),
    // ---- /sapi (wallet, account, margin) ----
    ep(M::GET, "/sapi/v1/system/status", Public, Fixed(1), wallet::system_status),
    ep(M::GET, "/sapi/v1/account/apiRestrictions", READ, Fixed(1), wallet::api_restrictions),
    ep(M::GET, "/sapi/v1/account/status", READ, Fixed(1), wallet::account_status),
    ep(M::GET, "/sapi/v1/capital/config/getall", READ, Fixed(10), wallet::coins),
    uid(ep(M::GET, "/sapi/v1/capital/withdraw/history", READ, Fixed(18_000), wallet::withdrawals)),
    ep(M::GET, "/sapi/v1/capital/deposit/hisrec", READ, Fixed(1), wallet::deposits),
    ep(M::GET, "/sapi/v1/asset/transfer", READ, Fixed(1), wallet::transfers),
    uid(ep(M::GET, "/sapi/v1/pay/transactions", READ, Fixed(3000), wallet::pay)),
    ep(M::GET, "/sapi/v1/margin/allPairs", Public, Fixed(1), wallet::margin_pairs),
    ep(M::GET, "/sapi/v1/margin/isolated/allPairs", Public, Fixed(10), wallet::isolated_pairs),
    ep(M::GET, "/sapi/v1/margin/account", READ, Fixed(10), wallet::margin_account),
    ep(M::GET, "/sapi/v1/margin/openOrders", READ, Weight::MarginOpenOrders, wallet::margin_open_orders),
    ep(M::DELETE, "/sapi/v1/margin/openOrders", Signed(Trade(Market::Margin)), Fixed(1), wallet::margin_cancel_all),
    ep(M::POST, "/sapi/v1/margin/order", Signed(Trade(Market::Margin)), Fixed(6), wallet::margin_new_order),
    ep(M::DELETE, "/sapi/v1/margin/order", Signed(Trade(Market::Margin)), Fixed(10), wallet::margin_cancel_order),
    ep(M::GET, "/sapi/v1/margin/myTrades", READ, Fixed(10), wallet::margin_trades),
    // Sub-accounts, master key only. Key management weighs UID 3,000 (Binance's docs).
    ep(M::GET, "/sapi/v1/sub-account/list", READ, Fixed(1), subaccount::list),
    uid(ep(M::GET, "/sapi/v1/sub-account/subAccountApi", READ, Fixed(3000), subaccount::api_keys)),
    uid(ep(M::DELETE, "/sapi/v1/sub-account/subAccountApi", Signed(Trade(Market::Spot)), Fixed(3000), subaccount::delete_api_key)),
    ep(M::GET, "/sapi/v1/sub-account/sub/transfer/history", READ, Fixed(1), subaccount::transfer_history),
    ep(M::GET, "/sapi/v1/sub-account/universalTransfer", READ, Fixed(1), subaccount::universal_transfers),
    ep(M::GET, "/sapi/v1/sub-account/futures/internalTransfer", READ, Fixed(1), subaccount::futures_internal_transfers),
    // ---- /fapi (USDⓈ-M futures) ----
    ep(M::GET, "/fapi/v1/ping", Public, Fixed(1), spot::ping),
    ep(M::GET, "/fapi/v1/time", Public, Fixed(1), spot::time),
    ep(M::GET, "/fapi/v1/exchangeInfo", Public, Fixed(1), futures::exchange_info),
    ep(M::GET, "/fapi/v1/ticker/price", Public, BySymbol { with: 1, without: 2}, futures::ticker_price),
    ep(M::GET, "/fapi/v2/ticker/price", Public, BySymbol { with: 1, without: 2}, futures::ticker_price),
    ep(M::GET, "/fapi/v1/klines", Public, Weight::FuturesKlines, spot::klines),
    ep(M::GET, "/fapi/v1/openOrders", READ, BySymbol { with: 1, without: 40}, futures::open_orders),
    ep(M::DELETE, "/fapi/v1/allOpenOrders", Signed(Trade(Market::Usdm)), Fixed(1), futures::cancel_all),
    ep(M::GET, "/fapi/v1/openAlgoOrders", READ, BySymbol { with: 1, without: 40}, futures::open_algo_orders),
    ep(M::DELETE, "/fapi/v1/algoOpenOrders", Signed(Trade(Market::Usdm)), Fixed(1), futures::cancel_all_algo),
    ep(M::POST, "/fapi/v1/algoOrder", Signed(Trade(Market::Usdm)), Fixed(0), futures::new_algo_order),
    ep(M::GET, "/fapi/v1/algoOrder", READ, Fixed(1), futures::get_algo_order),
    ep(M::DELETE, "/fapi/v1/algoOrder", Signed(Trade(Market::Usdm)), Fixed(1), futures::cancel_algo_order),
    ep(M::GET, "/fapi/v1/order", READ, Fixed(1), futures::get_order),
    ep(M::POST, "/fapi/v1/order", Signed(Trade(Market::Usdm)), Fixed(1), futures::new_order),
    ep(M::DELETE, "/fapi/v1/order", Signed(Trade(Market::Usdm)), Fixed(1), futures::cancel_order),
    ep(M::GET, "/fapi/v1/userTrades", READ, Fixed(5), futures::user_trades),
    ep(M::GET, "/fapi/v1/income", READ, Fixed(30), futures::income),
    ep(M::GET, "/fapi/v2/balance", READ, Fixed(5), futures::balance),
    ep(M::GET, "/fapi/v3/balance", READ, Fixed(5), futures::balance),
    ep(M::GET, "/fapi/v2/account", READ, Fixed(5), futures::account),
    ep(M::GET, "/fapi/v3/account", READ, Fixed(5), futures::account),
    ep(M::GET, "/fapi/v2/positionRisk", READ, Fixed(5), futures::position_risk),
    ep(M::GET, "/fapi/v1/leverageBracket", READ, Fixed(1), futures::leverage_brackets),
    ep(M::GET, "/fapi/v3/positionRisk", READ, Fixed(5), futures::position_risk_v3),
    // ---- /dapi (COIN-M futures) ----
    ep(M::GET, "/dapi/v1/ping", Public, Fixed(1), spot::ping),
    ep(M::GET, "/dapi/v1/time", Public, Fixed(1), spot::time),
    ep(M::GET, "/dapi/v1/exchangeInfo", Public, Fixed(1), futures::exchange_info),
    ep(M::GET, "/dapi/v1/ticker/price", Public, BySymbol { with: 1, without: 2}, futures::ticker_price),
    ep(M::GET, "/dapi/v1/klines", Public, Weight::FuturesKlines, spot::klines),
    ep(M::GET, "/dapi/v1/openOrders", READ, BySymbol { with: 1, without: 40}, futures::open_orders),
    ep(M::DELETE, "/dapi/v1/allOpenOrders", Signed(Trade(Market::Coinm)), Fixed(1), futures::cancel_all),
    ep(M::GET, "/dapi/v1/openAlgoOrders", READ, BySymbol { with: 1, without: 40}, futures::open_algo_orders),
    ep(M::DELETE, "/dapi/v1/algoOpenOrders", Signed(Trade(Market::Coinm)), Fixed(1), futures::cancel_all_algo),
    ep(M::POST, "/dapi/v1/algoOrder", Signed(Trade(Market::Coinm)), Fixed(0), futures::new_algo_order),
    ep(M::GET, "/dapi/v1/algoOrder", READ, Fixed(1), futures::get_algo_order),
    ep(M::DELETE, "/dapi/v1/algoOrder", Signed(Trade(Market::Coinm)), Fixed(1), futures::cancel_algo_order),
    ep(M::GET, "/dapi/v1/order", READ, Fixed(1), futures::get_order),
    ep(M::POST, "/dapi/v1/order", Signed(Trade(Market::Coinm)), Fixed(1), futures::new_order),
    ep(M::DELETE, "/dapi/v1/order", Signed(Trade(Market::Coinm)), Fixed(1), futures::cancel_order),
    ep(M::GET, "/dapi/v1/userTrades", READ, Weight::DapiTrades, futures::user_trades),
    ep(M::GET, "/dapi/v1/income", READ, Fixed(20), futures::income),
    ep(M::GET, "/dapi/v1/balance", READ, Fixed(1), futures::balance),
    ep(M::GET, "/dapi/v1/account", READ, Fixed(5), futures::account),
    ep(M::GET, "/dapi/v1/positionRisk", READ, Fixed(1), futures::position_risk),
    ep(M::GET, "/dapi/v2/leverageBracket", READ, Fixed(1), futures::leverage_brackets),
];

/// The endpoint for a method and path, if the simulator serves it.
pub fn find(method: &Method, path: &str) -> Option<&'static Endpoint> {
    ENDPOINTS
        .iter()
        .find(|e| e.method == method && e.path == path)
}

/// Whether any method is served at `path` (to tell 404 from 405).
pub fn path_known(path: &str) -> bool {
    ENDPOINTS.iter().any(|e| e.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Family;

    #[test]
    fn every_endpoint_is_unique_and_in_a_family() {
        let mut seen = std::collections::HashSet::new();
        for e in ENDPOINTS {
            assert!(seen.insert((e.method.clone(), e.path)), "{} twice", e.path);
            assert!(
                Family::of_path(e.path).is_some(),
                "{} has no family",
                e.path
            );
            if e.uid {
                assert_eq!(Family::of_path(e.path), Some(Family::Sapi));
            }
        }
    }
}
