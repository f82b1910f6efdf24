//! Runtime versions: exact `MAJOR.MINOR.PATCH` versions as runtime.yaml pins them, and the
//! dot components of a partial version (`bun@1.4`) that resolution matches against them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An exact `major.minor.patch` version. Ordering is numeric (1.10.0 > 1.9.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    /// Whether this version starts with the given dot components (`[1, 4]` matches 1.4.5, not
    /// 1.45.0). An empty prefix matches everything.
    pub fn matches_prefix(&self, prefix: &[u64]) -> bool {
        let own = [self.major, self.minor, self.patch];
        prefix.len() <= own.len() && own.iter().zip(prefix).all(|(a, b)| a == b)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts = parse_components(s)?;
        match parts[..] {
            [major, minor, patch] => Ok(Version { major, minor, patch }),
            _ => Err(format!("{s:?} is not a MAJOR.MINOR.PATCH version")),
        }
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses `1`, `1.4` or `1.4.5` into numeric components: digits only, no leading zeros (so that
/// `1.04` cannot be mistaken for 1.4), at most three components.
pub(super) fn parse_components(s: &str) -> Result<Vec<u64>, String> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 3 {
        return Err(format!("{s:?} has more than three version components"));
    }
    parts
        .iter()
        .map(|part| {
            let well_formed = !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part.len() == 1 || !part.starts_with('0'));
            if !well_formed {
                return Err(format!(
                    "{s:?} is not a version: each dot component must be a number without leading zeros"
                ));
            }
            part.parse::<u64>().map_err(|_| format!("{s:?} is not a version: component {part:?} is too large"))
        })
        .collect()
}

/// `2.0.0, 1.4.5, …` for error messages.
pub(super) fn join_versions<'a>(versions: impl Iterator<Item = &'a Version>) -> String {
    versions.map(Version::to_string).collect::<Vec<_>>().join(", ")
}
