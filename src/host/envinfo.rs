//! What `ignite env` reports: the effective configuration of this ignite (directories, OCI
//! runtime and its version, entrypoint, custom runtimes directories, CA file, each with where
//! its value came from) and, for a service directory, the runtime it resolves to, whether its
//! bundle is present and whether it still matches its lock file. It only looks: nothing is
//! fetched, built or started, and a problem is reported as a value rather than an error.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::data::runtime::{Registry, TypeScript};
use crate::data::service::{self, SERVICE_FILE};
use crate::host::doctor::probe;
use crate::store::bundle::BundleStore;
use crate::store::lock::{self, BundleCheck, Drift, LockError};

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env,
    /// The per-user configuration directory.
    Config,
    /// A file of the host found in its usual place.
    System,
    /// Ignite's built-in default.
    Default,
    /// Not set at all.
    Unset,
}

impl Source {
    fn say(self, what: &str) -> String {
        match self {
            Source::Flag => format!("from {what}"),
            Source::Env => format!("from ${what}"),
            Source::Config => "per-user config directory".into(),
            Source::System => "the host's".into(),
            Source::Default => "default".into(),
            Source::Unset => "not set".into(),
        }
    }
}

/// What the edge resolved, with where each value came from; [`gather`] probes the rest.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub state_dir: (PathBuf, Source),
    pub cache_dir: (PathBuf, Source),
    /// As given (`runc` or a path).
    pub oci_runtime: (String, Source),
    /// The binary it names, or why it cannot be used.
    pub oci_binary: Result<PathBuf, String>,
    /// The sandbox entrypoint, or why it is missing.
    pub init_binary: Result<PathBuf, String>,
    pub runtimes_dirs: (Vec<PathBuf>, Source),
    pub ca_file: (Option<PathBuf>, Source),
    /// A service directory to describe as well.
    pub service: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvInfo {
    /// This ignite's version.
    pub version: &'static str,
    /// The running binary.
    pub binary: Option<PathBuf>,
    pub init: Located,
    pub state_dir: DirSetting,
    pub cache_dir: DirSetting,
    pub oci_runtime: OciInfo,
    pub runtimes_dirs: RuntimesDirs,
    pub ca_file: CaFile,
    /// `IGNITE_LOG`, when set.
    pub log: Option<String>,
    /// Every runtime known, `name@default-version`, with its bundle's presence.
    pub runtimes: Vec<RuntimeInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceEnv>,
}

/// A file ignite needs: where it is, or why not.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Located {
    pub path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirSetting {
    pub path: PathBuf,
    pub from: Source,
    pub exists: bool,
    /// Space available to ignite on its filesystem, when it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciInfo {
    /// As configured.
    pub name: String,
    pub from: Source,
    pub path: Option<PathBuf>,
    /// The first line `<path> --version` prints, e.g. `runc version 1.1.5`.
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimesDirs {
    pub dirs: Vec<PathBuf>,
    pub from: Source,
    /// A broken definition in them (the built-in runtimes are listed regardless).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaFile {
    pub path: Option<PathBuf>,
    pub from: Source,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeInfo {
    pub name: String,
    pub default_version: String,
    /// Whether the default version's bundle is unpacked in the cache.
    pub present: bool,
}

/// A service directory as a run would see it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEnv {
    pub dir: PathBuf,
    pub name: Option<String>,
    /// What it asks for (service.yaml's `runtime:` or the default).
    pub runtime_spec: Option<String>,
    /// What that resolves to, `name@version`.
    pub runtime: Option<String>,
    pub typescript: Option<TypeScript>,
    /// The bundle's digest when it is present.
    pub bundle: Option<String>,
    pub lock: LockState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The service against its `ignite.lock`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum LockState {
    /// No lock file.
    None,
    /// Matches; `bundleChecked` is false when the bundle is not pulled (env fetches nothing).
    UpToDate {
        bundle_checked: bool,
    },
    Drifted {
        drift: Vec<Drift>,
    },
    /// Unreadable or malformed, or the service itself could not be resolved.
    Invalid {
        problem: String,
    },
}

/// Probes what `inputs` name and describes the service, if one was given.
pub fn gather(inputs: &Inputs) -> EnvInfo {
    let (registry, registry_problem) = match Registry::load(&inputs.runtimes_dirs.0) {
        Ok(r) => (r, None),
        Err(e) => (Registry::builtin().unwrap_or_else(|_| Registry::empty()), Some(e.to_string())),
    };
    let store = BundleStore::new(inputs.cache_dir.0.clone());
    let runtimes = registry
        .definitions()
        .filter_map(|(def, _)| registry.resolve(&def.name).ok())
        .map(|rt| RuntimeInfo {
            present: store.present(&rt).is_some(),
            name: rt.name,
            default_version: rt.version.to_string(),
        })
        .collect();
    let (oci_path, oci_version, oci_problem) = match &inputs.oci_binary {
        Ok(path) => match probe::oci_version(path) {
            Ok(v) => (Some(path.clone()), Some(v.line), None),
            Err(e) => (Some(path.clone()), None, Some(e.to_string())),
        },
        Err(problem) => (None, None, Some(problem.clone())),
    };
    EnvInfo {
        version: env!("CARGO_PKG_VERSION"),
        binary: std::env::current_exe().ok(),
        init: match &inputs.init_binary {
            Ok(p) => Located { path: Some(p.clone()), problem: None },
            Err(problem) => Located { path: None, problem: Some(problem.clone()) },
        },
        state_dir: dir_setting(&inputs.state_dir),
        cache_dir: dir_setting(&inputs.cache_dir),
        oci_runtime: OciInfo {
            name: inputs.oci_runtime.0.clone(),
            from: inputs.oci_runtime.1,
            path: oci_path,
            version: oci_version,
            problem: oci_problem,
        },
        runtimes_dirs: RuntimesDirs {
            dirs: inputs.runtimes_dirs.0.clone(),
            from: inputs.runtimes_dirs.1,
            problem: registry_problem,
        },
        ca_file: CaFile { path: inputs.ca_file.0.clone(), from: inputs.ca_file.1 },
        log: std::env::var("IGNITE_LOG").ok(),
        runtimes,
        service: inputs.service.as_deref().map(|dir| describe_service(dir, &registry, &store)),
    }
}

fn dir_setting((path, from): &(PathBuf, Source)) -> DirSetting {
    let exists = path.is_dir();
    DirSetting { path: path.clone(), from: *from, exists, free_bytes: if exists { free_bytes(path) } else { None } }
}

fn free_bytes(path: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    Some(st.blocks_available() as u64 * st.fragment_size() as u64)
}

fn describe_service(dir: &Path, registry: &Registry, store: &BundleStore) -> ServiceEnv {
    let mut env = ServiceEnv {
        dir: dir.to_path_buf(),
        name: None,
        runtime_spec: None,
        runtime: None,
        typescript: None,
        bundle: None,
        lock: LockState::None,
        problem: None,
    };
    let dir = match dir.canonicalize() {
        Ok(d) if d.is_dir() => d,
        Ok(d) => {
            env.problem = Some(format!("{} is not a directory", d.display()));
            return env;
        }
        Err(e) => {
            env.problem = Some(format!("failed to open {}: {e}", dir.display()));
            return env;
        }
    };
    env.dir = dir.clone();
    // service.yaml is read as `ignite lock` reads it: no `${VAR}` is expanded, so describing a
    // service needs none of its secrets.
    let file = dir.join(SERVICE_FILE);
    env.name = match service::read_file(&dir) {
        Ok(Some(text)) => match service::parse(&text, &file) {
            Ok(raw) => raw.name,
            Err(e) => {
                env.problem = Some(e.to_string());
                return env;
            }
        },
        Ok(None) => dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        Err(e) => {
            env.problem = Some(e.to_string());
            return env;
        }
    };
    let spec = match lock::runtime_spec(&dir, None) {
        Ok(s) => s,
        Err(e) => {
            env.problem = Some(e.to_string());
            return env;
        }
    };
    env.runtime_spec = Some(spec.clone());
    let runtime = match registry.resolve(&spec) {
        Ok(rt) => rt,
        Err(e) => {
            env.problem = Some(format!("runtime {spec:?}: {e}"));
            return env;
        }
    };
    env.runtime = Some(runtime.key());
    env.typescript = Some(runtime.typescript);
    env.bundle = store.present(&runtime).map(|r| r.digest);
    env.lock = match lock::check(&dir, &runtime, store, BundleCheck::IfPresent) {
        Ok(c) if c.up_to_date => LockState::UpToDate { bundle_checked: c.bundle_checked },
        Ok(c) => LockState::Drifted { drift: c.drift },
        Err(LockError::Missing { .. }) => LockState::None,
        Err(e) => LockState::Invalid { problem: e.to_string() },
    };
    env
}

impl EnvInfo {
    /// The text `ignite env` prints for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let bin = self.binary.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default();
        let _ = writeln!(out, "ignite {}{bin}", self.version);
        let row = |out: &mut String, key: &str, value: String| {
            let _ = writeln!(out, "{key:<15}{value}");
        };
        row(
            &mut out,
            "entrypoint",
            match (&self.init.path, &self.init.problem) {
                (Some(p), _) => p.display().to_string(),
                (None, Some(problem)) => format!("MISSING: {problem}"),
                (None, None) => "?".into(),
            },
        );
        for (key, d, what) in
            [("state dir", &self.state_dir, "IGNITE_STATE_DIR"), ("cache dir", &self.cache_dir, "IGNITE_CACHE_DIR")]
        {
            let what = if d.from == Source::Flag { format!("--{}", key.replace(' ', "-")) } else { what.to_string() };
            let free = d.free_bytes.map(|b| format!(", {:.1} GB free", b as f64 / 1e9)).unwrap_or_default();
            let exists = if d.exists { "" } else { ", does not exist yet" };
            row(&mut out, key, format!("{} ({}{exists}{free})", d.path.display(), d.from.say(&what)));
        }
        let oci = &self.oci_runtime;
        let what = if oci.from == Source::Flag { "--oci-runtime" } else { "IGNITE_OCI_RUNTIME" };
        let value = match (&oci.path, &oci.version, &oci.problem) {
            (Some(p), Some(v), _) => format!("{v} at {} ({})", p.display(), oci.from.say(what)),
            (_, _, Some(problem)) => format!("{} ({}): PROBLEM: {problem}", oci.name, oci.from.say(what)),
            _ => oci.name.clone(),
        };
        row(&mut out, "OCI runtime", value);
        let dirs = &self.runtimes_dirs;
        let value = if dirs.dirs.is_empty() {
            "none (--runtimes-dir, IGNITE_RUNTIMES_DIR or ~/.config/ignite/runtimes add some)".to_string()
        } else {
            let what = if dirs.from == Source::Flag { "--runtimes-dir" } else { "IGNITE_RUNTIMES_DIR" };
            let list: Vec<String> = dirs.dirs.iter().map(|d| d.display().to_string()).collect();
            format!("{} ({})", list.join(", "), dirs.from.say(what))
        };
        row(&mut out, "runtimes dirs", value);
        if let Some(problem) = &dirs.problem {
            row(&mut out, "", format!("PROBLEM: {problem}"));
        }
        let ca = &self.ca_file;
        let what = if ca.from == Source::Flag { "--install-ca-file" } else { "NODE_EXTRA_CA_CERTS" };
        let value = match &ca.path {
            Some(p) => format!("{} ({})", p.display(), ca.from.say(what)),
            None => "none (the installer trusts its own CA list only)".into(),
        };
        row(&mut out, "CA file", value);
        row(&mut out, "log", self.log.clone().unwrap_or_else(|| "warn (IGNITE_LOG not set)".into()));
        let runtimes: Vec<String> = self
            .runtimes
            .iter()
            .map(|r| format!("{}@{}{}", r.name, r.default_version, if r.present { "" } else { " (not pulled)" }))
            .collect();
        row(&mut out, "runtimes", runtimes.join(", "));
        if let Some(svc) = &self.service {
            out.push('\n');
            svc.render(&mut out);
        }
        out
    }
}

impl ServiceEnv {
    fn render(&self, out: &mut String) {
        let row = |out: &mut String, key: &str, value: String| {
            let _ = writeln!(out, "{key:<15}{value}");
        };
        let name = self.name.clone().unwrap_or_else(|| "?".into());
        row(out, "service", format!("{name} ({})", self.dir.display()));
        if let Some(problem) = &self.problem {
            row(out, "  problem", problem.clone());
            return;
        }
        if let (Some(spec), Some(rt)) = (&self.runtime_spec, &self.runtime) {
            let ts = self
                .typescript
                .and_then(|t| serde_json::to_value(t).ok())
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            row(out, "  runtime", format!("{spec} -> {rt} (TypeScript: {ts})"));
            row(
                out,
                "  bundle",
                match &self.bundle {
                    Some(d) => d.clone(),
                    None => format!("not pulled (`ignite runtime pull {rt}`)"),
                },
            );
        }
        let dir = self.dir.display();
        let lock = match &self.lock {
            LockState::None => format!("none (`ignite lock {dir}` writes one)"),
            LockState::UpToDate { bundle_checked: true } => "up to date".into(),
            LockState::UpToDate { bundle_checked: false } => {
                "up to date (bundle not pulled, digest not compared)".into()
            }
            LockState::Drifted { drift } => {
                let mut text = format!("drifted, {} change(s):", drift.len());
                for d in drift {
                    text.push_str(&format!("\n                 {d}"));
                }
                text
            }
            LockState::Invalid { problem } => format!("PROBLEM: {problem}"),
        };
        row(out, "  lock", lock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn inputs(dir: &Path, oci_binary: Result<PathBuf, String>) -> Inputs {
        Inputs {
            state_dir: (dir.join("state"), Source::Default),
            cache_dir: (dir.join("cache"), Source::Default),
            oci_runtime: ("runc".into(), Source::Flag),
            oci_binary,
            init_binary: Err("not built".into()),
            runtimes_dirs: (Vec::new(), Source::Unset),
            ca_file: (None, Source::Unset),
            service: None,
        }
    }

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    #[test]
    fn the_oci_runtime_version_is_the_doctors_probe_and_a_failure_is_a_value() {
        let t = tempfile::tempdir().expect("tempdir");
        let runc = script(t.path(), "runc", "echo; echo 'runc version 1.1.5+ds1'; echo 'commit: v1.1.5'");
        let oci = gather(&inputs(t.path(), Ok(runc.clone()))).oci_runtime;
        assert_eq!(oci.version.as_deref(), Some("runc version 1.1.5+ds1"), "{oci:?}");
        assert_eq!((oci.path, oci.problem), (Some(runc), None));

        let broken = script(t.path(), "broken", "echo 'runc: cannot load libseccomp' >&2; exit 127");
        let oci = gather(&inputs(t.path(), Ok(broken))).oci_runtime;
        assert_eq!(oci.version, None);
        let problem = oci.problem.expect("a problem");
        assert!(problem.contains("--version` exited with exit status: 127"), "{problem}");

        let silent = script(t.path(), "silent", "echo 'usage: runc'");
        let problem = gather(&inputs(t.path(), Ok(silent))).oci_runtime.problem.expect("a problem");
        assert!(problem.contains("printed no version (first line: \"usage: runc\")"), "{problem}");

        let oci = gather(&inputs(t.path(), Err("runc not found in PATH".into()))).oci_runtime;
        assert_eq!((oci.path, oci.version, oci.problem), (None, None, Some("runc not found in PATH".into())));
    }
}
