//! `binance.cancel_open_orders`: list every open order on every market, then cancel
//! all symbols at once and list again — loudly, if orders come back.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use tokio::task::JoinSet;

use super::util::{age, dec, row, table, Coverage};
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
            name: "watch",
            ty: ArgType::Duration { max: Some(std::time::Duration::from_secs(1800)) },
            required: false,
            default: Some("30s"),
            description: "after the step, keep watching every market beside the next steps and cancel anything new until this long passes quietly or the key is dead (0s: off)",
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
    list_all_covered(ctx, client, markets, None).await
}

/// [`list_all`], noting in `coverage` which markets were read.
async fn list_all_covered(
    ctx: &StepContext,
    client: &Client,
    markets: &[Market],
    coverage: Option<&mut Coverage>,
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
    for (market, e) in &failures {
        ctx.note(
            Level::Warn,
            format!("could not list open orders on {market}: {e} — not covered"),
        )?;
    }
    if let Some(coverage) = coverage {
        for &market in markets {
            match failures.iter().find(|(m, _)| *m == market) {
                Some((_, e)) => coverage.gap("open orders", market.as_str(), None, &e.to_string()),
                None => coverage.read("open orders", market.as_str(), None),
            }
        }
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
    // Per (market, symbol): which books hold orders (USDⓈ-M keeps conditional orders in
    // a separate book with its own cancel-all).
    let mut targets: BTreeMap<(Market, String), (bool, bool)> = BTreeMap::new();
    for o in orders {
        let books = targets.entry((o.market, o.symbol.clone())).or_default();
        if o.is_algo {
            books.1 = true;
        } else {
            books.0 = true;
        }
    }
    let mut tasks = JoinSet::new();
    for ((market, symbol), (regular, algo)) in targets {
        let client = client.clone();
        tasks.spawn(async move {
            let result = client
                .cancel_open_orders_in(market, &symbol, regular, algo)
                .await;
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

/// How often the background watch lists open orders.
const WATCH_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Cancel until quiet: beside the next steps, keep listing every market and cancel
/// whatever appears, each reappearance an "attacker still active" finding, until
/// `quiet` passes with nothing new, the key is dead, or the run ends. Never delays a
/// step.
fn spawn_watch(
    ctx: &StepContext,
    client: Client,
    markets: Vec<Market>,
    mut seen: BTreeSet<(Market, i64)>,
    quiet: std::time::Duration,
) {
    let watcher = ctx.clone();
    let ending = ctx.run_ending();
    ctx.spawn_background(async move {
        let ctx = watcher;
        tokio::pin!(ending);
        let mut last_activity = std::time::Instant::now();
        let mut reappeared = 0usize;
        let reason = loop {
            tokio::select! {
                _ = &mut ending => break "the run ended".to_string(),
                _ = tokio::time::sleep(WATCH_POLL) => {}
            }
            if ctx.run.services.leaked_dead.load(std::sync::atomic::Ordering::SeqCst) {
                break "the key is dead".to_string();
            }
            if last_activity.elapsed() >= quiet {
                break format!("{} passed with no new order", humantime::format_duration(quiet));
            }
            let open = match list_all(&ctx, &client, &markets).await {
                Ok(open) => open,
                Err(ActionError::Exchange(e)) if e.is_credential_rejection() => break "Binance refuses the key now".to_string(),
                Err(ActionError::Journal(_)) => return,
                Err(e) => {
                    let _ = ctx.note(Level::Warn, format!("watching for new orders: {e}"));
                    continue;
                }
            };
            let new: Vec<Order> = open.into_iter().filter(|o| !seen.contains(&(o.market, o.order_id))).collect();
            if new.is_empty() {
                continue;
            }
            last_activity = std::time::Instant::now();
            reappeared += new.len();
            seen.extend(new.iter().map(|o| (o.market, o.order_id)));
            let alert = ctx.note(
                Level::Alert,
                format!("{} — someone is still using this key; cancelling them now. Deleting the key is the real stop.", describe(&new).replacen("open order", "NEW open order", 1)),
            );
            let finding = ctx.finding(
                "critical",
                format!("Attacker still active: {} order(s) placed after the cancel", new.len()),
                json!(new.iter().map(|o| row(Some(o.market.as_str()), o)).collect::<Vec<_>>()),
            );
            if alert.is_err() || finding.is_err() {
                return;
            }
            let (acknowledged, errors) = cancel_round(&client, &new).await;
            for error in &errors {
                let _ = ctx.note(Level::Warn, format!("cancel failed: {error}"));
            }
            let rows: Vec<_> = new
                .iter()
                .map(|o| {
                    let done = acknowledged.iter().find(|a| a.market == o.market && a.order_id == o.order_id).cloned();
                    row(Some(o.market.as_str()), &done.unwrap_or_else(|| Order { status: "CANCELED".into(), ..o.clone() }))
                })
                .collect();
            if ctx.evidence("cancelled-orders", rows).is_err() {
                return;
            }
        };
        let _ = ctx.note(
            Level::Detail,
            format!("stopped watching for new orders ({reason}); {reappeared} reappeared while watching"),
        );
    });
}

/// Every open order on every market, read with `client` (e.g. the responder key).
pub async fn open_everywhere(
    ctx: &StepContext,
    client: &Client,
) -> Result<Vec<Order>, ActionError> {
    list_all(ctx, client, &Market::ALL).await
}

/// One last look before the key dies: cancel whatever is open now with the leaked key
/// (the operator already agreed to cancel everything). Once the key is deleted nobody
/// can cancel through the API any more, so orders placed in the last seconds before the
/// deletion would stay open. Returns how many were cancelled; a key Binance already
/// refuses is not an error here.
pub async fn last_sweep(ctx: &StepContext) -> Result<usize, ActionError> {
    let client = ctx.client(crate::secret::Role::Leaked)?;
    let markets: Vec<Market> = Market::ALL.to_vec();
    let open = match list_all(ctx, &client, &markets).await {
        Ok(open) => open,
        Err(ActionError::Exchange(e)) if e.is_credential_rejection() => return Ok(0),
        Err(e) => return Err(e),
    };
    if open.is_empty() {
        return Ok(0);
    }
    ctx.note(
        Level::Alert,
        format!(
            "{} appeared since the cancel; cancelling them before the key goes",
            describe(&open)
        ),
    )?;
    ctx.finding(
        "critical",
        format!(
            "Attacker still active: {} order(s) open just before the key was deleted",
            open.len()
        ),
        json!(open
            .iter()
            .map(|o| row(Some(o.market.as_str()), o))
            .collect::<Vec<_>>()),
    )?;
    let (acknowledged, errors) = cancel_round(&client, &open).await;
    for error in &errors {
        ctx.note(Level::Warn, format!("cancel failed: {error}"))?;
    }
    let rows: Vec<_> = open
        .iter()
        .map(|o| {
            let done = acknowledged
                .iter()
                .find(|a| a.market == o.market && a.order_id == o.order_id)
                .cloned();
            row(
                Some(o.market.as_str()),
                &done.unwrap_or_else(|| Order {
                    status: "CANCELED".into(),
                    ..o.clone()
                }),
            )
        })
        .collect();
    ctx.evidence("cancelled-orders", rows)?;
    Ok(open.len())
}

impl Action for CancelOpenOrders {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn preview<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Preview, ActionError>> {
        Box::pin(async move {
            let client = ctx.client(ctx.role)?;
            let mut coverage = Coverage::default();
            let orders = list_all_covered(ctx, &client, &markets(ctx), Some(&mut coverage)).await?;
            coverage.not_examined(
                "open orders: isolated margin, TWAP/VP algo, options",
                "not listed or cancelled by respond",
            );
            coverage.record(ctx)?;
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
                remaining = list_all(ctx, &client, &markets).await?;
                if remaining.is_empty() && !settle.is_zero() {
                    // Someone still holding the key places orders again within moments;
                    // look once more before calling the books clean.
                    tokio::time::sleep(settle).await;
                    remaining = list_all(ctx, &client, &markets).await?;
                }
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
            let watch = ctx.args.duration("watch").unwrap_or_default();
            if !watch.is_zero() {
                seen.extend(remaining.iter().map(|o| (o.market, o.order_id)));
                ctx.note(
                    Level::Info,
                    format!("watching every market for new orders until {} pass quietly or the key is dead (beside the next steps)", humantime::format_duration(watch)),
                )?;
                spawn_watch(ctx, client.clone(), markets.clone(), seen.clone(), watch);
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
