//! Reading the environment, with SPEC section 2's rule that an empty variable counts as unset.
//!
//! Resolution takes an [`Env`] rather than reading `std::env` directly so that the cockpit and
//! tests can resolve against a snapshot.

use std::collections::BTreeMap;
use std::ffi::OsString;

pub trait Env {
    /// The variable's value, or `None` when it is unset, empty, or not valid UTF-8.
    fn var(&self, name: &str) -> Option<String>;
    /// The raw value, for paths, which need not be UTF-8. Empty counts as unset.
    fn var_os(&self, name: &str) -> Option<OsString>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
    fn var_os(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name).filter(|v| !v.is_empty())
    }
}

/// A fixed set of variables, for tests and for resolving against a snapshot.
#[derive(Debug, Clone, Default)]
pub struct MapEnv(pub BTreeMap<String, String>);

impl MapEnv {
    pub fn new<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }
    fn var_os(&self, name: &str) -> Option<OsString> {
        self.var(name).map(OsString::from)
    }
}
