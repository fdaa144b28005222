//! Reads the merged settings into `Settings` without the config crate's coercions, which accept
//! `batch_max_lines = 1.5` (rounded) and `influx_gzip = "yes"` from a file. A value from a file
//! must have its key's type (an integer is a number of seconds too); a value from the environment
//! is text, parsed whole for its key's type: `1.5` is no integer, a list is comma-separated.

use std::fmt;

use config::{Value, ValueKind};
use serde::de::value::StrDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

/// The config crate's name for the environment as a value's origin.
const ENVIRONMENT: &str = "the environment";

/// A value of the wrong type, at `path` (e.g. `hosts.1.name`).
#[derive(Debug)]
pub struct TypeError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TypeError {}

impl de::Error for TypeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        TypeError {
            path: String::new(),
            message: message.to_string(),
        }
    }
}

impl TypeError {
    /// The error of a value under `key`.
    fn under(mut self, key: &str) -> Self {
        self.path = match self.path.is_empty() {
            true => key.to_owned(),
            false => format!("{key}.{}", self.path),
        };
        self
    }
}

/// Deserializes one settings value, as strictly as its origin asks.
pub struct Strict(pub Value);

impl Strict {
    /// Text from the environment, or None for a value from a file.
    fn text(&self) -> Option<&str> {
        match &self.0.kind {
            ValueKind::String(text) if self.0.origin() == Some(ENVIRONMENT) => Some(text),
            _ => None,
        }
    }

    fn wrong_type(&self, expected: &str) -> TypeError {
        let found = match &self.0.kind {
            ValueKind::Nil => "nothing".to_owned(),
            ValueKind::Boolean(b) => format!("the boolean {b}"),
            ValueKind::I64(_) | ValueKind::I128(_) | ValueKind::U64(_) | ValueKind::U128(_) => {
                format!("the integer {}", self.0.kind)
            }
            ValueKind::Float(f) => format!("the number {f}"),
            ValueKind::String(s) => format!("the string {s:?}"),
            ValueKind::Table(_) => "a table".to_owned(),
            ValueKind::Array(_) => "a list".to_owned(),
        };
        de::Error::custom(format!("expected {expected}, got {found}"))
    }

    fn integer(&self) -> Result<i64, TypeError> {
        match (&self.0.kind, self.text()) {
            (_, Some(text)) => text.trim().parse().ok(),
            (ValueKind::I64(n), _) => Some(*n),
            (ValueKind::U64(n), _) => i64::try_from(*n).ok(),
            (ValueKind::I128(n), _) => i64::try_from(*n).ok(),
            (ValueKind::U128(n), _) => i64::try_from(*n).ok(),
            _ => None,
        }
        .ok_or_else(|| self.wrong_type("a whole number"))
    }

    fn number(&self) -> Result<f64, TypeError> {
        match (&self.0.kind, self.text()) {
            (_, Some(text)) => text.trim().parse().ok(),
            (ValueKind::Float(n), _) => Some(*n),
            // Seconds may be written `10` as well as `10.0`.
            (ValueKind::I64(_) | ValueKind::U64(_), _) => Some(self.integer()? as f64),
            _ => None,
        }
        .ok_or_else(|| self.wrong_type("a number"))
    }

    fn boolean(&self) -> Result<bool, TypeError> {
        match (&self.0.kind, self.text()) {
            (_, Some(text)) => text.trim().to_lowercase().parse().ok(),
            (ValueKind::Boolean(b), _) => Some(*b),
            _ => None,
        }
        .ok_or_else(|| self.wrong_type("true or false"))
    }
}

impl<'de> Deserializer<'de> for Strict {
    type Error = TypeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        match self.0.kind {
            ValueKind::Nil => visitor.visit_none(),
            ValueKind::Boolean(b) => visitor.visit_bool(b),
            ValueKind::I64(_) | ValueKind::I128(_) | ValueKind::U64(_) | ValueKind::U128(_) => {
                visitor.visit_i64(self.integer()?)
            }
            ValueKind::Float(f) => visitor.visit_f64(f),
            ValueKind::String(s) => visitor.visit_string(s),
            ValueKind::Array(items) => visitor.visit_seq(Items(items.into_iter().enumerate())),
            ValueKind::Table(table) => visitor.visit_map(Entries {
                entries: table.into_iter(),
                key: String::new(),
                value: None,
            }),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        visitor.visit_bool(self.boolean()?)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        visitor.visit_i64(self.integer()?)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        visitor.visit_f64(self.number()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        match self.0.kind {
            ValueKind::String(text) => visitor.visit_string(text),
            _ => Err(self.wrong_type("a string")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        match self.0.kind {
            ValueKind::Nil => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        if let Some(text) = self.text() {
            let origin = Some(ENVIRONMENT.to_owned());
            let items: Vec<Value> = text
                .split(',')
                .map(|item| Value::new(origin.as_ref(), item))
                .collect();
            return visitor.visit_seq(Items(items.into_iter().enumerate()));
        }
        match self.0.kind {
            ValueKind::Array(_) => self.deserialize_any(visitor),
            _ => Err(self.wrong_type("a list")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        match self.0.kind {
            ValueKind::Table(_) => self.deserialize_any(visitor),
            _ => Err(self.wrong_type("a table")),
        }
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i128 u8 u16 u32 u64 u128 f32 char bytes byte_buf unit unit_struct
        newtype_struct tuple tuple_struct enum identifier ignored_any
    }
}

/// A list's items, each named by its position in errors.
struct Items<I>(I);

impl<'de, I: Iterator<Item = (usize, Value)>> SeqAccess<'de> for Items<I> {
    type Error = TypeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TypeError> {
        let Some((position, item)) = self.0.next() else {
            return Ok(None);
        };
        seed.deserialize(Strict(item))
            .map(Some)
            .map_err(|e| e.under(&position.to_string()))
    }
}

/// A table's entries, each value's errors named by its key.
struct Entries<I> {
    entries: I,
    key: String,
    value: Option<Value>,
}

impl<'de, I: Iterator<Item = (String, Value)>> MapAccess<'de> for Entries<I> {
    type Error = TypeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TypeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let name: StrDeserializer<'_, TypeError> = key.as_str().into_deserializer();
        let parsed = seed.deserialize(name).map_err(|e| e.under(&key))?;
        self.key = key;
        self.value = Some(value);
        Ok(Some(parsed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, TypeError> {
        let value = self.value.take().unwrap_or_default();
        seed.deserialize(Strict(value))
            .map_err(|e| e.under(&self.key))
    }
}
