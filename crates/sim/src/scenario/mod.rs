//! Scenario files: the story the simulator tells (keys, symbols, balances, open orders,
//! history, the attacker). Loaded like playbooks: serde's first type error with its
//! position, otherwise every semantic problem at once, each as `FILE:LINE:COLUMN`.
pub mod generate;
mod raw;
mod validate;

pub use validate::{needs_price, needs_stop_price, parse_when, TRANSFER_TYPES};

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use rust_decimal::Decimal;

use super::types::Market;
use super::SimError;
use respond_diagnostic::{Diagnostic, Diagnostics};

/// The built-in story `respond compromised --drill` and `respond sim serve` use by default.
pub const BUILTIN_LEAKED_KEY: &str =
    include_str!("../../../../playbooks/scenarios/leaked-key.yaml");
/// A quiet account with a read-only key (nothing alarming), for tests.
pub const BUILTIN_READ_ONLY: &str = include_str!("../../../../playbooks/scenarios/read-only.yaml");
/// A leaked sub-account key, and a second key the attacker created on that sub-account.
pub const BUILTIN_SUBACCOUNT_LEAK: &str =
    include_str!("../../../../playbooks/scenarios/subaccount-leak.yaml");

/// A validated scenario. Times are kept relative until the server starts.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub keys: Vec<ScenarioKey>,
    pub symbols: Vec<ScenarioSymbol>,
    pub balances: BTreeMap<Market, BTreeMap<String, Decimal>>,
    pub margin_loans: BTreeMap<String, Decimal>,
    pub open_orders: Vec<ScenarioOrder>,
    pub trades: Vec<ScenarioTrade>,
    pub withdrawals: Vec<ScenarioWithdrawal>,
    pub deposits: Vec<ScenarioDeposit>,
    pub transfers: Vec<ScenarioTransfer>,
    pub pay: Vec<ScenarioPay>,
    pub positions: Vec<ScenarioPosition>,
    pub drill_deletion: DrillDeletion,
    /// `drill: { secret: wrong }`: a drill hands respond a secret that does not belong to
    /// the leaked key (a mistake under stress: -1022 on every signed call).
    pub drill_wrong_secret: bool,
    pub attacker: Option<ScenarioAttacker>,
    /// The address the simulator takes every outside caller (respond, other clients)
    /// to come from, for IP whitelists: a drill can put the responder outside a key's
    /// whitelist while the scenario's attacker acts from inside it. None: the real peer.
    pub client_ip: Option<IpAddr>,
    /// The master account and its sub-accounts, when the scenario has them.
    pub accounts: Option<Accounts>,
    /// Where a drill creates its responder key.
    pub drill_responder: DrillResponder,
}

/// A master account and its sub-accounts.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub master: String,
    pub sub_accounts: Vec<SubAccount>,
    pub transfers: Vec<SubAccountTransfer>,
}

/// Money moved between the master and its sub-accounts.
#[derive(Debug, Clone)]
pub struct SubAccountTransfer {
    /// `spot`, `universal`, `usdm` or `coinm`.
    pub kind: String,
    pub from: String,
    pub to: String,
    pub asset: String,
    pub amount: Decimal,
    pub time: When,
}

#[derive(Debug, Clone)]
pub struct SubAccount {
    pub email: String,
    pub asset_management: bool,
}

/// Where a drill creates its responder key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DrillResponder {
    /// On the master account, with trading permission (it may delete sub-account keys);
    /// a read-only key on the only account when the scenario has no sub-accounts.
    #[default]
    Master,
    /// A read-only key on the leaked key's own account.
    SameAccount,
}

/// A point in time: relative to server start, or absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Milliseconds relative to server start (negative: before).
    Relative(i64),
    /// Milliseconds since the Unix epoch.
    Absolute(i64),
}

impl When {
    pub fn at(self, start_ms: i64) -> i64 {
        match self {
            When::Relative(offset) => start_ms + offset,
            When::Absolute(ms) => ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    pub reading: bool,
    pub spot: bool,
    pub margin: bool,
    pub futures: bool,
    pub withdrawals: bool,
    /// European options (`enableVanillaOptions`).
    pub options: bool,
    /// Portfolio margin trading (`enablePortfolioMarginTrading`).
    pub portfolio_margin: bool,
}

impl Permissions {
    pub const NAMES: [&'static str; 7] = [
        "reading",
        "spot",
        "margin",
        "futures",
        "withdrawals",
        "options",
        "portfolio_margin",
    ];

    pub fn read_only() -> Self {
        Permissions {
            reading: true,
            ..Permissions::default()
        }
    }

    pub fn names(&self) -> Vec<&'static str> {
        let flags = [
            self.reading,
            self.spot,
            self.margin,
            self.futures,
            self.withdrawals,
            self.options,
            self.portfolio_margin,
        ];
        Self::NAMES
            .iter()
            .zip(flags)
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect()
    }

    /// Whether this key may place or cancel orders on `market`. Binance has one switch
    /// for spot and cross-margin orders ("Enable Spot & Margin Trading"); `margin` is
    /// margin loans ("Enable Margin Loan, Repay & Transfer").
    pub fn can_trade(&self, market: Market) -> bool {
        match market {
            Market::Spot | Market::Margin => self.spot,
            Market::Usdm | Market::Coinm => self.futures,
        }
    }
}

/// A key as the scenario declares it. Debug never prints the secret.
#[derive(Clone)]
pub struct ScenarioKey {
    pub label: String,
    pub api_key: String,
    /// The HMAC secret; empty for an Ed25519 or RSA key.
    pub secret: String,
    /// How the simulator checks this key's signatures.
    pub verifier: crate::auth::Verifier,
    /// An Ed25519 or RSA key's private key (PEM), for the drill only.
    pub private_key: Option<String>,
    pub permissions: Permissions,
    pub ip_whitelist: Vec<IpAddr>,
    pub created: When,
    /// The account's email (None: the master account, or the only account).
    pub account: Option<String>,
}

impl std::fmt::Debug for ScenarioKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScenarioKey")
            .field("label", &self.label)
            .field("api_key", &crate::types::mask(&self.api_key))
            .field("secret", &"<hidden>")
            .field("verifier", &self.verifier)
            .field("permissions", &self.permissions)
            .field("ip_whitelist", &self.ip_whitelist)
            .field("created", &self.created)
            .field("account", &self.account)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct ScenarioSymbol {
    pub market: Market,
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub price: Decimal,
    pub contract_size: u32,
    /// Thinly traded: its candles' volume is small, so one account's trade can be most
    /// of a minute's volume.
    pub thin: bool,
    /// As spot `exchangeInfo` lists it: `TRADING`, or `BREAK`/`HALT` (delisted or halted
    /// pairs keep the account's history).
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct ScenarioOrder {
    pub market: Market,
    pub symbol: String,
    pub side: String,
    pub order_type: String,
    pub price: Decimal,
    pub stop_price: Decimal,
    pub quantity: Decimal,
    pub time: When,
    pub client_order_id: Option<String>,
    pub time_in_force: String,
    pub isolated: bool,
    pub position_side: String,
}

#[derive(Debug, Clone)]
pub struct ScenarioTrade {
    pub market: Market,
    pub symbol: String,
    pub side: String,
    pub price: Decimal,
    pub quantity: Decimal,
    pub time: When,
    pub market_price: Option<Decimal>,
    pub maker: bool,
    pub commission: Option<Decimal>,
    pub commission_asset: Option<String>,
    pub realized_pnl: Decimal,
}

#[derive(Debug, Clone)]
pub struct ScenarioWithdrawal {
    pub id: Option<String>,
    pub coin: String,
    pub network: String,
    pub address: String,
    pub amount: Decimal,
    pub fee: Decimal,
    /// Binance's integer status (0 email sent … 6 completed).
    pub status: u8,
    pub tx_id: String,
    pub time: When,
}

#[derive(Debug, Clone)]
pub struct ScenarioDeposit {
    pub id: Option<String>,
    pub coin: String,
    pub network: String,
    pub address: String,
    pub amount: Decimal,
    /// Binance's integer status (0 pending, 1 success, ...).
    pub status: u8,
    pub tx_id: String,
    pub time: When,
}

#[derive(Debug, Clone)]
pub struct ScenarioTransfer {
    pub transfer_type: String,
    pub asset: String,
    pub amount: Decimal,
    pub time: When,
}

#[derive(Debug, Clone)]
pub struct ScenarioPay {
    pub asset: String,
    pub amount: Decimal,
    pub counterparty: String,
    pub counterparty_name: Option<String>,
    pub order_type: String,
    pub time: When,
}

#[derive(Debug, Clone)]
pub struct ScenarioPosition {
    pub market: Market,
    pub symbol: String,
    pub amount: Decimal,
    pub entry_price: Decimal,
    pub leverage: u32,
}

/// What the drill's "delete the key" does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DrillDeletion {
    /// Deletes the key the operator named.
    #[default]
    Correct,
    /// Deletes another key: the leaked one stays alive (the classic mistake under stress).
    WrongKey,
}

#[derive(Debug, Clone)]
pub struct ScenarioAttacker {
    /// Index into `keys`.
    pub key: usize,
    pub every: Duration,
    pub order: AttackerOrder,
}

#[derive(Debug, Clone)]
pub struct AttackerOrder {
    pub market: Market,
    pub symbol: String,
    pub side: String,
    pub order_type: String,
    pub price: Decimal,
    pub stop_price: Decimal,
    pub quantity: Decimal,
}

impl Scenario {
    /// Read and validate a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, SimError> {
        // A bare built-in name (`--scenario subaccount-leak.yaml`) works from any directory.
        if !path.exists() && path.parent().is_none_or(|p| p.as_os_str().is_empty()) {
            let builtin = match path.to_str() {
                Some("leaked-key.yaml") => Some(BUILTIN_LEAKED_KEY),
                Some("read-only.yaml") => Some(BUILTIN_READ_ONLY),
                Some("subaccount-leak.yaml") => Some(BUILTIN_SUBACCOUNT_LEAK),
                _ => None,
            };
            if let Some(text) = builtin {
                let file = format!("playbooks/scenarios/{}", path.display());
                return Scenario::parse(text, &file).map_err(SimError::Invalid);
            }
        }
        let text = std::fs::read_to_string(path).map_err(|source| SimError::ReadScenario {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::parse(&text, &path.display().to_string()).map_err(SimError::Invalid)
    }

    /// Parse and validate scenario text; `file` names it in diagnostics.
    pub fn parse(text: &str, file: &str) -> Result<Scenario, Diagnostics> {
        let options = respond_diagnostic::yaml::options();
        let raw: raw::RawScenario =
            serde_saphyr::from_str_with_options(text, options).map_err(|err| {
                let (line, column) = err
                    .location()
                    .map(|l| (l.line() as usize, l.column() as usize))
                    .unwrap_or((0, 0));
                let plain = err.render_with_options(serde_saphyr::render_options! {
                    snippets: serde_saphyr::SnippetMode::Off
                });
                // The plain rendering appends " at line L, column C"; the position is ours to print.
                let message = match plain.rfind(" at line ") {
                    Some(i) => plain[..i].to_string(),
                    None => plain,
                };
                let message = respond_diagnostic::yaml::friendly(message);
                Diagnostics(vec![Diagnostic::new(file, line, column, message)])
            })?;
        validate::validate(raw, file)
    }

    /// The built-in `leaked-key` scenario.
    pub fn builtin_leaked_key() -> Scenario {
        Scenario::parse(BUILTIN_LEAKED_KEY, "playbooks/scenarios/leaked-key.yaml")
            .expect("the built-in leaked-key scenario is valid (unit-tested)")
    }

    /// The built-in `read-only` scenario.
    pub fn builtin_read_only() -> Scenario {
        Scenario::parse(BUILTIN_READ_ONLY, "playbooks/scenarios/read-only.yaml")
            .expect("the built-in read-only scenario is valid (unit-tested)")
    }

    /// The key a drill treats as leaked: the attacker's key, else the first key.
    pub fn leaked_key_index(&self) -> usize {
        self.attacker.as_ref().map_or(0, |a| a.key)
    }

    pub fn symbol(&self, market: Market, symbol: &str) -> Option<&ScenarioSymbol> {
        self.symbols
            .iter()
            .find(|s| s.market == market && s.symbol == symbol)
    }
}

#[cfg(test)]
mod tests;
