//! The scenario file as written: plain structs (no flatten, no untagged enums) with
//! `Spanned` leaves, so every semantic check can point at its line and column.
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

pub type S = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub version: Spanned<u32>,
    pub name: S,
    #[serde(default)]
    pub description: Option<String>,
    pub keys: Spanned<Vec<RawKey>>,
    #[serde(default)]
    pub symbols: Vec<RawSymbol>,
    /// More spot symbols the exchange lists, with no history of the account's: a
    /// realistic `exchangeInfo` for a full-account scan to walk.
    #[serde(default)]
    pub listed_spot_symbols: Option<Spanned<u32>>,
    #[serde(default)]
    pub balances: RawBalances,
    /// Cross-margin loans per asset (evidence only; nothing repays them).
    #[serde(default)]
    pub margin_loans: BTreeMap<String, S>,
    #[serde(default)]
    pub open_orders: Vec<RawOrder>,
    #[serde(default)]
    pub trades: Vec<RawTrade>,
    #[serde(default)]
    pub withdrawals: Vec<RawWithdrawal>,
    #[serde(default)]
    pub deposits: Vec<RawDeposit>,
    #[serde(default)]
    pub transfers: Vec<RawTransfer>,
    #[serde(default)]
    pub pay: Vec<RawPay>,
    #[serde(default)]
    pub positions: Vec<RawPosition>,
    #[serde(default)]
    pub drill: Option<RawDrill>,
    #[serde(default)]
    pub attacker: Option<RawAttacker>,
    /// Where outside callers are taken to come from (IP whitelists).
    #[serde(default)]
    pub client_ip: Option<S>,
    /// A master account and its sub-accounts; keys name theirs with `account:`.
    #[serde(default)]
    pub accounts: Option<RawAccounts>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccounts {
    /// The master account's email.
    pub master: S,
    #[serde(default)]
    pub sub_accounts: Vec<RawSubAccount>,
    #[serde(default)]
    pub transfers: Vec<RawSubAccountTransfer>,
}

/// Money moved between the master and its sub-accounts (or between sub-accounts).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubAccountTransfer {
    /// `spot` (master/sub spot transfers), `universal`, `usdm` or `coinm` (futures
    /// internal transfers).
    #[serde(rename = "type")]
    pub kind: S,
    pub from: S,
    pub to: S,
    pub asset: S,
    pub amount: S,
    pub time: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubAccount {
    pub email: S,
    /// An asset-management sub-account: Binance refuses key management for it.
    #[serde(default)]
    pub asset_management: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    pub label: S,
    pub api_key: S,
    /// An HMAC key's secret.
    #[serde(default)]
    pub secret: Option<S>,
    /// An Ed25519 or RSA key's public key (PEM), instead of `secret`.
    #[serde(default)]
    pub public_key: Option<S>,
    /// The matching private key (PKCS#8 PEM), so a drill can act as this key.
    #[serde(default)]
    pub private_key: Option<S>,
    pub permissions: Spanned<Vec<S>>,
    #[serde(default)]
    pub ip_whitelist: Vec<S>,
    #[serde(default)]
    pub created: Option<S>,
    /// The account (email) the key belongs to; default the master account.
    #[serde(default)]
    pub account: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSymbol {
    pub market: S,
    pub symbol: S,
    pub base: S,
    pub quote: S,
    pub price: S,
    /// COIN-M contract size in USD (default 100 for BTC, 10 otherwise).
    #[serde(default)]
    pub contract_size: Option<Spanned<u32>>,
    /// A thinly traded pair: a few hundred units a minute instead of a major's volume.
    #[serde(default)]
    pub thin: bool,
    /// Spot: `TRADING` (default), `BREAK`, `HALT`, ... as `exchangeInfo` lists it.
    #[serde(default)]
    pub status: Option<S>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBalances {
    #[serde(default)]
    pub spot: BTreeMap<String, S>,
    #[serde(default)]
    pub margin: BTreeMap<String, S>,
    #[serde(default)]
    pub usdm: BTreeMap<String, S>,
    #[serde(default)]
    pub coinm: BTreeMap<String, S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOrder {
    pub market: S,
    pub symbol: S,
    pub side: S,
    #[serde(rename = "type")]
    pub order_type: S,
    #[serde(default)]
    pub price: Option<S>,
    #[serde(default)]
    pub stop_price: Option<S>,
    pub quantity: S,
    pub time: S,
    #[serde(default)]
    pub client_order_id: Option<S>,
    #[serde(default)]
    pub time_in_force: Option<S>,
    /// Margin only: an isolated-margin order.
    #[serde(default)]
    pub isolated: Option<bool>,
    /// Futures only: BOTH (default), LONG or SHORT.
    #[serde(default)]
    pub position_side: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrade {
    pub market: S,
    pub symbol: S,
    pub side: S,
    pub price: S,
    pub quantity: S,
    pub time: S,
    /// The market price of that minute (klines are centred on it).
    #[serde(default)]
    pub market_price: Option<S>,
    #[serde(default)]
    pub maker: Option<bool>,
    #[serde(default)]
    pub commission: Option<S>,
    #[serde(default)]
    pub commission_asset: Option<S>,
    #[serde(default)]
    pub realized_pnl: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWithdrawal {
    pub coin: S,
    pub network: S,
    pub address: S,
    pub amount: S,
    #[serde(default)]
    pub fee: Option<S>,
    pub status: S,
    #[serde(default)]
    pub tx_id: Option<S>,
    pub time: S,
    #[serde(default)]
    pub id: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeposit {
    pub coin: S,
    pub network: S,
    pub address: S,
    pub amount: S,
    pub status: S,
    #[serde(default)]
    pub tx_id: Option<S>,
    pub time: S,
    #[serde(default)]
    pub id: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransfer {
    #[serde(rename = "type")]
    pub transfer_type: S,
    pub asset: S,
    pub amount: S,
    pub time: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPay {
    pub asset: S,
    pub amount: S,
    pub counterparty: S,
    pub time: S,
    /// PAY, C2C, CRYPTO_BOX, PAYOUT, ... (default C2C).
    #[serde(default)]
    pub order_type: Option<S>,
    #[serde(default)]
    pub counterparty_name: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPosition {
    pub market: S,
    pub symbol: S,
    /// Signed: negative is short.
    pub amount: S,
    pub entry_price: S,
    #[serde(default)]
    pub leverage: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrill {
    #[serde(default)]
    pub deletion: Option<S>,
    /// `wrong`: the drill hands respond a secret that does not belong to the key.
    #[serde(default)]
    pub secret: Option<S>,
    /// Where the drill's responder key is made: `master` (default when the scenario has
    /// sub-accounts: a master key with trading permission) or `same-account` (a read-only
    /// key on the leaked key's account).
    #[serde(default)]
    pub responder: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAttacker {
    pub key: S,
    pub every: S,
    pub order: RawAttackerOrder,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAttackerOrder {
    pub market: S,
    pub symbol: S,
    pub side: S,
    #[serde(rename = "type")]
    pub order_type: S,
    #[serde(default)]
    pub price: Option<S>,
    #[serde(default)]
    pub stop_price: Option<S>,
    pub quantity: S,
}
