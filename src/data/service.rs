//! `service.yaml`: the serde model, defaults, `${VAR}` expansion (from the variables the
//! operator passes, [`PassEnv`]) and validation with precise errors.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::fsutil::svcdir::{self, ParseCache, ReadError, Rule};

/// File name of a service definition inside a service directory.
pub const SERVICE_FILE: &str = "service.yaml";

pub const DEFAULT_MEMORY_MB: u32 = 128;
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_CPU_LIMIT: f64 = 1.0;
pub const DEFAULT_RUNTIME: &str = "bun";

/// Bounds for limits. Below 16 MiB no JavaScript runtime starts; the upper bounds catch
/// unit mistakes (bytes given as MiB, seconds given as ms twice) rather than capacity.
pub const MEMORY_MB_RANGE: (u32, u32) = (16, 65_536);
pub const TIMEOUT_MS_RANGE: (u64, u64) = (10, 86_400_000);
pub const CPU_LIMIT_RANGE: (f64, f64) = (0.01, 256.0);

/// Entry files tried, in order, when neither service.yaml nor `--entry` names one.
pub const DEFAULT_ENTRIES: &[&str] = &["index.ts", "index.js", "index.mjs", "main.ts", "main.js"];

/// Environment names that ignite itself sets inside the sandbox.
const RESERVED_ENV: &[&str] = &["IGNITE_INPUT", "PATH", "HOME"];

/// Prefix of ignite's own configuration variables (API keys, directories): never passed.
pub const OWN_ENV_PREFIX: &str = "IGNITE_";

/// How service.yaml is read from the service directory (see [`crate::fsutil::svcdir`]).
pub const SERVICE_FILE_RULE: Rule = Rule { what: "service definition", max_bytes: 256 * 1024 };

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("failed to read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    File(#[from] ReadError),
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: field `{field}`: {reason}")]
    Field { path: PathBuf, field: String, reason: String },
    #[error("{dir}: no entry file found (tried {tried}); name one with `entry:` in service.yaml or --entry")]
    NoEntry { dir: PathBuf, tried: String },
}

/// What a field's value came from, for error messages: the file, or a command-line flag.
#[derive(Debug, Clone)]
pub struct Origin(pub PathBuf);

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.display())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFile {
    service: RawService,
    /// Thresholds of the preflight checks (see [`crate::data::preflight::config`]).
    preflight: Option<crate::data::preflight::RawConfig>,
}

/// The `service:` mapping exactly as written; every field optional so that defaults and
/// command-line overrides are applied in one place ([`resolve`]).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawService {
    pub name: Option<String>,
    pub runtime: Option<String>,
    pub entry: Option<String>,
    pub memory_mb: Option<u32>,
    pub timeout_ms: Option<u64>,
    pub cpu_limit: Option<f64>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Names of environment variables a request may set (see [`crate::data::program_io`]).
    #[serde(default)]
    pub allow_env: Vec<String>,
    pub install: Option<RawInstall>,
    /// The file's top-level `preflight:` mapping (a sibling of `service:`, not inside it).
    #[serde(skip)]
    pub preflight: Option<crate::data::preflight::RawConfig>,
}

/// `install:` — how ignite's dependency install step treats this service's package.json.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawInstall {
    /// Run lifecycle scripts (the service's own preinstall/install/postinstall/prepare, and
    /// those of the dependencies it trusts). Off unless set to `true`.
    pub scripts: Option<bool>,
}

/// A validated service, ready for the spec builder.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    /// Canonical absolute path of the service directory.
    pub dir: PathBuf,
    pub runtime: String,
    /// Entry path relative to `dir`, normalised (`./a.ts` → `a.ts`).
    pub entry: String,
    pub memory_mb: u32,
    pub timeout_ms: u64,
    pub cpu_limit: f64,
    /// Environment after `${VAR}` expansion (from the passed variables only).
    pub env: BTreeMap<String, String>,
    pub dependencies: Vec<String>,
    /// `allowEnv`: the environment variables a request (HTTP `env`) may set for this service;
    /// never ignite's own nor one of `env`.
    pub allow_env: Vec<String>,
    /// `install.scripts`: whether the dependency install step runs lifecycle scripts.
    pub install_scripts: bool,
    /// Whether the values came from a service.yaml (false for `ignite exec` without one).
    pub from_file: bool,
    /// Preflight thresholds: service.yaml's `preflight:`, or the defaults.
    pub preflight: crate::data::preflight::Config,
}

/// Command-line values that override service.yaml. `None` keeps the file's value.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub runtime: Option<String>,
    pub entry: Option<String>,
    pub memory_mb: Option<u32>,
    pub timeout_ms: Option<u64>,
    pub cpu_limit: Option<f64>,
    pub env: Vec<(String, String)>,
}

/// Parses a service.yaml text. Errors carry the file, the field path and the position.
pub fn parse(text: &str, path: &Path) -> Result<RawService, ServiceError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, ServiceFile>(de) {
        Ok(file) => Ok(RawService { preflight: file.preflight, ..file.service }),
        Err(err) => {
            let field = err.path().to_string();
            let inner = err.into_inner();
            let message =
                if field == "." || field.is_empty() { inner.to_string() } else { format!("field `{field}`: {inner}") };
            Err(ServiceError::Parse { path: path.to_path_buf(), message })
        }
    }
}

/// Loads `dir/service.yaml`. With `required == false` a missing file yields defaults
/// (that is `ignite exec`); any other read or parse failure is an error either way.
pub fn load(dir: &Path, required: bool, overrides: &Overrides, pass: &PassEnv) -> Result<Service, ServiceError> {
    load_with(dir, required, overrides, pass, None)
}

/// service.yaml files parsed once per version of the file, for [`load_cached`].
pub type ParsedServiceFiles = ParseCache<RawService>;

/// [`load`], with service.yaml parsed once per version of the file and kept in `cache`
/// (`ignite serve`, which loads a service on every request). Everything else — defaults,
/// overrides, validation, the entry file's existence — is worked out afresh each time.
pub fn load_cached(
    dir: &Path,
    required: bool,
    overrides: &Overrides,
    pass: &PassEnv,
    cache: &ParsedServiceFiles,
) -> Result<Service, ServiceError> {
    load_with(dir, required, overrides, pass, Some(cache))
}

fn load_with(
    dir: &Path,
    required: bool,
    overrides: &Overrides,
    pass: &PassEnv,
    cache: Option<&ParseCache<RawService>>,
) -> Result<Service, ServiceError> {
    let dir = dir.canonicalize().map_err(|source| ServiceError::Read { path: dir.to_path_buf(), source })?;
    if !dir.is_dir() {
        return Err(ServiceError::Field {
            path: dir.clone(),
            field: "service directory".into(),
            reason: "is not a directory".into(),
        });
    }
    let file = dir.join(SERVICE_FILE);
    let parsed = match cache {
        Some(cache) => cache.get(&dir, SERVICE_FILE, SERVICE_FILE_RULE, |text| parse(text, &file))?,
        None => read_file(&dir)?.map(|text| parse(&text, &file)).transpose()?,
    };
    let (raw, from_file) = match parsed {
        Some(raw) => (raw, true),
        None if !required => (RawService::default(), false),
        None => {
            return Err(ServiceError::Read { path: file, source: std::io::ErrorKind::NotFound.into() });
        }
    };
    resolve(raw, &dir, &file, from_file, overrides, pass)
}

/// The text of `dir/service.yaml` (`None` when there is none), read the safe way: no link,
/// a regular file, at most [`SERVICE_FILE_RULE`]'s size.
pub fn read_file(dir: &Path) -> Result<Option<String>, ServiceError> {
    Ok(svcdir::read_text(dir, SERVICE_FILE, SERVICE_FILE_RULE)?)
}

/// Applies defaults and overrides to a parsed service and validates every field.
pub fn resolve(
    raw: RawService,
    dir: &Path,
    file: &Path,
    from_file: bool,
    o: &Overrides,
    pass: &PassEnv,
) -> Result<Service, ServiceError> {
    let field_err = |field: &str, reason: String| ServiceError::Field {
        path: file.to_path_buf(),
        field: field.to_string(),
        reason,
    };

    let name = match raw.name {
        Some(n) => n,
        None if from_file => return Err(field_err("service.name", "is required".into())),
        None => name_from_dir(dir),
    };
    validate_dns_label(&name).map_err(|r| field_err("service.name", r))?;

    let runtime = o.runtime.clone().or(raw.runtime).unwrap_or_else(|| DEFAULT_RUNTIME.to_string());
    validate_runtime_spec(&runtime).map_err(|r| field_err("service.runtime", r))?;

    let entry = match o.entry.clone().or(raw.entry) {
        Some(e) => e,
        None => detect_entry(dir)?,
    };
    let entry = validate_entry(dir, &entry).map_err(|r| field_err("service.entry", r))?;

    let memory_mb = o.memory_mb.or(raw.memory_mb).unwrap_or(DEFAULT_MEMORY_MB);
    check_range(memory_mb, MEMORY_MB_RANGE, "MiB").map_err(|r| field_err("service.memoryMb", r))?;
    let timeout_ms = o.timeout_ms.or(raw.timeout_ms).unwrap_or(DEFAULT_TIMEOUT_MS);
    check_range(timeout_ms, TIMEOUT_MS_RANGE, "ms").map_err(|r| field_err("service.timeoutMs", r))?;
    let cpu_limit = o.cpu_limit.or(raw.cpu_limit).unwrap_or(DEFAULT_CPU_LIMIT);
    if !cpu_limit.is_finite() || cpu_limit < CPU_LIMIT_RANGE.0 || cpu_limit > CPU_LIMIT_RANGE.1 {
        return Err(field_err(
            "service.cpuLimit",
            format!(
                "must be a number of CPUs between {} and {} (got {cpu_limit})",
                CPU_LIMIT_RANGE.0, CPU_LIMIT_RANGE.1
            ),
        ));
    }

    let mut env = BTreeMap::new();
    for (key, value) in raw.env {
        let field = format!("service.env.{key}");
        validate_env_name(&key).map_err(|r| field_err(&field, r))?;
        let value = expand_vars(&value, pass).map_err(|r| field_err(&field, r))?;
        env.insert(key, value);
    }
    for (key, value) in &o.env {
        let field = format!("--env {key}");
        validate_env_name(key).map_err(|r| field_err(&field, r))?;
        if value.contains('\0') {
            return Err(field_err(&field, "value contains a NUL byte".into()));
        }
        env.insert(key.clone(), value.clone());
    }

    for (i, name) in raw.allow_env.iter().enumerate() {
        let field = format!("service.allowEnv[{i}]");
        crate::data::program_io::check_allowed_name(name).map_err(|r| field_err(&field, r))?;
        if env.contains_key(name) {
            return Err(field_err(&field, format!("{name} is also set in service.env; a request could override it")));
        }
    }

    for (i, dep) in raw.dependencies.iter().enumerate() {
        validate_npm_name(dep).map_err(|r| field_err(&format!("service.dependencies[{i}]"), r))?;
    }

    let preflight = raw.preflight.unwrap_or_default().validate().map_err(|e| ServiceError::Field {
        path: file.to_path_buf(),
        field: e.field,
        reason: e.reason,
    })?;

    Ok(Service {
        name,
        dir: dir.to_path_buf(),
        runtime,
        entry,
        memory_mb,
        timeout_ms,
        cpu_limit,
        env,
        dependencies: raw.dependencies,
        allow_env: raw.allow_env,
        install_scripts: raw.install.and_then(|i| i.scripts).unwrap_or(false),
        from_file,
        preflight,
    })
}

pub fn check_range<T: PartialOrd + fmt::Display + Copy>(v: T, (lo, hi): (T, T), unit: &str) -> Result<(), String> {
    if v < lo || v > hi {
        return Err(format!("must be between {lo} and {hi} {unit} (got {v})"));
    }
    Ok(())
}

/// A DNS label (RFC 1123): it becomes the container hostname and part of ids and paths.
pub fn validate_dns_label(name: &str) -> Result<(), String> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if name.is_empty() || name.len() > 63 || !ok_chars || name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "must be a DNS label: 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-' (got {name:?})"
        ));
    }
    Ok(())
}

/// Derives a DNS-label name from a directory name for services without service.yaml.
fn name_from_dir(dir: &Path) -> String {
    let base = dir.file_name().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
    let mut name: String =
        base.chars().map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' }).collect();
    name.truncate(63);
    let name = name.trim_matches('-').to_string();
    if name.is_empty() { "service".to_string() } else { name }
}

/// Syntax of `name` or `name@version`; whether it exists is the registry's question.
fn validate_runtime_spec(spec: &str) -> Result<(), String> {
    let (name, version) = match spec.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    };
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return Err(format!("must be a runtime name such as `bun` or `bun@1.4` (got {spec:?})"));
    }
    if let Some(v) = version {
        let ok = !v.is_empty() && v.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return Err(format!("version after '@' must be numeric like 1, 1.4 or 1.4.5 (got {spec:?})"));
        }
    }
    Ok(())
}

fn detect_entry(dir: &Path) -> Result<String, ServiceError> {
    for candidate in DEFAULT_ENTRIES {
        if matches!(svcdir::target_kind(dir, candidate), Ok(Some(svcdir::EntryKind::File))) {
            return Ok((*candidate).to_string());
        }
    }
    Err(ServiceError::NoEntry { dir: dir.to_path_buf(), tried: DEFAULT_ENTRIES.join(", ") })
}

/// The entry must name a regular file inside the service directory, also after symlinks
/// are resolved: the directory is what the sandbox sees at /app, nothing else. Resolved beneath
/// the directory ([`svcdir::target_kind`]), so a link that leads out is refused the same way
/// whatever it points to on the host: the answer is no probe of host paths.
fn validate_entry(dir: &Path, entry: &str) -> Result<String, String> {
    if entry.is_empty() {
        return Err("must not be empty".into());
    }
    if entry.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    let p = Path::new(entry);
    let mut normal = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => normal.push(s),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!("must stay inside the service directory; `..` is not allowed (got {entry:?})"));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("must be a path relative to the service directory, not absolute (got {entry:?})"));
            }
        }
    }
    if normal.as_os_str().is_empty() {
        return Err(format!("must name a file (got {entry:?})"));
    }
    let rel = normal.to_string_lossy().into_owned();
    let full = dir.join(&normal);
    match svcdir::target_kind(dir, &rel) {
        Ok(Some(svcdir::EntryKind::File)) => Ok(rel),
        Ok(Some(_)) => Err(format!("{} is not a regular file", full.display())),
        Ok(None) => Err(format!("{} does not exist", full.display())),
        Err(ReadError::Outside { .. }) => Err(format!(
            "{} leads outside the service directory through a symbolic link; the entry must be a file inside it",
            full.display()
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn validate_env_name(key: &str) -> Result<(), String> {
    let mut bytes = key.bytes();
    let first_ok = matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_');
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "is not a valid environment variable name (letters, digits, '_'; not starting with a digit): {key:?}"
        ));
    }
    if RESERVED_ENV.contains(&key) {
        return Err(format!("{key} is set by ignite and cannot be overridden"));
    }
    Ok(())
}

/// The host environment variables that `${NAME}` in service.yaml may read: only those the
/// operator names (`--pass-env`), with their values taken once, when the list is made. ignite's
/// own configuration (`IGNITE_*`: API keys, directories) can never be named, so a service from
/// an upload or a model cannot ask for the server's secrets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassEnv {
    values: BTreeMap<String, Option<String>>,
}

/// What `${NAME}` finds.
enum Lookup<'a> {
    Value(&'a str),
    Unset,
    NotPassed,
}

impl PassEnv {
    /// Passes nothing: every `${NAME}` is an error that says how to pass it.
    pub fn none() -> PassEnv {
        PassEnv::default()
    }

    /// The named variables, with their values from this process's environment now.
    pub fn from_process(names: &[String]) -> Result<PassEnv, String> {
        PassEnv::with_source(names, &|name| std::env::var(name).ok())
    }

    /// The named variables, with values from `source` (tests, fixed configurations).
    pub fn with_source(names: &[String], source: &dyn Fn(&str) -> Option<String>) -> Result<PassEnv, String> {
        let mut values = BTreeMap::new();
        for name in names {
            let ok = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok {
                return Err(format!("--pass-env {name:?}: not an environment variable name"));
            }
            if name.starts_with(OWN_ENV_PREFIX) {
                return Err(format!(
                    "--pass-env {name}: ignite's own configuration ({OWN_ENV_PREFIX}*) is never passed to services"
                ));
            }
            values.insert(name.clone(), source(name));
        }
        Ok(PassEnv { values })
    }

    /// The names passed, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    fn get(&self, name: &str) -> Lookup<'_> {
        match self.values.get(name) {
            Some(Some(v)) => Lookup::Value(v),
            Some(None) => Lookup::Unset,
            None => Lookup::NotPassed,
        }
    }
}

/// Expands `${NAME}` from the passed variables. `$$` is a literal `$`. A variable that is not
/// passed, or passed but unset, is an error naming it: silently passing "" hides a broken
/// deployment.
pub fn expand_vars(value: &str, pass: &PassEnv) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| format!("unterminated `${{` in {value:?}"))?;
            let name = &body[..end];
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("invalid variable reference `${{{name}}}` in {value:?}"));
            }
            match pass.get(name) {
                Lookup::Value(v) => out.push_str(v),
                Lookup::Unset => {
                    return Err(format!(
                        "environment variable {name} is not set (referenced as `${{{name}}}`); export it before running, or write `$${{{name}}}` for a literal"
                    ));
                }
                Lookup::NotPassed if name.starts_with(OWN_ENV_PREFIX) => {
                    return Err(format!(
                        "`${{{name}}}` names ignite's own configuration ({OWN_ENV_PREFIX}*), which is never passed to services"
                    ));
                }
                Lookup::NotPassed => {
                    return Err(format!(
                        "`${{{name}}}` names a host environment variable that is not passed to services; pass it with --pass-env {name} (or IGNITE_PASS_ENV={name}), or write `$${{{name}}}` for a literal"
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    if out.contains('\0') {
        return Err("value contains a NUL byte".into());
    }
    Ok(out)
}

/// npm package names: lower-case, URL-safe, optionally scoped (`@scope/name`).
fn validate_npm_name(name: &str) -> Result<(), String> {
    let body = match name.strip_prefix('@') {
        Some(scoped) => match scoped.split_once('/') {
            Some((scope, pkg)) if !scope.is_empty() && !pkg.is_empty() => vec![scope, pkg],
            _ => return Err(format!("scoped package must look like @scope/name (got {name:?})")),
        },
        None => vec![name],
    };
    let ok = name.len() <= 214
        && body.iter().all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && !part.starts_with('_')
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._~".contains(&b))
        });
    if !ok {
        return Err(format!("is not a valid npm package name (got {name:?})"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn no_env() -> PassEnv {
        PassEnv::none()
    }

    fn svc_dir(yaml: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("service.yaml"), yaml).unwrap();
        fs::write(d.path().join("index.ts"), "console.log(1)").unwrap();
        d
    }

    fn load_err(yaml: &str) -> String {
        let d = svc_dir(yaml);
        load(d.path(), true, &Overrides::default(), &no_env()).unwrap_err().to_string()
    }

    #[test]
    fn allow_env_names_are_checked() {
        let d = svc_dir("service:\n  name: a\n  allowEnv: [MODE, API_LEVEL]\n");
        let s = load(d.path(), true, &Overrides::default(), &no_env()).unwrap();
        assert_eq!(s.allow_env, ["MODE", "API_LEVEL"]);
        let e = load_err("service:\n  name: a\n  allowEnv: [IGNITE_INPUT]\n");
        assert!(e.contains("service.allowEnv[0]") && e.contains("ignite's own variables"), "{e}");
        let e = load_err("service:\n  name: a\n  allowEnv: [MODE, LD_PRELOAD]\n");
        assert!(e.contains("service.allowEnv[1]") && e.contains("dynamic loader"), "{e}");
        let e = load_err("service:\n  name: a\n  allowEnv: [\"a-b\"]\n");
        assert!(e.contains("not an environment variable name"), "{e}");
        let e = load_err("service:\n  name: a\n  env:\n    MODE: x\n  allowEnv: [MODE]\n");
        assert!(e.contains("also set in service.env"), "{e}");
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let d = svc_dir("service:\n  name: hello\n  entry: index.ts\n");
        let s = load(d.path(), true, &Overrides::default(), &no_env()).unwrap();
        assert_eq!(s.name, "hello");
        assert_eq!(s.runtime, "bun");
        assert_eq!(s.memory_mb, 128);
        assert_eq!(s.timeout_ms, 30_000);
        assert_eq!(s.cpu_limit, 1.0);
        assert_eq!(s.entry, "index.ts");
        assert!(s.from_file);
    }

    #[test]
    fn full_file_and_overrides() {
        let d = svc_dir(
            "service:\n  name: data-processor\n  runtime: bun@1.4\n  entry: ./index.ts\n  memoryMb: 64\n  timeoutMs: 5000\n  cpuLimit: 0.5\n  env:\n    DEBUG: \"true\"\n    KEY: \"${SECRET}-x\"\n  dependencies: [lodash, \"@types/node\"]\n",
        );
        let pass = PassEnv::with_source(&["SECRET".into()], &|k| (k == "SECRET").then(|| "s3".to_string())).unwrap();
        let o = Overrides { memory_mb: Some(256), env: vec![("EXTRA".into(), "1".into())], ..Default::default() };
        let s = load(d.path(), true, &o, &pass).unwrap();
        assert_eq!(s.runtime, "bun@1.4");
        assert_eq!(s.entry, "index.ts");
        assert_eq!(s.memory_mb, 256);
        assert_eq!(s.timeout_ms, 5000);
        assert_eq!(s.cpu_limit, 0.5);
        assert_eq!(s.env["KEY"], "s3-x");
        assert_eq!(s.env["DEBUG"], "true");
        assert_eq!(s.env["EXTRA"], "1");
        assert_eq!(s.dependencies, vec!["lodash", "@types/node"]);
    }

    #[test]
    fn a_variable_that_is_not_passed_or_not_set_is_named() {
        let e = load_err("service:\n  name: a\n  env:\n    K: \"${HOME}\"\n");
        assert!(
            e.contains("service.env.K") && e.contains("not passed to services") && e.contains("--pass-env HOME"),
            "{e}"
        );
        let d = svc_dir("service:\n  name: a\n  env:\n    K: \"${NOPE_NOT_SET}\"\n");
        let pass = PassEnv::with_source(&["NOPE_NOT_SET".into()], &|_| None).unwrap();
        let e = load(d.path(), true, &Overrides::default(), &pass).unwrap_err().to_string();
        assert!(e.contains("service.env.K") && e.contains("NOPE_NOT_SET is not set"), "{e}");
    }

    #[test]
    fn ignite_configuration_is_never_expanded_nor_passable() {
        // The server keeps its API keys in IGNITE_API_KEYS: a service must not be able to ask.
        let e = load_err("service:\n  name: a\n  env:\n    K: \"${IGNITE_API_KEYS}\"\n");
        assert!(e.contains("ignite's own configuration") && !e.contains("--pass-env IGNITE"), "{e}");
        let e = PassEnv::with_source(&["IGNITE_API_KEYS".into()], &|_| Some("k".into())).unwrap_err();
        assert!(e.contains("never passed"), "{e}");
        assert!(PassEnv::with_source(&["1X".into()], &|_| None).is_err());
        assert!(PassEnv::with_source(&["A-B".into()], &|_| None).is_err());
    }

    #[test]
    fn service_yaml_is_read_without_following_links_and_within_its_cap() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "service:\n  name: [root-only-content\n").unwrap();
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("index.ts"), "").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), d.path().join("service.yaml")).unwrap();
        let e = load(d.path(), true, &Overrides::default(), &no_env()).unwrap_err().to_string();
        assert!(e.contains("symbolic link") && !e.contains("root-only"), "{e}");
        // Not even `ignite exec` (service.yaml optional) falls back to defaults: it is refused.
        assert!(load(d.path(), false, &Overrides::default(), &no_env()).is_err());

        fs::remove_file(d.path().join("service.yaml")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.path().join("service.yaml")).unwrap();
        let e = load(d.path(), true, &Overrides::default(), &no_env()).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");

        fs::remove_file(d.path().join("service.yaml")).unwrap();
        nix::unistd::mkfifo(&d.path().join("service.yaml"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let e = load(d.path(), true, &Overrides::default(), &no_env()).unwrap_err().to_string();
        assert!(e.contains("named pipe"), "{e}");

        fs::remove_file(d.path().join("service.yaml")).unwrap();
        let big = format!("service:\n  name: a\n#{}\n", "x".repeat(SERVICE_FILE_RULE.max_bytes as usize));
        fs::write(d.path().join("service.yaml"), big).unwrap();
        let e = load(d.path(), true, &Overrides::default(), &no_env()).unwrap_err().to_string();
        assert!(e.contains("may have at most 262144 bytes"), "{e}");
    }

    #[test]
    fn unknown_field_names_field_and_file() {
        let e = load_err("service:\n  name: a\n  memory: 64\n");
        assert!(e.contains("service.yaml"), "{e}");
        assert!(e.contains("unknown field `memory`"), "{e}");
        let e = load_err("service:\n  name: a\nextra: 1\n");
        assert!(e.contains("unknown field `extra`"), "{e}");
    }

    #[test]
    fn wrong_type_names_field_and_line() {
        let e = load_err("service:\n  name: a\n  memoryMb: lots\n");
        assert!(e.contains("service.memoryMb"), "{e}");
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn name_must_be_dns_label() {
        for bad in ["Hello", "a_b", "-a", "a-", "", &"a".repeat(64), "a.b"] {
            let e = load_err(&format!("service:\n  name: {bad:?}\n"));
            assert!(e.contains("service.name") && e.contains("DNS label"), "{bad}: {e}");
        }
        let e = load_err("service:\n  entry: index.ts\n");
        assert!(e.contains("service.name") && e.contains("required"), "{e}");
    }

    #[test]
    fn entry_must_stay_inside() {
        let e = load_err("service:\n  name: a\n  entry: ../index.ts\n");
        assert!(e.contains("service.entry") && e.contains("`..`"), "{e}");
        let e = load_err("service:\n  name: a\n  entry: /etc/passwd\n");
        assert!(e.contains("service.entry") && e.contains("absolute"), "{e}");
        let e = load_err("service:\n  name: a\n  entry: missing.ts\n");
        assert!(e.contains("service.entry") && e.contains("does not exist"), "{e}");

        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("x.ts"), "").unwrap();
        let d = svc_dir("service:\n  name: a\n  entry: link.ts\n");
        std::os::unix::fs::symlink(outside.path().join("x.ts"), d.path().join("link.ts")).unwrap();
        let e = load(d.path(), true, &Overrides::default(), &no_env()).unwrap_err().to_string();
        assert!(e.contains("leads outside the service directory through a symbolic link"), "{e}");
        assert!(!e.contains(&outside.path().display().to_string()), "the host path is not echoed: {e}");

        let d = svc_dir("service:\n  name: a\n  entry: sub\n");
        fs::create_dir(d.path().join("sub")).unwrap();
        let e = load(d.path(), true, &Overrides::default(), &no_env()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn limits_are_range_checked() {
        let e = load_err("service:\n  name: a\n  memoryMb: 4\n");
        assert!(e.contains("service.memoryMb") && e.contains("between 16"), "{e}");
        let e = load_err("service:\n  name: a\n  timeoutMs: 0\n");
        assert!(e.contains("service.timeoutMs"), "{e}");
        let e = load_err("service:\n  name: a\n  cpuLimit: 0\n");
        assert!(e.contains("service.cpuLimit"), "{e}");
        let e = load_err("service:\n  name: a\n  memoryMb: -5\n");
        assert!(e.contains("service.memoryMb"), "{e}");
    }

    #[test]
    fn runtime_spec_syntax() {
        let e = load_err("service:\n  name: a\n  runtime: \"bun@latest\"\n");
        assert!(e.contains("service.runtime") && e.contains("numeric"), "{e}");
        let e = load_err("service:\n  name: a\n  runtime: \"Bun\"\n");
        assert!(e.contains("service.runtime"), "{e}");
    }

    #[test]
    fn env_names_and_reserved() {
        let e = load_err("service:\n  name: a\n  env:\n    1BAD: x\n");
        assert!(e.contains("service.env.1BAD"), "{e}");
        let e = load_err("service:\n  name: a\n  env:\n    IGNITE_INPUT: x\n");
        assert!(e.contains("set by ignite"), "{e}");
    }

    #[test]
    fn dependencies_are_npm_names() {
        let e = load_err("service:\n  name: a\n  dependencies: [\"Lodash\"]\n");
        assert!(e.contains("service.dependencies[0]"), "{e}");
        let e = load_err("service:\n  name: a\n  dependencies: [\"@scope\"]\n");
        assert!(e.contains("service.dependencies[0]"), "{e}");
    }

    #[test]
    fn install_scripts_field() {
        let d = svc_dir("service:\n  name: a\n  install:\n    scripts: true\n");
        assert!(load(d.path(), true, &Overrides::default(), &no_env()).unwrap().install_scripts);
        let d = svc_dir("service:\n  name: a\n  install: {scripts: false}\n");
        assert!(!load(d.path(), true, &Overrides::default(), &no_env()).unwrap().install_scripts);
        let d = svc_dir("service:\n  name: a\n");
        assert!(!load(d.path(), true, &Overrides::default(), &no_env()).unwrap().install_scripts);
        let e = load_err("service:\n  name: a\n  install:\n    scripts: yes please\n");
        assert!(e.contains("service.install.scripts") && e.contains("line 4"), "{e}");
        let e = load_err("service:\n  name: a\n  install:\n    script: true\n");
        assert!(e.contains("unknown field `script`") && e.contains("scripts"), "{e}");
    }

    #[test]
    fn preflight_mapping_is_parsed_and_validated_with_its_path() {
        let d = svc_dir(
            "service:\n  name: a\npreflight:\n  memory:\n    warnRatio: 2\n  dependencies: {warn: 1, fail: 2}\n",
        );
        let s = load(d.path(), true, &Overrides::default(), &no_env()).unwrap();
        assert_eq!(s.preflight.memory_warn_ratio, 2.0);
        assert_eq!((s.preflight.dependencies_warn, s.preflight.dependencies_fail), (1, 2));
        assert_eq!(s.preflight.bundle_fail_mb, crate::data::preflight::config::DEFAULT_BUNDLE_FAIL_MB);
        let d = svc_dir("service:\n  name: a\n");
        assert_eq!(load(d.path(), true, &Overrides::default(), &no_env()).unwrap().preflight, Default::default());
        let e = load_err("service:\n  name: a\npreflight:\n  memory:\n    warnRatio: 20\n");
        assert!(
            e.contains("service.yaml: field `preflight.memory.warnRatio`: must be a number between 0 and 10"),
            "{e}"
        );
        let e = load_err("service:\n  name: a\npreflight:\n  memory:\n    warnratio: 2\n");
        assert!(
            e.contains("preflight.memory") && e.contains("unknown field `warnratio`") && e.contains("line 5"),
            "{e}"
        );
        let e = load_err("service:\n  name: a\npreflight:\n  bundle: {warnMb: big}\n");
        assert!(e.contains("preflight.bundle.warnMb") && e.contains("line 4"), "{e}");
        let e = load_err("service:\n  name: a\npreflight:\n  disk: {}\n");
        assert!(e.contains("unknown field `disk`"), "{e}");
        // Inside `service:` it is not where it belongs.
        let e = load_err("service:\n  name: a\n  preflight: {}\n");
        assert!(e.contains("unknown field `preflight`"), "{e}");
        let e = load_err("service:\n  name: a\npreflight:\n  bundle: {warnMb: 9, failMb: 8}\n");
        assert!(e.contains("preflight.bundle.warnMb") && e.contains("failMb (8)"), "{e}");
    }

    #[test]
    fn exec_without_file_uses_defaults_and_detects_entry() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("My_Svc");
        fs::create_dir(&sub).unwrap();
        fs::write(sub.join("index.js"), "").unwrap();
        let s = load(&sub, false, &Overrides::default(), &no_env()).unwrap();
        assert_eq!(s.name, "my-svc");
        assert_eq!(s.entry, "index.js");
        assert!(!s.from_file);
        let e = load(&sub, true, &Overrides::default(), &no_env()).unwrap_err().to_string();
        assert!(e.contains("service.yaml"), "{e}");
        fs::remove_file(sub.join("index.js")).unwrap();
        let e = load(&sub, false, &Overrides::default(), &no_env()).unwrap_err().to_string();
        assert!(e.contains("no entry file found"), "{e}");
    }

    #[test]
    fn expand_vars_cases() {
        let l = PassEnv::with_source(&["A".into(), "B".into()], &|k| (k == "A").then(|| "1".to_string())).unwrap();
        assert_eq!(expand_vars("x${A}y${A}", &l).unwrap(), "x1y1");
        assert_eq!(expand_vars("$$A $5 ${A}", &l).unwrap(), "$A $5 1");
        assert!(expand_vars("${A", &l).unwrap_err().contains("unterminated"));
        assert!(expand_vars("${}", &l).unwrap_err().contains("invalid"));
        assert!(expand_vars("${B}", &l).unwrap_err().contains("B is not set"));
    }

    #[test]
    fn defaults_pass_every_builtin_runtime_at_the_default_limits() {
        use crate::data::preflight::{BundleFact, ColdStart, Facts, Level, RawConfig, RuntimeFact, evaluate};
        const MIB_U: u64 = 1024 * 1024;
        let registry = crate::data::runtime::Registry::builtin().unwrap();
        let config = RawConfig::default().validate().unwrap();
        assert_eq!(config, crate::data::preflight::Config::default());
        for rt in registry.list().into_iter().filter(|r| r.is_default) {
            let base = rt.base_memory_mb.unwrap_or_else(|| panic!("{} has no baseMemoryMb", rt.key()));
            let mut f = Facts {
                service: "s".into(),
                runtime_spec: rt.name.clone(),
                runtime: Ok(RuntimeFact {
                    key: rt.key(),
                    base_memory_mb: Some(base),
                    recipe_digest: rt.recipe.digest(),
                    // The largest built-in bundle is about 55 MiB compressed.
                    bundle: BundleFact::Present { digest: "sha256:b".into(), bytes: 60 * MIB_U },
                }),
                memory_mb: DEFAULT_MEMORY_MB,
                timeout_ms: DEFAULT_TIMEOUT_MS,
                dependencies: 0,
                dependencies_source: None,
                // A cold start as slow as a loaded host makes them (a few hundred ms) still passes.
                cold_start: Ok(Some(ColdStart { runtime: rt.key(), ms: 500.0, measured_at: "t".into() })),
            };
            let r = evaluate(&f, &config);
            assert_eq!(r.status, Level::Pass, "{}: {r:#?}", rt.key());
            // And so does a service with no measurement yet.
            f.cold_start = Ok(None);
            assert_eq!(evaluate(&f, &config).status, Level::Pass, "{}", rt.key());
        }
    }
}
