//! `binance.cancel_open_orders`: list every open order on every market, then cancel
//! all symbols at once and list again — loudly, if orders come back.
use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use tokio::task::JoinSet;

use super::util::{age, dec, row, table};
use super::{
    Action, ActionError, ActionSpec, ArgType, BoxFuture, InputSpec, Kind, Outcome, OutputSpec,
    Preview, StepContext,
};
use crate::exchange::{Client, ExchangeError, Market, Order};
use crate::operator::Level;

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(CancelOpenOrders::default())]
}

/// A preview this fresh is used as the cancel list as it stands, saving a round trip
/// on the way to containment (anything placed since is caught by the re-list).
const FRESH_PREVIEW: std::time::Duration = std::time::Duration::from_secs(5);

const MARKETS: &[&str] = &["spot", "margin", "usdm", "coinm"];

/// How many times orders may reappear and be cancelled again before the step stops
/// chasing them (deleting the key is the real stop).
const MAX_ROUNDS: usize = 5;

static SPEC: ActionSpec = ActionSpec {
    name: "binance.cancel_open_orders",
    description: "Cancel every open order on the chosen markets (all symbols at once), then list again to catch orders that reappear",
    kind: Kind::Destructive,
    inputs: &[
        InputSpec {
            name: "markets",
            ty: ArgType::Choices(MARKETS),
            required: false,
            default: Some("spot,margin,usdm,coinm"),
            description: "markets to cancel on",
        },
        InputSpec {
            name: "settle",
            ty: ArgType::Duration { max: Some(std::time::Duration::from_secs(60)) },
            required: false,
            default: Some("1s"),
            description: "after the books look clean, wait this long and look again for orders that reappear",
        },
    ],
    outputs: &[
        OutputSpec { name: "cancelled", description: "orders cancelled" },
        OutputSpec { name: "remaining", description: "open orders left after the last round" },
        OutputSpec { name: "reappeared", description: "orders that appeared after a cancel (someone is still using the key)" },
    ],
};

#[derive(Default)]
pub struct CancelOpenOrders {
    /// The last preview: when, for which step, and what it listed.
    last_preview: std::sync::Mutex<Option<(std::time::Instant, String, Vec<Order>)>>,
}

fn markets(ctx: &StepContext) -> Vec<Market> {
    ctx.args
        .list("markets")
        .iter()
        .filter_map(|m| m.parse().ok())
        .collect()
}

/// Open orders on every market, listed concurrently. A market the key cannot read is a
/// gap (noted), not a failure, unless no market could be read at all.
async fn list_all(
    ctx: &StepContext,
    client: &Client,
    markets: &[Market],
) -> Result<Vec<Order>, ActionError> {
    let mut tasks = JoinSet::new();
    for &market in markets {
        let client = client.clone();
        tasks.spawn(async move { (market, client.open_orders(market, None).await) });
    }
    let mut orders = Vec::new();
    let mut failures: Vec<(Market, ExchangeError)> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (market, result) =
            joined.map_err(|e| ActionError::Failed(format!("listing task failed: {e}")))?;
        match result {
            Ok(list) => orders.extend(list),
            Err(e) => failures.push((market, e)),
        }
    }
    if failures.len() == markets.len() && !failures.is_empty() {
        let (_, e) = failures.swap_remove(0);
        return Err(e.into());
    }
    for (market, e) in failures {
        ctx.note(
            Level::Warn,
            format!("could not list open orders on {market}: {e} — not covered"),
        )?;
    }
    orders.sort_by(|a, b| (a.market, &a.symbol, a.time).cmp(&(b.market, &b.symbol, b.time)));
    Ok(orders)
}

fn describe(orders: &[Order]) -> String {
    let symbols: BTreeSet<(Market, &str)> = orders
        .iter()
        .map(|o| (o.market, o.symbol.as_str()))
        .collect();
    let markets: BTreeSet<Market> = orders.iter().map(|o| o.market).collect();
    format!(
        "{} open order{} on {} symbol{} in {} market{}",
        orders.len(),
        if orders.len() == 1 { "" } else { "s" },
        symbols.len(),
        if symbols.len() == 1 { "" } else { "s" },
        markets.len(),
        if markets.len() == 1 { "" } else { "s" }
    )
}

fn render(orders: &[Order]) -> String {
    let now = Utc::now();
    let rows: Vec<Vec<String>> = orders
        .iter()
        .map(|o| {
            vec![
                o.market.to_string(),
                o.symbol.clone(),
                o.side.clone(),
                if o.is_algo {
                    format!("{} (conditional)", o.order_type)
                } else {
                    o.order_type.clone()
                },
                dec(o.price),
                dec(o.orig_qty - o.executed_qty),
                age(o.time, now),
            ]
        })
        .collect();
    table(
        &[
            "market", "symbol", "side", "type", "price", "open qty", "placed",
        ],
        &rows,
    )
}

/// Cancel everything on each (market, symbol) at once; each answer is journaled by the
/// client's observer as it arrives.
async fn cancel_round(client: &Client, orders: &[Order]) -> (Vec<Order>, Vec<String>) {
    let targets: BTreeSet<(Market, String)> = orders
        .iter()
        .map(|o| (o.market, o.symbol.clone()))
        .collect();
    let mut tasks = JoinSet::new();
    for (market, symbol) in targets {
        let client = client.clone();
        tasks.spawn(async move {
            let result = client.cancel_all_open_orders(market, &symbol).await;
            (market, symbol, result)
        });
    }
    let mut cancelled = Vec::new();
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, _, Ok(done))) => cancelled.extend(done.cancelled),
            Ok((market, symbol, Err(e))) => errors.push(format!("{market} {symbol}: {e}")),
            Err(e) => errors.push(format!("cancel task failed: {e}")),
        }
    }
    (cancelled, errors)
}

impl Action for CancelOpenOrders {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn preview<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Preview, ActionError>> {
        Box::pin(async move {
            let client = ctx.client(ctx.role)?;
            let orders = list_all(ctx, &client, &markets(ctx)).await?;
            *self.last_preview.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((std::time::Instant::now(), ctx.step.clone(), orders.clone()));
            let rows: Vec<_> = orders
                .iter()
                .map(|o| row(Some(o.market.as_str()), o))
                .collect();
            ctx.evidence("open-orders", rows.clone())?;
            if orders.is_empty() {
                return Ok(Preview {
                    summary: "no open orders on any market: nothing to cancel".into(),
                    nothing_to_do: true,
                    items: json!([]),
                    ..Preview::default()
                });
            }
            Ok(Preview {
                summary: format!("{} would be cancelled", describe(&orders)),
                body: render(&orders),
                items: json!(rows),
                nothing_to_do: false,
            })
        })
    }

    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let client = ctx.client(ctx.role)?;
            let markets = markets(ctx);
            let settle = ctx.args.duration("settle").unwrap_or_default();
            let fresh = self
                .last_preview
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .filter(|(at, step, _)| *step == ctx.step && at.elapsed() < FRESH_PREVIEW)
                .map(|(_, _, orders)| orders);
            let mut targets = match fresh {
                Some(orders) => orders,
                None => list_all(ctx, &client, &markets).await?,
            };
            let mut cancelled_total = 0usize;
            let mut reappeared = 0usize;
            let mut seen: BTreeSet<(Market, i64)> = BTreeSet::new();
            let mut remaining = Vec::new();
            for round in 1..=MAX_ROUNDS {
                seen.extend(targets.iter().map(|o| (o.market, o.order_id)));
                let (acknowledged, errors) = cancel_round(&client, &targets).await;
                for error in &errors {
                    ctx.note(Level::Warn, format!("cancel failed: {error}"))?;
                }
                if errors.is_empty() && !settle.is_zero() {
                    // Every cancel was acknowledged. Someone still holding the key places
                    // orders again within moments: look after `settle`, once, rather than
                    // now and again then (a listing of every market costs ~600 weight on
                    // Binance). After a failed cancel, look at once.
                    tokio::time::sleep(settle).await;
                }
                remaining = list_all(ctx, &client, &markets).await?;
                // Cancelled = listed before, gone now. Futures cancel-alls do not echo
                // the orders, so the listing is the record; spot and margin answers add
                // their detail.
                let still_open: BTreeSet<(Market, i64)> =
                    remaining.iter().map(|o| (o.market, o.order_id)).collect();
                let gone: Vec<Order> = targets
                    .iter()
                    .filter(|o| !still_open.contains(&(o.market, o.order_id)))
                    .map(|o| {
                        acknowledged
                            .iter()
                            .find(|a| a.market == o.market && a.order_id == o.order_id)
                            .cloned()
                            .unwrap_or_else(|| Order {
                                status: "CANCELED".into(),
                                ..o.clone()
                            })
                    })
                    .collect();
                cancelled_total += gone.len();
                let symbols = targets
                    .iter()
                    .map(|o| (o.market, &o.symbol))
                    .collect::<BTreeSet<_>>()
                    .len();
                ctx.evidence(
                    "cancelled-orders",
                    gone.iter()
                        .map(|o| row(Some(o.market.as_str()), o))
                        .collect(),
                )?;
                ctx.note(
                    Level::Info,
                    format!(
                        "round {round}: {} order(s) cancelled on {symbols} symbol(s)",
                        gone.len()
                    ),
                )?;
                if remaining.is_empty() {
                    break;
                }
                let new: Vec<&Order> = remaining
                    .iter()
                    .filter(|o| !seen.contains(&(o.market, o.order_id)))
                    .collect();
                reappeared += new.len();
                if !new.is_empty() {
                    ctx.note(
                        Level::Alert,
                        format!(
                            "{} NEW open order(s) appeared after cancelling — someone is still using this key. Cancelling only buys time: deleting the key is the real stop.",
                            new.len()
                        ),
                    )?;
                    ctx.finding(
                        "critical",
                        format!(
                            "Attacker still active: {} order(s) placed after the cancel",
                            new.len()
                        ),
                        json!(new
                            .iter()
                            .map(|o| row(Some(o.market.as_str()), *o))
                            .collect::<Vec<_>>()),
                    )?;
                }
                if round == MAX_ROUNDS {
                    break;
                }
                let again = ctx.ask(
                    &format!("{} still open. Cancel again now?", describe(&remaining)),
                    true,
                )?;
                if !again {
                    break;
                }
                targets = remaining.clone();
            }
            if !remaining.is_empty() {
                ctx.note(Level::Warn, format!("{} left open", describe(&remaining)))?;
            }
            let summary = if remaining.is_empty() {
                format!("{cancelled_total} order(s) cancelled; no open order left")
            } else {
                format!(
                    "{cancelled_total} order(s) cancelled; {} still open",
                    remaining.len()
                )
            };
            Ok(Outcome::ok(summary)
                .with("cancelled", cancelled_total as u64)
                .with("remaining", remaining.len() as u64)
                .with("reappeared", reappeared as u64))
        })
    }
}
