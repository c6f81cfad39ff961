//! Evidence pulls over time: trades, withdrawals, deposits, universal transfers,
//! Binance Pay, sub-account transfers. Each `*_window` method covers one window Binance
//! accepts (see `Pull::windows`) and pages inside it; the range methods walk the
//! windows serially.
use crate::model::{RawPayPage, RawTrade, RawTransferPage};
use crate::signing::Params;
use crate::weights::{self, Pull};
use crate::{
    Client, Deposit, ExchangeError, Income, Market, PayTransaction, RecentTrades,
    SubAccountTransfer, TimeWindow, Trade, UniversalTransfer, Withdrawal,
};

use super::{check_window, unsupported, PAGE};

impl Client {
    /// The account's trades on `symbol` within one window, all pages: the window first,
    /// then by `fromId` (which Binance does not combine with times) until past its end.
    pub async fn my_trades_window(
        &self,
        market: Market,
        symbol: &str,
        window: TimeWindow,
    ) -> Result<Vec<Trade>, ExchangeError> {
        let spec = check_window(Pull::Trades(market), window)?;
        let mut out: Vec<Trade> = Vec::new();
        let mut params = Params::new()
            .add("symbol", symbol)
            .add("startTime", window.start_ms)
            .add("endTime", window.end_ms)
            .add("limit", PAGE);
        loop {
            let page: Vec<RawTrade> = self.execute(spec, params).await?;
            let full = page.len() >= PAGE;
            let page: Vec<Trade> = page
                .into_iter()
                .map(|t| t.normalise(market, symbol))
                .collect();
            let last = page.iter().max_by_key(|t| t.id).map(|t| (t.id, t.time));
            out.extend(page.into_iter().filter(|t| window.contains(t.time)));
            match last {
                Some((id, time)) if full && time <= window.end_ms => {
                    params = Params::new()
                        .add("symbol", symbol)
                        .add("fromId", id + 1)
                        .add("limit", PAGE);
                }
                _ => break,
            }
        }
        out.sort_by_key(|t| t.id);
        out.dedup_by_key(|t| t.id);
        Ok(out)
    }

    /// The account's most recent spot trades on `symbol` (at most 1000), oldest first:
    /// `myTrades` with neither times nor `fromId`. One request that covers a whole
    /// review window whenever the oldest trade it returns is older than the window —
    /// and when fewer than 1000 come back, it is the account's whole history in the
    /// symbol, first trade included. (Futures `userTrades` without times covers only
    /// the last 7 days, so this is spot only.)
    pub async fn recent_trades(&self, symbol: &str) -> Result<RecentTrades, ExchangeError> {
        let market = Market::Spot;
        let spec = Pull::Trades(market).spec();
        let params = Params::new().add("symbol", symbol).add("limit", PAGE);
        let page: Vec<RawTrade> = self.execute(spec, params).await?;
        let whole_history = page.len() < PAGE;
        let mut trades: Vec<Trade> = page
            .into_iter()
            .map(|t| t.normalise(market, symbol))
            .collect();
        trades.sort_by_key(|t| t.id);
        Ok(RecentTrades {
            trades,
            whole_history,
        })
    }

    /// Trades over any range: the windows one after another (serial, no progress).
    pub async fn my_trades(
        &self,
        market: Market,
        symbol: &str,
        window: TimeWindow,
    ) -> Result<Vec<Trade>, ExchangeError> {
        let mut out = Vec::new();
        for w in Pull::Trades(market).windows(window) {
            out.extend(self.my_trades_window(market, symbol, w).await?);
        }
        Ok(out)
    }

    /// The account's first trade ever on `symbol` (`fromId=0&limit=1`): a symbol first
    /// traded inside the incident window is a warning sign.
    pub async fn first_trade(
        &self,
        market: Market,
        symbol: &str,
    ) -> Result<Option<Trade>, ExchangeError> {
        let spec = Pull::Trades(market).spec();
        let params = Params::new()
            .add("symbol", symbol)
            .add("fromId", 0)
            .add("limit", 1);
        let page: Vec<RawTrade> = self.execute(spec, params).await?;
        Ok(page.into_iter().next().map(|t| t.normalise(market, symbol)))
    }

    /// A futures account's income flow (`/fapi/v1/income`, `/dapi/v1/income`; no symbol
    /// needed) over `window`, all pages: the way to learn which futures symbols the
    /// account traded (REALIZED_PNL and COMMISSION rows name them) without asking every
    /// symbol. Binance answers a window from its start, `limit` rows at a time: the next
    /// page starts at the last row's millisecond (rows sharing it may straddle the page),
    /// deduplicated.
    pub async fn income(
        &self,
        market: Market,
        window: TimeWindow,
    ) -> Result<Vec<Income>, ExchangeError> {
        if !matches!(market, Market::UsdM | Market::CoinM) {
            return Err(unsupported("income history", market));
        }
        let mut out: Vec<Income> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for w in Pull::Income(market).windows(window) {
            let spec = check_window(Pull::Income(market), w)?;
            let mut start = w.start_ms;
            loop {
                let params = Params::new()
                    .add("startTime", start)
                    .add("endTime", w.end_ms)
                    .add("limit", PAGE);
                let page: Vec<Income> = self.execute(spec, params).await?;
                let full = page.len() >= PAGE;
                let last = page.iter().map(|r| r.time).max();
                for row in page {
                    let id = (
                        row.income_type.clone(),
                        row.tran_id.clone(),
                        row.trade_id.clone(),
                        row.time,
                    );
                    if w.contains(row.time) && seen.insert(id) {
                        out.push(row);
                    }
                }
                match last {
                    // A full page within one millisecond: step past it rather than loop.
                    Some(t) if full && t == start => start = t + 1,
                    Some(t) if full && t < w.end_ms => start = t,
                    _ => break,
                }
            }
        }
        out.sort_by_key(|r| r.time);
        Ok(out)
    }

    /// Withdrawals within one 90-day window, all pages. Costs 18,000 UID weight a page.
    pub async fn withdrawals_window(
        &self,
        window: TimeWindow,
    ) -> Result<Vec<Withdrawal>, ExchangeError> {
        self.offset_pages(Pull::Withdrawals, window).await
    }

    pub async fn withdrawals(&self, window: TimeWindow) -> Result<Vec<Withdrawal>, ExchangeError> {
        let mut out = Vec::new();
        for w in Pull::Withdrawals.windows(window) {
            out.extend(self.offset_pages(Pull::Withdrawals, w).await?);
        }
        Ok(out)
    }

    /// Deposits within one 90-day window, all pages.
    pub async fn deposits_window(&self, window: TimeWindow) -> Result<Vec<Deposit>, ExchangeError> {
        self.offset_pages(Pull::Deposits, window).await
    }

    pub async fn deposits(&self, window: TimeWindow) -> Result<Vec<Deposit>, ExchangeError> {
        let mut out = Vec::new();
        for w in Pull::Deposits.windows(window) {
            out.extend(self.offset_pages(Pull::Deposits, w).await?);
        }
        Ok(out)
    }

    /// Every page of one window of a pull Binance pages by `offset` (withdrawals,
    /// deposits): pages of `PAGE` rows until a short one.
    async fn offset_pages<T: serde::de::DeserializeOwned>(
        &self,
        pull: Pull,
        window: TimeWindow,
    ) -> Result<Vec<T>, ExchangeError> {
        let spec = check_window(pull, window)?;
        let params = |_page, got| {
            Params::new()
                .add("startTime", window.start_ms)
                .add("endTime", window.end_ms)
                .add("offset", got)
                .add("limit", PAGE)
        };
        self.pages(spec, PAGE, usize::MAX, params, |page: Result<Vec<T>, _>| {
            page
        })
        .await
    }

    /// Universal transfers of one `type` (see `UNIVERSAL_TRANSFER_TYPES`; Binance answers
    /// -1102 without one), pages of 100 by `current`. Binance keeps six months.
    pub async fn universal_transfers(
        &self,
        transfer_type: &str,
        window: TimeWindow,
    ) -> Result<Vec<UniversalTransfer>, ExchangeError> {
        const SIZE: usize = 100;
        let spec = check_window(Pull::UniversalTransfers, window)?;
        let mut out = Vec::new();
        for current in 1.. {
            let params = Params::new()
                .add("type", transfer_type)
                .add("startTime", window.start_ms)
                .add("endTime", window.end_ms)
                .add("current", current)
                .add("size", SIZE);
            let page: RawTransferPage = self.execute(spec, params).await?;
            let rows = page.rows.or(page.data).unwrap_or_default();
            let full = rows.len() >= SIZE;
            out.extend(rows);
            let total = page.total.unwrap_or(0).max(0) as usize;
            if !full || out.len() >= total {
                break;
            }
        }
        Ok(out)
    }

    /// Binance Pay transactions within one 90-day window. The endpoint has no offset:
    /// a full page (100) is followed by one ending at its oldest transaction,
    /// deduplicated by id.
    pub async fn pay_transactions_window(
        &self,
        window: TimeWindow,
    ) -> Result<Vec<PayTransaction>, ExchangeError> {
        const LIMIT: usize = 100;
        let spec = check_window(Pull::PayTransactions, window)?;
        let mut out: Vec<PayTransaction> = Vec::new();
        let mut end = window.end_ms;
        loop {
            let params = Params::new()
                .add("startTime", window.start_ms)
                .add("endTime", end)
                .add("limit", LIMIT);
            let page: RawPayPage = self.execute(spec, params).await?;
            if page.success == Some(false) {
                return Err(ExchangeError::Api {
                    endpoint: spec.endpoint(),
                    status: 200,
                    code: None,
                    message: page.message.unwrap_or_else(|| "success: false".into()),
                });
            }
            let full = page.data.len() >= LIMIT;
            let before = out.len();
            for tx in page.data {
                if !out.iter().any(|t| t.transaction_id == tx.transaction_id) {
                    out.push(tx);
                }
            }
            let oldest = out.iter().map(|t| t.transaction_time).min();
            match oldest {
                Some(oldest) if full && out.len() > before && oldest < end => end = oldest,
                _ => break,
            }
        }
        Ok(out)
    }

    pub async fn pay_transactions(
        &self,
        window: TimeWindow,
    ) -> Result<Vec<PayTransaction>, ExchangeError> {
        let mut out = Vec::new();
        for w in Pull::PayTransactions.windows(window) {
            out.extend(self.pay_transactions_window(w).await?);
        }
        Ok(out)
    }

    /// Transfers between the master account and its sub-accounts (master's view).
    /// A key that is not a master account's gets `ExchangeError::NotApplicable`: a clean
    /// skip. Credential rejections stay credential rejections.
    pub async fn sub_account_transfers(
        &self,
        window: TimeWindow,
    ) -> Result<Vec<SubAccountTransfer>, ExchangeError> {
        const LIMIT: usize = 500;
        let spec = &weights::SUB_ACCOUNT_TRANSFERS;
        let endpoint = spec.endpoint();
        let not_master = |why: String| ExchangeError::NotApplicable {
            endpoint,
            reason: format!(
                "the key is not a master account's ({why}); sub-account transfers skipped"
            ),
        };
        let mut out = Vec::new();
        for page_no in 1.. {
            let params = Params::new()
                .add("startTime", window.start_ms)
                .add("endTime", window.end_ms)
                .add("page", page_no)
                .add("limit", LIMIT);
            let value: serde_json::Value = match self.execute(spec, params).await {
                Ok(v) => v,
                // Binance answers a non-master key with a 4xx error object; malformed
                // parameters (-11xx) would be our bug and stay errors.
                Err(ExchangeError::Api {
                    status,
                    code,
                    message,
                    ..
                }) if (400..500).contains(&status)
                    && !matches!(code, Some(c) if (-1199..=-1100).contains(&c)) =>
                {
                    return Err(not_master(format!(
                        "Binance answered{}: {message}",
                        code.map(|c| format!(" {c}")).unwrap_or_default()
                    )))
                }
                Err(e) => return Err(e),
            };
            // Old-style answer: `{"success": false, "msg": "Sub-account function is not
            // enabled."}`.
            let rows: Vec<SubAccountTransfer> = match value {
                serde_json::Value::Array(_) => {
                    serde_json::from_value(value).map_err(|e| ExchangeError::Decode {
                        endpoint,
                        status: 200,
                        reason: e.to_string(),
                    })?
                }
                other => {
                    let msg = other
                        .get("msg")
                        .and_then(|m| m.as_str())
                        .unwrap_or("no list");
                    return Err(not_master(msg.to_string()));
                }
            };
            let full = rows.len() >= LIMIT;
            out.extend(rows);
            if !full {
                break;
            }
        }
        Ok(out)
    }
}
