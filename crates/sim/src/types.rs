//! Small shared vocabulary: path families, markets, Binance error answers, time helpers.
use std::fmt;

use axum::http::StatusCode;
use serde::Serialize;

/// The four path families. Binance rate-limits `/api`, `/sapi` and futures separately;
/// `/fapi` and `/dapi` share one pool since 2026-06-30 (see [`Family::pool`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// `/api/v3` (spot).
    Api,
    /// `/sapi` (wallet, margin, account).
    Sapi,
    /// `/fapi` (USDⓈ-M futures).
    Fapi,
    /// `/dapi` (COIN-M futures).
    Dapi,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::Api, Family::Sapi, Family::Fapi, Family::Dapi];

    /// Which family a request path belongs to, if any.
    pub fn of_path(path: &str) -> Option<Family> {
        let first = path.trim_start_matches('/').split('/').next()?;
        match first {
            "api" => Some(Family::Api),
            "sapi" => Some(Family::Sapi),
            "fapi" => Some(Family::Fapi),
            "dapi" => Some(Family::Dapi),
            _ => None,
        }
    }

    /// The weight pool this family counts against. Since the COIN-M/USDⓈ-M integration
    /// (effective 2026-06-30) `/fapi` and `/dapi` share one: one 2,400-per-minute IP
    /// weight in one `X-MBX-USED-WEIGHT-1M`, and a 418 on one is a ban on both.
    pub fn pool(self) -> Family {
        match self {
            Family::Dapi => Family::Fapi,
            other => other,
        }
    }

    /// Binance's published request-weight limit per minute (per IP), of the family's pool.
    pub fn default_weight_limit(self) -> u32 {
        match self {
            Family::Api => 6000,
            Family::Sapi => 12_000,
            Family::Fapi | Family::Dapi => 2400,
        }
    }

    /// `/sapi` never bans with 418; it only answers 429.
    pub fn bans(self) -> bool {
        self != Family::Sapi
    }
}

/// Where an order, trade or balance lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Market {
    Spot,
    Margin,
    Usdm,
    Coinm,
}

impl Market {
    pub const ALL: [Market; 4] = [Market::Spot, Market::Margin, Market::Usdm, Market::Coinm];

    pub fn parse(s: &str) -> Option<Market> {
        match s {
            "spot" => Some(Market::Spot),
            "margin" => Some(Market::Margin),
            "usdm" => Some(Market::Usdm),
            "coinm" => Some(Market::Coinm),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::Margin => "margin",
            Market::Usdm => "usdm",
            Market::Coinm => "coinm",
        }
    }

    pub fn is_futures(self) -> bool {
        matches!(self, Market::Usdm | Market::Coinm)
    }

    /// Order types Binance accepts on this market.
    pub fn order_types(self) -> &'static [&'static str] {
        match self {
            Market::Spot | Market::Margin => &[
                "LIMIT",
                "MARKET",
                "STOP_LOSS",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT",
                "TAKE_PROFIT_LIMIT",
                "LIMIT_MAKER",
            ],
            Market::Usdm | Market::Coinm => &[
                "LIMIT",
                "MARKET",
                "STOP",
                "STOP_MARKET",
                "TAKE_PROFIT",
                "TAKE_PROFIT_MARKET",
                "TRAILING_STOP_MARKET",
            ],
        }
    }
}

impl fmt::Display for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Binance error answer: HTTP status plus the `{"code","msg"}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: i64,
    pub msg: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: i64, msg: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            msg: msg.into(),
        }
    }

    pub fn bad_request(code: i64, msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, msg)
    }

    /// -1102: a mandatory parameter is missing or malformed.
    pub fn missing(name: &str) -> Self {
        Self::bad_request(
            -1102,
            format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
        )
    }

    /// -1100: a parameter that cannot be parsed.
    pub fn illegal(name: &str) -> Self {
        Self::bad_request(
            -1100,
            format!(
                "Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
            ),
        )
    }

    pub fn invalid_symbol() -> Self {
        Self::bad_request(-1121, "Invalid symbol.")
    }

    /// -2011: nothing to cancel.
    pub fn unknown_order() -> Self {
        Self::bad_request(-2011, "Unknown order sent.")
    }

    /// -2013: queried order does not exist.
    pub fn no_such_order() -> Self {
        Self::bad_request(-2013, "Order does not exist.")
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "code": self.code, "msg": self.msg })
    }
}

/// Milliseconds since the Unix epoch, from the real clock.
pub fn system_now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `2026-11-24T03:15:02.123Z`.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `2026-11-24 03:15:02` (UTC), Binance's withdrawal `applyTime` format.
pub fn binance_datetime(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Show an API key the way respond does everywhere: `AbCd…wXyZ`.
pub fn mask(api_key: &str) -> String {
    let chars: Vec<char> = api_key.chars().collect();
    if chars.len() <= 8 {
        return "…".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}
