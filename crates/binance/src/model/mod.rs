//! Wire structs and the normalised types the typed methods return. Amounts and prices
//! are `Decimal` (Binance sends them as strings; a number is accepted too). Serialised
//! field names are Binance's, so evidence CSVs and JSON use the names the exchange
//! documents.
mod account;
mod history;
mod market;
mod orders;

pub use account::*;
pub use history::*;
pub use market::*;
pub use orders::*;

/// Lenient field readers: Binance mostly sends numbers as strings, but not everywhere,
/// and a field that changes type between endpoints must not break an evidence pull.
pub(crate) mod lenient {
    use std::str::FromStr;

    use rust_decimal::Decimal;
    use serde::{de::Error, Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Str(String),
        Num(serde_json::Number),
        Bool(bool),
    }

    fn to_decimal<E: Error>(s: Scalar) -> Result<Decimal, E> {
        let text = match s {
            Scalar::Str(t) => t,
            Scalar::Num(n) => n.to_string(),
            Scalar::Bool(_) => return Err(E::custom("expected a decimal, found a boolean")),
        };
        let text = text.trim();
        Decimal::from_str(text)
            .or_else(|_| Decimal::from_scientific(text))
            .map_err(|e| E::custom(format!("`{text}` is not a decimal: {e}")))
    }

    pub fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        to_decimal(Scalar::deserialize(d)?)
    }

    pub fn opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        match Option::<Scalar>::deserialize(d)? {
            None => Ok(None),
            Some(Scalar::Str(s)) if s.trim().is_empty() => Ok(None),
            Some(s) => to_decimal(s).map(Some),
        }
    }

    pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match Scalar::deserialize(d)? {
            Scalar::Num(n) => n
                .as_i64()
                .ok_or_else(|| D::Error::custom(format!("`{n}` is not an integer"))),
            Scalar::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| D::Error::custom(format!("`{s}` is not an integer"))),
            Scalar::Bool(_) => Err(D::Error::custom("expected an integer, found a boolean")),
        }
    }

    pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<Scalar>::deserialize(d)? {
            None => Ok(None),
            Some(Scalar::Str(s)) if s.trim().is_empty() => Ok(None),
            Some(Scalar::Num(n)) => Ok(n.as_i64()),
            Some(Scalar::Str(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| D::Error::custom(format!("`{s}` is not an integer"))),
            Some(Scalar::Bool(_)) => Err(D::Error::custom("expected an integer")),
        }
    }

    /// Ids Binance sends as a string in one place and a number in another.
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(match Scalar::deserialize(d)? {
            Scalar::Str(s) => s,
            Scalar::Num(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        })
    }

    /// `true`, `"TRUE"`, `"true"`.
    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(match Option::<Scalar>::deserialize(d)? {
            None => None,
            Some(Scalar::Bool(b)) => Some(b),
            Some(Scalar::Str(s)) => Some(s.eq_ignore_ascii_case("true")),
            Some(Scalar::Num(n)) => Some(n.as_i64() == Some(1)),
        })
    }
}
