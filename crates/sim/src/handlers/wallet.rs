//! `/sapi`: key restrictions, account status, coins, withdrawals, deposits, universal
//! transfers, Binance Pay, and cross/isolated margin.
use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::render::{self, Cancelled, MarginOrder};
use super::{
    d8, order_ref, parse_new_order, select_trades, window, Ctx, DAY_RULE, NINETY_DAY_RULE,
};
use crate::market::price_now;
use crate::scenario::TRANSFER_TYPES;
use crate::state::Order;
use crate::state::Trade;
use crate::types::{binance_datetime, ApiError, Market};

pub fn system_status(_: &mut Ctx) -> Result<Value, ApiError> {
    Ok(json!({ "status": 0, "msg": "normal" }))
}

pub fn api_restrictions(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let key = ctx.key.clone().ok_or_else(|| ApiError::missing("apiKey"))?;
    let p = key.permissions;
    Ok(json!({
        "ipRestrict": !key.ip_whitelist.is_empty(),
        "createTime": key.created_ms,
        "enableReading": p.reading,
        "enableWithdrawals": p.withdrawals,
        "enableInternalTransfer": false,
        "enableMargin": p.margin,
        "enableFutures": p.futures,
        "permitsUniversalTransfer": p.spot || p.margin || p.futures,
        "enableVanillaOptions": p.options,
        "enableFixApiTrade": false,
        "enableFixReadOnly": false,
        "enableSpotAndMarginTrading": p.spot,
        "enablePortfolioMarginTrading": p.portfolio_margin,
    }))
}

pub fn account_status(_: &mut Ctx) -> Result<Value, ApiError> {
    Ok(json!({ "data": "Normal" }))
}

fn network_json(coin: &str, network: &str, default: bool) -> Value {
    json!({
        "network": network,
        "coin": coin,
        "withdrawIntegerMultiple": "0.00000001",
        "isDefault": default,
        "depositEnable": true,
        "withdrawEnable": true,
        "depositDesc": "",
        "withdrawDesc": "",
        "specialTips": "",
        "name": network,
        "resetAddressStatus": false,
        "addressRegex": "^.+$",
        "memoRegex": "",
        "withdrawFee": "0.0005",
        "withdrawMin": "0.001",
        "withdrawMax": "9999999",
        "withdrawInternalMin": "0.00000001",
        "depositDust": "0.00000001",
        "minConfirm": 1,
        "unLockConfirm": 2,
        "sameAddress": false,
        "estimatedArrivalTime": 5,
        "busy": false,
        "contractAddressUrl": "",
        "contractAddress": "",
        "denomination": 1,
    })
}

/// `capital/config/getall`: every asset the scenario mentions, with spot balances.
pub fn coins(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let mut assets: BTreeSet<String> = BTreeSet::new();
    for s in ctx.state.symbols() {
        assets.insert(s.base.clone());
        if s.market != Market::Coinm {
            assets.insert(s.quote.clone());
        }
    }
    for wallet in ctx.state.balances.values() {
        assets.extend(wallet.keys().cloned());
    }
    let spot = ctx
        .state
        .balances
        .get(&Market::Spot)
        .cloned()
        .unwrap_or_default();
    let locked = ctx.state.locked(Market::Spot);
    let networks_of = |coin: &str| -> BTreeSet<String> {
        let mut n: BTreeSet<String> = ctx
            .state
            .withdrawals
            .iter()
            .filter(|w| w.coin == coin)
            .map(|w| w.network.clone())
            .chain(
                ctx.state
                    .deposits
                    .iter()
                    .filter(|d| d.coin == coin)
                    .map(|d| d.network.clone()),
            )
            .collect();
        if n.is_empty() {
            n.insert(if coin == "BTC" {
                "BTC".into()
            } else {
                "BSC".into()
            });
        }
        n
    };
    let list: Vec<Value> = assets
        .iter()
        .map(|coin| {
            let total = spot.get(coin).copied().unwrap_or_default();
            let lock = locked.get(coin).copied().unwrap_or_default().min(total);
            let networks: Vec<Value> = networks_of(coin)
                .iter()
                .enumerate()
                .map(|(i, n)| network_json(coin, n, i == 0))
                .collect();
            json!({
                "coin": coin,
                "depositAllEnable": true,
                "withdrawAllEnable": true,
                "name": coin,
                "free": d8(total - lock),
                "locked": d8(lock),
                "freeze": "0",
                "withdrawing": "0",
                "ipoing": "0",
                "ipoable": "0",
                "storage": "0",
                "isLegalMoney": false,
                "trading": true,
                "networkList": networks,
            })
        })
        .collect();
    Ok(Value::Array(list))
}

/// offset/limit paging, newest first.
fn page<T>(mut items: Vec<T>, offset: usize, limit: usize) -> Vec<T> {
    let end = (offset + limit).min(items.len());
    if offset >= items.len() {
        return Vec::new();
    }
    items.drain(offset..end).collect()
}

pub fn withdrawals(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let p = ctx.params;
    let (start, end) = window(p, NINETY_DAY_RULE, ctx.now)?;
    let coin = p.present("coin").map(str::to_ascii_uppercase);
    let status = p.u64("status")?;
    let offset = p.u64("offset")?.unwrap_or(0) as usize;
    let limit = p.limit(1000, 1000)?;
    let mut list: Vec<_> = ctx
        .state
        .withdrawals
        .iter()
        .filter(|w| w.time >= start && w.time <= end)
        .filter(|w| coin.as_ref().is_none_or(|c| &w.coin == c))
        .filter(|w| status.is_none_or(|s| u64::from(w.status) == s))
        .collect();
    list.sort_by_key(|w| std::cmp::Reverse(w.time));
    let rows: Vec<Value> = page(list, offset, limit)
        .into_iter()
        .map(|w| {
            let mut v = json!({
                "id": w.id,
                "amount": w.amount.normalize().to_string(),
                "transactionFee": w.fee.normalize().to_string(),
                "coin": w.coin,
                "status": w.status,
                "address": w.address,
                "txId": w.tx_id,
                "applyTime": binance_datetime(w.time),
                "network": w.network,
                "transferType": 0,
                "info": "",
                "confirmNo": if w.status == 6 { 12 } else { 0 },
                "walletType": 0,
                "txKey": "",
            });
            if w.status == 6 {
                v["completeTime"] = json!(binance_datetime(w.time + 180_000));
            }
            v
        })
        .collect();
    Ok(Value::Array(rows))
}

pub fn deposits(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let p = ctx.params;
    let (start, end) = window(p, NINETY_DAY_RULE, ctx.now)?;
    let coin = p.present("coin").map(str::to_ascii_uppercase);
    let status = p.u64("status")?;
    let tx_id = p.present("txId");
    let offset = p.u64("offset")?.unwrap_or(0) as usize;
    let limit = p.limit(1000, 1000)?;
    let mut list: Vec<_> = ctx
        .state
        .deposits
        .iter()
        .filter(|d| d.time >= start && d.time <= end)
        .filter(|d| coin.as_ref().is_none_or(|c| &d.coin == c))
        .filter(|d| status.is_none_or(|s| u64::from(d.status) == s))
        .filter(|d| tx_id.is_none_or(|t| d.tx_id == t))
        .collect();
    list.sort_by_key(|d| std::cmp::Reverse(d.time));
    let rows: Vec<Value> = page(list, offset, limit)
        .into_iter()
        .map(|d| {
            json!({
                "id": d.id,
                "amount": d.amount.normalize().to_string(),
                "coin": d.coin,
                "network": d.network,
                "status": d.status,
                "address": d.address,
                "addressTag": "",
                "txId": d.tx_id,
                "insertTime": d.time,
                "completeTime": d.time + 600_000,
                "transferType": 0,
                "confirmTimes": "12/12",
                "unlockConfirm": 0,
                "walletType": 0,
            })
        })
        .collect();
    Ok(Value::Array(rows))
}

/// Universal transfer history: one `type` per query, as Binance requires.
pub fn transfers(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let p = ctx.params;
    let kind = p.required("type")?.to_ascii_uppercase();
    if !TRANSFER_TYPES.contains(&kind.as_str()) {
        return Err(ApiError::missing("type"));
    }
    let rule = super::WindowRule {
        max_span_ms: 180 * 86_400_000,
        span_words: "180 days",
        default_back_ms: Some(7 * 86_400_000),
    };
    let (start, end) = window(p, rule, ctx.now)?;
    let current = p.u64("current")?.unwrap_or(1).max(1) as usize;
    let size = p.u64("size")?.unwrap_or(10).clamp(1, 100) as usize;
    let mut list: Vec<_> = ctx
        .state
        .transfers
        .iter()
        .filter(|t| t.transfer_type == kind && t.time >= start && t.time <= end)
        .collect();
    list.sort_by_key(|t| std::cmp::Reverse(t.time));
    let total = list.len();
    let rows: Vec<Value> = page(list, (current - 1) * size, size)
        .into_iter()
        .map(|t| {
            json!({
                "asset": t.asset,
                "amount": t.amount.normalize().to_string(),
                "type": t.transfer_type,
                "status": "CONFIRMED",
                "tranId": t.tran_id,
                "timestamp": t.time,
            })
        })
        .collect();
    Ok(json!({ "total": total, "rows": rows }))
}

pub fn pay(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let p = ctx.params;
    let (start, end) = window(p, NINETY_DAY_RULE, ctx.now)?;
    let limit = p.limit(100, 100)?;
    let mut list: Vec<_> = ctx
        .state
        .pay
        .iter()
        .filter(|t| t.time >= start && t.time <= end)
        .collect();
    list.sort_by_key(|t| std::cmp::Reverse(t.time));
    list.truncate(limit);
    let us = json!({ "name": "Quant Desk", "type": "USER", "binanceId": 354937868, "accountId": 354937868 });
    let data: Vec<Value> = list
        .into_iter()
        .map(|t| {
            let them = json!({
                "name": if t.counterparty_name.is_empty() { "User".to_string() } else { t.counterparty_name.clone() },
                "type": "USER",
                "binanceId": t.counterparty.parse::<u64>().map(Value::from).unwrap_or_else(|_| json!(t.counterparty)),
                "accountId": t.counterparty.parse::<u64>().map(Value::from).unwrap_or_else(|_| json!(t.counterparty)),
            });
            let (payer, receiver) = if t.amount.is_sign_negative() {
                (us.clone(), them)
            } else {
                (them, us.clone())
            };
            json!({
                "orderType": t.order_type,
                "transactionId": t.transaction_id,
                "transactionTime": t.time,
                "amount": t.amount.normalize().to_string(),
                "currency": t.asset,
                "walletType": 1,
                "walletTypes": [1],
                "fundsDetail": [{ "currency": t.asset, "amount": t.amount.abs().normalize().to_string() }],
                "payerInfo": payer,
                "receiverInfo": receiver,
            })
        })
        .collect();
    Ok(json!({ "code": "000000", "message": "success", "data": data, "success": true }))
}

pub fn margin_pairs(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let pairs: Vec<Value> = ctx
        .state
        .symbols_of(Market::Margin)
        .enumerate()
        .map(|(i, s)| {
            json!({
                "id": 351637150141315861u64 + i as u64,
                "symbol": s.symbol,
                "base": s.base,
                "quote": s.quote,
                "isMarginTrade": true,
                "isBuyAllowed": true,
                "isSellAllowed": true,
            })
        })
        .collect();
    Ok(Value::Array(pairs))
}

pub fn isolated_pairs(_: &mut Ctx) -> Result<Value, ApiError> {
    Ok(json!([]))
}

pub fn margin_account(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let wallet = ctx
        .state
        .balances
        .get(&Market::Margin)
        .cloned()
        .unwrap_or_default();
    let locked = ctx.state.locked(Market::Margin);
    let mut assets: BTreeSet<String> = wallet.keys().cloned().collect();
    assets.extend(ctx.state.margin_loans.keys().cloned());
    let now = ctx.now;
    // Value everything in BTC at the simulated market price, where a pair exists.
    let btc_value = |asset: &str, amount: Decimal| -> Decimal {
        if asset == "BTC" {
            return amount;
        }
        let direct = ctx
            .state
            .symbols()
            .iter()
            .find(|s| s.base == "BTC" && s.quote == asset && !s.market.is_futures());
        match direct {
            Some(sym) => amount / price_now(ctx.state, sym, now),
            None => Decimal::ZERO,
        }
    };
    let mut total_asset = Decimal::ZERO;
    let mut total_liability = Decimal::ZERO;
    let user_assets: Vec<Value> = assets
        .iter()
        .map(|a| {
            let total = wallet.get(a).copied().unwrap_or_default();
            let lock = locked.get(a).copied().unwrap_or_default().min(total);
            let borrowed = ctx.state.margin_loans.get(a).copied().unwrap_or_default();
            total_asset += btc_value(a, total);
            total_liability += btc_value(a, borrowed);
            json!({
                "asset": a,
                "borrowed": d8(borrowed),
                "free": d8(total - lock),
                "interest": d8(Decimal::ZERO),
                "locked": d8(lock),
                "netAsset": d8(total - borrowed),
            })
        })
        .collect();
    let level = if total_liability.is_zero() {
        Decimal::from(999)
    } else {
        (total_asset / total_liability).round_dp(8)
    };
    Ok(json!({
        "created": true,
        "borrowEnabled": true,
        "marginLevel": d8(level),
        "collateralMarginLevel": d8(level),
        "totalAssetOfBtc": d8(total_asset),
        "totalLiabilityOfBtc": d8(total_liability),
        "totalNetAssetOfBtc": d8(total_asset - total_liability),
        "totalCollateralValueInUSDT": "0.00000000",
        "tradeEnabled": true,
        "transferInEnabled": true,
        "transferOutEnabled": true,
        "accountType": "MARGIN_1",
        "userAssets": user_assets,
    }))
}

fn isolated_filter(ctx: &Ctx) -> Result<Option<bool>, ApiError> {
    if ctx.params.flag("isIsolated") {
        if !ctx.params.has("symbol") {
            return Err(ApiError::missing("symbol"));
        }
        Ok(Some(true))
    } else {
        Ok(Some(false))
    }
}

pub fn margin_open_orders(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let isolated = isolated_filter(ctx)?;
    let sym = ctx.optional_symbol(Market::Margin)?;
    let orders: Vec<Order> = ctx
        .state
        .open_orders(
            Market::Margin,
            sym.as_ref().map(|s| s.symbol.as_str()),
            false,
        )
        .into_iter()
        .filter(|o| isolated.is_none_or(|i| o.is_isolated == i))
        .cloned()
        .collect();
    ctx.answer_later(move || render::text(&orders.iter().map(MarginOrder::of).collect::<Vec<_>>()));
    Ok(Value::Null)
}

pub fn margin_cancel_all(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let sym = ctx.required_symbol(Market::Margin)?;
    let isolated = isolated_filter(ctx)?;
    let now = ctx.now;
    let cancelled = ctx
        .state
        .cancel_open(Market::Margin, &sym.symbol, false, isolated, now);
    if cancelled.is_empty() {
        return Err(ApiError::unknown_order());
    }
    ctx.answer_later(move || {
        render::cancelled_text(&cancelled, now, |o, now| Cancelled::margin(o, now))
    });
    Ok(Value::Null)
}

pub fn margin_new_order(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let sym = ctx.required_symbol(Market::Margin)?;
    let new = parse_new_order(ctx, Market::Margin, &sym)?;
    let now = ctx.now;
    let price = price_now(ctx.state, &sym, now);
    let o = ctx.state.place_order(new, price, now);
    Ok(json!({
        "symbol": o.symbol,
        "orderId": o.order_id,
        "clientOrderId": o.client_order_id,
        "transactTime": now,
        "isIsolated": o.is_isolated,
    }))
}

pub fn margin_cancel_order(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let sym = ctx.required_symbol(Market::Margin)?;
    let (id, client) = order_ref(ctx.params)?;
    let now = ctx.now;
    let i = ctx
        .state
        .find_order(Market::Margin, &sym.symbol, id, client.as_deref());
    let o = ctx.state.cancel_one(i, now)?;
    Ok(render::tree(&Cancelled::margin(&o, now)))
}

fn margin_trade_json(t: &Trade) -> Value {
    json!({
        "commission": d8(t.commission),
        "commissionAsset": t.commission_asset,
        "id": t.id,
        "isBestMatch": true,
        "isBuyer": t.side == "BUY",
        "isMaker": t.maker,
        "orderId": t.order_id,
        "price": d8(t.price),
        "qty": d8(t.qty),
        "symbol": t.symbol,
        "isIsolated": false,
        "time": t.time,
    })
}

pub fn margin_trades(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let sym = ctx.required_symbol(Market::Margin)?;
    let limit = ctx.params.limit(500, 1000)?;
    let trades = ctx.state.trades_of(Market::Margin, &sym.symbol);
    let selected = select_trades(trades, ctx.params, DAY_RULE, ctx.now, limit)?;
    Ok(Value::Array(
        selected.into_iter().map(margin_trade_json).collect(),
    ))
}
