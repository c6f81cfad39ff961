//! The full-account trade scan of `binance.recent_trades` (`scope: all`): every spot
//! symbol `exchangeInfo` lists, whatever its status, read one by one (spot has no "all my
//! trades" call), and the futures symbols the income history names. The spot scan shows
//! a progress bar whose ETA comes from the weight budget, and journals the symbols it
//! has read in batches, so `respond resume` does not read them again.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::task::JoinSet;

use super::trades::spot_trades;
use super::{ActionError, ScannedBatch, StepContext};
use crate::exchange::{Client, ExchangeError, Family, Market, Pull, TimeWindow, Trade};
use crate::operator::Level;

/// Symbols journaled together as read: an interrupted scan reads at most this many
/// again when resumed.
const BATCH: usize = 20;

/// Every spot symbol the exchange lists, and how many there are of each status.
pub(super) struct Listing {
    pub symbols: Vec<String>,
    pub statuses: BTreeMap<String, usize>,
}

impl Listing {
    /// "TRADING 270, BREAK 30".
    pub fn statuses_words(&self) -> String {
        self.statuses
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `GET /api/v3/exchangeInfo`: every symbol, TRADING or not — a pair in BREAK (delisted)
/// or HALT still holds the account's history, and a pumped illiquid pair is the kind
/// that gets delisted.
pub(super) async fn spot_listing(client: &Client) -> Result<Listing, ExchangeError> {
    let info = client.exchange_info(Market::Spot).await?;
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut symbols = BTreeSet::new();
    for s in info.symbols {
        if symbols.insert(s.symbol.to_uppercase()) {
            let status = if s.status.is_empty() {
                "unknown".to_string()
            } else {
                s.status
            };
            *statuses.entry(status).or_default() += 1;
        }
    }
    Ok(Listing {
        symbols: symbols.into_iter().collect(),
        statuses,
    })
}

/// Futures symbols with realised PnL or commission in `range`: the symbols the account
/// traded there, as Binance's income history (no symbol needed) tells.
pub(super) async fn income_symbols(
    client: &Client,
    market: Market,
    range: TimeWindow,
) -> Result<BTreeSet<String>, ExchangeError> {
    Ok(client
        .income(market, range)
        .await?
        .into_iter()
        .filter(|r| matches!(r.income_type.as_str(), "REALIZED_PNL" | "COMMISSION"))
        .filter(|r| !r.symbol.is_empty())
        .map(|r| r.symbol.to_uppercase())
        .collect())
}

/// How long reading `left` symbols at `weight` each takes within the budget: what the
/// budget has room for now goes at once; the rest at `cap` weight per `window`.
pub(super) fn eta(left: usize, weight: u32, room: u32, cap: u32, window: Duration) -> Duration {
    let needed = left as u64 * u64::from(weight);
    let waiting = needed.saturating_sub(u64::from(room));
    if waiting == 0 || cap == 0 {
        return Duration::ZERO;
    }
    window.mul_f64(waiting as f64 / f64::from(cap))
}

fn words(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => "under a second".into(),
        1..=90 => format!("{secs}s"),
        _ => format!("{}m{:02}s", secs / 60, secs % 60),
    }
}

/// What the spot scan read.
#[derive(Default)]
pub(super) struct SpotScan {
    pub trades: Vec<Trade>,
    /// First trade ever per symbol, where the read showed it.
    pub first: BTreeMap<String, Option<Trade>>,
    pub failed: BTreeMap<String, ExchangeError>,
    /// Symbols an earlier session of this incident read (not read again).
    pub resumed: usize,
    /// Requests attempted in this session.
    pub attempted: usize,
}

/// Read `symbols`' trades in `range`, skipping those an earlier session journaled as
/// read, and journal them in batches of [`BATCH`] as they complete.
pub(super) async fn scan_spot(
    ctx: &StepContext,
    client: &Client,
    symbols: &[String],
    range: TimeWindow,
) -> Result<SpotScan, ActionError> {
    let mut out = SpotScan::default();
    let done = read_back(ctx, &mut out)?;
    let todo: Vec<String> = symbols
        .iter()
        .filter(|s| !done.contains(*s))
        .cloned()
        .collect();
    out.resumed = symbols.len() - todo.len();
    if out.resumed > 0 {
        ctx.note(
            Level::Info,
            format!(
                "{} spot symbol(s) were read in an earlier session of this incident and are not read again; {} left",
                out.resumed,
                todo.len()
            ),
        )?;
    }
    let budget = Budget::new(client);
    let first_eta = budget.announce(ctx, todo.len())?;
    let started = std::time::Instant::now();
    let bar = ctx
        .run
        .operator
        .progress("deep scan: spot symbols", Some(todo.len() as u64));
    bar.set_message(status(todo.len(), first_eta, None));
    let mut tasks = JoinSet::new();
    for symbol in todo.iter().cloned() {
        let client = client.clone();
        tasks.spawn(async move {
            let result = spot_trades(&client, &symbol, range).await;
            (symbol, result)
        });
    }
    out.attempted = todo.len();
    let mut left = todo.len();
    let mut batch = new_batch();
    while let Some(joined) = tasks.join_next().await {
        left -= 1;
        bar.inc(1);
        let done = todo.len() - left;
        let pace = (done >= 5).then(|| started.elapsed().mul_f64(left as f64 / done as f64));
        bar.set_message(status(left, budget.estimate(left).0, pace));
        let (symbol, result) =
            joined.map_err(|e| ActionError::Failed(format!("scan task failed: {e}")))?;
        match result {
            Ok((trades, first)) => keep_read(ctx, &mut out, &mut batch, symbol, trades, first)?,
            Err(e) => {
                out.failed.insert(symbol, e);
            }
        }
    }
    if !batch.symbols.is_empty() {
        ctx.scanned(batch)?;
    }
    bar.finish_and_clear();
    Ok(out)
}

/// What earlier sessions of this incident journaled as read on spot: their trades and
/// first trades go into `out`; returns the symbols they read.
fn read_back(ctx: &StepContext, out: &mut SpotScan) -> Result<BTreeSet<String>, ActionError> {
    let mut done = BTreeSet::new();
    for batch in ctx.scanned_before() {
        if batch.market != Market::Spot.as_str() {
            continue;
        }
        done.extend(batch.symbols);
        for (symbol, row) in batch.first {
            let first = serde_json::from_value::<Trade>(row).map_err(|e| {
                ActionError::Failed(format!(
                    "a first trade journaled by the earlier session cannot be read back: {e}"
                ))
            })?;
            out.first.insert(symbol, Some(first));
        }
        for row in batch.trades {
            match serde_json::from_value::<Trade>(row) {
                Ok(t) => out.trades.push(t),
                Err(e) => {
                    return Err(ActionError::Failed(format!(
                        "a trade journaled by the earlier session cannot be read back: {e}"
                    )))
                }
            }
        }
    }
    Ok(done)
}

/// What the spot weight budget says of the time a scan takes.
struct Budget<'a> {
    client: &'a Client,
    weight: u32,
    window: Duration,
}

impl<'a> Budget<'a> {
    fn new(client: &'a Client) -> Budget<'a> {
        Budget {
            client,
            weight: Pull::Trades(Market::Spot).weight(),
            window: client.weight_window(),
        }
    }

    /// The ETA of `left` symbols within the budget as it stands now, and its cap.
    fn estimate(&self, left: usize) -> (Duration, u32) {
        let (room, cap) = self.client.weight_room(Family::Api);
        (eta(left, self.weight, room, cap, self.window), cap)
    }

    /// Say what the scan of `todo` symbols costs and about how long it takes; returns
    /// that ETA.
    fn announce(&self, ctx: &StepContext, todo: usize) -> Result<Duration, ActionError> {
        let weight = self.weight;
        let (first_eta, cap) = self.estimate(todo);
        ctx.note(
            Level::Info,
            format!(
                "deep scan: {todo} spot symbol(s) to read at weight {weight} each; about {} within the budget of {cap} weight per {}",
                words(first_eta),
                humantime::format_duration(self.window)
            ),
        )?;
        Ok(first_eta)
    }
}

/// The progress bar's words. The budget bounds the ETA from below; while it is not what
/// holds the scan back (latency, concurrency), the pace so far says more.
fn status(left: usize, budget: Duration, pace: Option<Duration>) -> String {
    match pace {
        Some(pace) if pace > budget => format!(
            "deep scan: {left} spot symbol(s) left, ETA {} at the current pace (the weight budget alone: {})",
            words(pace),
            words(budget)
        ),
        _ => format!(
            "deep scan: {left} spot symbol(s) left, ETA {} (weight budget)",
            words(budget)
        ),
    }
}

fn new_batch() -> ScannedBatch {
    ScannedBatch {
        market: Market::Spot.as_str().to_string(),
        symbols: Vec::new(),
        trades: Vec::new(),
        first: BTreeMap::new(),
    }
}

/// One symbol read: its trades and first trade go into `out` and into the batch being
/// filled, which is journaled once it holds [`BATCH`] symbols.
fn keep_read(
    ctx: &StepContext,
    out: &mut SpotScan,
    batch: &mut ScannedBatch,
    symbol: String,
    trades: Vec<Trade>,
    first: Option<Option<Trade>>,
) -> Result<(), ActionError> {
    batch.trades.extend(
        trades
            .iter()
            .map(|t| serde_json::to_value(t).expect("trades serialise")),
    );
    if let Some(f) = first {
        if let (Some(t), false) = (&f, trades.is_empty()) {
            batch.first.insert(
                symbol.clone(),
                serde_json::to_value(t).expect("trades serialise"),
            );
        }
        out.first.insert(symbol.clone(), f);
    }
    out.trades.extend(trades);
    batch.symbols.push(symbol);
    if batch.symbols.len() >= BATCH {
        ctx.scanned(std::mem::replace(batch, new_batch()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_counts_only_what_the_budget_cannot_take_now() {
        let minute = Duration::from_secs(60);
        // 300 symbols at 20: 6,000 weight; 4,800 free now, the rest at 4,800 a minute.
        assert_eq!(eta(300, 20, 4_800, 4_800, minute), Duration::from_secs(15));
        // Everything fits in the room left: no wait for the budget.
        assert_eq!(eta(100, 20, 4_800, 4_800, minute), Duration::ZERO);
        // A budget already spent: every read waits, 1,500 symbols = 30,000 weight.
        assert_eq!(eta(1_500, 20, 0, 4_800, minute), Duration::from_secs(375));
        assert_eq!(eta(0, 20, 0, 4_800, minute), Duration::ZERO);
    }
}
