//! Preflight: checks a service's settings against what this host knows before anything is
//! started — memory against an estimate, the time limit against bounds and the last measured
//! cold start, the bundle's size, the number of dependencies, and whether the runtime's bundle
//! is present and built from the current definition. Pure: [`evaluate`] turns [`Facts`]
//! (gathered by the engine, without side effects) and thresholds ([`Config`], from
//! service.yaml's `preflight:`) into a [`PreflightReport`].

pub mod coldstart;
pub mod config;
mod render;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use coldstart::{ColdStart, ColdStartError, ColdStarts};
pub use config::{Config, ConfigError, RawConfig};
pub use render::{render, render_problems};

const MIB: f64 = 1024.0 * 1024.0;

/// The outcome of one check, or of all of them (the worst one; `skip` counts as `pass`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Pass,
    /// Not evaluated: a fact it needs is not known yet (the message says which).
    Skip,
    Warn,
    /// `ignite run` refuses to start the service (exit 125) unless `--skip-preflight`.
    Fail,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Pass => "pass",
            Level::Skip => "skip",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

/// Everything preflight found for one service: what `ignite preflight --json` prints and
/// `GET /services/{name}/preflight` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreflightReport {
    pub service: String,
    /// The exact runtime (`bun@1.4.5`), or the spec as written when it does not resolve.
    pub runtime: String,
    /// `fail` if any check failed, else `warn` if any warned, else `pass`.
    pub status: Level,
    /// In a fixed order: memory, timeout, bundleSize, dependencies, runtime.
    pub checks: Vec<Check>,
}

impl PreflightReport {
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status() == Level::Fail)
    }
}

/// One check; `name` says which, and which fields follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "name", rename_all = "camelCase")]
pub enum Check {
    Memory(MemoryCheck),
    Timeout(TimeoutCheck),
    BundleSize(BundleSizeCheck),
    Dependencies(DependenciesCheck),
    Runtime(RuntimeCheck),
}

impl Check {
    pub fn status(&self) -> Level {
        self.common().status
    }

    pub fn message(&self) -> &str {
        &self.common().message
    }

    pub fn suggestion(&self) -> Option<&str> {
        self.common().suggestion.as_deref()
    }

    pub fn name(&self) -> &'static str {
        match self {
            Check::Memory(_) => "memory",
            Check::Timeout(_) => "timeout",
            Check::BundleSize(_) => "bundleSize",
            Check::Dependencies(_) => "dependencies",
            Check::Runtime(_) => "runtime",
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            Check::Memory(_) => "Memory",
            Check::Timeout(_) => "Timeout",
            Check::BundleSize(_) => "Bundle size",
            Check::Dependencies(_) => "Dependencies",
            Check::Runtime(_) => "Runtime bundle",
        }
    }

    fn common(&self) -> &Outcome {
        match self {
            Check::Memory(c) => &c.outcome,
            Check::Timeout(c) => &c.outcome,
            Check::BundleSize(c) => &c.outcome,
            Check::Dependencies(c) => &c.outcome,
            Check::Runtime(c) => &c.outcome,
        }
    }
}

/// What every check has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub status: Level,
    /// One sentence with the values and the thresholds that decided the status.
    pub message: String,
    /// For `warn` and `fail`: what to change (the setting or `preflight:` knob).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

/// Memory limit against an estimate: estimate = base + perDependencyMb × dependencies; fail
/// when memoryMb < estimate × failRatio, warn when memoryMb < estimate × warnRatio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryCheck {
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The service's memoryMb.
    pub allocated_mb: u32,
    /// The runtime's own need (its runtime.yaml `baseMemoryMb`, or `preflight.memory.baseMb`);
    /// absent when neither gives one (the check is then skipped).
    pub base_mb: Option<u32>,
    /// Where `baseMb` came from.
    pub base_from: Option<String>,
    pub per_dependency_mb: f64,
    pub dependencies: u64,
    pub estimate_mb: Option<f64>,
    pub warn_ratio: f64,
    pub fail_ratio: f64,
    pub warn_below_mb: Option<f64>,
    pub fail_below_mb: Option<f64>,
}

/// Time limit: fail below `minMs`, warn above `maxMs`; against the last cold start of this
/// runtime on this host, warn when timeoutMs < coldStart × coldStartWarnRatio and (if set)
/// fail when timeoutMs < coldStart × coldStartFailRatio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutCheck {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub timeout_ms: u64,
    pub min_ms: u64,
    pub max_ms: u64,
    /// The last measurement; absent when there is none yet (`coldStartNote` says why).
    pub cold_start: Option<ColdStart>,
    pub cold_start_note: Option<String>,
    pub cold_start_warn_ratio: f64,
    pub cold_start_fail_ratio: Option<f64>,
    pub warn_below_ms: Option<f64>,
    pub fail_below_ms: Option<f64>,
}

/// Size of the runtime's bundle (the compressed rootfs tarball, as the bundle store recorded
/// it): warn above `warnMb`, fail above `failMb` (MiB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleSizeCheck {
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Absent until the bundle is built.
    pub bundle_mb: Option<f64>,
    pub digest: Option<String>,
    pub warn_mb: u64,
    pub fail_mb: u64,
}

/// Number of npm packages the service depends on directly (package.json `dependencies` and
/// `optionalDependencies`): warn above `warn`, fail above `fail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DependenciesCheck {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub count: u64,
    /// Where they were counted, e.g. `package.json`; absent when the service has none.
    pub source: Option<String>,
    pub warn: u64,
    pub fail: u64,
}

/// Whether the runtime resolves and its bundle is in the store, recorded for this exact
/// definition (package integrity and recipe digest). Nothing is downloaded or hashed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeCheck {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub runtime: String,
    pub bundle: BundleState,
    /// `sha256:<hex>` of the bundle tarball, when one is recorded.
    pub digest: Option<String>,
    /// The digest of the recipe the definition uses now.
    pub recipe_digest: Option<String>,
}

/// What the bundle store holds for the runtime version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum BundleState {
    /// Unpacked, and recorded for the current package and recipe.
    Present,
    /// Recorded for the current package and recipe, but not unpacked: the next run unpacks it.
    Packed,
    /// Recorded for another package or recipe: the next run rebuilds it.
    Stale,
    /// Not in the store: the next run downloads and builds it.
    Absent,
    /// The runtime spec does not resolve.
    UnknownRuntime,
}

/// What the bundle store says, as gathered by the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum BundleFact {
    Present { digest: String, bytes: u64 },
    Packed { digest: String, bytes: u64 },
    Stale { digest: String, bytes: u64, reason: String },
    Absent,
}

/// The runtime as the registry resolved it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeFact {
    /// `name@version`.
    pub key: String,
    /// runtime.yaml `baseMemoryMb`.
    pub base_memory_mb: Option<u32>,
    pub recipe_digest: String,
    pub bundle: BundleFact,
}

/// Everything [`evaluate`] looks at, gathered without side effects.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub service: String,
    /// The runtime spec as the service gives it.
    pub runtime_spec: String,
    /// `Err`: why the spec does not resolve.
    pub runtime: Result<RuntimeFact, String>,
    pub memory_mb: u32,
    pub timeout_ms: u64,
    pub dependencies: u64,
    pub dependencies_source: Option<String>,
    /// `Err`: why the stored measurement cannot be used.
    pub cold_start: Result<Option<ColdStart>, String>,
}

/// Runs every check.
pub fn evaluate(facts: &Facts, config: &Config) -> PreflightReport {
    let checks = vec![
        Check::Memory(memory(facts, config)),
        Check::Timeout(timeout(facts, config)),
        Check::BundleSize(bundle_size(facts, config)),
        Check::Dependencies(dependencies(facts, config)),
        Check::Runtime(runtime(facts)),
    ];
    let worst = checks.iter().map(Check::status).max().unwrap_or(Level::Pass);
    PreflightReport {
        service: facts.service.clone(),
        runtime: facts.runtime.as_ref().map_or_else(|_| facts.runtime_spec.clone(), |r| r.key.clone()),
        status: if worst == Level::Skip { Level::Pass } else { worst },
        checks,
    }
}

fn outcome(status: Level, message: String, suggestion: Option<String>) -> Outcome {
    Outcome { status, message, suggestion }
}

/// "48" for whole numbers, "1.5" otherwise.
pub(crate) fn num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 { format!("{}", v.round() as i64) } else { format!("{v:.1}") }
}

const SKIP_HINT: &str = "--skip-preflight runs it anyway";

fn memory(f: &Facts, c: &Config) -> MemoryCheck {
    let runtime_base = f.runtime.as_ref().ok().and_then(|r| r.base_memory_mb.map(|b| (b, r.key.clone())));
    let (base_mb, base_from) = match (c.memory_base_mb, runtime_base) {
        (Some(b), _) => (Some(b), Some("preflight.memory.baseMb".to_string())),
        (None, Some((b, key))) => (Some(b), Some(format!("baseMemoryMb of {key}"))),
        (None, None) => (None, None),
    };
    let estimate = base_mb.map(|b| f64::from(b) + c.memory_per_dependency_mb * f.dependencies as f64);
    let warn_below = estimate.map(|e| e * c.memory_warn_ratio);
    let fail_below = estimate.map(|e| e * c.memory_fail_ratio);
    let alloc = f64::from(f.memory_mb);
    let outcome = match (estimate, warn_below, fail_below) {
        (Some(e), Some(w), Some(fl)) => {
            let basis = format!(
                "estimate {} MiB = {} MiB base + {} × {} MiB per dependency",
                num(e),
                base_mb.unwrap_or_default(),
                f.dependencies,
                num(c.memory_per_dependency_mb)
            );
            if alloc < fl {
                outcome(
                    Level::Fail,
                    format!(
                        "memoryMb {} is below the fail line {} MiB (estimate × failRatio {}; {basis})",
                        f.memory_mb,
                        num(fl),
                        num(c.memory_fail_ratio)
                    ),
                    Some(format!(
                        "raise service.memoryMb (or --memory) to at least {} MiB, or lower preflight.memory.failRatio / preflight.memory.baseMb; {SKIP_HINT}",
                        fl.ceil() as u64
                    )),
                )
            } else if alloc < w {
                outcome(
                    Level::Warn,
                    format!(
                        "memoryMb {} leaves little headroom: below the warn line {} MiB (estimate × warnRatio {}; {basis})",
                        f.memory_mb,
                        num(w),
                        num(c.memory_warn_ratio)
                    ),
                    Some(format!(
                        "raise service.memoryMb to {} MiB or more, or lower preflight.memory.warnRatio",
                        w.ceil() as u64
                    )),
                )
            } else {
                outcome(
                    Level::Pass,
                    format!("memoryMb {} is at least the warn line {} MiB ({basis})", f.memory_mb, num(w)),
                    None,
                )
            }
        }
        _ => outcome(
            Level::Skip,
            format!(
                "no memory estimate for {}: its runtime.yaml has no baseMemoryMb; set preflight.memory.baseMb in service.yaml",
                f.runtime.as_ref().map_or(f.runtime_spec.as_str(), |r| r.key.as_str())
            ),
            None,
        ),
    };
    MemoryCheck {
        outcome,
        allocated_mb: f.memory_mb,
        base_mb,
        base_from,
        per_dependency_mb: c.memory_per_dependency_mb,
        dependencies: f.dependencies,
        estimate_mb: estimate,
        warn_ratio: c.memory_warn_ratio,
        fail_ratio: c.memory_fail_ratio,
        warn_below_mb: warn_below,
        fail_below_mb: fail_below,
    }
}

fn timeout(f: &Facts, c: &Config) -> TimeoutCheck {
    let t = f.timeout_ms;
    let (cold_start, note) = match &f.cold_start {
        Ok(Some(m)) => (Some(m.clone()), None),
        Ok(None) => {
            (None, Some(format!("no measurement yet: the first run of {} on this host records one", f_runtime(f))))
        }
        Err(e) => (None, Some(e.clone())),
    };
    let warn_below = cold_start.as_ref().map(|m| m.ms * c.cold_start_warn_ratio);
    let fail_below = cold_start.as_ref().zip(c.cold_start_fail_ratio).map(|(m, r)| m.ms * r);
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    let mut suggestions = Vec::new();
    if t < c.timeout_min_ms {
        fails.push(format!("timeoutMs {t} is below preflight.timeout.minMs {}", c.timeout_min_ms));
        suggestions.push(format!(
            "raise service.timeoutMs (or --timeout) to at least {}, or lower preflight.timeout.minMs",
            c.timeout_min_ms
        ));
    }
    if t > c.timeout_max_ms {
        warns.push(format!("timeoutMs {t} is above preflight.timeout.maxMs {}", c.timeout_max_ms));
        suggestions
            .push("lower service.timeoutMs, or raise preflight.timeout.maxMs if runs really take that long".into());
    }
    if let (Some(m), Some(fl)) = (&cold_start, fail_below)
        && (t as f64) < fl
    {
        fails.push(format!(
            "timeoutMs {t} is below {} ms, the last cold start of {} ({} ms) × coldStartFailRatio {}",
            num(fl),
            m.runtime,
            num(m.ms),
            num(c.cold_start_fail_ratio.unwrap_or_default())
        ));
        suggestions.push("raise service.timeoutMs, or lower preflight.timeout.coldStartFailRatio".into());
    } else if let (Some(m), Some(w)) = (&cold_start, warn_below)
        && (t as f64) < w
    {
        warns.push(format!(
            "timeoutMs {t} is below {} ms, the last cold start of {} ({} ms) × coldStartWarnRatio {}: start-up takes a large share of the limit",
            num(w),
            m.runtime,
            num(m.ms),
            num(c.cold_start_warn_ratio)
        ));
        suggestions.push("raise service.timeoutMs, or lower preflight.timeout.coldStartWarnRatio".into());
    }
    let status = if !fails.is_empty() {
        Level::Fail
    } else if !warns.is_empty() {
        Level::Warn
    } else {
        Level::Pass
    };
    let message = if status == Level::Pass {
        let cs = match (&cold_start, warn_below) {
            (Some(m), Some(w)) => format!(
                "; at least {} ms (last cold start {} ms × {})",
                num(w),
                num(m.ms),
                num(c.cold_start_warn_ratio)
            ),
            _ => String::new(),
        };
        format!("timeoutMs {t} is within {} to {} ms{cs}", c.timeout_min_ms, c.timeout_max_ms)
    } else {
        fails.iter().chain(&warns).cloned().collect::<Vec<_>>().join("; ")
    };
    let suggestion = (status != Level::Pass).then(|| {
        let mut s = suggestions.join("; ");
        if status == Level::Fail {
            s.push_str(&format!("; {SKIP_HINT}"));
        }
        s
    });
    TimeoutCheck {
        outcome: outcome(status, message, suggestion),
        timeout_ms: t,
        min_ms: c.timeout_min_ms,
        max_ms: c.timeout_max_ms,
        cold_start,
        cold_start_note: note,
        cold_start_warn_ratio: c.cold_start_warn_ratio,
        cold_start_fail_ratio: c.cold_start_fail_ratio,
        warn_below_ms: warn_below,
        fail_below_ms: fail_below,
    }
}

fn f_runtime(f: &Facts) -> &str {
    f.runtime.as_ref().map_or(f.runtime_spec.as_str(), |r| r.key.as_str())
}

fn bundle_size(f: &Facts, c: &Config) -> BundleSizeCheck {
    let recorded = match f.runtime.as_ref().map(|r| &r.bundle) {
        Ok(BundleFact::Present { digest, bytes } | BundleFact::Packed { digest, bytes }) => {
            Some((digest.clone(), *bytes))
        }
        _ => None,
    };
    let mb = recorded.as_ref().map(|(_, b)| *b as f64 / MIB);
    let outcome = match mb {
        None => outcome(
            Level::Skip,
            format!("the bundle of {} is not built yet; its size is known once it is", f_runtime(f)),
            None,
        ),
        Some(mb) if mb > c.bundle_fail_mb as f64 => outcome(
            Level::Fail,
            format!("bundle is {mb:.1} MiB, above preflight.bundle.failMb {} MiB", c.bundle_fail_mb),
            Some(format!("use a smaller runtime or raise preflight.bundle.failMb; {SKIP_HINT}")),
        ),
        Some(mb) if mb > c.bundle_warn_mb as f64 => outcome(
            Level::Warn,
            format!("bundle is {mb:.1} MiB, above preflight.bundle.warnMb {} MiB", c.bundle_warn_mb),
            Some("use a smaller runtime or raise preflight.bundle.warnMb".into()),
        ),
        Some(mb) => outcome(
            Level::Pass,
            format!("bundle is {mb:.1} MiB, at most preflight.bundle.warnMb {} MiB", c.bundle_warn_mb),
            None,
        ),
    };
    BundleSizeCheck {
        outcome,
        bundle_mb: mb,
        digest: recorded.map(|(d, _)| d),
        warn_mb: c.bundle_warn_mb,
        fail_mb: c.bundle_fail_mb,
    }
}

fn dependencies(f: &Facts, c: &Config) -> DependenciesCheck {
    let n = f.dependencies;
    let outcome = if n > c.dependencies_fail {
        outcome(
            Level::Fail,
            format!("{n} dependencies, above preflight.dependencies.fail {}", c.dependencies_fail),
            Some(format!("remove unused packages from package.json or raise preflight.dependencies.fail; {SKIP_HINT}")),
        )
    } else if n > c.dependencies_warn {
        outcome(
            Level::Warn,
            format!("{n} dependencies, above preflight.dependencies.warn {}", c.dependencies_warn),
            Some("remove unused packages from package.json or raise preflight.dependencies.warn".into()),
        )
    } else {
        outcome(
            Level::Pass,
            format!("{n} dependencies, at most preflight.dependencies.warn {}", c.dependencies_warn),
            None,
        )
    };
    DependenciesCheck {
        outcome,
        count: n,
        source: f.dependencies_source.clone(),
        warn: c.dependencies_warn,
        fail: c.dependencies_fail,
    }
}

fn runtime(f: &Facts) -> RuntimeCheck {
    let r = match &f.runtime {
        Err(e) => {
            return RuntimeCheck {
                outcome: outcome(
                    Level::Fail,
                    e.clone(),
                    Some("fix service.runtime (or --runtime); `ignite runtime list` shows what exists".into()),
                ),
                runtime: f.runtime_spec.clone(),
                bundle: BundleState::UnknownRuntime,
                digest: None,
                recipe_digest: None,
            };
        }
        Ok(r) => r,
    };
    let pull = format!("`ignite runtime pull {}` prepares it ahead of time", r.key);
    let (state, digest, outcome) = match &r.bundle {
        BundleFact::Present { digest, .. } => (
            BundleState::Present,
            Some(digest.clone()),
            outcome(
                Level::Pass,
                format!("{} is present ({digest}), recorded for the pinned package and the current recipe", r.key),
                None,
            ),
        ),
        BundleFact::Packed { digest, .. } => (
            BundleState::Packed,
            Some(digest.clone()),
            outcome(
                Level::Warn,
                format!("{} is built ({digest}) but not unpacked: the next run unpacks it first", r.key),
                Some(pull),
            ),
        ),
        BundleFact::Stale { digest, reason, .. } => (
            BundleState::Stale,
            Some(digest.clone()),
            outcome(
                Level::Warn,
                format!("{} in the store ({digest}) was made from {reason}: the next run rebuilds it", r.key),
                Some(pull),
            ),
        ),
        BundleFact::Absent => (
            BundleState::Absent,
            None,
            outcome(
                Level::Warn,
                format!("{} is not in the bundle store: the next run downloads and builds it", r.key),
                Some(pull),
            ),
        ),
    };
    RuntimeCheck {
        outcome,
        runtime: r.key.clone(),
        bundle: state,
        digest,
        recipe_digest: Some(r.recipe_digest.clone()),
    }
}

#[cfg(test)]
mod tests;
