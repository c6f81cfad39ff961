//! The scenario's attacker: keeps placing orders with the leaked key every N seconds
//! until that key is deleted, so cancelled orders reappear the way they do in a real
//! incident. Its orders are logged with actor `attacker`.
use std::sync::Arc;

use tokio::sync::watch;

use super::log::Actor;
use super::market::price_now;
use super::scenario::ScenarioAttacker;
use super::server::{Outcome, Shared};
use super::state::NewOrder;
use super::types::Market;

/// Where Binance takes such an order: futures conditional orders go to the algo service.
fn order_path(market: Market, algo: bool) -> &'static str {
    match (market, algo) {
        (Market::Spot, _) => "/api/v3/order",
        (Market::Margin, _) => "/sapi/v1/margin/order",
        (Market::Usdm, false) => "/fapi/v1/order",
        (Market::Usdm, true) => "/fapi/v1/algoOrder",
        (Market::Coinm, false) => "/dapi/v1/order",
        (Market::Coinm, true) => "/dapi/v1/algoOrder",
    }
}

pub(super) async fn run(
    shared: Arc<Shared>,
    plan: ScenarioAttacker,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + plan.every, plan.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = ticks.tick() => {}
        }
        let Some(order) = place(&shared, &plan) else {
            // The key is gone: the attacker has lost access for good.
            return;
        };
        shared.push_log(
            Actor::Attacker,
            "POST",
            order_path(plan.order.market, order.algo),
            logged_query(&order),
            Outcome {
                status: 200,
                code: None,
                weight: 1,
            },
        );
    }
}

/// The attacker's order placed at the market price of now, while its key lives.
fn place(shared: &Shared, plan: &ScenarioAttacker) -> Option<crate::state::Order> {
    let o = &plan.order;
    let now = shared.now_ms();
    let mut state = shared.state();
    if state.keys[plan.key].deleted {
        return None;
    }
    let market_price = state
        .symbol(o.market, &o.symbol)
        .map(|s| price_now(&state, &s.clone(), now))
        .unwrap_or(o.price);
    Some(state.place_order(
        NewOrder {
            market: o.market,
            symbol: o.symbol.clone(),
            side: o.side.clone(),
            order_type: o.order_type.clone(),
            price: o.price,
            stop_price: o.stop_price,
            quantity: o.quantity,
            time_in_force: "GTC".into(),
            client_order_id: None,
            position_side: "BOTH".into(),
            is_isolated: false,
        },
        market_price,
        now,
    ))
}

/// The order as the request log shows a client's: its query without a signature.
fn logged_query(order: &crate::state::Order) -> String {
    let mut query = format!(
        "{}symbol={}&side={}&type={}&quantity={}",
        if order.algo {
            "algoType=CONDITIONAL&"
        } else {
            ""
        },
        order.symbol,
        order.side,
        order.order_type,
        order.orig_qty
    );
    if !order.price.is_zero() {
        query.push_str(&format!("&price={}&timeInForce=GTC", order.price));
    }
    if !order.stop_price.is_zero() {
        let name = if order.algo {
            "triggerPrice"
        } else {
            "stopPrice"
        };
        query.push_str(&format!("&{name}={}", order.stop_price));
    }
    query
}
