//! Market data the simulator makes up: a deterministic one-minute price series around
//! each symbol's reference price (so an off-market trade is visibly off-market), candles
//! built from it, and the tick and lot sizes exchangeInfo reports.
use rust_decimal::Decimal;

use super::scenario::ScenarioSymbol;
use super::state::State;

const MINUTE_MS: i64 = 60_000;
/// Slow drift of at most ±0.4 %, over control points every 30 minutes.
const DRIFT_PPM: i64 = 4000;
/// Minute-to-minute jitter of at most ±0.05 %.
const JITTER_PPM: i64 = 500;
const DRIFT_EVERY_MINUTES: i64 = 30;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn symbol_hash(sym: &ScenarioSymbol) -> u64 {
    // FNV-1a over market and symbol: stable across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sym.market.name().bytes().chain(sym.symbol.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A value in [-1_000_000, 1_000_000] for (symbol, n).
fn noise(h: u64, n: i64) -> i64 {
    (splitmix(h ^ (n as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93)) % 2_000_001) as i64 - 1_000_000
}

/// Decimal places prices of `sym` are quoted with.
pub fn price_scale(sym: &ScenarioSymbol) -> u32 {
    (sym.price.normalize().scale() + 1).clamp(2, 8)
}

/// Decimal places quantities of `sym` are quoted with: fewer for cheap assets.
pub fn qty_scale(sym: &ScenarioSymbol) -> u32 {
    let digits = sym
        .price
        .trunc()
        .normalize()
        .to_string()
        .trim_start_matches('-')
        .len() as u32;
    if sym.price < Decimal::ONE {
        0
    } else {
        digits.min(5)
    }
}

pub fn tick_size(sym: &ScenarioSymbol) -> Decimal {
    Decimal::new(1, price_scale(sym))
}

pub fn step_size(sym: &ScenarioSymbol) -> Decimal {
    Decimal::new(1, qty_scale(sym))
}

/// Offset from the reference price in parts per million at `minute`.
fn offset_ppm(h: u64, minute: i64) -> i64 {
    let k = minute.div_euclid(DRIFT_EVERY_MINUTES);
    let frac = minute.rem_euclid(DRIFT_EVERY_MINUTES);
    let a = noise(h, k);
    let b = noise(h, k + 1);
    let drift = a + (b - a) * frac / DRIFT_EVERY_MINUTES;
    let jitter = noise(h ^ 0x5555, minute);
    (drift * DRIFT_PPM + jitter * JITTER_PPM) / 1_000_000
}

/// The closing price of one minute (minute = ms / 60000).
pub fn close_of(state: &State, sym: &ScenarioSymbol, minute: i64) -> Decimal {
    if let Some(p) = state
        .price_overrides
        .get(&(sym.market, sym.symbol.clone(), minute))
    {
        return *p;
    }
    let ppm = offset_ppm(symbol_hash(sym), minute);
    (sym.price * (Decimal::ONE + Decimal::new(ppm, 6)))
        .round_dp(price_scale(sym))
        .normalize()
}

/// The price now.
pub fn price_now(state: &State, sym: &ScenarioSymbol, now_ms: i64) -> Decimal {
    close_of(state, sym, now_ms.div_euclid(MINUTE_MS))
}

/// One candle.
#[derive(Debug, Clone)]
pub struct Candle {
    pub open_time: i64,
    pub close_time: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    pub quote_volume: Decimal,
    pub trades: u64,
}

/// The candle of `minutes` minutes starting at `open_time` (aligned by the caller).
pub fn candle(state: &State, sym: &ScenarioSymbol, open_time: i64, minutes: i64) -> Candle {
    let first = open_time.div_euclid(MINUTE_MS);
    let h = symbol_hash(sym);
    let scale = price_scale(sym);
    let overridden = |m: i64| {
        state
            .price_overrides
            .contains_key(&(sym.market, sym.symbol.clone(), m))
    };
    // A minute named by a scenario trade opens where it closes: its price is the market.
    let open = if overridden(first) {
        close_of(state, sym, first)
    } else {
        close_of(state, sym, first - 1)
    };
    let mut high = open;
    let mut low = open;
    // Long candles sample their minutes so a 1000-candle daily request stays cheap.
    let step = (minutes / 60).max(1);
    let mut m = first;
    while m < first + minutes {
        let close = close_of(state, sym, m);
        let wick = Decimal::new(noise(h ^ 0xAAAA, m).abs() % 400, 6);
        high = high.max(close * (Decimal::ONE + wick));
        low = low.min(close * (Decimal::ONE - wick));
        m += step;
    }
    let close = close_of(state, sym, first + minutes - 1);
    high = high.max(close).round_dp(scale).normalize();
    low = low.min(close).round_dp(scale).normalize();
    // A few hundred lots a minute for a thin pair; a thousand times that for the rest,
    // so one account's trade is a small share of a major's minute.
    let liquidity = if sym.thin { 1 } else { 1000 };
    let units = (noise(h ^ 0x7777, first).unsigned_abs() % 900 + 100) * minutes as u64 * liquidity;
    let volume = (Decimal::from(units) * step_size(sym)).normalize();
    Candle {
        open_time,
        close_time: open_time + minutes * MINUTE_MS - 1,
        open,
        high,
        low,
        close,
        volume,
        quote_volume: (volume * close).round_dp(8).normalize(),
        trades: units / 7 + 1,
    }
}

/// Minutes in a Binance kline interval.
pub fn interval_minutes(interval: &str) -> Option<i64> {
    Some(match interval {
        "1m" => 1,
        "3m" => 3,
        "5m" => 5,
        "15m" => 15,
        "30m" => 30,
        "1h" => 60,
        "2h" => 120,
        "4h" => 240,
        "6h" => 360,
        "8h" => 480,
        "12h" => 720,
        "1d" => 1440,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::types::Market;

    #[test]
    fn series_is_deterministic_and_close_to_the_reference() {
        let scenario = Scenario::builtin_leaked_key();
        let state = State::new(&scenario, 1_700_000_000_000);
        let sym = state.symbol(Market::Spot, "BTCUSDT").unwrap().clone();
        for minute in 28_000_000..28_000_500 {
            let p = close_of(&state, &sym, minute);
            assert_eq!(p, close_of(&state, &sym, minute));
            let off = ((p - sym.price) / sym.price).abs();
            assert!(off < Decimal::new(5, 3), "{p} is {off} off");
        }
    }

    #[test]
    fn named_market_price_wins_for_its_minute() {
        let scenario = Scenario::builtin_leaked_key();
        let start = 1_700_000_000_000;
        let state = State::new(&scenario, start);
        let sym = state.symbol(Market::Spot, "XYZBTC").unwrap().clone();
        let trade = state.trades.iter().find(|t| t.symbol == "XYZBTC").unwrap();
        let minute = trade.time.div_euclid(60_000);
        let c = candle(&state, &sym, minute * 60_000, 1);
        assert_eq!(c.close, Decimal::new(21, 7));
        assert_eq!(c.open, Decimal::new(21, 7));
        // The trade is about four times the market price of its minute.
        assert!(trade.price / c.close > Decimal::from(4));
    }

    #[test]
    fn tick_and_lot_sizes() {
        let scenario = Scenario::builtin_leaked_key();
        let btc = scenario.symbol(Market::Spot, "BTCUSDT").unwrap();
        assert_eq!(tick_size(btc), Decimal::new(1, 2));
        assert_eq!(step_size(btc), Decimal::new(1, 5));
        let xyz = scenario.symbol(Market::Spot, "XYZBTC").unwrap();
        assert_eq!(tick_size(xyz), Decimal::new(1, 8));
        assert_eq!(step_size(xyz), Decimal::ONE);
    }
}
