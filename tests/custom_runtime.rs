//! Custom runtimes end to end: a runtimes directory with user definitions is listed, pulled and
//! run like the built-ins (`--runtimes-dir`, `IGNITE_RUNTIMES_DIR`, the per-user config
//! directory), and broken definitions fail every command with an error naming file and field.
//!
//! `tiny` is a runtime built offline from a local file: the host's `cat`, packaged as a
//! `file:` package and built by a recipe script in the runtime's directory. It "runs" an entry
//! by printing it, which is enough to see the whole path — recipe, bundle, spec, sandbox,
//! report — without a JavaScript engine. `bun-custom` is a real one: the pinned Bun package with
//! the recipe script copied next to it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use common::*;
use sha2::{Digest, Sha512};

fn integrity(bytes: &[u8]) -> String {
    format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes)))
}

/// Writes a file with mode 0644 (whatever the umask: a runtimes directory must not be
/// writable by group or others).
fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn mkdir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The recipe of `tiny`: the same lib.sh functions the built-in recipes use.
const TINY_RECIPE: &str = r#"# Builds the tiny runtime: the package's bin/cat and the libraries it needs.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ignite_require_env IGNITE_PACKAGE IGNITE_OUT IGNITE_WORK
root="$IGNITE_WORK/rootfs"
mkdir -p "$IGNITE_WORK/pkg"
tar -xzf "$IGNITE_PACKAGE" -C "$IGNITE_WORK/pkg"
ignite_skeleton "$root"
ignite_copy_file "$IGNITE_WORK/pkg/package/bin/cat" "$root/usr/local/bin/cat" 0755
ignite_copy_libs "$root" "$IGNITE_WORK/pkg/package/bin/cat"
ignite_normalize "$root"
ignite_smoke_test "$root" /usr/local/bin/cat --version
ignite_pack "$root" "$IGNITE_OUT"
"#;

/// A tar.gz holding `package/bin/cat` (the host's).
fn cat_package() -> Vec<u8> {
    let cat = std::fs::read("/bin/cat").expect("/bin/cat (coreutils) is needed");
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(cat.len() as u64);
    header.set_mode(0o755);
    builder.append_data(&mut header, "package/bin/cat", &cat[..]).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &builder.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

fn tiny_yaml(integrity: &str) -> String {
    format!(
        r#"# tiny: prints its entry. Two versions of the same package, to resolve specs against.
name: tiny
description: prints the entry file (cat), a test runtime
default: "1.1.0"
recipe: ./build.sh
command: ["/usr/local/bin/cat", "{{entry}}"]
entryExtensions: [js, ts]
typescript: native
env:
  TINY: "1"
versions:
  - version: "1.0.0"
    package: {{ name: tiny-cat, version: "1.0.0", url: "file:dist/cat.tgz", integrity: "{integrity}" }}
  - version: "1.1.0"
    package: {{ name: tiny-cat, version: "1.1.0", url: "file:dist/cat.tgz", integrity: "{integrity}" }}
"#
    )
}

/// A runtimes directory with `tiny` in it, and a bundle cache of its own.
struct Runtimes {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Runtimes {
    fn new() -> Runtimes {
        let dir = tempfile::Builder::new().prefix("ignite-runtimes-").tempdir().unwrap();
        let cache = tempfile::Builder::new().prefix("ignite-cache-").tempdir().unwrap();
        let r = Runtimes { dir, cache };
        let package = cat_package();
        r.define("tiny", &tiny_yaml(&integrity(&package)));
        write(&r.path().join("tiny/build.sh"), TINY_RECIPE.as_bytes());
        write(&r.path().join("tiny/dist/cat.tgz"), &package);
        r
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn define(&self, name: &str, yaml: &str) {
        mkdir(&self.path().join(name));
        write(&self.path().join(name).join("runtime.yaml"), yaml.as_bytes());
    }

    fn yaml_path(&self, name: &str) -> String {
        std::fs::canonicalize(self.path()).unwrap().join(name).join("runtime.yaml").display().to_string()
    }

    /// `ignite --runtimes-dir DIR --cache-dir CACHE ARGS`, state in `sb`.
    fn ignite(&self, sb: &Sandbox, args: &[&str]) -> Output {
        self.cmd(sb).args(args).output().unwrap()
    }

    fn cmd(&self, sb: &Sandbox) -> Command {
        let mut c = sb.cmd();
        c.arg("--runtimes-dir").arg(self.path()).arg("--cache-dir").arg(self.cache.path());
        c.env_remove("IGNITE_RUNTIMES_DIR");
        c
    }

    fn list(&self, sb: &Sandbox) -> serde_json::Value {
        let out = self.ignite(sb, &["runtime", "list", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        serde_json::from_slice(&out.stdout).expect("runtime list --json prints JSON")
    }
}

fn runtime<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list["runtimes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {list}"))
}

fn fails_with(out: &Output, needles: &[&str]) {
    let err = stderr_of(out);
    assert_eq!(out.status.code(), Some(125), "expected exit 125: {err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
}

/// A service whose entry `tiny` prints back.
fn tiny_service(sb: &Sandbox, runtime_line: &str) -> PathBuf {
    sb.service(
        "echo",
        &[
            ("service.yaml", &format!("service:\n  name: echo\n  entry: main.js\n{runtime_line}")),
            ("main.js", "hello from tiny\n"),
        ],
    )
}

#[test]
fn a_custom_runtime_is_listed_with_its_origin_and_pulled() {
    let sb = Sandbox::new();
    let rts = Runtimes::new();
    let list = rts.list(&sb);
    assert_eq!(list["cacheDir"], rts.cache.path().display().to_string());
    assert_eq!(list["runtimesDirs"][0], rts.path().display().to_string());
    assert_eq!(runtime(&list, "bun")["origin"], "built-in");

    let tiny = runtime(&list, "tiny");
    assert_eq!(tiny["origin"], rts.yaml_path("tiny"));
    assert_eq!(tiny["defaultVersion"], "1.1.0");
    assert_eq!(tiny["typescript"], "native");
    assert_eq!(tiny["recipe"], "./build.sh");
    let versions: Vec<&str> =
        tiny["versions"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["1.1.0", "1.0.0"]);
    let v = &tiny["versions"][0];
    assert_eq!(v["default"], true);
    assert_eq!(v["present"], false);
    assert!(v["bundle"].is_null(), "{v}");
    let dist = std::fs::canonicalize(rts.path()).unwrap().join("tiny/dist/cat.tgz");
    assert_eq!(v["package"]["url"], format!("file:{}", dist.display()));

    // Version specs resolve for custom runtimes as for built-ins.
    for (spec, resolved) in
        [("tiny", "tiny@1.1.0"), ("tiny@1", "tiny@1.1.0"), ("tiny@1.0", "tiny@1.0.0"), ("tiny@1.0.0", "tiny@1.0.0")]
    {
        let out = rts.ignite(&sb, &["runtime", "pull", spec]);
        assert_eq!(out.status.code(), Some(0), "{spec}: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains(&format!("ignite: {resolved} ready: sha256:")), "{spec}: {}", stderr_of(&out));
    }

    let list = rts.list(&sb);
    for v in runtime(&list, "tiny")["versions"].as_array().unwrap() {
        assert_eq!(v["present"], true, "{v}");
        let b = &v["bundle"];
        assert!(b["digest"].as_str().unwrap().starts_with("sha256:"), "{b}");
        assert!(b["tarballBytes"].as_u64().unwrap() > 0 && b["unpackedBytes"].as_u64().unwrap() > 0, "{b}");
        assert_eq!(b["source"], "built");
        assert!(Path::new(b["path"].as_str().unwrap()).join("usr/local/bin/cat").is_file(), "{b}");
    }
    // Same package, same recipe: both versions share one bundle.
    let tiny = runtime(&list, "tiny");
    assert_eq!(tiny["versions"][0]["bundle"]["digest"], tiny["versions"][1]["bundle"]["digest"]);

    // The table says the same for people.
    let out = rts.ignite(&sb, &["runtime", "list"]);
    let table = stdout_of(&out);
    let row =
        table.lines().find(|l| l.starts_with("tiny ") && l.contains("1.1.0")).unwrap_or_else(|| panic!("{table}"));
    for cell in ["yes", "native", "sha256:", " MB", &rts.yaml_path("tiny")] {
        assert!(row.contains(cell), "{cell:?} missing from row {row:?}");
    }
    assert!(table.contains(&format!("custom runtimes directories: {}", rts.path().display())), "{table}");
}

#[test]
fn a_custom_runtime_runs_like_a_builtin() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let rts = Runtimes::new();
    let dir = tiny_service(&sb, "  runtime: tiny@1.0\n");

    // --runtimes-dir
    let out = rts.cmd(&sb).arg("run").arg(&dir).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["runtime"], "tiny@1.0.0", "{r}");
    assert_eq!(r["stdout"], "hello from tiny\n", "{r}");
    let m = &r["metrics"];
    for key in ["initTimeMs", "memoryPeakMb", "cpuTimeMs"] {
        assert!(m[key].as_f64().is_some_and(|v| v > 0.0), "{key} not filled: {m}");
    }
    assert!(m["pidsPeak"].as_u64().is_some_and(|v| v >= 1), "{m}");
    assert_eq!(m["oomKills"], 0);
    sb.assert_cgroup_gone(r["containerId"].as_str().unwrap());
    sb.assert_no_leaks();

    // IGNITE_RUNTIMES_DIR, with the runtime chosen on the command line.
    let dir = tiny_service(&sb, "");
    let out = sb
        .cmd()
        .env("IGNITE_RUNTIMES_DIR", rts.path())
        .arg("--cache-dir")
        .arg(rts.cache.path())
        .arg("run")
        .arg(&dir)
        .args(["--json", "--runtime", "tiny"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["runtime"], "tiny@1.1.0", "{r}");
    assert_eq!(r["stdout"], "hello from tiny\n", "{r}");
    sb.assert_no_leaks();
}

#[test]
fn custom_runtimes_get_the_same_hardening() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let rts = Runtimes::new();
    let spec_of = |runtime: &str, cache: &Path| -> serde_json::Value {
        let dir = tiny_service(&sb, "");
        let out = sb
            .cmd()
            .arg("--runtimes-dir")
            .arg(rts.path())
            .arg("--cache-dir")
            .arg(cache)
            .arg("run")
            .arg(&dir)
            .args(["--print-spec", "--quiet", "--runtime", runtime])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // Each run has a uid of its own: the same hardening means the same spec up to that
        // number (the user, /tmp's and /dev/shm's owner, the run's passwd and group files).
        let uid = spec["process"]["user"]["uid"].as_u64().unwrap() as u32;
        assert!(ignite::sandbox::identity::is_run_uid(uid), "{}", spec["process"]["user"]);
        normalise_uid(&mut spec, uid);
        // Likewise each run has a run directory of its own, whose input directory is mounted.
        for m in spec["mounts"].as_array_mut().unwrap() {
            if let Some(source) = m["source"].as_str()
                && let Some((before, after)) = source.split_once("/runs/")
            {
                let rest = after.split_once('/').map_or("", |(_, r)| r);
                m["source"] = serde_json::json!(format!("{before}/runs/RUN_ID/{rest}"));
            }
        }
        spec
    };
    let tiny = spec_of("tiny", rts.cache.path());
    // Bun from the shared cache (CI pulls it before the tests).
    let bun = spec_of("bun", Path::new("/var/lib/ignite"));
    // The same entrypoint starts the custom runtime's command.
    let args: Vec<&str> = tiny["process"]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(args.first(), Some(&"/.ignite/init"), "{args:?}");
    assert!(args.ends_with(&["/usr/local/bin/cat", "/app/main.js"]), "{args:?}");
    assert_eq!(bun["process"]["args"][0], "/.ignite/init");
    assert!(tiny["process"]["env"].as_array().unwrap().iter().any(|e| e == "TINY=1"), "{}", tiny["process"]);
    for pointer in [
        "/process/user",
        "/process/capabilities",
        "/process/noNewPrivileges",
        "/process/rlimits",
        "/process/oomScoreAdj",
        "/root/readonly",
        "/mounts",
        "/linux/namespaces",
        "/linux/seccomp",
        "/linux/maskedPaths",
        "/linux/readonlyPaths",
        "/linux/resources",
    ] {
        assert!(!tiny.pointer(pointer).unwrap_or(&serde_json::Value::Null).is_null(), "{pointer} missing");
        assert_eq!(
            tiny.pointer(pointer),
            bun.pointer(pointer),
            "{pointer} differs between a custom and a built-in runtime"
        );
    }
}

#[test]
fn a_prebuilt_rootfs_tarball_runs() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let rts = Runtimes::new();
    // The prebuilt rootfs: tiny's program and libraries, without Ignite's skeleton (the
    // `rootfs` recipe adds it), as an uncompressed tar.
    let out = rts.ignite(&sb, &["runtime", "pull", "tiny"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let list = rts.list(&sb);
    let built = PathBuf::from(runtime(&list, "tiny")["versions"][0]["bundle"]["path"].as_str().unwrap());
    let tarball = rts.path().join("prebuilt.tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(&tarball)
        .arg("-C")
        .arg(&built)
        .args(["usr", "lib", "lib64"])
        .status()
        .expect("tar");
    assert!(status.success());
    let bytes = std::fs::read(&tarball).unwrap();
    std::fs::remove_file(&tarball).unwrap();
    write(&rts.path().join("cat-rootfs/rootfs.tar"), &bytes);
    rts.define(
        "cat-rootfs",
        &format!(
            r#"name: cat-rootfs
description: a prebuilt root filesystem
default: "2.0.0"
recipe: rootfs
command: ["/usr/local/bin/cat", "{{entry}}"]
entryExtensions: [js]
typescript: native
versions:
  - version: "2.0.0"
    package: {{ name: cat-rootfs, version: "2.0.0", url: "file:rootfs.tar", integrity: "{}" }}
"#,
            integrity(&bytes)
        ),
    );
    let dir = tiny_service(&sb, "  runtime: cat-rootfs\n");
    let out = rts.cmd(&sb).arg("run").arg(&dir).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["runtime"], "cat-rootfs@2.0.0", "{r}");
    assert_eq!(r["stdout"], "hello from tiny\n", "{r}");
    sb.assert_no_leaks();
}

/// The built-in Bun definition's default version and its pinned package (url, integrity).
fn bun_package() -> (String, String, String) {
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(repo().join("runtimes/bun/runtime.yaml")).unwrap()).unwrap();
    let default = yaml["default"].as_str().unwrap();
    let v = yaml["versions"].as_sequence().unwrap().iter().find(|v| v["version"].as_str() == Some(default)).unwrap();
    let package = &v["package"];
    (
        default.to_string(),
        package["url"].as_str().unwrap().to_string(),
        package["integrity"].as_str().unwrap().to_string(),
    )
}

#[test]
fn bun_custom_runs_typescript_from_the_pinned_bun_package() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let rts = Runtimes::new();
    let (version, url, integrity) = bun_package();
    // Bun's own recipe, copied beside the definition: it sources lib.sh like the original.
    let recipe = std::fs::read(repo().join("rootfs-scripts/bun.sh")).unwrap();
    write(&rts.path().join("bun-custom/build.sh"), &recipe);
    rts.define(
        "bun-custom",
        &format!(
            r#"name: bun-custom
description: Bun, defined outside ignite
default: "{version}"
recipe: build.sh
command: ["/usr/local/bin/bun", "--no-install", "run", "{{entry}}"]
entryExtensions: [ts, js]
typescript: native
env: {{ NO_COLOR: "1", BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0" }}
versions:
  - version: "{version}"
    package: {{ name: "@oven/bun-linux-x64", version: "{version}", url: "{url}", integrity: "{integrity}" }}
"#
        ),
    );
    let code = r#"
interface Input { values: number[] }
const input: Input = JSON.parse(process.env.IGNITE_INPUT ?? "{}");
console.log(`sum=${input.values.reduce((a: number, b: number) => a + b, 0)} bun=${Bun.version}`);
"#;
    let dir = sb.ts_service("bunc", "  runtime: bun-custom\n", code);
    // The shared cache: the Bun package is downloaded (or already there) like a built-in's.
    let out = sb
        .cmd()
        .arg("--runtimes-dir")
        .arg(rts.path())
        .arg("run")
        .arg(&dir)
        .args(["--json", "--input", r#"{"values":[1,2,3]}"#])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["runtime"], format!("bun-custom@{version}"), "{r}");
    assert_eq!(r["stdout"], format!("sum=6 bun={version}\n"), "{r}");
    let m = &r["metrics"];
    for key in ["executionTimeMs", "initTimeMs", "memoryPeakMb", "cpuTimeMs", "maxRssMb"] {
        assert!(m[key].as_f64().is_some_and(|v| v > 0.0), "{key} not filled: {m}");
    }
    sb.assert_cgroup_gone(r["containerId"].as_str().unwrap());
    sb.assert_no_leaks();
}

#[test]
fn unknown_custom_runtimes_and_versions_list_what_is_available() {
    let sb = Sandbox::new();
    let rts = Runtimes::new();
    let out = rts.ignite(&sb, &["runtime", "pull", "tiny@2"]);
    fails_with(&out, &["tiny has no version matching \"2\"", "available: 1.1.0, 1.0.0"]);
    let out = rts.ignite(&sb, &["runtime", "pull", "nope"]);
    fails_with(&out, &["unknown runtime \"nope\"", "bun (", "tiny (1.1.0, 1.0.0)"]);
    let dir = tiny_service(&sb, "  runtime: tiny@1.2\n");
    let out = rts.ignite(&sb, &["run", dir.to_str().unwrap()]);
    fails_with(&out, &["echo", "tiny@1.2", "no version matching \"1.2\"", "1.1.0, 1.0.0"]);
    // Without the runtimes directory, tiny does not exist.
    let out = sb.cmd().env("IGNITE_RUNTIMES_DIR", "").args(["runtime", "pull", "tiny"]).output().unwrap();
    fails_with(&out, &["unknown runtime \"tiny\""]);
}

#[test]
fn broken_definitions_fail_every_command_with_file_field_and_line() {
    let sb = Sandbox::new();
    let rts = Runtimes::new();
    let file = rts.yaml_path("tiny");
    let good = std::fs::read_to_string(rts.path().join("tiny/runtime.yaml")).unwrap();

    write(
        &rts.path().join("tiny/runtime.yaml"),
        good.replace("typescript: native", "typescript: native\ncolour: red").as_bytes(),
    );
    let service = tiny_service(&sb, "");
    for args in [&["runtime", "list"][..], &["runtime", "pull", "bun"], &["run", service.to_str().unwrap()]] {
        let out = rts.ignite(&sb, args);
        fails_with(&out, &[&file, "field `colour`", "unknown field `colour`", "line 9"]);
    }

    write(
        &rts.path().join("tiny/runtime.yaml"),
        good.replace("file:dist/cat.tgz", "http://example.com/cat.tgz").as_bytes(),
    );
    fails_with(
        &rts.ignite(&sb, &["runtime", "list"]),
        &[&file, "field `versions[0].package.url`", "must start with https://"],
    );

    write(&rts.path().join("tiny/runtime.yaml"), good.replace("./build.sh", "../build.sh").as_bytes());
    fails_with(&rts.ignite(&sb, &["runtime", "list"]), &[&file, "field `recipe`", "without '..'"]);

    write(&rts.path().join("tiny/runtime.yaml"), good.replace("default: \"1.1.0\"", "default: \"1.1\"").as_bytes());
    fails_with(&rts.ignite(&sb, &["runtime", "list"]), &[&file, "field `default`", "MAJOR.MINOR.PATCH"]);

    write(&rts.path().join("tiny/runtime.yaml"), good.as_bytes());
    std::fs::remove_file(rts.path().join("tiny/build.sh")).unwrap();
    fails_with(&rts.ignite(&sb, &["runtime", "list"]), &[&file, "field `recipe`", "does not exist"]);
    write(&rts.path().join("tiny/build.sh"), TINY_RECIPE.as_bytes());

    rts.define("bun", &good.replace("name: tiny", "name: bun"));
    fails_with(
        &rts.ignite(&sb, &["runtime", "list"]),
        &["bun/runtime.yaml", "name of a built-in runtime", "bun-custom"],
    );
    std::fs::remove_dir_all(rts.path().join("bun")).unwrap();

    mkdir(&rts.path().join("empty"));
    fails_with(&rts.ignite(&sb, &["runtime", "list"]), &["empty: has no runtime.yaml"]);
    std::fs::remove_dir_all(rts.path().join("empty")).unwrap();

    // Duplicates across directories.
    let other = Runtimes::new();
    let out = sb
        .cmd()
        .arg("--runtimes-dir")
        .arg(rts.path())
        .arg("--runtimes-dir")
        .arg(other.path())
        .args(["runtime", "list"])
        .output()
        .unwrap();
    fails_with(&out, &["runtime \"tiny\" is defined twice", &file, &other.yaml_path("tiny")]);

    std::fs::set_permissions(rts.path().join("tiny/build.sh"), std::fs::Permissions::from_mode(0o666)).unwrap();
    fails_with(
        &rts.ignite(&sb, &["runtime", "list"]),
        &["tiny/build.sh: is writable by group or others", "chmod go-w"],
    );
    std::fs::set_permissions(rts.path().join("tiny/build.sh"), std::fs::Permissions::from_mode(0o644)).unwrap();

    let out = sb.cmd().env("IGNITE_RUNTIMES_DIR", "/nonexistent/runtimes").args(["runtime", "list"]).output().unwrap();
    fails_with(&out, &["/nonexistent/runtimes", "does not exist"]);
    // --runtimes-dir replaces the environment variable rather than adding to it.
    let out =
        rts.cmd(&sb).env("IGNITE_RUNTIMES_DIR", "/nonexistent/runtimes").args(["runtime", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn the_per_user_config_directory_is_the_default() {
    let sb = Sandbox::new();
    let rts = Runtimes::new();
    let home = tempfile::tempdir().unwrap();
    mkdir(&home.path().join(".config/ignite"));
    std::os::unix::fs::symlink(rts.path(), home.path().join(".config/ignite/runtimes")).unwrap();
    let names = |cmd: &mut Command| -> Vec<String> {
        let out = cmd.args(["runtime", "list", "--json"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["runtimes"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
    };
    let base = || {
        let mut c = sb.cmd();
        c.env_remove("IGNITE_RUNTIMES_DIR").env_remove("XDG_CONFIG_HOME").env("HOME", home.path());
        c
    };
    assert!(names(&mut base()).contains(&"tiny".to_string()));
    assert!(
        !names(base().env("IGNITE_RUNTIMES_DIR", "")).contains(&"tiny".to_string()),
        "an empty variable means none"
    );
    let xdg = tempfile::tempdir().unwrap();
    assert!(
        !names(base().env("XDG_CONFIG_HOME", xdg.path())).contains(&"tiny".to_string()),
        "XDG_CONFIG_HOME wins over HOME"
    );
    mkdir(&xdg.path().join("ignite"));
    std::os::unix::fs::symlink(rts.path(), xdg.path().join("ignite/runtimes")).unwrap();
    assert!(names(base().env("XDG_CONFIG_HOME", xdg.path())).contains(&"tiny".to_string()));
}

/// Replaces a run's own uid in its spec by `RUN_UID`, wherever it appears.
fn normalise_uid(v: &mut serde_json::Value, uid: u32) {
    match v {
        serde_json::Value::Number(n) if n.as_u64() == Some(u64::from(uid)) => *v = serde_json::json!("RUN_UID"),
        serde_json::Value::String(s) => {
            let id = uid.to_string();
            *s = s.replace(&format!("uid={id}"), "uid=RUN_UID").replace(&format!("gid={id}"), "gid=RUN_UID");
            *s = s.replace(&format!("/uids/{id}."), "/uids/RUN_UID.");
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| normalise_uid(x, uid)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| normalise_uid(x, uid)),
        _ => {}
    }
}
