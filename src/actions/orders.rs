//! `binance.cancel_open_orders`: list every open order on every market, then cancel
//! all symbols at once and list again — loudly, if orders come back.
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use tokio::task::JoinSet;

use super::util::{age, dec, row, table, Coverage};
use super::{
    Action, ActionError, ActionSpec, ArgType, BoxFuture, InputSpec, Kind, LaterEvidence, Outcome,
    OutputSpec, Preview, StepContext,
};
use crate::exchange::{Client, ExchangeError, Market, Order, Rejection};
use crate::operator::Level;
use crate::report::journal::Severity;

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
        OutputSpec { name: "unchecked", description: "markets whose open orders could not be listed (the step is failed when any)" },
        OutputSpec { name: "not_enabled", description: "markets the key may not trade on: it cannot have placed orders there (not a failure)" },
        OutputSpec { name: "refused", description: "Binance refuses the key from this machine: nothing could be cancelled with it (the step is failed)" },
    ],
};

type PreviewListing = (std::time::Instant, String, Listing);

#[derive(Default)]
pub struct CancelOpenOrders {
    /// The last preview: when, for which step, what it listed, and what it could not.
    last_preview: std::sync::Mutex<Option<PreviewListing>>,
}

fn markets(ctx: &StepContext) -> Vec<Market> {
    ctx.args
        .list("markets")
        .iter()
        .filter_map(|m| m.parse().ok())
        .collect()
}

/// What one listing of every market found, and which markets it could not read.
#[derive(Clone)]
struct Listing {
    /// Shared, not copied, by a preview, its run and the evidence recorded after it: on
    /// a big account each copy is a thousand orders on the way to the cancel.
    orders: Arc<Vec<Order>>,
    /// Markets whose open orders are unknown: nothing there may be called cancelled.
    unread: BTreeSet<Market>,
    /// Markets Binance refused (-2015) while it answered the key on others: the key may
    /// not trade there, so it cannot have placed orders there. Not a gap.
    not_enabled: BTreeSet<Market>,
}

/// Markets the key may not trade on, from the permissions triage read
/// (`apiRestrictions`): spot and cross margin need "Enable Spot & Margin Trading",
/// USDⓈ-M and COIN-M "Enable Futures" (for reads too).
pub(super) fn not_enabled_at_triage(ctx: &StepContext) -> BTreeSet<Market> {
    ctx.earlier_output("binance.key_permissions", "not_enabled")
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.as_str()?.parse().ok())
        .collect()
}

/// Words for a market the key may not trade on.
fn not_enabled_words(market: Market) -> String {
    match market {
        Market::UsdM | Market::CoinM => format!(
            "{market}: futures not enabled on this key: it cannot have placed or read orders there"
        ),
        _ => format!(
            "{market}: spot & margin trading not enabled on this key: it cannot have placed orders there"
        ),
    }
}

/// The chosen markets the key may trade on, after saying (and recording in `coverage`)
/// which it may not.
fn enabled_markets(
    ctx: &StepContext,
    markets: &[Market],
    coverage: Option<&mut Coverage>,
) -> Result<Vec<Market>, ActionError> {
    let off = not_enabled_at_triage(ctx);
    // Said once, with the preview (which records coverage); the run itself stays quiet.
    if let Some(coverage) = coverage {
        for market in markets.iter().filter(|m| off.contains(m)) {
            coverage.not_enabled(
                "open orders",
                market.as_str(),
                &format!("{} (apiRestrictions)", not_enabled_words(*market)),
            );
            ctx.note(Level::Info, not_enabled_words(*market))?;
        }
    }
    Ok(markets
        .iter()
        .copied()
        .filter(|m| !off.contains(m))
        .collect())
}

/// Open orders on every market, listed concurrently. A market the key cannot read is a
/// gap (noted, and carried in `unread`), not a failure, unless no market could be read.
async fn list_all(
    ctx: &StepContext,
    client: &Client,
    markets: &[Market],
) -> Result<Listing, ActionError> {
    list_all_covered(ctx, client, markets, None).await
}

/// [`list_all`] with another key than the leaked one (the responder's): a market it is
/// refused on says nothing about the leaked key, so it is a gap like any other.
async fn list_all_with_other_key(
    ctx: &StepContext,
    client: &Client,
    markets: &[Market],
) -> Result<Listing, ActionError> {
    list_all_inner(ctx, client, markets, None, false).await
}

/// [`list_all`], noting in `coverage` which markets were read.
async fn list_all_covered(
    ctx: &StepContext,
    client: &Client,
    markets: &[Market],
    coverage: Option<&mut Coverage>,
) -> Result<Listing, ActionError> {
    list_all_inner(ctx, client, markets, coverage, true).await
}

/// Each market's open orders as Binance answered, listed concurrently.
type Fetched = Vec<(Market, Result<Vec<Order>, ExchangeError>)>;

async fn fetch(client: &Client, markets: &[Market]) -> Result<Fetched, ActionError> {
    let mut tasks = JoinSet::new();
    for &market in markets {
        let client = client.clone();
        tasks.spawn(async move { (market, client.open_orders(market, None).await) });
    }
    let mut fetched = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        fetched.push(joined.map_err(|e| ActionError::Failed(format!("listing task failed: {e}")))?);
    }
    Ok(fetched)
}

async fn list_all_inner(
    ctx: &StepContext,
    client: &Client,
    markets: &[Market],
    coverage: Option<&mut Coverage>,
    leaked_key: bool,
) -> Result<Listing, ActionError> {
    let fetched = fetch(client, markets).await?;
    interpret(ctx, fetched, markets, coverage, leaked_key)
}

/// What a listing of every market means: orders, and markets unread or not enabled.
fn interpret(
    ctx: &StepContext,
    fetched: Fetched,
    markets: &[Market],
    coverage: Option<&mut Coverage>,
    leaked_key: bool,
) -> Result<Listing, ActionError> {
    let (mut orders, failures) = gather(fetched, markets)?;
    let failed = FailedMarkets::sort(failures, leaked_key);
    if let Some(coverage) = coverage {
        failed.cover(coverage, markets);
    }
    let unread = failed.tell(ctx)?;
    // In place, and total (the id breaks ties): a thousand orders are sorted on the way
    // to the cancel, and moving each (a few hundred bytes) twice cost more than comparing.
    orders.sort_unstable_by(|a, b| {
        (a.market, &a.symbol, a.time, a.order_id).cmp(&(b.market, &b.symbol, b.time, b.order_id))
    });
    Ok(Listing {
        orders: Arc::new(orders),
        unread,
        not_enabled: failed.not_enabled,
    })
}

/// The orders of the markets asked for and the markets that failed; the first error
/// when every market failed.
fn gather(fetched: Fetched, markets: &[Market]) -> Result<(Vec<Order>, Failures), ActionError> {
    let mut orders = Vec::new();
    let mut failures: Failures = Vec::new();
    for (market, result) in fetched {
        if !markets.contains(&market) {
            continue;
        }
        match result {
            Ok(list) => orders.extend(list),
            Err(e) => failures.push((market, e)),
        }
    }
    if failures.len() == markets.len() && !failures.is_empty() {
        let (_, e) = failures.swap_remove(0);
        return Err(e.into());
    }
    Ok((orders, failures))
}

/// The markets a listing failed on, each with its error.
type Failures = Vec<(Market, ExchangeError)>;

/// The markets a listing failed on, by what the failure means.
struct FailedMarkets {
    /// Binance's testnets have no /sapi (cross margin): a note, not a gap.
    testnet: Failures,
    /// Binance answered the key on some market and refused it (-2015) on these: the key
    /// may not trade there (per endpoint, not per key).
    not_enabled: BTreeSet<Market>,
    /// Not read: gaps in the coverage.
    unread: Failures,
}

impl FailedMarkets {
    fn sort(failures: Failures, leaked_key: bool) -> FailedMarkets {
        let (testnet, failures): (Vec<_>, Vec<_>) = failures
            .into_iter()
            .partition(|(_, e)| e.kind() == crate::exchange::ErrorKind::NotOnTestnet);
        let (refused, unread): (Vec<_>, Vec<_>) = failures
            .into_iter()
            .partition(|(_, e)| leaked_key && e.rejection() == Some(Rejection::Refused));
        FailedMarkets {
            testnet,
            not_enabled: refused.iter().map(|(m, _)| *m).collect(),
            unread,
        }
    }

    /// Each market's line in the coverage: not examined, not enabled, a gap, or read.
    fn cover(&self, coverage: &mut Coverage, markets: &[Market]) {
        for &market in markets {
            if self.testnet.iter().any(|(m, _)| *m == market) {
                coverage.not_examined(
                    &format!("open orders {market}"),
                    "not available on testnet (no /sapi)",
                );
                continue;
            }
            if self.not_enabled.contains(&market) {
                coverage.not_enabled(
                    "open orders",
                    market.as_str(),
                    "not enabled on this key (Binance refused it: -2015): it cannot have placed or read orders there",
                );
                continue;
            }
            match self.unread.iter().find(|(m, _)| *m == market) {
                Some((_, e)) => coverage.gap("open orders", market.as_str(), None, &e.to_string()),
                None => coverage.read("open orders", market.as_str(), None),
            }
        }
    }

    /// A note for each failed market; returns the markets left unread.
    fn tell(&self, ctx: &StepContext) -> Result<BTreeSet<Market>, ActionError> {
        for (market, _) in &self.testnet {
            ctx.note(
                Level::Info,
                format!("{market}: not available on testnet (Binance's testnets have no /sapi)"),
            )?;
        }
        for market in &self.not_enabled {
            ctx.note(
                Level::Info,
                format!("{} (Binance refused it: -2015)", not_enabled_words(*market)),
            )?;
        }
        let mut unread = BTreeSet::new();
        for (market, e) in &self.unread {
            ctx.note(
                Level::Warn,
                format!("could not list open orders on {market}: {e} — not covered"),
            )?;
            unread.insert(*market);
        }
        Ok(unread)
    }
}

/// Binance refuses the leaked key from this machine on every market (-2015/-2014).
fn refused_everywhere(result: &Result<Listing, ActionError>) -> bool {
    matches!(result, Err(ActionError::Exchange(e))
        if matches!(e.rejection(), Some(Rejection::Refused | Rejection::BadKeyFormat)))
}

/// The leaked key is refused from here: say exactly what could not be cancelled (read
/// with the responder key when there is one) and the two ways out. A failed step.
async fn refused_outcome(ctx: &StepContext, markets: &[Market]) -> Result<Outcome, ActionError> {
    let open = match ctx.client(crate::secret::Role::Responder) {
        Ok(reader) => list_all_with_other_key(ctx, &reader, markets).await.ok(),
        Err(_) => None,
    };
    let names = markets
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let what = match &open {
        Some(listing) if listing.orders.is_empty() && listing.unread.is_empty() => {
            format!("the responder key sees no open order on {names} right now, but the key can place new ones from where it is accepted")
        }
        Some(listing) => {
            let rows: Vec<_> = listing
                .orders
                .iter()
                .map(|o| row(Some(o.market.as_str()), o))
                .collect();
            ctx.evidence("open-orders", rows.clone())?;
            ctx.finding(
                Severity::High,
                format!(
                    "{} NOT cancelled: the leaked key is refused from this machine",
                    describe(&listing.orders)
                ),
                json!(rows),
            )?;
            let mut what = format!(
                "{} NOT cancelled (read with the responder key)",
                describe(&listing.orders)
            );
            if !listing.unread.is_empty() {
                what.push_str(&format!(
                    ", and {} could not be listed with the responder key either",
                    market_list(&listing.unread)
                ));
            }
            what
        }
        None => format!(
            "the open orders on {names} could not even be listed from here, so none were cancelled"
        ),
    };
    let summary = format!(
        "could not cancel: Binance refuses the leaked key from this machine (-2015); {what}. Two ways out: run respond from the whitelisted host (where the key is accepted), or press Cancel All in the Binance app (Orders > Open Orders) on every market: spot, margin, USDⓈ-M and COIN-M futures"
    );
    ctx.note(Level::Alert, summary.clone())?;
    let mut outcome = Outcome::ok(summary)
        .with("cancelled", 0u64)
        .with(
            "remaining",
            open.as_ref().map(|l| l.orders.len() as u64).unwrap_or(0),
        )
        .with("reappeared", 0u64)
        .with(
            "unchecked",
            markets.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        )
        .with("refused", true);
    outcome.status = crate::report::journal::StepStatus::Failed;
    Ok(outcome)
}

fn market_list(markets: &BTreeSet<Market>) -> String {
    markets
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ")
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

/// The books a cancel round acts on, with what each holds: one cancel-all per symbol and
/// book (futures have a regular and a conditional one per symbol).
fn books(orders: &[Order]) -> serde_json::Value {
    let mut books: std::collections::BTreeMap<(Market, &str, bool), usize> = Default::default();
    for o in orders {
        *books
            .entry((o.market, o.symbol.as_str(), o.is_algo))
            .or_default() += 1;
    }
    serde_json::Value::Array(
        books
            .into_iter()
            .map(|((market, symbol, algo), n)| {
                json!({
                    "market": market.as_str(),
                    "symbol": symbol,
                    "book": if algo { "conditional" } else { "regular" },
                    "open_orders": n,
                })
            })
            .collect(),
    )
}

fn render(orders: &[Order]) -> String {
    let now = Utc::now();
    // Cells borrowed from the orders where they can be: a preview of a thousand orders
    // is built before their cancel goes out.
    let rows: Vec<[Cow<str>; 7]> = orders
        .iter()
        .map(|o| {
            [
                Cow::Borrowed(o.market.as_str()),
                Cow::Borrowed(o.symbol.as_str()),
                Cow::Borrowed(o.side.as_str()),
                if o.is_algo {
                    Cow::Owned(format!("{} (conditional)", o.order_type))
                } else {
                    Cow::Borrowed(o.order_type.as_str())
                },
                Cow::Owned(dec(o.price)),
                Cow::Owned(dec(o.orig_qty - o.executed_qty)),
                Cow::Owned(age(o.time, now)),
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

/// What one round of cancel-alls achieved.
struct Round {
    /// Orders the answers echoed (spot and margin; futures answers do not list them).
    cancelled: Vec<Order>,
    /// Symbols whose cancel-all the exchange acknowledged (or said had nothing left).
    acknowledged: BTreeSet<(Market, String)>,
    errors: Vec<String>,
}

/// Cancel everything on each (market, symbol) at once; each answer is journaled by the
/// client's observer as it arrives.
async fn cancel_round(client: &Client, orders: &[Order]) -> Round {
    // Futures have two books per symbol (regular and conditional/algo, on USDⓈ-M and
    // COIN-M alike): cancel only the one(s) with listed orders, so a book already
    // acknowledged empty is not cancelled again.
    let mut targets: std::collections::BTreeMap<(Market, String), (bool, bool)> =
        Default::default();
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
    let mut round = Round {
        cancelled: Vec::new(),
        acknowledged: BTreeSet::new(),
        errors: Vec::new(),
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((market, symbol, Ok(done))) => {
                round.cancelled.extend(done.cancelled);
                round.acknowledged.insert((market, symbol));
            }
            Ok((market, symbol, Err(e))) => round.errors.push(format!("{market} {symbol}: {e}")),
            Err(e) => round.errors.push(format!("cancel task failed: {e}")),
        }
    }
    round
}

/// The share of each weight pool the background watch may spend, in percent; the rest is
/// for the evidence pulls and cancels running beside it.
const WATCH_SHARE_PERCENT: u64 = 25;

/// The watch never lists more often than this.
const WATCH_MIN_POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// How often the background watch lists open orders: as often as its share of every
/// pool allows, and no more often than [`WATCH_MIN_POLL`]. One pass lists every watched
/// market without a symbol: spot 80, cross margin one per trading symbol, and on each
/// futures market both books (40 + 40). `/fapi` and `/dapi` share one pool since
/// 2026-06-30, so a pass costs the futures pool 160 of Binance's 2,400 a minute: every 5 s
/// that would be 80 % of it. At 25 % the watch lists every 16 s at Binance's limits.
fn watch_poll(client: &Client, markets: &[Market]) -> std::time::Duration {
    let mut per_pool: std::collections::BTreeMap<crate::exchange::Family, u64> = Default::default();
    for &market in markets {
        let (pool, weight) = crate::exchange::listing_weight(market);
        *per_pool.entry(pool).or_default() += u64::from(weight);
    }
    let window = client.weight_window();
    per_pool
        .into_iter()
        .map(|(pool, weight)| {
            let share = (u64::from(client.weight_limit(pool)) * WATCH_SHARE_PERCENT / 100).max(1);
            window.mul_f64(weight as f64 / share as f64)
        })
        .fold(WATCH_MIN_POLL, std::cmp::max)
}

/// Cancel until quiet: beside the next steps, keep listing every market and cancel
/// whatever appears, each reappearance an "attacker still active" finding, until
/// `quiet` passes with nothing new, the key is dead, or the run ends. Never delays a
/// step.
fn spawn_watch(
    ctx: &StepContext,
    client: Client,
    markets: Vec<Market>,
    seen: BTreeSet<(Market, i64)>,
    quiet: std::time::Duration,
) {
    let watch = Watch {
        ctx: ctx.clone(),
        client,
        markets,
        seen,
        reappeared: 0,
    };
    let ending = ctx.run_ending();
    ctx.spawn_background(async move {
        let mut watch = watch;
        tokio::pin!(ending);
        let mut last_activity = std::time::Instant::now();
        // The futures pool's live limit decides how often the watch may list.
        if watch
            .markets
            .iter()
            .any(|m| matches!(m, Market::UsdM | Market::CoinM))
        {
            tokio::select! {
                _ = &mut ending => return,
                _ = watch.client.learn_futures_limits() => {}
            }
        }
        let poll = watch.announce_poll();
        let reason = loop {
            tokio::select! {
                _ = &mut ending => break "the run ended".to_string(),
                _ = tokio::time::sleep(poll) => {}
            }
            if watch
                .ctx
                .run
                .services
                .leaked_dead
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                break "the key is dead".to_string();
            }
            if last_activity.elapsed() >= quiet {
                break format!(
                    "{} passed with no new order",
                    humantime::format_duration(quiet)
                );
            }
            match watch.look().await {
                Look::Quiet => {}
                Look::Cancelled => last_activity = std::time::Instant::now(),
                Look::Stop(reason) => break reason,
                Look::JournalFailed => return,
            }
        };
        let _ = watch.ctx.note(
            Level::Detail,
            format!(
                "stopped watching for new orders ({reason}); {} reappeared while watching",
                watch.reappeared
            ),
        );
    });
}

/// The watch's state: what it lists with, the orders it has seen, and how many new ones
/// it has met.
struct Watch {
    ctx: StepContext,
    client: Client,
    markets: Vec<Market>,
    seen: BTreeSet<(Market, i64)>,
    reappeared: usize,
}

/// What one look of the watch found.
enum Look {
    /// Nothing new (or the listing failed and was noted).
    Quiet,
    /// New orders, cancelled.
    Cancelled,
    /// Nothing more to watch, for this reason.
    Stop(String),
    /// The journal cannot be written: the watch ends without a word.
    JournalFailed,
}

impl Watch {
    /// Say how often the watch lists; returns that interval.
    fn announce_poll(&self) -> std::time::Duration {
        let poll = watch_poll(&self.client, &self.markets);
        let _ = self.ctx.note(
            Level::Detail,
            format!(
                "the watch lists every {} (a quarter of the request-weight limits at most)",
                humantime::format_duration(std::time::Duration::from_millis(
                    poll.as_millis() as u64
                ))
            ),
        );
        poll
    }

    /// List every market once and cancel what is new since the last look.
    async fn look(&mut self) -> Look {
        let ctx = &self.ctx;
        let open = match list_all(ctx, &self.client, &self.markets).await {
            Ok(listing) => Arc::unwrap_or_clone(listing.orders),
            Err(ActionError::Exchange(e)) if e.is_credential_rejection() => {
                return Look::Stop("Binance refuses the key now".to_string())
            }
            Err(ActionError::Journal(_)) => return Look::JournalFailed,
            Err(e) => {
                let _ = ctx.note(Level::Warn, format!("watching for new orders: {e}"));
                return Look::Quiet;
            }
        };
        let new: Vec<Order> = open
            .into_iter()
            .filter(|o| !self.seen.contains(&(o.market, o.order_id)))
            .collect();
        if new.is_empty() {
            return Look::Quiet;
        }
        self.reappeared += new.len();
        self.seen.extend(new.iter().map(|o| (o.market, o.order_id)));
        self.cancel(&new).await
    }

    /// Raise the alarm over orders placed after the cancel, cancel them, and record
    /// what was cancelled.
    async fn cancel(&self, new: &[Order]) -> Look {
        let ctx = &self.ctx;
        let alert = ctx.note(
            Level::Alert,
            format!("{} — someone is still using this key; cancelling them now. Deleting the key is the real stop.", describe(new).replacen("open order", "NEW open order", 1)),
        );
        let finding = ctx.finding(
            Severity::Critical,
            format!(
                "Attacker still active: {} order(s) placed after the cancel",
                new.len()
            ),
            order_rows(new),
        );
        if alert.is_err() || finding.is_err() {
            return Look::JournalFailed;
        }
        let round = cancel_round(&self.client, new).await;
        for error in &round.errors {
            let _ = ctx.note(Level::Warn, format!("cancel failed: {error}"));
        }
        if ctx
            .evidence("cancelled-orders", cancelled_rows(new, &round))
            .is_err()
        {
            return Look::JournalFailed;
        }
        Look::Cancelled
    }
}

/// Each order's row, for a finding.
fn order_rows(orders: &[Order]) -> serde_json::Value {
    json!(orders
        .iter()
        .map(|o| row(Some(o.market.as_str()), o))
        .collect::<Vec<_>>())
}

/// The `cancelled-orders` rows of a round over `orders`: as the answer echoed each one,
/// or as listed with the status CANCELED where it did not.
fn cancelled_rows(orders: &[Order], round: &Round) -> Vec<serde_json::Value> {
    orders
        .iter()
        .map(|o| {
            let done = round
                .cancelled
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
        .collect()
}

/// Every open order on every market, read with `client` (e.g. the responder key).
pub async fn open_everywhere(
    ctx: &StepContext,
    client: &Client,
) -> Result<Vec<Order>, ActionError> {
    list_all_with_other_key(ctx, client, &Market::ALL)
        .await
        .map(|listing| Arc::unwrap_or_clone(listing.orders))
}

/// One last look before the key dies: cancel whatever is open now with the leaked key
/// (the operator already agreed to cancel everything). Once the key is deleted nobody
/// can cancel through the API any more, so orders placed in the last seconds before the
/// deletion would stay open. Returns how many were cancelled; a key Binance already
/// refuses is not an error here.
pub async fn last_sweep(ctx: &StepContext) -> Result<usize, ActionError> {
    let client = ctx.client(crate::secret::Role::Leaked)?;
    let off = not_enabled_at_triage(ctx);
    let markets: Vec<Market> = Market::ALL
        .iter()
        .copied()
        .filter(|m| !off.contains(m))
        .collect();
    if markets.is_empty() {
        return Ok(0);
    }
    let open = match list_all(ctx, &client, &markets).await {
        Ok(listing) => Arc::unwrap_or_clone(listing.orders),
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
        Severity::Critical,
        format!(
            "Attacker still active: {} order(s) open just before the key was deleted",
            open.len()
        ),
        order_rows(&open),
    )?;
    let round = cancel_round(&client, &open).await;
    for error in &round.errors {
        ctx.note(Level::Warn, format!("cancel failed: {error}"))?;
    }
    let rows = cancelled_rows(&open, &round);
    ctx.evidence("cancelled-orders", rows)?;
    Ok(open.len())
}

/// The listing a preview shows: the one that went out with the run's first request (see
/// `warm_up`) when this step is among the first, otherwise read now; with when it was
/// read.
async fn preview_listing(
    ctx: &StepContext,
    client: &Client,
    markets: &[Market],
    coverage: &mut Coverage,
) -> (Result<Listing, ActionError>, std::time::Instant) {
    let warm = ctx.take_warm::<Fetched>().await.filter(|(fetched, at)| {
        // Every market this step cancels on must be in it, and it must still be
        // fresh (a playbook may put the cancel late), or it is read again.
        at.elapsed() < FRESH_PREVIEW
            && markets
                .iter()
                .all(|m| fetched.iter().any(|(listed, _)| listed == m))
    });
    match warm {
        Some((fetched, at)) => (interpret(ctx, fetched, markets, Some(coverage), true), at),
        None => {
            let listed = list_all_covered(ctx, client, markets, Some(coverage)).await;
            (listed, std::time::Instant::now())
        }
    }
}

/// What the cancel would do with a listing: nothing when nothing is open and every
/// market was read, else one cancel-all per symbol and book.
fn preview_of(ctx: &StepContext, listing: Listing) -> Result<Preview, ActionError> {
    let orders = listing.orders;
    // A market that could not be listed may hold orders: never "nothing to do".
    let unread = if listing.unread.is_empty() {
        String::new()
    } else {
        format!(
            "; could not list {} — the cancel lists them again",
            market_list(&listing.unread)
        )
    };
    if orders.is_empty() && listing.unread.is_empty() {
        ctx.evidence("open-orders", Vec::new())?;
        return Ok(Preview {
            summary: "no open orders on any market: nothing to cancel".into(),
            nothing_to_do: true,
            items: json!([]),
            ..Preview::default()
        });
    }
    let summary = format!("{} would be cancelled{unread}", describe(&orders));
    let body = render(&orders);
    // What the cancel acts on: one cancel-all per symbol and book. The orders
    // themselves are the `open-orders` evidence; journaling them twice would hold
    // up the cancel on a big account.
    let items = books(&orders);
    Ok(Preview {
        summary,
        body,
        items,
        nothing_to_do: false,
        // Their rows are built and recorded once the step has run (every round of it).
        later: Some(LaterEvidence::new("open-orders", move || {
            orders
                .iter()
                .map(|o| row(Some(o.market.as_str()), o))
                .collect()
        })),
    })
}

impl Action for CancelOpenOrders {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    /// Listing needs no triage result, and is read-only: it goes out with the run's first
    /// request, every market at once, so the cancel can follow triage's answer at once.
    fn warm_up(
        &self,
        client: &Client,
        step: &crate::playbook::Step,
    ) -> Option<BoxFuture<'static, super::Warm>> {
        // Only the markets the step names, when it names them plainly.
        let markets: Vec<Market> = match step.arg("markets") {
            Some(crate::playbook::ArgValue::List(list)) => list
                .iter()
                .map(|t| t.as_literal()?.parse().ok())
                .collect::<Option<Vec<Market>>>()?,
            Some(_) => return None,
            None => SPEC
                .inputs
                .iter()
                .find(|i| i.name == "markets")
                .and_then(|i| i.default)
                .unwrap_or("")
                .split(',')
                .filter_map(|m| m.trim().parse().ok())
                .collect(),
        };
        let client = client.clone();
        Some(Box::pin(async move {
            let fetched = fetch(&client, &markets).await.unwrap_or_default();
            Box::new((fetched, std::time::Instant::now())) as super::Warm
        }))
    }

    fn preview<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Preview, ActionError>> {
        Box::pin(async move {
            let client = ctx.client(ctx.role)?;
            let mut coverage = Coverage::default();
            let markets = enabled_markets(ctx, &markets(ctx), Some(&mut coverage))?;
            if markets.is_empty() {
                coverage.record(ctx)?;
                return Ok(Preview {
                    summary: "the key may not trade on any of these markets: nothing it can have placed, nothing to cancel".into(),
                    nothing_to_do: true,
                    items: json!([]),
                    ..Preview::default()
                });
            }
            let (listed, listed_at) = preview_listing(ctx, &client, &markets, &mut coverage).await;
            if refused_everywhere(&listed) {
                // Containment first: the cancel is still tried, and then says what it
                // could not cancel and how to.
                coverage.record(ctx)?;
                return Ok(Preview {
                    summary: format!(
                        "Binance refuses the leaked key from this machine, so open orders cannot be listed with it: the cancel is tried once more and then says what is left on {}",
                        markets.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                    items: json!([]),
                    ..Preview::default()
                });
            }
            let listing = listed?;
            coverage.not_examined(
                "open orders: isolated margin, TWAP/VP algo, options",
                "not listed or cancelled by respond",
            );
            coverage.record(ctx)?;
            *self.last_preview.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((listed_at, ctx.step.clone(), listing.clone()));
            preview_of(ctx, listing)
        })
    }

    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let client = ctx.client(ctx.role)?;
            let mut markets = enabled_markets(ctx, &markets(ctx), None)?;
            let settle = ctx.args.duration("settle").unwrap_or_default();
            let listing = match self.fresh_listing(ctx, settle) {
                Some(listing) => listing,
                None => {
                    let listed = list_all(ctx, &client, &markets).await;
                    if refused_everywhere(&listed) {
                        return refused_outcome(ctx, &markets).await;
                    }
                    listed?
                }
            };
            // Markets Binance refused while it answered the key elsewhere are not asked
            // again (the preview's listing, or this one, already said so).
            markets.retain(|m| !listing.not_enabled.contains(m));
            if !client.endpoints().has_sapi() {
                markets.retain(|m| *m != Market::Margin);
            }
            let not_enabled: Vec<&str> = not_enabled_at_triage(ctx)
                .iter()
                .chain(listing.not_enabled.iter())
                .map(|m| m.as_str())
                .collect();
            let rounds = cancel_until_quiet(ctx, &client, &markets, listing, settle).await?;
            if !rounds.remaining.is_empty() {
                ctx.note(
                    Level::Warn,
                    format!("{} left open", describe(&rounds.remaining)),
                )?;
            }
            start_watch(ctx, &client, &markets, &rounds)?;
            summarize(ctx, &rounds, not_enabled)
        })
    }
}

impl CancelOpenOrders {
    /// The preview's listing, when it is this step's and no older than `settle` (or the
    /// freshness limit): nothing is cancelled from a stale picture, and a listing older
    /// than that when the operator answered is listed again (one round trip).
    fn fresh_listing(&self, ctx: &StepContext, settle: std::time::Duration) -> Option<Listing> {
        self.last_preview
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .filter(|(at, step, _)| *step == ctx.step && at.elapsed() <= settle.min(FRESH_PREVIEW))
            .map(|(_, _, listing)| listing)
    }
}

/// What the cancel rounds came to.
struct Rounds {
    /// Orders still listed after the last round.
    remaining: Vec<Order>,
    /// Markets the last listing could not read: what they hold is unknown.
    unread: BTreeSet<Market>,
    cancelled: usize,
    /// Orders that appeared after a cancel: someone still uses the key.
    reappeared: usize,
    /// Every order seen open.
    seen: BTreeSet<(Market, i64)>,
}

/// Cancel every listed book, look again after `settle`, and — asked each time — cancel
/// what is still or newly open, up to [`MAX_ROUNDS`] rounds.
async fn cancel_until_quiet(
    ctx: &StepContext,
    client: &Client,
    markets: &[Market],
    listing: Listing,
    settle: std::time::Duration,
) -> Result<Rounds, ActionError> {
    let mut targets = listing.orders;
    let mut rounds = Rounds {
        remaining: Vec::new(),
        unread: listing.unread,
        cancelled: 0,
        reappeared: 0,
        seen: BTreeSet::new(),
    };
    for round in 1..=MAX_ROUNDS {
        let unread_before = std::mem::take(&mut rounds.unread);
        let done = cancel_round(client, &targets).await;
        rounds
            .seen
            .extend(targets.iter().map(|o| (o.market, o.order_id)));
        for error in &done.errors {
            ctx.note(Level::Warn, format!("cancel failed: {error}"))?;
        }
        if done.errors.is_empty() && !settle.is_zero() {
            // Every cancel was acknowledged. Someone still holding the key places
            // orders again within moments: look after `settle`, once, rather than
            // now and again then (a listing of every market costs ~600 weight on
            // Binance). After a failed cancel, look at once.
            tokio::time::sleep(settle).await;
        }
        let listing = list_all(ctx, client, markets).await?;
        rounds.remaining = Arc::unwrap_or_clone(listing.orders);
        rounds.unread = listing.unread;
        let gone = gone(&targets, &rounds.remaining, &rounds.unread, &done);
        rounds.cancelled += gone.len();
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
        if rounds.remaining.is_empty() {
            // Nothing visible to cancel; a market that cannot be listed after the
            // client's own retries is reported below, not polled round after round.
            break;
        }
        rounds.reappeared += flag_new(ctx, &rounds, &unread_before)?;
        if round == MAX_ROUNDS || !ctx.ask(&again_question(&rounds), true)? {
            break;
        }
        targets = Arc::new(rounds.remaining.clone());
    }
    Ok(rounds)
}

/// Cancelled = listed before, gone now. Futures cancel-alls do not echo the orders, so
/// the listing is the record; spot and margin answers add their detail. On a market the
/// listing could not read, only an acknowledged cancel counts.
fn gone(
    targets: &[Order],
    remaining: &[Order],
    unread: &BTreeSet<Market>,
    done: &Round,
) -> Vec<Order> {
    let still_open: BTreeSet<(Market, i64)> =
        remaining.iter().map(|o| (o.market, o.order_id)).collect();
    targets
        .iter()
        .filter(|o| !still_open.contains(&(o.market, o.order_id)))
        .filter(|o| {
            !unread.contains(&o.market) || done.acknowledged.contains(&(o.market, o.symbol.clone()))
        })
        .map(|o| {
            done.cancelled
                .iter()
                .find(|a| a.market == o.market && a.order_id == o.order_id)
                .cloned()
                .unwrap_or_else(|| Order {
                    status: "CANCELED".into(),
                    ..o.clone()
                })
        })
        .collect()
}

/// Orders open now that no listing saw before: someone is still using the key. Orders
/// on a market the previous listing could not read are not new: they were there,
/// unseen. Returns how many.
fn flag_new(
    ctx: &StepContext,
    rounds: &Rounds,
    unread_before: &BTreeSet<Market>,
) -> Result<usize, ActionError> {
    let new: Vec<&Order> = rounds
        .remaining
        .iter()
        .filter(|o| !rounds.seen.contains(&(o.market, o.order_id)))
        .filter(|o| !unread_before.contains(&o.market))
        .collect();
    if !new.is_empty() {
        ctx.note(
            Level::Alert,
            format!(
                "{} NEW open order(s) appeared after cancelling — someone is still using this key. Cancelling only buys time: deleting the key is the real stop.",
                new.len()
            ),
        )?;
        ctx.finding(
            Severity::Critical,
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
    Ok(new.len())
}

/// The question before another round.
fn again_question(rounds: &Rounds) -> String {
    if rounds.unread.is_empty() {
        format!(
            "{} still open. Cancel again now?",
            describe(&rounds.remaining)
        )
    } else {
        format!(
            "{} still open, and {} could not be listed. Cancel again now?",
            describe(&rounds.remaining),
            market_list(&rounds.unread)
        )
    }
}

/// With `watch:`, keep listing every market for new orders beside the next steps.
fn start_watch(
    ctx: &StepContext,
    client: &Client,
    markets: &[Market],
    rounds: &Rounds,
) -> Result<(), ActionError> {
    let watch = ctx.args.duration("watch").unwrap_or_default();
    if watch.is_zero() {
        return Ok(());
    }
    let mut seen = rounds.seen.clone();
    seen.extend(rounds.remaining.iter().map(|o| (o.market, o.order_id)));
    ctx.note(
        Level::Info,
        format!(
            "watching every market for new orders until {} pass quietly or the key is dead (beside the next steps)",
            humantime::format_duration(watch)
        ),
    )?;
    // Cross margin is the costliest market to list; watch it only where the attacker
    // actually had orders.
    let had_margin = seen.iter().any(|(m, _)| *m == Market::Margin);
    let watched: Vec<Market> = markets
        .iter()
        .copied()
        .filter(|m| *m != Market::Margin || had_margin)
        .collect();
    spawn_watch(ctx, client.clone(), watched, seen, watch);
    Ok(())
}

/// The step's outcome: what was cancelled, what is left, and never "clean" where a
/// market could not be read.
fn summarize(
    ctx: &StepContext,
    rounds: &Rounds,
    not_enabled: Vec<&str>,
) -> Result<Outcome, ActionError> {
    let (cancelled, remaining, unread) = (rounds.cancelled, &rounds.remaining, &rounds.unread);
    let mut summary = if remaining.is_empty() {
        format!("{cancelled} order(s) cancelled; no open order left")
    } else {
        format!(
            "{cancelled} order(s) cancelled; {} still open",
            remaining.len()
        )
    };
    if !unread.is_empty() {
        // Never call the books clean where they could not be read.
        summary = format!(
            "{cancelled} order(s) cancelled; {} NOT checked: its open orders could not be listed and may still be open — cancel them in the Binance app, and delete the key",
            market_list(unread)
        );
        if !remaining.is_empty() {
            summary.push_str(&format!("; {} still open elsewhere", remaining.len()));
        }
        ctx.note(Level::Alert, summary.clone())?;
    }
    let mut outcome = Outcome::ok(summary)
        .with("cancelled", cancelled as u64)
        .with("remaining", remaining.len() as u64)
        .with("reappeared", rounds.reappeared as u64)
        .with(
            "unchecked",
            unread.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        )
        .with("not_enabled", not_enabled)
        .with("refused", false);
    if !unread.is_empty() {
        // Containment is incomplete: the run goes on (deleting the key is the real stop)
        // and ends as failed.
        outcome.status = crate::report::journal::StepStatus::Failed;
    }
    Ok(outcome)
}
