//! Large scenarios made to measure: many symbols with open orders on every market, days
//! of trades, and many money movements — the account of a busy trading team, for the
//! containment benchmark (`benches/containment.rs`) and for load drills against
//! `respond sim serve`.
//!
//! The output is scenario YAML (so it can be saved, read and fed to `--scenario`), built
//! from a seed: the same [`Size`] always gives the same text. No attacker: a benchmark
//! that compares runs needs the same orders in every run.
use std::fmt::Write;

/// How big a scenario to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Size {
    /// Spot symbols, each with open orders and trades.
    pub spot_symbols: usize,
    /// Cross-margin symbols with open orders (the first spot symbols, margin side).
    pub margin_symbols: usize,
    /// USDⓈ-M symbols, each with open orders (a third of them conditional) and trades.
    pub usdm_symbols: usize,
    /// COIN-M symbols, each with open orders and trades.
    pub coinm_symbols: usize,
    /// Open orders on each symbol of each market.
    pub orders_per_symbol: usize,
    /// How far back trades go, in days.
    pub trade_days: u32,
    /// Trades per spot symbol per day (futures symbols get half, at least one).
    pub trades_per_day: usize,
    /// Universal transfers in the window (withdrawals, deposits and Pay come on top).
    pub transfers: usize,
    pub seed: u64,
}

impl Size {
    /// The benchmark's account: 40 spot, 6 margin, 10 USDⓈ-M and 5 COIN-M symbols with
    /// 305 open orders, 7 days of trades on every symbol, 60 transfers plus withdrawals,
    /// deposits and Pay.
    pub fn large() -> Size {
        Size {
            spot_symbols: 40,
            margin_symbols: 6,
            usdm_symbols: 10,
            coinm_symbols: 5,
            orders_per_symbol: 5,
            trade_days: 7,
            trades_per_day: 6,
            transfers: 60,
            seed: 20_261_124,
        }
    }

    /// A wide account: 200 symbols (110 spot, 30 margin, 40 USDⓈ-M, 20 COIN-M) with 1,200
    /// open orders, a third of the futures ones conditional (the algo books); one day of
    /// trades. For the benchmark's check that containment does not grow with the number
    /// of symbols: one cancel per symbol and book, 260 of them, all in one round trip.
    pub fn wide() -> Size {
        Size {
            spot_symbols: 110,
            margin_symbols: 30,
            usdm_symbols: 40,
            coinm_symbols: 20,
            orders_per_symbol: 6,
            trade_days: 1,
            trades_per_day: 2,
            transfers: 12,
            seed: 20_261_129,
        }
    }

    /// Symbols over every market (a margin symbol counts apart from its spot pair).
    pub fn symbols(&self) -> usize {
        self.spot_symbols + self.margin_symbols + self.usdm_symbols + self.coinm_symbols
    }

    /// A few of everything: for a quick check that the benchmark's machinery works.
    pub fn small() -> Size {
        Size {
            spot_symbols: 4,
            margin_symbols: 1,
            usdm_symbols: 2,
            coinm_symbols: 1,
            orders_per_symbol: 2,
            trade_days: 2,
            trades_per_day: 3,
            transfers: 4,
            seed: 7,
        }
    }

    /// Open orders the scenario holds.
    pub fn open_orders(&self) -> usize {
        self.symbols() * self.orders_per_symbol
    }
}

/// Base assets, most liquid first; past the end of the list come made-up tickers.
const BASES: &[(&str, &str)] = &[
    ("BTC", "64000"),
    ("ETH", "3400"),
    ("BNB", "590"),
    ("SOL", "145"),
    ("XRP", "0.52"),
    ("ADA", "0.45"),
    ("DOGE", "0.12"),
    ("TRX", "0.11"),
    ("DOT", "6.8"),
    ("LTC", "82"),
    ("AVAX", "34"),
    ("LINK", "14.5"),
    ("ATOM", "8.4"),
    ("UNI", "7.6"),
    ("XLM", "0.1"),
    ("ETC", "26"),
    ("FIL", "5.6"),
    ("APT", "8.9"),
    ("NEAR", "5.2"),
    ("ARB", "0.95"),
    ("OP", "2.1"),
    ("ICP", "11.8"),
    ("HBAR", "0.08"),
    ("VET", "0.03"),
    ("ALGO", "0.18"),
    ("SAND", "0.42"),
    ("MANA", "0.44"),
    ("AAVE", "92"),
    ("EOS", "0.78"),
    ("THETA", "1.9"),
    ("AXS", "7.1"),
    ("FTM", "0.68"),
    ("EGLD", "38"),
    ("XTZ", "0.92"),
    ("CHZ", "0.11"),
    ("GRT", "0.27"),
    ("INJ", "24"),
    ("RUNE", "5.4"),
    ("SUI", "1.05"),
    ("XYZ", "0.13"),
];

fn base(i: usize) -> (String, String) {
    match BASES.get(i) {
        Some((b, p)) => (b.to_string(), p.to_string()),
        None => {
            // TKAA, TKAB, ...: letters only, like real tickers.
            let n = i - BASES.len();
            let name = format!(
                "TK{}{}",
                (b'A' + (n / 26 % 26) as u8) as char,
                (b'A' + (n % 26) as u8) as char
            );
            (name, "1.5".to_string())
        }
    }
}

/// A price `percent` away from `price` (negative: below), to 8 decimals.
fn away(price: &str, percent: f64) -> String {
    let p: f64 = price.parse().unwrap_or(1.0);
    trim(p * (1.0 + percent / 100.0))
}

fn trim(x: f64) -> String {
    let s = format!("{x:.8}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".into()
    } else {
        s.to_string()
    }
}

fn key(rng: &mut fastrand::Rng) -> String {
    (0..64).map(|_| rng.alphanumeric()).collect()
}

/// A symbol the generator lists: (symbol, base asset, price).
type Listed = (String, String, String);

/// The generated account's symbols per market.
struct Symbols {
    spot: Vec<Listed>,
    usdm: Vec<Listed>,
    coinm: Vec<Listed>,
    /// How many of the first spot symbols are margin pairs too.
    margin: usize,
}

impl Symbols {
    fn margin(&self) -> &[Listed] {
        &self.spot[..self.margin]
    }
}

/// The scenario as YAML text.
pub fn generate(size: &Size) -> String {
    let mut rng = fastrand::Rng::with_seed(size.seed);
    let mut y = String::new();
    let w = &mut y;
    header(w, size, &mut rng);
    let symbols = symbols(w, size);
    balances(w, &symbols);
    open_orders(w, size, &symbols, &mut rng);
    // Trades spread over the window (never older than it: the window is `--since`).
    let window_minutes = (size.trade_days as u64 * 24 * 60)
        .saturating_sub(30)
        .max(60);
    trades(w, size, &symbols, window_minutes, &mut rng);
    movements(w, size, window_minutes, &mut rng);
    if let Some((symbol, _, p)) = symbols.usdm.first() {
        let _ = writeln!(w, "positions:");
        let _ = writeln!(
            w,
            "  - {{ market: usdm, symbol: {symbol}, amount: \"0.05\", entry_price: \"{p}\", leverage: 5 }}"
        );
    }
    let _ = writeln!(w, "drill: {{ deletion: correct }}");
    y
}

/// The comment, version, name, description and the one leaked key.
fn header(w: &mut String, size: &Size, rng: &mut fastrand::Rng) {
    let _ = writeln!(
        w,
        "# Generated by respond's scenario generator (seed {}).",
        size.seed
    );
    let _ = writeln!(w, "version: 1");
    let _ = writeln!(w, "name: generated-large");
    let _ = writeln!(
        w,
        "description: >-\n  A busy trading account: {} spot, {} margin, {} USDⓈ-M and {} COIN-M symbols with {} open orders, {} days of trades, {} transfers; the trading key leaked.",
        size.spot_symbols,
        size.margin_symbols,
        size.usdm_symbols,
        size.coinm_symbols,
        size.open_orders(),
        size.trade_days,
        size.transfers
    );
    let _ = writeln!(w, "keys:");
    let _ = writeln!(w, "  - label: Market Maker Bot");
    let _ = writeln!(w, "    api_key: {}", key(rng));
    let _ = writeln!(w, "    secret: {}", key(rng));
    let _ = writeln!(
        w,
        "    permissions: [reading, spot, margin, futures, withdrawals]"
    );
    let _ = writeln!(w, "    created: -120d");
}

/// `symbols:` and what it lists.
fn symbols(w: &mut String, size: &Size) -> Symbols {
    // Symbols: spot (and margin on the first ones) quoted in USDT; futures on the
    // first bases.
    let spot: Vec<(String, String, String)> = (0..size.spot_symbols)
        .map(|i| {
            let (b, p) = base(i);
            (format!("{b}USDT"), b, p)
        })
        .collect();
    let margin_count = size.margin_symbols.min(spot.len());
    let margin = &spot[..margin_count];
    let usdm: Vec<(String, String, String)> = (0..size.usdm_symbols)
        .map(|i| {
            let (b, p) = base(i);
            (format!("{b}USDT"), b, p)
        })
        .collect();
    let coinm: Vec<(String, String, String)> = (0..size.coinm_symbols)
        .map(|i| {
            let (b, p) = base(i);
            (format!("{b}USD_PERP"), b, p)
        })
        .collect();
    let _ = writeln!(w, "symbols:");
    for (market, list, quote) in [
        ("spot", &spot[..], "USDT"),
        ("margin", margin, "USDT"),
        ("usdm", &usdm[..], "USDT"),
        ("coinm", &coinm[..], "USD"),
    ] {
        for (symbol, b, p) in list {
            let _ = writeln!(
                w,
                "  - {{ market: {market}, symbol: {symbol}, base: {b}, quote: {quote}, price: \"{p}\" }}"
            );
        }
    }
    Symbols {
        spot,
        usdm,
        coinm,
        margin: margin_count,
    }
}

/// Balances: some of every base held, so every spot pair is a trade candidate.
fn balances(w: &mut String, symbols: &Symbols) {
    let Symbols { spot, coinm, .. } = symbols;
    let _ = writeln!(w, "balances:");
    let _ = write!(w, "  spot: {{ USDT: \"250000\"");
    for (_, b, p) in spot {
        let price: f64 = p.parse().unwrap_or(1.0);
        let _ = write!(w, ", {b}: \"{}\"", trim((2000.0 / price).max(0.001)));
    }
    let _ = writeln!(w, " }}");
    let _ = writeln!(w, "  margin: {{ USDT: \"20000\" }}");
    let _ = writeln!(w, "  usdm: {{ USDT: \"40000\" }}");
    let _ = write!(w, "  coinm: {{");
    for (i, (_, b, _)) in coinm.iter().enumerate() {
        let _ = write!(w, "{}{b}: \"5\"", if i == 0 { " " } else { ", " });
    }
    let _ = writeln!(w, " }}");
}

/// Open orders: resting limits a few percent off the market, and on USDⓈ-M and COIN-M
/// every third one a stop (which Binance keeps in the algo book).
fn open_orders(w: &mut String, size: &Size, symbols: &Symbols, rng: &mut fastrand::Rng) {
    let Symbols {
        spot, usdm, coinm, ..
    } = symbols;
    let margin = symbols.margin();
    let _ = writeln!(w, "open_orders:");
    for (market, list) in [
        ("spot", &spot[..]),
        ("margin", margin),
        ("usdm", &usdm[..]),
        ("coinm", &coinm[..]),
    ] {
        for (symbol, _, p) in list {
            for n in 0..size.orders_per_symbol {
                let buy = n % 2 == 0;
                let side = if buy { "BUY" } else { "SELL" };
                let off = (2 + n) as f64 * if buy { -1.0 } else { 1.0 };
                let qty = if market == "coinm" {
                    "3".to_string()
                } else {
                    trim((100.0 / p.parse::<f64>().unwrap_or(1.0)).max(0.001))
                };
                let age = rng.u32(5..3000);
                if (market == "usdm" || market == "coinm") && n % 3 == 2 {
                    let _ = writeln!(
                        w,
                        "  - {{ market: {market}, symbol: {symbol}, side: {side}, type: STOP_MARKET, stop_price: \"{}\", quantity: \"{qty}\", time: -{age}m }}",
                        away(p, -off * 3.0)
                    );
                } else {
                    let _ = writeln!(
                        w,
                        "  - {{ market: {market}, symbol: {symbol}, side: {side}, type: LIMIT, price: \"{}\", quantity: \"{qty}\", time: -{age}m }}",
                        away(p, off)
                    );
                }
            }
        }
    }
}

/// Trades in the window, and one before it per symbol but the story's XYZ.
fn trades(
    w: &mut String,
    size: &Size,
    symbols: &Symbols,
    window_minutes: u64,
    rng: &mut fastrand::Rng,
) {
    let Symbols {
        spot, usdm, coinm, ..
    } = symbols;
    let _ = writeln!(w, "trades:");
    let per_futures = (size.trades_per_day / 2).max(1);
    for (market, list, per_day) in [
        ("spot", &spot[..], size.trades_per_day),
        ("usdm", &usdm[..], per_futures),
        ("coinm", &coinm[..], per_futures),
    ] {
        for (symbol, b, p) in list {
            // One trade from before the window, so a symbol traded only inside it
            // stands out (the story's XYZ pair has none).
            if b != "XYZ" {
                let minutes = window_minutes + 60 + rng.u64(0..40 * 24 * 60);
                let _ = writeln!(
                    w,
                    "  - {{ market: {market}, symbol: {symbol}, side: BUY, price: \"{p}\", quantity: \"1\", time: -{minutes}m }}"
                );
            }
            let count = per_day * size.trade_days as usize;
            for _ in 0..count {
                let minutes = rng.u64(5..window_minutes);
                let side = if rng.bool() { "BUY" } else { "SELL" };
                let price = away(p, (rng.f64() - 0.5) * 0.4);
                let qty = if market == "coinm" {
                    rng.u32(1..20).to_string()
                } else {
                    trim(rng.f64() * 500.0 / p.parse::<f64>().unwrap_or(1.0) + 0.0001)
                };
                // The story: the illiquid XYZ pair was bought far above the market.
                let extra = if b == "XYZ" && market == "spot" && side == "BUY" {
                    format!(", market_price: \"{p}\"")
                } else {
                    String::new()
                };
                let price = if extra.is_empty() {
                    price
                } else {
                    away(p, 300.0)
                };
                let _ = writeln!(
                    w,
                    "  - {{ market: {market}, symbol: {symbol}, side: {side}, price: \"{price}\", quantity: \"{qty}\", time: -{minutes}m{extra} }}"
                );
            }
        }
    }
}

/// Money movements: transfers, withdrawals (the first to an unknown address),
/// deposits, Pay.
fn movements(w: &mut String, size: &Size, window_minutes: u64, rng: &mut fastrand::Rng) {
    const TYPES: [&str; 6] = [
        "MAIN_UMFUTURE",
        "UMFUTURE_MAIN",
        "MAIN_CMFUTURE",
        "CMFUTURE_MAIN",
        "MAIN_MARGIN",
        "MARGIN_MAIN",
    ];
    let _ = writeln!(w, "transfers:");
    for n in 0..size.transfers {
        let minutes = rng.u64(5..window_minutes);
        let _ = writeln!(
            w,
            "  - {{ type: {}, asset: USDT, amount: \"{}\", time: -{minutes}m }}",
            TYPES[n % TYPES.len()],
            rng.u32(100..5000)
        );
    }
    let movements = (size.transfers / 10).max(1);
    let _ = writeln!(w, "withdrawals:");
    for n in 0..movements {
        let minutes = rng.u64(5..window_minutes);
        let (address, amount) = if n == 0 {
            ("TXunknownGen3r4t3dAddr3ss9q", "9500")
        } else {
            ("TXoursC0ldWall3tGen3rat3d1a", "1200")
        };
        let _ = writeln!(
            w,
            "  - {{ coin: USDT, network: TRX, address: {address}, amount: \"{amount}\", fee: \"1\", status: completed, tx_id: \"wd{n:04}\", time: -{minutes}m }}"
        );
    }
    let _ = writeln!(w, "deposits:");
    for n in 0..movements {
        let minutes = rng.u64(5..window_minutes);
        let _ = writeln!(
            w,
            "  - {{ coin: USDT, network: TRX, address: TXoursDep0sitGen3rat3d1a, amount: \"{}\", status: success, tx_id: \"dp{n:04}\", time: -{minutes}m }}",
            rng.u32(500..20000)
        );
    }
    let _ = writeln!(w, "pay:");
    for _ in 0..movements.min(5) {
        let minutes = rng.u64(5..window_minutes);
        let _ = writeln!(
            w,
            "  - {{ asset: USDT, amount: \"-{}\", counterparty: \"{}\", time: -{minutes}m }}",
            rng.u32(10..900),
            rng.u32(10_000_000..99_999_999)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scenario;

    #[test]
    fn large_scenario_is_valid_and_as_big_as_promised() {
        let size = Size::large();
        let text = generate(&size);
        let s = Scenario::parse(&text, "generated.yaml").unwrap_or_else(|d| panic!("{d}"));
        use crate::Market;
        let count = |m: Market| s.symbols.iter().filter(|x| x.market == m).count();
        assert_eq!(count(Market::Spot), 40);
        assert_eq!(count(Market::Usdm), 10);
        assert_eq!(count(Market::Coinm), 5);
        assert!(s.open_orders.len() >= 300, "{}", s.open_orders.len());
        let traded: std::collections::BTreeSet<_> = s
            .trades
            .iter()
            .filter(|t| t.market == Market::Spot)
            .map(|t| t.symbol.clone())
            .collect();
        assert_eq!(traded.len(), 40);
        assert!(s.transfers.len() + s.withdrawals.len() + s.deposits.len() >= 50);
        assert_eq!(generate(&size), text, "the same size gives the same text");
    }

    #[test]
    fn wide_scenario_has_200_symbols_and_1200_orders_on_every_market() {
        let size = Size::wide();
        assert_eq!(size.symbols(), 200);
        let text = generate(&size);
        let s = Scenario::parse(&text, "wide.yaml").unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(s.symbols.len(), 200);
        assert!(s.open_orders.len() >= 1200, "{}", s.open_orders.len());
        use crate::Market;
        for market in [Market::Spot, Market::Margin, Market::Usdm, Market::Coinm] {
            assert!(
                s.open_orders.iter().filter(|o| o.market == market).count() >= 100,
                "{market:?}"
            );
        }
    }

    #[test]
    fn small_scenario_is_valid() {
        let text = generate(&Size::small());
        Scenario::parse(&text, "small.yaml").unwrap_or_else(|d| panic!("{d}"));
    }
}
