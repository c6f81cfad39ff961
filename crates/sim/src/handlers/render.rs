//! Orders written straight to JSON text.
//!
//! A listing of a thousand orders built as `Value` trees first costs a map per order and
//! a string per field, then the same again to free them: on a busy account that was most
//! of what the simulator spent answering a listing, while a responder waits to cancel.
//! These shapes write the same text with no tree in between. Their fields are declared in
//! the order a `Value` object writes its keys (sorted), so an answer reads the same
//! whichever way it was built; the tests below hold each shape to that.
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

use crate::state::Order;

/// A decimal written with exactly `scale` places, as Binance writes prices and amounts.
#[derive(Debug, Clone, Copy)]
pub struct Fixed(pub Decimal, pub u32);

impl Fixed {
    /// The value rounded to its places and written with exactly that many.
    fn rounded(&self) -> Decimal {
        let mut d = self.0.round_dp(self.1);
        d.rescale(self.1);
        d
    }
}

/// `d`'s text, written from its integer mantissa into `buf`; `None` for amounts past 64
/// bits, which take rust_decimal's own path. rust_decimal's digit loop, and then the
/// formatter's padding, were the largest part of writing a thousand-order listing, which
/// every other answer waits behind.
fn small_text<'b>(d: &Decimal, buf: &'b mut [u8; 48]) -> Option<&'b str> {
    let scale = d.scale() as usize;
    let units = u64::try_from(d.mantissa().unsigned_abs()).ok()?;
    let ten_to_scale = 10u64.checked_pow(d.scale())?;
    let mut at = 0;
    let mut put = |bytes: &[u8], at: &mut usize| {
        buf[*at..*at + bytes.len()].copy_from_slice(bytes);
        *at += bytes.len();
    };
    if d.is_sign_negative() {
        put(b"-", &mut at);
    }
    let mut digits = itoa::Buffer::new();
    put(digits.format(units / ten_to_scale).as_bytes(), &mut at);
    if scale > 0 {
        // At most 19 places (10^scale fits in 64 bits): sign, 20 digits, point and 19
        // places fit the buffer.
        let fraction = digits.format(units % ten_to_scale).as_bytes();
        put(b".", &mut at);
        for _ in fraction.len()..scale {
            put(b"0", &mut at);
        }
        put(fraction, &mut at);
    }
    Some(std::str::from_utf8(&buf[..at]).expect("digits, a sign and a point are ASCII"))
}

impl std::fmt::Display for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.rounded();
        match small_text(&d, &mut [0; 48]) {
            Some(text) => f.write_str(text),
            None => d.fmt(f),
        }
    }
}

impl Serialize for Fixed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // One string, escaped once, rather than each piece through the formatter.
        let d = self.rounded();
        match small_text(&d, &mut [0; 48]) {
            Some(text) => serializer.serialize_str(text),
            None => serializer.collect_str(&d),
        }
    }
}

/// Spot and wallet amounts: eight places.
fn d8(d: Decimal) -> Fixed {
    Fixed(d, 8)
}

const STP: &str = "EXPIRE_MAKER";

/// Room for one order's JSON text: a spot order is about 480 bytes.
const ORDER_TEXT: usize = 512;

/// JSON text of a list of orders; these shapes hold only strings, numbers and booleans.
/// The text is written into room for all of them at once: grown from empty, a listing of
/// 660 spot orders was copied a dozen times on its way to 318 KB.
pub fn text<T: Serialize>(orders: &[T]) -> String {
    let mut out = Vec::with_capacity(2 + orders.len() * ORDER_TEXT);
    serde_json::to_writer(&mut out, orders).expect("an order shape always serialises");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// A cancel-all's answer: each cancelled order as `shape` writes it (spot or margin).
pub fn cancelled_text(
    orders: &[Order],
    now: i64,
    shape: for<'a> fn(&'a Order, i64) -> Cancelled<'a>,
) -> String {
    text(&orders.iter().map(|o| shape(o, now)).collect::<Vec<_>>())
}

/// A `Value` of `value`, for answers a handler still adds fields to.
pub fn tree<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("an order shape always serialises")
}

/// A spot order as `openOrders`, `allOrders` and `order` answer it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpotOrder<'a> {
    client_order_id: &'a str,
    cummulative_quote_qty: Fixed,
    executed_qty: Fixed,
    iceberg_qty: Fixed,
    is_working: bool,
    order_id: u64,
    order_list_id: i64,
    orig_qty: Fixed,
    orig_quote_order_qty: Fixed,
    price: Fixed,
    self_trade_prevention_mode: &'static str,
    side: &'a str,
    status: &'a str,
    stop_price: Fixed,
    symbol: &'a str,
    time: i64,
    time_in_force: &'a str,
    #[serde(rename = "type")]
    order_type: &'a str,
    update_time: i64,
    working_time: i64,
}

impl<'a> SpotOrder<'a> {
    pub fn of(o: &'a Order) -> SpotOrder<'a> {
        SpotOrder {
            client_order_id: &o.client_order_id,
            cummulative_quote_qty: d8(o.cum_quote),
            executed_qty: d8(o.executed_qty),
            iceberg_qty: d8(Decimal::ZERO),
            is_working: true,
            order_id: o.order_id,
            order_list_id: -1,
            orig_qty: d8(o.orig_qty),
            orig_quote_order_qty: d8(Decimal::ZERO),
            price: d8(o.price),
            self_trade_prevention_mode: STP,
            side: &o.side,
            status: o.status,
            stop_price: d8(o.stop_price),
            symbol: &o.symbol,
            time: o.time,
            time_in_force: &o.time_in_force,
            order_type: &o.order_type,
            update_time: o.update_time,
            working_time: o.time,
        }
    }
}

/// A spot or margin order as a cancel answers it; margin adds `isIsolated`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancelled<'a> {
    client_order_id: String,
    cummulative_quote_qty: Fixed,
    executed_qty: Fixed,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_isolated: Option<bool>,
    order_id: u64,
    order_list_id: i64,
    orig_client_order_id: &'a str,
    orig_qty: Fixed,
    price: Fixed,
    self_trade_prevention_mode: &'static str,
    side: &'a str,
    status: &'a str,
    symbol: &'a str,
    time_in_force: &'a str,
    transact_time: i64,
    #[serde(rename = "type")]
    order_type: &'a str,
}

impl<'a> Cancelled<'a> {
    pub fn spot(o: &'a Order, now: i64) -> Cancelled<'a> {
        Cancelled {
            client_order_id: format!("cancel{}", o.order_id),
            cummulative_quote_qty: d8(o.cum_quote),
            executed_qty: d8(o.executed_qty),
            is_isolated: None,
            order_id: o.order_id,
            order_list_id: -1,
            orig_client_order_id: &o.client_order_id,
            orig_qty: d8(o.orig_qty),
            price: d8(o.price),
            self_trade_prevention_mode: STP,
            side: &o.side,
            status: o.status,
            symbol: &o.symbol,
            time_in_force: &o.time_in_force,
            transact_time: now,
            order_type: &o.order_type,
        }
    }

    pub fn margin(o: &'a Order, now: i64) -> Cancelled<'a> {
        Cancelled {
            is_isolated: Some(o.is_isolated),
            ..Cancelled::spot(o, now)
        }
    }
}

/// A cross or isolated margin order as `/sapi/v1/margin/openOrders` answers it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MarginOrder<'a> {
    client_order_id: &'a str,
    cummulative_quote_qty: Fixed,
    executed_qty: Fixed,
    iceberg_qty: Fixed,
    is_isolated: bool,
    is_working: bool,
    order_id: u64,
    orig_qty: Fixed,
    price: Fixed,
    self_trade_prevention_mode: &'static str,
    side: &'a str,
    status: &'a str,
    stop_price: Fixed,
    symbol: &'a str,
    time: i64,
    time_in_force: &'a str,
    #[serde(rename = "type")]
    order_type: &'a str,
    update_time: i64,
}

impl<'a> MarginOrder<'a> {
    pub fn of(o: &'a Order) -> MarginOrder<'a> {
        MarginOrder {
            client_order_id: &o.client_order_id,
            cummulative_quote_qty: d8(o.cum_quote),
            executed_qty: d8(o.executed_qty),
            iceberg_qty: d8(Decimal::ZERO),
            is_isolated: o.is_isolated,
            is_working: true,
            order_id: o.order_id,
            orig_qty: d8(o.orig_qty),
            price: d8(o.price),
            self_trade_prevention_mode: STP,
            side: &o.side,
            status: o.status,
            stop_price: d8(o.stop_price),
            symbol: &o.symbol,
            time: o.time,
            time_in_force: &o.time_in_force,
            order_type: &o.order_type,
            update_time: o.update_time,
        }
    }
}

/// The scales a futures symbol writes prices and quantities with.
#[derive(Debug, Clone, Copy)]
pub struct Scales {
    pub price: u32,
    pub qty: u32,
}

/// A USDⓈ-M or COIN-M order as the order endpoints answer it. COIN-M writes `cumBase`
/// and `pair`; USDⓈ-M writes `cumQuote` and `goodTillDate`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FuturesOrder<'a> {
    avg_price: Fixed,
    client_order_id: &'a str,
    close_position: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cum_base: Option<Fixed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cum_quote: Option<Fixed>,
    executed_qty: Fixed,
    #[serde(skip_serializing_if = "Option::is_none")]
    good_till_date: Option<i64>,
    order_id: u64,
    orig_qty: Fixed,
    orig_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pair: Option<String>,
    position_side: &'a str,
    price: Fixed,
    price_match: &'static str,
    price_protect: bool,
    reduce_only: bool,
    self_trade_prevention_mode: &'static str,
    side: &'a str,
    status: &'a str,
    stop_price: Fixed,
    symbol: &'a str,
    time: i64,
    time_in_force: &'a str,
    #[serde(rename = "type")]
    order_type: &'a str,
    update_time: i64,
    working_type: &'static str,
}

/// How a COIN-M order differs: its pair and its contract size.
pub struct Coin {
    pub pair: String,
    pub contract_size: Decimal,
}

impl<'a> FuturesOrder<'a> {
    /// `coin` is `Some` on COIN-M, where quantities are whole contracts.
    pub fn of(o: &'a Order, scales: Scales, coin: Option<Coin>) -> FuturesOrder<'a> {
        let (ps, qs) = (scales.price, if coin.is_some() { 0 } else { scales.qty });
        let avg = if o.executed_qty.is_zero() {
            Decimal::ZERO
        } else {
            o.cum_quote / o.executed_qty
        };
        let (cum_base, pair) = match coin {
            Some(c) => {
                let base = if avg.is_zero() {
                    Decimal::ZERO
                } else {
                    o.executed_qty * c.contract_size / avg
                };
                (Some(Fixed(base, 8)), Some(c.pair))
            }
            None => (None, None),
        };
        let usd = cum_base.is_none();
        FuturesOrder {
            avg_price: Fixed(avg, ps),
            client_order_id: &o.client_order_id,
            close_position: false,
            cum_base,
            cum_quote: usd.then_some(Fixed(o.cum_quote, 8)),
            executed_qty: Fixed(o.executed_qty, qs),
            good_till_date: usd.then_some(0),
            order_id: o.order_id,
            orig_qty: Fixed(o.orig_qty, qs),
            orig_type: &o.order_type,
            pair,
            position_side: &o.position_side,
            price: Fixed(o.price, ps),
            price_match: "NONE",
            price_protect: false,
            reduce_only: false,
            self_trade_prevention_mode: STP,
            side: &o.side,
            status: o.status,
            stop_price: Fixed(o.stop_price, ps),
            symbol: &o.symbol,
            time: o.time,
            time_in_force: &o.time_in_force,
            order_type: &o.order_type,
            update_time: o.update_time,
            working_type: "CONTRACT_PRICE",
        }
    }
}

/// A conditional order as the algo service answers it (`openAlgoOrders`, `algoOrder`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlgoOrder<'a> {
    activate_price: &'static str,
    algo_id: u64,
    algo_status: &'static str,
    algo_type: &'static str,
    callback_rate: &'static str,
    client_algo_id: &'a str,
    close_position: bool,
    create_time: i64,
    good_till_date: i64,
    iceberg_quantity: Option<&'static str>,
    order_type: &'a str,
    position_side: &'a str,
    price: Fixed,
    price_match: &'static str,
    price_protect: bool,
    quantity: Fixed,
    reduce_only: bool,
    self_trade_prevention_mode: &'static str,
    side: &'a str,
    symbol: &'a str,
    time_in_force: &'a str,
    trigger_price: Fixed,
    trigger_time: i64,
    update_time: i64,
    working_type: &'static str,
}

impl<'a> AlgoOrder<'a> {
    pub fn of(o: &'a Order, scales: Scales) -> AlgoOrder<'a> {
        AlgoOrder {
            activate_price: "",
            algo_id: o.order_id,
            algo_status: if o.is_open() { "NEW" } else { "CANCELED" },
            algo_type: "CONDITIONAL",
            callback_rate: "",
            client_algo_id: &o.client_order_id,
            close_position: false,
            create_time: o.time,
            good_till_date: 0,
            iceberg_quantity: None,
            order_type: &o.order_type,
            position_side: &o.position_side,
            price: Fixed(o.price, scales.price),
            price_match: "NONE",
            price_protect: false,
            quantity: Fixed(o.orig_qty, scales.qty),
            reduce_only: false,
            self_trade_prevention_mode: STP,
            side: &o.side,
            symbol: &o.symbol,
            time_in_force: &o.time_in_force,
            trigger_price: Fixed(o.stop_price, scales.price),
            trigger_time: 0,
            update_time: o.update_time,
            working_type: "CONTRACT_PRICE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Market;

    fn order(market: Market, executed: &str) -> Order {
        Order {
            market,
            symbol: "BTCUSDT".into(),
            order_id: 31_400_007,
            client_order_id: "web_\"quoted\"".into(),
            side: "BUY".into(),
            order_type: "LIMIT".into(),
            price: "64000.123456789".parse().unwrap(),
            stop_price: Decimal::ZERO,
            orig_qty: "0.5".parse().unwrap(),
            executed_qty: executed.parse().unwrap(),
            cum_quote: "6400.5".parse().unwrap(),
            status: "NEW",
            time_in_force: "GTC".into(),
            time: 1_700_000_000_000,
            update_time: 1_700_000_000_500,
            is_isolated: true,
            position_side: "BOTH".into(),
            algo: false,
        }
    }

    /// The text is what the same answer as a `Value` writes: same keys, same values,
    /// same (sorted) order.
    fn reads_as_a_tree<T: Serialize>(shape: T) {
        let text = text(&[shape]);
        let reparsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(text, reparsed.to_string());
        assert!(text.starts_with("[{") && text.ends_with("}]"), "{text}");
    }

    #[test]
    fn every_shape_writes_its_keys_as_a_value_object_would() {
        let spot = order(Market::Spot, "0.1");
        reads_as_a_tree(SpotOrder::of(&spot));
        reads_as_a_tree(Cancelled::spot(&spot, 1));
        reads_as_a_tree(Cancelled::margin(&spot, 1));
        reads_as_a_tree(MarginOrder::of(&spot));
        let scales = Scales { price: 2, qty: 3 };
        let usdm = order(Market::Usdm, "0.1");
        reads_as_a_tree(FuturesOrder::of(&usdm, scales, None));
        let coin = Coin {
            pair: "BTCUSD".into(),
            contract_size: Decimal::from(100),
        };
        reads_as_a_tree(FuturesOrder::of(&usdm, scales, Some(coin)));
        reads_as_a_tree(AlgoOrder::of(&usdm, scales));
    }

    #[test]
    fn fixed_writes_what_rust_decimal_writes_at_that_scale() {
        let values = [
            "0",
            "-0",
            "1",
            "-1",
            "0.5",
            "-0.5",
            "64000.123456789",
            "-64000.123456789",
            "0.00000001",
            "0.000000005",
            "-0.000000004",
            "123456789012.5",
            "99.999999999",
            "18446744073709551615",
            "79228162514264337593543950335",
            "-7922816251426433759354395033.5",
        ];
        for text in values {
            let value: Decimal = text.parse().unwrap();
            for scale in [0, 1, 2, 3, 8, 19, 20, 28] {
                let mut general = value.round_dp(scale);
                general.rescale(scale);
                assert_eq!(
                    Fixed(value, scale).to_string(),
                    general.to_string(),
                    "{text} at {scale} places"
                );
                // In JSON: the same text, as one string.
                assert_eq!(
                    serde_json::to_string(&Fixed(value, scale)).unwrap(),
                    format!("\"{general}\""),
                    "{text} at {scale} places, in JSON"
                );
            }
        }
    }

    #[test]
    fn amounts_are_written_at_their_scale() {
        let o = order(Market::Usdm, "0");
        let v = tree(&FuturesOrder::of(&o, Scales { price: 2, qty: 3 }, None));
        assert_eq!(v["price"], "64000.12");
        assert_eq!(v["origQty"], "0.500");
        assert_eq!(v["avgPrice"], "0.00");
        assert_eq!(v["cumQuote"], "6400.50000000");
        assert_eq!(v["goodTillDate"], 0);
        assert!(v.get("cumBase").is_none() && v.get("pair").is_none());
        let spot = tree(&SpotOrder::of(&o));
        assert_eq!(spot["price"], "64000.12345679");
        assert_eq!(spot["icebergQty"], "0.00000000");
        assert_eq!(spot["clientOrderId"], "web_\"quoted\"");
        let algo = tree(&AlgoOrder::of(&o, Scales { price: 2, qty: 3 }));
        assert_eq!(algo["icebergQuantity"], serde_json::Value::Null);
        assert_eq!(algo["algoStatus"], "NEW");
    }
}
