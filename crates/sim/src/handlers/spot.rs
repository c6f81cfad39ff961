//! `/api/v3`: spot market data, account, orders and trades (and the ping/time/klines the
//! futures families share).
use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::render::{self, Cancelled, SpotOrder};
use super::{
    d8, fixed, order_ref, parse_new_order, rate_limits, select_trades, window, Ctx, DAY_RULE,
};
use crate::market::{self, candle, interval_minutes, price_now};
use crate::scenario::ScenarioSymbol;
use crate::state::{Order, Trade};
use crate::types::{ApiError, Market};

pub fn ping(_: &mut Ctx) -> Result<Value, ApiError> {
    Ok(json!({}))
}

pub fn time(ctx: &mut Ctx) -> Result<Value, ApiError> {
    Ok(json!({ "serverTime": ctx.now }))
}

fn spot_symbol_json(sym: &ScenarioSymbol, margin: bool) -> Value {
    json!({
        "symbol": sym.symbol,
        "status": sym.status,
        "baseAsset": sym.base,
        "baseAssetPrecision": 8,
        "quoteAsset": sym.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": true,
        "ocoAllowed": true,
        "otoAllowed": true,
        "quoteOrderQtyMarketAllowed": true,
        "allowTrailingStop": true,
        "cancelReplaceAllowed": true,
        "amendAllowed": true,
        "pegInstructionsAllowed": true,
        "isSpotTradingAllowed": sym.status == "TRADING",
        "isMarginTradingAllowed": margin,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": d8(market::tick_size(sym)),
                "maxPrice": d8(sym.price * Decimal::from(1000)),
                "tickSize": d8(market::tick_size(sym)),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": d8(market::step_size(sym)),
                "maxQty": "9000000.00000000",
                "stepSize": d8(market::step_size(sym)),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": "0.00000000",
                "applyMinToMarket": true,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": false,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [if margin { json!(["SPOT", "MARGIN"]) } else { json!(["SPOT"]) }],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"],
    })
}

/// Spot symbols: every spot symbol, plus margin symbols not also declared spot (margin
/// trades on spot symbols).
fn spot_symbols(ctx: &Ctx) -> Vec<(ScenarioSymbol, bool)> {
    let margin: BTreeSet<String> = ctx
        .state
        .symbols_of(Market::Margin)
        .map(|s| s.symbol.clone())
        .collect();
    let mut out: Vec<(ScenarioSymbol, bool)> = ctx
        .state
        .symbols_of(Market::Spot)
        .map(|s| (s.clone(), margin.contains(&s.symbol)))
        .collect();
    for s in ctx.state.symbols_of(Market::Margin) {
        if !out.iter().any(|(o, _)| o.symbol == s.symbol) {
            out.push((s.clone(), true));
        }
    }
    out
}

pub fn exchange_info(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let mut wanted: Option<Vec<String>> = ctx.params.symbol().map(|s| vec![s]);
    if let Some(list) = ctx.params.present("symbols") {
        let parsed: Vec<String> =
            serde_json::from_str(list).map_err(|_| ApiError::illegal("symbols"))?;
        wanted = Some(parsed.into_iter().map(|s| s.to_ascii_uppercase()).collect());
    }
    let all = spot_symbols(ctx);
    if let Some(w) = &wanted {
        if w.iter().any(|s| !all.iter().any(|(a, _)| &a.symbol == s)) {
            return Err(ApiError::invalid_symbol());
        }
    }
    let symbols = all
        .iter()
        .filter(|(s, _)| wanted.as_ref().is_none_or(|w| w.contains(&s.symbol)))
        .map(|(s, margin)| spot_symbol_json(s, *margin));
    // Written as it is built, one symbol's `Value` at a time: the whole answer as one
    // tree would hold about ten times its text (some 20 MB for 2,000 symbols). The keys
    // come in the order a `Value` object writes them (sorted), so the text is the same.
    let text = exchange_info_text(
        ctx.now,
        rate_limits(ctx.limits.api, ctx.limits.window, true),
        symbols,
    );
    ctx.answer_later(move || text);
    Ok(Value::Null)
}

/// Spot `exchangeInfo` as JSON text, each symbol serialised as the iterator yields it.
fn exchange_info_text(
    now: i64,
    rate_limits: Value,
    symbols: impl Iterator<Item = Value>,
) -> String {
    use serde::ser::{SerializeMap, Serializer};
    /// A sequence serialised straight from an iterator, without collecting it.
    struct Each<I>(std::cell::Cell<Option<I>>);
    impl<I: Iterator<Item = Value>> serde::Serialize for Each<I> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.0.take().into_iter().flatten())
        }
    }
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::new(&mut out);
    let written = (|| {
        let mut map = ser.serialize_map(None)?;
        map.serialize_entry("exchangeFilters", &json!([]))?;
        map.serialize_entry("rateLimits", &rate_limits)?;
        map.serialize_entry("serverTime", &now)?;
        map.serialize_entry("symbols", &Each(std::cell::Cell::new(Some(symbols))))?;
        map.serialize_entry("timezone", "UTC")?;
        map.end()
    })();
    written.expect("JSON values serialise");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

pub fn ticker_price(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let now = ctx.now;
    if let Some(sym) = ctx
        .optional_symbol(Market::Spot)
        .or_else(|_| ctx.optional_symbol(Market::Margin))?
    {
        return Ok(json!({ "symbol": sym.symbol, "price": d8(price_now(ctx.state, &sym, now)) }));
    }
    let prices: Vec<Value> = spot_symbols(ctx)
        .iter()
        .map(|(s, _)| json!({ "symbol": s.symbol, "price": d8(price_now(ctx.state, s, now)) }))
        .collect();
    Ok(Value::Array(prices))
}

/// Klines for spot, USDⓈ-M and COIN-M (by family).
pub fn klines(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let market = ctx.market();
    let market = if market == Market::Margin {
        Market::Spot
    } else {
        market
    };
    let sym = match ctx.required_symbol(market) {
        Err(e) if e.code == -1121 && market == Market::Spot => {
            ctx.required_symbol(Market::Margin)?
        }
        other => other?,
    };
    let interval = ctx.params.required("interval")?;
    let minutes = interval_minutes(interval)
        .ok_or_else(|| ApiError::bad_request(-1120, "Invalid interval."))?;
    let limit = ctx
        .params
        .limit(500, if market.is_futures() { 1500 } else { 1000 })?;
    let span = minutes * 60_000;
    let start = ctx.params.i64("startTime")?;
    let end = ctx.params.i64("endTime")?;
    let (first, last) = kline_range(start, end, span, limit, ctx.now);
    let coin = market == Market::Coinm;
    let mut rows = Vec::new();
    let mut t = first;
    while t <= last {
        let c = candle(ctx.state, &sym, t, minutes);
        let scale = market::price_scale(&sym);
        let p = |d: Decimal| {
            if market.is_futures() {
                fixed(d, scale)
            } else {
                d8(d)
            }
        };
        let (volume, quote_volume) = if coin {
            // COIN-M: volume in contracts, then the base-asset volume.
            let contracts = (c.quote_volume / Decimal::from(sym.contract_size)).round();
            (contracts.to_string(), fixed(c.volume, 8))
        } else {
            (p(c.volume), p(c.quote_volume))
        };
        rows.push(json!([
            c.open_time,
            p(c.open),
            p(c.high),
            p(c.low),
            p(c.close),
            volume,
            c.close_time,
            quote_volume,
            c.trades,
            "0",
            "0",
            "0"
        ]));
        t += span;
    }
    Ok(Value::Array(rows))
}

/// The open times of the first and last candle to return: from `startTime` (the first
/// whole candle at or after it), to `endTime` (and never past the current candle), at
/// most `limit` of them; without either, the most recent `limit`.
fn kline_range(
    start: Option<i64>,
    end: Option<i64>,
    span: i64,
    limit: usize,
    now: i64,
) -> (i64, i64) {
    let align = |t: i64| t.div_euclid(span) * span;
    let now_open = align(now);
    match (start, end) {
        (Some(s), Some(e)) => {
            let first = align(s + span - 1);
            (
                first,
                align(e)
                    .min(now_open)
                    .min(first + (limit as i64 - 1) * span),
            )
        }
        (Some(s), None) => {
            let first = align(s + span - 1);
            (first, now_open.min(first + (limit as i64 - 1) * span))
        }
        (None, Some(e)) => {
            let last = align(e).min(now_open);
            (last - (limit as i64 - 1) * span, last)
        }
        (None, None) => (now_open - (limit as i64 - 1) * span, now_open),
    }
}

pub fn account(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let omit_zero = ctx.params.flag("omitZeroBalances");
    let key = ctx.key.clone();
    let locked = ctx.state.locked(Market::Spot);
    let wallet = ctx
        .state
        .balances
        .get(&Market::Spot)
        .cloned()
        .unwrap_or_default();
    let balances: Vec<Value> = wallet
        .iter()
        .filter(|(_, total)| !omit_zero || !total.is_zero())
        .map(|(asset, total)| {
            let lock = locked.get(asset).copied().unwrap_or_default().min(*total);
            json!({ "asset": asset, "free": d8(*total - lock), "locked": d8(lock) })
        })
        .collect();
    let perms = key.as_ref().map(|k| k.permissions).unwrap_or_default();
    Ok(json!({
        "makerCommission": 10,
        "takerCommission": 10,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": { "maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000", "seller": "0.00000000" },
        "canTrade": perms.spot,
        "canWithdraw": perms.withdrawals,
        "canDeposit": true,
        "brokered": false,
        "requireSelfTradePrevention": false,
        "preventSor": false,
        "updateTime": ctx.now,
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": 354937868,
    }))
}

pub fn order_json(o: &Order) -> Value {
    render::tree(&SpotOrder::of(o))
}

/// An order as a cancel answers it (spot; margin adds `isIsolated`).
pub fn cancelled_json(o: &Order, now: i64) -> Value {
    render::tree(&Cancelled::spot(o, now))
}

pub fn open_orders(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let sym = ctx.optional_symbol(Market::Spot)?;
    let orders: Vec<Order> = ctx
        .state
        .open_orders(Market::Spot, sym.as_ref().map(|s| s.symbol.as_str()), false)
        .into_iter()
        .cloned()
        .collect();
    ctx.answer_later(move || render::text(&orders.iter().map(SpotOrder::of).collect::<Vec<_>>()));
    Ok(Value::Null)
}

pub fn cancel_all(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let sym = ctx.required_symbol(Market::Spot)?;
    let now = ctx.now;
    let cancelled = ctx
        .state
        .cancel_open(Market::Spot, &sym.symbol, false, None, now);
    if cancelled.is_empty() {
        return Err(ApiError::unknown_order());
    }
    ctx.answer_later(move || {
        render::cancelled_text(&cancelled, now, |o, now| Cancelled::spot(o, now))
    });
    Ok(Value::Null)
}

pub fn get_order(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let sym = ctx.required_symbol(Market::Spot)?;
    let (id, client) = order_ref(ctx.params)?;
    let i = ctx
        .state
        .find_order(Market::Spot, &sym.symbol, id, client.as_deref())
        .ok_or_else(ApiError::no_such_order)?;
    Ok(order_json(&ctx.state.orders[i]))
}

pub fn new_order(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let sym = ctx.required_symbol(Market::Spot)?;
    let new = parse_new_order(ctx, Market::Spot, &sym)?;
    let now = ctx.now;
    let price = price_now(ctx.state, &sym, now);
    let order = ctx.state.place_order(new, price, now);
    let resp_type = ctx
        .params
        .present("newOrderRespType")
        .map(str::to_ascii_uppercase)
        .unwrap_or_else(|| {
            if matches!(order.order_type.as_str(), "MARKET" | "LIMIT") {
                "FULL".into()
            } else {
                "ACK".into()
            }
        });
    let fills: Vec<Value> = ctx
        .state
        .trades
        .iter()
        .filter(|t| t.market == Market::Spot && t.order_id == order.order_id)
        .map(|t| {
            json!({
                "price": d8(t.price), "qty": d8(t.qty), "commission": d8(t.commission),
                "commissionAsset": t.commission_asset, "tradeId": t.id,
            })
        })
        .collect();
    let mut v = json!({
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": now,
    });
    if resp_type != "ACK" {
        let full = order_json(&order);
        for k in [
            "price",
            "origQty",
            "executedQty",
            "origQuoteOrderQty",
            "cummulativeQuoteQty",
            "status",
            "timeInForce",
            "type",
            "side",
            "workingTime",
            "selfTradePreventionMode",
        ] {
            v[k] = full[k].clone();
        }
        if resp_type == "FULL" {
            v["fills"] = Value::Array(fills);
        }
    }
    Ok(v)
}

pub fn cancel_order(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let sym = ctx.required_symbol(Market::Spot)?;
    let (id, client) = order_ref(ctx.params)?;
    let now = ctx.now;
    let i = ctx
        .state
        .find_order(Market::Spot, &sym.symbol, id, client.as_deref());
    let o = ctx.state.cancel_one(i, now)?;
    Ok(cancelled_json(&o, now))
}

pub fn all_orders(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let sym = ctx.required_symbol(Market::Spot)?;
    let limit = ctx.params.limit(500, 1000)?;
    let from_id = ctx.params.u64("orderId")?;
    let has_times = ctx.params.has("startTime") || ctx.params.has("endTime");
    let (start, end) = window(ctx.params, DAY_RULE, ctx.now)?;
    let mut orders: Vec<&Order> = ctx
        .state
        .orders
        .iter()
        .filter(|o| o.market == Market::Spot && o.symbol == sym.symbol)
        .filter(|o| from_id.is_none_or(|id| o.order_id >= id))
        .filter(|o| !has_times || (o.time >= start && o.time <= end))
        .collect();
    orders.sort_by_key(|o| o.order_id);
    if from_id.is_some() || ctx.params.has("startTime") {
        orders.truncate(limit);
    } else if orders.len() > limit {
        orders.drain(..orders.len() - limit);
    }
    let text = render::text(&orders.into_iter().map(SpotOrder::of).collect::<Vec<_>>());
    ctx.answer_later(move || text);
    Ok(Value::Null)
}

pub fn trade_json(t: &Trade) -> Value {
    json!({
        "symbol": t.symbol,
        "id": t.id,
        "orderId": t.order_id,
        "orderListId": -1,
        "price": d8(t.price),
        "qty": d8(t.qty),
        "quoteQty": d8(t.quote_qty),
        "commission": d8(t.commission),
        "commissionAsset": t.commission_asset,
        "time": t.time,
        "isBuyer": t.side == "BUY",
        "isMaker": t.maker,
        "isBestMatch": true,
    })
}

pub fn my_trades(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let sym = ctx.required_symbol(Market::Spot)?;
    let limit = ctx.params.limit(500, 1000)?;
    let trades = ctx.state.trades_of(Market::Spot, &sym.symbol);
    let selected = select_trades(trades, ctx.params, DAY_RULE, ctx.now, limit)?;
    Ok(Value::Array(selected.into_iter().map(trade_json).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_info_written_symbol_by_symbol_is_the_text_of_the_whole_value() {
        let limits = rate_limits(6_000, std::time::Duration::from_secs(60), true);
        let symbols = vec![
            json!({"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "filters": [{"b": "1", "a": 2}]}),
            json!({"symbol": "QAAUSDT", "status": "BREAK", "permissionSets": [["SPOT"]]}),
        ];
        let whole = json!({
            "timezone": "UTC",
            "serverTime": 1_700_000_000_123_i64,
            "rateLimits": limits.clone(),
            "exchangeFilters": [],
            "symbols": symbols.clone(),
        });
        let text = exchange_info_text(1_700_000_000_123, limits.clone(), symbols.into_iter());
        assert_eq!(text, whole.to_string());
        let none = exchange_info_text(0, limits, std::iter::empty());
        assert!(none.contains("\"symbols\":[]"), "{none}");
    }
}
