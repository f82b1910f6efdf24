//! Every built-in runtime's bundle is reproducible: rebuilt from the same (already downloaded)
//! package in a scratch cache, it gets exactly the digest the main cache recorded. Needs root
//! (the recipes chroot for their smoke test); a bundle not pulled yet (`.ci/run` pulls them) is
//! built first.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn main_cache() -> PathBuf {
    std::env::var_os("IGNITE_CACHE_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib/ignite"))
}

/// The default version's entry of `runtime list --json` for `name`, from the given cache.
fn listed(cache: &Path, name: &str) -> serde_json::Value {
    let out = std::process::Command::new(ignite_bin())
        .args(["runtime", "list", "--json"])
        .env("IGNITE_CACHE_DIR", cache)
        .output()
        .expect("spawn ignite");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("runtime list --json");
    let rt = list["runtimes"].as_array().unwrap().iter().find(|r| r["name"] == name).expect("runtime listed").clone();
    rt["versions"].as_array().unwrap().iter().find(|v| v["default"] == true).expect("default version").clone()
}

/// Hard-links (or copies) every file below `from` to the same place below `to`.
fn link_files(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).expect("packages dir") {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            link_files(&entry.path(), &dest);
        } else if std::fs::hard_link(entry.path(), &dest).is_err() {
            std::fs::copy(entry.path(), &dest).expect("copy package");
        }
    }
}

fn rebuilds_to_the_recorded_digest(name: &str) {
    if !require_sandbox() {
        return;
    }
    let cache = main_cache();
    // Present already when .ci/run pulled it; otherwise built now, as a first run would.
    let pull = std::process::Command::new(ignite_bin())
        .args(["runtime", "pull", name])
        .env("IGNITE_CACHE_DIR", &cache)
        .output()
        .expect("spawn ignite");
    assert!(pull.status.success(), "ignite runtime pull {name}: {}", stderr_of(&pull));
    let recorded = listed(&cache, name);
    assert_eq!(recorded["present"], true, "{recorded}");
    let digest = recorded["bundle"]["digest"].as_str().expect("digest").to_string();

    // A scratch cache that shares nothing with the main one but the verified package files
    // (the runtime's, and the Debian packages of the build environment) and the unpacked build
    // environment itself, which only the recipe reads.
    let scratch = tempfile::Builder::new().prefix("ignite-rebuild-").tempdir().expect("scratch");
    link_files(&cache.join("packages"), &scratch.path().join("packages"));
    std::os::unix::fs::symlink(cache.join("builders"), scratch.path().join("builders")).expect("link builders");
    let out = std::process::Command::new(ignite_bin())
        .args(["runtime", "pull", name])
        .env("IGNITE_CACHE_DIR", scratch.path())
        .output()
        .expect("spawn ignite");
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("build "), "the bundle was not rebuilt: {stderr}");
    assert!(!stderr.contains("download"), "the package was downloaded again: {stderr}");
    let rebuilt = listed(scratch.path(), name);
    assert_eq!(rebuilt["bundle"]["digest"], digest.as_str(), "{name}: a second build gave a different bundle");
}

#[test]
fn bun_bundle_is_reproducible() {
    rebuilds_to_the_recorded_digest("bun");
}

#[test]
fn node_bundle_is_reproducible() {
    rebuilds_to_the_recorded_digest("node");
}

#[test]
fn deno_bundle_is_reproducible() {
    rebuilds_to_the_recorded_digest("deno");
}

#[test]
fn quickjs_bundle_is_reproducible() {
    rebuilds_to_the_recorded_digest("quickjs");
}
