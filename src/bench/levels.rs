//! The isolation levels `ignite bench` compares, and the only place the reduced ones exist:
//! each is the spec [`Runner::prepare`](crate::engine::runner::Runner::prepare) produced for a real run
//! with pieces taken away (see [`super::reduced`], which runs them). Nothing
//! outside this module (no flag, no setting, no API field) can ask for a reduced spec, and
//! these specs never pass through `spec::validate`: they are benchmark instruments that run
//! ignite's own hello program, never a user's code.

use std::fmt;
use std::str::FromStr;

use oci_spec::runtime::Spec;
use serde::Serialize;

use crate::sandbox::spawn_guard::{ALLOW_EXEC_FLAG, SPAWN_FLAG, SpawnRule};

/// How much of ignite's sandbox a benchmark run gets, from nothing to everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The runtime binary from the unpacked rootfs, run directly on the host.
    Bare,
    /// OCI container: namespaces, read-only root, per-run uid, no capabilities,
    /// no_new_privs; no memory/CPU/pids limits, no seccomp, no spawn guard.
    Namespaces,
    /// + memory, CPU and pids limits.
    Cgroups,
    /// + the seccomp profile and the entrypoint's spawn guard: exactly what `ignite run` does.
    Seccomp,
    /// + audit mode (`ignite run --audit`): notified syscalls, the listener beside the run.
    Audit,
}

impl Level {
    pub const ALL: [Level; 5] = [Level::Bare, Level::Namespaces, Level::Cgroups, Level::Seccomp, Level::Audit];

    /// Everything ignite's sandbox does: a real run's spec, run through the engine's façade.
    pub fn is_full(self) -> bool {
        matches!(self, Level::Seccomp | Level::Audit)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Bare => "bare",
            Level::Namespaces => "namespaces",
            Level::Cgroups => "cgroups",
            Level::Seccomp => "seccomp",
            Level::Audit => "audit",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Level, String> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| format!("unknown level {s:?}; expected one of: bare, namespaces, cgroups, seccomp, audit"))
    }
}

/// The spec for `level`, from the full spec of a run (prepared without audit for every level
/// but `audit`). `Bare` has no spec; it is returned unchanged and never used.
pub(super) fn reduce(mut spec: Spec, level: Level) -> Spec {
    if matches!(level, Level::Seccomp | Level::Audit | Level::Bare) {
        return spec;
    }
    if let Some(linux) = spec.linux_mut() {
        linux.set_seccomp(None);
        if level == Level::Namespaces
            && let Some(res) = linux.resources_mut()
        {
            // The device rule stays: it is access control, not a limit.
            res.set_memory(None);
            res.set_cpu(None);
            res.set_pids(None);
        }
    }
    if let Some(process) = spec.process_mut()
        && let Some(args) = process.args().clone()
    {
        process.set_args(Some(spawn_any(&args)));
    }
    spec
}

/// The entrypoint's arguments with its spawn rule replaced by `any` (no filter stacked).
fn spawn_any(args: &[String]) -> Vec<String> {
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let mut out = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < end {
        if args[i] == SPAWN_FLAG || args[i] == ALLOW_EXEC_FLAG {
            i += 2;
        } else {
            out.push(args[i].clone());
            i += 1;
        }
    }
    out.extend(SpawnRule::Any.to_args());
    out.extend(args[end..].iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder, LinuxSeccompBuilder, ProcessBuilder,
    };

    fn full() -> Spec {
        let mut spec = Spec::default();
        let resources = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(1i64 << 27).build().unwrap())
            .pids(LinuxPidsBuilder::default().limit(128i64).build().unwrap())
            .build()
            .unwrap();
        spec.set_linux(Some(
            LinuxBuilder::default()
                .resources(resources)
                .seccomp(LinuxSeccompBuilder::default().build().unwrap())
                .build()
                .unwrap(),
        ));
        let args: Vec<String> = [
            "/.ignite/init",
            "--kill-after-ms",
            "5",
            "--spawn",
            "commands",
            "--allow-exec",
            "/bin/x",
            "--",
            "bun",
            "--spawn",
        ]
        .map(String::from)
        .to_vec();
        spec.set_process(Some(ProcessBuilder::default().args(args).build().unwrap()));
        spec
    }

    fn args(s: &Spec) -> Vec<String> {
        s.process().as_ref().unwrap().args().clone().unwrap()
    }

    #[test]
    fn full_levels_are_the_spec_itself() {
        assert_eq!(reduce(full(), Level::Seccomp), full());
        assert_eq!(reduce(full(), Level::Audit), full());
    }

    #[test]
    fn cgroups_level_drops_seccomp_and_the_spawn_guard_only() {
        let s = reduce(full(), Level::Cgroups);
        let linux = s.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none());
        let res = linux.resources().as_ref().unwrap();
        assert!(res.memory().is_some() && res.pids().is_some());
        // The program's own arguments after `--` are untouched, even one that looks like a flag.
        assert_eq!(args(&s), ["/.ignite/init", "--kill-after-ms", "5", "--spawn", "any", "--", "bun", "--spawn"]);
    }

    #[test]
    fn namespaces_level_drops_the_limits_too() {
        let s = reduce(full(), Level::Namespaces);
        let linux = s.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none());
        let res = linux.resources().as_ref().unwrap();
        assert!(res.memory().is_none() && res.pids().is_none() && res.cpu().is_none());
        assert!(args(&s).contains(&"any".to_string()));
    }

    #[test]
    fn levels_parse_by_name() {
        for l in Level::ALL {
            assert_eq!(l.as_str().parse::<Level>().unwrap(), l);
        }
        assert!("full".parse::<Level>().unwrap_err().contains("bare, namespaces"));
    }
}
