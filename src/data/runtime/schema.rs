//! The runtime.yaml schema: the types a definition deserialises into (packages pinned by
//! integrity, versions, `policyArgs`, TypeScript handling), and the validation of what the
//! types cannot check, with errors that name the field.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path};
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::RuntimeError;
use super::version::{Version, join_versions};

/// Accepted `baseMemoryMb` (the same bounds as a service's memoryMb, and at least 1).
const BASE_MEMORY_MB_RANGE: (u32, u32) = (1, 65_536);

/// Variables that ignite itself sets in every container; a definition may not override them.
const RESERVED_ENV: &[&str] = &["HOME", "PATH"];

/// A Subresource Integrity value: `sha512-<base64 of 64 bytes>` as npm publishes it, or
/// `sha256-<base64 of 32 bytes>` (the hash Debian's archive index lists for its packages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    Sha512([u8; 64]),
    Sha256([u8; 32]),
}

impl Integrity {
    /// The integrity string of a SHA-512 digest.
    pub fn from_sha512(sha512: [u8; 64]) -> Self {
        Integrity::Sha512(sha512)
    }

    /// The integrity string of a SHA-256 digest.
    pub fn from_sha256(sha256: [u8; 32]) -> Self {
        Integrity::Sha256(sha256)
    }

    /// The expected digest bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Integrity::Sha512(d) => d,
            Integrity::Sha256(d) => d,
        }
    }
}

impl fmt::Display for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithm = match self {
            Integrity::Sha512(_) => "sha512",
            Integrity::Sha256(_) => "sha256",
        };
        write!(f, "{algorithm}-{}", base64::engine::general_purpose::STANDARD.encode(self.bytes()))
    }
}

impl FromStr for Integrity {
    type Err = String;

    /// Runtime definitions pin npm packages, which npm hashes with SHA-512: only that form is
    /// accepted here (the SHA-256 form comes from the build environment's own pins).
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
        Ok(Integrity::Sha512(sha512))
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

/// The placeholder in `command` that becomes the entry's path inside the container.
pub const ENTRY_PLACEHOLDER: &str = "{entry}";

impl RuntimeDef {
    /// Parses and validates one definition; `origin` (a path) names it in errors.
    pub fn parse(yaml: &str, origin: &str) -> Result<RuntimeDef, RuntimeError> {
        let de = serde_yaml_ng::Deserializer::from_str(yaml);
        let def: RuntimeDef = serde_path_to_error::deserialize(de)
            .map_err(|err| RuntimeError::Parse { origin: origin.to_string(), message: parse_message(err) })?;
        def.validated(origin)
    }

    /// [`parse`](Self::parse) for a built-in definition in its JSON form (see
    /// `BUILTIN_DEFINITIONS_JSON` in the registry), with the same validation.
    pub(super) fn parse_builtin_json(json: &str, origin: &str) -> Result<RuntimeDef, RuntimeError> {
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
}

pub(super) fn is_name(s: &str) -> bool {
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
pub(super) fn is_script_path(recipe: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::data::runtime::fixtures::MINIMAL;

    fn invalid(yaml: &str) -> String {
        match RuntimeDef::parse(yaml, "test") {
            Err(RuntimeError::Invalid { field, problem, .. }) => format!("{field}: {problem}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
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
        let bytes: [u8; 64] = integrity.bytes().try_into().expect("64 bytes");
        assert_eq!(Integrity::from_sha512(bytes), integrity);
        // The SHA-256 form is only built from a build environment's pins, never parsed.
        assert!("sha256-AAAA".parse::<Integrity>().is_err());
        assert!(Integrity::from_sha256([7u8; 32]).to_string().starts_with("sha256-"));
    }
}
