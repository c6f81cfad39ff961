//! The one table of endpoints: weight, signing, priority, whether a retry is safe,
//! and the longest time window Binance accepts. Binance changes weights from time to
//! time; this file is the only place to update them (figures as documented in 2026,
//! see `shared/binance-api.md`).
use super::{Endpoint, Family, HttpMethod, Market, Priority};

/// What respond knows about one endpoint.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spec {
    pub method: HttpMethod,
    pub path: &'static str,
    /// IP weight of a request (with a symbol, where that makes a difference).
    pub weight: u32,
    /// IP weight of the same request without a symbol.
    pub weight_all: u32,
    /// UID weight (`/sapi` only), counted against the account rather than the IP.
    pub uid_weight: u32,
    pub signed: bool,
    pub priority: Priority,
    /// Safe to send again when the outcome of an attempt is unknown (5xx, timeout).
    /// Every GET is; a DELETE only when repeating it cannot do more than the first.
    pub repeatable: bool,
    /// Longest `endTime - startTime` Binance accepts, in ms.
    pub max_span_ms: Option<i64>,
}

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

impl Spec {
    const fn get(path: &'static str, weight: u32) -> Spec {
        Spec {
            method: HttpMethod::Get,
            path,
            weight,
            weight_all: weight,
            uid_weight: 0,
            signed: true,
            priority: Priority::Normal,
            repeatable: true,
            max_span_ms: None,
        }
    }
    /// A cancel-all: idempotent (a second one finds nothing and says so), urgent.
    const fn cancel_all(path: &'static str, weight: u32) -> Spec {
        Spec {
            method: HttpMethod::Delete,
            priority: Priority::Urgent,
            ..Spec::get(path, weight)
        }
    }
    const fn public(self) -> Spec {
        Spec {
            signed: false,
            ..self
        }
    }
    const fn urgent(self) -> Spec {
        Spec {
            priority: Priority::Urgent,
            ..self
        }
    }
    const fn all(self, weight_all: u32) -> Spec {
        Spec { weight_all, ..self }
    }
    const fn uid(self, uid_weight: u32) -> Spec {
        Spec { uid_weight, ..self }
    }
    const fn span(self, max_span_ms: i64) -> Spec {
        Spec {
            max_span_ms: Some(max_span_ms),
            ..self
        }
    }

    pub(crate) fn endpoint(&self) -> Endpoint {
        Endpoint {
            method: self.method,
            path: self.path,
        }
    }

    pub(crate) fn family(&self) -> Family {
        Family::of_path(self.path)
    }
}

// ---- the table -------------------------------------------------------------------
// Market data (public). Pings and time are liveness probes: urgent.
pub(crate) const SPOT_PING: Spec = Spec::get("/api/v3/ping", 1).public().urgent();
pub(crate) const SPOT_TIME: Spec = Spec::get("/api/v3/time", 1).public().urgent();
pub(crate) const SPOT_EXCHANGE_INFO: Spec = Spec::get("/api/v3/exchangeInfo", 20).public();
pub(crate) const SPOT_TICKER_PRICE: Spec = Spec::get("/api/v3/ticker/price", 2).public().all(4);
pub(crate) const SPOT_KLINES: Spec = Spec::get("/api/v3/klines", 2).public();
pub(crate) const FAPI_PING: Spec = Spec::get("/fapi/v1/ping", 1).public().urgent();
pub(crate) const FAPI_TIME: Spec = Spec::get("/fapi/v1/time", 1).public().urgent();
pub(crate) const FAPI_EXCHANGE_INFO: Spec = Spec::get("/fapi/v1/exchangeInfo", 1).public();
pub(crate) const FAPI_TICKER_PRICE: Spec = Spec::get("/fapi/v1/ticker/price", 1).public().all(2);
/// The futures klines' weight is by `limit`: see [`futures_klines_weight`].
pub(crate) const FAPI_KLINES: Spec = Spec::get("/fapi/v1/klines", 1).public();
pub(crate) const DAPI_PING: Spec = Spec::get("/dapi/v1/ping", 1).public().urgent();
pub(crate) const DAPI_TIME: Spec = Spec::get("/dapi/v1/time", 1).public().urgent();
pub(crate) const DAPI_EXCHANGE_INFO: Spec = Spec::get("/dapi/v1/exchangeInfo", 1).public();
pub(crate) const DAPI_TICKER_PRICE: Spec = Spec::get("/dapi/v1/ticker/price", 1).public().all(2);
pub(crate) const DAPI_KLINES: Spec = Spec::get("/dapi/v1/klines", 1).public();

// Account state. The account and key-permission reads double as liveness probes for
// `verify_revoked`, so they are urgent.
pub(crate) const SPOT_ACCOUNT: Spec = Spec::get("/api/v3/account", 20).urgent();
pub(crate) const API_RESTRICTIONS: Spec = Spec::get("/sapi/v1/account/apiRestrictions", 1).urgent();
pub(crate) const ACCOUNT_STATUS: Spec = Spec::get("/sapi/v1/account/status", 1).urgent();
pub(crate) const MARGIN_ACCOUNT: Spec = Spec::get("/sapi/v1/margin/account", 10);
pub(crate) const FAPI_BALANCE: Spec = Spec::get("/fapi/v2/balance", 5);
pub(crate) const FAPI_POSITION_RISK: Spec = Spec::get("/fapi/v3/positionRisk", 5);
pub(crate) const DAPI_BALANCE: Spec = Spec::get("/dapi/v1/balance", 1);
pub(crate) const DAPI_POSITION_RISK: Spec = Spec::get("/dapi/v1/positionRisk", 1);

// Open orders and cancel-all: the containment path, urgent. Margin open orders without
// a symbol count as many requests as there are trading symbols; 400 is a cautious guess.
pub(crate) const SPOT_OPEN_ORDERS: Spec = Spec::get("/api/v3/openOrders", 6).all(80).urgent();
pub(crate) const MARGIN_OPEN_ORDERS: Spec = Spec::get("/sapi/v1/margin/openOrders", 10)
    .all(400)
    .urgent();
pub(crate) const FAPI_OPEN_ORDERS: Spec = Spec::get("/fapi/v1/openOrders", 1).all(40).urgent();
pub(crate) const FAPI_OPEN_ALGO_ORDERS: Spec =
    Spec::get("/fapi/v1/openAlgoOrders", 1).all(40).urgent();
pub(crate) const DAPI_OPEN_ORDERS: Spec = Spec::get("/dapi/v1/openOrders", 1).all(40).urgent();
pub(crate) const DAPI_OPEN_ALGO_ORDERS: Spec =
    Spec::get("/dapi/v1/openAlgoOrders", 1).all(40).urgent();
pub(crate) const SPOT_CANCEL_ALL: Spec = Spec::cancel_all("/api/v3/openOrders", 1);
pub(crate) const MARGIN_CANCEL_ALL: Spec = Spec::cancel_all("/sapi/v1/margin/openOrders", 1);
pub(crate) const FAPI_CANCEL_ALL: Spec = Spec::cancel_all("/fapi/v1/allOpenOrders", 1);
pub(crate) const FAPI_CANCEL_ALL_ALGO: Spec = Spec::cancel_all("/fapi/v1/algoOpenOrders", 1);
pub(crate) const DAPI_CANCEL_ALL: Spec = Spec::cancel_all("/dapi/v1/allOpenOrders", 1);
pub(crate) const DAPI_CANCEL_ALL_ALGO: Spec = Spec::cancel_all("/dapi/v1/algoOpenOrders", 1);

// Order and trade history (evidence).
pub(crate) const SPOT_ALL_ORDERS: Spec = Spec::get("/api/v3/allOrders", 20).span(DAY);
pub(crate) const MARGIN_ALL_ORDERS: Spec = Spec::get("/sapi/v1/margin/allOrders", 200).span(DAY);
pub(crate) const FAPI_ALL_ORDERS: Spec = Spec::get("/fapi/v1/allOrders", 5).span(7 * DAY);
pub(crate) const DAPI_ALL_ORDERS: Spec = Spec::get("/dapi/v1/allOrders", 20).span(7 * DAY);
pub(crate) const SPOT_MY_TRADES: Spec = Spec::get("/api/v3/myTrades", 20).span(DAY);
pub(crate) const MARGIN_MY_TRADES: Spec = Spec::get("/sapi/v1/margin/myTrades", 10).span(DAY);
pub(crate) const FAPI_USER_TRADES: Spec = Spec::get("/fapi/v1/userTrades", 5).span(7 * DAY);
pub(crate) const DAPI_USER_TRADES: Spec = Spec::get("/dapi/v1/userTrades", 20).span(7 * DAY);
/// Futures income needs no symbol: it names the symbols an account traded in a window.
/// `/dapi` accepts at most 200 days between startTime and endTime.
pub(crate) const FAPI_INCOME: Spec = Spec::get("/fapi/v1/income", 30);
pub(crate) const DAPI_INCOME: Spec = Spec::get("/dapi/v1/income", 20).span(200 * DAY);

// Money movements (evidence). Withdraw history costs 18,000 of the account's 180,000
// UID weight per minute: one call per 90-day window, never in a tight loop.
pub(crate) const WITHDRAW_HISTORY: Spec = Spec::get("/sapi/v1/capital/withdraw/history", 1)
    .uid(18_000)
    .span(90 * DAY);
pub(crate) const DEPOSIT_HISTORY: Spec =
    Spec::get("/sapi/v1/capital/deposit/hisrec", 1).span(90 * DAY);
pub(crate) const UNIVERSAL_TRANSFERS: Spec = Spec::get("/sapi/v1/asset/transfer", 1);
pub(crate) const PAY_TRANSACTIONS: Spec = Spec::get("/sapi/v1/pay/transactions", 1)
    .uid(3_000)
    .span(90 * DAY);
pub(crate) const SUB_ACCOUNT_TRANSFERS: Spec =
    Spec::get("/sapi/v1/sub-account/sub/transfer/history", 1);
pub(crate) const SUB_ACCOUNT_UNIVERSAL_TRANSFERS: Spec =
    Spec::get("/sapi/v1/sub-account/universalTransfer", 1).span(7 * DAY - 1);
pub(crate) const SUB_ACCOUNT_FUTURES_INTERNAL_TRANSFERS: Spec =
    Spec::get("/sapi/v1/sub-account/futures/internalTransfer", 1).span(7 * DAY - 1);

// Sub-account keys, master key only. Key management weighs UID 3,000 per request: a
// master with 60 sub-accounts can list them all in one minute's 180,000.
pub(crate) const SUB_ACCOUNT_LIST: Spec = Spec::get("/sapi/v1/sub-account/list", 1);
pub(crate) const SUB_ACCOUNT_API_KEYS: Spec =
    Spec::get("/sapi/v1/sub-account/subAccountApi", 1).uid(3_000);
/// Deleting a key twice cannot do more than once: repeatable after an unknown outcome.
pub(crate) const SUB_ACCOUNT_API_DELETE: Spec = Spec {
    method: HttpMethod::Delete,
    priority: Priority::Urgent,
    ..Spec::get("/sapi/v1/sub-account/subAccountApi", 1)
}
.uid(3_000);

/// Weight of a futures (`/fapi`, `/dapi`) klines request by its `limit`: 1–99: 1,
/// 100–499: 2, 500–1000: 5, more: 10. (Spot klines weigh 2 whatever the limit.)
pub(crate) fn futures_klines_weight(limit: u32) -> u32 {
    match limit {
        0..=99 => 1,
        100..=499 => 2,
        500..=1000 => 5,
        _ => 10,
    }
}

/// Every row, for the consistency test.
#[cfg(test)]
const ALL: &[Spec] = &[
    SPOT_PING,
    SPOT_TIME,
    SPOT_EXCHANGE_INFO,
    SPOT_TICKER_PRICE,
    SPOT_KLINES,
    FAPI_PING,
    FAPI_TIME,
    FAPI_EXCHANGE_INFO,
    FAPI_TICKER_PRICE,
    FAPI_KLINES,
    DAPI_PING,
    DAPI_TIME,
    DAPI_EXCHANGE_INFO,
    DAPI_TICKER_PRICE,
    DAPI_KLINES,
    SPOT_ACCOUNT,
    API_RESTRICTIONS,
    ACCOUNT_STATUS,
    MARGIN_ACCOUNT,
    FAPI_BALANCE,
    FAPI_POSITION_RISK,
    DAPI_BALANCE,
    DAPI_POSITION_RISK,
    SPOT_OPEN_ORDERS,
    MARGIN_OPEN_ORDERS,
    FAPI_OPEN_ORDERS,
    FAPI_OPEN_ALGO_ORDERS,
    DAPI_OPEN_ORDERS,
    DAPI_OPEN_ALGO_ORDERS,
    SPOT_CANCEL_ALL,
    MARGIN_CANCEL_ALL,
    FAPI_CANCEL_ALL,
    FAPI_CANCEL_ALL_ALGO,
    DAPI_CANCEL_ALL,
    DAPI_CANCEL_ALL_ALGO,
    SPOT_ALL_ORDERS,
    MARGIN_ALL_ORDERS,
    FAPI_ALL_ORDERS,
    DAPI_ALL_ORDERS,
    SPOT_MY_TRADES,
    MARGIN_MY_TRADES,
    FAPI_USER_TRADES,
    DAPI_USER_TRADES,
    FAPI_INCOME,
    DAPI_INCOME,
    WITHDRAW_HISTORY,
    DEPOSIT_HISTORY,
    UNIVERSAL_TRANSFERS,
    PAY_TRANSACTIONS,
    SUB_ACCOUNT_TRANSFERS,
    SUB_ACCOUNT_UNIVERSAL_TRANSFERS,
    SUB_ACCOUNT_FUTURES_INTERNAL_TRANSFERS,
    SUB_ACCOUNT_LIST,
    SUB_ACCOUNT_API_KEYS,
    SUB_ACCOUNT_API_DELETE,
];

/// Binance's published per-minute limits of a family's pool: (IP weight, UID weight).
/// `/sapi` counts per endpoint on Binance's side; one shared budget per family is the
/// cautious reading. `/fapi` and `/dapi` share ONE 2,400 since 2026-06-30 (see
/// [`Family::pool`]): the figure is the pool's, not each family's. The budget replaces
/// these with the live limits whenever an `exchangeInfo` answer lists them.
pub fn published_limit(family: Family) -> (u32, u32) {
    match family.pool() {
        Family::Api => (6_000, 0),
        Family::Sapi => (12_000, 180_000),
        Family::Fapi | Family::Dapi => (2_400, 0),
    }
}

/// A long history pull, for splitting a time range into the windows Binance accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pull {
    Trades(Market),
    /// Futures income (`/fapi/v1/income`, `/dapi/v1/income`).
    Income(Market),
    Orders(Market),
    Withdrawals,
    Deposits,
    PayTransactions,
    UniversalTransfers,
    SubAccountTransfers,
}

impl Pull {
    /// The IP weight of one request of this pull (with a symbol where that matters).
    pub fn weight(self) -> u32 {
        self.spec().weight
    }

    pub(crate) fn spec(self) -> &'static Spec {
        match self {
            Pull::Trades(Market::Spot) => &SPOT_MY_TRADES,
            Pull::Trades(Market::Margin) => &MARGIN_MY_TRADES,
            Pull::Trades(Market::UsdM) => &FAPI_USER_TRADES,
            Pull::Trades(Market::CoinM) => &DAPI_USER_TRADES,
            Pull::Income(Market::CoinM) => &DAPI_INCOME,
            Pull::Income(_) => &FAPI_INCOME,
            Pull::Orders(Market::Spot) => &SPOT_ALL_ORDERS,
            Pull::Orders(Market::Margin) => &MARGIN_ALL_ORDERS,
            Pull::Orders(Market::UsdM) => &FAPI_ALL_ORDERS,
            Pull::Orders(Market::CoinM) => &DAPI_ALL_ORDERS,
            Pull::Withdrawals => &WITHDRAW_HISTORY,
            Pull::Deposits => &DEPOSIT_HISTORY,
            Pull::PayTransactions => &PAY_TRANSACTIONS,
            Pull::UniversalTransfers => &UNIVERSAL_TRANSFERS,
            Pull::SubAccountTransfers => &SUB_ACCOUNT_TRANSFERS,
        }
    }

    /// The longest window one request may cover, if Binance limits it.
    pub fn max_span_ms(self) -> Option<i64> {
        self.spec().max_span_ms
    }

    /// `window` split into consecutive windows this pull accepts, oldest first.
    pub fn windows(self, window: super::TimeWindow) -> Vec<super::TimeWindow> {
        match self.max_span_ms() {
            Some(span) => window.split(span),
            None => vec![window],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for spec in ALL {
            assert!(
                spec.weight >= 1 && spec.weight_all >= spec.weight,
                "{}",
                spec.path
            );
            if spec.method != HttpMethod::Get {
                assert_eq!(spec.priority, Priority::Urgent, "{}", spec.path);
            }
            if spec.uid_weight > 0 {
                assert_eq!(spec.family(), Family::Sapi, "{}", spec.path);
            }
        }
        let mut seen = std::collections::HashSet::new();
        for spec in ALL {
            assert!(
                seen.insert((spec.method, spec.path)),
                "duplicate {}",
                spec.path
            );
        }
    }
}
