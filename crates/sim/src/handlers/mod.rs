//! Endpoint handlers: each turns parameters and state into Binance's JSON, with Binance's
//! field names and types (decimal strings where Binance sends strings).
pub mod futures;
pub mod render;
pub mod spot;
pub mod subaccount;
pub mod wallet;

use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::params::Params;
use super::scenario::ScenarioSymbol;
use super::state::{Key, State, Trade};
use super::types::{ApiError, Family, Market};

/// A handler: runs with the state locked; errors are Binance error answers.
pub type Handler = fn(&mut Ctx) -> Result<Value, ApiError>;

/// Limits as configured, for `exchangeInfo.rateLimits`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub api: u32,
    /// The futures pool, shared by `/fapi` and `/dapi`.
    pub fapi: u32,
    pub window: Duration,
}

/// Everything a handler may use.
pub struct Ctx<'a> {
    pub params: &'a Params,
    pub state: &'a mut State,
    /// Server clock (skew included), ms.
    pub now: i64,
    pub family: Family,
    pub limits: Limits,
    /// The key that signed the request (signed endpoints only).
    pub key: Option<Key>,
    /// An answer the handler writes as JSON text itself, because building it as one
    /// `Value` tree first would cost many times its size (spot `exchangeInfo` listing
    /// thousands of symbols); when set, the `Value` the handler returns is not used.
    pub rendered: Option<Rendered>,
}

/// JSON text written once the state is unlocked, from what it took from the state: a
/// thousand orders take a millisecond to write, and every other request would wait.
pub type Rendered = Box<dyn FnOnce() -> String + Send>;

impl Ctx<'_> {
    /// Answer with the text `write` gives, written once the state is unlocked.
    pub fn answer_later(&mut self, write: impl FnOnce() -> String + Send + 'static) {
        self.rendered = Some(Box::new(write));
    }

    /// The market this family's order and trade endpoints act on.
    pub fn market(&self) -> Market {
        match self.family {
            Family::Api => Market::Spot,
            Family::Sapi => Market::Margin,
            Family::Fapi => Market::Usdm,
            Family::Dapi => Market::Coinm,
        }
    }

    /// `symbol`, which must be sent and known on `market`.
    pub fn required_symbol(&self, market: Market) -> Result<ScenarioSymbol, ApiError> {
        let symbol = self
            .params
            .symbol()
            .ok_or_else(|| ApiError::missing("symbol"))?;
        self.state
            .symbol(market, &symbol)
            .cloned()
            .ok_or_else(ApiError::invalid_symbol)
    }

    /// `symbol` if sent (then it must be known on `market`).
    pub fn optional_symbol(&self, market: Market) -> Result<Option<ScenarioSymbol>, ApiError> {
        match self.params.symbol() {
            None => Ok(None),
            Some(_) => self.required_symbol(market).map(Some),
        }
    }
}

/// A decimal with exactly `scale` places: Binance's spot format (`"0.05000000"`).
pub fn fixed(d: Decimal, scale: u32) -> String {
    render::Fixed(d, scale).to_string()
}

/// Spot and wallet amounts: eight places.
pub fn d8(d: Decimal) -> String {
    fixed(d, 8)
}

/// A decimal without trailing zeros (`"0.01"`, `"64000"`).
pub fn plain(d: Decimal) -> String {
    d.normalize().to_string()
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The `startTime`/`endTime` window Binance allows on an endpoint.
#[derive(Debug, Clone, Copy)]
pub struct WindowRule {
    /// Longest span between startTime and endTime.
    pub max_span_ms: i64,
    /// Words for -1127, e.g. "24 hours".
    pub span_words: &'static str,
    /// The window used when no time is sent; None: no time limit.
    pub default_back_ms: Option<i64>,
}

pub const DAY_RULE: WindowRule = WindowRule {
    max_span_ms: DAY_MS,
    span_words: "24 hours",
    default_back_ms: None,
};
pub const WEEK_RULE: WindowRule = WindowRule {
    max_span_ms: 7 * DAY_MS,
    span_words: "7 days",
    default_back_ms: Some(7 * DAY_MS),
};
pub const NINETY_DAY_RULE: WindowRule = WindowRule {
    max_span_ms: 90 * DAY_MS,
    span_words: "90 days",
    default_back_ms: Some(90 * DAY_MS),
};

/// Start and end of the requested window, with -1127 when it is too long.
pub fn window(params: &Params, rule: WindowRule, now: i64) -> Result<(i64, i64), ApiError> {
    let start = params.i64("startTime")?;
    let end = params.i64("endTime")?;
    if let (Some(s), Some(e)) = (start, end) {
        if e - s > rule.max_span_ms {
            return Err(ApiError::bad_request(
                -1127,
                format!(
                    "More than {} between startTime and endTime.",
                    rule.span_words
                ),
            ));
        }
        if e < s {
            return Err(ApiError::bad_request(
                -1128,
                "Combination of optional parameters invalid.",
            ));
        }
    }
    Ok(match (start, end, rule.default_back_ms) {
        (Some(s), Some(e), _) => (s, e),
        (Some(s), None, Some(_)) => (s, s + rule.max_span_ms),
        (Some(s), None, None) => (s, i64::MAX),
        (None, Some(e), Some(_)) => (e - rule.max_span_ms, e),
        (None, Some(e), None) => (i64::MIN, e),
        (None, None, Some(back)) => (now - back, now),
        (None, None, None) => (i64::MIN, i64::MAX),
    })
}

/// `fromId` cannot be combined with a time window (-1128).
pub fn reject_from_id_with_times(params: &Params) -> Result<(), ApiError> {
    if params.has("fromId") && (params.has("startTime") || params.has("endTime")) {
        return Err(ApiError::bad_request(
            -1128,
            "Combination of optional parameters invalid.",
        ));
    }
    Ok(())
}

/// Select trades like Binance: by order, from an id, in a window, or the most recent.
pub fn select_trades<'t>(
    trades: Vec<&'t Trade>,
    params: &Params,
    rule: WindowRule,
    now: i64,
    limit: usize,
) -> Result<Vec<&'t Trade>, ApiError> {
    reject_from_id_with_times(params)?;
    let order_id = params.u64("orderId")?;
    let from_id = params.u64("fromId")?;
    let mut selected: Vec<&Trade> = trades
        .into_iter()
        .filter(|t| order_id.is_none_or(|id| t.order_id == id))
        .collect();
    if let Some(from) = from_id {
        selected.retain(|t| t.id >= from);
        selected.truncate(limit);
        return Ok(selected);
    }
    let has_times = params.has("startTime") || params.has("endTime");
    if has_times || rule.default_back_ms.is_some() {
        let (start, end) = window(params, rule, now)?;
        selected.retain(|t| t.time >= start && t.time <= end);
    }
    if params.has("startTime") {
        selected.truncate(limit);
    } else if selected.len() > limit {
        // Most recent `limit`, still oldest first.
        selected.drain(..selected.len() - limit);
    }
    Ok(selected)
}

/// `rateLimits` as exchangeInfo lists them, reflecting the configured limit and window.
pub fn rate_limits(weight_limit: u32, window: Duration, orders: bool) -> Value {
    let secs = window.as_secs().max(1);
    let (interval, num) = if secs == 60 {
        ("MINUTE", 1)
    } else if secs.is_multiple_of(60) {
        ("MINUTE", secs / 60)
    } else {
        ("SECOND", secs)
    };
    let mut limits = vec![json!({
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": interval,
        "intervalNum": num,
        "limit": weight_limit,
    })];
    if orders {
        limits.push(json!({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100}));
        limits.push(json!({"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000}));
        limits.push(json!({"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000}));
    }
    Value::Array(limits)
}

/// Order-placement parameters shared by spot, margin and futures.
pub fn parse_new_order(
    ctx: &Ctx,
    market: Market,
    sym: &ScenarioSymbol,
) -> Result<super::state::NewOrder, ApiError> {
    let p = ctx.params;
    let side = p.required("side")?.to_ascii_uppercase();
    if side != "BUY" && side != "SELL" {
        return Err(ApiError::bad_request(-1117, "Invalid side."));
    }
    let order_type = p.required("type")?.to_ascii_uppercase();
    if !market.order_types().contains(&order_type.as_str()) {
        return Err(ApiError::bad_request(-1116, "Invalid orderType."));
    }
    let quantity = p
        .decimal("quantity")?
        .filter(|q| *q > Decimal::ZERO)
        .ok_or_else(|| ApiError::missing("quantity"))?;
    let needs_price = super::scenario::needs_price(&order_type);
    let price = if needs_price {
        p.decimal("price")?
            .filter(|q| *q > Decimal::ZERO)
            .ok_or_else(|| ApiError::missing("price"))?
    } else {
        Decimal::ZERO
    };
    let stop_price = if super::scenario::needs_stop_price(&order_type) {
        p.decimal("stopPrice")?
            .filter(|q| *q > Decimal::ZERO)
            .ok_or_else(|| ApiError::missing("stopPrice"))?
    } else {
        Decimal::ZERO
    };
    let time_in_force = match p.present("timeInForce") {
        Some(t) => t.to_ascii_uppercase(),
        None if needs_price && order_type != "LIMIT_MAKER" && !market.is_futures() => {
            return Err(ApiError::missing("timeInForce"))
        }
        None => "GTC".to_string(),
    };
    Ok(super::state::NewOrder {
        market,
        symbol: sym.symbol.clone(),
        side,
        order_type,
        price,
        stop_price,
        quantity,
        time_in_force,
        client_order_id: p.present("newClientOrderId").map(str::to_string),
        position_side: p
            .present("positionSide")
            .unwrap_or("BOTH")
            .to_ascii_uppercase(),
        is_isolated: p.flag("isIsolated"),
    })
}

/// Read `orderId` / `origClientOrderId` (one is mandatory).
pub fn order_ref(params: &Params) -> Result<(Option<u64>, Option<String>), ApiError> {
    let id = params.u64("orderId")?;
    let client = params.present("origClientOrderId").map(str::to_string);
    if id.is_none() && client.is_none() {
        return Err(ApiError::missing("orderId"));
    }
    Ok((id, client))
}
