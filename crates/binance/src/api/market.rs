//! Public market data. Margin uses spot's symbols and prices.
use chrono::{DateTime, Utc};

use crate::model::{kline_from_array, KlineRow, RawExchangeInfo};
use crate::signing::Params;
use crate::weights::{self, Spec};
use crate::{Client, ExchangeError, ExchangeInfo, Kline, Market, TickerPrice};

fn pick(
    market: Market,
    spot: &'static Spec,
    fapi: &'static Spec,
    dapi: &'static Spec,
) -> &'static Spec {
    match market {
        Market::Spot | Market::Margin => spot,
        Market::UsdM => fapi,
        Market::CoinM => dapi,
    }
}

impl Client {
    /// `GET /api/v3/ping` (`/fapi/v1/ping`, `/dapi/v1/ping`): is the server there?
    pub async fn ping(&self, market: Market) -> Result<(), ExchangeError> {
        let spec = pick(
            market,
            &weights::SPOT_PING,
            &weights::FAPI_PING,
            &weights::DAPI_PING,
        );
        let _: serde_json::Value = self.execute(spec, Params::new()).await?;
        Ok(())
    }

    /// The server's clock, as `GET .../time` reports it.
    pub async fn server_time(&self, market: Market) -> Result<DateTime<Utc>, ExchangeError> {
        #[derive(serde::Deserialize)]
        struct Time {
            #[serde(rename = "serverTime")]
            server_time: i64,
        }
        let spec = pick(
            market,
            &weights::SPOT_TIME,
            &weights::FAPI_TIME,
            &weights::DAPI_TIME,
        );
        let t: Time = self.execute(spec, Params::new()).await?;
        DateTime::from_timestamp_millis(t.server_time).ok_or_else(|| ExchangeError::Decode {
            endpoint: spec.endpoint(),
            status: 200,
            reason: format!("serverTime {} is not a time", t.server_time),
        })
    }

    /// Symbols with base, quote and status, and the live rate limits.
    pub async fn exchange_info(&self, market: Market) -> Result<ExchangeInfo, ExchangeError> {
        let spec = pick(
            market,
            &weights::SPOT_EXCHANGE_INFO,
            &weights::FAPI_EXCHANGE_INFO,
            &weights::DAPI_EXCHANGE_INFO,
        );
        let raw: RawExchangeInfo = self.execute(spec, Params::new()).await?;
        let info = raw.normalise(market);
        // The live limits replace the published ones (`/fapi` and `/dapi`: one pool).
        self.learn_limits(spec.family(), &info.rate_limits);
        Ok(info)
    }

    /// Read the futures pool's live limits (`/fapi/v1/exchangeInfo`, weight 1) and
    /// return its weight limit per window; on failure, the limit as it stands.
    pub async fn learn_futures_limits(&self) -> u32 {
        let _ = self.exchange_info(Market::UsdM).await;
        self.weight_limit(crate::Family::Fapi)
    }

    /// Last price of every symbol.
    pub async fn ticker_prices(&self, market: Market) -> Result<Vec<TickerPrice>, ExchangeError> {
        let spec = pick(
            market,
            &weights::SPOT_TICKER_PRICE,
            &weights::FAPI_TICKER_PRICE,
            &weights::DAPI_TICKER_PRICE,
        );
        self.execute(spec, Params::new()).await
    }

    /// The 1-minute kline of the minute containing `time_ms`, if the symbol traded then:
    /// what "the market price" was when a suspicious trade happened.
    pub async fn kline_minute(
        &self,
        market: Market,
        symbol: &str,
        time_ms: i64,
    ) -> Result<Option<Kline>, ExchangeError> {
        let spec = pick(
            market,
            &weights::SPOT_KLINES,
            &weights::FAPI_KLINES,
            &weights::DAPI_KLINES,
        );
        let minute = time_ms - time_ms.rem_euclid(60_000);
        let params = Params::new()
            .add("symbol", symbol)
            .add("interval", "1m")
            .add("startTime", minute)
            .add("endTime", minute + 59_999)
            .add("limit", 1);
        let rows: Vec<Vec<serde_json::Value>> = self.execute(spec, params).await?;
        rows.first()
            .map(|row| kline_from_array(row))
            .transpose()
            .map_err(|reason| ExchangeError::Decode {
                endpoint: spec.endpoint(),
                status: 200,
                reason,
            })
    }

    /// The one-minute klines covering `window` (the caller keeps windows at most 1000
    /// minutes long): the market price around a batch of trades in one request. Asks
    /// for exactly the minutes in the window, which on futures also keeps the weight
    /// (by `limit`) as low as it can be.
    pub async fn klines_minutes(
        &self,
        market: Market,
        symbol: &str,
        window: crate::TimeWindow,
    ) -> Result<Vec<Kline>, ExchangeError> {
        let spec = pick(
            market,
            &weights::SPOT_KLINES,
            &weights::FAPI_KLINES,
            &weights::DAPI_KLINES,
        );
        let minutes = (window.span_ms() / 60_000 + 1).clamp(1, 1000) as u32;
        let params = Params::new()
            .add("symbol", symbol)
            .add("interval", "1m")
            .add("startTime", window.start_ms)
            .add("endTime", window.end_ms)
            .add("limit", minutes);
        let rows: Vec<KlineRow> = match market {
            Market::UsdM | Market::CoinM => {
                self.execute_weighted(spec, params, weights::futures_klines_weight(minutes))
                    .await?
            }
            Market::Spot | Market::Margin => self.execute(spec, params).await?,
        };
        rows.into_iter()
            .map(|row| row.0)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| ExchangeError::Decode {
                endpoint: spec.endpoint(),
                status: 200,
                reason,
            })
    }
}
