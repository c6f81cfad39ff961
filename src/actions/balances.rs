//! `binance.balances`: a snapshot of every wallet the key can read, valued in one quote
//! asset from public prices, plus open futures positions and margin loans.
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::json;

use super::util::{dec, Coverage, Prices};
use super::{Action, ActionError, ActionSpec, BoxFuture, Kind, Outcome, OutputSpec, StepContext};
use crate::exchange::{ExchangeError, Market};
use crate::operator::Level;

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(Balances)]
}

static SPEC: ActionSpec = ActionSpec {
    name: "binance.balances",
    description: "Snapshot every wallet the key can read (spot, cross margin, USDⓈ-M, COIN-M) with an estimated value, open futures positions and margin loans",
    kind: Kind::Evidence,
    inputs: &[super::util::QUOTE_INPUT],
    outputs: &[
        OutputSpec { name: "total_value", description: "estimated value of all wallets read, in the quote asset" },
        OutputSpec { name: "assets", description: "assets with a non-zero balance, comma-separated" },
        OutputSpec { name: "open_positions", description: "open futures positions, USDⓈ-M and COIN-M" },
    ],
};

pub struct Balances;

struct Line {
    wallet: &'static str,
    asset: String,
    free: Decimal,
    locked: Decimal,
    borrowed: Decimal,
}

/// Wallets and positions not read, and why.
struct Unread {
    /// "WHAT: why" for each read that failed.
    gaps: Vec<String>,
    /// Futures wallets Binance refuses (-2015) while it answered the spot account:
    /// futures are not enabled on the key ("-2015 is per endpoint"). Not a gap.
    off: Vec<String>,
    /// The step reads with the leaked key.
    leaked: bool,
}

impl Unread {
    fn add(&mut self, what: &str, futures: bool, e: &ExchangeError) {
        if e.kind() == crate::exchange::ErrorKind::NotOnTestnet {
            // Binance's testnets have no /sapi: said once below, not a gap.
        } else if self.leaked
            && futures
            && e.rejection() == Some(crate::exchange::Rejection::Refused)
        {
            self.off.push(what.to_string());
        } else {
            self.gaps.push(format!("{what}: {e}"))
        }
    }
}

/// The balances valued: their evidence rows and what the step says of them.
struct Valued {
    total: Decimal,
    rows: Vec<serde_json::Value>,
    assets: Vec<String>,
    unpriced: Vec<String>,
    loans: Vec<String>,
}

impl Action for Balances {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let quote = ctx.args.text("quote").unwrap_or("USDT").to_string();
            let client = ctx.reader()?;
            let (spot, margin, usdm, coinm, usdm_positions, coinm_positions, tickers) = tokio::join!(
                client.account(),
                client.margin_account(),
                client.futures_balances(Market::UsdM),
                client.futures_balances(Market::CoinM),
                client.position_risk(Market::UsdM),
                client.position_risk(Market::CoinM),
                client.ticker_prices(Market::Spot),
            );
            let mut unread = Unread {
                gaps: Vec::new(),
                off: Vec::new(),
                leaked: ctx.reads_as() == crate::secret::Role::Leaked,
            };
            // Without the spot account nothing else is worth trying to value.
            let spot = spot?;
            let lines = lines(spot, margin, usdm, coinm, &mut unread);
            let prices = match tickers {
                Ok(t) => Prices::new(&t, &quote),
                Err(e) => {
                    unread.add("public prices", false, &e);
                    Prices::default()
                }
            };
            let valued = value(lines, &prices, &quote);
            ctx.evidence("balances", valued.rows)?;
            let (open_positions, positions_unread) =
                positions(ctx, usdm_positions, coinm_positions, &mut unread)?;
            if !valued.loans.is_empty() {
                ctx.note(
                    Level::Warn,
                    format!("margin loans outstanding: {}", valued.loans.join(", ")),
                )?;
            }
            record_coverage(ctx, client.endpoints().has_sapi(), &unread)?;
            let Valued {
                total,
                assets,
                unpriced,
                ..
            } = valued;
            ctx.note(
                Level::Info,
                format!(
                    "estimated total: {} {quote} across {} asset(s){}",
                    dec(total.round_dp(2)),
                    assets.len(),
                    if unpriced.is_empty() {
                        String::new()
                    } else {
                        format!(" (not priced: {})", unpriced.join(", "))
                    }
                ),
            )?;
            Ok(Outcome::ok(format!(
                "≈ {} {quote} in {} asset(s); {} open position(s){}",
                dec(total.round_dp(2)),
                assets.len(),
                open_positions,
                if positions_unread.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({} positions not read with this key)",
                        positions_unread.join(" and ")
                    )
                }
            ))
            .with("total_value", dec(total.round_dp(2)))
            .with("assets", assets.join(","))
            .with("open_positions", open_positions as u64))
        })
    }
}

/// Open futures positions: their evidence and a warning; returns how many, and the
/// markets whose positions could not be read.
fn positions(
    ctx: &StepContext,
    usdm_positions: Result<Vec<crate::exchange::Position>, ExchangeError>,
    coinm_positions: Result<Vec<crate::exchange::Position>, ExchangeError>,
    unread: &mut Unread,
) -> Result<(usize, Vec<&'static str>), ActionError> {
    let mut open = Vec::new();
    // Markets whose positions could not be read (refused, futures not enabled, an
    // error): "0 open positions" would claim more than was seen.
    let mut positions_unread = Vec::new();
    for (what, result) in [
        ("USDⓈ-M positions", usdm_positions),
        ("COIN-M positions", coinm_positions),
    ] {
        match result {
            Ok(list) => open.extend(list.into_iter().filter(|p| p.is_open())),
            Err(e) => {
                unread.add(what, true, &e);
                positions_unread.push(what.trim_end_matches(" positions"));
            }
        }
    }
    let rows: Vec<_> = open
        .iter()
        .map(|p| super::util::row(Some(p.market.as_str()), p))
        .collect();
    ctx.evidence("positions", rows)?;
    if !open.is_empty() {
        ctx.note(
            Level::Warn,
            format!(
                "{} open futures position(s): {} — respond does not close positions; review each of them in the app",
                open.len(),
                open.iter().map(describe_position).collect::<Vec<_>>().join("; ")
            ),
        )?;
    }
    Ok((open.len(), positions_unread))
}

/// Every wallet's balances as lines; the wallets not read go to `unread`.
fn lines(
    spot: crate::exchange::SpotAccount,
    margin: Result<crate::exchange::MarginAccount, ExchangeError>,
    usdm: Result<Vec<crate::exchange::FuturesBalance>, ExchangeError>,
    coinm: Result<Vec<crate::exchange::FuturesBalance>, ExchangeError>,
    unread: &mut Unread,
) -> Vec<Line> {
    let mut lines: Vec<Line> = spot
        .balances
        .into_iter()
        .map(|b| Line {
            wallet: "spot",
            asset: b.asset,
            free: b.free,
            locked: b.locked,
            borrowed: Decimal::ZERO,
        })
        .collect();
    match margin {
        Ok(m) => lines.extend(m.user_assets.into_iter().map(|a| Line {
            wallet: "margin",
            asset: a.asset,
            free: a.free,
            locked: a.locked,
            borrowed: a.borrowed + a.interest,
        })),
        Err(e) => unread.add("cross margin", false, &e),
    }
    for (wallet, result) in [("usdm", usdm), ("coinm", coinm)] {
        match result {
            Ok(list) => lines.extend(list.into_iter().map(|b| Line {
                wallet,
                asset: b.asset,
                free: b.available_balance.unwrap_or(b.balance),
                locked: (b.balance - b.available_balance.unwrap_or(b.balance)).max(Decimal::ZERO),
                borrowed: Decimal::ZERO,
            })),
            Err(e) => unread.add(
                if wallet == "usdm" {
                    "USDⓈ-M wallet"
                } else {
                    "COIN-M wallet"
                },
                true,
                &e,
            ),
        }
    }
    lines
}

/// Each non-empty line valued in `quote` from public prices, net of loans.
fn value(lines: Vec<Line>, prices: &Prices, quote: &str) -> Valued {
    let mut out = Valued {
        total: Decimal::ZERO,
        rows: Vec::new(),
        assets: Vec::new(),
        unpriced: Vec::new(),
        loans: Vec::new(),
    };
    for l in lines {
        let amount = l.free + l.locked;
        if amount.is_zero() && l.borrowed.is_zero() {
            continue;
        }
        let value = prices.value(&l.asset, amount - l.borrowed);
        match value {
            Some(v) => out.total += v,
            None => out.unpriced.push(format!("{} {}", l.wallet, l.asset)),
        }
        if !amount.is_zero() && !out.assets.contains(&l.asset) {
            out.assets.push(l.asset.clone());
        }
        if !l.borrowed.is_zero() {
            out.loans.push(format!("{} {}", dec(l.borrowed), l.asset));
        }
        out.rows.push(json!({
            "market": l.wallet,
            "asset": l.asset,
            "free": dec(l.free),
            "locked": dec(l.locked),
            "borrowed": dec(l.borrowed),
            "total": dec(amount),
            "valueQuote": value.map(dec),
            "quote": quote,
        }));
    }
    out
}

/// Each wallet read, refused as not enabled, or a gap; then the notes on what was not
/// read.
fn record_coverage(ctx: &StepContext, has_sapi: bool, unread: &Unread) -> Result<(), ActionError> {
    let Unread { gaps, off, .. } = unread;
    let mut coverage = Coverage::default();
    for wallet in [
        "spot wallet",
        "cross margin",
        "USDⓈ-M wallet",
        "COIN-M wallet",
        "USDⓈ-M positions",
        "COIN-M positions",
        "public prices",
    ] {
        if wallet == "cross margin" && !has_sapi {
            continue;
        }
        if off.iter().any(|o| o == wallet) {
            coverage.not_enabled(
                "balances",
                wallet,
                "futures not enabled on this key (Binance refused it: -2015): it cannot have traded there",
            );
            continue;
        }
        match gaps.iter().find(|g| g.starts_with(&format!("{wallet}:"))) {
            Some(why) => coverage.gap("balances", wallet, None, why),
            None => coverage.read("balances", wallet, None),
        }
    }
    if !has_sapi {
        coverage.not_examined(
            "balances: cross margin",
            "not available on testnet (no /sapi)",
        );
        ctx.note(
            Level::Info,
            "cross margin: not available on testnet (Binance's testnets have no /sapi)",
        )?;
    }
    coverage.not_examined(
        "balances: isolated margin, funding, earn, options wallets",
        "not read by respond",
    );
    coverage.record(ctx)?;
    if !off.is_empty() {
        ctx.note(
            Level::Info,
            format!(
                "{}: futures not enabled on this key — it cannot have traded there",
                off.join(", ")
            ),
        )?;
    }
    for g in gaps {
        ctx.note(Level::Warn, format!("not read: {g}"))?;
    }
    Ok(())
}

/// One open position in words: `usdm BTCUSDT long 0.01 (notional 640 USDT, entry 64030,
/// unrealised PnL 1.2)`, or for COIN-M `coinm BTCUSD_PERP short 5 contracts (notional
/// 0.0078 BTC, entry 64000, unrealised PnL -0.0001 BTC)`.
pub(super) fn describe_position(p: &crate::exchange::Position) -> String {
    let side = if p.position_amt.is_sign_negative() {
        "short"
    } else {
        "long"
    };
    let amount = dec(p.position_amt.abs());
    let mut details = Vec::new();
    let coin = p.market == Market::CoinM;
    // A COIN-M symbol's coin is its base asset: BTCUSD_PERP is margined in BTC.
    let coin_asset = p.symbol.split("USD").next().unwrap_or_default().to_string();
    if coin {
        if let Some(n) = p.notional_value {
            details.push(format!("notional {} {coin_asset}", dec(n.abs())));
        }
    } else if let Some(n) = p.notional {
        let asset = p.margin_asset.clone().unwrap_or_default();
        details.push(
            format!("notional {} {asset}", dec(n.abs()))
                .trim_end()
                .to_string(),
        );
    }
    if let Some(e) = p.entry_price {
        details.push(format!("entry {}", dec(e)));
    }
    if let Some(u) = p.un_realized_profit {
        let unit = if coin {
            format!(" {coin_asset}")
        } else {
            String::new()
        };
        details.push(format!("unrealised PnL {}{unit}", dec(u)));
    }
    format!(
        "{} {} {side} {amount}{} ({})",
        p.market.as_str(),
        p.symbol,
        if coin { " contracts" } else { "" },
        details.join(", ")
    )
}
