//! `ignite doctor` on this host: its real values (the development machines' cgroup v1 hybrid,
//! or the host-matrix VM's cgroup v2 with systemd), each cross-checked against the kernel's own
//! files or the tool's own output.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// `ignite doctor` with a state directory that does not exist (so we can see it is not created)
/// and the shared bundle cache.
fn doctor(state_parent: &Path, args: &[&str]) -> Output {
    Command::new(ignite_bin())
        .arg("doctor")
        .args(args)
        .arg("--state-dir")
        .arg(state_parent.join("state"))
        .arg("--cache-dir")
        .arg(shared_cache())
        .env_remove("IGNITE_OCI_RUNTIME")
        .env_remove("IGNITE_INIT")
        .output()
        .unwrap()
}

/// Exactly one JSON document on stdout (serde_json rejects anything after it).
fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn check<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {doc:#}"))
}

/// This host's cgroup mode as doctor names it (`hybrid`: v1 controllers plus a cgroup2 mount,
/// as on the development machines; `v2`: cgroup2 only, as in the host-matrix VM), and the
/// cgroup driver `auto` picks there: systemd on v2 when systemd is the init system.
fn doctor_cgroup() -> (&'static str, &'static str) {
    assert!(read("/proc/self/mountinfo").lines().any(|l| l.contains(" - cgroup2 ")), "no cgroup2 mount");
    match common::host_cgroup() {
        (false, _) => ("hybrid", "cgroupfs"),
        (true, true) => ("v2", "systemd"),
        (true, false) => ("v2", "cgroupfs"),
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn doctor_json_reports_this_hosts_real_values() {
    if !require_sandbox() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let out = doctor(scratch.path(), &["--json"]);
    let doc = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{doc:#}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(doc["ok"], true, "{doc:#}");
    assert_eq!(doc["summary"]["fail"], 0, "{doc:#}");
    let host = &doc["host"];

    // runc, with the version runc itself prints.
    let runc = Command::new("runc").arg("--version").output().unwrap();
    let first = String::from_utf8_lossy(&runc.stdout).lines().next().unwrap_or_default().to_owned();
    let printed = first.strip_prefix("runc version ").unwrap_or_else(|| panic!("runc printed {first:?}"));
    let version = host["oci"]["selected"]["version"].as_str().unwrap_or_else(|| panic!("{doc:#}"));
    assert!(printed.starts_with(version), "runc says {printed:?}, doctor {version:?}");
    assert_eq!(host["oci"]["selected"]["kind"], "runc");
    assert_eq!(check(&doc, "oci-runtime")["status"], "ok", "runc ≥ 1.1: {doc:#}");
    assert!(host["oci"]["onPath"].as_array().unwrap().iter().any(|b| b["kind"] == "runc" && b["version"] == version));

    // cgroups: the mode /proc/self/mountinfo shows, and the driver that goes with it.
    let (mode, driver) = doctor_cgroup();
    assert_eq!(host["cgroup"]["mode"], mode, "{doc:#}");
    assert_eq!(host["cgroup"]["driver"], driver, "{doc:#}");
    for name in ["cgroup-version", "cgroup-controllers", "cgroup-parent", "cgroup-driver", "memory-swap"] {
        assert_eq!(check(&doc, name)["status"], "ok", "{name}: {doc:#}");
    }
    let parent = check(&doc, "cgroup-parent")["value"].as_str().unwrap().to_owned();
    let expected_parent = if driver == "systemd" { "/ignite.slice in unified" } else { "/ignite in " };
    assert!(parent.starts_with(expected_parent), "{parent}");

    // seccomp: filter mode and user notification, exactly the kernel's list.
    let actions: Vec<String> =
        read("/proc/sys/kernel/seccomp/actions_avail").split_whitespace().map(String::from).collect();
    assert!(actions.iter().any(|a| a == "user_notif"), "{actions:?}");
    assert_eq!(host["seccomp"]["actions"], serde_json::json!(actions));
    assert_eq!(check(&doc, "seccomp")["status"], "ok");
    assert_eq!(check(&doc, "seccomp-notify")["status"], "ok");

    // Landlock on this kernel.
    let release = read("/proc/sys/kernel/osrelease").trim().to_owned();
    assert_eq!(host["kernel"]["release"], release.as_str());
    assert_eq!(host["landlock"]["support"]["status"], "available", "{doc:#}");
    assert!(host["landlock"]["support"]["abi"].as_u64().unwrap() >= 1, "{doc:#}");
    assert_eq!(check(&doc, "landlock")["status"], "ok");

    // The rest of what this machine has.
    assert_eq!(host["privileges"], serde_json::json!({"euid": 0, "capSysAdmin": true}));
    let max_userns: u64 = read("/proc/sys/user/max_user_namespaces").trim().parse().unwrap();
    assert_eq!(host["userNamespaces"]["maxUserNamespaces"], max_userns);
    assert_eq!(host["overlayfs"], true);
    assert_eq!(check(&doc, "entrypoint")["status"], "ok");
    for c in doc["checks"].as_array().unwrap() {
        assert_eq!(c.get("remedy").is_some(), c["status"] != "ok", "{c}");
    }

    // Side-effect free: the state directory it measured was not created.
    assert!(!scratch.path().join("state").exists());
    let state = host["disks"].as_array().unwrap().iter().find(|d| d["role"] == "state").unwrap();
    assert_eq!(state["exists"], false);
    assert_eq!(state["measured"], scratch.path().to_str().unwrap());
}

#[test]
fn doctor_table_on_stdout_and_exit_code() {
    if !require_sandbox() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let out = doctor(scratch.path(), &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let header = text.lines().next().unwrap();
    assert!(header.starts_with("CHECK") && header.ends_with("FOUND"), "{text}");
    let words = if doctor_cgroup().0 == "v2" { "v2 (unified)" } else { "hybrid" };
    assert!(text.lines().any(|l| l.starts_with("cgroup-version") && l.contains(words)), "{text}");
    assert!(text.trim_end().ends_with("this host can run sandboxes"), "{text}");
}

#[test]
fn a_missing_oci_runtime_fails_the_doctor_with_a_remedy() {
    let scratch = tempfile::tempdir().unwrap();
    let out = doctor(scratch.path(), &["--json", "--oci-runtime", "/nonexistent/runc"]);
    let doc = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{doc:#}");
    assert_eq!(doc["ok"], false);
    let c = check(&doc, "oci-runtime");
    assert_eq!(c["status"], "fail");
    assert_eq!(c["value"], "OCI runtime /nonexistent/runc does not exist");
    assert!(c["remedy"].as_str().unwrap().contains("apt-get install runc"), "{c}");
}

#[test]
fn missing_optional_tools_and_bundles_warn_without_failing() {
    if !require_sandbox() {
        return;
    }
    // A PATH with runc and nothing else; an empty bundle cache.
    let scratch = tempfile::tempdir().unwrap();
    let bin = scratch.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let runc = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("runc"))
        .find(|p| p.is_file())
        .unwrap();
    std::os::unix::fs::symlink(&runc, bin.join("runc")).unwrap();
    let out = Command::new(ignite_bin())
        .args(["doctor", "--json", "--state-dir"])
        .arg(scratch.path().join("state"))
        .arg("--cache-dir")
        .arg(scratch.path().join("cache"))
        .env("PATH", &bin)
        .env_remove("IGNITE_OCI_RUNTIME")
        .output()
        .unwrap();
    let doc = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    for name in ["user-network", "iproute2", "bundles"] {
        assert_eq!(check(&doc, name)["status"], "warn", "{name}: {doc:#}");
    }
    assert_eq!(check(&doc, "user-network")["remedy"], "apt-get install slirp4netns");
    assert!(doc["summary"]["warn"].as_u64().unwrap() >= 3);
    assert!(!scratch.path().join("cache").exists(), "doctor created the cache directory");
}
