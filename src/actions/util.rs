//! Small helpers the exchange actions share: times, prices in a quote asset, and plain
//! text tables for the terminal.
use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use rust_decimal::Decimal;

use crate::exchange::TickerPrice;

/// The step's required `since` input, resolved against the run's start.
pub fn since_input(ctx: &super::StepContext) -> Result<DateTime<Utc>, super::ActionError> {
    Ok(ctx
        .args
        .since("since", ctx.run.started_at)?
        .expect("required input"))
}

/// Milliseconds since the epoch as RFC 3339 UTC (seconds precision).
pub fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

/// "3h ago", "2d ago": how old something is, for the preview.
pub fn age(ms: i64, now: DateTime<Utc>) -> String {
    let secs = (now.timestamp_millis() - ms).max(0) / 1000;
    match secs {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// Stablecoins counted at 1 when no price is listed.
const DOLLARS: &[&str] = &["USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "USD"];

/// Public spot prices, for an estimated value of balances in one quote asset.
#[derive(Clone, Debug, Default)]
pub struct Prices {
    by_symbol: HashMap<String, Decimal>,
    pub quote: String,
}

impl Prices {
    pub fn new(tickers: &[TickerPrice], quote: &str) -> Prices {
        Prices {
            by_symbol: tickers
                .iter()
                .map(|t| (t.symbol.clone(), t.price))
                .collect(),
            quote: quote.to_string(),
        }
    }

    pub fn price(&self, symbol: &str) -> Option<Decimal> {
        self.by_symbol.get(symbol).copied()
    }

    /// The value of one unit of `asset` in the quote asset: directly, through BTC, or 1
    /// for dollar stablecoins when the quote is one too.
    pub fn unit_value(&self, asset: &str) -> Option<Decimal> {
        if asset == self.quote {
            return Some(Decimal::ONE);
        }
        if let Some(p) = self.price(&format!("{asset}{}", self.quote)) {
            return Some(p);
        }
        if let Some(p) = self.price(&format!("{}{asset}", self.quote)) {
            if !p.is_zero() {
                return Some(Decimal::ONE / p);
            }
        }
        if asset != "BTC" {
            if let (Some(in_btc), Some(btc)) =
                (self.price(&format!("{asset}BTC")), self.unit_value("BTC"))
            {
                return Some(in_btc * btc);
            }
        }
        if DOLLARS.contains(&asset) && DOLLARS.contains(&self.quote.as_str()) {
            return Some(Decimal::ONE);
        }
        None
    }

    pub fn value(&self, asset: &str, amount: Decimal) -> Option<Decimal> {
        self.unit_value(asset).map(|p| (p * amount).round_dp(2))
    }
}

/// Format a decimal without trailing zeros.
pub fn dec(d: Decimal) -> String {
    d.normalize().to_string()
}

/// A plain text table, columns padded to their widest cell. Rows may borrow their cells
/// (`Cow`, `&str`) or own them (`String`).
pub fn table<R: AsRef<[C]>, C: AsRef<str>>(headers: &[&str], rows: &[R]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.as_ref().iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.as_ref().chars().count());
            }
        }
    }
    let size = (widths.iter().sum::<usize>() + 2 * widths.len() + 1) * (rows.len() + 1);
    // Written in place: a preview of a thousand orders is shown (and journaled) before
    // their cancel goes out.
    let mut out = String::with_capacity(size);
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            let pad = widths.get(i).copied().unwrap_or(0);
            out.extend(std::iter::repeat_n(
                ' ',
                pad.saturating_sub(cell.chars().count()),
            ));
        }
        let end = out.trim_end_matches(' ').len();
        out.truncate(end);
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.as_ref().iter().map(AsRef::as_ref));
    }
    out
}

/// Serialise a wire struct into a JSON evidence row with `market` first.
pub fn row<T: serde::Serialize>(market: Option<&str>, value: &T) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    if let Some(m) = market {
        map.insert("market".into(), serde_json::Value::String(m.into()));
    }
    if let serde_json::Value::Object(fields) =
        serde_json::to_value(value).expect("wire types serialise")
    {
        for (k, v) in fields {
            if k != "market" {
                map.insert(k, v);
            }
        }
    }
    serde_json::Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(symbol: &str, price: &str) -> TickerPrice {
        TickerPrice {
            symbol: symbol.into(),
            price: price.parse().unwrap(),
        }
    }

    #[test]
    fn values_through_direct_inverse_and_btc_pairs() {
        let prices = Prices::new(&[t("BTCUSDT", "64000"), t("XYZBTC", "0.000002")], "USDT");
        assert_eq!(
            prices.value("BTC", "0.5".parse().unwrap()),
            Some("32000".parse().unwrap())
        );
        assert_eq!(
            prices.value("XYZ", "1000".parse().unwrap()),
            Some("128".parse().unwrap())
        );
        assert_eq!(
            prices.value("USDC", "10".parse().unwrap()),
            Some("10".parse().unwrap())
        );
        assert_eq!(prices.value("NOPE", "1".parse().unwrap()), None);
    }

    #[test]
    fn tables_line_up() {
        // Borrowed cells, fixed-size rows.
        let out = table(&["a", "bb"], &[["long", "x"]]);
        assert_eq!(out, "a     bb\nlong  x\n");
        // Widths count characters, and a line ends at its last non-blank cell.
        let out = table(
            &["market", "qty", "note"],
            &[
                vec!["USDⓈ-M".into(), "1".into(), String::new()],
                vec!["spot".into(), "0.25".into(), "new".into()],
            ],
        );
        assert_eq!(out, "market  qty   note\nUSDⓈ-M  1\nspot    0.25  new\n");
    }
}

/// What an action looked at and what it could not: every market, symbol and window
/// queried, every endpoint read, and every gap, so a reviewer knows what was not
/// examined. Recorded as rows of the `coverage` evidence table.
#[derive(Default)]
pub struct Coverage {
    rows: Vec<serde_json::Value>,
}

impl Coverage {
    fn push(
        &mut self,
        source: &str,
        scope: &str,
        window: Option<crate::exchange::TimeWindow>,
        status: &str,
        detail: &str,
    ) {
        self.rows.push(serde_json::json!({
            "source": source,
            "scope": scope,
            "from": window.map(|w| rfc3339(w.start_ms)),
            "to": window.map(|w| rfc3339(w.end_ms)),
            "status": status,
            "detail": detail,
        }));
    }

    /// Read in full.
    pub fn read(&mut self, source: &str, scope: &str, window: Option<crate::exchange::TimeWindow>) {
        self.push(source, scope, window, "read", "");
    }

    /// Read in full, with why it was read (how a symbol became a candidate).
    pub fn read_because(
        &mut self,
        source: &str,
        scope: &str,
        window: Option<crate::exchange::TimeWindow>,
        detail: &str,
    ) {
        self.push(source, scope, window, "read", detail);
    }

    /// Asked for and not (fully) read: an error, or older than the API serves.
    pub fn gap(
        &mut self,
        source: &str,
        scope: &str,
        window: Option<crate::exchange::TimeWindow>,
        detail: &str,
    ) {
        self.push(source, scope, window, "gap", detail);
    }

    /// Not enabled on the key: it can neither have acted nor be read there. Not a gap.
    pub fn not_enabled(&mut self, source: &str, scope: &str, detail: &str) {
        self.push(source, scope, None, "not enabled", detail);
    }

    /// Not looked at by design.
    pub fn not_examined(&mut self, source: &str, detail: &str) {
        self.push(source, "", None, "not examined", detail);
    }

    pub fn record(self, ctx: &super::StepContext) -> Result<(), super::ActionError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        ctx.evidence("coverage", self.rows)
    }
}

/// Binance serves futures trade history and universal transfers for the last six
/// months only.
pub const SIX_MONTHS_MS: i64 = 183 * 86_400_000;

/// The `quote` input of the steps that value balances: the asset to value them in.
pub(super) const QUOTE_INPUT: super::InputSpec = super::InputSpec {
    name: "quote",
    ty: super::ArgType::Text,
    required: false,
    default: Some("USDT"),
    description: "asset to value balances in",
};
