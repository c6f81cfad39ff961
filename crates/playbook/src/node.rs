//! A position-carrying YAML tree. Playbooks are first read into this tree and then
//! converted by hand, so that *every* problem (unknown field, wrong type, bad value) can
//! be collected with its line and column instead of stopping at serde's first error.
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A 1-based line and column in the source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub fn new(line: usize, column: usize) -> Self {
        Pos { line, column }
    }
    /// The position `offset` characters to the right on the same line (for pointing
    /// inside a scalar, e.g. at a `${{` within a string).
    pub fn shifted(self, offset: usize) -> Pos {
        Pos {
            line: self.line,
            column: self.column + offset,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A YAML value with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

impl Node {
    /// Parse YAML text. On a syntax error, returns the message and its position.
    pub fn parse(text: &str) -> Result<Node, (Pos, String)> {
        match serde_saphyr::from_str_with_options::<Spanned<RawValue>>(text, yaml_options()) {
            Ok(spanned) => Ok(convert(spanned)),
            Err(err) => {
                let pos = err
                    .location()
                    .map(|l| Pos::new(l.line() as usize, l.column() as usize))
                    .unwrap_or_default();
                Err((pos, friendly(first_line_message(&err.to_string()))))
            }
        }
    }

    /// A short name of the value's type, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The scalar as text (strings, numbers and booleans), as the author wrote it.
    pub fn as_scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

pub use respond_diagnostic::yaml::{friendly, options as yaml_options, MAX_YAML_DEPTH};

/// serde-saphyr prints a multi-line snippet; diagnostics want just the message.
fn first_line_message(text: &str) -> String {
    let first = text.lines().next().unwrap_or(text);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // Drop a leading "line N column M: " that repeats the position we print ourselves.
    if let Some(rest) = first.strip_prefix("line ") {
        if let Some((_, msg)) = rest.split_once(": ") {
            return msg.to_string();
        }
    }
    first.to_string()
}

fn convert(spanned: Spanned<RawValue>) -> Node {
    let pos = Pos::new(
        spanned.referenced.line() as usize,
        spanned.referenced.column() as usize,
    );
    let value = match spanned.value {
        RawValue::Null => Value::Null,
        RawValue::Bool(b) => Value::Bool(b),
        RawValue::Int(i) => Value::Int(i),
        RawValue::Float(f) => Value::Float(f),
        RawValue::Str(s) => Value::Str(s),
        RawValue::Seq(items) => Value::Seq(items.into_iter().map(convert).collect()),
        RawValue::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = Key {
                        name: k.value,
                        pos: Pos::new(k.referenced.line() as usize, k.referenced.column() as usize),
                    };
                    (key, convert(v))
                })
                .collect(),
        ),
    };
    Node { value, pos }
}

/// What serde-saphyr hands us; converted to [`Node`] right after parsing.
enum RawValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawValue>>),
    Map(Vec<(Spanned<String>, Spanned<RawValue>)>),
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValue, E> {
        i64::try_from(v)
            .map(RawValue::Int)
            .map_err(|_| E::custom("number too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element::<Spanned<RawValue>>()? {
            items.push(item);
        }
        Ok(RawValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = access.next_key::<Spanned<KeyText>>()? {
            let value = access.next_value::<Spanned<RawValue>>()?;
            let key = Spanned::new(key.value.0, key.referenced, key.defined);
            entries.push((key, value));
        }
        Ok(RawValue::Map(entries))
    }
}

/// Mapping keys are read as text even when YAML would type them (`1:`, `true:`), so a
/// wrong key is reported as an unknown field rather than a type error.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".into()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions() {
        let node = Node::parse("a: 1\nb:\n  - x\n  - { c: true }\n").unwrap();
        let Value::Map(entries) = &node.value else {
            panic!()
        };
        assert_eq!(entries[0].0.name, "a");
        assert_eq!(entries[0].1.pos, Pos::new(1, 4));
        let Value::Seq(items) = &entries[1].1.value else {
            panic!()
        };
        assert_eq!(items[0].pos, Pos::new(3, 5));
        let Value::Map(inner) = &items[1].value else {
            panic!()
        };
        assert_eq!(inner[0].0.pos, Pos::new(4, 7));
        assert_eq!(inner[0].1.value, Value::Bool(true));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let (pos, msg) = Node::parse("a: [1, 2\nb: 3").unwrap_err();
        assert_eq!(pos.line, 2);
        assert!(!msg.contains('\n'), "{msg}");
        let (pos, msg) = Node::parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(pos, Pos::new(2, 1));
        assert!(msg.contains("duplicate"), "{msg}");
    }
}
