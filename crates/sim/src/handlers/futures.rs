//! `/fapi` (USDⓈ-M) and `/dapi` (COIN-M): one set of handlers, shaped per family where
//! Binance's answers differ (`cumQuote` vs `cumBase`, `pair`, `marginAsset`, algo orders).
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::render::{self, AlgoOrder, Coin, FuturesOrder, Scales};
use super::{
    fixed, order_ref, parse_new_order, plain, rate_limits, select_trades, window, Ctx, WindowRule,
    DAY_MS, WEEK_RULE,
};
use crate::market::{self, price_now};
use crate::scenario::ScenarioSymbol;
use crate::state::{is_conditional, NewOrder, Order, Trade};
use crate::types::{ApiError, Market};

/// A far-future delivery date Binance uses for perpetuals (2100-12-25).
const PERPETUAL_DELIVERY: i64 = 4_133_404_800_000;
const ONBOARD: i64 = 1_569_398_400_000;

fn pair_of(sym: &ScenarioSymbol) -> String {
    sym.symbol
        .split('_')
        .next()
        .unwrap_or(&sym.symbol)
        .to_string()
}

fn filters(sym: &ScenarioSymbol) -> Value {
    let tick = plain(market::tick_size(sym));
    let step = plain(market::step_size(sym));
    json!([
        { "filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": plain(sym.price * Decimal::from(100)), "tickSize": tick },
        { "filterType": "LOT_SIZE", "minQty": step, "maxQty": "1000000", "stepSize": step },
        { "filterType": "MARKET_LOT_SIZE", "minQty": step, "maxQty": "1000000", "stepSize": step },
        { "filterType": "MAX_NUM_ORDERS", "limit": 200 },
        { "filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10 },
        { "filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4" },
    ])
}

pub fn exchange_info(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let market = ctx.market();
    let coin = market == Market::Coinm;
    let symbols: Vec<Value> = ctx
        .state
        .symbols_of(market)
        .map(|s| {
            let mut v = json!({
                "symbol": s.symbol,
                "pair": pair_of(s),
                "contractType": "PERPETUAL",
                "deliveryDate": PERPETUAL_DELIVERY,
                "onboardDate": ONBOARD,
                "maintMarginPercent": "2.5000",
                "requiredMarginPercent": "5.0000",
                "baseAsset": s.base,
                "quoteAsset": s.quote,
                "marginAsset": if coin { &s.base } else { &s.quote },
                "pricePrecision": market::price_scale(s),
                "quantityPrecision": if coin { 0 } else { market::qty_scale(s) },
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "underlyingType": "COIN",
                "underlyingSubType": [],
                "triggerProtect": "0.0500",
                "liquidationFee": "0.012500",
                "marketTakeBound": "0.05",
                "filters": filters(s),
                "orderTypes": market.order_types(),
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            });
            if coin {
                v["contractStatus"] = json!("TRADING");
                v["contractSize"] = json!(s.contract_size);
                v["equalQtyPrecision"] = json!(4);
            } else {
                v["status"] = json!("TRADING");
                v["settlePlan"] = json!(0);
                v["maxMoveOrderLimit"] = json!(10000);
            }
            v
        })
        .collect();
    // `/fapi` and `/dapi` list the same limits: since 2026-06-30 they are one pool of
    // IP weight and one order budget.
    let mut limits = rate_limits(ctx.limits.fapi, ctx.limits.window, false);
    if let Value::Array(list) = &mut limits {
        list.push(json!({"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200}));
        list.push(json!({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300}));
    }
    let mut info = json!({
        "timezone": "UTC",
        "serverTime": ctx.now,
        "rateLimits": limits,
        "exchangeFilters": [],
        "symbols": symbols,
    });
    if !coin {
        info["futuresType"] = json!("U_MARGINED");
        let mut assets: Vec<String> = ctx
            .state
            .symbols_of(market)
            .map(|s| s.quote.clone())
            .collect();
        assets.sort();
        assets.dedup();
        info["assets"] = assets
            .iter()
            .map(|a| json!({ "asset": a, "marginAvailable": true, "autoAssetExchange": "-10000" }))
            .collect();
    }
    Ok(info)
}

pub fn ticker_price(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let market = ctx.market();
    let now = ctx.now;
    let one = |s: &ScenarioSymbol| {
        let mut v = json!({
            "symbol": s.symbol,
            "price": fixed(price_now(ctx.state, s, now), market::price_scale(s)),
            "time": now,
        });
        if market == Market::Coinm {
            v["ps"] = json!(pair_of(s));
        }
        v
    };
    match ctx.optional_symbol(market)? {
        // COIN-M answers a list even for one symbol.
        Some(s) if market == Market::Usdm => Ok(one(&s)),
        Some(s) => Ok(json!([one(&s)])),
        None => Ok(Value::Array(
            ctx.state.symbols_of(market).map(one).collect(),
        )),
    }
}

/// The scales `sym` writes prices and quantities with (8 and 8 for an unknown symbol).
fn scales(sym: Option<&ScenarioSymbol>) -> Scales {
    sym.map_or(Scales { price: 8, qty: 8 }, |s| Scales {
        price: market::price_scale(s),
        qty: market::qty_scale(s),
    })
}

/// How a COIN-M order differs when written (`None` on USDⓈ-M).
fn coin(o: &Order, sym: Option<&ScenarioSymbol>) -> Option<Coin> {
    (o.market == Market::Coinm).then(|| Coin {
        pair: sym.map_or(o.symbol.clone(), pair_of),
        contract_size: sym.map_or(Decimal::ZERO, |s| Decimal::from(s.contract_size)),
    })
}

fn futures_order<'a>(o: &'a Order, sym: Option<&ScenarioSymbol>) -> FuturesOrder<'a> {
    FuturesOrder::of(o, scales(sym), coin(o, sym))
}

fn order_json(o: &Order, sym: Option<&ScenarioSymbol>) -> Value {
    render::tree(&futures_order(o, sym))
}

fn algo_json(o: &Order, sym: Option<&ScenarioSymbol>) -> Value {
    render::tree(&AlgoOrder::of(o, scales(sym)))
}

/// Open orders (or, with `algo`, open conditional orders), written as text.
fn orders_json(ctx: &mut Ctx, algo: bool) -> Result<Value, ApiError> {
    let market = ctx.market();
    let sym = ctx.optional_symbol(market)?;
    let state = &*ctx.state;
    // Each order with what its symbol says about writing it (conditional orders are
    // written without their contract).
    let mut list: Vec<(Order, Scales, Option<Coin>)> = state
        .open_orders(market, sym.as_ref().map(|s| s.symbol.as_str()), algo)
        .into_iter()
        .map(|o| {
            let sym = state.symbol(market, &o.symbol);
            (
                o.clone(),
                scales(sym),
                if algo { None } else { coin(o, sym) },
            )
        })
        .collect();
    ctx.answer_later(move || {
        if algo {
            render::text(
                &list
                    .iter()
                    .map(|(o, scales, _)| AlgoOrder::of(o, *scales))
                    .collect::<Vec<_>>(),
            )
        } else {
            render::text(
                &list
                    .iter_mut()
                    .map(|(o, scales, coin)| FuturesOrder::of(o, *scales, coin.take()))
                    .collect::<Vec<_>>(),
            )
        }
    });
    Ok(Value::Null)
}

pub fn open_orders(ctx: &mut Ctx) -> Result<Value, ApiError> {
    orders_json(ctx, false)
}

pub fn open_algo_orders(ctx: &mut Ctx) -> Result<Value, ApiError> {
    orders_json(ctx, true)
}

/// Futures cancel-all answers success whether or not anything was open.
fn cancel_all_of(ctx: &mut Ctx, algo: bool) -> Result<Value, ApiError> {
    let market = ctx.market();
    let sym = ctx.required_symbol(market)?;
    let now = ctx.now;
    ctx.state.cancel_open(market, &sym.symbol, algo, None, now);
    Ok(json!({ "code": 200, "msg": "The operation of cancel all open order is done." }))
}

pub fn cancel_all(ctx: &mut Ctx) -> Result<Value, ApiError> {
    cancel_all_of(ctx, false)
}

pub fn cancel_all_algo(ctx: &mut Ctx) -> Result<Value, ApiError> {
    cancel_all_of(ctx, true)
}

pub fn get_order(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let market = ctx.market();
    let sym = ctx.required_symbol(market)?;
    let (id, client) = order_ref(ctx.params)?;
    let i = ctx
        .state
        .find_order(market, &sym.symbol, id, client.as_deref())
        .filter(|i| !ctx.state.orders[*i].algo)
        .ok_or_else(ApiError::no_such_order)?;
    Ok(order_json(&ctx.state.orders[i], Some(&sym)))
}

/// `/order` takes only LIMIT and MARKET: conditional types go to `/algoOrder` (USDⓈ-M
/// since 2025-12-09, COIN-M since 2026-06-30), and Binance answers -4120 here.
pub fn new_order(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let market = ctx.market();
    let sym = ctx.required_symbol(market)?;
    if ctx
        .params
        .present("type")
        .is_some_and(|t| is_conditional(&t.to_ascii_uppercase()))
    {
        return Err(ApiError::bad_request(
            -4120,
            "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
        ));
    }
    let new = parse_new_order(ctx, market, &sym)?;
    let now = ctx.now;
    let price = price_now(ctx.state, &sym, now);
    let o = ctx.state.place_order(new, price, now);
    Ok(order_json(&o, Some(&sym)))
}

/// `POST /algoOrder` with `algoType=CONDITIONAL`: a stop, take-profit or trailing stop,
/// kept in the algo book. `triggerPrice` plays the role `stopPrice` had on `/order`.
pub fn new_algo_order(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let market = ctx.market();
    let p = ctx.params;
    if !p.required("algoType")?.eq_ignore_ascii_case("CONDITIONAL") {
        return Err(ApiError::bad_request(-1116, "Invalid algoType."));
    }
    let sym = ctx.required_symbol(market)?;
    let side = p.required("side")?.to_ascii_uppercase();
    if side != "BUY" && side != "SELL" {
        return Err(ApiError::bad_request(-1117, "Invalid side."));
    }
    let order_type = p.required("type")?.to_ascii_uppercase();
    if !is_conditional(&order_type) {
        return Err(ApiError::bad_request(-1116, "Invalid orderType."));
    }
    let quantity = p
        .decimal("quantity")?
        .filter(|q| *q > Decimal::ZERO)
        .ok_or_else(|| ApiError::missing("quantity"))?;
    let price = if matches!(order_type.as_str(), "STOP" | "TAKE_PROFIT") {
        p.decimal("price")?
            .filter(|q| *q > Decimal::ZERO)
            .ok_or_else(|| ApiError::missing("price"))?
    } else {
        Decimal::ZERO
    };
    let trigger = if order_type == "TRAILING_STOP_MARKET" {
        p.decimal("activatePrice")?.unwrap_or_default()
    } else {
        p.decimal("triggerPrice")?
            .filter(|q| *q > Decimal::ZERO)
            .ok_or_else(|| ApiError::missing("triggerPrice"))?
    };
    let new = NewOrder {
        market,
        symbol: sym.symbol.clone(),
        side,
        order_type,
        price,
        stop_price: trigger,
        quantity,
        time_in_force: p
            .present("timeInForce")
            .unwrap_or("GTC")
            .to_ascii_uppercase(),
        client_order_id: p.present("clientAlgoId").map(str::to_string),
        position_side: p
            .present("positionSide")
            .unwrap_or("BOTH")
            .to_ascii_uppercase(),
        is_isolated: false,
    };
    let now = ctx.now;
    let price_now = price_now(ctx.state, &sym, now);
    let o = ctx.state.place_order(new, price_now, now);
    Ok(algo_json(&o, Some(&sym)))
}

/// The algo order named by `algoId` or `clientAlgoId` (one is mandatory).
fn find_algo(ctx: &Ctx) -> Result<Option<usize>, ApiError> {
    let market = ctx.market();
    let id = ctx.params.u64("algoId")?;
    let client = ctx.params.present("clientAlgoId");
    if id.is_none() && client.is_none() {
        return Err(ApiError::missing("algoId"));
    }
    Ok(ctx.state.orders.iter().position(|o| {
        o.market == market
            && o.algo
            && (id.is_some_and(|id| o.order_id == id)
                || client.is_some_and(|c| o.client_order_id == c))
    }))
}

pub fn get_algo_order(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let i = find_algo(ctx)?.ok_or_else(ApiError::no_such_order)?;
    let o = &ctx.state.orders[i];
    Ok(algo_json(o, ctx.state.symbol(o.market, &o.symbol)))
}

pub fn cancel_algo_order(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let i = find_algo(ctx)?;
    let now = ctx.now;
    let o = ctx.state.cancel_one(i, now)?;
    Ok(json!({
        "algoId": o.order_id,
        "clientAlgoId": o.client_order_id,
        "code": "200",
        "msg": "success",
    }))
}

pub fn cancel_order(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let market = ctx.market();
    let sym = ctx.required_symbol(market)?;
    let (id, client) = order_ref(ctx.params)?;
    let now = ctx.now;
    let i = ctx
        .state
        .find_order(market, &sym.symbol, id, client.as_deref())
        .filter(|i| !ctx.state.orders[*i].algo);
    let o = ctx.state.cancel_one(i, now)?;
    Ok(order_json(&o, Some(&sym)))
}

fn trade_json(t: &Trade, sym: &ScenarioSymbol) -> Value {
    let ps = market::price_scale(sym);
    let coin = t.market == Market::Coinm;
    let mut v = json!({
        "buyer": t.side == "BUY",
        "commission": fixed(t.commission, 8),
        "commissionAsset": t.commission_asset,
        "id": t.id,
        "maker": t.maker,
        "orderId": t.order_id,
        "price": fixed(t.price, ps),
        "qty": plain(t.qty),
        "realizedPnl": fixed(t.realized_pnl, 8),
        "side": t.side,
        "positionSide": "BOTH",
        "symbol": t.symbol,
        "time": t.time,
    });
    if coin {
        v["pair"] = json!(pair_of(sym));
        v["marginAsset"] = json!(sym.base);
        v["baseQty"] = json!(fixed(t.qty * Decimal::from(sym.contract_size) / t.price, 8));
    } else {
        v["quoteQty"] = json!(fixed(t.quote_qty, 8));
    }
    v
}

pub fn user_trades(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let market = ctx.market();
    let coin = market == Market::Coinm;
    let limit = ctx.params.limit(if coin { 50 } else { 500 }, 1000)?;
    let symbols: Vec<ScenarioSymbol> = if coin && !ctx.params.has("symbol") {
        let pair = ctx
            .params
            .required("pair")
            .map_err(|_| ApiError::missing("symbol"))?;
        let pair = pair.to_ascii_uppercase();
        let list: Vec<ScenarioSymbol> = ctx
            .state
            .symbols_of(market)
            .filter(|s| pair_of(s) == pair)
            .cloned()
            .collect();
        if list.is_empty() {
            return Err(ApiError::invalid_symbol());
        }
        list
    } else {
        if coin && ctx.params.has("pair") {
            return Err(ApiError::bad_request(
                -1128,
                "Combination of optional parameters invalid.",
            ));
        }
        vec![ctx.required_symbol(market)?]
    };
    let mut trades: Vec<&Trade> = symbols
        .iter()
        .flat_map(|s| ctx.state.trades_of(market, &s.symbol))
        .collect();
    trades.sort_by_key(|t| (t.time, t.id));
    let selected = select_trades(trades, ctx.params, WEEK_RULE, ctx.now, limit)?;
    Ok(Value::Array(
        selected
            .into_iter()
            .map(|t| {
                let sym = symbols
                    .iter()
                    .find(|s| s.symbol == t.symbol)
                    .expect("selected from these");
                trade_json(t, sym)
            })
            .collect(),
    ))
}

/// `/fapi/v1/income`: no limit on the span documented (the history keeps three months);
/// neither time sent: the last 7 days.
const FAPI_INCOME_RULE: WindowRule = WindowRule {
    max_span_ms: 100 * 365 * DAY_MS,
    span_words: "100 years",
    default_back_ms: Some(7 * DAY_MS),
};
/// `/dapi/v1/income`: at most 200 days between startTime and endTime.
const DAPI_INCOME_RULE: WindowRule = WindowRule {
    max_span_ms: 200 * DAY_MS,
    span_words: "200 days",
    default_back_ms: Some(7 * DAY_MS),
};

/// `GET /fapi/v1/income`, `/dapi/v1/income`: the account's income flow, no symbol needed.
/// Every trade makes a COMMISSION row (when it paid one) and a REALIZED_PNL row (when it
/// closed something); universal transfers into and out of the futures wallet make
/// TRANSFER rows with an empty symbol. Oldest first; with `startTime`, the first `limit`
/// rows from it (Binance: "startTime + limit"), otherwise the most recent `limit`.
/// `tranId` is a number on `/fapi`, a string on `/dapi`; `tradeId` a string, `""` when
/// no trade made the row. `/fapi` keeps three months.
pub fn income(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let market = ctx.market();
    let coin = market == Market::Coinm;
    let limit = ctx.params.limit(100, 1000)?;
    let only_symbol = ctx.optional_symbol(market)?.map(|s| s.symbol);
    let only_type = ctx.params.present("incomeType").map(str::to_string);
    let rule = if coin {
        DAPI_INCOME_RULE
    } else {
        FAPI_INCOME_RULE
    };
    let (mut start, end) = window(ctx.params, rule, ctx.now)?;
    if !coin {
        start = start.max(ctx.now - 90 * DAY_MS);
    }
    let rows = income_flow(ctx.state, market);
    // Ids fixed over the whole flow, so a row keeps its id whatever the filter.
    let mut selected: Vec<(u64, _)> = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| (9_689_322_392 + i as u64, r))
        .filter(|(_, r)| r.0 >= start && r.0 <= end)
        .filter(|(_, r)| only_symbol.as_ref().is_none_or(|s| &r.2 == s))
        .filter(|(_, r)| only_type.as_ref().is_none_or(|k| r.1 == k))
        .collect();
    if ctx.params.has("startTime") {
        selected.truncate(limit);
    } else if selected.len() > limit {
        selected.drain(..selected.len() - limit);
    }
    Ok(Value::Array(
        selected
            .into_iter()
            .map(
                |(id, (time, kind, symbol, amount, asset, info, trade_id))| {
                    json!({
                        "symbol": symbol,
                        "incomeType": kind,
                        "income": fixed(amount, 8),
                        "asset": asset,
                        "info": if info.is_empty() { kind } else { info },
                        "time": time,
                        "tranId": if coin { json!(id.to_string()) } else { json!(id) },
                        "tradeId": trade_id,
                    })
                },
            )
            .collect(),
    ))
}

/// One income row: (time, type, symbol, income, asset, info, tradeId).
type IncomeRow = (
    i64,
    &'static str,
    String,
    Decimal,
    String,
    &'static str,
    String,
);

/// The market's whole income flow, oldest first: commission and realised PnL of every
/// trade, transfers into and out of its wallet.
fn income_flow(state: &crate::state::State, market: Market) -> Vec<IncomeRow> {
    let coin = market == Market::Coinm;
    let mut rows: Vec<IncomeRow> = Vec::new();
    for t in state.trades.iter().filter(|t| t.market == market) {
        if !t.commission.is_zero() {
            rows.push((
                t.time,
                "COMMISSION",
                t.symbol.clone(),
                -t.commission,
                t.commission_asset.clone(),
                "",
                t.id.to_string(),
            ));
        }
        if !t.realized_pnl.is_zero() {
            let asset = state
                .symbol(market, &t.symbol)
                .map(|s| {
                    if coin {
                        s.base.clone()
                    } else {
                        s.quote.clone()
                    }
                })
                .unwrap_or_default();
            rows.push((
                t.time,
                "REALIZED_PNL",
                t.symbol.clone(),
                t.realized_pnl,
                asset,
                "",
                t.id.to_string(),
            ));
        }
    }
    let (into, out_of) = if coin {
        ("MAIN_CMFUTURE", "CMFUTURE_MAIN")
    } else {
        ("MAIN_UMFUTURE", "UMFUTURE_MAIN")
    };
    for t in &state.transfers {
        let signed = if t.transfer_type == into {
            t.amount
        } else if t.transfer_type == out_of {
            -t.amount
        } else {
            continue;
        };
        rows.push((
            t.time,
            "TRANSFER",
            String::new(),
            signed,
            t.asset.clone(),
            "TRANSFER",
            String::new(),
        ));
    }
    rows.sort_by(|a, b| (a.0, a.1, &a.2, &a.6).cmp(&(b.0, b.1, &b.2, &b.6)));
    rows
}

/// Unrealised profit of a position at the simulated mark price.
fn unrealized(ctx: &Ctx, market: Market, symbol: &str, amount: Decimal, entry: Decimal) -> Decimal {
    let Some(sym) = ctx.state.symbol(market, symbol) else {
        return Decimal::ZERO;
    };
    let mark = price_now(ctx.state, sym, ctx.now);
    if market == Market::Coinm {
        let size = Decimal::from(sym.contract_size);
        (amount * size * (Decimal::ONE / entry - Decimal::ONE / mark)).round_dp(8)
    } else {
        (amount * (mark - entry)).round_dp(8)
    }
}

pub fn balance(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let market = ctx.market();
    let wallet = ctx.state.balances.get(&market).cloned().unwrap_or_default();
    let rows: Vec<Value> = wallet
        .iter()
        .map(|(asset, amount)| {
            let mut v = json!({
                "accountAlias": "SgsR",
                "asset": asset,
                "balance": fixed(*amount, 8),
                "crossWalletBalance": fixed(*amount, 8),
                "crossUnPnl": "0.00000000",
                "availableBalance": fixed(*amount, 8),
                "updateTime": ctx.now,
            });
            if market == Market::Usdm {
                v["maxWithdrawAmount"] = json!(fixed(*amount, 8));
                v["marginAvailable"] = json!(true);
            } else {
                v["withdrawAvailable"] = json!(fixed(*amount, 8));
            }
            v
        })
        .collect();
    Ok(Value::Array(rows))
}

fn positions_json(ctx: &Ctx, risk: bool) -> Vec<Value> {
    let market = ctx.market();
    let coin = market == Market::Coinm;
    ctx.state
        .symbols_of(market)
        .map(|s| {
            let pos = ctx
                .state
                .positions
                .iter()
                .find(|p| p.market == market && p.symbol == s.symbol);
            let amount = pos.map_or(Decimal::ZERO, |p| p.amount);
            let entry = pos.map_or(Decimal::ZERO, |p| p.entry_price);
            let leverage = pos.map_or(20, |p| p.leverage);
            let mark = price_now(ctx.state, s, ctx.now);
            let pnl = if amount.is_zero() {
                Decimal::ZERO
            } else {
                unrealized(ctx, market, &s.symbol, amount, entry)
            };
            let ps = market::price_scale(s);
            let notional = if coin {
                (amount * Decimal::from(s.contract_size) / mark).round_dp(8)
            } else {
                (amount * mark).round_dp(8)
            };
            let mut v = json!({
                "symbol": s.symbol,
                "positionAmt": plain(amount),
                "entryPrice": fixed(entry, ps),
                "breakEvenPrice": fixed(entry, ps),
                "markPrice": fixed(mark, ps),
                "unRealizedProfit": fixed(pnl, 8),
                "liquidationPrice": "0",
                "leverage": leverage.to_string(),
                "marginType": "cross",
                "isolatedMargin": "0.00000000",
                "isAutoAddMargin": "false",
                "positionSide": "BOTH",
                "isolatedWallet": "0",
                "updateTime": if amount.is_zero() { 0 } else { ctx.now },
            });
            if coin {
                v["maxQty"] = json!("1000");
                v["notionalValue"] = json!(fixed(notional, 8));
                if !risk {
                    v["pair"] = json!(pair_of(s));
                }
            } else {
                v["notional"] = json!(fixed(notional, 8));
                v["maxNotionalValue"] = json!("10000000");
            }
            if !risk {
                v["initialMargin"] = json!("0");
                v["maintMargin"] = json!("0");
            }
            v
        })
        .collect()
}

/// `/fapi/v2/positionRisk` and `/dapi/v1/positionRisk`: every symbol, open or not.
pub fn position_risk(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let market = ctx.market();
    let only = ctx.optional_symbol(market)?.map(|s| s.symbol);
    let all = positions_json(ctx, true);
    Ok(Value::Array(
        all.into_iter()
            .filter(|v| only.as_ref().is_none_or(|s| v["symbol"] == json!(s)))
            .collect(),
    ))
}

/// `/fapi/v3/positionRisk`, in v3's own shape: no `leverage`, `marginType`,
/// `isAutoAddMargin` or `maxNotionalValue`; margins, `marginAsset`, `adl` and the bid/ask
/// notionals instead; and only symbols with a position or open orders.
pub fn position_risk_v3(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let market = ctx.market();
    let only = ctx.optional_symbol(market)?.map(|s| s.symbol);
    let mut out = Vec::new();
    // Each symbol's orders are looked up, not scanned for among every order.
    ctx.state.index_orders();
    for mut v in positions_json(ctx, true) {
        let symbol = v["symbol"].as_str().unwrap_or_default().to_string();
        if only.as_ref().is_some_and(|s| *s != symbol) {
            continue;
        }
        let open_orders: Vec<&crate::state::Order> = ctx.state.open_on(market, &symbol).collect();
        let amount: Decimal = v["positionAmt"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_default();
        if amount.is_zero() && open_orders.is_empty() {
            continue;
        }
        let Some(sym) = ctx.state.symbol(market, &symbol) else {
            continue;
        };
        let quote = sym.quote.clone();
        let mark = price_now(ctx.state, sym, ctx.now);
        let leverage = v["leverage"]
            .as_str()
            .and_then(|l| l.parse::<Decimal>().ok())
            .filter(|l| !l.is_zero())
            .unwrap_or(Decimal::from(20));
        let side_notional = |side: &str| -> Decimal {
            open_orders
                .iter()
                .filter(|o| o.side == side)
                .map(|o| {
                    (o.orig_qty - o.executed_qty) * if o.price.is_zero() { mark } else { o.price }
                })
                .sum()
        };
        let (bid, ask) = (side_notional("BUY"), side_notional("SELL"));
        let position_margin = (amount.abs() * mark / leverage).round_dp(8);
        let order_margin = ((bid + ask) / leverage).round_dp(8);
        let obj = v.as_object_mut().expect("a position is an object");
        for gone in [
            "leverage",
            "marginType",
            "isAutoAddMargin",
            "maxNotionalValue",
        ] {
            obj.remove(gone);
        }
        obj.insert("marginAsset".into(), json!(quote));
        obj.insert(
            "initialMargin".into(),
            json!(fixed(position_margin + order_margin, 8)),
        );
        obj.insert(
            "maintMargin".into(),
            json!(fixed(
                (amount.abs() * mark * Decimal::new(4, 3)).round_dp(8),
                8
            )),
        );
        obj.insert(
            "positionInitialMargin".into(),
            json!(fixed(position_margin, 8)),
        );
        obj.insert(
            "openOrderInitialMargin".into(),
            json!(fixed(order_margin, 8)),
        );
        obj.insert("adl".into(), json!(if amount.is_zero() { 0 } else { 1 }));
        obj.insert("bidNotional".into(), json!(fixed(bid.round_dp(8), 8)));
        obj.insert("askNotional".into(), json!(fixed(ask.round_dp(8), 8)));
        out.push(v);
    }
    Ok(Value::Array(out))
}

pub fn account(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let market = ctx.market();
    let wallet = ctx.state.balances.get(&market).cloned().unwrap_or_default();
    let perms = ctx.key.as_ref().map(|k| k.permissions).unwrap_or_default();
    let assets: Vec<Value> = wallet
        .iter()
        .map(|(asset, amount)| {
            json!({
                "asset": asset,
                "walletBalance": fixed(*amount, 8),
                "unrealizedProfit": "0.00000000",
                "marginBalance": fixed(*amount, 8),
                "maintMargin": "0.00000000",
                "initialMargin": "0.00000000",
                "positionInitialMargin": "0.00000000",
                "openOrderInitialMargin": "0.00000000",
                "crossWalletBalance": fixed(*amount, 8),
                "crossUnPnl": "0.00000000",
                "availableBalance": fixed(*amount, 8),
                "maxWithdrawAmount": fixed(*amount, 8),
                "updateTime": ctx.now,
            })
        })
        .collect();
    let positions = positions_json(ctx, false);
    let mut v = json!({
        "feeTier": 0,
        "canTrade": perms.futures,
        "canDeposit": true,
        "canWithdraw": perms.withdrawals,
        "updateTime": 0,
        "assets": assets,
        "positions": positions,
    });
    if market == Market::Usdm {
        let total: Decimal = wallet.values().copied().sum();
        for k in [
            "totalWalletBalance",
            "totalMarginBalance",
            "totalCrossWalletBalance",
            "availableBalance",
            "maxWithdrawAmount",
        ] {
            v[k] = json!(fixed(total, 8));
        }
        for k in [
            "totalInitialMargin",
            "totalMaintMargin",
            "totalUnrealizedProfit",
            "totalPositionInitialMargin",
            "totalOpenOrderInitialMargin",
            "totalCrossUnPnl",
        ] {
            v[k] = json!("0.00000000");
        }
        v["multiAssetsMargin"] = json!(false);
        v["tradeGroupId"] = json!(-1);
    }
    Ok(v)
}

/// Notional (USDⓈ-M) or quantity (COIN-M) brackets, the same three for every symbol.
pub fn leverage_brackets(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let market = ctx.market();
    let only = ctx.optional_symbol(market)?.map(|s| s.symbol);
    let coin = market == Market::Coinm;
    let (cap, floor) = if coin {
        ("qtyCap", "qtyFloor")
    } else {
        ("notionalCap", "notionalFloor")
    };
    let steps: [(u32, u64, u64, f64, f64); 3] = [
        (125, 0, 50_000, 0.004, 0.0),
        (100, 50_000, 600_000, 0.005, 50.0),
        (50, 600_000, 3_000_000, 0.01, 3050.0),
    ];
    let scale = if coin { 10_000 } else { 1 };
    let rows: Vec<Value> = ctx
        .state
        .symbols_of(market)
        .filter(|s| only.as_ref().is_none_or(|o| &s.symbol == o))
        .map(|s| {
            let brackets: Vec<Value> = steps
                .iter()
                .enumerate()
                .map(|(i, (lev, lo, hi, mmr, cum))| {
                    json!({
                        "bracket": i + 1,
                        "initialLeverage": lev,
                        cap: hi / scale,
                        floor: lo / scale,
                        "maintMarginRatio": mmr,
                        "cum": cum,
                    })
                })
                .collect();
            let mut v = json!({ "symbol": s.symbol, "brackets": brackets });
            if !coin {
                v["notionalCoef"] = json!(1.0);
            }
            v
        })
        .collect();
    match (market, &only) {
        (Market::Usdm, Some(_)) => Ok(rows.into_iter().next().unwrap_or(Value::Null)),
        _ => Ok(Value::Array(rows)),
    }
}
