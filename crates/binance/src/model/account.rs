//! Account state: spot account, key permissions, margin, futures balances and positions.
use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::lenient;
use crate::Market;

/// `GET /api/v3/account`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpotAccount {
    #[serde(default)]
    pub can_trade: bool,
    #[serde(default)]
    pub can_withdraw: bool,
    #[serde(default)]
    pub can_deposit: bool,
    #[serde(default)]
    pub account_type: Option<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub balances: Vec<Balance>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub update_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub uid: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    pub asset: String,
    #[serde(deserialize_with = "lenient::decimal")]
    pub free: Decimal,
    #[serde(deserialize_with = "lenient::decimal")]
    pub locked: Decimal,
}

/// `GET /sapi/v1/account/apiRestrictions`: what the key may do. Fields Binance adds
/// later are kept in `other`, so the report shows them rather than losing them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRestrictions {
    #[serde(default)]
    pub ip_restrict: bool,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub create_time: Option<i64>,
    #[serde(default)]
    pub enable_reading: bool,
    #[serde(default)]
    pub enable_withdrawals: bool,
    #[serde(default)]
    pub enable_internal_transfer: bool,
    #[serde(default)]
    pub enable_margin: bool,
    #[serde(default)]
    pub enable_futures: bool,
    #[serde(default)]
    pub permits_universal_transfer: bool,
    #[serde(default)]
    pub enable_vanilla_options: bool,
    #[serde(default)]
    pub enable_fix_api_trade: bool,
    #[serde(default)]
    pub enable_fix_read_only: bool,
    #[serde(default)]
    pub enable_spot_and_margin_trading: bool,
    #[serde(default)]
    pub enable_portfolio_margin_trading: bool,
    /// Present only for keys whose trading permission expires.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub trading_authority_expiration_time: Option<i64>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `GET /sapi/v1/margin/account` (cross margin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarginAccount {
    #[serde(default)]
    pub borrow_enabled: bool,
    #[serde(default)]
    pub trade_enabled: bool,
    #[serde(default)]
    pub transfer_enabled: bool,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub margin_level: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub total_asset_of_btc: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub total_liability_of_btc: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub total_net_asset_of_btc: Option<Decimal>,
    #[serde(default)]
    pub user_assets: Vec<MarginAsset>,
}

impl MarginAccount {
    /// Assets with an outstanding loan: what an attacker may have borrowed.
    pub fn borrowed(&self) -> impl Iterator<Item = &MarginAsset> {
        self.user_assets
            .iter()
            .filter(|a| !a.borrowed.is_zero() || !a.interest.is_zero())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarginAsset {
    pub asset: String,
    #[serde(deserialize_with = "lenient::decimal")]
    pub borrowed: Decimal,
    #[serde(deserialize_with = "lenient::decimal")]
    pub free: Decimal,
    #[serde(deserialize_with = "lenient::decimal")]
    pub interest: Decimal,
    #[serde(deserialize_with = "lenient::decimal")]
    pub locked: Decimal,
    #[serde(deserialize_with = "lenient::decimal")]
    pub net_asset: Decimal,
}

/// A futures wallet balance (`/fapi/v2/balance`, `/dapi/v1/balance`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FuturesBalance {
    #[serde(default = "default_market")]
    pub market: Market,
    pub asset: String,
    #[serde(deserialize_with = "lenient::decimal")]
    pub balance: Decimal,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub cross_wallet_balance: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub cross_un_pnl: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub available_balance: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub update_time: Option<i64>,
}

/// A futures position (`positionRisk`). Evidence only: respond never closes positions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    #[serde(default = "default_market")]
    pub market: Market,
    pub symbol: String,
    #[serde(deserialize_with = "lenient::decimal")]
    pub position_amt: Decimal,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub entry_price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub mark_price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub un_realized_profit: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub liquidation_price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub leverage: Option<Decimal>,
    #[serde(default)]
    pub margin_type: Option<String>,
    #[serde(default)]
    pub position_side: Option<String>,
    /// USDⓈ-M: the position's value in the quote asset (signed).
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub notional: Option<Decimal>,
    /// COIN-M: the position's value in the coin (its margin asset).
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub notional_value: Option<Decimal>,
    /// USDⓈ-M v3: the asset the position is margined in.
    #[serde(default)]
    pub margin_asset: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub update_time: Option<i64>,
}

impl Position {
    pub fn is_open(&self) -> bool {
        !self.position_amt.is_zero()
    }
}

/// Overwritten right after decoding; only there because the wire has no such field.
fn default_market() -> Market {
    Market::UsdM
}

/// `GET /sapi/v1/sub-account/list` (master account only): one sub-account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubAccount {
    pub email: String,
    #[serde(default)]
    pub is_freeze: bool,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub create_time: Option<i64>,
    #[serde(default)]
    pub is_managed_sub_account: bool,
    #[serde(default)]
    pub is_asset_management_sub_account: bool,
}

/// `GET /sapi/v1/sub-account/subAccountApi` (master account only): one of a
/// sub-account's API keys. Whether `apiKey` is the full key or a masked one is not
/// documented: see [`SubAccountApiKey::is_full`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubAccountApiKey {
    #[serde(default)]
    pub api_name: String,
    pub api_key: String,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub can_trade: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub can_margin_loan_repay: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub can_futures_trade: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub can_universal_transfer: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub can_vanilla_options: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub can_withdraw: Option<bool>,
    /// IP restriction: 1 none, 2 restricted to `ipList`, 3 a third party's IPs.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub status: Option<i64>,
    #[serde(default)]
    pub ip_list: Vec<String>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub create_time: Option<i64>,
}

impl std::fmt::Debug for SubAccountApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubAccountApiKey")
            .field("api_name", &self.api_name)
            .field("api_key", &crate::credentials::mask(&self.api_key))
            .field("status", &self.status)
            .field("create_time", &self.create_time)
            .finish()
    }
}

impl SubAccountApiKey {
    /// Binance API keys are 64 letters and digits; anything else was masked by Binance.
    pub fn is_full(&self) -> bool {
        self.api_key.len() == 64 && self.api_key.bytes().all(|b| b.is_ascii_alphanumeric())
    }

    /// The key as respond shows it (`AbCd…wXyZ`), however Binance sent it.
    pub fn masked(&self) -> String {
        if self.is_full() {
            crate::credentials::mask(&self.api_key)
        } else {
            self.api_key.clone()
        }
    }

    /// What the key may do, in words.
    pub fn permissions(&self) -> Vec<&'static str> {
        let mut p = vec!["reading"];
        for (on, name) in [
            (self.can_trade, "spot & margin trading"),
            (self.can_margin_loan_repay, "margin loans"),
            (self.can_futures_trade, "futures"),
            (self.can_universal_transfer, "universal transfer"),
            (self.can_vanilla_options, "options"),
            (self.can_withdraw, "withdrawals"),
        ] {
            if on == Some(true) {
                p.push(name);
            }
        }
        p
    }

    /// The IP restriction, in words.
    pub fn ip_restriction(&self) -> String {
        match self.status {
            Some(2) if !self.ip_list.is_empty() => self.ip_list.join(" "),
            Some(2) => "restricted".into(),
            Some(3) => "third party's IPs".into(),
            Some(1) => "none".into(),
            _ if !self.ip_list.is_empty() => self.ip_list.join(" "),
            _ => "unknown".into(),
        }
    }
}
