//! Audit mode (`ignite run --audit`): every audited syscall is refused with EPERM and reported
//! exactly once by the kernel's seccomp notification; clean programs on every runtime report
//! nothing; OOM, pids-limit, time-limit and output-limit stops become events; a storm of
//! notified calls is capped and leaves ignite's memory bounded; nothing stays behind.
//!
//! Raw syscalls are issued from JavaScript with Bun's FFI (`bun:ffi` loads the bundle's libc and
//! calls `syscall()`), so the tests exercise exactly what an attacker's code could do.

mod common;

use common::*;
use serde_json::Value;

/// (syscall, x86_64 number, arguments, expected event kind). Pointers are 0: the calls never
/// run, so their arguments need not be valid.
const AUDITED: &[(&str, u64, [u64; 3], &str)] = &[
    ("mount", 165, [0, 0, 0], "mount"),
    ("umount2", 166, [0, 0, 0], "mount"),
    ("pivot_root", 155, [0, 0, 0], "mount"),
    ("fsopen", 430, [0, 0, 0], "mount"),
    ("fsmount", 432, [0, 0, 0], "mount"),
    ("move_mount", 429, [0, 0, 0], "mount"),
    ("open_tree", 428, [0, 0, 0], "mount"),
    ("fsconfig", 431, [0, 0, 0], "mount"),
    ("fspick", 433, [0, 0, 0], "mount"),
    ("mount_setattr", 442, [0, 0, 0], "mount"),
    ("unshare", 272, [0x1000_0000, 0, 0], "namespace"),
    ("setns", 308, [0, 0, 0], "namespace"),
    ("ptrace", 101, [16, 1, 0], "ptrace"),
    ("process_vm_readv", 310, [1, 0, 0], "ptrace"),
    ("bpf", 321, [5, 0, 0], "bpf"),
    ("keyctl", 250, [0, 0, 0], "keyring"),
    ("add_key", 248, [0, 0, 0], "keyring"),
    ("request_key", 249, [0, 0, 0], "keyring"),
    ("perf_event_open", 298, [0, 0, 0], "perf"),
    ("userfaultfd", 323, [0, 0, 0], "userfaultfd"),
    ("open_by_handle_at", 304, [0, 0, 0], "handle"),
    ("kexec_load", 246, [0, 0, 0], "kernel"),
    ("init_module", 175, [0, 0, 0], "kernel"),
    ("finit_module", 313, [0, 0, 0], "kernel"),
    ("socket", 41, [2, 1, 0], "network"),
    ("socket", 41, [10, 2, 0], "network"),
];

/// A Bun program that issues `calls` (JSON `[[nr, a0, a1, a2], …]`) and prints, per call, its
/// return value and errno, then checks that AF_UNIX sockets still work.
const SYSCALLS_PROGRAM: &str = r#"
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
// Not audited: a unix socket is created as usual.
const unix = Number(libc.symbols.syscall(41n, 1n, 1n, 0n));
console.log(JSON.stringify({ results, unix, pid: process.pid }));
"#;

fn ffi_service(sb: &Sandbox, name: &str, code: &str) -> std::path::PathBuf {
    let yaml = format!("service:\n  name: {name}\n  entry: index.ts\n  timeoutMs: 60000\n");
    sb.service(name, &[("service.yaml", &yaml), ("index.ts", code)])
}

fn audit_of(r: &Value) -> &Value {
    let a = &r["securityAudit"];
    assert!(a.is_object(), "no securityAudit in the report: {r}");
    a
}

#[test]
fn every_audited_syscall_is_denied_with_eperm_and_reported_once() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = ffi_service(&sb, "syscalls", SYSCALLS_PROGRAM);
    let calls: Vec<Vec<u64>> = AUDITED.iter().map(|(_, nr, a, _)| vec![*nr, a[0], a[1], a[2]]).collect();
    let input = serde_json::to_string(&calls).unwrap();

    let (_out, r) = sb.run_json(&dir, &["--audit", "--input", &input]);
    assert_eq!(r["status"], "ok", "{r}");
    let seen: Value = serde_json::from_str(r["stdout"].as_str().unwrap().trim()).expect("program output");
    for (i, (name, ..)) in AUDITED.iter().enumerate() {
        assert_eq!(seen["results"][i], serde_json::json!([-1, libc::EPERM]), "{name}: {seen}");
    }
    assert!(seen["unix"].as_i64().unwrap() >= 0, "AF_UNIX socket refused: {seen}");

    let audit = audit_of(&r);
    assert_eq!(audit["overallStatus"], "violations", "{audit}");
    let events = audit["events"].as_array().unwrap();
    assert_eq!(events.len(), AUDITED.len(), "one event per call, no more: {audit}");
    for (event, (name, _, args, kind)) in events.iter().zip(AUDITED) {
        assert_eq!(event["syscall"], *name, "{event}");
        assert_eq!(event["kind"], *kind, "{event}");
        assert_eq!(event["verdict"], "denied", "{event}");
        assert_eq!(event["pid"], seen["pid"], "the runtime's pid as the sandbox numbers it: {event}");
        if *name == "socket" {
            let family = if args[0] == 2 { "AF_INET" } else { "AF_INET6" };
            assert_eq!(event["args"]["family"], family, "{event}");
        }
    }
    let times: Vec<f64> = events.iter().map(|e| e["timeMs"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "events out of order: {times:?}");
    let mut expected = std::collections::BTreeMap::new();
    for (.., kind) in AUDITED {
        *expected.entry(kind.to_string()).or_insert(0u64) += 1;
    }
    assert_eq!(audit["counts"], serde_json::to_value(&expected).unwrap());
    assert_eq!(audit["notifications"], AUDITED.len());
    assert_eq!(audit["dropped"], 0);
    assert_eq!(audit["notificationLimitReached"], false);

    // Without --audit the same calls fail the same way (IP sockets, only audited, are created
    // for the sandbox's loopback), and no audit section appears.
    let (_out, plain) = sb.run_json(&dir, &["--input", &input]);
    assert_eq!(plain["status"], "ok", "{plain}");
    let seen: Value = serde_json::from_str(plain["stdout"].as_str().unwrap().trim()).unwrap();
    for (i, (name, ..)) in AUDITED.iter().enumerate() {
        if *name == "socket" {
            assert!(seen["results"][i][0].as_i64().unwrap() >= 0, "IP socket without audit: {seen}");
        } else {
            assert_eq!(seen["results"][i], serde_json::json!([-1, libc::EPERM]), "{name} without audit: {seen}");
        }
    }
    assert!(plain.get("securityAudit").is_none(), "{plain}");
    sb.assert_no_leaks();
}

#[test]
fn ip_sockets_are_audited_only_when_the_network_is_off() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = ffi_service(&sb, "sockets", SYSCALLS_PROGRAM);
    // The audit filter a run with the network on would get has no IP socket rule; the policy
    // cannot turn the network on in this build, so check the generated spec of each mode.
    let out = sb.cmd().args(["run", "--audit", "--print-spec"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let spec: Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    let seccomp = &spec["linux"]["seccomp"];
    let listener = seccomp["listenerPath"].as_str().expect("listenerPath");
    assert!(
        listener.starts_with(sb.state.path().to_str().unwrap()) && listener.ends_with("/seccomp.sock"),
        "{listener}"
    );
    let notify: Vec<&Value> =
        seccomp["syscalls"].as_array().unwrap().iter().filter(|s| s["action"] == "SCMP_ACT_NOTIFY").collect();
    let families: Vec<u64> = notify
        .iter()
        .filter(|s| s["names"] == serde_json::json!(["socket"]))
        .map(|s| s["args"][0]["value"].as_u64().unwrap())
        .collect();
    assert_eq!(families, [2, 10], "{notify:?}");

    let out = sb.cmd().args(["run", "--print-spec"]).arg(&dir).output().unwrap();
    let spec: Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    let seccomp = &spec["linux"]["seccomp"];
    assert!(seccomp.get("listenerPath").is_none(), "{seccomp}");
    let plain = seccomp["syscalls"].as_array().unwrap();
    assert!(plain.iter().all(|s| s["action"] != "SCMP_ACT_NOTIFY"));
    sb.assert_no_leaks();
}

fn clean_hello(runtime: &str) {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = sb.service(
        "hello",
        &[
            ("service.yaml", "service:\n  name: hello\n  entry: index.js\n"),
            ("index.js", "console.log('hello from ' + typeof process.env.IGNITE_INPUT);\n"),
        ],
    );
    let (out, r) = sb.run_json(&dir, &["--audit", "--runtime", runtime]);
    assert_eq!(r["status"], "ok", "{runtime}: {r}");
    assert_eq!(r["stdout"], "hello from string\n", "{r}");
    let audit = audit_of(&r);
    assert_eq!(audit["overallStatus"], "clean", "{runtime} tripped the audit at start-up: {audit}");
    assert_eq!(audit["events"], serde_json::json!([]), "{audit}");
    assert_eq!(audit["counts"], serde_json::json!({}), "{audit}");
    assert_eq!(audit["notifications"], 0);
    assert!(out.status.success());

    // The human summary says so in one line.
    let out = sb.cmd().args(["run", "--audit", "--runtime", runtime]).arg(&dir).output().unwrap();
    assert!(
        stderr_of(&out).lines().any(|l| l == "ignite: security audit: clean (no security events)"),
        "{}",
        stderr_of(&out)
    );
    sb.assert_no_leaks();
}

#[test]
fn clean_hello_on_bun() {
    clean_hello("bun");
}

#[test]
fn clean_hello_on_node() {
    clean_hello("node");
}

#[test]
fn clean_hello_on_deno() {
    clean_hello("deno");
}

#[test]
fn clean_hello_on_quickjs() {
    clean_hello("quickjs");
}

#[test]
fn oom_and_pids_limit_are_events_from_the_cgroup() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let code = "const keep: Buffer[] = []; while (true) { keep.push(Buffer.alloc(4 << 20, 1)); }";
    let dir = sb.ts_service("membomb", "  memoryMb: 64\n  timeoutMs: 20000\n", code);
    let (_out, r) = sb.run_json(&dir, &["--audit"]);
    assert_eq!(r["status"], "oom", "{r}");
    let audit = audit_of(&r);
    let kills = r["metrics"]["oomKills"].as_u64().unwrap();
    assert!(kills >= 1, "{r}");
    assert_eq!(audit["overallStatus"], "violations");
    assert_eq!(audit["counts"]["oom"], kills, "{audit}");
    let oom: Vec<&Value> = audit["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "oom").collect();
    assert_eq!(oom.len(), 1, "{audit}");
    assert_eq!(oom[0]["verdict"], "killed");
    assert_eq!(oom[0]["count"], kills);

    // Threads (allowed in every policy) beyond a pids limit of 16.
    let code = r#"
const workers = [];
let failed = 0;
for (let i = 0; i < 40; i++) {
  try { workers.push(new Worker(URL.createObjectURL(new Blob(["setTimeout(() => {}, 3000)"])))); }
  catch (e) { failed++; }
}
setTimeout(() => { console.log(JSON.stringify({ failed })); process.exit(0); }, 1500);
"#;
    let dir = sb.ts_service("threads", "  memoryMb: 1024\n  timeoutMs: 20000\n", code);
    std::fs::write(dir.join("ignite.policy.yaml"), "security:\n  process:\n    maxProcesses: 16\n").unwrap();
    let (_out, r) = sb.run_json(&dir, &["--audit"]);
    let hits = r["metrics"]["pidsLimitHits"].as_u64().unwrap();
    assert!(hits > 0, "the pids limit was never hit: {r}");
    let audit = audit_of(&r);
    assert_eq!(audit["counts"]["pids_limit"], hits, "{audit}");
    let ev: Vec<&Value> = audit["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "pids_limit").collect();
    assert_eq!(ev.len(), 1, "{audit}");
    assert_eq!(ev[0]["count"], hits);
    assert_eq!(ev[0]["verdict"], "denied");
    sb.assert_no_leaks();
}

#[test]
fn time_and_output_limit_stops_are_events() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = sb.ts_service("spin", "  timeoutMs: 500\n", "while (true) {}");
    let (_out, r) = sb.run_json(&dir, &["--audit"]);
    assert_eq!(r["status"], "timeout", "{r}");
    let audit = audit_of(&r);
    assert_eq!(audit["counts"], serde_json::json!({"timeout": 1}), "{audit}");
    assert_eq!(audit["events"][0]["kind"], "timeout");
    assert_eq!(audit["events"][0]["verdict"], "stopped");

    let dir = sb.ts_service(
        "flood",
        "  timeoutMs: 20000\n",
        "const s = 'x'.repeat(65536); while (true) process.stderr.write(s);",
    );
    let (_out, r) = sb.run_json(&dir, &["--audit", "--output-limit", "100000"]);
    assert_eq!(r["status"], "output_limit", "{r}");
    let audit = audit_of(&r);
    assert_eq!(audit["counts"], serde_json::json!({"output_limit": 1}), "{audit}");
    assert_eq!(audit["events"][0]["args"]["stream"], "stderr");
    sb.assert_no_leaks();
}

/// Peak resident memory (VmHWM, KiB) of a live process.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_storm_of_audited_calls_is_capped_and_bounded() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let code = r#"
import { dlopen, FFIType, read } from "bun:ffi";
const libc = dlopen("libc.so.6", {
  syscall: { args: [FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64], returns: FFIType.i64 },
  __errno_location: { args: [], returns: FFIType.ptr },
});
const counts = {};
for (let i = 0; i < 1_000_000; i++) {
  libc.symbols.syscall(165n, 0n, 0n, 0n);
  const e = read.i32(libc.symbols.__errno_location(), 0);
  counts[e] = (counts[e] || 0) + 1;
}
console.log(JSON.stringify(counts));
"#;
    let dir = ffi_service(&sb, "storm", code);
    let mut child = sb
        .cmd()
        .args(["run", "--json", "--audit"])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // VmHWM only grows: the last reading before the process exits is its peak (to within the
    // sampling interval). Output is read afterwards; the report fits in the pipe buffer.
    let pid = child.id();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak = kib;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr_of(&out)));
    assert_eq!(r["status"], "ok", "{r}");
    let audit = audit_of(&r);
    let limit = audit["notificationLimit"].as_u64().unwrap();
    let kept = audit["eventsLimit"].as_u64().unwrap();
    assert_eq!(audit["notificationLimitReached"], true, "{audit}");
    assert_eq!(audit["notifications"], limit);
    assert_eq!(audit["counts"], serde_json::json!({ "mount": limit }));
    assert_eq!(audit["events"].as_array().unwrap().len() as u64, kept);
    assert_eq!(audit["dropped"], limit - kept);
    // The program saw EPERM up to the cap, then the kernel's own ENOSYS.
    let seen: Value = serde_json::from_str(r["stdout"].as_str().unwrap().trim()).unwrap();
    assert_eq!(seen[libc::EPERM.to_string()], limit, "{seen}");
    assert_eq!(seen[libc::ENOSYS.to_string()], 1_000_000 - limit, "{seen}");
    // ignite's own memory stays small however many calls the program makes.
    assert!(peak > 0 && peak < 64 * 1024, "ignite peak RSS {peak} KiB");
    sb.assert_no_leaks();
}

/// One spawn attempt per run, chosen by the input: the runtime's APIs and the raw system
/// calls through bun:ffi. Prints the attempt's outcome (an error code, an errno number, or
/// "ok") and the program's pid.
const BUN_SPAWN_PROGRAM: &str = r#"
import { spawnSync } from "node:child_process";
import { dlopen, FFIType, ptr, read } from "bun:ffi";
const libc = dlopen("libc.so.6", {
  fork: { args: [], returns: FFIType.i32 },
  vfork: { args: [], returns: FFIType.i32 },
  syscall: { args: [FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64], returns: FFIType.i64 },
  execve: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
});
const errno = (rc: number | bigint) => (Number(rc) < 0 ? read.i32(libc.symbols.__errno_location(), 0) : "created " + rc);
const path = Buffer.from(process.execPath + "\0");
const argv = new BigUint64Array([BigInt(ptr(path)), 0n]);
const envp = new BigUint64Array([0n]);
const probes: Record<string, () => unknown> = {
  "Bun.spawnSync": () => { const r = Bun.spawnSync({ cmd: [process.execPath, "-e", "1"] }); return r.exitCode === 0 ? "ok" : "exit " + r.exitCode; },
  "Bun.spawn": () => Bun.spawn({ cmd: [process.execPath, "-e", "1"] }).exited.then((c) => (c === 0 ? "ok" : "exit " + c)),
  "child_process.spawnSync": () => { const r = spawnSync(process.execPath, ["-e", "1"]); if (r.error) throw r.error; return "ok"; },
  "worker": () => new Promise((res, rej) => {
    const w = new Worker(URL.createObjectURL(new Blob(["postMessage(21 * 2)"], { type: "application/javascript" })));
    w.onmessage = (e) => { w.terminate(); res(e.data); };
    w.onerror = rej;
  }),
  "fork": () => errno(libc.symbols.fork()),
  "vfork": () => errno(libc.symbols.vfork()),
  "clone": () => errno(libc.symbols.syscall(56, 17, 0, 0, 0, 0)), // SIGCHLD only: a fork
  "execve": () => errno(libc.symbols.execve(ptr(path), ptr(argv), ptr(envp))),
  "execveat": () => errno(libc.symbols.syscall(322, -100, ptr(path), ptr(argv), ptr(envp), 0)),
};
let out: unknown;
try { out = await probes[JSON.parse(process.env.IGNITE_INPUT!)](); } catch (e: any) { out = e.code ?? e.message; }
console.log(JSON.stringify({ out, pid: process.pid }));
"#;

const NODE_SPAWN_PROGRAM: &str = r#"
import { spawnSync, execFileSync, fork } from "node:child_process";
import { Worker } from "node:worker_threads";
if (process.argv[2] === "child") process.exit(0);
const probes = {
  "spawnSync": () => { const r = spawnSync(process.execPath, ["-e", "1"]); if (r.error) throw r.error; return "ok"; },
  "execFileSync": () => { execFileSync(process.execPath, ["-e", "1"]); return "ok"; },
  "fork": () => new Promise((res, rej) => { const c = fork(new URL(import.meta.url).pathname, ["child"]); c.once("error", rej); c.once("exit", (code) => res(code === 0 ? "ok" : "exit " + code)); }),
  "worker": () => new Promise((res, rej) => {
    const w = new Worker("require('node:worker_threads').parentPort.postMessage(21 * 2)", { eval: true });
    w.once("message", res);
    w.once("error", rej);
  }),
};
let out;
try { out = await probes[JSON.parse(process.env.IGNITE_INPUT)](); } catch (e) { out = e.code ?? e.message; }
console.log(JSON.stringify({ out, pid: process.pid }));
"#;

/// The process-creation calls audit mode reports when spawning is off.
const PROCESS_SYSCALLS: [&str; 5] = ["fork", "vfork", "clone", "execve", "execveat"];

/// Runs `probe` in audit mode and returns what the program saw and the audit section.
fn audited_probe(sb: &Sandbox, dir: &std::path::Path, runtime: &str, probe: &str) -> (Value, Value) {
    let input = serde_json::to_string(probe).unwrap();
    let (_out, r) = sb.run_json(dir, &["--audit", "--runtime", runtime, "--input", &input]);
    assert_eq!(r["status"], "ok", "{runtime} {probe}: {r}");
    let stdout = r["stdout"].as_str().unwrap_or_default();
    let line = stdout.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("{probe}: no result: {r}"));
    (serde_json::from_str(line).unwrap(), audit_of(&r).clone())
}

/// The attempt failed and every event is a denied `process` event of the program; returns the
/// syscalls named.
fn process_events(runtime: &str, probe: &str, seen: &Value, audit: &Value) -> Vec<String> {
    assert_eq!(audit["overallStatus"], "violations", "{runtime} {probe}: no event: {audit}");
    let events = audit["events"].as_array().unwrap();
    assert!(!events.is_empty(), "{audit}");
    assert_eq!(audit["counts"], serde_json::json!({ "process": events.len() }), "{runtime} {probe}: {audit}");
    for e in events {
        assert_eq!(e["kind"], "process", "{e}");
        assert_eq!(e["verdict"], "denied", "{e}");
        let name = e["syscall"].as_str().unwrap_or_default();
        assert!(PROCESS_SYSCALLS.contains(&name), "{runtime} {probe}: {e}");
        assert_eq!(e["pid"], seen["pid"], "{runtime} {probe}: the program made the call: {e}");
    }
    events.iter().map(|e| e["syscall"].as_str().unwrap().to_string()).collect()
}

#[test]
fn spawn_attempts_on_bun_are_process_events() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = ffi_service(&sb, "bun-spawn", BUN_SPAWN_PROGRAM);
    for probe in ["Bun.spawnSync", "Bun.spawn", "child_process.spawnSync"] {
        let (seen, audit) = audited_probe(&sb, &dir, "bun", probe);
        assert_eq!(seen["out"], "EPERM", "{probe}: {seen}");
        process_events("bun", probe, &seen, &audit);
    }
    // Raw system calls: each fails with EPERM and is reported under its own name (glibc's
    // fork() is the clone system call).
    for (probe, syscall) in
        [("fork", "clone"), ("vfork", "vfork"), ("clone", "clone"), ("execve", "execve"), ("execveat", "execveat")]
    {
        let (seen, audit) = audited_probe(&sb, &dir, "bun", probe);
        assert_eq!(seen["out"], libc::EPERM, "{probe}: {seen}");
        let names = process_events("bun", probe, &seen, &audit);
        assert_eq!(names, [syscall], "{probe}: {audit}");
    }
    // Workers are threads: they work, and are not events.
    let (seen, audit) = audited_probe(&sb, &dir, "bun", "worker");
    assert_eq!(seen["out"], 42, "{seen}");
    assert_eq!(audit["overallStatus"], "clean", "{audit}");
    assert!(audit["auditedSyscalls"].as_array().unwrap().iter().any(|s| s == "execve"), "{audit}");
    sb.assert_no_leaks();
}

#[test]
fn spawn_attempts_on_node_are_process_events() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let yaml = "service:\n  name: node-spawn\n  entry: main.mjs\n  timeoutMs: 60000\n";
    let dir = sb.service("node-spawn", &[("service.yaml", yaml), ("main.mjs", NODE_SPAWN_PROGRAM)]);
    for probe in ["spawnSync", "execFileSync", "fork"] {
        let (seen, audit) = audited_probe(&sb, &dir, "node", probe);
        assert_eq!(seen["out"], "EPERM", "{probe}: {seen}");
        process_events("node", probe, &seen, &audit);
    }
    let (seen, audit) = audited_probe(&sb, &dir, "node", "worker");
    assert_eq!(seen["out"], 42, "{seen}");
    assert_eq!(audit["overallStatus"], "clean", "{audit}");
    sb.assert_no_leaks();
}

#[test]
fn with_spawning_allowed_audit_mode_does_not_watch_process_creation() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = ffi_service(&sb, "bun-spawn-allowed", BUN_SPAWN_PROGRAM);
    // Audit mode's strictest default for allowedCommands is [] (fork, no exec): name bun.
    let policy = "security:\n  process:\n    allowSpawn: true\n    allowedCommands: [/usr/local/bin/bun]\n";
    std::fs::write(dir.join("ignite.policy.yaml"), policy).unwrap();
    let (seen, audit) = audited_probe(&sb, &dir, "bun", "Bun.spawnSync");
    assert_eq!(seen["out"], "ok", "{seen}");
    assert_eq!(audit["overallStatus"], "clean", "{audit}");
    let watched = audit["auditedSyscalls"].as_array().unwrap();
    for name in PROCESS_SYSCALLS {
        assert!(!watched.iter().any(|s| s == name), "{name} is watched: {audit}");
    }
    let out = sb.cmd().args(["run", "--audit", "--print-spec"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let spec: Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    let notified: Vec<&Value> = spec["linux"]["seccomp"]["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "SCMP_ACT_NOTIFY")
        .flat_map(|s| s["names"].as_array().unwrap())
        .collect();
    assert!(!notified.is_empty());
    for name in PROCESS_SYSCALLS {
        assert!(!notified.iter().any(|n| *n == name), "{name} notified: {notified:?}");
    }
    sb.assert_no_leaks();
}
