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
    use std::borrow::Cow;
    use std::str::FromStr;

    use rust_decimal::Decimal;
    use serde::de::{Error, Visitor};
    use serde::{Deserialize, Deserializer};

    /// A string, a number or a boolean, read as it comes (not buffered first and then
    /// matched against each kind in turn, as an untagged enum would: every price and
    /// quantity of a thousand-order listing goes through here). Text is borrowed from
    /// the answer when it has no escapes, so a price is not copied before it is parsed.
    enum Scalar<'de> {
        Str(Cow<'de, str>),
        Num(serde_json::Number),
        Bool(bool),
    }

    impl<'de> Deserialize<'de> for Scalar<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar<'de>, D::Error> {
            struct Kind;
            impl<'de> Visitor<'de> for Kind {
                type Value = Scalar<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a string, a number or a boolean")
                }
                fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Str(Cow::Borrowed(v)))
                }
                fn visit_str<E: Error>(self, v: &str) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Str(Cow::Owned(v.to_owned())))
                }
                fn visit_string<E: Error>(self, v: String) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Str(Cow::Owned(v)))
                }
                fn visit_u64<E: Error>(self, v: u64) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Num(v.into()))
                }
                fn visit_i64<E: Error>(self, v: i64) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Num(v.into()))
                }
                fn visit_f64<E: Error>(self, v: f64) -> Result<Scalar<'de>, E> {
                    serde_json::Number::from_f64(v)
                        .map(Scalar::Num)
                        .ok_or_else(|| E::custom(format!("`{v}` is not a finite number")))
                }
                fn visit_bool<E: Error>(self, v: bool) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Bool(v))
                }
            }
            d.deserialize_any(Kind)
        }
    }

    fn to_decimal<E: Error>(s: Scalar<'_>) -> Result<Decimal, E> {
        let text = match s {
            Scalar::Str(t) => t,
            Scalar::Num(n) => Cow::Owned(n.to_string()),
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
            Scalar::Str(s) => s.into_owned(),
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

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct Fields {
        #[serde(default, deserialize_with = "super::lenient::opt_decimal")]
        amount: Option<Decimal>,
        #[serde(default, deserialize_with = "super::lenient::opt_int")]
        time: Option<i64>,
        #[serde(default, deserialize_with = "super::lenient::opt_bool")]
        flag: Option<bool>,
    }

    fn read(body: &str) -> Result<Fields, String> {
        serde_json::from_str(body).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_come_as_strings_or_numbers() {
        let f = read(r#"{"amount":"0.00100000","time":"1700000000000","flag":"TRUE"}"#).unwrap();
        assert_eq!(f.amount, Some("0.001".parse().unwrap()));
        assert_eq!(f.time, Some(1_700_000_000_000));
        assert_eq!(f.flag, Some(true));
        let f = read(r#"{"amount":12.5,"time":1700000000000,"flag":1}"#).unwrap();
        assert_eq!(f.amount, Some("12.5".parse().unwrap()));
        assert_eq!(f.time, Some(1_700_000_000_000));
        assert_eq!(f.flag, Some(true));
        let f = read(r#"{"amount":"1e-8","time":-5}"#).unwrap();
        assert_eq!(f.amount, Some("0.00000001".parse().unwrap()));
        assert_eq!(f.time, Some(-5));
        assert_eq!(f.flag, None);
    }

    #[test]
    fn empty_and_null_are_absent() {
        let f = read(r#"{"amount":"","time":" ","flag":null}"#).unwrap();
        assert!(f.amount.is_none() && f.time.is_none() && f.flag.is_none());
        let f = read(r#"{"amount":null,"time":null}"#).unwrap();
        assert!(f.amount.is_none() && f.time.is_none());
    }

    #[test]
    fn other_values_are_refused_with_their_reason() {
        let err = read(r#"{"amount":"abc"}"#).unwrap_err();
        assert!(err.contains("`abc` is not a decimal"), "{err}");
        let err = read(r#"{"amount":true}"#).unwrap_err();
        assert!(err.contains("found a boolean"), "{err}");
        let err = read(r#"{"time":"12x"}"#).unwrap_err();
        assert!(err.contains("`12x` is not an integer"), "{err}");
        let err = read(r#"{"amount":{"v":1}}"#).unwrap_err();
        assert!(err.contains("a string, a number or a boolean"), "{err}");
        let err = read(r#"{"time":[1]}"#).unwrap_err();
        assert!(err.contains("a string, a number or a boolean"), "{err}");
    }
}
