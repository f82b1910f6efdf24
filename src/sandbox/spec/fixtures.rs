//! Test fixtures shared by the spec builder's and the install step's unit tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, LinuxSeccompAction, LinuxSeccompBuilder, Spec};

use super::{Limits, RunUser, SpecInput, compose_env};
use crate::sandbox::spawn_guard::SpawnRule;

/// A run's input as the engine would make it for a small bun service.
pub fn input() -> SpecInput {
    SpecInput {
        rootfs: "/var/lib/ignite/rootfs/sha256-ab".into(),
        app_dir: "/srv/hello".into(),
        node_modules: None,
        app_node_modules: None,
        workspace: None,
        writable_root: false,
        network: None,
        init_binary: "/usr/local/bin/ignite-init".into(),
        user: RunUser {
            uid: 200_123,
            gid: 200_123,
            passwd: "/run/ignite/uids/200123.passwd".into(),
            group: "/run/ignite/uids/200123.group".into(),
        },
        argv: vec!["/usr/local/bin/bun".into(), "run".into(), "/app/index.ts".into()],
        out_dir: None,
        input_dir: Some("/run/ignite/runs/ig-1/input".into()),
        env: compose_env(&BTreeMap::new(), &BTreeMap::new(), "{}").unwrap(),
        limits: Limits::new(64, 0.5),
        hostname: "hello".into(),
        cgroups_path: "/ignite/ig-1".into(),
        kill_after_ms: 7000,
        wait_job: false,
        userns: None,
        spawn: SpawnRule::NoSpawn,
        seccomp: LinuxSeccompBuilder::default().default_action(LinuxSeccompAction::ScmpActErrno).build().unwrap(),
    }
}

/// The network namespace the spec joins, if it names one.
pub fn netns_path(spec: &Spec) -> Option<PathBuf> {
    let ns = spec.linux().as_ref().unwrap().namespaces().as_ref().unwrap();
    ns.iter().find(|n| n.typ() == LinuxNamespaceType::Network).unwrap().path().clone()
}

/// The options of the mount at `dest`, if there is one.
pub fn mount_opts(spec: &Spec, dest: &str) -> Option<Vec<String>> {
    spec.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new(dest))
        .map(|m| m.options().clone().unwrap_or_default())
}
