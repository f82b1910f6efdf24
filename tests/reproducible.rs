//! Host-independent bundles: the built-in runtimes' rootfs recipes run inside the pinned Debian
//! build environment (runtimes/builder/builder.yaml), so the same runtime version gives the
//! same bundle, byte for byte, whatever the host has. Shown by building bun (binary plus the
//! shared libraries it loads) and quickjs (compiled from source, statically linked) twice:
//! with ignite on this host, and with the same binary inside a Debian 13 chroot — another
//! glibc, compiler, tar and gzip — each into an empty cache, and comparing the digests.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

const RUNTIMES: &[&str] = &["quickjs@0.16.2", "bun@1.4.5"];

/// `ignite runtime pull SPEC` into `cache`, returning the digest it reports.
fn pull(cmd: &mut Command, spec: &str) -> String {
    let out: Output = cmd.output().expect("spawn ignite");
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "pull {spec} failed:\n{stderr}");
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

#[test]
fn a_runtime_version_builds_to_the_same_bundle_on_this_host_and_in_a_debian_13_chroot() {
    if !require_root_and_tools(
        "building bundles in a Debian 13 chroot",
        &[
            ("mmdebstrap", "apt-get install mmdebstrap"),
            ("unshare", "apt-get install util-linux"),
            ("chroot", "apt-get install coreutils"),
        ],
    ) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");

    // This host, into an empty cache.
    let host_cache = work.path().join("host-cache");
    let mut host = Vec::new();
    for spec in RUNTIMES {
        let mut cmd = Command::new(ignite_bin());
        cmd.args(["runtime", "pull", spec]).env("IGNITE_CACHE_DIR", &host_cache).env_remove("IGNITE_LOG");
        host.push(pull(&mut cmd, spec));
    }

    // Debian 13 (trixie), a minimal root from Debian's archive, with this ignite copied in.
    let root = work.path().join("trixie");
    run(Command::new("mmdebstrap")
        .args(["--variant=minbase", "--quiet", "trixie"])
        .arg(&root)
        .arg("http://deb.debian.org/debian"));
    // The two environments really differ where a host-built bundle would: the C library a
    // dynamically linked runtime loads, and the compiler that builds QuickJS.
    let host_libc = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").expect("host libc");
    let chroot_libc = std::fs::read(root.join("usr/lib/x86_64-linux-gnu/libc.so.6")).expect("trixie libc");
    assert_ne!(host_libc, chroot_libc, "the chroot must have another glibc than the host");
    std::fs::copy(ignite_bin(), root.join("usr/local/bin/ignite")).expect("copy ignite");
    std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).expect("resolv.conf");
    // The host's trusted CAs, as ignite uses them on the host (a TLS-inspecting proxy's CA is
    // there); a minimal Debian root has none.
    let cas = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if cas.is_file() {
        std::fs::create_dir_all(root.join("etc/ssl/certs")).expect("certs dir");
        std::fs::copy(cas, root.join("etc/ssl/certs/ca-certificates.crt")).expect("copy CAs");
    }
    // The chroot's root is made a mount point first, as a container's root is: ignite refuses
    // to build where the build's mounts could propagate to the host.
    let mut chroot = Vec::new();
    for spec in RUNTIMES {
        let script = format!(
            "mount --bind {root} {root} && mount -t proc proc {root}/proc && mount --rbind /dev {root}/dev && \
             exec chroot {root} env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin IGNITE_CACHE_DIR=/var/cache/ignite \
             /usr/local/bin/ignite runtime pull {spec}",
            root = root.display()
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--fork", "sh", "-c", &script]);
        chroot.push(pull(&mut cmd, spec));
    }
    for ((spec, h), c) in RUNTIMES.iter().zip(&host).zip(&chroot) {
        assert_eq!(h, c, "{spec}: built on this host to {h}, in the Debian 13 chroot to {c}");
    }
    // The bundles were built here, in both environments (not taken from a cache).
    for cache in [host_cache.as_path(), &root.join("var/cache/ignite")] {
        for spec in RUNTIMES {
            let index: serde_json::Value = serde_json::from_slice(
                &std::fs::read(cache.join("index").join(format!("{spec}.json"))).expect("index record"),
            )
            .expect("json");
            assert_eq!(index["source"], "built", "{spec} in {}", cache.display());
        }
        assert!(Path::new(cache).join("builders").is_dir(), "no build environment in {}", cache.display());
    }
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
