//! Seccomp profiles as data: loads a default-deny allowlist from YAML, validates it against the
//! x86_64 syscall and errno tables, and converts it to the OCI `linux.seccomp` section.
//!
//! The profile lives in `policies/seccomp/*.yaml` so that every rule carries a `comment` saying
//! why it exists, and reviewers read a policy rather than code. Validation is strict because the
//! layers below are not: libseccomp (and so runc) silently drops syscall names it does not know,
//! which turns a typo in an allowlist into a hole that nobody notices, or in a denylist into a
//! rule that never fires.
//!
//! Schema (all keys camelCase, unknown keys rejected):
//!
//! ```yaml
//! defaultAction: errno           # allow | errno | kill_process | kill_thread | trap | log
//! defaultErrno: EPERM            # required with, and only with, defaultAction errno
//! architectures: [x86_64]        # the only architecture whose syscall table is embedded
//! rules:
//!   - comment: "why this rule exists"
//!     action: allow              # same actions as defaultAction
//!     errno: ENOSYS              # required with, and only with, action errno
//!     syscalls: [read, write]
//!     args:                      # optional; all conditions must hold (ANDed, as in libseccomp)
//!       - { index: 0, op: masked_eq, value: 0x7e020000, valueTwo: 0 }
//!     audit: mount               # optional: in audit mode these calls notify ignite (below)
//!     auditWhen: networkOff      # optional, with audit: only when the run has no network
//!     onlyIn: auditSpawnOff      # optional: the rule exists only in this kind of filter
//!     notIn: auditSpawnOff       # optional: the rule exists in every other kind of filter
//! ```
//!
//! `audit: KIND` marks a rule whose calls are high-signal: in audit mode the rule's action
//! becomes `SCMP_ACT_NOTIFY`, so the kernel suspends the calling thread and hands the call to
//! ignite's audit listener, which records an event of that kind and always answers EPERM.
//! Outside audit mode the rule keeps its action; a marked rule whose action is the default one
//! exists only for audit mode and is left out of the filter.
//!
//! `onlyIn` / `notIn: auditSpawnOff` give audit runs whose policy forbids spawning their own
//! version of some rules: there exec and process creation are notified (kind `process`) instead
//! of being allowed by the profile and denied by the entrypoint's own filter, whose ERRNO would
//! win over the notification. Every other filter is built from the other version, so it is the
//! same as if the `onlyIn` rules did not exist. The overlap checks run for both versions.
//!
//! `op` is one of `eq ne lt le gt ge masked_eq`. For `masked_eq`, `value` is the mask and
//! `valueTwo` the value the masked argument must equal; this is the operand order of libseccomp,
//! runc and crun, and `valueTwo` is mandatory so the intent is always spelled out.

use std::collections::{BTreeSet, HashMap};

use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use serde::Deserialize;

/// Where the built-in profile comes from, for error messages.
const BUILTIN_ORIGIN: &str = "policies/seccomp/default.yaml";
/// The YAML source, for the tests that compare it with what the binary loads.
#[cfg(test)]
const BUILTIN_PROFILE: &str = include_str!("../../../policies/seccomp/default.yaml");
/// The same profile as JSON, converted from the YAML by build.rs: every run loads it, and JSON
/// loads in a fraction of YAML's time. A test checks that both load to the same profile.
const BUILTIN_PROFILE_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/policies/seccomp/default.yaml.json"));

/// Syscall arguments are numbered 0 to 5 on every Linux architecture.
const MAX_ARG_INDEX: u32 = 5;

/// Errors from loading, validating or converting a seccomp profile.
///
/// Every variant names the profile it came from; rule problems also name the rule's position
/// (`rules[i]`, 0-based like the YAML parser's own paths) and its comment, so the rule can be
/// found without line numbers.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The text is not YAML of the expected shape (syntax error, unknown key, wrong type,
    /// unknown action or architecture). The YAML error carries the line and column.
    #[error("failed to parse seccomp profile {origin}: {error}")]
    Parse { origin: String, error: serde_yaml_ng::Error },
    /// The built-in profile's JSON form (derived from the YAML at build time) does not load:
    /// a build problem, not a user's.
    #[error("failed to load the built-in seccomp profile {origin} (its JSON form): {message}")]
    Builtin { origin: String, message: String },
    /// A profile-wide setting is inconsistent.
    #[error("failed to load seccomp profile {origin}: {problem}")]
    Profile { origin: String, problem: Problem },
    /// One rule is invalid.
    #[error("failed to load seccomp profile {origin}: rules[{index}] ({comment:?}): {problem}")]
    Rule { origin: String, index: usize, comment: String, problem: Problem },
    /// oci-spec refused to build the seccomp section.
    #[error("failed to build the OCI seccomp section from {origin}: {error}")]
    Oci { origin: String, error: oci_spec::OciSpecError },
}

impl SeccompError {
    /// The validation problem, if this error is one (lets callers and tests match on the cause
    /// instead of on message text).
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Profile { problem, .. } | Self::Rule { problem, .. } => Some(problem),
            Self::Parse { .. } | Self::Builtin { .. } | Self::Oci { .. } => None,
        }
    }
}

/// Why a syntactically valid profile was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("defaultErrno is required when defaultAction is errno")]
    MissingDefaultErrno,
    #[error("defaultErrno is only allowed when defaultAction is errno")]
    UnexpectedDefaultErrno,
    #[error("architectures must name at least one architecture")]
    NoArchitectures,
    #[error("architecture {name} is listed more than once")]
    DuplicateArchitecture { name: &'static str },
    #[error("the rule needs a non-empty comment saying why it exists")]
    EmptyComment,
    #[error("the rule lists no syscalls")]
    NoSyscalls,
    #[error("unknown x86_64 syscall {name:?} (libseccomp would silently ignore it; check the spelling)")]
    UnknownSyscall { name: String },
    #[error("syscall {name:?} is listed more than once in the rule")]
    RepeatedSyscall { name: &'static str },
    #[error("unknown errno {name:?} (use a name such as EPERM, ENOSYS or EAFNOSUPPORT)")]
    UnknownErrno { name: String },
    #[error("errno is required when action is errno")]
    MissingErrno,
    #[error("errno is only allowed when action is errno")]
    UnexpectedErrno,
    #[error("argument index {index} is out of range (syscall arguments are numbered 0 to 5)")]
    ArgIndexOutOfRange { index: u32 },
    #[error("valueTwo is only allowed with op masked_eq")]
    UnexpectedValueTwo,
    #[error("op masked_eq needs valueTwo (the value the masked argument must equal)")]
    MissingValueTwo,
    #[error("masked_eq can never match: valueTwo {value:#x} has bits outside the mask {mask:#x}")]
    MaskedEqNeverMatches { mask: u64, value: u64 },
    #[error("the rule's action is the default action, so the rule would have no effect")]
    SameAsDefault,
    #[error("syscall {name:?} already has an unconditional rule (rule {other})")]
    DuplicateUnconditional { name: &'static str, other: usize },
    #[error(
        "syscall {name:?} has both an unconditional rule (rule {unconditional}) and a \
         conditional one (rule {conditional}); the conditions could never take effect"
    )]
    ConditionalShadowed { name: &'static str, unconditional: usize, conditional: usize },
    #[error(
        "audit kind {kind:?} is not a lower-case identifier, or is one ignite reserves for its own \
         events ({})",
        RESERVED_AUDIT_KINDS.join(", ")
    )]
    BadAuditKind { kind: String },
    #[error("auditWhen is only allowed together with audit")]
    AuditWhenWithoutAudit,
    #[error(
        "syscall {name:?} cannot be audited: the OCI runtime writes through it after loading the \
         filter, so a notification would hang the container's start"
    )]
    AuditUnsupported { name: &'static str },
    #[error("onlyIn and notIn cannot be combined in one rule")]
    OnlyInAndNotIn,
}

/// Event kinds ignite records itself (cgroup counters and its own stops); a rule cannot use
/// them, so a report's kind always says where the event came from.
pub const RESERVED_AUDIT_KINDS: [&str; 4] = ["oom", "pids_limit", "timeout", "output_limit"];

/// When a rule's audit marker applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AuditWhen {
    /// In every audit-mode run.
    Always,
    /// Only in audit-mode runs whose policy has the network off (e.g. IP sockets, which such a
    /// run could only use on its own loopback).
    NetworkOff,
}

/// A rule's audit marker: the event kind its calls are recorded as, and when it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditMark {
    kind: String,
    when: AuditWhen,
}

impl AuditMark {
    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn when(&self) -> AuditWhen {
        self.when
    }

    /// Whether the marker applies to a run with (`network`) or without a network.
    pub fn applies(&self, network: bool) -> bool {
        match self.when {
            AuditWhen::Always => true,
            AuditWhen::NetworkOff => !network,
        }
    }
}

/// How a profile is turned into a filter for one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterMode {
    /// Every rule keeps its action.
    Enforce,
    /// Rules marked `audit` (that apply to this run) notify the listener instead. `spawn_off`:
    /// the run's policy forbids spawning, so the `auditSpawnOff` version of the rules is used.
    Audit { network: bool, spawn_off: bool },
}

/// A kind of filter that has its own version of some rules (`onlyIn` / `notIn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Variant {
    /// Audit mode with `allowSpawn: false`.
    AuditSpawnOff,
}

impl Variant {
    fn selected_by(self, mode: FilterMode) -> bool {
        match self {
            Variant::AuditSpawnOff => matches!(mode, FilterMode::Audit { spawn_off: true, .. }),
        }
    }
}

/// Which filters a rule is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Always,
    OnlyIn(Variant),
    NotIn(Variant),
}

/// What the filter does with a matching syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    /// Fail the call with this errno without running it.
    Errno(Errno),
    KillProcess,
    KillThread,
    /// Deliver SIGSYS.
    Trap,
    /// Allow, and log the call through the audit subsystem.
    Log,
}

impl Action {
    /// Whether the syscall runs under this action.
    pub fn permits(self) -> bool {
        matches!(self, Self::Allow | Self::Log)
    }

    /// Rank used when several conditional rules match one call: the kernel's precedence between
    /// stacked filters (kill beats trap beats errno beats log beats allow). This is the
    /// conservative reading for a policy question; see [`SeccompProfile::action_for`].
    fn severity(self) -> u8 {
        match self {
            Self::KillProcess => 5,
            Self::KillThread => 4,
            Self::Trap => 3,
            Self::Errno(_) => 2,
            Self::Log => 1,
            Self::Allow => 0,
        }
    }

    fn to_oci(self) -> (LinuxSeccompAction, Option<u32>) {
        match self {
            Self::Allow => (LinuxSeccompAction::ScmpActAllow, None),
            Self::Errno(errno) => (LinuxSeccompAction::ScmpActErrno, Some(errno.code())),
            Self::KillProcess => (LinuxSeccompAction::ScmpActKillProcess, None),
            Self::KillThread => (LinuxSeccompAction::ScmpActKillThread, None),
            Self::Trap => (LinuxSeccompAction::ScmpActTrap, None),
            Self::Log => (LinuxSeccompAction::ScmpActLog, None),
        }
    }
}

/// An errno value known by name (profiles name errnos; the filter needs numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno {
    name: &'static str,
    code: u32,
}

impl Errno {
    pub const EPERM: Self = Self { name: "EPERM", code: libc::EPERM as u32 };
    pub const ENOSYS: Self = Self { name: "ENOSYS", code: libc::ENOSYS as u32 };

    /// Looks an errno up by its symbolic name (`"EPERM"`).
    pub fn from_name(name: &str) -> Option<Self> {
        ERRNOS.iter().find(|(known, _)| *known == name).map(|&(name, code)| Self { name, code })
    }

    pub fn name(self) -> &'static str {
        self.name
    }

    pub fn code(self) -> u32 {
        self.code
    }
}

/// A seccomp filter architecture (an ABI whose syscalls the filter handles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Arch {
    /// The native 64-bit ABI. Listing only this one makes i386 (`int 0x80`) and x32 syscalls
    /// hit the filter's bad-architecture action instead of a second, unfiltered table.
    #[serde(rename = "x86_64")]
    X86_64,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
        }
    }

    fn to_oci(self) -> OciArch {
        match self {
            Self::X86_64 => OciArch::ScmpArchX86_64,
        }
    }
}

/// A syscall of the x86_64 table, by name and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Syscall {
    name: &'static str,
    number: u32,
}

impl Syscall {
    /// Looks a syscall up in the embedded x86_64 table.
    pub fn from_name(name: &str) -> Option<Self> {
        X86_64_SYSCALLS.iter().find(|(known, _)| *known == name).map(|&(name, number)| Self { name, number })
    }

    /// Looks a syscall up by its x86_64 number (as a seccomp notification carries it).
    pub fn from_number(number: i32) -> Option<Self> {
        let number = u32::try_from(number).ok()?;
        X86_64_SYSCALLS.iter().find(|(_, known)| *known == number).map(|&(name, number)| Self { name, number })
    }

    pub fn name(self) -> &'static str {
        self.name
    }

    pub fn number(self) -> u32 {
        self.number
    }
}

/// A comparison applied to one syscall argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq(u64),
    Ne(u64),
    Lt(u64),
    Le(u64),
    Gt(u64),
    Ge(u64),
    /// `(arg & mask) == value`.
    MaskedEq {
        mask: u64,
        value: u64,
    },
}

/// One condition of a rule: argument `index` compared as `comparison`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCondition {
    index: u8,
    comparison: Comparison,
}

impl ArgCondition {
    pub fn index(self) -> usize {
        usize::from(self.index)
    }

    pub fn comparison(self) -> Comparison {
        self.comparison
    }

    /// Whether the condition holds for these argument values.
    pub fn matches(self, args: &[u64; 6]) -> bool {
        let arg = args[self.index()];
        match self.comparison {
            Comparison::Eq(v) => arg == v,
            Comparison::Ne(v) => arg != v,
            Comparison::Lt(v) => arg < v,
            Comparison::Le(v) => arg <= v,
            Comparison::Gt(v) => arg > v,
            Comparison::Ge(v) => arg >= v,
            Comparison::MaskedEq { mask, value } => arg & mask == value,
        }
    }

    /// The OCI form. For masked_eq the mask goes in `value` and the expected value in
    /// `valueTwo`, which is how runc and crun (via libseccomp) read it. youki reads the two the
    /// other way round, so an OCI driver for youki must swap them.
    fn to_oci(self) -> Result<LinuxSeccompArg, oci_spec::OciSpecError> {
        let builder = LinuxSeccompArgBuilder::default().index(self.index());
        let builder = match self.comparison {
            Comparison::Eq(v) => builder.op(LinuxSeccompOperator::ScmpCmpEq).value(v),
            Comparison::Ne(v) => builder.op(LinuxSeccompOperator::ScmpCmpNe).value(v),
            Comparison::Lt(v) => builder.op(LinuxSeccompOperator::ScmpCmpLt).value(v),
            Comparison::Le(v) => builder.op(LinuxSeccompOperator::ScmpCmpLe).value(v),
            Comparison::Gt(v) => builder.op(LinuxSeccompOperator::ScmpCmpGt).value(v),
            Comparison::Ge(v) => builder.op(LinuxSeccompOperator::ScmpCmpGe).value(v),
            Comparison::MaskedEq { mask, value } => {
                builder.op(LinuxSeccompOperator::ScmpCmpMaskedEq).value(mask).value_two(value)
            }
        };
        builder.build()
    }
}

/// One validated rule: `action` for `syscalls` when every condition in `args` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    comment: String,
    action: Action,
    syscalls: Vec<Syscall>,
    args: Vec<ArgCondition>,
    audit: Option<AuditMark>,
    presence: Presence,
}

impl Rule {
    pub fn comment(&self) -> &str {
        &self.comment
    }

    pub fn action(&self) -> Action {
        self.action
    }

    pub fn syscalls(&self) -> &[Syscall] {
        &self.syscalls
    }

    /// The argument conditions; empty for an unconditional rule.
    pub fn args(&self) -> &[ArgCondition] {
        &self.args
    }

    pub fn is_conditional(&self) -> bool {
        !self.args.is_empty()
    }

    /// The audit marker, if the rule's calls are high-signal.
    pub fn audit(&self) -> Option<&AuditMark> {
        self.audit.as_ref()
    }

    /// Whether the rule is part of the filter built under `mode`.
    pub fn present(&self, mode: FilterMode) -> bool {
        match self.presence {
            Presence::Always => true,
            Presence::OnlyIn(v) => v.selected_by(mode),
            Presence::NotIn(v) => !v.selected_by(mode),
        }
    }

    /// Whether, under `mode`, this rule notifies the listener instead of taking its action.
    pub fn notifies(&self, mode: FilterMode) -> bool {
        match mode {
            FilterMode::Enforce => false,
            FilterMode::Audit { network, .. } => {
                self.present(mode) && self.audit.as_ref().is_some_and(|m| m.applies(network))
            }
        }
    }

    pub fn covers(&self, syscall: &str) -> bool {
        self.syscalls.iter().any(|s| s.name == syscall)
    }

    /// Whether this rule applies to a call of `syscall` with these arguments.
    pub fn matches(&self, syscall: &str, args: &[u64; 6]) -> bool {
        self.covers(syscall) && self.args.iter().all(|cond| cond.matches(args))
    }

    fn to_oci(&self, mode: FilterMode) -> Result<LinuxSyscall, oci_spec::OciSpecError> {
        let (action, errno_ret) =
            if self.notifies(mode) { (LinuxSeccompAction::ScmpActNotify, None) } else { self.action.to_oci() };
        let names = self.syscalls.iter().map(|s| s.name.to_owned()).collect::<Vec<_>>();
        let mut builder = LinuxSyscallBuilder::default().names(names).action(action);
        if let Some(errno) = errno_ret {
            builder = builder.errno_ret(errno);
        }
        if !self.args.is_empty() {
            let args = self.args.iter().map(|cond| cond.to_oci()).collect::<Result<Vec<_>, _>>()?;
            builder = builder.args(args);
        }
        builder.build()
    }
}

/// A validated seccomp profile. The only ways to get one are [`SeccompProfile::from_yaml`] and
/// [`SeccompProfile::builtin`], so holders can rely on every invariant the loader checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompProfile {
    origin: String,
    default_action: Action,
    architectures: Vec<Arch>,
    rules: Vec<Rule>,
}

impl SeccompProfile {
    /// The profile shipped with Ignite (`policies/seccomp/default.yaml`, compiled in).
    pub fn builtin() -> Result<Self, SeccompError> {
        let raw: RawProfile = serde_json::from_str(BUILTIN_PROFILE_JSON)
            .map_err(|error| SeccompError::Builtin { origin: BUILTIN_ORIGIN.to_owned(), message: error.to_string() })?;
        raw.validate(BUILTIN_ORIGIN)
    }

    /// Parses and validates a profile. `origin` (usually the file path) is only used to say
    /// where an error comes from.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, SeccompError> {
        let raw: RawProfile =
            serde_yaml_ng::from_str(text).map_err(|error| SeccompError::Parse { origin: origin.to_owned(), error })?;
        raw.validate(origin)
    }

    /// Where the profile was loaded from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn default_action(&self) -> Action {
        self.default_action
    }

    pub fn architectures(&self) -> &[Arch] {
        &self.architectures
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules of the normal filter (`FilterMode::Enforce`); the queries below answer for it.
    fn enforced(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|rule| rule.present(FilterMode::Enforce))
    }

    /// The rules of the normal filter that mention `syscall`, in file order.
    pub fn rules_for(&self, syscall: &str) -> Vec<&Rule> {
        self.enforced().filter(|rule| rule.covers(syscall)).collect()
    }

    /// Whether `syscall` is allowed whatever its arguments.
    pub fn is_unconditionally_allowed(&self, syscall: &str) -> bool {
        self.enforced().any(|rule| !rule.is_conditional() && rule.action.permits() && rule.covers(syscall))
    }

    /// Whether some rule can let `syscall` run (for some arguments at least). `false` means the
    /// syscall is refused however it is called.
    pub fn may_allow(&self, syscall: &str) -> bool {
        if self.default_action.permits() {
            // Unless an unconditional rule refuses it, the default lets it through.
            return !self
                .enforced()
                .any(|rule| !rule.is_conditional() && !rule.action.permits() && rule.covers(syscall));
        }
        self.enforced().any(|rule| rule.action.permits() && rule.covers(syscall))
    }

    /// Names of all syscalls that some rule allows (conditionally or not).
    pub fn allowed_syscalls(&self) -> BTreeSet<&'static str> {
        self.enforced()
            .filter(|rule| rule.action.permits())
            .flat_map(|rule| rule.syscalls.iter().map(|s| s.name))
            .collect()
    }

    /// What the filter does with `syscall(args…)`; `None` if `syscall` is not an x86_64
    /// syscall. When several conditional rules match with different actions, the most severe
    /// one is returned (the kernel's precedence between stacked filters); the loader already
    /// refuses the ambiguous unconditional overlaps.
    pub fn action_for(&self, syscall: &str, args: &[u64; 6]) -> Option<Action> {
        Syscall::from_name(syscall)?;
        let matched = self
            .enforced()
            .filter(|rule| rule.matches(syscall, args))
            .map(|rule| rule.action)
            .max_by_key(|action| action.severity());
        Some(matched.unwrap_or(self.default_action))
    }

    /// Converts to the OCI `linux.seccomp` section (`SCMP_ACT_*`, `SCMP_ARCH_*`, `SCMP_CMP_*`),
    /// one OCI syscall entry per rule. masked_eq operands are in libseccomp/runc/crun order
    /// (mask in `value`); see [`ArgCondition`] for youki.
    pub fn to_oci(&self) -> Result<LinuxSeccomp, SeccompError> {
        self.to_oci_with(FilterMode::Enforce, None)
    }

    /// The filter of an audit-mode run: rules marked `audit` that apply to it become
    /// `SCMP_ACT_NOTIFY`, and the OCI runtime hands the notification descriptor to the unix
    /// socket at `listener` (`linux.seccomp.listenerPath`).
    pub fn to_oci_audit(
        &self,
        network: bool,
        spawn_off: bool,
        listener: &std::path::Path,
    ) -> Result<LinuxSeccomp, SeccompError> {
        self.to_oci_with(FilterMode::Audit { network, spawn_off }, Some(listener))
    }

    /// The rule (and so the event kind) that notified about `syscall(args…)` under `mode`.
    pub fn audit_rule_for(&self, mode: FilterMode, syscall: &str, args: &[u64; 6]) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.notifies(mode) && rule.matches(syscall, args))
    }

    /// Syscall names that notify under `mode` (for some arguments at least).
    pub fn notified_syscalls(&self, mode: FilterMode) -> BTreeSet<&'static str> {
        self.rules
            .iter()
            .filter(|rule| rule.notifies(mode))
            .flat_map(|rule| rule.syscalls.iter().map(|s| s.name))
            .collect()
    }

    fn to_oci_with(&self, mode: FilterMode, listener: Option<&std::path::Path>) -> Result<LinuxSeccomp, SeccompError> {
        let oci_error = |error| SeccompError::Oci { origin: self.origin.clone(), error };
        // A rule with the default action exists only for audit mode; elsewhere it is a no-op.
        let syscalls = self
            .rules
            .iter()
            .filter(|rule| rule.present(mode) && (rule.notifies(mode) || rule.action != self.default_action))
            .map(|rule| rule.to_oci(mode))
            .collect::<Result<Vec<_>, _>>()
            .map_err(oci_error)?;
        let (default_action, default_errno) = self.default_action.to_oci();
        let architectures = self.architectures.iter().map(|arch| arch.to_oci()).collect::<Vec<_>>();
        let mut builder = LinuxSeccompBuilder::default()
            .default_action(default_action)
            .architectures(architectures)
            .syscalls(syscalls);
        if let Some(errno) = default_errno {
            builder = builder.default_errno_ret(errno);
        }
        if let Some(path) = listener {
            builder = builder.listener_path(path.to_path_buf());
        }
        builder.build().map_err(oci_error)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawProfile {
    default_action: RawAction,
    #[serde(default)]
    default_errno: Option<String>,
    architectures: Vec<Arch>,
    rules: Vec<RawRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawAction {
    Allow,
    Errno,
    KillProcess,
    KillThread,
    Trap,
    Log,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    #[serde(default)]
    comment: String,
    action: RawAction,
    #[serde(default)]
    errno: Option<String>,
    #[serde(default)]
    syscalls: Vec<String>,
    #[serde(default)]
    args: Vec<RawArg>,
    #[serde(default)]
    audit: Option<String>,
    #[serde(default)]
    audit_when: Option<AuditWhen>,
    #[serde(default)]
    only_in: Option<Variant>,
    #[serde(default)]
    not_in: Option<Variant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawArg {
    index: u32,
    op: RawOp,
    value: u64,
    #[serde(default)]
    value_two: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    MaskedEq,
}

/// Combines an action keyword with its optional errno name, enforcing that errno comes with
/// (and only with) the errno action.
fn resolve_action(action: RawAction, errno: Option<&str>) -> Result<Action, Problem> {
    match (action, errno) {
        (RawAction::Errno, Some(name)) => {
            Errno::from_name(name).map(Action::Errno).ok_or_else(|| Problem::UnknownErrno { name: name.to_owned() })
        }
        (RawAction::Errno, None) => Err(Problem::MissingErrno),
        (_, Some(_)) => Err(Problem::UnexpectedErrno),
        (RawAction::Allow, None) => Ok(Action::Allow),
        (RawAction::KillProcess, None) => Ok(Action::KillProcess),
        (RawAction::KillThread, None) => Ok(Action::KillThread),
        (RawAction::Trap, None) => Ok(Action::Trap),
        (RawAction::Log, None) => Ok(Action::Log),
    }
}

impl RawProfile {
    fn validate(self, origin: &str) -> Result<SeccompProfile, SeccompError> {
        let profile_error = |problem| SeccompError::Profile { origin: origin.to_owned(), problem };
        let default_action = resolve_action(self.default_action, self.default_errno.as_deref())
            .map_err(|problem| match problem {
                Problem::MissingErrno => Problem::MissingDefaultErrno,
                Problem::UnexpectedErrno => Problem::UnexpectedDefaultErrno,
                other => other,
            })
            .map_err(profile_error)?;

        if self.architectures.is_empty() {
            return Err(profile_error(Problem::NoArchitectures));
        }
        let mut architectures: Vec<Arch> = Vec::with_capacity(self.architectures.len());
        for arch in self.architectures {
            if architectures.contains(&arch) {
                return Err(profile_error(Problem::DuplicateArchitecture { name: arch.name() }));
            }
            architectures.push(arch);
        }

        // Per syscall: the first unconditional and the first conditional rule seen. An
        // unconditional rule decides the syscall outright, so any second rule for it is either
        // dead or contradictory, and which one wins would be up to libseccomp's merging.
        // Checked once per version of the filter: the normal one and audit-with-spawning-off.
        let versions = [FilterMode::Enforce, FilterMode::Audit { network: false, spawn_off: true }];
        // Per syscall: the first unconditional and the first conditional rule (by index).
        type Seen = HashMap<&'static str, (Option<usize>, Option<usize>)>;
        let mut seen: [Seen; 2] = Default::default();
        let mut rules = Vec::with_capacity(self.rules.len());
        for (index, raw) in self.rules.into_iter().enumerate() {
            let comment = raw.comment.trim().to_owned();
            let rule_error =
                |problem| SeccompError::Rule { origin: origin.to_owned(), index, comment: comment.clone(), problem };
            let rule = raw.validate(comment.clone(), default_action).map_err(rule_error)?;
            for (mode, seen) in versions.iter().zip(seen.iter_mut()) {
                if !rule.present(*mode) {
                    continue;
                }
                for syscall in &rule.syscalls {
                    let (unconditional, conditional) = seen.entry(syscall.name).or_default();
                    let overlap = match (rule.is_conditional(), *unconditional, *conditional) {
                        (false, Some(other), _) => Some(Problem::DuplicateUnconditional { name: syscall.name, other }),
                        (false, None, Some(conditional)) => {
                            Some(Problem::ConditionalShadowed { name: syscall.name, unconditional: index, conditional })
                        }
                        (true, Some(unconditional), _) => {
                            Some(Problem::ConditionalShadowed { name: syscall.name, unconditional, conditional: index })
                        }
                        (true, None, _) | (false, None, None) => None,
                    };
                    if let Some(problem) = overlap {
                        return Err(rule_error(problem));
                    }
                    let slot = if rule.is_conditional() { conditional } else { unconditional };
                    slot.get_or_insert(index);
                }
            }
            rules.push(rule);
        }

        Ok(SeccompProfile { origin: origin.to_owned(), default_action, architectures, rules })
    }
}

impl RawRule {
    fn validate(self, comment: String, default_action: Action) -> Result<Rule, Problem> {
        if comment.is_empty() {
            return Err(Problem::EmptyComment);
        }
        let action = resolve_action(self.action, self.errno.as_deref())?;
        let audit = match (self.audit, self.audit_when) {
            (None, Some(_)) => return Err(Problem::AuditWhenWithoutAudit),
            (None, None) => None,
            (Some(kind), when) => {
                let identifier = kind.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !identifier || RESERVED_AUDIT_KINDS.contains(&kind.as_str()) {
                    return Err(Problem::BadAuditKind { kind });
                }
                Some(AuditMark { kind, when: when.unwrap_or(AuditWhen::Always) })
            }
        };
        // A marked rule with the default action is how a denied call is named for audit mode.
        if action == default_action && audit.is_none() {
            return Err(Problem::SameAsDefault);
        }
        if self.syscalls.is_empty() {
            return Err(Problem::NoSyscalls);
        }
        let mut syscalls: Vec<Syscall> = Vec::with_capacity(self.syscalls.len());
        for name in &self.syscalls {
            let syscall = Syscall::from_name(name).ok_or_else(|| Problem::UnknownSyscall { name: name.clone() })?;
            if syscalls.contains(&syscall) {
                return Err(Problem::RepeatedSyscall { name: syscall.name });
            }
            if audit.is_some() && syscall.name == "write" {
                return Err(Problem::AuditUnsupported { name: syscall.name });
            }
            syscalls.push(syscall);
        }
        let args = self.args.iter().map(RawArg::validate).collect::<Result<Vec<_>, _>>()?;
        let presence = match (self.only_in, self.not_in) {
            (Some(_), Some(_)) => return Err(Problem::OnlyInAndNotIn),
            (Some(v), None) => Presence::OnlyIn(v),
            (None, Some(v)) => Presence::NotIn(v),
            (None, None) => Presence::Always,
        };
        Ok(Rule { comment, action, syscalls, args, audit, presence })
    }
}

impl RawArg {
    fn validate(&self) -> Result<ArgCondition, Problem> {
        let index = u8::try_from(self.index)
            .ok()
            .filter(|&i| u32::from(i) <= MAX_ARG_INDEX)
            .ok_or(Problem::ArgIndexOutOfRange { index: self.index })?;
        let comparison = match (self.op, self.value_two) {
            (RawOp::MaskedEq, None) => return Err(Problem::MissingValueTwo),
            (RawOp::MaskedEq, Some(value)) => {
                let mask = self.value;
                if value & !mask != 0 {
                    return Err(Problem::MaskedEqNeverMatches { mask, value });
                }
                Comparison::MaskedEq { mask, value }
            }
            (_, Some(_)) => return Err(Problem::UnexpectedValueTwo),
            (RawOp::Eq, None) => Comparison::Eq(self.value),
            (RawOp::Ne, None) => Comparison::Ne(self.value),
            (RawOp::Lt, None) => Comparison::Lt(self.value),
            (RawOp::Le, None) => Comparison::Le(self.value),
            (RawOp::Gt, None) => Comparison::Gt(self.value),
            (RawOp::Ge, None) => Comparison::Ge(self.value),
        };
        Ok(ArgCondition { index, comparison })
    }
}

/// Errno names a profile may use, with their Linux values.
const ERRNOS: &[(&str, u32)] = &[
    ("EPERM", libc::EPERM as u32),
    ("ENOENT", libc::ENOENT as u32),
    ("ESRCH", libc::ESRCH as u32),
    ("EINTR", libc::EINTR as u32),
    ("EIO", libc::EIO as u32),
    ("ENXIO", libc::ENXIO as u32),
    ("E2BIG", libc::E2BIG as u32),
    ("ENOEXEC", libc::ENOEXEC as u32),
    ("EBADF", libc::EBADF as u32),
    ("ECHILD", libc::ECHILD as u32),
    ("EAGAIN", libc::EAGAIN as u32),
    ("ENOMEM", libc::ENOMEM as u32),
    ("EACCES", libc::EACCES as u32),
    ("EFAULT", libc::EFAULT as u32),
    ("EBUSY", libc::EBUSY as u32),
    ("EEXIST", libc::EEXIST as u32),
    ("EXDEV", libc::EXDEV as u32),
    ("ENODEV", libc::ENODEV as u32),
    ("ENOTDIR", libc::ENOTDIR as u32),
    ("EISDIR", libc::EISDIR as u32),
    ("EINVAL", libc::EINVAL as u32),
    ("ENFILE", libc::ENFILE as u32),
    ("EMFILE", libc::EMFILE as u32),
    ("ENOTTY", libc::ENOTTY as u32),
    ("ETXTBSY", libc::ETXTBSY as u32),
    ("EFBIG", libc::EFBIG as u32),
    ("ENOSPC", libc::ENOSPC as u32),
    ("ESPIPE", libc::ESPIPE as u32),
    ("EROFS", libc::EROFS as u32),
    ("EMLINK", libc::EMLINK as u32),
    ("EPIPE", libc::EPIPE as u32),
    ("ERANGE", libc::ERANGE as u32),
    ("ENAMETOOLONG", libc::ENAMETOOLONG as u32),
    ("ENOSYS", libc::ENOSYS as u32),
    ("ENOTEMPTY", libc::ENOTEMPTY as u32),
    ("ELOOP", libc::ELOOP as u32),
    ("ENOTSOCK", libc::ENOTSOCK as u32),
    ("EPROTOTYPE", libc::EPROTOTYPE as u32),
    ("EPROTONOSUPPORT", libc::EPROTONOSUPPORT as u32),
    ("ESOCKTNOSUPPORT", libc::ESOCKTNOSUPPORT as u32),
    ("EOPNOTSUPP", libc::EOPNOTSUPP as u32),
    ("ENOTSUP", libc::ENOTSUP as u32),
    ("EPFNOSUPPORT", libc::EPFNOSUPPORT as u32),
    ("EAFNOSUPPORT", libc::EAFNOSUPPORT as u32),
    ("EADDRINUSE", libc::EADDRINUSE as u32),
    ("EADDRNOTAVAIL", libc::EADDRNOTAVAIL as u32),
    ("ENETDOWN", libc::ENETDOWN as u32),
    ("ENETUNREACH", libc::ENETUNREACH as u32),
    ("ECONNRESET", libc::ECONNRESET as u32),
    ("ETIMEDOUT", libc::ETIMEDOUT as u32),
    ("ECONNREFUSED", libc::ECONNREFUSED as u32),
    ("EHOSTUNREACH", libc::EHOSTUNREACH as u32),
];

/// The native x86_64 syscall table (ABIs `common` and `64` of the kernel's
/// `arch/x86/entry/syscalls/syscall_64.tbl`, through Linux 6.18), by name and number. x32-only
/// entries (512–547) are left out: x32 is refused as an architecture. Names are the ones
/// libseccomp and the OCI spec use, which are the kernel table's names.
#[rustfmt::skip]
const X86_64_SYSCALLS: &[(&str, u32)] = &[
    ("read", 0), ("write", 1), ("open", 2), ("close", 3), ("stat", 4), ("fstat", 5), ("lstat", 6),
    ("poll", 7), ("lseek", 8), ("mmap", 9), ("mprotect", 10), ("munmap", 11), ("brk", 12),
    ("rt_sigaction", 13), ("rt_sigprocmask", 14), ("rt_sigreturn", 15), ("ioctl", 16),
    ("pread64", 17), ("pwrite64", 18), ("readv", 19), ("writev", 20), ("access", 21), ("pipe", 22),
    ("select", 23), ("sched_yield", 24), ("mremap", 25), ("msync", 26), ("mincore", 27),
    ("madvise", 28), ("shmget", 29), ("shmat", 30), ("shmctl", 31), ("dup", 32), ("dup2", 33),
    ("pause", 34), ("nanosleep", 35), ("getitimer", 36), ("alarm", 37), ("setitimer", 38),
    ("getpid", 39), ("sendfile", 40), ("socket", 41), ("connect", 42), ("accept", 43),
    ("sendto", 44), ("recvfrom", 45), ("sendmsg", 46), ("recvmsg", 47), ("shutdown", 48),
    ("bind", 49), ("listen", 50), ("getsockname", 51), ("getpeername", 52), ("socketpair", 53),
    ("setsockopt", 54), ("getsockopt", 55), ("clone", 56), ("fork", 57), ("vfork", 58),
    ("execve", 59), ("exit", 60), ("wait4", 61), ("kill", 62), ("uname", 63), ("semget", 64),
    ("semop", 65), ("semctl", 66), ("shmdt", 67), ("msgget", 68), ("msgsnd", 69), ("msgrcv", 70),
    ("msgctl", 71), ("fcntl", 72), ("flock", 73), ("fsync", 74), ("fdatasync", 75),
    ("truncate", 76), ("ftruncate", 77), ("getdents", 78), ("getcwd", 79), ("chdir", 80),
    ("fchdir", 81), ("rename", 82), ("mkdir", 83), ("rmdir", 84), ("creat", 85), ("link", 86),
    ("unlink", 87), ("symlink", 88), ("readlink", 89), ("chmod", 90), ("fchmod", 91),
    ("chown", 92), ("fchown", 93), ("lchown", 94), ("umask", 95), ("gettimeofday", 96),
    ("getrlimit", 97), ("getrusage", 98), ("sysinfo", 99), ("times", 100), ("ptrace", 101),
    ("getuid", 102), ("syslog", 103), ("getgid", 104), ("setuid", 105), ("setgid", 106),
    ("geteuid", 107), ("getegid", 108), ("setpgid", 109), ("getppid", 110), ("getpgrp", 111),
    ("setsid", 112), ("setreuid", 113), ("setregid", 114), ("getgroups", 115), ("setgroups", 116),
    ("setresuid", 117), ("getresuid", 118), ("setresgid", 119), ("getresgid", 120),
    ("getpgid", 121), ("setfsuid", 122), ("setfsgid", 123), ("getsid", 124), ("capget", 125),
    ("capset", 126), ("rt_sigpending", 127), ("rt_sigtimedwait", 128), ("rt_sigqueueinfo", 129),
    ("rt_sigsuspend", 130), ("sigaltstack", 131), ("utime", 132), ("mknod", 133), ("uselib", 134),
    ("personality", 135), ("ustat", 136), ("statfs", 137), ("fstatfs", 138), ("sysfs", 139),
    ("getpriority", 140), ("setpriority", 141), ("sched_setparam", 142), ("sched_getparam", 143),
    ("sched_setscheduler", 144), ("sched_getscheduler", 145), ("sched_get_priority_max", 146),
    ("sched_get_priority_min", 147), ("sched_rr_get_interval", 148), ("mlock", 149),
    ("munlock", 150), ("mlockall", 151), ("munlockall", 152), ("vhangup", 153),
    ("modify_ldt", 154), ("pivot_root", 155), ("_sysctl", 156), ("prctl", 157),
    ("arch_prctl", 158), ("adjtimex", 159), ("setrlimit", 160), ("chroot", 161), ("sync", 162),
    ("acct", 163), ("settimeofday", 164), ("mount", 165), ("umount2", 166), ("swapon", 167),
    ("swapoff", 168), ("reboot", 169), ("sethostname", 170), ("setdomainname", 171), ("iopl", 172),
    ("ioperm", 173), ("create_module", 174), ("init_module", 175), ("delete_module", 176),
    ("get_kernel_syms", 177), ("query_module", 178), ("quotactl", 179), ("nfsservctl", 180),
    ("getpmsg", 181), ("putpmsg", 182), ("afs_syscall", 183), ("tuxcall", 184), ("security", 185),
    ("gettid", 186), ("readahead", 187), ("setxattr", 188), ("lsetxattr", 189), ("fsetxattr", 190),
    ("getxattr", 191), ("lgetxattr", 192), ("fgetxattr", 193), ("listxattr", 194),
    ("llistxattr", 195), ("flistxattr", 196), ("removexattr", 197), ("lremovexattr", 198),
    ("fremovexattr", 199), ("tkill", 200), ("time", 201), ("futex", 202),
    ("sched_setaffinity", 203), ("sched_getaffinity", 204), ("set_thread_area", 205),
    ("io_setup", 206), ("io_destroy", 207), ("io_getevents", 208), ("io_submit", 209),
    ("io_cancel", 210), ("get_thread_area", 211), ("lookup_dcookie", 212), ("epoll_create", 213),
    ("epoll_ctl_old", 214), ("epoll_wait_old", 215), ("remap_file_pages", 216),
    ("getdents64", 217), ("set_tid_address", 218), ("restart_syscall", 219), ("semtimedop", 220),
    ("fadvise64", 221), ("timer_create", 222), ("timer_settime", 223), ("timer_gettime", 224),
    ("timer_getoverrun", 225), ("timer_delete", 226), ("clock_settime", 227),
    ("clock_gettime", 228), ("clock_getres", 229), ("clock_nanosleep", 230), ("exit_group", 231),
    ("epoll_wait", 232), ("epoll_ctl", 233), ("tgkill", 234), ("utimes", 235), ("vserver", 236),
    ("mbind", 237), ("set_mempolicy", 238), ("get_mempolicy", 239), ("mq_open", 240),
    ("mq_unlink", 241), ("mq_timedsend", 242), ("mq_timedreceive", 243), ("mq_notify", 244),
    ("mq_getsetattr", 245), ("kexec_load", 246), ("waitid", 247), ("add_key", 248),
    ("request_key", 249), ("keyctl", 250), ("ioprio_set", 251), ("ioprio_get", 252),
    ("inotify_init", 253), ("inotify_add_watch", 254), ("inotify_rm_watch", 255),
    ("migrate_pages", 256), ("openat", 257), ("mkdirat", 258), ("mknodat", 259), ("fchownat", 260),
    ("futimesat", 261), ("newfstatat", 262), ("unlinkat", 263), ("renameat", 264), ("linkat", 265),
    ("symlinkat", 266), ("readlinkat", 267), ("fchmodat", 268), ("faccessat", 269),
    ("pselect6", 270), ("ppoll", 271), ("unshare", 272), ("set_robust_list", 273),
    ("get_robust_list", 274), ("splice", 275), ("tee", 276), ("sync_file_range", 277),
    ("vmsplice", 278), ("move_pages", 279), ("utimensat", 280), ("epoll_pwait", 281),
    ("signalfd", 282), ("timerfd_create", 283), ("eventfd", 284), ("fallocate", 285),
    ("timerfd_settime", 286), ("timerfd_gettime", 287), ("accept4", 288), ("signalfd4", 289),
    ("eventfd2", 290), ("epoll_create1", 291), ("dup3", 292), ("pipe2", 293),
    ("inotify_init1", 294), ("preadv", 295), ("pwritev", 296), ("rt_tgsigqueueinfo", 297),
    ("perf_event_open", 298), ("recvmmsg", 299), ("fanotify_init", 300), ("fanotify_mark", 301),
    ("prlimit64", 302), ("name_to_handle_at", 303), ("open_by_handle_at", 304),
    ("clock_adjtime", 305), ("syncfs", 306), ("sendmmsg", 307), ("setns", 308), ("getcpu", 309),
    ("process_vm_readv", 310), ("process_vm_writev", 311), ("kcmp", 312), ("finit_module", 313),
    ("sched_setattr", 314), ("sched_getattr", 315), ("renameat2", 316), ("seccomp", 317),
    ("getrandom", 318), ("memfd_create", 319), ("kexec_file_load", 320), ("bpf", 321),
    ("execveat", 322), ("userfaultfd", 323), ("membarrier", 324), ("mlock2", 325),
    ("copy_file_range", 326), ("preadv2", 327), ("pwritev2", 328), ("pkey_mprotect", 329),
    ("pkey_alloc", 330), ("pkey_free", 331), ("statx", 332), ("io_pgetevents", 333), ("rseq", 334),
    ("uretprobe", 335), ("uprobe", 336), ("pidfd_send_signal", 424), ("io_uring_setup", 425),
    ("io_uring_enter", 426), ("io_uring_register", 427), ("open_tree", 428), ("move_mount", 429),
    ("fsopen", 430), ("fsconfig", 431), ("fsmount", 432), ("fspick", 433), ("pidfd_open", 434),
    ("clone3", 435), ("close_range", 436), ("openat2", 437), ("pidfd_getfd", 438),
    ("faccessat2", 439), ("process_madvise", 440), ("epoll_pwait2", 441), ("mount_setattr", 442),
    ("quotactl_fd", 443), ("landlock_create_ruleset", 444), ("landlock_add_rule", 445),
    ("landlock_restrict_self", 446), ("memfd_secret", 447), ("process_mrelease", 448),
    ("futex_waitv", 449), ("set_mempolicy_home_node", 450), ("cachestat", 451), ("fchmodat2", 452),
    ("map_shadow_stack", 453), ("futex_wake", 454), ("futex_wait", 455), ("futex_requeue", 456),
    ("statmount", 457), ("listmount", 458), ("lsm_get_self_attr", 459), ("lsm_set_self_attr", 460),
    ("lsm_list_modules", 461), ("mseal", 462), ("setxattrat", 463), ("getxattrat", 464),
    ("listxattrat", 465), ("removexattrat", 466), ("open_tree_attr", 467), ("file_getattr", 468),
    ("file_setattr", 469), ("listns", 470),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> SeccompProfile {
        SeccompProfile::builtin().expect("the built-in profile loads")
    }

    fn args0(value: u64) -> [u64; 6] {
        [value, 0, 0, 0, 0, 0]
    }

    /// A minimal valid profile with `rules` (YAML list items) appended.
    fn profile_with(rules: &str) -> Result<SeccompProfile, SeccompError> {
        let text = format!(
            "defaultAction: errno\ndefaultErrno: EPERM\narchitectures: [x86_64]\nrules:\n\
             - comment: basics\n  action: allow\n  syscalls: [read, write]\n{rules}"
        );
        SeccompProfile::from_yaml(&text, "test.yaml")
    }

    fn problem_of(result: Result<SeccompProfile, SeccompError>) -> Problem {
        let error = result.expect_err("the profile must be rejected");
        error.problem().cloned().unwrap_or_else(|| panic!("expected a validation problem, got: {error}"))
    }

    #[test]
    fn builtin_json_form_loads_to_the_same_profile_as_the_yaml() {
        let from_yaml = SeccompProfile::from_yaml(BUILTIN_PROFILE, BUILTIN_ORIGIN).expect("yaml");
        assert_eq!(builtin(), from_yaml);
    }

    #[test]
    fn builtin_loads_and_converts() {
        let profile = builtin();
        assert_eq!(profile.origin(), "policies/seccomp/default.yaml");
        let oci = profile.to_oci().expect("converts to OCI");
        assert_eq!(oci.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(oci.default_errno_ret(), Some(1));
        assert_eq!(oci.architectures().as_deref(), Some(&[OciArch::ScmpArchX86_64][..]));
        let syscalls = oci.syscalls().as_ref().expect("syscall entries");
        // Rules that only name denied calls for audit mode are not part of the normal filter.
        let audit_only = profile
            .rules()
            .iter()
            .filter(|r| r.action() == profile.default_action() || !r.present(FilterMode::Enforce))
            .count();
        assert!(audit_only > 0);
        assert_eq!(syscalls.len(), profile.rules().len() - audit_only);
        assert!(syscalls.iter().all(|s| s.action() != LinuxSeccompAction::ScmpActNotify));
        assert_eq!(oci.listener_path(), &None);

        let clone3 = syscalls.iter().find(|s| s.names().iter().any(|n| n == "clone3")).expect("clone3 entry");
        assert_eq!(clone3.action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3.errno_ret(), Some(libc::ENOSYS as u32));

        // runc/crun operand order: mask in value, expected value in valueTwo.
        let clone = syscalls.iter().find(|s| s.names() == &["clone".to_owned()]).expect("clone entry");
        let args = clone.args().as_ref().expect("clone has conditions");
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(args[0].index(), 0);
        assert_eq!(args[0].value(), 0x7e02_0000);
        assert_eq!(args[0].value_two(), Some(0));

        // Unconditional allow entries carry neither errno nor args.
        let read = syscalls.iter().find(|s| s.names().iter().any(|n| n == "read")).expect("read entry");
        assert_eq!(read.action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(read.errno_ret(), None);
        assert_eq!(read.args(), &None);
    }

    #[test]
    fn builtin_default_is_errno_eperm_on_x86_64_only() {
        let profile = builtin();
        assert_eq!(profile.default_action(), Action::Errno(Errno::EPERM));
        assert_eq!(profile.architectures(), &[Arch::X86_64]);
    }

    #[test]
    fn builtin_answers_enosys_for_clone3_and_io_uring() {
        let profile = builtin();
        for name in ["clone3", "io_uring_setup", "io_uring_enter", "io_uring_register"] {
            assert_eq!(
                profile.action_for(name, &[0; 6]),
                Some(Action::Errno(Errno::ENOSYS)),
                "{name} must fail with ENOSYS so runtimes fall back"
            );
            assert!(!profile.may_allow(name), "{name} must never run");
        }
    }

    #[test]
    fn builtin_never_allows_dangerous_syscalls() {
        let profile = builtin();
        // Grouped by why they are dangerous; one string of names per group.
        let dangerous = [
            // Cross-process inspection and memory access.
            "ptrace process_vm_readv process_vm_writev pidfd_getfd kcmp \
             process_madvise get_robust_list migrate_pages move_pages",
            // Kernel programmability and keyrings.
            "bpf perf_event_open userfaultfd keyctl add_key request_key",
            // Mounts and namespaces.
            "mount umount2 pivot_root chroot fsopen fsconfig fsmount fspick \
             move_mount open_tree open_tree_attr mount_setattr listmount statmount \
             unshare setns listns sethostname setdomainname",
            // File handles (the "shocker" escape).
            "open_by_handle_at name_to_handle_at",
            // Kernel and machine state.
            "kexec_load kexec_file_load init_module finit_module delete_module \
             create_module query_module get_kernel_syms acct swapon swapoff reboot \
             settimeofday clock_settime adjtimex clock_adjtime quotactl quotactl_fd \
             lookup_dcookie vhangup iopl ioperm syslog nfsservctl uselib _sysctl \
             sysfs ustat modify_ldt fanotify_init lsm_set_self_attr sync cachestat \
             memfd_secret",
        ]
        .iter()
        .flat_map(|group| group.split_whitespace());
        for name in dangerous {
            // A misspelt name here would make the assertion vacuous.
            assert!(Syscall::from_name(name).is_some(), "{name} is not an x86_64 syscall");
            assert!(!profile.may_allow(name), "{name} must not be allowed by any rule");
            assert_eq!(profile.action_for(name, &[0; 6]), Some(Action::Errno(Errno::EPERM)));
        }
    }

    #[test]
    fn builtin_allows_socket_only_for_unix_inet_inet6_netlink() {
        let profile = builtin();
        for family in 0..=64u64 {
            let allowed = profile.action_for("socket", &args0(family)).is_some_and(Action::permits);
            assert_eq!(allowed, matches!(family, 1 | 2 | 10 | 16), "socket(family {family}) allowed = {allowed}");
        }
        assert!(!profile.is_unconditionally_allowed("socket"));
        // AF_ALG and AF_VSOCK: EPERM like any other refused call.
        for family in [38, 40] {
            assert_eq!(profile.action_for("socket", &args0(family)), Some(Action::Errno(Errno::EPERM)));
        }
        // Netlink only for NETLINK_ROUTE (0): not audit (9), not netfilter (12).
        let netlink = |protocol| profile.action_for("socket", &[16, 3, protocol, 0, 0, 0]);
        assert_eq!(netlink(0), Some(Action::Allow));
        assert_eq!(netlink(9), Some(Action::Errno(Errno::EPERM)));
        assert_eq!(netlink(12), Some(Action::Errno(Errno::EPERM)));
        // socketpair exists only for AF_UNIX among the allowed families.
        assert_eq!(profile.action_for("socketpair", &args0(1)), Some(Action::Allow));
        assert_eq!(profile.action_for("socketpair", &args0(2)), Some(Action::Errno(Errno::EPERM)));
    }

    #[test]
    fn builtin_clone_refuses_namespace_flags_but_allows_threads_and_fork() {
        let profile = builtin();
        let rules = profile.rules_for("clone");
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].action(), Action::Allow);
        assert_eq!(
            rules[0].args(),
            &[ArgCondition { index: 0, comparison: Comparison::MaskedEq { mask: 0x7e02_0000, value: 0 } }]
        );

        let flags = |f: libc::c_int| u64::from(f as u32);
        let thread = flags(
            libc::CLONE_VM
                | libc::CLONE_FS
                | libc::CLONE_FILES
                | libc::CLONE_SIGHAND
                | libc::CLONE_THREAD
                | libc::CLONE_SYSVSEM
                | libc::CLONE_SETTLS
                | libc::CLONE_PARENT_SETTID
                | libc::CLONE_CHILD_CLEARTID,
        );
        let fork = flags(libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD);
        let vfork = flags(libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD);
        for allowed in [thread, fork, vfork] {
            assert_eq!(profile.action_for("clone", &args0(allowed)), Some(Action::Allow));
        }
        for namespace in [
            libc::CLONE_NEWNS,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWCGROUP,
        ] {
            assert_eq!(
                profile.action_for("clone", &args0(fork | flags(namespace))),
                Some(Action::Errno(Errno::EPERM)),
                "clone with namespace flag {namespace:#x} must be refused"
            );
        }
    }

    #[test]
    fn builtin_personality_only_queries_or_resets() {
        let profile = builtin();
        assert_eq!(profile.action_for("personality", &args0(0)), Some(Action::Allow));
        assert_eq!(profile.action_for("personality", &args0(0xffff_ffff)), Some(Action::Allow));
        // ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, PER_LINUX32.
        for persona in [0x0004_0000, 0x0040_0000, 0x8] {
            assert_eq!(profile.action_for("personality", &args0(persona)), Some(Action::Errno(Errno::EPERM)));
        }
    }

    #[test]
    fn builtin_allows_what_runtimes_need() {
        let profile = builtin();
        let needed = "read write openat close mmap munmap mprotect madvise brk futex \
                      set_robust_list rseq arch_prctl epoll_create1 epoll_ctl epoll_wait \
                      epoll_pwait epoll_pwait2 eventfd2 pipe2 execve wait4 exit_group \
                      rt_sigaction rt_sigprocmask rt_sigreturn sigaltstack getrandom statx \
                      newfstatat close_range faccessat2 memfd_create membarrier pkey_alloc \
                      pkey_free pkey_mprotect mbind get_mempolicy set_mempolicy \
                      copy_file_range futex_waitv pidfd_open pidfd_send_signal prlimit64 \
                      sched_getaffinity getdents64 ioctl fcntl connect accept4 sendmsg \
                      recvmsg prctl seccomp landlock_restrict_self vfork kill";
        for name in needed.split_whitespace() {
            assert!(profile.is_unconditionally_allowed(name), "{name} must be allowed");
        }
    }

    #[test]
    fn syscall_table_is_consistent_with_libc() {
        let mut names = BTreeSet::new();
        let mut numbers = BTreeSet::new();
        for &(name, number) in X86_64_SYSCALLS {
            assert!(names.insert(name), "{name} listed twice");
            assert!(numbers.insert(number), "number {number} listed twice");
        }
        for (name, number) in [
            ("read", libc::SYS_read),
            ("clone", libc::SYS_clone),
            ("personality", libc::SYS_personality),
            ("rseq", libc::SYS_rseq),
            ("io_uring_setup", libc::SYS_io_uring_setup),
            ("clone3", libc::SYS_clone3),
            ("landlock_restrict_self", libc::SYS_landlock_restrict_self),
            ("futex_waitv", libc::SYS_futex_waitv),
            ("fchmodat2", libc::SYS_fchmodat2),
            ("mseal", libc::SYS_mseal),
        ] {
            let syscall = Syscall::from_name(name).expect("in the table");
            assert_eq!(i64::from(syscall.number()), number, "{name}");
        }
    }

    #[test]
    fn accepts_every_action_and_operator() {
        let profile = profile_with(
            "- comment: c\n  action: kill_process\n  syscalls: [ptrace]\n\
             - comment: c\n  action: kill_thread\n  syscalls: [bpf]\n\
             - comment: c\n  action: trap\n  syscalls: [acct]\n\
             - comment: c\n  action: log\n  syscalls: [uname]\n\
             - comment: c\n  action: errno\n  errno: EAFNOSUPPORT\n  syscalls: [socket]\n  args:\n\
             \x20   - { index: 0, op: ge, value: 17 }\n\
             \x20   - { index: 0, op: le, value: 40 }\n\
             \x20   - { index: 1, op: ne, value: 3 }\n\
             \x20   - { index: 2, op: lt, value: 9 }\n\
             \x20   - { index: 3, op: gt, value: 1 }\n\
             \x20   - { index: 5, op: masked_eq, value: 0xf0, valueTwo: 0x10 }\n",
        )
        .expect("valid");
        assert_eq!(profile.action_for("ptrace", &[0; 6]), Some(Action::KillProcess));
        assert_eq!(profile.action_for("uname", &[0; 6]), Some(Action::Log));
        let socket = [20, 1, 0, 2, 0, 0x1f];
        assert_eq!(
            profile.action_for("socket", &socket),
            Some(Action::Errno(Errno::from_name("EAFNOSUPPORT").expect("known")))
        );
        assert_eq!(profile.action_for("socket", &[20, 1, 0, 2, 0, 0x2f]), Some(Action::Errno(Errno::EPERM)));
        let oci = profile.to_oci().expect("converts");
        let entries = oci.syscalls().as_ref().expect("entries");
        assert_eq!(entries[1].action(), LinuxSeccompAction::ScmpActKillProcess);
        assert_eq!(entries[2].action(), LinuxSeccompAction::ScmpActKillThread);
        assert_eq!(entries[3].action(), LinuxSeccompAction::ScmpActTrap);
        assert_eq!(entries[4].action(), LinuxSeccompAction::ScmpActLog);
        assert_eq!(entries[5].errno_ret(), Some(libc::EAFNOSUPPORT as u32));
        let ops: Vec<_> = entries[5].args().as_ref().expect("args").iter().map(|a| a.op()).collect();
        assert_eq!(
            ops,
            [
                LinuxSeccompOperator::ScmpCmpGe,
                LinuxSeccompOperator::ScmpCmpLe,
                LinuxSeccompOperator::ScmpCmpNe,
                LinuxSeccompOperator::ScmpCmpLt,
                LinuxSeccompOperator::ScmpCmpGt,
                LinuxSeccompOperator::ScmpCmpMaskedEq,
            ]
        );
    }

    /// The syscalls audit mode must report (issue list + the profile's other high-signal ones).
    const AUDITED: &str = "mount umount2 pivot_root fsopen fsmount move_mount open_tree fsconfig fspick \
                           mount_setattr unshare setns ptrace bpf keyctl add_key request_key \
                           perf_event_open userfaultfd open_by_handle_at kexec_load init_module";

    #[test]
    fn audit_mode_notifies_the_high_signal_calls_and_nothing_else_changes() {
        let profile = builtin();
        let socket = std::path::Path::new("/run/ignite/runs/x/seccomp.sock");
        let offline = FilterMode::Audit { network: false, spawn_off: false };
        let notified = profile.notified_syscalls(offline);
        for name in AUDITED.split_whitespace() {
            assert!(Syscall::from_name(name).is_some(), "{name}");
            assert!(notified.contains(name), "{name} is not audited");
            // Denied, with EPERM, outside audit mode.
            assert_eq!(profile.action_for(name, &[0; 6]), Some(Action::Errno(Errno::EPERM)), "{name}");
        }
        // Nothing a runtime needs is audited.
        for name in ["read", "write", "openat", "mmap", "clone", "execve", "futex", "connect"] {
            assert!(!notified.contains(name), "{name} must not be audited");
        }
        let oci = profile.to_oci_audit(false, false, socket).expect("converts");
        assert_eq!(oci.listener_path().as_deref(), Some(socket));
        let entries = oci.syscalls().as_ref().expect("entries");
        let action_of = |name: &str, family: Option<u64>| {
            entries
                .iter()
                .find(|e| {
                    e.names().iter().any(|n| n == name)
                        && family.is_none_or(|f| e.args().as_ref().is_some_and(|a| a[0].value() == f))
                })
                .map(|e| e.action())
        };
        assert_eq!(action_of("mount", None), Some(LinuxSeccompAction::ScmpActNotify));
        assert_eq!(action_of("socket", Some(2)), Some(LinuxSeccompAction::ScmpActNotify));
        assert_eq!(action_of("socket", Some(10)), Some(LinuxSeccompAction::ScmpActNotify));
        assert_eq!(action_of("socket", Some(1)), Some(LinuxSeccompAction::ScmpActAllow));
        assert_eq!(action_of("clone3", None), Some(LinuxSeccompAction::ScmpActErrno));
        // Every non-audit rule is converted exactly as in the normal filter.
        let plain = profile.to_oci().expect("converts");
        let plain = plain.syscalls().as_ref().expect("entries");
        let kept: Vec<_> = entries.iter().filter(|e| e.action() != LinuxSeccompAction::ScmpActNotify).collect();
        assert_eq!(kept.len(), plain.len() - 2, "only the two IP socket rules change among the normal ones");

        // With the network on, IP sockets are not audited; the rest still is.
        let online = profile.to_oci_audit(true, false, socket).expect("converts");
        let online = online.syscalls().as_ref().expect("entries");
        let ip = online.iter().filter(|e| e.names() == &["socket".to_owned()]).map(|e| e.action());
        assert!(ip.into_iter().all(|a| a == LinuxSeccompAction::ScmpActAllow));
        assert!(!profile.notified_syscalls(FilterMode::Audit { network: true, spawn_off: false }).contains("socket"));

        // Event kinds come from the rule that notified.
        let kind = |name: &str, args: &[u64; 6]| {
            profile.audit_rule_for(offline, name, args).and_then(|r| r.audit()).map(|m| m.kind().to_owned())
        };
        assert_eq!(kind("mount", &[0; 6]).as_deref(), Some("mount"));
        assert_eq!(kind("setns", &[0; 6]).as_deref(), Some("namespace"));
        assert_eq!(kind("socket", &args0(10)).as_deref(), Some("network"));
        assert_eq!(kind("socket", &args0(1)), None);
        assert_eq!(kind("read", &[0; 6]), None);
    }

    #[test]
    fn audit_with_spawning_off_notifies_process_creation_and_nothing_else_changes() {
        let profile = builtin();
        let socket = std::path::Path::new("/run/ignite/runs/x/seccomp.sock");
        let mode = FilterMode::Audit { network: false, spawn_off: true };
        let notified = profile.notified_syscalls(mode);
        for name in ["execve", "execveat", "fork", "vfork", "clone"] {
            assert!(notified.contains(name), "{name} is not audited");
        }
        let kind = |name: &str, args: &[u64; 6]| {
            profile.audit_rule_for(mode, name, args).and_then(|r| r.audit()).map(|m| m.kind().to_owned())
        };
        const FORK: u64 = 0x0120_0011;
        const THREAD: u64 = 0x003d_0f00;
        for name in ["execve", "execveat", "fork", "vfork"] {
            assert_eq!(kind(name, &[0; 6]).as_deref(), Some("process"), "{name}");
        }
        assert_eq!(kind("clone", &args0(FORK)).as_deref(), Some("process"));
        // Threads (and so Workers) are not notified; namespace clones stay a plain EPERM.
        assert_eq!(kind("clone", &args0(THREAD)), None);
        assert_eq!(kind("clone", &args0(FORK | 0x1000_0000)), None);
        assert_eq!(kind("mount", &[0; 6]).as_deref(), Some("mount"));
        // The rest of the lifecycle rule is still allowed in that filter.
        let oci = profile.to_oci_audit(false, true, socket).expect("converts");
        let entries = oci.syscalls().as_ref().expect("entries");
        let entries_for = |name: &str| entries.iter().filter(|e| e.names().iter().any(|n| n == name)).count();
        for name in ["exit_group", "wait4", "getpid", "setsid", "pidfd_open"] {
            let e = entries.iter().find(|e| e.names().iter().any(|n| n == name)).expect(name);
            assert_eq!(e.action(), LinuxSeccompAction::ScmpActAllow, "{name}");
        }
        for name in ["execve", "fork"] {
            assert_eq!(entries_for(name), 1, "{name}");
            let e = entries.iter().find(|e| e.names().iter().any(|n| n == name)).expect(name);
            assert_eq!(e.action(), LinuxSeccompAction::ScmpActNotify, "{name}");
        }
        let clones: Vec<_> = entries.iter().filter(|e| e.names() == &["clone".to_owned()]).collect();
        assert_eq!(clones.len(), 2);
        for c in clones {
            let arg = &c.args().as_ref().expect("clone is conditional")[0];
            assert_eq!(arg.value(), 0x7e03_0000);
            let expected = if arg.value_two() == Some(0x1_0000) {
                LinuxSeccompAction::ScmpActAllow
            } else {
                LinuxSeccompAction::ScmpActNotify
            };
            assert_eq!(c.action(), expected);
        }

        // Every other filter is exactly what it was before the audit-spawn-off rules existed:
        // the same as the profile without them.
        let without: String = BUILTIN_PROFILE
            .split("\n\n")
            .filter(|block| !block.lines().any(|l| l == "    onlyIn: auditSpawnOff"))
            .flat_map(|block| block.lines().filter(|l| *l != "    notIn: auditSpawnOff").chain(["", ""]))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            !without.lines().any(|l| l.trim_start().starts_with("onlyIn:") || l.trim_start().starts_with("notIn:"))
        );
        let old = SeccompProfile::from_yaml(&without, BUILTIN_ORIGIN).expect("loads");
        let json = |s: &LinuxSeccomp| serde_json::to_string(s).expect("serialises");
        assert_eq!(json(&profile.to_oci().unwrap()), json(&old.to_oci().unwrap()));
        for network in [false, true] {
            assert_eq!(
                json(&profile.to_oci_audit(network, false, socket).unwrap()),
                json(&old.to_oci_audit(network, false, socket).unwrap())
            );
        }
        assert_ne!(
            json(&profile.to_oci_audit(false, true, socket).unwrap()),
            json(&old.to_oci_audit(false, true, socket).unwrap())
        );
        // Questions about the profile answer for the normal filter.
        assert_eq!(profile.action_for("execve", &[0; 6]), Some(Action::Allow));
        assert_eq!(profile.action_for("clone", &args0(FORK)), Some(Action::Allow));
        assert!(profile.is_unconditionally_allowed("fork"));
    }

    #[test]
    fn only_in_and_not_in_are_validated() {
        let rule = |extra: &str| profile_with(&format!("- comment: c\n  action: allow\n  syscalls: [execve]\n{extra}"));
        assert_eq!(problem_of(rule("  onlyIn: auditSpawnOff\n  notIn: auditSpawnOff\n")), Problem::OnlyInAndNotIn);
        assert!(matches!(rule("  onlyIn: sometimes\n"), Err(SeccompError::Parse { .. })));
        // Two versions of one syscall's rule do not overlap; the same version twice does.
        let versions = "- comment: a\n  action: allow\n  syscalls: [fork]\n  notIn: auditSpawnOff\n\
                        - comment: b\n  action: errno\n  errno: EPERM\n  syscalls: [fork]\n  audit: process\n  onlyIn: auditSpawnOff\n";
        profile_with(versions).expect("one rule per version");
        let twice = "- comment: a\n  action: allow\n  syscalls: [fork]\n  onlyIn: auditSpawnOff\n\
                     - comment: b\n  action: allow\n  syscalls: [fork]\n";
        assert!(matches!(problem_of(profile_with(twice)), Problem::DuplicateUnconditional { .. }));
    }

    #[test]
    fn audit_markers_are_validated() {
        let rule = |extra: &str| {
            profile_with(&format!("- comment: c\n  action: errno\n  errno: EPERM\n  syscalls: [mount]\n{extra}"))
        };
        rule("  audit: mount\n").expect("a marked rule may have the default action");
        assert_eq!(problem_of(rule("")), Problem::SameAsDefault);
        assert_eq!(problem_of(rule("  audit: Mount\n")), Problem::BadAuditKind { kind: "Mount".into() });
        assert_eq!(problem_of(rule("  audit: oom\n")), Problem::BadAuditKind { kind: "oom".into() });
        assert_eq!(problem_of(rule("  auditWhen: networkOff\n")), Problem::AuditWhenWithoutAudit);
        assert!(matches!(rule("  audit: m\n  auditWhen: sometimes\n"), Err(SeccompError::Parse { .. })));
        assert_eq!(
            problem_of(profile_with(
                "- comment: c\n  action: errno\n  errno: EPERM\n  syscalls: [write]\n  audit: io\n"
            )),
            Problem::AuditUnsupported { name: "write" }
        );
    }

    #[test]
    fn rejects_unknown_field() {
        let error =
            profile_with("- comment: c\n  action: allow\n  syscalls: [uname]\n  note: x\n").expect_err("unknown key");
        let message = error.to_string();
        assert!(matches!(error, SeccompError::Parse { .. }), "{message}");
        assert!(message.contains("unknown field `note`"), "{message}");
        assert!(message.contains("test.yaml"), "{message}");
    }

    #[test]
    fn rejects_unknown_syscall_naming_it_and_the_rule() {
        let error =
            profile_with("- comment: typo here\n  action: allow\n  syscalls: [uname, getrandon]\n").expect_err("typo");
        assert_eq!(error.problem(), Some(&Problem::UnknownSyscall { name: "getrandon".to_owned() }));
        let message = error.to_string();
        for part in ["test.yaml", "rules[1]", "typo here", "getrandon"] {
            assert!(message.contains(part), "{part:?} missing from: {message}");
        }
        // Names of other ABIs are not x86_64 syscalls.
        let problem = problem_of(profile_with("- comment: c\n  action: allow\n  syscalls: [mmap2]\n"));
        assert!(matches!(problem, Problem::UnknownSyscall { .. }));
    }

    #[test]
    fn rejects_bad_errno_usage() {
        assert_eq!(
            problem_of(profile_with("- comment: c\n  action: errno\n  errno: ENOPE\n  syscalls: [uname]\n")),
            Problem::UnknownErrno { name: "ENOPE".to_owned() }
        );
        assert_eq!(
            problem_of(profile_with("- comment: c\n  action: allow\n  errno: ENOSYS\n  syscalls: [uname]\n")),
            Problem::UnexpectedErrno
        );
        assert_eq!(
            problem_of(profile_with("- comment: c\n  action: errno\n  syscalls: [uname]\n")),
            Problem::MissingErrno
        );
        let no_default_errno = "defaultAction: errno\narchitectures: [x86_64]\nrules: []\n";
        assert_eq!(problem_of(SeccompProfile::from_yaml(no_default_errno, "t")), Problem::MissingDefaultErrno);
        let allow_with_errno = "defaultAction: allow\ndefaultErrno: EPERM\narchitectures: [x86_64]\nrules: []\n";
        assert_eq!(problem_of(SeccompProfile::from_yaml(allow_with_errno, "t")), Problem::UnexpectedDefaultErrno);
    }

    #[test]
    fn rejects_overlapping_rules() {
        assert_eq!(
            problem_of(profile_with("- comment: again\n  action: allow\n  syscalls: [uname, read]\n")),
            Problem::DuplicateUnconditional { name: "read", other: 0 }
        );
        assert_eq!(
            problem_of(profile_with(
                "- comment: c\n  action: allow\n  syscalls: [read]\n  args:\n\
                 \x20   - { index: 0, op: eq, value: 0 }\n"
            )),
            Problem::ConditionalShadowed { name: "read", unconditional: 0, conditional: 1 }
        );
        assert_eq!(
            problem_of(profile_with("- comment: c\n  action: allow\n  syscalls: [uname, uname]\n")),
            Problem::RepeatedSyscall { name: "uname" }
        );
        // Several conditional rules for one syscall are the normal way to allow a set of values.
        profile_with(
            "- comment: a\n  action: allow\n  syscalls: [socket]\n  args: [{ index: 0, op: eq, value: 1 }]\n\
             - comment: b\n  action: allow\n  syscalls: [socket]\n  args: [{ index: 0, op: eq, value: 2 }]\n",
        )
        .expect("conditional rules may share a syscall");
    }

    #[test]
    fn rejects_rules_without_purpose_or_effect() {
        assert_eq!(
            problem_of(profile_with("- comment: '  '\n  action: allow\n  syscalls: [uname]\n")),
            Problem::EmptyComment
        );
        assert_eq!(problem_of(profile_with("- action: allow\n  syscalls: [uname]\n")), Problem::EmptyComment);
        assert_eq!(problem_of(profile_with("- comment: c\n  action: allow\n  syscalls: []\n")), Problem::NoSyscalls);
        assert_eq!(
            problem_of(profile_with("- comment: c\n  action: errno\n  errno: EPERM\n  syscalls: [uname]\n")),
            Problem::SameAsDefault
        );
    }

    #[test]
    fn rejects_bad_argument_conditions() {
        let rule = |arg: &str| {
            profile_with(&format!("- comment: c\n  action: allow\n  syscalls: [socket]\n  args: [{arg}]\n"))
        };
        assert_eq!(problem_of(rule("{ index: 6, op: eq, value: 1 }")), Problem::ArgIndexOutOfRange { index: 6 });
        assert_eq!(problem_of(rule("{ index: 0, op: eq, value: 1, valueTwo: 2 }")), Problem::UnexpectedValueTwo);
        assert_eq!(problem_of(rule("{ index: 0, op: masked_eq, value: 0xff }")), Problem::MissingValueTwo);
        assert_eq!(
            problem_of(rule("{ index: 0, op: masked_eq, value: 0x0f, valueTwo: 0x10 }")),
            Problem::MaskedEqNeverMatches { mask: 0x0f, value: 0x10 }
        );
        assert!(matches!(rule("{ index: 0, op: bitset, value: 1 }"), Err(SeccompError::Parse { .. })));
    }

    #[test]
    fn rejects_other_architectures_and_notify() {
        let arch = "defaultAction: errno\ndefaultErrno: EPERM\narchitectures: [x86_64, x86]\nrules: []\n";
        assert!(matches!(SeccompProfile::from_yaml(arch, "t"), Err(SeccompError::Parse { .. })));
        let none = "defaultAction: errno\ndefaultErrno: EPERM\narchitectures: []\nrules: []\n";
        assert_eq!(problem_of(SeccompProfile::from_yaml(none, "t")), Problem::NoArchitectures);
        assert!(matches!(
            profile_with("- comment: c\n  action: notify\n  syscalls: [uname]\n"),
            Err(SeccompError::Parse { .. })
        ));
    }

    #[test]
    fn bad_yaml_reports_origin_and_line() {
        let text = "defaultAction: errno\ndefaultErrno: EPERM\narchitectures: [x86_64]\nrules:\n\
                    - comment: \"unterminated\n  action: allow\n";
        let error = SeccompProfile::from_yaml(text, "broken.yaml").expect_err("bad yaml");
        let message = error.to_string();
        assert!(message.contains("broken.yaml"), "{message}");
        assert!(message.contains("line 5"), "{message}");
    }
}
