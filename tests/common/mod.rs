//! Shared harness for integration tests: drives the real `ignite` binary against the real
//! OCI runtime, and checks that nothing was left behind.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn ignite_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ignite"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn find_in_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// The OCI runtime the sandbox tests drive: `IGNITE_TEST_OCI_RUNTIME` (a name looked up in
/// PATH, or a path), so that the same tests can run under runc, crun or youki; runc otherwise.
pub fn test_oci_runtime() -> String {
    std::env::var("IGNITE_TEST_OCI_RUNTIME").ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| "runc".into())
}

fn oci_runtime_present(name: &str) -> bool {
    if name.contains('/') { Path::new(name).is_file() } else { find_in_path(name) }
}

/// Where CI installs youki (see `.ci/run`), and how.
pub const YOUKI_CI_PATH: &str = "/var/cache/ignite-ci/youki/bin/youki";
pub const YOUKI_INSTALL: &str = "apt-get install libseccomp-dev pkg-config && cargo install youki --version 0.7.0 --locked --features v1,v2,seccomp --root /var/cache/ignite-ci/youki (or set IGNITE_TEST_YOUKI=/path/to/youki)";

/// The youki binary for the youki tests: `IGNITE_TEST_YOUKI`, CI's install, or `youki` in
/// PATH. Missing: skipped with the reason outside CI, a failure saying how to install it in CI.
pub fn require_youki() -> Option<PathBuf> {
    if !require_sandbox() {
        return None;
    }
    let candidates = std::env::var_os("IGNITE_TEST_YOUKI")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from(YOUKI_CI_PATH)])
        .chain(
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|p| std::env::split_paths(&p).map(|d| d.join("youki")).collect::<Vec<_>>()),
        );
    if let Some(found) = candidates.into_iter().find(|p| p.is_file()) {
        return Some(found);
    }
    let msg = format!("youki not found (IGNITE_TEST_YOUKI, {YOUKI_CI_PATH}, PATH); install it: {YOUKI_INSTALL}");
    if in_ci() {
        panic!("{msg}");
    }
    skipped(&msg);
    None
}

/// Says that a test is skipped, and why, where `cargo test` shows it: the harness captures
/// `eprintln!` (and shows it only for failing tests), but not writes to the stderr handle.
pub fn skipped(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}

/// Checks what sandbox tests need. Outside CI a missing prerequisite skips the test with
/// a printed reason; in CI (CI=true) it fails the test with what to install.
pub fn require_sandbox() -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() && !rootless() {
        missing.push(
            "root (run the tests as root; or, as a user set up for rootless mode, with IGNITE_TEST_ROOTLESS=1)"
                .to_string(),
        );
    }
    if !find_in_path("runc") {
        missing.push("runc (apt-get install runc)".to_string());
    }
    let oci = test_oci_runtime();
    if oci != "runc" && !oci_runtime_present(&oci) {
        missing.push(format!("the OCI runtime IGNITE_TEST_OCI_RUNTIME={oci} names"));
    }
    prerequisites("sandbox test prerequisites missing", &missing)
}

/// Whether the suites run rootless (`IGNITE_TEST_ROOTLESS=1`, as a normal user with
/// subordinate ids and a systemd user manager: the host matrix's rootless stage).
pub fn rootless() -> bool {
    std::env::var_os("IGNITE_TEST_ROOTLESS").is_some_and(|v| v == "1") && !nix::unistd::geteuid().is_root()
}

/// True when nothing is `missing`; otherwise fails the test in CI and skips it (printed) outside.
fn prerequisites(what: &str, missing: &[String]) -> bool {
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{what}: {}", missing.join(", "));
    if in_ci() {
        panic!("{msg}");
    }
    skipped(&msg);
    false
}

/// Checks that the test runs as root and that each `(tool, how to install it)` is in PATH.
/// Outside CI a missing one skips the test with a printed reason; in CI it fails the test.
pub fn require_root_and_tools(what: &str, tools: &[(&str, &str)]) -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".to_string());
    }
    for (tool, install) in tools {
        if !find_in_path(tool) {
            missing.push(format!("{tool} ({install})"));
        }
    }
    prerequisites(&format!("{what} needs"), &missing)
}

/// A per-test state directory (so leak checks see only this test's runs) and the shared
/// bundle cache (so the runtime bundle is fetched once).
pub struct Sandbox {
    pub state: tempfile::TempDir,
    pub work: tempfile::TempDir,
    /// `--oci-runtime` for every command; [`test_oci_runtime`] unless set.
    pub oci_runtime: String,
}

/// The cache the tests share: `IGNITE_CACHE_DIR`, or ignite's default (rootless, the user's).
pub fn shared_cache() -> PathBuf {
    std::env::var_os("IGNITE_CACHE_DIR").map_or_else(ignite::engine::default_cache_dir, PathBuf::from)
}

/// A string no other test run uses (e.g. to give a package.json a cache key of its own).
pub fn nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{t:x}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Pids of slirp4netns processes started by the ignite process `ignite_pid` (they name its
/// network-namespace thread, `/proc/<pid>/task/<tid>/ns/net`, on their command line).
pub fn slirp_processes_of(ignite_pid: u32) -> Vec<u32> {
    let needle = format!("/proc/{ignite_pid}/task/");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        // As root it names a thread of ignite's; rootless, the pid of ignite's namespace
        // holder, and it is ignite's child.
        if cmdline.contains("slirp4netns") && (cmdline.contains(&needle) || parent_of(pid) == Some(ignite_pid)) {
            // A zombie keeps its cmdline empty, so this is a live process.
            found.push(pid);
        }
    }
    found
}

/// The parent pid of `pid`, if it is alive.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses (which may hold anything): state, then ppid.
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Rootless: the processes holding a run's user and network namespaces for the ignite process
/// `ignite_pid` (its forked children: same command line, no exec). Empty as root, where a
/// thread of ignite holds the namespace.
pub fn ns_holders_of(ignite_pid: u32) -> Vec<u32> {
    let Ok(own) = std::fs::read(format!("/proc/{ignite_pid}/cmdline")) else { return Vec::new() };
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid != ignite_pid
            && parent_of(pid) == Some(ignite_pid)
            && std::fs::read(entry.path().join("cmdline")).is_ok_and(|c| c == own)
        {
            found.push(pid);
        }
    }
    found
}

impl Sandbox {
    pub fn new() -> Sandbox {
        // Rootless, state goes where the user's default is, its runtime directory: a tmpfs, which
        // a rootless install's scratch needs.
        let state = match std::env::var_os("XDG_RUNTIME_DIR").filter(|_| rootless()) {
            Some(dir) => tempfile::Builder::new().prefix("ignite-state-").tempdir_in(dir),
            None => tempfile::Builder::new().prefix("ignite-state-").tempdir(),
        }
        .expect("state dir");
        let work = tempfile::Builder::new().prefix("ignite-work-").tempdir().expect("work dir");
        // The sandbox user (nobody) must be able to read service directories.
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Sandbox { state, work, oci_runtime: test_oci_runtime() }
    }

    /// A sandbox whose commands drive the OCI runtime `oci` (a name in PATH or a path).
    pub fn with_oci_runtime(oci: &Path) -> Sandbox {
        Sandbox { oci_runtime: oci.to_string_lossy().into_owned(), ..Sandbox::new() }
    }

    /// `<cache>/deps`, where installed npm dependencies are kept.
    pub fn deps_cache(&self) -> PathBuf {
        shared_cache().join("deps")
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(ignite_bin());
        c.env("IGNITE_STATE_DIR", self.state.path());
        c.env("IGNITE_OCI_RUNTIME", &self.oci_runtime);
        c.env_remove("IGNITE_LOG");
        // Never the test runner's own stdin: `ignite run` passes a regular file on to the
        // program. A test that gives a run a stdin sets it.
        c.stdin(std::process::Stdio::null());
        c
    }

    /// [`cmd`](Self::cmd) with the open-file limit (soft and hard) lowered to `limit` first: a
    /// shell sets it and execs ignite, so the child's pid is ignite's.
    pub fn cmd_with_nofile(&self, limit: u64) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\"")).arg(ignite_bin());
        c.env("IGNITE_STATE_DIR", self.state.path());
        c.env("IGNITE_OCI_RUNTIME", &self.oci_runtime);
        c.env_remove("IGNITE_LOG");
        c.stdin(std::process::Stdio::null());
        c
    }

    /// Writes a service directory `name` with the given files (path, content).
    pub fn service(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.work.path().join(name);
        std::fs::create_dir_all(&dir).expect("service dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for (path, text) in files {
            let p = dir.join(path);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(&p, text).expect("write");
        }
        dir
    }

    /// A service with a service.yaml built from `yaml_extra` lines and an entry `index.ts`.
    pub fn ts_service(&self, name: &str, yaml_extra: &str, code: &str) -> PathBuf {
        let yaml = format!("service:\n  name: {name}\n  entry: index.ts\n{yaml_extra}");
        self.service(name, &[("service.yaml", &yaml), ("index.ts", code)])
    }

    /// Runs `ignite run DIR --json ARGS` and parses the report.
    pub fn run_json(&self, dir: &Path, args: &[&str]) -> (Output, serde_json::Value) {
        let out = self.cmd().arg("run").arg(dir).arg("--json").args(args).output().expect("spawn ignite");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out, v)
    }

    /// [`run_json`](Self::run_json), also returning the pid the ignite process had (to look
    /// for processes it may have left, e.g. with [`slirp_processes_of`]).
    pub fn run_json_pid(&self, dir: &Path, args: &[&str]) -> (Output, serde_json::Value, u32) {
        let child = self
            .cmd()
            .arg("run")
            .arg(dir)
            .arg("--json")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn ignite");
        let pid = child.id();
        let out = child.wait_with_output().expect("wait for ignite");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out, v, pid)
    }

    /// Asserts that no container, cgroup, mount or run directory (nor the directory of a run's
    /// policy grants: network files, writable layer) of this state dir remains.
    pub fn assert_no_leaks(&self) {
        // `uids`: the lock (and passwd, group) files of each run's uid, removed when released.
        for dir in ["runs", "installs", "grants", "uids"] {
            let dir = self.state.path().join(dir);
            if let Ok(entries) = std::fs::read_dir(&dir) {
                let left: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
                assert!(left.is_empty(), "state left behind in {}: {left:?}", dir.display());
            }
        }
        // Each OCI runtime keeps one directory per container under its `--root`
        // (`<state>/oci/<kind>`): none may remain, whichever runtime ran.
        for root in std::fs::read_dir(self.state.path().join("oci")).into_iter().flatten().flatten() {
            let left: Vec<_> = std::fs::read_dir(root.path())
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name())
                .collect();
            assert!(left.is_empty(), "containers left behind in {}: {left:?}", root.path().display());
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let state = self.state.path().to_string_lossy().to_string();
        assert!(!mountinfo.contains(&state), "mounts left behind under {state}");
    }

    /// Asserts that the cgroup directories of a finished run are gone.
    pub fn assert_cgroup_gone(&self, container_id: &str) {
        for ctrl in ["memory", "pids", "cpu,cpuacct", "cpuacct", "cpu", "unified", ""] {
            let p = Path::new("/sys/fs/cgroup").join(ctrl).join("ignite").join(container_id);
            assert!(!p.exists(), "cgroup left behind: {}", p.display());
        }
        // The systemd driver's scope (pure cgroup v2 hosts booted with systemd), as root in the
        // system manager's tree, rootless in the user manager's.
        let uid = nix::unistd::geteuid().as_raw();
        for base in
            ["/sys/fs/cgroup".to_string(), format!("/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service")]
        {
            let scope = Path::new(&base).join("ignite.slice").join(format!("ignite-{container_id}.scope"));
            assert!(!scope.exists(), "cgroup left behind: {}", scope.display());
        }
    }
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How this host keeps its cgroups: v1 controllers (the development machines' hybrid tree) or
/// cgroup2 only (the host-matrix VM), and whether systemd is the init system.
#[allow(dead_code)]
pub fn host_cgroup() -> (bool, bool) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let v1_memory = mountinfo.lines().any(|l| l.contains(" - cgroup ") && l.split(',').any(|o| o == "memory"));
    (!v1_memory, Path::new("/run/systemd/system").is_dir())
}

/// How many times slower than the development machines this host runs programs:
/// `IGNITE_TEST_SLOWDOWN` (the host-matrix VM, under QEMU's software emulation, sets it), else
/// 1. Tests whose time limits must leave a runtime time to start scale them by it.
#[allow(dead_code)]
pub fn slowdown() -> u64 {
    std::env::var("IGNITE_TEST_SLOWDOWN").ok().and_then(|v| v.parse().ok()).filter(|&f| f >= 1).unwrap_or(1)
}

/// The OCI runtime the tests drive (`IGNITE_TEST_OCI_RUNTIME`: a name or a path), by name.
#[allow(dead_code)]
pub fn oci_name() -> String {
    let oci = test_oci_runtime();
    oci.rsplit('/').next().unwrap_or(&oci).to_string()
}

/// The OCI runtime the tests drive, as a command on `sb`'s own state (`--root
/// <state>/oci/<name>`, where ignite keeps it): for tests that look at containers themselves.
#[allow(dead_code)]
pub fn oci_cmd(sb: &Sandbox) -> Command {
    let mut c = Command::new(test_oci_runtime());
    c.arg("--root").arg(sb.state.path().join("oci").join(oci_name()));
    c
}

pub mod server;
