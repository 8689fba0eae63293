//! How a secret field of `auth.json` is stored ([`Stored`]: the value, or a reference to the
//! keyring item that holds it) and which store keeps the secrets ([`StoreKind`]), with their
//! JSON forms. Apart from the document's entries so that the shape of a secret is defined once,
//! whatever entry holds it.

use crate::secret::Secret;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;

/// A secret field: the value itself, or the keyring item that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Value(Secret),
    /// The keyring item's user name under service `mogplex` (never a secret).
    Keyring(String),
}

impl Stored {
    /// The value, when it is here (not only referenced). Empty values count as absent.
    pub fn value(&self) -> Option<&Secret> {
        match self {
            Stored::Value(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    pub fn keyring_ref(&self) -> Option<&str> {
        match self {
            Stored::Keyring(r) => Some(r),
            Stored::Value(_) => None,
        }
    }
}

impl Serialize for Stored {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Stored::Value(s) => s.serialize(serializer),
            Stored::Keyring(r) => {
                let mut map = Map::new();
                map.insert("keyring".into(), Value::String(r.clone()));
                map.serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Stored {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) => Ok(Stored::Value(Secret::new(s))),
            Value::Object(map) => match map.get("keyring") {
                Some(Value::String(r)) if !r.is_empty() => Ok(Stored::Keyring(r.clone())),
                _ => Err(D::Error::custom(
                    "a secret reference without a keyring item",
                )),
            },
            _ => Err(D::Error::custom("a secret field of the wrong type")),
        }
    }
}

/// Where the document's secrets live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    File,
    Keyring,
    /// Written by a newer mogplex; this one reads what it can and never rewrites it.
    Other(String),
}

impl StoreKind {
    pub fn as_str(&self) -> &str {
        match self {
            StoreKind::File => "file",
            StoreKind::Keyring => "keyring",
            StoreKind::Other(s) => s,
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for StoreKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StoreKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match String::deserialize(deserializer)?.as_str() {
            "file" => StoreKind::File,
            "keyring" => StoreKind::Keyring,
            other => StoreKind::Other(other.to_owned()),
        })
    }
}
