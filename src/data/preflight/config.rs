//! The `preflight:` mapping of service.yaml: thresholds for each check, their defaults, and
//! their validation (ranges, and warn/fail lines in the order that makes both reachable).

use serde::Deserialize;

/// Defaults. Each is chosen so that a service with the default limits (128 MiB, 30 s) and no
/// dependencies passes on every built-in runtime; a unit test holds them to that.
pub const DEFAULT_PER_DEPENDENCY_MB: f64 = 2.0;
pub const DEFAULT_MEMORY_WARN_RATIO: f64 = 1.5;
pub const DEFAULT_MEMORY_FAIL_RATIO: f64 = 1.0;
pub const DEFAULT_TIMEOUT_MIN_MS: u64 = 100;
pub const DEFAULT_TIMEOUT_MAX_MS: u64 = 300_000;
pub const DEFAULT_COLD_START_WARN_RATIO: f64 = 5.0;
pub const DEFAULT_BUNDLE_WARN_MB: u64 = 150;
pub const DEFAULT_BUNDLE_FAIL_MB: u64 = 500;
pub const DEFAULT_DEPENDENCIES_WARN: u64 = 50;
pub const DEFAULT_DEPENDENCIES_FAIL: u64 = 200;

/// Accepted ranges (inclusive). Ratios above 10 or sizes above 1 TiB are unit mistakes.
const RATIO_RANGE: (f64, f64) = (0.0, 10.0);
const COLD_START_RATIO_RANGE: (f64, f64) = (0.0, 1000.0);
const BASE_MB_RANGE: (u32, u32) = (1, 65_536);
const PER_DEPENDENCY_MB_RANGE: (f64, f64) = (0.0, 1024.0);
const TIMEOUT_RANGE: (u64, u64) = (0, 86_400_000);
const BUNDLE_MB_RANGE: (u64, u64) = (1, 1_048_576);
const DEPENDENCIES_RANGE: (u64, u64) = (0, 100_000);

/// `preflight:` exactly as written; every field optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    pub memory: Option<RawMemory>,
    pub timeout: Option<RawTimeout>,
    pub bundle: Option<RawBundle>,
    pub dependencies: Option<RawDependencies>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMemory {
    pub base_mb: Option<u32>,
    pub per_dependency_mb: Option<f64>,
    pub warn_ratio: Option<f64>,
    pub fail_ratio: Option<f64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTimeout {
    pub min_ms: Option<u64>,
    pub max_ms: Option<u64>,
    pub cold_start_warn_ratio: Option<f64>,
    pub cold_start_fail_ratio: Option<f64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawBundle {
    pub warn_mb: Option<u64>,
    pub fail_mb: Option<u64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDependencies {
    pub warn: Option<u64>,
    pub fail: Option<u64>,
}

/// Validated thresholds. The meaning of each is stated where it is used ([`super::evaluate`])
/// and in docs/service-yaml.md ("Preflight").
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Replaces the runtime's `baseMemoryMb` in the estimate.
    pub memory_base_mb: Option<u32>,
    pub memory_per_dependency_mb: f64,
    /// Warn when memoryMb < estimate × this.
    pub memory_warn_ratio: f64,
    /// Fail when memoryMb < estimate × this.
    pub memory_fail_ratio: f64,
    /// Fail when timeoutMs < this.
    pub timeout_min_ms: u64,
    /// Warn when timeoutMs > this.
    pub timeout_max_ms: u64,
    /// Warn when timeoutMs < last cold start × this.
    pub cold_start_warn_ratio: f64,
    /// Fail when timeoutMs < last cold start × this; off unless set (one measurement is one
    /// moment of this host's load, so by default it informs and does not block).
    pub cold_start_fail_ratio: Option<f64>,
    /// Warn when the bundle is larger than this many MiB.
    pub bundle_warn_mb: u64,
    /// Fail when the bundle is larger than this many MiB.
    pub bundle_fail_mb: u64,
    /// Warn when the service has more dependencies than this.
    pub dependencies_warn: u64,
    /// Fail when the service has more dependencies than this.
    pub dependencies_fail: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            memory_base_mb: None,
            memory_per_dependency_mb: DEFAULT_PER_DEPENDENCY_MB,
            memory_warn_ratio: DEFAULT_MEMORY_WARN_RATIO,
            memory_fail_ratio: DEFAULT_MEMORY_FAIL_RATIO,
            timeout_min_ms: DEFAULT_TIMEOUT_MIN_MS,
            timeout_max_ms: DEFAULT_TIMEOUT_MAX_MS,
            cold_start_warn_ratio: DEFAULT_COLD_START_WARN_RATIO,
            cold_start_fail_ratio: None,
            bundle_warn_mb: DEFAULT_BUNDLE_WARN_MB,
            bundle_fail_mb: DEFAULT_BUNDLE_FAIL_MB,
            dependencies_warn: DEFAULT_DEPENDENCIES_WARN,
            dependencies_fail: DEFAULT_DEPENDENCIES_FAIL,
        }
    }
}

/// A value of `preflight:` that cannot be used; `field` is its full path in service.yaml.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

fn err(field: &str, reason: String) -> ConfigError {
    ConfigError { field: format!("preflight.{field}"), reason }
}

fn in_range_f(field: &str, v: f64, (lo, hi): (f64, f64)) -> Result<f64, ConfigError> {
    if !v.is_finite() || v < lo || v > hi {
        return Err(err(field, format!("must be a number between {lo} and {hi} (got {v})")));
    }
    Ok(v)
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(field: &str, v: T, (lo, hi): (T, T)) -> Result<T, ConfigError> {
    if v < lo || v > hi {
        return Err(err(field, format!("must be between {lo} and {hi} (got {v})")));
    }
    Ok(v)
}

impl RawConfig {
    /// Applies defaults and checks every value: each within its range, and each pair of lines
    /// ordered so that the warn line is reached before the fail line.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let d = Config::default();
        let m = self.memory.unwrap_or_default();
        let t = self.timeout.unwrap_or_default();
        let b = self.bundle.unwrap_or_default();
        let n = self.dependencies.unwrap_or_default();
        let c = Config {
            memory_base_mb: m.base_mb.map(|v| in_range("memory.baseMb", v, BASE_MB_RANGE)).transpose()?,
            memory_per_dependency_mb: in_range_f(
                "memory.perDependencyMb",
                m.per_dependency_mb.unwrap_or(d.memory_per_dependency_mb),
                PER_DEPENDENCY_MB_RANGE,
            )?,
            memory_warn_ratio: in_range_f(
                "memory.warnRatio",
                m.warn_ratio.unwrap_or(d.memory_warn_ratio),
                RATIO_RANGE,
            )?,
            memory_fail_ratio: in_range_f(
                "memory.failRatio",
                m.fail_ratio.unwrap_or(d.memory_fail_ratio),
                RATIO_RANGE,
            )?,
            timeout_min_ms: in_range("timeout.minMs", t.min_ms.unwrap_or(d.timeout_min_ms), TIMEOUT_RANGE)?,
            timeout_max_ms: in_range("timeout.maxMs", t.max_ms.unwrap_or(d.timeout_max_ms), TIMEOUT_RANGE)?,
            cold_start_warn_ratio: in_range_f(
                "timeout.coldStartWarnRatio",
                t.cold_start_warn_ratio.unwrap_or(d.cold_start_warn_ratio),
                COLD_START_RATIO_RANGE,
            )?,
            cold_start_fail_ratio: t
                .cold_start_fail_ratio
                .map(|v| in_range_f("timeout.coldStartFailRatio", v, COLD_START_RATIO_RANGE))
                .transpose()?,
            bundle_warn_mb: in_range("bundle.warnMb", b.warn_mb.unwrap_or(d.bundle_warn_mb), BUNDLE_MB_RANGE)?,
            bundle_fail_mb: in_range("bundle.failMb", b.fail_mb.unwrap_or(d.bundle_fail_mb), BUNDLE_MB_RANGE)?,
            dependencies_warn: in_range(
                "dependencies.warn",
                n.warn.unwrap_or(d.dependencies_warn),
                DEPENDENCIES_RANGE,
            )?,
            dependencies_fail: in_range(
                "dependencies.fail",
                n.fail.unwrap_or(d.dependencies_fail),
                DEPENDENCIES_RANGE,
            )?,
        };
        // "Below" checks fail on the lower line; "above" checks on the higher one. The other
        // order would make the warn line unreachable, which is a mistake, not a choice.
        if c.memory_fail_ratio > c.memory_warn_ratio {
            return Err(err(
                "memory.failRatio",
                format!(
                    "({}) must not be greater than preflight.memory.warnRatio ({}): memory below the fail line must also be below the warn line",
                    c.memory_fail_ratio, c.memory_warn_ratio
                ),
            ));
        }
        if c.timeout_min_ms > c.timeout_max_ms {
            return Err(err(
                "timeout.minMs",
                format!(
                    "({}) must not be greater than preflight.timeout.maxMs ({})",
                    c.timeout_min_ms, c.timeout_max_ms
                ),
            ));
        }
        if let Some(fail) = c.cold_start_fail_ratio
            && fail > c.cold_start_warn_ratio
        {
            return Err(err(
                "timeout.coldStartFailRatio",
                format!(
                    "({fail}) must not be greater than preflight.timeout.coldStartWarnRatio ({})",
                    c.cold_start_warn_ratio
                ),
            ));
        }
        if c.bundle_warn_mb > c.bundle_fail_mb {
            return Err(err(
                "bundle.warnMb",
                format!(
                    "({}) must not be greater than preflight.bundle.failMb ({})",
                    c.bundle_warn_mb, c.bundle_fail_mb
                ),
            ));
        }
        if c.dependencies_warn > c.dependencies_fail {
            return Err(err(
                "dependencies.warn",
                format!(
                    "({}) must not be greater than preflight.dependencies.fail ({})",
                    c.dependencies_warn, c.dependencies_fail
                ),
            ));
        }
        Ok(c)
    }
}
