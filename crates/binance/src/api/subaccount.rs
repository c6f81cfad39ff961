//! Sub-accounts, with a master account's key: list them, list and delete their API keys,
//! and read the master-side transfer histories. A key that is not a master's gets
//! `ExchangeError::NotApplicable` with Binance's words, so callers can fall back cleanly.
use crate::signing::Params;
use crate::weights::{self, Spec};
use crate::{Client, ExchangeError, SubAccount, SubAccountApiKey, TimeWindow};

/// A 4xx refusal that is not a malformed-parameter error (-11xx, our bug) and not a
/// rejection of the key itself: Binance saying this is not for this key or account.
fn refusal(spec: &Spec, e: ExchangeError, what: &str) -> ExchangeError {
    match e {
        ExchangeError::Api {
            status,
            code,
            message,
            ..
        } if (400..500).contains(&status)
            && !matches!(code, Some(c) if (-1199..=-1100).contains(&c) && c != -1102) =>
        {
            ExchangeError::NotApplicable {
                endpoint: spec.endpoint(),
                reason: format!(
                    "{what}: Binance answered{}: {message}",
                    code.map(|c| format!(" {c}")).unwrap_or_default()
                ),
            }
        }
        other => other,
    }
}

/// An answer `{"success": false, "msg": ...}` (old-style refusal) as NotApplicable.
fn old_style_refusal(spec: &Spec, value: &serde_json::Value, what: &str) -> Option<ExchangeError> {
    (value.get("success") == Some(&serde_json::Value::Bool(false))).then(|| {
        ExchangeError::NotApplicable {
            endpoint: spec.endpoint(),
            reason: format!(
                "{what}: {}",
                value
                    .get("msg")
                    .and_then(|m| m.as_str())
                    .unwrap_or("refused")
            ),
        }
    })
}

fn decode<T: serde::de::DeserializeOwned>(
    spec: &Spec,
    value: serde_json::Value,
) -> Result<T, ExchangeError> {
    serde_json::from_value(value).map_err(|e| ExchangeError::Decode {
        endpoint: spec.endpoint(),
        status: 200,
        reason: e.to_string(),
    })
}

impl Client {
    /// `GET /sapi/v1/sub-account/list`, every page: the master account's sub-accounts.
    pub async fn sub_accounts(&self) -> Result<Vec<SubAccount>, ExchangeError> {
        const LIMIT: usize = 200;
        let spec = &weights::SUB_ACCOUNT_LIST;
        let what = "not a master account's key";
        let mut out: Vec<SubAccount> = Vec::new();
        for page in 1..=50 {
            let params = Params::new().add("page", page).add("limit", LIMIT);
            let value: serde_json::Value = self
                .execute(spec, params)
                .await
                .map_err(|e| refusal(spec, e, what))?;
            if let Some(e) = old_style_refusal(spec, &value, what) {
                return Err(e);
            }
            let list = value
                .get("subAccounts")
                .cloned()
                .unwrap_or(serde_json::Value::Array(Vec::new()));
            let subs: Vec<SubAccount> = decode(spec, list)?;
            let full = subs.len() >= LIMIT;
            out.extend(subs);
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// `GET /sapi/v1/sub-account/subAccountApi`: a sub-account's API keys. The list's
    /// wrapper is not documented (`list`, `rows`, or a bare array): all are read.
    pub async fn sub_account_api_keys(
        &self,
        email: &str,
    ) -> Result<Vec<SubAccountApiKey>, ExchangeError> {
        let spec = &weights::SUB_ACCOUNT_API_KEYS;
        let what = "the sub-account's keys cannot be listed with this key";
        let value: serde_json::Value = self
            .execute(spec, Params::new().add("email", email))
            .await
            .map_err(|e| refusal(spec, e, what))?;
        if let Some(e) = old_style_refusal(spec, &value, what) {
            return Err(e);
        }
        let list = match value {
            serde_json::Value::Array(_) => value,
            other => ["list", "rows", "data"]
                .iter()
                .find_map(|f| other.get(*f).filter(|v| v.is_array()).cloned())
                .unwrap_or(serde_json::Value::Array(Vec::new())),
        };
        decode(spec, list)
    }

    /// `DELETE /sapi/v1/sub-account/subAccountApi` (master key with trading permission):
    /// Binance answers `{}`. The key appears masked in the journal's request lines.
    pub async fn delete_sub_account_api_key(
        &self,
        email: &str,
        api_key: &str,
    ) -> Result<(), ExchangeError> {
        let spec = &weights::SUB_ACCOUNT_API_DELETE;
        let value: serde_json::Value = self
            .execute(
                spec,
                Params::new()
                    .add("email", email)
                    .add("subAccountApiKey", api_key),
            )
            .await?;
        if let Some(e) = old_style_refusal(spec, &value, "Binance refused the deletion") {
            return Err(e);
        }
        Ok(())
    }

    /// `GET /sapi/v1/sub-account/universalTransfer` (master's view; windows under 7
    /// days): rows as Binance sends them.
    pub async fn sub_account_universal_transfers(
        &self,
        window: TimeWindow,
    ) -> Result<Vec<serde_json::Value>, ExchangeError> {
        let spec = &weights::SUB_ACCOUNT_UNIVERSAL_TRANSFERS;
        let what = "not a master account's key";
        let mut out = Vec::new();
        for w in window.split(spec.max_span_ms.unwrap_or(i64::MAX)) {
            for page in 1..=100 {
                let params = Params::new()
                    .add("startTime", w.start_ms)
                    .add("endTime", w.end_ms)
                    .add("page", page)
                    .add("limit", 500);
                let value: serde_json::Value = self
                    .execute(spec, params)
                    .await
                    .map_err(|e| refusal(spec, e, what))?;
                let rows = value
                    .get("result")
                    .and_then(|r| r.as_array())
                    .cloned()
                    .unwrap_or_default();
                let full = rows.len() >= 500;
                out.extend(rows);
                if !full {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// `GET /sapi/v1/sub-account/futures/internalTransfer` for one sub-account and
    /// futures type (1 USDⓈ-M, 2 COIN-M), windows under 7 days.
    pub async fn sub_account_futures_internal_transfers(
        &self,
        email: &str,
        futures_type: u8,
        window: TimeWindow,
    ) -> Result<Vec<serde_json::Value>, ExchangeError> {
        let spec = &weights::SUB_ACCOUNT_FUTURES_INTERNAL_TRANSFERS;
        let what = "not a master account's key";
        let mut out = Vec::new();
        for w in window.split(spec.max_span_ms.unwrap_or(i64::MAX)) {
            let params = Params::new()
                .add("email", email)
                .add("futuresType", futures_type)
                .add("startTime", w.start_ms)
                .add("endTime", w.end_ms)
                .add("limit", 100);
            let value: serde_json::Value = self
                .execute(spec, params)
                .await
                .map_err(|e| refusal(spec, e, what))?;
            if let Some(e) = old_style_refusal(spec, &value, what) {
                return Err(e);
            }
            out.extend(
                value
                    .get("transfers")
                    .and_then(|r| r.as_array())
                    .cloned()
                    .unwrap_or_default(),
            );
        }
        Ok(out)
    }

    /// Whether this client signs with `api_key` (compared in full, never shown).
    pub fn signs_with(&self, api_key: &str) -> bool {
        self.api_key_exposed().is_some_and(|k| k == api_key)
    }
}
