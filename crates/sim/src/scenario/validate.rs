//! Semantic checks on a parsed scenario, collected all at once, each with its position.
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_saphyr::Spanned;

use super::raw::{self, RawScenario, S};
use super::*;
use crate::auth::well_formed_key;
use crate::auth::Verifier;
use respond_diagnostic::{Diagnostic, Diagnostics};

/// Largest amount, price or balance a scenario may give (in absolute value): a trillion.
/// Products of two stay far inside `Decimal`'s range (about 7.9e28).
const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// Collects diagnostics for one file.
struct Check<'a> {
    file: &'a str,
    diags: Diagnostics,
}

/// Sign requirement for a decimal field.
#[derive(Clone, Copy)]
enum Sign {
    Positive,
    NonNegative,
    NonZero,
    Any,
}

impl Check<'_> {
    fn err<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(
            self.file,
            at.referenced.line() as usize,
            at.referenced.column() as usize,
            message,
        ));
    }

    fn decimal(&mut self, s: &S, what: &str, sign: Sign) -> Decimal {
        let text = s.value.trim();
        let Ok(d) = text.parse::<Decimal>() else {
            self.err(
                s,
                format!(
                    "{what} {text:?} is not a decimal number (write it as a string, e.g. \"0.42\")"
                ),
            );
            return Decimal::ZERO;
        };
        if d.abs() > Decimal::from(MAX_AMOUNT) {
            // The simulator multiplies amounts by prices (order value, locked funds);
            // past this bound the product leaves Decimal's range and a handler panics.
            self.err(
                s,
                format!("{what} {text} is too large: at most {MAX_AMOUNT}"),
            );
            return Decimal::ZERO;
        }
        let ok = match sign {
            Sign::Positive => d > Decimal::ZERO,
            Sign::NonNegative => d >= Decimal::ZERO,
            Sign::NonZero => !d.is_zero(),
            Sign::Any => true,
        };
        if !ok {
            let need = match sign {
                Sign::Positive => "greater than 0",
                Sign::NonNegative => "0 or more",
                Sign::NonZero => "not 0",
                Sign::Any => "",
            };
            self.err(s, format!("{what} {text} must be {need}"));
        }
        d.normalize()
    }

    fn opt_decimal(&mut self, s: &Option<S>, what: &str, sign: Sign) -> Option<Decimal> {
        s.as_ref().map(|s| self.decimal(s, what, sign))
    }

    fn when(&mut self, s: &S, what: &str) -> When {
        match parse_when(&s.value) {
            Ok(w) => w,
            Err(e) => {
                self.err(s, format!("{what} {:?}: {e}", s.value));
                When::Relative(0)
            }
        }
    }

    fn market(&mut self, s: &S) -> Option<Market> {
        let m = Market::parse(s.value.trim());
        if m.is_none() {
            self.err(
                s,
                format!(
                    "unknown market {:?} (expected spot, margin, usdm or coinm)",
                    s.value
                ),
            );
        }
        m
    }

    fn one_of(&mut self, s: &S, what: &str, allowed: &[&str]) -> String {
        let v = s.value.trim();
        if !allowed.contains(&v) {
            self.err(
                s,
                format!(
                    "unknown {what} {v:?} (expected one of {})",
                    allowed.join(", ")
                ),
            );
        }
        v.to_string()
    }

    fn non_empty(&mut self, s: &S, what: &str) -> String {
        let v = s.value.trim();
        if v.is_empty() {
            self.err(s, format!("{what} must not be empty"));
        }
        v.to_string()
    }
}

/// `-3h`, `-2d`, `-30m`, `-1h30m`, `now`, or an RFC 3339 instant.
pub fn parse_when(text: &str) -> Result<When, String> {
    let t = text.trim();
    if t == "now" || t == "0" {
        return Ok(When::Relative(0));
    }
    if let Some(rest) = t.strip_prefix('-') {
        return humantime::parse_duration(rest)
            .map(|d| When::Relative(-(d.as_millis() as i64)))
            .map_err(|_| "expected a time like -3h, -30m, -2d or an RFC 3339 instant".into());
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|dt| When::Absolute(dt.timestamp_millis()))
        .map_err(|_| {
            if humantime::parse_duration(t).is_ok() {
                "times are in the past: write -DURATION (e.g. -3h), relative to server start".into()
            } else {
                "expected a time like -3h, -30m, -2d or an RFC 3339 instant".into()
            }
        })
}

const SIDES: [&str; 2] = ["BUY", "SELL"];
const WITHDRAW_STATUSES: [(&str, u8); 7] = [
    ("email-sent", 0),
    ("cancelled", 1),
    ("awaiting-approval", 2),
    ("rejected", 3),
    ("processing", 4),
    ("failure", 5),
    ("completed", 6),
];
const DEPOSIT_STATUSES: [(&str, u8); 6] = [
    ("pending", 0),
    ("success", 1),
    ("rejected", 2),
    ("credited", 6),
    ("wrong-deposit", 7),
    ("waiting-user-confirm", 8),
];
/// Universal transfer types Binance documents.
pub const TRANSFER_TYPES: [&str; 22] = [
    "MAIN_UMFUTURE",
    "MAIN_CMFUTURE",
    "MAIN_MARGIN",
    "UMFUTURE_MAIN",
    "UMFUTURE_MARGIN",
    "CMFUTURE_MAIN",
    "CMFUTURE_MARGIN",
    "MARGIN_MAIN",
    "MARGIN_UMFUTURE",
    "MARGIN_CMFUTURE",
    "ISOLATEDMARGIN_MARGIN",
    "MARGIN_ISOLATEDMARGIN",
    "ISOLATEDMARGIN_ISOLATEDMARGIN",
    "MAIN_FUNDING",
    "FUNDING_MAIN",
    "FUNDING_UMFUTURE",
    "UMFUTURE_FUNDING",
    "MARGIN_FUNDING",
    "FUNDING_MARGIN",
    "FUNDING_CMFUTURE",
    "CMFUTURE_FUNDING",
    "MAIN_OPTION",
];
const PAY_ORDER_TYPES: [&str; 9] = [
    "PAY",
    "PAY_REFUND",
    "C2C",
    "CRYPTO_BOX",
    "CRYPTO_BOX_RF",
    "C2C_HOLDING",
    "C2C_HOLDING_RF",
    "PAYOUT",
    "REMITTANCE",
];
const TIME_IN_FORCE: [&str; 4] = ["GTC", "IOC", "FOK", "GTX"];
const POSITION_SIDES: [&str; 3] = ["BOTH", "LONG", "SHORT"];

/// Whether an order type needs a limit price / a stop price.
pub fn needs_price(order_type: &str) -> bool {
    matches!(
        order_type,
        "LIMIT" | "STOP_LOSS_LIMIT" | "TAKE_PROFIT_LIMIT" | "LIMIT_MAKER" | "STOP" | "TAKE_PROFIT"
    )
}

pub fn needs_stop_price(order_type: &str) -> bool {
    matches!(
        order_type,
        "STOP_LOSS"
            | "STOP_LOSS_LIMIT"
            | "TAKE_PROFIT"
            | "TAKE_PROFIT_LIMIT"
            | "STOP"
            | "STOP_MARKET"
            | "TAKE_PROFIT_MARKET"
    )
}

/// Fields an order and the attacker's order share.
struct OrderCore<'a> {
    market: &'a S,
    symbol: &'a S,
    side: &'a S,
    order_type: &'a S,
    price: &'a Option<S>,
    stop_price: &'a Option<S>,
    quantity: &'a S,
}

struct CheckedOrder {
    market: Market,
    symbol: String,
    side: String,
    order_type: String,
    price: Decimal,
    stop_price: Decimal,
    quantity: Decimal,
}

/// `OrderCore` of a raw order or the attacker's order (both have the same fields).
macro_rules! order_core {
    ($o:expr) => {
        OrderCore {
            market: &$o.market,
            symbol: &$o.symbol,
            side: &$o.side,
            order_type: &$o.order_type,
            price: &$o.price,
            stop_price: &$o.stop_price,
            quantity: &$o.quantity,
        }
    };
}

pub(super) fn validate(raw: RawScenario, file: &str) -> Result<Scenario, Diagnostics> {
    let mut c = Check {
        file,
        diags: Diagnostics::default(),
    };

    if raw.version.value != 1 {
        c.err(
            &raw.version,
            format!(
                "unsupported scenario version {} (this respond reads version 1)",
                raw.version.value
            ),
        );
    }
    let name = c.non_empty(&raw.name, "name");
    let keys = c.keys(&raw);
    let symbols = c.symbols(&raw);
    let (balances, margin_loans) = c.balances(&raw);
    let open_orders = c.open_orders(&raw.open_orders, &symbols);
    let trades = c.trades(&raw.trades, &symbols);
    let (withdrawals, deposits) = c.withdrawals_and_deposits(&raw);
    let (transfers, pay) = c.transfers_and_pay(&raw);
    let positions = c.positions(&raw.positions, &symbols);
    let drill = c.drill(raw.drill.as_ref(), &keys);
    let accounts = raw.accounts.as_ref().map(|a| c.accounts(a));
    let attacker = raw
        .attacker
        .as_ref()
        .and_then(|a| check_attacker(&mut c, a, &keys, &symbols));
    let client_ip = raw
        .client_ip
        .as_ref()
        .and_then(|ip| match ip.value.trim().parse::<IpAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                c.err(ip, format!("client_ip {:?} is not an IP address", ip.value));
                None
            }
        });

    if !c.diags.is_empty() {
        c.diags.sort();
        return Err(c.diags);
    }
    Ok(Scenario {
        name,
        description: raw.description.unwrap_or_default(),
        keys,
        symbols,
        balances,
        margin_loans,
        open_orders,
        trades,
        withdrawals,
        deposits,
        transfers,
        pay,
        positions,
        drill_deletion: drill.deletion,
        drill_wrong_secret: drill.wrong_secret,
        attacker,
        client_ip,
        accounts,
        drill_responder: drill.responder,
    })
}

/// The `drill:` section, checked.
struct CheckedDrill {
    deletion: DrillDeletion,
    wrong_secret: bool,
    responder: DrillResponder,
}

/// A market's balances per asset.
type Wallets = BTreeMap<Market, BTreeMap<String, Decimal>>;

impl Check<'_> {
    fn keys(&mut self, raw: &RawScenario) -> Vec<ScenarioKey> {
        if raw.keys.value.is_empty() {
            self.err(&raw.keys, "a scenario needs at least one key");
        }
        let mut keys = Vec::new();
        let mut labels = HashSet::new();
        let mut api_keys = HashSet::new();
        for k in &raw.keys.value {
            let label = self.non_empty(&k.label, "label");
            if !labels.insert(label.clone()) {
                self.err(&k.label, format!("duplicate key label {label:?}"));
            }
            let verifier = self.key_material(k);
            if !api_keys.insert(k.api_key.value.clone()) {
                self.err(&k.api_key, "duplicate api_key");
            }
            let permissions = self.permissions(&k.permissions.value);
            let mut ip_whitelist = Vec::new();
            for ip in &k.ip_whitelist {
                match ip.value.trim().parse::<IpAddr>() {
                    Ok(addr) => ip_whitelist.push(addr),
                    Err(_) => self.err(ip, format!("{:?} is not an IP address", ip.value)),
                }
            }
            let created = match &k.created {
                Some(s) => self.when(s, "created"),
                None => When::Relative(-30 * 86_400_000),
            };
            let account = k
                .account
                .as_ref()
                .and_then(|a| self.key_account(a, raw.accounts.as_ref()));
            keys.push(ScenarioKey {
                label,
                api_key: k.api_key.value.clone(),
                secret: k
                    .secret
                    .as_ref()
                    .map(|s| s.value.clone())
                    .unwrap_or_default(),
                verifier,
                private_key: k.private_key.as_ref().map(|s| s.value.clone()),
                permissions,
                ip_whitelist,
                created,
                account,
            });
        }
        keys
    }

    /// The key's api_key, secret or public key, and private key; how its signatures are
    /// checked.
    fn key_material(&mut self, k: &raw::RawKey) -> Verifier {
        let mut well_formed = vec![(&k.api_key, "api_key")];
        if let Some(secret) = &k.secret {
            well_formed.push((secret, "secret"));
        }
        for (s, what) in well_formed {
            if !well_formed_key(&s.value) {
                self.err(
                    s,
                    format!(
                        "{what} must be 64 letters and digits (got {} characters)",
                        s.value.len()
                    ),
                );
            }
        }
        // HMAC keys have a secret; Ed25519 and RSA keys a registered public key instead.
        let verifier = match (&k.secret, &k.public_key) {
            (Some(_), None) => Verifier::Hmac,
            (None, Some(pem)) => match Verifier::from_public_key_pem(&pem.value) {
                Ok(v) => v,
                Err(e) => {
                    self.err(pem, format!("public_key: {e}"));
                    Verifier::Hmac
                }
            },
            (Some(secret), Some(_)) => {
                self.err(
                    secret,
                    "a key has `secret` (HMAC) or `public_key` (Ed25519/RSA), not both",
                );
                Verifier::Hmac
            }
            (None, None) => {
                self.err(
                    &k.api_key,
                    "a key needs `secret` (HMAC) or `public_key` (Ed25519/RSA PEM)",
                );
                Verifier::Hmac
            }
        };
        if let Some(private) = &k.private_key {
            if k.public_key.is_none() {
                self.err(
                    private,
                    "`private_key` goes with `public_key` (Ed25519/RSA keys)",
                );
            } else if !respond_pem::looks_like_pem(&private.value) {
                self.err(private, "private_key: not a PEM block");
            }
        }
        verifier
    }

    fn permissions(&mut self, names: &[S]) -> Permissions {
        let mut permissions = Permissions::default();
        for p in names {
            match p.value.trim() {
                "reading" => permissions.reading = true,
                "spot" => permissions.spot = true,
                "margin" => permissions.margin = true,
                "futures" => permissions.futures = true,
                "withdrawals" => permissions.withdrawals = true,
                "options" => permissions.options = true,
                "portfolio_margin" => permissions.portfolio_margin = true,
                other => self.err(
                    p,
                    format!(
                        "unknown permission {other:?} (expected any of {})",
                        Permissions::NAMES.join(", ")
                    ),
                ),
            }
        }
        permissions
    }

    /// A key's `account:`: None for the master, the email of one of its sub-accounts.
    fn key_account(&mut self, a: &S, accounts: Option<&raw::RawAccounts>) -> Option<String> {
        let email = a.value.trim().to_string();
        match accounts {
            None => {
                self.err(a, "`account:` needs an `accounts:` section naming the master and its sub-accounts");
                None
            }
            Some(acc) if acc.master.value.trim() == email => None,
            Some(acc)
                if acc
                    .sub_accounts
                    .iter()
                    .any(|s| s.email.value.trim() == email) =>
            {
                Some(email)
            }
            Some(_) => {
                self.err(a, format!("unknown account {email:?} (not the master nor one of `accounts.sub_accounts`)"));
                None
            }
        }
    }

    fn symbols(&mut self, raw: &RawScenario) -> Vec<ScenarioSymbol> {
        let mut symbols: Vec<ScenarioSymbol> = Vec::new();
        for s in &raw.symbols {
            let market = self.market(&s.market);
            let symbol = self.non_empty(&s.symbol, "symbol").to_ascii_uppercase();
            let base = self.non_empty(&s.base, "base").to_ascii_uppercase();
            let quote = self.non_empty(&s.quote, "quote").to_ascii_uppercase();
            let price = self.decimal(&s.price, "price", Sign::Positive);
            if let Some(cs) = &s.contract_size {
                if cs.value == 0 {
                    self.err(cs, "contract_size must be at least 1");
                }
            }
            let Some(market) = market else { continue };
            if symbols
                .iter()
                .any(|x| x.market == market && x.symbol == symbol)
            {
                self.err(
                    &s.symbol,
                    format!("symbol {symbol} is declared twice for market {market}"),
                );
                continue;
            }
            let contract_size = s
                .contract_size
                .as_ref()
                .map(|c| c.value)
                .unwrap_or(if base == "BTC" { 100 } else { 10 });
            let status = match &s.status {
                None => "TRADING".to_string(),
                Some(st) => {
                    let v = st.value.trim().to_ascii_uppercase();
                    if !SYMBOL_STATUSES.contains(&v.as_str()) {
                        self.err(
                            st,
                            format!("status must be one of {}", SYMBOL_STATUSES.join(", ")),
                        );
                    }
                    v
                }
            };
            symbols.push(ScenarioSymbol {
                market,
                symbol,
                base,
                quote,
                price,
                contract_size,
                thin: s.thin,
                status,
            });
        }
        if let Some(n) = &raw.listed_spot_symbols {
            if n.value > MAX_LISTED {
                self.err(
                    n,
                    format!("listed_spot_symbols must be at most {MAX_LISTED}"),
                );
            } else {
                listed_spot_symbols(&mut symbols, n.value as usize);
            }
        }
        symbols
    }

    /// Whether `s` names no symbol declared for `market` (and says so).
    fn unknown_symbol(&mut self, symbols: &[ScenarioSymbol], market: Market, s: &S) -> bool {
        let symbol = s.value.trim().to_ascii_uppercase();
        if symbols
            .iter()
            .any(|x| x.market == market && x.symbol == symbol)
        {
            return false;
        }
        self.err(
            s,
            format!("symbol {symbol} is not declared for market {market} under `symbols:`"),
        );
        true
    }

    /// Balances per market, and cross-margin loans.
    fn balances(&mut self, raw: &RawScenario) -> (Wallets, BTreeMap<String, Decimal>) {
        let mut balances = BTreeMap::new();
        for (market, map) in [
            (Market::Spot, &raw.balances.spot),
            (Market::Margin, &raw.balances.margin),
            (Market::Usdm, &raw.balances.usdm),
            (Market::Coinm, &raw.balances.coinm),
        ] {
            let mut wallet = BTreeMap::new();
            for (asset, amount) in map {
                let d = self.decimal(amount, &format!("balance of {asset}"), Sign::NonNegative);
                wallet.insert(asset.to_ascii_uppercase(), d);
            }
            balances.insert(market, wallet);
        }
        let mut margin_loans = BTreeMap::new();
        for (asset, amount) in &raw.margin_loans {
            let d = self.decimal(amount, &format!("loan of {asset}"), Sign::NonNegative);
            margin_loans.insert(asset.to_ascii_uppercase(), d);
        }
        (balances, margin_loans)
    }

    /// What an open order and the attacker's order share: market, side, type, prices.
    fn order(&mut self, symbols: &[ScenarioSymbol], o: OrderCore) -> Option<CheckedOrder> {
        let market = self.market(o.market);
        let side = self.one_of(o.side, "side", &SIDES);
        let quantity = self.decimal(o.quantity, "quantity", Sign::Positive);
        let price = self.opt_decimal(o.price, "price", Sign::Positive);
        let stop_price = self.opt_decimal(o.stop_price, "stop_price", Sign::Positive);
        let market = market?;
        let order_type = self.one_of(o.order_type, "order type", market.order_types());
        if self.unknown_symbol(symbols, market, o.symbol) {
            return None;
        }
        if needs_price(&order_type) && price.is_none() {
            self.err(o.order_type, format!("a {order_type} order needs a price"));
        }
        if needs_stop_price(&order_type) && stop_price.is_none() {
            self.err(
                o.order_type,
                format!("a {order_type} order needs a stop_price"),
            );
        }
        Some(CheckedOrder {
            market,
            symbol: o.symbol.value.trim().to_ascii_uppercase(),
            side,
            order_type,
            price: price.unwrap_or_default(),
            stop_price: stop_price.unwrap_or_default(),
            quantity,
        })
    }

    fn open_orders(
        &mut self,
        raw: &[raw::RawOrder],
        symbols: &[ScenarioSymbol],
    ) -> Vec<ScenarioOrder> {
        let mut open_orders = Vec::new();
        for o in raw {
            let time = self.when(&o.time, "time");
            let checked = self.order(symbols, order_core!(o));
            let time_in_force = match &o.time_in_force {
                Some(s) => self.one_of(s, "time_in_force", &TIME_IN_FORCE),
                None => "GTC".to_string(),
            };
            let position_side = match &o.position_side {
                Some(s) => self.one_of(s, "position_side", &POSITION_SIDES),
                None => "BOTH".to_string(),
            };
            let Some(o2) = checked else { continue };
            if o2.order_type == "MARKET" {
                self.err(
                    &o.order_type,
                    "a MARKET order fills at once: it cannot be open",
                );
            }
            if o.isolated == Some(true) && o2.market != Market::Margin {
                self.err(&o.market, "`isolated` applies to margin orders only");
            }
            if o.position_side.is_some() && !o2.market.is_futures() {
                self.err(
                    &o.market,
                    "`position_side` applies to usdm and coinm orders only",
                );
            }
            open_orders.push(ScenarioOrder {
                market: o2.market,
                symbol: o2.symbol,
                side: o2.side,
                order_type: o2.order_type,
                price: o2.price,
                stop_price: o2.stop_price,
                quantity: o2.quantity,
                time,
                client_order_id: o.client_order_id.as_ref().map(|s| s.value.clone()),
                time_in_force,
                isolated: o.isolated.unwrap_or(false),
                position_side,
            });
        }
        open_orders
    }

    fn trades(&mut self, raw: &[raw::RawTrade], symbols: &[ScenarioSymbol]) -> Vec<ScenarioTrade> {
        let mut trades = Vec::new();
        for t in raw {
            let market = self.market(&t.market);
            let side = self.one_of(&t.side, "side", &SIDES);
            let price = self.decimal(&t.price, "price", Sign::Positive);
            let quantity = self.decimal(&t.quantity, "quantity", Sign::Positive);
            let time = self.when(&t.time, "time");
            let market_price = self.opt_decimal(&t.market_price, "market_price", Sign::Positive);
            let commission = self.opt_decimal(&t.commission, "commission", Sign::NonNegative);
            let realized_pnl = self
                .opt_decimal(&t.realized_pnl, "realized_pnl", Sign::Any)
                .unwrap_or_default();
            let Some(market) = market else { continue };
            if self.unknown_symbol(symbols, market, &t.symbol) {
                continue;
            }
            trades.push(ScenarioTrade {
                market,
                symbol: t.symbol.value.trim().to_ascii_uppercase(),
                side,
                price,
                quantity,
                time,
                market_price,
                maker: t.maker.unwrap_or(false),
                commission,
                commission_asset: t
                    .commission_asset
                    .as_ref()
                    .map(|s| s.value.trim().to_ascii_uppercase()),
                realized_pnl,
            });
        }
        trades
    }

    /// A withdrawal's or deposit's status by name, as Binance's number.
    fn status(&mut self, s: &S, table: &[(&str, u8)], what: &str) -> u8 {
        match table.iter().find(|(n, _)| *n == s.value.trim()) {
            Some((_, code)) => *code,
            None => {
                let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
                self.err(
                    s,
                    format!(
                        "unknown {what} status {:?} (expected one of {})",
                        s.value,
                        names.join(", ")
                    ),
                );
                0
            }
        }
    }

    fn withdrawals_and_deposits(
        &mut self,
        raw: &RawScenario,
    ) -> (Vec<ScenarioWithdrawal>, Vec<ScenarioDeposit>) {
        let mut withdrawals = Vec::new();
        for w in &raw.withdrawals {
            withdrawals.push(ScenarioWithdrawal {
                id: w.id.as_ref().map(|s| s.value.clone()),
                coin: self.non_empty(&w.coin, "coin").to_ascii_uppercase(),
                network: self.non_empty(&w.network, "network").to_ascii_uppercase(),
                address: self.non_empty(&w.address, "address"),
                amount: self.decimal(&w.amount, "amount", Sign::Positive),
                fee: self
                    .opt_decimal(&w.fee, "fee", Sign::NonNegative)
                    .unwrap_or_default(),
                status: self.status(&w.status, &WITHDRAW_STATUSES, "withdrawal"),
                tx_id: w
                    .tx_id
                    .as_ref()
                    .map(|s| s.value.clone())
                    .unwrap_or_default(),
                time: self.when(&w.time, "time"),
            });
        }
        let mut deposits = Vec::new();
        for d in &raw.deposits {
            deposits.push(ScenarioDeposit {
                id: d.id.as_ref().map(|s| s.value.clone()),
                coin: self.non_empty(&d.coin, "coin").to_ascii_uppercase(),
                network: self.non_empty(&d.network, "network").to_ascii_uppercase(),
                address: self.non_empty(&d.address, "address"),
                amount: self.decimal(&d.amount, "amount", Sign::Positive),
                status: self.status(&d.status, &DEPOSIT_STATUSES, "deposit"),
                tx_id: d
                    .tx_id
                    .as_ref()
                    .map(|s| s.value.clone())
                    .unwrap_or_default(),
                time: self.when(&d.time, "time"),
            });
        }
        (withdrawals, deposits)
    }

    fn transfers_and_pay(
        &mut self,
        raw: &RawScenario,
    ) -> (Vec<ScenarioTransfer>, Vec<ScenarioPay>) {
        let mut transfers = Vec::new();
        for t in &raw.transfers {
            transfers.push(ScenarioTransfer {
                transfer_type: self.one_of(&t.transfer_type, "transfer type", &TRANSFER_TYPES),
                asset: self.non_empty(&t.asset, "asset").to_ascii_uppercase(),
                amount: self.decimal(&t.amount, "amount", Sign::Positive),
                time: self.when(&t.time, "time"),
            });
        }
        let mut pay = Vec::new();
        for p in &raw.pay {
            pay.push(ScenarioPay {
                asset: self.non_empty(&p.asset, "asset").to_ascii_uppercase(),
                amount: self.decimal(&p.amount, "amount", Sign::NonZero),
                counterparty: self.non_empty(&p.counterparty, "counterparty"),
                counterparty_name: p.counterparty_name.as_ref().map(|s| s.value.clone()),
                order_type: match &p.order_type {
                    Some(s) => self.one_of(s, "order_type", &PAY_ORDER_TYPES),
                    None => "C2C".to_string(),
                },
                time: self.when(&p.time, "time"),
            });
        }
        (transfers, pay)
    }

    fn positions(
        &mut self,
        raw: &[raw::RawPosition],
        symbols: &[ScenarioSymbol],
    ) -> Vec<ScenarioPosition> {
        let mut positions = Vec::new();
        for p in raw {
            let market = self.market(&p.market);
            let amount = self.decimal(&p.amount, "amount", Sign::NonZero);
            let entry_price = self.decimal(&p.entry_price, "entry_price", Sign::Positive);
            if let Some(l) = &p.leverage {
                if !(1..=125).contains(&l.value) {
                    self.err(l, "leverage must be between 1 and 125");
                }
            }
            let Some(market) = market else { continue };
            if !market.is_futures() {
                self.err(&p.market, "positions exist on usdm and coinm only");
                continue;
            }
            if self.unknown_symbol(symbols, market, &p.symbol) {
                continue;
            }
            positions.push(ScenarioPosition {
                market,
                symbol: p.symbol.value.trim().to_ascii_uppercase(),
                amount,
                entry_price,
                leverage: p.leverage.as_ref().map_or(10, |l| l.value),
            });
        }
        positions
    }

    fn drill(&mut self, drill: Option<&raw::RawDrill>, keys: &[ScenarioKey]) -> CheckedDrill {
        let deletion = match drill.and_then(|d| d.deletion.as_ref()) {
            None => DrillDeletion::Correct,
            Some(deletion) => match deletion.value.trim() {
                "correct" => DrillDeletion::Correct,
                "wrong-key" => {
                    if keys.len() < 2 {
                        self.err(
                            deletion,
                            "`deletion: wrong-key` needs a second key for the drill to delete by mistake",
                        );
                    }
                    DrillDeletion::WrongKey
                }
                other => {
                    self.err(
                        deletion,
                        format!("unknown deletion {other:?} (expected correct or wrong-key)"),
                    );
                    DrillDeletion::Correct
                }
            },
        };
        let wrong_secret = match drill.and_then(|d| d.secret.as_ref()) {
            None => false,
            Some(secret) => match secret.value.trim() {
                "right" => false,
                "wrong" => true,
                other => {
                    self.err(
                        secret,
                        format!("unknown secret {other:?} (expected right or wrong)"),
                    );
                    false
                }
            },
        };
        let responder = match drill.and_then(|d| d.responder.as_ref()) {
            None => DrillResponder::Master,
            Some(r) => match r.value.trim() {
                "master" => DrillResponder::Master,
                "same-account" => DrillResponder::SameAccount,
                other => {
                    self.err(
                        r,
                        format!("unknown responder {other:?} (expected master or same-account)"),
                    );
                    DrillResponder::Master
                }
            },
        };
        CheckedDrill {
            deletion,
            wrong_secret,
            responder,
        }
    }

    fn accounts(&mut self, a: &raw::RawAccounts) -> Accounts {
        let master = self.non_empty(&a.master, "master");
        let mut emails = HashSet::new();
        emails.insert(master.clone());
        let sub_accounts = a
            .sub_accounts
            .iter()
            .map(|s| {
                let email = self.non_empty(&s.email, "email");
                if !emails.insert(email.clone()) {
                    self.err(&s.email, format!("duplicate account {email:?}"));
                }
                SubAccount {
                    email,
                    asset_management: s.asset_management,
                }
            })
            .collect();
        let transfers = a
            .transfers
            .iter()
            .map(|t| {
                for side in [&t.from, &t.to] {
                    if !emails.contains(side.value.trim()) {
                        self.err(
                            side,
                            format!(
                                "unknown account {:?} (not the master nor one of `sub_accounts`)",
                                side.value.trim()
                            ),
                        );
                    }
                }
                SubAccountTransfer {
                    kind: self.one_of(&t.kind, "type", &["spot", "universal", "usdm", "coinm"]),
                    from: t.from.value.trim().to_string(),
                    to: t.to.value.trim().to_string(),
                    asset: self.non_empty(&t.asset, "asset"),
                    amount: self.decimal(&t.amount, "amount", Sign::Positive),
                    time: self.when(&t.time, "time"),
                }
            })
            .collect();
        Accounts {
            master,
            sub_accounts,
            transfers,
        }
    }
}

fn check_attacker(
    c: &mut Check,
    a: &raw::RawAttacker,
    keys: &[ScenarioKey],
    symbols: &[ScenarioSymbol],
) -> Option<ScenarioAttacker> {
    let key = keys
        .iter()
        .position(|k| k.label == a.key.value.trim() || k.api_key == a.key.value.trim());
    if key.is_none() {
        c.err(
            &a.key,
            format!(
                "attacker key {:?} is not a key label or api_key above",
                a.key.value
            ),
        );
    }
    let every = match humantime::parse_duration(a.every.value.trim()) {
        Ok(d) if d >= Duration::from_millis(50) => Some(d),
        Ok(_) => {
            c.err(&a.every, "attacker `every` must be at least 50ms");
            None
        }
        Err(_) => {
            c.err(
                &a.every,
                format!("{:?} is not a duration (e.g. 5s, 500ms)", a.every.value),
            );
            None
        }
    };
    let o = &a.order;
    let order = c.order(symbols, order_core!(o));
    if let (Some(k), Some(order)) = (key, &order) {
        if order.order_type == "MARKET" {
            c.err(
                &o.order_type,
                "the attacker places resting orders: not MARKET",
            );
        }
        if !keys[k].permissions.can_trade(order.market) {
            c.err(
                &o.market,
                format!(
                    "the attacker's key {:?} has no permission to trade {}",
                    keys[k].label, order.market
                ),
            );
        }
    }
    let order = order?;
    Some(ScenarioAttacker {
        key: key?,
        every: every?,
        order: AttackerOrder {
            market: order.market,
            symbol: order.symbol,
            side: order.side,
            order_type: order.order_type,
            price: order.price,
            stop_price: order.stop_price,
            quantity: order.quantity,
        },
    })
}

/// Statuses spot `exchangeInfo` lists a symbol with.
const SYMBOL_STATUSES: &[&str] = &[
    "TRADING",
    "BREAK",
    "HALT",
    "END_OF_DAY",
    "PRE_TRADING",
    "POST_TRADING",
    "AUCTION_MATCH",
];

/// Binance lists some 1,500 spot symbols; more than that is a mistake.
const MAX_LISTED: u32 = 5_000;

/// `listed_spot_symbols: N`: N more spot symbols (`QAAUSDT`, `QABBTC`, ...), named so
/// they cannot clash with a real one, none with the account's history; every tenth is
/// in `BREAK` (delisted), as a real listing has some.
fn listed_spot_symbols(symbols: &mut Vec<ScenarioSymbol>, n: usize) {
    const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut made = 0;
    for i in 0.. {
        if made == n {
            break;
        }
        let a = LETTERS[(i / 26) % 26] as char;
        let b = LETTERS[i % 26] as char;
        let tail = if i >= 676 {
            format!("{}", i / 676)
        } else {
            String::new()
        };
        let base = format!("Q{a}{b}{tail}");
        let quote = if i % 2 == 0 { "USDT" } else { "BTC" };
        let symbol = format!("{base}{quote}");
        if symbols
            .iter()
            .any(|s| s.market == Market::Spot && s.symbol == symbol)
        {
            continue;
        }
        let price = if quote == "USDT" {
            Decimal::new(125 + (i as i64 % 97) * 10, 2)
        } else {
            Decimal::new(21 + (i as i64 % 53), 7)
        };
        symbols.push(ScenarioSymbol {
            market: Market::Spot,
            symbol,
            base,
            quote: quote.to_string(),
            price,
            contract_size: 10,
            thin: true,
            status: if i % 10 == 9 { "BREAK" } else { "TRADING" }.to_string(),
        });
        made += 1;
    }
}
