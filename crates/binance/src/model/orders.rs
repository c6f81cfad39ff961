//! Orders and trades, normalised across spot, margin, USDⓈ-M (regular and algo) and
//! COIN-M, so actions handle one shape.
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::lenient;
use crate::Market;

/// An order (open, cancelled or historical), normalised across markets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub market: Market,
    pub symbol: String,
    /// `orderId`, or `algoId` for a USDⓈ-M conditional (algo) order.
    pub order_id: i64,
    /// `clientOrderId` (`origClientOrderId` in cancel answers, `clientAlgoId` for algo).
    pub client_order_id: String,
    pub side: String,
    #[serde(rename = "type")]
    pub order_type: String,
    pub price: Decimal,
    pub orig_qty: Decimal,
    pub executed_qty: Decimal,
    /// `status`, or `algoStatus` for algo orders.
    pub status: String,
    /// Creation time in ms (`time`, `transactTime` in cancel answers, `createTime` for
    /// algo orders).
    pub time: i64,
    pub update_time: Option<i64>,
    /// `stopPrice`, or `triggerPrice` for algo orders.
    pub stop_price: Option<Decimal>,
    pub position_side: Option<String>,
    /// Margin only: an isolated-margin order.
    pub is_isolated: Option<bool>,
    /// A USDⓈ-M conditional order from `openAlgoOrders`; cancelled by `algoOpenOrders`.
    pub is_algo: bool,
}

/// Open orders are orders; the alias keeps action code readable.
pub type OpenOrder = Order;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawOrder {
    symbol: String,
    #[serde(deserialize_with = "lenient::int")]
    order_id: i64,
    #[serde(default)]
    client_order_id: Option<String>,
    #[serde(default)]
    orig_client_order_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    orig_qty: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    executed_qty: Option<Decimal>,
    #[serde(default)]
    status: String,
    #[serde(default, rename = "type")]
    order_type: String,
    #[serde(default)]
    side: String,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    time: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    transact_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    update_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    stop_price: Option<Decimal>,
    #[serde(default)]
    position_side: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    is_isolated: Option<bool>,
}

impl RawOrder {
    pub(crate) fn normalise(self, market: Market) -> Order {
        Order {
            market,
            symbol: self.symbol,
            order_id: self.order_id,
            // In a cancel answer `clientOrderId` is the cancel request's own id; the
            // order's id is `origClientOrderId`.
            client_order_id: self
                .orig_client_order_id
                .or(self.client_order_id)
                .unwrap_or_default(),
            side: self.side,
            order_type: self.order_type,
            price: self.price.unwrap_or_default(),
            orig_qty: self.orig_qty.unwrap_or_default(),
            executed_qty: self.executed_qty.unwrap_or_default(),
            status: self.status,
            time: self
                .time
                .or(self.transact_time)
                .or(self.update_time)
                .unwrap_or_default(),
            update_time: self.update_time,
            stop_price: self.stop_price.filter(|p| !p.is_zero()),
            position_side: self.position_side,
            is_isolated: self.is_isolated,
            is_algo: false,
        }
    }
}

/// A futures conditional order as `openAlgoOrders` lists it (USDⓈ-M and COIN-M answer
/// the same shape).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawAlgoOrder {
    #[serde(deserialize_with = "lenient::int")]
    algo_id: i64,
    #[serde(default)]
    client_algo_id: Option<String>,
    symbol: String,
    #[serde(default)]
    side: String,
    #[serde(default)]
    order_type: Option<String>,
    #[serde(default)]
    algo_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    quantity: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    executed_qty: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    trigger_price: Option<Decimal>,
    #[serde(default)]
    algo_status: Option<String>,
    #[serde(default)]
    position_side: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    create_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    update_time: Option<i64>,
}

impl RawAlgoOrder {
    pub(crate) fn normalise(self, market: Market) -> Order {
        Order {
            market,
            symbol: self.symbol,
            order_id: self.algo_id,
            client_order_id: self.client_algo_id.unwrap_or_default(),
            side: self.side,
            order_type: self.order_type.or(self.algo_type).unwrap_or_default(),
            price: self.price.unwrap_or_default(),
            orig_qty: self.quantity.unwrap_or_default(),
            executed_qty: self.executed_qty.unwrap_or_default(),
            status: self.algo_status.unwrap_or_default(),
            time: self.create_time.or(self.update_time).unwrap_or_default(),
            update_time: self.update_time,
            stop_price: self.trigger_price.filter(|p| !p.is_zero()),
            position_side: self.position_side,
            is_isolated: None,
            is_algo: true,
        }
    }
}

/// What a cancel-all did on one symbol of one market.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelAll {
    pub market: Market,
    pub symbol: String,
    /// Orders the exchange says it cancelled. Spot and margin list them; futures only
    /// answer "done", so this is empty there: list open orders before and after.
    pub cancelled: Vec<Order>,
    /// Binance answered that there was nothing to cancel (-2011 / -2013). Counts as
    /// success: cancel-all is idempotent.
    pub nothing_to_cancel: bool,
}

/// A trade of the account, normalised (`isBuyer`/`isMaker` on spot, `buyer`/`maker` on
/// futures). Read back from the journal when a scan resumes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trade {
    pub market: Market,
    pub symbol: String,
    pub id: i64,
    pub order_id: i64,
    pub price: Decimal,
    pub qty: Decimal,
    /// `quoteQty` (COIN-M sends `baseQty` instead: then this is `None`).
    pub quote_qty: Option<Decimal>,
    pub commission: Decimal,
    pub commission_asset: String,
    pub time: i64,
    pub is_buyer: bool,
    pub is_maker: bool,
    /// Futures only.
    pub realized_pnl: Option<Decimal>,
    pub position_side: Option<String>,
}

/// The account's most recent trades in one spot symbol (`Client::recent_trades`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentTrades {
    /// Oldest first.
    pub trades: Vec<Trade>,
    /// Fewer than a full page came back: these are all the trades the account ever
    /// made in the symbol, so the first of them is its first trade there.
    pub whole_history: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawTrade {
    #[serde(default)]
    symbol: String,
    #[serde(deserialize_with = "lenient::int")]
    id: i64,
    #[serde(deserialize_with = "lenient::int")]
    order_id: i64,
    #[serde(deserialize_with = "lenient::decimal")]
    price: Decimal,
    #[serde(deserialize_with = "lenient::decimal")]
    qty: Decimal,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    quote_qty: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    commission: Option<Decimal>,
    #[serde(default)]
    commission_asset: String,
    #[serde(deserialize_with = "lenient::int")]
    time: i64,
    #[serde(default)]
    is_buyer: Option<bool>,
    #[serde(default)]
    is_maker: Option<bool>,
    #[serde(default)]
    buyer: Option<bool>,
    #[serde(default)]
    maker: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    realized_pnl: Option<Decimal>,
    #[serde(default)]
    position_side: Option<String>,
}

impl RawTrade {
    pub(crate) fn normalise(self, market: Market, symbol: &str) -> Trade {
        Trade {
            market,
            symbol: if self.symbol.is_empty() {
                symbol.to_string()
            } else {
                self.symbol
            },
            id: self.id,
            order_id: self.order_id,
            price: self.price,
            qty: self.qty,
            quote_qty: self.quote_qty,
            commission: self.commission.unwrap_or_default(),
            commission_asset: self.commission_asset,
            time: self.time,
            is_buyer: self.is_buyer.or(self.buyer).unwrap_or(false),
            is_maker: self.is_maker.or(self.maker).unwrap_or(false),
            realized_pnl: self.realized_pnl,
            position_side: self.position_side,
        }
    }
}
