//! Host-independent bundles: the built-in runtimes' rootfs recipes run inside the pinned Debian
//! build environment (runtimes/builder/builder.yaml), so the same runtime version gives the
//! same bundle, byte for byte, whatever the host has. Shown by building bun (binary plus the
//! shared libraries it loads) and quickjs (compiled from source, statically linked) with the
//! same ignite binary on this host and inside a Debian 13 chroot — another glibc, compiler, tar
//! and gzip — and comparing the digests. The chroot's cache starts without bundles or a build
//! environment (only the downloaded packages are shared: ignite checks each against its pin), so
//! it builds both. This host's side is the shared cache's bundle when ignite built it there with
//! the recipe this binary has (tests/bundles.rs rebuilds it from scratch to that digest);
//! otherwise, or when the chroot's digest differs from it, it is built again here into a cache
//! holding only the packages, as the chroot's, and the chroot's digest must equal that build's.
//! The operator's replacement of the build environment's mirror (`IGNITE_DEBIAN_MIRROR`) is the
//! one fetched from, and a value that is no mirror URL is refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use common::*;

const RUNTIMES: &[&str] = &["quickjs@0.16.2", "bun@1.4.5"];

/// Where a pristine Debian 13 root is kept between runs (`.ci/run` sets it); without it each
/// run makes one with mmdebstrap.
const CHROOT_CACHE_ENV: &str = "IGNITE_TEST_CHROOT_CACHE";
/// A kept root older than this is made again, so that the chroot follows Debian 13's updates.
const CHROOT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";

/// `ignite runtime pull SPEC` into `cache`, returning the digest it reports.
fn pull(cmd: &mut Command, spec: &str) -> String {
    let out: Output = cmd.output().expect("spawn ignite");
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "pull {spec} failed:\n{stderr}");
    ready_digest(spec, &stderr)
}

/// The digest in the `ready: sha256:…` line of a pull's stderr.
fn ready_digest(spec: &str, stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.contains(" ready: sha256:"))
        .unwrap_or_else(|| panic!("no 'ready: sha256:' line for {spec}:\n{stderr}"));
    let digest = line.split(" ready: ").nth(1).and_then(|r| r.split_whitespace().next()).expect("digest");
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{line}");
    digest.to_string()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{cmd:?} failed:\n{}\n{}", stdout_of(&out), stderr_of(&out));
}

/// The index record of `spec` in `cache`, if there is one.
fn index_record(cache: &Path, spec: &str) -> Option<serde_json::Value> {
    let bytes = std::fs::read(cache.join("index").join(format!("{spec}.json"))).ok()?;
    Some(serde_json::from_slice(&bytes).expect("index record is JSON"))
}

/// Asserts that `cache` holds bundles of `specs` that ignite built (not imported ones) and the
/// build environment it built them in.
fn assert_built(cache: &Path, specs: &[&str]) {
    for spec in specs {
        let record =
            index_record(cache, spec).unwrap_or_else(|| panic!("no index record for {spec} in {}", cache.display()));
        assert_eq!(record["source"], "built", "{spec} in {}", cache.display());
    }
    if !specs.is_empty() {
        assert!(cache.join("builders").is_dir(), "no build environment in {}", cache.display());
    }
}

/// This host's bundle of `spec` as the shared cache records it: only when ignite built it there
/// from the package and with the recipe (which covers the build environment's pins) that this
/// binary has for `spec`.
fn recorded_host_build(spec: &str) -> Option<String> {
    let rt = ignite::data::runtime::Registry::builtin().expect("built-in runtimes").resolve(spec).expect("spec");
    let record = index_record(&shared_cache(), spec)?;
    let matches = record["source"] == "built"
        && record["runtime"] == rt.name.as_str()
        && record["version"] == rt.version.to_string().as_str()
        && record["package"] == serde_json::to_value(&rt.package).expect("package")
        && record["recipeDigest"] == rt.recipe.digest().as_str();
    matches.then(|| record["digest"].as_str().expect("digest").to_string())
}

/// Hard-links (or copies) every file below `from` to the same place below `to`.
fn link_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create packages dir");
    for entry in std::fs::read_dir(from).expect("packages dir") {
        let entry = entry.expect("packages dir entry");
        let dest = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            link_files(&entry.path(), &dest);
        } else if kind.is_file() && std::fs::hard_link(entry.path(), &dest).is_err() {
            std::fs::copy(entry.path(), &dest).expect("copy package");
        }
    }
}

/// Hard-links (or copies) the shared cache's downloaded packages (the runtimes' and the build
/// environment's Debian packages) to `to`, a new cache's `packages/`: ignite checks each
/// against its pinned hash before use, so a build there downloads only what is missing and
/// builds the rest itself.
fn link_packages(to: &Path) {
    let packages = shared_cache().join("packages");
    if packages.is_dir() {
        link_files(&packages, to);
    }
}

/// The kept pristine Debian 13 root under [`CHROOT_CACHE_ENV`], an mmdebstrap tarball made
/// anew when older than [`CHROOT_MAX_AGE`]; `None` without that variable.
fn kept_debian_13_root() -> Option<PathBuf> {
    let dir = std::env::var_os(CHROOT_CACHE_ENV).filter(|d| !d.is_empty()).map(PathBuf::from)?;
    let tar = dir.join("trixie-minbase-amd64.tar");
    let fresh = std::fs::metadata(&tar)
        .and_then(|m| m.modified())
        .is_ok_and(|t| SystemTime::now().duration_since(t).is_ok_and(|age| age < CHROOT_MAX_AGE));
    if !fresh {
        std::fs::create_dir_all(&dir).expect("chroot cache dir");
        // mmdebstrap writes a tarball when the target's name ends in .tar; made beside the kept
        // one and renamed into place whole, so a concurrent or failed run never leaves half of one.
        let partial = tempfile::tempdir_in(&dir).expect("temp dir");
        run(Command::new("mmdebstrap")
            .args(["--variant=minbase", "--quiet", "trixie"])
            .arg(partial.path().join("root.tar"))
            .arg(DEBIAN_MIRROR));
        std::fs::rename(partial.path().join("root.tar"), &tar).expect("keep the Debian 13 root");
    }
    Some(tar)
}

#[test]
fn a_runtime_version_builds_to_the_same_bundle_on_this_host_and_in_a_debian_13_chroot() {
    if !require_root_and_tools(
        "building bundles in a Debian 13 chroot",
        &[
            ("mmdebstrap", "apt-get install mmdebstrap"),
            ("unshare", "apt-get install util-linux"),
            ("chroot", "apt-get install coreutils"),
            ("tar", "apt-get install tar"),
        ],
    ) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");

    // Debian 13 (trixie), a minimal root from Debian's archive, with this ignite copied in, on a
    // tmpfs in a mount namespace of its own: the ~600 MB of root, build environment and bundles
    // never reach the disk and vanish with the namespace (on disk, writing and deleting them
    // cost a shared 2-core host about 20 s). Its cache gets the host's downloaded packages,
    // bind-mounted from hard links; the chroot writes what it learns to `out`.
    let root = work.path().join("trixie");
    let out = work.path().join("out");
    let packages = work.path().join("packages");
    for dir in [&root, &out, &packages] {
        std::fs::create_dir(dir).expect("create dir");
    }
    link_packages(&packages);
    let make_root = match kept_debian_13_root() {
        Some(tar) => format!("tar -C \"$root\" --numeric-owner -xf '{}'", tar.display()),
        None => format!("mmdebstrap --variant=minbase --quiet trixie \"$root\" {DEBIAN_MIRROR}"),
    };
    // The pulls run side by side, as `.ci/run`'s do: QuickJS compiles on one core, and they
    // share one unpacked build environment (ignite's lock); each must succeed.
    let pulls: String = RUNTIMES
        .iter()
        .map(|spec| {
            format!(
                "chroot \"$root\" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin IGNITE_CACHE_DIR=/var/cache/ignite \
                 /usr/local/bin/ignite runtime pull {spec} 2>\"$out/{spec}.log\" & pids=\"$pids $!\"\n"
            )
        })
        .collect();
    // The root is a mount point, as a container's root is: ignite refuses to build where the
    // build's mounts could propagate to the host. The host's trusted CAs go in as ignite uses
    // them on the host (a TLS-inspecting proxy's CA is there; a minimal Debian root has none),
    // for any package the host has not downloaded.
    let script = format!(
        r#"set -eu
root='{root}' out='{out}'
mount -t tmpfs -o mode=0755,size=4g ignite-trixie "$root"
{make_root}
cp '{ignite}' "$root/usr/local/bin/ignite"
cp /etc/resolv.conf "$root/etc/resolv.conf"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$root/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
fi
mkdir -p "$root/var/cache/ignite/packages"
mount --bind '{packages}' "$root/var/cache/ignite/packages"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
cp "$root/usr/lib/x86_64-linux-gnu/libc.so.6" "$out/libc.so.6"
pids=
{pulls}failed=0
for pid in $pids; do wait "$pid" || failed=1; done
[ "$failed" = 0 ]
cp -r "$root/var/cache/ignite/index" "$out/index"
if [ -d "$root/var/cache/ignite/builders" ]; then mkdir "$out/builders"; fi
"#,
        root = root.display(),
        out = out.display(),
        ignite = ignite_bin().display(),
        packages = packages.display(),
    );
    let result = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--fork", "sh", "-c", &script])
        .output()
        .expect("spawn unshare");
    if !result.status.success() {
        let logs: String = RUNTIMES
            .iter()
            .map(|spec| {
                format!("{spec}: {}\n", std::fs::read_to_string(out.join(format!("{spec}.log"))).unwrap_or_default())
            })
            .collect();
        panic!("the Debian 13 chroot failed:\n{}\n{logs}", stderr_of(&result));
    }
    // The two environments really differ where a host-built bundle would: the C library a
    // dynamically linked runtime loads, and the compiler that builds QuickJS.
    let host_libc = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").expect("host libc");
    let chroot_libc = std::fs::read(out.join("libc.so.6")).expect("trixie libc");
    assert_ne!(host_libc, chroot_libc, "the chroot must have another glibc than the host");
    let chroot: Vec<String> = RUNTIMES
        .iter()
        .map(|spec| ready_digest(spec, &std::fs::read_to_string(out.join(format!("{spec}.log"))).expect("pull log")))
        .collect();
    // Built there, in the chroot's own build environment (not taken from a cache).
    assert_built(&out, RUNTIMES);

    // This host: the shared cache's build when it is this binary's recipe and agrees; else a
    // build here into a cache as empty as the chroot's, which must agree.
    let host_cache = work.path().join("host-cache");
    let rebuild: Vec<_> =
        RUNTIMES.iter().zip(&chroot).filter(|(spec, c)| recorded_host_build(spec).as_ref() != Some(*c)).collect();
    if !rebuild.is_empty() {
        link_packages(&host_cache.join("packages"));
    }
    for (spec, c) in &rebuild {
        let mut cmd = Command::new(ignite_bin());
        cmd.args(["runtime", "pull", spec]).env("IGNITE_CACHE_DIR", &host_cache).env_remove("IGNITE_LOG");
        let h = pull(&mut cmd, spec);
        assert_eq!(&h, *c, "{spec}: built on this host to {h}, in the Debian 13 chroot to {c}");
    }
    let rebuilt: Vec<&str> = rebuild.iter().map(|(spec, _)| **spec).collect();
    assert_built(&host_cache, &rebuilt);
}

/// A recipe in the build environment: chrooted, read-only but for its work directory and a
/// private /tmp, without a network, and invisible from the host's mount table. The probe script
/// records what it could do; the assertions read its record.
#[test]
fn a_recipe_in_the_build_environment_has_no_network_and_writes_only_its_work_directory() {
    use ignite::data::runtime::{BuildEnvironment, Builder, RECIPE_LIB, Recipe};
    use ignite::store::bundle::recipe::{self, BuildRoot};
    use ignite::store::bundle::{BundleStore, NoProgress, builder};
    use std::borrow::Cow;

    if !require_root_and_tools("running a recipe in the build environment", &[]) {
        return;
    }
    let store = BundleStore::new(shared_cache());
    let env = Builder::builtin().expect("builder.yaml");
    let root = builder::ensure(&store, &env, &NoProgress).expect("build environment");
    let script = r#"
set -u
try() { if "$@" 2>/dev/null; then echo "$*: yes"; else echo "$*: no"; fi; }
{
    try touch /usr/bin/planted
    try touch /planted
    try touch /tmp/ok
    try touch /ignite/scratch/ok
    try cp /ignite/package /ignite/package.copy
    try sh -c 'echo x > /ignite/package'
    try bash -c 'exec 3<>/dev/tcp/1.1.1.1/53'
    try bash -c 'exec 3<>/dev/tcp/127.0.0.1/53'
    echo "cc: $CC"
    echo "root: $(ls -d /ignite /usr/lib/gcc 2>&1 | tr '\n' ' ')"
} > "$IGNITE_OUT"
"#;
    let probe = Recipe {
        name: "probe".into(),
        script: Cow::Owned(script.into()),
        lib: Cow::Borrowed(RECIPE_LIB),
        files: Vec::new(),
        environment: BuildEnvironment::Debian,
    };
    let work = tempfile::tempdir().expect("work");
    let package = work.path().join("package.tgz");
    std::fs::write(&package, b"the package").expect("package");
    let run_dir = work.path().join("run");
    std::fs::create_dir(&run_dir).expect("run dir");
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo").lines().count();
    let built =
        recipe::run(&probe, &package, &run_dir, Some(&BuildRoot { root: &root, environment: &env.environment }))
            .expect("the probe recipe runs");
    let record = std::fs::read_to_string(&built.path).expect("record");
    for expected in [
        "touch /usr/bin/planted: no",
        "touch /planted: no",
        "touch /tmp/ok: yes",
        "touch /ignite/scratch/ok: yes",
        "cp /ignite/package /ignite/package.copy: yes",
        "sh -c echo x > /ignite/package: no",
        "bash -c exec 3<>/dev/tcp/1.1.1.1/53: no",
        "bash -c exec 3<>/dev/tcp/127.0.0.1/53: no",
        "cc: gcc-12",
        "root: /ignite /usr/lib/gcc",
    ] {
        assert!(record.lines().any(|l| l.trim_end() == expected), "expected {expected:?} in:\n{record}");
    }
    assert_eq!(std::fs::read(&package).expect("package"), b"the package", "the package is read-only");
    assert!(run_dir.join("scratch/ok").is_file(), "the work directory is the recipe's /ignite");
    assert!(!root.join("usr/bin/planted").exists() && !root.join("planted").exists());
    assert!(!root.join("tmp/ok").exists(), "/tmp is private to the run");
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo").lines().count();
    assert_eq!(mounts_before, mounts_after, "the recipe's mounts leaked into the host's namespace");
}

/// `IGNITE_DEBIAN_MIRROR` replaces the build environment's mirror: with an empty build
/// environment and the runtime's own package already downloaded, a pull fetches the Debian
/// packages from the mirror named there (here a closed local port, so it fails at once and the
/// error names it; were the variable ignored, the pull would fetch from Debian's archive and
/// succeed), and a value that is no mirror URL is refused before anything is fetched.
#[test]
fn the_build_environments_mirror_is_the_operators_when_set() {
    if !require_root_and_tools("pulling a runtime into an empty cache", &[]) {
        return;
    }
    let cache = tempfile::tempdir().expect("tempdir");
    // Only the runtime's package: the build environment's 39 Debian packages must be fetched.
    let shared = shared_cache().join("packages");
    let runtime_package = std::fs::read_dir(&shared)
        .expect("the shared cache's packages")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("rquickjs-sys-"))
        .max()
        .expect("a downloaded rquickjs-sys package in the shared cache (ignite runtime pull quickjs)");
    std::fs::create_dir_all(cache.path().join("packages")).expect("packages dir");
    let to = cache.path().join("packages").join(&runtime_package);
    if std::fs::hard_link(shared.join(&runtime_package), &to).is_err() {
        std::fs::copy(shared.join(&runtime_package), &to).expect("copy the package");
    }
    let pull = |mirror: &str| {
        Command::new(ignite_bin())
            .args(["runtime", "pull", "quickjs"])
            .env("IGNITE_CACHE_DIR", cache.path())
            .env("IGNITE_DEBIAN_MIRROR", mirror)
            .env_remove("IGNITE_LOG")
            .output()
            .expect("spawn ignite")
    };

    let closed = "http://127.0.0.1:9/debian";
    let out = pull(closed);
    let stderr = stderr_of(&out);
    assert!(!out.status.success(), "a pull through a closed mirror succeeded:\n{stderr}");
    assert!(stderr.contains("127.0.0.1:9"), "the error names the mirror it used:\n{stderr}");
    assert!(stderr.contains("for the build environment") && stderr.contains("IGNITE_DEBIAN_MIRROR"), "{stderr}");
    let debian = cache.path().join("packages/debian");
    let fetched = std::fs::read_dir(&debian).map_or(0, |d| d.filter_map(|e| e.ok()).count());
    assert_eq!(fetched, 0, "nothing came from anywhere else");

    let out = pull("ftp://mirror.example/debian");
    let stderr = stderr_of(&out);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("IGNITE_DEBIAN_MIRROR: "), "the bad value is named:\n{stderr}");
    assert!(!stderr.contains("failed to fetch"), "refused before fetching anything:\n{stderr}");
    let recorded = std::fs::read_dir(cache.path().join("index")).map_or(0, |d| d.filter_map(|e| e.ok()).count());
    assert_eq!(recorded, 0, "no bundle was recorded");
}
