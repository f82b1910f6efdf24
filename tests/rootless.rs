//! Rootless mode end to end: the real `ignite` binary run by a normal user with subordinate
//! ids and a systemd user manager, under the OCI runtime the stage names. These need such a
//! host, so they are `#[ignore]`d in an ordinary `cargo test` (as root they would test nothing
//! rootless); the host matrix's rootless stage (tests/hosts/guest.sh) runs them as user
//! `tester` with `--ignored`, beside the sandbox, escape, audit, spawn and server suites (the
//! escape suite's memory, process and time limits hold rootless too).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::server::Server;
use common::*;

/// A sandbox for a rootless test; in CI a root or unprepared runner fails with what is missing.
fn rootless_sandbox() -> Option<Sandbox> {
    if !rootless() {
        let msg = "rootless tests need a normal user with IGNITE_TEST_ROOTLESS=1 (tests/hosts/run.sh runs them)";
        assert!(std::env::var("CI").is_err(), "{msg}");
        skipped(msg);
        return None;
    }
    require_sandbox().then(Sandbox::new)
}

/// The user's first subordinate range in `file` (`/etc/subuid` or `/etc/subgid`).
fn subordinate(file: &str) -> (u32, u32) {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default();
    let uid = nix::unistd::geteuid().as_raw().to_string();
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() == 3 && (f[0] == user || f[0] == uid)).then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
        })
        .next()
        .unwrap_or_else(|| panic!("no range for {user} in {file}"))
}

/// Connects to the registry (no TLS: reachability only) and says who the program is.
const NET_PROBE: &str = r#"
import fs from "node:fs";
import net from "node:net";
const registry = await new Promise<string>((done) => {
  const s = net.connect({ host: "registry.npmjs.org", port: 443, timeout: 10000 }, () => { s.destroy(); done("CONNECTED"); });
  s.on("error", (e: any) => done(e.code ?? String(e)));
  s.on("timeout", () => { s.destroy(); done("TIMEOUT"); });
});
const uidMap = fs.readFileSync("/proc/self/uid_map", "utf8").trim().split("\n").map((l) => l.trim().split(/\s+/).map(Number));
console.log(JSON.stringify({ registry, uid: process.getuid(), groups: process.getgroups(), uidMap }));
"#;

/// The delegated subtree of this user's systemd manager.
fn user_manager_cgroup() -> String {
    let uid = nix::unistd::geteuid().as_raw();
    format!("/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service")
}

#[test]
#[ignore = "needs a rootless host: run by tests/hosts/run.sh's rootless stage"]
fn a_rootless_run_maps_root_to_the_user_and_the_program_to_a_subordinate_id_with_its_limits() {
    let Some(sb) = rootless_sandbox() else { return };
    let code = r#"
import { readFileSync } from "node:fs";
const status = readFileSync("/proc/self/status", "utf8");
console.log(JSON.stringify({
  uidMap: readFileSync("/proc/self/uid_map", "utf8").trim().split("\n").map((l) => l.trim().split(/\s+/).map(Number)),
  gidMap: readFileSync("/proc/self/gid_map", "utf8").trim().split("\n").map((l) => l.trim().split(/\s+/).map(Number)),
  uid: process.getuid(),
  capEff: status.match(/^CapEff:\s*(\S+)/m)[1],
}));
"#;
    let dir = sb.ts_service("ids", "  memoryMb: 96\n", code);
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(r["status"], "ok", "{r}");
    let seen: serde_json::Value = serde_json::from_str(r["stdout"].as_str().unwrap().trim()).unwrap();
    let me = nix::unistd::geteuid().as_raw();
    let my_gid = nix::unistd::getegid().as_raw();
    let (sub_uid, uid_count) = subordinate("/etc/subuid");
    let (sub_gid, gid_count) = subordinate("/etc/subgid");
    let n = uid_count.min(gid_count).min(65_536);
    // Container root is the user; the run uids are the subordinate ids; nothing else is mapped.
    assert_eq!(seen["uidMap"], serde_json::json!([[0, me, 1], [200_000, sub_uid, n]]), "{seen}");
    assert_eq!(seen["gidMap"], serde_json::json!([[0, my_gid, 1], [200_000, sub_gid, n]]), "{seen}");
    let uid = seen["uid"].as_u64().unwrap() as u32;
    assert!((200_000..200_000 + n).contains(&uid), "the program runs as run uid {uid}");
    assert_eq!(seen["capEff"], "0000000000000000", "{seen}");
    // The limits are applied (by the user's systemd manager), not silently dropped.
    assert_eq!(r["metrics"]["memoryLimitMb"], 96, "{r}");
    sb.assert_cgroup_gone(r["containerId"].as_str().unwrap());
    sb.assert_no_leaks();
}

#[test]
#[ignore = "needs a rootless host: run by tests/hosts/run.sh's rootless stage"]
fn a_rootless_run_cannot_touch_the_users_files_nor_signal_the_users_processes() {
    let Some(sb) = rootless_sandbox() else { return };
    // The user's own private file, and a world-writable one, inside the service directory; the
    // user's home beside it.
    let home = sb.work.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("secret"), "the user's secret").unwrap();
    let mut victim = std::process::Command::new("sleep").arg("300").spawn().unwrap();
    let code = r#"
import { readFileSync, writeFileSync, readdirSync } from "node:fs";
const tries = {};
const attempt = (name, f) => { try { f(); tries[name] = "done"; } catch (e) { tries[name] = e.code ?? String(e); } };
attempt("readPrivate", () => readFileSync("/app/private.txt", "utf8"));
attempt("writeOpen", () => writeFileSync("/app/open.txt", "changed"));
attempt("writeApp", () => writeFileSync("/app/new.txt", "x"));
attempt("readHome", () => readFileSync(process.env.HOME_SECRET, "utf8"));
attempt("killVictim", () => process.kill(Number(process.env.VICTIM), "SIGKILL"));
tries.root = readdirSync("/");
console.log(JSON.stringify(tries));
"#;
    let yaml = format!(
        "service:\n  name: files\n  entry: index.ts\n  env:\n    HOME_SECRET: {}\n    VICTIM: \"{}\"\n",
        home.join("secret").display(),
        victim.id()
    );
    let dir = sb.service(
        "files",
        &[("service.yaml", &yaml), ("index.ts", code), ("private.txt", "private"), ("open.txt", "open")],
    );
    std::fs::set_permissions(dir.join("private.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(dir.join("open.txt"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let (out, r) = sb.run_json(&dir, &[]);
    let alive = victim.try_wait().unwrap().is_none();
    let _ = victim.kill();
    let _ = victim.wait();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let tries: serde_json::Value = serde_json::from_str(r["stdout"].as_str().unwrap().trim()).unwrap();
    // The user's 0600 file is root's inside, and the program is not root: denied.
    assert_eq!(tries["readPrivate"], "EACCES", "{tries}");
    assert_eq!(tries["writeOpen"], "EROFS", "{tries}");
    assert_eq!(tries["writeApp"], "EROFS", "{tries}");
    // The host's paths are not there at all, nor the user's processes (a pid namespace).
    assert_eq!(tries["readHome"], "ENOENT", "{tries}");
    assert_eq!(tries["killVictim"], "ESRCH", "{tries}");
    assert!(alive, "the user's process was killed");
    assert_eq!(std::fs::read_to_string(dir.join("open.txt")).unwrap(), "open");
    assert_eq!(std::fs::read_to_string(home.join("secret")).unwrap(), "the user's secret");
    assert!(!tries["root"].as_array().unwrap().iter().any(|e| e == "home"), "{tries}");
    sb.assert_no_leaks();
}

#[test]
#[ignore = "needs a rootless host: run by tests/hosts/run.sh's rootless stage"]
fn what_rootless_mode_cannot_give_is_refused_before_anything_starts() {
    let Some(sb) = rootless_sandbox() else { return };
    let code = "console.log('ran');\n";
    // A writable root. (A network is given rootless: tests/grants.rs runs rootless too.)
    let dir = sb.service(
        "refused-writable",
        &[
            ("service.yaml", "service:\n  name: refused\n  entry: index.ts\n"),
            ("index.ts", code),
            ("ignite.policy.yaml", "security:\n  filesystem:\n    readOnly: false\n"),
        ],
    );
    let out = sb.cmd().arg("run").arg(&dir).output().unwrap();
    let stderr = stderr_of(&out);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("security.filesystem.readOnly: false") && stderr.contains("is not available rootless"),
        "{stderr}"
    );
    assert!(!stdout_of(&out).contains("ran"), "the program ran");
    // Without newuidmap and newgidmap the OCI runtime cannot map the subordinate ids (crun
    // would fail writing gid_map): said before anything starts, with the package.
    let bare = sb.work.path().join("bin-without-uidmap");
    std::fs::create_dir(&bare).unwrap();
    let crun = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("crun"))
        .find(|p| p.is_file())
        .expect("crun in PATH");
    std::os::unix::fs::symlink(&crun, bare.join("crun")).unwrap();
    let dir = sb.ts_service("no-uidmap", "", code);
    let out = sb.cmd().env("PATH", &bare).arg("run").arg(&dir).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = stderr_of(&out);
    assert!(stderr.contains("`newuidmap` is not in PATH") && stderr.contains("apt-get install uidmap"), "{stderr}");
    assert!(!stdout_of(&out).contains("ran"), "the program ran");
    // The trap: the cgroupfs driver rootless would run without limits (crun exits 0 with none).
    let dir = sb.ts_service("cgroupfs", "", code);
    let out = sb.cmd().args(["--cgroup-driver", "cgroupfs", "run"]).arg(&dir).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr_of(&out).contains("cannot limit rootless sandboxes"), "{}", stderr_of(&out));
    assert!(!stdout_of(&out).contains("ran"), "the program ran");
    // Dependency installs are given rootless with their scratch on the state directory's
    // tmpfs (memory charged to the install's limit); a state directory on disk would leave
    // what the install writes uncapped, so it is refused before the install starts.
    let disk = tempfile::Builder::new().prefix("ignite-state-").tempdir_in("/var/tmp").unwrap();
    let fs = nix::sys::statfs::statfs(disk.path()).unwrap();
    assert_ne!(fs.filesystem_type(), nix::sys::statfs::TMPFS_MAGIC, "/var/tmp is a tmpfs here: this needs a disk");
    let dir = sb.ts_service("install-on-disk", "", code);
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let package =
        format!(r#"{{"name":"svc","private":true,"description":"{nonce}","dependencies":{{"lodash":"4.17.21"}}}}"#);
    std::fs::write(dir.join("package.json"), package).unwrap();
    let out = sb.cmd().env("IGNITE_STATE_DIR", disk.path()).arg("install").arg(&dir).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = stderr_of(&out);
    assert!(stderr.contains(&format!("the state directory {} is not on a tmpfs", disk.path().display())), "{stderr}");
    let installs = disk.path().join("installs");
    let left: Vec<_> =
        std::fs::read_dir(&installs).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "the refused install left {left:?}");
    sb.assert_no_leaks();
}

/// Writes into its output directory what `IGNITE_INPUT` asks: files it keeps to itself (0600,
/// in a 0700 directory), a link to the user's file, or more than the caps allow.
const OUT_WRITER: &str = r#"
import { chmodSync, mkdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
const d = process.env.IGNITE_OUT_DIR;
const job = JSON.parse(process.env.IGNITE_INPUT ?? "{}");
let refused = null;
try {
  if (job.link) {
    writeFileSync(`${d}/result.txt`, "hello out\n");
    mkdirSync(`${d}/private`, { mode: 0o700 });
    writeFileSync(`${d}/private/secret.bin`, new Uint8Array([0, 1, 2, 255]), { mode: 0o600 });
    chmodSync(`${d}/private/secret.bin`, 0o600);
    symlinkSync(job.link, `${d}/link`);
  }
  if (job.many) for (let i = 0; i < job.many; i++) writeFileSync(`${d}/f${i}`, "x");
  if (job.bytes) writeFileSync(`${d}/big`, new Uint8Array(job.bytes));
} catch (e) { refused = e.code; }
const st = statSync(d);
console.log(JSON.stringify({ refused, owner: st.uid, mode: st.mode & 0o7777, uid: process.getuid() }));
"#;

#[test]
#[ignore = "needs a rootless host: run by tests/hosts/run.sh's rootless stage"]
fn output_files_come_back_rootless_with_the_caps_of_root_and_no_link_followed() {
    let Some(sb) = rootless_sandbox() else { return };
    // The user's own file, which a link in the output directory names.
    let mine = sb.work.path().join("mine.txt");
    std::fs::write(&mine, "the user's own file").unwrap();
    let dir = sb.ts_service("out-writer", "", OUT_WRITER);
    let out_dir = sb.work.path().join("outputs");
    let input = serde_json::json!({ "link": mine }).to_string();
    let (out, v) = sb.run_json(&dir, &["--input", &input, "--out", out_dir.to_str().unwrap()]);
    assert_eq!(v["status"], "ok", "{v}\n{}", stderr_of(&out));
    // The directory is the program's own (its run uid, mode 0700), as the host tmpfs is as root.
    let seen: serde_json::Value = serde_json::from_str(v["stdout"].as_str().unwrap().trim()).unwrap();
    assert_eq!(seen["refused"], serde_json::Value::Null, "{seen}");
    assert_eq!(seen["owner"], seen["uid"], "{seen}");
    assert_eq!(seen["mode"], 0o700, "{seen}");
    // What the program kept to itself is read back all the same; the link is not followed.
    assert_eq!(std::fs::read(out_dir.join("result.txt")).unwrap(), b"hello out\n");
    assert_eq!(std::fs::read(out_dir.join("private/secret.bin")).unwrap(), [0, 1, 2, 255]);
    assert!(std::fs::symlink_metadata(out_dir.join("link")).is_err(), "a link is never written back");
    assert_eq!(v["filesLimit"], "not returned (not regular files, or nested too deep): link", "{v}");
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "the user's own file");
    // Files written back belong to the user, like everything ignite writes.
    let meta = std::fs::metadata(out_dir.join("private/secret.bin")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), nix::unistd::geteuid().as_raw());
    // The caps of root's host tmpfs: 64 files, 8 MiB; the program is refused (ENOSPC).
    let many = sb.work.path().join("many");
    let (_, v) = sb.run_json(&dir, &["--input", r#"{"many":80}"#, "--out", many.to_str().unwrap()]);
    let seen: serde_json::Value = serde_json::from_str(v["stdout"].as_str().unwrap().trim()).unwrap();
    assert_eq!(seen["refused"], "ENOSPC", "{v}");
    assert_eq!(std::fs::read_dir(&many).unwrap().count(), 64, "{v}");
    assert!(
        v["filesLimit"].as_str().unwrap().starts_with("/tmp/out was full (8388608 bytes or 64 files at most)"),
        "{v}"
    );
    let big = sb.work.path().join("big");
    let (_, v) = sb.run_json(&dir, &["--input", r#"{"bytes":9437184}"#, "--out", big.to_str().unwrap()]);
    let seen: serde_json::Value = serde_json::from_str(v["stdout"].as_str().unwrap().trim()).unwrap();
    assert_eq!(seen["refused"], "ENOSPC", "{v}");
    assert!(v["filesLimit"].as_str().unwrap().contains("was full"), "{v}");
    sb.assert_no_leaks();
}

#[test]
#[ignore = "needs a rootless host: run by tests/hosts/run.sh's rootless stage"]
fn doctor_reports_the_rootless_prerequisites_and_refusals() {
    let Some(sb) = rootless_sandbox() else { return };
    let out = sb.cmd().args(["doctor", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = |name: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {v}"))
            .clone()
    };
    for name in
        ["privileges", "subordinate-ids", "uidmap", "user-manager", "oci-rootless", "user-namespaces", "cgroup-driver"]
    {
        assert_eq!(check(name)["status"], "ok", "{}", check(name));
    }
    assert!(check("privileges")["value"].as_str().unwrap().contains("rootless"));
    assert!(check("cgroup-driver")["value"].as_str().unwrap().contains("user's bus"));
    assert_eq!(check("rootless-limits")["status"], "warn");
    // Only the refusals warn: the host is otherwise ready (doctor exits 0 on warnings).
    assert_eq!(out.status.code(), Some(0), "{}", stdout_of(&out));
    assert!(Path::new(&user_manager_cgroup()).is_dir());
}

#[test]
#[ignore = "needs a rootless host: run by tests/hosts/run.sh's rootless stage"]
fn a_killed_rootless_ignite_leaves_nothing_that_cleanup_does_not_remove() {
    let Some(sb) = rootless_sandbox() else { return };
    let dir = sb.ts_service("long", "  timeoutMs: 120000\n", "await new Promise((r) => setTimeout(r, 100000));\n");
    let mut child = sb.cmd().arg("run").arg(&dir).arg("--json").spawn().unwrap();
    // Wait until the container runs: its init's pid file is in this test's own state, and its
    // scope (named by the run id) is under the user's manager.
    let slice = Path::new(&user_manager_cgroup()).join("ignite.slice");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60 * slowdown());
    let scope = loop {
        let running = std::fs::read_dir(sb.state.path().join("runs"))
            .into_iter()
            .flatten()
            .flatten()
            .find(|e| e.path().join("init.pid").is_file())
            .map(|e| slice.join(format!("ignite-{}.scope", e.file_name().to_string_lossy())));
        if let Some(scope) = running.filter(|s| s.is_dir()) {
            break scope;
        }
        assert!(std::time::Instant::now() < deadline, "the run never started under {}", slice.display());
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // The run's processes (crun puts them in a `container` subgroup of the scope), each with its
    // start time, so that a reused pid is not taken for one of them.
    let started = |pid: &str| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit(')').next()?.split_whitespace().nth(19).map(str::to_string)
    };
    let mut processes = Vec::new();
    for dir in [scope.clone(), scope.join("container")] {
        for pid in std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default().split_whitespace() {
            if let Some(t) = started(pid) {
                processes.push((pid.to_string(), t));
            }
        }
    }
    assert!(!processes.is_empty(), "no process in {}", scope.display());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    let out = sb.cmd().arg("cleanup").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while scope.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!scope.exists(), "cleanup left the scope {}", scope.display());
    // None of the run's processes survives (other tests' runs may be alive beside it).
    for (pid, t) in &processes {
        assert_ne!(started(pid).as_ref(), Some(t), "the run's process {pid} is left");
    }
    sb.assert_no_leaks();
}

#[test]
#[ignore = "needs a rootless host: run by tests/hosts/run.sh's rootless stage"]
fn bundles_are_not_built_rootless_but_come_in_by_import_and_run() {
    let Some(sb) = rootless_sandbox() else { return };
    let fresh = sb.work.path().join("fresh-cache");
    // Building (chrooted) is refused before anything is downloaded, with the way out.
    let out = sb.cmd().env("IGNITE_CACHE_DIR", &fresh).args(["runtime", "pull", "bun"]).output().unwrap();
    let stderr = stderr_of(&out);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("not available rootless") && stderr.contains("ignite runtime import"), "{stderr}");
    assert!(!fresh.join("packages").read_dir().is_ok_and(|mut d| d.next().is_some()), "something was downloaded");
    // An archive of a built bundle (here exported from the user's own cache) imports rootless,
    // and runs from the fresh cache. QuickJS's (about 1 MB, where bun's is 50): the emulated
    // host of the rootless stage packs and unpacks it in seconds.
    let archive = sb.work.path().join("quickjs.tar");
    let out = sb.cmd().args(["runtime", "export", "quickjs", "-o"]).arg(&archive).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let out = sb.cmd().env("IGNITE_CACHE_DIR", &fresh).args(["runtime", "import"]).arg(&archive).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let dir = sb.service(
        "imported",
        &[
            ("service.yaml", "service:\n  name: imported\n  runtime: quickjs\n  entry: index.js\n"),
            ("index.js", "console.log('hello from quickjs');\n"),
        ],
    );
    let out = sb.cmd().env("IGNITE_CACHE_DIR", &fresh).arg("run").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains("hello from quickjs"), "{}", stdout_of(&out));
    sb.assert_no_leaks();
}

#[test]
#[ignore = "needs a rootless host: run by tests/hosts/run.sh's rootless stage"]
fn runc_and_youki_are_refused_rootless_because_they_leave_the_users_groups_on_the_program() {
    let Some(sb) = rootless_sandbox() else { return };
    let dir = sb.ts_service("groups", "", "console.log('ran');\n");
    let out = sb.cmd().env("IGNITE_OCI_RUNTIME", "runc").arg("run").arg(&dir).output().unwrap();
    let stderr = stderr_of(&out);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("runc leaves the invoking user's supplementary groups") && stderr.contains("crun"),
        "{stderr}"
    );
    assert!(!stdout_of(&out).contains("ran"));
    // youki 0.7 writes `deny` to setgroups before its maps, so it cannot drop them either.
    // It is judged by what it says it is: a stand-in that says youki and records any other call
    // (none must come: the refusal is before anything starts).
    let called = sb.work.path().join("youki-called");
    let youki = sb.work.path().join("youki");
    std::fs::write(
        &youki,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'youki version: 0.7.0'; echo 'libseccomp: 2.5.4'; exit 0; fi\n\
             echo \"$@\" >> {}\nexit 1\n",
            called.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&youki, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = sb.cmd().env("IGNITE_OCI_RUNTIME", &youki).arg("run").arg(&dir).output().unwrap();
    let stderr = stderr_of(&out);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("rootless mode: youki leaves the invoking user's supplementary groups"), "{stderr}");
    assert!(!called.exists(), "youki was called: {:?}", std::fs::read_to_string(&called));
    let out = sb.cmd().env("IGNITE_OCI_RUNTIME", &youki).args(["doctor", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "oci-rootless").unwrap().clone();
    assert_eq!(row["status"], "fail", "{row}");
    assert!(row["value"].as_str().unwrap().starts_with("youki leaves"), "{row}");
    // Doctor says the same, as a failure with the way out.
    let out = sb.cmd().env("IGNITE_OCI_RUNTIME", "runc").args(["doctor", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "oci-rootless").unwrap().clone();
    assert_eq!(row["status"], "fail", "{row}");
    assert_ne!(out.status.code(), Some(0));
    // And the runtime the user gets without asking is crun.
    let out = sb.cmd().env_remove("IGNITE_OCI_RUNTIME").arg("run").arg(&dir).arg("--json").output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(r["ociRuntime"], "crun", "{}", stderr_of(&out));
    sb.assert_no_leaks();
}

#[test]
#[ignore = "needs a rootless host: run by tests/hosts/run.sh's rootless stage"]
fn a_rootless_server_is_ready_runs_warm_with_networks_and_says_sessions_are_not_available() {
    let Some(sb) = rootless_sandbox() else { return };
    // A service whose policy asks for a network, and one asking for a writable root, which
    // rootless mode refuses.
    let net = sb.service(
        "services/net",
        &[
            ("service.yaml", "service:\n  name: net\n  entry: index.ts\n"),
            ("index.ts", NET_PROBE),
            ("ignite.policy.yaml", "security:\n  network:\n    enabled: true\n"),
        ],
    );
    sb.service(
        "services/writable",
        &[
            ("service.yaml", "service:\n  name: writable\n  entry: index.ts\n"),
            ("index.ts", "console.log('ran');\n"),
            ("ignite.policy.yaml", "security:\n  filesystem:\n    readOnly: false\n"),
        ],
    );
    let services = net.parent().unwrap().to_path_buf();
    std::fs::set_permissions(&services, std::fs::Permissions::from_mode(0o755)).unwrap();
    let srv = Server::start(&sb, &services, &["--pool-min", "1", "--pool-max", "2"], &[]);
    let ready = srv.get("/ready", None);
    assert_eq!(ready.status, 200, "{}", ready.body);
    // Inline code: the first request of its kind runs cold, the next from the warm pool.
    let body = serde_json::json!({ "runtime": "bun", "code": "console.log(process.getuid())" });
    let cold = srv.post_json("/v1/execute", &body);
    assert_eq!(cold.status, 200, "{}", cold.body);
    assert_eq!(cold.json()["status"], "ok", "{}", cold.body);
    srv.wait_parked("inline", 1.0);
    let r = srv.post_json("/v1/execute", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let report = r.json();
    assert_eq!(report["status"], "ok", "{report}");
    assert_eq!(report["metrics"]["warm"], true, "{report}");
    let uid: u32 = report["stdout"].as_str().unwrap().trim().parse().unwrap();
    assert!((200_000..265_536).contains(&uid), "{report}");
    // Sessions rest on a host mount: refused, as a standing property of this server.
    srv.post("/v1/sessions", None, "").assert_error(501, "not_available_rootless");
    // A run asking for a network gets one: in the user namespace that owns it, with the same
    // maps (its uid a subordinate id, no group but its own).
    let r = srv.post_json("/services/net/execute", &serde_json::json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    let report = r.json();
    assert_eq!(report["status"], "ok", "{report}");
    let v: serde_json::Value = serde_json::from_str(report["stdout"].as_str().unwrap().trim()).unwrap();
    assert_eq!(v["registry"], "CONNECTED", "{v}");
    assert!((200_000..265_536).contains(&v["uid"].as_u64().unwrap()), "{v}");
    // No supplementary group, and never the user's (container gid 0).
    assert!(v["groups"].as_array().unwrap().iter().all(|g| g.as_u64() != Some(0)), "{v}");
    let (sub, _) = subordinate("/etc/subuid");
    let first = v["uidMap"].as_array().unwrap();
    assert_eq!(first[0], serde_json::json!([0, nix::unistd::geteuid().as_raw(), 1]), "{v}");
    assert_eq!(first[1][1], sub, "{v}");
    // A run asking for a writable root: refused before anything starts.
    let r = srv.post_json("/services/writable/execute", &serde_json::json!({}));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(!r.body.contains("ran"), "{}", r.body);
    assert!(r.body.contains("is not available rootless"), "{}", r.body);
    let (status, stderr) = srv.stop();
    assert!(status.success(), "{stderr}");
    sb.assert_no_leaks();
}

/// Every test the rootless stage leaves out (tests/hosts/rootless-skip) exists in its suite, with
/// a reason above it: a renamed test cannot drop out of the list unnoticed.
#[test]
fn the_rootless_skip_list_names_existing_tests_with_reasons() {
    let list = std::fs::read_to_string(repo().join("tests/hosts/rootless-skip")).unwrap();
    let mut reason = false;
    let mut entries = 0;
    for line in list.lines() {
        if line.starts_with('#') {
            reason = true;
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let [suite, test] = line.split_whitespace().collect::<Vec<_>>()[..] else { panic!("not `SUITE TEST`: {line}") };
        assert!(reason, "no reason above {line}");
        let source = std::fs::read_to_string(repo().join(format!("tests/{suite}.rs"))).unwrap();
        assert!(
            source.contains(&format!("fn {test}(")) || source.contains(&format!("    {test} =>")),
            "{suite} has no test {test}"
        );
        entries += 1;
    }
    assert!(entries > 0);
}
