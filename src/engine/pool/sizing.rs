//! The pool's arithmetic, kept pure for tests: per-service sizing, the memory budget, and the
//! decisions of when to start, keep or retire a warm sandbox.

use std::collections::BTreeMap;
use std::time::Duration;

/// How many warm sandboxes one service keeps: at least `min` while it is in use, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    pub min: usize,
    pub max: usize,
}

/// The pool's settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Sizing of every service without an override.
    pub default: Sizing,
    /// Per-service sizing, by service name.
    pub overrides: BTreeMap<String, Sizing>,
    /// A warm sandbox idle longer than this is removed, down to its service's `min`.
    pub idle_ttl: Duration,
    /// Memory (MiB) that sandboxes may reserve in all: each reserves its memory limit, parked
    /// or running, warm or cold. Nothing is started ahead beyond it.
    pub memory_budget_mb: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SizingError {
    #[error("{what}: min {min} is greater than max {max}")]
    MinAboveMax { what: String, min: usize, max: usize },
    #[error("--pool {0:?}: expected SERVICE=MIN:MAX, e.g. hello=1:4")]
    Syntax(String),
}

impl PoolConfig {
    pub fn sizing(&self, service: &str) -> Sizing {
        self.overrides.get(service).copied().unwrap_or(self.default)
    }

    /// Refuses sizings that cannot hold (min above max), naming the flag.
    pub fn check(&self) -> Result<(), SizingError> {
        let all = std::iter::once(("--pool-min/--pool-max".to_string(), self.default))
            .chain(self.overrides.iter().map(|(k, v)| (format!("--pool {k}"), *v)));
        for (what, s) in all {
            if s.min > s.max {
                return Err(SizingError::MinAboveMax { what, min: s.min, max: s.max });
            }
        }
        Ok(())
    }
}

/// Parses one `--pool SERVICE=MIN:MAX`.
pub fn parse_override(text: &str) -> Result<(String, Sizing), SizingError> {
    let syntax = || SizingError::Syntax(text.to_string());
    let (name, range) = text.split_once('=').ok_or_else(syntax)?;
    let (min, max) = range.split_once(':').ok_or_else(syntax)?;
    if name.is_empty() {
        return Err(syntax());
    }
    let min = min.trim().parse().map_err(|_| syntax())?;
    let max = max.trim().parse().map_err(|_| syntax())?;
    if min > max {
        return Err(SizingError::MinAboveMax { what: format!("--pool {name}"), min, max });
    }
    Ok((name.to_string(), Sizing { min, max }))
}

/// `MemAvailable` of a `/proc/meminfo` text, in MiB.
pub fn mem_available_mb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// The default budget: half of what the host has available now.
pub fn default_budget_mb(meminfo: &str) -> u64 {
    mem_available_mb(meminfo).map_or(0, |mb| mb / 2)
}

/// What the pool knows about one kind of sandbox when it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Census {
    /// Ready and waiting.
    pub parked: usize,
    /// Being launched.
    pub starting: usize,
}

impl Census {
    pub fn total(&self) -> usize {
        self.parked + self.starting
    }
}

/// How many sandboxes to start so that `census` reaches `want` (capped by `max`), within the
/// memory budget: each reserves `memory_mb` out of `budget_mb`, of which `reserved_mb` is taken.
pub fn to_start(census: Census, want: usize, max: usize, memory_mb: u64, reserved_mb: u64, budget_mb: u64) -> usize {
    let want = want.min(max);
    let missing = want.saturating_sub(census.total());
    let room = budget_mb.saturating_sub(reserved_mb).checked_div(memory_mb).map_or(missing, |n| n as usize);
    missing.min(room)
}

/// Whether a parked sandbox idle for its TTL goes: only while more than the floor are
/// parked (`min` for a service's current kind of sandbox, 0 for kinds no request asks for now).
pub fn retire_idle(census: Census, floor: usize) -> bool {
    census.parked > floor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_and_refuse_bad_text() {
        assert_eq!(parse_override("hello=1:4").unwrap(), ("hello".to_string(), Sizing { min: 1, max: 4 }));
        assert_eq!(parse_override("a=0:0").unwrap().1, Sizing { min: 0, max: 0 });
        for bad in ["hello", "hello=1", "=1:2", "hello=a:2", "hello=1:-2", "hello=1:2:3"] {
            assert!(matches!(parse_override(bad), Err(SizingError::Syntax(_))), "{bad}");
        }
        assert!(matches!(parse_override("x=3:2"), Err(SizingError::MinAboveMax { .. })));
    }

    #[test]
    fn config_sizing_and_check() {
        let mut c = PoolConfig {
            default: Sizing { min: 1, max: 4 },
            overrides: BTreeMap::new(),
            idle_ttl: Duration::from_secs(60),
            memory_budget_mb: 1024,
        };
        c.overrides.insert("big".into(), Sizing { min: 0, max: 8 });
        assert_eq!(c.sizing("big"), Sizing { min: 0, max: 8 });
        assert_eq!(c.sizing("other"), Sizing { min: 1, max: 4 });
        c.check().unwrap();
        c.default = Sizing { min: 5, max: 4 };
        assert!(c.check().unwrap_err().to_string().contains("--pool-min/--pool-max: min 5 is greater than max 4"));
    }

    #[test]
    fn budget_from_meminfo() {
        let text = "MemTotal:       8000000 kB\nMemFree:         100 kB\nMemAvailable:    2097152 kB\n";
        assert_eq!(mem_available_mb(text), Some(2048));
        assert_eq!(default_budget_mb(text), 1024);
        assert_eq!(default_budget_mb("MemTotal: 1 kB\n"), 0);
    }

    #[test]
    fn starts_up_to_want_and_max_within_the_budget() {
        let c = |parked, starting| Census { parked, starting };
        assert_eq!(to_start(c(0, 0), 2, 4, 64, 0, 1024), 2);
        assert_eq!(to_start(c(1, 1), 2, 4, 64, 0, 1024), 0);
        assert_eq!(to_start(c(3, 0), 9, 4, 64, 0, 1024), 1);
        // The budget holds two more of 64 MiB: running jobs' reservations count.
        assert_eq!(to_start(c(0, 0), 4, 4, 64, 1024 - 130, 1024), 2);
        assert_eq!(to_start(c(0, 0), 4, 4, 64, 1024, 1024), 0);
        assert_eq!(to_start(c(0, 0), 4, 4, 64, 2048, 1024), 0);
        assert_eq!(to_start(c(0, 0), 4, 0, 64, 0, 1024), 0);
    }

    #[test]
    fn idle_sandboxes_drain_to_the_floor() {
        let c = |parked| Census { parked, starting: 0 };
        assert!(retire_idle(c(2), 1));
        assert!(!retire_idle(c(1), 1));
        assert!(retire_idle(c(1), 0));
        assert!(!retire_idle(c(0), 0));
    }
}
