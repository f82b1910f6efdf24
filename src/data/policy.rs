//! Security policies: the built-in default (`policies/default.yaml`), audit mode's strict base
//! (`policies/audit.yaml`) and a service's policy file, layered into one effective [`Policy`]
//! that remembers where each value came from.
//!
//! Every field of the schema is enforced by the run: a policy is an instruction, never a hint.
//! Files are parsed strictly (unknown keys, wrong types and out-of-range values are errors that
//! name the file and the field), and a service directory holding two policy files is an error
//! rather than a guess.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::fsutil::svcdir::{self, ParseCache, ReadError, Rule};

/// Policy file names looked up in a service directory, in this order (at most one may exist).
pub const POLICY_FILES: [&str; 4] =
    ["ignite.policy.yaml", "ignite.policy.yml", ".ignite-policy.yaml", ".ignite-policy.yml"];

const DEFAULT_POLICY: &str = include_str!("../../policies/default.yaml");
const AUDIT_POLICY: &str = include_str!("../../policies/audit.yaml");

/// Policy files larger than this are refused (a policy is a few lines).
const MAX_POLICY_BYTES: u64 = 64 * 1024;

pub const TMP_MB_RANGE: (u32, u32) = (1, 4096);
pub const WRITABLE_MB_RANGE: (u32, u32) = (1, 4096);
pub const MAX_PROCESSES_RANGE: (u32, u32) = (16, 32768);
pub const OUTPUT_BYTES_RANGE: (u64, u64) = (1024, 1024 * 1024 * 1024);
const MAX_ALLOWED_COMMANDS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("failed to read policy file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid policy file {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("invalid policy {origin}: field `{field}`: {problem}")]
    Field { origin: String, field: String, problem: String },
    #[error(
        "{dir} holds more than one policy file ({found}); keep one of them (ignite looks for {})",
        POLICY_FILES.join(", ")
    )]
    Ambiguous { dir: PathBuf, found: String },
    #[error("policy file {path}: {problem}")]
    File { path: PathBuf, problem: String },
    /// A policy file that may not be read (a link in a service directory, a pipe, too large).
    #[error(transparent)]
    Unreadable(#[from] ReadError),
}

/// The effective policy of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub network: bool,
    pub read_only: bool,
    pub tmp_mb: u32,
    pub writable_mb: u32,
    pub allow_spawn: bool,
    /// `None`: any executable in the sandbox may be started (when `allow_spawn`).
    pub allowed_commands: Option<Vec<String>>,
    pub max_processes: u32,
    pub output_max_bytes: u64,
}

/// Where a value of the effective policy came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Source {
    /// `policies/default.yaml`, built into ignite.
    Default,
    /// `policies/audit.yaml`, applied by `--audit` (and by the HTTP API unless asked not to).
    Audit,
    /// A policy file: in the service directory, or named with `--policy`.
    File { path: PathBuf },
    /// A command-line flag or request field, e.g. `--output-limit`.
    Flag { name: String },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("built-in default (policies/default.yaml)"),
            Source::Audit => f.write_str("audit mode (policies/audit.yaml)"),
            Source::File { path } => write!(f, "{}", path.display()),
            Source::Flag { name } => write!(f, "{name}"),
        }
    }
}

/// The effective policy and, for each field (by its path in the schema), its source.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    pub policy: Policy,
    pub sources: BTreeMap<String, Source>,
    /// The policy file applied, if any.
    pub file: Option<PathBuf>,
    pub audit: bool,
}

impl Effective {
    pub fn source(&self, field: &str) -> Option<&Source> {
        self.sources.get(field)
    }

    /// `--output-limit` and the like: a value given for this one run wins over every file.
    pub fn set_output_max_bytes(&mut self, bytes: u64, flag: &str) -> Result<(), PolicyError> {
        check_range(bytes, OUTPUT_BYTES_RANGE, "bytes").map_err(|problem| PolicyError::Field {
            origin: flag.to_string(),
            field: "security.output.maxBytes".into(),
            problem,
        })?;
        self.policy.output_max_bytes = bytes;
        self.sources.insert("security.output.maxBytes".into(), Source::Flag { name: flag.to_string() });
        Ok(())
    }

    /// Every field by its path in the schema, with its value as a policy file would write it.
    pub fn fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        let p = &self.policy;
        vec![
            ("security.network.enabled", p.network.into()),
            ("security.filesystem.readOnly", p.read_only.into()),
            ("security.filesystem.tmpMb", p.tmp_mb.into()),
            ("security.filesystem.writableMb", p.writable_mb.into()),
            ("security.process.allowSpawn", p.allow_spawn.into()),
            ("security.process.allowedCommands", serde_json::json!(p.allowed_commands)),
            ("security.process.maxProcesses", p.max_processes.into()),
            ("security.output.maxBytes", p.output_max_bytes.into()),
        ]
    }

    /// `ignite policy show --json`: the file, the mode, and each field with its value and source.
    pub fn to_json(&self) -> serde_json::Value {
        let fields: Vec<serde_json::Value> = self
            .fields()
            .into_iter()
            .map(|(field, value)| {
                let source = self.sources.get(field);
                serde_json::json!({
                    "field": field,
                    "value": value,
                    "source": source,
                    "from": source.map(ToString::to_string),
                })
            })
            .collect();
        serde_json::json!({ "file": self.file, "audit": self.audit, "fields": fields })
    }

    /// One line per field: path, value, source; for `ignite policy show`.
    pub fn describe(&self) -> String {
        let rows: Vec<(&str, String)> = self
            .fields()
            .into_iter()
            .map(|(k, v)| {
                let text = match (k, &v) {
                    ("security.process.allowedCommands", serde_json::Value::Null) => "any".to_string(),
                    ("security.process.allowedCommands", serde_json::Value::Array(a)) if a.is_empty() => {
                        "none".to_string()
                    }
                    (_, serde_json::Value::Array(a)) => {
                        a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", ")
                    }
                    _ => v.to_string(),
                };
                (k, text)
            })
            .collect();
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let vwidth = rows.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (key, value) in rows {
            let source = self.sources.get(key).map_or_else(|| "?".to_string(), ToString::to_string);
            out.push_str(&format!("{key:width$}  {value:vwidth$}  {source}\n"));
        }
        out
    }
}

/// Resolves the effective policy for a service directory: the built-in default, then audit
/// mode's base when `audit`, then the policy file (`explicit`, or the one in `dir`).
pub fn resolve(dir: &Path, explicit: Option<&Path>, audit: bool) -> Result<Effective, PolicyError> {
    resolve_with(dir, explicit, audit, None)
}

/// Policy files of service directories parsed once per version of the file, for
/// [`resolve_cached`].
pub type ParsedPolicyFiles = ParseCache<RawPolicy>;

/// [`resolve`], with the service directory's policy file parsed once per version of the file
/// and kept in `cache` (a server resolves a service's policy on every request). The file is
/// still found, and checked the safe way, every time.
pub fn resolve_cached(
    dir: &Path,
    explicit: Option<&Path>,
    audit: bool,
    cache: &ParsedPolicyFiles,
) -> Result<Effective, PolicyError> {
    resolve_with(dir, explicit, audit, Some(cache))
}

fn resolve_with(
    dir: &Path,
    explicit: Option<&Path>,
    audit: bool,
    cache: Option<&ParsedPolicyFiles>,
) -> Result<Effective, PolicyError> {
    let mut layers = builtin_layers(audit)?;
    let file = match explicit {
        Some(path) => {
            layers.push((read(path)?, Source::File { path: path.to_path_buf() }));
            Some(path.to_path_buf())
        }
        None => match find(dir)? {
            Some(path) => {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let raw = match cache {
                    Some(cache) => cache
                        .get(dir, &name, POLICY_RULE, |text| parse(text, &path.display().to_string()))?
                        .ok_or_else(|| PolicyError::Read {
                            path: path.clone(),
                            source: std::io::ErrorKind::NotFound.into(),
                        })?,
                    None => read_in(dir, &name)?,
                };
                layers.push((raw, Source::File { path: path.clone() }));
                Some(path)
            }
            None => None,
        },
    };
    let mut effective = merge(layers)?;
    effective.file = file;
    effective.audit = audit;
    Ok(effective)
}

/// The built-in policy alone (audit mode's base on top when `audit`): for code that does not
/// come from a service directory, e.g. the HTTP API's inline code, whose files must not be
/// able to choose their own policy.
pub fn builtin_only(audit: bool) -> Result<Effective, PolicyError> {
    let mut effective = merge(builtin_layers(audit)?)?;
    effective.audit = audit;
    Ok(effective)
}

/// The built-in default, and audit mode's base on top of it when `audit`.
fn builtin_layers(audit: bool) -> Result<Vec<(RawPolicy, Source)>, PolicyError> {
    // Parsed once per process: every run needs them, and they are part of the binary.
    static PARSED: std::sync::OnceLock<(RawPolicy, RawPolicy)> = std::sync::OnceLock::new();
    let (default, audit_base) = match PARSED.get() {
        Some(parsed) => parsed.clone(),
        None => {
            let parsed = (parse(DEFAULT_POLICY, "policies/default.yaml")?, parse(AUDIT_POLICY, "policies/audit.yaml")?);
            PARSED.get_or_init(|| parsed).clone()
        }
    };
    let mut layers = vec![(default, Source::Default)];
    if audit {
        layers.push((audit_base, Source::Audit));
    }
    Ok(layers)
}

/// The one policy file in `dir`, if there is one.
pub fn find(dir: &Path) -> Result<Option<PathBuf>, PolicyError> {
    let mut found = Vec::new();
    for name in POLICY_FILES {
        let path = dir.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => found.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(PolicyError::Read { path, source }),
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(PolicyError::Ambiguous {
            dir: dir.to_path_buf(),
            found: found
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// How policy files are read: regular files of at most 64 KiB.
const POLICY_RULE: Rule = Rule { what: "policy file", max_bytes: MAX_POLICY_BYTES };

/// Reads and parses a policy file the operator named (`--policy FILE`: it may be a link).
pub fn read(path: &Path) -> Result<RawPolicy, PolicyError> {
    let text = svcdir::read_operator_text(path, POLICY_RULE)?;
    parse(&text, &path.display().to_string())
}

/// Reads and parses the policy file `name` of the service directory `dir`, the safe way
/// ([`svcdir`]): never through a link, never a pipe or a device.
pub fn read_in(dir: &Path, name: &str) -> Result<RawPolicy, PolicyError> {
    let path = dir.join(name);
    let text = svcdir::read_text(dir, name, POLICY_RULE)?
        .ok_or_else(|| PolicyError::Read { path: path.clone(), source: std::io::ErrorKind::NotFound.into() })?;
    parse(&text, &path.display().to_string())
}

/// Parses a policy text; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<RawPolicy, PolicyError> {
    if text.trim().is_empty() || text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Err(PolicyError::Parse {
            origin: origin.to_string(),
            message: "the file is empty; a policy starts with `security:` (see policies/default.yaml)".into(),
        });
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let raw: RawPolicy = serde_path_to_error::deserialize(de).map_err(|err| {
        let field = err.path().to_string();
        let inner = err.into_inner();
        let message =
            if field == "." || field.is_empty() { inner.to_string() } else { format!("field `{field}`: {inner}") };
        PolicyError::Parse { origin: origin.to_string(), message }
    })?;
    raw.validate(origin)?;
    Ok(raw)
}

/// A policy file exactly as written: every field optional, so that layers override only what
/// they set.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub security: RawSecurity,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecurity {
    pub network: Option<RawNetwork>,
    pub filesystem: Option<RawFilesystem>,
    pub process: Option<RawProcess>,
    pub output: Option<RawOutput>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawFilesystem {
    pub read_only: Option<bool>,
    pub tmp_mb: Option<u32>,
    pub writable_mb: Option<u32>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawProcess {
    pub allow_spawn: Option<bool>,
    /// Outer `None`: not set by this layer. `Some(None)`: set to null (any executable).
    #[serde(default, deserialize_with = "set_or_null")]
    pub allowed_commands: Option<Option<Vec<String>>>,
    pub max_processes: Option<u32>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawOutput {
    pub max_bytes: Option<u64>,
}

/// Distinguishes a key written as `null` (`Some(None)`) from a missing one (`None`, through
/// `#[serde(default)]`).
fn set_or_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl RawPolicy {
    /// Checks the values a layer sets on their own; combinations are checked after merging.
    fn validate(&self, origin: &str) -> Result<(), PolicyError> {
        let err = |field: &str, problem: String| PolicyError::Field {
            origin: origin.to_string(),
            field: field.to_string(),
            problem,
        };
        let s = &self.security;
        if let Some(fs) = &s.filesystem {
            if let Some(v) = fs.tmp_mb {
                check_range(v, TMP_MB_RANGE, "MiB").map_err(|p| err("security.filesystem.tmpMb", p))?;
            }
            if let Some(v) = fs.writable_mb {
                check_range(v, WRITABLE_MB_RANGE, "MiB").map_err(|p| err("security.filesystem.writableMb", p))?;
            }
        }
        if let Some(p) = &s.process {
            if let Some(v) = p.max_processes {
                check_range(v, MAX_PROCESSES_RANGE, "").map_err(|p| err("security.process.maxProcesses", p))?;
            }
            if let Some(Some(list)) = &p.allowed_commands {
                if list.len() > MAX_ALLOWED_COMMANDS {
                    return Err(err(
                        "security.process.allowedCommands",
                        format!("lists {} commands; at most {MAX_ALLOWED_COMMANDS} are allowed", list.len()),
                    ));
                }
                for (i, cmd) in list.iter().enumerate() {
                    validate_command(cmd).map_err(|p| err(&format!("security.process.allowedCommands[{i}]"), p))?;
                }
            }
        }
        if let Some(v) = s.output.as_ref().and_then(|o| o.max_bytes) {
            check_range(v, OUTPUT_BYTES_RANGE, "bytes").map_err(|p| err("security.output.maxBytes", p))?;
        }
        Ok(())
    }
}

/// An allowed command is an absolute, normalised path inside the sandbox.
fn validate_command(cmd: &str) -> Result<(), String> {
    if !cmd.starts_with('/') {
        return Err(format!("{cmd:?} must be an absolute path inside the sandbox, e.g. /usr/local/bin/bun"));
    }
    if cmd.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    if cmd.len() > 4096 {
        return Err("is longer than 4096 bytes".into());
    }
    if cmd.ends_with('/') || cmd.split('/').skip(1).any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(format!("{cmd:?} must be a normalised path to a file (no empty, `.` or `..` components)"));
    }
    Ok(())
}

fn check_range<T: PartialOrd + fmt::Display + Copy>(v: T, (lo, hi): (T, T), unit: &str) -> Result<(), String> {
    if v < lo || v > hi {
        let unit = if unit.is_empty() { String::new() } else { format!(" {unit}") };
        return Err(format!("must be between {lo} and {hi}{unit} (got {v})"));
    }
    Ok(())
}

/// Applies the layers in order. The first must set every field (the built-in default).
fn merge(layers: Vec<(RawPolicy, Source)>) -> Result<Effective, PolicyError> {
    let mut values = Partial::default();
    let mut sources: BTreeMap<String, Source> = BTreeMap::new();
    for (layer, source) in layers {
        let s = layer.security;
        let mut set = |field: &str| {
            sources.insert(field.to_string(), source.clone());
        };
        if let Some(v) = s.network.as_ref().and_then(|n| n.enabled) {
            values.network = Some(v);
            set("security.network.enabled");
        }
        if let Some(fs) = s.filesystem {
            if let Some(v) = fs.read_only {
                values.read_only = Some(v);
                set("security.filesystem.readOnly");
            }
            if let Some(v) = fs.tmp_mb {
                values.tmp_mb = Some(v);
                set("security.filesystem.tmpMb");
            }
            if let Some(v) = fs.writable_mb {
                values.writable_mb = Some(v);
                set("security.filesystem.writableMb");
            }
        }
        if let Some(p) = s.process {
            if let Some(v) = p.allow_spawn {
                values.allow_spawn = Some(v);
                set("security.process.allowSpawn");
            }
            if let Some(v) = p.allowed_commands {
                values.allowed_commands = Some(v);
                set("security.process.allowedCommands");
            }
            if let Some(v) = p.max_processes {
                values.max_processes = Some(v);
                set("security.process.maxProcesses");
            }
        }
        if let Some(v) = s.output.and_then(|o| o.max_bytes) {
            values.output_max_bytes = Some(v);
            set("security.output.maxBytes");
        }
    }
    let missing = |field: &str| PolicyError::Field {
        origin: "policies/default.yaml".into(),
        field: field.into(),
        problem: "the built-in default must set every field".into(),
    };
    let policy = Policy {
        network: values.network.ok_or_else(|| missing("security.network.enabled"))?,
        read_only: values.read_only.ok_or_else(|| missing("security.filesystem.readOnly"))?,
        tmp_mb: values.tmp_mb.ok_or_else(|| missing("security.filesystem.tmpMb"))?,
        writable_mb: values.writable_mb.ok_or_else(|| missing("security.filesystem.writableMb"))?,
        allow_spawn: values.allow_spawn.ok_or_else(|| missing("security.process.allowSpawn"))?,
        allowed_commands: values.allowed_commands.ok_or_else(|| missing("security.process.allowedCommands"))?,
        max_processes: values.max_processes.ok_or_else(|| missing("security.process.maxProcesses"))?,
        output_max_bytes: values.output_max_bytes.ok_or_else(|| missing("security.output.maxBytes"))?,
    };
    if !policy.allow_spawn && policy.allowed_commands.as_ref().is_some_and(|c| !c.is_empty()) {
        let spawn = sources.get("security.process.allowSpawn").map_or_else(String::new, ToString::to_string);
        let cmds = sources.get("security.process.allowedCommands").map_or_else(String::new, ToString::to_string);
        return Err(PolicyError::Field {
            origin: cmds,
            field: "security.process.allowedCommands".into(),
            problem: format!(
                "lists commands to start, but security.process.allowSpawn is false (set by {spawn}); set allowSpawn: true in the same policy file, or remove allowedCommands"
            ),
        });
    }
    Ok(Effective { policy, sources, file: None, audit: false })
}

#[derive(Default)]
struct Partial {
    network: Option<bool>,
    read_only: Option<bool>,
    tmp_mb: Option<u32>,
    writable_mb: Option<u32>,
    allow_spawn: Option<bool>,
    allowed_commands: Option<Option<Vec<String>>>,
    max_processes: Option<u32>,
    output_max_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn builtin_default_is_complete_and_strict() {
        let dir = dir_with(&[]);
        let e = resolve(dir.path(), None, false).unwrap();
        let p = &e.policy;
        assert!(!p.network && p.read_only && !p.allow_spawn);
        assert_eq!(p.allowed_commands, None);
        assert_eq!((p.tmp_mb, p.max_processes, p.output_max_bytes), (64, 128, 1024 * 1024));
        assert!(e.sources.values().all(|s| *s == Source::Default));
        assert_eq!(e.sources.len(), 8);
        assert_eq!(e.file, None);
    }

    #[test]
    fn audit_is_strict_and_says_so() {
        let dir = dir_with(&[]);
        let e = resolve(dir.path(), None, true).unwrap();
        assert!(!e.policy.allow_spawn && !e.policy.network && e.policy.read_only);
        assert_eq!(e.source("security.process.allowSpawn"), Some(&Source::Audit));
        assert_eq!(e.source("security.process.maxProcesses"), Some(&Source::Default));
        assert_eq!(e.policy.allowed_commands, Some(vec![]));
        assert!(e.audit);
    }

    #[test]
    fn file_overrides_only_what_it_sets_even_in_audit_mode() {
        let dir = dir_with(&[(
            "ignite.policy.yaml",
            "security:\n  process:\n    allowSpawn: true\n    allowedCommands: [/usr/local/bin/bun]\n",
        )]);
        let e = resolve(dir.path(), None, true).unwrap();
        assert!(e.policy.allow_spawn);
        assert_eq!(e.policy.allowed_commands, Some(vec!["/usr/local/bin/bun".to_string()]));
        let file = Source::File { path: dir.path().join("ignite.policy.yaml") };
        assert_eq!(e.source("security.process.allowSpawn"), Some(&file));
        assert_eq!(e.source("security.network.enabled"), Some(&Source::Audit));
        assert_eq!(e.file.as_deref(), Some(dir.path().join("ignite.policy.yaml").as_path()));
    }

    #[test]
    fn every_file_name_is_found_and_two_are_ambiguous() {
        for name in POLICY_FILES {
            let dir = dir_with(&[(name, "security:\n  network:\n    enabled: true\n")]);
            let e = resolve(dir.path(), None, false).unwrap();
            assert!(e.policy.network, "{name}");
        }
        let dir = dir_with(&[("ignite.policy.yaml", "security: {}\n"), (".ignite-policy.yml", "security: {}\n")]);
        let err = resolve(dir.path(), None, false).unwrap_err().to_string();
        assert!(err.contains("more than one policy file") && err.contains(".ignite-policy.yml"), "{err}");
    }

    #[test]
    fn explicit_file_replaces_the_directory_one() {
        let dir = dir_with(&[("ignite.policy.yaml", "security:\n  network:\n    enabled: true\n")]);
        let other = dir_with(&[("p.yaml", "security:\n  output:\n    maxBytes: 4096\n")]);
        let e = resolve(dir.path(), Some(&other.path().join("p.yaml")), false).unwrap();
        assert!(!e.policy.network);
        assert_eq!(e.policy.output_max_bytes, 4096);
    }

    #[test]
    fn null_allowed_commands_resets_to_any_and_empty_list_means_none() {
        let any = parse("security:\n  process:\n    allowedCommands: null\n", "t").unwrap();
        assert_eq!(any.security.process.unwrap().allowed_commands, Some(None));
        let none = parse("security:\n  process:\n    allowedCommands: []\n", "t").unwrap();
        assert_eq!(none.security.process.unwrap().allowed_commands, Some(Some(vec![])));
        let unset = parse("security:\n  process:\n    allowSpawn: true\n", "t").unwrap();
        assert_eq!(unset.security.process.unwrap().allowed_commands, None);
    }

    #[test]
    fn malformed_policies_are_precise_errors() {
        let cases = [
            ("", "empty"),
            ("# only a comment\n", "empty"),
            ("network: {}\n", "unknown field `network`"),
            ("security:\n  netwrok: {}\n", "unknown field `netwrok`"),
            ("security:\n  network:\n    enabled: yes please\n", "security.network.enabled"),
            (
                "security:\n  filesystem:\n    tmpMb: 0\n",
                "security.filesystem.tmpMb`: must be between 1 and 4096 MiB (got 0)",
            ),
            ("security:\n  filesystem:\n    writableMb: 5000\n", "security.filesystem.writableMb"),
            (
                "security:\n  process:\n    maxProcesses: 8\n",
                "security.process.maxProcesses`: must be between 16 and 32768 (got 8)",
            ),
            ("security:\n  process:\n    maxProcesses: -1\n", "security.process.maxProcesses"),
            (
                "security:\n  process:\n    allowedCommands: [bun]\n",
                "allowedCommands[0]`: \"bun\" must be an absolute path",
            ),
            ("security:\n  process:\n    allowedCommands: [/usr/../bin/sh]\n", "allowedCommands[0]"),
            ("security:\n  process:\n    allowedCommands: /bin/sh\n", "security.process.allowedCommands"),
            ("security:\n  output:\n    maxBytes: 10\n", "security.output.maxBytes`: must be between 1024"),
            ("security:\n  output:\n    maxbytes: 10\n", "unknown field `maxbytes`"),
        ];
        for (text, want) in cases {
            let err = parse(text, "svc/ignite.policy.yaml").unwrap_err().to_string();
            assert!(err.contains("svc/ignite.policy.yaml") && err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn commands_without_spawn_name_both_sources() {
        let dir =
            dir_with(&[("ignite.policy.yaml", "security:\n  process:\n    allowedCommands: [/usr/local/bin/bun]\n")]);
        let err = resolve(dir.path(), None, true).unwrap_err().to_string();
        assert!(err.contains("allowSpawn is false (set by audit mode") && err.contains("ignite.policy.yaml"), "{err}");
        let dir = dir_with(&[(
            "ignite.policy.yaml",
            "security:\n  process:\n    allowSpawn: true\n    allowedCommands: [/usr/local/bin/bun]\n",
        )]);
        assert!(resolve(dir.path(), None, true).is_ok());
        // An empty list with spawning off is consistent (nothing may be started).
        let dir = dir_with(&[(
            "ignite.policy.yaml",
            "security:\n  process:\n    allowSpawn: false\n    allowedCommands: []\n",
        )]);
        assert!(resolve(dir.path(), None, false).is_ok());
    }

    #[test]
    fn oversized_and_non_regular_files_are_refused() {
        let dir = dir_with(&[]);
        std::fs::create_dir(dir.path().join("ignite.policy.yaml")).unwrap();
        let err = resolve(dir.path(), None, false).unwrap_err().to_string();
        assert!(err.contains("is a directory; a policy file must be a regular file"), "{err}");
        let big = dir_with(&[("p.yaml", &format!("security: {{}}\n#{}\n", "x".repeat(70_000)))]);
        let err = resolve(dir.path(), Some(&big.path().join("p.yaml")), false).unwrap_err().to_string();
        assert!(err.contains("at most 65536"), "{err}");
    }

    #[test]
    fn output_flag_overrides_and_is_range_checked() {
        let dir = dir_with(&[]);
        let mut e = resolve(dir.path(), None, false).unwrap();
        e.set_output_max_bytes(2048, "--output-limit").unwrap();
        assert_eq!(e.policy.output_max_bytes, 2048);
        assert_eq!(e.source("security.output.maxBytes"), Some(&Source::Flag { name: "--output-limit".into() }));
        assert!(e.set_output_max_bytes(1, "--output-limit").unwrap_err().to_string().contains("--output-limit"));
        assert!(e.describe().contains("security.output.maxBytes") && e.describe().contains("--output-limit"));
    }

    #[test]
    fn shipped_example_policies_are_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/examples");
        let mut n = 0;
        for entry in std::fs::read_dir(&root).unwrap() {
            let path = entry.unwrap().path();
            let dir = dir_with(&[]);
            resolve(dir.path(), Some(&path), false).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
        assert!(n >= 3, "examples missing in {}", root.display());
    }
}
