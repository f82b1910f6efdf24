//! npm dependencies: the install step (its own sandbox, network, lockfile and scripts rules),
//! the cache (second run installs nothing and needs no network; concurrent runs install once;
//! failures leave nothing), and cleanup on every path. These tests reach the npm registry.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

macro_rules! sandbox_test {
    () => {{
        if !require_sandbox() {
            return;
        }
        Sandbox::new()
    }};
}

/// lodash 4.17.20 as bun.lock pins it (`bun install --lockfile-only` with `"lodash": "4.17.20"`).
const BUN_LOCK_LODASH_4_17_20: &str = r#"{
  "lockfileVersion": 1,
  "workspaces": {
    "": {
      "name": "pinned",
      "dependencies": {
        "lodash": "^4.17.0",
      },
    },
  },
  "packages": {
    "lodash": ["lodash@4.17.20", "", {}, "sha512-PlhdFcillOINfeV7Ni6oF1TAEayyZBoZ8bcshTHqOYJYlrqzRK5hagpagky5o4HfCzzd1TRkXPMFq6cKk9rGmA=="],
  }
}
"#;

/// The same pin as npm writes it.
const PACKAGE_LOCK_LODASH_4_17_20: &str = r#"{"name":"pinned","lockfileVersion":3,"requires":true,"packages":{"":{"name":"pinned","dependencies":{"lodash":"^4.17.0"}},"node_modules/lodash":{"version":"4.17.20","resolved":"https://registry.npmjs.org/lodash/-/lodash-4.17.20.tgz","integrity":"sha512-PlhdFcillOINfeV7Ni6oF1TAEayyZBoZ8bcshTHqOYJYlrqzRK5hagpagky5o4HfCzzd1TRkXPMFq6cKk9rGmA=="}}}"#;

/// A package.json whose cache key no earlier test run used (the description is unique).
fn package_json(deps: &str, extra: &str) -> String {
    format!(r#"{{"name":"svc","private":true,"description":"{}","dependencies":{{{deps}}}{extra}}}"#, nonce())
}

/// A service (with lodash as a dependency and scripts opted in) whose own postinstall runs
/// `probe` with bun inside the install sandbox; the probe writes `node_modules/<result>`, which
/// the program prints at run time.
fn probing_service(sb: &Sandbox, name: &str, probe: &str, result: &str) -> std::path::PathBuf {
    let scripts = serde_json::json!({ "postinstall": format!("bun -e '{}'", probe.replace('\n', " ")) });
    let code = format!("import fs from 'node:fs';\nconsole.log(fs.readFileSync('/node_modules/{result}', 'utf8'));\n");
    let dir = sb.ts_service(name, "  install:\n    scripts: true\n", &code);
    std::fs::write(
        dir.join("package.json"),
        package_json(r#""lodash":"4.17.21""#, &format!(r#","scripts":{scripts}"#)),
    )
    .unwrap();
    dir
}

fn run(sb: &Sandbox, dir: &Path) -> (std::process::Output, serde_json::Value) {
    sb.run_json(dir, &[])
}

fn stdout_line(r: &serde_json::Value) -> String {
    r["stdout"].as_str().unwrap_or_default().trim().to_string()
}

/// Every entry of an installed tree: owned by ignite's user (root, or rootless the user, never
/// the install's uid), readable by the sandbox user, no
/// setuid/setgid/sticky bits, no group/other write, only files, directories and symlinks.
fn assert_tree_is_safe(root: &Path) {
    let mut stack = vec![root.to_path_buf()];
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            seen += 1;
            let ft = meta.file_type();
            assert!(ft.is_dir() || ft.is_file() || ft.is_symlink(), "special file {}", entry.path().display());
            if ft.is_symlink() {
                continue;
            }
            let ignite = nix::unistd::geteuid().as_raw();
            assert_eq!(meta.uid(), ignite, "{} not owned by ignite's user", entry.path().display());
            let mode = meta.permissions().mode() & 0o7777;
            assert_eq!(mode & 0o7000, 0, "{} has mode {mode:o}", entry.path().display());
            assert_eq!(mode & 0o022, 0, "{} is writable by others: {mode:o}", entry.path().display());
            assert_eq!(mode & 0o004, 0o004, "{} is not world-readable: {mode:o}", entry.path().display());
            if ft.is_dir() {
                assert_eq!(mode & 0o001, 0o001, "{} is not traversable: {mode:o}", entry.path().display());
                stack.push(entry.path());
            }
        }
    }
    assert!(seen > 0, "empty tree at {}", root.display());
}

/// A directory holding only a link to the OCI runtime the tests drive (runc unless named
/// otherwise; rootless, with the newuidmap and newgidmap every rootless run needs): PATH for an
/// ignite that must not find slirp4netns or ip (proving it started no network).
fn path_without_network_tools() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let oci = test_oci_runtime();
    let oci = if oci.contains('/') { "runc".to_string() } else { oci };
    let idmap: &[&str] = if rootless() { &["newuidmap", "newgidmap"] } else { &[] };
    for tool in std::iter::once(oci.as_str()).chain(idmap.iter().copied()) {
        let found = std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).map(|d| d.join(tool)).find(|c| c.is_file()))
            .unwrap_or_else(|| panic!("{tool} in PATH"));
        std::os::unix::fs::symlink(found, d.path().join(tool)).unwrap();
    }
    d
}

#[test]
fn installed_once_then_cached_without_network() {
    let sb = sandbox_test!();
    let code = "import _ from 'lodash';\nconsole.log(_.chunk([1, 2, 3], 2).length, _.VERSION);\n";
    let dir = sb.ts_service("cached", "", code);
    std::fs::write(dir.join("package.json"), package_json(r#""lodash":"4.17.21""#, "")).unwrap();

    let (out, r) = run(&sb, &dir);
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    assert_eq!(stdout_line(&r), "2 4.17.21");
    let install = &r["install"];
    assert_eq!(install["cached"], false, "{r}");
    assert_eq!(install["packages"], 1, "{r}");
    assert!(install["installer"].as_str().unwrap().starts_with("bun@"), "{r}");
    assert!(stderr_of(&out).contains("installing 1 dependency with bun"), "{}", stderr_of(&out));
    let key = install["key"].as_str().unwrap().to_string();
    let tree = sb.deps_cache().join(format!("sha256-{key}")).join("node_modules");
    assert!(tree.join("lodash/package.json").is_file(), "{}", tree.display());
    assert_tree_is_safe(&tree);
    assert!(!dir.join("node_modules").exists(), "the service directory was written to");

    // Second run: the same tree, no install — and no network tool is even findable.
    let path = path_without_network_tools();
    let out = sb.cmd().env("PATH", path.path()).arg("run").arg(&dir).arg("--json").output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    assert_eq!(stdout_line(&r), "2 4.17.21");
    assert_eq!(r["install"]["cached"], true, "{r}");
    assert_eq!(r["install"]["key"], key.as_str());
    assert!(!stderr_of(&out).contains("installing"), "{}", stderr_of(&out));
    sb.assert_no_leaks();
}

#[test]
fn without_the_cache_a_missing_network_tool_is_named() {
    let sb = sandbox_test!();
    let dir = sb.ts_service("notool", "", "console.log(1);\n");
    std::fs::write(dir.join("package.json"), package_json(r#""lodash":"4.17.21""#, "")).unwrap();
    // `ip` is there, slirp4netns is not.
    let path = path_without_network_tools();
    let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].into_iter().find(|p| Path::new(p).is_file());
    std::os::unix::fs::symlink(ip.expect("ip (iproute2) installed"), path.path().join("ip")).unwrap();
    let out = sb.cmd().env("PATH", path.path()).arg("run").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("`slirp4netns`") && err.contains("apt-get install slirp4netns"), "{err}");
    sb.assert_no_leaks();
}

fn pinned_by_lockfile(lockfile: &str, text: &str) {
    let sb = sandbox_test!();
    let code = "import _ from 'lodash';\nconsole.log(_.VERSION);\n";
    let dir = sb.ts_service("pinned", "", code);
    // The range allows the newest 4.x; the lockfile pins 4.17.20.
    std::fs::write(dir.join("package.json"), r#"{"name":"pinned","dependencies":{"lodash":"^4.17.0"}}"#).unwrap();
    std::fs::write(dir.join(lockfile), text).unwrap();
    let (out, r) = run(&sb, &dir);
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    assert_eq!(stdout_line(&r), "4.17.20", "{r}");
    assert_eq!(r["install"]["lockfile"], lockfile, "{r}");
    sb.assert_no_leaks();
}

#[test]
fn bun_lock_pins_an_older_version() {
    pinned_by_lockfile("bun.lock", BUN_LOCK_LODASH_4_17_20);
}

#[test]
fn package_lock_pins_an_older_version() {
    pinned_by_lockfile("package-lock.json", PACKAGE_LOCK_LODASH_4_17_20);
}

#[test]
fn lockfile_that_does_not_match_is_an_error_and_leaves_nothing() {
    let sb = sandbox_test!();
    let dir = sb.ts_service("drift", "", "console.log(1);\n");
    // package.json gained a dependency the lockfile does not have.
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"pinned","dependencies":{"lodash":"^4.17.0","left-pad":"1.3.0"}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("bun.lock"), BUN_LOCK_LODASH_4_17_20).unwrap();
    let out = sb.cmd().arg("run").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("package.json does not match bun.lock"), "{err}");
    assert!(err.contains("left-pad"), "the installer's own words are quoted: {err}");
    assert_nothing_cached(&sb, &key_of(&dir, false));
    sb.assert_no_leaks();
}

/// The cache key ignite derives for a service directory (the library's own function, so the
/// test can look for exactly this service's artefacts in the shared cache).
fn key_of(dir: &Path, scripts: bool) -> String {
    let installer =
        ignite::data::runtime::Registry::builtin().unwrap().resolve(ignite::store::deps::INSTALLER).unwrap().key();
    let manifest = std::fs::read(dir.join("package.json")).unwrap();
    let lockfile = ignite::store::deps::LOCKFILES
        .iter()
        .find_map(|name| std::fs::read(dir.join(name)).ok().map(|bytes| ignite::store::deps::Lockfile { name, bytes }));
    ignite::store::deps::cache_key(&installer, scripts, &manifest, lockfile.as_ref())
}

/// Neither an installed tree nor a staging directory for `key` in the cache.
fn assert_nothing_cached(sb: &Sandbox, key: &str) {
    let deps = sb.deps_cache();
    assert!(!deps.join(format!("sha256-{key}")).exists(), "a tree was kept for {key}");
    let prefix = format!(".tmp-{key}-");
    let temps: Vec<_> = std::fs::read_dir(deps.join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(temps.is_empty(), "staging dirs left: {temps:?}");
}

#[test]
fn failed_install_names_the_package_and_leaves_nothing() {
    let sb = sandbox_test!();
    let dir = sb.ts_service("nosuch", "", "console.log(1);\n");
    std::fs::write(dir.join("package.json"), package_json(r#""ignite-test-no-such-package-zz9q":"1.0.0""#, ""))
        .unwrap();
    let out = sb.cmd().arg("run").arg(&dir).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON error on stdout");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("installing dependencies with bun@"), "{msg}");
    assert!(msg.contains("ignite-test-no-such-package-zz9q"), "{msg}");
    assert!(msg.contains("404"), "the registry's answer is quoted: {msg}");
    assert_nothing_cached(&sb, &key_of(&dir, false));
    sb.assert_no_leaks();
}

/// A service whose own postinstall writes a marker into node_modules; the program reports
/// whether the marker is in the tree it sees.
fn scripts_service(sb: &Sandbox, yaml_extra: &str) -> PathBuf {
    let code =
        "import fs from 'node:fs';\nconsole.log(fs.existsSync('/node_modules/marker.txt') ? 'ran' : 'did not run');\n";
    let dir = sb.ts_service("scripts", yaml_extra, code);
    let scripts =
        r#","scripts":{"postinstall":"bun -e \"require('fs').writeFileSync('node_modules/marker.txt', 'ran')\""}"#;
    std::fs::write(dir.join("package.json"), package_json(r#""lodash":"4.17.21""#, scripts)).unwrap();
    dir
}

#[test]
fn lifecycle_scripts_are_off_by_default() {
    let sb = sandbox_test!();
    let dir = scripts_service(&sb, "");
    let (out, r) = run(&sb, &dir);
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    assert_eq!(stdout_line(&r), "did not run", "{r}");
    sb.assert_no_leaks();
}

#[test]
fn lifecycle_scripts_run_when_opted_in() {
    let sb = sandbox_test!();
    let dir = scripts_service(&sb, "  install:\n    scripts: true\n");
    let (out, r) = run(&sb, &dir);
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    assert_eq!(stdout_line(&r), "ran", "{r}");
    // The same package.json without the opt-in is another tree (the flag is in the key).
    std::fs::write(dir.join("service.yaml"), "service:\n  name: scripts\n  entry: index.ts\n").unwrap();
    let (out, r2) = run(&sb, &dir);
    assert_eq!(stdout_line(&r2), "did not run", "{r2}\n{}", stderr_of(&out));
    assert_ne!(r["install"]["key"], r2["install"]["key"]);
    sb.assert_no_leaks();
}

/// The host's own IPv4 addresses other than loopback.
fn host_addresses() -> Vec<std::net::Ipv4Addr> {
    nix::ifaddrs::getifaddrs()
        .unwrap()
        .filter_map(|i| i.address.and_then(|a| a.as_sockaddr_in().map(|s| s.ip())))
        .filter(|ip| !ip.is_loopback())
        .collect()
}

#[test]
fn install_sandbox_reaches_the_registry_but_not_the_host() {
    let sb = sandbox_test!();
    // A service on the host, listening on every address: what the install must not reach.
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut targets: Vec<String> = host_addresses().iter().map(|ip| format!("{ip}:{port}")).collect();
    targets.push(format!("127.0.0.1:{port}"));
    targets.push("169.254.169.254:80".into());
    // The gateway of the install's own network: slirp4netns maps it to the host's loopback
    // unless told not to. Read from the namespace's routing table.
    targets.push(format!("GATEWAY:{port}"));
    let probe = format!(
        r#"const net = require("net"); const fs = require("fs");
const hex = fs.readFileSync("/proc/net/route", "utf8").split("\n").map(l => l.split("\t")).find(f => f[1] === "00000000")[2];
const gw = [0, 2, 4, 6].map(i => parseInt(hex.substr(i, 2), 16)).reverse().join(".");
const tryConnect = (t) => new Promise(done => {{
  const [host, port] = t.replace("GATEWAY", gw).split(":");
  const s = net.connect({{ host, port: Number(port) }});
  const end = (r) => {{ s.destroy(); done(host + ":" + port + " " + r); }};
  s.on("connect", () => end("CONNECTED"));
  s.on("error", e => end(e.code || String(e)));
  setTimeout(() => end("timeout"), 3000);
}});
Promise.all({targets:?}.map(tryConnect)).then(r => fs.writeFileSync("node_modules/probe.txt", r.join("\n")));"#
    );
    let dir = probing_service(&sb, "probe", &probe, "probe.txt");
    let (out, r) = run(&sb, &dir);
    // The registry was reached: the install itself succeeded.
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    let results = r["stdout"].as_str().unwrap();
    assert_eq!(results.lines().count(), targets.len(), "{results}");
    assert!(!results.contains("CONNECTED"), "the install reached the host:\n{results}");
    assert!(listener.accept().is_err(), "the host's listener got a connection:\n{results}");
    sb.assert_no_leaks();
}

#[test]
fn links_planted_by_the_install_are_not_followed() {
    // A host directory the install must never copy from.
    let sb = sandbox_test!();
    let host_dir = sb.work.path().join("host-secrets");
    std::fs::create_dir_all(host_dir.join("node_modules/secret")).unwrap();
    std::fs::write(host_dir.join("node_modules/secret/index.js"), "module.exports = 'leaked';\n").unwrap();
    // The install replaces its working directory with a link to that host path.
    let script = format!(
        r#"bun -e 'const fs = require("fs"); fs.renameSync("/tmp/app", "/tmp/app.old"); fs.symlinkSync("{}", "/tmp/app");'"#,
        host_dir.display()
    );
    let scripts = serde_json::json!({ "postinstall": script });
    let dir = sb.ts_service("planted", "  install:\n    scripts: true\n", "console.log(1);\n");
    std::fs::write(
        dir.join("package.json"),
        package_json(r#""lodash":"4.17.21""#, &format!(r#","scripts":{scripts}"#)),
    )
    .unwrap();
    let out = sb.cmd().arg("run").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("does not accept") && err.contains("other than a directory"), "{err}");
    assert_nothing_cached(&sb, &key_of(&dir, true));
    sb.assert_no_leaks();
}

#[test]
fn concurrent_runs_share_one_install() {
    let sb = sandbox_test!();
    let dir = sb.ts_service("twins", "", "import _ from 'lodash';\nconsole.log(_.VERSION);\n");
    std::fs::write(dir.join("package.json"), package_json(r#""lodash":"4.17.21""#, "")).unwrap();
    let spawn =
        || sb.cmd().arg("run").arg(&dir).arg("--json").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (a, b) = (spawn(), spawn());
    let reports: Vec<serde_json::Value> = [a, b]
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr_of(&out)))
        })
        .collect();
    for r in &reports {
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(stdout_line(r), "4.17.21");
    }
    let installed = reports.iter().filter(|r| r["install"]["cached"] == false).count();
    assert_eq!(installed, 1, "exactly one run installs: {reports:?}");
    assert_eq!(reports[0]["install"]["key"], reports[1]["install"]["key"]);
    let key = key_of(&dir, false);
    assert_eq!(reports[0]["install"]["key"], key.as_str());
    assert!(sb.deps_cache().join(format!("sha256-{key}/node_modules/lodash")).is_dir());
    sb.assert_no_leaks();
}

#[test]
fn declared_dependencies_are_checked_against_the_installed_tree() {
    let sb = sandbox_test!();
    let dir =
        sb.ts_service("declared", "  dependencies: [lodash]\n", "import _ from 'lodash';\nconsole.log(_.VERSION);\n");
    std::fs::write(dir.join("package.json"), package_json(r#""lodash":"4.17.21""#, "")).unwrap();
    let (out, r) = run(&sb, &dir);
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    std::fs::write(
        dir.join("service.yaml"),
        "service:\n  name: declared\n  entry: index.ts\n  dependencies: [lodash, left-pad]\n",
    )
    .unwrap();
    let out = sb.cmd().arg("run").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = stderr_of(&out);
    assert!(err.contains("\"left-pad\"") && err.contains("package.json"), "{err}");
    sb.assert_no_leaks();
}

#[test]
fn own_node_modules_is_used_as_is() {
    let sb = sandbox_test!();
    let dir = sb.ts_service("vendored", "  dependencies: [tiny]\n", "import t from 'tiny';\nconsole.log(t);\n");
    std::fs::write(dir.join("package.json"), package_json(r#""lodash":"4.17.21""#, "")).unwrap();
    std::fs::create_dir_all(dir.join("node_modules/tiny")).unwrap();
    std::fs::write(dir.join("node_modules/tiny/package.json"), r#"{"name":"tiny","main":"index.js"}"#).unwrap();
    std::fs::write(dir.join("node_modules/tiny/index.js"), "module.exports = 'vendored';\n").unwrap();
    let (out, r) = run(&sb, &dir);
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    assert_eq!(stdout_line(&r), "vendored");
    assert!(r.get("install").is_none(), "nothing was installed: {r}");
    assert!(!dir.join("node_modules/lodash").exists());
    sb.assert_no_leaks();
}

#[test]
fn install_command_warms_the_cache() {
    let sb = sandbox_test!();
    let dir = sb.ts_service("warm", "", "console.log(1);\n");
    std::fs::write(dir.join("package.json"), package_json(r#""lodash":"4.17.21""#, "")).unwrap();
    let install = || {
        let out = sb.cmd().arg("install").arg(&dir).arg("--json").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        assert_eq!(v["service"], "warm");
        assert_eq!(v["modules"], "installed");
        v
    };
    assert_eq!(install()["install"]["cached"], false);
    assert_eq!(install()["install"]["cached"], true);
    let (_, r) = run(&sb, &dir);
    assert_eq!(r["install"]["cached"], true, "{r}");
    sb.assert_no_leaks();
}

/// Starts `ignite run` on a service whose install hangs in its preinstall script, and waits
/// until the install's container runs (its network is up and its run directory exists).
fn start_hanging_install(sb: &Sandbox) -> (std::process::Child, std::thread::JoinHandle<String>, String) {
    let dir = sb.ts_service("hang", "  install:\n    scripts: true\n", "console.log(1);\n");
    let scripts = r#","scripts":{"preinstall":"bun -e \"await Bun.sleep(120000)\""}"#;
    std::fs::write(dir.join("package.json"), package_json(r#""lodash":"4.17.21""#, scripts)).unwrap();
    let key = key_of(&dir, true);
    let mut child = sb.cmd().arg("run").arg(&dir).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let running = !slirp_processes_of(child.id()).is_empty()
            && std::fs::read_dir(sb.state.path().join("runs")).is_ok_and(|d| d.flatten().count() > 0);
        if running {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "ignite ended before the install ran");
        assert!(Instant::now() < deadline, "the install never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let the container get to the script.
    std::thread::sleep(Duration::from_millis(500));
    (child, reader, key)
}

fn mounts_under(path: &Path) -> Vec<String> {
    let prefix = path.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&prefix))
        .map(str::to_string)
        .collect()
}

#[test]
fn ctrl_c_during_install_tears_everything_down() {
    let sb = sandbox_test!();
    let (child, reader, key) = start_hanging_install(&sb);
    let pid = child.id();
    // As root the scratch is a tmpfs of its own; rootless a directory of the state's tmpfs.
    assert_eq!(
        !mounts_under(sb.state.path()).is_empty(),
        !rootless(),
        "the scratch tmpfs is mounted during the install"
    );
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = reader.join().unwrap();
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(slirp_processes_of(pid).is_empty(), "slirp4netns outlived the install");
    assert!(mounts_under(sb.state.path()).is_empty());
    assert_nothing_cached(&sb, &key);
    sb.assert_no_leaks();
}

#[test]
fn killed_ignite_during_install_is_cleaned_up() {
    let sb = sandbox_test!();
    let (mut child, reader, key) = start_hanging_install(&sb);
    let pid = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    drop(reader);
    // slirp4netns notices on its own that ignite is gone (its exit fd closed).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !slirp_processes_of(pid).is_empty() {
        assert!(Instant::now() < deadline, "slirp4netns outlived the killed ignite");
        std::thread::sleep(Duration::from_millis(20));
    }
    let installs = sb.state.path().join("installs");
    let left = || std::fs::read_dir(&installs).map(|d| d.flatten().count()).unwrap_or(0);
    if rootless() {
        // What the install's uid wrote is not the user's to remove until taken back.
        assert_eq!(left(), 1, "a killed ignite leaves its scratch to be reaped");
    } else {
        assert!(!mounts_under(sb.state.path()).is_empty(), "a killed ignite leaves its scratch mount to be reaped");
    }
    let out = sb.cmd().arg("cleanup").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(mounts_under(sb.state.path()).is_empty(), "{:?}", mounts_under(sb.state.path()));
    assert_eq!(left(), 0, "cleanup removed the install's scratch");
    assert_nothing_cached(&sb, &key);
    sb.assert_no_leaks();
}

#[test]
fn install_runs_hardened() {
    // The install's own sandbox, seen from inside by a lifecycle script: not root, no
    // capabilities, no_new_privs, seccomp filtering, read-only root, and its network
    // namespace is not the host's.
    let sb = sandbox_test!();
    let probe = r#"const fs = require("fs"); const s = fs.readFileSync("/proc/self/status", "utf8");
const f = k => s.split("\n").find(l => l.startsWith(k + ":")).split(":")[1].trim();
let rootRo = false; try { fs.writeFileSync("/x", "1"); } catch (e) { rootRo = e.code === "EROFS"; }
fs.writeFileSync("node_modules/inside.json", JSON.stringify({ uid: f("Uid"), capEff: f("CapEff"), capBnd: f("CapBnd"), nnp: f("NoNewPrivs"), seccomp: f("Seccomp"), rootRo, net: fs.readlinkSync("/proc/self/ns/net") }));"#;
    let dir = probing_service(&sb, "inside", probe, "inside.json");
    let (out, r) = run(&sb, &dir);
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout_line(&r)).expect("JSON from the install");
    // A uid of the install's own, like a run's: real, effective, saved and filesystem uid.
    let uids: Vec<u32> = v["uid"].as_str().unwrap().split_whitespace().map(|u| u.parse().unwrap()).collect();
    assert_eq!(uids.len(), 4, "{v}");
    assert!(uids.iter().all(|&u| u == uids[0] && ignite::sandbox::identity::is_run_uid(u)), "{v}");
    assert_eq!(v["capEff"], "0000000000000000", "{v}");
    assert_eq!(v["capBnd"], "0000000000000000", "{v}");
    assert_eq!(v["nnp"], "1", "{v}");
    assert_eq!(v["seccomp"], "2", "{v}");
    assert_eq!(v["rootRo"], true, "{v}");
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(v["net"].as_str().unwrap(), host_net.to_string_lossy(), "{v}");
    sb.assert_no_leaks();
}

#[test]
fn runs_stay_offline_even_with_installed_dependencies() {
    // The run after an install has the usual loopback-only network: fetch fails.
    let sb = sandbox_test!();
    let code = "import _ from 'lodash';\ntry { await fetch('https://registry.npmjs.org/lodash'); console.log('online'); } catch { console.log('offline', _.VERSION); }\n";
    let dir = sb.ts_service("offline", "", code);
    std::fs::write(dir.join("package.json"), package_json(r#""lodash":"4.17.21""#, "")).unwrap();
    let (out, r) = run(&sb, &dir);
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    assert_eq!(stdout_line(&r), "offline 4.17.21", "{r}");
    sb.assert_no_leaks();
}

/// Local, tarball, git and URL dependency specs are refused before anything is installed or
/// started, with the dependency, its spec and the rule; a registry spec beside them is fine.
#[test]
fn non_registry_dependency_specs_are_refused_before_any_sandbox() {
    let sb = sandbox_test!();
    for (spec, what) in [
        ("evil.tgz", "a tarball file"),
        ("file:../x", "a local path"),
        ("link:../x", "a local path"),
        ("git+https://github.com/lodash/lodash.git", "a git repository"),
        ("github:lodash/lodash", "a git repository"),
        ("lodash/lodash", "GitHub repository"),
        ("https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz", "a URL"),
        ("npm:lodash@github:lodash/lodash", "a git repository"),
    ] {
        let dir = sb.ts_service("nonreg", "", "console.log('ran');\n");
        std::fs::write(dir.join("package.json"), package_json(&format!(r#""lodash":"^4","x":"{spec}""#), "")).unwrap();
        for command in ["run", "install"] {
            let out = sb.cmd().arg(command).arg(&dir).output().expect("spawn ignite");
            let err = stderr_of(&out);
            assert!(!out.status.success(), "{command} {spec}: {err}");
            for needle in ["package.json", "`dependencies.x`", &format!("{spec:?}"), what, "npm registry"] {
                assert!(err.contains(needle), "{command} {spec}: expected {needle:?} in: {err}");
            }
            assert!(!err.contains("installing"), "{command} {spec}: an install started: {err}");
            assert!(!stdout_of(&out).contains("ran"), "{command} {spec}: the service ran");
        }
    }
    // No install workspace, container or mount was ever made.
    sb.assert_no_leaks();
    assert!(!sb.state.path().join("installs").exists(), "an install workspace was created");
}
