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

/// A master-side read's answer: a refusal becomes NotApplicable (an old-style
/// `{"success": false}` one too where `old_style`), anything else is the value.
fn master_answer(
    spec: &Spec,
    what: &str,
    answer: Result<serde_json::Value, ExchangeError>,
    old_style: bool,
) -> Result<serde_json::Value, ExchangeError> {
    let value = answer.map_err(|e| refusal(spec, e, what))?;
    match old_style_refusal(spec, &value, what) {
        Some(e) if old_style => Err(e),
        _ => Ok(value),
    }
}

/// The rows under `field`, none where it is missing or not a list.
fn rows_under(value: &serde_json::Value, field: &str) -> Vec<serde_json::Value> {
    value
        .get(field)
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default()
}

const NOT_MASTER: &str = "not a master account's key";

impl Client {
    /// `GET /sapi/v1/sub-account/list`, every page: the master account's sub-accounts.
    pub async fn sub_accounts(&self) -> Result<Vec<SubAccount>, ExchangeError> {
        const LIMIT: usize = 200;
        let spec = &weights::SUB_ACCOUNT_LIST;
        let params = |page, _got| Params::new().add("page", page).add("limit", LIMIT);
        let rows = |answer| {
            let value = master_answer(spec, NOT_MASTER, answer, true)?;
            let list = value
                .get("subAccounts")
                .cloned()
                .unwrap_or(serde_json::Value::Array(Vec::new()));
            decode::<Vec<SubAccount>>(spec, list)
        };
        self.pages(spec, LIMIT, 50, params, rows).await
    }

    /// `GET /sapi/v1/sub-account/subAccountApi`: a sub-account's API keys. The list's
    /// wrapper is not documented (`list`, `rows`, or a bare array): all are read.
    pub async fn sub_account_api_keys(
        &self,
        email: &str,
    ) -> Result<Vec<SubAccountApiKey>, ExchangeError> {
        let spec = &weights::SUB_ACCOUNT_API_KEYS;
        let what = "the sub-account's keys cannot be listed with this key";
        let answer = self.execute(spec, Params::new().add("email", email)).await;
        let value = master_answer(spec, what, answer, true)?;
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
        let params = |w: TimeWindow, page| {
            let p = Params::new().add("startTime", w.start_ms);
            p.add("endTime", w.end_ms)
                .add("page", page)
                .add("limit", 500)
        };
        self.master_windows(spec, window, (500, 100), "result", false, params)
            .await
    }

    /// `GET /sapi/v1/sub-account/futures/internalTransfer` for one sub-account and
    /// futures type (1 USDⓈ-M, 2 COIN-M), windows under 7 days: one request of up to
    /// 100 rows a window.
    pub async fn sub_account_futures_internal_transfers(
        &self,
        email: &str,
        futures_type: u8,
        window: TimeWindow,
    ) -> Result<Vec<serde_json::Value>, ExchangeError> {
        let spec = &weights::SUB_ACCOUNT_FUTURES_INTERNAL_TRANSFERS;
        let params = |w: TimeWindow, _page| {
            let p = Params::new().add("email", email);
            p.add("futuresType", futures_type)
                .add("startTime", w.start_ms)
                .add("endTime", w.end_ms)
                .add("limit", 100)
        };
        self.master_windows(spec, window, (100, 1), "transfers", true, params)
            .await
    }

    /// A master-side history read: `window` cut into the spans `spec` accepts, oldest
    /// first, and each read in pages (`paging`: rows a full page, pages at most) of the
    /// rows under `field`, until a short page. `params(w, page)` is one request.
    async fn master_windows(
        &self,
        spec: &'static Spec,
        window: TimeWindow,
        (limit, max_pages): (usize, usize),
        field: &str,
        old_style: bool,
        params: impl Fn(TimeWindow, usize) -> Params,
    ) -> Result<Vec<serde_json::Value>, ExchangeError> {
        let rows = |answer| {
            let value = master_answer(spec, NOT_MASTER, answer, old_style)?;
            Ok(rows_under(&value, field))
        };
        let mut out = Vec::new();
        for w in window.split(spec.max_span_ms.unwrap_or(i64::MAX)) {
            let page = |page, _got| params(w, page);
            out.extend(self.pages(spec, limit, max_pages, page, rows).await?);
        }
        Ok(out)
    }

    /// Whether this client signs with `api_key` (compared in full, never shown).
    pub fn signs_with(&self, api_key: &str) -> bool {
        self.api_key_exposed().is_some_and(|k| k == api_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Credentials;
    use crate::{ClientConfig, Endpoints};
    use wiremock::{matchers::any, Mock, MockServer, Request, ResponseTemplate};

    const DAY: i64 = 86_400_000;

    /// Answers each read with `rows` rows of its own page (page 1 full, then short) and
    /// records nothing itself: the requests are read back from the server, in order.
    async fn master(server: &MockServer) -> Client {
        Mock::given(any())
            .respond_with(|req: &Request| {
                let q = |name: &str| {
                    req.url
                        .query_pairs()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.into_owned())
                };
                let page = q("page").unwrap_or_default();
                let start = q("startTime").unwrap_or_default();
                let rows = |n: usize, row: serde_json::Value| vec![row; n];
                let body = match req.url.path() {
                    "/sapi/v1/sub-account/list" => serde_json::json!({
                        "subAccounts": rows(if page == "1" { 200 } else { 1 },
                            serde_json::json!({"email": "a@sub"}))
                    }),
                    "/sapi/v1/sub-account/universalTransfer" => serde_json::json!({
                        "result": rows(
                            match (start.as_str(), page.as_str()) {
                                ("0", "1") => 500,
                                ("0", _) => 2,
                                _ => 0,
                            },
                            serde_json::json!({"tranId": 1})
                        )
                    }),
                    _ => serde_json::json!({
                        "transfers": rows(100, serde_json::json!({"tranId": 2}))
                    }),
                };
                ResponseTemplate::new(200).set_body_json(body)
            })
            .mount(server)
            .await;
        let mut config = ClientConfig::new(Endpoints::single(server.uri()));
        config.credentials = Some(Credentials::new("master-key", "master-secret"));
        let client = Client::new(config).unwrap();
        client.sign_with_local_clock_until_synced();
        client
    }

    /// Each request's path and its parameters but the signature's, in the order sent.
    async fn sent(server: &MockServer) -> Vec<String> {
        let unsigned = |(k, _): &(std::borrow::Cow<str>, std::borrow::Cow<str>)| {
            !matches!(k.as_ref(), "timestamp" | "recvWindow" | "signature")
        };
        server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let params: Vec<String> = r
                    .url
                    .query_pairs()
                    .filter(unsigned)
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!("{}?{}", r.url.path(), params.join("&"))
            })
            .collect()
    }

    #[tokio::test]
    async fn sub_account_reads_request_the_same_pages_in_the_same_order() {
        let server = MockServer::start().await;
        let client = master(&server).await;
        // Eight days: two windows under seven days each.
        let window = TimeWindow::new(0, 8 * DAY);

        assert_eq!(client.sub_accounts().await.unwrap().len(), 201);
        assert_eq!(
            client
                .sub_account_universal_transfers(window)
                .await
                .unwrap()
                .len(),
            502
        );
        assert_eq!(
            client
                .sub_account_futures_internal_transfers("a@sub", 1, window)
                .await
                .unwrap()
                .len(),
            200,
            "one request a window, even when it comes back full"
        );

        let list = "/sapi/v1/sub-account/list";
        let universal = "/sapi/v1/sub-account/universalTransfer";
        let futures = "/sapi/v1/sub-account/futures/internalTransfer";
        assert_eq!(
            sent(&server).await,
            [
                format!("{list}?page=1&limit=200"),
                format!("{list}?page=2&limit=200"),
                format!("{universal}?startTime=0&endTime=604799998&page=1&limit=500"),
                format!("{universal}?startTime=0&endTime=604799998&page=2&limit=500"),
                format!("{universal}?startTime=604799999&endTime=691200000&page=1&limit=500"),
                format!(
                    "{futures}?email=a@sub&futuresType=1&startTime=0&endTime=604799998&limit=100"
                ),
                format!(
                    "{futures}?email=a@sub&futuresType=1&startTime=604799999&endTime=691200000&limit=100"
                ),
            ]
        );
    }
}
