//! A runtime narrowed to one exact version: its bundle key, which entries it runs, and the
//! container argv for an entry (with the `policyArgs` a policy's grants call for).

use std::collections::BTreeMap;
use std::fmt;

use super::RuntimeError;
use super::recipe::Recipe;
use super::schema::{COMMANDS_PLACEHOLDER, ENTRY_PLACEHOLDER, Package, PolicyArgs, RuntimeDef, TypeScript, VersionDef};
use super::version::Version;
use crate::data::policy::Policy;

/// Where the service directory is mounted inside the container.
pub const APP_DIR: &str = "/app";

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

impl RuntimeDef {
    /// The resolved runtime for one of this definition's versions.
    pub(super) fn resolved(&self, version: &VersionDef, recipe: &Recipe) -> ResolvedRuntime {
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

#[cfg(test)]
mod tests {
    use crate::data::runtime::Registry;
    use crate::data::runtime::fixtures::demo_registry;

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
}
