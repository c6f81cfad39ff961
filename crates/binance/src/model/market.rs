//! Market data: exchange info, prices, klines.
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::lenient;
use crate::Market;

/// One tradable symbol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SymbolInfo {
    pub symbol: String,
    pub base_asset: String,
    pub quote_asset: String,
    /// `TRADING`, `BREAK`, ... (`contractStatus` on COIN-M).
    pub status: String,
    /// Futures only (`PERPETUAL`, `CURRENT_QUARTER`, ...).
    pub contract_type: Option<String>,
}

/// A rate limit as `exchangeInfo` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    pub rate_limit_type: String,
    pub interval: String,
    pub interval_num: u32,
    pub limit: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeInfo {
    pub market: Market,
    pub server_time: Option<i64>,
    pub rate_limits: Vec<RateLimit>,
    pub symbols: Vec<SymbolInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawExchangeInfo {
    #[serde(default, deserialize_with = "lenient::opt_int")]
    server_time: Option<i64>,
    #[serde(default)]
    rate_limits: Vec<RateLimit>,
    #[serde(default)]
    symbols: Vec<RawSymbol>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSymbol {
    symbol: String,
    #[serde(default)]
    base_asset: String,
    #[serde(default)]
    quote_asset: String,
    status: Option<String>,
    contract_status: Option<String>,
    contract_type: Option<String>,
}

impl RawExchangeInfo {
    pub(crate) fn normalise(self, market: Market) -> ExchangeInfo {
        ExchangeInfo {
            market,
            server_time: self.server_time,
            rate_limits: self.rate_limits,
            symbols: self
                .symbols
                .into_iter()
                .map(|s| SymbolInfo {
                    symbol: s.symbol,
                    base_asset: s.base_asset,
                    quote_asset: s.quote_asset,
                    status: s.status.or(s.contract_status).unwrap_or_default(),
                    contract_type: s.contract_type.filter(|c| !c.is_empty()),
                })
                .collect(),
        }
    }
}

/// Last price of a symbol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TickerPrice {
    pub symbol: String,
    #[serde(deserialize_with = "lenient::decimal")]
    pub price: Decimal,
}

/// One candle (respond uses 1-minute ones: "was this trade far from the market?").
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Kline {
    pub open_time: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    pub close_time: i64,
}

/// A kline read straight off its array: the first seven fields, the rest skipped
/// unread. A page of 1000 klines decoded through `Vec<Vec<Value>>` first would hold about
/// half a megabyte of JSON values at once; this holds seven at a time.
pub(crate) struct KlineRow(pub Result<Kline, String>);

impl<'de> Deserialize<'de> for KlineRow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Row;
        impl<'de> serde::de::Visitor<'de> for Row {
            type Value = KlineRow;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a kline array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<KlineRow, A::Error> {
                let mut head = Vec::with_capacity(7);
                while head.len() < 7 {
                    match seq.next_element::<serde_json::Value>()? {
                        Some(v) => head.push(v),
                        None => break,
                    }
                }
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(KlineRow(kline_from_array(&head)))
            }
        }
        deserializer.deserialize_seq(Row)
    }
}

/// Klines come as arrays `[openTime, "open", "high", "low", "close", "volume",
/// closeTime, ...]` whose length has grown over the years: read by position.
pub(crate) fn kline_from_array(row: &[serde_json::Value]) -> Result<Kline, String> {
    use std::str::FromStr;
    let int = |i: usize| -> Result<i64, String> {
        match row.get(i) {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| format!("kline field {i} is not an integer"))
    };
    let dec = |i: usize| -> Result<Decimal, String> {
        let text = match row.get(i) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        Decimal::from_str(&text).map_err(|_| format!("kline field {i} is not a decimal"))
    };
    Ok(Kline {
        open_time: int(0)?,
        open: dec(1)?,
        high: dec(2)?,
        low: dec(3)?,
        close: dec(4)?,
        volume: dec(5)?,
        close_time: int(6)?,
    })
}
