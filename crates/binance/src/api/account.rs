//! Account state: the spot account, the key's permissions, margin loans, futures
//! balances and positions.
use crate::signing::Params;
use crate::weights;
use crate::{
    ApiRestrictions, Client, ExchangeError, FuturesBalance, MarginAccount, Market, Position,
    SpotAccount,
};

use super::unsupported;

impl Client {
    /// `GET /api/v3/account`: balances, `canTrade`, `canWithdraw`, `permissions`. Urgent:
    /// it doubles as a liveness probe for the key.
    pub async fn account(&self) -> Result<SpotAccount, ExchangeError> {
        self.execute(&weights::SPOT_ACCOUNT, Params::new()).await
    }

    /// `GET /sapi/v1/account/apiRestrictions`: what the key may do, whether it is
    /// IP-restricted, and when it was created. Urgent (a liveness probe too).
    pub async fn api_restrictions(&self) -> Result<ApiRestrictions, ExchangeError> {
        self.execute(&weights::API_RESTRICTIONS, Params::new())
            .await
    }

    /// `GET /sapi/v1/account/status`: `"Normal"`, or why the account is restricted.
    pub async fn account_status(&self) -> Result<String, ExchangeError> {
        #[derive(serde::Deserialize)]
        struct Status {
            data: String,
        }
        let s: Status = self
            .execute(&weights::ACCOUNT_STATUS, Params::new())
            .await?;
        Ok(s.data)
    }

    /// `GET /sapi/v1/margin/account`: cross-margin assets, including what is borrowed.
    pub async fn margin_account(&self) -> Result<MarginAccount, ExchangeError> {
        self.execute(&weights::MARGIN_ACCOUNT, Params::new()).await
    }

    /// Futures wallet balances (`/fapi/v2/balance`, `/dapi/v1/balance`).
    pub async fn futures_balances(
        &self,
        market: Market,
    ) -> Result<Vec<FuturesBalance>, ExchangeError> {
        let spec = match market {
            Market::UsdM => &weights::FAPI_BALANCE,
            Market::CoinM => &weights::DAPI_BALANCE,
            _ => return Err(unsupported("a futures balance", market)),
        };
        let mut balances: Vec<FuturesBalance> = self.execute(spec, Params::new()).await?;
        balances.iter_mut().for_each(|b| b.market = market);
        Ok(balances)
    }

    /// Futures positions (`/fapi/v3/positionRisk`, `/dapi/v1/positionRisk`), open or not;
    /// see [`Position::is_open`]. v3 lists only symbols with a position or open orders and
    /// has no `leverage` or `marginType`.
    pub async fn position_risk(&self, market: Market) -> Result<Vec<Position>, ExchangeError> {
        let spec = match market {
            Market::UsdM => &weights::FAPI_POSITION_RISK,
            Market::CoinM => &weights::DAPI_POSITION_RISK,
            _ => return Err(unsupported("positionRisk", market)),
        };
        let mut positions: Vec<Position> = self.execute(spec, Params::new()).await?;
        positions.iter_mut().for_each(|p| p.market = market);
        Ok(positions)
    }
}
