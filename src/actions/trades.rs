//! `binance.recent_trades`: own trades in the review window on every symbol worth
//! looking at (`scope: candidates`), or on every symbol (`scope: all`, see
//! `trade_scan.rs`), pulled concurrently window by window, with two flags: trades far
//! from the market price of their minute, and symbols first traded inside the window (the
//! "drain through an illiquid pair" pattern).
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::{json, Value as Json};
use tokio::task::JoinSet;

use super::util::{dec, rfc3339, row, Coverage, SIX_MONTHS_MS};
use super::{
    trade_scan, Action, ActionError, ActionSpec, ArgType, BoxFuture, InputSpec, Kind, Outcome,
    OutputSpec, StepContext,
};
use crate::exchange::{Client, ExchangeError, Kline, Market, Pull, TimeWindow, Trade};
use crate::operator::Level;
use crate::report::journal::Severity;

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(RecentTrades)]
}

const MARKETS: &[&str] = &["spot", "usdm", "coinm"];
const SCOPES: &[&str] = &["candidates", "all"];
const MINUTE_MS: i64 = 60_000;
/// Klines per request (Binance's limit).
const KLINES_PER_REQUEST: i64 = 1000;

static SPEC: ActionSpec = ActionSpec {
    name: "binance.recent_trades",
    description: "Own trades in the review window on every symbol with open orders, positions or balances (plus `symbols`) — or, with `scope: all`, on every spot symbol the exchange lists and every futures symbol with income in the window — with off-market and first-ever-trade flags",
    kind: Kind::Evidence,
    inputs: &[
        InputSpec { name: "since", ty: ArgType::Since, required: true, default: None, description: "start of the review window" },
        InputSpec { name: "symbols", ty: ArgType::List, required: false, default: None, description: "extra spot symbols to examine" },
        InputSpec { name: "markets", ty: ArgType::Choices(MARKETS), required: false, default: Some("spot,usdm,coinm"), description: "markets to pull trades from" },
        InputSpec {
            name: "scope",
            ty: ArgType::Choice(SCOPES),
            required: false,
            default: Some("candidates"),
            description: "`candidates`: symbols seen in this run (open orders, positions, held pairs, `symbols`); `all`: every spot symbol exchangeInfo lists and every futures symbol with income in the window (resumable)",
        },
        InputSpec {
            name: "max_deviation",
            ty: ArgType::Int { min: 1, max: 1000 },
            required: false,
            default: Some("20"),
            description: "percent away from the minute's market price that flags a trade",
        },
    ],
    outputs: &[
        OutputSpec { name: "trades", description: "trades found in the window" },
        OutputSpec { name: "flagged", description: "trades flagged as suspicious" },
        OutputSpec { name: "disowned", description: "flagged trades with evidence that the attacker made them (off-market, first-ever in an illiquid pair, or from an order placed after the cancel)" },
        OutputSpec { name: "symbols", description: "symbols examined, comma-separated" },
    ],
};

pub struct RecentTrades;

/// Why a symbol is examined: every way it was seen in this run.
type Reasons = BTreeSet<&'static str>;

/// Symbols worth examining per market, each with how it became a candidate: every symbol
/// seen anywhere in this run (open orders in every book, the algo books included,
/// cancelled orders, positions, `--symbols`), and every spot pair whose base and quote
/// the account holds or moved in the window (a drain through an illiquid pair leaves the
/// victim holding, or withdrawing, the illiquid token).
async fn candidates(
    half_held: &mut Vec<String>,
    ctx: &StepContext,
    client: &Client,
    markets: &[Market],
) -> Result<BTreeMap<Market, BTreeMap<String, Reasons>>, ActionError> {
    let mut out: BTreeMap<Market, BTreeMap<String, Reasons>> = BTreeMap::new();
    let mut add = |market: &str, symbol: &str, why: &'static str| {
        let market = match market {
            "margin" | "spot" => Market::Spot,
            "usdm" => Market::UsdM,
            "coinm" => Market::CoinM,
            _ => return,
        };
        if markets.contains(&market) && !symbol.is_empty() {
            out.entry(market)
                .or_default()
                .entry(symbol.to_uppercase())
                .or_default()
                .insert(why);
        }
    };
    for (table, why) in [
        ("open-orders", "open order"),
        ("cancelled-orders", "cancelled order"),
        ("positions", "position"),
    ] {
        for r in ctx.earlier_evidence(table) {
            add(
                r["market"].as_str().unwrap_or(""),
                r["symbol"].as_str().unwrap_or(""),
                why,
            );
        }
    }
    for s in ctx.args.list("symbols") {
        add("spot", &s, "--symbols");
    }
    if markets.contains(&Market::Spot) {
        held_pairs(&mut out, half_held, ctx, client).await?;
    }
    Ok(out)
}

/// Every spot pair whose base and quote the account holds or moved in the window, added
/// to `out`; pairs of a held base alone go to `half_held`.
async fn held_pairs(
    out: &mut BTreeMap<Market, BTreeMap<String, Reasons>>,
    half_held: &mut Vec<String>,
    ctx: &StepContext,
    client: &Client,
) -> Result<(), ActionError> {
    let mut held: BTreeSet<String> = ctx
        .earlier_evidence("balances")
        .iter()
        .filter(|r| r["total"].as_str().is_some_and(|t| t != "0"))
        .filter_map(|r| r["asset"].as_str().map(String::from))
        .collect();
    if held.is_empty() {
        if let Ok(account) = client.account().await {
            held = account
                .balances
                .into_iter()
                .filter(|b| !(b.free + b.locked).is_zero())
                .map(|b| b.asset)
                .collect();
        }
    }
    // Assets that moved in the window (withdrawn, deposited, transferred, paid),
    // when those were read before this step.
    let mut moved = BTreeSet::new();
    for (table, field) in [
        ("withdrawals", "coin"),
        ("deposits", "coin"),
        ("transfers", "asset"),
        ("pay", "currency"),
    ] {
        for r in ctx.earlier_evidence(table) {
            if let Some(asset) = r[field].as_str().filter(|a| !a.is_empty()) {
                moved.insert(asset.to_uppercase());
            }
        }
    }
    let seen = |asset: &str| held.contains(asset) || moved.contains(asset);
    match client.exchange_info(Market::Spot).await {
        Ok(info) => {
            for s in info.symbols {
                let (base, quote) = (&s.base_asset, &s.quote_asset);
                if seen(base) && seen(quote) {
                    let why = if held.contains(base) && held.contains(quote) {
                        "base and quote held"
                    } else {
                        "asset moved in the window"
                    };
                    out.entry(Market::Spot)
                        .or_default()
                        .entry(s.symbol)
                        .or_default()
                        .insert(why);
                } else if held.contains(base) && s.status == "TRADING" {
                    // Holding the base alone: a possible trade we do not look at.
                    half_held.push(s.symbol);
                }
            }
        }
        Err(e) => ctx.note(
            Level::Warn,
            format!("could not read the spot symbol list ({e}); pairs of held assets not examined"),
        )?,
    }
    Ok(())
}

/// Which minutes to fetch klines for, as ranges of at most 1000 minutes each: as few
/// ranges as possible (each is a request, and requests are what the weight limit
/// counts), and among those, the ones covering the fewest minutes (each minute is a
/// candle to download and read). Gaps between ranges fall on the longest quiet spells.
fn kline_ranges(times: &[i64]) -> Vec<TimeWindow> {
    let mut minutes: Vec<i64> = times.iter().map(|t| t - t.rem_euclid(MINUTE_MS)).collect();
    minutes.sort_unstable();
    minutes.dedup();
    let n = minutes.len();
    // best[i]: (ranges, minutes covered) for minutes[i..], and where the first range ends.
    let mut best: Vec<(usize, i64, usize)> = vec![(0, 0, 0); n + 1];
    for i in (0..n).rev() {
        let last_allowed = minutes[i] + (KLINES_PER_REQUEST - 1) * MINUTE_MS;
        let mut choice = (usize::MAX, i64::MAX, i);
        for j in i..n {
            if minutes[j] > last_allowed {
                break;
            }
            let (ranges, covered, _) = best[j + 1];
            let here = (
                ranges + 1,
                covered + (minutes[j] - minutes[i]) / MINUTE_MS + 1,
                j,
            );
            if (here.0, here.1) < (choice.0, choice.1) {
                choice = here;
            }
        }
        best[i] = choice;
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let end = best[i].2;
        out.push(TimeWindow::new(minutes[i], minutes[end] + MINUTE_MS - 1));
        i = end + 1;
    }
    out
}

/// How far `price` is from the minute's market, in percent (signed), using the
/// candle's range: inside [low, high] is 0.
fn deviation(price: Decimal, k: &Kline) -> Option<Decimal> {
    let reference = if price > k.high {
        k.high
    } else if price < k.low {
        k.low
    } else {
        return Some(Decimal::ZERO);
    };
    if reference.is_zero() {
        return None;
    }
    Some(((price - reference) / reference * Decimal::from(100)).round_dp(1))
}

#[derive(Default)]
struct Pulled {
    trades: Vec<Trade>,
    /// The account's first trade per symbol, where a pull already showed it (a spot
    /// symbol with fewer than a page of trades ever); the others are looked up.
    first: BTreeMap<(Market, String), Option<Trade>>,
    failed: Vec<String>,
    /// (market, symbol) → why a window of it could not be read.
    gaps: BTreeMap<(Market, String), String>,
    /// Pulls attempted, and for each that failed, its credential rejection if any.
    attempted: usize,
    failures: Vec<Option<crate::exchange::Rejection>>,
}

/// One spot symbol's trades in `range`: the most recent page first, which for most
/// accounts covers the whole window (and the whole history) in one request; windows
/// of 24 h, concurrently, only for the part of the range older than a full page.
pub(super) async fn spot_trades(
    client: &Client,
    symbol: &str,
    range: TimeWindow,
) -> Result<(Vec<Trade>, Option<Option<Trade>>), ExchangeError> {
    let recent = client.recent_trades(symbol).await?;
    let first = recent.whole_history.then(|| recent.trades.first().cloned());
    let oldest = recent.trades.first().map(|t| t.time);
    let mut trades: Vec<Trade> = recent
        .trades
        .into_iter()
        .filter(|t| range.contains(t.time))
        .collect();
    if let Some(oldest) = oldest.filter(|&o| first.is_none() && o >= range.start_ms) {
        // A full page, all inside the window: read what is older by window. The page's
        // oldest millisecond is read again (trades sharing it may straddle the page).
        let rest = TimeWindow::new(range.start_ms, oldest.min(range.end_ms));
        let pages = futures_util::future::join_all(
            Pull::Trades(Market::Spot)
                .windows(rest)
                .into_iter()
                .map(|w| client.my_trades_window(Market::Spot, symbol, w)),
        )
        .await;
        for page in pages {
            trades.extend(page?);
        }
        trades.sort_by_key(|t| t.id);
        trades.dedup_by_key(|t| t.id);
    }
    Ok((trades, first))
}

async fn pull(
    ctx: &StepContext,
    client: &Client,
    symbols: &BTreeMap<Market, BTreeSet<String>>,
    range: TimeWindow,
) -> Pulled {
    let mut tasks = JoinSet::new();
    for (&market, list) in symbols {
        for symbol in list {
            if market == Market::Spot {
                let client = client.clone();
                let symbol = symbol.clone();
                tasks.spawn(async move {
                    let result = spot_trades(&client, &symbol, range).await;
                    (market, symbol, result)
                });
                continue;
            }
            for window in Pull::Trades(market).windows(range) {
                let client = client.clone();
                let symbol = symbol.clone();
                tasks.spawn(async move {
                    let result = client
                        .my_trades_window(market, &symbol, window)
                        .await
                        .map(|t| (t, None));
                    (market, symbol, result)
                });
            }
        }
    }
    let bar = ctx
        .run
        .operator
        .progress("trade history (symbol × window)", Some(tasks.len() as u64));
    let mut trades = Vec::new();
    let mut first = BTreeMap::new();
    let mut failed = BTreeSet::new();
    let mut gaps = BTreeMap::new();
    let attempted = tasks.len();
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        bar.inc(1);
        match joined {
            Ok((market, symbol, Ok((list, known_first)))) => {
                trades.extend(list);
                if let Some(f) = known_first {
                    first.insert((market, symbol), f);
                }
            }
            Ok((market, symbol, Err(e))) => {
                failed.insert(format!("{market} {symbol}: {}", short_error(&e)));
                failures.push(e.rejection());
                gaps.insert((market, symbol), short_error(&e));
            }
            Err(e) => {
                failed.insert(format!("task failed: {e}"));
            }
        }
    }
    bar.finish_and_clear();
    trades.sort_by_key(|t| (t.time, t.id));
    Pulled {
        trades,
        first,
        failed: failed.into_iter().collect(),
        gaps,
        attempted,
        failures,
    }
}

fn short_error(e: &ExchangeError) -> String {
    if e.is_unknown_symbol() {
        "not a valid symbol".into()
    } else {
        e.to_string()
    }
}

impl Action for RecentTrades {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(ctx.with_reader(read))
    }

    /// Held assets and assets that moved pick the candidate symbols; a full scan leaves
    /// out the trades an earlier pass reported.
    fn builds_on(&self) -> &'static [&'static str] {
        &[
            "binance.balances",
            "binance.transfers",
            "binance.recent_trades",
        ]
    }
}

/// What the step examines: the window, the markets, and every symbol with why.
struct Examined {
    range: TimeWindow,
    /// The exchange's clock when the step started.
    now_ms: i64,
    markets: Vec<Market>,
    scope_all: bool,
    reasons: BTreeMap<Market, BTreeMap<String, Reasons>>,
    symbols: BTreeMap<Market, BTreeSet<String>>,
    /// With `scope: all`, every spot symbol exchangeInfo lists.
    listing: Option<trade_scan::Listing>,
    /// Futures markets whose income history could not be read, and why.
    income_gaps: BTreeMap<Market, String>,
    /// Spot symbols whose base asset is held but not their quote.
    half_held: Vec<String>,
}

/// Trades with what the market said about them, ready for the evidence table.
struct Assessed {
    rows: Vec<Json>,
    flagged: usize,
    disowned: usize,
}

/// The step's work, with `client` the key it reads with.
async fn read(ctx: &StepContext, client: Client) -> Result<Outcome, ActionError> {
    let since = super::util::since_input(ctx)?;
    let now = client.server_now();
    let range = TimeWindow::between(since, now);
    let markets: Vec<Market> = ctx
        .args
        .list("markets")
        .iter()
        .filter_map(|m| m.parse().ok())
        .collect();
    let max_dev = Decimal::from(ctx.args.int("max_deviation").unwrap_or(20));
    let scope_all = ctx.args.text("scope") == Some("all");
    if scope_all && reads_with_a_dead_key(ctx) {
        return nothing_reads_the_account(ctx);
    }
    let mut half_held = Vec::new();
    let mut reasons = candidates(&mut half_held, ctx, &client, &markets).await?;
    let (listing, income_gaps) = if scope_all {
        widen_to_everything(ctx, &client, &markets, range, &mut reasons).await?
    } else {
        (None, BTreeMap::new())
    };
    let symbols: BTreeMap<Market, BTreeSet<String>> = reasons
        .iter()
        .map(|(m, list)| (*m, list.keys().cloned().collect()))
        .collect();
    let examined = Examined {
        range,
        now_ms: now.timestamp_millis(),
        markets,
        scope_all,
        reasons,
        symbols,
        listing,
        income_gaps,
        half_held,
    };
    announce(ctx, &examined)?;
    let (mut pulled, resumed) = if scope_all {
        pull_everything(ctx, &client, &examined.symbols, range).await?
    } else {
        (pull(ctx, &client, &examined.symbols, range).await, 0)
    };
    let reported_before = if scope_all {
        drop_reported_before(ctx, &mut pulled)
    } else {
        0
    };
    let pulled = pulled;
    check_pulls(ctx, &pulled).await?;
    record_coverage(ctx, &examined, &pulled, resumed)?;

    let mut by_symbol: BTreeMap<(Market, String), Vec<&Trade>> = BTreeMap::new();
    for t in &pulled.trades {
        by_symbol
            .entry((t.market, t.symbol.clone()))
            .or_default()
            .push(t);
    }
    let (first, klines) = look_up_market(ctx, &client, &by_symbol, &pulled.first).await?;
    let assessed = assess(ctx, &by_symbol, &first, &klines, range, max_dev)?;
    ctx.evidence("trades", assessed.rows)?;
    Ok(Outcome::ok(summary(
        &examined,
        &pulled,
        assessed.flagged,
        reported_before,
    ))
    .with("trades", pulled.trades.len() as u64)
    .with("flagged", assessed.flagged as u64)
    .with("disowned", assessed.disowned as u64)
    .with("symbols", examined.all_symbols()))
}

impl Examined {
    /// `market:SYMBOL` of every symbol examined, comma-separated.
    fn all_symbols(&self) -> String {
        let all: Vec<String> = self
            .symbols
            .iter()
            .flat_map(|(m, s)| s.iter().map(move |x| format!("{m}:{x}")))
            .collect();
        all.join(",")
    }
}

/// The step reads with the leaked key, and it is known dead.
fn reads_with_a_dead_key(ctx: &StepContext) -> bool {
    ctx.reads_as() == crate::secret::Role::Leaked
        && ctx
            .run
            .services
            .leaked_dead
            .load(std::sync::atomic::Ordering::SeqCst)
}

/// The deep scan skipped: the leaked key is dead and no responder key was given.
fn nothing_reads_the_account(ctx: &StepContext) -> Result<Outcome, ActionError> {
    let why = "the leaked key no longer reads and no responder key was given: nothing can read the account for the deep scan. Run it later with a read-only responder key (BINANCE_RESPONDER_API_KEY / BINANCE_RESPONDER_API_SECRET)";
    ctx.note(Level::Warn, why)?;
    Ok(Outcome {
        status: crate::report::journal::StepStatus::Skipped,
        summary: why.to_string(),
        outputs: BTreeMap::new(),
    })
}

/// `scope: all`: every spot symbol exchangeInfo lists, and every futures symbol with
/// income in the window, added to `reasons`. Returns the spot listing and the futures
/// markets whose income could not be read.
async fn widen_to_everything(
    ctx: &StepContext,
    client: &Client,
    markets: &[Market],
    range: TimeWindow,
    reasons: &mut BTreeMap<Market, BTreeMap<String, Reasons>>,
) -> Result<(Option<trade_scan::Listing>, BTreeMap<Market, String>), ActionError> {
    let mut listing = None;
    let mut income_gaps: BTreeMap<Market, String> = BTreeMap::new();
    if markets.contains(&Market::Spot) {
        let l = trade_scan::spot_listing(client).await.map_err(|e| {
            ActionError::Failed(format!(
                "the spot symbol list (exchangeInfo) could not be read, so not every symbol can be examined: {e}"
            ))
        })?;
        for symbol in &l.symbols {
            reasons
                .entry(Market::Spot)
                .or_default()
                .entry(symbol.clone())
                .or_default()
                .insert("listed by exchangeInfo");
        }
        listing = Some(l);
    }
    let off = super::orders::not_enabled_at_triage(ctx);
    for market in [Market::UsdM, Market::CoinM] {
        if !markets.contains(&market) || off.contains(&market) {
            continue;
        }
        match trade_scan::income_symbols(client, market, range).await {
            Ok(found) => {
                for symbol in found {
                    reasons
                        .entry(market)
                        .or_default()
                        .entry(symbol)
                        .or_default()
                        .insert("income in the window");
                }
            }
            Err(e) => {
                ctx.note(
                    Level::Warn,
                    format!("{market} income history not read ({e}): its symbols are not known"),
                )?;
                income_gaps.insert(market, short_error(&e));
                if matches!(e.code(), Some(-2008 | -2014 | -2015)) {
                    // The key reading may not read this market (a read-only responder
                    // key without futures): its trades would be refused the same way.
                    reasons.remove(&market);
                }
            }
        }
    }
    Ok((listing, income_gaps))
}

/// Tells the operator which symbols are examined, over which window.
fn announce(ctx: &StepContext, examined: &Examined) -> Result<(), ActionError> {
    let count: usize = examined.symbols.values().map(|s| s.len()).sum();
    let named = |m: &Market, s: &BTreeSet<String>| match &examined.listing {
        Some(l) if *m == Market::Spot => format!(
            "{m}: all {} symbols exchangeInfo lists ({}){}",
            l.symbols.len(),
            l.statuses_words(),
            match s.len().saturating_sub(l.symbols.len()) {
                0 => String::new(),
                n => format!(" and {n} more"),
            }
        ),
        _ => format!("{m}: {}", s.iter().cloned().collect::<Vec<_>>().join(" ")),
    };
    ctx.note(
        Level::Info,
        format!(
            "examining {count} symbol(s) from {} to {}: {}",
            rfc3339(examined.range.start_ms),
            rfc3339(examined.range.end_ms),
            examined
                .symbols
                .iter()
                .map(|(m, s)| named(m, s))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    )
}

/// `scope: all`: the futures symbols pulled by window, the spot listing scanned (and
/// resumed); returns what was pulled and how many spot symbols an earlier session read.
async fn pull_everything(
    ctx: &StepContext,
    client: &Client,
    symbols: &BTreeMap<Market, BTreeSet<String>>,
    range: TimeWindow,
) -> Result<(Pulled, usize), ActionError> {
    let spot: Vec<String> = symbols
        .get(&Market::Spot)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    let futures: BTreeMap<Market, BTreeSet<String>> = symbols
        .iter()
        .filter(|(m, _)| **m != Market::Spot)
        .map(|(m, s)| (*m, s.clone()))
        .collect();
    let mut pulled = if futures.values().all(BTreeSet::is_empty) {
        Pulled::default()
    } else {
        pull(ctx, client, &futures, range).await
    };
    let scan = trade_scan::scan_spot(ctx, client, &spot, range).await?;
    pulled.attempted += scan.attempted;
    pulled.trades.extend(scan.trades);
    for (symbol, first) in scan.first {
        pulled.first.insert((Market::Spot, symbol), first);
    }
    for (symbol, e) in scan.failed {
        pulled
            .failed
            .push(format!("{} {symbol}: {}", Market::Spot, short_error(&e)));
        pulled.failures.push(e.rejection());
        pulled.gaps.insert((Market::Spot, symbol), short_error(&e));
    }
    pulled.trades.sort_by_key(|t| (t.time, t.id));
    pulled
        .trades
        .dedup_by_key(|t| (t.market, t.symbol.clone(), t.id));
    Ok((pulled, scan.resumed))
}

/// A later, wider scan reports only what an earlier step has not: the same trade twice
/// would be counted twice in the evidence and the findings. Returns how many it dropped.
fn drop_reported_before(ctx: &StepContext, pulled: &mut Pulled) -> usize {
    let known: BTreeSet<(String, String, i64)> = ctx
        .earlier_evidence("trades")
        .iter()
        .filter_map(|r| {
            Some((
                r["market"].as_str()?.to_string(),
                r["symbol"].as_str()?.to_string(),
                r["id"].as_i64()?,
            ))
        })
        .collect();
    let before = pulled.trades.len();
    pulled
        .trades
        .retain(|t| !known.contains(&(t.market.as_str().to_string(), t.symbol.clone(), t.id)));
    before - pulled.trades.len()
}

/// Warns of each failed pull, lets one liveness probe decide whether a refusal means
/// the key is gone, and fails the step when not one pull worked.
async fn check_pulls(ctx: &StepContext, pulled: &Pulled) -> Result<(), ActionError> {
    for f in &pulled.failed {
        ctx.note(Level::Warn, format!("trades not read for {f}"))?;
    }
    if let Some(rejection) = pulled.failures.iter().flatten().find(|r| r.about_the_key()) {
        ctx.leaked_key_rejected(*rejection).await?;
    }
    if pulled.attempted > 0 && pulled.failures.len() == pulled.attempted {
        // Not one pull worked: "0 trades" would read as "no trades".
        return Err(ActionError::Failed(format!(
            "no trade history could be read ({} pull(s) failed), e.g. {}",
            pulled.failures.len(),
            pulled.failed.first().map(String::as_str).unwrap_or("")
        )));
    }
    Ok(())
}

/// What was read, what could not be, and what was never looked at.
fn record_coverage(
    ctx: &StepContext,
    examined: &Examined,
    pulled: &Pulled,
    resumed: usize,
) -> Result<(), ActionError> {
    let mut coverage = Coverage::default();
    let markets = &examined.markets;
    for market in super::orders::not_enabled_at_triage(ctx) {
        if matches!(market, Market::UsdM | Market::CoinM) && markets.contains(&market) {
            coverage.not_enabled(
                &format!("{market} trades"),
                "",
                "futures not enabled on this key: it cannot have traded there",
            );
        }
    }
    if let (Some(l), Some(spot)) = (&examined.listing, examined.symbols.get(&Market::Spot)) {
        // One line for the whole listing (not one per symbol), then each gap.
        let range = examined.range;
        let gaps = spot
            .iter()
            .filter(|s| pulled.gaps.contains_key(&(Market::Spot, (*s).clone())))
            .count();
        let extra = spot.len().saturating_sub(l.symbols.len());
        coverage.read_because(
            "spot trades",
            &format!("all {} spot symbols", l.symbols.len()),
            Some(range),
            &format!(
                "every symbol exchangeInfo lists, whatever its status ({}){}{}{}",
                l.statuses_words(),
                if extra > 0 {
                    format!(", and {extra} more seen in this run")
                } else {
                    String::new()
                },
                if resumed > 0 {
                    format!("; {resumed} read in an earlier session of this incident")
                } else {
                    String::new()
                },
                if gaps > 0 {
                    format!("; {gaps} could not be read (listed as gaps)")
                } else {
                    String::new()
                }
            ),
        );
    }
    symbol_coverage(&mut coverage, examined, pulled);
    not_examined(&mut coverage, examined);
    coverage.record(ctx)
}

/// Each candidate symbol read (and why it was a candidate) or a gap; with the whole
/// spot listing, only its gaps.
fn symbol_coverage(coverage: &mut Coverage, examined: &Examined, pulled: &Pulled) {
    let Examined {
        range,
        now_ms,
        reasons,
        symbols,
        listing,
        income_gaps,
        ..
    } = examined;
    let range = *range;
    for (market, why) in income_gaps {
        coverage.gap(
            &format!("{market} income"),
            "",
            Some(range),
            &format!("{why}: the {market} symbols traded in the window are not known"),
        );
    }
    for (market, list) in symbols {
        for symbol in list {
            let source = format!("{market} trades");
            if listing.is_some() && *market == Market::Spot {
                if let Some(why) = pulled.gaps.get(&(*market, symbol.clone())) {
                    coverage.gap(&source, symbol, Some(range), why);
                }
                continue;
            }
            let because = reasons
                .get(market)
                .and_then(|r| r.get(symbol))
                .map(|r| r.iter().copied().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            match pulled.gaps.get(&(*market, symbol.clone())) {
                Some(why) => coverage.gap(
                    &source,
                    symbol,
                    Some(range),
                    &format!("{why} (a candidate because: {because})"),
                ),
                None => coverage.read_because(
                    &source,
                    symbol,
                    Some(range),
                    &format!("a candidate because: {because}"),
                ),
            }
            if *market != Market::Spot && range.start_ms < now_ms - SIX_MONTHS_MS {
                coverage.gap(
                    &source,
                    symbol,
                    Some(range),
                    "Binance serves futures trades for the last six months only",
                );
            }
        }
    }
}

/// What the step did not look at: markets not selected, symbols outside the scope,
/// pairs of a held asset, margin, options and portfolio margin.
fn not_examined(coverage: &mut Coverage, examined: &Examined) {
    let Examined {
        markets,
        scope_all,
        symbols,
        income_gaps,
        half_held,
        ..
    } = examined;
    for market in [Market::Spot, Market::UsdM, Market::CoinM] {
        if !markets.contains(&market) {
            coverage.not_examined(
                &format!("{market} trades"),
                "market not selected in this step",
            );
        }
    }
    if !scope_all {
        coverage.not_examined(
            "spot trades in other symbols",
            "only symbols seen in this run were examined: open orders in every book, cancelled orders, positions, pairs whose base and quote are held or moved in the window, and --symbols (add more with --symbols, or run a step with `scope: all`)",
        );
    } else {
        for market in [Market::UsdM, Market::CoinM] {
            if markets.contains(&market) && !income_gaps.contains_key(&market) {
                coverage.not_examined(
                    &format!("{market} trades in symbols without income in the window"),
                    "the income history names every symbol where the account paid commission or realised profit or loss; a commission-free trade that closed nothing leaves no income row",
                );
            }
        }
    }
    let examined_spot: BTreeSet<&String> = symbols
        .get(&Market::Spot)
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    let mut skipped: Vec<&String> = half_held
        .iter()
        .filter(|s| !examined_spot.contains(s))
        .collect();
    skipped.sort();
    if !skipped.is_empty() {
        const LISTED: usize = 40;
        let more = skipped.len().saturating_sub(LISTED);
        let names: Vec<&str> = skipped.iter().take(LISTED).map(|s| s.as_str()).collect();
        coverage.not_examined(
            "spot symbols of a held asset",
            &format!(
                "the account holds their base asset but not their quote: {}{}",
                names.join(" "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
        );
    }
    coverage.not_examined(
        "cross and isolated margin trade history",
        "not pulled by respond",
    );
    coverage.not_examined(
        "options (/eapi) and portfolio margin (/papi)",
        "not examined by respond",
    );
}

/// The first trade ever (where no pull already showed it) and the 1-minute candles of
/// every minute with a trade, per symbol, fetched concurrently.
async fn look_up_market(
    ctx: &StepContext,
    client: &Client,
    by_symbol: &BTreeMap<(Market, String), Vec<&Trade>>,
    known_first: &BTreeMap<(Market, String), Option<Trade>>,
) -> Result<FirstAndKlines, ActionError> {
    // Only the candles of minutes with a trade are kept: a range request returns
    // up to 1000 of them, and a week of trades on 40 symbols would otherwise
    // hold some 400,000 in memory.
    let mut tasks = JoinSet::new();
    for ((market, symbol), trades) in by_symbol {
        let times: Vec<i64> = trades.iter().map(|t| t.time).collect();
        let minutes: Arc<BTreeSet<i64>> =
            Arc::new(times.iter().map(|t| t - t.rem_euclid(MINUTE_MS)).collect());
        let (market, symbol) = (*market, symbol.clone());
        if !known_first.contains_key(&(market, symbol.clone())) {
            let c = client.clone();
            let s = symbol.clone();
            tasks.spawn(async move {
                Lookup::First(market, s.clone(), c.first_trade(market, &s).await)
            });
        }
        for window in kline_ranges(&times) {
            let c = client.clone();
            let s = symbol.clone();
            let minutes = minutes.clone();
            tasks.spawn(async move {
                let klines = c.klines_minutes(market, &s, window).await.map(|mut k| {
                    k.retain(|k| minutes.contains(&k.open_time));
                    k
                });
                Lookup::Klines(market, s, klines)
            });
        }
    }
    let mut first = known_first.clone();
    let mut klines: BTreeMap<(Market, String, i64), Kline> = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(|e| ActionError::Failed(format!("lookup task failed: {e}")))? {
            Lookup::First(m, s, Ok(t)) => {
                first.insert((m, s), t);
            }
            Lookup::Klines(m, s, Ok(list)) => {
                for k in list {
                    klines.insert((m, s.clone(), k.open_time), k);
                }
            }
            Lookup::First(m, s, Err(e)) => {
                ctx.note(Level::Warn, format!("first trade of {m} {s} not read: {e}"))?
            }
            Lookup::Klines(m, s, Err(e)) => ctx.note(
                Level::Warn,
                format!("market prices of {m} {s} not read: {e}"),
            )?,
        }
    }
    Ok((first, klines))
}

type FirstAndKlines = (
    BTreeMap<(Market, String), Option<Trade>>,
    BTreeMap<(Market, String, i64), Kline>,
);

/// Each trade's row with its flags and the attacker's evidence against it, and per
/// symbol a finding: trades far from the market, or a symbol first traded in the window.
fn assess(
    ctx: &StepContext,
    by_symbol: &BTreeMap<(Market, String), Vec<&Trade>>,
    first: &BTreeMap<(Market, String), Option<Trade>>,
    klines: &BTreeMap<(Market, String, i64), Kline>,
    range: TimeWindow,
    max_dev: Decimal,
) -> Result<Assessed, ActionError> {
    // Orders placed after the cancel (the watch's "attacker still active" findings):
    // their trades are the attacker's beyond doubt.
    let after_cancel: BTreeSet<(String, i64)> = ctx
        .findings()
        .iter()
        .filter(|f| f.title.starts_with("Attacker still active"))
        .filter_map(|f| f.detail.as_array().cloned())
        .flatten()
        .filter_map(|o| Some((o["market"].as_str()?.to_string(), o["orderId"].as_i64()?)))
        .collect();
    let mut out = Assessed {
        rows: Vec::new(),
        flagged: 0,
        disowned: 0,
    };
    for ((market, symbol), trades) in by_symbol {
        let is_new = first
            .get(&(*market, symbol.clone()))
            .and_then(|t| t.as_ref())
            .is_some_and(|t| t.time >= range.start_ms);
        let mut off: Vec<(Decimal, &Trade)> = Vec::new();
        for t in trades {
            let minute = t.time - t.time.rem_euclid(MINUTE_MS);
            let k = klines.get(&(*market, symbol.clone(), minute));
            let dev = k.and_then(|k| deviation(t.price, k));
            let mut flags = Vec::new();
            if let Some(d) = dev.filter(|d| d.abs() > max_dev) {
                flags.push(format!(
                    "off-market {}{}%",
                    if d > Decimal::ZERO { "+" } else { "" },
                    dec(d)
                ));
                off.push((d, t));
            }
            if is_new {
                flags.push("first-ever trade in this symbol".to_string());
            }
            if !flags.is_empty() {
                out.flagged += 1;
            }
            // What makes a flagged trade the attacker's rather than one to review: only
            // these are disowned in the support message.
            let evidence = attacker_evidence(
                dev.is_some_and(|d| d.abs() > max_dev),
                is_new,
                share_of_minute(t.qty, k),
                after_cancel.contains(&(market.as_str().to_string(), t.order_id)),
            );
            if evidence.is_some() {
                out.disowned += 1;
            }
            let mut r = row(Some(market.as_str()), *t);
            if let Json::Object(map) = &mut r {
                map.insert("timeUtc".into(), json!(rfc3339(t.time)));
                map.insert("marketLow".into(), json!(k.map(|k| dec(k.low))));
                map.insert("marketHigh".into(), json!(k.map(|k| dec(k.high))));
                map.insert("deviationPercent".into(), json!(dev.map(dec)));
                map.insert("flags".into(), json!(flags.join("; ")));
                map.insert("attackerEvidence".into(), json!(evidence));
            }
            out.rows.push(r);
        }
        symbol_finding(ctx, *market, symbol, trades.len(), &off, is_new)?;
    }
    Ok(out)
}

/// One symbol's finding: its off-market trades, or that it was first traded in the
/// window; none when neither.
fn symbol_finding(
    ctx: &StepContext,
    market: Market,
    symbol: &str,
    trades: usize,
    off: &[(Decimal, &Trade)],
    is_new: bool,
) -> Result<(), ActionError> {
    if !off.is_empty() {
        let worst = off
            .iter()
            .map(|(d, _)| *d)
            .max_by_key(|d| d.abs())
            .unwrap_or_default();
        let quote_total: Decimal = off
            .iter()
            .map(|(_, t)| t.quote_qty.unwrap_or(t.price * t.qty))
            .sum();
        ctx.finding(
                Severity::High,
                format!(
                    "{} trade(s) in {symbol} ({market}) far from the market price (up to {}{}%), {} in quote asset{}",
                    off.len(),
                    if worst > Decimal::ZERO { "+" } else { "" },
                    dec(worst),
                    dec(quote_total.round_dp(8)),
                    if is_new { "; the account never traded this symbol before the window" } else { "" }
                ),
                json!({
                    "market": market.as_str(),
                    "symbol": symbol,
                    "trades": off.iter().map(|(d, t)| json!({"id": t.id, "time": rfc3339(t.time), "price": dec(t.price), "qty": dec(t.qty), "deviationPercent": dec(*d)})).collect::<Vec<_>>(),
                }),
            )?;
    } else if is_new {
        ctx.finding(
            Severity::Medium,
            format!("{symbol} ({market}) was first traded inside the review window"),
            json!({"market": market.as_str(), "symbol": symbol, "trades": trades}),
        )?;
    }
    Ok(())
}

/// The step's one-line summary.
fn summary(examined: &Examined, pulled: &Pulled, flagged: usize, reported_before: usize) -> String {
    let count: usize = examined.symbols.values().map(|s| s.len()).sum();
    format!(
        "{} trade(s) on {} symbol(s) examined; {flagged} flagged{}{}",
        pulled.trades.len(),
        count,
        match &examined.listing {
            Some(l) => format!(
                "; all {} spot symbols scanned{}",
                l.symbols.len(),
                if reported_before > 0 {
                    format!(" ({reported_before} trade(s) already reported by an earlier step)")
                } else {
                    String::new()
                }
            ),
            None => String::new(),
        },
        if pulled.failed.is_empty() {
            String::new()
        } else {
            format!("; {} pull(s) failed", pulled.failed.len())
        }
    )
}

/// The share of the minute's traded volume that one trade was: near 1 means the account
/// was the market that minute (an illiquid pair).
fn share_of_minute(qty: Decimal, k: Option<&Kline>) -> Option<Decimal> {
    let k = k?;
    (!k.volume.is_zero()).then(|| qty / k.volume)
}

/// Why a trade is the attacker's, if there is evidence beyond a flag: far from the
/// market; the account's first-ever trade in a pair so illiquid that this trade was at
/// least half the minute's volume; or filled from an order placed after respond
/// cancelled everything. A first-ever trade in a liquid pair may well be the owner's.
fn attacker_evidence(
    off_market: bool,
    first_ever: bool,
    share: Option<Decimal>,
    after_cancel: bool,
) -> Option<&'static str> {
    if after_cancel {
        Some("from an order placed after respond cancelled every order")
    } else if off_market {
        Some("far from the market price")
    } else if first_ever && share.is_some_and(|s| s >= Decimal::new(5, 1)) {
        Some("first-ever trade in an illiquid pair (at least half the minute's volume)")
    } else {
        None
    }
}

enum Lookup {
    First(Market, String, Result<Option<Trade>, ExchangeError>),
    Klines(Market, String, Result<Vec<Kline>, ExchangeError>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_attacker_evidence_disowns_a_trade() {
        let half = Some(Decimal::new(5, 1));
        let tiny = Some(Decimal::new(1, 3));
        assert!(attacker_evidence(true, false, tiny, false).is_some());
        assert!(attacker_evidence(false, false, None, true).is_some());
        assert!(attacker_evidence(false, true, half, false).is_some());
        // First-ever in a liquid pair, or with no candle to judge by: to review.
        assert_eq!(attacker_evidence(false, true, tiny, false), None);
        assert_eq!(attacker_evidence(false, true, None, false), None);
        assert_eq!(attacker_evidence(false, false, half, false), None);
    }

    #[test]
    fn kline_ranges_are_fewest_then_shortest() {
        let m = MINUTE_MS;
        // Two ranges either way: 0..600 and 1500..1600 (601 + 101 minutes) beats 0..200
        // and 600..1600 (201 + 1001).
        let ranges = kline_ranges(&[0, 200 * m, 600 * m, 1500 * m, 1600 * m]);
        assert_eq!(
            ranges,
            vec![
                TimeWindow::new(0, 601 * m - 1),
                TimeWindow::new(1500 * m, 1601 * m - 1)
            ]
        );
        // Greedy would make 0..998 and 1500 (999 + 1 minutes); the quiet spell between
        // 1 and 998 is the better place to split (2 + 503).
        let ranges = kline_ranges(&[0, m, 998 * m, 1500 * m]);
        assert_eq!(
            ranges,
            vec![
                TimeWindow::new(0, 2 * m - 1),
                TimeWindow::new(998 * m, 1501 * m - 1)
            ]
        );
    }

    #[test]
    fn kline_ranges_cover_only_minutes_with_trades_in_chunks_of_1000() {
        let m = MINUTE_MS;
        let ranges = kline_ranges(&[5 * m + 10, 5 * m + 20, 7 * m, 2000 * m]);
        assert_eq!(
            ranges,
            vec![
                TimeWindow::new(5 * m, 8 * m - 1),
                TimeWindow::new(2000 * m, 2001 * m - 1)
            ]
        );
    }

    #[test]
    fn deviation_is_zero_inside_the_candle() {
        let k = Kline {
            open_time: 0,
            open: "10".parse().unwrap(),
            high: "11".parse().unwrap(),
            low: "9".parse().unwrap(),
            close: "10".parse().unwrap(),
            volume: Decimal::ONE,
            close_time: 59_999,
        };
        assert_eq!(deviation("10.5".parse().unwrap(), &k), Some(Decimal::ZERO));
        assert_eq!(
            deviation("22".parse().unwrap(), &k),
            Some("100".parse().unwrap())
        );
        assert_eq!(
            deviation("4.5".parse().unwrap(), &k),
            Some("-50".parse().unwrap())
        );
    }
}
