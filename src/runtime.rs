//! Runtime registry: the pinned runtime definitions (`runtimes/<name>/runtime.yaml`), their
//! rootfs recipes (`rootfs-scripts/`), validation, and resolution of specs like `bun@1.4`.
//!
//! The built-in definitions and recipes are embedded into the binary with `include_str!`, so
//! ignite works from any directory. Definitions are data: a later user directory of runtimes
//! (`Registry::load_dir`) only has to parse its files with [`RuntimeDef::parse`] and hand them to
//! [`Registry::add`] with their [`Recipe`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// Built-in runtime definitions: (origin shown in errors, YAML text).
const BUILTIN_DEFINITIONS: &[(&str, &str)] = &[
    ("runtimes/bun/runtime.yaml", include_str!("../runtimes/bun/runtime.yaml")),
    ("runtimes/deno/runtime.yaml", include_str!("../runtimes/deno/runtime.yaml")),
];

/// Built-in recipe scripts, by recipe name.
const BUILTIN_RECIPES: &[(&str, &str)] =
    &[("bun", include_str!("../rootfs-scripts/bun.sh")), ("deno", include_str!("../rootfs-scripts/deno.sh"))];

/// Functions shared by every recipe; written beside the recipe as `lib.sh`, which it sources.
pub const RECIPE_LIB: &str = include_str!("../rootfs-scripts/lib.sh");

/// Variables that ignite itself sets in every container; a definition may not override them.
const RESERVED_ENV: &[&str] = &["HOME", "PATH"];

/// Errors from loading, validating and resolving runtime definitions.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("failed to parse runtime definition {origin}: {source}")]
    Parse {
        origin: String,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error("invalid runtime definition {origin}: {problem}")]
    Invalid { origin: String, problem: String },
    #[error("runtime {name:?} is defined twice ({first} and {second})")]
    Duplicate { name: String, first: String, second: String },
    #[error("runtime {name:?} uses recipe {recipe:?}, which does not exist (known recipes: {known})")]
    UnknownRecipe { name: String, recipe: String, known: String },
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
    pub versions: Vec<VersionDef>,
}

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
        let def: RuntimeDef = serde_yaml_ng::from_str(yaml)
            .map_err(|source| RuntimeError::Parse { origin: origin.to_string(), source })?;
        def.validate().map_err(|problem| RuntimeError::Invalid { origin: origin.to_string(), problem })?;
        Ok(def)
    }

    fn validate(&self) -> Result<(), String> {
        if !is_name(&self.name) {
            return Err(format!("name {:?} must be lower-case letters, digits and '-'", self.name));
        }
        if !is_name(&self.recipe) {
            return Err(format!("recipe {:?} must be lower-case letters, digits and '-'", self.recipe));
        }
        if self.description.trim().is_empty() {
            return Err("description is empty".into());
        }
        if self.versions.is_empty() {
            return Err("versions is empty".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for v in &self.versions {
            if !seen.insert(v.version) {
                return Err(format!("version {} is listed twice", v.version));
            }
            validate_package(&v.package).map_err(|e| format!("version {}: {e}", v.version))?;
        }
        if !seen.contains(&self.default) {
            return Err(format!(
                "default {} is not among the versions ({})",
                self.default,
                join_versions(seen.iter().rev())
            ));
        }
        validate_command(&self.command)?;
        if self.entry_extensions.is_empty() {
            return Err("entryExtensions is empty".into());
        }
        for ext in &self.entry_extensions {
            if ext.is_empty() || !ext.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
                return Err(format!("entry extension {ext:?} must be lower-case letters/digits without a dot"));
            }
        }
        for (key, value) in &self.env {
            let key_ok = !key.is_empty()
                && !key.as_bytes()[0].is_ascii_digit()
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !key_ok {
                return Err(format!("env name {key:?} must be letters, digits and '_'"));
            }
            if RESERVED_ENV.contains(&key.as_str()) {
                return Err(format!("env {key} is set by ignite and cannot be overridden"));
            }
            if value.contains('\0') {
                return Err(format!("env {key} contains a NUL byte"));
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
        }
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn validate_package(pkg: &Package) -> Result<(), String> {
    if pkg.name.trim().is_empty() || pkg.version.trim().is_empty() {
        return Err("package name and version must not be empty".into());
    }
    // Integrity is what makes the download trustworthy, but https still keeps the package
    // name and version we ask for private and the failure mode honest (no MITM error pages).
    let rest = pkg
        .url
        .strip_prefix("https://")
        .ok_or_else(|| format!("package url {:?} must start with https://", pkg.url))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || rest.len() <= host.len() + 1 {
        return Err(format!("package url {:?} must name a host and a file", pkg.url));
    }
    if pkg.url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("package url {:?} contains whitespace", pkg.url));
    }
    Ok(())
}

fn validate_command(command: &[String]) -> Result<(), String> {
    let first = command.first().ok_or("command is empty")?;
    if !first.starts_with('/') {
        return Err(format!("command[0] {first:?} must be an absolute path inside the rootfs"));
    }
    if !command.iter().any(|arg| arg.contains(ENTRY_PLACEHOLDER)) {
        return Err(format!("command {command:?} must contain {ENTRY_PLACEHOLDER} where the entry file goes"));
    }
    if command.iter().any(|arg| arg.contains('\0')) {
        return Err("command contains a NUL byte".into());
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
/// `rootfs-scripts/lib.sh` for its inputs), plus the shared library of functions it sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub name: String,
    pub script: Cow<'static, str>,
    pub lib: Cow<'static, str>,
}

impl Recipe {
    /// `sha256:<hex>` over the recipe and its library. Stored beside every built bundle, so that
    /// changing a recipe makes ignite rebuild the bundles it produced.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.lib.as_bytes());
        hasher.update([0u8]);
        hasher.update(self.script.as_bytes());
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
}

impl fmt::Display for ResolvedRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.version)
    }
}

/// Where a definition came from, for duplicate errors.
#[derive(Debug, Clone)]
struct Entry {
    def: RuntimeDef,
    recipe: Recipe,
    origin: String,
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
        for (origin, yaml) in BUILTIN_DEFINITIONS {
            let def = RuntimeDef::parse(yaml, origin)?;
            let recipe = builtin_recipe(&def.recipe).ok_or_else(|| RuntimeError::UnknownRecipe {
                name: def.name.clone(),
                recipe: def.recipe.clone(),
                known: BUILTIN_RECIPES.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", "),
            })?;
            registry.add(def, recipe, origin)?;
        }
        Ok(registry)
    }

    /// Adds a validated definition; a name may be defined once.
    pub fn add(&mut self, def: RuntimeDef, recipe: Recipe, origin: &str) -> Result<(), RuntimeError> {
        if let Some(existing) = self.runtimes.get(&def.name) {
            return Err(RuntimeError::Duplicate {
                name: def.name.clone(),
                first: existing.origin.clone(),
                second: origin.to_string(),
            });
        }
        self.runtimes.insert(def.name.clone(), Entry { def, recipe, origin: origin.to_string() });
        Ok(())
    }

    /// The definition of a runtime, if known.
    pub fn get(&self, name: &str) -> Option<&RuntimeDef> {
        self.runtimes.get(name).map(|e| &e.def)
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

/// The built-in recipe of that name, if any.
pub fn builtin_recipe(name: &str) -> Option<Recipe> {
    BUILTIN_RECIPES.iter().find(|(n, _)| *n == name).map(|(n, script)| Recipe {
        name: (*n).to_string(),
        script: Cow::Borrowed(*script),
        lib: Cow::Borrowed(RECIPE_LIB),
    })
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
        registry.add(def, builtin_recipe("bun").expect("recipe"), "test").expect("add");
        registry
    }

    fn invalid(yaml: &str) -> String {
        match RuntimeDef::parse(yaml, "test") {
            Err(RuntimeError::Invalid { problem, .. }) => problem,
            other => panic!("expected Invalid, got {other:?}"),
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
        for v in registry.list() {
            // Every pinned package is the npm tarball of that very version.
            assert_eq!(v.package.version, v.version.to_string());
            assert!(v.package.url.ends_with(&format!("-{}.tgz", v.version)), "{}", v.package.url);
        }
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
        assert!(p.contains("default 9.9.9 is not among"), "{p}");
        let p = invalid(&MINIMAL.replace(r#"version: "1.45.0""#, r#"version: "1.4.5""#));
        assert!(p.contains("listed twice"), "{p}");
        let p = invalid(&MINIMAL.replace(r#""{entry}""#, r#""main.js""#));
        assert!(p.contains("{entry}"), "{p}");
        let p = invalid(&MINIMAL.replace("https://example.invalid/demo-2", "http://example.invalid/demo-2"));
        assert!(p.contains("https://"), "{p}");
        let p = invalid(&MINIMAL.replace("/usr/local/bin/demo", "demo"));
        assert!(p.contains("absolute"), "{p}");
        let p = invalid(&MINIMAL.replace("entryExtensions: [js]", "entryExtensions: [.js]"));
        assert!(p.contains("extension"), "{p}");
        let p = invalid(&MINIMAL.replace("versions:", "env: { PATH: /bin }\nversions:"));
        assert!(p.contains("set by ignite"), "{p}");
        let p = invalid(&MINIMAL.replace("name: demo\n", "name: Demo\n"));
        assert!(p.contains("lower-case"), "{p}");
    }

    #[test]
    fn parse_rejects_bad_fields() {
        let err = |yaml: &str| match RuntimeDef::parse(yaml, "test") {
            Err(RuntimeError::Parse { source, .. }) => source.to_string(),
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
        let err = registry.add(def, builtin_recipe("bun").expect("recipe"), "again").expect_err("duplicate");
        assert!(err.to_string().contains("test and again"), "{err}");
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
    fn recipe_digest_changes_with_the_script() {
        let a = builtin_recipe("bun").expect("recipe");
        let mut b = a.clone();
        b.script = Cow::Owned(format!("{}\n# changed\n", a.script));
        assert_ne!(a.digest(), b.digest());
        assert!(a.digest().starts_with("sha256:"));
    }
}
