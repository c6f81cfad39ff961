//! Open orders, cancel-all, and order history, per market. Futures conditional orders
//! live in a separate "algo" book (USDⓈ-M since 2025-12, COIN-M since the COIN-M/USDⓈ-M
//! integration of 2026-06-30): `openOrders` does not list them and `allOpenOrders` does
//! not cancel them, so both books are read and cancelled here.
use crate::model::{RawAlgoOrder, RawOrder};
use crate::signing::Params;
use crate::weights::{self, Pull, Spec};
use crate::{CancelAll, Client, ExchangeError, Market, Order, TimeWindow};

use super::{check_window, PAGE};

fn open_orders_spec(market: Market) -> &'static Spec {
    match market {
        Market::Spot => &weights::SPOT_OPEN_ORDERS,
        Market::Margin => &weights::MARGIN_OPEN_ORDERS,
        Market::UsdM => &weights::FAPI_OPEN_ORDERS,
        Market::CoinM => &weights::DAPI_OPEN_ORDERS,
    }
}

/// `openAlgoOrders` answers a list; accept `{"orders": [...]}` too, which some
/// versions of the algo service return. Read as it comes, not buffered first as an
/// untagged enum would: a busy account lists hundreds of them before its cancel.
struct AlgoOrders(Vec<RawAlgoOrder>);

impl<'de> serde::Deserialize<'de> for AlgoOrders {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AlgoOrders, D::Error> {
        use serde::de::{Error, IgnoredAny, MapAccess, SeqAccess, Visitor};
        struct Shape;
        impl<'de> Visitor<'de> for Shape {
            type Value = AlgoOrders;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of algo orders, or an object with `orders`")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AlgoOrders, A::Error> {
                let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(order) = seq.next_element()? {
                    list.push(order);
                }
                Ok(AlgoOrders(list))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AlgoOrders, A::Error> {
                let mut orders = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "orders" {
                        orders = Some(map.next_value()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                orders
                    .map(AlgoOrders)
                    .ok_or_else(|| A::Error::missing_field("orders"))
            }
        }
        d.deserialize_any(Shape)
    }
}

/// The orders a spot or margin cancel-all answer lists. Its entries mix orders and
/// order lists (`orderReports` holds a list's orders). Each entry is read as an order,
/// which nearly all are, and as a list only when that fails: an untagged enum would
/// buffer every entry and try it as a list first, for each of a burst's answers.
struct CancelledOrders(Vec<RawOrder>);

impl<'de> serde::Deserialize<'de> for CancelledOrders {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CancelledOrders, D::Error> {
        use serde::de::Error;
        use serde_json::value::RawValue;
        #[derive(serde::Deserialize)]
        struct OrderList {
            #[serde(rename = "orderReports")]
            order_reports: Vec<RawOrder>,
        }
        let entries = Vec::<&'de RawValue>::deserialize(d)?;
        let mut orders = Vec::with_capacity(entries.len());
        for entry in entries {
            match serde_json::from_str::<RawOrder>(entry.get()) {
                Ok(order) => orders.push(order),
                Err(as_order) => match serde_json::from_str::<OrderList>(entry.get()) {
                    Ok(list) => orders.extend(list.order_reports),
                    Err(_) => return Err(D::Error::custom(as_order)),
                },
            }
        }
        Ok(CancelledOrders(orders))
    }
}

/// -2011 "Unknown order sent." / -2013 "Order does not exist.": nothing to cancel.
fn nothing_to_cancel(err: &ExchangeError) -> bool {
    matches!(err.code(), Some(-2011) | Some(-2013))
}

/// The pool and IP weight of listing every open order on `market` without a symbol,
/// both books on futures (what one pass of the cancel-until-quiet watch costs there).
pub fn listing_weight(market: Market) -> (crate::Family, u32) {
    let regular = open_orders_spec(market);
    let algo = match market {
        Market::UsdM => weights::FAPI_OPEN_ALGO_ORDERS.weight_all,
        Market::CoinM => weights::DAPI_OPEN_ALGO_ORDERS.weight_all,
        Market::Spot | Market::Margin => 0,
    };
    (regular.family().pool(), regular.weight_all + algo)
}

impl Client {
    /// Every open order on `market`, for one symbol or all. On USDⓈ-M and COIN-M this
    /// includes the conditional (algo) orders, marked `is_algo`.
    pub async fn open_orders(
        &self,
        market: Market,
        symbol: Option<&str>,
    ) -> Result<Vec<Order>, ExchangeError> {
        let params = Params::new().opt("symbol", symbol);
        let regular = async {
            let raw: Vec<RawOrder> = self
                .execute(open_orders_spec(market), params.clone())
                .await?;
            Ok::<_, ExchangeError>(
                raw.into_iter()
                    .map(|o| o.normalise(market))
                    .collect::<Vec<_>>(),
            )
        };
        if !matches!(market, Market::UsdM | Market::CoinM) {
            return regular.await;
        }
        let (regular, algo) = tokio::join!(regular, self.open_algo_orders(market, symbol));
        let mut orders = regular?;
        orders.extend(algo?);
        Ok(orders)
    }

    /// Futures conditional orders only (`GET /fapi/v1/openAlgoOrders` or
    /// `/dapi/v1/openAlgoOrders`). Spot and margin have no algo book: empty.
    pub async fn open_algo_orders(
        &self,
        market: Market,
        symbol: Option<&str>,
    ) -> Result<Vec<Order>, ExchangeError> {
        let spec = match market {
            Market::UsdM => &weights::FAPI_OPEN_ALGO_ORDERS,
            Market::CoinM => &weights::DAPI_OPEN_ALGO_ORDERS,
            Market::Spot | Market::Margin => return Ok(Vec::new()),
        };
        let AlgoOrders(list) = self
            .execute(spec, Params::new().opt("symbol", symbol))
            .await?;
        Ok(list.into_iter().map(|o| o.normalise(market)).collect())
    }

    /// Cancel every open order on `symbol` in `market`. Idempotent: nothing left to
    /// cancel is success with `nothing_to_cancel`. On USDⓈ-M and COIN-M the regular and
    /// the conditional (algo) books are both cancelled. Refused in a dry run.
    pub async fn cancel_all_open_orders(
        &self,
        market: Market,
        symbol: &str,
    ) -> Result<CancelAll, ExchangeError> {
        self.cancel_open_orders_in(market, symbol, true, true).await
    }

    /// Like [`Client::cancel_all_open_orders`], choosing the futures books: only the
    /// regular one, only the conditional (algo) one, or both — so a symbol whose regular
    /// orders are already gone is not sent a second, pointless cancel. Other markets
    /// have one book and ignore the choice.
    pub async fn cancel_open_orders_in(
        &self,
        market: Market,
        symbol: &str,
        regular_book: bool,
        algo_book: bool,
    ) -> Result<CancelAll, ExchangeError> {
        let params = Params::new().add("symbol", symbol);
        let mut result = CancelAll {
            market,
            symbol: symbol.to_string(),
            cancelled: Vec::new(),
            nothing_to_cancel: false,
        };
        match market {
            Market::Spot | Market::Margin => {
                let spec = if market == Market::Spot {
                    &weights::SPOT_CANCEL_ALL
                } else {
                    &weights::MARGIN_CANCEL_ALL
                };
                match self.execute::<CancelledOrders>(spec, params).await {
                    Ok(CancelledOrders(orders)) => {
                        result.cancelled =
                            orders.into_iter().map(|o| o.normalise(market)).collect();
                        result.cancelled.dedup_by_key(|o| o.order_id);
                    }
                    Err(e) if nothing_to_cancel(&e) => result.nothing_to_cancel = true,
                    Err(e) => return Err(e),
                }
            }
            Market::UsdM | Market::CoinM => {
                let (regular_spec, algo_spec) = if market == Market::UsdM {
                    (&weights::FAPI_CANCEL_ALL, &weights::FAPI_CANCEL_ALL_ALGO)
                } else {
                    (&weights::DAPI_CANCEL_ALL, &weights::DAPI_CANCEL_ALL_ALGO)
                };
                let book = |wanted: bool, spec: &'static weights::Spec| {
                    let params = params.clone();
                    async move {
                        match wanted {
                            // Futures answer only "done": read, not kept.
                            true => Some(self.execute::<serde::de::IgnoredAny>(spec, params).await),
                            false => None,
                        }
                    }
                };
                let (regular, algo) =
                    tokio::join!(book(regular_book, regular_spec), book(algo_book, algo_spec),);
                let mut nothing = true;
                for outcome in [regular, algo].into_iter().flatten() {
                    match outcome {
                        Ok(_) => nothing = false,
                        Err(e) if nothing_to_cancel(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
                result.nothing_to_cancel = nothing;
            }
        }
        Ok(result)
    }

    /// Orders on `symbol` created within one window (at most what
    /// `Pull::Orders(market).windows` gives), all pages.
    pub async fn order_history_window(
        &self,
        market: Market,
        symbol: &str,
        window: TimeWindow,
    ) -> Result<Vec<Order>, ExchangeError> {
        let spec = check_window(Pull::Orders(market), window)?;
        let mut out: Vec<Order> = Vec::new();
        let mut start = window.start_ms;
        loop {
            let params = Params::new()
                .add("symbol", symbol)
                .add("startTime", start)
                .add("endTime", window.end_ms)
                .add("limit", PAGE);
            let page: Vec<RawOrder> = self.execute(spec, params).await?;
            let full = page.len() >= PAGE;
            let before = out.len();
            for order in page {
                let order = order.normalise(market);
                if !out.iter().any(|o| o.order_id == order.order_id) {
                    out.push(order);
                }
            }
            // The next page starts at the last order's time (inclusive, deduplicated):
            // `allOrders` pages by time within a window.
            match out.iter().map(|o| o.time).max() {
                Some(last) if full && out.len() > before && last > start => start = last,
                _ => break,
            }
        }
        Ok(out)
    }

    /// Orders over any range: the windows one after another. Serial and without
    /// progress; drive `order_history_window` yourself for either.
    pub async fn order_history(
        &self,
        market: Market,
        symbol: &str,
        window: TimeWindow,
    ) -> Result<Vec<Order>, ExchangeError> {
        let mut out = Vec::new();
        for w in Pull::Orders(market).windows(window) {
            out.extend(self.order_history_window(market, symbol, w).await?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn algo(body: &str) -> Result<Vec<Order>, serde_json::Error> {
        let AlgoOrders(list) = serde_json::from_str(body)?;
        Ok(list
            .into_iter()
            .map(|o| o.normalise(Market::UsdM))
            .collect())
    }

    #[test]
    fn algo_listings_are_read_as_a_list_or_wrapped() {
        let one = r#"{"algoId":7,"symbol":"BTCUSDT","side":"SELL","orderType":"STOP_MARKET","quantity":"0.010","triggerPrice":"60000.00","algoStatus":"NEW","createTime":1700000000000}"#;
        let listed = algo(&format!("[{one}]")).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].order_id, 7);
        assert!(listed[0].is_algo);
        assert_eq!(listed[0].stop_price, Some("60000".parse().unwrap()));
        let wrapped = algo(&format!(
            r#"{{"total":1,"orders":[{one}],"note":{{"x":[1]}}}}"#
        ))
        .unwrap();
        assert_eq!(wrapped, listed);
        assert!(algo("[]").unwrap().is_empty());
    }

    fn cancelled(body: &str) -> Result<Vec<Order>, serde_json::Error> {
        let CancelledOrders(list) = serde_json::from_str(body)?;
        Ok(list
            .into_iter()
            .map(|o| o.normalise(Market::Spot))
            .collect())
    }

    #[test]
    fn a_cancel_answer_lists_its_orders_and_the_orders_of_its_lists() {
        let order = r#"{"symbol":"BTCUSDT","origClientOrderId":"abc","orderId":11,"orderListId":-1,"clientOrderId":"cancel1","transactTime":1700000000500,"price":"0.10","origQty":"2.5","executedQty":"0","status":"CANCELED","type":"LIMIT","side":"SELL"}"#;
        let list = r#"{"orderListId":5,"contingencyType":"OCO","symbol":"BTCUSDT","orders":[{"symbol":"BTCUSDT","orderId":12,"clientOrderId":"l1"}],"orderReports":[{"symbol":"BTCUSDT","origClientOrderId":"l1","orderId":12,"price":"1","origQty":"1","executedQty":"0","status":"CANCELED","type":"STOP_LOSS_LIMIT","side":"SELL","stopPrice":"0.9"},{"symbol":"BTCUSDT","origClientOrderId":"l2","orderId":13,"price":"1.2","origQty":"1","executedQty":"0","status":"CANCELED","type":"LIMIT_MAKER","side":"SELL"}]}"#;
        let orders = cancelled(&format!("[{order},{list}]")).unwrap();
        let ids: Vec<(i64, &str)> = orders
            .iter()
            .map(|o| (o.order_id, o.client_order_id.as_str()))
            .collect();
        assert_eq!(ids, [(11, "abc"), (12, "l1"), (13, "l2")]);
        assert_eq!(orders[0].time, 1_700_000_000_500);
        assert_eq!(orders[1].stop_price, Some("0.9".parse().unwrap()));
        assert!(cancelled("[]").unwrap().is_empty());
        // An entry that is neither says what is wrong with it as an order.
        let err = cancelled(r#"[{"symbol":"BTCUSDT","orderId":"x1"}]"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`x1` is not an integer"), "{err}");
        let err = cancelled(r#"{"code":200}"#).unwrap_err().to_string();
        assert!(err.contains("expected a sequence"), "{err}");
    }

    #[test]
    fn an_algo_listing_of_another_shape_is_refused_with_its_reason() {
        let err = algo(r#"{"total":0}"#).unwrap_err().to_string();
        assert!(err.contains("missing field `orders`"), "{err}");
        let err = algo(r#""none""#).unwrap_err().to_string();
        assert!(err.contains("a list of algo orders"), "{err}");
        let err = algo(r#"[{"symbol":"BTCUSDT"}]"#).unwrap_err().to_string();
        assert!(err.contains("algoId"), "{err}");
    }
}
