//! npm dependencies: what a service's `package.json` (and lockfile) asks for, the cache key
//! that names the result, and the read-only `node_modules` tree a run mounts at `/node_modules`.
//!
//! - [`plan`] (this file): reads package.json and the lockfile, decides whether anything is
//!   installed, and computes the key;
//! - [`cache`]: `<cache>/deps/sha256-<key>/node_modules`, locks, leases held by runs, LRU prune;
//! - [`specs`]: which dependency specs are installed (registry packages only);
//! - [`tree`]: copies what an install produced into a root-owned, normalised tree;
//! - [`offline`]: one key's tree in and out of an offline archive ([`crate::store::archive`]);
//! - [`install`](crate::engine::install): the install step itself, in its own sandbox with a user-mode network
//!   ([`crate::sandbox::netns`]), torn down on every path.

pub mod cache;
pub mod offline;
pub mod specs;
pub mod tree;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::data::runtime::{Registry, ResolvedRuntime, RuntimeError};
use crate::data::service::Service;
use crate::fsutil::svcdir::{self, ReadError, Rule};

pub use cache::{DepsCache, Lease};

/// The runtime whose package manager installs dependencies (`bun install`): the default
/// version of the built-in Bun, whichever runtime the service itself runs on.
pub const INSTALLER: &str = "bun";
/// Where packages come from. Fixed: a service's `.npmrc` or `bunfig.toml` is not read.
pub const REGISTRY: &str = "https://registry.npmjs.org/";
/// Lockfiles the installer understands, in the order it prefers them; only the first one
/// present is used (and copied into the install sandbox).
pub const LOCKFILES: &[&str] = &["bun.lock", "bun.lockb", "package-lock.json", "yarn.lock", "pnpm-lock.yaml"];
pub const MANIFEST: &str = "package.json";
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;
const MAX_LOCKFILE_BYTES: u64 = 64 * 1024 * 1024;
/// Version of the key derivation and of the install's settings (flags, layout). Bump it
/// whenever a change would make an existing cached tree differ from a fresh install.
const KEY_VERSION: &str = "ignite-deps/1";

#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error("failed to read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("{service}: the dependency installer {spec:?} is not available: {source}")]
    Installer { service: String, spec: String, source: Box<RuntimeError> },
    #[error(
        "{path}: field `service.install.scripts` has no effect: the service has its own node_modules/, which ignite uses as it is and never installs into; remove node_modules/ to let ignite install package.json, or remove the field"
    )]
    ScriptsWithVendored { path: PathBuf },
    /// A file of the service directory that may not be read (a link, a pipe, too large).
    #[error(transparent)]
    File(#[from] ReadError),
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
}

/// Which `node_modules` a run of a service sees.
#[derive(Debug, Clone)]
pub enum Modules {
    /// No package.json, or one without (production) dependencies: nothing is installed or mounted.
    None,
    /// The service directory has its own `node_modules/`: it is used as it is, inside `/app`
    /// (ignite installs nothing, and never writes into the service directory).
    Vendored(PathBuf),
    /// Installed by ignite into its cache and mounted read-only at `/node_modules`.
    Install(Box<Plan>),
}

/// The lockfile a service ships, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockfile {
    /// One of [`LOCKFILES`].
    pub name: &'static str,
    pub bytes: Vec<u8>,
}

/// Everything the install step needs, read once from the service directory (so the install
/// and the key see the same bytes).
#[derive(Debug, Clone)]
pub struct Plan {
    pub service: String,
    /// The service directory (for messages only: the install never reads it again).
    pub dir: PathBuf,
    pub manifest: Vec<u8>,
    pub lockfile: Option<Lockfile>,
    /// Number of packages listed in `dependencies` and `optionalDependencies`.
    pub direct: usize,
    /// `service.install.scripts`.
    pub scripts: bool,
    pub installer: ResolvedRuntime,
    /// Hex sha256 over everything that determines the installed tree (see [`cache_key`]).
    pub key: String,
}

/// Decides what a service's runs see as `node_modules`, reading package.json and the lockfile.
pub fn plan(svc: &Service, registry: &Registry) -> Result<Modules, DepsError> {
    let vendored = svc.dir.join("node_modules");
    // Whatever it is (a link too): it is the service's own and is used as it is inside the
    // sandbox, where a link resolves against the sandbox's filesystem. Host code never looks
    // through it (see `check_dependencies` in the engine) and never mounts it.
    if svcdir::kind_of(&svc.dir, "node_modules")?.is_some() {
        if svc.install_scripts {
            return Err(DepsError::ScriptsWithVendored { path: svc.dir.join(crate::data::service::SERVICE_FILE) });
        }
        return Ok(Modules::Vendored(vendored));
    }
    let manifest_path = svc.dir.join(MANIFEST);
    let Some(manifest) = read_regular(&svc.dir, MANIFEST, MAX_MANIFEST_BYTES)? else {
        return Ok(Modules::None);
    };
    let direct = count_dependencies(&manifest, &manifest_path)?;
    if direct == 0 {
        return Ok(Modules::None);
    }
    let mut lockfile = None;
    for name in LOCKFILES {
        if let Some(bytes) = read_regular(&svc.dir, name, MAX_LOCKFILE_BYTES)? {
            lockfile = Some(Lockfile { name, bytes });
            break;
        }
    }
    let installer = registry.resolve(INSTALLER).map_err(|source| DepsError::Installer {
        service: svc.name.clone(),
        spec: INSTALLER.to_string(),
        source: Box::new(source),
    })?;
    let key = cache_key(&installer.key(), svc.install_scripts, &manifest, lockfile.as_ref());
    Ok(Modules::Install(Box::new(Plan {
        service: svc.name.clone(),
        dir: svc.dir.clone(),
        manifest,
        lockfile,
        direct,
        scripts: svc.install_scripts,
        installer,
        key,
    })))
}

/// The cache key: everything that determines the installed tree — the exact bytes of
/// package.json and of the lockfile (and which lockfile it is), the installer and its version,
/// the platform, whether scripts ran, the registry, and the install's own settings.
pub fn cache_key(installer: &str, scripts: bool, manifest: &[u8], lockfile: Option<&Lockfile>) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        // Length-prefixed, so that no two different inputs hash the same sequence of bytes.
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(KEY_VERSION.as_bytes());
    field(installer.as_bytes());
    field(format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH).as_bytes());
    field(if scripts { b"scripts" } else { b"no-scripts" });
    field(REGISTRY.as_bytes());
    field(manifest);
    match lockfile {
        Some(l) => {
            field(l.name.as_bytes());
            field(&l.bytes);
        }
        None => field(b""),
    }
    hex::encode(h.finalize())
}

/// Reads a file of the service directory: a regular file, never through a symlink (it would
/// be copied into the install sandbox, so it must not reach outside the directory), at most
/// `max` bytes. `None` if it does not exist.
/// `dir/name`, read the safe way ([`svcdir`]); `None` when it does not exist.
fn read_regular(dir: &Path, name: &str, max: u64) -> Result<Option<Vec<u8>>, DepsError> {
    Ok(svcdir::read(dir, name, Rule { what: "npm manifest or lockfile", max_bytes: max })?)
}

/// The number of packages a service's package.json declares in `dependencies` and
/// `optionalDependencies` (`None` without a package.json), whatever their specs: for a service
/// that brings its own node_modules/, which ignite uses as it is (preflight counts them).
pub fn declared_dependencies(dir: &Path) -> Result<Option<usize>, DepsError> {
    let path = dir.join(MANIFEST);
    let Some(manifest) = read_regular(dir, MANIFEST, MAX_MANIFEST_BYTES)? else {
        return Ok(None);
    };
    let bad = |reason: String| DepsError::Manifest { path: path.clone(), reason };
    let value: serde_json::Value = serde_json::from_slice(&manifest)
        .map_err(|e| bad(format!("is not valid JSON: {e} (line {}, column {})", e.line(), e.column())))?;
    let obj = value.as_object().ok_or_else(|| bad("must be a JSON object".into()))?;
    let mut count = 0;
    for field in ["dependencies", "optionalDependencies"] {
        if let Some(deps) = obj.get(field) {
            count += deps.as_object().ok_or_else(|| bad(format!("field `{field}` must be an object")))?.len();
        }
    }
    Ok(Some(count))
}

/// Validates what ignite relies on in package.json and counts the packages to install.
/// devDependencies are not installed (production install), so they do not count.
fn count_dependencies(manifest: &[u8], path: &Path) -> Result<usize, DepsError> {
    let bad = |reason: String| DepsError::Manifest { path: path.to_path_buf(), reason };
    let value: serde_json::Value = serde_json::from_slice(manifest)
        .map_err(|e| bad(format!("is not valid JSON: {e} (line {}, column {})", e.line(), e.column())))?;
    let obj = value.as_object().ok_or_else(|| bad("must be a JSON object".into()))?;
    if obj.contains_key("workspaces") {
        return Err(bad(
            "field `workspaces`: workspaces are not supported; ignite installs a single package.json from the npm registry"
                .into(),
        ));
    }
    let mut count = 0;
    for field in ["dependencies", "optionalDependencies"] {
        let Some(deps) = obj.get(field) else { continue };
        let deps = deps.as_object().ok_or_else(|| bad(format!("field `{field}` must be an object")))?;
        for (name, spec) in deps {
            let spec = spec.as_str().ok_or_else(|| bad(format!("field `{field}.{name}` must be a version string")))?;
            if let Err(what) = specs::classify(spec) {
                return Err(bad(format!(
                    "field `{field}.{name}`: {spec:?} is {}; ignite installs dependencies only from the npm registry (a version, a range, a dist-tag, or an npm: alias of a registry package), never from local paths, tarballs, git or URLs; publish the package to the registry or vendor it in node_modules/",
                    what.describe()
                )));
            }
        }
        count += deps.len();
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn service(dir: &Path, scripts: bool) -> Service {
        fs::write(dir.join("index.ts"), "").unwrap();
        let mut svc = crate::data::service::load(
            dir,
            false,
            &crate::data::service::Overrides::default(),
            &crate::data::service::PassEnv::none(),
        )
        .unwrap();
        svc.install_scripts = scripts;
        svc
    }

    fn registry() -> Registry {
        Registry::builtin().unwrap()
    }

    fn plan_of(dir: &Path) -> Plan {
        match plan(&service(dir, false), &registry()).unwrap() {
            Modules::Install(p) => *p,
            other => panic!("expected an install plan, got {other:?}"),
        }
    }

    #[test]
    fn nothing_to_install_without_production_dependencies() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(plan(&service(d.path(), false), &registry()).unwrap(), Modules::None));
        fs::write(d.path().join("package.json"), r#"{"name":"x","devDependencies":{"typescript":"5"}}"#).unwrap();
        assert!(matches!(plan(&service(d.path(), false), &registry()).unwrap(), Modules::None));
    }

    #[test]
    fn dependencies_make_a_plan_with_the_preferred_lockfile() {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("package.json"),
            r#"{"dependencies":{"lodash":"4.17.21"},"optionalDependencies":{"x":"1"},"devDependencies":{"y":"1"}}"#,
        )
        .unwrap();
        let p = plan_of(d.path());
        assert_eq!(p.direct, 2);
        assert_eq!(p.lockfile, None);
        assert_eq!(p.installer.name, INSTALLER);
        fs::write(d.path().join("package-lock.json"), "{}").unwrap();
        assert_eq!(plan_of(d.path()).lockfile.unwrap().name, "package-lock.json");
        fs::write(d.path().join("bun.lock"), "{}").unwrap();
        assert_eq!(plan_of(d.path()).lockfile.unwrap().name, "bun.lock");
    }

    #[test]
    fn own_node_modules_is_used_as_is() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("package.json"), r#"{"dependencies":{"lodash":"4.17.21"}}"#).unwrap();
        fs::create_dir(d.path().join("node_modules")).unwrap();
        assert!(matches!(plan(&service(d.path(), false), &registry()).unwrap(), Modules::Vendored(_)));
        // Asking for scripts then is a knob without effect: refused, naming the field.
        let e = plan(&service(d.path(), true), &registry()).unwrap_err().to_string();
        assert!(e.contains("service.install.scripts") && e.contains("node_modules"), "{e}");
    }

    #[test]
    fn declared_dependencies_count_whatever_the_specs() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(declared_dependencies(d.path()).unwrap(), None);
        fs::write(
            d.path().join("package.json"),
            r#"{"dependencies":{"a":"1","mine":"file:../mine"},"optionalDependencies":{"b":"1"},"devDependencies":{"c":"1"}}"#,
        )
        .unwrap();
        assert_eq!(declared_dependencies(d.path()).unwrap(), Some(3));
        fs::write(d.path().join("package.json"), r#"{"dependencies":[]}"#).unwrap();
        let e = declared_dependencies(d.path()).unwrap_err().to_string();
        assert!(e.contains("package.json") && e.contains("`dependencies` must be an object"), "{e}");
    }

    #[test]
    fn key_covers_every_input() {
        let lock = |name, b: &str| Some(Lockfile { name, bytes: b.as_bytes().to_vec() });
        let base = cache_key("bun@1.4.5", false, b"{}", lock("bun.lock", "a").as_ref());
        let variants = [
            cache_key("bun@1.4.4", false, b"{}", lock("bun.lock", "a").as_ref()),
            cache_key("bun@1.4.5", true, b"{}", lock("bun.lock", "a").as_ref()),
            cache_key("bun@1.4.5", false, b"{ }", lock("bun.lock", "a").as_ref()),
            cache_key("bun@1.4.5", false, b"{}", lock("bun.lock", "b").as_ref()),
            cache_key("bun@1.4.5", false, b"{}", lock("yarn.lock", "a").as_ref()),
            cache_key("bun@1.4.5", false, b"{}", None),
            // Moving bytes between fields changes the key too.
            cache_key("bun@1.4.5", false, b"{}a", lock("bun.lock", "").as_ref()),
        ];
        for v in &variants {
            assert_ne!(&base, v);
        }
        assert_eq!(base, cache_key("bun@1.4.5", false, b"{}", lock("bun.lock", "a").as_ref()));
        assert_eq!(base.len(), 64);
    }

    #[test]
    fn bad_manifests_are_named_precisely() {
        let d = tempfile::tempdir().unwrap();
        let err = |json: &str| {
            fs::write(d.path().join("package.json"), json).unwrap();
            plan(&service(d.path(), false), &registry()).unwrap_err().to_string()
        };
        let e = err("{\n  \"dependencies\": {\"a\": \"1\",}\n}");
        assert!(e.contains("package.json") && e.contains("line 2"), "{e}");
        let e = err(r#"{"dependencies":["lodash"]}"#);
        assert!(e.contains("`dependencies` must be an object"), "{e}");
        let e = err(r#"{"dependencies":{"lodash":4}}"#);
        assert!(e.contains("`dependencies.lodash`"), "{e}");
        let e = err(r#"{"dependencies":{"mine":"file:../mine"}}"#);
        assert!(e.contains("`dependencies.mine`") && e.contains("local path"), "{e}");
        let e = err(r#"{"workspaces":["a"],"dependencies":{"x":"1"}}"#);
        assert!(e.contains("workspaces"), "{e}");
    }

    #[test]
    fn manifest_must_not_be_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret.json"), r#"{"dependencies":{"a":"1"}}"#).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.json"), d.path().join("package.json")).unwrap();
        let e = plan(&service(d.path(), false), &registry()).unwrap_err().to_string();
        assert!(e.contains("package.json") && e.contains("symbolic link") && !e.contains("secret"), "{e}");
        fs::remove_file(d.path().join("package.json")).unwrap();
        fs::write(d.path().join("package.json"), r#"{"dependencies":{"a":"1"}}"#).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.json"), d.path().join("bun.lock")).unwrap();
        let e = plan(&service(d.path(), false), &registry()).unwrap_err().to_string();
        assert!(e.contains("bun.lock") && e.contains("symbolic link"), "{e}");
    }
}
