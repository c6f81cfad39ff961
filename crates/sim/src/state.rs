//! What the scenario becomes at run time: keys that can be deleted, orders that really
//! disappear when cancelled, trades and wallet history the evidence steps read.
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;

use rust_decimal::Decimal;
use serde::Serialize;

use super::auth::Verifier;
use super::scenario::{Accounts, DrillDeletion, Permissions, Scenario, ScenarioSymbol};
use super::types::{mask, ApiError, Market};
use super::SimError;

/// A live key. Debug never prints the secret.
#[derive(Clone)]
pub struct Key {
    pub label: String,
    pub api_key: String,
    /// The HMAC secret; empty for an Ed25519 or RSA key.
    pub secret: String,
    /// How its signatures are checked (HMAC, or the registered public key).
    pub verifier: Verifier,
    /// An Ed25519 or RSA key's private key (PEM), from the scenario, for the drill to
    /// sign with; the simulator itself never uses it.
    pub private_key: Option<String>,
    pub permissions: Permissions,
    pub ip_whitelist: Vec<IpAddr>,
    pub created_ms: i64,
    pub deleted: bool,
    pub responder: bool,
    /// The sub-account (email) the key belongs to; None: the master (or only) account.
    pub account: Option<String>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("label", &self.label)
            .field("api_key", &mask(&self.api_key))
            .field("secret", &"<hidden>")
            .field("verifier", &self.verifier)
            .field("permissions", &self.permissions)
            .field("deleted", &self.deleted)
            .field("responder", &self.responder)
            .field("account", &self.account)
            .finish()
    }
}

/// An API key and its secret, for the leaked key and responder keys handed to a drill.
/// Debug never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub label: String,
    pub api_key: String,
    /// The HMAC secret; empty for an Ed25519 or RSA key (see
    /// [`State::leaked_private_key`]).
    pub secret: String,
}

impl KeyPair {
    pub fn masked(&self) -> String {
        mask(&self.api_key)
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("label", &self.label)
            .field("api_key", &self.masked())
            .field("secret", &"<hidden>")
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Order {
    pub market: Market,
    pub symbol: String,
    pub order_id: u64,
    pub client_order_id: String,
    pub side: String,
    pub order_type: String,
    pub price: Decimal,
    pub stop_price: Decimal,
    pub orig_qty: Decimal,
    pub executed_qty: Decimal,
    pub cum_quote: Decimal,
    pub status: &'static str,
    pub time_in_force: String,
    pub time: i64,
    pub update_time: i64,
    pub is_isolated: bool,
    pub position_side: String,
    /// A futures conditional order held by the algo service (`openAlgoOrders`): USDⓈ-M
    /// since 2025-12-09, COIN-M since the COIN-M/USDⓈ-M integration (2026-06-30).
    pub algo: bool,
}

impl Order {
    pub fn is_open(&self) -> bool {
        matches!(self.status, "NEW" | "PARTIALLY_FILLED")
    }
}

#[derive(Debug, Clone)]
pub struct Trade {
    pub market: Market,
    pub symbol: String,
    pub id: u64,
    pub order_id: u64,
    pub side: String,
    pub price: Decimal,
    pub qty: Decimal,
    pub quote_qty: Decimal,
    pub commission: Decimal,
    pub commission_asset: String,
    pub time: i64,
    pub maker: bool,
    pub realized_pnl: Decimal,
}

#[derive(Debug, Clone)]
pub struct Withdrawal {
    pub id: String,
    pub coin: String,
    pub network: String,
    pub address: String,
    pub amount: Decimal,
    pub fee: Decimal,
    pub status: u8,
    pub tx_id: String,
    pub time: i64,
}

#[derive(Debug, Clone)]
pub struct Deposit {
    pub id: String,
    pub coin: String,
    pub network: String,
    pub address: String,
    pub amount: Decimal,
    pub status: u8,
    pub tx_id: String,
    pub time: i64,
}

#[derive(Debug, Clone)]
pub struct Transfer {
    pub tran_id: u64,
    pub transfer_type: String,
    pub asset: String,
    pub amount: Decimal,
    pub time: i64,
}

/// Money moved between the master and its sub-accounts.
#[derive(Debug, Clone)]
pub struct SubTransfer {
    pub tran_id: u64,
    /// `spot`, `universal`, `usdm` or `coinm`.
    pub kind: String,
    pub from: String,
    pub to: String,
    pub asset: String,
    pub amount: Decimal,
    pub time: i64,
}

#[derive(Debug, Clone)]
pub struct PayTx {
    pub transaction_id: String,
    pub order_type: String,
    pub asset: String,
    pub amount: Decimal,
    pub counterparty: String,
    pub counterparty_name: String,
    pub time: i64,
}

#[derive(Debug, Clone)]
pub struct Position {
    pub market: Market,
    pub symbol: String,
    pub amount: Decimal,
    pub entry_price: Decimal,
    pub leverage: u32,
}

/// A new order, from `POST .../order` or the attacker.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub market: Market,
    pub symbol: String,
    pub side: String,
    pub order_type: String,
    pub price: Decimal,
    pub stop_price: Decimal,
    pub quantity: Decimal,
    pub time_in_force: String,
    pub client_order_id: Option<String>,
    pub position_side: String,
    pub is_isolated: bool,
}

/// Open orders per market and symbol, and the keys — never secrets.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StateSummary {
    /// Regular open orders: market → symbol → count.
    pub open_orders: BTreeMap<Market, BTreeMap<String, usize>>,
    /// USDⓈ-M conditional (algo) orders: symbol → count.
    pub open_algo_orders: BTreeMap<String, usize>,
    /// COIN-M conditional (algo) orders: symbol → count.
    pub open_coinm_algo_orders: BTreeMap<String, usize>,
    pub keys: Vec<KeySummary>,
}

impl StateSummary {
    /// Regular open orders on one market.
    pub fn open_on(&self, market: Market) -> usize {
        self.open_orders
            .get(&market)
            .map_or(0, |m| m.values().sum())
    }

    /// Every open order, regular and algo, on every market.
    pub fn total_open(&self) -> usize {
        Market::ALL.iter().map(|m| self.open_on(*m)).sum::<usize>()
            + self.open_algo_orders.values().sum::<usize>()
            + self.open_coinm_algo_orders.values().sum::<usize>()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KeySummary {
    pub label: String,
    pub api_key: String,
    pub permissions: Vec<&'static str>,
    pub ip_whitelist: Vec<String>,
    pub deleted: bool,
    pub responder: bool,
    /// The key the scenario treats as leaked.
    pub leaked: bool,
    /// The sub-account the key belongs to (absent: the master or only account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_account: Option<String>,
}

/// What a deletion actually did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeletedKey {
    /// The key that was asked for.
    pub requested: String,
    /// The key that was deleted (another one under `drill.deletion: wrong-key`).
    pub label: String,
    pub api_key: String,
    /// True when the drill deleted a different key than the one asked for.
    pub wrong_key: bool,
}

/// The whole mutable exchange.
#[derive(Debug)]
pub struct State {
    /// Fixed when the state is made: [`State::symbol_at`] indexes it.
    symbols: Vec<ScenarioSymbol>,
    /// Where each symbol name is in `symbols`, per market (in [`Market::ALL`]'s order):
    /// every signed request with a symbol looks one up, and a drill's exchange may list
    /// a couple of thousand.
    symbol_at: HashMap<String, Slots>,
    pub keys: Vec<Key>,
    pub leaked: usize,
    pub drill_deletion: DrillDeletion,
    /// The master account and its sub-accounts, when the scenario has them.
    pub accounts: Option<Accounts>,
    /// Transfers between them, with times resolved.
    pub sub_transfers: Vec<SubTransfer>,
    pub balances: BTreeMap<Market, BTreeMap<String, Decimal>>,
    pub margin_loans: BTreeMap<String, Decimal>,
    pub orders: Vec<Order>,
    pub trades: Vec<Trade>,
    pub withdrawals: Vec<Withdrawal>,
    pub deposits: Vec<Deposit>,
    pub transfers: Vec<Transfer>,
    pub pay: Vec<PayTx>,
    pub positions: Vec<Position>,
    /// Market price of a minute named by a scenario trade: (market, symbol, minute) → price.
    pub price_overrides: HashMap<(Market, String, i64), Decimal>,
    next_order_id: HashMap<Market, u64>,
    next_trade_id: HashMap<(Market, String), u64>,
    responders: usize,
    /// Where each (market, symbol)'s orders are in `orders`, for the first `indexed` of
    /// them: a burst of cancel-alls on a busy account would otherwise scan every order
    /// once per symbol, each under the state lock.
    by_symbol: HashMap<(Market, String), Vec<usize>>,
    indexed: usize,
}

/// A symbol name's place in `State::symbols` on each market, by [`market_slot`].
type Slots = [Option<u32>; Market::ALL.len()];

fn market_slot(market: Market) -> usize {
    Market::ALL
        .iter()
        .position(|m| *m == market)
        .expect("every market is in Market::ALL")
}

/// [`State::symbol_at`] of `symbols`; a name listed twice on one market is found at its
/// first place, as a scan would find it.
fn symbol_index(symbols: &[ScenarioSymbol]) -> HashMap<String, Slots> {
    let mut index: HashMap<String, Slots> = HashMap::new();
    for (i, s) in symbols.iter().enumerate() {
        let slot = &mut index.entry(s.symbol.clone()).or_default()[market_slot(s.market)];
        if slot.is_none() {
            *slot = Some(u32::try_from(i).expect("fewer than 4 billion symbols"));
        }
    }
    index
}

fn first_order_id(market: Market) -> u64 {
    match market {
        Market::Spot => 31_400_000,
        Market::Margin => 18_200_000,
        Market::Usdm => 8_389_700_000,
        Market::Coinm => 71_500_000,
    }
}

const FIRST_TRADE_ID: u64 = 2_400_000;
/// Spot and margin commission (0.1 %), futures taker (0.05 %).
fn commission_rate(market: Market) -> Decimal {
    if market.is_futures() {
        Decimal::new(5, 4)
    } else {
        Decimal::new(1, 3)
    }
}

impl State {
    pub fn new(scenario: &Scenario, start_ms: i64) -> State {
        let mut state = State {
            symbols: scenario.symbols.clone(),
            symbol_at: symbol_index(&scenario.symbols),
            keys: scenario
                .keys
                .iter()
                .map(|k| Key {
                    label: k.label.clone(),
                    api_key: k.api_key.clone(),
                    secret: k.secret.clone(),
                    verifier: k.verifier.clone(),
                    private_key: k.private_key.clone(),
                    permissions: k.permissions,
                    ip_whitelist: k.ip_whitelist.clone(),
                    created_ms: k.created.at(start_ms),
                    deleted: false,
                    responder: false,
                    account: k.account.clone(),
                })
                .collect(),
            leaked: scenario.leaked_key_index(),
            drill_deletion: scenario.drill_deletion,
            accounts: scenario.accounts.clone(),
            sub_transfers: scenario
                .accounts
                .iter()
                .flat_map(|a| a.transfers.iter())
                .enumerate()
                .map(|(i, t)| SubTransfer {
                    tran_id: 92_275_823_339 + i as u64 * 17,
                    kind: t.kind.clone(),
                    from: t.from.clone(),
                    to: t.to.clone(),
                    asset: t.asset.clone(),
                    amount: t.amount,
                    time: t.time.at(start_ms),
                })
                .collect(),
            balances: scenario.balances.clone(),
            margin_loans: scenario.margin_loans.clone(),
            orders: Vec::new(),
            trades: Vec::new(),
            withdrawals: Vec::new(),
            deposits: Vec::new(),
            transfers: Vec::new(),
            pay: Vec::new(),
            positions: Vec::new(),
            price_overrides: HashMap::new(),
            next_order_id: HashMap::new(),
            next_trade_id: HashMap::new(),
            responders: 0,
            by_symbol: HashMap::new(),
            indexed: 0,
        };
        state.replay_history(scenario, start_ms);
        state.add_movements(scenario, start_ms);
        for p in &scenario.positions {
            state.positions.push(Position {
                market: p.market,
                symbol: p.symbol.clone(),
                amount: p.amount,
                entry_price: p.entry_price,
                leverage: p.leverage,
            });
        }
        state
    }

    /// The scenario's open orders placed and its trades filled, in time order, so ids
    /// grow with time like Binance's and `fromId=0&limit=1` finds the account's first
    /// trade in a symbol.
    fn replay_history(&mut self, scenario: &Scenario, start_ms: i64) {
        enum Item<'a> {
            Open(&'a super::scenario::ScenarioOrder),
            Fill(&'a super::scenario::ScenarioTrade),
        }
        let mut items: Vec<(i64, Item)> = scenario
            .open_orders
            .iter()
            .map(|o| (o.time.at(start_ms), Item::Open(o)))
            .chain(
                scenario
                    .trades
                    .iter()
                    .map(|t| (t.time.at(start_ms), Item::Fill(t))),
            )
            .collect();
        items.sort_by_key(|(t, _)| *t);
        for (time, item) in items {
            match item {
                Item::Open(o) => {
                    // Validation keeps MARKET orders out of `open_orders`: these rest.
                    self.place_order(
                        NewOrder {
                            market: o.market,
                            symbol: o.symbol.clone(),
                            side: o.side.clone(),
                            order_type: o.order_type.clone(),
                            price: o.price,
                            stop_price: o.stop_price,
                            quantity: o.quantity,
                            time_in_force: o.time_in_force.clone(),
                            client_order_id: o.client_order_id.clone(),
                            position_side: o.position_side.clone(),
                            is_isolated: o.isolated,
                        },
                        Decimal::ZERO,
                        time,
                    );
                }
                Item::Fill(t) => self.fill(t, time),
            }
        }
    }

    /// A scenario trade: its filled order and the trade itself.
    fn fill(&mut self, t: &super::scenario::ScenarioTrade, time: i64) {
        let order_id = self.next_order_id(t.market);
        let quote_qty = (t.price * t.quantity).normalize();
        let order = Order {
            market: t.market,
            symbol: t.symbol.clone(),
            order_id,
            client_order_id: client_id(t.market, order_id),
            side: t.side.clone(),
            order_type: "LIMIT".into(),
            price: t.price,
            stop_price: Decimal::ZERO,
            orig_qty: t.quantity,
            executed_qty: t.quantity,
            cum_quote: quote_qty,
            status: "FILLED",
            time_in_force: "GTC".into(),
            time,
            update_time: time,
            is_isolated: false,
            position_side: "BOTH".into(),
            algo: false,
        };
        let trade = self.trade_of(&order, t.price, time);
        self.orders.push(order);
        self.trades.push(Trade {
            commission: t.commission.unwrap_or(trade.commission),
            commission_asset: t.commission_asset.clone().unwrap_or(trade.commission_asset),
            maker: t.maker,
            realized_pnl: t.realized_pnl,
            ..trade
        });
        if let Some(p) = t.market_price {
            self.price_overrides
                .insert((t.market, t.symbol.clone(), time.div_euclid(60_000)), p);
        }
    }

    /// Withdrawals, deposits, universal transfers and Pay, with Binance-like ids.
    fn add_movements(&mut self, scenario: &Scenario, start_ms: i64) {
        for (i, w) in scenario.withdrawals.iter().enumerate() {
            let time = w.time.at(start_ms);
            self.withdrawals.push(Withdrawal {
                id: w.id.clone().unwrap_or_else(|| hex_id(0x57, i, time)),
                coin: w.coin.clone(),
                network: w.network.clone(),
                address: w.address.clone(),
                amount: w.amount,
                fee: w.fee,
                status: w.status,
                tx_id: w.tx_id.clone(),
                time,
            });
        }
        for (i, d) in scenario.deposits.iter().enumerate() {
            let time = d.time.at(start_ms);
            self.deposits.push(Deposit {
                id: d
                    .id
                    .clone()
                    .unwrap_or_else(|| (4_000_000_000 + i as u64 * 7).to_string()),
                coin: d.coin.clone(),
                network: d.network.clone(),
                address: d.address.clone(),
                amount: d.amount,
                status: d.status,
                tx_id: d.tx_id.clone(),
                time,
            });
        }
        for (i, t) in scenario.transfers.iter().enumerate() {
            self.transfers.push(Transfer {
                tran_id: 13_526_853_623 + i as u64 * 11,
                transfer_type: t.transfer_type.clone(),
                asset: t.asset.clone(),
                amount: t.amount,
                time: t.time.at(start_ms),
            });
        }
        for (i, p) in scenario.pay.iter().enumerate() {
            let time = p.time.at(start_ms);
            self.pay.push(PayTx {
                transaction_id: format!("M_P_{}", 71_505_104_267_788_288u64 + i as u64 * 13),
                order_type: p.order_type.clone(),
                asset: p.asset.clone(),
                amount: p.amount,
                counterparty: p.counterparty.clone(),
                counterparty_name: p.counterparty_name.clone().unwrap_or_default(),
                time,
            });
        }
    }

    fn next_order_id(&mut self, market: Market) -> u64 {
        let next = self
            .next_order_id
            .entry(market)
            .or_insert_with(|| first_order_id(market));
        *next += 1;
        *next
    }

    fn next_trade_id(&mut self, market: Market, symbol: &str) -> u64 {
        let next = self
            .next_trade_id
            .entry((market, symbol.to_string()))
            .or_insert(FIRST_TRADE_ID);
        *next += 1;
        *next
    }

    /// The trade that filled `order` (its executed quantity, for its quote quantity) at
    /// `price`: the commission charged by default and the symbol's next trade id; a
    /// taker's, with no realised PnL.
    fn trade_of(&mut self, order: &Order, price: Decimal, time: i64) -> Trade {
        let (commission, commission_asset) = self.commission(
            order.market,
            &order.symbol,
            &order.side,
            order.executed_qty,
            order.cum_quote,
        );
        Trade {
            market: order.market,
            symbol: order.symbol.clone(),
            id: self.next_trade_id(order.market, &order.symbol),
            order_id: order.order_id,
            side: order.side.clone(),
            price,
            qty: order.executed_qty,
            quote_qty: order.cum_quote,
            commission,
            commission_asset,
            time,
            maker: false,
            realized_pnl: Decimal::ZERO,
        }
    }

    /// Commission like Binance charges it by default: in the asset received (spot, margin),
    /// in the margin asset (futures).
    fn commission(
        &self,
        market: Market,
        symbol: &str,
        side: &str,
        qty: Decimal,
        quote_qty: Decimal,
    ) -> (Decimal, String) {
        let sym = self.symbol(market, symbol);
        let rate = commission_rate(market);
        let (base, quote) = sym.map_or((String::new(), String::new()), |s| {
            (s.base.clone(), s.quote.clone())
        });
        match market {
            Market::Spot | Market::Margin if side == "BUY" => ((qty * rate).normalize(), base),
            Market::Spot | Market::Margin | Market::Usdm => ((quote_qty * rate).normalize(), quote),
            Market::Coinm => (
                (qty * rate / Decimal::from(100)).round_dp(8).normalize(),
                base,
            ),
        }
    }

    pub fn symbol(&self, market: Market, symbol: &str) -> Option<&ScenarioSymbol> {
        let at = self.symbol_at.get(symbol)?[market_slot(market)]?;
        self.symbols.get(at as usize)
    }

    /// Every symbol the exchange lists, in the scenario's order.
    pub fn symbols(&self) -> &[ScenarioSymbol] {
        &self.symbols
    }

    pub fn symbols_of(&self, market: Market) -> impl Iterator<Item = &ScenarioSymbol> {
        self.symbols.iter().filter(move |s| s.market == market)
    }

    pub fn key_by_api_key(&self, api_key: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.api_key == api_key)
    }

    pub fn leaked_key(&self) -> KeyPair {
        let k = &self.keys[self.leaked];
        KeyPair {
            label: k.label.clone(),
            api_key: k.api_key.clone(),
            secret: k.secret.clone(),
        }
    }

    /// The leaked key's private key (PEM) when it is an Ed25519 or RSA key whose scenario
    /// gives one: what a drill signs with instead of a secret.
    pub fn leaked_private_key(&self) -> Option<String> {
        self.keys[self.leaked].private_key.clone()
    }

    /// Open orders on `market` (regular or algo), optionally for one symbol.
    pub fn open_orders(&self, market: Market, symbol: Option<&str>, algo: bool) -> Vec<&Order> {
        self.orders
            .iter()
            .filter(|o| o.market == market && o.is_open() && o.algo == algo)
            .filter(|o| symbol.is_none_or(|s| o.symbol == s))
            .collect()
    }

    /// Cancel every open order on `market` and `symbol`; returns what was cancelled.
    pub fn cancel_open(
        &mut self,
        market: Market,
        symbol: &str,
        algo: bool,
        isolated: Option<bool>,
        now: i64,
    ) -> Vec<Order> {
        let mut cancelled = Vec::new();
        self.index_orders();
        let Some(positions) = self.by_symbol.get(&(market, symbol.to_string())) else {
            return cancelled;
        };
        for &i in positions {
            let o = &mut self.orders[i];
            if o.is_open() && o.algo == algo && isolated.is_none_or(|i| o.is_isolated == i) {
                o.status = "CANCELED";
                o.update_time = now;
                cancelled.push(o.clone());
            }
        }
        cancelled
    }

    /// The open orders on `market` and `symbol`, both books: through the index for the
    /// orders it covers (see [`State::index_orders`]), by a scan for any added since.
    pub fn open_on<'a>(
        &'a self,
        market: Market,
        symbol: &'a str,
    ) -> impl Iterator<Item = &'a Order> {
        let indexed = self
            .by_symbol
            .get(&(market, symbol.to_string()))
            .into_iter()
            .flatten()
            .map(|&i| &self.orders[i]);
        let since = self.orders[self.indexed..]
            .iter()
            .filter(move |o| o.market == market && o.symbol == symbol);
        indexed.chain(since).filter(|o| o.is_open())
    }

    /// Index the orders added since the last call. Orders are only ever added, so the
    /// positions already indexed stay right.
    pub fn index_orders(&mut self) {
        for (i, o) in self.orders.iter().enumerate().skip(self.indexed) {
            self.by_symbol
                .entry((o.market, o.symbol.clone()))
                .or_default()
                .push(i);
        }
        self.indexed = self.orders.len();
    }

    /// Find one order by id or client id.
    pub fn find_order(
        &self,
        market: Market,
        symbol: &str,
        order_id: Option<u64>,
        client_id: Option<&str>,
    ) -> Option<usize> {
        self.orders.iter().position(|o| {
            o.market == market
                && o.symbol == symbol
                && (order_id.is_some_and(|id| o.order_id == id)
                    || client_id.is_some_and(|c| o.client_order_id == c))
        })
    }

    /// Cancel one open order; -2011 when it is unknown or no longer open.
    pub fn cancel_one(&mut self, index: Option<usize>, now: i64) -> Result<Order, ApiError> {
        let o = index
            .and_then(|i| self.orders.get_mut(i))
            .filter(|o| o.is_open())
            .ok_or_else(ApiError::unknown_order)?;
        o.status = "CANCELED";
        o.update_time = now;
        Ok(o.clone())
    }

    /// Place an order. LIMIT-like orders rest; MARKET orders fill at `market_price`.
    pub fn place_order(&mut self, new: NewOrder, market_price: Decimal, now: i64) -> Order {
        let order_id = self.next_order_id(new.market);
        let market_fill = new.order_type == "MARKET";
        let mut order = Order {
            market: new.market,
            symbol: new.symbol.clone(),
            order_id,
            client_order_id: new
                .client_order_id
                .clone()
                .unwrap_or_else(|| client_id(new.market, order_id)),
            side: new.side.clone(),
            order_type: new.order_type.clone(),
            price: if market_fill {
                Decimal::ZERO
            } else {
                new.price
            },
            stop_price: new.stop_price,
            orig_qty: new.quantity,
            executed_qty: Decimal::ZERO,
            cum_quote: Decimal::ZERO,
            status: "NEW",
            time_in_force: new.time_in_force.clone(),
            time: now,
            update_time: now,
            is_isolated: new.is_isolated,
            position_side: new.position_side.clone(),
            algo: is_algo(new.market, &new.order_type),
        };
        if market_fill {
            let quote_qty = (market_price * new.quantity).normalize();
            order.executed_qty = new.quantity;
            order.cum_quote = quote_qty;
            order.status = "FILLED";
            let trade = self.trade_of(&order, market_price, now);
            self.trades.push(trade);
        }
        self.orders.push(order.clone());
        order
    }

    /// Trades on `market` and `symbol`, oldest first.
    pub fn trades_of(&self, market: Market, symbol: &str) -> Vec<&Trade> {
        let mut v: Vec<&Trade> = self
            .trades
            .iter()
            .filter(|t| t.market == market && t.symbol == symbol)
            .collect();
        v.sort_by_key(|t| (t.time, t.id));
        v
    }

    /// What is locked by open spot or margin orders, per asset.
    pub fn locked(&self, market: Market) -> BTreeMap<String, Decimal> {
        let mut locked: BTreeMap<String, Decimal> = BTreeMap::new();
        for o in self
            .orders
            .iter()
            .filter(|o| o.market == market && o.is_open())
        {
            let Some(sym) = self.symbol(market, &o.symbol) else {
                continue;
            };
            let remaining = o.orig_qty - o.executed_qty;
            let (asset, amount) = if o.side == "BUY" {
                let price = if o.price.is_zero() {
                    o.stop_price
                } else {
                    o.price
                };
                (sym.quote.clone(), price * remaining)
            } else {
                (sym.base.clone(), remaining)
            };
            *locked.entry(asset).or_default() += amount;
        }
        locked
    }

    pub fn summary(&self) -> StateSummary {
        let mut open_orders: BTreeMap<Market, BTreeMap<String, usize>> =
            Market::ALL.iter().map(|m| (*m, BTreeMap::new())).collect();
        let mut open_algo_orders = BTreeMap::new();
        let mut open_coinm_algo_orders = BTreeMap::new();
        for o in self.orders.iter().filter(|o| o.is_open()) {
            let map = if o.algo && o.market == Market::Coinm {
                &mut open_coinm_algo_orders
            } else if o.algo {
                &mut open_algo_orders
            } else {
                open_orders.entry(o.market).or_default()
            };
            *map.entry(o.symbol.clone()).or_insert(0) += 1;
        }
        StateSummary {
            open_orders,
            open_algo_orders,
            open_coinm_algo_orders,
            keys: self
                .keys
                .iter()
                .enumerate()
                .map(|(i, k)| KeySummary {
                    label: k.label.clone(),
                    api_key: k.api_key.clone(),
                    permissions: k.permissions.names(),
                    ip_whitelist: k.ip_whitelist.iter().map(|ip| ip.to_string()).collect(),
                    deleted: k.deleted,
                    responder: k.responder,
                    leaked: i == self.leaked,
                    sub_account: k.account.clone(),
                })
                .collect(),
        }
    }

    /// Delete a key by label or api key. As the drill's deletion under
    /// `drill.deletion: wrong-key`, another live scenario key is deleted instead.
    pub fn delete_key(&mut self, target: &str, as_drill: bool) -> Result<DeletedKey, SimError> {
        let asked = self
            .keys
            .iter()
            .position(|k| k.label == target || k.api_key == target)
            .ok_or_else(|| SimError::UnknownKey(target.to_string()))?;
        let mut victim = asked;
        if as_drill && self.drill_deletion == DrillDeletion::WrongKey {
            if let Some(other) = self
                .keys
                .iter()
                .position(|k| !k.responder && !k.deleted && k.api_key != self.keys[asked].api_key)
            {
                victim = other;
            }
        }
        self.keys[victim].deleted = true;
        Ok(DeletedKey {
            requested: self.keys[asked].label.clone(),
            label: self.keys[victim].label.clone(),
            api_key: self.keys[victim].api_key.clone(),
            wrong_key: victim != asked,
        })
    }

    /// Create a new read-only key for evidence pulls after the leaked key is deleted, on
    /// the master (or only) account.
    pub fn create_responder(&mut self, seed: u64, now: i64) -> KeyPair {
        self.create_responder_on(seed, now, ResponderKind::ReadOnly)
    }

    /// Create a responder key of `kind`.
    pub fn create_responder_on(&mut self, seed: u64, now: i64, kind: ResponderKind) -> KeyPair {
        self.responders += 1;
        let mut rng =
            fastrand::Rng::with_seed(seed ^ (self.responders as u64).wrapping_mul(0x9E37_79B9));
        let mut token = || -> String {
            (0..64)
                .map(|_| {
                    let i = rng.usize(0..62);
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[i] as char
                })
                .collect()
        };
        let (what, permissions, account) = match kind {
            ResponderKind::ReadOnly => ("read-only", Permissions::read_only(), None),
            ResponderKind::ReadingAndFutures => (
                "reading, futures",
                Permissions {
                    reading: true,
                    futures: true,
                    ..Permissions::default()
                },
                None,
            ),
            ResponderKind::MasterTrading => (
                "master, trading",
                Permissions {
                    reading: true,
                    spot: true,
                    ..Permissions::default()
                },
                None,
            ),
            ResponderKind::SameAccountReadOnly => (
                "read-only",
                Permissions::read_only(),
                self.keys[self.leaked].account.clone(),
            ),
        };
        let pair = KeyPair {
            label: format!("Incident responder ({what}) {}", self.responders),
            api_key: token(),
            secret: token(),
        };
        self.keys.push(Key {
            label: pair.label.clone(),
            api_key: pair.api_key.clone(),
            secret: pair.secret.clone(),
            verifier: Verifier::Hmac,
            private_key: None,
            permissions,
            ip_whitelist: Vec::new(),
            created_ms: now,
            deleted: false,
            responder: true,
            account,
        });
        pair
    }

    /// Whether `key` is a master account's key (a scenario with sub-accounts, and the key
    /// not on one of them).
    pub fn is_master_key(&self, key: &Key) -> bool {
        self.accounts.is_some() && key.account.is_none()
    }
}

/// What kind of responder key a drill gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponderKind {
    /// Read-only, on the master (or only) account.
    ReadOnly,
    /// Reading with "Enable Futures" on, on the master (or only) account: Binance answers
    /// -2015 to every `/fapi` and `/dapi` call, reads included, of a key without it.
    ReadingAndFutures,
    /// On the master account, reading and spot trading: it may delete sub-account keys.
    MasterTrading,
    /// Read-only, on the leaked key's own account.
    SameAccountReadOnly,
}

impl ResponderKind {
    /// The responder key a drill on `scenario` gets: one that may read futures too (so
    /// the evidence read with it after the deletion includes the futures income); with
    /// sub-accounts, a master key with trading permission (what the README asks
    /// operators to keep), unless the scenario says `drill: { responder: same-account }`.
    pub fn for_drill(scenario: &Scenario) -> ResponderKind {
        use super::scenario::DrillResponder;
        match (scenario.accounts.is_some(), scenario.drill_responder) {
            (false, _) => ResponderKind::ReadingAndFutures,
            (true, DrillResponder::Master) => ResponderKind::MasterTrading,
            (true, DrillResponder::SameAccount) => ResponderKind::SameAccountReadOnly,
        }
    }
}

/// Futures conditional orders live in the algo service: USDⓈ-M since 2025-12-09,
/// COIN-M since the COIN-M/USDⓈ-M integration (effective 2026-06-30).
fn is_algo(market: Market, order_type: &str) -> bool {
    market.is_futures() && is_conditional(order_type)
}

/// The futures order types Binance keeps in the algo service (`algoType=CONDITIONAL`).
pub fn is_conditional(order_type: &str) -> bool {
    matches!(
        order_type,
        "STOP" | "STOP_MARKET" | "TAKE_PROFIT" | "TAKE_PROFIT_MARKET" | "TRAILING_STOP_MARKET"
    )
}

fn client_id(market: Market, order_id: u64) -> String {
    let prefix = if market.is_futures() { "web_" } else { "and_" };
    format!(
        "{prefix}{:x}{:06x}",
        order_id,
        order_id.wrapping_mul(2_654_435_761) & 0xFF_FFFF
    )
}

fn hex_id(tag: u64, i: usize, time: i64) -> String {
    format!(
        "{:032x}",
        (u128::from(tag) << 96) ^ (time as u128).wrapping_mul(0x1000_0000_01b3) ^ i as u128
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GTC limit order on `like`'s book, at its price and quantity.
    fn limit_like(like: &Order, side: &str, client_id: &str) -> NewOrder {
        NewOrder {
            market: like.market,
            symbol: like.symbol.clone(),
            side: side.into(),
            order_type: "LIMIT".into(),
            price: like.price,
            stop_price: Decimal::ZERO,
            quantity: like.orig_qty,
            time_in_force: "GTC".into(),
            client_order_id: Some(client_id.into()),
            position_side: "BOTH".into(),
            is_isolated: false,
        }
    }

    /// The built-in scenario's state, and its first open order that `which` takes.
    fn builtin_and_an_open_order(which: impl Fn(&Order) -> bool) -> (State, Order) {
        let state = State::new(&Scenario::builtin_leaked_key(), 0);
        let order = state
            .orders
            .iter()
            .find(|o| o.is_open() && which(o))
            .expect("the built-in scenario has open orders")
            .clone();
        (state, order)
    }

    fn open_on(state: &State, market: Market, symbol: &str, algo: bool) -> usize {
        state.open_orders(market, Some(symbol), algo).len()
    }

    #[test]
    fn cancel_all_takes_exactly_the_open_orders_of_its_book_including_new_ones() {
        let (mut state, first) = builtin_and_an_open_order(|o| !o.algo);
        let (market, symbol) = (first.market, first.symbol.clone());
        let others: usize = state.orders.iter().filter(|o| o.is_open()).count()
            - open_on(&state, market, &symbol, false);

        let open = open_on(&state, market, &symbol, false);
        let cancelled = state.cancel_open(market, &symbol, false, None, 5);
        assert_eq!(cancelled.len(), open);
        assert!(cancelled
            .iter()
            .all(|o| o.status == "CANCELED" && o.update_time == 5));
        assert_eq!(open_on(&state, market, &symbol, false), 0);
        assert!(state
            .cancel_open(market, &symbol, false, None, 6)
            .is_empty());

        // An order placed after the first cancel-all is found by the next.
        let new = limit_like(&first, "SELL", "late");
        state.place_order(new, first.price * Decimal::from(2), 7);
        let cancelled = state.cancel_open(market, &symbol, false, None, 8);
        assert_eq!(cancelled.len(), 1);
        assert_eq!(cancelled[0].client_order_id, "late");

        // Every other book is untouched, and an unknown symbol cancels nothing.
        assert_eq!(state.orders.iter().filter(|o| o.is_open()).count(), others);
        assert!(state
            .cancel_open(market, "NOPEUSDT", false, None, 9)
            .is_empty());
    }

    #[test]
    fn a_symbol_is_found_on_its_own_market_at_its_first_listing() {
        let mut scenario = Scenario::builtin_leaked_key();
        let first = scenario.symbols[0].clone();
        // The same name on another market, and listed twice on its own.
        let other = Market::ALL
            .into_iter()
            .find(|m| *m != first.market)
            .unwrap();
        let mut elsewhere = first.clone();
        elsewhere.market = other;
        elsewhere.base = "ELSEWHERE".into();
        let mut again = first.clone();
        again.base = "AGAIN".into();
        scenario
            .symbols
            .retain(|s| !(s.market == other && s.symbol == first.symbol));
        scenario.symbols.push(elsewhere);
        scenario.symbols.push(again);
        let state = State::new(&scenario, 0);
        for s in &scenario.symbols {
            let scanned = scenario
                .symbols
                .iter()
                .find(|x| x.market == s.market && x.symbol == s.symbol);
            assert_eq!(
                state.symbol(s.market, &s.symbol).map(|x| &x.base),
                scanned.map(|x| &x.base),
                "{} on {:?}",
                s.symbol,
                s.market
            );
        }
        assert_eq!(
            state.symbol(first.market, &first.symbol).unwrap().base,
            first.base
        );
        assert_eq!(
            state.symbol(other, &first.symbol).unwrap().base,
            "ELSEWHERE"
        );
        assert!(state.symbol(first.market, "NOPEUSDT").is_none());
    }

    #[test]
    fn open_on_finds_orders_placed_after_the_index_was_built() {
        let (mut state, first) = builtin_and_an_open_order(|_| true);
        let (market, symbol) = (first.market, first.symbol.clone());
        let scan = |state: &State| -> Vec<u64> {
            state
                .orders
                .iter()
                .filter(|o| o.market == market && o.symbol == symbol && o.is_open())
                .map(|o| o.order_id)
                .collect()
        };
        let ids = |state: &State| -> Vec<u64> {
            state.open_on(market, &symbol).map(|o| o.order_id).collect()
        };
        assert_eq!(ids(&state), scan(&state), "before any index");
        state.index_orders();
        assert_eq!(ids(&state), scan(&state), "indexed");
        let new = limit_like(&first, "BUY", "after-the-index");
        state.place_order(new, first.price * Decimal::from(2), 7);
        let after = ids(&state);
        assert_eq!(after, scan(&state), "placed after the index");
        assert_eq!(after.len(), scan(&state).len());
        assert!(state
            .open_on(market, &symbol)
            .any(|o| o.client_order_id == "after-the-index"));
    }
}
