//! Rootless mode end to end: the real `ignite` binary run by a normal user with subordinate
//! ids and a systemd user manager, under the OCI runtime the stage names. These need such a
//! host, so they are `#[ignore]`d in an ordinary `cargo test` (as root they would test nothing
//! rootless); the host matrix's rootless stage (tests/hosts/guest.sh) runs them as user
//! `tester` with `--ignored`, beside the sandbox, escape, audit, spawn and server suites (the
//! escape suite's memory, process and time limits hold rootless too).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

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
    for (policy, want) in [
        ("security:\n  network:\n    enabled: true\n", "security.network.enabled: true"),
        ("security:\n  filesystem:\n    readOnly: false\n", "security.filesystem.readOnly: false"),
    ] {
        let dir = sb.service(
            &format!("refused-{}", nonce()),
            &[
                ("service.yaml", "service:\n  name: refused\n  entry: index.ts\n"),
                ("index.ts", code),
                ("ignite.policy.yaml", policy),
            ],
        );
        let out = sb.cmd().arg("run").arg(&dir).output().unwrap();
        let stderr = stderr_of(&out);
        assert_ne!(out.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains(want) && stderr.contains("is not available rootless"), "{stderr}");
        assert!(!stdout_of(&out).contains("ran"), "the program ran");
    }
    let dir = sb.ts_service("outputs", "", code);
    let out_dir = sb.work.path().join("out");
    let out = sb.cmd().arg("run").arg(&dir).arg("--out").arg(&out_dir).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr_of(&out).contains("output files (--out"), "{}", stderr_of(&out));
    // A dependency install (nothing vendored, nothing cached for this manifest).
    let pkg = format!(r#"{{"name":"x","version":"1.0.0","dependencies":{{"ignite-absent-{}":"1.0.0"}}}}"#, nonce());
    let dir = sb.service(
        "deps",
        &[("service.yaml", "service:\n  name: deps\n  entry: index.ts\n"), ("index.ts", code), ("package.json", &pkg)],
    );
    let out = sb.cmd().arg("install").arg(&dir).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr_of(&out).contains("installing dependencies") && stderr_of(&out).contains("not available rootless"),
        "{}",
        stderr_of(&out)
    );
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
    for name in ["privileges", "subordinate-ids", "uidmap", "user-manager", "user-namespaces", "cgroup-driver"] {
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
    // Wait until the container runs (its scope exists under the user's manager).
    let slice = Path::new(&user_manager_cgroup()).join("ignite.slice");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60 * slowdown());
    let scope = loop {
        let found = std::fs::read_dir(&slice).into_iter().flatten().flatten().find(|e| {
            e.file_name().to_string_lossy().starts_with("ignite-ig-")
                && std::fs::read_to_string(e.path().join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
        });
        if let Some(e) = found {
            break e.path();
        }
        assert!(std::time::Instant::now() < deadline, "the run's scope never appeared under {}", slice.display());
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    let out = sb.cmd().arg("cleanup").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while scope.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!scope.exists(), "cleanup left the scope {}", scope.display());
    // No process of a run uid survives on the host.
    let (sub_uid, count) = subordinate("/etc/subuid");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else { continue };
        let uid: u32 = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|u| u.parse().ok())
            .unwrap_or(0);
        assert!(!(sub_uid..sub_uid + count).contains(&uid), "a run's process is left: {status}");
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
    // and runs from the fresh cache.
    let archive = sb.work.path().join("bun.tar");
    let out = sb.cmd().args(["runtime", "export", "bun", "-o"]).arg(&archive).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let out = sb.cmd().env("IGNITE_CACHE_DIR", &fresh).args(["runtime", "import"]).arg(&archive).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let out = sb.cmd().env("IGNITE_CACHE_DIR", &fresh).arg("run").arg(repo().join("examples/hello")).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains("hello"), "{}", stdout_of(&out));
    sb.assert_no_leaks();
}
