//! OCI runtimes besides runc. youki (built by `.ci/run`) runs, for real, the behaviours that
//! make a sandbox — with the same policy meaning the same thing as under runc: the seccomp
//! profile answers every probe with the same errno, limits stop programs with the same status,
//! audit mode sees the same events. crun cannot run on this host (cgroup v1 + v2 hybrid): its
//! refusal is tested here, its command lines and version parsing in the unit tests.
//!
//! Every test ends by checking that nothing (container, cgroup, mount, state) was left behind.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use serde_json::Value;

/// A sandbox driving youki, or `None` (skipped outside CI, failed in CI) without youki.
fn youki_sandbox() -> Option<Sandbox> {
    require_youki().map(|bin| Sandbox::with_oci_runtime(&bin))
}

macro_rules! youki_test {
    () => {{
        match youki_sandbox() {
            Some(sb) => sb,
            None => return,
        }
    }};
}

fn stdout_json(r: &Value) -> Value {
    let text = r["stdout"].as_str().unwrap_or_default().trim().to_string();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("program output is not JSON ({e}): {r}"))
}

fn ran_under_youki(out: &Output, r: &Value) {
    assert_eq!(r["ociRuntime"], "youki", "{r}\n{}", stderr_of(out));
}

#[test]
fn hello_and_input_run_under_youki() {
    let sb = youki_test!();
    let (out, r) = sb.run_json(&repo().join("examples/hello"), &[]);
    assert_eq!(out.status.code(), Some(0), "{r}\n{}", stderr_of(&out));
    ran_under_youki(&out, &r);
    assert_eq!(r["status"], "ok");
    assert!(!r["stdout"].as_str().unwrap().trim().is_empty(), "{r}");

    let dir = repo().join("examples/data-processor");
    let (out, r) = sb.run_json(&dir, &["--input", r#"{"data":[1,2,3],"operation":"sum"}"#]);
    assert_eq!(out.status.code(), Some(0), "{r}\n{}", stderr_of(&out));
    ran_under_youki(&out, &r);
    assert_eq!(r["exitCode"], 0);
    let line = stdout_json(&r);
    assert_eq!((line["result"].as_i64(), line["count"].as_i64()), (Some(6), Some(3)), "{r}");
    // Counters come from the cgroup youki made, read through the init's /proc/<pid>/cgroup.
    let m = &r["metrics"];
    assert!(m["memoryPeakMb"].as_f64().unwrap() > 1.0, "{m}");
    assert!(m["cpuTimeMs"].as_f64().unwrap() > 0.0, "{m}");
    assert!(m["pidsPeak"].as_u64().unwrap() >= 1, "{m}");
    sb.assert_cgroup_gone(r["containerId"].as_str().unwrap());
    sb.assert_no_leaks();
}

#[test]
fn exit_status_is_the_programs_under_youki() {
    let sb = youki_test!();
    let dir = sb.ts_service("exit3", "", "console.log('bye'); process.exit(3);");
    let (out, r) = sb.run_json(&dir, &[]);
    ran_under_youki(&out, &r);
    assert_eq!(r["exitCode"], 3, "{r}");
    assert_eq!(r["status"], "error", "{r}");
    assert_eq!(out.status.code(), Some(3), "{r}");
    sb.assert_no_leaks();
}

#[test]
fn typescript_runs_under_youki_on_native_and_stripping_runtimes() {
    let sb = youki_test!();
    let code = "interface P { n: number }\nconst p: P = { n: 21 };\nconst twice = (x: number): number => x * 2;\nconsole.log(JSON.stringify({ v: twice(p.n) }));\n";
    for runtime in ["bun", "quickjs"] {
        let dir = sb.ts_service(&format!("ts-{runtime}"), &format!("  runtime: {runtime}\n"), code);
        let (out, r) = sb.run_json(&dir, &[]);
        assert_eq!(out.status.code(), Some(0), "{runtime}: {r}\n{}", stderr_of(&out));
        ran_under_youki(&out, &r);
        assert_eq!(stdout_json(&r)["v"], 42, "{runtime}: {r}");
    }
    sb.assert_no_leaks();
}

#[test]
fn timeout_stops_the_program_under_youki() {
    let sb = youki_test!();
    let dir = sb.ts_service("spin", "  timeoutMs: 1000\n", "console.log('spinning'); while (true) {}");
    let (out, r) = sb.run_json(&dir, &[]);
    ran_under_youki(&out, &r);
    assert_eq!(out.status.code(), Some(124), "{r}");
    assert_eq!(r["status"], "timeout");
    assert_eq!(r["stdout"].as_str().unwrap().trim(), "spinning");
    sb.assert_cgroup_gone(r["containerId"].as_str().unwrap());
    sb.assert_no_leaks();
}

#[test]
fn memory_limit_ends_in_oom_under_youki() {
    let sb = youki_test!();
    let code = "const keep: Buffer[] = []; while (true) { keep.push(Buffer.alloc(4 << 20, 1)); }";
    let dir = sb.ts_service("membomb", "  memoryMb: 64\n  timeoutMs: 20000\n", code);
    let (out, r) = sb.run_json(&dir, &[]);
    ran_under_youki(&out, &r);
    assert_eq!(r["status"], "oom", "{r}");
    // 137 as under runc: the status comes from the entrypoint's report, not from youki (which
    // reports a SIGKILLed init as 9).
    assert_eq!(out.status.code(), Some(137), "{r}");
    assert!(r["metrics"]["oomKills"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["metrics"]["memoryPeakMb"].as_f64().unwrap() <= 64.5, "{r}");
    sb.assert_cgroup_gone(r["containerId"].as_str().unwrap());
    sb.assert_no_leaks();
}

#[test]
fn pids_limit_contains_a_fork_bomb_under_youki() {
    let sb = youki_test!();
    let code = r#"
let ok = 0, failed = 0;
for (let i = 0; i < 400; i++) {
  try { Bun.spawn({ cmd: [process.execPath, "-e", "await Bun.sleep(4000)"], stdout: "ignore", stderr: "ignore" }); ok++; }
  catch (e) { failed++; }
}
console.log(JSON.stringify({ ok, failed }));
process.exit(0);
"#;
    let dir = sb.ts_service("forkbomb", "  memoryMb: 2048\n  timeoutMs: 15000\n", code);
    std::fs::write(
        dir.join("ignite.policy.yaml"),
        "security:\n  process:\n    allowSpawn: true\n    allowedCommands: [/usr/local/bin/bun]\n",
    )
    .unwrap();
    let (out, r) = sb.run_json(&dir, &[]);
    ran_under_youki(&out, &r);
    let m = &r["metrics"];
    assert!(m["pidsPeak"].as_u64().unwrap() <= 128, "{r}");
    assert!(m["pidsLimitHits"].as_u64().unwrap() > 0, "pids limit never hit: {r}");
    sb.assert_cgroup_gone(r["containerId"].as_str().unwrap());
    sb.assert_no_leaks();
}

/// Identity, capabilities, no_new_privs, seccomp mode, network, read-only root: what the
/// program sees from inside.
const HARDENING_PROGRAM: &str = r#"
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
const status = readFileSync("/proc/self/status", "utf8");
const field = (k: string) => status.split("\n").find((l) => l.startsWith(k + ":"))!.split(/\s+/)[1];
const attempt = (p: string) => { try { writeFileSync(p, "x"); return "WROTE"; } catch (e) { return e.code; } };
let outcome = "connected";
const routes = readFileSync("/proc/net/route", "utf8").trim().split("\n").slice(1);
if (routes.length === 0) {
  try { await fetch("http://1.1.1.1/", { signal: AbortSignal.timeout(3000) }); } catch (e) { outcome = "blocked: " + (e.code ?? e.name); }
} else { outcome = "routes: " + routes.join(";"); }
console.log(JSON.stringify({
  uid: process.getuid(), capEff: field("CapEff"), capBnd: field("CapBnd"), capPrm: field("CapPrm"),
  nnp: field("NoNewPrivs"), seccomp: field("Seccomp"), pid: process.pid,
  hostname: readFileSync("/proc/sys/kernel/hostname", "utf8").trim(),
  ifaces: readdirSync("/sys/class/net"), network: outcome,
  root: attempt("/pwned"), app: attempt("/app/pwned"), usr: attempt("/usr/local/bin/bun"), tmp: attempt("/tmp/ok"),
}));
"#;

#[test]
fn hardening_seen_from_inside_is_the_same_under_youki() {
    let sb = youki_test!();
    let dir = sb.ts_service("hardened", "  timeoutMs: 10000\n", HARDENING_PROGRAM);
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{r}\n{}", stderr_of(&out));
    ran_under_youki(&out, &r);
    let v = stdout_json(&r);
    assert!(ignite::sandbox::identity::is_run_uid(v["uid"].as_u64().unwrap() as u32), "{v}");
    for caps in ["capEff", "capBnd", "capPrm"] {
        assert_eq!(v[caps], "0000000000000000", "{caps}: {v}");
    }
    assert_eq!(v["nnp"], "1", "{v}");
    assert_eq!(v["seccomp"], "2", "{v}");
    assert_ne!(v["pid"], 1, "the entrypoint is pid 1: {v}");
    assert_eq!(v["hostname"], "hardened");
    assert_eq!(v["ifaces"], serde_json::json!(["lo"]), "only loopback: {v}");
    assert!(v["network"].as_str().unwrap().starts_with("blocked:"), "{v}");
    for ro in ["root", "app", "usr"] {
        assert_ne!(v[ro], "WROTE", "{ro} writable: {v}");
    }
    assert_eq!(v["tmp"], "WROTE", "/tmp must stay writable: {v}");
    assert!(!dir.join("pwned").exists());
    sb.assert_no_leaks();
}

/// A server on the sandbox's own loopback, IPv4 and IPv6, and a request to it.
const LOOPBACK_PROGRAM: &str = r#"
const out: Record<string, string> = {};
for (const host of ["127.0.0.1", "::1"]) {
  const server = Bun.serve({ hostname: host, port: 0, fetch: () => new Response("pong") });
  const url = host.includes(":") ? `http://[${host}]:${server.port}/` : `http://${host}:${server.port}/`;
  try { out[host] = await (await fetch(url)).text(); } catch (e) { out[host] = e.code ?? String(e); }
  server.stop(true);
}
console.log(JSON.stringify(out));
"#;

/// youki leaves a new network namespace's loopback down (runc brings it up); ignite's
/// `createRuntime` hook brings it up, so "no network but loopback" means the same under both.
#[test]
fn loopback_works_under_youki_as_under_runc() {
    let sb = youki_test!();
    let want = serde_json::json!({ "127.0.0.1": "pong", "::1": "pong" });
    let dir = sb.ts_service("loopback", "  timeoutMs: 10000\n", LOOPBACK_PROGRAM);
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{r}\n{}", stderr_of(&out));
    ran_under_youki(&out, &r);
    assert_eq!(stdout_json(&r), want, "{r}");
    let runc = Sandbox::with_oci_runtime(Path::new("runc"));
    let dir = runc.ts_service("loopback", "  timeoutMs: 10000\n", LOOPBACK_PROGRAM);
    let (_out, r) = runc.run_json(&dir, &[]);
    assert_eq!(stdout_json(&r), want, "{r}");
    runc.assert_no_leaks();
    sb.assert_no_leaks();
}

/// Raw syscalls through bun:ffi, so the filter itself answers. `clone_newuser` and
/// `clone_newns` exercise the profile's masked_eq rule (clone is allowed only without namespace
/// flags), whose operands youki reads in the other order: given runc's order, libseccomp masks
/// the expected value with the would-be mask 0 and the rule allows every clone. The flags add
/// CLONE_FS, which the kernel refuses with a namespace flag (EINVAL): a clone that gets past
/// the filter creates nothing. A Worker needs clone(CLONE_THREAD) to pass the same rule.
const SECCOMP_PROGRAM: &str = r#"
import { dlopen, FFIType, read } from "bun:ffi";
const { symbols: c } = dlopen("libc.so.6", {
  syscall: { args: [FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64], returns: FFIType.i64 },
  __errno_location: { args: [], returns: FFIType.ptr },
});
const sys = (nr: number, ...a: number[]) => {
  const r = Number(c.syscall(nr, ...[...a, 0, 0, 0, 0, 0, 0].slice(0, 5)));
  return r < 0 ? -read.i32(c.__errno_location(), 0) : 0;
};
const worker = await new Promise((res) => {
  const w = new Worker(URL.createObjectURL(new Blob(["postMessage(21 * 2)"])));
  w.onmessage = (e) => { res(e.data); w.terminate(); };
  w.onerror = (e) => res("error: " + e.message);
});
console.log(JSON.stringify({
  ptrace: sys(101, 0), unshare_user: sys(272, 0x10000000), mount: sys(165, 0, 0, 0, 0, 0), bpf: sys(321, 0, 0, 0),
  keyctl: sys(250, 0), userfaultfd: sys(323, 0), perf_event_open: sys(298, 0, 0, -1, -1, 0), setns: sys(308, 0, 0),
  personality_no_aslr: sys(135, 0x0040000),
  socket_vsock: sys(41, 40, 1, 0), socket_alg: sys(41, 38, 5, 0), socket_packet: sys(41, 17, 3, 0),
  clone3: sys(435, 0, 0), io_uring_setup: sys(425, 1, 0),
  clone_newuser: sys(56, 0x10000000 | 0x200 | 17, 0, 0, 0, 0), clone_newns: sys(56, 0x00020000 | 0x200 | 17, 0, 0, 0, 0),
  socket_inet: sys(41, 2, 1, 0), worker,
}));
"#;

/// Spawning allowed, so that the OCI runtime's filter alone answers clone (by default the
/// entrypoint's own filter refuses every new process first).
fn seccomp_service(sb: &Sandbox) -> std::path::PathBuf {
    let dir = sb.ts_service("seccomp", "", SECCOMP_PROGRAM);
    std::fs::write(dir.join("ignite.policy.yaml"), "security:\n  process:\n    allowSpawn: true\n").unwrap();
    dir
}

#[test]
fn seccomp_profile_gives_the_same_errno_under_youki_as_under_runc() {
    let sb = youki_test!();
    let dir = seccomp_service(&sb);
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{r}\n{}", stderr_of(&out));
    ran_under_youki(&out, &r);
    let youki = stdout_json(&r);
    const EPERM: i64 = -1;
    const ENOSYS: i64 = -38;
    for denied in [
        "ptrace",
        "unshare_user",
        "mount",
        "bpf",
        "keyctl",
        "userfaultfd",
        "perf_event_open",
        "setns",
        "personality_no_aslr",
        "socket_vsock",
        "socket_alg",
        "socket_packet",
        "clone_newuser",
        "clone_newns",
    ] {
        assert_eq!(youki[denied], EPERM, "{denied} not denied with EPERM under youki: {youki}");
    }
    assert_eq!(youki["clone3"], ENOSYS, "{youki}");
    assert_eq!(youki["io_uring_setup"], ENOSYS, "{youki}");
    assert_eq!(youki["socket_inet"], 0, "ordinary sockets stay allowed: {youki}");
    assert_eq!(youki["worker"], 42, "threads (clone with CLONE_THREAD) work: {youki}");

    // The same program under runc answers exactly the same.
    let runc = Sandbox::with_oci_runtime(Path::new("runc"));
    let dir = seccomp_service(&runc);
    let (out, r) = runc.run_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{r}\n{}", stderr_of(&out));
    assert_eq!(r["ociRuntime"], "runc");
    assert_eq!(stdout_json(&r), youki, "runc and youki disagree");
    runc.assert_no_leaks();
    sb.assert_no_leaks();
}

#[test]
fn spawning_is_refused_by_default_under_youki() {
    let sb = youki_test!();
    let code = r#"
import { spawnSync } from "node:child_process";
const out: Record<string, unknown> = {};
try { Bun.spawnSync({ cmd: [process.execPath, "-e", "1"] }); out.bun = "ok"; } catch (e) { out.bun = e.code ?? e.message; }
const r = spawnSync(process.execPath, ["-e", "1"]);
out.node = r.error ? (r.error as any).code : "ok";
console.log(JSON.stringify(out));
"#;
    let dir = sb.ts_service("nospawn", "", code);
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{r}\n{}", stderr_of(&out));
    ran_under_youki(&out, &r);
    let v = stdout_json(&r);
    assert_eq!((v["bun"].as_str(), v["node"].as_str()), (Some("EPERM"), Some("EPERM")), "{v}");
    sb.assert_no_leaks();
}

/// Audited syscalls issued through bun:ffi: (name, number, args, event kind).
const AUDITED: &[(&str, u64, [u64; 3], &str)] = &[
    ("mount", 165, [0, 0, 0], "mount"),
    ("unshare", 272, [0x1000_0000, 0, 0], "namespace"),
    ("ptrace", 101, [16, 1, 0], "ptrace"),
    ("bpf", 321, [5, 0, 0], "bpf"),
    ("keyctl", 250, [0, 0, 0], "keyring"),
    ("socket", 41, [2, 1, 0], "network"),
];

const AUDIT_PROGRAM: &str = r#"
import { dlopen, FFIType, read } from "bun:ffi";
const libc = dlopen("libc.so.6", {
  syscall: { args: [FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64], returns: FFIType.i64 },
  __errno_location: { args: [], returns: FFIType.ptr },
});
const errno = () => read.i32(libc.symbols.__errno_location(), 0);
const calls = JSON.parse(process.env.IGNITE_INPUT);
const results = calls.map(([nr, a, b, c]) => {
  const ret = Number(libc.symbols.syscall(BigInt(nr), BigInt(a), BigInt(b), BigInt(c)));
  return [ret, ret < 0 ? errno() : 0];
});
console.log(JSON.stringify({ results, pid: process.pid }));
"#;

#[test]
fn audit_mode_reports_each_denied_call_under_youki() {
    let sb = youki_test!();
    let yaml = "service:\n  name: audited\n  entry: index.ts\n  timeoutMs: 60000\n";
    let dir = sb.service("audited", &[("service.yaml", yaml), ("index.ts", AUDIT_PROGRAM)]);
    let calls: Vec<Vec<u64>> = AUDITED.iter().map(|(_, nr, a, _)| vec![*nr, a[0], a[1], a[2]]).collect();
    let input = serde_json::to_string(&calls).unwrap();
    let (out, r) = sb.run_json(&dir, &["--audit", "--input", &input]);
    ran_under_youki(&out, &r);
    assert_eq!(r["status"], "ok", "{r}");
    let seen = stdout_json(&r);
    for (i, (name, ..)) in AUDITED.iter().enumerate() {
        assert_eq!(seen["results"][i], serde_json::json!([-1, libc::EPERM]), "{name}: {seen}");
    }
    let audit = &r["securityAudit"];
    assert_eq!(audit["overallStatus"], "violations", "{r}");
    let events = audit["events"].as_array().unwrap();
    assert_eq!(events.len(), AUDITED.len(), "one event per call, no more (youki's own calls are none): {audit}");
    for (event, (name, _, _, kind)) in events.iter().zip(AUDITED) {
        assert_eq!((&event["syscall"], &event["kind"]), (&Value::from(*name), &Value::from(*kind)), "{event}");
        assert_eq!(event["verdict"], "denied", "{event}");
        assert_eq!(event["pid"], seen["pid"], "{event}");
    }
    assert_eq!(audit["notifications"], AUDITED.len());

    // A clean program is clean under youki too: youki's own steps after loading the filter
    // (the entrypoint's exec) are not events.
    let (out, r) = sb.run_json(&repo().join("examples/hello"), &["--audit"]);
    assert_eq!(out.status.code(), Some(0), "{r}\n{}", stderr_of(&out));
    assert_eq!(r["securityAudit"]["overallStatus"], "clean", "{r}");
    sb.assert_no_leaks();
}

#[test]
fn ctrl_c_under_youki_kills_the_run_and_cleans_up() {
    let sb = youki_test!();
    let dir = sb.ts_service("longrun", "  timeoutMs: 60000\n", "console.log('started'); setInterval(() => {}, 1000);");
    let mut child = sb
        .cmd()
        .arg("run")
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 64];
    let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("started"));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    sb.assert_no_leaks();
}

#[test]
fn youki_failure_surfaces_youkis_own_message() {
    let sb = youki_test!();
    // An entrypoint that is not executable: youki refuses to start it, before anything runs.
    let init = sb.work.path().join("ignite-init");
    std::fs::write(&init, "not a program").unwrap();
    let out = sb.cmd().arg("run").arg(repo().join("examples/hello")).env("IGNITE_INIT", &init).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("youki run"), "the failing step is named: {err}");
    assert!(err.contains("executable"), "youki's own reason is shown: {err}");
    sb.assert_no_leaks();
}

/// crun 1.8.1 refuses hosts with cgroup v1 controllers and a cgroup2 that holds controllers;
/// ignite says so before preparing anything, with the remedy. A script that answers
/// `--version` like crun stands in for it: the refusal must come before crun is ever run.
#[test]
fn crun_is_refused_on_a_hybrid_host_before_anything_starts() {
    use std::os::unix::fs::PermissionsExt;
    let controllers = std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").unwrap_or_default();
    if controllers.trim().is_empty() {
        common::skipped("not a hybrid host whose cgroup2 holds controllers (crun runs on this one)");
        return;
    }
    let sb = Sandbox::new();
    let fake = sb.work.path().join("crun");
    let ran = sb.work.path().join("crun-ran");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && {{ echo 'crun version 1.8.1'; echo 'spec: 1.0.0'; exit 0; }}\ntouch {}\nexit 1\n",
            ran.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = sb.cmd().arg("run").arg(repo().join("examples/hello")).arg("--oci-runtime").arg(&fake).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("crun 1.8.1") && err.contains("hybrid"), "{err}");
    assert!(err.contains("use runc on this host") && err.contains("systemd.unified_cgroup_hierarchy=1"), "{err}");
    assert!(!ran.exists(), "crun was run although it was refused");
    sb.assert_no_leaks();
    // `ignite doctor` says the same about it.
    let out = sb.cmd().args(["doctor", "--json", "--oci-runtime"]).arg(&fake).output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = doc["checks"].as_array().unwrap().iter().find(|c| c["name"] == "oci-runtime").unwrap().clone();
    assert_eq!(check["status"], "fail", "{check}");
    assert!(check["value"].as_str().unwrap().contains("crun 1.8.1"), "{check}");
}

#[test]
fn an_unknown_oci_runtime_is_refused_by_what_it_says_it_is() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    // Named runc, but it is not.
    let fake = sb.work.path().join("runc");
    std::fs::write(&fake, "#!/bin/sh\necho 'runsc version release-20240101.0'\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = sb.cmd().arg("run").arg(repo().join("examples/hello")).arg("--oci-runtime").arg(&fake).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("runsc version release-20240101.0") && err.contains("runc, crun and youki"), "{err}");
    sb.assert_no_leaks();
}
