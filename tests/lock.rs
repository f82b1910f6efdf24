//! `ignite.lock` end to end: what `ignite lock` records, every kind of drift `ignite lock
//! --check` reports (runtime, runtime version, bundle digest, manifests, lockfiles, files,
//! symlinks), malformed lock files, and `run --locked` / `exec --locked` refusing a drifted
//! service before any sandbox starts.
//!
//! The built-in bun bundles come from the shared cache (`.ci/run` pulls bun and bun@1.3). The
//! bundle-digest test builds a throwaway custom runtime from a prebuilt rootfs tarball in a cache
//! of its own, so it can change that bundle without touching anyone else's.

mod common;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use common::*;
use serde_json::Value;
use sha2::{Digest, Sha512};

fn ignite(sb: &Sandbox) -> Command {
    let mut c = sb.cmd();
    c.env_remove("IGNITE_RUNTIMES_DIR");
    c
}

/// `ignite lock DIR ARGS`.
fn lock(sb: &Sandbox, dir: &Path, args: &[&str]) -> Output {
    ignite(sb).arg("lock").arg(dir).args(["--quiet"]).args(args).output().expect("spawn ignite")
}

/// `ignite lock DIR --check --json ARGS`: the exit code and the parsed report.
fn check(sb: &Sandbox, dir: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let out = lock(sb, dir, &[&["--check", "--json"], args].concat());
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\n{}", stdout_of(&out), stderr_of(&out)));
    (out.status.code(), v)
}

fn locks(sb: &Sandbox, dir: &Path, args: &[&str]) {
    let out = lock(sb, dir, args);
    assert_eq!(out.status.code(), Some(0), "ignite lock: {}", stderr_of(&out));
}

/// A service with one file of every kind a lock file sorts into a section of its own, plus
/// what it must leave out.
fn service(sb: &Sandbox, name: &str) -> PathBuf {
    let dir = sb.service(
        name,
        &[
            ("service.yaml", &format!("service:\n  name: {name}\n  entry: index.ts\n")),
            ("index.ts", "import { twice } from \"./lib/math.ts\";\nconsole.log(twice(21));\n"),
            ("lib/math.ts", "export const twice = (x: number): number => x * 2;\n"),
            ("package.json", "{\"name\": \"locked\", \"type\": \"module\"}\n"),
            ("bun.lock", "{\"lockfileVersion\": 1}\n"),
            ("node_modules/left-pad/index.js", "module.exports = 1;\n"),
            (".git/HEAD", "ref: refs/heads/main\n"),
        ],
    );
    symlink("lib/math.ts", dir.join("math.ts")).expect("symlink");
    dir
}

/// `runtime list --json`'s entry for `name@version`, from the shared cache.
fn listed(sb: &Sandbox, name: &str, version: Option<&str>) -> Value {
    let out = ignite(sb).args(["runtime", "list", "--json"]).output().expect("spawn ignite");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let list: Value = serde_json::from_slice(&out.stdout).expect("runtime list --json");
    let rt = list["runtimes"].as_array().unwrap().iter().find(|r| r["name"] == name).expect("listed").clone();
    rt["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| version.map_or(v["default"] == true, |want| v["version"].as_str().unwrap().starts_with(want)))
        .expect("version listed")
        .clone()
}

#[test]
fn lock_records_the_runtime_its_bundle_and_every_source_file() {
    let sb = Sandbox::new();
    let dir = service(&sb, "recorded");
    let out = lock(&sb, &dir, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["written"], true, "{v}");
    let l = &v["lock"];
    let bun = listed(&sb, "bun", None);
    assert_eq!(l["version"], 1);
    assert_eq!(l["runtime"]["name"], "bun");
    assert_eq!(l["runtime"]["version"], bun["version"]);
    assert_eq!(l["runtime"]["bundle"], bun["bundle"]["digest"], "the digest `ignite runtime list` shows");
    let keys = |section: &str| -> Vec<String> { l[section].as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys("manifests"), ["package.json"]);
    assert_eq!(keys("lockfiles"), ["bun.lock"]);
    assert_eq!(
        keys("files"),
        ["index.ts", "lib/math.ts", "service.yaml"],
        "node_modules, .git and the lock file are left out"
    );
    assert_eq!(l["symlinks"], serde_json::json!({"math.ts": "lib/math.ts"}));
    let sha = format!("sha256:{}", hex::encode(<sha2::Sha256 as Digest>::digest(b"{\"lockfileVersion\": 1}\n")));
    assert_eq!(l["lockfiles"]["bun.lock"], sha.as_str());

    // The file on disk is the documented YAML, and locking again changes nothing.
    let text = std::fs::read_to_string(dir.join("ignite.lock")).expect("ignite.lock");
    assert!(text.contains("\nversion: 1\n") && text.contains("  lib/math.ts: sha256:"), "{text}");
    let out = lock(&sb, &dir, &["--json"]);
    let again: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(again["written"], false);
    assert_eq!(std::fs::read_to_string(dir.join("ignite.lock")).unwrap(), text, "deterministic");
    let (code, v) = check(&sb, &dir, &[]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["upToDate"], true);
    assert_eq!(v["bundleChecked"], true);
    // Text mode says so too.
    let out = lock(&sb, &dir, &["--check"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout_of(&out).contains("up to date"), "{}", stdout_of(&out));
}

/// Locks a fresh copy of the service, applies `change`, and returns the drift `--check` reports
/// (asserting exit 1 when there is any, 0 when there is none).
fn drift_after(name: &str, change: impl FnOnce(&Path)) -> Vec<Value> {
    let sb = Sandbox::new();
    let dir = service(&sb, name);
    locks(&sb, &dir, &[]);
    change(&dir);
    let (code, v) = check(&sb, &dir, &[]);
    let drift = v["drift"].as_array().expect("drift").clone();
    assert_eq!(code, Some(if drift.is_empty() { 0 } else { 1 }), "{v}");
    drift
}

/// (kind, change, path) of each drift entry.
type Expected = Vec<(String, String, String)>;
/// A named change to a service directory and the drift it must cause.
type Case = (&'static str, Box<dyn FnOnce(&Path)>, Expected);

fn one(kind: &str, change: &str, path: &str) -> Expected {
    vec![(kind.into(), change.into(), path.into())]
}

fn summary(drift: &[Value]) -> Expected {
    drift
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
            (s("kind"), s("change"), s("path"))
        })
        .collect()
}

#[test]
fn every_kind_of_source_change_is_drift() {
    let w = |p: PathBuf, t: &str| std::fs::write(p, t).expect("write");
    let cases: Vec<Case> = vec![
        (
            "file-modified",
            Box::new(move |d: &Path| w(d.join("lib/math.ts"), "export const twice = 2;\n")),
            one("file", "modified", "lib/math.ts"),
        ),
        (
            "file-added",
            Box::new(move |d: &Path| w(d.join("lib/extra.ts"), "export {};\n")),
            one("file", "added", "lib/extra.ts"),
        ),
        (
            "file-removed",
            Box::new(|d: &Path| std::fs::remove_file(d.join("index.ts")).unwrap()),
            one("file", "removed", "index.ts"),
        ),
        (
            "service-yaml",
            Box::new(move |d: &Path| w(d.join("service.yaml"), "service:\n  name: service-yaml\n  memoryMb: 64\n")),
            one("file", "modified", "service.yaml"),
        ),
        (
            "manifest-modified",
            Box::new(move |d: &Path| w(d.join("package.json"), "{\"dependencies\": {\"lodash\": \"4\"}}\n")),
            one("manifest", "modified", "package.json"),
        ),
        (
            "manifest-added",
            Box::new(move |d: &Path| w(d.join("deno.json"), "{}\n")),
            one("manifest", "added", "deno.json"),
        ),
        (
            "manifest-removed",
            Box::new(|d: &Path| std::fs::remove_file(d.join("package.json")).unwrap()),
            one("manifest", "removed", "package.json"),
        ),
        (
            "lockfile-modified",
            Box::new(move |d: &Path| w(d.join("bun.lock"), "{\"lockfileVersion\": 2}\n")),
            one("lockfile", "modified", "bun.lock"),
        ),
        (
            "lockfile-added",
            Box::new(move |d: &Path| w(d.join("package-lock.json"), "{}\n")),
            one("lockfile", "added", "package-lock.json"),
        ),
        (
            "lockfile-removed",
            Box::new(|d: &Path| std::fs::remove_file(d.join("bun.lock")).unwrap()),
            one("lockfile", "removed", "bun.lock"),
        ),
        (
            "symlink-modified",
            Box::new(|d: &Path| {
                std::fs::remove_file(d.join("math.ts")).unwrap();
                symlink("index.ts", d.join("math.ts")).unwrap()
            }),
            one("symlink", "modified", "math.ts"),
        ),
        (
            "symlink-added",
            Box::new(|d: &Path| symlink("/etc/passwd", d.join("passwd")).unwrap()),
            one("symlink", "added", "passwd"),
        ),
        (
            "symlink-removed",
            Box::new(|d: &Path| std::fs::remove_file(d.join("math.ts")).unwrap()),
            one("symlink", "removed", "math.ts"),
        ),
        // A file replaced by a link to it is a file removed and a symlink added.
        (
            "file-to-symlink",
            Box::new(|d: &Path| {
                std::fs::remove_file(d.join("index.ts")).unwrap();
                symlink("lib/math.ts", d.join("index.ts")).unwrap()
            }),
            vec![
                ("file".into(), "removed".into(), "index.ts".into()),
                ("symlink".into(), "added".into(), "index.ts".into()),
            ],
        ),
        // Not sources: installed packages, version control, empty directories, modes.
        (
            "not-sources",
            Box::new(move |d: &Path| {
                w(d.join("node_modules/left-pad/index.js"), "changed");
                w(d.join(".git/HEAD"), "changed");
                std::fs::create_dir(d.join("empty")).unwrap();
                std::fs::set_permissions(d.join("index.ts"), std::fs::Permissions::from_mode(0o600)).unwrap();
            }),
            vec![],
        ),
    ];
    for (name, change, expected) in cases {
        let drift = drift_after(name, change);
        assert_eq!(summary(&drift), expected, "{name}: {drift:?}");
    }
    // A modified entry carries both digests; the text form names each change.
    let drift = drift_after("digests", |d| std::fs::write(d.join("index.ts"), "console.log(1);\n").unwrap());
    let sha = format!("sha256:{}", hex::encode(<sha2::Sha256 as Digest>::digest(b"console.log(1);\n")));
    assert_eq!(drift[0]["current"], sha.as_str());
    assert!(drift[0]["locked"].as_str().unwrap().starts_with("sha256:") && drift[0]["locked"] != drift[0]["current"]);

    let sb = Sandbox::new();
    let dir = service(&sb, "text");
    locks(&sb, &dir, &[]);
    std::fs::write(dir.join("lib/math.ts"), "export const twice = 2;\n").unwrap();
    std::fs::remove_file(dir.join("bun.lock")).unwrap();
    let out = lock(&sb, &dir, &["--check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout_of(&out);
    for needle in ["2 changes", "lockfile removed: bun.lock", "file modified: lib/math.ts", "ignite lock "] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

#[test]
fn another_runtime_or_version_is_drift() {
    let sb = Sandbox::new();
    let dir = service(&sb, "versions");
    // Locked on the 1.3 line; the service itself asks for bun, the newest.
    locks(&sb, &dir, &["--runtime", "bun@1.3"]);
    let old = listed(&sb, "bun", Some("1.3"));
    let new = listed(&sb, "bun", None);
    let (code, v) = check(&sb, &dir, &[]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(
        v["drift"],
        serde_json::json!([{"kind": "runtimeVersion", "runtime": "bun", "locked": old["version"], "current": new["version"]}])
    );
    assert_eq!(v["bundleChecked"], false, "another version's bundle is not fetched to be compared");
    let out = lock(&sb, &dir, &["--check"]);
    let text = stdout_of(&out);
    assert!(
        text.contains(&format!("runtime version changed: bun locked at {}", old["version"].as_str().unwrap())),
        "{text}"
    );
    // Checked against what it was locked with, it is up to date.
    let (code, v) = check(&sb, &dir, &["--runtime", "bun@1.3"]);
    assert_eq!(code, Some(0), "{v}");
    // Another runtime altogether (its bundle is not needed to say so).
    let (code, v) = check(&sb, &dir, &["--runtime", "node"]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["drift"][0]["kind"], "runtime", "{v}");
    assert!(v["drift"][0]["current"].as_str().unwrap().starts_with("node@"), "{v}");
}

fn integrity(bytes: &[u8]) -> String {
    format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes)))
}

/// A tar holding one file, `usr/local/bin/tool`, with `contents`.
fn rootfs_tar(contents: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(0o755);
    builder.append_data(&mut header, "usr/local/bin/tool", contents).unwrap();
    builder.into_inner().unwrap()
}

fn write_0644(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// Defines `locktest` 1.0.0 in `runtimes` from a prebuilt rootfs holding `contents`.
fn define_locktest(runtimes: &Path, contents: &[u8]) {
    let tar = rootfs_tar(contents);
    write_0644(&runtimes.join("locktest/rootfs.tar"), &tar);
    let yaml = format!(
        r#"name: locktest
description: a prebuilt rootfs whose bundle a test changes
default: "1.0.0"
recipe: rootfs
command: ["/usr/local/bin/tool", "{{entry}}"]
entryExtensions: [ts]
typescript: native
versions:
  - version: "1.0.0"
    package: {{ name: locktest, version: "1.0.0", url: "file:rootfs.tar", integrity: "{}" }}
"#,
        integrity(&tar)
    );
    write_0644(&runtimes.join("locktest/runtime.yaml"), yaml.as_bytes());
    std::fs::set_permissions(runtimes.join("locktest"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_rebuilt_bundle_with_other_contents_is_drift() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let runtimes = tempfile::Builder::new().prefix("ignite-runtimes-").tempdir().unwrap();
    let cache = tempfile::Builder::new().prefix("ignite-cache-").tempdir().unwrap();
    let cmd = |args: &[&str]| -> Output {
        ignite(&sb)
            .arg("--runtimes-dir")
            .arg(runtimes.path())
            .arg("--cache-dir")
            .arg(cache.path())
            .args(args)
            .output()
            .expect("spawn ignite")
    };
    let dir = sb
        .service("rebuilt", &[("service.yaml", "service:\n  name: rebuilt\n  runtime: locktest\n"), ("index.ts", "x")]);
    let dir_arg = dir.to_str().unwrap();
    define_locktest(runtimes.path(), b"version one\n");
    // The bundle is not in this cache yet: locking pulls (here: builds) it, as a run would.
    let out = cmd(&["lock", dir_arg, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let locked: Value = serde_json::from_slice(&out.stdout).unwrap();
    let digest_one = locked["lock"]["runtime"]["bundle"].as_str().unwrap().to_string();
    let list: Value = serde_json::from_slice(&cmd(&["runtime", "list", "--json"]).stdout).unwrap();
    let entry = list["runtimes"].as_array().unwrap().iter().find(|r| r["name"] == "locktest").unwrap().clone();
    assert_eq!(entry["versions"][0]["bundle"]["digest"], digest_one.as_str());

    // Same runtime and version, another package: the next use rebuilds the bundle.
    define_locktest(runtimes.path(), b"version two\n");
    let out = cmd(&["lock", dir_arg, "--check", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list: Value = serde_json::from_slice(&cmd(&["runtime", "list", "--json"]).stdout).unwrap();
    let entry = list["runtimes"].as_array().unwrap().iter().find(|r| r["name"] == "locktest").unwrap().clone();
    let digest_two = entry["versions"][0]["bundle"]["digest"].as_str().unwrap().to_string();
    assert_ne!(digest_one, digest_two);
    assert_eq!(
        v["drift"],
        serde_json::json!([{"kind": "bundleDigest", "runtime": "locktest@1.0.0", "locked": digest_one, "current": digest_two}])
    );
    // `run --locked` refuses it, naming the bundle.
    let out = cmd(&["run", dir_arg, "--locked", "--quiet"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr_of(&out).contains("bundle digest changed: locktest@1.0.0"), "{}", stderr_of(&out));
    // Locking again accepts the new bundle.
    let out = cmd(&["lock", dir_arg, "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(cmd(&["lock", dir_arg, "--check", "--quiet"]).status.code(), Some(0));
    sb.assert_no_leaks();
}

#[test]
fn malformed_or_missing_lock_files_are_precise_errors() {
    let sb = Sandbox::new();
    let dir = sb.service("malformed", &[("service.yaml", "service:\n  name: malformed\n"), ("index.ts", "x")]);
    let lock_file = dir.join("ignite.lock");
    let fails = |needles: &[&str]| {
        let out = lock(&sb, &dir, &["--check"]);
        assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
        let err = stderr_of(&out);
        for n in needles {
            assert!(err.contains(n), "{n:?} missing from: {err}");
        }
        // --json: the error is the one JSON document on stdout.
        let out = lock(&sb, &dir, &["--check", "--json"]);
        assert_eq!(out.status.code(), Some(125));
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON error");
        assert!(v["error"]["message"].as_str().unwrap().contains(needles[0]), "{v}");
    };
    fails(&["no lock file", "ignite.lock", "ignite lock "]);
    let digest = format!("sha256:{}", "0".repeat(64));
    let good = format!(
        "version: 1\nruntime:\n  name: bun\n  version: 1.4.5\n  bundle: {digest}\nmanifests: {{}}\nlockfiles: {{}}\nfiles:\n  index.ts: {digest}\nsymlinks: {{}}\n"
    );
    std::fs::write(&lock_file, good.replace("  index.ts: sha256:0", "  index.ts: md5:0")).unwrap();
    fails(&["ignite.lock", "field `files.index.ts`", "not a digest", "line 9"]);
    std::fs::write(&lock_file, good.replace("version: 1\n", "version: 7\n")).unwrap();
    fails(&["format version 7", "reads version 1"]);
    std::fs::write(&lock_file, good.replace("symlinks: {}\n", "")).unwrap();
    fails(&["missing field `symlinks`"]);
    std::fs::write(&lock_file, good.replace("  index.ts:", "  ../escape.ts:")).unwrap();
    fails(&["files.\"../escape.ts\"", "plain relative path"]);
    std::fs::write(&lock_file, "files: [\n").unwrap();
    fails(&["ignite.lock", "line"]);
    std::fs::remove_file(&lock_file).unwrap();
    symlink("/etc/passwd", &lock_file).unwrap();
    fails(&["ignite.lock", "is a symbolic link"]);
    // Writing replaces a linked lock file with a regular one, and never writes through it.
    let before = std::fs::read("/etc/passwd").unwrap();
    let out = lock(&sb, &dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(std::fs::symlink_metadata(&lock_file).unwrap().is_file());
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), before);
}

#[test]
fn run_locked_refuses_a_drifted_or_unlocked_service_before_any_sandbox() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = service(&sb, "gate");
    let run = |cmd: &str, extra: &[&str]| -> Output {
        ignite(&sb).arg(cmd).arg(&dir).arg("--locked").args(extra).output().expect("spawn ignite")
    };
    // No lock file: refused, saying how to make one.
    let out = run("run", &[]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("no lock file") && stderr_of(&out).contains("ignite lock"), "{}", stderr_of(&out));

    locks(&sb, &dir, &[]);
    let out = run("run", &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(report["stdout"], "42\n", "{report}");

    // One changed file: refused with what drifted and how to accept it, and nothing ran.
    std::fs::write(dir.join("lib/math.ts"), "export const twice = (x: number): number => x * 3;\n").unwrap();
    for cmd in ["run", "exec"] {
        let out = run(cmd, &[]);
        assert_eq!(out.status.code(), Some(125), "{cmd}: {}", stderr_of(&out));
        let err = stderr_of(&out);
        assert!(err.contains("file modified: lib/math.ts"), "{err}");
        assert!(err.contains(&format!("ignite lock {}", dir.canonicalize().unwrap().display())), "{err}");
        assert!(stdout_of(&out).is_empty(), "the program did not run: {}", stdout_of(&out));
    }
    let out = run("run", &["--json"]);
    assert_eq!(out.status.code(), Some(125));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON error");
    assert!(v["error"]["message"].as_str().unwrap().contains("file modified: lib/math.ts"), "{v}");
    // Without --locked the same service runs as it is.
    let (out, report) = sb.run_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(report["stdout"], "63\n");
    sb.assert_no_leaks();
}

#[test]
fn env_shows_the_lock_state_of_a_service() {
    let sb = Sandbox::new();
    let dir = service(&sb, "described");
    let env = |dir: &Path| -> Value {
        let out = ignite(&sb).arg("env").arg(dir).arg("--json").output().expect("spawn ignite");
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    assert_eq!(env(&dir)["service"]["lock"]["state"], "none");
    locks(&sb, &dir, &[]);
    let v = env(&dir);
    assert_eq!(v["service"]["lock"]["state"], "upToDate", "{v}");
    assert_eq!(v["service"]["runtime"], format!("bun@{}", listed(&sb, "bun", None)["version"].as_str().unwrap()));
    std::fs::write(dir.join("index.ts"), "changed").unwrap();
    let v = env(&dir);
    assert_eq!(v["service"]["lock"]["state"], "drifted", "{v}");
    assert_eq!(v["service"]["lock"]["drift"][0]["path"], "index.ts", "{v}");
    std::fs::write(dir.join("ignite.lock"), "version: 1\n").unwrap();
    let v = env(&dir);
    assert_eq!(v["service"]["lock"]["state"], "invalid", "{v}");
    assert!(v["service"]["lock"]["problem"].as_str().unwrap().contains("missing field"), "{v}");
}
