//! Request parameters from the query string and the form body, with Binance's errors for
//! missing or malformed values.
use rust_decimal::Decimal;

use super::types::ApiError;

/// Decoded parameters, query first, then body.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(raw_query: &str, body: &str) -> Params {
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(raw_query.as_bytes())
            .into_owned()
            .collect();
        pairs.extend(form_urlencoded::parse(body.as_bytes()).into_owned());
        Params { pairs }
    }

    /// The first value of `name`, if sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A value that was sent and is not empty.
    pub fn present(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    pub fn has(&self, name: &str) -> bool {
        self.present(name).is_some()
    }

    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.present(name).ok_or_else(|| ApiError::missing(name))
    }

    pub fn i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.present(name)
            .map(|v| v.parse::<i64>().map_err(|_| ApiError::illegal(name)))
            .transpose()
    }

    pub fn u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.present(name)
            .map(|v| v.parse::<u64>().map_err(|_| ApiError::illegal(name)))
            .transpose()
    }

    pub fn decimal(&self, name: &str) -> Result<Option<Decimal>, ApiError> {
        self.present(name)
            .map(|v| v.parse::<Decimal>().map_err(|_| ApiError::illegal(name)))
            .transpose()
    }

    /// `limit`, defaulting and capped like Binance (values above the cap are clamped).
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.u64("limit")? {
            None => Ok(default),
            Some(0) => Ok(default),
            Some(n) => Ok((n as usize).min(max)),
        }
    }

    /// Every pair except the signature, re-joined, for the request log.
    pub fn without_signature(raw_query: &str, body: &str) -> String {
        let keep = |raw: &str| -> Vec<String> {
            raw.split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("signature="))
                .map(str::to_string)
                .collect()
        };
        let mut parts = keep(raw_query);
        parts.extend(keep(body));
        parts.join("&")
    }

    /// `symbol` upper-cased, if sent.
    pub fn symbol(&self) -> Option<String> {
        self.present("symbol").map(str::to_ascii_uppercase)
    }

    /// `TRUE`/`true` → true; anything else false.
    pub fn flag(&self, name: &str) -> bool {
        self.present(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_query_then_body() {
        let p = Params::parse("symbol=btcusdt&limit=5", "side=BUY&limit=9");
        assert_eq!(p.symbol().as_deref(), Some("BTCUSDT"));
        assert_eq!(p.get("side"), Some("BUY"));
        assert_eq!(p.limit(500, 1000).unwrap(), 5);
        assert_eq!(p.required("type").unwrap_err().code, -1102);
        assert_eq!(
            Params::parse("limit=x", "").limit(1, 2).unwrap_err().code,
            -1100
        );
    }

    #[test]
    fn log_form_drops_only_the_signature() {
        assert_eq!(
            Params::without_signature("a=1&signature=ff&b=%20", "c=3&signature=aa"),
            "a=1&b=%20&c=3"
        );
    }
}
