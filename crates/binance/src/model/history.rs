//! Money movements: withdrawals, deposits, universal transfers, Binance Pay,
//! sub-account transfers.
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::lenient;

/// `GET /sapi/v1/capital/withdraw/history`. Status: 0 email sent, 1 cancelled,
/// 2 awaiting approval, 3 rejected, 4 processing, 5 failure, 6 completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Withdrawal {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(deserialize_with = "lenient::decimal")]
    pub amount: Decimal,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    pub transaction_fee: Option<Decimal>,
    pub coin: String,
    #[serde(deserialize_with = "lenient::int")]
    pub status: i64,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub address_tag: Option<String>,
    #[serde(default)]
    pub tx_id: Option<String>,
    /// `"YYYY-MM-DD HH:MM:SS"`, UTC.
    #[serde(default)]
    pub apply_time: String,
    #[serde(default)]
    pub network: Option<String>,
    /// 1 internal transfer, 0 external.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub transfer_type: Option<i64>,
    #[serde(default)]
    pub withdraw_order_id: Option<String>,
    #[serde(default)]
    pub info: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub confirm_no: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub wallet_type: Option<i64>,
    #[serde(default)]
    pub tx_key: Option<String>,
    #[serde(default)]
    pub complete_time: Option<String>,
}

/// `GET /sapi/v1/capital/deposit/hisrec`. Status: 0 pending, 1 success, 2 rejected,
/// 6 credited but cannot withdraw, 7 wrong deposit, 8 waiting user confirm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deposit {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(deserialize_with = "lenient::decimal")]
    pub amount: Decimal,
    pub coin: String,
    #[serde(default)]
    pub network: Option<String>,
    #[serde(deserialize_with = "lenient::int")]
    pub status: i64,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub address_tag: Option<String>,
    #[serde(default)]
    pub tx_id: Option<String>,
    #[serde(deserialize_with = "lenient::int")]
    pub insert_time: i64,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub transfer_type: Option<i64>,
}

/// `GET /sapi/v1/asset/transfer`, one row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UniversalTransfer {
    pub asset: String,
    #[serde(deserialize_with = "lenient::decimal")]
    pub amount: Decimal,
    /// `MAIN_UMFUTURE`, `MAIN_FUNDING`, ...
    #[serde(rename = "type", default)]
    pub transfer_type: String,
    #[serde(default)]
    pub status: String,
    #[serde(deserialize_with = "lenient::int")]
    pub tran_id: i64,
    #[serde(deserialize_with = "lenient::int")]
    pub timestamp: i64,
}

/// The universal transfer types respond asks for, one query each (`type` is
/// mandatory). Money leaving the spot wallet for somewhere an attacker can use it, and
/// coming back.
pub const UNIVERSAL_TRANSFER_TYPES: &[&str] = &[
    "MAIN_UMFUTURE",
    "MAIN_CMFUTURE",
    "MAIN_MARGIN",
    "MAIN_FUNDING",
    "UMFUTURE_MAIN",
    "CMFUTURE_MAIN",
    "MARGIN_MAIN",
    "FUNDING_MAIN",
    "FUNDING_UMFUTURE",
    "FUNDING_CMFUTURE",
    "UMFUTURE_FUNDING",
    "CMFUTURE_FUNDING",
    "MARGIN_UMFUTURE",
    "UMFUTURE_MARGIN",
];

#[derive(Deserialize)]
pub(crate) struct RawTransferPage {
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub total: Option<i64>,
    #[serde(default)]
    pub rows: Option<Vec<UniversalTransfer>>,
    /// ccxt also reads `data`; accept either.
    #[serde(default)]
    pub data: Option<Vec<UniversalTransfer>>,
}

/// `GET /sapi/v1/pay/transactions`, one row. Counterparty details stay as Binance sent
/// them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayTransaction {
    #[serde(default)]
    pub order_type: String,
    #[serde(deserialize_with = "lenient::string")]
    pub transaction_id: String,
    #[serde(deserialize_with = "lenient::int")]
    pub transaction_time: i64,
    #[serde(deserialize_with = "lenient::decimal")]
    pub amount: Decimal,
    #[serde(default)]
    pub currency: String,
    #[serde(default)]
    pub payer_info: serde_json::Value,
    #[serde(default)]
    pub receiver_info: serde_json::Value,
    #[serde(default)]
    pub funds_detail: serde_json::Value,
}

#[derive(Deserialize)]
pub(crate) struct RawPayPage {
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub data: Vec<PayTransaction>,
}

/// `GET /sapi/v1/sub-account/sub/transfer/history` (master account's view).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubAccountTransfer {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    pub asset: String,
    #[serde(deserialize_with = "lenient::decimal")]
    pub qty: Decimal,
    #[serde(default)]
    pub status: String,
    #[serde(deserialize_with = "lenient::int")]
    pub tran_id: i64,
    #[serde(deserialize_with = "lenient::int")]
    pub time: i64,
}

/// `GET /fapi/v1/income`, `/dapi/v1/income`: one row of a futures account's income
/// flow (REALIZED_PNL, COMMISSION, FUNDING_FEE, TRANSFER, ...). Rows tied to a trade or
/// position carry its `symbol`; the others an empty one. `tranId` is a number on
/// `/fapi` and a string on `/dapi`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Income {
    #[serde(default)]
    pub symbol: String,
    pub income_type: String,
    #[serde(deserialize_with = "lenient::decimal")]
    pub income: Decimal,
    #[serde(default)]
    pub asset: String,
    #[serde(default)]
    pub info: String,
    #[serde(deserialize_with = "lenient::int")]
    pub time: i64,
    #[serde(default, deserialize_with = "lenient::string")]
    pub tran_id: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub trade_id: String,
}
